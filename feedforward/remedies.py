"""Data-free remedies for post-training quantization: activation statistics predicted
from BatchNorm parameters, bias correction, and bit allocation for a storage budget.

Nagel, van Baalen, Blankevoort, Welling (2019), "Data-Free Quantization Through Weight
Equalization and Bias Correction", ICCV: a BatchNorm output is taken as Gaussian,
N(beta, gamma^2) per channel; the expected output of each layer is then known in closed
form through ReLU / ReLU6, and the mean shift a quantized layer adds,
(W_q - W) E[x], can be subtracted from its bias, with no data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import quantization as qz

from .layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, Identity, Layer, ReLU,
                     ReLU6, Residual)
from .model import Sequential

__all__ = ["clipped_normal_moments", "expected_inputs", "bias_shift", "correct_bias", "equalize", "layer_error",
           "output_gains", "BitAllocation", "allocate_bits"]

Stats = tuple[np.ndarray, np.ndarray] | None  # per-channel (mean, variance) or unknown


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z):
    from math import erf
    return 0.5 * (1.0 + np.vectorize(erf)(np.asarray(z, np.float64) / math.sqrt(2.0)))


def clipped_normal_moments(mean: np.ndarray, var: np.ndarray, lo: float = 0.0,
                           hi: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of clip(X, lo, hi) for X ~ N(mean, var), elementwise.

    ReLU is ``lo=0, hi=inf``; ReLU6 ``lo=0, hi=6``.  Closed form with the standard
    normal pdf and cdf (truncated-normal moments); var = 0 gives clip(mean).
    """
    if math.isinf(lo):
        raise ValueError(f"lo must be finite, got {lo!r}.")
    mu = np.asarray(mean, np.float64)
    sd = np.sqrt(np.maximum(np.asarray(var, np.float64), 0.0))
    out_m = np.clip(mu, lo, hi).astype(np.float64)
    out_v = np.zeros_like(out_m)
    ok = sd > 0
    if not ok.any():
        return out_m, out_v
    m, s = mu[ok], sd[ok]
    a = (lo - m) / s
    b = np.full_like(m, math.inf) if math.isinf(hi) else (hi - m) / s
    Pa, Pb = _Phi(a), (np.ones_like(m) if math.isinf(hi) else _Phi(b))
    pa, pb = _phi(a), (np.zeros_like(m) if math.isinf(hi) else _phi(b))
    mid = Pb - Pa
    e1 = m * mid + s * (pa - pb) + lo * Pa + (0.0 if math.isinf(hi) else hi) * (1 - Pb)
    hi_term = 0.0 if math.isinf(hi) else (hi + m) * pb
    e2 = ((m * m + s * s) * mid + s * ((lo + m) * pa - hi_term) + lo * lo * Pa
          + (0.0 if math.isinf(hi) else hi * hi) * (1 - Pb))
    out_m[ok] = e1
    out_v[ok] = np.maximum(e2 - e1 * e1, 0.0)
    return out_m, out_v


def _propagate(layers: list[Layer], st: Stats, shape, out: dict, prefix: str) -> Stats:
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}"
        if isinstance(layer, (Conv2D, Dense)):
            out[path] = None if st is None else st[0]
            st = None
        elif isinstance(layer, BatchNorm):
            st = (layer.params["bias"].astype(np.float64), layer.params["weight"].astype(np.float64) ** 2)
        elif isinstance(layer, ReLU):
            st = None if st is None else clipped_normal_moments(*st, 0.0, math.inf)
        elif isinstance(layer, ReLU6):
            st = None if st is None else clipped_normal_moments(*st, 0.0, 6.0)
        elif isinstance(layer, (Identity, Dropout, AvgPool2D, GlobalAvgPool)):
            pass  # means unchanged (averages of equal-mean inputs); variances kept as an upper bound
        elif isinstance(layer, Flatten):
            if st is not None and len(shape) == 3:
                reps = shape[1] * shape[2]
                st = (np.repeat(st[0], reps), np.repeat(st[1], reps))
        elif isinstance(layer, Residual):
            body = _propagate(layer.body, st, shape, out, f"{path}.body.")
            if body is None or st is None:
                st = None
            else:
                short_m, short_v = st
                extra = len(body[0]) - len(short_m)
                if extra:
                    pad = (extra // 2, extra - extra // 2)
                    short_m, short_v = np.pad(short_m, pad), np.pad(short_v, pad)
                st = (body[0] + short_m, body[1] + short_v)
        else:  # max pooling and anything unknown: the mean is not known in closed form
            st = None
        shape = layer.output_shape(shape)
    return st


def expected_inputs(model: Sequential) -> dict[str, np.ndarray | None]:
    """The expected input of every conv/dense layer, per input channel (or feature),
    predicted from the BatchNorm parameters with no data; None where it is not known
    (the first layer, layers after max pooling or after a conv without BatchNorm).

    Parameters
    ----------
    model : Sequential
        With its BatchNorm layers (not folded).

    Returns
    -------
    dict of layer path to ndarray of shape (in_channels,) or None
    """
    out: dict = {}
    _propagate(model.layers, None, model.input_shape, out, "")
    return out


def bias_shift(layer: Layer, w_float: np.ndarray, w_quant: np.ndarray, mean_in: np.ndarray) -> np.ndarray:
    """(W_q - W) E[x] per output channel (zero padding at the borders ignored)."""
    d = w_quant.astype(np.float64) - w_float.astype(np.float64)
    if isinstance(layer, Dense):
        return d @ mean_in
    g = layer.groups
    cin_g = layer.cin // g
    og = layer.cout // g
    m = mean_in.reshape(g, cin_g)
    per_in = d.sum(axis=(2, 3)).reshape(g, og, cin_g)
    return np.einsum("goi,gi->go", per_in, m).reshape(-1)


def correct_bias(layer: Layer, w_float: np.ndarray, w_quant: np.ndarray, mean_in: np.ndarray) -> float:
    """Subtract :func:`bias_shift` from ``layer``'s bias in place (creating a bias if it
    has none); returns the RMS of the correction."""
    d = bias_shift(layer, w_float, w_quant, mean_in)
    bias = layer.params.get("bias", np.zeros(len(d), np.float32)).astype(np.float64)
    layer.params["bias"] = (bias - d).astype(np.float32)
    layer.bias = True
    return float(np.sqrt(np.mean(d * d)))


# ------------------------------------------------------ cross-layer equalization


def _in_ranges(layer: Layer) -> np.ndarray:
    """max |w| over everything that multiplies each input channel of ``layer``."""
    w = np.abs(layer.params["weight"].astype(np.float64))
    if isinstance(layer, Dense):
        return w.max(axis=0)
    g = layer.groups
    og, cin_g = layer.cout // g, layer.cin // g
    return w.reshape(g, og, cin_g, -1).max(axis=(1, 3)).reshape(-1)


def _pairs(layers: list[Layer]):
    """(A, B) with only ReLU / Identity between them in one chain: scaling A's output
    channel i by 1/s and B's input channel i by s leaves the network's function
    unchanged, since ReLU(x / s) = ReLU(x) / s for s > 0 (not so for ReLU6)."""
    for i, a in enumerate(layers):
        if isinstance(a, Residual):
            yield from _pairs(a.body)
        if not isinstance(a, Conv2D):
            continue
        for b in layers[i + 1:]:
            if isinstance(b, (ReLU, Identity)):
                continue
            if isinstance(b, Conv2D) and b.cin == a.cout:
                yield a, b
            break


def equalize(model: Sequential, iterations: int = 10) -> dict[str, np.ndarray]:
    """Cross-layer equalization (Nagel et al. 2019), in place, on a model whose
    BatchNorm is folded: for each pair of convolutions joined by a ReLU, rescale each
    channel between them so that its weight range is the same on both sides
    (s_i = sqrt(r1_i / r2_i)), a few passes over the network.  The function is
    unchanged; per-tensor grids gain the most.  Pairs joined by ReLU6 are left alone
    (the clip at 6 does not commute with scaling).

    Returns
    -------
    dict of layer path to ndarray
        For each second layer of a pair, the factor its inputs were divided by, per
        input channel (expected inputs predicted before equalizing divide by it).
    """
    pairs = list(_pairs(model.layers))
    scales = {id(b): np.ones(b.cin) for _, b in pairs}
    for _ in range(iterations):
        for a, b in pairs:
            wa = a.params["weight"].astype(np.float64)
            r1 = np.abs(wa).reshape(a.cout, -1).max(axis=1)
            r2 = _in_ranges(b)
            ok = (r1 > 0) & (r2 > 0)
            s = np.ones(a.cout)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            a.params["weight"] = (wa / s.reshape((-1,) + (1,) * (wa.ndim - 1))).astype(np.float32)
            if a.bias:
                a.params["bias"] = (a.params["bias"] / s).astype(np.float32)
            wb = b.params["weight"].astype(np.float64)
            if b.groups == 1:
                wb = wb * s.reshape(1, -1, 1, 1)
            else:
                g, og, cin_g = b.groups, b.cout // b.groups, b.cin // b.groups
                wb = (wb.reshape(g, og, cin_g, -1) * s.reshape(g, 1, cin_g, 1)).reshape(wb.shape)
            b.params["weight"] = wb.astype(np.float32)
            scales[id(b)] *= s
    return {p: scales[id(layer)] for p, layer in model.named_layers() if id(layer) in scales}


# --------------------------------------------------------------- bit allocation


@dataclass(frozen=True)
class BitAllocation:
    """Per-layer bits and scheme chosen by :func:`allocate_bits`.

    Attributes
    ----------
    bits, scheme, axis : dict of layer path
        Pass them to :func:`feedforward.quantize_model`
        (``quantize_model(model, a.bits, a.scheme, axis=a.axis)``).
    nbytes : int
        Bytes of the quantized layers (packed codes + codebook parameters).
    error : float
        The data-free error estimate that was minimised.
    budget : int
        The byte budget of the quantized layers.
    """

    bits: dict
    scheme: dict
    nbytes: int
    error: float
    budget: int
    axis: dict


def layer_error(qt: qz.QuantizedTensor, w: np.ndarray) -> float:
    """Data-free sensitivity of one layer: the mean over output channels of the static
    noise ratio D = 1/rho^2 - 1 of each channel's quantized weights (whatever the
    codebook layout: per channel, per tensor or per group).

    With slope-1 gain a channel's output is signal plus noise whose variance is D times
    the signal's, for inputs with equal variances; a layer's outputs add their relative
    noise to the next layer's, so the mean of D over a layer's channels estimates what
    the layer adds to the network's output noise.
    """
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    q = qt.dequantize().reshape(rows.shape).astype(np.float64)
    rc = rows - rows.mean(axis=1, keepdims=True)
    qc = q - q.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", rc, qc)
    den = np.sqrt(np.einsum("ij,ij->i", rc, rc) * np.einsum("ij,ij->i", qc, qc))
    const = np.einsum("ij,ij->i", rc, rc) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(den > 0, num / den, 0.0)
    rho = np.where(const, 1.0, np.clip(rho, 1e-6, 1.0))
    return float(np.mean(1.0 / rho ** 2 - 1.0))


def output_gains(model: Sequential, probe_bits: int = 3, n_inputs: int = 32,
                 seed: int | np.random.Generator | None = 0, **options) -> dict[str, float]:
    """How much of a layer's quantization error reaches the network's outputs, with no
    data: for each conv/dense layer, the mean squared change of the outputs when that
    layer alone is quantized (``quantize_model``'s recipe at ``probe_bits``, bias
    correction included) on ``n_inputs`` standard normal inputs, divided by the layer's
    :func:`layer_error` at those bits.  :func:`allocate_bits` multiplies each
    candidate's :func:`layer_error` by it: the output error is taken as proportional to
    the layer's static noise, with the layer's own factor (a ZeroQ-style sensitivity,
    Cai et al. 2020, with Gaussian inputs instead of distilled ones).

    Parameters
    ----------
    model : Sequential
        With its BatchNorm layers; not modified.
    probe_bits : int, default 3
        The width each layer is quantized at to measure its factor.
    n_inputs : int, default 32
        Random inputs, drawn from N(0, 1) in the model's input shape with ``seed``.
    seed : int, Generator or None, default 0
    **options
        quantize_model options (scheme, objective, gain, preserve_mean, axis,
        group_size, param_dtype, bias_correction, skip).

    Returns
    -------
    dict of layer path to float
        The factor of every quantized layer.  A layer whose error is 0 at ``probe_bits``
        (its rows already lie on such a grid) gets the median factor of the others.
    """
    import copy

    from .model import fold_batchnorm
    from .quantize import quantize_model

    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
        raise ValueError(f"n_inputs must be a positive int, got {n_inputs!r}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(0 if seed is None else seed)
    x = rng.standard_normal((n_inputs,) + tuple(model.input_shape)).astype(np.float32)
    folded = fold_batchnorm(model)
    if options.get("equalize"):  # quantize_model equalizes its copy the same way
        equalize(folded)
    base = folded.logits(x)
    qm = quantize_model(model, probe_bits, **options)
    floats = dict(folded.named_layers())
    quant = dict(qm.model.named_layers())
    out, exact = {}, []
    for name, qt in qm.quantized.items():
        path = name[: -len(".weight")]
        err = layer_error(qt, floats[path].params["weight"])
        if not err > 0:
            exact.append(path)
            continue
        m = copy.deepcopy(folded)
        layer = dict(m.named_layers())[path]
        # the quantized layer's parameters as quantize_model left them: bias correction may
        # have given a bias-free layer a bias
        layer.params = {k: v.copy() for k, v in quant[path].params.items()}
        layer.bias = quant[path].bias
        mse = float(np.mean((m.logits(x) - base) ** 2))
        out[path] = mse / err
    # a layer exact at the probe width (its rows already on such a grid) says nothing about
    # its other widths: it gets the median factor of the others (1 when there are none)
    fill = float(np.median(list(out.values()))) if out else 1.0
    out.update({p: fill for p in exact})
    return out


def _choose(options: list[list[tuple[int, float]]], budget: int, resolution: int | None = None) -> list[int] | None:
    """Multiple-choice knapsack: one option (bytes, error) per layer, total bytes within
    ``budget``, minimal total error.  Dynamic programming over bytes in units of
    ``budget / resolution`` (default 1024 per layer, at least 4096), each option's bytes
    rounded up, so the budget is never exceeded; exact in bytes when the budget is at
    most ``resolution`` bytes, otherwise the rounding costs at most one unit per layer
    (1/1024 of the budget in all)."""
    if resolution is None:
        resolution = max(4096, 1024 * len(options))
    unit = max(budget / resolution, 1.0)
    cost = [[math.ceil(b / unit - 1e-9) for b, _ in opts] for opts in options]
    cap = int(math.floor(budget / unit + 1e-9))
    INF = math.inf
    best = np.full(cap + 1, INF)
    best[0] = 0.0
    choice = []
    for opts, cs in zip(options, cost):
        new = np.full(cap + 1, INF)
        arg = np.full(cap + 1, -1, np.int64)
        for j, ((_, e), c) in enumerate(zip(opts, cs)):
            if c > cap:
                continue
            cand = np.full(cap + 1, INF)
            cand[c:] = best[:cap + 1 - c] + e
            better = cand < new
            new[better] = cand[better]
            arg[better] = j
        choice.append(arg)
        best = new
    if not np.isfinite(best).any():
        return None
    k = int(np.argmin(best))
    picks = []
    for arg, cs in zip(reversed(choice), reversed(cost)):
        j = int(arg[k])
        picks.append(j)
        k -= cs[j]
    return picks[::-1]


def allocate_bits(model: Sequential, avg_bits: float | None = None, target_ratio: float | None = None, *,
                  bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8), schemes: tuple[str, ...] = ("uniform",),
                  axes: tuple[str | None, ...] = ("out_channel",), skip: tuple[str, ...] = (),
                  sensitivity: str = "output", seed: int | np.random.Generator | None = 0,
                  **options) -> BitAllocation:
    """Choose each conv/dense layer's bits (and scheme) for a storage budget, with no data.

    Every layer is quantized at every candidate (bits, scheme) through the core with the
    settings of :func:`feedforward.quantize_model`; each candidate's cost is its exact
    stored size (packed codes plus codebook parameters: a 2**b-level codebook per row of
    a 9-weight depthwise kernel counts) and its error is :func:`layer_error`, weighed
    by how much of it reaches the outputs (``sensitivity``).  The allocation minimising
    the summed error within the budget is found exactly (a multiple-choice knapsack by
    dynamic programming over bytes).

    Parameters
    ----------
    model : Sequential
        BatchNorm is folded first, as in :func:`feedforward.quantize_model`.
    avg_bits : float, optional
        Budget as bits per quantized weight, parameters included.
    target_ratio : float, optional
        Budget as a compression ratio of the quantized layers' float32 weights
        (exactly one of avg_bits, target_ratio).
    bits, schemes, axes : tuples
        The candidates: widths, schemes, and layouts ("out_channel" and/or None, one
        codebook per tensor: fewer parameter bytes, a coarser grid).
    skip : tuple of str
        Layers left in float32 (as in quantize_model); not counted in the budget.
    sensitivity : {"output", "channel"}, default "output"
        How a candidate's error is weighed across layers.  ``"channel"``: its
        :func:`layer_error`, every layer alike.  ``"output"``: its :func:`layer_error`
        times the layer's :func:`output_gains` factor, measured on random Gaussian
        inputs (no data), so that layers whose noise reaches the outputs more get more
        bits.  ``bench/pretrained_study.py`` compares them.
    seed : int, Generator or None, default 0
        The random inputs of ``sensitivity="output"``.
    **options
        objective, gain, preserve_mean, axis, group_size, param_dtype for the core (with
        quantize_model's defaults: bfloat16 parameters are counted at 2 bytes), and
        equalize (as in quantize_model: allocate on the weights that will be quantized).

    Returns
    -------
    BitAllocation

    Raises
    ------
    ValueError
        No or both budgets, a budget no allocation meets.
    """
    from numbers import Real

    from .model import fold_batchnorm
    from .quantize import _core_options, _resolve_skip

    for name, v in (("avg_bits", avg_bits), ("target_ratio", target_ratio)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, Real)):
            raise TypeError(f"{name} must be a number, got {v!r}.")
        if v is not None and not v > 0:
            raise ValueError(f"{name} must be positive, got {v!r}.")
    if (avg_bits is None) == (target_ratio is None):
        raise ValueError("give exactly one of avg_bits and target_ratio.")
    for one, many in (("scheme", "schemes"), ("axis", "axes")):
        if one in options:
            raise TypeError(f"allocate_bits takes {many}=(...) (the candidates), not {one}=.")
    for a in axes:
        _core_options(dict(axis=a))  # validates
    if not bits or not schemes:
        raise ValueError("bits and schemes must name at least one candidate each.")
    if sensitivity not in ("output", "channel"):
        raise ValueError(f"sensitivity must be 'output' or 'channel', got {sensitivity!r}.")
    core = _core_options({k: v for k, v in options.items() if k != "equalize"})
    factor = {}
    if sensitivity == "output":
        probe = {k: v for k, v in options.items() if k in ("objective", "gain", "preserve_mean", "group_size",
                                                              "param_dtype", "equalize")}
        factor = output_gains(model, 3, seed=seed, skip=skip, scheme=schemes[0], axis=axes[0], **probe)
    base = fold_batchnorm(model)
    if options.get("equalize"):
        equalize(base)
    skipped = _resolve_skip(base, skip)
    layers = [(p, layer) for p, layer in base.named_layers()
              if isinstance(layer, (Conv2D, Dense)) and p not in skipped]
    n = sum(layer.params["weight"].size for _, layer in layers)
    budget = int(avg_bits * n / 8) if avg_bits is not None else int(4 * n / target_ratio)
    cands = [(b, s, ax) for ax in axes for s in schemes for b in bits]
    options_per_layer = []
    for path, layer in layers:
        w = layer.params["weight"]
        row = []
        for b, s, ax in cands:
            if core["group_size"] is None:
                core["axis"] = 0 if ax == "out_channel" else None
            qt = qz.quantize(w, b, s, **core)
            row.append((int(qt.nbytes), factor.get(path, 1.0) * layer_error(qt, w)))
        options_per_layer.append(row)
    picks = _choose(options_per_layer, budget)
    if picks is None:
        least = sum(min(b for b, _ in opts) for opts in options_per_layer)
        raise ValueError(f"no allocation fits {budget} bytes (each layer's bytes rounded up to {budget} / "
                         f"{max(4096, 1024 * len(options_per_layer))}); the smallest candidates need {least} bytes "
                         f"(ratio {4 * n / least:.2f}x, {8 * least / n:.2f} bits per weight).")
    bmap = {p: cands[j][0] for (p, _), j in zip(layers, picks)}
    smap = {p: cands[j][1] for (p, _), j in zip(layers, picks)}
    total = sum(opts[j][0] for opts, j in zip(options_per_layer, picks))
    err = sum(opts[j][1] for opts, j in zip(options_per_layer, picks))
    amap = {p: cands[j][2] for (p, _), j in zip(layers, picks)}
    return BitAllocation(bmap, smap, int(total), float(err), budget, amap)
