"""Learning rules beyond Hebb, and what quantization and dilution do to them.

A thin wrapper: the study lives in hopfield/beyond_hebb.py (also ``python -m hopfield
beyond-hebb``), so these results are reproduced by the package's code.

    python bench/beyond_hebb_study.py [--parts capacity recall sparse dilution] [--quick]

1. capacity: perceptron (Gardner) learning at margin kappa = 0 ... 1.  For each N, kappa
   and load alpha = P / N (a grid around Gardner's alpha_c(kappa)), store random patterns
   with hopfield.learning and record, per neuron, whether its perceptron converged and
   in how many epochs.  Because training is deterministic, a row that converged at epoch
   e < E also converges under any epoch limit >= e: one run gives the convergence curves
   for every smaller limit.  alpha_c is where half the rows converge (per-neuron capacity,
   Gardner's quantity) and where half the networks have every row converged (network
   capacity), interpolated, next to Gardner's bound and, for kappa = 0, Cover's exact
   finite-N count of separable dichotomies.  Resumable: finished tasks are kept in
   capacity_cache.jsonl in the output folder and not run again.
2. recall: recall versus weight bits for perceptron-trained networks at several kappa
   beside Hebbian ones (N = 500; alpha = 0.1 and 0.25): uniform correlation-optimal codes
   per row (axis=0) and for the whole matrix, and random dilution; cues with 10% flipped
   bits, asynchronous dynamics.  The one-step test of the static-noise picture: a weight
   error of relative variance D = 1/rho^2 - 1 that is independent of the patterns turns a
   stability Delta into Delta + sqrt(D) z, so the fraction of (neuron, pattern) pairs that
   lose their sign is predicted as mean Phi(-Delta / sqrt(D)) over the float network's
   stabilities; measured on the quantized weights.
3. sparse: 0/1 patterns at coding level a, covariance rule, threshold dynamics (the
   threshold optimised over a grid at every load); capacity (half the patterns retrieved
   with overlap >= 0.9 from cues with 10% of their active units erased) versus a next to
   Tsodyks & Feigel'man's asymptotic 1 / (2 a |ln a|); quantized (uniform, unbiased gain,
   exact mean) with one codebook for W, one per row, and one for W with per-neuron
   thresholds corrected by a * sum_j (Q_ij - W_ij), next to the static-noise estimate
   alpha_c(rho) ~ rho^2 alpha_c(float) (the crosstalk variance alpha a grows to alpha a / rho^2).
4. dilution: Hebbian networks with a fraction of synapses removed, symmetrically or not,
   beside quantized ones: critical load (half the stored patterns retrieved with overlap
   >= 0.97) versus rho = corr(W, W'), next to hopfield.theory.critical_load(rho).

Writes CSV files and plots into bench/results/beyond_hebb/ (beyond_hebb_quick/ with
--quick) and prints a summary (also in summary.txt there).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from hopfield.beyond_hebb import PARTS, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every part (about a minute)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = a.out or Path(__file__).parent / "results" / ("beyond_hebb_quick" if a.quick else "beyond_hebb")
    run(out, a.parts, "quick" if a.quick else "full", a.seed,
        header=describe() + f"; load average {os.getloadavg()[0]:.1f} at start", log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
