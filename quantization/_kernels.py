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
  ``lloyd``: the levels themselves (a separate array).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

UNIFORM = 0
EXPONENTIAL = 1
POW2 = 2
LLOYD = 3

OBJ_CORRELATION = 0
OBJ_MSE = 1
OBJ_MINMAX = 2

_COARSE_ALPHA = 48  # coarse log-spaced candidates of the outer level
_GOLDEN_ITERS = 24
_COARSE_RATIO = 12  # coarse candidates of the exponential ratio smallest/largest magnitude
_RATIO_LO = 1e-4
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
def levels_from_params(scheme, params, K, out):
    """Codebook rows (float32) from stored float32 parameters; one deterministic formula.

    ``params`` is (n_rows, P) float32: uniform (scale, zero_point, offset), exponential
    and pow2 (c, q, variant, offset), lloyd (the K levels).
    """
    buf = np.empty(K, np.float64)
    for r in range(params.shape[0]):
        if scheme == UNIFORM:
            uniform_levels(np.float64(params[r, 0]), np.float64(params[r, 1]), np.float64(params[r, 2]), K, buf)
        elif scheme == LLOYD:
            for k in range(K):
                buf[k] = params[r, k]
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
def grid_score(s, p1, p2, levels, objective, pm):
    """Score of nearest-level encoding of sorted ``s`` on ``levels``; higher is better.

    correlation: Pearson rho(s, Q(s)) when ``pm`` (preserve_mean: an offset will be
    stored), else the uncentred correlation <s, Q>/(|s||Q|); 0 when undefined.
    mse: minus the squared error, after the exact mean shift when ``pm``.  O(K log n).
    """
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
    sx = p1[n]
    sxx = p2[n]
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
def _search_alpha(s, p1, p2, scheme, shape_a, shape_b, K, lo, objective, pm, buf):
    """Best outer magnitude in [lo, 1]: log-spaced coarse scan, then golden section
    around the best point.  Returns (score, alpha); tracks the best point evaluated."""
    llo = math.log(lo)
    best = -np.inf
    best_t = 0.0
    for i in range(_COARSE_ALPHA):
        t = llo - llo * i / (_COARSE_ALPHA - 1)
        _alpha_grid(scheme, math.exp(t), shape_a, shape_b, K, buf)
        sc = grid_score(s, p1, p2, buf, objective, pm)
        if sc > best:
            best = sc
            best_t = t
    step = -llo / (_COARSE_ALPHA - 1)
    a = max(llo, best_t - step)
    b = min(0.0, best_t + step)
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    _alpha_grid(scheme, math.exp(c), shape_a, shape_b, K, buf)
    fc = grid_score(s, p1, p2, buf, objective, pm)
    _alpha_grid(scheme, math.exp(d), shape_a, shape_b, K, buf)
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
            _alpha_grid(scheme, math.exp(c), shape_a, shape_b, K, buf)
            fc = grid_score(s, p1, p2, buf, objective, pm)
        else:
            a = c
            c = d
            fc = fd
            d = a + _INV_PHI * (b - a)
            _alpha_grid(scheme, math.exp(d), shape_a, shape_b, K, buf)
            fd = grid_score(s, p1, p2, buf, objective, pm)
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
            sc, alpha = _search_alpha(s, p1, p2, scheme, z, 0.0, K, lo, objective, pm, buf)
            if sc > best:
                best = sc
                fitp[0] = alpha / _outer_steps(z, K)
                fitp[1] = z
                fitp[2] = 0.0
        return
    # exponential / pow2: variants x ratio grid x alpha search, then a compass search
    nmag = K // 2
    if scheme == POW2 or nmag < 2:
        nratio = 1
    else:
        nratio = _COARSE_RATIO
    lrlo = math.log(_RATIO_LO)
    bt_a = 0.0
    bt_r = 0.0
    bvar = -1
    for v in range(3):
        # candidate ratios: a log-spaced grid plus q = 1/2 itself, so that exponential
        # is never worse than pow2 (a special case of it)
        for ri in range(nratio + (1 if nratio > 1 else 0)):
            if nratio == 1:
                q = 0.5
                lr = 0.0
            elif ri == nratio:
                q = 0.5
                lr = (nmag - 1) * math.log(0.5)
            else:
                lr = lrlo * (1.0 - ri / (nratio - 1.0)) + math.log(0.95) * ri / (nratio - 1.0)
                q = math.exp(lr / (nmag - 1))
            sc, alpha = _search_alpha(s, p1, p2, scheme, v, q, K, lo, objective, pm, buf)
            if sc > best:
                best = sc
                fitp[0] = alpha
                fitp[1] = q
                fitp[2] = v
                bt_a = math.log(alpha)
                bt_r = lr
                bvar = v
    if bvar < 0 or nratio == 1:
        return
    # compass search in (log alpha, log ratio) around the best coarse point
    da = -math.log(lo) / (_COARSE_ALPHA - 1)
    dr = (math.log(0.95) - lrlo) / (nratio - 1.0)
    for _ in range(60):
        improved = False
        for dirn in range(4):
            ta = bt_a + (da if dirn == 0 else (-da if dirn == 1 else 0.0))
            tr = bt_r + (dr if dirn == 2 else (-dr if dirn == 3 else 0.0))
            if ta > 0.0 or tr >= 0.0:
                continue
            q = math.exp(tr / (nmag - 1))
            _alpha_grid(scheme, math.exp(ta), bvar, q, K, buf)
            sc = grid_score(s, p1, p2, buf, objective, pm)
            if sc > best:
                best = sc
                bt_a = ta
                bt_r = tr
                fitp[0] = math.exp(ta)
                fitp[1] = q
                improved = True
        if not improved:
            da *= 0.5
            dr *= 0.5
            if da < 1e-4 and dr < 1e-4:
                break


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


@njit(cache=True, parallel=True)
def encode(Y, fit_levels, codes, stats):
    """Nearest-level codes of every element (ties to the upper level) and per-row sums
    stats[r] = (sum y, sum y^2, sum q, sum q^2, sum y q) with q the fit level."""
    K = fit_levels.shape[1]
    for r in prange(Y.shape[0]):
        thr = np.empty(K - 1)
        for j in range(K - 1):
            thr[j] = 0.5 * (fit_levels[r, j] + fit_levels[r, j + 1])
        sy = 0.0
        syy = 0.0
        sq = 0.0
        sqq = 0.0
        syq = 0.0
        for i in range(Y.shape[1]):
            y = Y[r, i]
            c = np.searchsorted(thr, y, side="right")
            codes[r, i] = c
            q = fit_levels[r, c]
            sy += y
            syy += y * y
            sq += q
            sqq += q * q
            syq += y * q
        stats[r, 0] = sy
        stats[r, 1] = syy
        stats[r, 2] = sq
        stats[r, 3] = sqq
        stats[r, 4] = syq


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
