"""Parametric fits: the grid parameters of ``uniform``, ``exponential`` and ``pow2`` rows.

Each row's fit starts from the min-max grid and keeps a candidate only when it scores
better under the target objective (see ``_grids.score_from_sums``).

* uniform: for each of three zero points, the outer level ``alpha`` is searched by
  :func:`search_alpha` (a log-spaced coarse scan, then golden-section refinement of its
  best local maxima); lattice-valued rows also try every step that is a multiple of the
  lattice spacing.
* exponential/pow2: a coarse grid over (variant, q, alpha), then compass searches in
  (log alpha, log q) from its best points (:func:`_fit_exponential_row`).

Both searches score every coarse point under both objectives (the same segment sums give
both) and also climb from the best point of the other objective: the score is jagged on
lattice-valued data (Hebbian weights), where a single local search often stops on a
lesser peak.  Conventions (normalised sorted rows, ``fitp`` columns, ties): ``_grids.py``.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange

from ._grids import (
    FITP_C,
    FITP_Q,
    FITP_STEP,
    FITP_UNUSED,
    FITP_VARIANT,
    FITP_ZERO_POINT,
    N_FITP,
    N_VARIANTS,
    NORMAL,
    OBJ_CORRELATION,
    OBJ_MINMAX,
    OBJ_MSE,
    POW2,
    UNIFORM,
    VARIANT_NO_ZERO,
    VARIANT_ZERO_MORE_POSITIVE,
    exponential_levels,
    grid_from_fitp,
    grid_score,
    grid_sums,
    lattice_step,
    prefix_sums,
    score_from_sums,
    uniform_levels,
)

SortedRow = namedtuple("SortedRow", ["s", "p1", "p2", "pm", "grid"])
SortedRow.__doc__ = """One normalised row being fitted.

s : sorted data (n,); p1, p2 : its prefix sums (n + 1,) (``_grids.prefix_sums``);
pm : preserve_mean (an offset will be stored; decides the score); grid : scratch (K,)
holding the grid being scored.  Kernels that loop unpack it once
(``s, p1, p2, pm, grid = row``): reading an array field inside a loop costs a
reference-count update per read (3% of an exponential fit)."""

AlphaFamily = namedtuple("AlphaFamily", ["scheme", "zero_point", "variant", "q", "table"])
AlphaFamily.__doc__ = """Grids with one free parameter, the outer level alpha (largest magnitude).

uniform: ``zero_point`` fixed, step ``alpha / max(z, K - 1 - z)``; exponential/pow2:
``variant`` and ratio ``q`` fixed, c = alpha; NORMAL: ``alpha * table`` (``table``
ignored by the other schemes)."""

# alpha is searched in [lo, 1] with lo = rms / _LO_RMS_DIVISOR of the normalised row,
# kept within [_LO_MIN, _LO_MAX] (an outer level far below the rms would clip most of the row)
_LO_RMS_DIVISOR = 8.0
_LO_MAX = 0.5
_LO_MIN = 1e-6
_COARSE_ALPHA = 48  # log-spaced candidates of alpha in the coarse scan of search_alpha
_REFINE = 3  # local maxima (best coarse points) of the target objective refined
_INV_PHI = 0.6180339887498949  # 1 / golden ratio
_GOLDEN_ITERS = 24  # golden-section steps: the bracket (two coarse steps) shrinks by 0.618**24 ~ 1e-5
_N_ZERO_POINTS = 3  # uniform zero points tried, see _zero_point
_LATTICE_MAX_MULTIPLES = 1024  # lattice-valued rows: steps m * d tried only when m stays below this
# exponential q grid (_q_grid): _COARSE_RATIO values linear in q on
# [_Q_LINEAR_LO, _Q_LINEAR_LO + _Q_LINEAR_SPAN], and _COARSE_RATIO values whose
# smallest/largest magnitude ratio is log-spaced in [_Q_RATIO_MIN, _Q_RATIO_MAX]
_COARSE_RATIO = 10
_Q_LINEAR_LO = 0.05
_Q_LINEAR_SPAN = 0.9
_Q_RATIO_MIN = 1e-5
_Q_RATIO_MAX = 0.9
_POW2_Q = 0.5  # pow2 (and a single magnitude): q is fixed
_COARSE_ALPHA_EXP = 24  # log-spaced alpha candidates per (variant, q) of the exponential coarse grid
_COMPASS_ROUNDS = 80  # at most this many compass rounds
_COMPASS_LOG_Q_STEP = 0.1  # first step in log q (the first step in log alpha is the coarse spacing)
_COMPASS_MIN_STEP = 1e-4  # stop once both steps (log units) are below this


@njit(cache=True)
def _other_objective(objective):
    """The objective whose landscape is also climbed (see the module docstring)."""
    return OBJ_MSE if objective == OBJ_CORRELATION else OBJ_CORRELATION


@njit(cache=True)
def alpha_lower_bound(rms):
    """Smallest outer level searched for a normalised row of root mean square ``rms``."""
    return max(min(rms / _LO_RMS_DIVISOR, _LO_MAX), _LO_MIN)


@njit(cache=True)
def _outer_steps(z, K):
    """Steps from the zero point ``z`` to the farthest level of a K-level uniform grid."""
    return max(z, K - 1 - z)


@njit(cache=True)
def _zero_point(i, K):
    """Uniform zero point candidate ``i``: 0 symmetric (K-1)/2 (no zero level), 1 K/2 (a
    zero, one more level below), 2 K/2 - 1 (a zero, one more level above)."""
    if i == 0:
        return 0.5 * (K - 1)
    if i == 1:
        return 0.5 * K
    return 0.5 * K - 1.0


@njit(cache=True)
def _grid(family, alpha, out):
    """The grid of ``family`` (an :data:`AlphaFamily`) with outer level ``alpha``."""
    K = out.size
    if family.scheme == NORMAL:
        table = family.table
        for k in range(table.size):
            out[k] = alpha * table[k]
    elif family.scheme == UNIFORM:
        z = family.zero_point
        uniform_levels(alpha / _outer_steps(z, K), z, 0.0, K, out)
    else:
        exponential_levels(alpha, family.q, family.variant, 0.0, K, out)


@njit(cache=True)
def _golden(row, family, objective, bracket, incumbent):
    """Golden-section search for a maximum of the score in log-alpha on ``bracket``
    (a, b); returns the best (score, log-alpha) seen, starting from ``incumbent``."""
    s, p1, p2, pm, grid = row
    a, b = bracket
    best, best_t = incumbent
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    _grid(family, math.exp(c), grid)
    fc = grid_score(s, p1, p2, grid, objective, pm)
    _grid(family, math.exp(d), grid)
    fd = grid_score(s, p1, p2, grid, objective, pm)
    for _ in range(_GOLDEN_ITERS):
        if fc > best:
            best = fc
            best_t = c
        if fd > best:
            best = fd
            best_t = d
        if fc >= fd:
            b = d
            d = c
            fd = fc
            c = b - _INV_PHI * (b - a)
            _grid(family, math.exp(c), grid)
            fc = grid_score(s, p1, p2, grid, objective, pm)
        else:
            a = c
            c = d
            fc = fd
            d = a + _INV_PHI * (b - a)
            _grid(family, math.exp(d), grid)
            fd = grid_score(s, p1, p2, grid, objective, pm)
    return best, best_t


@njit(cache=True)
def search_alpha(row, family, lo, objective):
    """Best outer level alpha in [lo, 1] of ``family`` for the target ``objective``.

    A log-spaced coarse scan scores every grid under both objectives; golden-section
    refinement then climbs the ``_REFINE`` best local maxima of the target landscape and
    the best one of the other, and every point is judged by the target.  Returns
    (score, alpha).
    """
    s, p1, p2, pm, grid = row
    n = s.size
    sx = p1[n]
    sxx = p2[n]
    other = _other_objective(objective)
    llo = math.log(lo)
    step = -llo / (_COARSE_ALPHA - 1)
    scores = np.empty((2, _COARSE_ALPHA))  # landscape 0: the target objective, 1: the other
    best = -np.inf
    best_t = 0.0
    for i in range(_COARSE_ALPHA):
        _grid(family, math.exp(llo + step * i), grid)
        sq, sqq, sxq = grid_sums(s, p1, grid)
        scores[0, i] = score_from_sums(n, sx, sxx, sq, sqq, sxq, objective, pm)
        scores[1, i] = score_from_sums(n, sx, sxx, sq, sqq, sxq, other, pm)
        if scores[0, i] > best:
            best = scores[0, i]
            best_t = llo + step * i
    done = np.zeros((2, _COARSE_ALPHA), np.bool_)
    for land in range(2):
        obj = objective if land == 0 else other
        for _ in range(_REFINE if land == 0 else 1):
            bi = -1  # the best coarse local maximum not refined yet
            for i in range(_COARSE_ALPHA):
                if done[land, i]:
                    continue
                if (i > 0 and scores[land, i - 1] > scores[land, i]) or (
                        i < _COARSE_ALPHA - 1 and scores[land, i + 1] > scores[land, i]):
                    continue
                if bi < 0 or scores[land, i] > scores[land, bi]:
                    bi = i
            if bi < 0:
                break
            done[land, bi] = True
            t = llo + step * bi
            sc, tt = _golden(row, family, obj, (max(llo, t - step), min(0.0, t + step)), (scores[land, bi], t))
            if land == 1:
                _grid(family, math.exp(tt), grid)
                sc = grid_score(s, p1, p2, grid, objective, pm)
            if sc > best:
                best = sc
                best_t = tt
    return best, math.exp(best_t)


@njit(cache=True)
def _search_alpha(s, p1, p2, scheme, shape_a, shape_b, K, table, lo, objective, pm, buf):
    """Positional form of :func:`search_alpha`, as ``_normal.py`` calls it: ``shape_a``
    is the zero point (uniform) or the variant (exponential), ``shape_b`` the ratio q,
    ``buf`` the (K,) scratch grid."""
    family = AlphaFamily(scheme, shape_a, int(shape_a), shape_b, table)
    return search_alpha(SortedRow(s, p1, p2, pm, buf), family, lo, objective)


@njit(cache=True)
def minmax_fitp(scheme, K, out):
    """The naive baseline in normalised units (max |y| = 1), written to ``out`` (N_FITP,).

    uniform: 1 bit ±max; otherwise step = max / (K/2 - 1), zero point K/2 (the integer
    grid -K/2..K/2-1 of symmetric round-to-nearest).  exponential/pow2: c = max, q = 1/2,
    with a zero level (1 bit: ±max).
    """
    if scheme == UNIFORM:
        if K == 2:
            out[FITP_STEP] = 2.0  # levels 2 * (0 - 1/2) = -1 and 2 * (1 - 1/2) = 1
            out[FITP_ZERO_POINT] = 0.5
        else:
            out[FITP_STEP] = 1.0 / (K // 2 - 1)
            out[FITP_ZERO_POINT] = K // 2
        out[FITP_UNUSED] = 0.0
    else:
        out[FITP_C] = 1.0
        out[FITP_Q] = _POW2_Q
        out[FITP_VARIANT] = VARIANT_NO_ZERO if K == 2 else VARIANT_ZERO_MORE_POSITIVE


@njit(cache=True)
def _fit_uniform_row(row, lo, objective, best, fitp):
    """uniform: search alpha for each zero point, then (lattice-valued rows) the steps
    that are multiples of the lattice spacing; improves ``fitp`` on ``best``."""
    s, p1, p2, pm, grid = row
    K = grid.size
    for zi in range(_N_ZERO_POINTS):
        z = _zero_point(zi, K)
        sc, alpha = search_alpha(row, AlphaFamily(UNIFORM, z, 0, 0.0, grid[:0]), lo, objective)
        if sc > best:
            best = sc
            fitp[FITP_STEP] = alpha / _outer_steps(z, K)
            fitp[FITP_ZERO_POINT] = z
            fitp[FITP_UNUSED] = 0.0
    # lattice-valued rows: steps that are multiples of the lattice spacing, so the
    # grid can hit the values exactly (up to a grid spanning the whole row)
    d = lattice_step(s)
    if d > 0.0:
        mmax = int(2.0 / (d * (K - 1))) + 2  # past the step whose grid spans [-1, 1]
        if mmax <= _LATTICE_MAX_MULTIPLES:
            for m in range(1, mmax + 1):
                for zi in range(_N_ZERO_POINTS):
                    z = _zero_point(zi, K)
                    uniform_levels(m * d, z, 0.0, K, grid)
                    sc = grid_score(s, p1, p2, grid, objective, pm)
                    if sc > best:
                        best = sc
                        fitp[FITP_STEP] = m * d
                        fitp[FITP_ZERO_POINT] = z
                        fitp[FITP_UNUSED] = 0.0


@njit(cache=True)
def _q_grid(scheme, nmag):
    """Candidate ratios q: 1/2 for pow2 or a single magnitude; otherwise a linear grid
    on [0.05, 0.95] (fine for few magnitudes) joined with q = r^(1/(nmag-1)) for
    log-spaced smallest/largest ratios r in [1e-5, 0.9] (q near 1 for 7-8 bits)."""
    if scheme == POW2 or nmag < 2:
        return np.array([_POW2_Q])
    out = np.empty(2 * _COARSE_RATIO)
    for i in range(_COARSE_RATIO):
        out[i] = _Q_LINEAR_LO + _Q_LINEAR_SPAN * i / (_COARSE_RATIO - 1)
        lr = math.log(_Q_RATIO_MIN) + (math.log(_Q_RATIO_MAX) - math.log(_Q_RATIO_MIN)) * i / (_COARSE_RATIO - 1)
        out[_COARSE_RATIO + i] = math.exp(lr / (nmag - 1))
    return out


@njit(cache=True)
def _compass(row, objective, variant, free_q, start, steps):
    """Compass search maximising ``objective`` over (log alpha, log q) of the exponential
    grid of ``variant`` from ``start`` = (log alpha, log q, its score) with first
    ``steps`` = (in log alpha, in log q); q stays put unless ``free_q``.  Returns the
    final (log alpha, log q)."""
    s, p1, p2, pm, grid = row
    K = grid.size
    ta, tq, sc = start
    da, dq = steps
    for _ in range(_COMPASS_ROUNDS):
        improved = False
        for dirn in range(4):  # +alpha, -alpha, +q, -q
            if dirn >= 2 and not free_q:
                break
            na = ta + (da if dirn == 0 else (-da if dirn == 1 else 0.0))
            nq = tq + (dq if dirn == 2 else (-dq if dirn == 3 else 0.0))
            if na > 0.0 or nq >= 0.0:  # alpha <= 1, q < 1
                continue
            exponential_levels(math.exp(na), math.exp(nq), variant, 0.0, K, grid)
            x = grid_score(s, p1, p2, grid, objective, pm)
            if x > sc:
                sc = x
                ta = na
                tq = nq
                improved = True
        if not improved:
            da *= 0.5
            dq *= 0.5
            if da < _COMPASS_MIN_STEP and dq < _COMPASS_MIN_STEP:
                break
    return ta, tq


@njit(cache=True)
def _fit_exponential_row(row, scheme, lo, objective, best, fitp):
    """exponential/pow2: a joint coarse grid over (variant, q, alpha) scored under both
    objectives, then compass searches from the ``_REFINE`` best target points and the
    best point of the other objective, each judged by the target; improves ``fitp`` on
    ``best``."""
    s, p1, p2, pm, grid = row
    K = grid.size
    n = s.size
    sx = p1[n]
    sxx = p2[n]
    other = _other_objective(objective)
    qs = _q_grid(scheme, K // 2)
    nq = qs.size
    llo = math.log(lo)
    da = -llo / (_COARSE_ALPHA_EXP - 1)
    sc = np.empty((2, N_VARIANTS, nq, _COARSE_ALPHA_EXP))  # [0]: target objective, [1]: the other
    for v in range(N_VARIANTS):
        for qi in range(nq):
            for ai in range(_COARSE_ALPHA_EXP):
                exponential_levels(math.exp(llo + da * ai), qs[qi], v, 0.0, K, grid)
                sq, sqq, sxq = grid_sums(s, p1, grid)
                sc[0, v, qi, ai] = score_from_sums(n, sx, sxx, sq, sqq, sxq, objective, pm)
                sc[1, v, qi, ai] = score_from_sums(n, sx, sxx, sq, sqq, sxq, other, pm)
    free_q = nq > 1
    for land in range(2):
        obj = objective if land == 0 else other
        flat = sc[land].ravel()
        order = np.argsort(-flat)
        for r in range(_REFINE if land == 0 else 1):
            idx = order[r]
            v = idx // (nq * _COARSE_ALPHA_EXP)
            qi = (idx // _COARSE_ALPHA_EXP) % nq
            ai = idx % _COARSE_ALPHA_EXP
            ta, tq = _compass(row, obj, v, free_q, (llo + da * ai, math.log(qs[qi]), flat[idx]),
                              (da, _COMPASS_LOG_Q_STEP))
            exponential_levels(math.exp(ta), math.exp(tq), v, 0.0, K, grid)
            x = grid_score(s, p1, p2, grid, objective, pm)
            if x > best:
                best = x
                fitp[FITP_C] = math.exp(ta)
                fitp[FITP_Q] = math.exp(tq)
                fitp[FITP_VARIANT] = v


@njit(cache=True)
def sorted_row(y, pm, K):
    """A :data:`SortedRow` of the normalised row ``y`` with a scratch grid of K levels."""
    s = np.sort(y)
    n = s.size
    p1 = np.empty(n + 1)
    p2 = np.empty(n + 1)
    prefix_sums(s, p1, p2)
    return SortedRow(s, p1, p2, pm, np.empty(K))


@njit(cache=True)
def _fit_parametric_row(row, scheme, objective, rms, fitp):
    """Fit one :data:`SortedRow` of root mean square ``rms``; writes ``fitp`` (N_FITP,)."""
    K = row.grid.size
    minmax_fitp(scheme, K, fitp)
    if objective == OBJ_MINMAX:
        return
    grid_from_fitp(scheme, fitp, K, row.grid)
    best = grid_score(row.s, row.p1, row.p2, row.grid, objective, row.pm)
    lo = alpha_lower_bound(rms)
    if scheme == UNIFORM:
        _fit_uniform_row(row, lo, objective, best, fitp)
    else:
        _fit_exponential_row(row, scheme, lo, objective, best, fitp)


@njit(cache=True, parallel=True)
def fit_parametric(Y, nonconst, scheme, K, objective, pm, rms, fitp, fit_levels):
    """Fit every row of normalised data ``Y`` (n_rows, n) with the parametric ``scheme``
    of ``K`` levels for ``objective`` (``pm``: preserve_mean; ``rms``: (n_rows,) root mean
    squares of the rows).  Rows with nonconst == 0 get an all-zero grid.  Writes fitp
    (n_rows, N_FITP) and fit_levels (n_rows, K)."""
    for r in prange(Y.shape[0]):
        if nonconst[r] and objective == OBJ_MINMAX:
            minmax_fitp(scheme, K, fitp[r])  # needs no sort
            grid_from_fitp(scheme, fitp[r], K, fit_levels[r])
        elif nonconst[r]:
            _fit_parametric_row(sorted_row(Y[r], pm, K), scheme, objective, rms[r], fitp[r])
            grid_from_fitp(scheme, fitp[r], K, fit_levels[r])
        else:
            for j in range(N_FITP):
                fitp[r, j] = 0.0
            for k in range(K):
                fit_levels[r, k] = 0.0
