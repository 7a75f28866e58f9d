"""Quality metrics between an original tensor and its quantized version."""

from __future__ import annotations

import numpy as np

__all__ = ["correlation", "sqnr_db"]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same number of elements, got {x.size} and {y.size}.")
    if x.size == 0:
        raise ValueError("a and b are empty.")
    return x, y


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation rho between two tensors (flattened), in float64.

    When either tensor is constant, rho is undefined; this returns 1.0 if the two are
    identical (a constant tensor quantized exactly) and 0.0 otherwise.
    """
    x, y = _pair(a, b)
    xc = x - x.mean()
    yc = y - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    if den == 0.0:
        return 1.0 if np.array_equal(x, y) else 0.0
    return float(np.clip(np.dot(xc, yc) / den, -1.0, 1.0))


def sqnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum a^2 / sum (a - b)^2)`` in dB.

    ``inf`` when ``b`` equals ``a`` exactly.
    """
    x, y = _pair(a, b)
    noise = float(np.dot(x - y, x - y))
    if noise == 0.0:
        return float("inf")
    return float(10.0 * np.log10(np.dot(x, x) / noise))
