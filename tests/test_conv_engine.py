"""Conv2D engine: asymmetric padding, the inference paths (im2col + GEMM, 1x1 GEMM,
direct depthwise kernel) and the training path against slow references and PyTorch."""

import json

import numpy as np
import pytest
import reference as ref

from feedforward import Conv2D
from feedforward.layers import layer_from_config
from feedforward import _kernels as K


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _conv(cin, cout, k, stride, padding, groups, hw, bias=True, seed=1):
    layer = Conv2D(cin, cout, k, stride, padding, groups, bias=bias)
    layer.build((cin, *hw), np.random.default_rng(seed))
    if bias:
        layer.params["bias"] = _x(cout, seed + 1)
    return layer


CASES = [  # cin, cout, k, stride, padding, groups, (H, W)
    (3, 5, 3, 2, (0, 1, 0, 1), 1, (8, 8)),       # TF "SAME", stride 2, even input
    (3, 4, 3, 2, (1, 0, 2, 0), 1, (7, 9)),
    (2, 3, 1, 1, 0, 1, (5, 7)),                  # 1x1 stride 1: the plain GEMM path
    (2, 3, 1, 2, (0, 1, 1, 0), 1, (5, 6)),
    (4, 6, 3, 1, (2, 0, 0, 1), 2, (5, 5)),       # grouped
    (5, 5, 3, 1, 1, 5, (7, 6)),                  # depthwise
    (3, 6, 5, 2, (1, 2, 2, 1), 3, (9, 11)),      # depthwise, multiplier 2, 5x5
    (4, 4, 5, 1, (2, 2, 2, 2), 4, (3, 4)),       # depthwise, kernel larger than the input
    (3, 3, 3, 3, (0, 2, 1, 1), 3, (8, 7)),       # depthwise, stride 3
    (1, 4, 2, 1, (0, 1, 0, 1), 1, (4, 5)),       # even kernel
]


@pytest.mark.parametrize("padding,expected", [(1, (1, 1, 1, 1)), ((0, 1, 0, 1), (0, 1, 0, 1)),
                                              ([2, 0, 1, 3], (2, 0, 1, 3)), (np.int64(2), (2, 2, 2, 2))])
def test_padding_forms(padding, expected):
    layer = Conv2D(2, 2, 3, padding=padding)
    assert layer.padding == expected
    assert layer.pad == (expected[0] if len(set(expected)) == 1 else expected)


@pytest.mark.parametrize("padding", [-1, (0, 1, 0), (0, 1, 0, -1), "same", 1.5, (0, 1, 0, 1.0), True])
def test_padding_validation(padding):
    with pytest.raises(ValueError, match="Conv2D padding must be"):
        Conv2D(2, 2, 3, padding=padding)


@pytest.mark.parametrize("padding", [1, (0, 1, 0, 1), (3, 0, 2, 1)])
def test_config_round_trips_through_json(padding):
    layer = Conv2D(3, 6, 3, 2, padding, groups=3, bias=False)
    cfg = json.loads(json.dumps(layer.config()))
    back = layer_from_config(cfg)
    assert back.padding == layer.padding and back.pad == layer.pad
    assert back.config() == layer.config()
    assert isinstance(cfg["padding"], int if isinstance(padding, int) else list)


def test_tf_same_output_shape():
    assert Conv2D(3, 32, 3, 2, (0, 1, 0, 1)).output_shape((3, 224, 224)) == (32, 112, 112)
    assert Conv2D(3, 32, 3, 2, (1, 0, 0, 1)).output_shape((3, 5, 6)) == (32, 2, 3)
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(1, 1, 5, 1, (0, 1, 0, 1)).output_shape((1, 3, 8))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("train", [False, True])
def test_forward_matches_loops(case, train):
    cin, cout, k, stride, padding, groups, hw = case
    layer = _conv(cin, cout, k, stride, padding, groups, hw)
    x = _x((3, cin, *hw))
    y = layer.forward(x, train=train)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    expected = ref.conv2d_padded(x, layer.params["weight"], layer.params["bias"], stride, padding, groups)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_symmetric_reference_agrees_with_the_old_one():
    x, layer = _x((2, 4, 6, 5)), _conv(4, 6, 3, 2, 1, 2, (6, 5))
    w, b = layer.params["weight"], layer.params["bias"]
    np.testing.assert_allclose(ref.conv2d_padded(x, w, b, 2, 1, 2), ref.conv2d(x, w, b, 2, 1, 2), rtol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_torch_on_explicitly_padded_input(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    cin, cout, k, stride, padding, groups, hw = case
    layer = _conv(cin, cout, k, stride, padding, groups, hw)
    x = _x((2, cin, *hw))
    top, bottom, left, right = layer.padding
    xt = F.pad(torch.from_numpy(x), (left, right, top, bottom))
    expected = F.conv2d(xt, torch.from_numpy(layer.params["weight"]), torch.from_numpy(layer.params["bias"]),
                        stride=stride, groups=groups).numpy()
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_backward_matches_loops(case):
    cin, cout, k, stride, padding, groups, hw = case
    layer = _conv(cin, cout, k, stride, padding, groups, hw)
    x = _x((2, cin, *hw))
    dy = _x((2, *layer.output_shape((cin, *hw))), 5)
    layer.forward(x, train=True)
    layer.zero_grads()
    dx = layer.backward(dy)
    rdx, rdw, rdb = ref.conv2d_padded_backward(x, layer.params["weight"], dy, stride, padding, groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-4, atol=1e-5)


def test_backward_asymmetric_padding_by_finite_differences():
    layer = _conv(2, 3, 3, 2, (0, 1, 0, 1), 1, (6, 6))
    x = _x((2, 2, 6, 6)).astype(np.float64).astype(np.float32)
    r = _x((2, 3, 3, 3), 7)
    layer.forward(x, train=True)
    layer.zero_grads()
    dx = layer.backward(r)

    def loss(xx):
        return float(np.sum(layer.forward(xx, train=True).astype(np.float64) * r))

    eps = 1e-2
    for idx in [(0, 0, 5, 5), (1, 1, 0, 0), (0, 1, 5, 2), (1, 0, 3, 4)]:  # incl. the padded edge
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        assert dx[idx] == pytest.approx((loss(xp) - loss(xm)) / (2 * eps), rel=1e-2, abs=1e-3), idx


@pytest.mark.parametrize("c,m,k,stride,padding,hw", [
    (1, 1, 3, 1, (1, 1, 1, 1), (1, 1)), (7, 1, 3, 2, (0, 1, 0, 1), (9, 10)), (5, 3, 5, 1, (2, 2, 2, 2), (6, 7)),
    (3, 2, 4, 3, (3, 0, 1, 2), (11, 5)), (6, 1, 7, 2, (3, 3, 3, 3), (13, 13))])
def test_depthwise_kernel_matches_loops(c, m, k, stride, padding, hw):
    x, w, b = _x((3, c, *hw)), _x((c * m, 1, k, k), 1), _x(c * m, 2)
    expected = ref.conv2d_padded(x, w, b, stride, padding, c)
    y = np.empty((3, c * m, *expected.shape[2:]), np.float32)
    K.depthwise_forward(x, w, b, K.ConvGeometry(k, k, stride, padding[0], padding[2], *expected.shape[2:]), y)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_no_bias_and_float64_input():
    layer = _conv(4, 4, 3, 1, (0, 1, 0, 1), 4, (5, 5), bias=False)
    x = _x((2, 4, 5, 5)).astype(np.float64)
    y = layer.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref.conv2d_padded(x, layer.params["weight"], None, 1, (0, 1, 0, 1), 4),
                               rtol=1e-5, atol=1e-5)
