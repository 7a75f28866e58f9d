"""Numba kernels of the CNN layers (NCHW, float32).  No validation here.

Convolution geometry travels as a :class:`ConvGeometry` (kernel size, stride, the top
and left padding, output size); the bottom and right padding only shape OH and OW.

Convolution is im2col + one BLAS GEMM per group: ``cols`` has shape
(C * kh * kw, N * OH * OW) with row ``c * kh * kw + ki * kw + kj`` and column
``n * OH * OW + oh * OW + ow``, so the rows of one group are contiguous.  That is the
training path (the backward pass reuses ``cols``).  Inference runs
:func:`conv_forward` instead, one sample at a time per thread: the sample's columns stay
in cache and a register-blocked GEMM writes the NCHW output; depthwise convolutions run
the direct kernel :func:`depthwise_forward` (and 1x1 stride-1 unpadded ones one BLAS
GEMM per sample, in ``layers.py``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

GEMM_ROWS = 4  # output rows (and taps) that one pass of _gemm_acc updates together

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


@njit(cache=True)
def _pad_sample(x, n, g, Wp, plane, xp):
    """Copy sample ``n`` into the zero-bordered planes of ``xp``:
    xp[c * plane + (h + pad_top) * Wp + w + pad_left] = x[n, c, h, w].  The borders of
    ``xp`` are never written, so they stay zero from its allocation."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for c in range(C):
        for h in range(H):
            start = c * plane + (h + g.pad_top) * Wp + g.pad_left
            dst = xp[start:start + W]
            src = x[n, c, h]
            for i in range(W):
                dst[i] = src[i]


@njit(cache=True)
def _im2col_sample(x, n, c0, g, cols):
    """The columns of sample ``n`` and the input channels ``c0, c0 + 1, ...`` (as many
    as ``cols`` has rows / (kh * kw)): cols[(c - c0) * kh * kw + ki * kw + kj, oh * OW + ow],
    zero where the tap falls in the padding.  ``cols`` is (rows, OH * OW)."""
    H, W = x.shape[2], x.shape[3]
    kh, kw, stride, OH, OW = g.kh, g.kw, g.stride, g.OH, g.OW
    for r in range(cols.shape[0]):
        c = c0 + r // (kh * kw)
        ki = (r // kw) % kh
        off = r % kw - g.pad_left
        lo, hi = _valid_range(off, stride, W, OW)
        for oh in range(OH):
            dst = cols[r, oh * OW:(oh + 1) * OW]
            ih = oh * stride + ki - g.pad_top
            if ih < 0 or ih >= H:
                dst[:] = 0.0
                continue
            src = x[n, c, ih, lo * stride + off:]
            for i in range(lo):
                dst[i] = 0.0
            for i in range(hi - lo):
                dst[lo + i] = src[i * stride]
            for i in range(hi, OW):
                dst[i] = 0.0


@njit(cache=True)
def _gemm_acc(w, src, offs, base, out):
    """out += w @ cols for C-contiguous float32 out (O, P) and w (O, K), where row k of
    cols is src[base + offs[k]:base + offs[k] + P] (``src`` 1-D).

    Blocked ``GEMM_ROWS`` = 4 outputs x 4 taps (written out by hand): each pass over a
    row of ``out`` adds four taps to four rows at once (a quarter of the loads and
    stores of one tap per pass), and the loop over P vectorizes.  The order of the sums
    depends only on the shapes and on which rows form a block (rows 4i .. 4i + 3 of
    ``out``), so an output does not depend on the thread or on the other samples."""
    O, Kd = w.shape
    P = out.shape[1]
    o0 = 0
    while o0 + 4 <= O:
        r0, r1, r2, r3 = out[o0], out[o0 + 1], out[o0 + 2], out[o0 + 3]
        k0 = 0
        while k0 + 4 <= Kd:
            s0, s1, s2, s3 = base + offs[k0], base + offs[k0 + 1], base + offs[k0 + 2], base + offs[k0 + 3]
            c0, c1, c2, c3 = src[s0:s0 + P], src[s1:s1 + P], src[s2:s2 + P], src[s3:s3 + P]
            a0, a1, a2, a3 = w[o0, k0], w[o0, k0 + 1], w[o0, k0 + 2], w[o0, k0 + 3]
            b0, b1, b2, b3 = w[o0 + 1, k0], w[o0 + 1, k0 + 1], w[o0 + 1, k0 + 2], w[o0 + 1, k0 + 3]
            d0, d1, d2, d3 = w[o0 + 2, k0], w[o0 + 2, k0 + 1], w[o0 + 2, k0 + 2], w[o0 + 2, k0 + 3]
            e0, e1, e2, e3 = w[o0 + 3, k0], w[o0 + 3, k0 + 1], w[o0 + 3, k0 + 2], w[o0 + 3, k0 + 3]
            for p in range(P):
                x0, x1, x2, x3 = c0[p], c1[p], c2[p], c3[p]
                r0[p] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                r1[p] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
                r2[p] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3
                r3[p] += e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
            k0 += 4
        for k in range(k0, Kd):
            s0 = base + offs[k]
            c = src[s0:s0 + P]
            a0, b0, d0, e0 = w[o0, k], w[o0 + 1, k], w[o0 + 2, k], w[o0 + 3, k]
            for p in range(P):
                r0[p] += a0 * c[p]
                r1[p] += b0 * c[p]
                r2[p] += d0 * c[p]
                r3[p] += e0 * c[p]
        o0 += 4
    for o in range(o0, O):
        r = out[o]
        for k in range(Kd):
            a = w[o, k]
            s0 = base + offs[k]
            c = src[s0:s0 + P]
            for p in range(P):
                r[p] += a * c[p]


@njit(cache=True, parallel=True)
def conv_forward(x, w, bias, g, n_threads, y):
    """Inference convolution, y[n, o] = bias[o] + the taps of w over o's group of input
    channels.  ``w`` is the weight as (groups, O // groups, C // groups * kh * kw) and
    ``n_threads`` the number of parts the work is split into.

    Each sample is one GEMM per group, w[j] @ cols, by :func:`_gemm_acc` on columns
    that stay in cache.  Stride 1 needs no im2col: on the zero-padded sample (planes of
    Hp x Wp), tap (c, ki, kj) of the outputs on the wide grid (OH, Wp) is the
    contiguous run starting at c * Hp * Wp + ki * Wp + kj, so the GEMM reads the padded
    sample in place (an unpadded 1x1 convolution the sample itself) into a buffer that
    then drops the Wp - OW extra columns.  Other strides write the columns of one
    sample and group with :func:`_im2col_sample`.  Without extra columns (Wp = OW) the
    GEMM writes y[n] directly.

    The units of work are the samples or, when the batch has fewer samples than
    ``n_threads``, slices of every group's output channels (a multiple of
    ``GEMM_ROWS``, so that the sums are those of a whole sample); each thread takes a
    contiguous share of the units and has its own buffers."""
    N, C = x.shape[0], x.shape[1]
    G, og, Kg = w.shape
    cg = C // G
    kh, kw, OH, OW = g.kh, g.kw, g.OH, g.OW
    wide = g.stride == 1
    Wp = OW + kw - 1 if wide else OW
    plane = (OH + kh - 1) * Wp
    P = OH * Wp
    in_place = Wp == OW
    unpadded = (wide and kh == 1 and kw == 1 and g.pad_top == 0 and g.pad_left == 0
                and OH == x.shape[2] and OW == x.shape[3])
    offs = np.empty(Kg, np.int64)
    for r in range(Kg):
        if wide:
            offs[r] = r // (kh * kw) * plane + (r // kw) % kh * Wp + r % kw
        else:
            offs[r] = r * P
    per_sample = -(-n_threads // N) if 0 < N < n_threads else 1
    rows = -(-og // per_sample)
    rows = min(og, -(-rows // GEMM_ROWS) * GEMM_ROWS)
    per_sample = -(-og // rows)
    units = N * per_sample
    n_chunks = min(units, n_threads)
    for t in prange(n_chunks):
        # wide: the padded sample, plus kw - 1 floats read by the last row's unused columns
        buf = np.zeros(0 if unpadded else C * plane + kw if wide else Kg * P, np.float32)
        wide_out = np.empty((0 if in_place else G * og, P), np.float32)
        for u in range(t * units // n_chunks, (t + 1) * units // n_chunks):
            n = u // per_sample
            lo = u % per_sample * rows
            hi = min(og, lo + rows)
            src = x[n].reshape(C * P) if unpadded else buf
            out = y[n].reshape((G * og, P)) if in_place else wide_out
            if wide and not unpadded:
                _pad_sample(x, n, g, Wp, plane, src)
            for j in range(G):
                if not wide:
                    _im2col_sample(x, n, j * cg, g, src.reshape((Kg, P)))
                for o in range(j * og + lo, j * og + hi):
                    out[o, :] = bias[o]
                _gemm_acc(w[j][lo:hi], src, offs, j * cg * plane if wide else 0, out[j * og + lo:j * og + hi])
                if in_place:
                    continue
                for o in range(j * og + lo, j * og + hi):
                    for oh in range(OH):
                        dst = y[n, o, oh]
                        row = out[o, oh * Wp:oh * Wp + OW]
                        for i in range(OW):
                            dst[i] = row[i]


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
