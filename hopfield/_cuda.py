"""CUDA kernels of the Hopfield simulator (numba-cuda): Hebbian store, encode, recall.

Imported only by :func:`hopfield._device.cuda_backend`, so ``import hopfield`` never needs
numba-cuda.  network.py validates; the wrappers here check that the arrays fit in the GPU's
free memory before they allocate anything, move host arrays in and out, and launch the
kernels.  With ``NUMBA_ENABLE_CUDASIM=1`` (set before numba.cuda is imported) everything
runs on numba-cuda's simulator, which is how the tests run without a GPU.

Same results as the CPU kernels (``hopfield/_kernels.py``), bit for bit:

* Randomness: each cue's SplitMix64 stream starts from the same 64-bit seed; thread 0 of
  the cue's block runs the Fisher-Yates shuffle of ``K.shuffle``, then every thread of the
  block takes the stream's state and steps it in lock-step for the Glauber draws.
* Asynchronous dynamics: one cue per block, the visiting order walked a window of
  blockDim.x visits at a time.  Between two flips the state does not change, so every
  thread evaluates one visit of the window at once (same field arithmetic and ties as the
  CPU); the first visit that flips is found, the visits before it are exactly the
  sequential no-ops, and the walk goes on after it.  A flip changes the state at once;
  its additions to the fields, h_j += W_ij d (d = +-2, an exact product), are held back
  for up to PENDING flips and added in flip order whenever a field is read and when the
  list is full, so every field takes the CPU's float64 adds in the CPU's order.
  Glauber draws skip ahead in the cue's stream (a SplitMix64 state is a counter).
* Synchronous dynamics: each thread decides its own neurons; the sweep's flips are listed
  in ascending neuron order and each thread adds them to its own fields in that order, as
  the CPU does, with the same 2-cycle test.
* Initial fields: a tiled GEMM.  The CPU's come from BLAS, whose summation order is its
  own; the two agree exactly when no partial sum of +-W_ij rounds in float64, which holds
  when (N - 1) max|w| <= 2^53 lsb, lsb the last-place unit (float32) of the smallest nonzero
  |w|: every weight is then a multiple of lsb and every sum a float64 number.  This is
  checked (on the codebook, or on W by an exact min/max reduction); when it fails the host
  computes the fields with the CPU's own code and uploads them.  The affine path of a
  uniform whole-matrix codebook uses integer sums, exact in any order.
* No fused multiply-add: NVVM contracts a float64 multiply followed by an add into one FMA
  by default, rounding once where the CPU rounds twice.  Every float64 product that feeds
  an add goes through :func:`_mul` (libdevice ``dmul_rn``, never contracted), except the
  GEMM's +-1 x w products, which are exact so that an FMA rounds the same.
* Glauber: the one operation that is not IEEE-exact is exp, from libdevice on the GPU (at
  most 1 ulp from the true value) and from the C library on the CPU.  The two may differ in
  the last bit, which changes a decision only when the uniform draw falls within that bit
  of P(s = +1): about 1e-16 per update.  The simulator uses the C library, as the CPU does.
* Hebbian store: integer sums from bit-packed patterns (agreements minus disagreements, by
  XOR and popcount), then float32(k) / float32(N) rounded once, as numpy does.
* Encode: one thread per 65,536-element chunk sums its chunk in order, as the CPU's
  ``quantization._encode.encode`` does per chunk; the host adds the chunk sums in order.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
from numba import cuda, njit
from numba.cuda import libdevice

from quantization._encode import N_STATS, STAT_SUM_Q, STAT_SUM_QQ, STAT_SUM_Y, STAT_SUM_YQ, STAT_SUM_YY

from . import _device
from . import _kernels as K

SIMULATOR = bool(cuda.config.ENABLE_CUDASIM)
THREADS = 128  # threads per cue block of the dynamics (tests on the simulator set fewer)
MAX_THREADS = 512  # at most this many (sets the size of a shared array)
PENDING = 16  # flips an asynchronous cue holds back from its fields (a compile-time shared shape)
_NO_FLIP = 1 << 62  # "no flip in this window"
_SHARED_CELLS = MAX_THREADS + 1
TILE = 16  # GEMM tiles: TILE x TILE threads per block (compile-time shared-memory shape)
HEBB_R = 4  # tiled products (Hebbian store, initial fields): each thread computes HEBB_R x HEBB_R outputs
HEBB_WORDS = 8  # Hebbian store: 32-bit words of the bit-packed patterns per shared-memory stage
SPAN = TILE * HEBB_R  # rows and columns of an output tile (a compile-time shared-memory shape; set with TILE)
ENCODE_THREADS = 128  # threads per block of the encode kernel (one chunk each)
RANGE_THREADS = 256  # threads per block of the min/max reduction over float W
RANGE_PER_THREAD = 1 << 12  # elements per thread of that reduction, at least

# weight layouts of DeviceWeights
FLOAT = 0  # float32 values
CODES = 1  # uint8 codes into float32 codebook rows (TableWeights' indexing)
AFFINE = 2  # uint8 codes of a uniform whole-matrix codebook, integer field sums

_ASYNC_RANDOM = K.ASYNC_RANDOM
_SYNC = K.SYNC
_GLAUBER_EXP_MAX = K._GLAUBER_EXP_MAX
_CHUNK = _device.ENCODE_CHUNK
_N_STATS = N_STATS
_F64_INTEGERS = 1 << 53  # float64 holds every integer multiple of u up to 2**53 u exactly
_MAX_HEBB_PATTERNS = 1 << 24  # the CPU's float32 GEMM sums exactly below 2**24 patterns

# SplitMix64, the constants of hopfield._kernels
_GAMMA = K._SPLITMIX_GAMMA
_MUL1 = K._SPLITMIX_MUL1
_MUL2 = K._SPLITMIX_MUL2
_SHIFT_UNIFORM = K._UNIFORM_BITS_SHIFT
_INV_2_POW_53 = K._INV_2_POW_53
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


def _splitmix64_step(state):
    """K.splitmix64: (new_state, 64-bit output); uint64 arithmetic wraps by design."""
    state = state + _GAMMA
    z = state
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return state, z ^ (z >> _S31)


if SIMULATOR:
    @cuda.jit(device=True)
    def _mul(a, b):
        return np.float64(a) * np.float64(b)

    @cuda.jit(device=True)
    def _splitmix64(state):
        # the simulator runs this on numpy scalars, which warn when uint64 wraps
        with np.errstate(over="ignore"):
            return _splitmix64_step(state)
else:
    @cuda.jit(device=True)
    def _mul(a, b):
        """a * b in float64, rounded on its own: never contracted into an FMA."""
        return libdevice.dmul_rn(np.float64(a), np.float64(b))

    _splitmix64 = cuda.jit(device=True)(_splitmix64_step)


def _skip_step(state, k):
    """The SplitMix64 state k draws ahead (its state is a Weyl counter)."""
    return state + np.uint64(k) * _GAMMA


if SIMULATOR:
    @cuda.jit(device=True)
    def _skip(state, k):
        with np.errstate(over="ignore"):
            return _skip_step(state, k)
else:
    _skip = cuda.jit(device=True)(_skip_step)


class DeviceWeights(NamedTuple):
    """The couplings on the GPU; the arrays a layout does not use are (1, 1) placeholders."""

    layout: int  # FLOAT, CODES or AFFINE
    values: object  # float32 (N, N) weights (FLOAT)
    codes: object  # uint8 (N, N) codes (CODES, AFFINE)
    codebook: object  # float32 (n_rows, 2**bits) (CODES)
    group: int  # as K.TableWeights
    rows_per_row: int
    symmetric: bool
    scale: float  # AFFINE: W_ij = scale (codes_ij - zero) + offset
    zero: float
    offset: float


class CueState(NamedTuple):
    """Per-cue arrays of the dynamics on the GPU (rows = cues); unused ones are placeholders."""

    S: object  # int8 (C, N) states
    H: object  # float64 (C, N) fields (FLOAT, CODES)
    U: object  # int32 (C, N) integer sums (AFFINE)
    M: object  # int64 (C,) sum of each state (AFFINE)
    order: object  # int32 (C, N) visiting order (async random)
    new: object  # int8 (C, N) next state (sync)
    prev: object  # int8 (C, N) state two steps back (sync)
    flist: object  # int32 (C, N) the neurons a sweep flips, ascending (sync)


# ------------------------------------------------------------------------------ RNG


@cuda.jit(device=True)
def _uniform01(state):
    state, z = _splitmix64(state)
    return state, np.float64(z >> _SHIFT_UNIFORM) * _INV_2_POW_53


@cuda.jit(device=True)
def _shuffle(state, order, c):
    """K.shuffle of row c of ``order`` (one thread)."""
    for k in range(order.shape[1] - 1, 0, -1):
        state, u = _uniform01(state)
        j = int(u * (k + 1))
        t = order[c, k]
        order[c, k] = order[c, j]
        order[c, j] = t
    return state


# ------------------------------------------------------------------------ weights


@cuda.jit(device=True)
def _weight(w, i, j):
    """W[i, j] in float64 (FLOAT and CODES layouts)."""
    if w.layout == FLOAT:
        return np.float64(w.values[i, j])
    return np.float64(w.codebook[i * w.rows_per_row + j // w.group, w.codes[i, j]])


@cuda.jit(device=True)
def _sum_now(w, st, c, j, pf, pd, npend):
    """AFFINE: the integer sum of neuron j of cue c with the first ``npend`` held-back flips
    (neurons pf[k], state changes pd[k] = +-2) added in flip order, as K's flip adds them."""
    u = st.U[c, j]
    for k in range(npend):
        f = pf[k]
        if f != j:
            u += np.int32(pd[k]) * np.int32(w.codes[f, j])  # codes symmetric: row f is column f
    return u


@cuda.jit(device=True)
def _h_now(w, st, c, j, pf, pd, npend):
    """FLOAT and CODES: the float64 field of neuron j of cue c with the first ``npend``
    held-back flips added one by one in flip order, h_j += W[j, f] d, as K's flip adds them."""
    h = st.H[c, j]
    for k in range(npend):
        f = pf[k]
        if f != j:
            wjf = _weight(w, f, j) if w.symmetric else _weight(w, j, f)
            h += _mul(wjf, np.float64(pd[k]))
    return h


@cuda.jit(device=True)
def _field(w, st, c, i, pf, pd, npend):
    """Local field of neuron i of cue c, as K.field, with the held-back flips."""
    if w.layout == AFFINE:
        u = _sum_now(w, st, c, i, pf, pd, npend)
        m = np.float64(st.M[c] - np.int64(st.S[c, i]))
        return _mul(w.scale, np.float64(u) - _mul(w.zero, m)) + _mul(w.offset, m)
    return _h_now(w, st, c, i, pf, pd, npend)


@cuda.jit(device=True)
def _apply(w, st, c, pf, pd, npend):
    """Add the held-back flips to the fields (or sums) of every neuron of cue c, each thread
    its own neurons, then they are no longer held back (the caller resets the count)."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    N = st.S.shape[1]
    if w.layout == AFFINE:
        for j in range(t, N, nt):
            st.U[c, j] = _sum_now(w, st, c, j, pf, pd, npend)
    else:
        for j in range(t, N, nt):
            st.H[c, j] = _h_now(w, st, c, j, pf, pd, npend)


# ------------------------------------------------------------------------ dynamics


@cuda.jit(device=True)
def _decide(hi, si, T, u):
    """K._run_async's update of a neuron with field hi and state si (u: the Glauber draw)."""
    if T > 0.0:
        x = -2.0 * hi / T
        p_up = 1.0 / (1.0 + math.exp(x)) if x < _GLAUBER_EXP_MAX else 0.0
        return 1 if u < p_up else -1
    if hi > 0.0:
        return 1
    if hi < 0.0:
        return -1
    return si


@cuda.jit(device=True)
def _run_async(w, st, c, seed, run, rng, sh, pf, pd):
    """K._run_async for cue c by the whole block, a window of blockDim.x visits at a time.

    Between two flips the state does not change, so the fields of the next visits can all
    be read at once: each thread evaluates one visit of the window, the first visit whose
    neuron flips is found (a block-wide minimum), the visits before it are exactly the
    sequential no-ops, and the scan goes on after it.  A flip is applied to the state at
    once and held back (up to PENDING of them) from the fields, which add the held-back
    flips in flip order when they are read and when the list is full.  Glauber draws come
    from the cue's SplitMix64 stream skipped ahead to each visit (the stream's state is a
    counter).  ``rng``: a shared uint64 cell; ``sh``: a shared int64 array [unused, first
    flip (two cells), held-back count]; ``pf``, ``pd``: shared int32 arrays of PENDING cells."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    N = st.S.shape[1]
    random_order = run.mode == _ASYNC_RANDOM
    T = run.temperature
    glauber = T > 0.0
    state = seed
    if random_order:
        for j in range(t, N, nt):
            st.order[c, j] = j
    if t == 0:
        sh[1] = _NO_FLIP
        sh[2] = _NO_FLIP
        sh[3] = 0
    cell = 0
    for sweep in range(run.max_sweeps):
        if random_order:
            cuda.syncthreads()  # the order is initialised, or read to the end by every thread
            if t == 0:
                state = _shuffle(state, st.order, c)
                rng[0] = state
            cuda.syncthreads()
            state = rng[0]
        else:
            cuda.syncthreads()
        flips = 0
        idx = 0
        while idx < N:
            p = idx + t
            npend = sh[3]
            mine = _NO_FLIP
            i = 0
            new = 0
            if p < N:
                i = st.order[c, p] if random_order else p
                si = np.int64(st.S[c, i])
                hi = _field(w, st, c, i, pf, pd, npend)
                u = 0.0
                if glauber:
                    u = _uniform01(_skip(state, t))[1]  # the (t + 1)-th draw from here
                new = _decide(hi, si, T, u)
                if new != si:
                    mine = p
            cuda.syncthreads()  # every thread has read the state, the fields and the count
            if t == 0:
                sh[2 - cell] = _NO_FLIP  # the other cell, for the next window (read before this barrier)
            if mine != _NO_FLIP:
                cuda.atomic.min(sh, 1 + cell, mine)
            cuda.syncthreads()
            first = sh[1 + cell]
            cell = 1 - cell
            if first == _NO_FLIP:
                if glauber:
                    state = _skip(state, min(nt, N - idx))
                idx += nt
                continue
            if p == first:  # the thread of the first flip applies it; no other thread writes now
                d = 2 * new
                st.S[c, i] = np.int8(new)
                if w.layout == AFFINE:
                    st.M[c] += d
                pf[npend] = np.int32(i)
                pd[npend] = np.int32(d)
                sh[3] = npend + 1
            cuda.syncthreads()  # the new state, M and the held-back list are visible
            if sh[3] == PENDING:
                _apply(w, st, c, pf, pd, PENDING)
                cuda.syncthreads()  # every field is updated and the list read
                if t == 0:
                    sh[3] = 0
                cuda.syncthreads()
            if glauber:
                state = _skip(state, first - idx + 1)
            flips += 1
            idx = first + 1
        if flips == 0:
            return sweep + 1, True
    return run.max_sweeps, False


@cuda.jit(device=True)
def _run_sync(w, st, c, max_sweeps, sh):
    """K._run_sync for cue c by the whole block.  Each sweep's flips are listed in ascending
    neuron order (each thread lists a contiguous stretch of neurons; ``sh`` holds the
    per-thread counts, then their offsets), and each thread adds them to its own neurons'
    fields in that order: the CPU's adds, one pass over the fields per sweep."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    N = st.S.shape[1]
    seg = (N + nt - 1) // nt  # the stretch of neurons thread t lists
    lo = min(N, t * seg)
    hi_ = min(N, lo + seg)
    for j in range(t, N, nt):
        st.prev[c, j] = st.S[c, j]
    for sweep in range(max_sweeps):
        cuda.syncthreads()  # the last sweep's flips are visible
        changed = 0
        for i in range(t, N, nt):
            hi = _field(w, st, c, i, st.flist[c], st.flist[c], 0)  # nothing held back
            si = np.int64(st.S[c, i])
            if hi > 0.0:
                ni = 1
            elif hi < 0.0:
                ni = -1
            else:
                ni = si
            st.new[c, i] = ni
            if ni != si:
                changed = 1
        if cuda.syncthreads_or(changed) == 0:
            return sweep + 1, True
        cycle = False
        if sweep > 0:
            differs = 0
            for i in range(t, N, nt):
                if st.new[c, i] != st.prev[c, i]:
                    differs = 1
            cycle = cuda.syncthreads_or(differs) == 0
        for i in range(t, N, nt):
            st.prev[c, i] = st.S[c, i]
        count = 0
        for i in range(lo, hi_):
            if st.new[c, i] != st.S[c, i]:
                count += 1
        sh[t] = count
        cuda.syncthreads()  # prev holds the old state; the counts are in
        if t == 0:
            acc = 0
            for k in range(nt):
                n_k = sh[k]
                sh[k] = acc
                acc += n_k
            sh[nt] = acc
        cuda.syncthreads()
        k = sh[t]
        for i in range(lo, hi_):
            if st.new[c, i] != st.S[c, i]:
                st.flist[c, k] = i
                k += 1
        n_flips = sh[nt]
        cuda.syncthreads()  # the list is complete; every thread has read the counts
        for j in range(t, N, nt):
            if w.layout == AFFINE:
                u = st.U[c, j]
                for k in range(n_flips):
                    f = st.flist[c, k]
                    if f != j:
                        u += np.int32(2 * st.new[c, f]) * np.int32(w.codes[f, j])
                st.U[c, j] = u
            else:
                h = st.H[c, j]
                for k in range(n_flips):
                    f = st.flist[c, k]
                    if f != j:
                        wjf = _weight(w, f, j) if w.symmetric else _weight(w, j, f)
                        h += _mul(wjf, np.float64(2 * st.new[c, f]))
                st.H[c, j] = h
        cuda.syncthreads()  # every thread has read new[] of the flipped neurons
        for j in range(t, N, nt):
            st.S[c, j] = st.new[c, j]
        if w.layout == AFFINE and t == 0:
            m = st.M[c]
            for k in range(n_flips):
                m += 2 * np.int64(st.new[c, st.flist[c, k]])
            st.M[c] = m
        if cycle:  # a 2-cycle: synchronous dynamics would alternate forever
            return sweep + 1, False
    return max_sweeps, False


@cuda.jit
def _recall_kernel(w, st, seeds, run, sweeps, converged):
    """One block per cue (blockIdx.x); S is updated in place (the fields or sums of ``st``
    too, except for the flips an asynchronous run still holds back when it ends)."""
    c = cuda.blockIdx.x
    rng = cuda.shared.array(1, np.uint64)
    sh = cuda.shared.array(_SHARED_CELLS, np.int64)
    pf = cuda.shared.array(PENDING, np.int32)
    pd = cuda.shared.array(PENDING, np.int32)
    if run.mode == _SYNC:
        n, ok = _run_sync(w, st, c, run.max_sweeps, sh)
    else:
        n, ok = _run_async(w, st, c, seeds[c], run, rng, sh, pf, pd)
    if cuda.threadIdx.x == 0:
        sweeps[c] = n
        converged[c] = ok


# ----------------------------------------------------------------- initial fields


@cuda.jit
def _table_fields_kernel(w, S, H):
    """H[c, i] = sum_{j != i} W[i, j] S[c, j] in float64.  TILE x TILE threads, each
    HEBB_R x HEBB_R outputs (cues c0 + ty + u TILE, neurons i0 + tx + v TILE) of a tile of
    TILE HEBB_R cues (blockIdx.x) by as many neurons (blockIdx.y), TILE terms j in shared
    memory at a time.  The products +-1 x w are exact."""
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    C, N = S.shape
    span = SPAN
    c0 = cuda.blockIdx.x * span
    i0 = cuda.blockIdx.y * span
    sS = cuda.shared.array((TILE, SPAN), np.float64)  # [j, cue]
    sW = cuda.shared.array((TILE, SPAN), np.float64)  # [j, neuron]
    acc = cuda.local.array((HEBB_R, HEBB_R), np.float64)
    for u in range(HEBB_R):
        for v in range(HEBB_R):
            acc[u, v] = 0.0
    tid = ty * TILE + tx
    for j0 in range(0, N, TILE):
        for e in range(tid, span * TILE, TILE * TILE):
            r = e // TILE
            k = e % TILE
            c = c0 + r
            i = i0 + r
            j = j0 + k
            sS[k, r] = np.float64(S[c, j]) if c < C and j < N else 0.0
            sW[k, r] = _weight(w, i, j) if i < N and j < N and i != j else 0.0
        cuda.syncthreads()
        for k in range(TILE):
            for u in range(HEBB_R):
                sv = sS[k, ty + u * TILE]
                for v in range(HEBB_R):
                    acc[u, v] += sv * sW[k, tx + v * TILE]
        cuda.syncthreads()
    for u in range(HEBB_R):
        c = c0 + ty + u * TILE
        for v in range(HEBB_R):
            i = i0 + tx + v * TILE
            if c < C and i < N:
                H[c, i] = acc[u, v]


@cuda.jit
def _affine_sums_kernel(codes, S, U):
    """U[c, i] = sum_{j != i} codes[i, j] S[c, j] in int32, tiled as _table_fields_kernel."""
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    C, N = S.shape
    span = SPAN
    c0 = cuda.blockIdx.x * span
    i0 = cuda.blockIdx.y * span
    sS = cuda.shared.array((TILE, SPAN), np.int32)  # [j, cue]
    sC = cuda.shared.array((TILE, SPAN), np.int32)  # [j, neuron]
    acc = cuda.local.array((HEBB_R, HEBB_R), np.int32)
    for u in range(HEBB_R):
        for v in range(HEBB_R):
            acc[u, v] = 0
    tid = ty * TILE + tx
    for j0 in range(0, N, TILE):
        for e in range(tid, span * TILE, TILE * TILE):
            r = e // TILE
            k = e % TILE
            c = c0 + r
            i = i0 + r
            j = j0 + k
            sS[k, r] = np.int32(S[c, j]) if c < C and j < N else np.int32(0)
            sC[k, r] = np.int32(codes[i, j]) if i < N and j < N and i != j else np.int32(0)
        cuda.syncthreads()
        for k in range(TILE):
            for u in range(HEBB_R):
                sv = sS[k, ty + u * TILE]
                for v in range(HEBB_R):
                    acc[u, v] += sv * sC[k, tx + v * TILE]
        cuda.syncthreads()
    for u in range(HEBB_R):
        c = c0 + ty + u * TILE
        for v in range(HEBB_R):
            i = i0 + tx + v * TILE
            if c < C and i < N:
                U[c, i] = acc[u, v]


@cuda.jit
def _abs_range_kernel(values, out):
    """out[0] = max |w|, out[1] = min nonzero |w| over a float32 matrix (min/max atomics:
    exact in any order); out must hold (0, inf) before."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    R, N = values.shape
    hi = np.float32(0.0)
    lo = np.float32(np.inf)
    for k in range(start, R * N, stride):
        a = abs(values[k // N, k % N])
        if a > hi:
            hi = a
        if a > 0 and a < lo:
            lo = a
    cuda.atomic.max(out, 0, hi)
    cuda.atomic.min(out, 1, lo)


# ------------------------------------------------------------------ store, encode


@cuda.jit
def _hebb_kernel(B, P, r0, W):
    """W[a, j] = float32(P - 2 popc(B[r0 + a] ^ B[j])) / float32(N), 0 where r0 + a == j:
    a slab of rows of the Hebbian matrix from bit-packed patterns.  B is (N, words) uint32,
    bit p of neuron n set when x_pn = +1, padding bits 0; agreements minus disagreements
    over the P patterns is P - 2 (disagreements), an exact integer.  TILE x TILE threads,
    each HEBB_R x HEBB_R outputs (rows ty + u TILE, columns tx + v TILE) of a square tile of
    TILE HEBB_R slab rows (blockIdx.y) by as many columns (blockIdx.x), HEBB_WORDS words of
    the patterns in shared memory at a time."""
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    N, n_words = B.shape
    rows = W.shape[0]
    span = SPAN
    a0 = cuda.blockIdx.y * span
    j0 = cuda.blockIdx.x * span
    sA = cuda.shared.array((HEBB_WORDS, SPAN), np.uint32)  # [word, slab row]
    sB = cuda.shared.array((HEBB_WORDS, SPAN), np.uint32)  # [word, column]
    acc = cuda.local.array((HEBB_R, HEBB_R), np.int32)
    for u in range(HEBB_R):
        for v in range(HEBB_R):
            acc[u, v] = 0
    tid = ty * TILE + tx
    for w0 in range(0, n_words, HEBB_WORDS):
        for e in range(tid, span * HEBB_WORDS, TILE * TILE):
            r = e // HEBB_WORDS
            k = e % HEBB_WORDS
            a = a0 + r
            j = j0 + r
            wd = w0 + k
            sA[k, r] = B[r0 + a, wd] if a < rows and wd < n_words else np.uint32(0)
            sB[k, r] = B[j, wd] if j < N and wd < n_words else np.uint32(0)
        cuda.syncthreads()
        for k in range(HEBB_WORDS):
            for u in range(HEBB_R):
                av = sA[k, ty + u * TILE]
                for v in range(HEBB_R):
                    acc[u, v] += cuda.popc(av ^ sB[k, tx + v * TILE])
        cuda.syncthreads()
    for u in range(HEBB_R):
        a = a0 + ty + u * TILE
        for v in range(HEBB_R):
            j = j0 + tx + v * TILE
            if a < rows and j < N:
                W[a, j] = np.float32(0.0) if r0 + a == j else np.float32(P - 2 * acc[u, v]) / np.float32(N)


def _pack_patterns(X: np.ndarray) -> np.ndarray:
    """(N, ceil(P / 32)) uint32: bit p of row n is 1 where X[p, n] = +1, padding bits 0."""
    P, N = X.shape
    words = -(-P // 32)
    bits = np.packbits(X.T > 0, axis=1, bitorder="little")  # (N, ceil(P / 8)) bytes, little-endian bit order
    out = np.zeros((N, 4 * words), np.uint8)
    out[:, :bits.shape[1]] = bits
    return out.view("<u4").astype(np.uint32, copy=False)


@cuda.jit
def _encode_kernel(X, r0, center, inv, thr, levels, codes, part):
    """quantization._encode.encode's per-chunk work on a piece X of the rows being encoded
    (rows r0.. whole, or a chunk-aligned stretch of one row): one thread per chunk of
    ENCODE_CHUNK elements writes the codes (nearest level, ties up) and the chunk's five
    sums, added in element order."""
    g = cuda.grid(1)
    R, n = X.shape
    per_row = (n + _CHUNK - 1) // _CHUNK
    if g < R * per_row:
        r = g // per_row
        k0 = (g % per_row) * _CHUNK
        k1 = min(n, k0 + _CHUNK)
        rr = r0 + r
        ctr = center[rr]
        iv = inv[rr]
        n_thr = thr.shape[1]
        sy = 0.0
        syy = 0.0
        sq = 0.0
        sqq = 0.0
        syq = 0.0
        for k in range(k0, k1):
            y = _mul(np.float64(X[r, k]) - ctr, iv)
            lo = 0
            hi = n_thr
            while lo < hi:  # np.searchsorted(thr[rr], y, side="right")
                mid = (lo + hi) // 2
                if thr[rr, mid] <= y:
                    lo = mid + 1
                else:
                    hi = mid
            codes[r, k] = lo
            q = levels[rr, lo]
            sy += y
            syy += _mul(y, y)
            sq += q
            sqq += _mul(q, q)
            syq += _mul(y, q)
        part[g, STAT_SUM_Y] = sy
        part[g, STAT_SUM_YY] = syy
        part[g, STAT_SUM_Q] = sq
        part[g, STAT_SUM_QQ] = sqq
        part[g, STAT_SUM_YQ] = syq


@njit(cache=True)
def _sum_chunks(part, stats):
    """stats[r, k] = sum over the chunks of row r of part[r, chunk, k], in chunk order."""
    R, n_chunks, n_stats = part.shape
    for r in range(R):
        for k in range(n_stats):
            acc = 0.0
            for c in range(n_chunks):
                acc += part[r, c, k]
            stats[r, k] = acc


# ----------------------------------------------------------------------- wrappers


def free_memory() -> tuple[float, float]:
    """(free, total) bytes of the current GPU (infinite on the simulator)."""
    mem = cuda.current_context().get_memory_info()
    return float(mem[0]), float(mem[1])


def check_fits(fp: _device.Footprint, fix: str) -> None:
    """Refuse, before anything is allocated, a step whose footprint exceeds the free memory."""
    free, total = free_memory()
    if fp.total > free:
        raise MemoryError(f"{fp} does not fit on the GPU: {_device.size_text(free)} free of "
                          f"{_device.size_text(total)}. {fix}")


def _blocks(n: int, per_block: int) -> int:
    return max(1, -(-n // per_block))


def hebb(X: np.ndarray) -> np.ndarray:
    """Hebbian weights W = X^T X / N (float32, zero diagonal) of int8 +-1 patterns (P, N),
    computed on the GPU in slabs of rows; equal to the CPU's float32 GEMM for P < 2**24."""
    P, N = X.shape
    if P >= _MAX_HEBB_PATTERNS:
        raise ValueError(f"device='cuda' stores fewer than 2**24 patterns (float32 sums on the CPU are exact only "
                         f"below that), got P={P:,}; use device='cpu'.")
    check_fits(_device.footprint("store", N, n_patterns=P), "Store with device='cpu'.")
    W = np.empty((N, N), np.float32)
    rows = _device._slab_rows(N)
    dB = cuda.to_device(_pack_patterns(X))
    dW = cuda.device_array((rows, N), np.float32)
    span = SPAN
    for r0 in range(0, N, rows):
        n_rows = min(rows, N - r0)
        out = dW[:n_rows]
        _hebb_kernel[(_blocks(N, span), _blocks(n_rows, span)), (TILE, TILE)](dB, P, r0, out)
        out.copy_to_host(W[r0:r0 + n_rows])
    return W


def _pieces(R: int, n: int, budget: int):
    """(r0, r1, i0, i1): whole rows r0..r1 when a row fits in ``budget`` elements, else
    chunk-aligned stretches [i0, i1) of one row."""
    if n <= budget:
        rows = max(1, budget // n)
        for r0 in range(0, R, rows):
            yield r0, min(R, r0 + rows), 0, n
    else:
        step = max(_CHUNK, budget // _CHUNK * _CHUNK)
        for r in range(R):
            for i0 in range(0, n, step):
                yield r, r + 1, i0, min(n, i0 + step)


def encode(X, center, scale, fit_levels, codes, stats) -> None:
    """``quantization._encode.encode`` on the GPU, with its contract: codes (R, n) uint8 and
    stats (R, 5) of the rows X, the same values bit for bit (the fit stays on the host)."""
    R, n = X.shape
    piece = _device.encode_piece_elements()
    check_fits(_device.footprint("quantize", int(math.isqrt(R * n))), "Quantize with device='cpu'.")
    per_row = -(-n // _CHUNK)
    inv = 1.0 / np.asarray(scale, np.float64)
    levels = np.ascontiguousarray(fit_levels, dtype=np.float64)
    thr = np.ascontiguousarray(0.5 * (levels[:, :-1] + levels[:, 1:]))
    d_center = cuda.to_device(np.ascontiguousarray(center, dtype=np.float64))
    d_inv, d_thr, d_levels = cuda.to_device(inv), cuda.to_device(thr), cuda.to_device(levels)
    part = np.empty((R, per_row, _N_STATS))
    for r0, r1, i0, i1 in _pieces(R, n, piece):
        dX = cuda.to_device(np.ascontiguousarray(X[r0:r1, i0:i1]))
        dC = cuda.device_array((r1 - r0, i1 - i0), np.uint8)
        n_chunks = (r1 - r0) * -(-(i1 - i0) // _CHUNK)
        dP = cuda.device_array((n_chunks, _N_STATS), np.float64)
        threads = min(ENCODE_THREADS, n_chunks)
        _encode_kernel[_blocks(n_chunks, threads), threads](dX, r0, d_center, d_inv, d_thr, d_levels, dC, dP)
        codes[r0:r1, i0:i1] = dC.copy_to_host()
        part[r0:r1, i0 // _CHUNK:i0 // _CHUNK + n_chunks // (r1 - r0)] = dP.copy_to_host().reshape(r1 - r0, -1,
                                                                                                   _N_STATS)
    _sum_chunks(part, stats)


def _sums_exact(absmax: float, min_nonzero: float, n_neurons: int) -> bool:
    """Whether every partial sum of n_neurons - 1 terms +-w is a float64 number, for float32
    weights with max |w| = absmax and smallest nonzero |w| = min_nonzero."""
    if not absmax > 0 or not np.isfinite(min_nonzero):
        return True  # all zero
    lsb = Fraction(float(np.spacing(np.float32(min_nonzero))))  # every |w| is a multiple of it
    return (n_neurons - 1) * Fraction(float(absmax)) <= _F64_INTEGERS * lsb  # compared exactly


def _codebook_exact(codebook: np.ndarray, n_neurons: int) -> bool:
    a = np.abs(codebook.astype(np.float64))
    nz = a[a > 0]
    return _sums_exact(float(a.max()), float(nz.min()) if nz.size else np.inf, n_neurons)


def _float_exact(d_values, n_neurons: int) -> bool:
    out = cuda.to_device(np.array([0.0, np.inf], np.float32))
    n = d_values.shape[0] * d_values.shape[1]
    threads = min(RANGE_THREADS, n)
    _abs_range_kernel[_blocks(n, threads * RANGE_PER_THREAD), threads](d_values, out)
    absmax, min_nonzero = out.copy_to_host()
    return _sums_exact(float(absmax), float(min_nonzero), n_neurons)


def _dynamics_name(run: K.RunOptions) -> str:
    return {K.SYNC: "sync", K.ASYNC_FIXED: "async-fixed"}.get(run.mode, "async")


def _placeholder(dtype, ndim: int = 2):
    return cuda.to_device(np.zeros((1,) * ndim, dtype))


def _cue_state(S, run, *, H=None, U=None, M=None) -> CueState:
    C, N = S.shape
    async_random = run.mode == K.ASYNC_RANDOM
    sync = run.mode == K.SYNC
    return CueState(
        S=S,
        H=H if H is not None else _placeholder(np.float64),
        U=U if U is not None else _placeholder(np.int32),
        M=M if M is not None else _placeholder(np.int64, 1),
        order=cuda.device_array((C, N), np.int32) if async_random else _placeholder(np.int32),
        new=cuda.device_array((C, N), np.int8) if sync else _placeholder(np.int8),
        prev=cuda.device_array((C, N), np.int8) if sync else _placeholder(np.int8),
        flist=cuda.device_array((C, N), np.int32) if sync else _placeholder(np.int32),
    )


def _launch_recall(w: DeviceWeights, st: CueState, S, seeds, run, sweeps, converged) -> None:
    C, N = S.shape
    d_sweeps = cuda.device_array(C, np.int64)
    d_conv = cuda.device_array(C, np.bool_)
    run = K.RunOptions(int(run.max_sweeps), int(run.mode), float(run.temperature))
    _recall_kernel[C, max(1, min(THREADS, MAX_THREADS, N))](w, st, cuda.to_device(seeds), run, d_sweeps, d_conv)
    S[:] = st.S.copy_to_host()
    sweeps[:] = d_sweeps.copy_to_host()
    converged[:] = d_conv.copy_to_host()


def recall_table(tw: K.TableWeights, S, seeds, run: K.RunOptions, sweeps, converged, host_fields) -> None:
    """``K.recall`` on the GPU: S (int8 (C, N)), sweeps and converged updated in place.
    ``host_fields(S)`` gives the CPU's float64 fields, used when the sums may round."""
    C, N = S.shape
    is_float = tw.values.dtype.kind == "f"
    fp = _device.footprint("recall", N, n_cues=C, weights="float32" if is_float else "codes",
                           dynamics=_dynamics_name(run), bits=max(0, int(tw.codebook.shape[1]).bit_length() - 1),
                           codebook_rows=tw.codebook.shape[0])
    check_fits(fp, "Recall fewer cues at a time, or use device='cpu'.")
    exact = True if is_float else _codebook_exact(tw.codebook, N)
    f32_1x1 = _placeholder(np.float32)
    if is_float:
        d_values = cuda.to_device(tw.values)
        w = DeviceWeights(FLOAT, d_values, _placeholder(np.uint8), f32_1x1, int(tw.group), int(tw.rows_per_row),
                          bool(tw.symmetric), 0.0, 0.0, 0.0)
        exact = _float_exact(d_values, N)
    else:
        w = DeviceWeights(CODES, f32_1x1, cuda.to_device(tw.values), cuda.to_device(tw.codebook), int(tw.group),
                          int(tw.rows_per_row), bool(tw.symmetric), 0.0, 0.0, 0.0)
    dS = cuda.to_device(S)
    if exact:
        H = cuda.device_array((C, N), np.float64)
        span = SPAN
        _table_fields_kernel[(_blocks(C, span), _blocks(N, span)), (TILE, TILE)](w, dS, H)
    else:
        H = cuda.to_device(np.ascontiguousarray(host_fields(S), dtype=np.float64))
    _launch_recall(w, _cue_state(dS, run, H=H), S, seeds, run, sweeps, converged)


def recall_affine(aw: K.AffineWeights, S, seeds, run: K.RunOptions, sweeps, converged) -> None:
    """``K.recall_affine`` on the GPU, integer sums computed there; arrays as recall_table."""
    C, N = S.shape
    check_fits(_device.footprint("recall", N, n_cues=C, weights="affine", dynamics=_dynamics_name(run)),
               "Recall fewer cues at a time, or use device='cpu'.")
    d_codes = cuda.to_device(aw.codes)
    w = DeviceWeights(AFFINE, _placeholder(np.float32), d_codes, _placeholder(np.float32), N, 0, True,
                      float(aw.scale), float(aw.zero), float(aw.offset))
    dS = cuda.to_device(S)
    U = cuda.device_array((C, N), np.int32)
    span = SPAN
    _affine_sums_kernel[(_blocks(C, span), _blocks(N, span)), (TILE, TILE)](d_codes, dS, U)
    M = cuda.to_device(S.sum(axis=1, dtype=np.int64))
    _launch_recall(w, _cue_state(dS, run, U=U, M=M), S, seeds, run, sweeps, converged)
