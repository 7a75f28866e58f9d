"""The ``normal`` scheme: NormalFloat levels (bitsandbytes' NF4, generalised to 1..8 bits).

The levels of a row are a fixed table ``T`` of ``K = 2**bits`` normal quantiles in
[-1, 1] times a per-row scale, plus an optional offset: ``levels = scale * T + offset``.
Only ``(scale, offset)`` is stored; the table is recomputed on load by the same
deterministic arithmetic, so a saved file gives a bit-identical codebook.

The table (Dettmers et al. 2023, "QLoRA", arXiv:2305.14314; bitsandbytes
``functional.create_normal_map(offset, use_extra_value=True)``): with ``h = K/2``,

* ``h`` positive values ``Phi^-1(p)`` at ``p = linspace(offset, 1/2, h + 1)[:-1]``,
* ``h - 1`` negative values ``-Phi^-1(p)`` at ``p = linspace(offset, 1/2, h)[:-1]``,
* an exact zero,

sorted and divided by the largest value, so the table runs from exactly -1 to exactly 1
and is asymmetric (one more positive level; every code is used).  Arithmetic follows
bitsandbytes step by step: the quantile points in float32 as ``torch.linspace`` makes
them (``step = (1/2 - offset) / (n - 1)`` in float32, ``offset + i step`` for the first
half, ``1/2 - (n-1-i) step`` for the second), ``Phi^-1`` in float64
(``statistics.NormalDist().inv_cdf``, no scipy), the values rounded to float32 and
divided by the largest in float32.  At 4 bits this reproduces bitsandbytes' published
NF4 constants bit for bit.

``offset``: bitsandbytes' 0.9677083 for NF4 is ``1 - (1/(2*15) + 1/(2*16)) / 2`` rounded
to 7 decimals, the mean of the outermost quantile points of 15- and 16-level grids.  For
K levels we use the same rule, ``round(1 - (1/(K-1) + 1/K) / 4, 7)``.  At 1 bit that rule
gives the one-sided table {0, 1}, which cannot represent a sign; the 1-bit table is
{-1, 1} instead (``sign(w)`` times the scale).

Fits (normalised rows, ``max |y| = 1``): ``minmax`` keeps ``scale = 1`` (bitsandbytes'
absmax).  ``mse`` and ``correlation`` choose the scale ``alpha`` in ``[lo, 1]``.  For a
fixed table the codes change only where ``alpha t_j = y_i`` (``t_j`` a midpoint of the
table), so the score is a known function on each interval between these breakpoints:
quadratic in alpha for the squared error, constant for the correlation (the codes
alone decide it).  :func:`fit_normal` sweeps all breakpoints in order and returns the
exact optimum over ``[lo, 1]`` when there are at most ``max_events`` of them (about
``n * K/2``); longer rows get a coarse log scan plus golden-section refinement, as the
other parametric schemes.  The minmax grid is always a candidate.

Numba's on-disk cache does not notice edits to the ``_grids.py`` and ``_fit_parametric.py``
functions these kernels call (``grid_score``, ``grid_sums``, ...); after changing those, clear
``quantization/__pycache__`` (or touch this file).
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np
from numba import njit, prange

from ._fit_parametric import _search_alpha
from ._grids import NORMAL, OBJ_MINMAX, OBJ_MSE, grid_score, prefix_sums, score_from_sums

NF4_OFFSET = 0.9677083  # bitsandbytes' create_normal_map default
MAX_EVENTS = 1 << 18  # exact breakpoint sweep up to this many code changes per row
_NUDGE = 1e-12  # relative distance kept from a breakpoint, so the chosen codes are the swept ones


def normal_offset(bits: int) -> float:
    """Outermost quantile point of the ``bits``-bit table: ``round(1 - (1/(K-1) + 1/K)/4, 7)``."""
    K = 1 << bits
    return round(1.0 - (1.0 / (K - 1) + 1.0 / K) / 4.0, 7)


def _linspace32(start: float, end: float, n: int) -> list[float]:
    """float32 points as ``torch.linspace(start, end, n)`` builds them (scalar path)."""
    a, b = np.float32(start), np.float32(end)
    step = np.float32((b - a) / np.float32(n - 1))
    return [float(a + step * np.float32(i)) if i < n // 2 else float(b - step * np.float32(n - 1 - i))
            for i in range(n)]


@functools.lru_cache(maxsize=None)
def _table(bits: int) -> np.ndarray:
    if bits == 1:
        t = np.array([-1.0, 1.0], np.float32)
    else:
        inv = NormalDist().inv_cdf
        half = 1 << (bits - 1)
        off = normal_offset(bits)
        pos = [inv(p) for p in _linspace32(off, 0.5, half + 1)[:-1]]
        neg = [-inv(p) for p in _linspace32(off, 0.5, half)[:-1]]
        v = np.sort(np.array(pos + [0.0] + neg, np.float32))
        t = v / v.max()  # float32 division, as bitsandbytes
    t.flags.writeable = False
    return t


def normal_table(bits: int) -> np.ndarray:
    """The ``2**bits`` NormalFloat levels in [-1, 1], ascending, float32 (read-only).

    At 4 bits this equals bitsandbytes' NF4 table.  See the module docstring for the
    construction and its generalisation to 1..8 bits.
    """
    return _table(int(bits))


# ------------------------------------------------------------------------------ fits


@njit(cache=True)
def _interval_score(n, sx, sxx, sq, sqq, sxq, objective, pm, lower, upper):
    """Best score and alpha on the open interval (lower, upper) where the codes are fixed;
    ``sq, sqq, sxq`` are the table-unit sums (alpha = 1) of those codes."""
    if objective == OBJ_MSE:
        a = sqq - sq * sq / n if pm else sqq
        b = sxq - sx * sq / n if pm else sxq
        c0 = sxx - sx * sx / n if pm else sxx
        d = min(0.5 * (upper - lower), _NUDGE * upper)
        t = b / a if a > 0.0 else upper
        t = min(max(t, lower + d), upper - d)
        return -(c0 - 2.0 * t * b + t * t * a), t
    return score_from_sums(n, sx, sxx, sq, sqq, sxq, objective, pm), 0.5 * (lower + upper)


@njit(cache=True)
def _count_events(s, thr, lo):
    n = s.size
    E = 0
    for i in range(n):
        y = s[i]
        if y > 0.0:
            E += np.searchsorted(thr, y / lo, side="right") - np.searchsorted(thr, y, side="right")
        elif y < 0.0:
            E += np.searchsorted(thr, y, side="right") - np.searchsorted(thr, y / lo, side="left")
    return E


@njit(cache=True)
def _sweep(s, p1, p2, T, lo, objective, pm, E):
    """Exact best (score, alpha) over alpha in [lo, 1) for the grid alpha*T on sorted ``s``.

    Walking alpha down from 1, element y > 0 moves up one level each time alpha passes
    y / t_j for a positive midpoint t_j (in increasing j), and y < 0 moves down one level
    as alpha passes y / t_j for a negative t_j (in decreasing j); the per-code sums are
    updated at each of these ``E`` events and every interval between them is scored.
    """
    n = s.size
    K = T.size
    thr = np.empty(K - 1)
    for j in range(K - 1):
        thr[j] = 0.5 * (T[j] + T[j + 1])
    eb = np.empty(E)
    ei = np.empty(E, np.int64)
    ej = np.empty(E, np.int64)
    sq = 0.0
    sqq = 0.0
    sxq = 0.0
    e = 0
    for i in range(n):
        y = s[i]
        c = np.searchsorted(thr, y, side="right")
        L = T[c]
        sq += L
        sqq += L * L
        sxq += y * L
        if y > 0.0:
            for j in range(c, np.searchsorted(thr, y / lo, side="right")):
                eb[e] = y / thr[j]
                ei[e] = i
                ej[e] = j + 1  # new code
                e += 1
        elif y < 0.0:
            for j in range(c - 1, np.searchsorted(thr, y / lo, side="left") - 1, -1):
                eb[e] = y / thr[j]
                ei[e] = i
                ej[e] = j
                e += 1
    order = np.argsort(-eb, kind="mergesort")
    sx = p1[n]
    sxx = p2[n]
    best = -np.inf
    best_a = 1.0
    upper = 1.0
    k = 0
    while True:
        lower = eb[order[k]] if k < E else lo
        if upper > lower:
            sc, a = _interval_score(n, sx, sxx, sq, sqq, sxq, objective, pm, lower, upper)
            if sc > best:
                best = sc
                best_a = a
        if k >= E:
            break
        while k < E and eb[order[k]] == lower:
            i = ei[order[k]]
            jn = ej[order[k]]
            y = s[i]
            old = T[jn - 1] if y > 0.0 else T[jn + 1]
            new = T[jn]
            sq += new - old
            sqq += new * new - old * old
            sxq += y * (new - old)
            k += 1
        upper = lower
    return best, best_a


@njit(cache=True)
def _scaled(T, alpha, out):
    for k in range(T.size):
        out[k] = alpha * T[k]


@njit(cache=True)
def fit_normal_row(s, T, objective, pm, rms, max_events):
    """Scale alpha in [lo, 1] of the grid ``alpha * T`` for one normalised sorted row."""
    n = s.size
    K = T.size
    p1 = np.empty(n + 1)
    p2 = np.empty(n + 1)
    prefix_sums(s, p1, p2)
    buf = np.empty(K)
    best = grid_score(s, p1, p2, T, objective, pm)  # minmax: alpha = 1
    best_a = 1.0
    lo = max(min(rms / 8.0, 0.5), 1e-6)
    thr = np.empty(K - 1)
    for j in range(K - 1):
        thr[j] = 0.5 * (T[j] + T[j + 1])
    E = _count_events(s, thr, lo)
    if E <= max_events:
        sc, a = _sweep(s, p1, p2, T, lo, objective, pm, E)
    else:
        sc, a = _search_alpha(s, p1, p2, NORMAL, 0.0, 0.0, K, T, lo, objective, pm, buf)  # long rows
    _scaled(T, a, buf)
    sc = grid_score(s, p1, p2, buf, objective, pm)  # the realised score decides
    if sc > best:
        best_a = a
    return best_a


@njit(cache=True, parallel=True)
def fit_normal(Y, nonconst, T, objective, pm, rms, max_events, alpha, fit_levels):
    """Fit the scale of every normalised row of ``Y`` (n_rows, n) for the table ``T``
    (float64, ascending).  Writes alpha (n_rows,) and fit_levels = alpha * T; rows with
    nonconst == 0 get alpha = 0 and an all-zero grid."""
    for r in prange(Y.shape[0]):
        a = 0.0
        if nonconst[r] and objective == OBJ_MINMAX:
            a = 1.0
        elif nonconst[r]:
            a = fit_normal_row(np.sort(Y[r]), T, objective, pm, rms[r], max_events)
        alpha[r] = a
        for k in range(T.size):
            fit_levels[r, k] = a * T[k]
