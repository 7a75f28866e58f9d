"""Numba kernels of the Hopfield simulator.

No validation here; the wrappers in ``network.py`` validate and convert.  Inputs:
states int8 (+1/-1), fields float64, and the weights as a :class:`TableWeights`
(float32 values, or uint8 codes into a float32 codebook) or, for a uniform
whole-matrix codebook, :class:`AffineWeights`.  Self-coupling is excluded everywhere:
the diagonal is never read.

Randomness: every cue gets a 64-bit seed drawn at the boundary; the kernels use
SplitMix64 (Steele, Lea & Flood 2014) so that tests can replay the exact update order
with :func:`sweep_orders`.  Ties (local field exactly 0) keep the current state.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

# update modes of the dynamics kernels
ASYNC_RANDOM = 0
ASYNC_FIXED = 1
SYNC = 2

# SplitMix64 (Steele, Lea & Flood 2014; Vigna's reference code): the Weyl increment
# (2**64 / golden ratio) and the two multipliers of the output mix
_SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SPLITMIX_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_SPLITMIX_MUL2 = np.uint64(0x94D049BB133111EB)
_UNIFORM_BITS_SHIFT = np.uint64(11)  # keep the top 53 bits: a double's mantissa
_INV_2_POW_53 = 1.0 / 9007199254740992.0  # 2**-53
# exp(x) overflows float64 above ~709.78; for x beyond this P(s = +1) = 1/(1 + e^x) < 1e-304
_GLAUBER_EXP_MAX = 700.0

# ------------------------------------------------------------------------------ RNG


@njit(cache=True)
def splitmix64(state):
    """One SplitMix64 step: returns (new_state, 64-bit output)."""
    state = state + _SPLITMIX_GAMMA
    z = state
    z = (z ^ (z >> np.uint64(30))) * _SPLITMIX_MUL1
    z = (z ^ (z >> np.uint64(27))) * _SPLITMIX_MUL2
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def uniform01(state):
    """Returns (new_state, u) with u uniform in [0, 1) (53 bits)."""
    state, z = splitmix64(state)
    return state, (z >> _UNIFORM_BITS_SHIFT) * _INV_2_POW_53


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


# ----------------------------------------------------------------- weight layouts


class TableWeights(NamedTuple):
    """The couplings as the table-mode dynamics read them.

    ``values`` holds float32 (N, N) weights, or uint8 (N, N) codes; then
    ``W[i, j] = codebook[i * rows_per_row + j // group, values[i, j]]``: row i of W is
    cut into consecutive groups of ``group`` elements (the last one may be shorter),
    each with its own codebook row.  One codebook for the whole matrix: ``group = N,
    rows_per_row = 0``; one per row: ``group = N, rows_per_row = 1``.
    """

    values: np.ndarray  # float32 weights or uint8 codes, (N, N), C-contiguous
    codebook: np.ndarray  # float32 (n_rows, 2**bits); an unused (1, 1) array for float weights
    group: int  # elements per codebook row along a row of W
    rows_per_row: int  # codebook rows per row of W (0: one codebook for all rows)
    symmetric: bool  # W == W.T, so column i is row i (contiguous)


class AffineWeights(NamedTuple):
    """A uniform whole-matrix codebook before its float32 rounding:
    ``W_ij = scale (codes_ij - zero) + offset`` exactly, codes symmetric."""

    codes: np.ndarray  # uint8 (N, N), C-contiguous
    scale: float
    zero: float
    offset: float


class RunOptions(NamedTuple):
    """How the dynamics run: at most ``max_sweeps`` sweeps in ``mode`` (ASYNC_RANDOM,
    ASYNC_FIXED or SYNC), with Glauber updates when ``temperature`` > 0 (async only)."""

    max_sweeps: int
    mode: int
    temperature: float


def weight(w, i, j):
    """W[i, j] of :class:`TableWeights` ``w``."""
    if w.values.dtype.kind == "f":
        return w.values[i, j]
    return w.codebook[i * w.rows_per_row + j // w.group, w.values[i, j]]


def _member(tuple_type, name):
    """The numba type of field ``name`` of a named-tuple type."""
    return tuple_type.types[tuple_type.fields.index(name)]


def _float_values(w) -> bool:
    """Whether the numba type of :class:`TableWeights` ``w`` holds float weights (not codes)."""
    return isinstance(_member(w, "values").dtype, types.Float)


@overload(weight, jit_options={"cache": True})
def _weight_impl(w, i, j):
    if _float_values(w):
        def impl(w, i, j):
            return w.values[i, j]
    else:
        def impl(w, i, j):
            return w.codebook[i * w.rows_per_row + j // w.group, w.values[i, j]]
    return impl


@njit(cache=True, parallel=True)
def dequantize_rows(w, r0, r1, out):
    """out[k, j] = W[r0 + k, j] in float64, diagonal set to 0 (a transient tile)."""
    N = w.values.shape[1]
    for k in prange(r1 - r0):
        i = r0 + k
        for j in range(N):
            out[k, j] = 0.0 if j == i else weight(w, i, j)


# ------------------------------------------------------------------------ dynamics
#
# The dynamics see the weights through a *field state*, one per cue:
#   TableField  (h, w): float64 local fields h, kept up to date in O(N) per flip, and
#               the TableWeights w;
#   AffineField (sums, total, w): the AffineWeights w and integers
#               sums_i = sum_{j != i} C_ij s_j and total[0] = sum_j s_j.  Then
#               h_i = scale (sums_i - zero m_i) + offset m_i, m_i = total - s_i: the
#               bracket is an exact half-integer, both products are exact in float64 and
#               the one rounding of their sum never changes its sign, so ties are exact.


class TableField(NamedTuple):
    """Field state of one cue in table mode."""

    h: np.ndarray  # float64 (N,) local fields without self-coupling
    w: TableWeights


class AffineField(NamedTuple):
    """Field state of one cue in affine mode."""

    sums: np.ndarray  # int32 (N,): sum_{j != i} C_ij s_j
    total: np.ndarray  # int64 (1,): sum_j s_j (an array, to be updated in place)
    w: AffineWeights


def field(fs, s, i):
    """Local field h_i of neuron i in the current state."""
    if isinstance(fs, TableField):
        return fs.h[i]
    m = float(fs.total[0] - s[i])
    return fs.w.scale * (float(fs.sums[i]) - fs.w.zero * m) + fs.w.offset * m


@overload(field, jit_options={"cache": True})
def _field_impl(fs, s, i):
    if fs.instance_class is TableField:
        def impl(fs, s, i):
            return fs.h[i]
    else:
        def impl(fs, s, i):
            m = np.float64(fs.total[0] - s[i])
            return fs.w.scale * (np.float64(fs.sums[i]) - fs.w.zero * m) + fs.w.offset * m
    return impl


def flip(fs, i, d):
    """Update the field state for s_i changing by d = +-2 (s already updated or not)."""
    if isinstance(fs, TableField):
        _add_column(fs.w, i, np.float64(d), fs.h)
        return
    U = fs.sums
    ui = U[i]
    U += d * fs.w.codes[i].astype(U.dtype)
    U[i] = ui
    fs.total[0] += d


@overload(flip, jit_options={"cache": True})
def _flip_impl(fs, i, d):
    if fs.instance_class is TableField:
        def impl(fs, i, d):
            _add_column(fs.w, i, np.float64(d), fs.h)
    else:
        def impl(fs, i, d):
            # d = +-2: int32 adds of the widened codes, one loop per sign, so that LLVM
            # vectorises them (an int64 product per element does not vectorise)
            U = fs.sums
            c = fs.w.codes[i]
            ui = U[i]
            if d > 0:
                for j in range(U.size):
                    cj = np.int32(c[j])
                    U[j] += cj + cj
            else:
                for j in range(U.size):
                    cj = np.int32(c[j])
                    U[j] -= cj + cj
            U[i] = ui
            fs.total[0] += d
    return impl


def add_row(w, i, d, h):
    """h[j] += W[i, j] * d for all j != i (row i of W, contiguous)."""
    for j in range(h.size):
        if j != i:
            h[j] += weight(w, i, j) * d


@overload(add_row, jit_options={"cache": True})
def _add_row_impl(w, i, d, h):
    if _float_values(w):
        def impl(w, i, d, h):
            row = w.values[i]
            hii = h[i]
            for j in range(h.size):
                h[j] += row[j] * d
            h[i] = hii  # the diagonal is never used
    else:
        def impl(w, i, d, h):
            N = h.size
            c = w.values[i]
            cb = w.codebook
            first = i * w.rows_per_row  # codebook row of the first group of row i
            hii = h[i]
            if w.group >= N:
                # the whole row uses one codebook row: a pre-scaled table, one gather per weight
                n_levels = cb.shape[1]
                tab = np.empty(n_levels)
                for k in range(n_levels):
                    tab[k] = cb[first, k] * d
                for j in range(N):
                    h[j] += tab[c[j]]
            else:
                g = w.group
                for j in range(N):
                    h[j] += cb[first + j // g, c[j]] * d
            h[i] = hii
    return impl


@njit(cache=True)
def _add_column(w, i, d, h):
    """h[j] += W[j, i] * d for all j != i (row i when W is symmetric: contiguous)."""
    if w.symmetric:
        add_row(w, i, d, h)
    else:
        for j in range(h.size):
            if j != i:
                h[j] += weight(w, j, i) * d


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
                p_up = 1.0 / (1.0 + math.exp(x)) if x < _GLAUBER_EXP_MAX else 0.0
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


@njit(cache=True)
def _run_cue(fs, s, seed, run):
    """Run one cue's dynamics in place; returns (sweeps, converged)."""
    if run.mode == SYNC:
        return _run_sync(fs, s, run.max_sweeps)
    return _run_async(fs, s, seed, run.max_sweeps, run.mode == ASYNC_RANDOM, run.temperature)


@njit(cache=True, parallel=True)
def recall(w, S, H, seeds, run, sweeps, converged):
    """Table mode: run every cue (rows of S, fields H = S W^T without self-coupling, W
    given by the TableWeights ``w``) as ``run`` says, to a fixed point or
    ``run.max_sweeps``; S and H are updated in place, cues in parallel."""
    for c in prange(S.shape[0]):
        n, ok = _run_cue(TableField(H[c], w), S[c], seeds[c], run)
        sweeps[c] = n
        converged[c] = ok


@njit(cache=True, parallel=True)
def recall_affine(w, S, U, M, seeds, run, sweeps, converged):
    """Affine mode (the AffineWeights ``w``): as :func:`recall` with integer sums
    U = S C^T (no self-coupling, int32) and M = S.sum(1) (int64)."""
    for c in prange(S.shape[0]):
        n, ok = _run_cue(AffineField(U[c], M[c:c + 1], w), S[c], seeds[c], run)
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


# ------------------------------------------------------- whole-matrix passes (O(N^2))
#
# numpy's reductions and elementwise passes run on one thread; at N = 30,000 each pass
# over W takes seconds.  These run over blocks of rows in parallel and give the same
# results whatever the thread count.

_SYM_BLOCK = 64  # square tiles of the symmetry test: both tiles stay in cache


@njit(cache=True, parallel=True)
def is_symmetric(A):
    """Whether the square matrix A equals its transpose (exact comparison)."""
    N = A.shape[0]
    nb = (N + _SYM_BLOCK - 1) // _SYM_BLOCK
    bad = np.zeros(nb, np.bool_)
    for bi in prange(nb):
        i0 = bi * _SYM_BLOCK
        i1 = min(N, i0 + _SYM_BLOCK)
        for j0 in range(i0, N, _SYM_BLOCK):  # tiles on and above the diagonal
            j1 = min(N, j0 + _SYM_BLOCK)
            for i in range(i0, i1):
                for j in range(max(j0, i + 1), j1):
                    if A[i, j] != A[j, i]:
                        bad[bi] = True
            if bad[bi]:
                break
    return not bad.any()


@njit(cache=True, parallel=True)
def offdiag_sums(W, w, out):
    """out[i] = (sum w, sum q, sum w^2, sum q^2, sum w q) over j != i of row i, in float64,
    for float32 weights W and their quantized values q = W[i, j] of the TableWeights w."""
    N = W.shape[0]
    for i in prange(N):
        sw = 0.0
        sq = 0.0
        sww = 0.0
        sqq = 0.0
        swq = 0.0
        for j in range(N):
            if j != i:
                a = np.float64(W[i, j])
                b = np.float64(weight(w, i, j))
                sw += a
                sq += b
                sww += a * a
                sqq += b * b
                swq += a * b
        out[i, 0] = sw
        out[i, 1] = sq
        out[i, 2] = sww
        out[i, 3] = sqq
        out[i, 4] = swq


@njit(cache=True, parallel=True)
def finish_hebb(W, n):
    """W /= float32(n) in place with a zero diagonal (numpy's float32 division, row by row
    in parallel)."""
    N = W.shape[0]
    d = np.float32(n)
    for i in prange(N):
        for j in range(N):
            W[i, j] = W[i, j] / d
        W[i, i] = 0.0


@njit(cache=True, parallel=True)
def finish_hebb_int(G, W, n):
    """W = float32(G) / float32(n) with a zero diagonal, where W is int32 G's memory seen
    as float32: each element is read before it is written (finish_hebb's values, for
    |G| < 2**24)."""
    N = G.shape[0]
    d = np.float32(n)
    for i in prange(N):
        for j in range(N):
            W[i, j] = np.float32(G[i, j]) / d
        W[i, i] = 0.0


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
