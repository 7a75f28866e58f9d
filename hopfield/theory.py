"""Replica-symmetric theory of Hebbian networks with quantized (nonlinear) synapses.

A quantizer phi applied to the Hebbian sums acts like the float network plus
independent static synaptic noise of relative variance D = 1/rho^2 - 1, where rho is the
correlation between the Gaussian-distributed sums and their quantized values
(H. Sompolinsky, "Neural networks with nonlinear synapses and a static noise",
Phys. Rev. A 34, 2571 (1986)).  At zero temperature the replica-symmetric equations of
Amit, Gutfreund & Sompolinsky (Ann. Phys. 173, 30 (1987)) with that noise read

    m = erf(m / sqrt(2 alpha (r + D))),
    C = sqrt(2 / (pi alpha (r + D))) exp(-m^2 / (2 alpha (r + D))),
    r = 1 / (1 - C)^2.

With y = m / sqrt(2 alpha (r + D)) they solve in closed form: m = erf(y),
C = 2 y exp(-y^2) / (sqrt(pi) m) and alpha(y) = (m^2 / (2 y^2)) / (1 / (1 - C)^2 + D).
The critical load alpha_c is the maximum of alpha(y) (a 1-D maximisation), and the
retrieval overlap at a load below it is erf(y) on the branch y > y_c (a bisection), so
there is no iteration that could silently fail to converge.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from quantization import quantize

__all__ = ["static_noise", "critical_load", "critical_point", "overlap", "load_at_overlap", "predicted_rho",
           "predicted_critical_load"]

_Y_LO, _Y_HI = 1e-3, 12.0


def _check_rho(rho: float) -> float:
    r = float(rho)
    if not (0.0 < r <= 1.0) or math.isnan(r):
        raise ValueError(f"rho must lie in (0, 1], got {rho!r}.")
    return r


def static_noise(rho: float) -> float:
    """Relative variance D = 1/rho^2 - 1 of the equivalent static synaptic noise."""
    r = _check_rho(rho)
    return 1.0 / (r * r) - 1.0


def _alpha(y: float, D: float) -> float:
    m = math.erf(y)
    C = 2.0 * y * math.exp(-y * y) / (math.sqrt(math.pi) * m)
    if C >= 1.0:
        return 0.0
    return (m * m / (2.0 * y * y)) / (1.0 / (1.0 - C) ** 2 + D)


def critical_point(rho: float = 1.0) -> tuple[float, float]:
    """(alpha_c, m_c): the largest load with a retrieval solution and its overlap.

    Parameters
    ----------
    rho : float in (0, 1]
        Correlation between the Hebbian sums and the weights (1: float weights).

    Examples
    --------
    >>> [round(v, 3) for v in critical_point(1.0)]
    [0.138, 0.967]
    """
    return _critical_point(_check_rho(rho))


@lru_cache(maxsize=4096)
def _critical_point(rho: float) -> tuple[float, float]:
    D = static_noise(rho)
    ys = np.geomspace(1e-5, 6.0, 2400)
    vals = np.array([_alpha(y, D) for y in ys])
    i = int(np.argmax(vals))
    a, b = ys[max(i - 1, 0)], ys[min(i + 1, len(ys) - 1)]
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _alpha(c, D), _alpha(d, D)
    for _ in range(80):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _alpha(c, D)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _alpha(d, D)
    y = 0.5 * (a + b)
    alpha_c = _alpha(y, D)
    if not alpha_c > 0.0:  # pragma: no cover - cannot happen for rho in (0, 1]
        raise RuntimeError(f"no retrieval solution found for rho={rho}")
    return alpha_c, math.erf(y)


def critical_load(rho: float = 1.0) -> float:
    """Critical load alpha_c(rho) of a Hebbian network whose weights have correlation
    rho with the Hebbian sums: 0.138 for rho = 1 (Amit, Gutfreund & Sompolinsky 1985),
    0.102 for sign-clipped synapses, rho = sqrt(2/pi) (Sompolinsky 1986).

    Raises
    ------
    ValueError
        rho outside (0, 1].
    """
    return critical_point(rho)[0]


def overlap(alpha: float, rho: float = 1.0) -> float:
    """Retrieval overlap m at load ``alpha``: the branch that starts at m = 1 for
    alpha -> 0 and ends at m_c at alpha_c; 0.0 when alpha > alpha_c (no retrieval
    state).

    Raises
    ------
    ValueError
        rho outside (0, 1] or alpha not a positive finite number.
    """
    a = float(alpha)
    if not (a > 0.0 and math.isfinite(a)):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}.")
    rho = _check_rho(rho)
    D = static_noise(rho)
    alpha_c, m_c = critical_point(rho)
    if a > alpha_c:
        return 0.0
    lo = _erfinv(m_c)
    hi = _Y_HI
    if _alpha(hi, D) > a:  # alpha smaller than the grid reaches: overlap is 1 to double precision
        return 1.0
    for _ in range(200):  # alpha(y) decreases on [y_c, inf): bisection
        mid = 0.5 * (lo + hi)
        if _alpha(mid, D) > a:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-14:
            break
    return math.erf(0.5 * (lo + hi))


def load_at_overlap(m: float, rho: float = 1.0) -> float:
    """The largest load at which the retrieval overlap is still >= ``m``.

    This is what a simulation measures when it counts a pattern as retrieved only with
    final overlap >= m: when m is above the overlap m_c at the critical load (e.g.
    m = 0.97 and sign-clipped synapses, m_c = 0.948), retrieval by that criterion ends
    before alpha_c.  Equals alpha_c when m <= m_c.
    """
    target = float(m)
    if not 0.0 < target < 1.0:
        raise ValueError(f"m must lie in (0, 1), got {m!r}.")
    alpha_c, m_c = critical_point(rho)
    if target <= m_c:
        return alpha_c
    lo, hi = 0.0, alpha_c  # overlap decreases with the load on the retrieval branch
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid > 0 and overlap(mid, rho) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def _erfinv(m: float) -> float:
    lo, hi = 0.0, _Y_HI
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if math.erf(mid) < m:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@lru_cache(maxsize=256)
def predicted_rho(bits: int | None, scheme: str = "uniform", objective: str = "correlation",
                  n_samples: int = 1_000_000, seed: int = 0) -> float:
    """The correlation a quantizer of the core reaches on Gaussian Hebbian sums:
    :func:`quantization.quantize` (one codebook, default gain) applied to ``n_samples``
    standard-normal samples (cached).  ``bits=None`` is the float network (1.0).

    Note: min-max grids depend on the sample maximum, which grows with the number of
    weights, so their rho on an N x N matrix is lower than on this sample.
    """
    if bits is None:
        return 1.0
    x = np.random.default_rng(seed).standard_normal(n_samples)
    return quantize(x, bits, scheme, objective).correlation(x)


def predicted_critical_load(bits: int | None, scheme: str = "uniform", objective: str = "correlation") -> float:
    """critical_load(predicted_rho(bits, scheme, objective))."""
    return critical_load(predicted_rho(bits, scheme, objective))
