"""Encoding (nearest-level codes and their sums), codebook lookup and bit packing.

Conventions (ties to the upper level, sorted levels, no validation here): ``_grids.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

ENCODE_CHUNK = 1 << 16  # elements per parallel task of encode: long rows use every thread

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
