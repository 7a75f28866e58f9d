"""Post-training quantization of a model through the shared core, with no data.

Every Conv2D and Dense weight is quantized with :func:`quantization.quantize` (per
output channel by default); biases stay float32.  BatchNorm layers are folded into the
preceding conv/dense first, so the quantized weights are the ones inference uses.

Inference reads dequantized float32 weights, materialised once when a quantized model
is built or loaded: the convolutions then run as float32 BLAS GEMMs, the fastest path on
a CPU, and the saving that matters (storage and transfer) is in the file, which holds
only packed codes and codebooks.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

import quantization as qz

from ._files import file_kind, wrong_kind_message
from .layers import Conv2D, Dense
from .model import Sequential, check_labels, fold_batchnorm

__all__ = ["QuantizedModel", "quantize_model", "load_quantized", "accuracy_vs_bits", "plot_accuracy_vs_bits"]

QMODEL_FORMAT = "hopfield-quant/quantized-model/1"


class QuantizedModel:
    """A model whose conv/dense weights are quantized.

    Attributes
    ----------
    model : Sequential
        Runs inference on the dequantized weights (same architecture, BN folded).
    quantized : dict of str to QuantizedTensor
        The quantized weights by parameter name ("3.weight", "5.body.0.weight").
    report : list of dict
        Per layer: layer, type, params, bits, scheme, rho, sqnr_db, bytes (packed codes
        + codebook), float_bytes, bias_shift (RMS of the bias correction).
    settings : dict
        How the weights were quantized.
    """

    def __init__(self, model: Sequential, quantized: dict, report: list[dict], settings: dict):
        self.model, self.quantized, self.report, self.settings = model, quantized, report, settings

    def predict(self, x, batch_size: int = 256):
        return self.model.predict(x, batch_size)

    def accuracy(self, x, y, batch_size: int = 256) -> float:
        return self.model.accuracy(x, y, batch_size)

    def forward(self, x):
        return self.model.forward(x)

    def logits(self, x, batch_size: int = 256):
        """Outputs for every input, refusing NaN/inf ones (see :meth:`Sequential.logits`)."""
        return self.model.logits(x, batch_size)

    @property
    def nbytes(self) -> int:
        """Packed codes and codebooks of the quantized weights plus every other
        parameter as float32: the payload of :meth:`save` (the file adds a header)."""
        return sum(self.quantized[k].nbytes if k in self.quantized else v.nbytes
                   for k, v in self.model.named_parameters().items())

    def save(self, path: str | os.PathLike) -> int:
        """Write the compressed model (architecture + packed codes + codebooks + float
        biases) in the core's file format, atomically; returns its size in bytes, the
        storage figure of the model."""
        tensors: dict = {}
        for name, arr in self.model.named_parameters().items():
            tensors[name] = self.quantized.get(name, arr)
        meta = {"format": QMODEL_FORMAT, "architecture": self.model.config(), "settings": self.settings}
        return qz.save(path, tensors, metadata=meta)


def load_quantized(path: str | os.PathLike) -> QuantizedModel:
    """Read a compressed model written by :meth:`QuantizedModel.save`; predictions are
    bit-for-bit those of the saved model.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    quantization.FormatError
        Naming the file: another kind of model file (a float ``.npz``, a PyTorch
        checkpoint, an ONNX model; the message names the function that reads it), a
        damaged file, a file of quantized tensors that is not a model, or tensors that
        do not match the stored architecture (missing, unexpected, wrong shape, invalid).
    """
    kind = file_kind(path)
    msg = wrong_kind_message(path, kind, "a quantized model file written by QuantizedModel.save")
    if kind != "quantized" and msg is not None:
        raise qz.FormatError(msg)
    tensors, meta = qz.load(path, return_metadata=True)
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt != QMODEL_FORMAT:
        raise qz.FormatError(f"{path} holds quantized tensors but no model (metadata format {fmt!r}, expected "
                             f"{QMODEL_FORMAT!r}); read tensors written by quantization.save with quantization.load.")
    try:
        model = Sequential.from_config(meta["architecture"])
    except (ValueError, KeyError, TypeError) as exc:
        raise qz.FormatError(f"{path}: bad architecture ({exc}).") from None
    quantized = {k: v for k, v in tensors.items() if isinstance(v, qz.QuantizedTensor)}
    arrays = {k: (v.dequantize() if isinstance(v, qz.QuantizedTensor) else v) for k, v in tensors.items()}
    try:
        model.set_parameters(arrays)
    except ValueError as exc:
        raise qz.FormatError(f"{path}: {exc}") from None
    return QuantizedModel(model, quantized, [], meta.get("settings", {}))


def _resolve_skip(model: Sequential, skip: Iterable[str]) -> set[str]:
    paths = [p for p, layer in model.named_layers() if isinstance(layer, (Conv2D, Dense))]
    out = set()
    for s in skip:
        if s == "first":
            out.add(paths[0])
        elif s == "last":
            out.add(paths[-1])
        elif s in paths:
            out.add(s)
        else:
            raise ValueError(f"skip names {s!r}, which is not a conv/dense layer; choose from 'first', 'last', "
                             f"{', '.join(paths)}.")
    return out


_CORE_KEYS = ("objective", "gain", "preserve_mean", "axis", "group_size", "param_dtype")


def _core_options(options: Mapping) -> dict:
    """The core's keyword arguments from quantize_model-style options (per-tensor axis
    names mapped to the core's), with quantize_model's defaults."""
    unknown = sorted(set(options) - set(_CORE_KEYS))
    if unknown:
        raise TypeError(f"unexpected options {unknown}; known: {', '.join(_CORE_KEYS)}.")
    axis = options.get("axis", "out_channel")
    if axis not in ("out_channel", None):
        raise ValueError(f"axis={axis!r} is not supported; use 'out_channel' or None.")
    group_size = options.get("group_size")
    return dict(objective=options.get("objective", "correlation"), gain=options.get("gain", "unbiased"),
                preserve_mean=options.get("preserve_mean", True), group_size=group_size,
                param_dtype=options.get("param_dtype", "auto"),
                axis=0 if axis == "out_channel" and group_size is None else None)


def quantize_model(model: Sequential, bits: int | Mapping[str, int], scheme: str | Mapping[str, str] = "uniform",
                   objective: str = "correlation", axis: str | None | Mapping[str, str | None] = "out_channel",
                   group_size: int | None = None,
                   gain: str = "unbiased", preserve_mean: bool = True, skip: Iterable[str] = (),
                   fold_bn: bool = True, bias_correction: bool = True, equalize: bool = False,
                   param_dtype: str = "auto") -> QuantizedModel:
    """Quantize every Conv2D/Dense weight of ``model`` through :func:`quantization.quantize`.

    Parameters
    ----------
    model : Sequential
        Not modified.
    bits : int or mapping of layer path to int
        One width for every layer, or per layer ("0": 8, "8": 4, ...); layers missing
        from a mapping stay float32.  :func:`feedforward.allocate_bits` chooses one for
        a storage budget.
    scheme : str or mapping of layer path to str, default "uniform"
        One scheme, or one per layer (e.g. ``allocate_bits(...).scheme``); quantized
        layers missing from a mapping use "uniform".
    objective, gain, preserve_mean :
        Passed to the core (see :func:`quantization.quantize`).  Each output channel
        feeds the next layer's fixed (folded BatchNorm) statistics, so ``gain`` and
        ``preserve_mean`` matter.  The defaults, slope-1 gain with preserved channel
        means, come from ``bench/cnn_study.py`` and ``bench/pretrained_study.py``.
    axis : "out_channel", None, or mapping of layer path to one of them
        Per output channel codebooks (axis 0 of (O, I, k, k) and (O, I) weights), or
        one per tensor; or per layer (e.g. ``allocate_bits(...).axis``; layers missing
        from a mapping use "out_channel").
    group_size : int or None
        Per-group codebooks along the last axis instead (exclusive with axis).
    skip : iterable of str
        Layers left in float32: paths ("0", "5.body.3"), "first" and/or "last" (the
        first and last conv/dense layers, a common choice).  Default: quantize all.
    fold_bn : bool, default True
        Fold BatchNorm into the preceding conv/dense before quantizing.
    bias_correction : bool, default True
        Data-free bias correction (Nagel et al. 2019): subtract from each layer's bias
        the mean shift (W_q - W) E[x] its quantization adds, with E[x] predicted from
        the preceding BatchNorm's parameters through ReLU/ReLU6 (see
        :func:`feedforward.remedies.expected_inputs`); layers whose input mean is not
        known this way are left as they are.
    equalize : bool, default False
        Cross-layer equalization (Nagel et al. 2019) of conv pairs joined by ReLU
        before quantizing (see :func:`feedforward.remedies.equalize`).  It keeps the
        float function and mostly helps per-tensor grids; ``bench/pretrained_study.py``
        measures it.
    param_dtype : {"auto", "bfloat16", "float32"}, default "auto"
        How each codebook row's parameters are stored (see
        :func:`quantization.quantize`).  bfloat16 halves their bytes, which matter on
        short rows (a 3x3 depthwise row at 4 bits: 4.5 bytes of codes, 12 of float32
        uniform parameters); "auto" takes it for each layer where it adds at most 1%
        to the layer's squared quantization error (all low widths), else float32.
        ``bench/pretrained_study.py`` measures the accuracy with both.

    Returns
    -------
    QuantizedModel

    Raises
    ------
    TypeError
        When ``model`` is not a :class:`Sequential`.
    ValueError
        On invalid parameters (NaN, inf, a negative BatchNorm variance; see
        :meth:`Sequential.check_parameters`) or options.
    """
    from .remedies import correct_bias
    from .remedies import equalize as _equalize
    from .remedies import expected_inputs

    if isinstance(skip, str):
        raise TypeError(f"skip must be a list of layer names, got the string {skip!r}; write skip=({skip!r},).")
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a feedforward.Sequential, got {type(model).__name__}; a QuantizedModel "
                        "is quantized already: quantize its float original.")
    model.check_parameters()  # before anything computes with a negative variance or a NaN
    layer_axes = dict(axis) if isinstance(axis, Mapping) else {}
    default_axis = "out_channel" if isinstance(axis, Mapping) else axis
    core = _core_options(dict(objective=objective, gain=gain, preserve_mean=preserve_mean, axis=default_axis,
                              group_size=group_size, param_dtype=param_dtype))
    for a in layer_axes.values():
        _core_options(dict(axis=a))  # validates
    means = expected_inputs(model) if bias_correction else {}
    base = fold_batchnorm(model) if fold_bn else copy.deepcopy(model)
    if equalize:
        for path, s_in in _equalize(base).items():
            if means.get(path) is not None:
                means[path] = means[path] / s_in
    skipped = _resolve_skip(base, skip)
    layers = [p for p, layer in base.named_layers() if isinstance(layer, (Conv2D, Dense))]
    for what, m in (("bits", bits), ("scheme", scheme), ("axis", layer_axes)):
        if isinstance(m, Mapping):
            unknown = sorted(set(m) - set(layers))
            if unknown:
                raise ValueError(f"{what} names {unknown}, which are not conv/dense layers; choose from "
                                 f"{', '.join(layers)}.")
    quantized, report = {}, []
    for path, layer in base.named_layers():
        if not isinstance(layer, (Conv2D, Dense)):
            continue
        w = layer.params["weight"]
        b = bits.get(path) if isinstance(bits, Mapping) else bits
        s = scheme.get(path, "uniform") if isinstance(scheme, Mapping) else scheme
        row = {"layer": path, "type": layer.kind, "params": int(w.size), "float_bytes": int(w.nbytes)}
        if b is None or path in skipped:
            report.append({**row, "bits": 32, "scheme": "float32", "rho": 1.0, "sqnr_db": float("inf"),
                           "bytes": int(w.nbytes), "bias_shift": 0.0})
            continue
        if path in layer_axes and group_size is None:
            core["axis"] = 0 if layer_axes[path] == "out_channel" else None
        elif group_size is None:
            core["axis"] = 0 if default_axis == "out_channel" else None
        qt = qz.quantize(w, b, s, **core)
        quantized[f"{path}.weight"] = qt
        wq = qt.dequantize()
        shift = 0.0
        mean_in = means.get(path)
        if mean_in is not None:
            shift = correct_bias(layer, w, wq, mean_in)
        layer.params["weight"] = wq
        report.append({**row, "bits": int(b), "scheme": s, "rho": qz.correlation(w, wq), "sqnr_db": qz.sqnr_db(w, wq),
                       "bytes": int(qt.nbytes), "bias_shift": shift})
    settings = dict(bits=dict(bits) if isinstance(bits, Mapping) else int(bits),
                    scheme=dict(scheme) if isinstance(scheme, Mapping) else scheme, objective=objective,
                    axis=dict(axis) if isinstance(axis, Mapping) else axis, group_size=group_size, gain=gain,
                    preserve_mean=bool(preserve_mean), param_dtype=param_dtype,
                    skip=sorted(skipped), fold_bn=bool(fold_bn), bias_correction=bool(bias_correction),
                    equalize=bool(equalize))
    return QuantizedModel(base, quantized, report, settings)


def accuracy_vs_bits(model: Sequential, x: np.ndarray, y: np.ndarray, bits: Iterable[int] = range(1, 9),
                     schemes: Iterable[str] = ("uniform", "exponential"),
                     objectives: Iterable[str] = ("correlation", "minmax"), gains: Iterable[str] = ("unbiased",),
                     preserve_means: Iterable[bool] = (True,), axis: str | None = "out_channel",
                     skip: Iterable[str] = (), progress: bool = False, bias_correction: bool = True,
                     param_dtype: str = "auto") -> list[dict]:
    """Accuracy, accuracy drop and compression ratio for every combination; no data is
    used for quantization, (x, y) only evaluates.  ``bias_correction`` and
    ``param_dtype`` are passed to :func:`quantize_model`.

    The compression ratio compares like with like: the parameters of the same
    BatchNorm-folded network (the one both models run) in float32, over the quantized
    model's parameters (:attr:`QuantizedModel.nbytes`: packed codes and codebooks, every
    other parameter in float32).  Neither side counts file headers, and BatchNorm
    statistics, which the quantized model folds into the biases, are not counted on
    the float side either.

    Returns
    -------
    list of dict
        One row per (scheme, objective, gain, preserve_mean, bits): accuracy,
        float_accuracy, accuracy_drop (percentage points), mean_rho (of the weights,
        parameter-weighted), logit_rho (correlation of the outputs with the float model's)
        and agreement (fraction of inputs with the float model's prediction): finer than
        accuracy on small test sets; float_bytes (float32 parameters of the folded
        network), compressed_bytes (:attr:`QuantizedModel.nbytes`), compression_ratio
        (float_bytes / compressed_bytes), file_bytes (size of the saved ``.hq`` file,
        header included), seconds.

    Raises
    ------
    ValueError, TypeError
        Labels that are not one integer class per input; invalid parameters or NaN/inf
        outputs of the float or a quantized model (see :meth:`Sequential.logits`).
    """
    from tqdm.auto import tqdm

    y = check_labels(y, len(x))
    folded = fold_batchnorm(model)
    float_bytes = sum(v.nbytes for v in folded.named_parameters().values())
    float_logits = folded.logits(x)
    float_acc = float(np.mean(float_logits.argmax(1) == y))
    combos = [(s, o, g, pm, b) for s in schemes for o in objectives for g in gains for pm in preserve_means
              for b in bits]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for s, o, g, pm, b in tqdm(combos, desc="accuracy vs bits", disable=not progress):
            t0 = time.perf_counter()
            qm = quantize_model(model, b, s, o, axis=axis, gain=g, preserve_mean=pm, skip=skip,
                                bias_correction=bias_correction, param_dtype=param_dtype)
            file_bytes = qm.save(Path(d) / "q.hq")
            logits = qm.logits(x)
            acc = float(np.mean(logits.argmax(1) == y))
            n = sum(r["params"] for r in qm.report)
            rows.append(dict(scheme=s, objective=o, gain=g, preserve_mean=pm, bits=b, accuracy=acc,
                             float_accuracy=float_acc, accuracy_drop=100 * (float_acc - acc),
                             mean_rho=sum(r["rho"] * r["params"] for r in qm.report) / n,
                             logit_rho=float(np.corrcoef(float_logits.ravel(), logits.ravel())[0, 1]),
                             agreement=float(np.mean(logits.argmax(1) == float_logits.argmax(1))),
                             float_bytes=float_bytes, compressed_bytes=qm.nbytes,
                             compression_ratio=float_bytes / qm.nbytes, file_bytes=file_bytes,
                             seconds=time.perf_counter() - t0))
    return rows


def plot_accuracy_vs_bits(rows: list[dict], path, title: str = "") -> None:
    """Accuracy and compression ratio versus bits, one line per method.

    Parameters
    ----------
    rows : list of dict
        What :func:`accuracy_vs_bits` returns.
    path : str or PathLike
        Image file; the format follows the suffix (png, svg, pdf).  Written atomically
        under a unique temporary name, so concurrent runs writing the same path never
        collide and a killed run leaves the previous file intact.
    title : str, optional

    Raises
    ------
    ValueError
        When ``rows`` is empty.
    """
    if not rows:
        raise ValueError("rows is empty; pass the rows that accuracy_vs_bits returns.")
    from matplotlib.figure import Figure

    from quantization._io import save_figure

    fig = Figure(figsize=(12, 4.5))  # no pyplot: no global state, the caller's backend untouched
    a1, a2 = fig.subplots(1, 2)
    keys = list(dict.fromkeys((r["scheme"], r["objective"], r["gain"], r["preserve_mean"]) for r in rows))
    for key in keys:
        sel = sorted((r for r in rows if (r["scheme"], r["objective"], r["gain"], r["preserve_mean"]) == key),
                     key=lambda r: r["bits"])
        label = f"{key[0]}, {key[1]}, gain {key[2]}" + (", mean" if key[3] else "")
        style = "-" if key[1] == "correlation" else "--"
        line, = a1.plot([r["bits"] for r in sel], [100 * r["accuracy"] for r in sel], style, marker="o", ms=3,
                        label=label)
        a2.plot([r["bits"] for r in sel], [r["compression_ratio"] for r in sel], style, marker="o", ms=3,
                color=line.get_color())
    a1.axhline(100 * rows[0]["float_accuracy"], color="k", ls=":", label="float32")
    a1.set(xlabel="bits per weight", ylabel="accuracy (%)", title=title or "accuracy versus bits")
    a2.set(xlabel="bits per weight", ylabel="float32 / quantized parameter bytes",
           title="compression ratio (BatchNorm folded in both)")
    a1.legend(fontsize=7)
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
