"""Studies of recall quality versus weight bits: tidy rows (one dict per measurement).

Every study builds float Hebbian networks, quantizes their weights through
:mod:`quantization` with each requested (bits, scheme, objective), recalls every stored
pattern from the same cues for all weight variants (a paired comparison), and reports
one row per (load, trial, weights[, noise]) with the correlation ``rho`` of the weights,
the fraction of patterns ``retrieved`` (final overlap >= threshold) and the mean final
overlap.  Each (N, load, trial) draws its patterns, cues and update orders from its own
seed derived from the study seed, so results do not depend on execution order.

Theory lines
------------
``AGS_CRITICAL_LOAD`` = 0.138: Amit, Gutfreund & Sompolinsky, "Storing infinite numbers
of patterns in a spin-glass model of neural networks", PRL 55, 1530 (1985); Ann. Phys.
173, 30 (1987).  ``CLIPPED_CRITICAL_LOAD`` = 0.102: sign-clipped Hebbian synapses act as
static synaptic noise; Sompolinsky, "Neural networks with nonlinear synapses and a
static noise", Phys. Rev. A 34, 2571 (1986).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from quantization import atomic_write

from ._validate import check_device, check_fraction, check_positive_int
from .measures import target_overlaps
from .network import HopfieldNetwork
from .patterns import flip_noise, random_patterns

__all__ = [
    "AGS_CRITICAL_LOAD",
    "CLIPPED_CRITICAL_LOAD",
    "weight_configs",
    "capacity",
    "basins",
    "recall_vs_bits",
    "basin_radii",
    "critical_loads",
    "run_tasks",
    "run_task",
    "extrapolate",
    "plot_capacity",
    "plot_basins",
    "plot_recall_vs_bits",
]

AGS_CRITICAL_LOAD = 0.138
CLIPPED_CRITICAL_LOAD = 0.102


def weight_configs(bits: Iterable[int | None], schemes: Sequence[str] = ("uniform",),
                   objectives: Sequence[str] = ("correlation",)) -> list[dict]:
    """The weight variants of a study: float (``bits=None``) once, then every
    (bits, scheme, objective) combination."""
    out = []
    for b in bits:
        if b is None:
            out.append(dict(bits="float", scheme="none", objective="none"))
        else:
            out += [dict(bits=int(b), scheme=s, objective=o) for s in schemes for o in objectives]
    if not out:
        raise ValueError("bits is empty; give at least one bit width or None for float weights.")
    return out


def _task_seed(seed: int, *keys: float) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed)] + [int(round(k * 1_000_000)) for k in keys])


def _measure(net: HopfieldNetwork, X: np.ndarray, configs: list[dict], noise: float, ss: np.random.SeedSequence,
             threshold: float, dynamics: str, max_sweeps: int, base: dict, device: str = "cpu") -> list[dict]:
    cue_seed, dyn_seed = ss.spawn(2)
    cues = flip_noise(X, noise, seed=np.random.default_rng(cue_seed))
    rows = []
    cache: dict = {}
    for cfg in configs:
        t0 = time.perf_counter()
        if cfg["bits"] == "float":
            qnet, rho = net, 1.0
        else:
            key = (cfg["bits"], cfg["scheme"], cfg["objective"])
            if key not in cache:
                cache[key] = net.quantize(cfg["bits"], cfg["scheme"], cfg["objective"], device=device)
            qnet = cache[key]
            rho = qnet.rho
        res = qnet.recall(cues, dynamics=dynamics, max_sweeps=max_sweeps, device=device,
                          seed=np.random.default_rng(dyn_seed.generate_state(1)[0]))
        m = target_overlaps(res.states, X)
        rows.append({**base, **cfg, "noise": noise, "rho": rho, "retrieved": float(np.mean(m >= threshold)),
                     "overlap": float(m.mean()), "converged": float(np.mean(res.converged)),
                     "sweeps": float(np.mean(res.sweeps)), "seconds": time.perf_counter() - t0})
    return rows


def run_task(spec: dict) -> list[dict]:
    """One independent task of a study: build the network for (N, load, trial), measure
    every weight variant and noise level.  Module level and pure, so that processes and
    Dask workers can run it; its seeds derive from the study seed and (N, load, trial)."""
    N, a, t, seed = spec["n_neurons"], spec["load"], spec["trial"], spec["seed"]
    P = max(1, int(round(a * N)))
    ss = _task_seed(seed, N, a, t)
    pat_seed, *noise_seeds = ss.spawn(1 + len(spec["noise_levels"]))
    X = random_patterns(P, N, seed=np.random.default_rng(pat_seed))
    device = spec.get("device", "cpu")
    net = HopfieldNetwork.from_patterns(X, spec["rule"], device=device if spec["rule"] == "hebb" else "cpu")
    base = dict(n_neurons=N, load=a, n_patterns=P, rule=spec["rule"], dynamics=spec["dynamics"], trial=t)
    rows = []
    for f, nss in zip(spec["noise_levels"], noise_seeds):
        rows += _measure(net, X, spec["configs"], f, nss, spec["threshold"], spec["dynamics"], spec["max_sweeps"],
                         base, device)
    return rows


def _task_file(cache_dir, spec: dict) -> Path:
    # the device is not part of the key: the CUDA kernels give the CPU's results bit for bit
    # (Glauber dynamics up to the last bit of exp, see hopfield/_cuda.py)
    same = {k: v for k, v in spec.items() if k != "device"}
    key = hashlib.sha256(json.dumps(same, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{spec['study']}-N{spec['n_neurons']}-a{spec['load']:.6f}-t{spec['trial']}-{key}.json"


_PR_SET_PDEATHSIG = 1  # prctl option of <linux/prctl.h>: a signal for this process when its parent dies
_PARENT_POLL_SECONDS = 1.0  # how often a worker checks its parent where it cannot wait for it


def _worker_init(threads: int) -> None:  # pragma: no cover - runs in worker processes
    import numba

    _exit_with_parent()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _exit_with_parent() -> None:  # pragma: no cover - runs in worker processes
    """End this worker process as soon as the process that started it dies.

    A process pool's workers otherwise wait for work forever once their parent is
    killed (SIGKILL leaves it no chance to stop them), and with them the resource
    tracker.  On Linux the kernel sends SIGKILL on the parent's death
    (``prctl(PR_SET_PDEATHSIG)``), which works even while a numba kernel holds the GIL;
    everywhere a daemon thread also waits on the parent's sentinel (a pipe that closes
    when the parent dies) and falls back to polling the parent's pid.
    """
    import multiprocessing as mp
    import os
    import signal
    import sys
    import threading

    parent = mp.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the thread below still ends the worker
    if os.getppid() != parent_pid:  # the parent died before we could ask
        os._exit(1)

    def watch() -> None:
        if parent is not None and parent.sentinel is not None:
            from multiprocessing.connection import wait

            try:
                wait([parent.sentinel])  # readable (EOF) once the parent is gone
            except OSError:
                pass
            os._exit(1)
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_tasks(specs: list[dict], cache_dir=None, jobs: int = 1, scheduler: str | None = None,
              progress: bool = False, desc: str = "") -> list[dict]:
    """Run study tasks and return their rows in task order, whatever the backend.

    Backends: serial (``jobs=1``), ``jobs`` local processes, or a Dask distributed
    cluster (``scheduler="tcp://host:8786"``, needs the ``distributed`` extra).  With a
    ``cache_dir`` every finished task's rows are written there atomically, by this
    process, as soon as the task finishes; tasks whose file exists are read back and not
    run.  A sweep killed at any moment (SIGINT, SIGKILL) therefore loses only unfinished
    tasks, and rerunning it completes the rest: every task appears exactly once.  Local
    worker processes end within seconds when the process running the sweep dies, even
    by SIGKILL (see :func:`_exit_with_parent`).
    """
    jobs = check_positive_int(jobs, "jobs")
    results: dict[int, list[dict]] = {}
    pending = []
    for i, spec in enumerate(specs):
        f = _task_file(cache_dir, spec) if cache_dir is not None else None
        if f is not None and f.exists():
            try:
                results[i] = json.loads(f.read_text())
                continue
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass  # unreadable (should not happen with atomic writes): recompute
        pending.append(i)
    bar = tqdm(total=len(specs), initial=len(specs) - len(pending), desc=desc, disable=not progress)

    def done(i, rows):
        if cache_dir is not None:
            atomic_write(_task_file(cache_dir, specs[i]), json.dumps(rows))
        results[i] = rows
        bar.update(1)

    try:
        if scheduler is not None:
            try:
                from distributed import Client, as_completed
            except ImportError as exc:
                raise ImportError("a Dask scheduler needs the distributed extra: "
                                  "pip install 'hopfield-quant[distributed]'") from exc
            with Client(scheduler) as client:
                futures = {client.submit(run_task, specs[i], pure=False): i for i in pending}
                try:
                    for fut in as_completed(futures):
                        done(futures[fut], fut.result())
                except BaseException:
                    _harvest(futures, results, done, lambda f: f.status == "finished")
                    client.cancel(list(futures))
                    raise
        elif jobs > 1 and len(pending) > 1:
            import concurrent.futures as cf
            import multiprocessing as mp
            import os

            ctx = mp.get_context("spawn")  # numba's threading layers are not fork-safe
            threads = max(1, (os.cpu_count() or 1) // jobs)
            ex = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads,))
            futures = {ex.submit(run_task, specs[i]): i for i in pending}
            try:
                for fut in cf.as_completed(futures):
                    done(futures[fut], fut.result())
            except BaseException:
                # keep what finished, drop what did not start, and do not wait for the rest
                _harvest(futures, results, done,
                         lambda f: f.done() and not f.cancelled() and f.exception() is None)
                ex.shutdown(wait=False, cancel_futures=True)
                raise
            ex.shutdown(wait=True)
        else:
            for i in pending:
                done(i, run_task(specs[i]))
    finally:
        bar.close()
    return [r for i in range(len(specs)) for r in results[i]]


def _harvest(futures, results, done, finished) -> None:
    """Save every task that finished before an error or an interrupt."""
    for fut, i in futures.items():
        if i not in results and finished(fut):
            try:
                done(i, fut.result())
            except Exception:  # noqa: BLE001 - a failed task is simply not saved
                pass


def _study(n_neurons, loads, configs, noise_levels, trials, threshold, rule, dynamics, max_sweeps, seed, progress,
           desc, cache_dir=None, jobs=1, scheduler=None, device="cpu") -> list[dict]:
    N = check_positive_int(n_neurons, "n_neurons", 2)
    device = check_device(device)
    trials = check_positive_int(trials, "trials")
    threshold = check_fraction(threshold, "threshold")
    loads = [float(a) for a in loads]
    if not loads or any(not (a > 0 and math.isfinite(a)) for a in loads):
        raise ValueError(f"loads must be a non-empty list of positive numbers, got {loads!r}.")
    noise_levels = [check_fraction(f, "noise") for f in noise_levels]
    specs = [dict(study=desc.replace(" ", "_"), n_neurons=N, load=a, trial=t, configs=list(configs),
                  noise_levels=noise_levels, threshold=threshold, rule=rule, dynamics=dynamics,
                  max_sweeps=int(max_sweeps), seed=int(seed), device=device)
             for a in loads for t in range(trials)]
    return run_tasks(specs, cache_dir, jobs, scheduler, progress, desc)


def capacity(n_neurons: int = 1000, loads: Sequence[float] = tuple(np.round(np.arange(0.02, 0.21, 0.02), 3)),
             bits: Sequence[int | None] = (None, 1, 2, 3, 4), schemes: Sequence[str] = ("uniform",),
             objectives: Sequence[str] = ("correlation",), trials: int = 3, cue_noise: float = 0.0,
             threshold: float = 0.95, rule: str = "hebb", dynamics: str = "async", max_sweeps: int = 100,
             seed: int = 0, progress: bool = False, configs: Sequence[dict] | None = None,
             cache_dir=None, jobs: int = 1, scheduler: str | None = None, device: str = "cpu") -> list[dict]:
    """Fraction of stored patterns retrieved versus load alpha = P/N, per weight variant.

    Parameters
    ----------
    n_neurons : int
    loads : sequence of float
        Loads alpha; P = round(alpha * N) patterns are stored.
    bits : sequence of int or None
        Weight bit widths; None is the float network.
    schemes, objectives : sequences of str
        Passed to :func:`quantization.quantize` (whole-matrix codebooks, W symmetric).
    trials : int
        Independent pattern sets per load.
    cue_noise : float
        Fraction of neurons flipped in each cue (0: start from the pattern itself).
    threshold : float
        A pattern counts as retrieved when the final overlap is >= threshold.
    rule, dynamics, max_sweeps :
        See :meth:`HopfieldNetwork.from_patterns` and :meth:`HopfieldNetwork.recall`.
    seed : int
    progress : bool
        Show a tqdm progress bar.
    configs : list of dict, optional
        Explicit weight variants (dicts with bits, scheme, objective; bits "float" for
        float weights) instead of the product of ``bits``, ``schemes``, ``objectives``.
    cache_dir : path, optional
        Resumable study: each finished (load, trial) task writes its rows to a JSON file
        there (atomically), and a rerun with the same parameters reads them back instead
        of recomputing; an interrupted study loses only unfinished tasks.
    jobs, scheduler :
        Run tasks on ``jobs`` local processes or on a Dask cluster (see
        :func:`run_tasks`); the rows are identical whatever the backend.
    device : {"cpu", "cuda"}, default "cpu"
        Where each task stores (Hebb rule only; other rules store on the CPU), quantizes
        and recalls (see :meth:`HopfieldNetwork.recall`).  The rows are the same on both
        (Glauber dynamics up to exp's last bit), so a cache filled on a GPU serves a CPU
        run and the other way round.  With "cuda" keep ``jobs=1``: processes sharing one
        GPU may each pass the free-memory check and then run out of memory together.

    Returns
    -------
    list of dict
        One row per (load, trial, weight variant): n_neurons, load, n_patterns, rule,
        dynamics, trial, bits ("float" or int), scheme, objective, noise, rho,
        retrieved, overlap, converged, sweeps, seconds.
    """
    cfgs = list(configs) if configs is not None else weight_configs(bits, schemes, objectives)
    return _study(n_neurons, loads, cfgs, [cue_noise], trials, threshold, rule, dynamics, max_sweeps, seed, progress,
                  "capacity", cache_dir, jobs, scheduler, device)


def critical_loads(rows: list[dict], fraction: float = 0.5, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """Simulated critical load per (N, weight variant): the load where the fraction of
    retrieved patterns, averaged over trials, falls through ``fraction`` (linear
    interpolation between the neighbouring loads; the first crossing from above).  The
    error is the larger of the standard deviation over ``n_boot`` bootstrap resamples of
    the trials and the binomial error of the fraction through the slope.  The resamples
    come from a stream of their own per group (from ``seed`` and the group's key), so that
    the errors do not depend on the order of ``rows``.

    Returns
    -------
    list of dict
        n_neurons, bits, scheme, objective, rho (mean), alpha_c, alpha_c_err, trials.
    """
    out = []
    for key, rs in _group(rows, ("n_neurons", "bits", "scheme", "objective")).items():
        rng = np.random.default_rng([seed, zlib.crc32("|".join(map(str, key)).encode())])
        loads = sorted({r["load"] for r in rs})
        trials = sorted({r["trial"] for r in rs})
        table = np.full((len(trials), len(loads)), np.nan)
        for r in rs:
            table[trials.index(r["trial"]), loads.index(r["load"])] = r["retrieved"]
        mean = np.nanmean(table, axis=0)
        est, slope = _crossing(np.asarray(loads), mean, fraction)
        boot = [_crossing(np.asarray(loads), np.nanmean(table[rng.integers(0, len(trials), len(trials))], axis=0),
                          fraction)[0] for _ in range(n_boot)] if len(trials) > 1 else []
        boot = [b for b in boot if np.isfinite(b)]
        # binomial error of the retrieved fraction at the crossing, through the slope
        n_pat = np.mean([r["n_patterns"] for r in rs if abs(r["load"] - est) < 0.02] or [r["n_patterns"] for r in rs])
        binom = math.sqrt(fraction * (1 - fraction) / (n_pat * len(trials))) / slope if slope > 0 else float("nan")
        err = max(float(np.std(boot)) if len(boot) > 1 else 0.0, binom)
        out.append(dict(n_neurons=key[0], bits=key[1], scheme=key[2], objective=key[3],
                        rho=float(np.mean([r["rho"] for r in rs])), alpha_c=est, alpha_c_err=err, trials=len(trials)))
    return out


def _crossing(loads: np.ndarray, frac: np.ndarray, level: float) -> tuple[float, float]:
    """(load where frac first falls through level, |d frac / d load| there)."""
    above = frac >= level
    if not above[0]:
        return float("nan"), float("nan")
    for i in range(1, len(loads)):
        if not above[i]:
            f0, f1 = frac[i - 1], frac[i]
            slope = (f0 - f1) / (loads[i] - loads[i - 1])
            return float(loads[i - 1] + (f0 - level) / slope), float(slope)
    return float("nan"), float("nan")


def extrapolate(critical: list[dict], law: str = "1/N") -> list[dict]:
    """alpha_c(N) = alpha_inf + b * N^-p by weighted least squares (weights 1/err^2) for
    each weight variant, p = 1 (``law="1/N"``) or 1/2 (``law="1/sqrt(N)"``); returns
    alpha_inf with its standard error, the slope b and the fit's chi^2 per degree of
    freedom (nan with two sizes).

    Finite networks keep retrieval states beyond alpha_c (the transition is first order
    and the retrieval state metastable), so alpha_c(N) approaches alpha_inf from above.
    1/N is the simplest correction that vanishes with N; the data decide between it and
    the slower 1/sqrt(N) through chi^2 (see the README).
    """
    if law not in ("1/N", "1/sqrt(N)"):
        raise ValueError(f"law={law!r} is not supported; use '1/N' or '1/sqrt(N)'.")
    power = 1.0 if law == "1/N" else 0.5
    out = []
    for key, rs in _group(critical, ("bits", "scheme", "objective")).items():
        rs = [r for r in rs if np.isfinite(r["alpha_c"])]
        if len(rs) < 2:
            continue
        x = np.array([r["n_neurons"] ** -power for r in rs])
        y = np.array([r["alpha_c"] for r in rs])
        err = np.array([r["alpha_c_err"] if np.isfinite(r["alpha_c_err"]) and r["alpha_c_err"] > 0 else 0.005
                        for r in rs])
        A = np.stack([np.ones_like(x), x], axis=1) / err[:, None]
        coef, *_ = np.linalg.lstsq(A, y / err, rcond=None)
        cov = np.linalg.inv(A.T @ A)
        resid = (y - (coef[0] + coef[1] * x)) / err
        dof = len(rs) - 2
        out.append(dict(bits=key[0], scheme=key[1], objective=key[2], rho=float(np.mean([r["rho"] for r in rs])),
                        law=law, alpha_inf=float(coef[0]), alpha_inf_err=float(np.sqrt(cov[0, 0])),
                        slope=float(coef[1]), chi2_dof=float(resid @ resid / dof) if dof > 0 else float("nan"),
                        sizes=[r["n_neurons"] for r in rs]))
    return out


def basins(n_neurons: int = 1000, loads: Sequence[float] = (0.05, 0.1), bits: Sequence[int | None] = (None, 1, 2, 4),
           noise_levels: Sequence[float] = tuple(np.round(np.linspace(0.0, 0.5, 11), 3)),
           schemes: Sequence[str] = ("uniform",), objectives: Sequence[str] = ("correlation",), trials: int = 2,
           threshold: float = 0.95, rule: str = "hebb", dynamics: str = "async", max_sweeps: int = 100,
           seed: int = 0, progress: bool = False, cache_dir=None, jobs: int = 1,
           scheduler: str | None = None, device: str = "cpu") -> list[dict]:
    """Retrieval versus cue noise (fraction of flipped neurons) for chosen loads and bit
    widths; same columns and options as :func:`capacity`, one row per noise level too."""
    return _study(n_neurons, loads, weight_configs(bits, schemes, objectives), noise_levels, trials, threshold, rule,
                  dynamics, max_sweeps, seed, progress, "basins", cache_dir, jobs, scheduler, device)


def recall_vs_bits(n_neurons: int = 1000, loads: Sequence[float] = (0.05, 0.1, 0.13),
                   bits: Sequence[int | None] = (None, 1, 2, 3, 4, 5, 6, 7, 8),
                   schemes: Sequence[str] = ("uniform", "exponential", "lloyd"),
                   objectives: Sequence[str] = ("correlation", "minmax"), cue_noise: float = 0.1, trials: int = 2,
                   threshold: float = 0.95, rule: str = "hebb", dynamics: str = "async", max_sweeps: int = 100,
                   seed: int = 0, progress: bool = False, cache_dir=None, jobs: int = 1,
                   scheduler: str | None = None, device: str = "cpu") -> list[dict]:
    """The main study: recall quality and weight correlation versus bits, per scheme
    and objective, from cues with ``cue_noise`` flipped neurons; columns and options as
    :func:`capacity`."""
    return _study(n_neurons, loads, weight_configs(bits, schemes, objectives), [cue_noise], trials, threshold, rule,
                  dynamics, max_sweeps, seed, progress, "recall vs bits", cache_dir, jobs, scheduler, device)


def basin_radii(net, patterns: np.ndarray, noise_levels: Sequence[float] = tuple(np.round(np.arange(0, 0.51, 0.05), 3)),
                trials: int = 3, threshold: float = 0.95, dynamics: str = "async",
                seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Basin of attraction of each stored pattern: the largest cue noise (from
    ``noise_levels``, ascending) up to which the pattern is retrieved in at least half
    of ``trials`` random cues at every level; 0 when it is not retrieved from itself at
    the first level, NaN never.

    Returns
    -------
    ndarray of float, shape (n_patterns,)
    """
    levels = sorted(check_fraction(f, "noise") for f in noise_levels)
    trials = check_positive_int(trials, "trials")
    rng = np.random.default_rng(seed)
    X = np.asarray(patterns)
    radius = np.zeros(len(X))
    alive = np.ones(len(X), bool)
    for f in levels:
        ok = np.zeros(len(X))
        for _ in range(trials):
            res = net.recall(flip_noise(X, f, seed=rng), dynamics=dynamics, seed=rng)
            ok += target_overlaps(res.states, X) >= threshold
        alive &= ok * 2 >= trials
        radius[alive] = f
    return radius


# ---------------------------------------------------------------------------- plots


def _group(rows, keys):
    out: dict = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _mean_sem(values):
    v = np.asarray(values, float)
    return v.mean(), (v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0)


def _label(cfg_key):
    bits, scheme, objective = cfg_key
    return "float" if bits == "float" else f"{bits} bit {scheme}, {objective}"


_PLOT_DPI = 110


def _save(fig, path) -> None:
    """Write a figure atomically: concurrent writers of one path each use their own
    temporary file, and a killed writer's temporary is removed by the next write."""
    from quantization._io import save_figure

    save_figure(fig, path, dpi=_PLOT_DPI)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_capacity(rows: list[dict], path) -> None:
    """Retrieved fraction versus load with error bars (SEM over trials), one line per
    weight variant with its predicted critical load critical_load(rho) dotted in the
    same colour, and the AGS and clipped-synapse critical loads."""
    from .theory import critical_load

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, rs in _group(rows, ("bits", "scheme", "objective")).items():
        by_load = _group(rs, ("load",))
        loads = sorted(k[0] for k in by_load)
        ms = [_mean_sem([r["retrieved"] for r in by_load[(a,)]]) for a in loads]
        bar = ax.errorbar(loads, [m for m, _ in ms], yerr=[s for _, s in ms], marker="o", ms=3, capsize=2,
                          label=_label(key), color="k" if key[0] == "float" else None)
        rho = float(np.mean([r["rho"] for r in rs]))
        if key[0] != "float":
            ax.axvline(critical_load(rho), color=bar[0].get_color(), ls=":", lw=1)
    ax.axvline(AGS_CRITICAL_LOAD, ls="--", color="k", lw=0.8)
    ax.axvline(CLIPPED_CRITICAL_LOAD, ls=":", color="k", lw=0.8)
    ax.text(AGS_CRITICAL_LOAD, 0.02, " AGS 0.138", fontsize=8)
    ax.text(CLIPPED_CRITICAL_LOAD, 0.1, " clipped 0.102", fontsize=8)
    N = rows[0]["n_neurons"]
    ax.set(xlabel="load alpha = P/N", ylabel="fraction retrieved", ylim=(-0.02, 1.02),
           title=f"Capacity, N={N} (dotted: theory alpha_c(rho) per variant)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_basins(rows: list[dict], path) -> None:
    """Retrieved fraction versus cue noise, one panel per load."""
    plt = _plt()
    loads = sorted({r["load"] for r in rows})
    fig, axes = plt.subplots(1, len(loads), figsize=(5 * len(loads), 4), squeeze=False)
    for ax, a in zip(axes[0], loads):
        for key, rs in _group([r for r in rows if r["load"] == a], ("bits", "scheme", "objective")).items():
            by = _group(rs, ("noise",))
            xs = sorted(k[0] for k in by)
            ax.plot(xs, [np.mean([r["retrieved"] for r in by[(x,)]]) for x in xs], marker="o", ms=3,
                    label=_label(key), color="k" if key[0] == "float" else None)
        ax.set(xlabel="cue noise (fraction flipped)", ylabel="fraction retrieved", title=f"alpha = {a}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_recall_vs_bits(rows: list[dict], path) -> None:
    """Top: fraction retrieved versus bits (float as a dashed line); bottom: 1 - rho."""
    plt = _plt()
    loads = sorted({r["load"] for r in rows})
    fig, axes = plt.subplots(2, len(loads), figsize=(5 * len(loads), 7), squeeze=False, sharex=True)
    for col, a in enumerate(loads):
        sel = [r for r in rows if r["load"] == a]
        for (scheme, objective), rs in _group([r for r in sel if r["bits"] != "float"], ("scheme", "objective")).items():
            by = _group(rs, ("bits",))
            bs = sorted(k[0] for k in by)
            style = "-" if objective == "correlation" else "--"
            ret = [_mean_sem([r["retrieved"] for r in by[(b,)]]) for b in bs]
            line = axes[0, col].errorbar(bs, [m for m, _ in ret], yerr=[s for _, s in ret], ls=style, marker="o",
                                         ms=3, capsize=2, label=f"{scheme}, {objective}")
            axes[1, col].semilogy(bs, [max(1 - np.mean([r["rho"] for r in by[(b,)]]), 1e-7) for b in bs], style,
                                  marker="o", ms=3, color=line[0].get_color())
        fl = [r["retrieved"] for r in sel if r["bits"] == "float"]
        if fl:
            axes[0, col].axhline(np.mean(fl), color="k", ls=":", label="float weights")
        N, noise = sel[0]["n_neurons"], sel[0]["noise"]
        axes[0, col].set(title=f"N={N}, alpha={a}, cue noise {noise:.0%}", ylabel="fraction retrieved",
                         ylim=(-0.02, 1.02))
        axes[1, col].set(xlabel="bits per weight", ylabel="1 - rho (weights)")
        axes[1, col].grid(True, which="both", alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("Hopfield recall versus weight bits (solid: correlation-optimal levels, dashed: min-max)")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
