"""A compact, versioned file format for named quantized tensors.

Layout (all integers little-endian)::

    offset 0   magic  b"HQUANT"                      6 bytes
    offset 6   format version (uint16) = 1, 2 or 3    2 bytes
    offset 8   header length h (uint32)               4 bytes
    offset 12  header: zlib-compressed UTF-8 JSON     h bytes
               payload: for each tensor, in header order,
                 packed codes (ceil(size*bits/8) bytes), then params (C order:
                 float32, or the upper 16 bits of each float32 for bfloat16)
    end - 4    CRC-32 of every preceding byte (uint32) 4 bytes

Plain numeric arrays (biases, layers left unquantized) may be stored beside quantized
tensors, as their little-endian bytes.  A file holding quantized tensors T_i and arrays
A_j is exactly ``16 + h + sum(T_i.nbytes) + sum(A_j.nbytes)`` bytes.  The JSON
header lists each tensor's name, shape, dtype, bits, scheme, layout and fit provenance,
plus a free ``metadata`` object (e.g. a model architecture).  Writes are atomic: a
temporary file in the target directory is fsynced and renamed over the target.

Versions: 1 is the original layout; 2 is the same layout and adds the ``normal`` scheme
(two params per row); 3 adds bfloat16 params (an entry's ``"param_dtype": "bfloat16"``;
entries without the key hold float32 params).  :func:`save` writes the lowest version
that can hold the file's contents (2 only when a ``normal`` tensor is present, 3 only
when a tensor has bfloat16 params), so older readers keep reading the files they can
hold, and an old reader meeting a newer file says "upgrade" instead of misreading it.
:func:`load` reads all three.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import math

from ._core import PARAM_DTYPES, QuantizedTensor, _n_rows, n_params
from ._io import atomic_write
from ._packing import pack_bits, packed_nbytes, unpack_bits

__all__ = ["save", "load", "FormatError", "FORMAT_VERSION"]

MAGIC = b"HQUANT"
FORMAT_VERSION = 3  # the newest version this module writes and reads
_READABLE = (1, 2, 3)
_BF16_SINCE = 3  # bfloat16 params
_SCHEME_SINCE = {"normal": 2}  # schemes that need a newer version than 1
_PREFIX = struct.Struct("<6sHI")
_CRC = struct.Struct("<I")
# A header inflates to at most this many bytes: a small allowance plus a ratio that JSON
# headers written by :func:`save` never exceed in practice (typical ratios are 3-10).  It
# bounds what a crafted file can make the reader allocate (zlib alone allows ~1000:1);
# save() refuses to write a header the reader would refuse.
_HEADER_ALLOWANCE = 1 << 20
_HEADER_MAX_RATIO = 32
_MAX_NESTING = 64  # JSON nesting depth accepted in a header (metadata included)


def _max_header(hlen: int) -> int:
    return _HEADER_ALLOWANCE + _HEADER_MAX_RATIO * hlen


class FormatError(ValueError):
    """A file is not a valid hopfield-quant file (truncated, corrupted, wrong version)."""


def save(path: str | os.PathLike, tensors: Mapping[str, QuantizedTensor | np.ndarray],
         metadata: Mapping[str, Any] | None = None) -> int:
    """Write named quantized tensors (and plain arrays) to one file, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination; parent directories are created.
    tensors : mapping of str to QuantizedTensor or ndarray
        Non-empty names; order is kept.  Plain arrays must be numeric (float, int or
        uint) and are stored exactly.
    metadata : mapping, optional
        JSON-serialisable extra information stored in the header.

    Returns
    -------
    int
        The number of bytes written.
    """
    if not isinstance(tensors, Mapping) or not tensors:
        raise ValueError("tensors must be a non-empty mapping of name -> QuantizedTensor.")
    entries, payload = [], []
    for name, qt in tensors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}.")
        if isinstance(qt, np.ndarray):
            if qt.dtype.kind not in "fiu":
                raise TypeError(f"tensors[{name!r}] has dtype {qt.dtype}; plain arrays must be float, int or uint.")
            arr = np.array(qt, dtype=qt.dtype.newbyteorder("<"), order="C", copy=True)  # keeps 0-d shapes
            entries.append({"name": name, "kind": "array", "shape": list(arr.shape), "dtype": arr.dtype.str})
            payload.append(arr.tobytes())
            continue
        if not isinstance(qt, QuantizedTensor):
            raise TypeError(f"tensors[{name!r}] must be a QuantizedTensor or a numpy array, got {type(qt).__name__}.")
        codes = pack_bits(qt.codes, qt.bits)
        entries.append({
            "name": name, "shape": list(qt.shape), "dtype": qt.dtype, "bits": qt.bits, "scheme": qt.scheme,
            "axis": qt.axis, "group_size": qt.group_size, "objective": qt.objective, "gain": qt.gain,
            "preserve_mean": qt.preserve_mean, "rows": qt.n_rows, "kind": "quantized",
        })
        if qt.param_dtype == "bfloat16":
            entries[-1]["param_dtype"] = "bfloat16"
            payload += [codes.tobytes(), (qt.params.view(np.uint32) >> 16).astype("<u2").tobytes()]
        else:
            payload += [codes.tobytes(), qt.params.astype("<f4").tobytes()]
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping (e.g. a dict) of JSON-serialisable values, "
                        f"got {type(metadata).__name__}.")
    try:
        header = json.dumps({"tensors": entries, "metadata": dict(metadata or {})}, separators=(",", ":"))
    except TypeError as exc:
        raise TypeError(f"metadata must be JSON-serialisable: {exc}") from None
    except (ValueError, RecursionError) as exc:  # json: "Circular reference detected"
        raise TypeError(f"metadata must be JSON-serialisable without circular references: {exc}") from None
    if _depth(json.loads(header)) > _MAX_NESTING:
        raise TypeError(f"metadata is nested more than {_MAX_NESTING - 3} levels deep; load() would refuse it.")
    raw = header.encode("utf-8")
    hbytes = zlib.compress(raw, 9)
    if len(raw) > _max_header(len(hbytes)):
        raise ValueError(f"the header ({len(raw):,} bytes of JSON, mostly metadata) compresses "
                         f"{len(raw) / len(hbytes):.0f}:1, beyond what load() accepts as a guard against "
                         f"decompression bombs ({_HEADER_MAX_RATIO}:1 above {_HEADER_ALLOWANCE:,} bytes); "
                         "store large metadata in a separate file.")
    version = max([1] + [_SCHEME_SINCE.get(e.get("scheme"), 1) for e in entries]
                  + [_BF16_SINCE for e in entries if e.get("param_dtype") == "bfloat16"])
    body = [_PREFIX.pack(MAGIC, version, len(hbytes)), hbytes, *payload]
    crc = 0
    for c in body:
        crc = zlib.crc32(c, crc)
    body.append(_CRC.pack(crc))
    return atomic_write(path, body)


def _fail(path: Path, problem: str) -> FormatError:
    return FormatError(f"{path}: {problem}")


def _depth(obj, level: int = 1) -> int:
    """Nesting depth of a parsed JSON value (iterative: safe on any depth)."""
    best, stack = 0, [(obj, level)]
    while stack:
        o, d = stack.pop()
        best = max(best, d)
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return best


def _inflate(blob: bytes, limit: int) -> bytes:
    """zlib-decompress at most ``limit`` bytes; refuse (ValueError) anything longer."""
    d = zlib.decompressobj()
    out = d.decompress(blob, limit)
    if d.unconsumed_tail:
        raise ValueError(f"the header inflates to more than {limit:,} bytes, more than a "
                         f"{len(blob):,}-byte compressed header can justify (a decompression bomb?)")
    if not d.eof:
        raise zlib.error("incomplete or truncated compressed header")
    return out


def _int(v, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer in {rng}, got {v!r}")
    return v


def _check_entry(e: dict, version: int) -> tuple[int, int]:
    """Validate one header entry; return (code or array bytes, param bytes) it claims."""
    from ._validate import GAINS, OBJECTIVES, SCHEMES

    name = e.get("name")
    shape = e.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise ValueError(f"tensor {name!r} has a bad shape {shape!r}")
    size = math.prod(shape)  # exact: no int64 wrap-around on crafted dimensions
    if e.get("kind") == "array":
        dt = np.dtype(e["dtype"])
        if dt.kind not in "fiu":
            raise ValueError(f"tensor {name!r} has a non-numeric dtype {e['dtype']!r}")
        return size * dt.itemsize, 0
    bits = _int(e.get("bits"), f"tensor {name!r}: bits", 1, 8)
    scheme = e.get("scheme")
    for key, allowed in (("scheme", SCHEMES), ("objective", OBJECTIVES), ("gain", GAINS),
                         ("dtype", ("float16", "float32", "float64"))):
        if e.get(key) not in allowed:
            raise ValueError(f"tensor {name!r}: {key} must be one of {allowed}, got {e.get(key)!r}")
    if _SCHEME_SINCE.get(scheme, 1) > version:
        raise ValueError(f"tensor {name!r} uses scheme {scheme!r}, which needs format "
                         f"version {_SCHEME_SINCE[scheme]}, but the file says version {version}")
    axis, group = e.get("axis"), e.get("group_size")
    if axis is not None:
        _int(axis, f"tensor {name!r}: axis", -len(shape), len(shape) - 1)
        axis %= max(len(shape), 1)
    if group is not None:
        _int(group, f"tensor {name!r}: group_size", 1)
    if not shape or size == 0:
        raise ValueError(f"tensor {name!r}: a quantized tensor needs a non-empty shape, got {shape!r}")
    rows = _int(e.get("rows"), f"tensor {name!r}: rows", 1)
    if rows != _n_rows(tuple(shape), axis, group):
        raise ValueError(f"tensor {name!r}: rows={rows} does not match its shape {shape} and layout "
                         f"(expected {_n_rows(tuple(shape), axis, group)})")
    pdt = e.get("param_dtype", "float32")
    if pdt not in PARAM_DTYPES:
        raise ValueError(f"tensor {name!r}: param_dtype must be one of {PARAM_DTYPES}, got {pdt!r}")
    if pdt == "bfloat16" and version < _BF16_SINCE:
        raise ValueError(f"tensor {name!r} has bfloat16 params, which need format version {_BF16_SINCE}, but the "
                         f"file says version {version}")
    return packed_nbytes(size, bits), (2 if pdt == "bfloat16" else 4) * rows * n_params(scheme, bits)


def load(path: str | os.PathLike, *, return_metadata: bool = False):
    """Read a file written by :func:`save`.

    Parameters
    ----------
    path : str or PathLike
    return_metadata : bool, default False
        Also return the header's metadata dict.

    Returns
    -------
    dict of str to QuantizedTensor (or ndarray for plain arrays), or (that dict,
    metadata) when return_metadata.

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        Not a hopfield-quant file, unsupported version, truncated, trailing data,
        checksum mismatch or an inconsistent header; the message names the file.
    """
    p = Path(path)
    data = p.read_bytes()
    if len(data) < _PREFIX.size + _CRC.size:
        raise _fail(p, f"truncated: {len(data)} bytes is shorter than the {_PREFIX.size + _CRC.size}-byte frame")
    magic, version, hlen = _PREFIX.unpack_from(data, 0)
    if magic != MAGIC:
        raise _fail(p, f"not a hopfield-quant file (magic {magic!r}, expected {MAGIC!r})")
    if version not in _READABLE:
        raise _fail(p, f"format version {version} is not supported by this reader (versions "
                       f"{', '.join(map(str, _READABLE))}); upgrade hopfield-quant to read it")
    hend = _PREFIX.size + hlen
    if hend + _CRC.size > len(data):
        raise _fail(p, f"truncated: header claims {hlen} bytes but the file has {len(data)} bytes in all")
    try:
        text = _inflate(data[_PREFIX.size:hend], _max_header(hlen)).decode("utf-8")
        header = json.loads(text)
        if not isinstance(header, dict):
            raise ValueError("the header must be a JSON object")
        if _depth(header) > _MAX_NESTING:
            raise ValueError(f"the header is nested more than {_MAX_NESTING} levels deep")
        entries = header["tensors"]
        metadata = header["metadata"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("'tensors' must be a list of objects")
        if not isinstance(metadata, dict):
            raise ValueError("'metadata' must be an object")
        names = [e.get("name") for e in entries]
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ValueError("tensor names must be unique non-empty strings")
        sizes = [_check_entry(e, version) for e in entries]
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError,
            AttributeError, RecursionError, OverflowError) as exc:
        raise _fail(p, f"corrupted header ({type(exc).__name__}: {exc})") from None
    expected = hend + sum(a + b for a, b in sizes) + _CRC.size
    if len(data) < expected:
        raise _fail(p, f"truncated: expected {expected} bytes, found {len(data)}")
    if len(data) > expected:
        raise _fail(p, f"corrupted: {len(data) - expected} unexpected trailing bytes (expected {expected} bytes)")
    (stored,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(memoryview(data)[: len(data) - _CRC.size]) != stored:
        raise _fail(p, "corrupted: checksum mismatch (the payload was modified or damaged)")
    out: dict[str, QuantizedTensor | np.ndarray] = {}
    pos = hend
    try:
        for e, (ncode, npar) in zip(entries, sizes):
            shape = tuple(int(s) for s in e["shape"])
            if e.get("kind") == "array":
                dt = np.dtype(e["dtype"])
                out[e["name"]] = np.frombuffer(data, dt, ncode // dt.itemsize, pos).reshape(shape).astype(dt.newbyteorder("="))
                pos += ncode
                continue
            codes = unpack_bits(np.frombuffer(data, np.uint8, ncode, pos), e["bits"], math.prod(shape))
            pos += ncode
            P = n_params(e["scheme"], e["bits"])
            pdt = e.get("param_dtype", "float32")
            if pdt == "bfloat16":
                half = np.frombuffer(data, "<u2", npar // 2, pos).astype(np.uint32) << 16
                params = half.view(np.float32).reshape(int(e["rows"]), P)
            else:
                params = np.frombuffer(data, "<f4", npar // 4, pos).reshape(int(e["rows"]), P).astype(np.float32)
            pos += npar
            out[e["name"]] = QuantizedTensor(
                codes=codes.reshape(shape), params=params, bits=e["bits"], scheme=e["scheme"], shape=shape,
                dtype=e["dtype"], axis=e["axis"], group_size=e["group_size"], objective=e["objective"],
                gain=e["gain"], preserve_mean=e["preserve_mean"], param_dtype=pdt,
            )
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _fail(p, f"inconsistent tensor {e.get('name')!r} ({exc})") from None
    return (out, metadata) if return_metadata else out
