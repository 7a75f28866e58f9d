"""Data: scikit-learn's bundled 8x8 digits and MNIST-format IDX files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["load_digits", "load_idx", "load_mnist"]


def load_digits(test_fraction: float = 0.25, seed: int | np.random.Generator | None = 0):
    """The 1,797 bundled 8x8 digits as (N, 1, 8, 8) float32 in [0, 1], split at random.

    Returns
    -------
    (x_train, y_train, x_test, y_test)

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install scikit-learn``).
    """
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from exc
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    d = _load()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = order[:n_test], order[n_test:]
    return x[tr], y[tr], x[te], y[te]


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), as used by MNIST.

    Raises
    ------
    ValueError
        Bad magic number, unsupported type code, or a size that does not match the header.
    """
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{p}: cannot read ({exc}); the file may be truncated or corrupted.") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{p}: not an IDX file (bad magic number).")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{p}: unsupported IDX type code 0x{data[2]:02x}.")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dt = np.dtype(dtypes[data[2]])
    need = int(np.prod(shape)) * dt.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise ValueError(f"{p}: IDX header announces shape {shape} ({need} bytes) but the file has {len(body)}.")
    return np.frombuffer(body, dt).reshape(shape).astype(dt.newbyteorder("="))


def load_mnist(directory: str | os.PathLike, normalize: bool = True):
    """MNIST (or Fashion-MNIST) from a directory of the four standard IDX files.

    Returns (x_train, y_train, x_test, y_test) with x as (N, 1, 28, 28) float32 (pixels
    / 255, then standardised with mean 0.1307 and std 0.3081 when ``normalize``).
    """
    d = Path(directory)

    def find(stem):
        for name in (stem, stem + ".gz"):
            if (d / name).exists():
                return d / name
        raise FileNotFoundError(f"{d}: no {stem}[.gz]")

    out = []
    for split in ("train", "t10k"):
        x = load_idx(find(f"{split}-images-idx3-ubyte")).astype(np.float32)[:, None] / 255.0
        if normalize:
            x = (x - 0.1307) / 0.3081
        y = load_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
        if len(x) != len(y):
            raise ValueError(f"{d}: {split} has {len(x)} images but {len(y)} labels.")
        out += [x.astype(np.float32), y]
    return tuple(out)
