"""Validation for the public entry points of :mod:`hopfield`."""

from __future__ import annotations

import numbers

import numpy as np


def check_patterns(patterns: object, name: str = "patterns") -> np.ndarray:
    """Return ``patterns`` as int8 (P, N) with values +-1, P >= 1, N >= 2, or raise."""
    arr = np.asarray(patterns)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_patterns, n_neurons), got shape {arr.shape}.")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold numbers +1/-1, got dtype {arr.dtype}.")
    P, N = arr.shape
    if P == 0:
        raise ValueError(f"{name} holds no pattern (shape {arr.shape}); store at least one.")
    if N < 2:
        raise ValueError(f"{name} has N={N} neuron(s); a Hopfield network needs N >= 2.")
    bad = (arr != 1) & (arr != -1)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} must contain only +1 and -1, found {arr[tuple(first)].item()!r} at index {tuple(int(i) for i in first)}"
            " (binarise first, e.g. np.where(x > threshold, 1, -1))."
        )
    return np.ascontiguousarray(arr, dtype=np.int8)


def check_states(states: object, n_neurons: int, name: str = "cues") -> tuple[np.ndarray, bool]:
    """Return (int8 (n, N) states, was_1d) for a network of ``n_neurons``."""
    arr = np.asarray(states)
    was_1d = arr.ndim == 1
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n_neurons,) or (n_cues, n_neurons), got {arr.shape}.")
    if arr.shape[-1] != n_neurons:
        raise ValueError(f"{name} have length {arr.shape[-1]}, but the network has {n_neurons} neurons.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    return check_patterns(arr, name), was_1d


def check_weights(weights: object) -> np.ndarray:
    """Return square finite float32 weights with N >= 2, or raise."""
    W = np.asarray(weights)
    if W.dtype.kind not in "fiu":
        raise TypeError(f"weights must be a real array, got dtype {W.dtype}.")
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"weights must be a square (N, N) matrix, got shape {W.shape}.")
    if W.shape[0] < 2:
        raise ValueError(f"weights describe N={W.shape[0]} neuron(s); a Hopfield network needs N >= 2.")
    if not np.isfinite(W).all():
        n_bad = int((~np.isfinite(W)).sum())
        raise ValueError(f"weights contain {n_bad} NaN/inf value(s); the dynamics need finite weights.")
    with np.errstate(over="ignore"):
        W32 = np.ascontiguousarray(W, dtype=np.float32)
    if not np.isfinite(W32).all():  # finite in their own dtype, beyond float32's range
        big = ~np.isfinite(W32)
        raise ValueError(
            f"weights have {int(big.sum())} value(s) beyond the float32 range |w| <= {float(np.finfo(np.float32).max):.4g}"
            f" (largest magnitude {float(np.abs(W[big]).max()):.4g}); the network stores float32 weights. The dynamics "
            "ignore a global positive scale: divide the weights by e.g. np.abs(weights).max().")
    return W32


def check_positive_int(value: object, name: str, minimum: int = 1, maximum: int | None = None,
                       maximum_text: str | None = None) -> int:
    """``value`` as an int in [minimum, maximum], or a ValueError that names ``name``."""
    too_big = maximum is not None and isinstance(value, numbers.Integral) and value > maximum
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum or too_big:
        bound = "" if maximum is None else f" and <= {maximum_text or maximum}"
        raise ValueError(f"{name} must be an int >= {minimum}{bound}, got {value!r}.")
    return int(value)


def check_fraction(value: object, name: str, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}.")
    return float(value)


DEVICES = ("cpu", "cuda")


def check_device(device: object, name: str = "device") -> str:
    """``device`` as "cpu" or "cuda", or a ValueError that names the argument."""
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{name}={device!r} is not supported; use 'cpu' (numba on the CPU cores) or 'cuda' "
                         "(one NVIDIA GPU through numba-cuda: pip install \"hopfield-quant[cuda]\").")
    return device
