"""PyTorch adapter: import ``nn.Module`` networks and state_dicts, and quantize any
module's Conv/Linear weights in place through the shared core.

PyTorch is imported lazily (extra ``torch``; ``pip install torch==2.13.0`` takes the CPU
wheel on this project's machines), so ``import feedforward`` never needs it.
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._graph import GraphError, Op, build_layers
from .layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Flatten, GlobalAvgPool, Layer, MaxPool2D, ReLU, ReLU6)
from .model import Sequential

__all__ = ["from_torch", "load_state_dict", "quantize_torch_model"]


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("this function needs PyTorch: pip install torch (on this project's machines "
                          "`pip install torch==2.13.0` takes the CPU wheel).") from None
    return torch


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32, copy=True)


# ------------------------------------------------------------------ state_dicts


def load_state_dict(model: Sequential, state_dict: Mapping[str, Any]) -> Sequential:
    """Load a PyTorch state_dict into ``model`` (in place; returned for chaining).

    Keys are matched by order: the model's parameters in layer order (weight, bias;
    BatchNorm weight, bias, running_mean, running_var) against the state_dict's entries
    with ``num_batches_tracked`` dropped, which is the order PyTorch registers them for a
    model defined layer by layer (names, such as a DataParallel ``module.`` prefix, do
    not matter; shapes are checked).

    Raises
    ------
    ValueError
        Missing or extra entries, or an entry whose shape differs (named).
    """
    own = model.named_parameters()
    theirs = [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
    for i, ((name, arr), (key, val)) in enumerate(zip(own.items(), theirs)):
        shape = tuple(getattr(val, "shape", np.shape(val)))
        if shape != arr.shape:
            raise ValueError(f"state_dict entry {i} {key!r} has shape {shape}, but the architecture's parameter "
                             f"{name!r} has shape {arr.shape}; the state_dict does not match the architecture.")
    if len(theirs) < len(own):
        missing = list(own)[len(theirs):]
        raise ValueError(f"the state_dict has {len(theirs)} entries, the architecture needs {len(own)}: nothing for "
                         f"{missing[:5]}.")
    if len(theirs) > len(own):
        extra = [k for k, _ in theirs[len(own):]]
        raise ValueError(f"the state_dict has {len(theirs) - len(own)} entries more than the architecture: "
                         f"unexpected {extra[:5]}.")
    arrays = {}
    for (name, _), (key, val) in zip(own.items(), theirs):
        a = _np(val) if hasattr(val, "detach") else np.asarray(val, np.float32)
        if not np.isfinite(a).all():
            raise ValueError(f"state_dict entry {key!r} contains NaN or inf.")
        arrays[name] = a
    model.set_parameters(arrays)
    return model


# ------------------------------------------------------------------ nn.Module


def _pair(v, what, node):
    if isinstance(v, int):
        return v
    v = tuple(v)
    if len(set(v)) != 1:
        raise GraphError(f"node {node!r}: non-square {what} {v} is not supported.")
    return int(v[0])


def _conv(node, weight, bias, stride, padding, dilation, groups):
    k = weight.shape[2]
    if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        raise GraphError(f"node {node!r}: only square 2-D convolution kernels are supported, got weight "
                         f"{tuple(weight.shape)}.")
    if _pair(dilation, "dilation", node) != 1:
        raise GraphError(f"node {node!r}: dilated convolutions are not supported.")
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        else:
            raise GraphError(f"node {node!r}: padding={padding!r} is not supported; use explicit padding.")
    if not isinstance(padding, int):
        ph, pw = tuple(padding)
        padding = ph if ph == pw else (ph, ph, pw, pw)
    cout, cin_g = weight.shape[:2]
    layer = Conv2D(cin_g * groups, cout, k, _pair(stride, "stride", node), padding, groups, bias is not None)
    layer.params["weight"] = _np(weight)
    if bias is not None:
        layer.params["bias"] = _np(bias)
    return layer


def _dense(weight, bias):
    layer = Dense(weight.shape[1], weight.shape[0], bias is not None)
    layer.params["weight"] = _np(weight)
    if bias is not None:
        layer.params["bias"] = _np(bias)
    return layer


def _batchnorm(node, m):
    if not m.affine or not m.track_running_stats or m.running_mean is None:
        raise GraphError(f"node {node!r}: BatchNorm needs affine=True and running statistics.")
    layer = BatchNorm(m.num_features, eps=m.eps)
    layer.params = {"weight": _np(m.weight), "bias": _np(m.bias)}
    layer.state = {"running_mean": _np(m.running_mean), "running_var": _np(m.running_var)}
    return layer


def _pool(node, cls, kernel_size, stride, padding, ceil_mode=False, **extra):
    if _pair(padding, "padding", node) != 0 or ceil_mode:
        raise GraphError(f"node {node!r}: pooling with padding or ceil_mode is not supported.")
    k = _pair(kernel_size, "kernel_size", node)
    s = k if stride is None or stride == [] else _pair(stride, "stride", node)
    return cls(k, s)


def _module_op(torch, name, m, node_shape):
    nn = torch.nn
    if type(m) is nn.Conv2d:
        if m.padding_mode != "zeros":
            raise GraphError(f"node {name!r}: Conv2d with padding_mode={m.padding_mode!r} is not supported; "
                             "only zero padding.")
        return _conv(name, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    if type(m) is nn.Linear:
        return _dense(m.weight, m.bias)
    if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
        return _batchnorm(name, m)
    if type(m) is nn.ReLU:
        return ReLU()
    if type(m) is nn.ReLU6 or (type(m) is nn.Hardtanh and (m.min_val, m.max_val) == (0.0, 6.0)):
        return ReLU6()
    if type(m) is nn.MaxPool2d:
        if _pair(m.dilation, "dilation", name) != 1:
            raise GraphError(f"node {name!r}: dilated pooling is not supported.")
        return _pool(name, MaxPool2D, m.kernel_size, m.stride, m.padding, m.ceil_mode)
    if type(m) is nn.AvgPool2d:
        return _pool(name, AvgPool2D, m.kernel_size, m.stride, m.padding, m.ceil_mode)
    if type(m) is nn.AdaptiveAvgPool2d:
        if m.output_size not in (1, (1, 1), [1, 1]):
            raise GraphError(f"node {name!r}: AdaptiveAvgPool2d({m.output_size}) is supported only with output 1.")
        return GlobalAvgPool()
    if type(m) is nn.Flatten:
        return "flatten"
    if type(m) in (nn.Dropout, nn.Identity):
        return "identity"
    if type(m) is nn.ZeroPad2d:
        left, right, top, bottom = m.padding
        return ("spatial_pad", (top, bottom, left, right))
    raise GraphError(f"node {name!r}: module {type(m).__name__} is not supported; supported are Conv2d, Linear, "
                     "BatchNorm1d/2d, ReLU, ReLU6, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Dropout, "
                     "Identity, ZeroPad2d, residual additions and option-A shortcuts.")


_LEAVES = ("Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "Hardtanh", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Flatten", "Dropout", "Identity", "ZeroPad2d")


def _trace(torch, module, example):
    from torch import fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            # subclasses with their own forward (e.g. "same"-padding convs) are traced through
            t = type(m)
            return t.__module__.startswith("torch.nn") and t.__name__ in _LEAVES or super().is_leaf_module(m, qualname)

    try:
        graph = Tracer().trace(module)
    except Exception as exc:  # fx raises many types for untraceable Python control flow
        raise GraphError(f"torch.fx cannot trace {type(module).__name__}: {type(exc).__name__}: {exc}") from None
    gm = fx.GraphModule(module, graph)

    class Record(fx.Interpreter):
        """Runs the graph once; keeps each tensor's shape and each other value (sizes
        computed from the input become constants for that input shape)."""

        def run_node(self, n):
            r = super().run_node(n)
            n.meta["hq_shape"] = tuple(r.shape) if isinstance(r, torch.Tensor) else None
            n.meta["hq_value"] = None if isinstance(r, torch.Tensor) else r
            return r

    Record(gm).run(example)
    return gm


def _is_tensor(node) -> bool:
    return node.meta.get("hq_shape") is not None


def _const(v):
    """A node argument with its recorded value when it is not a tensor."""
    if hasattr(v, "op") and not _is_tensor(v):
        return v.meta.get("hq_value")
    if isinstance(v, (tuple, list)):
        return type(v)(_const(x) for x in v)
    return v


def _graph_ops(torch, gm) -> tuple[list[Op], str, str]:
    F = torch.nn.functional
    mods = dict(gm.named_modules())
    ops: list[Op] = []
    inp = out = None
    for node in gm.graph.nodes:
        name = node.name
        if node.op == "placeholder":
            if inp is not None:
                raise GraphError(f"the module takes several inputs ({inp!r}, {name!r}); one is supported.")
            inp = name
            continue
        if node.op == "output":
            res = node.args[0]
            if not hasattr(res, "name"):
                raise GraphError("the module must return one tensor.")
            out = res.name
            continue
        if node.op == "get_attr" or not _is_tensor(node):
            continue
        targs = [a for a in node.args if hasattr(a, "op") and _is_tensor(a)]
        shape = node.meta["hq_shape"]
        if node.op == "call_module":
            m = mods[node.target]
            r = _module_op(torch, node.target, m, shape)
            src = node.target
        elif node.op == "call_function":
            r = _function_op(torch, F, gm, node, shape)
            # functional conv/linear: named after its weight ("stem.weight" -> "stem")
            src = (node.args[1].target.removesuffix(".weight") if node.target in (F.conv2d, F.linear)
                   else name)
        elif node.op == "call_method":
            r = _method_op(node, shape)
            src = name
        else:  # pragma: no cover - fx has no other node kinds
            raise GraphError(f"node {name!r}: unsupported fx node kind {node.op!r}.")
        if r == "add":
            if len(targs) != 2 or len(node.args) != 2 or node.kwargs:
                raise GraphError(f"node {name!r}: only the sum of two tensors is supported.")
            ops.append(Op(name, "add", (targs[0].name, targs[1].name), name))
            continue
        x = targs[0].name if targs else None
        if x is None:
            raise GraphError(f"node {name!r} ({node.target}) has no tensor input.")
        if r == "identity":
            ops.append(Op(name, "identity", (x,), name))
        elif r == "flatten":
            ops.append(Op(name, "layer", (x,), name, Flatten()))
        elif isinstance(r, tuple):
            kind, val = r
            key = "stride" if kind == "subsample" else "pads"
            ops.append(Op(name, kind, (x,), name, attrs={key: val}))
        else:
            r.source = src
            if isinstance(r, (Conv2D, Dense)):
                if node.op == "call_module":
                    r.source_weight = f"{src}.weight"
                    r.source_bias = f"{src}.bias" if r.bias else None
                else:
                    r.source_weight = node.args[1].target
                    b = _arg(node, 2, "bias", None)
                    r.source_bias = b.target if b is not None else None
            ops.append(Op(name, "layer", (x,), name, r))
    return ops, inp, out


def _param(gm, node, what):
    if node is None:
        return None
    if getattr(node, "op", None) != "get_attr":
        raise GraphError(f"the {what} of a functional call must be a parameter of the module, got {node}.")
    return gm.get_parameter(node.target) if node.target in dict(gm.named_parameters()) else gm.get_buffer(node.target)


def _arg(node, i, key, default):
    if len(node.args) > i:
        return _const(node.args[i])
    return _const(node.kwargs.get(key, default))


def _function_op(torch, F, gm, node, shape):
    f, name = node.target, node.name
    if f in (operator.add, operator.iadd, torch.add):
        return "add"
    if f in (F.relu, torch.relu):
        return ReLU()
    if f is F.relu6:
        return ReLU6()
    if f is F.hardtanh and (_arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)) == (0.0, 6.0):
        return ReLU6()
    if f in (F.dropout, F.dropout2d):
        return "identity"
    if f is torch.flatten:
        if _arg(node, 1, "start_dim", 0) != 1 or _arg(node, 2, "end_dim", -1) != -1:
            raise GraphError(f"node {name!r}: only torch.flatten(x, 1) is supported.")
        return "flatten"
    if f is F.adaptive_avg_pool2d:
        if _arg(node, 1, "output_size", None) not in (1, (1, 1), [1, 1]):
            raise GraphError(f"node {name!r}: adaptive_avg_pool2d is supported only with output size 1.")
        return GlobalAvgPool()
    if f in (F.avg_pool2d, F.max_pool2d):
        k = _arg(node, 1, "kernel_size", None)
        stride = _arg(node, 2, "stride", None)
        if f is F.avg_pool2d and shape[2:] == (1, 1) and _arg(node, 3, "padding", 0) in (0, (0, 0)):
            in_shape = node.args[0].meta["hq_shape"]
            if _pair(k, "kernel_size", name) == in_shape[2] == in_shape[3]:
                return GlobalAvgPool()
        cls = AvgPool2D if f is F.avg_pool2d else MaxPool2D
        return _pool(name, cls, k, stride, _arg(node, 3, "padding", 0), _arg(node, 4 if cls is AvgPool2D else 5,
                                                                                "ceil_mode", False))
    if f is F.conv2d:
        return _conv(name, _param(gm, node.args[1], "weight"), _param(gm, _arg(node, 2, "bias", None), "bias"),
                     _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1),
                     _arg(node, 6, "groups", 1))
    if f is F.linear:
        return _dense(_param(gm, node.args[1], "weight"), _param(gm, _arg(node, 2, "bias", None), "bias"))
    if f is F.pad:
        pad = tuple(_arg(node, 1, "pad", ()))
        mode, value = _arg(node, 2, "mode", "constant"), _arg(node, 3, "value", None)
        if mode != "constant" or value not in (None, 0, 0.0) or min(pad, default=0) < 0:
            raise GraphError(f"node {name!r}: only zero padding is supported, got mode={mode!r} value={value!r} "
                             f"pad={pad}.")
        if len(pad) == 4:
            return ("spatial_pad", (pad[2], pad[3], pad[0], pad[1]))
        if len(pad) == 6 and pad[:4] == (0, 0, 0, 0):
            return ("channel_pad", (pad[4], pad[5]))
        raise GraphError(f"node {name!r}: padding {pad} is not supported (spatial or channel zero padding only).")
    if f is operator.getitem:
        idx = node.args[1]
        if (isinstance(idx, tuple) and len(idx) == 4 and all(isinstance(s, slice) for s in idx)
                and idx[0] == slice(None) and idx[1] == slice(None) and idx[2] == idx[3]
                and idx[2].start is None and idx[2].stop is None and (idx[2].step or 1) >= 1):
            return ("subsample", idx[2].step or 1)
        raise GraphError(f"node {name!r}: indexing {idx} is not supported (only x[:, :, ::s, ::s]).")
    raise GraphError(f"node {name!r}: function {getattr(f, '__name__', f)} is not supported.")


def _method_op(node, shape):
    m, name = node.target, node.name
    if m in ("view", "reshape", "flatten"):
        if len(shape) != 2:
            raise GraphError(f"node {name!r}: .{m}() to shape {shape} is not supported; only (N, features).")
        return "flatten"
    if m in ("contiguous", "clone"):
        return "identity"
    if m in ("relu", "relu_"):
        return ReLU()
    raise GraphError(f"node {name!r}: tensor method .{m}() is not supported.")


def from_torch(module, input_shape: tuple[int, ...] | None = None, *, architecture: Sequential | None = None,
               check: bool = True, rtol: float = 1e-4) -> Sequential:
    """Build a :class:`Sequential` from a PyTorch network.

    Parameters
    ----------
    module : torch.nn.Module or mapping
        A module made of Conv2d (plain, grouped, depthwise), Linear, BatchNorm1d/2d,
        ReLU, ReLU6, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten/view, Dropout,
        ZeroPad2d, residual additions with identity or option-A shortcuts, traced with
        ``torch.fx`` (Python-level loops and conditions are fine).  Or a state_dict,
        together with ``architecture``.
    input_shape : tuple of int
        Shape of one sample, e.g. (3, 32, 32); required for a module.
    architecture : Sequential, optional
        For a state_dict: the model to load it into (see :func:`load_state_dict`).
    check : bool, default True
        Run both models on a seeded random batch of 2 and raise if the outputs differ
        by more than ``rtol`` relative to the largest output magnitude.

    Returns
    -------
    Sequential
        Float32, BatchNorm not folded; each conv/dense layer imported from a module
        keeps the module's qualified name in ``layer.source``.

    Raises
    ------
    GraphError (a ValueError)
        An unsupported module, function or structure, with the node named.
    """
    if isinstance(module, Mapping):
        if architecture is None:
            raise TypeError("a state_dict needs architecture=<a Sequential>, e.g. feedforward.resnet_cifar(20).")
        return load_state_dict(architecture, module)
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module or a state_dict, got {type(module).__name__}.")
    if input_shape is None:
        raise TypeError("from_torch(module) needs input_shape, the shape of one sample, e.g. (3, 32, 32).")
    input_shape = tuple(int(s) for s in input_shape)
    for name, p in list(module.named_parameters()) + list(module.named_buffers()):
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ValueError(f"parameter {name!r} of the module contains NaN or inf.")
    was_training = module.training
    module.eval()
    try:
        gen = torch.Generator().manual_seed(0)
        example = torch.randn((2,) + input_shape, generator=gen)
        with torch.no_grad():
            gm = _trace(torch, module, example)
            ops, inp, out = _graph_ops(torch, gm)
            model = Sequential(build_layers(ops, inp, out), input_shape)
            if check:
                ref = module(example).numpy()
                got = model.forward(example.numpy())
                scale = max(float(np.abs(ref).max()), 1e-30)
                err = float(np.abs(got - ref).max()) if got.shape == ref.shape else math.inf
                if err > rtol * scale:
                    raise GraphError(f"the imported model's outputs differ from the module's by {err:.3g} (relative "
                                     f"{err / scale:.3g} > rtol={rtol}); output shapes {got.shape} vs {ref.shape}.")
    finally:
        module.train(was_training)
    return model


# ------------------------------------------------------- quantize_torch_model


def quantize_torch_model(module, bits, input_shape: tuple[int, ...] | None = None, path: str | os.PathLike | None = None,
                         **options) -> dict:
    """Quantize the weights of every Conv/Linear layer of a PyTorch module in place.

    The weights are quantized through the shared core with the recipe of
    :func:`feedforward.quantize_model` (its defaults are the best data-free recipe the
    study measured) and written back as float values, so the module keeps running in
    PyTorch.

    With ``input_shape`` and a module that :func:`from_torch` can import, the whole
    recipe applies, including the data-free remedies that need the network's structure
    (bias correction from BatchNorm statistics, cross-layer equalization).  BatchNorm is
    folded for quantizing: a conv followed by a BatchNorm gets W_q / s with s the
    BatchNorm's per-channel scale (so its codes are those of the folded weight), and bias
    corrections land in the conv/linear bias, or in the running mean of the BatchNorm
    that follows a bias-free conv.  A bias-free conv/linear with no BatchNorm after it
    gets a new ``bias`` parameter (a new state_dict key).  Any other module (no
    ``input_shape``, or layers ``from_torch`` does not know) gets its Conv1d/2d/3d and
    Linear weights quantized one by one, per output channel, with a warning that says
    why the structural remedies were left out.

    Parameters
    ----------
    module : torch.nn.Module
        Modified in place (weights, and biases or BatchNorm running means).
    bits : int or mapping of layer name to int
        One width, or per layer by the module's qualified names (layers left out of a
        mapping stay float).
    input_shape : tuple of int, optional
        Shape of one sample; enables the structural remedies.
    path : path, optional
        Also write the compressed model (packed codes + codebooks + every other
        parameter) in the core's file format, atomically: a ``QuantizedModel`` file
        (:func:`feedforward.load_quantized`) when the module was imported, else the
        module's tensors by their state_dict names (:func:`quantization.load`).
    **options
        Passed to :func:`feedforward.quantize_model`: scheme (a name, or a mapping by
        the module's layer names), objective, gain, preserve_mean, axis, group_size,
        param_dtype, skip (the module's layer names, "first", "last"), bias_correction, equalize.

    Returns
    -------
    dict
        ``report``: per layer (layer, bits, rho, bytes, ...); ``float_bytes`` and
        ``compressed_bytes``: the parameters of the same network as float32 and as
        stored (packed codes + codebooks + other parameters as float32), so that
        ``float_bytes / compressed_bytes`` compares like with like (with the remedies,
        both count the BatchNorm-folded network; without, both count every floating
        entry of the state_dict); ``file_bytes``: the size of the file written to
        ``path`` (None without one; the file adds a header); ``module_bytes``: the
        module's own parameters as they are (BatchNorm unfolded, their dtype);
        ``structural``: whether the remedies applied.
    """
    torch = _torch()
    from .quantize import quantize_model

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    if "fold_bn" in options:
        raise TypeError("quantize_torch_model always folds BatchNorm for quantizing; fold_bn is not an option here.")
    module_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    model = None
    reason = "no input_shape was given"
    if input_shape is not None:
        try:
            model = from_torch(module, input_shape)
        except (GraphError, RuntimeError) as exc:
            reason = str(exc)
    if model is not None:
        src = {path_: layer.source for path_, layer in model.named_layers()
               if isinstance(layer, (Conv2D, Dense)) and getattr(layer, "source", None)}
        back = {v: k for k, v in src.items()}

        def to_paths(what, m):
            unknown = sorted(set(m) - set(back))
            if unknown:
                raise ValueError(f"{what} names {unknown}, which are not conv/linear layers of the module; choose "
                                 f"from {sorted(back)}.")
            return {back[k]: v for k, v in m.items()}

        fbits = to_paths("bits", bits) if isinstance(bits, Mapping) else bits
        opts = dict(options)
        if isinstance(opts.get("scheme"), Mapping):
            opts["scheme"] = to_paths("scheme", opts["scheme"])
        if "skip" in opts:
            if isinstance(opts["skip"], str):
                raise TypeError(f"skip must be a list of layer names, got the string {opts['skip']!r}.")
            keep = [k for k in opts["skip"] if k in ("first", "last")]
            opts["skip"] = keep + list(to_paths("skip", {k: k for k in opts["skip"] if k not in keep}))
        qm = quantize_model(model, fbits, **opts)
        _write_back(torch, module, model, qm)
        report = [{**r, "layer": src.get(r["layer"], r["layer"])} for r in qm.report]
        file_bytes = qm.save(path) if path is not None else None
        float_bytes = sum(4 * v.size for v in qm.model.named_parameters().values())
        return {"report": report, "float_bytes": float_bytes, "compressed_bytes": qm.nbytes, "file_bytes": file_bytes,
                "module_bytes": module_bytes, "structural": True}
    ignored = sorted({"bias_correction", "equalize"} & set(options))
    warnings.warn(f"quantize_torch_model: weights quantized layer by layer without the structural remedies "
                  f"(bias correction{', ' + ', '.join(ignored) + ' ignored' if ignored else ''}) because {reason}.",
                  stacklevel=2)
    return _quantize_modules(torch, module, bits, path, module_bytes, options)


def _bn_after(model: Sequential) -> dict[str, Layer]:
    """Conv/dense path -> the BatchNorm that directly follows it (before folding)."""
    out = {}

    def scan(prefix, layers):
        for i, layer in enumerate(layers):
            p = f"{prefix}{i}"
            if isinstance(layer, (Conv2D, Dense)) and i + 1 < len(layers) and isinstance(layers[i + 1], BatchNorm):
                out[p] = layers[i + 1]
            if hasattr(layer, "body"):
                scan(f"{p}.body.", layer.body)

    scan("", model.layers)
    return out


def _write_back(torch, module, model, qm):
    """Put the folded quantized model's weights and biases into the torch module: every
    conv/linear layer (equalization may have rescaled float ones too), unfolding each
    BatchNorm that follows one into the BatchNorm's running mean."""
    folded = dict(qm.model.named_layers())
    bns = _bn_after(model)
    with torch.no_grad():
        for path_, layer in model.named_layers():
            if not isinstance(layer, (Conv2D, Dense)):
                continue
            fl = folded[path_]
            wq = fl.params["weight"].astype(np.float64)
            bq = fl.params.get("bias")
            wt = module.get_parameter(layer.source_weight)
            owner = module.get_submodule(layer.source_weight.rpartition(".")[0])
            bn = bns.get(path_)
            if bn is None:
                wt.copy_(torch.from_numpy(wq.astype(np.float32)))
                if bq is not None:
                    bt = torch.from_numpy(bq.copy()).to(device=wt.device, dtype=wt.dtype)
                    if layer.source_bias is not None:
                        module.get_parameter(layer.source_bias).copy_(bt)
                    elif isinstance(getattr(owner, "bias", None), torch.nn.Parameter):
                        owner.bias.copy_(bt)
                    else:
                        owner.bias = torch.nn.Parameter(bt)
                continue
            # folded: wq = W s, bq = (b - mu) s + beta with s = gamma / sqrt(var + eps)
            s = bn.params["weight"].astype(np.float64) / np.sqrt(bn.state["running_var"].astype(np.float64) + bn.eps)
            shape = (-1,) + (1,) * (wq.ndim - 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                w_back = np.where(s.reshape(shape) != 0, wq / s.reshape(shape), layer.params["weight"])
            wt.copy_(torch.from_numpy(w_back.astype(np.float32)))
            b0 = layer.params.get("bias", np.zeros(len(s), np.float32)).astype(np.float64)
            mu = bn.state["running_mean"].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                mu_new = np.where(s != 0, b0 - (bq.astype(np.float64) - bn.params["bias"]) / s, mu)
            bn_mod = module.get_submodule(bn.source)
            bn_mod.running_mean.copy_(torch.from_numpy(mu_new.astype(np.float32)))


def _quantize_modules(torch, module, bits, path, module_bytes, options):
    import quantization as qz

    from .quantize import _core_options

    core = _core_options({k: v for k, v in options.items() if k not in ("bias_correction", "equalize", "skip",
                                                                         "scheme")})
    kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    layers = [(n, m) for n, m in module.named_modules() if isinstance(m, kinds)]
    names = [n for n, _ in layers]
    skip = options.get("skip", ())
    if isinstance(skip, str):
        raise TypeError(f"skip must be a list of layer names, got the string {skip!r}.")
    skipped = set()
    for k in skip:
        if k in ("first", "last") and names:
            skipped.add(names[0] if k == "first" else names[-1])
        elif k in names:
            skipped.add(k)
        else:
            raise ValueError(f"skip names {k!r}, which is not a conv/linear layer; choose from {names}.")
    scheme = options.get("scheme", "uniform")
    for what, m in (("bits", bits), ("scheme", scheme)):
        if isinstance(m, Mapping):
            unknown = sorted(set(m) - set(names))
            if unknown:
                raise ValueError(f"{what} names {unknown}, which are not conv/linear layers; choose from {names}.")
    report, tensors = [], {}
    with torch.no_grad():
        for n, m in layers:
            b = bits.get(n) if isinstance(bits, Mapping) else bits
            s = scheme.get(n, "uniform") if isinstance(scheme, Mapping) else scheme
            w = _np(m.weight)
            if not np.isfinite(w).all():
                raise ValueError(f"layer {n!r}: weight contains NaN or inf.")
            row = {"layer": n, "type": type(m).__name__, "params": int(w.size), "float_bytes": int(w.nbytes)}
            if b is None or n in skipped:
                report.append({**row, "bits": 32, "scheme": "float32", "rho": 1.0, "bytes": int(w.nbytes)})
                continue
            qt = qz.quantize(w, b, s, **core)
            wq = qt.dequantize()
            m.weight.copy_(torch.from_numpy(wq).to(m.weight.dtype))
            tensors[f"{n}.weight"] = qt
            report.append({**row, "bits": int(b), "scheme": s, "rho": qz.correlation(w, wq), "bytes": int(qt.nbytes)})
    for name, p in module.state_dict().items():
        if name not in tensors and p.is_floating_point():
            tensors[name] = _np(p)
    file_bytes = (qz.save(path, tensors, metadata={"format": "hopfield-quant/torch-weights/1"}) if path is not None
                  else None)
    float_bytes = sum(4 * (t.size if isinstance(t, qz.QuantizedTensor) else t.size) for t in tensors.values())
    compressed = sum(t.nbytes if isinstance(t, qz.QuantizedTensor) else 4 * t.size for t in tensors.values())
    return {"report": report, "float_bytes": float_bytes, "compressed_bytes": compressed, "file_bytes": file_bytes,
            "module_bytes": module_bytes, "structural": False}
