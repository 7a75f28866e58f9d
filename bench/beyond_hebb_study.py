"""Learning rules beyond Hebb, and what quantization and dilution do to them.

A thin wrapper: the study lives in hopfield/beyond_hebb.py (also ``python -m hopfield
beyond-hebb``), so these results are reproduced by the package's code.

    python bench/beyond_hebb_study.py [--parts capacity recall sparse dilution] [--quick]

The four parts (capacity versus kappa next to Gardner's bound, recall versus bits,
sparse patterns next to Tsodyks & Feigel'man, dilution beside quantization) are described
in hopfield/beyond_hebb.py's docstring.
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
