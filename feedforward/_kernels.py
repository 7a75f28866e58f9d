"""Numba kernels of the CNN layers (NCHW, float32).  No validation here.

Convolution is im2col + one BLAS GEMM per group: ``cols`` has shape
(C * kh * kw, N * OH * OW) with row ``c * kh * kw + ki * kw + kj`` and column
``n * OH * OW + oh * OW + ow``, so the rows of one group are contiguous.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, stride, pad, OH, OW, cols):
    N, C, H, W = x.shape
    for r in prange(C * kh * kw):
        c = r // (kh * kw)
        ki = (r // kw) % kh
        kj = r % kw
        for n in range(N):
            base = n * OH * OW
            for oh in range(OH):
                ih = oh * stride + ki - pad
                for ow in range(OW):
                    iw = ow * stride + kj - pad
                    if 0 <= ih < H and 0 <= iw < W:
                        cols[r, base + oh * OW + ow] = x[n, c, ih, iw]
                    else:
                        cols[r, base + oh * OW + ow] = 0.0


@njit(cache=True, parallel=True)
def col2im(cols, kh, kw, stride, pad, OH, OW, dx):
    """Adjoint of :func:`im2col`: dx[n, c] += the columns that read it."""
    N, C, H, W = dx.shape
    for p in prange(N * C):
        n = p // C
        c = p % C
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0.0
        base = n * OH * OW
        for ki in range(kh):
            for kj in range(kw):
                r = c * kh * kw + ki * kw + kj
                for oh in range(OH):
                    ih = oh * stride + ki - pad
                    if ih < 0 or ih >= H:
                        continue
                    for ow in range(OW):
                        iw = ow * stride + kj - pad
                        if 0 <= iw < W:
                            dx[n, c, ih, iw] += cols[r, base + oh * OW + ow]


@njit(cache=True, parallel=True)
def maxpool_forward(x, k, stride, out, arg):
    """out[n, c, oh, ow] = max over the k x k window; arg holds the flat h * W + w of
    the first maximum (for the backward pass)."""
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        for oh in range(OH):
            for ow in range(OW):
                best = -np.inf
                bi = 0
                for ki in range(k):
                    for kj in range(k):
                        h = oh * stride + ki
                        w = ow * stride + kj
                        v = x[n, c, h, w]
                        if v > best:
                            best = v
                            bi = h * W + w
                out[n, c, oh, ow] = best
                arg[n, c, oh, ow] = bi


@njit(cache=True, parallel=True)
def maxpool_backward(dy, arg, dx):
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0.0
        for oh in range(OH):
            for ow in range(OW):
                a = arg[n, c, oh, ow]
                dx[n, c, a // W, a % W] += dy[n, c, oh, ow]


@njit(cache=True, parallel=True)
def avgpool_forward(x, k, stride, out):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    inv = np.float32(1.0 / (k * k))
    for p in prange(N * C):
        n = p // C
        c = p % C
        for oh in range(OH):
            for ow in range(OW):
                acc = np.float32(0.0)
                for ki in range(k):
                    for kj in range(k):
                        acc += x[n, c, oh * stride + ki, ow * stride + kj]
                out[n, c, oh, ow] = acc * inv


@njit(cache=True, parallel=True)
def avgpool_backward(dy, k, stride, dx):
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    inv = np.float32(1.0 / (k * k))
    for p in prange(N * C):
        n = p // C
        c = p % C
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0.0
        for oh in range(OH):
            for ow in range(OW):
                g = dy[n, c, oh, ow] * inv
                for ki in range(k):
                    for kj in range(k):
                        dx[n, c, oh * stride + ki, ow * stride + kj] += g
