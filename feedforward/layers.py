"""Layers with forward and backward passes (NCHW, float32).

Each layer stores its configuration in ``__init__``, creates parameters in
``build(input_shape, rng)`` (He-normal weights, zero biases), caches what the backward
pass needs during ``forward(x, train=True)``, and accumulates parameter gradients in
``grads`` during ``backward(dy)``.  Shapes exclude the batch dimension.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from . import _kernels as K

__all__ = [
    "Layer", "Conv2D", "Dense", "ReLU", "ReLU6", "MaxPool2D", "AvgPool2D", "GlobalAvgPool", "BatchNorm", "Flatten",
    "Dropout", "Residual", "Identity", "LAYER_TYPES", "layer_from_config",
]

Shape = tuple[int, ...]


class Layer:
    """Base class: a layer without parameters is the identity."""

    kind: ClassVar[str] = "layer"

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: Shape | None = None

    def build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        self.input_shape = tuple(input_shape)
        return self.output_shape(self.input_shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy

    def macs(self, input_shape: Shape) -> int:
        """Multiply-accumulates per sample."""
        return 0

    def config(self) -> dict[str, Any]:
        return {"type": self.kind}

    def zero_grads(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def children(self) -> list[tuple[str, Layer]]:
        return []

    def __repr__(self) -> str:
        cfg = {k: v for k, v in self.config().items() if k != "type"}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in cfg.items())})"


class Identity(Layer):
    """Passes its input through (what a folded BatchNorm leaves behind, so that layer
    paths stay those of the original model)."""

    kind = "identity"


def _he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)


class Conv2D(Layer):
    """2-D convolution, weight (out_channels, in_channels // groups, k, k), optional bias.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Square kernels only.
    stride : int
    padding : int or 4 ints (top, bottom, left, right)
        Zeros added around the input; asymmetric padding such as (0, 1, 0, 1) is what
        TensorFlow's ``"SAME"`` gives a stride-2 convolution on an even input.
    groups : int
        ``groups = in_channels`` is a depthwise convolution (any channel multiplier
        ``out_channels // in_channels``); it runs a direct kernel at inference.
    bias : bool

    Attributes
    ----------
    padding : tuple of 4 int
        (top, bottom, left, right).
    pad : int or tuple of 4 int
        The padding as an int when all four sides agree, else the 4-tuple.

    Raises
    ------
    ValueError
        On non-integer or out-of-range sizes, a padding that is not one int or four,
        or groups that do not divide the channel counts.

    Examples
    --------
    >>> conv = Conv2D(3, 8, 3, stride=2, padding=(0, 1, 0, 1))
    >>> conv.output_shape((3, 32, 32))
    (8, 16, 16)
    """

    kind = "conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | tuple[int, int, int, int] = 0, groups: int = 1, bias: bool = True):
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                            ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("groups", groups, 1)):
            if not self._is_int(v) or v < lo:
                raise ValueError(f"Conv2D {name} must be an int >= {lo}, got {v!r}.")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2D groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}.")
        self.padding = self._padding4(padding)
        self.pad = self.padding[0] if len(set(self.padding)) == 1 else self.padding
        self.cin, self.cout, self.k, self.stride, self.groups = (
            int(in_channels), int(out_channels), int(kernel_size), int(stride), int(groups))
        self.bias = bool(bias)

    @staticmethod
    def _is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    @classmethod
    def _padding4(cls, padding):
        """(top, bottom, left, right) from an int or a sequence of 4 ints (a JSON list too)."""
        if cls._is_int(padding):
            p = (int(padding),) * 4
        elif (isinstance(padding, (tuple, list)) and len(padding) == 4
              and all(cls._is_int(v) for v in padding)):
            p = tuple(int(v) for v in padding)
        else:
            raise ValueError(f"Conv2D padding must be an int >= 0 or 4 ints (top, bottom, left, right) >= 0, "
                             f"got {padding!r}; e.g. padding=1 or padding=(0, 1, 0, 1).")
        if min(p) < 0:
            raise ValueError(f"Conv2D padding must be >= 0 on every side, got {padding!r}.")
        return p

    def output_shape(self, s):
        if len(s) != 3 or s[0] != self.cin:
            raise ValueError(f"Conv2D expects input (C={self.cin}, H, W), got {s}.")
        top, bottom, left, right = self.padding
        oh = (s[1] + top + bottom - self.k) // self.stride + 1
        ow = (s[2] + left + right - self.k) // self.stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2D kernel {self.k} with padding {self.pad} does not fit input {s}.")
        return (self.cout, oh, ow)

    def _geometry(self, OH, OW):
        return K.ConvGeometry(self.k, self.k, self.stride, self.padding[0], self.padding[2], OH, OW)

    def build(self, s, rng):
        out = super().build(s, rng)
        if "weight" not in self.params:
            fan_in = self.cin // self.groups * self.k * self.k
            self.params["weight"] = _he(rng, (self.cout, self.cin // self.groups, self.k, self.k), fan_in)
            if self.bias:
                self.params["bias"] = np.zeros(self.cout, np.float32)
        return out

    def forward(self, x, train=False):
        """Training: im2col of the whole batch + one GEMM per group (the columns are kept
        for :meth:`backward`).  Inference writes NCHW directly: a direct kernel for a
        depthwise convolution; one BLAS GEMM per sample on the input as it is for a 1x1
        stride-1 unpadded one (faster than ``_kernels.conv_forward`` on the short rows of
        7x7 and 14x14 maps); else one GEMM per sample and group on columns that stay in
        cache (``_kernels.conv_forward``)."""
        N = x.shape[0]
        C, OH, OW = self.output_shape(x.shape[1:])
        x = np.ascontiguousarray(x, dtype=np.float32)
        k, g, O = self.k, self.groups, self.cout
        if not train:
            w = np.ascontiguousarray(self.params["weight"], dtype=np.float32)
            bias = (np.ascontiguousarray(self.params["bias"], dtype=np.float32) if self.bias
                    else np.zeros(O, np.float32))
            y = np.empty((N, O, OH, OW), np.float32)
            if g == self.cin:
                K.depthwise_forward(x, w, bias, self._geometry(OH, OW), y)
            elif g == 1 and k == 1 and self.stride == 1 and self.padding == (0, 0, 0, 0):
                np.matmul(w.reshape(O, self.cin), x.reshape(N, self.cin, OH * OW), out=y.reshape(N, O, OH * OW))
                if self.bias:
                    y += bias[:, None, None]
            else:
                K.conv_forward(x, w.reshape(g, O // g, -1), bias, self._geometry(OH, OW),
                               numba.get_num_threads(), y)
            return y
        cols = np.empty((self.cin * k * k, N * OH * OW), np.float32)
        K.im2col(x, self._geometry(OH, OW), cols)
        W = self.params["weight"].reshape(O, -1)
        og, rg = O // g, (self.cin // g) * k * k
        y = np.empty((O, N * OH * OW), np.float32)
        for j in range(g):
            np.matmul(W[j * og:(j + 1) * og], cols[j * rg:(j + 1) * rg], out=y[j * og:(j + 1) * og])
        if self.bias:
            y += self.params["bias"][:, None]
        if train:
            self._cache = (cols, x.shape)
        return np.ascontiguousarray(y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3))

    def backward(self, dy):
        cols, xshape = self._cache
        N, _, OH, OW = dy.shape
        k, g = self.k, self.groups
        d = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(self.cout, -1)
        W = self.params["weight"].reshape(self.cout, -1)
        og, rg = self.cout // g, (self.cin // g) * k * k
        dW = np.empty_like(W)
        dcols = np.empty_like(cols)
        for j in range(g):
            dj = d[j * og:(j + 1) * og]
            dW[j * og:(j + 1) * og] = dj @ cols[j * rg:(j + 1) * rg].T
            np.matmul(W[j * og:(j + 1) * og].T, dj, out=dcols[j * rg:(j + 1) * rg])
        self.grads["weight"] += dW.reshape(self.params["weight"].shape)
        if self.bias:
            self.grads["bias"] += d.sum(axis=1)
        dx = np.empty(xshape, np.float32)
        K.col2im(dcols, self._geometry(OH, OW), dx)
        self._cache = None
        return dx

    def macs(self, s):
        c, oh, ow = self.output_shape(s)
        return c * oh * ow * (self.cin // self.groups) * self.k * self.k

    def config(self):
        pad = self.pad if self._is_int(self.pad) else list(self.padding)
        return {"type": self.kind, "in_channels": self.cin, "out_channels": self.cout, "kernel_size": self.k,
                "stride": self.stride, "padding": pad, "groups": self.groups, "bias": self.bias}


class Dense(Layer):
    """Fully connected layer y = x W^T + b, weight (out_features, in_features)."""

    kind = "dense"

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Dense {name} must be an int >= 1, got {v!r}.")
        self.fin, self.fout, self.bias = int(in_features), int(out_features), bool(bias)

    def output_shape(self, s):
        if tuple(s) != (self.fin,):
            raise ValueError(f"Dense expects input ({self.fin},), got {s}; add a Flatten layer before it.")
        return (self.fout,)

    def build(self, s, rng):
        out = super().build(s, rng)
        if "weight" not in self.params:
            self.params["weight"] = _he(rng, (self.fout, self.fin), self.fin)
            if self.bias:
                self.params["bias"] = np.zeros(self.fout, np.float32)
        return out

    def forward(self, x, train=False):
        if train:
            self._x = x
        y = x @ self.params["weight"].T
        if self.bias:
            y += self.params["bias"]
        return y

    def backward(self, dy):
        self.grads["weight"] += dy.T @ self._x
        if self.bias:
            self.grads["bias"] += dy.sum(axis=0)
        self._x = None
        return dy @ self.params["weight"]

    def macs(self, s):
        return self.fin * self.fout

    def config(self):
        return {"type": self.kind, "in_features": self.fin, "out_features": self.fout, "bias": self.bias}


class ReLU(Layer):
    kind = "relu"

    def forward(self, x, train=False):
        if train:
            self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dy):
        return dy * self._mask


class ReLU6(Layer):
    """min(max(x, 0), 6) (MobileNet, EfficientNet-Lite)."""

    kind = "relu6"

    def forward(self, x, train=False):
        if train:
            self._mask = (x > 0) & (x < 6)
        return np.clip(x, 0, 6)

    def backward(self, dy):
        return dy * self._mask


class _Pool(Layer):
    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        stride = kernel_size if stride is None else stride
        for name, v in (("kernel_size", kernel_size), ("stride", stride)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{type(self).__name__} {name} must be an int >= 1, got {v!r}.")
        self.k, self.stride = int(kernel_size), int(stride)

    def output_shape(self, s):
        if len(s) != 3 or s[1] < self.k or s[2] < self.k:
            raise ValueError(f"{type(self).__name__}({self.k}) expects input (C, H>={self.k}, W>={self.k}), got {s}.")
        return (s[0], (s[1] - self.k) // self.stride + 1, (s[2] - self.k) // self.stride + 1)

    def config(self):
        return {"type": self.kind, "kernel_size": self.k, "stride": self.stride}


class MaxPool2D(_Pool):
    """Maximum over k x k windows.  The backward pass sends each window's gradient to
    its maximum, as PyTorch does: the first maximum in row-major order, the last NaN
    when the window holds NaN (which the output propagates), and the window's first
    element when every value is -inf."""

    kind = "maxpool2d"

    def forward(self, x, train=False):
        c, oh, ow = self.output_shape(x.shape[1:])
        out = np.empty((x.shape[0], c, oh, ow), np.float32)
        arg = np.empty(out.shape, np.int64)
        K.maxpool_forward(x, self.k, self.stride, out, arg)
        if train:
            self._cache = (arg, x.shape)
        return out

    def backward(self, dy):
        arg, xshape = self._cache
        dx = np.empty(xshape, np.float32)
        K.maxpool_backward(np.ascontiguousarray(dy), arg, dx)
        return dx


class AvgPool2D(_Pool):
    kind = "avgpool2d"

    def forward(self, x, train=False):
        c, oh, ow = self.output_shape(x.shape[1:])
        out = np.empty((x.shape[0], c, oh, ow), np.float32)
        K.avgpool_forward(x, self.k, self.stride, out)
        if train:
            self._xshape = x.shape
        return out

    def backward(self, dy):
        dx = np.empty(self._xshape, np.float32)
        K.avgpool_backward(np.ascontiguousarray(dy), self.k, self.stride, dx)
        return dx


class GlobalAvgPool(Layer):
    """Mean over H and W: (C, H, W) -> (C,)."""

    kind = "global_avgpool"

    def output_shape(self, s):
        if len(s) != 3:
            raise ValueError(f"GlobalAvgPool expects input (C, H, W), got {s}.")
        return (s[0],)

    def forward(self, x, train=False):
        if train:
            self._xshape = x.shape
        return x.mean(axis=(2, 3), dtype=np.float32)

    def backward(self, dy):
        n, c, h, w = self._xshape
        return np.broadcast_to((dy / (h * w))[:, :, None, None], self._xshape).astype(np.float32)


class BatchNorm(Layer):
    """Batch normalisation over channels of (C, H, W) or features of (F,) inputs.

    Training uses batch statistics and updates running averages with ``momentum``;
    inference uses the running statistics.  Parameters: weight (gamma), bias (beta);
    state: running_mean, running_var.
    """

    kind = "batchnorm"

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or isinstance(num_features, bool) or num_features < 1:
            raise ValueError(f"BatchNorm num_features must be an int >= 1, got {num_features!r}.")
        if not (isinstance(eps, (int, float, np.number)) and math.isfinite(eps) and eps >= 0):
            raise ValueError(f"BatchNorm eps must be a finite number >= 0, got {eps!r}.")
        if not (isinstance(momentum, (int, float, np.number)) and 0 <= momentum <= 1):
            raise ValueError(f"BatchNorm momentum must be a number in [0, 1], got {momentum!r}.")
        self.c, self.momentum, self.eps = int(num_features), float(momentum), float(eps)
        self.state: dict[str, np.ndarray] = {}

    def output_shape(self, s):
        if s[0] != self.c or len(s) not in (1, 3):
            raise ValueError(f"BatchNorm({self.c}) expects input ({self.c},) or ({self.c}, H, W), got {s}.")
        return tuple(s)

    def build(self, s, rng):
        out = super().build(s, rng)
        if "weight" not in self.params:
            self.params["weight"] = np.ones(self.c, np.float32)
            self.params["bias"] = np.zeros(self.c, np.float32)
            self.state = {"running_mean": np.zeros(self.c, np.float32), "running_var": np.ones(self.c, np.float32)}
        return out

    def _axes(self, x):
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def _shape(self, x):
        return (1, -1) if x.ndim == 2 else (1, -1, 1, 1)

    def forward(self, x, train=False):
        ax, sh = self._axes(x), self._shape(x)
        if train:
            mean = x.mean(axis=ax, dtype=np.float64)
            var = x.var(axis=ax, dtype=np.float64)
            m = x.size // self.c
            self.state["running_mean"] = ((1 - self.momentum) * self.state["running_mean"]
                                          + self.momentum * mean).astype(np.float32)
            self.state["running_var"] = ((1 - self.momentum) * self.state["running_var"]
                                         + self.momentum * var * m / max(m - 1, 1)).astype(np.float32)
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        inv = (1.0 / np.sqrt(var + self.eps)).astype(np.float32)
        xhat = (x - mean.astype(np.float32).reshape(sh)) * inv.reshape(sh)
        if train:
            self._cache = (xhat, inv)
        return xhat * self.params["weight"].reshape(sh) + self.params["bias"].reshape(sh)

    def backward(self, dy):
        xhat, inv = self._cache
        ax, sh = self._axes(dy), self._shape(dy)
        m = dy.size // self.c
        self.grads["weight"] += (dy * xhat).sum(axis=ax)
        self.grads["bias"] += dy.sum(axis=ax)
        g = self.params["weight"] * inv
        dxhat_sum = dy.sum(axis=ax).reshape(sh)
        dxhat_x = (dy * xhat).sum(axis=ax).reshape(sh)
        return (g.reshape(sh) / m * (m * dy - dxhat_sum - xhat * dxhat_x)).astype(np.float32)

    def config(self):
        return {"type": self.kind, "num_features": self.c, "momentum": self.momentum, "eps": self.eps}


class Flatten(Layer):
    kind = "flatten"

    def output_shape(self, s):
        return (int(np.prod(s)),)

    def forward(self, x, train=False):
        if train:
            self._xshape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._xshape)


class Dropout(Layer):
    """Inverted dropout with rate ``p`` during training; the identity at inference.
    The mask stream is seeded by ``seed``."""

    kind = "dropout"

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout p must be in [0, 1), got {p!r}.")
        self.p, self.seed = float(p), int(seed)
        self._rng = np.random.default_rng(seed)
        self._mask: np.ndarray | None = None

    def forward(self, x, train=False):
        """Training: zero each element with probability ``p`` and scale the others by
        1 / (1 - p), keeping the mask (scaling included) for :meth:`backward`."""
        if not train or self.p == 0:
            self._mask = None
            return x
        self._mask = (self._rng.random(x.shape) >= self.p).astype(np.float32) / np.float32(1 - self.p)
        return x * self._mask

    def backward(self, dy):
        """dL/dx = dL/dy times the last training forward's mask (the identity when it
        dropped nothing: p = 0 or inference)."""
        return dy if self._mask is None else dy * self._mask

    def config(self):
        return {"type": self.kind, "p": self.p, "seed": self.seed}


class Residual(Layer):
    """y = body(x) + shortcut(x).

    ``shortcut="identity"``, or ``"option_a"`` (He et al. 2016, CIFAR ResNets): take
    x[:, :, ::stride, ::stride] and zero-pad channels equally on both sides up to the
    body's output channels.
    """

    kind = "residual"

    def __init__(self, body: list[Layer], shortcut: str = "identity", stride: int = 1):
        super().__init__()
        if shortcut not in ("identity", "option_a"):
            raise ValueError(f"Residual shortcut={shortcut!r} is not supported; use 'identity' or 'option_a'.")
        self.body, self.shortcut, self.stride = list(body), shortcut, int(stride)

    def _short_shape(self, s):
        if self.shortcut == "identity":
            return tuple(s)
        if len(s) != 3:
            raise ValueError(f"Residual option_a shortcut expects inputs (C, H, W), got {tuple(s)}.")
        return (s[0], (s[1] - 1) // self.stride + 1, (s[2] - 1) // self.stride + 1)

    def output_shape(self, s):
        out = tuple(s)
        for layer in self.body:
            out = layer.output_shape(out)
        sc = self._short_shape(s)
        if out[1:] != sc[1:] or (self.shortcut == "identity" and out != sc) or out[0] < sc[0]:
            raise ValueError(f"Residual body maps {tuple(s)} to {out}, which the {self.shortcut} shortcut "
                             f"({sc}) cannot be added to.")
        return out

    def build(self, s, rng):
        self.input_shape = tuple(s)
        out = tuple(s)
        for layer in self.body:
            out = layer.build(out, rng)
        self.output_shape(s)
        return out

    def _short(self, x, cout):
        if self.shortcut == "identity":
            return x
        xs = x[:, :, ::self.stride, ::self.stride]
        extra = cout - x.shape[1]
        return np.pad(xs, ((0, 0), (extra // 2, extra - extra // 2), (0, 0), (0, 0)))

    def forward(self, x, train=False):
        y = x
        for layer in self.body:
            y = layer.forward(y, train)
        if train:
            self._cin = x.shape[1]
        return y + self._short(x, y.shape[1])

    def backward(self, dy):
        d = dy
        for layer in reversed(self.body):
            d = layer.backward(d)
        if self.shortcut == "identity":
            return d + dy
        extra = dy.shape[1] - self._cin
        ds = dy[:, extra // 2: extra // 2 + self._cin]
        d = d.copy()
        d[:, :, ::self.stride, ::self.stride] += ds
        return d

    def macs(self, s):
        total, out = 0, tuple(s)
        for layer in self.body:
            total += layer.macs(out)
            out = layer.output_shape(out)
        return total

    def zero_grads(self):
        for layer in self.body:
            layer.zero_grads()

    def children(self):
        return [(f"body.{i}", layer) for i, layer in enumerate(self.body)]

    def config(self):
        return {"type": self.kind, "shortcut": self.shortcut, "stride": self.stride,
                "body": [layer.config() for layer in self.body]}


LAYER_TYPES: dict[str, type[Layer]] = {cls.kind: cls for cls in (
    Identity, Conv2D, Dense, ReLU, ReLU6, MaxPool2D, AvgPool2D, GlobalAvgPool, BatchNorm, Flatten, Dropout, Residual)}


def layer_from_config(cfg: dict) -> Layer:
    """Rebuild a layer from :meth:`Layer.config`; unknown types raise ValueError."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ValueError(f"a layer config must be a dict with a 'type', got {cfg!r}.")
    kind = cfg["type"]
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known types: {', '.join(sorted(LAYER_TYPES))}.")
    args = {k: v for k, v in cfg.items() if k != "type"}
    if kind == "residual":
        if not isinstance(args.get("body"), list):
            raise ValueError(f"a residual layer config needs a 'body' list, got {cfg!r}.")
        args["body"] = [layer_from_config(c) for c in args["body"]]
    try:
        return LAYER_TYPES[kind](**args)
    except TypeError as exc:
        raise ValueError(f"bad arguments for layer type {kind!r}: {exc}") from None
