"""Free codebook (``lloyd``): globally optimal 1-D k-means on binned data, then Lloyd iterations.

A row is cut into at most ``H`` bins (:func:`_bin_edges`), the dynamic program
:func:`kmeans1d_dp` finds the partition of the bins into K clusters of least squared
error, and :func:`lloyd_polish` refines the cluster means on the unbinned row.  The
result replaces the min-max grid only when it scores better under the target objective.
Conventions (normalised sorted rows, ties, scores): ``_grids.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._grids import OBJ_MINMAX, grid_score, prefix_sums

_POLISH_ITERS = 200  # at most this many Lloyd iterations after the dynamic program
_POLISH_TOL = 1e-13  # Lloyd iterations stop once no level moves by more than this


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
    # pending tasks (j range, argmin range) of the divide and conquer, depth first: each
    # task pushes the two halves of its j range, so about log2(H) + 2 are ever pending
    # and 4 (H + 2) + 64 rows are a generous bound
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
        if change <= _POLISH_TOL:
            break


@njit(cache=True)
def _fit_lloyd_row(s, K, objective, pm, H, out):
    """Fit K free levels to the normalised sorted row ``s`` (``pm``: preserve_mean), with
    at most about ``H`` bins in the dynamic program; writes ``out`` (K,)."""
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
    lloyd_polish(s, p1, cand, _POLISH_ITERS)
    sc = grid_score(s, p1, p2, cand, objective, pm)
    if sc > best:
        for j in range(K):
            out[j] = cand[j]


@njit(cache=True, parallel=True)
def fit_lloyd(Y, nonconst, K, objective, pm, H, fit_levels):
    """Free-codebook fit of every normalised row of ``Y`` (n_rows, n): K levels for
    ``objective`` (``pm``: preserve_mean), at most about ``H`` bins per row in the dynamic
    program.  Writes fit_levels (n_rows, K); constant rows (nonconst == 0) get zeros."""
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
