"""Numba kernels of the Hopfield simulator.

No validation here; the wrappers in ``network.py`` validate and convert.  Inputs:
states int8 (+1/-1), fields float64, weights either float32 (N, N) or uint8 codes
(N, N) with a float32 codebook (R, K) and a group length ``g`` (element (i, j) uses
codebook row ``(i * N + j) // g``; g = N*N for one codebook, g = N for one per row).
Self-coupling is excluded everywhere: the diagonal is never read.

Randomness: every cue gets a 64-bit seed drawn at the boundary; the kernels use
SplitMix64 (Steele, Lea & Flood 2014) so that tests can replay the exact update order
with :func:`sweep_orders`.  Ties (local field exactly 0) keep the current state.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

ASYNC_RANDOM = 0
ASYNC_FIXED = 1
SYNC = 2


# ------------------------------------------------------------------------------ RNG


@njit(cache=True)
def splitmix64(state):
    """One SplitMix64 step: returns (new_state, 64-bit output)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def uniform01(state):
    """Returns (new_state, u) with u uniform in [0, 1) (53 bits)."""
    state, z = splitmix64(state)
    return state, (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def shuffle(state, order):
    """Fisher-Yates shuffle of ``order`` in place; returns the new RNG state."""
    for k in range(order.size - 1, 0, -1):
        state, u = uniform01(state)
        j = int(u * (k + 1))
        t = order[k]
        order[k] = order[j]
        order[j] = t
    return state


@njit(cache=True)
def sweep_orders(seed, n_sweeps, N):
    """The random update orders the async kernel uses for a cue seeded with ``seed``."""
    state = np.uint64(seed)
    order = np.arange(N)
    out = np.empty((n_sweeps, N), np.int64)
    for s in range(n_sweeps):
        state = shuffle(state, order)
        out[s] = order
    return out


# ----------------------------------------------------------------- weight accessor


def weight(W, cb, g, i, j):
    """W[i, j] for float weights, codebook[(i*N+j)//g, codes[i, j]] for codes."""
    if W.dtype.kind == "f":
        return W[i, j]
    return cb[(i * W.shape[1] + j) // g, W[i, j]]


@overload(weight, jit_options={"cache": True})
def _weight_impl(W, cb, g, i, j):
    if isinstance(W.dtype, types.Float):
        def impl(W, cb, g, i, j):
            return W[i, j]
    else:
        def impl(W, cb, g, i, j):
            return cb[(i * W.shape[1] + j) // g, W[i, j]]
    return impl


@njit(cache=True, parallel=True)
def dequantize_rows(codes, cb, g, r0, r1, out):
    """out[k, j] = W[r0 + k, j] in float64, diagonal set to 0 (a transient tile)."""
    N = codes.shape[1]
    for k in prange(r1 - r0):
        i = r0 + k
        for j in range(N):
            out[k, j] = 0.0 if j == i else cb[(i * N + j) // g, codes[i, j]]


# ------------------------------------------------------------------------ dynamics
#
# The dynamics see the weights through a *field state* tuple, one per cue:
#   table mode  (h, W, cb, g, symmetric): h float64 local fields, W float32 weights or
#               uint8 codes with codebook cb and group length g;
#   affine mode (U, C, scale, z, off, M): W_ij = scale (C_ij - z) + off exactly (a
#               uniform whole-matrix codebook before its float32 rounding), with
#               integers U_i = sum_{j != i} C_ij s_j and M[0] = sum_j s_j.  Then
#               h_i = scale (U_i - z M'_i) + off M'_i, M'_i = M - s_i: the bracket is an
#               exact half-integer, both products are exact in float64 and the one
#               rounding of their sum never changes its sign, so ties are exact.


def field(fs, s, i):
    """Local field h_i of neuron i in the current state."""
    if fs[0].dtype.kind == "f":
        return fs[0][i]
    U, C, scale, z, off, M = fs
    m = float(M[0] - s[i])
    return scale * (float(U[i]) - z * m) + off * m


@overload(field, jit_options={"cache": True})
def _field_impl(fs, s, i):
    if isinstance(fs[0].dtype, types.Float):
        def impl(fs, s, i):
            return fs[0][i]
    else:
        def impl(fs, s, i):
            m = np.float64(fs[5][0] - s[i])
            return fs[2] * (np.float64(fs[0][i]) - fs[3] * m) + fs[4] * m
    return impl


def flip(fs, i, d):
    """Update the field state for s_i changing by d = +-2 (s already updated or not)."""
    if fs[0].dtype.kind == "f":
        h, W, cb, g, symmetric = fs
        _add_column(W, cb, g, symmetric, i, np.float64(d), h)
        return
    U, C, scale, z, off, M = fs
    ui = U[i]
    U += d * C[i].astype(U.dtype)
    U[i] = ui
    M[0] += d


@overload(flip, jit_options={"cache": True})
def _flip_impl(fs, i, d):
    if isinstance(fs[0].dtype, types.Float):
        def impl(fs, i, d):
            _add_column(fs[1], fs[2], fs[3], fs[4], i, np.float64(d), fs[0])
    else:
        def impl(fs, i, d):
            U = fs[0]
            c = fs[1][i]
            ui = U[i]
            for j in range(U.size):
                U[j] += d * np.int32(c[j])
            U[i] = ui
            fs[5][0] += d
    return impl


def add_row(W, cb, g, i, d, h):
    """h[j] += W[i, j] * d for all j != i (row i of W, contiguous)."""
    for j in range(h.size):
        if j != i:
            h[j] += weight(W, cb, g, i, j) * d


@overload(add_row, jit_options={"cache": True})
def _add_row_impl(W, cb, g, i, d, h):
    if isinstance(W.dtype, types.Float):
        def impl(W, cb, g, i, d, h):
            w = W[i]
            hii = h[i]
            for j in range(h.size):
                h[j] += w[j] * d
            h[i] = hii  # the diagonal is never used
    else:
        def impl(W, cb, g, i, d, h):
            N = h.size
            c = W[i]
            hii = h[i]
            if g % N == 0:
                # the whole row uses one codebook row: a pre-scaled table, one gather per weight
                r = (i * N) // g
                K = cb.shape[1]
                tab = np.empty(K)
                for k in range(K):
                    tab[k] = cb[r, k] * d
                for j in range(N):
                    h[j] += tab[c[j]]
            else:
                for j in range(N):
                    h[j] += cb[(i * N + j) // g, c[j]] * d
            h[i] = hii
    return impl


@njit(cache=True)
def _add_column(W, cb, g, symmetric, i, d, h):
    """h[j] += W[j, i] * d for all j != i (row i when W is symmetric: contiguous)."""
    if symmetric:
        add_row(W, cb, g, i, d, h)
    else:
        for j in range(h.size):
            if j != i:
                h[j] += weight(W, cb, g, j, i) * d


@njit(cache=True)
def _run_async(fs, s, seed, max_sweeps, random_order, temperature):
    N = s.size
    state = np.uint64(seed)
    order = np.arange(N)
    for sweep in range(max_sweeps):
        if random_order:
            state = shuffle(state, order)
        flips = 0
        for idx in range(N):
            i = order[idx]
            hi = field(fs, s, i)
            if temperature > 0.0:
                state, u = uniform01(state)
                x = -2.0 * hi / temperature
                p_up = 1.0 / (1.0 + math.exp(x)) if x < 700.0 else 0.0
                new = 1 if u < p_up else -1
            elif hi > 0.0:
                new = 1
            elif hi < 0.0:
                new = -1
            else:
                new = s[i]
            if new != s[i]:
                s[i] = new
                flip(fs, i, 2 * new)
                flips += 1
        if flips == 0:
            return sweep + 1, True
    return max_sweeps, False


@njit(cache=True)
def _run_sync(fs, s, max_sweeps):
    N = s.size
    prev = s.copy()  # state two steps back, for 2-cycle detection
    new = np.empty(N, np.int8)
    for sweep in range(max_sweeps):
        nflip = 0
        for i in range(N):
            hi = field(fs, s, i)
            if hi > 0.0:
                new[i] = 1
            elif hi < 0.0:
                new[i] = -1
            else:
                new[i] = s[i]
            if new[i] != s[i]:
                nflip += 1
        if nflip == 0:
            return sweep + 1, True
        cycle = False
        if sweep > 0:
            cycle = True
            for i in range(N):
                if new[i] != prev[i]:
                    cycle = False
                    break
        for i in range(N):
            prev[i] = s[i]
        for i in range(N):
            if new[i] != s[i]:
                s[i] = new[i]
                flip(fs, i, 2 * np.int64(new[i]))
        if cycle:  # a 2-cycle: synchronous dynamics would alternate forever
            return sweep + 1, False
    return max_sweeps, False


@njit(cache=True, parallel=True)
def recall(W, cb, g, symmetric, S, H, seeds, max_sweeps, mode, temperature, sweeps, converged):
    """Table mode: run every cue (rows of S, fields H = S W^T without self-coupling) to a
    fixed point or ``max_sweeps``; S and H are updated in place, cues in parallel."""
    for c in prange(S.shape[0]):
        fs = (H[c], W, cb, g, symmetric)
        if mode == SYNC:
            n, ok = _run_sync(fs, S[c], max_sweeps)
        else:
            n, ok = _run_async(fs, S[c], seeds[c], max_sweeps, mode == ASYNC_RANDOM, temperature)
        sweeps[c] = n
        converged[c] = ok


@njit(cache=True, parallel=True)
def recall_affine(C, scale, z, off, S, U, M, seeds, max_sweeps, mode, temperature, sweeps, converged):
    """Affine mode (W_ij = scale (C_ij - z) + off, C symmetric): as :func:`recall` with
    integer sums U = S C^T (no self-coupling) and M = S.sum(1)."""
    for c in prange(S.shape[0]):
        fs = (U[c], C, scale, z, off, M[c:c + 1])
        if mode == SYNC:
            n, ok = _run_sync(fs, S[c], max_sweeps)
        else:
            n, ok = _run_async(fs, S[c], seeds[c], max_sweeps, mode == ASYNC_RANDOM, temperature)
        sweeps[c] = n
        converged[c] = ok


@njit(cache=True, parallel=True)
def codes_rows(codes, r0, r1, out):
    """out[k, j] = codes[r0 + k, j] as float32, diagonal set to 0 (a transient tile)."""
    N = codes.shape[1]
    for k in prange(r1 - r0):
        i = r0 + k
        for j in range(N):
            out[k, j] = 0.0 if j == i else np.float32(codes[i, j])


# ----------------------------------------------------------------------- learning


@njit(cache=True)
def storkey(X, W):
    """Storkey (1997) rule, pattern by pattern, in place on float64 W (zero diagonal):
    w_ij += (xi_i xi_j - xi_i h_ji - h_ij xi_j) / N with h_ij = sum_{k != i, j} w_ik xi_k."""
    P, N = X.shape
    h = np.empty(N)
    for p in range(P):
        x = X[p]
        for i in range(N):
            acc = 0.0
            for k in range(N):
                acc += W[i, k] * x[k]
            h[i] = acc  # diagonal is zero, so this is sum over k != i
        for i in range(N):
            for j in range(i + 1, N):
                hij = h[i] - W[i, j] * x[j]
                hji = h[j] - W[j, i] * x[i]
                dw = (x[i] * x[j] - x[i] * hji - hij * x[j]) / N
                W[i, j] += dw
                W[j, i] += dw
