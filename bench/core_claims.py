"""The numbers the README quotes for the quantization core.

    python bench/core_claims.py [--n 1000000] [--seed 0]

1. Lloyd-Max: ``lloyd`` on n samples of N(0,1) versus rho = sqrt(1 - D) from Max's
   (1960) table of the optimal MSE D at 1..4 bits.
2. Laplacian weights (unit scale): rho of uniform, exponential, pow2 and lloyd at 1..8
   bits, correlation objective versus the min-max baseline.
3. bfloat16 parameters: (1 - rho) with param_dtype="bfloat16" over (1 - rho) with
   float32, per scheme and width, on 64 Laplacian rows of 576 (seed 0), per row, means
   preserved (the figures in ``quantize``'s docstring).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from quantization import SCHEMES, quantize  # noqa: E402

LLOYD_MAX_MSE = {1: 0.3634, 2: 0.1175, 3: 0.03454, 4: 0.009497}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(describe())
    rng = np.random.default_rng(a.seed)
    g = rng.standard_normal(a.n)
    print(f"\n1. lloyd on {a.n:,} samples of N(0,1)")
    print(f"{'bits':>4}{'rho (lloyd)':>13}{'Lloyd-Max':>11}")
    for b in range(1, 5):
        print(f"{b:>4}{quantize(g, b, 'lloyd').correlation(g):>13.4f}{np.sqrt(1 - LLOYD_MAX_MSE[b]):>11.4f}")
    lap = rng.laplace(size=a.n)
    print(f"\n2. rho on {a.n:,} Laplacian samples (whole tensor, default gain)")
    print(f"{'scheme':<13}{'objective':<13}" + "".join(f"{b:>8}" for b in range(1, 9)))
    for scheme in SCHEMES:
        for obj in ("correlation", "minmax"):
            rhos = [quantize(lap, b, scheme, obj).correlation(lap) if scheme != "pow2" or b <= 5 else None
                    for b in range(1, 9)]  # pow2 is refused above 5 bits (its levels are a factor 2 apart)
            print(f"{scheme:<13}{obj:<13}" + "".join(f"{r:>8.4f}" if r is not None else f"{'-':>8}" for r in rhos))
    w = np.random.default_rng(0).laplace(size=(64, 576)).astype(np.float32)
    print("\n3. (1 - rho) with bfloat16 parameters / with float32, 64 Laplacian rows of 576, per row, means kept")
    print(f"{'scheme':<13}" + "".join(f"{b:>8}" for b in range(1, 9)))
    for scheme in ("uniform", "exponential", "lloyd", "normal"):
        cost = []
        for b in range(1, 9):
            f32, bf16 = (quantize(w, b, scheme, axis=0, preserve_mean=True, param_dtype=d).correlation(w)
                         for d in ("float32", "bfloat16"))
            cost.append((1 - bf16) / (1 - f32))
        print(f"{scheme:<13}" + "".join(f"{c:>8.3f}" for c in cost))


if __name__ == "__main__":
    main()
