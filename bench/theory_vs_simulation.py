"""Theory next to simulation: critical loads of quantized Hebbian networks versus rho.

    python bench/theory_vs_simulation.py [--sizes 500 1000 2000 4000] [--quick]
    python bench/theory_vs_simulation.py --configs core --sizes 500 1000 2000 4000 8000 16000 32000 --device cuda

For each weight variant (float; 1-bit sign; 2-4 bits uniform, exponential and lloyd with
correlation-optimal levels; and two deliberately different quantizers whose rho lands
near another's: 2-bit lloyd min-max, about sign's rho, and 3-bit uniform min-max) and
each network size N, store P = alpha N random patterns with the Hebb rule, quantize the
whole matrix through the core, start the dynamics from every stored pattern and count it
retrieved when the final overlap is >= 0.97.  alpha_c(N) is where half are retrieved
(interpolated; bootstrap errors over trials), extrapolated to N -> infinity by a fit in
1/N, and compared with critical_load(rho) of hopfield.theory, with rho measured between
the Hebbian weights and their quantized values.

``--trials`` sets the trials per size and ``--loads`` the loads of the largest size (a few
around each variant's crossing, where a full fine grid would take hours on a laptop).
``--bracket`` chooses them per variant instead: the 1/sqrt(N) fit of the smaller sizes
predicts each variant's crossing at the largest size (``--bracket FROM_N``: at each size
from FROM_N up, smallest first), the two grid loads around it run
for that variant only, and one more step is added below or above until the simulated
fraction brackets 1/2 (far above its own crossing a variant wanders for up to max_sweeps
sweeps: at N = 16,000 the 1-bit network took 108 s at load 0.13 against 8 s near its
crossing at 0.10).

``--configs core`` keeps five variants (float, and 1-4 bits uniform with correlation-optimal
levels) so that large N fit in a GPU's time; N above 4,000 use loads 0.09-0.16 (the
crossings of those variants), smaller N 0.08-0.17.  ``--device cuda`` stores, quantizes
and recalls on the GPU, with the CPU's results bit for bit, so both fill the same cache.

Resumable: every finished (N, load, trial) task is kept in bench/results/theory_cache/
and skipped when the script is run again.  Writes theory_vs_simulation.csv (critical
loads), theory_extrapolated.csv and theory_vs_simulation.png into bench/results/.
"""

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from hopfield import studies, theory  # noqa: E402

CONFIGS = [dict(bits="float", scheme="none", objective="none"), dict(bits=1, scheme="uniform", objective="correlation")]
CONFIGS += [dict(bits=b, scheme=s, objective="correlation") for b in (2, 3, 4) for s in ("uniform", "exponential", "lloyd")]
CONFIGS += [dict(bits=2, scheme="lloyd", objective="minmax"), dict(bits=3, scheme="uniform", objective="minmax")]
CORE = [c for c in CONFIGS if c["bits"] in ("float", 1) or (c["scheme"], c["objective"]) == ("uniform", "correlation")]
TRIALS = {300: 2, 600: 2, 500: 8, 1000: 4, 2000: 2, 4000: 2, 8000: 1, 16000: 1, 32000: 1}


def loads_for(N, step=0.01):
    """The loads of a size: the crossings of every variant lie inside them."""
    lo, hi = (0.08, 0.17) if N <= 4000 else (0.09, 0.16)
    if step != 0.01:  # a finer grid over the crossings of the core variants
        lo, hi = 0.095, 0.15
    return tuple(np.round(np.arange(lo, hi + step / 2, step), 4))


def name(c):
    return "float" if c["bits"] == "float" else f"{c['bits']}-bit {c['scheme']} {c['objective']}"


def key(c):
    return (c["bits"], c["scheme"], c["objective"])


def bracket(predicted, run, step, fraction=0.5, max_rounds=8):
    """Rows that bracket each variant's crossing on the grid of ``step``.

    ``predicted`` maps a variant's key (bits, scheme, objective) to its predicted crossing;
    ``run(load, keys)`` returns the rows of one load for the variants in ``keys``.  Each
    variant first runs the two grid loads around its prediction; then, round by round, one
    step below its lowest load while that load retrieves under ``fraction`` (averaged over
    trials), or one above its highest while no load falls under it.  Variants that need the
    same load in a round share one run of it (one store, one pattern set).  The grid is the
    multiples of ``step``.  Variants left unbracketed (after ``max_rounds``, at the load 0
    floor, or with no rows) are named in a printed line; their crossing is then nan.
    """
    done: dict = {k: {} for k in predicted}  # key -> {load: mean fraction retrieved}
    failed: dict = {}  # key -> why it is not bracketed
    need = {}
    for k, p in predicted.items():
        lo = math.floor(p / step + 1e-9) * step
        need[k] = {round(lo, 6), round(lo + step, 6)}
    rows = []
    for _ in range(max_rounds):
        by_load: dict = {}
        for k, ls in need.items():
            for x in ls:
                by_load.setdefault(x, []).append(k)
        for load in sorted(by_load):
            got = run(load, by_load[load])
            rows += got
            for k in by_load[load]:
                mine = [r["retrieved"] for r in got if key(r) == k]
                if mine:
                    done[k][load] = float(np.mean(mine))
                else:
                    failed[k] = f"no rows at load {load}"
        need = {}
        for k, fr in done.items():
            if k in failed:
                continue
            xs = sorted(fr)
            if fr[xs[0]] < fraction:
                if round(xs[0] - step, 6) > 0:
                    need[k] = {round(xs[0] - step, 6)}
                else:
                    failed[k] = f"retrieves under {fraction} down to load {xs[0]}"
            elif all(fr[x] >= fraction for x in xs):
                need[k] = {round(xs[-1] + step, 6)}
        if not need:
            break
    else:
        failed.update({k: f"not bracketed after {max_rounds} rounds" for k in need})
    for k, why in failed.items():
        print(f"{name(dict(bits=k[0], scheme=k[1], objective=k[2]))}: {why}; its crossing is left out", flush=True)
    return rows


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--quick", action="store_true", help="sizes 300 and 600 only (a smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--configs", choices=["all", "core"], default="all",
                    help="all: the 13 variants; core: float and 1-4-bit uniform correlation")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--cache", type=Path, default=None, help="task cache folder (default <out>/theory_cache)")
    ap.add_argument("--load-step", type=float, default=0.01,
                    help="spacing of the loads (default 0.01; a finer one covers 0.095-0.15, the core crossings)")
    ap.add_argument("--loads", type=float, nargs="+", default=None,
                    help="loads of the largest size instead of its grid (e.g. a few around each variant's crossing)")
    ap.add_argument("--size-loads", action="append", default=[], metavar="N=LOAD,LOAD,...",
                    help="the loads of one size instead of its grid (repeatable; e.g. to reuse a cache filled with them)")
    ap.add_argument("--bracket", type=int, nargs="?", const=-1, default=None, metavar="FROM_N",
                    help="sizes from FROM_N up (default: the largest only), in ascending order: per variant, the grid "
                         "loads around the crossing predicted from the smaller sizes")
    ap.add_argument("--trials", type=int, nargs="+", default=None,
                    help="trials per size, one number per --sizes entry (default: 8 at N=500 down to 1 from 8,000)")
    a = ap.parse_args()
    sizes = [300, 600] if a.quick else a.sizes
    if a.trials is not None and len(a.trials) != len(sizes):
        ap.error(f"--trials needs one number per size: {len(sizes)} sizes, {len(a.trials)} trial counts")
    trials = dict(zip(sizes, a.trials)) if a.trials is not None else TRIALS
    configs = CORE if a.configs == "core" else CONFIGS
    if a.bracket is not None and a.bracket != -1 and not 0 < a.bracket <= max(sizes):
        ap.error(f"--bracket {a.bracket}: FROM_N must be positive and at most the largest size, {max(sizes)}")
    bracketed = set() if a.bracket is None else {n for n in sizes if n >= (max(sizes) if a.bracket == -1
                                                                              else a.bracket)}
    if bracketed and sum(n < min(bracketed) for n in sizes) < 2:
        ap.error(f"--bracket predicts crossings from the smaller sizes: give at least two sizes below {min(bracketed)}")
    size_loads = {}
    for item in a.size_loads:
        n, _, ls = item.partition("=")
        try:
            n, loads = int(n), tuple(float(x) for x in ls.split(","))
        except ValueError:
            ap.error(f"--size-loads {item!r}: expected N=LOAD,LOAD,... (e.g. 16000=0.1,0.1025)")
        if n not in sizes:
            ap.error(f"--size-loads {item!r}: N={n} is not one of --sizes {sizes}")
        if n in size_loads:
            ap.error(f"--size-loads gives the loads of N={n} twice")
        if not all(0 < x < 1 for x in loads):
            ap.error(f"--size-loads {item!r}: loads must lie between 0 and 1")
        size_loads[n] = loads
    if a.loads is not None:
        if max(sizes) in size_loads:
            ap.error("--loads sets the largest size's loads: give them once, there or in --size-loads")
        size_loads[max(sizes)] = tuple(a.loads)
    if bracketed & set(size_loads):
        ap.error(f"--bracket chooses the loads of N={sorted(bracketed & set(size_loads))}: drop their --loads or "
                 "--size-loads")
    print(describe())
    cache = a.cache or a.out / ("theory_cache_quick" if a.quick else "theory_cache")
    rows = []
    t0 = time.perf_counter()
    forecasts = {}
    # bracketed sizes run last, smallest first: their loads come from the smaller sizes' crossings
    for N in sorted(sizes, key=lambda n: (n in bracketed, n if n in bracketed else 0)):
        t1 = time.perf_counter()

        def run(loads, cfgs, N=N):
            return studies.capacity(n_neurons=N, loads=loads, configs=cfgs, trials=trials.get(N, 2), threshold=0.97,
                                    seed=a.seed, cache_dir=cache, progress=sys.stderr.isatty(), device=a.device)

        if N in bracketed:
            smaller = studies.critical_loads(rows)
            fits = studies.extrapolate(smaller, "1/sqrt(N)")
            predicted = {key(e): e["alpha_inf"] + e["slope"] / math.sqrt(N) for e in fits}
            # both laws' predictions, made before N runs: the out-of-sample test printed at the end
            forecasts[N] = {law: {k: forecast(rs, N, power) for k, rs in by_variant(smaller).items()}
                            for law, power in (("1/N", 1.0), ("1/sqrt(N)", 0.5))}
            print(f"N={N}: crossings predicted by the 1/sqrt(N) fit of the smaller sizes: "
                  + ", ".join(f"{name(c)} {predicted[key(c)]:.4f}" if key(c) in predicted
                              else f"{name(c)} none (fewer than two crossings; not run)" for c in configs), flush=True)
            rows += bracket(predicted, lambda load, keys: run((load,), [c for c in configs if key(c) in keys]),
                            a.load_step)
        else:
            rows += run(size_loads.get(N, loads_for(N, a.load_step)), configs)
        print(f"N={N}: {time.perf_counter() - t1:.0f} s", flush=True)
    sizes = sorted(sizes)  # run in the order given (bracketed ones last), reported in ascending order
    crit = studies.critical_loads(rows)
    ext = studies.extrapolate(crit, "1/N")
    ext_sqrt = {key(e): e for e in studies.extrapolate(crit, "1/sqrt(N)")}
    fl = {x["n_neurons"]: x["alpha_c"] for x in crit if x["bits"] == "float"}
    f_inf = [e["alpha_inf"] for e in ext if e["bits"] == "float"][0]
    for e in ext:
        e["predicted_alpha_c"] = theory.critical_load(e["rho"])
        # the simulation counts overlap >= 0.97: theory's matching load (alpha_c when m_c >= 0.97)
        e["predicted_at_097"] = theory.load_at_overlap(0.97, e["rho"])
        e["agrees"] = abs(e["alpha_inf"] - e["predicted_alpha_c"]) <= 2 * e["alpha_inf_err"]
        # relative to the float network at the same N, where finite-size effects largely cancel
        own = {x["n_neurons"]: x["alpha_c"] for x in crit
               if (x["bits"], x["scheme"], x["objective"]) == (e["bits"], e["scheme"], e["objective"])}
        e["ratio_to_float_largest_N"] = own[max(sizes)] / fl[max(sizes)]
        e["ratio_to_float_extrapolated"] = e["alpha_inf"] / f_inf
        e["ratio_theory"] = theory.load_at_overlap(0.97, e["rho"]) / theory.load_at_overlap(0.97, 1.0)
        q = ext_sqrt[key(e)]
        e["alpha_inf_sqrt"], e["alpha_inf_sqrt_err"], e["chi2_dof_sqrt"] = q["alpha_inf"], q["alpha_inf_err"], q["chi2_dof"]
        e["agrees_sqrt"] = abs(e["alpha_inf_sqrt"] - e["predicted_at_097"]) <= 2 * e["alpha_inf_sqrt_err"]
        rhos = [x["rho"] for x in crit if (x["bits"], x["scheme"], x["objective"]) == (e["bits"], e["scheme"], e["objective"])]
        e["rho_spread"] = max(rhos) - min(rhos)  # min-max grids: rho falls as N grows
    a.out.mkdir(parents=True, exist_ok=True)
    write_csv(crit, a.out / "theory_vs_simulation.csv")
    write_csv(ext, a.out / "theory_extrapolated.csv")
    print(f"\ncritical loads alpha_c(N) (half of the patterns retrieved with overlap >= 0.97), "
          f"{time.perf_counter() - t0:.0f} s in all")
    head = f"{'weights':<30}{'rho':>7}" + "".join(f"{f'N={n}':>15}" for n in sizes)
    head += (f"{'1/N fit':>16}{'chi2':>6}{'1/sqrt(N) fit':>16}{'chi2':>6}{'alpha_c':>8}{'a(.97)':>8}{'agree':>6}"
             f"{'ratio sim':>10}{'theory':>7}")
    print(head)
    for e in ext:
        c = dict(bits=e["bits"], scheme=e["scheme"], objective=e["objective"])
        cells = []
        for n in sizes:
            r = [x for x in crit if x["n_neurons"] == n and (x["bits"], x["scheme"], x["objective"]) == tuple(c.values())]
            cells.append(f"{r[0]['alpha_c']:.4f}+-{r[0]['alpha_c_err']:.4f}" if r else "-")
        print(f"{name(c):<30}{e['rho']:>7.4f}" + "".join(f"{x:>15}" for x in cells)
              + f"{e['alpha_inf']:>10.4f}+-{e['alpha_inf_err']:.4f}"[-16:] + f"{e['chi2_dof']:>6.1f}"
              + f"{e['alpha_inf_sqrt']:>10.4f}+-{e['alpha_inf_sqrt_err']:.4f}"[-16:] + f"{e['chi2_dof_sqrt']:>6.1f}"
              + f"{e['predicted_alpha_c']:>8.4f}{e['predicted_at_097']:>8.4f}{'yes' if e['agrees_sqrt'] else 'no':>6}"
              + f"{e['ratio_to_float_largest_N']:>10.3f}{e['ratio_theory']:>7.3f}")
    print(f"fits: alpha_c(N) = alpha_inf + b N^-p (chi2 per degree of freedom); theory: alpha_c = critical_load(rho), "
          f"a(.97) = load_at_overlap(0.97, rho), the load matching the retrieval criterion; agree: 1/sqrt(N) fit within "
          f"2 sigma of a(.97); ratio sim: alpha_c / alpha_c(float) at N={max(sizes)}; theory: a(.97) / a(.97) float")
    print("rho per N (min-max grids depend on N):")
    for e in ext:
        if e["rho_spread"] > 2e-3:
            per = {x["n_neurons"]: x for x in crit if (x["bits"], x["scheme"], x["objective"]) == (e["bits"], e["scheme"], e["objective"])}
            print(f"  {name(e):<28}" + "".join(f"  N={n}: rho {per[n]['rho']:.4f} sim {per[n]['alpha_c']:.4f} "
                                                f"a(.97) {theory.load_at_overlap(0.97, per[n]['rho']):.4f}"
                                                for n in sorted(per)))
    if len(sizes) >= 3:
        print_exponent_fits(crit, ext)
    for N, f in forecasts.items():
        print_forecasts(f, crit, N)
    plot(rows, crit, ext, sizes, a.out / "theory_vs_simulation.png")


def exponent_scan(rs, powers=np.round(np.arange(0.05, 1.505, 0.01), 2)):
    """alpha_c(N) = alpha_inf + b N^-p, weighted least squares for each p of a grid: the
    p of least chi^2, the range of p within chi^2_min + 1 (one parameter's 68% interval), and
    alpha_inf at the best p."""
    n = np.array([r["n_neurons"] for r in rs], float)
    y = np.array([r["alpha_c"] for r in rs])
    err = np.array([r["alpha_c_err"] for r in rs])
    chi2, inf = [], []
    for p in powers:
        A = np.stack([np.ones_like(n), n ** -p], axis=1) / err[:, None]
        coef, *_ = np.linalg.lstsq(A, y / err, rcond=None)
        r = A @ coef - y / err
        chi2.append(float(r @ r))
        inf.append(float(coef[0]))
    chi2 = np.array(chi2)
    k = int(np.argmin(chi2))
    inside = powers[chi2 <= chi2[k] + 1.0]
    return dict(p=float(powers[k]), p_lo=float(inside.min()), p_hi=float(inside.max()), chi2=float(chi2[k]),
                alpha_inf=inf[k])


def chi2_sf(x, k):
    """P(chi^2 with k degrees of freedom >= x): the regularized upper incomplete gamma
    Q(k / 2, x / 2), by its series below a + 1 and its continued fraction above."""
    a, z = k / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    log_front = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:
        term = total = 1.0 / a
        for n in range(1, 1000):
            term *= z / (a + n)
            total += term
            if term < total * 1e-15:
                break
        return 1.0 - math.exp(log_front) * total
    b, c, d = z + 1 - a, 1e300, 1.0 / (z + 1 - a)  # Lentz's continued fraction
    h = d
    for n in range(1, 1000):
        an = -n * (n - a)
        b += 2
        d = an * d + b
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = b + an / c
        c = c if abs(c) > 1e-300 else 1e-300
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(log_front) * h


def print_exponent_fits(crit, ext):
    """Which law the data prefer: chi^2 summed over the variants for 1/N and 1/sqrt(N),
    and the exponent p of a free fit per variant."""
    dof = sum(len(e["sizes"]) - 2 for e in ext)
    for law, col in (("1/N", "chi2_dof"), ("1/sqrt(N)", "chi2_dof_sqrt")):
        total = sum(e[col] * (len(e["sizes"]) - 2) for e in ext)
        print(f"{law} law, all variants: chi2 {total:.1f} for {dof} degrees of freedom "
              f"(probability of a chi2 this large by chance: {chi2_sf(total, dof):.2g})")
    ratios = {}
    for x in crit:
        ratios.setdefault(name(x), {})[x["n_neurons"]] = x["alpha_c"]
    fl = ratios["float"]
    for e in ext:
        if e["bits"] != "float":
            r = [ratios[name(e)][n] / fl[n] for n in sorted(fl) if n in ratios[name(e)]]
            print(f"  {name(e):<28} alpha_c / alpha_c(float) per N: {' '.join(f'{v:.3f}' for v in r)} "
                  f"(theory {e['ratio_theory']:.3f}; largest gap {max(abs(v - e['ratio_theory']) for v in r):.3f})")
    print("free exponent, alpha_c(N) = alpha_inf + b N^-p (p of least chi2; its chi2 + 1 range; alpha_inf there):")
    for e in ext:
        rs = sorted((x for x in crit if (x["bits"], x["scheme"], x["objective"]) == (e["bits"], e["scheme"],
                                                                                     e["objective"])),
                    key=lambda x: x["n_neurons"])
        f = exponent_scan(rs)
        print(f"  {name(e):<28} p = {f['p']:.2f} ({f['p_lo']:.2f}-{f['p_hi']:.2f}), chi2 {f['chi2']:.1f} "
              f"for {len(rs) - 3} dof, alpha_inf {f['alpha_inf']:.4f} (theory at 0.97: {e['predicted_at_097']:.4f})")


def by_variant(crit):
    """Critical loads grouped by variant, sizes ascending, finite crossings only."""
    out: dict = {}
    for x in sorted(crit, key=lambda x: x["n_neurons"]):
        if np.isfinite(x["alpha_c"]):
            out.setdefault(key(x), []).append(x)
    return out


def forecast(rs, N, power):
    """alpha_c at N from the weighted least-squares fit alpha_inf + b n^-power of ``rs``
    (weights 1 / alpha_c_err^2), with its standard error from the fit's covariance; nan
    with fewer than two sizes."""
    if len(rs) < 2:
        return float("nan"), float("nan")
    x = np.array([r["n_neurons"] ** -power for r in rs], float)
    err = np.array([r["alpha_c_err"] for r in rs])
    A = np.stack([np.ones_like(x), x], axis=1) / err[:, None]
    coef, *_ = np.linalg.lstsq(A, np.array([r["alpha_c"] for r in rs]) / err, rcond=None)
    v = np.array([1.0, float(N) ** -power])
    return float(v @ coef), float(np.sqrt(v @ np.linalg.inv(A.T @ A) @ v))


def print_forecasts(forecasts, crit, N):
    """A size's crossings as each law predicted them from the smaller sizes (before that size
    ran), and as measured: the deviation over the combined error tells the laws apart out of
    sample."""
    print(f"out of sample: alpha_c at N={N} predicted by each law's fit of the smaller sizes, then measured "
          "(dev: (measured - predicted) / sqrt(err_measured^2 + err_predicted^2))")
    print(f"  {'weights':<28}{'measured':>20}" + "".join(f"{law + ' predicted':>28}{'dev':>6}" for law in forecasts))
    order = [key(c) for c in CONFIGS]
    for x in sorted(crit, key=lambda x: order.index(key(x)) if key(x) in order else len(order)):
        if x["n_neurons"] != N or not np.isfinite(x["alpha_c"]):
            continue
        cells = ""
        for law, pred in forecasts.items():
            p, pe = pred.get(key(x), (float("nan"), float("nan")))
            cells += f"{p:>19.5f}+-{pe:.5f}{(x['alpha_c'] - p) / math.hypot(x['alpha_c_err'], pe):>6.1f}"
        print(f"  {name(x):<28}{x['alpha_c']:>11.5f}+-{x['alpha_c_err']:.5f}" + cells)


def plot(rows, crit, ext, sizes, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = len(sizes) >= 3  # a third panel: alpha_c(N) against N^-1/2 with both laws' fits
    fig, axes = plt.subplots(1, 3 if scaling else 2, figsize=(19.5 if scaling else 13, 5))
    ax1, ax2 = axes[:2]
    N = max(sizes)
    # one colour per variant in every panel; the eight variants of the line panels get C0-C7
    lines = [name(c) for c in CONFIGS if c.get("scheme") != "exponential" and c.get("objective") != "minmax"]
    others = [name(c) for c in CONFIGS if name(c) not in lines]
    color = {**{v: f"C{i}" for i, v in enumerate(lines)}, **dict(zip(others, ["C8", "C9", "k", "0.55", "olive"]))}
    for var, rs in studies._group([r for r in rows if r["n_neurons"] == N], ("bits", "scheme", "objective")).items():
        if var[2] == "minmax" or var[1] == "exponential":
            continue
        by = studies._group(rs, ("load",))
        xs = sorted(k[0] for k in by)
        v = name(dict(bits=var[0], scheme=var[1], objective=var[2]))
        line, = ax1.plot(xs, [np.mean([r["retrieved"] for r in by[(x,)]]) for x in xs], marker="o", ms=3, label=v,
                         color=color[v])
        rho = np.mean([r["rho"] for r in rs])
        ax1.axvline(theory.critical_load(rho), color=line.get_color(), ls=":", lw=1)
    ax1.set(xlabel="load alpha = P/N", ylabel="fraction retrieved from itself (overlap >= 0.97)",
            title=f"N = {N}; dotted: theory critical_load(rho) per variant")
    ax1.legend(fontsize=7)
    r = np.linspace(0.5, 1.0, 200)
    ax2.plot(r, [theory.load_at_overlap(0.97, x) for x in r], "k-", lw=1,
             label="theory: load_at_overlap(0.97, rho)")
    ax2.plot(r, [theory.critical_load(x) for x in r], "k--", lw=0.8, label="theory: critical_load(rho)")
    for e in ext:
        mark = "s" if e["objective"] == "minmax" else ("*" if e["bits"] == "float" else "o")
        ax2.errorbar(e["rho"], e["alpha_inf_sqrt"], yerr=e["alpha_inf_sqrt_err"], fmt=mark, ms=6, capsize=2,
                     label=name(e), color=color[name(e)])
    ax2.set(xlabel="rho (weights vs quantized weights)", ylabel="alpha_c extrapolated to N -> infinity (1/sqrt(N) fit)",
            title="Same rho, same capacity, whatever the quantizer")
    ax2.legend(fontsize=6, ncol=2)
    if scaling:
        ax3 = axes[2]
        x = np.linspace(0, min(sizes) ** -0.5, 200)
        laws = {key(e): e for e in studies.extrapolate(crit, "1/sqrt(N)")}
        measured = by_variant(crit)
        for e in ext:
            if e["objective"] == "minmax" or e["scheme"] == "exponential":
                continue
            rs, q, c = measured.get(key(e), []), laws[key(e)], color[name(e)]
            ax3.errorbar([r["n_neurons"] ** -0.5 for r in rs], [r["alpha_c"] for r in rs],
                         yerr=[r["alpha_c_err"] for r in rs], fmt="o", ms=4, capsize=2, label=name(e), color=c)
            ax3.plot(x, q["alpha_inf"] + q["slope"] * x, "-", color=c, lw=0.8)
            ax3.plot(x, e["alpha_inf"] + e["slope"] * x ** 2, "--", color=c, lw=0.8)
            ax3.plot([0], [theory.load_at_overlap(0.97, e["rho"])], marker="_", ms=14, color=c)
        ax3.set(xlabel="N^-1/2", ylabel="alpha_c(N)", xlim=(-0.001, None),
                title="solid: 1/sqrt(N) fit; dashed: 1/N fit; bars at 0: theory at overlap 0.97")
        ax3.legend(fontsize=7)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
