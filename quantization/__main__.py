"""Command line of the quantization core: ``python -m quantization demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quantization", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="table and plot of correlation/SQNR versus bits for the four classic schemes",
        description="Quantize synthetic Gaussian, Laplacian and Student-t(3) weights with each scheme "
        "(uniform, exponential, pow2, lloyd), correlation-optimal and min-max, at 1..8 bits; print a "
        "table and write quantization_demo.csv and quantization_demo.png. "
        "Example: python -m quantization demo --out out --n 200000 --seed 0",
    )
    demo.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    demo.add_argument("--n", type=int, default=200_000, help="samples per distribution (default: 200000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error(f"--n must be at least 2, got {args.n}")
    from ._demo import run_demo

    run_demo(args.out, n=args.n, seed=args.seed, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
