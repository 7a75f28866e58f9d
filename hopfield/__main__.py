"""Command line of the Hopfield simulator: ``python -m hopfield {demo,capacity,basins,recall,patterns,watch,beyond-hebb}``.

Every study writes a tidy CSV, a JSON sidecar (parameters, versions, seed, timing) and
plots into ``--out``.  Sweeps are resumable: finished tasks are kept in ``OUT/tasks`` and
skipped when the same command runs again; ``--jobs N`` runs tasks on N local processes
and ``--scheduler tcp://host:8786`` on a Dask cluster, with identical results.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

EXAMPLES = {
    "demo": "python -m hopfield demo --n 1000 --out out --seed 0",
    "capacity": "python -m hopfield capacity --n 1000 --loads 0.02:0.2:0.02 --bits float 1 2 3 4 --trials 3 --out cap",
    "basins": "python -m hopfield basins --n 1000 --loads 0.05 0.1 --noise-levels 0:0.5:0.05 --bits float 1 2 4",
    "recall": "python -m hopfield recall --patterns X.npy --cues C.npy --bits 3 --scheme exponential --out rec",
    "patterns": "python -m hopfield patterns --text HOPFIELD --size 16 16 --out letters",
    "watch": "python -m hopfield watch --text HOPFIELD --size 16 16 --target 2 --noise 0.2 --bits 3 --rule projection --out watch",
    "beyond-hebb": "python -m hopfield beyond-hebb --quick --parts capacity recall --out beyond",
}


MAX_GRID_POINTS = 10_000  # points of one start:stop:step range at most
_ON_GRID = 1e-9  # stop is on the grid when (stop - start) / step is within this of an integer below
_GRID_DECIMALS = 10  # grid points are rounded to this many decimals (0.1 * 3 prints as 0.3)


def _number(text: str, spec: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not a number or a start:stop:step range") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"{spec!r}: every number must be finite, got {text!r}")
    return x


def _floats(spec: str) -> list[float]:
    """'0.1' or 'start:stop:step' (stop included when on the grid), finite numbers, at
    most MAX_GRID_POINTS points."""
    import numpy as np

    if ":" not in spec:
        return [_number(spec, spec)]
    parts = spec.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"range {spec!r} must be start:stop:step")
    a, b, st = (_number(p, spec) for p in parts)
    if st <= 0 or b < a:
        raise argparse.ArgumentTypeError(f"range {spec!r} needs step > 0 and stop >= start")
    intervals = (b - a) / st + _ON_GRID  # may be inf (e.g. 0:1e308:1e-308)
    if not intervals < MAX_GRID_POINTS:  # floor(intervals) + 1 points
        count = f"{math.floor(intervals) + 1:,}" if math.isfinite(intervals) else "too many"
        raise argparse.ArgumentTypeError(f"range {spec!r} has {count} points; at most {MAX_GRID_POINTS:,} are "
                                         "allowed: use a larger step or a narrower range")
    n = int(np.floor(intervals))
    return [float(x) for x in np.round(a + st * np.arange(n + 1), _GRID_DECIMALS)]


def _bits(spec: str):
    if spec.lower() == "float":
        return None
    try:
        return int(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bits {spec!r} must be an integer 1..8 or 'float'") from None


def _flat(lists):
    return [x for sub in lists for x in sub]


def _common(p: argparse.ArgumentParser, sweep: bool = True) -> None:
    g = p.add_argument_group("output and execution")
    g.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    g.add_argument("--seed", type=int, default=0, help="random seed of the whole study (default: 0)")
    g.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    g.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    g.add_argument("--formats", nargs="+", default=["png"], choices=["png", "svg", "pdf"],
                   help="plot formats (default: png)")
    if sweep:
        g.add_argument("--jobs", type=int, default=1, help="local worker processes (default: 1)")
        g.add_argument("--scheduler", default=None,
                       help="Dask scheduler address, e.g. tcp://host:8786 (needs the distributed extra)")


def _study_args(p: argparse.ArgumentParser, loads_default: str, bits_default: list[str]) -> None:
    p.add_argument("--n", type=int, default=1000, help="neurons N (default: 1000)")
    p.add_argument("--loads", type=_floats, nargs="+", default=[_floats(loads_default)],
                   help=f"loads alpha = P/N, numbers or start:stop:step ranges (default: {loads_default})")
    p.add_argument("--bits", type=_bits, nargs="+", default=[_bits(b) for b in bits_default],
                   help=f"weight bit widths, 'float' for unquantized (default: {' '.join(bits_default)})")
    p.add_argument("--schemes", nargs="+", default=["uniform"],
                   help="uniform, exponential, pow2, lloyd (default: uniform)")
    p.add_argument("--objectives", nargs="+", default=["correlation"],
                   help="correlation, mse, minmax (default: correlation)")
    p.add_argument("--trials", type=int, default=3, help="independent pattern sets per load (default: 3)")
    p.add_argument("--threshold", type=float, default=0.95,
                   help="a pattern is retrieved when the final overlap is >= this (default: 0.95)")
    p.add_argument("--rule", default="hebb", help="hebb, projection or storkey (default: hebb)")
    p.add_argument("--dynamics", default="async", help="async, async-fixed, sync (default: async)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hopfield", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    d = sub.add_parser("demo", help="recall quality versus weight bits (the main study)", formatter_class=fmt,
                       description="Store random patterns in Hebbian networks at several loads, quantize the weights "
                       "at 1..8 bits with uniform, exponential and lloyd levels (correlation-optimal and min-max), "
                       "recall every pattern from cues with flipped neurons; writes recall_vs_bits.csv, .json and "
                       f"plots. Example: {EXAMPLES['demo']}")
    d.add_argument("--n", type=int, default=1000, help="neurons")
    d.add_argument("--loads", type=float, nargs="+", default=[0.05, 0.1, 0.13], help="loads alpha = P/N")
    d.add_argument("--noise", type=float, default=0.1, help="fraction of flipped neurons in each cue")
    d.add_argument("--trials", type=int, default=2, help="independent pattern sets per load")
    _common(d)

    c = sub.add_parser("capacity", help="fraction retrieved versus load, per weight variant", formatter_class=fmt,
                       description="Retrieval of every stored pattern (from itself or a noisy cue) versus the load, "
                       "for each bit width, scheme and objective, with the theory's critical loads in the plot; "
                       f"writes capacity.csv, .json and plots. Example: {EXAMPLES['capacity']}")
    _study_args(c, "0.02:0.2:0.02", ["float", "1", "2", "3", "4"])
    c.add_argument("--noise", type=float, default=0.0, help="fraction of flipped neurons in each cue")
    _common(c)

    b = sub.add_parser("basins", help="fraction retrieved versus cue noise", formatter_class=fmt,
                       description="Basins of attraction: retrieval versus the fraction of flipped neurons in the "
                       f"cue, for chosen loads and bit widths; writes basins.csv, .json and plots. "
                       f"Example: {EXAMPLES['basins']}")
    _study_args(b, "0.05", ["float", "1", "2", "4"])
    b.add_argument("--noise-levels", type=_floats, nargs="+", default=[_floats("0:0.5:0.05")],
                   help="cue noise levels, numbers or start:stop:step (default: 0:0.5:0.05)")
    _common(b)

    r = sub.add_parser("recall", help="store patterns, quantize, recall cues", formatter_class=fmt,
                       description="Store patterns (a .npy or .txt file of +-1 rows, or random), optionally quantize "
                       "the weights, recall cues (a file, or the patterns with --noise flipped), and write "
                       "final_states.npy, recall.csv (per cue: target overlap, sweeps, converged) and recall.json. "
                       f"Example: {EXAMPLES['recall']}")
    r.add_argument("--patterns", type=Path, help="file of +-1 patterns, one per row (.npy or text)")
    r.add_argument("--random", type=int, metavar="P", help="store P random patterns instead")
    r.add_argument("--n", type=int, default=1000, help="neurons for --random")
    r.add_argument("--cues", type=Path, help="file of cues (default: the patterns with --noise flipped)")
    r.add_argument("--noise", type=float, default=0.1, help="fraction flipped when cues come from the patterns")
    r.add_argument("--rule", default="hebb", help="hebb, projection or storkey")
    r.add_argument("--bits", type=_bits, default=None, help="quantize the weights to this many bits ('float': no)")
    r.add_argument("--scheme", default="uniform", help="quantization scheme")
    r.add_argument("--objective", default="correlation", help="quantization objective")
    r.add_argument("--dynamics", default="async", help="async, async-fixed, sync, glauber")
    r.add_argument("--temperature", type=float, default=0.0, help="for glauber dynamics")
    r.add_argument("--max-sweeps", type=int, default=100, help="sweeps at most")
    _common(r, sweep=False)

    pt = sub.add_parser("patterns", help="images or letters to +-1 patterns", formatter_class=fmt,
                        description="Turn image files (resized, grayscale, thresholded or dithered) or characters "
                        "rendered from Pillow's bundled font into +-1 patterns; writes patterns.npy (one row per "
                        "image, row-major pixels), a preview plot and patterns.json. Needs Pillow (pip install "
                        f"'.[images]'). Example: {EXAMPLES['patterns']}")
    _pattern_source(pt)
    _common(pt, sweep=False)

    w = sub.add_parser("watch", help="watch one cue's recall: animation, frames, energy and overlaps",
                       formatter_class=fmt,
                       description="Store patterns (letters, image files or a .npy file), optionally quantize the "
                       "weights, flip --noise of one pattern's pixels and record the state after every --every "
                       "sweeps or flips, with the same dynamics and seed stream as recall; writes recall.gif (or "
                       ".mp4 with ffmpeg), recall_frames.png (frames with energy and overlap traces), "
                       f"trajectory.csv and watch.json. Example: {EXAMPLES['watch']}")
    _pattern_source(w, npy=True)
    w.add_argument("--shape", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                   help="picture shape of --patterns rows (default: square)")
    w.add_argument("--rule", default="hebb", help="hebb, projection or storkey")
    w.add_argument("--bits", type=_bits, default=None, help="quantize the weights to this many bits ('float': no)")
    w.add_argument("--scheme", default="uniform", help="quantization scheme")
    w.add_argument("--objective", default="correlation", help="quantization objective")
    w.add_argument("--target", type=int, default=0, help="index of the pattern the cue is made from")
    w.add_argument("--noise", type=float, default=0.2, help="fraction of the target's pixels flipped in the cue")
    w.add_argument("--dynamics", default="async", help="async, async-fixed, sync, glauber")
    w.add_argument("--temperature", type=float, default=0.0, help="for glauber dynamics")
    w.add_argument("--max-sweeps", type=int, default=100, help="sweeps at most")
    w.add_argument("--every", type=int, default=1, help="a frame after every this many sweeps or flips")
    w.add_argument("--unit", default="sweep", choices=["sweep", "flip"], help="what --every counts")
    w.add_argument("--frames", type=int, default=12, help="frames shown in recall_frames")
    w.add_argument("--animation", default="gif", choices=["gif", "mp4", "none"],
                   help="animation format (mp4 needs ffmpeg)")
    w.add_argument("--fps", type=float, default=4.0, help="animation frames per second")
    _common(w, sweep=False)

    bh = sub.add_parser("beyond-hebb", help="perceptron, sparse and diluted networks under quantization",
                        formatter_class=fmt,
                        description="Learning rules beyond Hebb (hopfield/beyond_hebb.py): perceptron capacity versus "
                        "the margin kappa next to Gardner's bound, recall versus weight bits for perceptron networks "
                        "beside Hebbian ones, sparse patterns (covariance rule) next to Tsodyks-Feigel'man, and "
                        "dilution beside quantization; writes the CSVs, plots, summary.txt and beyond_hebb.json. "
                        "--quick runs every part at small sizes. "
                        f"Example: {EXAMPLES['beyond-hebb']}")
    bh.add_argument("--parts", nargs="+", default=["capacity", "recall", "sparse", "dilution"],
                    choices=["capacity", "recall", "sparse", "dilution"], help="which parts of the study to run")
    bh.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every part")
    bh.add_argument("--size", choices=["full", "quick", "tiny"], default=None, help=argparse.SUPPRESS)
    _common(bh, sweep=False)
    return parser


def _pattern_source(p: argparse.ArgumentParser, npy: bool = False) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one pattern per character, rendered from Pillow's bundled font")
    src.add_argument("--images", type=Path, nargs="+", metavar="FILE", help="image files (PNG, JPEG, GIF, ...)")
    if npy:
        src.add_argument("--patterns", type=Path, help="file of +-1 patterns, one per row (.npy or text)")
    p.add_argument("--size", type=int, nargs=2, default=[16, 16], metavar=("HEIGHT", "WIDTH"),
                   help="picture size of --text and --images patterns")
    p.add_argument("--method", default=None, choices=["threshold", "mean", "otsu", "dither"],
                   help="binarisation (default: threshold for --text, otsu for --images)")
    p.add_argument("--threshold", type=float, default=None,
                   help="for threshold and dither (default: 0.3 for --text, 0.5 for --images)")
    p.add_argument("--invert", action="store_true", help="dark pixels become +1 (--images)")


def _sidecar(args, study: str, params: dict, seconds: float, extra: dict | None = None) -> dict:
    from quantization._io import run_sidecar

    return run_sidecar(study, params, args.seed, seconds, **(extra or {}))


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _run_study(args, name: str, fn, params: dict, plot) -> None:
    from . import studies
    from ._io import write_csv, write_json

    t0 = time.perf_counter()
    rows = fn(**params, seed=args.seed, progress=_progress(args), cache_dir=args.out / "tasks", jobs=args.jobs,
              scheduler=args.scheduler)
    elapsed = time.perf_counter() - t0
    write_csv(rows, args.out / f"{name}.csv")
    write_json(_sidecar(args, name, params, elapsed), args.out / f"{name}.json")
    for f in args.formats:
        plot(rows, args.out / f"{name}.{f}")
    if not args.quiet:
        if name == "capacity":
            crit = studies.critical_loads(rows)
            print("weights                          rho      alpha_c(sim)   theory")
            from .theory import critical_load

            for c in crit:
                label = "float" if c["bits"] == "float" else f"{c['bits']} bit {c['scheme']}, {c['objective']}"
                sim = (f"{c['alpha_c']:.4f}+-{c['alpha_c_err']:.4f}" if c["alpha_c"] == c["alpha_c"]
                       else "not crossed   ")
                print(f"{label:<32}{c['rho']:.4f}  {sim}  {critical_load(c['rho']):.4f}")
        print(f"wrote {args.out / name}.csv, .json and {', '.join(args.formats)} in {elapsed:.1f} s")


def _demo(args) -> None:
    from . import studies

    params = dict(n_neurons=args.n, loads=args.loads, bits=[None, *range(1, 9)],
                  schemes=["uniform", "exponential", "lloyd"], objectives=["correlation", "minmax"],
                  cue_noise=args.noise, trials=args.trials, threshold=0.95)
    _run_study(args, "recall_vs_bits", studies.recall_vs_bits, params, studies.plot_recall_vs_bits)
    if not args.quiet:
        import csv

        rows = list(csv.DictReader(open(args.out / "recall_vs_bits.csv")))
        for r in rows:
            for k in ("load", "rho", "retrieved", "overlap"):
                r[k] = float(r[k])
        print(_summary(rows))


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


def _capacity(args) -> None:
    from . import studies

    params = dict(n_neurons=args.n, loads=sorted(set(_flat(args.loads))), bits=args.bits, schemes=args.schemes,
                  objectives=args.objectives, trials=args.trials, cue_noise=args.noise, threshold=args.threshold,
                  rule=args.rule, dynamics=args.dynamics)
    _run_study(args, "capacity", studies.capacity, params, studies.plot_capacity)


def _basins(args) -> None:
    from . import studies

    params = dict(n_neurons=args.n, loads=sorted(set(_flat(args.loads))), bits=args.bits, schemes=args.schemes,
                  objectives=args.objectives, trials=args.trials, noise_levels=sorted(set(_flat(args.noise_levels))),
                  threshold=args.threshold, rule=args.rule, dynamics=args.dynamics)
    _run_study(args, "basins", studies.basins, params, studies.plot_basins)


def _load_states(path: Path, what: str):
    import numpy as np

    if not path.exists():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{what} file {path} is not a readable .npy or text array: {exc}") from None


def _recall(args) -> None:
    import numpy as np

    from . import HopfieldNetwork, flip_noise, random_patterns, target_overlaps
    from ._io import write_csv, write_json

    if (args.patterns is None) == (args.random is None):
        raise ValueError("give exactly one of --patterns FILE or --random P")
    rng = np.random.default_rng(args.seed)
    X = _load_states(args.patterns, "patterns") if args.patterns else random_patterns(args.random, args.n, seed=rng)
    X = np.atleast_2d(X)
    t0 = time.perf_counter()
    net = HopfieldNetwork.from_patterns(X, args.rule)
    X = np.asarray(X, np.int8)
    cues = _load_states(args.cues, "cues") if args.cues else flip_noise(X, args.noise, seed=rng)
    if args.bits is not None:
        net = net.quantize(args.bits, args.scheme, args.objective)
    res = net.recall(cues, dynamics=args.dynamics, max_sweeps=args.max_sweeps, temperature=args.temperature,
                     seed=rng)
    S = np.atleast_2d(res.states)
    k = min(len(S), len(X))  # cue i targets pattern i; extra cues have no target
    m = np.full(len(S), np.nan)
    m[:k] = target_overlaps(S[:k], X[:k])
    rows = [dict(cue=i, target_overlap=float(m[i]), sweeps=int(np.atleast_1d(res.sweeps)[i]),
                 converged=bool(np.atleast_1d(res.converged)[i])) for i in range(len(S))]
    args.out.mkdir(parents=True, exist_ok=True)
    from quantization import atomic_write
    import io

    buf = io.BytesIO()
    np.save(buf, S)
    atomic_write(args.out / "final_states.npy", buf.getvalue())
    write_csv(rows, args.out / "recall.csv")
    params = dict(patterns=str(args.patterns) if args.patterns else f"random {args.random} x {args.n}",
                  cues=str(args.cues) if args.cues else f"patterns with {args.noise} flipped", rule=args.rule,
                  bits=args.bits, scheme=args.scheme, objective=args.objective, dynamics=args.dynamics,
                  temperature=args.temperature, max_sweeps=args.max_sweeps)
    rho = getattr(net, "rho", None)
    write_json(_sidecar(args, "recall", params, time.perf_counter() - t0, dict(rho=rho)), args.out / "recall.json")
    if not args.quiet:
        mean = f"{np.nanmean(m):.4f}" if k else "n/a"
        print(f"recalled {len(S)} cues: mean target overlap {mean}, "
              f"{np.mean([r['converged'] for r in rows]):.0%} converged" + (f", rho {rho:.4f}" if rho else ""))
        print(f"wrote {args.out / 'final_states.npy'}, recall.csv and recall.json")


def _source_patterns(args):
    """(patterns, (height, width), labels) from --text, --images or --patterns."""
    import numpy as np

    from .images import images_to_patterns, letter_patterns

    size = tuple(args.size)
    opts = {k: v for k, v in dict(method=args.method, threshold=args.threshold).items() if v is not None}
    if args.text is not None:
        return letter_patterns(args.text, size=size, **opts), size, list(args.text)
    if args.images is not None:
        return (images_to_patterns(args.images, size=size, invert=args.invert, **opts), size,
                [p.stem for p in args.images])
    X = np.atleast_2d(_load_states(args.patterns, "patterns"))
    N = X.shape[1]
    if args.shape is None:
        side = math.isqrt(N)
        if side * side != N:
            raise ValueError(f"patterns have N={N} neurons, not a square: give --shape HEIGHT WIDTH")
        shape = (side, side)
    else:
        shape = tuple(args.shape)
    return X, shape, [str(i) for i in range(len(X))]


def _patterns(args) -> None:
    import io

    import numpy as np

    from quantization import atomic_write

    from ._io import write_json
    from .images import plot_patterns

    t0 = time.perf_counter()
    X, (h, w), labels = _source_patterns(args)
    args.out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, X)
    atomic_write(args.out / "patterns.npy", buf.getvalue())
    for f in args.formats:
        plot_patterns(X, (h, w), labels, args.out / f"patterns.{f}")
    params = dict(text=args.text, images=[str(p) for p in args.images] if args.images else None,
                  size=[h, w], method=args.method, threshold=args.threshold, invert=args.invert)
    write_json(_sidecar(args, "patterns", params, time.perf_counter() - t0, dict(labels=labels, shape=list(X.shape))),
               args.out / "patterns.json")
    if not args.quiet:
        print(f"wrote {len(X)} patterns of {h}x{w} = {h * w} neurons to {args.out / 'patterns.npy'}, "
              f"patterns.{'/'.join(args.formats)} and patterns.json")


def _watch(args) -> None:
    import numpy as np

    from . import HopfieldNetwork, flip_noise
    from ._io import write_csv, write_json
    from .trajectory import plot_trajectory, record_recall, save_animation

    t0 = time.perf_counter()
    X, shape, labels = _source_patterns(args)
    net = HopfieldNetwork.from_patterns(X, args.rule)
    X = np.asarray(X, np.int8)
    if not 0 <= args.target < len(X):
        raise ValueError(f"--target {args.target} is not a pattern index; there are {len(X)} patterns "
                         f"(0..{len(X) - 1})")
    if args.bits is not None:
        net = net.quantize(args.bits, args.scheme, args.objective)
    cue_seed, dyn_seed = np.random.SeedSequence(args.seed).spawn(2)
    cue = flip_noise(X[args.target], args.noise, seed=np.random.default_rng(cue_seed))[0]
    tr = record_recall(net, cue, dynamics=args.dynamics, max_sweeps=args.max_sweeps, temperature=args.temperature,
                       seed=np.random.default_rng(dyn_seed), every=args.every, unit=args.unit, patterns=X)
    rows = [dict(frame=f, sweep=int(tr.sweep[f]), flips=int(tr.flips[f]), energy=float(tr.energies[f]),
                 **{f"overlap_{p}": float(tr.overlaps[f, p]) for p in range(len(X))}) for f in range(tr.n_frames)]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "trajectory.csv")
    for f in args.formats:
        plot_trajectory(tr, shape, args.out / f"recall_frames.{f}", n_frames=args.frames, labels=labels)
    if args.animation != "none":
        save_animation(tr, args.out / f"recall.{args.animation}", shape, fps=args.fps, labels=labels)
    params = dict(text=args.text, images=[str(p) for p in args.images] if args.images else None,
                  patterns=str(args.patterns) if args.patterns else None, shape=list(shape), rule=args.rule,
                  bits=args.bits, scheme=args.scheme, objective=args.objective, target=args.target,
                  noise=args.noise, dynamics=args.dynamics, temperature=args.temperature,
                  max_sweeps=args.max_sweeps, every=args.every, unit=args.unit)
    m = float(tr.overlaps[-1, args.target])
    extra = dict(rho=getattr(net, "rho", None), labels=labels, sweeps=tr.sweeps, converged=tr.converged,
                 frames=tr.n_frames, final_target_overlap=m)
    write_json(_sidecar(args, "watch", params, time.perf_counter() - t0, extra), args.out / "watch.json")
    if not args.quiet:
        print(f"cue from pattern {args.target} ({labels[args.target]}) with {args.noise:.0%} flipped: overlap "
              f"{tr.overlaps[0, args.target]:+.3f} -> {m:+.3f} in {tr.sweeps} sweeps "
              f"({'converged' if tr.converged else 'not converged'}), {tr.n_frames} frames")
        print(f"wrote {args.out / 'trajectory.csv'}, recall_frames, "
              f"{'' if args.animation == 'none' else f'recall.{args.animation}, '}watch.json")


def _beyond_hebb(args) -> None:
    from . import beyond_hebb
    from ._io import write_json

    if "png" not in args.formats:
        raise ValueError("beyond-hebb writes png plots only; drop --formats or use --formats png")
    size = args.size or ("quick" if args.quick else "full")
    t0 = time.perf_counter()
    beyond_hebb.run(args.out, args.parts, size, args.seed, log=None if args.quiet else print)
    params = dict(parts=list(args.parts), size=size, configuration=beyond_hebb.configs(size))
    write_json(_sidecar(args, "beyond-hebb", params, time.perf_counter() - t0), args.out / "beyond_hebb.json")
    if not args.quiet:
        print(f"wrote the CSVs, plots and summary into {args.out}")


def main(argv: list[str] | None = None) -> int:
    from quantization._io import run_command

    args = build_parser().parse_args(argv)
    resume = "interrupted: finished tasks are kept; run the same command again to resume"
    handlers = {"demo": _demo, "capacity": _capacity, "basins": _basins, "recall": _recall, "patterns": _patterns,
                "watch": _watch, "beyond-hebb": _beyond_hebb}
    return run_command(handlers[args.command], args, resume if args.command in ("demo", "capacity", "basins",
                                                                                 "beyond-hebb")
                       else "interrupted")


if __name__ == "__main__":
    sys.exit(main())
