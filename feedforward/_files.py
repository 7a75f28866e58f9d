"""What kind of model file a path holds, told from its first bytes, so that every loader
can say "this is a quantized model file; load it with ..." instead of failing inside
a parser that was never meant for it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from quantization._format import MAGIC as _HQ_MAGIC

__all__ = ["file_kind", "wrong_kind_message", "LOADABLE"]

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_MAGIC = b"\x80"  # PROTO opcode, pickle protocol 2 and later
_ONNX_MAGIC = b"\x08"  # ModelProto field 1 (ir_version), varint: what every ONNX file starts with
_SNIFF_BYTES = 8

#: kind -> (what the file is, how to load it, a note).
_KINDS = {
    "quantized": ("a quantized model file (hopfield-quant format)",
                  "feedforward.load_quantized({path!r}) (quantization.load for other quantized tensors)", ""),
    "float": ("a float model file (.npz written by Sequential.save)", "feedforward.Sequential.load({path!r})", ""),
    "torch": ("a PyTorch checkpoint (torch.save)",
              "torch.load({path!r}), then feedforward.from_torch or feedforward.load_state_dict", ""),
    "onnx": ("an ONNX model", "feedforward.from_onnx({path!r})", ""),
    "npy": ("a single numpy array written by np.save", None, ""),
    "pickle": ("a Python pickle", None, " (pickles are never loaded: they can run code)"),
    "empty": ("empty (0 bytes)", None, ""),
}

#: The kinds that some function of this project reads.
LOADABLE = frozenset(kind for kind, (_, loader, _) in _KINDS.items() if loader)


def file_kind(path: str | os.PathLike) -> str:
    """The kind of file at ``path`` from its first bytes: "quantized" (the core's
    format), "float" (an .npz with an ``__architecture__`` entry), "torch" (a
    ``torch.save`` zip), "npz" (another or a damaged zip archive), "npy", "pickle",
    "onnx", "empty" or "unknown".

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        As ``open`` does.
    """
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head:
        return "empty"
    if head.startswith(_HQ_MAGIC):
        return "quantized"
    if head.startswith(_ZIP_MAGICS):
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "npz"  # damaged: the .npz reader reports how
        if "__architecture__.npy" in names:
            return "float"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch"
        return "npz"
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_PICKLE_MAGIC):
        return "pickle"
    if head.startswith(_ONNX_MAGIC) or p.suffix.lower() == ".onnx":
        return "onnx"
    return "unknown"


def wrong_kind_message(path: str | os.PathLike, kind: str, wanted: str) -> str | None:
    """One line saying that ``path`` is a ``kind`` file, not ``wanted``, and what reads
    it ("{path}: not {wanted}: it is ..." for kinds nothing here reads); None for kinds
    without a description ("npz", "unknown")."""
    if kind not in _KINDS:
        return None
    what, loader, note = _KINDS[kind]
    if loader is None:
        return f"{path}: not {wanted}: it is {what}{note}."
    return f"{path} is {what}, not {wanted}{note}; load it with {loader.format(path=str(path))}."
