"""Speed of fitting per-channel 4-bit codebooks on a 25-million-element tensor.

    python bench/bench_fit.py [--rows 2048] [--cols 12288] [--repeat 3]

Compares, in one run on the same float32 tensor (Gaussian weights, std 0.02):
a plain numpy per-channel min-max round-to-nearest (the reference cost), and
``quantize(..., axis=0)`` for exponential and uniform (correlation objective) and
uniform min-max.  JIT compilation is warmed up first; the best of ``--repeat`` runs is
reported, with its ratio to the numpy min-max RTN.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from quantization import quantize  # noqa: E402


def rtn_minmax(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row min-max round-to-nearest in plain numpy (codes and scales)."""
    qmax = (1 << (bits - 1)) - 1
    scale = np.abs(w).max(axis=1, keepdims=True) / qmax
    scale[scale == 0] = 1.0
    codes = (np.clip(np.rint(w / scale), -qmax - 1, qmax) + qmax + 1).astype(np.uint8)
    return codes, scale


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--cols", type=int, default=12288)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(describe())
    rng = np.random.default_rng(a.seed)
    w = (rng.standard_normal((a.rows, a.cols)) * 0.02).astype(np.float32)
    quantize(w[:4, :64], a.bits, "exponential", axis=0)  # warm up the JIT
    quantize(w[:4, :64], a.bits, "uniform", objective="minmax", axis=0)
    print(f"tensor {a.rows} x {a.cols} = {w.size / 1e6:.1f} M float32, {a.bits} bits, per output channel (axis=0)")
    t_rtn, (codes, scale) = best_of(lambda: rtn_minmax(w, a.bits), a.repeat)
    rho_rtn = np.corrcoef(w.ravel(), ((codes.astype(np.float32) - (1 << (a.bits - 1))) * scale).ravel())[0, 1]
    print(f"{'method':<42}{'seconds':>9}{'x RTN':>8}{'rho':>9}")
    print(f"{'numpy min-max RTN (reference)':<42}{t_rtn:>9.3f}{1.0:>8.1f}{rho_rtn:>9.4f}")
    for scheme, objective in (("uniform", "minmax"), ("uniform", "correlation"), ("exponential", "correlation")):
        t, qt = best_of(lambda: quantize(w, a.bits, scheme, objective, axis=0), a.repeat)
        print(f"{'quantize ' + scheme + ', ' + objective:<42}{t:>9.3f}{t / t_rtn:>8.1f}{qt.correlation(w):>9.4f}")


if __name__ == "__main__":
    main()
