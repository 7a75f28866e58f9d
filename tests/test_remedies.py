"""Data-free remedies: clipped-normal moments, predicted activations, bias correction,
bit allocation, against brute force."""

import itertools

import numpy as np
import pytest

from feedforward import BatchNorm, Conv2D, Dense, Flatten, GlobalAvgPool, ReLU, ReLU6, Residual, Sequential
from feedforward import allocate_bits, fold_batchnorm, quantize_model
from feedforward.remedies import _choose, clipped_normal_moments, expected_inputs


@pytest.mark.parametrize("lo,hi", [(0.0, np.inf), (0.0, 6.0), (-1.0, 0.5)])
def test_clipped_normal_moments_match_numerical_integration(lo, hi):
    mus = np.array([-3.0, -0.5, 0.0, 0.7, 2.0, 5.5, 8.0])
    var = np.array([0.3, 1.0, 2.0, 0.5, 4.0, 1.0, 9.0])
    m, v = clipped_normal_moments(mus, var, lo, hi)
    for mu, s2, mi, vi in zip(mus, var, m, v):
        s = np.sqrt(s2)
        x = np.linspace(mu - 12 * s, mu + 12 * s, 400001)
        p = np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        c = np.clip(x, lo, hi)
        e1 = np.trapezoid(c * p, x)
        e2 = np.trapezoid(c * c * p, x)
        assert mi == pytest.approx(e1, abs=1e-6)
        assert vi == pytest.approx(e2 - e1 * e1, abs=1e-6)
    # zero variance: the clipped mean itself
    m0, v0 = clipped_normal_moments(np.array([-1.0, 3.0, 7.0]), np.zeros(3), 0.0, 6.0)
    assert np.array_equal(m0, [0.0, 3.0, 6.0]) and np.array_equal(v0, np.zeros(3))


def _bn(c, rng, shift=1.0):
    layer = BatchNorm(c)
    return layer, {"weight": rng.uniform(0.5, 1.5, c), "bias": rng.normal(shift, 1.0, c),
                   "running_mean": rng.normal(0, 1, c), "running_var": rng.uniform(0.5, 2, c)}


def _model(rng):
    layers, params = [], {}
    conv1 = Conv2D(3, 8, 3, padding=1, bias=False)
    bn1, p1 = _bn(8, rng)
    conv2 = Conv2D(8, 8, 3, padding=1, bias=False)
    bn2, p2 = _bn(8, rng)
    layers = [conv1, bn1, ReLU6(), Residual([conv2, bn2]), ReLU(), GlobalAvgPool(), Dense(8, 5)]
    m = Sequential(layers, (3, 12, 12), seed=0)
    arrays = m.named_parameters()
    for k, v in p1.items():
        arrays[f"1.{k}"] = v.astype(np.float32)
    for k, v in p2.items():
        arrays[f"3.body.1.{k}"] = v.astype(np.float32)
    m.set_parameters(arrays)
    return m


def test_expected_inputs_follow_batchnorm_through_activations_and_residuals():
    rng = np.random.default_rng(0)
    m = _model(rng)
    e = expected_inputs(m)
    assert e["0"] is None  # the image: unknown
    beta1, g1 = m.layers[1].params["bias"], m.layers[1].params["weight"]
    m1, v1 = clipped_normal_moments(beta1, g1 ** 2, 0, 6)
    assert np.allclose(e["3.body.0"], m1)
    beta2, g2 = m.layers[3].body[1].params["bias"], m.layers[3].body[1].params["weight"]
    m2, _ = clipped_normal_moments(beta2 + m1, g2 ** 2 + v1, 0, np.inf)
    assert np.allclose(e["6"], m2)
    # Monte Carlo with Gaussian BN outputs (the model's assumption) agrees
    n = 400000
    a = np.clip(rng.normal(beta1, g1, (n, 8)), 0, 6)
    z = np.maximum(rng.normal(beta2, g2, (n, 8)) + a, 0)
    assert np.allclose(z.mean(0), e["6"], atol=0.02)


def test_bias_correction_removes_the_mean_shift_of_a_quantized_layer():
    """On inputs that are exactly what the BN statistics predict (Gaussian, independent),
    the corrected 2-bit model's mean output matches the float model's far better than
    without correction."""
    rng = np.random.default_rng(1)
    m = _model(rng)
    # inputs whose first-layer BN outputs are Gaussian: drive with random images
    x = rng.normal(0, 1, (512, 3, 12, 12)).astype(np.float32)
    f = fold_batchnorm(m)
    mean_f = f.forward(x).mean(0)
    errs = {}
    for bc in (False, True):
        q = quantize_model(m, 2, "uniform", "minmax", bias_correction=bc, preserve_mean=False)
        errs[bc] = np.abs(q.forward(x).mean(0) - mean_f).mean()
    assert errs[True] < 0.5 * errs[False]


def test_bias_correction_shift_is_the_exact_expected_output_change_for_dense():
    rng = np.random.default_rng(2)
    bn, p = _bn(6, rng)
    m = Sequential([Flatten(), Dense(6, 6, bias=False), bn, ReLU(), Dense(6, 4)], (6,), seed=0)
    arrays = m.named_parameters()
    arrays.update({f"2.{k}": v.astype(np.float32) for k, v in p.items()})
    m.set_parameters(arrays)
    q0 = quantize_model(m, 2, bias_correction=False, preserve_mean=False)
    q1 = quantize_model(m, 2, bias_correction=True, preserve_mean=False)
    W = fold_batchnorm(m).layers[4].params["weight"].astype(np.float64)
    Wq = q0.model.layers[4].params["weight"].astype(np.float64)
    mean_in, _ = clipped_normal_moments(p["bias"], p["weight"] ** 2, 0, np.inf)
    expect = q0.model.layers[4].params["bias"] - (Wq - W) @ mean_in
    assert np.allclose(q1.model.layers[4].params["bias"], expect, atol=1e-6)


def test_choose_is_the_exact_knapsack_optimum():
    rng = np.random.default_rng(3)
    for trial in range(30):
        L = rng.integers(2, 5)
        options = [[(int(b), float(e)) for b, e in zip(rng.integers(10, 200, 4), rng.random(4))] for _ in range(L)]
        budget = int(rng.integers(60, 500))
        best, arg = np.inf, None
        for combo in itertools.product(*[range(4)] * L):
            b = sum(options[i][j][0] for i, j in enumerate(combo))
            e = sum(options[i][j][1] for i, j in enumerate(combo))
            if b <= budget and e < best:
                best, arg = e, combo
        picks = _choose(options, budget, resolution=100000)
        if arg is None:
            assert picks is None
            continue
        got = sum(options[i][j][1] for i, j in enumerate(picks))
        assert sum(options[i][j][0] for i, j in enumerate(picks)) <= budget
        assert got == pytest.approx(best)


def test_allocate_bits_meets_the_budget_and_beats_uniform_bits_at_equal_size():
    rng = np.random.default_rng(4)
    m = _model(rng)
    a = allocate_bits(m, avg_bits=6.0, bits=(2, 3, 4, 5, 6, 8), sensitivity="channel")
    n = sum(layer.params["weight"].size for _, layer in fold_batchnorm(m).named_layers()
            if isinstance(layer, (Conv2D, Dense)))
    assert a.nbytes <= a.budget == int(6.0 * n / 8)
    qm = quantize_model(m, a.bits, a.scheme)
    assert sum(r["bytes"] for r in qm.report) == a.nbytes
    # the same error measure for every uniform width that fits: the allocation is no worse
    from feedforward.remedies import layer_error
    fitted = 0
    for b in (2, 3, 4):
        qu = quantize_model(m, b)
        if sum(r["bytes"] for r in qu.report) <= a.budget:
            fitted += 1
            eu = sum(layer_error(qu.quantized[f"{r['layer']}.weight"],
                                 fold_batchnorm(m).named_parameters()[f"{r['layer']}.weight"]) for r in qu.report)
            assert a.error <= eu + 1e-12
    assert fitted >= 1
    with pytest.raises(ValueError, match="exactly one"):
        allocate_bits(m)
    with pytest.raises(ValueError, match="no allocation fits"):
        allocate_bits(m, avg_bits=0.5)


def test_equalize_keeps_the_function_and_balances_ranges():
    from feedforward.remedies import _in_ranges, equalize
    rng = np.random.default_rng(5)
    conv_a = Conv2D(3, 6, 3, padding=1)
    conv_b = Conv2D(6, 6, 3, padding=1, groups=6)  # depthwise after a ReLU
    conv_c = Conv2D(6, 4, 1)
    m = Sequential([conv_a, ReLU(), conv_b, ReLU(), conv_c, GlobalAvgPool(), Dense(4, 2)], (3, 8, 8), seed=0)
    arrays = m.named_parameters()
    arrays["0.weight"] = arrays["0.weight"] * rng.uniform(0.01, 10, (6, 1, 1, 1)).astype(np.float32)
    m.set_parameters(arrays)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    before = m.forward(x)
    scales = equalize(m, iterations=50)
    assert set(scales) == {"2", "4"}
    assert np.allclose(m.forward(x), before, rtol=1e-4, atol=1e-5 * np.abs(before).max())
    for a, b in ((conv_a, conv_b), (conv_b, conv_c)):
        r1 = np.abs(a.params["weight"]).reshape(a.cout, -1).max(axis=1)
        assert np.allclose(r1, _in_ranges(b), rtol=1e-3)
    # a ReLU6 between two convs stops equalization (it would change the function)
    m6 = Sequential([Conv2D(3, 4, 3), ReLU6(), Conv2D(4, 2, 1)], (3, 6, 6), seed=0)
    assert equalize(m6) == {}


def test_choose_fits_budgets_that_exactly_fill():
    assert _choose([[(1000, 1.0)]] * 3, 3000) == [0, 0, 0]
    opts = [[(100, 0.0), (50, 1.0)]] * 50
    assert _choose(opts, 5000) == [0] * 50


def test_allocate_bits_argument_errors():
    m = _model(np.random.default_rng(6))
    with pytest.raises(TypeError, match="schemes="):
        allocate_bits(m, avg_bits=6, scheme="lloyd")
    with pytest.raises(TypeError, match="avg_bits must be a number"):
        allocate_bits(m, avg_bits=True)
    with pytest.raises(ValueError, match="positive"):
        allocate_bits(m, target_ratio=-2)
    assert allocate_bits(m, avg_bits=np.int64(6)).nbytes > 0


def test_allocate_bits_layouts_and_per_layer_axes():
    from feedforward.remedies import layer_error
    import quantization as qz
    m = _model(np.random.default_rng(7))
    a = allocate_bits(m, avg_bits=5.0, axes=("out_channel", None))
    assert set(a.axis.values()) <= {"out_channel", None}
    qm = quantize_model(m, a.bits, a.scheme, axis=a.axis)
    assert sum(r["bytes"] for r in qm.report) == a.nbytes
    for path, qt in qm.quantized.items():
        assert (qt.axis is None) == (a.axis[path.rsplit(".", 1)[0]] is None)
    # layer_error is per output channel whatever the layout: brute force on one tensor
    w = np.random.default_rng(8).laplace(size=(6, 20)).astype(np.float32) * np.arange(1, 7)[:, None]
    qt = qz.quantize(w, 2)  # one codebook for the whole tensor
    wq = qt.dequantize()
    expect = np.mean([1 / np.corrcoef(w[i], wq[i])[0, 1] ** 2 - 1 for i in range(6)])
    assert layer_error(qt, w) == pytest.approx(expect, rel=1e-9)
    with pytest.raises(TypeError, match="axes="):
        allocate_bits(m, avg_bits=5, axis=None)


def test_output_gains_equal_quantizing_one_layer_at_a_time():
    """Each factor is the output MSE of the network with that layer alone quantized (here
    through quantize_model with a one-layer bits mapping, an independent path) on the same
    N(0, 1) inputs, over the layer's static error."""
    from feedforward.remedies import layer_error, output_gains
    m = _model(np.random.default_rng(8))
    got = output_gains(m, 3, n_inputs=16, seed=5)
    x = np.random.default_rng(5).standard_normal((16,) + m.input_shape).astype(np.float32)
    folded = fold_batchnorm(m)
    base = folded.forward(x)
    paths = [p for p, layer in folded.named_layers() if isinstance(layer, (Conv2D, Dense))]
    assert set(got) == set(paths)
    for p in paths:
        q = quantize_model(m, {p: 3})
        mse = float(np.mean((q.forward(x) - base) ** 2))
        err = layer_error(q.quantized[f"{p}.weight"], folded.named_parameters()[f"{p}.weight"])
        assert got[p] == pytest.approx(mse / err, rel=1e-5)
    assert len(set(round(v, 6) for v in got.values())) == len(paths)  # the layers differ


def test_allocate_bits_output_sensitivity_minimises_the_weighted_error():
    from feedforward.remedies import layer_error, output_gains
    import quantization as qz
    m = _model(np.random.default_rng(9))
    bits = (2, 3, 4, 6)
    a = allocate_bits(m, avg_bits=4.0, bits=bits)
    factor = output_gains(m, 3)
    folded = fold_batchnorm(m)
    paths = [p for p, layer in folded.named_layers() if isinstance(layer, (Conv2D, Dense))]
    opts = []
    for p in paths:
        w = folded.named_parameters()[f"{p}.weight"]
        row = []
        for b in bits:
            qt = qz.quantize(w, b, axis=0, gain="unbiased", preserve_mean=True, param_dtype="auto")
            row.append((qt.nbytes, factor[p] * layer_error(qt, w)))
        opts.append(row)
    best = min(itertools.product(*[range(len(bits))] * len(paths)),
               key=lambda c: sum(opts[i][j][1] for i, j in enumerate(c)) if
               sum(opts[i][j][0] for i, j in enumerate(c)) <= a.budget else np.inf)
    assert a.error == pytest.approx(sum(opts[i][j][1] for i, j in enumerate(best)))
    assert [a.bits[p] for p in paths] == [bits[j] for j in best]
    c = allocate_bits(m, avg_bits=4.0, bits=bits, sensitivity="channel")
    assert c.error == pytest.approx(sum(layer_error(qz.quantize(folded.named_parameters()[f"{p}.weight"], c.bits[p],
                                                                 axis=0, gain="unbiased", preserve_mean=True,
                                                                 param_dtype="auto"),
                                                     folded.named_parameters()[f"{p}.weight"]) for p in paths))
    with pytest.raises(ValueError, match="sensitivity"):
        allocate_bits(m, avg_bits=4.0, sensitivity="hessian")
    with pytest.raises(ValueError, match="n_inputs"):
        output_gains(m, 3, n_inputs=0)


def test_output_gains_keep_the_bias_that_correction_adds_and_fill_exact_layers():
    """A bias-free layer after BatchNorm -> ReLU gets a bias from the correction: the probe
    must run it.  A layer whose rows are exact at the probe width gets the others' median."""
    from feedforward.layers import BatchNorm
    from feedforward.remedies import layer_error, output_gains
    rng = np.random.default_rng(10)
    bn, p = _bn(8, rng)
    m = Sequential([Dense(6, 8), bn, ReLU(), Dense(8, 8, bias=False), ReLU(), Dense(8, 3)], (6,), seed=0)
    arrays = m.named_parameters()
    for k, v in p.items():
        arrays[f"1.{k}"] = v.astype(np.float32)
    m.set_parameters(arrays)
    got = output_gains(m, 3, n_inputs=16, seed=1)
    x = np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)
    folded = fold_batchnorm(m)
    q = quantize_model(m, {"3": 3})
    assert q.model.layers[3].bias and np.abs(q.model.layers[3].params["bias"]).max() > 0
    mse = float(np.mean((q.forward(x) - folded.forward(x)) ** 2))
    err = layer_error(q.quantized["3.weight"], folded.named_parameters()["3.weight"])
    assert got["3"] == pytest.approx(mse / err, rel=1e-5)
    # 6-weight rows fit 8 lloyd levels exactly: layer 0 is exact at 3 bits
    g = output_gains(m, 3, scheme="lloyd")
    assert g["0"] == pytest.approx(float(np.median([g["3"], g["5"]])))
    assert g["0"] > 0
