"""Command line of the Hopfield simulator: ``python -m hopfield demo``."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path


def _demo(args) -> int:
    import numpy as np

    from . import studies
    from ._io import write_csv, write_json

    params = dict(n_neurons=args.n, loads=args.loads, bits=[None, *range(1, 9)],
                  schemes=["uniform", "exponential", "lloyd"], objectives=["correlation", "minmax"],
                  cue_noise=args.noise, trials=args.trials, threshold=0.95, seed=args.seed)
    t0 = time.perf_counter()
    rows = studies.recall_vs_bits(**params, progress=not args.quiet and sys.stderr.isatty())
    elapsed = time.perf_counter() - t0
    out = Path(args.out)
    write_csv(rows, out / "recall_vs_bits.csv")
    studies.plot_recall_vs_bits(rows, out / "recall_vs_bits.png")
    import quantization

    write_json(dict(study="recall_vs_bits", parameters=params, version=quantization.__version__,
                    python=platform.python_version(), numpy=np.__version__, seconds=round(elapsed, 2)),
               out / "recall_vs_bits.json")
    if not args.quiet:
        print(_summary(rows))
        print(f"\nwrote {out / 'recall_vs_bits.csv'}, .json and .png in {elapsed:.0f} s")
    return 0


def _summary(rows) -> str:
    import numpy as np

    loads = sorted({r["load"] for r in rows})
    keys = list(dict.fromkeys((r["bits"], r["scheme"], r["objective"]) for r in rows))
    head = f"{'weights':<32}" + "".join(f"{f'alpha={a}':>22}" for a in loads)
    lines = ["fraction retrieved (mean final overlap) / rho, averaged over trials", head, "-" * len(head)]
    for k in keys:
        cells = []
        for a in loads:
            rs = [r for r in rows if (r["bits"], r["scheme"], r["objective"]) == k and r["load"] == a]
            cells.append(f"{np.mean([r['retrieved'] for r in rs]):.2f} ({np.mean([r['overlap'] for r in rs]):.3f})"
                         f" {np.mean([r['rho'] for r in rs]):.3f}")
        name = "float" if k[0] == "float" else f"{k[0]} bit {k[1]}, {k[2]}"
        lines.append(f"{name:<32}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hopfield",
                                     description="Hopfield associative memory on quantized weights.")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo", help="recall quality versus weight bits (the main study)",
        description="Store random patterns in Hebbian networks at several loads, quantize the weights at 1..8 "
        "bits with uniform, exponential and lloyd levels (correlation-optimal and min-max), recall every "
        "pattern from cues with flipped neurons, and write recall_vs_bits.csv, .json and .png. "
        "Example: python -m hopfield demo --n 1000 --out out --seed 0",
    )
    d.add_argument("--n", type=int, default=1000, help="neurons (default: 1000)")
    d.add_argument("--loads", type=float, nargs="+", default=[0.05, 0.1, 0.13],
                   help="loads alpha = P/N (default: 0.05 0.1 0.13)")
    d.add_argument("--noise", type=float, default=0.1, help="fraction of flipped neurons in each cue (default: 0.1)")
    d.add_argument("--trials", type=int, default=2, help="independent pattern sets per load (default: 2)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    d.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    d.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    try:
        return _demo(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
