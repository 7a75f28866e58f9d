"""Batch inference speed of a ResNet-20-sized model (CIFAR, 32x32, BN folded) and of an
EfficientNet-B0-like depthwise-separable stack (224x224).

    python bench/bench_inference.py [--batch 256] [--separable-batch 32] [--repeat 3]

In one run, on the same weights and inputs: this package (numba inference kernels; 1x1
convolutions one BLAS GEMM per sample), a plain numpy reference (sliding_window_view + tensordot)
and, when installed, PyTorch on the CPU (torch.nn.functional with the same weights;
``pip install torch==2.13.0`` takes the CPU wheel on this project's machines).  Best of
``--repeat`` runs after a warm-up; outputs are checked to agree; PyTorch gets numba's
thread count.  The separable stack (stem with TensorFlow "SAME" padding (0, 1, 0, 1),
1x1 expand, 3x3/5x5 depthwise, 1x1 project, ReLU6 clipping) is compared with PyTorch only.
"""

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from feedforward import (BatchNorm, Conv2D, Dense, GlobalAvgPool, Identity, ReLU, Residual,  # noqa: E402
                         fold_batchnorm, resnet_cifar)


def numpy_conv(layer, x):
    """Plain numpy reference of one Conv2D (any padding, groups)."""
    (top, bottom, left, right), k, s, g = layer.padding, layer.k, layer.stride, layer.groups
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    w, og, cg = layer.params["weight"], layer.cout // g, layer.cin // g
    y = np.concatenate([np.tensordot(win[:, j * cg:(j + 1) * cg], w[j * og:(j + 1) * og],
                                     axes=([1, 4, 5], [1, 2, 3])) for j in range(g)], axis=3)
    y = y.transpose(0, 3, 1, 2)
    return y + layer.params["bias"][None, :, None, None] if layer.bias else y


def torch_conv(torch, layer, x):
    F = torch.nn.functional
    top, bottom, left, right = layer.padding
    if (top, left) == (bottom, right):
        pad = (top, left)
    else:
        x, pad = F.pad(x, (left, right, top, bottom)), 0
    bias = torch.from_numpy(layer.params["bias"]) if layer.bias else None
    return F.conv2d(x, torch.from_numpy(layer.params["weight"]), bias, stride=layer.stride, padding=pad,
                    groups=layer.groups)


def numpy_forward(layers, x):
    """Plain numpy reference of the folded network."""
    for layer in layers:
        if isinstance(layer, Conv2D):
            x = numpy_conv(layer, x)
        elif isinstance(layer, ReLU):
            x = np.maximum(x, 0)
        elif isinstance(layer, Residual):
            y = numpy_forward(layer.body, x)
            if layer.shortcut == "option_a":
                xs = x[:, :, ::layer.stride, ::layer.stride]
                e = y.shape[1] - x.shape[1]
                x = np.pad(xs, ((0, 0), (e // 2, e - e // 2), (0, 0), (0, 0)))
            x = y + x
        elif isinstance(layer, GlobalAvgPool):
            x = x.mean(axis=(2, 3))
        elif isinstance(layer, Dense):
            x = x @ layer.params["weight"].T + layer.params["bias"]
        elif not isinstance(layer, Identity):
            raise TypeError(layer)
    return x


def torch_forward(torch, layers, x):
    F = torch.nn.functional
    for layer in layers:
        if isinstance(layer, Conv2D):
            x = torch_conv(torch, layer, x)
        elif isinstance(layer, ReLU):
            x = F.relu(x)
        elif isinstance(layer, Residual):
            y = torch_forward(torch, layer.body, x)
            if layer.shortcut == "option_a":
                e = y.shape[1] - x.shape[1]
                x = F.pad(x[:, :, ::layer.stride, ::layer.stride], (0, 0, 0, 0, e // 2, e - e // 2))
            x = y + x
        elif isinstance(layer, GlobalAvgPool):
            x = x.mean(dim=(2, 3))
        elif isinstance(layer, Dense):
            x = F.linear(x, torch.from_numpy(layer.params["weight"]), torch.from_numpy(layer.params["bias"]))
    return x


def best(fn, repeat):
    fn()
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t.append(time.perf_counter() - t0)
    return min(t), out


# EfficientNet-B0-like depthwise-separable stack: (expand, kernel, stride, out channels) per block
# after a 3 -> 32 stride-2 stem with TensorFlow "SAME" padding (0, 1, 0, 1).
SEPARABLE_BLOCKS = [(1, 3, 1, 16), (6, 3, 2, 24), (6, 5, 2, 40), (6, 3, 2, 80), (6, 5, 1, 112), (6, 5, 2, 192)]


def _same(k, stride):
    """TensorFlow "SAME" padding (top, bottom, left, right) of an even input."""
    total = max(k - stride, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


def separable_stack(seed=0):
    """List of (Conv2D, clip6) pairs; clip6 says whether min(max(y, 0), 6) follows."""
    rng = np.random.default_rng(seed)
    convs = [(Conv2D(3, 32, 3, 2, _same(3, 2)), True)]
    c, hw = 32, 224
    for expand, k, stride, cout in SEPARABLE_BLOCKS:
        mid = c * expand
        if expand != 1:
            convs.append((Conv2D(c, mid, 1), True))
        convs.append((Conv2D(mid, mid, k, stride, _same(k, stride), groups=mid), True))
        convs.append((Conv2D(mid, cout, 1), False))
        c = cout
    convs.append((Conv2D(c, 1280, 1), True))
    s = (3, hw, hw)
    for conv, _ in convs:
        s = conv.build(s, rng)
        conv.params["bias"] = rng.uniform(-0.1, 0.1, conv.cout).astype(np.float32)
    return convs


def separable_ours(convs, x):
    for conv, clip in convs:
        x = conv.forward(x)
        if clip:
            np.minimum(np.maximum(x, 0, out=x), 6, out=x)
    return x


def separable_torch(torch, convs, x):
    for conv, clip in convs:
        x = torch_conv(torch, conv, x)
        if clip:
            x = torch.nn.functional.relu6(x)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--separable-batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(describe())
    try:
        import torch
        torch.set_num_threads(numba.get_num_threads())
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    model = resnet_cifar(20, seed=0)
    for _, layer in model.named_layers():
        if isinstance(layer, BatchNorm):
            layer.state["running_var"] = rng.uniform(0.5, 2, layer.c).astype(np.float32)
    model = fold_batchnorm(model)
    x = rng.standard_normal((a.batch, 3, 32, 32)).astype(np.float32)
    print(f"ResNet-20, batch {a.batch} of 3x32x32, {model.macs() / 1e6:.1f} M MACs per image")
    t_ours, y = best(lambda: model.forward(x), a.repeat)
    t_np, y_np = best(lambda: numpy_forward(model.layers, x), a.repeat)
    print(f"{'implementation':<36}{'seconds':>9}{'images/s':>10}{'x ours':>8}  max |diff|")
    print(f"{'hopfield-quant (numba + BLAS)':<36}{t_ours:>9.3f}{a.batch / t_ours:>10.0f}{1:>8.2f}")
    print(f"{'plain numpy reference':<36}{t_np:>9.3f}{a.batch / t_np:>10.0f}{t_np / t_ours:>8.2f}"
          f"  {np.abs(y_np - y).max():.1e}")
    if torch is None:
        print("PyTorch: not installed (pip install torch==2.13.0)")
        return
    torch_name = f"PyTorch {torch.__version__} CPU ({torch.get_num_threads()} threads)"
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        t_t, y_t = best(lambda: torch_forward(torch, model.layers, xt), a.repeat)
    print(f"{torch_name:<36}{t_t:>9.3f}{a.batch / t_t:>10.0f}{t_t / t_ours:>8.2f}  {np.abs(y_t.numpy() - y).max():.1e}")
    print(f"ResNet-20: ours / PyTorch = {t_ours / t_t:.2f}")

    convs = separable_stack()
    macs = sum(conv.macs(conv.input_shape) for conv, _ in convs)
    xs = rng.standard_normal((a.separable_batch, 3, 224, 224)).astype(np.float32)
    print(f"\nDepthwise-separable stack (EfficientNet-B0-like, {len(convs)} convs, {macs / 1e6:.0f} M MACs per "
          f"image), batch {a.separable_batch} of 3x224x224")
    t_ours, y = best(lambda: separable_ours(convs, xs), a.repeat)
    with torch.inference_mode():
        xt = torch.from_numpy(xs)
        t_t, y_t = best(lambda: separable_torch(torch, convs, xt), a.repeat)
    print(f"{'hopfield-quant (numba + BLAS)':<36}{t_ours:>9.3f}{a.separable_batch / t_ours:>10.0f}{1:>8.2f}")
    print(f"{torch_name:<36}{t_t:>9.3f}{a.separable_batch / t_t:>10.0f}{t_t / t_ours:>8.2f}"
          f"  {np.abs(y_t.numpy() - y).max():.1e}")
    print(f"separable stack: ours / PyTorch = {t_ours / t_t:.2f}")


if __name__ == "__main__":
    main()
