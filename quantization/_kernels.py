"""Numba kernels of the quantization core.

No input validation here: every kernel assumes C-contiguous float64 data rows that are
finite and already normalised (``max |y| == 1`` per row, or all zeros), uint8 codes and
levels sorted ascending.  The public wrappers in ``_core.py``, ``_packing.py`` and
``_format.py`` validate and convert.  Kernels never raise user-facing errors and never
print.  No ``fastmath``: codes and ties must be exact.

Conventions shared by every kernel
----------------------------------
* A *grid* is a row of ``K = 2**bits`` levels sorted ascending (duplicates allowed).
* Encoding is nearest-level with ties going to the upper level: the code of ``y`` is
  the number of thresholds ``t_j = (L_j + L_{j+1}) / 2`` with ``t_j <= y``.  Scores
  computed on sorted samples use the same rule, so a fitted score is the realised one.
* Fit parameters (``fitp``, normalised units) per scheme:
  ``uniform``: (step, zero_point, 0); ``exponential``/``pow2``: (c, q, variant);
  ``lloyd``: the levels themselves (a separate array); ``normal``: its scale, fitted
  in ``_normal.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

UNIFORM = 0
EXPONENTIAL = 1
POW2 = 2
LLOYD = 3
NORMAL = 4  # fixed NormalFloat table times a scale (see _normal.py)

OBJ_CORRELATION = 0
OBJ_MSE = 1
OBJ_MINMAX = 2

_COARSE_ALPHA = 48  # coarse log-spaced candidates of the outer level
_GOLDEN_ITERS = 24
_REFINE = 3  # local maxima of the coarse scan refined by golden section
_COARSE_RATIO = 10  # per half of the exponential q grid (see _q_grid)
_COARSE_ALPHA_EXP = 24  # outer-level candidates per (variant, q) of the exponential grid
_INV_PHI = 0.6180339887498949


# ----------------------------------------------------------------------------- grids


@njit(cache=True)
def uniform_levels(step, zero_point, offset, K, out):
    """Levels ``step * (k - zero_point) + offset`` for k = 0..K-1 (ascending for step >= 0)."""
    for k in range(K):
        out[k] = step * (k - zero_point) + offset


@njit(cache=True)
def exponential_levels(c, q, variant, offset, K, out):
    """Sign-magnitude levels ``{±c q^j}`` (+ an exact zero), ascending, all K codes used.

    ``variant`` 0: K/2 magnitudes on each side, no zero.  1: zero, K/2 magnitudes above
    and K/2 - 1 below.  2: the mirror of 1.  Magnitudes are built by repeated IEEE
    multiplication in float64, so they are bit-identical on every platform.
    """
    half = K // 2
    if variant == 0:
        npos = half
        nneg = half
    elif variant == 1:
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
    if variant != 0:
        out[nneg] = offset


@njit(cache=True)
def grid_from_fitp(scheme, p0, p1, p2, K, out):
    """Normalised fit grid of a parametric scheme from its fit parameters."""
    if scheme == UNIFORM:
        uniform_levels(p0, p1, 0.0, K, out)
    else:
        exponential_levels(p0, p1, int(p2), 0.0, K, out)


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
        if scheme == UNIFORM:
            uniform_levels(np.float64(params[r, 0]), np.float64(params[r, 1]), np.float64(params[r, 2]), K, buf)
        elif scheme == LLOYD:
            for k in range(K):
                buf[k] = params[r, k]
        elif scheme == NORMAL:
            for k in range(K):
                buf[k] = np.float64(params[r, 0]) * np.float64(table[k]) + np.float64(params[r, 1])
        else:
            exponential_levels(
                np.float64(params[r, 0]), np.float64(params[r, 1]), int(params[r, 2]), np.float64(params[r, 3]), K, buf
            )
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
    """correlation: Pearson rho when ``pm`` (preserve_mean: an offset will be stored),
    else the uncentred correlation <s, Q>/(|s||Q|); 0 when undefined.  mse: minus the
    squared error, after the exact mean shift when ``pm``.  Higher is better."""
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
    if vx <= 0.0 or vq <= 1e-12 * sqq:
        return 0.0
    return cov / math.sqrt(vx * vq)


@njit(cache=True)
def grid_score(s, p1, p2, levels, objective, pm):
    """Score (see :func:`score_from_sums`) of nearest-level encoding of sorted ``s`` on
    ``levels`` (ties to the upper level); higher is better."""
    n = s.size
    sq, sqq, sxq = grid_sums(s, p1, levels)
    return score_from_sums(n, p1[n], p2[n], sq, sqq, sxq, objective, pm)


@njit(cache=True)
def lattice_step(s):
    """Spacing d > 0 when every value of sorted ``s`` is s[0] + j d for an integer j
    (integer-valued data, Hebbian weights, already quantized weights) and the span holds
    at most 2**16 steps; otherwise 0."""
    n = s.size
    span = s[n - 1] - s[0]
    if span <= 0.0:
        return 0.0
    gap = span
    for i in range(1, n):
        g = s[i] - s[i - 1]
        if g > 1e-12 * span and g < gap:
            gap = g
    steps = round(span / gap)
    if steps > 65536:
        return 0.0
    d = span / steps
    for i in range(n):
        j = (s[i] - s[0]) / d
        if abs(j - round(j)) > 1e-3:
            return 0.0
    return d


@njit(cache=True)
def _outer_steps(z, K):
    return max(z, K - 1 - z)


@njit(cache=True)
def _alpha_grid(scheme, alpha, shape_a, shape_b, K, out):
    """Grid whose largest magnitude is ``alpha`` (uniform: shape_a = zero point;
    exponential: shape_a = variant, shape_b = q)."""
    if scheme == UNIFORM:
        uniform_levels(alpha / _outer_steps(shape_a, K), shape_a, 0.0, K, out)
    else:
        exponential_levels(alpha, shape_b, int(shape_a), 0.0, K, out)


@njit(cache=True)
def _grid(scheme, alpha, shape_a, shape_b, K, table, out):
    """``_alpha_grid``, or for NORMAL the fixed ``table`` scaled by ``alpha``."""
    if scheme == NORMAL:
        for k in range(table.size):
            out[k] = alpha * table[k]
    else:
        _alpha_grid(scheme, alpha, shape_a, shape_b, K, out)


@njit(cache=True)
def _golden(s, p1, p2, scheme, shape_a, shape_b, K, table, objective, pm, buf, a, b, best, best_t):
    """Golden-section search for a maximum of the score in log-alpha on [a, b]; returns
    the best (score, log-alpha) seen, starting from (best, best_t)."""
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    _grid(scheme, math.exp(c), shape_a, shape_b, K, table, buf)
    fc = grid_score(s, p1, p2, buf, objective, pm)
    _grid(scheme, math.exp(d), shape_a, shape_b, K, table, buf)
    fd = grid_score(s, p1, p2, buf, objective, pm)
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
            _grid(scheme, math.exp(c), shape_a, shape_b, K, table, buf)
            fc = grid_score(s, p1, p2, buf, objective, pm)
        else:
            a = c
            c = d
            fc = fd
            d = a + _INV_PHI * (b - a)
            _grid(scheme, math.exp(d), shape_a, shape_b, K, table, buf)
            fd = grid_score(s, p1, p2, buf, objective, pm)
    return best, best_t


@njit(cache=True)
def _search_alpha(s, p1, p2, scheme, shape_a, shape_b, K, table, lo, objective, pm, buf):
    """Best outer magnitude in [lo, 1] for the target ``objective``.

    A log-spaced coarse scan scores every grid under both objectives (the same segment
    sums give both); golden-section refinement then climbs the ``_REFINE`` best local
    maxima of the target landscape and the best one of the other, and every point is
    judged by the target.  The score is jagged on lattice-valued data (Hebbian weights),
    where a single local search often stops on a lesser peak.  ``table`` is the NORMAL
    scheme's fixed levels (ignored by the others).  Returns (score, alpha).
    """
    n = s.size
    sx = p1[n]
    sxx = p2[n]
    other = OBJ_MSE if objective == OBJ_CORRELATION else OBJ_CORRELATION
    llo = math.log(lo)
    step = -llo / (_COARSE_ALPHA - 1)
    scores = np.empty((2, _COARSE_ALPHA))
    best = -np.inf
    best_t = 0.0
    for i in range(_COARSE_ALPHA):
        _grid(scheme, math.exp(llo + step * i), shape_a, shape_b, K, table, buf)
        sq, sqq, sxq = grid_sums(s, p1, buf)
        scores[0, i] = score_from_sums(n, sx, sxx, sq, sqq, sxq, objective, pm)
        scores[1, i] = score_from_sums(n, sx, sxx, sq, sqq, sxq, other, pm)
        if scores[0, i] > best:
            best = scores[0, i]
            best_t = llo + step * i
    done = np.zeros((2, _COARSE_ALPHA), np.bool_)
    for land in range(2):
        obj = objective if land == 0 else other
        for _ in range(_REFINE if land == 0 else 1):
            bi = -1
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
            sc, tt = _golden(s, p1, p2, scheme, shape_a, shape_b, K, table, obj, pm, buf,
                             max(llo, t - step), min(0.0, t + step), scores[land, bi], t)
            if land == 1:
                _grid(scheme, math.exp(tt), shape_a, shape_b, K, table, buf)
                sc = grid_score(s, p1, p2, buf, objective, pm)
            if sc > best:
                best = sc
                best_t = tt
    return best, math.exp(best_t)


@njit(cache=True)
def minmax_fitp(scheme, K, out):
    """The naive baseline in normalised units (max |y| = 1).

    uniform: 1 bit ±max; otherwise step = max / (K/2 - 1), zero point K/2 (the integer
    grid -K/2..K/2-1 of symmetric round-to-nearest).  exponential/pow2: c = max, q = 1/2,
    with a zero level (1 bit: ±max).
    """
    if scheme == UNIFORM:
        if K == 2:
            out[0] = 2.0
            out[1] = 0.5
        else:
            out[0] = 1.0 / (K // 2 - 1)
            out[1] = K // 2
        out[2] = 0.0
    else:
        out[0] = 1.0
        out[1] = 0.5
        out[2] = 0.0 if K == 2 else 1.0


@njit(cache=True)
def _fit_parametric_row(s, scheme, K, objective, pm, rms, fitp):
    """Fit one normalised sorted row; writes fitp (3,)."""
    n = s.size
    p1 = np.empty(n + 1)
    p2 = np.empty(n + 1)
    prefix_sums(s, p1, p2)
    buf = np.empty(K)
    minmax_fitp(scheme, K, fitp)
    if objective == OBJ_MINMAX:
        return
    grid_from_fitp(scheme, fitp[0], fitp[1], fitp[2], K, buf)
    best = grid_score(s, p1, p2, buf, objective, pm)
    lo = max(min(rms / 8.0, 0.5), 1e-6)
    if scheme == UNIFORM:
        for zi in range(3):
            if zi == 0:
                z = 0.5 * (K - 1)
            elif zi == 1:
                z = 0.5 * K
            else:
                z = 0.5 * K - 1.0
            sc, alpha = _search_alpha(s, p1, p2, scheme, z, 0.0, K, buf[:0], lo, objective, pm, buf)
            if sc > best:
                best = sc
                fitp[0] = alpha / _outer_steps(z, K)
                fitp[1] = z
                fitp[2] = 0.0
        # lattice-valued rows: steps that are multiples of the lattice spacing, so the
        # grid can hit the values exactly (up to a grid spanning the whole row)
        d = lattice_step(s)
        if d > 0.0:
            mmax = int(2.0 / (d * (K - 1))) + 2
            if mmax <= 1024:
                for m in range(1, mmax + 1):
                    for zi in range(3):
                        z = 0.5 * (K - 1) if zi == 0 else (0.5 * K if zi == 1 else 0.5 * K - 1.0)
                        uniform_levels(m * d, z, 0.0, K, buf)
                        sc = grid_score(s, p1, p2, buf, objective, pm)
                        if sc > best:
                            best = sc
                            fitp[0] = m * d
                            fitp[1] = z
                            fitp[2] = 0.0
        return
    _fit_exponential_row(s, p1, p2, scheme, K, objective, pm, lo, best, fitp, buf)


@njit(cache=True)
def _q_grid(scheme, nmag):
    """Candidate ratios q: 1/2 for pow2 or a single magnitude; otherwise a linear grid
    on [0.05, 0.95] (fine for few magnitudes) joined with q = r^(1/(nmag-1)) for
    log-spaced smallest/largest ratios r in [1e-5, 0.9] (q near 1 for 7-8 bits)."""
    if scheme == POW2 or nmag < 2:
        return np.array([0.5])
    out = np.empty(2 * _COARSE_RATIO)
    for i in range(_COARSE_RATIO):
        out[i] = 0.05 + 0.9 * i / (_COARSE_RATIO - 1)
        lr = math.log(1e-5) + (math.log(0.9) - math.log(1e-5)) * i / (_COARSE_RATIO - 1)
        out[_COARSE_RATIO + i] = math.exp(lr / (nmag - 1))
    return out


@njit(cache=True)
def _compass(s, p1, p2, scheme, K, obj, pm, buf, v, ta, tq, sc, da, dq, free_q):
    """Compass search maximising ``obj`` over (log alpha, log q) for variant ``v`` from
    (ta, tq) with score ``sc``; returns the final (ta, tq)."""
    for _ in range(80):
        improved = False
        for dirn in range(4):
            if dirn >= 2 and not free_q:
                break
            na = ta + (da if dirn == 0 else (-da if dirn == 1 else 0.0))
            nq = tq + (dq if dirn == 2 else (-dq if dirn == 3 else 0.0))
            if na > 0.0 or nq >= 0.0:
                continue
            _alpha_grid(scheme, math.exp(na), v, math.exp(nq), K, buf)
            x = grid_score(s, p1, p2, buf, obj, pm)
            if x > sc:
                sc = x
                ta = na
                tq = nq
                improved = True
        if not improved:
            da *= 0.5
            dq *= 0.5
            if da < 1e-4 and dq < 1e-4:
                break
    return ta, tq


@njit(cache=True)
def _fit_exponential_row(s, p1, p2, scheme, K, objective, pm, lo, best, fitp, buf):
    """exponential/pow2: a joint coarse grid over (variant, q, alpha) scored under both
    objectives, then compass searches from the ``_REFINE`` best target points and the
    best point of the other objective, each judged by the target."""
    n = s.size
    sx = p1[n]
    sxx = p2[n]
    other = OBJ_MSE if objective == OBJ_CORRELATION else OBJ_CORRELATION
    nmag = K // 2
    qs = _q_grid(scheme, nmag)
    nq = qs.size
    llo = math.log(lo)
    da = -llo / (_COARSE_ALPHA_EXP - 1)
    sc = np.empty((2, 3, nq, _COARSE_ALPHA_EXP))
    for v in range(3):
        for qi in range(nq):
            for ai in range(_COARSE_ALPHA_EXP):
                _alpha_grid(scheme, math.exp(llo + da * ai), v, qs[qi], K, buf)
                sq, sqq, sxq = grid_sums(s, p1, buf)
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
            ta, tq = _compass(s, p1, p2, scheme, K, obj, pm, buf, v, llo + da * ai, math.log(qs[qi]), flat[idx],
                              da, 0.1, free_q)
            _alpha_grid(scheme, math.exp(ta), v, math.exp(tq), K, buf)
            x = grid_score(s, p1, p2, buf, objective, pm)
            if x > best:
                best = x
                fitp[0] = math.exp(ta)
                fitp[1] = math.exp(tq)
                fitp[2] = v


@njit(cache=True, parallel=True)
def fit_parametric(Y, nonconst, scheme, K, objective, pm, rms, fitp, fit_levels):
    """Fit every row of normalised data ``Y`` (n_rows, n); rows with nonconst == 0 get
    an all-zero grid.  Writes fitp (n_rows, 3) and fit_levels (n_rows, K)."""
    for r in prange(Y.shape[0]):
        if nonconst[r] and objective == OBJ_MINMAX:
            minmax_fitp(scheme, K, fitp[r])  # needs no sort
            grid_from_fitp(scheme, fitp[r, 0], fitp[r, 1], fitp[r, 2], K, fit_levels[r])
        elif nonconst[r]:
            s = np.sort(Y[r])
            _fit_parametric_row(s, scheme, K, objective, pm, rms[r], fitp[r])
            grid_from_fitp(scheme, fitp[r, 0], fitp[r, 1], fitp[r, 2], K, fit_levels[r])
        else:
            for j in range(3):
                fitp[r, j] = 0.0
            for k in range(K):
                fit_levels[r, k] = 0.0


# ----------------------------------------------------------------- free codebook (Lloyd)


@njit(cache=True)
def _bin_edges(s, H):
    """Indices into sorted ``s`` that cut it into at most ~H bins: the union of
    equal-count and equal-width cuts (so both the bulk and the tails are resolved).
    Every element is its own bin when n <= H."""
    n = s.size
    if n <= H:
        return np.arange(n + 1)
    half = H // 2
    cand = np.empty(2 * half + 2, np.int64)
    for i in range(half + 1):
        cand[i] = (i * n) // half
    lo = s[0]
    hi = s[n - 1]
    for i in range(half + 1):
        cand[half + 1 + i] = np.searchsorted(s, lo + (hi - lo) * i / half) if i < half else n
    cand = np.unique(cand)
    return cand


@njit(cache=True)
def kmeans1d_dp(W, S, S2, k):
    """Globally optimal partition of weighted 1-D bins into ``k`` contiguous clusters.

    ``W``, ``S``, ``S2`` are prefix sums (length H+1) of counts, sums and sums of
    squares over bins in sorted order.  Classic DP D[k][j] = min_i D[k-1][i] +
    SSE(i, j), with divide-and-conquer over the monotone argmin (the SSE cost satisfies
    the quadrangle inequality): O(k H log H).  Returns cluster start indices (k + 1,)
    with starts[0] = 0 and starts[k] = H.
    """
    H = W.size - 1
    prev = np.full(H + 1, np.inf)
    prev[0] = 0.0
    cur = np.empty(H + 1)
    arg = np.zeros((k + 1, H + 1), np.int64)
    stack = np.empty((4 * (H + 2) + 64, 4), np.int64)
    for kk in range(1, k + 1):
        for j in range(H + 1):
            cur[j] = np.inf
        top = 0
        stack[0, 0] = kk
        stack[0, 1] = H
        stack[0, 2] = kk - 1
        stack[0, 3] = H - 1
        top = 1
        while top > 0:
            top -= 1
            jlo = stack[top, 0]
            jhi = stack[top, 1]
            olo = stack[top, 2]
            ohi = stack[top, 3]
            if jlo > jhi:
                continue
            mid = (jlo + jhi) // 2
            best = np.inf
            bi = olo
            for i in range(olo, min(ohi, mid - 1) + 1):
                if prev[i] == np.inf:
                    continue
                w = W[mid] - W[i]
                sm = S[mid] - S[i]
                cost = (S2[mid] - S2[i]) - sm * sm / w
                if cost < 0.0:
                    cost = 0.0
                v = prev[i] + cost
                if v < best:
                    best = v
                    bi = i
            cur[mid] = best
            arg[kk, mid] = bi
            stack[top, 0] = jlo
            stack[top, 1] = mid - 1
            stack[top, 2] = olo
            stack[top, 3] = bi
            top += 1
            stack[top, 0] = mid + 1
            stack[top, 1] = jhi
            stack[top, 2] = bi
            stack[top, 3] = ohi
            top += 1
        for j in range(H + 1):
            prev[j] = cur[j]
    starts = np.empty(k + 1, np.int64)
    starts[k] = H
    j = H
    for kk in range(k, 0, -1):
        j = arg[kk, j]
        starts[kk - 1] = j
    return starts


@njit(cache=True)
def lloyd_polish(s, p1, levels, iters):
    """Lloyd iterations on sorted ``s`` (nearest-level cells, centroid update); never
    increases the squared error.  Empty cells keep their level."""
    n = s.size
    K = levels.size
    for _ in range(iters):
        change = 0.0
        start = 0
        for j in range(K):
            if j < K - 1:
                end = np.searchsorted(s, 0.5 * (levels[j] + levels[j + 1]))
            else:
                end = n
            if end > start:
                m = (p1[end] - p1[start]) / (end - start)
                change = max(change, abs(m - levels[j]))
                levels[j] = m
                start = end
        # keep ascending order (centroids of ordered cells are ordered; guard rounding)
        for j in range(1, K):
            if levels[j] < levels[j - 1]:
                levels[j] = levels[j - 1]
        if change <= 1e-13:
            break


@njit(cache=True)
def _fit_lloyd_row(s, K, objective, pm, H, out):
    n = s.size
    p1 = np.empty(n + 1)
    p2 = np.empty(n + 1)
    prefix_sums(s, p1, p2)
    # minmax baseline: K evenly spaced levels over [min, max]
    for k in range(K):
        out[k] = s[0] + (s[n - 1] - s[0]) * k / (K - 1)
    if objective == OBJ_MINMAX:
        return
    best = grid_score(s, p1, p2, out, objective, pm)
    edges = _bin_edges(s, H)
    nb = edges.size - 1
    W = np.empty(nb + 1)
    S = np.empty(nb + 1)
    S2 = np.empty(nb + 1)
    for b in range(nb + 1):
        W[b] = edges[b]
        S[b] = p1[edges[b]]
        S2[b] = p2[edges[b]]
    k = min(K, nb)
    starts = kmeans1d_dp(W, S, S2, k)
    cand = np.empty(K)
    for c in range(k):
        i0 = edges[starts[c]]
        i1 = edges[starts[c + 1]]
        cand[c] = (p1[i1] - p1[i0]) / (i1 - i0)
    for c in range(k, K):
        cand[c] = cand[k - 1]
    lloyd_polish(s, p1, cand, 200)
    sc = grid_score(s, p1, p2, cand, objective, pm)
    if sc > best:
        for j in range(K):
            out[j] = cand[j]


@njit(cache=True, parallel=True)
def fit_lloyd(Y, nonconst, K, objective, pm, H, fit_levels):
    """Free-codebook fit of every normalised row; constant rows get an all-zero grid."""
    for r in prange(Y.shape[0]):
        if nonconst[r] and objective == OBJ_MINMAX:
            lo = Y[r].min()
            hi = Y[r].max()
            for k in range(K):
                fit_levels[r, k] = lo + (hi - lo) * k / (K - 1)
        elif nonconst[r]:
            s = np.sort(Y[r])
            _fit_lloyd_row(s, K, objective, pm, H, fit_levels[r])
        else:
            for k in range(K):
                fit_levels[r, k] = 0.0


# ------------------------------------------------------------------- encode and stats


ENCODE_CHUNK = 1 << 16


@njit(cache=True, parallel=True)
def encode(X, center, scale, fit_levels, codes, stats):
    """Nearest-level codes of every element of the rows ``X`` (any float dtype), with
    y = (x - center[r]) / scale[r] computed on the fly in float64 (ties to the upper
    level), and per-row sums stats[r] = (sum y, sum y^2, sum q, sum q^2, sum y q) with q
    the fit level.  Work is split into chunks of ENCODE_CHUNK elements, so one huge row
    uses every thread as well as many small rows do."""
    R, n = X.shape
    K = fit_levels.shape[1]
    per_row = (n + ENCODE_CHUNK - 1) // ENCODE_CHUNK
    nchunk = R * per_row
    part = np.zeros((nchunk, 5))
    for c in prange(nchunk):
        r = c // per_row
        i0 = (c % per_row) * ENCODE_CHUNK
        i1 = min(n, i0 + ENCODE_CHUNK)
        thr = np.empty(K - 1)
        for j in range(K - 1):
            thr[j] = 0.5 * (fit_levels[r, j] + fit_levels[r, j + 1])
        ctr = center[r]
        inv = 1.0 / scale[r]
        sy = 0.0
        syy = 0.0
        sq = 0.0
        sqq = 0.0
        syq = 0.0
        for i in range(i0, i1):
            y = (np.float64(X[r, i]) - ctr) * inv
            k = np.searchsorted(thr, y, side="right")
            codes[r, i] = k
            q = fit_levels[r, k]
            sy += y
            syy += y * y
            sq += q
            sqq += q * q
            syq += y * q
        part[c, 0] = sy
        part[c, 1] = syy
        part[c, 2] = sq
        part[c, 3] = sqq
        part[c, 4] = syq
    for r in range(R):
        for k in range(5):
            acc = 0.0
            for c in range(r * per_row, (r + 1) * per_row):
                acc += part[c, k]
            stats[r, k] = acc


@njit(cache=True, parallel=True)
def lookup(codes, codebook, out):
    """out[r, i] = codebook[r, codes[r, i]] (rows view)."""
    for r in prange(codes.shape[0]):
        for i in range(codes.shape[1]):
            out[r, i] = codebook[r, codes[r, i]]


# ------------------------------------------------------------------------ bit packing


@njit(cache=True)
def pack(codes, bits, out):
    """LSB-first bit stream of ``bits``-bit codes into ``out`` (ceil(n*bits/8) bytes)."""
    acc = np.uint64(0)
    nacc = 0
    o = 0
    for i in range(codes.size):
        acc |= np.uint64(codes[i]) << np.uint64(nacc)
        nacc += bits
        while nacc >= 8:
            out[o] = np.uint8(acc & np.uint64(0xFF))
            acc >>= np.uint64(8)
            nacc -= 8
            o += 1
    if nacc > 0:
        out[o] = np.uint8(acc & np.uint64(0xFF))


@njit(cache=True)
def unpack(buf, bits, n, out):
    """Inverse of :func:`pack`: ``n`` codes from the LSB-first stream ``buf``."""
    mask = np.uint64((1 << bits) - 1)
    acc = np.uint64(0)
    nacc = 0
    b = 0
    for i in range(n):
        while nacc < bits:
            acc |= np.uint64(buf[b]) << np.uint64(nacc)
            b += 1
            nacc += 8
        out[i] = np.uint8(acc & mask)
        acc >>= np.uint64(bits)
        nacc -= bits
