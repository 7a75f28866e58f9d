"""Encoding (nearest-level codes and their sums), codebook lookup and bit packing.

Conventions (ties to the upper level, sorted levels, no validation here): ``_grids.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

ENCODE_CHUNK = 1 << 16  # elements per parallel task of encode: long rows use every thread
_LINEAR_MAX_LEVELS = 16  # up to this many levels encode counts thresholds (branch-free), not bisects

# columns of encode's per-row stats (y the normalised data, q its fit level)
STAT_SUM_Y = 0
STAT_SUM_YY = 1
STAT_SUM_Q = 2
STAT_SUM_QQ = 3
STAT_SUM_YQ = 4
N_STATS = 5


# ------------------------------------------------------------------- encode and stats


@njit(cache=True, parallel=True)
def encode(X, center, scale, fit_levels, codes, stats):
    """Nearest-level codes of every element of the rows ``X`` (any float dtype), with
    y = (x - center[r]) / scale[r] computed on the fly in float64 (ties to the upper
    level), and per-row sums stats[r] = (sum y, sum y^2, sum q, sum q^2, sum y q) with q
    the fit level (columns STAT_*).  Work is split into chunks of ENCODE_CHUNK elements,
    so one huge row uses every thread as well as many small rows do."""
    R, n = X.shape
    K = fit_levels.shape[1]
    per_row = (n + ENCODE_CHUNK - 1) // ENCODE_CHUNK
    nchunk = R * per_row
    part = np.zeros((nchunk, N_STATS))
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
            if K <= _LINEAR_MAX_LEVELS:  # count the thresholds <= y: np.searchsorted's side="right"
                k = 0
                for j in range(K - 1):
                    k += thr[j] <= y
            else:
                k = np.searchsorted(thr, y, side="right")
            codes[r, i] = k
            q = fit_levels[r, k]
            sy += y
            syy += y * y
            sq += q
            sqq += q * q
            syq += y * q
        part[c, STAT_SUM_Y] = sy
        part[c, STAT_SUM_YY] = syy
        part[c, STAT_SUM_Q] = sq
        part[c, STAT_SUM_QQ] = sqq
        part[c, STAT_SUM_YQ] = syq
    for r in range(R):
        for k in range(N_STATS):
            acc = 0.0
            for c in range(r * per_row, (r + 1) * per_row):
                acc += part[c, k]
            stats[r, k] = acc


@njit(cache=True, parallel=True)
def row_range(X, lo, hi):
    """lo[r] = min and hi[r] = max of row r of the float rows ``X`` (no NaN), in chunks of
    ENCODE_CHUNK elements as :func:`encode`: min and max are exact in any order, so the
    result equals numpy's as a value whatever the thread count (of equal zeros of both signs
    numpy and this may keep different ones)."""
    R, n = X.shape
    per_row = (n + ENCODE_CHUNK - 1) // ENCODE_CHUNK
    nchunk = R * per_row
    part = np.empty((nchunk, 2))
    for c in prange(nchunk):
        r = c // per_row
        i0 = (c % per_row) * ENCODE_CHUNK
        i1 = min(n, i0 + ENCODE_CHUNK)
        a = np.float64(X[r, i0])
        b = a
        for i in range(i0 + 1, i1):
            x = np.float64(X[r, i])
            a = min(a, x)
            b = max(b, x)
        part[c, 0] = a
        part[c, 1] = b
    for r in range(R):
        a = part[r * per_row, 0]
        b = part[r * per_row, 1]
        for c in range(r * per_row + 1, (r + 1) * per_row):
            a = min(a, part[c, 0])
            b = max(b, part[c, 1])
        lo[r] = a
        hi[r] = b


@njit(cache=True, parallel=True)
def finite_absmax(x):
    """(number of non-finite elements, max |x| over the finite ones) of the flat float
    array ``x``, in chunks of ENCODE_CHUNK elements (both exact in any order)."""
    n = x.size
    nchunk = (n + ENCODE_CHUNK - 1) // ENCODE_CHUNK
    bad = np.zeros(nchunk, np.int64)
    peak = np.zeros(nchunk)
    for c in prange(nchunk):
        i1 = min(n, (c + 1) * ENCODE_CHUNK)
        nb = 0
        m = 0.0
        for i in range(c * ENCODE_CHUNK, i1):
            a = abs(np.float64(x[i]))
            if a <= 1.7976931348623157e308:  # finite: False for NaN and inf
                m = max(m, a)
            else:
                nb += 1
        bad[c] = nb
        peak[c] = m
    return bad.sum(), peak.max()


@njit(cache=True, parallel=True)
def copy_flat(src, dst):
    """dst[:] = src[:] for flat arrays, in parallel chunks (numpy copies on one thread)."""
    n = src.size
    for c in prange((n + ENCODE_CHUNK - 1) // ENCODE_CHUNK):
        for i in range(c * ENCODE_CHUNK, min(n, (c + 1) * ENCODE_CHUNK)):
            dst[i] = src[i]


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
