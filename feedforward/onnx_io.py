"""ONNX adapter: import ONNX graphs as :class:`Sequential` models, and export float and
quantized models to ONNX files that onnxruntime runs.

``onnx`` (and, for the import check, ``onnxruntime``) are imported lazily (extra
``onnx``: ``pip install onnx onnxruntime``), so ``import feedforward`` never needs them.

The importer translates each ONNX node into an :class:`~feedforward._graph.Op` and
lets :func:`~feedforward._graph.build_layers` recover the nesting (residual blocks with
identity or option-A shortcuts), as the PyTorch importer does.  Shape computations
that exporters leave in the graph (``Shape -> Gather -> Unsqueeze -> Concat`` before a
``Reshape``) and constant subgraphs (``Cast``, ``Transpose``, ``DequantizeLinear`` of a
weight, ...) are evaluated with numpy during the import.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from quantization import atomic_write

from ._files import file_kind, wrong_kind_message
from ._graph import GraphError, Op, build_layers
from .layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, Identity, Layer,
                     MaxPool2D, ReLU, ReLU6, Residual)
from .model import Sequential

__all__ = ["from_onnx", "to_onnx"]

#: ``format`` entry of the metadata of the files :func:`to_onnx` writes.
ONNX_FORMAT = "hopfield-quant/onnx/1"
#: The opsets :func:`to_onnx` can write: Clip with min/max inputs, Pad with a pads input,
#: Slice with steps and GatherElements all exist from opset 11.
MIN_EXPORT_OPSET = 11
#: Stand-in for the symbolic batch size in shape values evaluated during an import.
_BATCH = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max
#: Batch size of the import check when the graph input's batch dimension is symbolic.
_CHECK_BATCH = 2


def _onnx():
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (a submodule not loaded by `import onnx` in old releases)
    except ImportError:
        raise ImportError("this function needs the onnx package: pip install onnx onnxruntime "
                          "(or pip install 'hopfield-quant[onnx]').") from None
    return onnx


def _onnxruntime():
    """onnxruntime, or None when it is not installed (the import check is then skipped)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _pads(layer: Conv2D) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a convolution, whether the layer stores the 4-tuple
    ``padding`` or only the int ``pad``."""
    p = getattr(layer, "padding", None)
    if isinstance(p, (tuple, list)) and len(p) == 4:
        return tuple(int(v) for v in p)
    pad = layer.pad
    if isinstance(pad, (tuple, list)):
        return tuple(int(v) for v in pad)
    return (int(pad),) * 4


# ====================================================================== import


class _WrongKind(Exception):
    """A file that is another kind of model file (its message says which)."""


def _load_model(onnx, model_or_path):
    """(ModelProto, what to call it in errors) from a path, bytes or a ModelProto."""
    hint = "; the file may be truncated or corrupted"
    try:
        if isinstance(model_or_path, onnx.ModelProto):
            what, hint, model = "the ONNX model", "", model_or_path
        elif isinstance(model_or_path, (bytes, bytearray)):
            what = "the ONNX bytes"
            model = onnx.load_from_string(bytes(model_or_path))
        elif isinstance(model_or_path, (str, os.PathLike)):
            what = str(model_or_path)
            if not Path(model_or_path).is_file():
                raise FileNotFoundError(f"{what}: no such ONNX file.")
            kind = file_kind(model_or_path)
            if kind != "onnx":
                other = wrong_kind_message(what, kind, "an ONNX model")
                if other is not None:
                    raise _WrongKind(other)
            model = onnx.load(what)
        else:
            raise TypeError(f"model_or_path must be a path, bytes or an onnx.ModelProto, got "
                            f"{type(model_or_path).__name__}.")
    except (FileNotFoundError, TypeError):
        raise
    except _WrongKind as exc:
        raise ValueError(str(exc)) from None
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors share no base class
        raise ValueError(f"{what}: not a readable ONNX model ({type(exc).__name__}: {exc}){hint}.") from None
    if not model.graph.node:
        raise ValueError(f"{what}: the ONNX graph has no nodes{hint}, or it is not an ONNX model.")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError, or protobuf errors on a malformed message
        raise ValueError(f"{what}: not a valid ONNX model ({type(exc).__name__}: {exc}){hint}.") from None
    return model, what


def _attrs(onnx, node) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _constant_value(onnx, node, attrs):
    nh = onnx.numpy_helper
    if "value" in attrs:
        return nh.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype)
    raise GraphError(f"node {node.name!r} (Constant): only tensor, float and int constants are supported, got "
                     f"{sorted(attrs)}.")


def _axes_arg(attrs, ins, i):
    """The ``axes`` of Squeeze/Unsqueeze/ReduceX: an attribute before opset 13, an input after."""
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(ins) > i and ins[i] is not None:
        return [int(a) for a in np.asarray(ins[i]).ravel()]
    return None


def _slice_args(attrs, ins, rank):
    """(starts, ends, axes, steps) of a Slice from attributes (opset < 10) or inputs."""
    if "starts" in attrs:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = [int(v) for v in ins[1].ravel()], [int(v) for v in ins[2].ravel()]
        axes = [int(v) for v in ins[3].ravel()] if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = [int(v) for v in ins[4].ravel()] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    axes = [a + rank if a < 0 else a for a in axes]
    return starts, ends, axes, steps


def _fold(onnx, op_type, ins, attrs):
    """Evaluate a node whose inputs are all constants (weights, shape values); None
    when ``op_type`` is not one this importer evaluates."""
    x = ins[0] if ins else None
    if op_type == "Identity":
        return x
    if op_type == "Cast":
        return x.astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if op_type == "Unsqueeze":
        axes = _axes_arg(attrs, ins, 1)
        rank = x.ndim + len(axes)
        for a in sorted(a + rank if a < 0 else a for a in axes):
            x = np.expand_dims(x, a)
        return x
    if op_type == "Squeeze":
        axes = _axes_arg(attrs, ins, 1)
        return np.squeeze(x) if axes is None else np.squeeze(x, tuple(axes))
    if op_type == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in ins], axis=attrs["axis"])
    if op_type == "Gather":
        return np.take(x, ins[1].astype(np.int64), axis=attrs.get("axis", 0))
    if op_type == "GatherElements":
        return np.take_along_axis(x, ins[1].astype(np.int64), axis=attrs.get("axis", 0))
    if op_type == "Reshape":
        shape = [int(d) for d in ins[1].ravel()]
        if not attrs.get("allowzero", 0):
            shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return x.reshape(shape)
    if op_type == "Transpose":
        return np.transpose(x, attrs.get("perm"))
    if op_type == "Slice":
        starts, ends, axes, steps = _slice_args(attrs, ins, x.ndim)
        idx = [slice(None)] * x.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            idx[a] = slice(s, e, st)
        return x[tuple(idx)]
    if op_type in ("Add", "Sub", "Mul", "Div") and x.dtype.kind == "f":
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op_type](x, ins[1])
    if op_type == "DequantizeLinear":
        scale = ins[1].astype(np.float32)
        zero = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros((), x.dtype)
        axis = attrs.get("axis", 1)
        if scale.ndim == 1 and x.ndim > 1:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return ((x.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)
    if op_type == "ConstantOfShape":
        value = onnx.numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        return np.full([int(d) for d in x.ravel()], value.ravel()[0], value.dtype)
    return None


class _Importer:
    """Translates the nodes of one ONNX graph into :class:`Op` in topological order."""

    def __init__(self, onnx, model, input_name: str, input_shape: tuple[int, ...]):
        self.onnx = onnx
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict[str, np.ndarray] = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {input_name: input_shape}  # activations, batch dim excluded
        self.squeezed: set[str] = set()  # ONNX (N, C, 1, 1), ours (N, C): the output of GlobalAveragePool
        self.half: dict[str, tuple[str, dict[int, int], str]] = {}  # a subsample on one spatial axis so far
        self.producer: dict[str, Op] = {}
        self.users: dict[str, int] = {}
        for node in g.node:
            for t in node.input:
                self.users[t] = self.users.get(t, 0) + 1
        for o in g.output:
            self.users[o.name] = self.users.get(o.name, 0) + 1
        self.ops: list[Op] = []

    # ------------------------------------------------------------ helpers

    def emit(self, op: Op, shape: tuple[int, ...], squeezed: bool = False) -> None:
        self.ops.append(op)
        self.shapes[op.output] = tuple(int(s) for s in shape)
        if squeezed:
            self.squeezed.add(op.output)
        self.producer[op.output] = op

    def layer(self, node, name, x, layer: Layer, out: str | None = None, squeezed: bool = False) -> None:
        try:
            shape = layer.output_shape(self.shapes[x])
        except ValueError as exc:
            raise GraphError(f"node {name!r} ({node.op_type}): {exc}") from None
        layer.source = name
        self.emit(Op(name, "layer", (x,), out or node.output[0], layer), shape, squeezed)

    def const(self, node, name, t: str, what: str, optional: bool = False):
        if t == "" or t is None:
            if optional:
                return None
            raise GraphError(f"node {name!r} ({node.op_type}): the {what} input is missing.")
        if t not in self.consts:
            raise GraphError(f"node {name!r} ({node.op_type}): the {what} ({t!r}) must be a constant (an "
                             "initializer or a Constant node); computed weights are not supported.")
        return self.consts[t]

    def onnx_shape(self, t: str) -> tuple[int, ...]:
        s = self.shapes[t]
        return s + (1, 1) if t in self.squeezed else s

    # ------------------------------------------------------------ nodes

    def node(self, node, index: int) -> None:
        onnx = self.onnx
        op_type = node.op_type
        name = node.name or f"{op_type}_{index}"
        if node.domain not in ("", "ai.onnx"):
            raise GraphError(f"node {name!r}: operator {node.domain}.{op_type} (a custom domain) is not supported.")
        attrs = _attrs(onnx, node)
        if op_type == "Constant":
            self.consts[node.output[0]] = _constant_value(onnx, node, attrs)
            return
        ins = [t for t in node.input]
        if op_type == "Shape" and ins[0] in self.shapes:
            shape = np.array((_BATCH,) + self.onnx_shape(ins[0]), np.int64)
            start, end = attrs.get("start", 0), attrs.get("end", None)
            self.consts[node.output[0]] = shape[start:end]
            return
        if all(t == "" or t in self.consts for t in ins):
            vals = [self.consts[t] if t else None for t in ins]
            try:
                v = _fold(onnx, op_type, vals, attrs)
            except Exception as exc:  # numpy raises many types for a malformed constant subgraph
                raise GraphError(f"node {name!r} ({op_type}): cannot evaluate it on its constant inputs "
                                 f"({type(exc).__name__}: {exc}).") from None
            if v is not None:
                self.consts[node.output[0]] = np.asarray(v)
                return
        handler = getattr(self, f"_op_{op_type}", None)
        if handler is None:
            raise GraphError(f"node {name!r}: operator {op_type} is not supported (supported: "
                             f"{', '.join(sorted(_SUPPORTED))}).")
        x = next((t for t in ins if t and t not in self.consts), ins[0])
        if x not in self.shapes and x not in self.half:
            raise GraphError(f"node {name!r} ({op_type}): its input {x!r} is neither the graph input nor the output "
                             "of an earlier node.")
        if x in self.half and op_type != "Slice":
            raise GraphError(f"node {self.half[x][2]!r} (Slice) subsamples only one spatial axis; only "
                             "x[:, :, ::s, ::s] (both axes, as an option-A shortcut) is supported.")
        if x in self.squeezed and op_type not in _AFTER_GLOBAL_POOL:
            raise GraphError(f"node {name!r} ({op_type}) follows a GlobalAveragePool, whose output this package "
                             "holds as (N, C); only Flatten/Reshape to (N, C) and elementwise operators "
                             f"({', '.join(sorted(_AFTER_GLOBAL_POOL))}) may follow it.")
        handler(node, name, ins, attrs)

    # Each handler: (node, name, inputs, attributes); ins[0] is an activation.

    def _op_Identity(self, node, name, ins, attrs):
        self.emit(Op(name, "identity", (ins[0],), node.output[0]), self.shapes[ins[0]], ins[0] in self.squeezed)

    def _op_Dropout(self, node, name, ins, attrs):
        training = self.consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
        if len(ins) > 2 and ins[2] and (training is None or bool(np.asarray(training).ravel()[0])):
            raise GraphError(f"node {name!r} (Dropout): training_mode must be a constant false; only inference "
                             "dropout (the identity) is supported.")
        if len(node.output) > 1 and node.output[1] and self.users.get(node.output[1]):
            raise GraphError(f"node {name!r} (Dropout): its mask output is used; only inference dropout (the "
                             "identity) is supported.")
        self._op_Identity(node, name, ins, attrs)

    def _op_Relu(self, node, name, ins, attrs):
        self.layer(node, name, ins[0], ReLU(), squeezed=ins[0] in self.squeezed)

    def _op_Clip(self, node, name, ins, attrs):
        if self.opset < 11:
            lo, hi = attrs.get("min", -math.inf), attrs.get("max", math.inf)
        else:
            lo = self.const(node, name, ins[1] if len(ins) > 1 else "", "min", optional=True)
            hi = self.const(node, name, ins[2] if len(ins) > 2 else "", "max", optional=True)
            lo = -math.inf if lo is None else float(np.asarray(lo).ravel()[0])
            hi = math.inf if hi is None else float(np.asarray(hi).ravel()[0])
        if (lo, hi) == (0.0, 6.0):
            layer = ReLU6()
        elif (lo, hi) == (0.0, math.inf):
            layer = ReLU()
        else:
            raise GraphError(f"node {name!r} (Clip): only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported, "
                             f"got min={lo}, max={hi}.")
        self.layer(node, name, ins[0], layer, squeezed=ins[0] in self.squeezed)

    def _op_BatchNormalization(self, node, name, ins, attrs):
        if attrs.get("training_mode", 0) or attrs.get("spatial", 1) != 1 or any(node.output[1:]):
            raise GraphError(f"node {name!r} (BatchNormalization): only inference mode (running statistics, "
                             "spatial=1, one output) is supported.")
        gamma, beta, mean, var = (self.const(node, name, t, w).astype(np.float32)
                                  for t, w in zip(ins[1:5], ("scale", "bias", "mean", "variance")))
        # epsilon is a float32 attribute: 1e-5 reads back as 9.99999974e-06; keep 7 digits
        layer = BatchNorm(gamma.size, eps=float(f"{attrs.get('epsilon', 1e-5):.7g}"))
        layer.params = {"weight": gamma.ravel(), "bias": beta.ravel()}
        layer.state = {"running_mean": mean.ravel(), "running_var": var.ravel()}
        self.layer(node, name, ins[0], layer, squeezed=ins[0] in self.squeezed)

    def _spatial_pads(self, node, name, attrs, x, k, stride, dilation=1):
        """(top, left, bottom, right) from ``pads`` / ``auto_pad`` (SAME_* computed from
        the static input size)."""
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for i, size in enumerate(self.shapes[x][1:3]):
                total = max((-(-size // stride) - 1) * stride + (k - 1) * dilation + 1 - size, 0)
                small = total // 2
                pads[i], pads[i + 2] = (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
        else:
            raise GraphError(f"node {name!r} ({node.op_type}): auto_pad={auto!r} is not supported.")
        if len(pads) != 4 or min(pads) < 0:
            raise GraphError(f"node {name!r} ({node.op_type}): pads {pads} are not supported; 2-D zero padding "
                             "(4 values >= 0) only.")
        return pads

    @staticmethod
    def _square(node, name, what, v, default):
        v = list(v) if v is not None else [default, default]
        if len(v) != 2 or v[0] != v[1]:
            raise GraphError(f"node {name!r} ({node.op_type}): only 2-D square {what} are supported, got {v}.")
        return int(v[0])

    def _op_Conv(self, node, name, ins, attrs):
        w = self.const(node, name, ins[1], "weight").astype(np.float32)
        b = self.const(node, name, ins[2] if len(ins) > 2 else "", "bias", optional=True)
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise GraphError(f"node {name!r} (Conv): only square 2-D kernels are supported, got weight "
                             f"{tuple(w.shape)}.")
        if self._square(node, name, "dilations", attrs.get("dilations"), 1) != 1:
            raise GraphError(f"node {name!r} (Conv): dilated convolutions are not supported.")
        k = w.shape[2]
        stride = self._square(node, name, "strides", attrs.get("strides"), 1)
        groups = int(attrs.get("group", 1))
        x = ins[0]
        if len(self.shapes[x]) != 3:
            raise GraphError(f"node {name!r} (Conv): its input has shape {self.shapes[x]}; (C, H, W) expected.")
        t, left, bot, right = self._spatial_pads(node, name, attrs, x, k, stride)
        padding = t
        if len({t, left, bot, right}) != 1:
            c, h, wd = self.shapes[x]
            pad_out = f"{node.output[0]}::pad"
            self.emit(Op(f"{name}::pad", "spatial_pad", (x,), pad_out, attrs={"pads": (t, bot, left, right)}),
                      (c, h + t + bot, wd + left + right))
            x, padding = pad_out, 0
        try:
            layer = Conv2D(w.shape[1] * groups, w.shape[0], k, stride, padding, groups, b is not None)
        except ValueError as exc:
            raise GraphError(f"node {name!r} (Conv): {exc}") from None
        layer.params["weight"] = np.ascontiguousarray(w)
        if b is not None:
            layer.params["bias"] = np.asarray(b, np.float32).ravel().copy()
        self.layer(node, name, x, layer)

    def _dense(self, node, name, x, weight, bias):
        if len(self.shapes[x]) != 1:
            raise GraphError(f"node {name!r} ({node.op_type}): its input has shape {self.shapes[x]}; a flattened "
                             "(features,) input is expected (add a Flatten before it).")
        layer = Dense(weight.shape[1], weight.shape[0], bias is not None)
        layer.params["weight"] = np.ascontiguousarray(weight, np.float32)
        if bias is not None:
            layer.params["bias"] = np.ascontiguousarray(np.broadcast_to(bias, (weight.shape[0],)), np.float32)
        self.layer(node, name, x, layer)

    def _op_Gemm(self, node, name, ins, attrs):
        if attrs.get("transA", 0):
            raise GraphError(f"node {name!r} (Gemm): transA=1 is not supported (the activation must be A).")
        b = self.const(node, name, ins[1], "B (weight)").astype(np.float64)
        c = self.const(node, name, ins[2] if len(ins) > 2 else "", "C (bias)", optional=True)
        if b.ndim != 2:
            raise GraphError(f"node {name!r} (Gemm): weight of shape {b.shape}; 2-D expected.")
        w = b * attrs.get("alpha", 1.0)
        w = w if attrs.get("transB", 0) else w.T
        bias = None
        if c is not None:
            c = np.asarray(c, np.float64) * attrs.get("beta", 1.0)
            if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
                raise GraphError(f"node {name!r} (Gemm): bias C of shape {c.shape} is not a per-output bias "
                                 f"({w.shape[0]},).")
            bias = c.ravel()
        self._dense(node, name, ins[0], w, bias)

    def _op_MatMul(self, node, name, ins, attrs):
        if ins[1] not in self.consts:
            raise GraphError(f"node {name!r} (MatMul): only activation @ constant weight is supported.")
        w = self.consts[ins[1]]
        if w.ndim != 2:
            raise GraphError(f"node {name!r} (MatMul): weight of shape {w.shape}; 2-D expected.")
        self._dense(node, name, ins[0], w.T, None)

    def _op_Add(self, node, name, ins, attrs):
        a, b = ins
        if a in self.consts or b in self.consts:
            x, c = (b, self.consts[a]) if a in self.consts else (a, self.consts[b])
            return self._add_bias(node, name, x, np.asarray(c))
        for t in (a, b):
            if t not in self.shapes:
                raise GraphError(f"node {name!r} (Add): its input {t!r} is neither a constant nor the output of an "
                                 "earlier node.")
        if self.shapes[a] != self.shapes[b] or (a in self.squeezed) != (b in self.squeezed):
            raise GraphError(f"node {name!r} (Add): adds tensors of shapes {self.onnx_shape(a)} and "
                             f"{self.onnx_shape(b)}; only residual additions of equal shapes are supported.")
        self.emit(Op(name, "add", (a, b), node.output[0]), self.shapes[a], a in self.squeezed)

    def _add_bias(self, node, name, x, c):
        """Fold ``x + c`` into the bias of the Conv/Gemm/MatMul that alone produces ``x``."""
        op = self.producer.get(x)
        layer = op.layer if op is not None and op.kind == "layer" else None
        shape = self.onnx_shape(x)
        n = shape[0]
        ok = c.ndim <= len(shape) + 1 and c.size in (1, n)
        if ok and c.size == n and n > 1:
            full = (1,) * (len(shape) + 1 - c.ndim) + c.shape
            ok = full[1] == n
        if not (isinstance(layer, (Conv2D, Dense)) and self.users.get(x) == 1 and ok):
            raise GraphError(f"node {name!r} (Add): adding a constant of shape {c.shape} is supported only as the "
                             "per-channel bias of the Conv/Gemm/MatMul directly before it.")
        old = layer.params.get("bias", np.zeros(n, np.float32)).astype(np.float64)
        layer.params["bias"] = (old + np.broadcast_to(c.astype(np.float64).ravel(), (n,))).astype(np.float32)
        layer.bias = True
        self.emit(Op(name, "identity", (x,), node.output[0]), self.shapes[x])

    def _pool(self, node, name, ins, attrs, cls):
        k = self._square(node, name, "kernel_shape", attrs.get("kernel_shape"), 1)
        stride = self._square(node, name, "strides", attrs.get("strides"), 1)
        if self._square(node, name, "dilations", attrs.get("dilations"), 1) != 1:
            raise GraphError(f"node {name!r} ({node.op_type}): dilated pooling is not supported.")
        if any(self._spatial_pads(node, name, attrs, ins[0], k, stride)) or attrs.get("ceil_mode", 0):
            raise GraphError(f"node {name!r} ({node.op_type}): pooling with padding or ceil_mode is not supported.")
        if len(node.output) > 1 and node.output[1] and self.users.get(node.output[1]):
            raise GraphError(f"node {name!r} ({node.op_type}): the indices output is not supported.")
        if len(self.shapes[ins[0]]) != 3:
            raise GraphError(f"node {name!r} ({node.op_type}): its input has shape {self.shapes[ins[0]]}; (C, H, W) "
                             "expected.")
        self.layer(node, name, ins[0], cls(k, stride))

    def _op_MaxPool(self, node, name, ins, attrs):
        self._pool(node, name, ins, attrs, MaxPool2D)

    def _op_AveragePool(self, node, name, ins, attrs):
        self._pool(node, name, ins, attrs, AvgPool2D)

    def _op_GlobalAveragePool(self, node, name, ins, attrs):
        self.layer(node, name, ins[0], GlobalAvgPool(), squeezed=True)

    def _flatten(self, node, name, x):
        if x in self.squeezed:  # (N, C, 1, 1) -> (N, C): what our GlobalAvgPool already gives
            self.emit(Op(name, "identity", (x,), node.output[0]), self.shapes[x])
        else:
            self.layer(node, name, x, Flatten())

    def _op_Flatten(self, node, name, ins, attrs):
        rank = len(self.onnx_shape(ins[0])) + 1
        axis = attrs.get("axis", 1)
        if axis not in (1, 1 - rank):
            raise GraphError(f"node {name!r} (Flatten): only axis=1 (keep the batch) is supported, got axis={axis}.")
        self._flatten(node, name, ins[0])

    def _op_Reshape(self, node, name, ins, attrs):
        x = ins[0]
        if ins[1] not in self.consts:
            raise GraphError(f"node {name!r} (Reshape): the target shape must be a constant or computed from "
                             "tensor shapes.")
        t = [int(v) for v in self.consts[ins[1]].ravel()]
        n = int(np.prod(self.shapes[x]))
        batch_kept = len(t) == 2 and t[0] in (_BATCH, 0) and t[1] in (-1, n)
        batch_inferred = len(t) == 2 and t[0] == -1 and t[1] == n
        if not (batch_kept or batch_inferred) or attrs.get("allowzero", 0):
            shown = ["N" if v == _BATCH else v for v in t]
            raise GraphError(f"node {name!r} (Reshape): reshaping {('N',) + self.onnx_shape(x)} to {shown} is not "
                             "supported; only flattening to (N, -1).")
        self._flatten(node, name, x)

    def _op_Slice(self, node, name, ins, attrs):
        x = ins[0]
        src, steps_so_far, _ = self.half.get(x, (x, {}, name))
        onnx_shape = (None,) + self.onnx_shape(src)
        vals = [self.consts.get(t) if t else None for t in ins]
        for i, t in enumerate(ins[1:], 1):
            if t and vals[i] is None:
                raise GraphError(f"node {name!r} (Slice): its starts/ends/axes/steps must be constants.")
        starts, ends, axes, steps = _slice_args(attrs, vals, len(onnx_shape))
        steps_so_far = dict(steps_so_far)
        for s, e, a, st in zip(starts, ends, axes, steps):
            full = s == 0 and (a == 0 or e >= onnx_shape[a]) and st >= 1
            if not full or (a < 2 and st != 1) or a > 3 or src in self.squeezed:
                raise GraphError(f"node {name!r} (Slice): slicing axis {a} with start={s}, end={e}, step={st} is not "
                                 "supported; only x[:, :, ::s, ::s] (an option-A shortcut's subsample).")
            if a >= 2 and st > 1:
                steps_so_far[a] = st
        if not steps_so_far:
            self.emit(Op(name, "identity", (src,), node.output[0]), self.shapes[src])
            return
        if set(steps_so_far) != {2, 3}:
            self.half[node.output[0]] = (src, steps_so_far, name)
            return
        if steps_so_far[2] != steps_so_far[3]:
            raise GraphError(f"node {name!r} (Slice): subsampling with steps {steps_so_far[2]} and {steps_so_far[3]} "
                             "on H and W; only equal steps are supported.")
        s = steps_so_far[2]
        c, h, w = self.shapes[src]
        self.emit(Op(name, "subsample", (src,), node.output[0], attrs={"stride": s}),
                  (c, (h - 1) // s + 1, (w - 1) // s + 1))

    def _op_Pad(self, node, name, ins, attrs):
        x = ins[0]
        mode = attrs.get("mode", "constant")
        rank = len(self.onnx_shape(x)) + 1
        if self.opset < 11:
            pads, value, axes = list(attrs.get("pads", [])), attrs.get("value", 0.0), None
        else:
            pads = [int(v) for v in self.const(node, name, ins[1], "pads").ravel()]
            value = self.const(node, name, ins[2] if len(ins) > 2 else "", "constant_value", optional=True)
            value = 0.0 if value is None else float(np.asarray(value).ravel()[0]) if np.size(value) else 0.0
            axes = self.const(node, name, ins[3] if len(ins) > 3 else "", "axes", optional=True)
        if axes is not None:
            full = [0] * (2 * rank)
            axes = [int(a) + rank if a < 0 else int(a) for a in np.asarray(axes).ravel()]
            for i, a in enumerate(axes):
                full[a], full[a + rank] = pads[i], pads[i + len(axes)]
            pads = full
        if mode != "constant" or value != 0.0 or len(pads) != 2 * rank or min(pads) < 0 or rank != 4:
            raise GraphError(f"node {name!r} (Pad): only zero padding of (N, C, H, W) tensors is supported, got "
                             f"mode={mode!r} value={value} pads={pads}.")
        n0, c0, t, left, n1, c1, b, right = pads
        c, h, w = self.shapes[x]
        if n0 or n1 or ((c0 or c1) and (t or left or b or right)):
            raise GraphError(f"node {name!r} (Pad): padding {pads} is not supported (spatial or channel zero "
                             "padding only).")
        if c0 or c1:
            self.emit(Op(name, "channel_pad", (x,), node.output[0], attrs={"pads": (c0, c1)}), (c + c0 + c1, h, w))
        elif t or left or b or right:
            self.emit(Op(name, "spatial_pad", (x,), node.output[0], attrs={"pads": (t, b, left, right)}),
                      (c, h + t + b, w + left + right))
        else:
            self.emit(Op(name, "identity", (x,), node.output[0]), (c, h, w))


_SUPPORTED = {m[4:] for m in dir(_Importer) if m.startswith("_op_")} | {"Constant"}
_AFTER_GLOBAL_POOL = {"Flatten", "Reshape", "Relu", "Clip", "BatchNormalization", "Identity", "Dropout", "Add"}


def _graph_input(onnx, model, input_shape, what):
    """(name, shape without batch, static batch size or None) of the one graph input."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise GraphError(f"{what}: the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); one is "
                         "supported.")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if tt.elem_type != onnx.TensorProto.FLOAT:
        raise GraphError(f"{what}: the graph input {inp.name!r} has element type "
                         f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; float32 is supported.")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    batch = dims[0] if dims and dims[0] else None
    static = tuple(dims[1:]) if dims and all(d is not None for d in dims[1:]) else None
    if input_shape is None:
        if static is None:
            raise TypeError(f"{what}: the graph input {inp.name!r} has shape {dims} (None: not fixed); pass "
                            "input_shape, the shape of one sample, e.g. input_shape=(3, 32, 32).")
        input_shape = static
    try:
        input_shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"input_shape must be a tuple of ints (one sample, no batch dimension), got "
                        f"{input_shape!r}.") from None
    if dims and (len(dims) - 1 != len(input_shape)
                 or any(d is not None and d != s for d, s in zip(dims[1:], input_shape))):
        raise ValueError(f"input_shape={input_shape} does not match the graph input {inp.name!r} of shape "
                         f"{['N' if d is None else d for d in dims]}.")
    return inp.name, input_shape, batch


def from_onnx(model_or_path, input_shape: tuple[int, ...] | None = None, *, check: bool = True,
              rtol: float = 1e-4) -> Sequential:
    """Build a :class:`Sequential` from an ONNX model.

    Parameters
    ----------
    model_or_path : path, bytes or onnx.ModelProto
        A float32 network made of Conv (plain, grouped, depthwise; strides; symmetric,
        asymmetric or auto_pad padding; no dilation), Gemm, MatMul by a constant
        (+ Add of a constant bias), Relu, Clip(0, 6) (ReLU6), BatchNormalization,
        Add (residual), MaxPool, AveragePool (no padding), GlobalAveragePool, Flatten,
        Reshape to (N, -1), Identity, Dropout, and for option-A shortcuts Slice
        ``x[:, :, ::s, ::s]`` and Pad on channels.  Weights come from initializers or
        constant subgraphs (Constant, Cast, Transpose, DequantizeLinear, the
        GatherElements lookup that :func:`to_onnx` writes for quantized weights, ...).
    input_shape : tuple of int, optional
        Shape of one sample, e.g. (3, 32, 32); by default the graph input's static
        shape without the batch dimension (required when that shape is not fixed).
    check : bool, default True
        Run the ONNX model in onnxruntime (skipped when onnxruntime is not installed)
        and the imported model on a seeded random batch, and raise if the outputs
        differ by more than ``rtol`` times the largest output magnitude.
    rtol : float, default 1e-4

    Returns
    -------
    Sequential
        Float32, BatchNorm not folded; each layer keeps its ONNX node name in
        ``layer.source``.

    Raises
    ------
    GraphError (a ValueError)
        An unsupported operator (named with its node), attribute or structure, or
        outputs that differ from onnxruntime's.
    ValueError
        A file that is not a readable ONNX model (truncated, corrupted), an
        ``input_shape`` that contradicts the graph.
    TypeError
        ``input_shape`` missing for a graph input without a fixed shape.
    ImportError
        onnx is not installed.

    Examples
    --------
    >>> from feedforward import resnet_cifar
    >>> from feedforward.onnx_io import from_onnx, to_onnx
    >>> to_onnx(resnet_cifar(8), "resnet8.onnx")  # doctest: +SKIP
    >>> model = from_onnx("resnet8.onnx")  # doctest: +SKIP
    """
    onnx = _onnx()
    model, what = _load_model(onnx, model_or_path)
    g = model.graph
    if len(g.output) != 1:
        raise GraphError(f"{what}: the graph has {len(g.output)} outputs; one is supported.")
    inp, input_shape, batch = _graph_input(onnx, model, input_shape, what)
    imp = _Importer(onnx, model, inp, input_shape)
    for i, node in enumerate(g.node):
        imp.node(node, i)
    out = g.output[0].name
    if out in imp.squeezed:
        raise GraphError(f"{what}: the graph output {out!r} is a GlobalAveragePool's (N, C, 1, 1) output; this "
                         "package's GlobalAvgPool gives (N, C), so the model needs a Flatten after it.")
    if out not in imp.shapes:
        raise GraphError(f"{what}: the graph output {out!r} is not computed from the input.")
    seq = Sequential(build_layers(imp.ops, inp, out), input_shape)
    if check:
        _check(onnx, model, seq, inp, batch or _CHECK_BATCH, rtol)
    return seq


def _check(onnx, model, seq: Sequential, inp: str, batch: int, rtol: float) -> None:
    ort = _onnxruntime()
    if ort is None:
        return
    x = np.random.default_rng(0).standard_normal((batch,) + seq.input_shape).astype(np.float32)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {inp: x})[0]
    except Exception as exc:  # onnxruntime raises its own exception types
        raise GraphError(f"onnxruntime cannot run the model to check the import ({type(exc).__name__}: {exc}); "
                         "pass check=False to skip the check.") from None
    got = seq.forward(x)
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(got - ref).max()) if got.shape == ref.shape else math.inf
    if err > rtol * scale:
        raise GraphError(f"the imported model's outputs differ from onnxruntime's by {err:.3g} (relative "
                         f"{err / scale:.3g} > rtol={rtol}); output shapes {got.shape} vs {ref.shape}.")


# ====================================================================== export


class _Writer:
    """Collects nodes and initializers with unique names."""

    def __init__(self, onnx):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes: list = []
        self.inits: list = []
        self.names: set[str] = set()
        self.shared: dict[str, str] = {}

    def unique(self, name: str) -> str:
        base, i = name, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, name: str, arr: np.ndarray) -> str:
        name = self.unique(name)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def scalar(self, key: str, value: float) -> str:
        """A float32 scalar initializer shared by every node that needs it."""
        if key not in self.shared:
            self.shared[key] = self.const(key, np.array(value, np.float32))
        return self.shared[key]

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        name = self.unique(name)
        self.nodes.append(self.h.make_node(op_type, inputs, [name], name=name, **attrs))
        return name


def _rows_layout(qt) -> tuple[np.ndarray, tuple[int, ...], list[int] | None, tuple[int, int] | None]:
    """(codes as (n_rows, row_len), shape the rows reshape to, transpose back or None,
    (channels, row length) to crop padded group rows to, or None).

    The core's layout (``quantization._core._row_blocks``): one codebook row per group of
    ``group_size`` consecutive elements of each slice of the first axis (C order; a row
    that ``group_size`` does not divide ends with a shorter group, exported here padded
    with code 0 and cropped after the lookup), per slice along ``axis`` (that axis moved
    first), or one row for the whole tensor.
    """
    shape, codes = tuple(qt.shape), np.asarray(qt.codes)
    crop = None
    if qt.group_size is not None:
        g = qt.group_size
        C = shape[0] if len(shape) >= 2 else 1
        m = codes.size // C
        per = -(-m // g)
        if per * g == m:
            rows, moved, perm = codes.reshape(-1, g), shape, None
        else:
            padded = np.zeros((C, per * g), np.uint8)
            padded[:, :m] = codes.reshape(C, m)
            rows, moved, perm, crop = padded.reshape(C * per, g), shape, None, (C, m)
    elif qt.axis is None:
        rows, moved, perm = codes.reshape(1, -1), shape, None
    else:
        a = qt.axis
        m = np.moveaxis(codes, a, 0)
        rows, moved = m.reshape(shape[a], -1), m.shape
        perm = None if a == 0 else list(range(1, a + 1)) + [0] + list(range(a + 1, len(shape)))
    if rows.shape[0] != qt.codebook.shape[0]:
        raise ValueError(f"quantized tensor of shape {shape}: {rows.shape[0]} code rows for "
                         f"{qt.codebook.shape[0]} codebook rows; unknown layout.")
    return np.ascontiguousarray(rows, np.uint8), tuple(moved), perm, crop


def _weight(w: _Writer, name: str, arr: np.ndarray, quantized: dict) -> str:
    """The weight tensor: a float32 initializer, or for a quantized weight its codes
    (uint8, one per weight) looked up in the codebook (float32, one row per channel or
    group) by ``Cast -> GatherElements -> Reshape (-> Transpose)``."""
    qt = quantized.get(name)
    if qt is None:
        return w.const(name, np.asarray(arr, np.float32))
    TP = w.onnx.TensorProto
    rows, moved, perm, crop = _rows_layout(qt)
    codes = w.const(f"{name}.codes", rows)
    book = w.const(f"{name}.codebook", np.asarray(qt.codebook, np.float32))
    idx = w.op("Cast", [codes], f"{name}.indices", to=TP.INT64)
    vals = w.op("GatherElements", [book, idx], f"{name}.levels", axis=1)
    if crop is not None:  # groups padded to equal length: back to (channels, row) and cut the padding
        C, m = crop
        vals = w.op("Reshape", [vals, w.const(f"{name}.padded_shape", np.array([C, -1], np.int64))],
                    f"{name}.padded")
        vals = w.op("Slice", [vals, w.const(f"{name}.starts", np.array([0], np.int64)),
                              w.const(f"{name}.ends", np.array([m], np.int64)),
                              w.const(f"{name}.axes", np.array([1], np.int64))], f"{name}.cropped")
    out = w.op("Reshape", [vals, w.const(f"{name}.shape", np.array(moved, np.int64))],
               name if perm is None else f"{name}.moved")
    if perm is not None:
        out = w.op("Transpose", [out], name, perm=perm)
    return out


def _emit_layers(w: _Writer, layers: list[Layer], prefix: str, x: str, shape: tuple, quantized: dict):
    for i, layer in enumerate(layers):
        x, shape = _emit_layer(w, layer, f"{prefix}{i}", x, shape, quantized)
    return x, shape


def _emit_layer(w: _Writer, layer: Layer, path: str, x: str, shape: tuple, quantized: dict):
    out_shape = layer.output_shape(shape)
    if isinstance(layer, (Identity, Dropout)):
        return x, out_shape
    if isinstance(layer, Conv2D):
        t, b, left, r = _pads(layer)
        ins = [x, _weight(w, f"{path}.weight", layer.params["weight"], quantized)]
        if layer.bias:
            ins.append(w.const(f"{path}.bias", layer.params["bias"].astype(np.float32)))
        return w.op("Conv", ins, path, kernel_shape=[layer.k, layer.k], strides=[layer.stride] * 2,
                    pads=[t, left, b, r], group=layer.groups), out_shape
    if isinstance(layer, Dense):
        ins = [x, _weight(w, f"{path}.weight", layer.params["weight"], quantized)]
        if layer.bias:
            ins.append(w.const(f"{path}.bias", layer.params["bias"].astype(np.float32)))
        return w.op("Gemm", ins, path, transB=1), out_shape
    if isinstance(layer, BatchNorm):
        ins = [x] + [w.const(f"{path}.{k}", v.astype(np.float32)) for k, v in (
            ("weight", layer.params["weight"]), ("bias", layer.params["bias"]),
            ("running_mean", layer.state["running_mean"]), ("running_var", layer.state["running_var"]))]
        return w.op("BatchNormalization", ins, path, epsilon=layer.eps), out_shape
    if isinstance(layer, ReLU6):
        return w.op("Clip", [x, w.scalar("relu6.min", 0.0), w.scalar("relu6.max", 6.0)], path), out_shape
    if isinstance(layer, ReLU):
        return w.op("Relu", [x], path), out_shape
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        op_type = "MaxPool" if isinstance(layer, MaxPool2D) else "AveragePool"
        return w.op(op_type, [x], path, kernel_shape=[layer.k] * 2, strides=[layer.stride] * 2), out_shape
    if isinstance(layer, GlobalAvgPool):
        y = w.op("GlobalAveragePool", [x], path)
        return w.op("Flatten", [y], f"{path}.flatten", axis=1), out_shape
    if isinstance(layer, Flatten):
        return w.op("Flatten", [x], path, axis=1), out_shape
    if isinstance(layer, Residual):
        y, body_shape = _emit_layers(w, layer.body, f"{path}.body.", x, shape, quantized)
        short = x
        if layer.shortcut == "option_a":
            s = layer.stride
            if s > 1:
                short = w.op("Slice", [x, w.const(f"{path}.starts", np.zeros(2, np.int64)),
                                       w.const(f"{path}.ends", np.full(2, _INT64_MAX, np.int64)),
                                       w.const(f"{path}.axes", np.array([2, 3], np.int64)),
                                       w.const(f"{path}.steps", np.array([s, s], np.int64))], f"{path}.subsample")
            extra = body_shape[0] - shape[0]
            if extra:
                pads = np.array([0, extra // 2, 0, 0, 0, extra - extra // 2, 0, 0], np.int64)
                short = w.op("Pad", [short, w.const(f"{path}.pads", pads)], f"{path}.channel_pad", mode="constant")
        return w.op("Add", [y, short], path), out_shape
    raise TypeError(f"layer {path} ({type(layer).__name__}) cannot be exported to ONNX; supported: Conv2D, Dense, "
                    "BatchNorm, ReLU, ReLU6, MaxPool2D, AvgPool2D, GlobalAvgPool, Flatten, Dropout, Identity, "
                    "Residual.")


def _check_quantized(qm) -> dict:
    """The quantized weights of ``qm`` by parameter name, checked against its model."""
    params = qm.model.named_parameters()
    for name, qt in qm.quantized.items():
        if name not in params:
            raise ValueError(f"quantized weight {name!r} is not a parameter of the model; the QuantizedModel is "
                             "inconsistent.")
        if not np.array_equal(qt.dequantize(), params[name]):
            raise ValueError(f"quantized weight {name!r}: the model's weight differs from the dequantized codes; "
                             "it was changed after quantization, so the codes no longer describe it.")
    return dict(qm.quantized)


def to_onnx(model, path: str | os.PathLike, *, opset: int = 17) -> int:
    """Write a float :class:`Sequential` or a :class:`~feedforward.QuantizedModel` as an
    ONNX model that onnxruntime runs; atomic.

    The graph takes ``input`` of shape (N, *model.input_shape) (any batch size) and
    gives ``logits``.  BatchNorm is exported as BatchNormalization (a quantized model's
    BatchNorm layers are already folded), residual blocks as Add (option-A shortcuts as
    Slice with steps + Pad on channels), ReLU6 as Clip(0, 6), GlobalAvgPool as
    GlobalAveragePool + Flatten.

    A quantized weight is stored as its integer codes, a uint8 initializer with one
    code per weight, plus its float32 codebook of shape (rows, 2**bits), one row per
    output channel, group or tensor, and rebuilt in the graph by
    ``Cast(codes -> int64) -> GatherElements(codebook, axis=1) -> Reshape``
    (``-> Transpose`` for codebooks along another axis).  This is exact for every scheme
    (uniform, exponential, pow2, lloyd, normal): onnxruntime gives the logits of
    ``qm.forward``, and folds the lookup into a constant when the session starts.

    ONNX has no packed sub-byte type before opset 21 (INT4/UINT4), so the codes take
    one byte per weight whatever ``bits`` is: the ONNX file is at best about 4x smaller
    than the float one, while the package's own file (:meth:`QuantizedModel.save`)
    packs ``bits`` bits per weight.  Compare the sizes this function returns for the
    float and the quantized model, and ``qm.save(...)``.

    Parameters
    ----------
    model : Sequential or QuantizedModel
    path : path
        The .onnx file to write; parent directories are created.
    opset : int, default 17
        ONNX opset of the default domain, 11 or more.

    Returns
    -------
    int
        Size of the file in bytes.

    Raises
    ------
    TypeError
        ``model`` of another type, or holding a layer ONNX export does not support.
    ValueError
        ``opset`` out of range, or a quantized model whose weights no longer match
        its codes.
    ImportError
        onnx is not installed.

    Examples
    --------
    >>> from feedforward import quantize_model, resnet_cifar
    >>> m = resnet_cifar(20)
    >>> float_bytes = to_onnx(m, "resnet20.onnx")  # doctest: +SKIP
    >>> q_bytes = to_onnx(quantize_model(m, 4), "resnet20-4bit.onnx")  # doctest: +SKIP
    """
    from .quantize import QuantizedModel

    onnx = _onnx()
    if isinstance(model, QuantizedModel):
        quantized, seq = _check_quantized(model), model.model
        meta = {"format": ONNX_FORMAT, "quantized": True, "settings": model.settings}
    elif isinstance(model, Sequential):
        quantized, seq = {}, model
        meta = {"format": ONNX_FORMAT, "quantized": False}
    else:
        raise TypeError(f"model must be a feedforward Sequential or QuantizedModel, got {type(model).__name__}.")
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_EXPORT_OPSET <= opset <= latest:
        raise ValueError(f"opset must be an int in [{MIN_EXPORT_OPSET}, {latest}] (this onnx release), got "
                         f"{opset!r}; the default 17 runs on every recent onnxruntime.")
    h, TP = onnx.helper, onnx.TensorProto
    w = _Writer(onnx)
    w.names.update(("input", "logits"))
    x, out_shape = _emit_layers(w, seq.layers, "", "input", seq.input_shape, quantized)
    if w.nodes and w.nodes[-1].output[0] == x:
        w.nodes[-1].output[0] = "logits"
    else:
        w.nodes.append(h.make_node("Identity", [x], ["logits"], name="logits"))
    graph = h.make_graph(w.nodes, "hopfield_quant", [h.make_tensor_value_info("input", TP.FLOAT,
                                                                              ["N", *seq.input_shape])],
                         [h.make_tensor_value_info("logits", TP.FLOAT, ["N", *out_shape])], initializer=w.inits)
    ops = [h.make_opsetid("", int(opset))]
    proto = h.make_model(graph, opset_imports=ops, producer_name="hopfield-quant")
    proto.ir_version = h.find_min_ir_version_for(ops)
    h.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in meta.items()})
    onnx.checker.check_model(proto, full_check=True)
    return atomic_write(path, proto.SerializeToString())
