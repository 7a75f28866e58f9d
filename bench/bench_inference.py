"""Batch inference speed of a ResNet-20-sized model (CIFAR, 32x32, BN folded).

    python bench/bench_inference.py [--batch 256] [--repeat 3]

In one run, on the same weights and inputs: this package (im2col numba kernel + one
float32 BLAS GEMM per conv), a plain numpy reference (sliding_window_view + tensordot)
and, when installed, PyTorch on the CPU (torch.nn.functional with the same weights;
``pip install torch==2.13.0`` takes the CPU wheel on this project's machines).  Best of
``--repeat`` runs after a warm-up; outputs are checked to agree.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from feedforward import (BatchNorm, Conv2D, Dense, GlobalAvgPool, Identity, ReLU, Residual,  # noqa: E402
                         fold_batchnorm, resnet_cifar)


def numpy_forward(layers, x):
    """Plain numpy reference of the folded network."""
    for layer in layers:
        if isinstance(layer, Conv2D):
            p, k, s = layer.pad, layer.k, layer.stride
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
            x = np.tensordot(win, layer.params["weight"], axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
            x = x + layer.params["bias"][None, :, None, None]
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
            x = F.conv2d(x, torch.from_numpy(layer.params["weight"]), torch.from_numpy(layer.params["bias"]),
                         stride=layer.stride, padding=layer.pad, groups=layer.groups)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(describe())
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
    print(f"{'hopfield-quant (numba im2col + BLAS)':<36}{t_ours:>9.3f}{a.batch / t_ours:>10.0f}{1:>8.2f}")
    print(f"{'plain numpy reference':<36}{t_np:>9.3f}{a.batch / t_np:>10.0f}{t_np / t_ours:>8.2f}"
          f"  {np.abs(y_np - y).max():.1e}")
    try:
        import torch
    except ImportError:
        print("PyTorch: not installed (pip install torch==2.13.0)")
        return
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        t_t, y_t = best(lambda: torch_forward(torch, model.layers, xt), a.repeat)
    print(f"{'PyTorch ' + torch.__version__ + ' CPU (' + str(torch.get_num_threads()) + ' threads)':<36}"
          f"{t_t:>9.3f}{a.batch / t_t:>10.0f}{t_t / t_ours:>8.2f}  {np.abs(y_t.numpy() - y).max():.1e}")


if __name__ == "__main__":
    main()
