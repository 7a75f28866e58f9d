"""Learning rules beyond Hebb, and what quantization and dilution do to them.

    python -m hopfield beyond-hebb [--parts capacity recall sparse dilution] [--quick] --out DIR
    python bench/beyond_hebb_study.py [...]   (the same study, results in bench/results/)

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

:func:`run` writes the CSV files and plots into its output folder (atomically) and
returns the summary lines (also written to summary.txt there).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from quantization import quantize
from quantization._io import atomic_write, save_figure
from quantization._io import write_csv as _write_csv_atomic

from . import theory
from .learning import (
    ConvergenceWarning,
    covariance_weights,
    dilute,
    gardner_capacity,
    perceptron_convergence,
    perceptron_weights,
    sparse_overlaps,
    sparse_patterns,
    stabilities,
    threshold_recall,
    tsodyks_feigelman_capacity,
)
from .measures import target_overlaps
from .network import HopfieldNetwork
from .patterns import flip_noise, random_patterns

__all__ = ["PARTS", "SIZES", "configs", "run"]

PARTS = ("capacity", "recall", "sparse", "dilution")
SIZES = ("full", "quick", "tiny")

RETRIEVED = 0.95  # recall study: retrieved when the final overlap is >= this
CAPACITY_OVERLAP = 0.97  # dilution capacity (as bench/theory_vs_simulation.py)
SPARSE_OVERLAP = 0.9  # sparse capacity: retrieved when the sparse overlap is >= this


# ------------------------------------------------------------------------ helpers


def write_csv(rows: list[dict], path: Path) -> None:
    """Tidy rows as CSV, atomically; nothing for no rows."""
    if rows:
        _write_csv_atomic(rows, path)


def crossing(loads, frac, n_per_point, level=0.5):
    """(load where frac first falls through level, error): linear interpolation between
    the neighbouring loads; the error is the binomial error of the fraction at the crossing
    divided by the slope (nan when there is no crossing in the grid)."""
    loads, frac = np.asarray(loads, float), np.asarray(frac, float)
    if len(loads) == 0 or frac[0] < level:
        return float("nan"), float("nan")
    for i in range(1, len(loads)):
        if frac[i] < level:
            f0, f1 = frac[i - 1], frac[i]
            x = loads[i - 1] + (f0 - level) / (f0 - f1) * (loads[i] - loads[i - 1])
            slope = (f0 - f1) / (loads[i] - loads[i - 1])
            err = math.sqrt(level * (1 - level) / max(n_per_point, 1)) / slope if slope > 0 else float("nan")
            return float(x), float(min(err, loads[i] - loads[i - 1]))
    return float("nan"), float("nan")


def cover_separable(P: int, n: int) -> float:
    """Cover (1965): the probability that P random labels of P points in general
    position in n dimensions are linearly separable (through the origin):
    2^(1-P) sum_{k<n} C(P-1, k)."""
    if P <= n:
        return 1.0
    logs = [math.lgamma(P) - math.lgamma(k + 1) - math.lgamma(P - k) for k in range(n)]
    m = max(logs)
    return min(1.0, math.exp(m + math.log(sum(math.exp(v - m) for v in logs)) + (1 - P) * math.log(2)))


@contextmanager
def quiet():
    """Non-symmetric weights and per-row codebooks warn; the study knows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


# ------------------------------------------------------------- 1. capacity vs kappa


def capacity_part(cfg, out: Path, rng_seed: int, log) -> None:
    # resumable: every finished (N, kappa, P, trial) task is appended to capacity_cache.jsonl
    # (its per-row convergence epochs, -1 where the row did not converge) and not run again
    cache_file = out / "capacity_cache.jsonl"
    cache = {}
    if cache_file.exists():
        for line in cache_file.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                cache[d["key"]] = d["epochs"]
    rows = []
    t0 = time.perf_counter()
    for N in cfg["sizes"]:
        for kappa in cfg["kappas"]:
            ag = gardner_capacity(kappa)
            for r in cfg["ratios"][N]:
                P = max(2, int(round(r * ag * N)))
                for trial in range(cfg["trials"][N]):
                    n_rows = min(N, cfg["rows"][N])
                    key = f"N{N}-k{kappa:g}-P{P}-t{trial}-r{n_rows}-E{cfg['max_epochs']}-s{rng_seed}"
                    if key not in cache:
                        ss = np.random.SeedSequence([rng_seed, N, int(kappa * 1000), P, trial])
                        ps, ts, rs = (np.random.default_rng(s) for s in ss.spawn(3))
                        X = random_patterns(P, N, seed=ps)
                        sel = np.arange(N) if n_rows >= N else np.sort(rs.choice(N, n_rows, replace=False))
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", ConvergenceWarning)
                            conv, epochs, _ = perceptron_convergence(X, kappa, rows=sel,
                                                                     max_epochs=cfg["max_epochs"], seed=ts)
                        cache[key] = " ".join(str(int(e) if c else -1) for c, e in zip(conv, epochs))
                        with open(cache_file, "a") as f:
                            f.write(json.dumps({"key": key, "epochs": cache[key]}) + "\n")
                    rows.append(dict(n_neurons=N, kappa=kappa, load=P / N, n_patterns=P, trial=trial,
                                     rows_tested=n_rows, all_rows=bool(n_rows == N), max_epochs=cfg["max_epochs"],
                                     seed=rng_seed, epochs=cache[key]))
            log(f"  capacity N={N} kappa={kappa}: {time.perf_counter() - t0:.0f} s")
    # tidy per (N, kappa, load, trial) rows with the epoch list; derive curves per epoch limit
    write_csv(rows, out / "capacity_runs.csv")
    limits = sorted({cfg["max_epochs"]} | {e for e in cfg["epoch_limits"] if e <= cfg["max_epochs"]})
    curves, table = [], []
    for N in cfg["sizes"]:
        for kappa in cfg["kappas"]:
            rs = [r for r in rows if r["n_neurons"] == N and r["kappa"] == kappa]
            loads = sorted({r["load"] for r in rs})
            for E in limits:
                row_frac, net_frac, n_rows_pt, n_net_pt = [], [], [], []
                for L in loads:
                    conv_all, nets = [], []
                    for r in (x for x in rs if x["load"] == L):
                        ep = np.array([int(v) for v in r["epochs"].split()])
                        ok = (ep > 0) & (ep <= E)
                        conv_all.append(ok)
                        if r["all_rows"]:
                            nets.append(bool(ok.all()))
                    c = np.concatenate(conv_all)
                    row_frac.append(float(c.mean()))
                    n_rows_pt.append(c.size)
                    net_frac.append(float(np.mean(nets)) if nets else float("nan"))
                    n_net_pt.append(len(nets))
                    curves.append(dict(n_neurons=N, kappa=kappa, max_epochs=E, load=L, gardner=gardner_capacity(kappa),
                                       row_fraction=row_frac[-1], rows=c.size, network_fraction=net_frac[-1],
                                       networks=len(nets),
                                       cover_row=cover_separable(int(round(L * N)), N - 1) if kappa == 0 else ""))
                a_row, e_row = crossing(loads, row_frac, int(np.mean(n_rows_pt)))
                a_net, e_net = (crossing(loads, net_frac, int(np.mean(n_net_pt))) if all(np.isfinite(net_frac))
                                else (float("nan"), float("nan")))
                entry = dict(n_neurons=N, kappa=kappa, max_epochs=E, gardner=gardner_capacity(kappa),
                             alpha_c_row=a_row, alpha_c_row_err=e_row, alpha_c_network=a_net,
                             alpha_c_network_err=e_net)
                if kappa == 0:  # Cover's count: per-row and (independent rows) network 50% points
                    Ps = np.arange(N, 3 * N)
                    p = np.array([cover_separable(int(q), N - 1) for q in Ps])
                    entry["cover_row"] = float(Ps[np.argmax(p < 0.5)] / N)
                    entry["cover_network"] = float(Ps[np.argmax(p ** N < 0.5)] / N)
                else:
                    entry["cover_row"] = entry["cover_network"] = ""
                table.append(entry)
    write_csv(curves, out / "capacity_curves.csv")
    write_csv(table, out / "capacity.csv")
    log("\n1. Perceptron capacity versus kappa (alpha_c: 50% point; per row = Gardner's quantity; network = all "
        "rows converged)")
    log(f"{'N':>5} {'kappa':>6} {'epochs':>7} {'Gardner':>8} {'row a_c':>15} {'row/Gardner':>11} "
        f"{'network a_c':>15} {'Cover row':>9} {'Cover net':>9}")
    for t in table:
        log(f"{t['n_neurons']:>5} {t['kappa']:>6.2f} {t['max_epochs']:>7} {t['gardner']:>8.3f} "
            f"{t['alpha_c_row']:>8.3f} +-{t['alpha_c_row_err']:<5.3f} {t['alpha_c_row'] / t['gardner']:>11.3f} "
            f"{t['alpha_c_network']:>8.3f} +-{t['alpha_c_network_err']:<5.3f} {t['cover_row']!s:>9.6} "
            f"{t['cover_network']!s:>9.6}")
    plot_capacity(table, curves, cfg, out / "capacity.png")


def plot_capacity(table, curves, cfg, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ks = np.linspace(0, max(cfg["kappas"]) * 1.1 + 0.05, 200)
    ax = axes[0]
    ax.plot(ks, gardner_capacity(ks), "k-", label="Gardner alpha_c(kappa)")
    E = cfg["max_epochs"]
    for N, mk in zip(cfg["sizes"], "os^"):
        t = [r for r in table if r["n_neurons"] == N and r["max_epochs"] == E]
        ax.errorbar([r["kappa"] for r in t], [r["alpha_c_row"] for r in t], [r["alpha_c_row_err"] for r in t],
                    fmt=mk, ms=5, capsize=2, label=f"N={N}, per neuron")
        if any(np.isfinite(r["alpha_c_network"]) for r in t):
            ax.errorbar([r["kappa"] + 0.01 for r in t], [r["alpha_c_network"] for r in t],
                        [r["alpha_c_network_err"] for r in t], fmt=mk, mfc="none", ms=5, capsize=2,
                        label=f"N={N}, whole network")
    ax.set(xlabel="margin kappa", ylabel="critical load alpha_c = P/N",
           title=f"perceptron capacity ({E} epochs max)")
    ax.legend(fontsize=8)
    ax = axes[1]
    N = max(cfg["sizes"])
    for kappa in cfg["kappas"]:
        c = [r for r in curves if r["n_neurons"] == N and r["kappa"] == kappa and r["max_epochs"] == E]
        ax.plot([r["load"] / r["gardner"] for r in c], [r["row_fraction"] for r in c], "o-", ms=3,
                label=f"kappa={kappa}")
    c0 = [r for r in curves if r["n_neurons"] == N and r["kappa"] == 0 and r["max_epochs"] == E]
    if c0:
        ax.plot([r["load"] / 2 for r in c0], [r["cover_row"] for r in c0], "k:", label="Cover, kappa=0")
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.axvline(1.0, color="grey", lw=0.5)
    ax.set(xlabel="alpha / alpha_Gardner(kappa)", ylabel="fraction of neurons converged",
           title=f"N={N}, {E} epochs max")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------- 2. recall vs bits


def one_step_prediction(D_float: np.ndarray, rho: float) -> float:
    """mean Phi(-Delta / sqrt(D)) over the float stabilities, D = 1/rho^2 - 1."""
    if rho >= 1.0:
        return float(np.mean(D_float <= 0))
    Dn = 1.0 / (rho * rho) - 1.0
    z = -D_float / math.sqrt(Dn)
    return float(np.mean(0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))))


def recall_part(cfg, out: Path, rng_seed: int, log) -> None:
    N = cfg["recall_n"]
    rows = []
    t0 = time.perf_counter()
    for alpha, kappas in cfg["recall_loads"].items():
        P = int(round(alpha * N))
        for trial in range(cfg["recall_trials"]):
            ss = np.random.SeedSequence([rng_seed, 2, N, P, trial])
            ps, cs, ds, ts, qs = (np.random.default_rng(s) for s in ss.spawn(5))
            X = random_patterns(P, N, seed=ps)
            cues = flip_noise(X, cfg["recall_noise"], seed=cs)
            dyn_seed = int(ds.integers(1 << 62))
            rules = [("hebb", None)] + [("perceptron", k) for k in kappas]
            for rule, kappa in rules:
                if rule == "hebb":
                    W = HopfieldNetwork.from_patterns(X).weights
                    rep = None
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        W, rep = perceptron_weights(X, kappa=kappa, max_epochs=cfg["recall_epochs"], seed=ts)
                Dfl = stabilities(W, X)
                variants = [("float", None, None)]
                variants += [(f"{b}-bit per-row", b, 0) for b in cfg["bits"]]
                variants += [(f"{b}-bit whole", b, None) for b in cfg["bits"]]
                variants += [(f"dilute {f:.2f}", None, f) for f in cfg["recall_dilution"]]
                with quiet():
                    net = HopfieldNetwork(W)
                    for name, bits, arg in variants:
                        if name == "float":
                            qnet, rho, Wq = net, 1.0, W
                        elif name.startswith("dilute"):
                            Wq = dilute(W, arg, symmetric=False, seed=qs)
                            qnet = HopfieldNetwork(Wq)
                            off = ~np.eye(N, dtype=bool)
                            rho = float(np.corrcoef(W[off], Wq[off])[0, 1])
                        else:
                            qnet = net.quantize(bits, "uniform", "correlation", axis=arg)
                            rho, Wq = float(qnet.rho), qnet.dequantized_weights()
                        Dq = stabilities(Wq, X)
                        res = qnet.recall(cues, seed=dyn_seed, max_sweeps=cfg["max_sweeps"])
                        m = target_overlaps(res.states, X)
                        fixed = qnet.recall(X, dynamics="sync", max_sweeps=1).states
                        rows.append(dict(
                            n_neurons=N, load=alpha, n_patterns=P, trial=trial, rule=rule,
                            kappa="" if kappa is None else kappa,
                            converged="" if rep is None else rep.converged, weights=name, rho=rho,
                            min_stability_float=float(Dfl.min()), mean_stability_float=float(Dfl.mean()),
                            one_step_errors=float(np.mean(Dq <= 0)), one_step_predicted=one_step_prediction(Dfl, rho),
                            fixed_points=float(np.mean((fixed == X).all(axis=1))),
                            retrieved=float(np.mean(m >= RETRIEVED)), overlap=float(m.mean()),
                            recall_converged=float(np.mean(res.converged))))
            log(f"  recall alpha={alpha} trial {trial}: {time.perf_counter() - t0:.0f} s")
    write_csv(rows, out / "recall_vs_bits.csv")
    # summary: mean over trials
    keys = sorted({(r["load"], r["rule"], str(r["kappa"])) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    names = list(dict.fromkeys(r["weights"] for r in rows))
    log(f"\n2. Recall from cues with {cfg['recall_noise']:.0%} flipped bits, N={N} (retrieved: overlap >= "
        f"{RETRIEVED}); rho; one-step errors measured / predicted by the static-noise picture")
    for load, rule, kappa in keys:
        sub = [r for r in rows if r["load"] == load and r["rule"] == rule and str(r["kappa"]) == kappa]
        conv = [r["converged"] for r in sub if r["weights"] == "float"]
        lab = "hebb" if rule == "hebb" else f"perceptron kappa={kappa}" + ("" if all(conv) else " (NOT converged)")
        log(f"  alpha={load} {lab}: min stability {np.mean([r['min_stability_float'] for r in sub]):.3f}")
        for nm in names:
            s = [r for r in sub if r["weights"] == nm]
            if not s:
                continue
            mean = {k: float(np.mean([r[k] for r in s])) for k in ("rho", "retrieved", "overlap", "one_step_errors",
                                                                   "one_step_predicted", "fixed_points")}
            log(f"    {nm:<16} rho {mean['rho']:.4f}  retrieved {mean['retrieved']:.3f}  overlap "
                f"{mean['overlap']:.4f}  fixed pts {mean['fixed_points']:.3f}  one-step err "
                f"{mean['one_step_errors']:.2e} / pred {mean['one_step_predicted']:.2e}")
    plot_recall(rows, cfg, out / "recall_vs_bits.png")


def plot_recall(rows, cfg, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = list(cfg["recall_loads"])
    fig, axes = plt.subplots(2, len(loads), figsize=(5.5 * len(loads), 8), squeeze=False)
    for col, load in enumerate(loads):
        sub = [r for r in rows if r["load"] == load]
        for label in dict.fromkeys((r["rule"], str(r["kappa"])) for r in sub):
            s = [r for r in sub if (r["rule"], str(r["kappa"])) == label]
            name = "hebb" if label[0] == "hebb" else f"perceptron kappa={label[1]}"
            for ax, key in zip(axes[:, col], ("retrieved", "one_step_errors")):
                for style, axis in (("-o", "per-row"), (":s", "whole")):
                    pts = [(b, np.mean([r[key] for r in s if r["weights"] == f"{b}-bit {axis}"])) for b in cfg["bits"]]
                    pts.append((cfg["bits"][-1] + 1.5, np.mean([r[key] for r in s if r["weights"] == "float"])))
                    color = f"C{list(dict.fromkeys((r['rule'], str(r['kappa'])) for r in sub)).index(label)}"
                    ax.plot(*zip(*pts), style, ms=4, label=f"{name}, {axis}" if style == "-o" else None, color=color)
                    if key == "one_step_errors" and axis == "per-row":
                        pred = [(b, np.mean([r["one_step_predicted"] for r in s if r["weights"] == f"{b}-bit {axis}"]))
                                for b in cfg["bits"]]
                        ax.plot(*zip(*pred), "x", ms=7, color=color)
        axes[0, col].set(title=f"alpha={load}: retrieved (overlap >= {RETRIEVED})", xlabel="bits (float at right)",
                         ylabel="fraction retrieved")
        axes[1, col].set(title="one-step errors (stability <= 0); x: static-noise prediction",
                         xlabel="bits (float at right)", ylabel="fraction of (neuron, pattern) pairs")
        axes[1, col].set_yscale("symlog", linthresh=1e-5)
        axes[0, col].legend(fontsize=7)
    fig.suptitle("solid: per-row codebooks (axis=0); dotted: one codebook for W")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------- 3. sparse


def sparse_part(cfg, out: Path, rng_seed: int, log) -> None:
    N = cfg["sparse_n"]
    rows = []
    t0 = time.perf_counter()
    for a in cfg["coding_levels"]:
        for ratio in cfg["sparse_ratios"][a]:
            P = int(round(ratio * N))
            for trial in range(cfg["sparse_trials"]):
                ss = np.random.SeedSequence([rng_seed, 3, N, int(a * 1e4), P, trial])
                ps, cs, ds, qs = (np.random.default_rng(s) for s in ss.spawn(4))
                V = sparse_patterns(P, N, a, seed=ps)
                W = covariance_weights(V, a)
                idx = np.sort(cs.choice(P, min(P, cfg["sparse_cues"]), replace=False))
                targets = V[idx]
                cues = targets.copy()
                for c in range(len(cues)):  # erase 10% of the active units
                    on = np.flatnonzero(cues[c])
                    cues[c, cs.choice(on, int(round(0.1 * on.size)), replace=False)] = 0
                dyn_seed = int(ds.integers(1 << 62))
                variants = [("float", None, None, False)]
                for b in cfg["sparse_bits"]:
                    variants += [(f"{b}-bit whole", b, None, False), (f"{b}-bit per-row", b, 0, False),
                                 (f"{b}-bit whole+theta_i", b, None, True)]
                off = ~np.eye(N, dtype=bool)
                for name, bits, axis, correct in variants:
                    shift = 0.0
                    if bits is None:
                        Wq, rho = W, 1.0
                    else:
                        # unbiased gain keeps the signal (<W, Q> = <W, W>) and preserve_mean the mean (of W, or
                        # of each row with axis=0), so the threshold keeps its meaning.  What is left with one
                        # codebook is the error of each row's sum, which shifts neuron i's field by about
                        # a * sum_j (Q_ij - W_ij): "+theta_i" moves neuron i's threshold by that much.
                        qt = quantize(W, bits, "uniform", "correlation", axis=axis, preserve_mean=True)
                        Wq = qt.dequantize()
                        np.fill_diagonal(Wq, 0.0)
                        rho = float(np.corrcoef(W[off], Wq[off])[0, 1])
                        if correct:
                            shift = a * (Wq.astype(np.float64) - W).sum(axis=1)
                    best = None
                    for theta in cfg["thetas"]:
                        res = threshold_recall(Wq, cues, theta + shift, max_sweeps=cfg["max_sweeps"], seed=dyn_seed)
                        m = sparse_overlaps(res.states, targets, a)
                        frac = float(np.mean(m >= SPARSE_OVERLAP))
                        if best is None or frac > best[1]:
                            best = (theta, frac, float(m.mean()))
                    rows.append(dict(n_neurons=N, coding_level=a, load=P / N, n_patterns=P, trial=trial, weights=name,
                                     rho=rho, theta=best[0], retrieved=best[1], overlap=best[2]))
        log(f"  sparse a={a}: {time.perf_counter() - t0:.0f} s")
    write_csv(rows, out / "sparse.csv")
    table = []
    for a in cfg["coding_levels"]:
        for name in dict.fromkeys(r["weights"] for r in rows):
            s = [r for r in rows if r["coding_level"] == a and r["weights"] == name]
            loads = sorted({r["load"] for r in s})
            frac = [np.mean([r["retrieved"] for r in s if r["load"] == L]) for L in loads]
            ac, err = crossing(loads, frac, cfg["sparse_cues"] * cfg["sparse_trials"])
            table.append(dict(n_neurons=N, coding_level=a, weights=name, rho=float(np.mean([r["rho"] for r in s])),
                              alpha_c=ac, alpha_c_err=err, tsodyks_feigelman=tsodyks_feigelman_capacity(a)))
    for t in table:
        fl = next(x for x in table if x["coding_level"] == t["coding_level"] and x["weights"] == "float")
        t["static_noise_estimate"] = fl["alpha_c"] * t["rho"] ** 2
    write_csv(table, out / "sparse_capacity.csv")
    log(f"\n3. Sparse patterns, covariance rule, N={N}: capacity (50% retrieved with overlap >= {SPARSE_OVERLAP}, "
        "threshold optimised)")
    log(f"{'a':>6} {'weights':>20} {'rho':>7} {'alpha_c':>15} {'rho^2 alpha_c(float)':>21} {'1/(2a|ln a|)':>13}")
    for t in table:
        log(f"{t['coding_level']:>6} {t['weights']:>20} {t['rho']:>7.4f} {t['alpha_c']:>8.3f} +-{t['alpha_c_err']:<5.3f} "
            f"{t['static_noise_estimate']:>21.3f} {t['tsodyks_feigelman']:>13.3f}")
    plot_sparse(table, path=out / "sparse.png")


def plot_sparse(table, path):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    levels = sorted({t["coding_level"] for t in table})
    aa = np.geomspace(levels[0] * 0.8, min(0.25, levels[-1] * 1.25), 100)
    ax.plot(aa, [tsodyks_feigelman_capacity(a) for a in aa], "k-", label="1/(2a|ln a|) (a -> 0)")
    names = list(dict.fromkeys(t["weights"] for t in table))
    for i, name in enumerate(n for n in names if n == "float" or n.endswith("per-row")):
        s = [t for t in table if t["weights"] == name]
        ax.errorbar([t["coding_level"] for t in s], [t["alpha_c"] for t in s], [t["alpha_c_err"] for t in s],
                    fmt="o-", ms=4, capsize=2, label=name, color=f"C{i}")
    ax.set(xscale="log", yscale="log", xlabel="coding level a", ylabel="alpha_c",
           title=f"sparse patterns, covariance rule, N={table[0]['n_neurons']}")
    ax.legend(fontsize=8)
    ax = axes[1]
    styles = {"whole": "s:", "per-row": "o-", "whole+theta_i": "^--"}
    for name in names:
        if name == "float":
            continue
        bits, kind = name.split("-bit ")
        s = [t for t in table if t["weights"] == name]
        ratio = [t["alpha_c"] / next(x["alpha_c"] for x in table if x["weights"] == "float"
                                     and x["coding_level"] == t["coding_level"]) for t in s]
        color = f"C{int(bits)}"
        ax.plot([t["coding_level"] for t in s], ratio, styles[kind], ms=4, color=color, label=name)
        if kind == "per-row":
            ax.plot([t["coding_level"] for t in s], [t["rho"] ** 2 for t in s], "x", ms=7, color=color)
    ax.set(xscale="log", xlabel="coding level a", ylabel="alpha_c / alpha_c(float)",
           title="quantized / float (x: rho^2, the static-noise estimate)")
    ax.legend(fontsize=7, ncol=3)
    for a_ in axes:
        a_.set_xticks(levels, [f"{v:g}" for v in levels])
        a_.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------- 4. dilution


def dilution_part(cfg, out: Path, rng_seed: int, log) -> None:
    N = cfg["dil_n"]
    rows = []
    t0 = time.perf_counter()
    variants = [("float", None, None)]
    variants += [(f"dilute {f:.2f} sym", f, True) for f in cfg["dilutions"]]
    variants += [(f"dilute {f:.2f} asym", f, False) for f in cfg["dilutions"]]
    variants += [(f"{b}-bit", b, "q") for b in cfg["dil_bits"]]
    off = ~np.eye(N, dtype=bool)
    for alpha in cfg["dil_loads"]:
        P = int(round(alpha * N))
        for trial in range(cfg["dil_trials"]):
            ss = np.random.SeedSequence([rng_seed, 4, N, P, trial])
            ps, ds, ms = (np.random.default_rng(s) for s in ss.spawn(3))
            X = random_patterns(P, N, seed=ps)
            net = HopfieldNetwork.from_patterns(X)
            W = net.weights
            dyn_seed = int(ds.integers(1 << 62))
            with quiet():
                for name, f, kind in variants:
                    if kind is None:
                        qnet, rho = net, 1.0
                    elif kind == "q":
                        qnet = net.quantize(f, "uniform", "correlation")
                        rho = float(qnet.rho)
                    else:
                        Wd = dilute(W, f, symmetric=kind, seed=ms)
                        qnet = HopfieldNetwork(Wd)
                        rho = float(np.corrcoef(W[off], Wd[off])[0, 1])
                    res = qnet.recall(X, seed=dyn_seed, max_sweeps=cfg["max_sweeps"])
                    m = target_overlaps(res.states, X)
                    rows.append(dict(n_neurons=N, load=alpha, n_patterns=P, trial=trial, weights=name, rho=rho,
                                     retrieved=float(np.mean(m >= CAPACITY_OVERLAP)), overlap=float(m.mean()),
                                     recall_converged=float(np.mean(res.converged))))
        log(f"  dilution alpha={alpha}: {time.perf_counter() - t0:.0f} s")
    write_csv(rows, out / "dilution.csv")
    table = []
    loads = sorted(cfg["dil_loads"])
    for name, _, _ in variants:
        s = [r for r in rows if r["weights"] == name]
        frac = [np.mean([r["retrieved"] for r in s if r["load"] == L]) for L in loads]
        n_pt = int(np.mean([r["n_patterns"] for r in s])) * cfg["dil_trials"]
        ac, err = crossing(loads, frac, n_pt)
        rho = float(np.mean([r["rho"] for r in s]))
        table.append(dict(n_neurons=N, weights=name, rho=rho, alpha_c=ac, alpha_c_err=err,
                          theory_alpha_c=theory.critical_load(rho),
                          theory_at_overlap=theory.load_at_overlap(CAPACITY_OVERLAP, rho)))
    write_csv(table, out / "dilution_capacity.csv")
    fl = next(t for t in table if t["weights"] == "float")
    log(f"\n4. Dilution beside quantization, Hebbian N={N}: critical load (50% of stored patterns retrieved with "
        f"overlap >= {CAPACITY_OVERLAP})")
    log(f"{'weights':<18} {'rho':>7} {'alpha_c':>15} {'ratio to float':>14} {'theory(rho)':>11} "
        f"{'ratio':>7} {'theory m>=0.97':>14}")
    for t in table:
        log(f"{t['weights']:<18} {t['rho']:>7.4f} {t['alpha_c']:>8.4f} +-{t['alpha_c_err']:<5.4f} "
            f"{t['alpha_c'] / fl['alpha_c']:>14.3f} {t['theory_alpha_c']:>11.4f} "
            f"{t['theory_alpha_c'] / theory.critical_load(1.0):>7.3f} {t['theory_at_overlap']:>14.4f}")
    plot_dilution(table, path=out / "dilution.png")


def plot_dilution(table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    rr = np.linspace(0.3, 1.0, 60)
    fl = next(t for t in table if t["weights"] == "float")
    scale = fl["alpha_c"] / theory.critical_load(1.0)
    ax.plot(rr, [theory.critical_load(r) for r in rr], "k-", label="critical_load(rho) (static noise)")
    ax.plot(rr, [theory.critical_load(r) * scale for r in rr], "k:", label="same, scaled to the float N-point")
    for kind, mk, col in (("sym", "o", "C0"), ("asym", "s", "C1"), ("bit", "^", "C2")):
        s = [t for t in table if kind in t["weights"]]
        ax.errorbar([t["rho"] for t in s], [t["alpha_c"] for t in s], [t["alpha_c_err"] for t in s], fmt=mk, color=col,
                    capsize=2, label={"sym": "symmetric dilution", "asym": "asymmetric dilution",
                                      "bit": "quantized (uniform)"}[kind])
    ax.plot([1.0], [fl["alpha_c"]], "k*", ms=9, label="float")
    ax.set(xlabel="rho = corr(W, W')", ylabel="alpha_c", title=f"Hebb, N={fl['n_neurons']}: dilution vs quantization")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------- main


def configs(size: str = "full") -> dict:
    """The study's sizes: "full" (bench/results/beyond_hebb), "quick" (a smoke run of every
    part, about a minute) or "tiny" (seconds; for tests)."""
    if size not in SIZES:
        raise ValueError(f"size={size!r} is not supported; choose one of {', '.join(map(repr, SIZES))}.")
    if size == "tiny":
        return dict(
            sizes=[40], kappas=[0.0, 0.5], ratios={40: [0.6, 0.8, 1.0, 1.2]}, trials={40: 1}, rows={40: 40},
            max_epochs=300, epoch_limits=[100],
            recall_n=60, recall_loads={0.1: [0.0, 1.0]}, recall_trials=1, recall_noise=0.1,
            recall_epochs=300, bits=[1, 2], recall_dilution=[0.5], max_sweeps=20,
            sparse_n=100, coding_levels=[0.1], sparse_ratios={0.1: [0.2, 0.5, 0.8]},
            sparse_trials=1, sparse_cues=10, sparse_bits=[2], thetas=[0.5, 0.7],
            dil_n=100, dilutions=[0.5], dil_bits=[1], dil_loads=[0.04, 0.1, 0.2], dil_trials=1)
    if size == "quick":
        return dict(
            sizes=[100], kappas=[0.0, 0.5], ratios={100: [0.7, 0.8, 0.9, 1.0, 1.1]}, trials={100: 2}, rows={100: 100},
            max_epochs=2000, epoch_limits=[200, 500],
            recall_n=200, recall_loads={0.1: [0.0, 1.0], 0.25: [0.0, 1.0]}, recall_trials=1, recall_noise=0.1,
            recall_epochs=2000, bits=[1, 2, 3], recall_dilution=[0.5], max_sweeps=100,
            sparse_n=400, coding_levels=[0.1, 0.05], sparse_ratios={0.1: [0.2, 0.4, 0.6, 0.8, 1.0],
                                                                   0.05: [0.3, 0.6, 0.9, 1.2, 1.5]},
            sparse_trials=1, sparse_cues=60, sparse_bits=[2], thetas=[0.4, 0.5, 0.6, 0.7, 0.8],
            dil_n=300, dilutions=[0.5], dil_bits=[1], dil_loads=[0.04, 0.08, 0.12, 0.16, 0.2], dil_trials=1)
    return dict(
        sizes=[200, 500], kappas=[0.0, 0.25, 0.5, 0.75, 1.0],
        ratios={200: [0.7, 0.75, 0.8, 0.85, 0.875, 0.9, 0.925, 0.95, 1.0, 1.05],
                500: [0.9, 0.925, 0.95, 0.975, 1.0, 1.05]},
        trials={200: 3, 500: 2}, rows={200: 200, 500: 30}, max_epochs=20000, epoch_limits=[1000, 5000],
        recall_n=500, recall_loads={0.1: [0.0, 0.5, 1.0, 2.0], 0.25: [0.0, 0.5, 1.0, 1.5]}, recall_trials=2,
        recall_noise=0.1, recall_epochs=20000, bits=[1, 2, 3, 4, 5], recall_dilution=[0.12, 0.36, 0.6],
        max_sweeps=100,
        sparse_n=2000, coding_levels=[0.2, 0.1, 0.05, 0.02],
        sparse_ratios={0.2: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.1: [0.2, 0.35, 0.5, 0.65, 0.8, 0.95],
                       0.05: [0.3, 0.5, 0.75, 1.0, 1.25, 1.5], 0.02: [0.4, 0.8, 1.2, 1.6, 2.0, 2.4]},
        sparse_trials=2, sparse_cues=150, sparse_bits=[1, 2, 3], thetas=[0.3, 0.375, 0.45, 0.525, 0.6, 0.675, 0.75,
                                                                         0.825, 0.9],
        dil_n=1000, dilutions=[0.25, 0.5, 0.75], dil_bits=[1, 2, 3],
        dil_loads=[0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2], dil_trials=2)


def run(out: str | Path, parts=PARTS, size: str = "full", seed: int = 0, header: str | None = None,
        log: Callable[[str], None] | None = None) -> list[str]:
    """Run the chosen parts of the study and write their CSVs, plots and summary into ``out``.

    Parameters
    ----------
    out : path
        Output folder (created).  The capacity part keeps its finished tasks in
        ``capacity_cache.jsonl`` there and skips them when run again.
    parts : sequence of {"capacity", "recall", "sparse", "dilution"}
    size : {"full", "quick", "tiny"}, default "full"
        See :func:`configs`.
    seed : int, default 0
    header : str or None
        A first summary line (e.g. the machine's description).
    log : callable or None
        Called with every summary line as it is produced (e.g. ``print``).

    Returns
    -------
    list of str
        The summary lines, also written to ``summary.txt`` (all four parts) or
        ``summary_<parts>.txt``.

    Raises
    ------
    ValueError
        An unknown part or size.
    """
    parts = list(dict.fromkeys(parts))
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts={parts!r}: choose one or more of {', '.join(map(repr, PARTS))}.")
    cfg = configs(size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def _log(msg=""):
        lines.append(msg)
        if log is not None:
            log(msg)

    if header:
        _log(header)
    t0 = time.perf_counter()
    funcs = {"capacity": capacity_part, "recall": recall_part, "sparse": sparse_part, "dilution": dilution_part}
    for p in parts:
        funcs[p](cfg, out, seed, _log)
    _log(f"\ntotal {time.perf_counter() - t0:.0f} s")
    name = "summary.txt" if len(parts) == len(PARTS) else f"summary_{'_'.join(parts)}.txt"
    atomic_write(out / name, "\n".join(lines) + "\n")
    return lines
