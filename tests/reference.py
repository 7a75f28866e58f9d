"""Slow, obvious reference implementations that the numba kernels are tested against."""

from __future__ import annotations

import itertools
import math

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


# ------------------------------------------------------------------------- Hopfield

MASK64 = (1 << 64) - 1


def splitmix64(state):
    """Steele, Lea & Flood's SplitMix64 on Python ints: (new_state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def uniform01(state):
    state, z = splitmix64(state)
    return state, (z >> 11) / 2.0**53


def shuffle(state, order):
    order = list(order)
    for k in range(len(order) - 1, 0, -1):
        state, u = uniform01(state)
        j = int(u * (k + 1))
        order[k], order[j] = order[j], order[k]
    return state, order


def hebb(patterns):
    """The textbook loop: w_ij = (1/N) sum_mu xi_i xi_j, w_ii = 0."""
    P, N = patterns.shape
    W = np.zeros((N, N))
    for x in patterns:
        for i in range(N):
            for j in range(N):
                if i != j:
                    W[i, j] += x[i] * x[j] / N
    return W


def storkey(patterns):
    """Storkey (1997) with h_ij = sum_{k != i, j} w_ik xi_k, written out."""
    P, N = patterns.shape
    W = np.zeros((N, N))
    for x in patterns.astype(float):
        old = W.copy()
        for i in range(N):
            for j in range(N):
                if i == j:
                    continue
                h_ij = sum(old[i, k] * x[k] for k in range(N) if k not in (i, j))
                h_ji = sum(old[j, k] * x[k] for k in range(N) if k not in (i, j))
                W[i, j] = old[i, j] + (x[i] * x[j] - x[i] * h_ji - h_ij * x[j]) / N
    return W


def field(W, s, i):
    return math.fsum(W[i, j] * s[j] for j in range(len(s)) if j != i)


def energy(W, s):
    N = len(s)
    return -0.5 * math.fsum(W[i, j] * s[i] * s[j] for i in range(N) for j in range(N) if i != j)


def async_recall(W, s0, seed, max_sweeps, random_order=True, temperature=0.0):
    """One neuron at a time, fields recomputed from scratch; returns
    (state, sweeps, converged, energies after every flip)."""
    s = np.array(s0, np.int64)
    N = len(s)
    state = int(seed)
    order = list(range(N))
    energies = [energy(W, s)]
    for sweep in range(max_sweeps):
        if random_order:
            state, order = shuffle(state, order)
        flips = 0
        for i in order:
            h = field(W, s, i)
            if temperature > 0:
                state, u = uniform01(state)
                x = -2.0 * h / temperature
                new = 1 if u < (1.0 / (1.0 + math.exp(x)) if x < 700 else 0.0) else -1
            else:
                new = 1 if h > 0 else (-1 if h < 0 else s[i])
            if new != s[i]:
                s[i] = new
                flips += 1
                energies.append(energy(W, s))
        if flips == 0:
            return s, sweep + 1, True, energies
    return s, max_sweeps, False, energies


def sync_recall(W, s0, max_sweeps):
    """All neurons at once; stops at a fixed point or a 2-cycle."""
    s = np.array(s0, np.int64)
    prev = s.copy()
    for sweep in range(max_sweeps):
        new = np.array([1 if (h := field(W, s, i)) > 0 else (-1 if h < 0 else s[i]) for i in range(len(s))])
        if np.array_equal(new, s):
            return s, sweep + 1, True
        if sweep > 0 and np.array_equal(new, prev):
            return new, sweep + 1, False
        prev, s = s, new
    return s, max_sweeps, False


# ---------------------------------------------------------------------- CNN layers


def conv2d(x, W, b, stride, pad, groups):
    """Direct loops over every output element."""
    N, C, H, Wd = x.shape
    O, Cg, k, _ = W.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH = (H + 2 * pad - k) // stride + 1
    OW = (Wd + 2 * pad - k) // stride + 1
    og = O // groups
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            g = o // og
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, g * Cg:(g + 1) * Cg, i * stride:i * stride + k, j * stride:j * stride + k]
                    y[n, o, i, j] = np.sum(patch * W[o]) + (b[o] if b is not None else 0.0)
    return y


def pool2d(x, k, stride, op):
    N, C, H, W = x.shape
    OH, OW = (H - k) // stride + 1, (W - k) // stride + 1
    y = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    y[n, c, i, j] = op(x[n, c, i * stride:i * stride + k, j * stride:j * stride + k])
    return y


# ------------------------------------------------------------------ normal (NF) scheme


def nearest_codes_absmax(w, table):
    """bitsandbytes' NF encode of one row: each w / max|w| to its nearest table level
    (ties to the larger level), by distance to every level."""
    w = np.asarray(w, np.float64).ravel()
    absmax = np.abs(w).max()
    return encode(w / absmax if absmax > 0 else w, table)


def best_scale_dense(y, table, objective, preserve_mean, lo, n_points=20001):
    """Brute force over the scale: the best score (as :func:`grid_score`) of the grid
    ``alpha * table`` for alpha on a dense linear grid over [lo, 1] plus alpha = 1, every
    element encoded by distance to every level (ties to the larger); returns (score, alpha)."""
    y = np.asarray(y, np.float64).ravel()
    T = np.asarray(table, np.float64)
    alphas = np.concatenate([np.linspace(lo, 1.0, n_points), [1.0]])
    L = alphas[:, None] * T[None, :]                      # (A, K)
    d = np.abs(y[None, :, None] - L[:, None, :])          # (A, n, K)
    last_min = T.size - 1 - np.argmin(d[:, :, ::-1], axis=2)
    q = np.take_along_axis(L, last_min, axis=1)           # (A, n)
    if objective == "mse":
        err = q - y[None, :]
        if preserve_mean:
            err = err - err.mean(axis=1, keepdims=True)
        score = -np.sum(err * err, axis=1)
    elif preserve_mean:
        qc = q - q.mean(axis=1, keepdims=True)
        yc = y - y.mean()
        den = np.sqrt(np.sum(qc * qc, axis=1) * np.sum(yc * yc))
        score = np.where(den > 0, np.sum(qc * yc[None, :], axis=1) / np.where(den > 0, den, 1), 0.0)
    else:
        den = np.sqrt(np.sum(q * q, axis=1) * np.sum(y * y))
        score = np.where(den > 0, np.sum(q * y[None, :], axis=1) / np.where(den > 0, den, 1), 0.0)
    i = int(np.argmax(score))
    return float(score[i]), float(alphas[i])


# ------------------------------------------------------------------ CNN engine: padding, depthwise


def _pad4(padding):
    return (padding,) * 4 if np.isscalar(padding) else tuple(int(p) for p in padding)


def conv2d_padded(x, W, b, stride, padding, groups):
    """Direct loops over every output element and every tap; ``padding`` is an int or
    (top, bottom, left, right); a tap outside the input reads 0.  float64."""
    top, bottom, left, right = _pad4(padding)
    N, C, H, Wd = x.shape
    O, Cg, kh, kw = W.shape
    OH = (H + top + bottom - kh) // stride + 1
    OW = (Wd + left + right - kw) // stride + 1
    og = O // groups
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            g = o // og
            for i in range(OH):
                for j in range(OW):
                    acc = float(b[o]) if b is not None else 0.0
                    for cg in range(Cg):
                        for ki in range(kh):
                            for kj in range(kw):
                                ih, iw = i * stride + ki - top, j * stride + kj - left
                                if 0 <= ih < H and 0 <= iw < Wd:
                                    acc += float(x[n, g * Cg + cg, ih, iw]) * float(W[o, cg, ki, kj])
                    y[n, o, i, j] = acc
    return y


def conv2d_padded_backward(x, W, dy, stride, padding, groups):
    """Gradients (dx, dW, db) of sum(dy * conv2d_padded(x, W, b, ...)) by the same loops."""
    top, _, left, _ = _pad4(padding)
    N, C, H, Wd = x.shape
    O, Cg, kh, kw = W.shape
    OH, OW = dy.shape[2], dy.shape[3]
    og = O // groups
    dx, dW = np.zeros(x.shape), np.zeros(W.shape)
    for n in range(N):
        for o in range(O):
            g = o // og
            for i in range(OH):
                for j in range(OW):
                    d = float(dy[n, o, i, j])
                    for cg in range(Cg):
                        for ki in range(kh):
                            for kj in range(kw):
                                ih, iw = i * stride + ki - top, j * stride + kj - left
                                if 0 <= ih < H and 0 <= iw < Wd:
                                    dx[n, g * Cg + cg, ih, iw] += d * float(W[o, cg, ki, kj])
                                    dW[o, cg, ki, kj] += d * float(x[n, g * Cg + cg, ih, iw])
    return dx, dW, dy.sum(axis=(0, 2, 3), dtype=np.float64)


def im2col_sample(x, n, c0, cg, kh, kw, stride, top, left, OH, OW):
    """The (cg * kh * kw, OH * OW) columns of sample ``n``, input channels c0 .. c0 + cg:
    row (c - c0) * kh * kw + ki * kw + kj, column oh * OW + ow holds the input under tap
    (ki, kj) of output (oh, ow), 0 in the padding.  float64."""
    H, W = x.shape[2], x.shape[3]
    cols = np.zeros((cg * kh * kw, OH * OW))
    for c in range(cg):
        for ki in range(kh):
            for kj in range(kw):
                for oh in range(OH):
                    for ow in range(OW):
                        ih, iw = oh * stride + ki - top, ow * stride + kj - left
                        if 0 <= ih < H and 0 <= iw < W:
                            cols[c * kh * kw + ki * kw + kj, oh * OW + ow] = x[n, c0 + c, ih, iw]
    return cols
