"""Exact bit packing of integer codes (numba kernels in ``_encode.py``)."""

from __future__ import annotations

import numbers

import numpy as np

from . import _encode
from ._validate import check_bits, check_codes

__all__ = ["pack_bits", "unpack_bits", "packed_nbytes"]


def packed_nbytes(n: int, bits: int) -> int:
    """Bytes needed for ``n`` codes of ``bits`` bits: ``ceil(n * bits / 8)``."""
    return -(-int(n) * int(bits) // 8)


def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack integer codes into an LSB-first bit stream.

    Parameters
    ----------
    codes : array of unsigned integers
        Any shape (flattened in C order); every value must be < 2**bits.
    bits : int
        Bits per code, 1..8.

    Returns
    -------
    ndarray of uint8, shape (ceil(codes.size * bits / 8),)
        Code i occupies bits ``i*bits .. i*bits + bits - 1`` of the stream; unused
        high bits of the last byte are zero.

    Raises
    ------
    ValueError
        A code does not fit in ``bits`` bits (nothing is clipped).
    """
    b = check_bits(bits)
    flat = check_codes(codes, b).ravel()
    out = np.zeros(packed_nbytes(flat.size, b), np.uint8)
    _encode.pack(flat, b, out)
    return out


def unpack_bits(buf: np.ndarray | bytes, bits: int, n: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``n`` codes of the stream ``buf``.

    Raises
    ------
    ValueError
        ``buf`` does not have exactly ``ceil(n * bits / 8)`` bytes.
    """
    b = check_bits(bits)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    arr = np.frombuffer(buf, np.uint8) if isinstance(buf, (bytes, bytearray, memoryview)) else np.asarray(buf)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise TypeError(f"buf must be bytes or a 1-D uint8 array, got dtype {arr.dtype} with {arr.ndim} dimension(s).")
    need = packed_nbytes(n, b)
    if arr.size != need:
        raise ValueError(f"buf has {arr.size} bytes but {n} codes of {b} bits need exactly {need}.")
    out = np.empty(int(n), np.uint8)
    _encode.unpack(np.ascontiguousarray(arr), b, int(n), out)
    return out
