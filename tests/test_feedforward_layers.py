"""Each layer against a slow reference, and gradients against finite differences."""

import numpy as np
import pytest
import reference as ref

from feedforward import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, ReLU,
                         ReLU6, Residual, Sequential, fold_batchnorm, resnet_cifar)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups,hw", [
    (1, 3, 3, 1, 1, 1, (5, 6)), (4, 6, 3, 2, 1, 2, (7, 7)), (4, 4, 3, 1, 0, 4, (6, 5)),
    (3, 5, 1, 1, 0, 1, (4, 4)), (2, 4, 5, 3, 2, 1, (9, 8))])
def test_conv_forward_matches_loops(cin, cout, k, stride, pad, groups, hw):
    layer = Conv2D(cin, cout, k, stride, pad, groups)
    layer.build((cin, *hw), np.random.default_rng(1))
    layer.params["bias"] = _x(cout, 2)
    x = _x((3, cin, *hw))
    np.testing.assert_allclose(layer.forward(x), ref.conv2d(x, layer.params["weight"], layer.params["bias"],
                                                            stride, pad, groups), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,stride", [(2, 2), (3, 1), (3, 2)])
def test_pools_match_loops(k, stride):
    x = _x((2, 3, 7, 6))
    np.testing.assert_allclose(MaxPool2D(k, stride).forward(x), ref.pool2d(x, k, stride, np.max), rtol=1e-6)
    np.testing.assert_allclose(AvgPool2D(k, stride).forward(x), ref.pool2d(x, k, stride, np.mean), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(GlobalAvgPool().forward(x), x.mean(axis=(2, 3)), rtol=1e-5)


def _grad_check(model, x, n_coords=12, eps=1e-2, seed=0):
    """Compare backward() with central finite differences of L = sum(r * y) in float64."""
    rng = np.random.default_rng(seed)
    y = model.forward(x, train=True)
    r = rng.standard_normal(y.shape).astype(np.float32)
    model.zero_grads()
    dx = model.backward(r)

    def loss(xx):
        return float(np.sum(model.forward(xx, train=True).astype(np.float64) * r))

    for _ in range(n_coords):
        idx = tuple(rng.integers(s) for s in x.shape)
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (loss(xp) - loss(xm)) / (2 * eps)
        assert dx[idx] == pytest.approx(fd, rel=2e-2, abs=2e-2), ("input", idx)
    for path, layer in model.named_layers():
        for k, p in layer.params.items():
            g = layer.grads[k]
            for _ in range(4):
                idx = tuple(rng.integers(s) for s in p.shape)
                old = p[idx]
                p[idx] = old + eps
                lp = loss(x)
                p[idx] = old - eps
                lm = loss(x)
                p[idx] = old
                assert g[idx] == pytest.approx((lp - lm) / (2 * eps), rel=2e-2, abs=2e-2), (path, k, idx)


@pytest.mark.parametrize("layers,shape", [
    ([Conv2D(2, 3, 3, 1, 1)], (2, 5, 5)),
    ([Conv2D(4, 4, 3, 2, 1, groups=2)], (4, 6, 6)),
    ([Conv2D(3, 3, 3, 1, 1, groups=3, bias=False)], (3, 5, 5)),
    ([Flatten(), Dense(12, 5)], (3, 2, 2)),
    ([AvgPool2D(2)], (2, 4, 4)),
    ([GlobalAvgPool(), Dense(3, 2)], (3, 4, 4)),
    ([Conv2D(2, 3, 3, 1, 1), BatchNorm(3)], (2, 4, 4)),
    ([Flatten(), Dense(8, 6), BatchNorm(6)], (2, 2, 2)),
    ([Residual([Conv2D(3, 3, 3, 1, 1), BatchNorm(3), Conv2D(3, 3, 3, 1, 1)], "identity")], (3, 4, 4)),
    ([Residual([Conv2D(2, 4, 3, 2, 1), Conv2D(4, 4, 3, 1, 1)], "option_a", 2)], (2, 6, 6)),
])
def test_gradients_match_finite_differences(layers, shape):
    model = Sequential(layers, shape, seed=3)
    _grad_check(model, _x((3, *shape), 4))


def test_relu_and_maxpool_gradients_away_from_kinks():
    x = _x((2, 2, 4, 4), 5)
    x[np.abs(x) < 0.05] = 0.3  # no value near the ReLU kink
    _grad_check(Sequential([ReLU()], (2, 4, 4)), x)
    x = np.random.default_rng(6).permutation(np.arange(64, dtype=np.float32)).reshape(2, 2, 4, 4) / 8  # no ties
    _grad_check(Sequential([MaxPool2D(2)], (2, 4, 4)), x, eps=1e-3)


def test_relu6_overlapping_pools_and_dropout_gradients():
    x = _x((2, 2, 5, 5), 8) * 4
    x[(np.abs(x) < 0.05) | (np.abs(x - 6) < 0.05)] = 1.0  # away from both kinks
    assert (x > 6).any() and (x < 0).any()
    _grad_check(Sequential([ReLU6()], (2, 5, 5)), x)
    x = np.random.default_rng(9).permutation(np.arange(100, dtype=np.float32)).reshape(2, 2, 5, 5) / 8  # no ties
    _grad_check(Sequential([MaxPool2D(3, 2)], (2, 5, 5)), x, eps=1e-3)  # overlapping windows
    _grad_check(Sequential([AvgPool2D(3, 2)], (2, 5, 5)), _x((2, 2, 5, 5), 10))
    _grad_check(Sequential([Flatten(), _FixedMaskDropout(0.4, seed=2), Dense(50, 4)], (2, 5, 5)),
                _x((3, 2, 5, 5), 11))


class _FixedMaskDropout(Dropout):
    """Dropout that draws the same mask at every training forward, so that finite
    differences see one fixed function."""

    def forward(self, x, train=False):
        self._rng = np.random.default_rng(self.seed)
        return super().forward(x, train)


def test_batchnorm_train_and_inference():
    bn = BatchNorm(3, momentum=0.5)
    bn.build((3, 4, 4), np.random.default_rng(0))
    x = _x((8, 3, 4, 4)) * 2 + 1
    y = bn.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.state["running_mean"], 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    yi = bn.forward(x)
    expect = (x - bn.state["running_mean"][None, :, None, None]) / np.sqrt(bn.state["running_var"] + 1e-5)[None, :, None, None]
    np.testing.assert_allclose(yi, expect, rtol=1e-5, atol=1e-5)


def test_dropout_is_seeded_and_identity_at_inference():
    x = np.ones((4, 100), np.float32)
    a, b = Dropout(0.5, seed=1), Dropout(0.5, seed=1)
    np.testing.assert_array_equal(a.forward(x, train=True), b.forward(x, train=True))
    np.testing.assert_array_equal(a.forward(x), x)
    assert set(np.unique(a.forward(x, train=True))) <= {0.0, 2.0}


def test_bn_folding_leaves_outputs_unchanged():
    model = resnet_cifar(20, seed=0)
    rng = np.random.default_rng(1)
    for path, layer in model.named_layers():  # non-trivial statistics
        if isinstance(layer, BatchNorm):
            layer.state["running_mean"] = rng.normal(0, 0.3, layer.c).astype(np.float32)
            layer.state["running_var"] = rng.uniform(0.5, 2, layer.c).astype(np.float32)
            layer.params["weight"] = rng.uniform(0.5, 1.5, layer.c).astype(np.float32)
            layer.params["bias"] = rng.normal(0, 0.2, layer.c).astype(np.float32)
    x = _x((4, 3, 32, 32), 2)
    folded = fold_batchnorm(model)
    assert not any(isinstance(layer, BatchNorm) for _, layer in folded.named_layers())
    y0, y1 = model.forward(x), folded.forward(x)
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-4 * np.abs(y0).max())
    assert any(isinstance(layer, BatchNorm) for _, layer in model.named_layers())  # the original is untouched


def test_resnet20_counts():
    m = resnet_cifar(20)
    assert m.n_params() == 269_722  # conv 3->16, 3x(3 blocks), BN, dense 64->10, as PyTorch counts it
    assert m.forward(_x((2, 3, 32, 32))).shape == (2, 10)
    assert 40e6 < m.macs() < 42e6  # about 41 M multiply-accumulates per image
    assert resnet_cifar(32).n_params() > m.n_params()


def test_layer_validation():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        Conv2D(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        Conv2D(1, 1, 0)
    with pytest.raises(ValueError, match="add a Flatten"):
        Sequential([Dense(4, 2)], (1, 2, 2))
    with pytest.raises(ValueError, match=r"Conv2D expects input \(C=3"):
        Sequential([Conv2D(3, 4, 3)], (1, 8, 8))
    with pytest.raises(ValueError, match="shortcut"):
        Residual([Conv2D(2, 4, 3, 1, 1)], "option_b")
    with pytest.raises(ValueError, match="cannot be added"):
        Sequential([Residual([Conv2D(2, 4, 3, 1, 1)], "identity")], (2, 4, 4))
