"""Speed of perceptron (Gardner) learning, against hopfieldkit's perceptron rule.

    python bench/bench_learning.py [--n 1000] [--alpha 0.5] [--kappa 0.5] [--hk-epochs 60]

A. hopfield.learning.perceptron_weights: N = 1,000 neurons, P = alpha N = 500 random
   patterns, every normalised stability xi_i h_i / |w_i| >= kappa = 0.5; all cores (numba
   prange over neurons) and one thread.
B. hopfieldkit's PerceptronHopfieldNetwork (``pip install hopfieldkit``; a benchmark-only
   dependency) on the same patterns.  Its rule differs: the margin is on the raw field
   (x_i h_i > kappa with weights in steps of 1/N, so it depends on the weight scale, not the
   normalised stability), and it applies every update to w_ij and w_ji together (W stays
   symmetric).  It is run with the same kappa number, up to ``--hk-epochs`` epochs; the
   normalised stabilities it reaches are measured on its weights with the same function.
   Skipped when hopfieldkit is not installed.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from hopfield import random_patterns  # noqa: E402
from hopfield.learning import perceptron_weights, stabilities  # noqa: E402


def summary(D, kappa):
    """(min stability, patterns not fixed points, fraction of (i, mu) pairs >= kappa)."""
    return float(D.min()), int((D.min(axis=1) <= 0).sum()), float(np.mean(D >= kappa))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--kappa", type=float, default=0.5)
    ap.add_argument("--hk-epochs", type=int, default=60, help="epoch limit for hopfieldkit (about 10 s each at N=1000)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(describe() + f"; load average {os.getloadavg()[0]:.1f} (other processes share these cores)")
    N, k = a.n, a.kappa
    P = int(round(a.alpha * N))
    X = random_patterns(P, N, seed=a.seed)
    perceptron_weights(random_patterns(20, 30, seed=1), kappa=k, seed=0)  # JIT warm-up (cached kernels load)

    print(f"\nA. perceptron_weights: N={N:,}, P={P:,} (alpha={P / N:.3f}), kappa={k}")
    threads = numba.get_num_threads()
    t0 = time.perf_counter()
    W, rep = perceptron_weights(X, kappa=k, seed=a.seed + 1)
    t_all = time.perf_counter() - t0
    numba.set_num_threads(1)
    t0 = time.perf_counter()
    W1, _ = perceptron_weights(X, kappa=k, seed=a.seed + 1)
    t_one = time.perf_counter() - t0
    numba.set_num_threads(threads)
    assert np.array_equal(W, W1), "results depend on the thread count"
    m, unstable, frac = summary(stabilities(W, X), k)
    print(f"{'':<34}{'seconds':>9}{'epochs':>8}{'min stab':>10}{'not fixed':>10}{'pairs>=kappa':>14}")
    print(f"{f'hopfield-quant, {threads} threads':<34}{t_all:>9.2f}{rep.epochs:>8}{m:>10.4f}{unstable:>10}{frac:>14.4f}")
    print(f"{'hopfield-quant, 1 thread':<34}{t_one:>9.2f}{rep.epochs:>8}{'(same W)':>10}")
    print(f"converged: {rep.converged}; {threads} threads are {t_one / t_all:.2f}x faster than 1")

    try:
        from hopfieldkit import PerceptronHopfieldNetwork
    except ImportError:
        print("\nB. skipped: hopfieldkit is not installed (pip install hopfieldkit)")
        return
    print(f"\nB. hopfieldkit PerceptronHopfieldNetwork(kappa={k}) on the same patterns, at most {a.hk_epochs} epochs")
    t0 = time.perf_counter()
    net = PerceptronHopfieldNetwork(N, kappa=k).fit(X, max_epochs=a.hk_epochs, seed=a.seed + 1)
    t_hk = time.perf_counter() - t0
    m_hk, unstable_hk, frac_hk = summary(stabilities(net.weights, X), k)
    print(f"{'':<34}{'seconds':>9}{'epochs':>8}{'min stab':>10}{'not fixed':>10}{'pairs>=kappa':>14}")
    print(f"{'hopfieldkit (symmetric, raw margin)':<34}{t_hk:>9.2f}{net.n_epochs_run:>8}{m_hk:>10.4f}"
          f"{unstable_hk:>10}{frac_hk:>14.4f}")
    print(f"hopfieldkit converged (its raw-field criterion): {net.converged}; "
          f"{t_hk / net.n_epochs_run:.2f} s per epoch")
    bound = "" if net.converged else " (a lower bound: hopfieldkit stopped at its epoch limit)"
    print(f"hopfield-quant is {t_hk / t_all:,.0f}x faster{bound}; normalised stability >= {k} everywhere: "
          f"hopfield-quant {m >= k}, hopfieldkit {m_hk >= k}")


if __name__ == "__main__":
    main()
