"""Numba kernels of the CNN layers (NCHW, float32).  No validation here.

Convolution geometry travels as a :class:`ConvGeometry` (kernel size, stride, the top
and left padding, output size); the bottom and right padding only shape OH and OW.

Convolution is im2col + one BLAS GEMM per group: ``cols`` has shape
(C * kh * kw, N * OH * OW) with row ``c * kh * kw + ki * kw + kj`` and column
``n * OH * OW + oh * OW + ow``, so the rows of one group are contiguous.  Depthwise
convolutions at inference use the direct kernel :func:`depthwise_forward` instead.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

ConvGeometry = namedtuple("ConvGeometry", ["kh", "kw", "stride", "pad_top", "pad_left", "OH", "OW"])
ConvGeometry.__doc__ = """Kernel (kh, kw), stride, top/left zero padding and output size (OH, OW) of a
convolution; input pixel of output (oh, ow) and tap (ki, kj) is
(oh * stride + ki - pad_top, ow * stride + kj - pad_left)."""


@njit(cache=True)
def _valid_range(off, stride, W, OW):
    """The output columns ``ow`` in [lo, hi) whose input column ``ow * stride + off``
    lies in [0, W)."""
    lo = max(0, -(off // stride))
    hi = min(OW, (W - 1 - off) // stride + 1)
    return lo, max(lo, hi)


@njit(cache=True, parallel=True)
def im2col(x, g, cols):
    N, C, H, W = x.shape
    kh, kw, stride, OH, OW = g.kh, g.kw, g.stride, g.OH, g.OW
    for r in prange(C * kh * kw):
        c = r // (kh * kw)
        ki = (r // kw) % kh
        kj = r % kw
        for n in range(N):
            base = n * OH * OW
            for oh in range(OH):
                ih = oh * stride + ki - g.pad_top
                for ow in range(OW):
                    iw = ow * stride + kj - g.pad_left
                    if 0 <= ih < H and 0 <= iw < W:
                        cols[r, base + oh * OW + ow] = x[n, c, ih, iw]
                    else:
                        cols[r, base + oh * OW + ow] = 0.0


@njit(cache=True, parallel=True)
def col2im(cols, g, dx):
    """Adjoint of :func:`im2col`: dx[n, c] += the columns that read it."""
    N, C, H, W = dx.shape
    kh, kw, stride, OH, OW = g.kh, g.kw, g.stride, g.OH, g.OW
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
                    ih = oh * stride + ki - g.pad_top
                    if ih < 0 or ih >= H:
                        continue
                    for ow in range(OW):
                        iw = ow * stride + kj - g.pad_left
                        if 0 <= iw < W:
                            dx[n, c, ih, iw] += cols[r, base + oh * OW + ow]


@njit(cache=True, parallel=True)
def depthwise_forward(x, w, bias, g, y):
    """Direct depthwise convolution: output channel ``o = c * m + j`` (m = O // C) is
    bias[o] + the taps w[o, 0] over input channel c; float32 accumulation."""
    N, C, H, W = x.shape
    O = w.shape[0]
    m = O // C
    kh, kw, stride, OH, OW = g.kh, g.kw, g.stride, g.OH, g.OW
    for p in prange(N * C):
        n = p // C
        c = p % C
        for j in range(m):
            o = c * m + j
            b = bias[o]
            for oh in range(OH):
                for ow in range(OW):
                    y[n, o, oh, ow] = b
                for ki in range(kh):
                    ih = oh * stride + ki - g.pad_top
                    if ih < 0 or ih >= H:
                        continue
                    for kj in range(kw):
                        wv = w[o, 0, ki, kj]
                        off = kj - g.pad_left
                        lo, hi = _valid_range(off, stride, W, OW)
                        for ow in range(lo, hi):
                            y[n, o, oh, ow] += wv * x[n, c, ih, ow * stride + off]


@njit(cache=True, parallel=True)
def maxpool_forward(x, k, stride, out, arg):
    """out[n, c, oh, ow] = max over the k x k window; arg holds the flat h * W + w of
    the maximum for the backward pass.  As PyTorch: the first maximum in row-major
    order; a NaN wins (the last one) and propagates; an all -inf window points at its
    own first element."""
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        for oh in range(OH):
            for ow in range(OW):
                best = -np.inf
                bi = (oh * stride) * W + ow * stride
                for ki in range(k):
                    for kj in range(k):
                        h = oh * stride + ki
                        w = ow * stride + kj
                        v = x[n, c, h, w]
                        if v > best or v != v:
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
