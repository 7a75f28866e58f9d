"""Grids and their scores: the shared maths of every numba kernel of the quantization core.

Kernel modules: this one (scheme and objective ids, level formulas, prefix sums,
scoring), ``_fit_parametric.py`` (outer-level search for uniform, exponential, pow2),
``_lloyd.py`` (free codebook: k-means dynamic program and Lloyd iterations),
``_normal.py`` (the NormalFloat scale), ``_encode.py`` (encoding, lookup, bit packing).

No input validation in any of them: every kernel assumes C-contiguous float64 data rows
that are finite and already normalised (``max |y| == 1`` per row, or all zeros), uint8
codes and levels sorted ascending.  The public wrappers in ``_core.py``, ``_packing.py``
and ``_format.py`` validate and convert.  Kernels never raise user-facing errors and
never print.  No ``fastmath``: codes and ties must be exact.

Conventions shared by every kernel
----------------------------------
* A *grid* is a row of ``K = 2**bits`` levels sorted ascending (duplicates allowed).
* Encoding is nearest-level with ties going to the upper level: the code of ``y`` is
  the number of thresholds ``t_j = (L_j + L_{j+1}) / 2`` with ``t_j <= y``.  Scores
  computed on sorted samples use the same rule, so a fitted score is the realised one.
* Fit parameters (``fitp``, normalised units, one row of ``N_FITP`` per codebook row),
  columns named below: ``uniform`` (step, zero_point, 0); ``exponential``/``pow2``
  (c, q, variant); ``lloyd``: the levels themselves (a separate array); ``normal``: its
  scale in column 0, fitted in ``_normal.py``.  The stored float32 parameters are the
  same columns with the scale folded in, followed by the offset (``_core.n_params``).

Numba's on-disk cache is per source file: a kernel compiled into another module's cache
(``grid_score`` inside ``_fit_parametric.fit_parametric``, say) is not recompiled when
only this file changes.  After editing a kernel module, clear ``quantization/__pycache__``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ------------------------------------------------------------------------------ ids
# numba kernels branch on integers; ``_core._SCHEME_ID`` / ``_OBJECTIVE_ID`` map the names

UNIFORM = 0
EXPONENTIAL = 1
POW2 = 2  # exponential with q fixed at 1/2
LLOYD = 3
NORMAL = 4  # fixed NormalFloat table times a scale (see _normal.py)

OBJ_CORRELATION = 0
OBJ_MSE = 1
OBJ_MINMAX = 2

# exponential/pow2 variants: where the exact zero level goes (see exponential_levels)
VARIANT_NO_ZERO = 0  # K/2 magnitudes on each side
VARIANT_ZERO_MORE_POSITIVE = 1  # a zero, K/2 magnitudes above and K/2 - 1 below
VARIANT_ZERO_MORE_NEGATIVE = 2  # the mirror of 1
N_VARIANTS = 3

# columns of fitp (normalised fit parameters, N_FITP per row)
FITP_STEP = 0  # uniform: level spacing
FITP_ZERO_POINT = 1  # uniform: the code of level 0 (may be a half-integer)
FITP_UNUSED = 2  # uniform: always 0
FITP_C = 0  # exponential/pow2: the largest magnitude
FITP_Q = 1  # exponential/pow2: ratio of consecutive magnitudes, 0 < q < 1
FITP_VARIANT = 2  # exponential/pow2: one of the VARIANT_* ids, stored as a float
N_FITP = 3

# columns of the stored params (levels_from_params) beyond the fitp columns they share
UNIFORM_OFFSET = 2
EXPONENTIAL_OFFSET = 3
NORMAL_SCALE = 0
NORMAL_OFFSET = 1

# a grid whose codes barely vary (variance below this times the mean square) has no
# defined Pearson correlation and scores 0
_DEGENERATE_VARIANCE = 1e-12
# lattice_step: gaps below this fraction of the span are ties; at most this many steps;
# a value is on the lattice when its step count is this close to an integer
_LATTICE_TIE = 1e-12
_LATTICE_MAX_STEPS = 65536
_LATTICE_TOL = 1e-3


# ----------------------------------------------------------------------------- grids


@njit(cache=True)
def uniform_levels(step, zero_point, offset, K, out):
    """Levels ``step * (k - zero_point) + offset`` for k = 0..K-1 (ascending for step >= 0)."""
    for k in range(K):
        out[k] = step * (k - zero_point) + offset


@njit(cache=True)
def exponential_levels(c, q, variant, offset, K, out):
    """Sign-magnitude levels ``{±c q^j}`` (+ an exact zero), ascending, all K codes used.

    ``variant`` (VARIANT_*) 0: K/2 magnitudes on each side, no zero.  1: zero, K/2
    magnitudes above and K/2 - 1 below.  2: the mirror of 1.  Magnitudes are built by
    repeated IEEE multiplication in float64, so they are bit-identical on every platform.
    """
    half = K // 2
    if variant == VARIANT_NO_ZERO:
        npos = half
        nneg = half
    elif variant == VARIANT_ZERO_MORE_POSITIVE:
        npos = half
        nneg = half - 1
    else:
        npos = half - 1
        nneg = half
    m = c
    for j in range(max(npos, nneg)):
        if j < nneg:
            out[j] = -m + offset
        if j < npos:
            out[K - 1 - j] = m + offset
        m = m * q
    if variant != VARIANT_NO_ZERO:
        out[nneg] = offset


@njit(cache=True)
def grid_from_fitp(scheme, fitp, K, out):
    """Normalised fit grid of a parametric scheme from its fit parameters ``fitp`` (N_FITP,)."""
    if scheme == UNIFORM:
        uniform_levels(fitp[FITP_STEP], fitp[FITP_ZERO_POINT], 0.0, K, out)
    else:
        exponential_levels(fitp[FITP_C], fitp[FITP_Q], int(fitp[FITP_VARIANT]), 0.0, K, out)


@njit(cache=True)
def levels_from_params(scheme, params, K, table, out):
    """Codebook rows (float32) from stored float32 parameters; one deterministic formula.

    ``params`` is (n_rows, P) float32: uniform (scale, zero_point, offset), exponential
    and pow2 (c, q, variant, offset), lloyd (the K levels), normal (scale, offset) with
    levels ``scale * table[k] + offset`` in float64 (``table``: the K float32 NormalFloat
    levels; ignored by the other schemes).
    """
    buf = np.empty(K, np.float64)
    for r in range(params.shape[0]):
        p = params[r]
        if scheme == UNIFORM:
            uniform_levels(np.float64(p[FITP_STEP]), np.float64(p[FITP_ZERO_POINT]), np.float64(p[UNIFORM_OFFSET]),
                           K, buf)
        elif scheme == LLOYD:
            for k in range(K):
                buf[k] = p[k]
        elif scheme == NORMAL:
            for k in range(K):
                buf[k] = np.float64(p[NORMAL_SCALE]) * np.float64(table[k]) + np.float64(p[NORMAL_OFFSET])
        else:
            exponential_levels(np.float64(p[FITP_C]), np.float64(p[FITP_Q]), int(p[FITP_VARIANT]),
                               np.float64(p[EXPONENTIAL_OFFSET]), K, buf)
        for k in range(K):
            out[r, k] = np.float32(buf[k])


# ---------------------------------------------------------------------------- scoring


@njit(cache=True)
def prefix_sums(s, p1, p2):
    """p1[i] = sum(s[:i]), p2[i] = sum(s[:i]**2)."""
    a = 0.0
    b = 0.0
    p1[0] = 0.0
    p2[0] = 0.0
    for i in range(s.size):
        a += s[i]
        b += s[i] * s[i]
        p1[i + 1] = a
        p2[i + 1] = b


@njit(cache=True)
def grid_sums(s, p1, levels):
    """(sum q, sum q^2, sum s q) of nearest-level encoding of sorted ``s``: O(K log n)."""
    n = s.size
    K = levels.size
    sq = 0.0
    sqq = 0.0
    sxq = 0.0
    start = 0
    for j in range(K):
        if j < K - 1:
            end = np.searchsorted(s, 0.5 * (levels[j] + levels[j + 1]))
        else:
            end = n
        if end > start:
            L = levels[j]
            cnt = end - start
            sq += cnt * L
            sqq += cnt * L * L
            sxq += L * (p1[end] - p1[start])
            start = end
    return sq, sqq, sxq


@njit(cache=True)
def score_from_sums(n, sx, sxx, sq, sqq, sxq, objective, pm):
    """Score of codes q of data x from their sums (sum x, sum x^2, sum q, sum q^2, sum x q).

    correlation: Pearson rho when ``pm`` (preserve_mean: an offset will be stored), else
    the uncentred correlation <x, q>/(|x||q|); 0 when undefined.  mse: minus the squared
    error, after the exact mean shift when ``pm``.  Higher is better."""
    if objective == OBJ_MSE:
        err = sxx - 2.0 * sxq + sqq
        if pm:
            err -= (sx - sq) * (sx - sq) / n
        return -err
    if not pm:
        # no offset will be stored: Q = g q0, so the realisable quality is the
        # uncentred correlation <x, q> / (|x| |q|) (equal to rho for zero-mean rows)
        if sxx <= 0.0 or sqq <= 0.0:
            return 0.0
        return sxq / math.sqrt(sxx * sqq)
    vx = sxx - sx * sx / n
    vq = sqq - sq * sq / n
    cov = sxq - sx * sq / n
    if vx <= 0.0 or vq <= _DEGENERATE_VARIANCE * sqq:
        return 0.0
    return cov / math.sqrt(vx * vq)


@njit(cache=True)
def grid_score(s, p1, p2, levels, objective, pm):
    """Score (see :func:`score_from_sums`) of nearest-level encoding of sorted ``s`` on
    ``levels`` (ties to the upper level), with ``p1``, ``p2`` its :func:`prefix_sums`;
    higher is better."""
    n = s.size
    sq, sqq, sxq = grid_sums(s, p1, levels)
    return score_from_sums(n, p1[n], p2[n], sq, sqq, sxq, objective, pm)


@njit(cache=True)
def lattice_step(s):
    """Spacing d > 0 when every value of sorted ``s`` is s[0] + j d for an integer j
    (integer-valued data, Hebbian weights, already quantized weights) and the span holds
    at most _LATTICE_MAX_STEPS steps; otherwise 0."""
    n = s.size
    span = s[n - 1] - s[0]
    if span <= 0.0:
        return 0.0
    gap = span
    for i in range(1, n):
        g = s[i] - s[i - 1]
        if g > _LATTICE_TIE * span and g < gap:
            gap = g
    steps = round(span / gap)
    if steps > _LATTICE_MAX_STEPS:
        return 0.0
    d = span / steps
    for i in range(n):
        j = (s[i] - s[0]) / d
        if abs(j - round(j)) > _LATTICE_TOL:
            return 0.0
    return d
