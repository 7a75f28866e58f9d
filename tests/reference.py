"""Slow, obvious reference implementations that the numba kernels are tested against."""

from __future__ import annotations

import itertools

import numpy as np


def pack_bits(codes, bits):
    """Bit by bit, LSB first."""
    stream = []
    for c in np.asarray(codes).ravel():
        for b in range(bits):
            stream.append((int(c) >> b) & 1)
    out = []
    for i in range(0, len(stream), 8):
        byte = 0
        for b, bit in enumerate(stream[i:i + 8]):
            byte |= bit << b
        out.append(byte)
    return np.array(out, np.uint8)


def unpack_bits(buf, bits, n):
    stream = []
    for byte in np.asarray(buf, np.uint8):
        for b in range(8):
            stream.append((int(byte) >> b) & 1)
    return np.array([sum(stream[i * bits + b] << b for b in range(bits)) for i in range(n)], np.uint8)


def encode(y, levels):
    """Nearest level by distance; ties go to the larger level."""
    y = np.asarray(y, np.float64)
    L = np.asarray(levels, np.float64)
    out = np.empty(y.size, np.int64)
    for i, v in enumerate(y.ravel()):
        d = np.abs(v - L)
        best = np.flatnonzero(d == d.min())
        out[i] = best[-1]
    return out


def uniform_levels(step, z, offset, K):
    return np.array([step * (k - z) + offset for k in range(K)])


def exponential_levels(c, q, variant, offset, K):
    half = K // 2
    npos, nneg = {0: (half, half), 1: (half, half - 1), 2: (half - 1, half)}[variant]
    pos = [c * q ** j for j in range(npos)]
    neg = [-c * q ** j for j in range(nneg)]
    zero = [0.0] if variant else []
    return np.array(sorted(neg + zero + pos)) + offset


def grid_score(x, levels, objective, preserve_mean):
    """rho (objective 'correlation') or minus the squared error ('mse')."""
    x = np.asarray(x, np.float64)
    q = np.asarray(levels, np.float64)[encode(x, levels)]
    if objective == "mse":
        err = q - x
        if preserve_mean:
            err = err - err.mean()
        return -float(np.sum(err * err))
    if not preserve_mean:
        den = np.sqrt(np.sum(x * x) * np.sum(q * q))
        return float(np.sum(x * q) / den) if den > 0 else 0.0
    if np.std(q) == 0:
        return 0.0
    return float(np.corrcoef(x, q)[0, 1])


def kmeans1d_sse(x, k):
    """Optimal within-cluster sum of squares of 1-D points into <= k clusters,
    O(k n^2) dynamic programming over sorted points."""
    s = np.sort(np.asarray(x, np.float64))
    n = s.size

    def sse(i, j):
        seg = s[i:j]
        return float(np.sum((seg - seg.mean()) ** 2))

    D = np.full((k + 1, n + 1), np.inf)
    D[0, 0] = 0.0
    for kk in range(1, k + 1):
        for j in range(1, n + 1):
            D[kk, j] = min(D[kk - 1, i] + sse(i, j) for i in range(j))
    return float(D[1:, n].min())


def kmeans1d_brute(x, k):
    """Exhaustive over every way to cut the sorted points into <= k runs (tiny n)."""
    s = np.sort(np.asarray(x, np.float64))
    n = s.size
    best = np.inf
    for m in range(1, k + 1):
        for cuts in itertools.combinations(range(1, n), m - 1):
            edges = (0,) + cuts + (n,)
            tot = sum(float(np.sum((s[a:b] - s[a:b].mean()) ** 2)) for a, b in zip(edges[:-1], edges[1:]))
            best = min(best, tot)
    return best
