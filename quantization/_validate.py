"""Input validation for every public entry point of :mod:`quantization`.

The numba kernels (``_grids.py`` lists them) assume clean, contiguous, float64/uint8 inputs;
everything a user passes goes through one of these helpers first.  Messages name the argument, the
value received, what is allowed and, where there is one, the fix.
"""

from __future__ import annotations

import numbers

import numpy as np

SCHEMES = ("uniform", "exponential", "pow2", "lloyd", "normal")
OBJECTIVES = ("correlation", "mse", "minmax")
GAINS = ("unbiased", "lsq", "none")

_F32_MAX = float(np.finfo(np.float32).max)
_PARALLEL_CHECK_SIZE = 1 << 20  # arrays this large are checked by a parallel numba pass


def check_bits(bits: object, name: str = "bits") -> int:
    """Return ``bits`` as an int in 1..8 or raise."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"{name} must be an integer in 1..8, got {bits!r} of type {type(bits).__name__}.")
    b = int(bits)
    if not 1 <= b <= 8:
        raise ValueError(f"{name}={b} is out of range: codes are stored in uint8, so {name} must be in 1..8.")
    return b


def check_choice(value: object, allowed: tuple[str, ...], name: str) -> str:
    """Return ``value`` if it is one of ``allowed`` or raise."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}.")
    return value


def check_weights(w: object, name: str = "w") -> np.ndarray:
    """Return ``w`` as a floating ndarray after checking dtype, size and finiteness.

    float16, float32 and float64 are accepted (fits run in float64, codebooks are
    float32).  Integer, boolean and complex arrays are refused: quantizing integers is
    almost always a mistake, and the fix is an explicit ``w.astype(np.float32)``.
    """
    arr = np.asarray(w)
    if arr.dtype.kind not in "f" or arr.dtype.itemsize > 8:
        raise TypeError(
            f"{name} must be a float16/float32/float64 array, got dtype {arr.dtype}; "
            f"convert explicitly, e.g. {name}.astype(np.float32)."
        )
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); there is nothing to quantize.")
    n_bad = None
    if arr.size >= _PARALLEL_CHECK_SIZE and arr.dtype != np.float16 and arr.flags.c_contiguous:
        from ._encode import finite_absmax  # one parallel pass instead of numpy's serial ones

        n_bad, peak = finite_absmax(arr.reshape(-1))
    if n_bad != 0:  # a small array, or non-finite values to count and locate: numpy's passes
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(arr.size - finite.sum() - n_nan)
            first = np.unravel_index(int(np.argmin(finite)), arr.shape)
            raise ValueError(
                f"{name} contains {n_nan} NaN and {n_inf} inf values (first at index "
                f"{tuple(int(i) for i in first)}); quantization needs finite weights."
            )
        peak = np.max(np.abs(arr))
    peak = float(peak)
    if peak > _F32_MAX:
        raise ValueError(
            f"{name} has max |value| = {peak:.3g}, beyond the float32 range of the codebook ({_F32_MAX:.3g})."
        )
    return arr


def check_axis(axis: object, ndim: int, name: str = "axis") -> int | None:
    """Return a non-negative axis (or None) valid for an array of ``ndim`` dimensions."""
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be None or an int, got {axis!r}.")
    a = int(axis)
    if not -ndim <= a < ndim:
        raise ValueError(f"{name}={a} is out of range for an array with {ndim} dimension(s); allowed {-ndim}..{ndim - 1}.")
    return a % ndim


def check_group_size(group_size: object, shape: tuple[int, ...], axis: int | None) -> int | None:
    """Return ``group_size`` (or None) after checking it is a positive int and ``axis`` is None.

    Groups run along the flattened row of each slice of the first axis; a row whose
    length ``group_size`` does not divide ends with a shorter group.
    """
    if group_size is None:
        return None
    if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral):
        raise TypeError(f"group_size must be None or a positive int, got {group_size!r}.")
    g = int(group_size)
    if g < 1:
        raise ValueError(f"group_size={g} must be a positive int.")
    if axis is not None:
        raise ValueError(
            "axis and group_size were both given; groups run along the flattened row of each slice of "
            "the first axis (each output channel), so pass either axis (per-slice codebooks) or "
            "group_size (per-group codebooks)."
        )
    return g


def check_codes(codes: object, bits: int, name: str = "codes") -> np.ndarray:
    """Return ``codes`` as uint8 after checking every code fits in ``bits`` bits."""
    arr = np.asarray(codes)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an unsigned integer array (uint8), got dtype {arr.dtype}.")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= (1 << bits):
            raise ValueError(
                f"{name} must lie in 0..{(1 << bits) - 1} for bits={bits}, found values in {lo}..{hi}; "
                "nothing is clipped silently."
            )
    return np.ascontiguousarray(arr, dtype=np.uint8)
