"""Recall you can watch: the states one cue passes through, as frames, an animation
and a grid figure with the energy and the overlaps beside it.

:func:`record_recall` runs the same dynamics as :meth:`HopfieldNetwork.recall` (same
per-cue SplitMix64 stream, visiting order, tie rule and field arithmetic, float or
quantized weights) and keeps a copy of the state after every ``every`` sweeps or
flips, so its last frame is the state ``recall`` returns with the same seed.  The
recording kernel here mirrors ``_run_async`` and ``_run_sync`` of
:mod:`hopfield._kernels` line by line and reads the fields through that module's own
``field``/``flip``; the tests check the final state, sweeps and convergence against
``recall`` for every weight layout and dynamics.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from . import _kernels as K
from ._validate import check_patterns, check_positive_int, check_states
from .measures import overlaps as _overlaps
from .network import _MAX_SWEEPS, _MODES, DYNAMICS, HopfieldNetwork, QuantizedHopfieldNetwork, _seed_per_cue

__all__ = ["Trajectory", "record_recall", "plot_trajectory", "save_animation", "ANIMATION_FORMATS"]

ANIMATION_FORMATS = (".gif", ".mp4")
UNITS = ("sweep", "flip")
_DEFAULT_MAX_FRAMES = 10_000
_FIRST_CAPACITY = 256  # frames allocated before the first run; a second run gets the exact count
_GRID_COLUMNS = 6  # frames per row of the grid figure
_MAX_OVERLAP_TRACES = 5  # patterns drawn in the overlap trace (largest |m| first)
_PLOT_DPI = 120


# ------------------------------------------------------------------------ kernel


class FrameBuffer(NamedTuple):
    """Where the recording kernel writes frames (capacity = len(sweep))."""

    states: np.ndarray  # int8 (capacity, N)
    sweep: np.ndarray  # int64 (capacity,): the sweep (1-based) of the last flip shown; 0 for the cue
    flips: np.ndarray  # int64 (capacity,): flips made before the frame


class Schedule(NamedTuple):
    """A frame after every ``every`` sweeps, or after every ``every`` flips when
    ``per_flip`` (asynchronous dynamics only)."""

    every: int
    per_flip: bool


@njit(cache=True)
def _store(buf, n, s, sweep, flips):
    """Frame number n (when it fits); returns n + 1 (the frames needed so far)."""
    if n < buf.sweep.size:
        buf.states[n, :] = s
        buf.sweep[n] = sweep
        buf.flips[n] = flips
    return n + 1


@njit(cache=True)
def _record_async(fs, s, seed, run, sched, buf):
    """``hopfield._kernels._run_async`` with frames; returns (frames, sweeps, converged)."""
    N = s.size
    state = np.uint64(seed)
    order = np.arange(N)
    random_order = run.mode == K.ASYNC_RANDOM
    temperature = run.temperature
    total = 0  # flips so far
    shown = 0  # flips in the last frame
    n = _store(buf, 0, s, 0, 0)
    for sweep in range(run.max_sweeps):
        if random_order:
            state = K.shuffle(state, order)
        flips = 0
        for idx in range(N):
            i = order[idx]
            hi = K.field(fs, s, i)
            if temperature > 0.0:
                state, u = K.uniform01(state)
                x = -2.0 * hi / temperature
                p_up = 1.0 / (1.0 + math.exp(x)) if x < K._GLAUBER_EXP_MAX else 0.0
                new = 1 if u < p_up else -1
            elif hi > 0.0:
                new = 1
            elif hi < 0.0:
                new = -1
            else:
                new = s[i]
            if new != s[i]:
                s[i] = new
                K.flip(fs, i, 2 * new)
                flips += 1
                total += 1
                if sched.per_flip and total - shown >= sched.every:
                    n = _store(buf, n, s, sweep + 1, total)
                    shown = total
        if flips == 0:
            if total > shown:
                n = _store(buf, n, s, sweep, total)
            return n, sweep + 1, True
        if not sched.per_flip and (sweep + 1) % sched.every == 0:
            n = _store(buf, n, s, sweep + 1, total)
            shown = total
    if total > shown:
        n = _store(buf, n, s, run.max_sweeps, total)
    return n, run.max_sweeps, False


@njit(cache=True)
def _record_sync(fs, s, run, sched, buf):
    """``hopfield._kernels._run_sync`` with a frame after every ``sched.every`` sweeps."""
    N = s.size
    prev = s.copy()  # state two steps back, for 2-cycle detection
    new = np.empty(N, np.int8)
    total = 0
    shown = 0
    n = _store(buf, 0, s, 0, 0)
    for sweep in range(run.max_sweeps):
        nflip = 0
        for i in range(N):
            hi = K.field(fs, s, i)
            if hi > 0.0:
                new[i] = 1
            elif hi < 0.0:
                new[i] = -1
            else:
                new[i] = s[i]
            if new[i] != s[i]:
                nflip += 1
        if nflip == 0:
            if total > shown:
                n = _store(buf, n, s, sweep, total)
            return n, sweep + 1, True
        cycle = False
        if sweep > 0:
            cycle = True
            for i in range(N):
                if new[i] != prev[i]:
                    cycle = False
                    break
        for i in range(N):
            prev[i] = s[i]
        for i in range(N):
            if new[i] != s[i]:
                s[i] = new[i]
                K.flip(fs, i, 2 * np.int64(new[i]))
        total += nflip
        if cycle or (sweep + 1) % sched.every == 0:
            n = _store(buf, n, s, sweep + 1, total)
            shown = total
        if cycle:
            return n, sweep + 1, False
    if total > shown:
        n = _store(buf, n, s, run.max_sweeps, total)
    return n, run.max_sweeps, False


@njit(cache=True)
def _record_cue(fs, s, seed, run, sched, buf):
    """Run one cue in place, recording frames; returns (frames needed, sweeps, converged)."""
    if run.mode == K.SYNC:
        return _record_sync(fs, s, run, sched, buf)
    return _record_async(fs, s, seed, run, sched, buf)


# ----------------------------------------------------------------------- public


@dataclass(frozen=True)
class Trajectory:
    """The frames of one cue's recall, from :func:`record_recall`.

    Attributes
    ----------
    states : ndarray of int8, shape (n_frames, n_neurons)
        Frame 0 is the cue; the last frame is the final state (the state
        :meth:`HopfieldNetwork.recall` returns with the same seed).
    energies : ndarray of float64, shape (n_frames,)
        Energy -1/2 s^T W s of each frame (as :meth:`HopfieldNetwork.energy`).
    overlaps : ndarray of float64, shape (n_frames, n_patterns), or None
        Overlap of each frame with each pattern given to :func:`record_recall`.
    sweep : ndarray of int64, shape (n_frames,)
        The sweep (1-based) in which the frame's last flip happened (0 for the cue).
    flips : ndarray of int64, shape (n_frames,)
        Neuron flips made before the frame.
    sweeps : int
        Sweeps run, as ``RecallResult.sweeps`` (the last one found nothing to flip).
    converged : bool
        As ``RecallResult.converged``.
    dynamics : str
    unit : {"sweep", "flip"}
        What ``every`` counted.
    every : int
    """

    states: np.ndarray
    energies: np.ndarray
    overlaps: np.ndarray | None
    sweep: np.ndarray
    flips: np.ndarray
    sweeps: int
    converged: bool
    dynamics: str
    unit: str
    every: int

    @property
    def final(self) -> np.ndarray:
        """The final state, shape (n_neurons,)."""
        return self.states[-1]

    @property
    def n_frames(self) -> int:
        return len(self.states)


def _field_state(net, S: np.ndarray, index: int):
    """The field state ``net.recall`` would give cue ``index`` of the batch S (the
    initial fields are computed for the whole batch, as there, so that their rounding
    is the same)."""
    if getattr(net, "_affine", False):
        U, M = net._integer_sums(S)
        w = K.AffineWeights(net.quantized.codes, net._scale, net._z, net._off)
        return K.AffineField(U[index], M[index:index + 1], w)
    return K.TableField(net._fields(S)[index], net._table_weights())


def record_recall(
    net: HopfieldNetwork | QuantizedHopfieldNetwork,
    cue: np.ndarray,
    *,
    dynamics: str = "async",
    max_sweeps: int = 100,
    temperature: float = 0.0,
    seed: int | np.random.Generator | None = None,
    index: int | None = None,
    every: int = 1,
    unit: str = "sweep",
    patterns: np.ndarray | None = None,
    max_frames: int = _DEFAULT_MAX_FRAMES,
) -> Trajectory:
    """Recall one cue and keep the states it passes through.

    Parameters
    ----------
    net : HopfieldNetwork or QuantizedHopfieldNetwork
    cue : array of +-1, shape (n_neurons,) or (n_cues, n_neurons)
        One cue, or a batch of which cue ``index`` is watched: the frames are then
        those of ``net.recall(cue, ...)`` for that row (each cue's seed depends on its
        position in the batch).
    dynamics, max_sweeps, temperature, seed
        As :meth:`HopfieldNetwork.recall`.
    index : int or None
        The watched row of a 2-D ``cue`` (required there; None or 0 for one cue).
    every : int, default 1
        A frame after every ``every`` sweeps (``unit="sweep"``) or flips
        (``unit="flip"``, asynchronous dynamics only).  The cue and the final state
        are always frames.
    unit : {"sweep", "flip"}, default "sweep"
    patterns : array of +-1, shape (n_patterns, n_neurons), optional
        Stored (or any) patterns to measure each frame's overlaps with.
    max_frames : int, default 10000
        Refuse to keep more frames than this (memory: n_frames * n_neurons bytes).

    Returns
    -------
    Trajectory

    Raises
    ------
    TypeError
        ``net`` is not a Hopfield network.
    ValueError
        As :meth:`HopfieldNetwork.recall`; a bad ``index``, ``every``, ``unit``
        (``"flip"`` with sync dynamics) or patterns of another length; or a
        recording that needs more than ``max_frames`` frames.

    Examples
    --------
    >>> from hopfield import HopfieldNetwork, random_patterns, flip_noise
    >>> from hopfield.trajectory import record_recall
    >>> X = random_patterns(5, 100, seed=0)
    >>> net = HopfieldNetwork.from_patterns(X)
    >>> cue = flip_noise(X[:1], 0.3, seed=1)[0]
    >>> tr = record_recall(net, cue, seed=2, patterns=X)
    >>> bool((tr.final == net.recall(cue, seed=2).states).all())
    True
    >>> bool(tr.overlaps[-1, 0] == 1.0)
    True
    """
    if not isinstance(net, (HopfieldNetwork, QuantizedHopfieldNetwork)):
        raise TypeError(f"net must be a HopfieldNetwork or QuantizedHopfieldNetwork, got {type(net).__name__}.")
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics={dynamics!r} is not supported; choose one of {', '.join(map(repr, DYNAMICS))}.")
    max_sweeps = check_positive_int(max_sweeps, "max_sweeps", maximum=_MAX_SWEEPS,
                                    maximum_text="2**63 - 1 (the kernels count sweeps in int64)")
    T = float(temperature)
    if dynamics == "glauber":
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"temperature must be a finite number > 0 for glauber dynamics, got {temperature!r}.")
    elif T != 0.0:
        raise ValueError(f"temperature={temperature!r} applies only to dynamics='glauber'; use 0 for {dynamics!r}.")
    every = check_positive_int(every, "every")
    if unit not in UNITS:
        raise ValueError(f"unit={unit!r} is not supported; choose 'sweep' or 'flip'.")
    if unit == "flip" and dynamics == "sync":
        raise ValueError("unit='flip' needs asynchronous dynamics: synchronous updates flip many neurons at once; "
                         "use unit='sweep'.")
    max_frames = check_positive_int(max_frames, "max_frames", 2)
    S, was_1d = check_states(cue, net.n_neurons, "cue")
    if was_1d:
        if index not in (None, 0):
            raise ValueError(f"index={index!r} applies to a 2-D batch of cues; cue is one state (use index=None).")
        index = 0
    elif index is None:
        raise ValueError(f"cue holds {len(S)} cues; say which one to watch with index=0..{len(S) - 1}.")
    elif isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(S):
        raise ValueError(f"index must be an int in [0, {len(S) - 1}] (the row of cue to watch), got {index!r}.")
    index = int(index)
    X = None
    if patterns is not None:
        X = check_patterns(patterns)
        if X.shape[1] != net.n_neurons:
            raise ValueError(f"patterns have {X.shape[1]} neurons but the network has {net.n_neurons}.")

    seeds = _seed_per_cue(seed, len(S))
    run = K.RunOptions(max_sweeps, _MODES[dynamics], T)
    sched = Schedule(every, unit == "flip")
    capacity = min(max_frames, _FIRST_CAPACITY)
    while True:
        s = S[index].copy()
        buf = FrameBuffer(np.empty((capacity, net.n_neurons), np.int8), np.empty(capacity, np.int64),
                          np.empty(capacity, np.int64))
        n, sweeps, conv = _record_cue(_field_state(net, S, index), s, seeds[index], run, sched, buf)
        if n <= capacity:
            break
        if n > max_frames:
            raise ValueError(f"this recall needs {n:,} frames, more than max_frames={max_frames:,}; record fewer "
                             f"(a larger every={every}) or raise max_frames.")
        capacity = n  # deterministic: the second run repeats the first exactly
    states = buf.states[:n].copy()
    return Trajectory(states=states, energies=np.asarray(net.energy(states), np.float64),
                      overlaps=None if X is None else _overlaps(states, X), sweep=buf.sweep[:n].copy(),
                      flips=buf.flips[:n].copy(), sweeps=int(sweeps), converged=bool(conv), dynamics=dynamics,
                      unit=unit, every=every)


# ------------------------------------------------------------------ rendering


def _check_shape(traj: Trajectory, shape) -> tuple[int, int]:
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj must be a Trajectory (from record_recall), got {type(traj).__name__}.")
    N = traj.states.shape[1]
    if shape is None:
        side = math.isqrt(N)
        if side * side != N:
            raise ValueError(f"N={N} neurons is not a square; give shape=(height, width) with height * width = {N}.")
        return side, side
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a pair of ints (height, width), got {shape!r}.") from None
    if h < 1 or w < 1 or h * w != N:
        raise ValueError(f"shape=({h}, {w}) holds {h * w} pixels but the states have N={N} neurons.")
    return h, w


def _frame_choice(n_frames: int, k: int) -> np.ndarray:
    """k frame indices spread evenly from the first to the last (all when fewer)."""
    if n_frames <= k:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, k)).astype(int))


def _x_axis(traj: Trajectory) -> tuple[np.ndarray, str]:
    """The traces' x: flips (per-flip frames) or the frame's sweep."""
    if traj.unit == "flip":
        return traj.flips, "flips"
    return traj.sweep, "sweep"


def _trace_patterns(traj: Trajectory, labels) -> list[tuple[int, str]]:
    m = traj.overlaps
    top = np.argsort(-np.abs(m).max(axis=0), kind="stable")[:_MAX_OVERLAP_TRACES]
    return [(int(p), str(labels[p]) if labels is not None else f"pattern {p}") for p in top]


def _check_labels(traj: Trajectory, labels):
    if labels is None:
        return None
    labels = list(labels)
    if traj.overlaps is None or len(labels) != traj.overlaps.shape[1]:
        have = "no patterns" if traj.overlaps is None else f"{traj.overlaps.shape[1]} patterns"
        raise ValueError(f"got {len(labels)} labels but the trajectory has overlaps with {have}.")
    return labels


def _draw_traces(traj: Trajectory, ax_e, ax_m, labels) -> None:
    x, xlabel = _x_axis(traj)
    ax_e.plot(x, traj.energies, "-o", ms=3, color="k")
    ax_e.set_ylabel("energy")
    ax_e.set_xlabel(xlabel)
    if traj.overlaps is None:
        ax_m.text(0.5, 0.5, "no patterns given", ha="center", va="center", transform=ax_m.transAxes)
        ax_m.set_axis_off()
        return
    for p, name in _trace_patterns(traj, labels):
        ax_m.plot(x, traj.overlaps[:, p], "-o", ms=3, label=name)
    ax_m.set_ylim(-1.05, 1.05)
    ax_m.set_ylabel("overlap m")
    ax_m.set_xlabel(xlabel)
    ax_m.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def _frame_title(traj: Trajectory, f: int) -> str:
    return "cue" if f == 0 else (f"{traj.flips[f]} flips" if traj.unit == "flip" else f"sweep {traj.sweep[f]}")


def plot_trajectory(
    traj: Trajectory,
    shape: tuple[int, int] | None = None,
    path: str | os.PathLike | None = None,
    n_frames: int = 12,
    labels=None,
    cmap: str = "gray",
):
    """A grid of frames, with the energy and overlap traces beside it.

    Parameters
    ----------
    traj : Trajectory
    shape : (height, width) or None
        How a state is drawn (None: a square).  +1 is white with ``cmap="gray"``.
    path : path or None
        Also write the figure there, atomically (format from the suffix).
    n_frames : int, default 12
        Frames shown, spread evenly from the cue to the final state.
    labels : sequence of str, optional
        Names of the patterns in the overlap trace.
    cmap : str, default "gray"

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    h, w = _check_shape(traj, shape)
    k = check_positive_int(n_frames, "n_frames")
    labels = _check_labels(traj, labels)
    chosen = _frame_choice(traj.n_frames, k)
    cols = min(_GRID_COLUMNS, len(chosen))
    rows = -(-len(chosen) // cols)
    fig = Figure(figsize=(1.6 * cols + 4.5, max(3.2, 1.6 * rows + 0.6)), layout="constrained")
    outer = fig.add_gridspec(1, 2, width_ratios=[1.6 * cols, 4.0])
    grid = outer[0].subgridspec(rows, cols)
    for a, f in enumerate(chosen):
        ax = fig.add_subplot(grid[a // cols, a % cols])
        ax.imshow(traj.states[f].reshape(h, w), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(_frame_title(traj, f), fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    side = outer[1].subgridspec(2, 1)
    _draw_traces(traj, fig.add_subplot(side[0]), fig.add_subplot(side[1]), labels)
    fig.suptitle(f"{traj.dynamics} recall: {traj.sweeps} sweeps, "
                 f"{'converged' if traj.converged else 'not converged'}", fontsize="medium")
    if path is not None:
        from quantization._io import save_figure

        save_figure(fig, path, dpi=_PLOT_DPI)
    return fig


def find_ffmpeg() -> str | None:
    """Path of an ffmpeg binary: on PATH, else imageio-ffmpeg's bundled one, else None."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package is installed without a binary for this platform
        return None


def save_animation(
    traj: Trajectory,
    path: str | os.PathLike,
    shape: tuple[int, int] | None = None,
    fps: float = 4.0,
    max_frames: int = 200,
    labels=None,
    cmap: str = "gray",
    dpi: int = 80,
) -> Path:
    """Write the recall as an animation: the state, with the energy and overlap traces
    and a marker that follows the frame.

    The file is rendered to a temporary directory, then written atomically
    (:func:`quantization.atomic_write`): a crash never leaves a half-written file.

    Parameters
    ----------
    traj : Trajectory
    path : path ending in .gif or .mp4
        GIF through matplotlib's PillowWriter (Pillow comes with matplotlib); MP4
        through ffmpeg: the one on PATH, else the binary that the ``imageio-ffmpeg``
        package ships (extra ``animation``).
    shape : (height, width) or None
        As :func:`plot_trajectory`.
    fps : float, default 4
    max_frames : int, default 200
        At most this many frames, spread evenly (the cue and the final state kept).
    labels, cmap
        As :func:`plot_trajectory`.
    dpi : int, default 80

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        An unsupported suffix, or a bad fps.
    RuntimeError
        MP4 requested without ffmpeg.
    """
    import tempfile

    from matplotlib import animation
    from matplotlib.figure import Figure

    from quantization import atomic_write

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        raise ValueError(f"path={str(p)!r}: animations are written as {' or '.join(ANIMATION_FORMATS)}; "
                         f"got suffix {p.suffix!r}.")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}.")
    h, w = _check_shape(traj, shape)
    k = check_positive_int(max_frames, "max_frames", 2)
    labels = _check_labels(traj, labels)
    if suffix == ".mp4":
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            raise RuntimeError("MP4 needs ffmpeg on PATH or the imageio-ffmpeg package (pip install "
                               "'hopfield-quant[animation]'); or write a .gif, which needs nothing more.")
        import matplotlib

        matplotlib.rcParams["animation.ffmpeg_path"] = ffmpeg
        writer = animation.FFMpegWriter(fps=fps)
    else:
        writer = animation.PillowWriter(fps=fps)
    chosen = _frame_choice(traj.n_frames, k)
    x, _ = _x_axis(traj)

    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=[1.0, 1.3])
    ax_img = fig.add_subplot(gs[:, 0])
    im = ax_img.imshow(traj.states[0].reshape(h, w), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_e, ax_m = fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, 1])
    _draw_traces(traj, ax_e, ax_m, labels)
    markers = [ax.axvline(x[0], color="tab:red", lw=1) for ax in (ax_e, ax_m) if ax.axison]

    def draw(f):
        im.set_data(traj.states[f].reshape(h, w))
        for mk in markers:
            mk.set_xdata([x[f], x[f]])
        ax_img.set_title(f"{_frame_title(traj, f)}   E = {traj.energies[f]:.4g}", fontsize="small")
        return [im, *markers]

    anim = animation.FuncAnimation(fig, draw, frames=[int(f) for f in chosen], blit=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"animation{suffix}"
        anim.save(out, writer=writer, dpi=dpi)
        atomic_write(p, out.read_bytes())
    return p
