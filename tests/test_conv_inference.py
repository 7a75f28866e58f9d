"""The inference convolution kernel (``_kernels.conv_forward`` and its pieces) against
slow references, the training path and PyTorch."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import reference as ref

from feedforward import Conv2D, ReLU, Residual, Sequential
from feedforward import _kernels as K


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _geometry(k, stride, padding, hw):
    top, bottom, left, right = padding
    OH = (hw[0] + top + bottom - k) // stride + 1
    OW = (hw[1] + left + right - k) // stride + 1
    return K.ConvGeometry(k, k, stride, top, left, OH, OW)


def _run(x, w, b, stride, padding, groups, n_threads):
    """conv_forward as Conv2D calls it."""
    O, _, k, _ = w.shape
    g = _geometry(k, stride, padding, x.shape[2:])
    y = np.empty((x.shape[0], O, g.OH, g.OW), np.float32)
    K.conv_forward(x, w.reshape(groups, O // groups, -1), b, g, n_threads, y)
    return y


CASES = [  # N, cin, cout, k, stride, (top, bottom, left, right), groups, (H, W)
    (3, 3, 5, 3, 1, (1, 1, 1, 1), 1, (7, 9)),     # odd sizes, stride 1: the padded in-place path
    (5, 3, 5, 3, 2, (0, 1, 0, 1), 1, (8, 8)),     # TF "SAME" stride 2: the im2col path
    (4, 2, 7, 3, 2, (1, 0, 2, 0), 1, (7, 9)),
    (1, 4, 6, 3, 1, (2, 0, 0, 1), 2, (5, 5)),     # batch 1, grouped, asymmetric
    (7, 6, 9, 3, 2, (1, 1, 0, 2), 3, (9, 6)),     # grouped stride 2, O not a multiple of 4
    (5, 8, 12, 1, 1, (0, 0, 0, 0), 1, (5, 7)),    # 1x1, the sample read as it is
    (3, 8, 12, 1, 1, (0, 0, 0, 0), 4, (5, 7)),    # grouped 1x1
    (3, 5, 3, 1, 2, (0, 1, 1, 0), 1, (5, 6)),     # 1x1 stride 2
    (2, 5, 3, 1, 1, (1, 0, 0, 2), 1, (4, 3)),     # padded 1x1
    (3, 1, 4, 2, 1, (0, 1, 0, 1), 1, (4, 5)),     # even kernel, one input channel
    (2, 3, 5, 5, 1, (2, 2, 2, 2), 1, (3, 4)),     # kernel larger than the input
    (2, 3, 4, 5, 3, (2, 0, 1, 2), 1, (11, 8)),    # stride 3
    (3, 17, 9, 3, 1, (1, 1, 1, 1), 1, (6, 5)),    # taps (153) not a multiple of 4
    (2, 16, 16, 3, 1, (1, 1, 1, 1), 1, (8, 8)),   # the ResNet shape, small
    (1, 4, 18, 3, 1, (1, 0, 1, 0), 2, (5, 6)),    # one sample, 9 channels per group: sliced 4 + 4 + 1
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_conv_forward_matches_loops(case, n_threads):
    """Batches of 1 to 7 samples on 1 to 8 threads: chunks of uneven sizes, and samples
    split by output channels when the threads outnumber them."""
    N, cin, cout, k, stride, padding, groups, hw = case
    x, w, b = _x((N, cin, *hw)), _x((cout, cin // groups, k, k), 1), _x(cout, 2)
    y = _run(x, w, b, stride, padding, groups, n_threads)
    np.testing.assert_allclose(y, ref.conv2d_padded(x, w, b, stride, padding, groups), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_a_sample_does_not_depend_on_the_batch_or_the_threads(case):
    N, cin, cout, k, stride, padding, groups, hw = case
    x, w, b = _x((N, cin, *hw)), _x((cout, cin // groups, k, k), 1), _x(cout, 2)
    whole = _run(x, w, b, stride, padding, groups, 1)
    for n_threads in (2, N, 3 * N):
        np.testing.assert_array_equal(_run(x, w, b, stride, padding, groups, n_threads), whole)
    for n_threads in (1, 2, 5):
        np.testing.assert_array_equal(_run(x[-1:], w, b, stride, padding, groups, n_threads), whole[-1:])


@pytest.mark.parametrize("case", CASES)
def test_inference_agrees_with_the_training_path(case):
    N, cin, cout, k, stride, padding, groups, hw = case
    layer = Conv2D(cin, cout, k, stride, padding, groups)
    layer.build((cin, *hw), np.random.default_rng(1))
    layer.params["bias"] = _x(cout, 2)
    x = _x((N, cin, *hw))
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_allclose(y, layer.forward(x, train=True), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_inference_matches_torch(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    N, cin, cout, k, stride, padding, groups, hw = case
    x, w, b = _x((N, cin, *hw)), _x((cout, cin // groups, k, k), 1), _x(cout, 2)
    top, bottom, left, right = padding
    xt = F.pad(torch.from_numpy(x), (left, right, top, bottom))
    expected = F.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride, groups=groups).numpy()
    np.testing.assert_allclose(_run(x, w, b, stride, padding, groups, min(2, N)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c,k,stride,padding,hw", [
    (3, 3, 1, (1, 1, 1, 1), (7, 9)), (2, 3, 2, (0, 1, 0, 1), (8, 8)), (4, 3, 2, (1, 0, 2, 0), (7, 9)),
    (2, 5, 3, (2, 0, 1, 2), (11, 8)), (3, 1, 2, (0, 1, 1, 0), (5, 6)), (1, 4, 1, (0, 3, 2, 1), (2, 3))])
def test_im2col_sample_matches_loops(c, k, stride, padding, hw):
    x = _x((3, 2 * c, *hw))
    g = _geometry(k, stride, padding, hw)
    for n, c0 in [(0, 0), (2, c), (1, c // 2)]:
        cols = np.full((c * k * k, g.OH * g.OW), np.nan, np.float32)
        K._im2col_sample(x, n, c0, g, cols)
        expected = ref.im2col_sample(x, n, c0, c, k, k, stride, padding[0], padding[2], g.OH, g.OW)
        np.testing.assert_array_equal(cols, expected)


@pytest.mark.parametrize("padding,hw", [((1, 1, 1, 1), (4, 5)), ((0, 2, 3, 0), (3, 1)), ((0, 0, 0, 0), (2, 3))])
def test_pad_sample_matches_np_pad(padding, hw):
    top, bottom, left, right = padding
    x = _x((2, 3, *hw))
    Hp, Wp = hw[0] + top + bottom, hw[1] + left + right
    g = K.ConvGeometry(1, 1, 1, top, left, Hp, Wp)
    xp = np.zeros(3 * Hp * Wp + 2, np.float32)
    K._pad_sample(x, 1, g, Wp, Hp * Wp, xp)
    expected = np.pad(x[1], ((0, 0), (top, bottom), (left, right)))
    np.testing.assert_array_equal(xp[:-2].reshape(3, Hp, Wp), expected)
    assert not xp[-2:].any()


@pytest.mark.parametrize("O,Kd,P", [(1, 1, 1), (4, 4, 8), (5, 7, 13), (9, 18, 33), (16, 144, 64)])
def test_gemm_acc_matches_matmul(O, Kd, P):
    rng = np.random.default_rng(O * Kd * P)
    w = _x((O, Kd), 1)
    src = _x(Kd * P + 50, 2)
    offs = rng.integers(0, 40, Kd)
    base = 7
    out0 = _x((O, P), 3)
    out = out0.copy()
    K._gemm_acc(w, src, offs.astype(np.int64), base, out)
    cols = np.stack([src[base + o:base + o + P] for o in offs]).astype(np.float64)
    np.testing.assert_allclose(out, out0 + w.astype(np.float64) @ cols, rtol=1e-5, atol=1e-5)


def test_empty_batch_and_no_bias():
    layer = Conv2D(3, 4, 3, padding=1, bias=False)
    layer.build((3, 5, 5), np.random.default_rng(0))
    assert layer.forward(np.zeros((0, 3, 5, 5), np.float32)).shape == (0, 4, 5, 5)
    x = _x((2, 3, 5, 5))
    np.testing.assert_allclose(layer.forward(x), ref.conv2d_padded(x, layer.params["weight"], None, 1, 1, 1),
                               rtol=1e-5, atol=1e-5)


def test_residual_network_inference_matches_training_forward():
    """A small ResNet stage (option-A shortcut, stride 2): inference equals the training
    path's forward pass on the same weights."""
    model = Sequential([Conv2D(3, 8, 3, padding=1), ReLU(),
                        Residual([Conv2D(8, 16, 3, 2, 1), ReLU(), Conv2D(16, 16, 3, 1, 1)], "option_a", 2), ReLU(),
                        Residual([Conv2D(16, 16, 3, 1, 1), ReLU(), Conv2D(16, 16, 3, 1, 1)]), ReLU()],
                       (3, 9, 9), seed=0)
    x = _x((5, 3, 9, 9))
    np.testing.assert_allclose(model.forward(x), model.forward(x, train=True), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_jit_equals_pure_python(tmp_path):
    """The compiled kernel and the same code run as plain Python (NUMBA_DISABLE_JIT=1,
    where numpy checks every slice and index) give the same outputs."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        sys.path.insert(0, sys.argv[2])
        from test_conv_inference import CASES, _run, _x
        out = {}
        for i, (N, cin, cout, k, stride, padding, groups, hw) in enumerate(CASES):
            x, w, b = _x((N, cin, *hw)), _x((cout, cin // groups, k, k), 1), _x(cout, 2)
            out[str(i)] = _run(x, w, b, stride, padding, groups, 3)
        np.savez(sys.argv[1], **out)
        """
    )
    runs = []
    for flag in ("0", "1"):
        path = tmp_path / f"jit{flag}.npz"
        env = dict(os.environ, NUMBA_DISABLE_JIT=flag)
        subprocess.run([sys.executable, "-c", script, str(path), str(Path(__file__).parent)], check=True, env=env)
        runs.append(np.load(path))
    for key in runs[0].files:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=f"case {key}")
