"""Recall you can watch: the recorded frames end where recall ends, step by step like the
slow reference, and render to figures and animations."""

import importlib.util
import os
import shutil
import warnings

import numpy as np
import pytest
import reference as ref

from hopfield import HopfieldNetwork, flip_noise, random_patterns
from hopfield import trajectory as tj
from hopfield.network import _seed_per_cue
from hopfield.trajectory import Trajectory, plot_trajectory, record_recall, save_animation

needs_pillow = pytest.mark.skipif(importlib.util.find_spec("PIL") is None,
                                  reason="Pillow is not installed (GIFs are written through it)")

N_ODD = 37


def _variants(X):
    """Float weights and every quantized layout the dynamics distinguish: affine (uniform,
    one codebook), table codes (exponential, one codebook), per-row and per-group codebooks
    (asymmetric)."""
    net = HopfieldNetwork.from_patterns(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # per-row/group codebooks break symmetry
        yield "float", net
        yield "uniform", net.quantize(3, "uniform")
        yield "exponential", net.quantize(2, "exponential")
        yield "uniform-rows", net.quantize(3, "uniform", axis=0)
        yield "lloyd-groups", net.quantize(2, "lloyd", group_size=16)


@pytest.fixture(scope="module")
def patterns_and_cues():
    X = random_patterns(5, N_ODD, seed=0)
    return X, flip_noise(X, 0.3, seed=1)


@pytest.fixture(scope="module")
def variants(patterns_and_cues):
    return list(_variants(patterns_and_cues[0]))


@pytest.mark.parametrize("dynamics,temperature", [("async", 0.0), ("async-fixed", 0.0), ("sync", 0.0),
                                                  ("glauber", 0.2)])
def test_final_state_equals_recall_for_every_weight_layout(patterns_and_cues, variants, dynamics, temperature):
    X, cues = patterns_and_cues
    for name, net in variants:
        if name == "uniform":
            assert net._affine  # the integer-field path is among the variants
        res = net.recall(cues, dynamics=dynamics, temperature=temperature, seed=7, max_sweeps=30)
        for c in range(len(cues)):
            tr = record_recall(net, cues, index=c, dynamics=dynamics, temperature=temperature, seed=7,
                               max_sweeps=30, patterns=X)
            np.testing.assert_array_equal(tr.final, res.states[c], err_msg=f"{name} {dynamics} cue {c}")
            assert tr.sweeps == res.sweeps[c] and tr.converged == res.converged[c], (name, dynamics, c)
            np.testing.assert_array_equal(tr.states[0], cues[c])
        one = net.recall(cues[2], dynamics=dynamics, temperature=temperature, seed=11, max_sweeps=30)
        tr = record_recall(net, cues[2], dynamics=dynamics, temperature=temperature, seed=11, max_sweeps=30)
        np.testing.assert_array_equal(tr.final, one.states)
        assert tr.overlaps is None


def test_generator_seeds_give_the_same_stream_as_recall(patterns_and_cues):
    X, cues = patterns_and_cues
    net = HopfieldNetwork.from_patterns(X)
    res = net.recall(cues, seed=np.random.default_rng(3))
    tr = record_recall(net, cues, index=3, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(tr.final, res.states[3])


def _ref_async_sweeps(W, s0, seed, max_sweeps, random_order=True):
    """The slow reference of the async dynamics, keeping the state after every sweep."""
    s = np.array(s0, np.int64)
    state, order = int(seed), list(range(len(s)))
    frames = [s.copy()]
    for sweep in range(max_sweeps):
        if random_order:
            state, order = ref.shuffle(state, order)
        flips = 0
        for i in order:
            h = ref.field(W, s, i)
            new = 1 if h > 0 else (-1 if h < 0 else s[i])
            if new != s[i]:
                s[i] = new
                flips += 1
        if flips == 0:
            return np.array(frames), sweep + 1, True
        frames.append(s.copy())
    return np.array(frames), max_sweeps, False


@pytest.mark.parametrize("random_order", [True, False])
def test_sweep_frames_match_the_reference_and_energy_never_rises(random_order):
    X = random_patterns(6, 41, seed=2)
    W = (X.T.astype(np.float32) @ X.astype(np.float32))
    np.fill_diagonal(W, 0)  # integer weights: every field and tie exact in both
    net = HopfieldNetwork(W)
    cues = flip_noise(X, 0.35, seed=3)
    for c in range(len(cues)):
        tr = record_recall(net, cues, index=c, seed=5, dynamics="async" if random_order else "async-fixed")
        seeds = _seed_per_cue(5, len(cues))
        frames, sweeps, conv = _ref_async_sweeps(W.astype(np.float64), cues[c], seeds[c], 100, random_order)
        np.testing.assert_array_equal(tr.states, frames)
        assert (tr.sweeps, tr.converged) == (sweeps, conv)
        np.testing.assert_array_equal(tr.sweep, np.arange(len(frames)))
        assert np.all(np.diff(tr.energies) < 0)  # every recorded sweep flipped and lowered the energy


def test_flip_frames_follow_the_reference_energies(patterns_and_cues):
    X, cues = patterns_and_cues
    net = HopfieldNetwork.from_patterns(X)
    W = net.weights.astype(np.float64)
    seeds = _seed_per_cue(9, len(cues))
    for c in range(len(cues)):
        tr = record_recall(net, cues, index=c, seed=9, unit="flip", patterns=X)
        s, sweeps, conv, energies = ref.async_recall(W, cues[c], seeds[c], 100)
        np.testing.assert_allclose(tr.energies, energies, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(tr.final, s)
        assert np.all(np.abs(np.diff(tr.states.astype(int), axis=0)).sum(axis=1) == 2)  # one neuron per frame
        np.testing.assert_array_equal(tr.flips, np.arange(len(tr.states)))
        np.testing.assert_allclose(tr.overlaps, tr.states @ X.T.astype(float) / X.shape[1])


def test_every_k_sweeps_or_flips_keeps_cue_and_final_state():
    X = random_patterns(20, 100, seed=4)
    net = HopfieldNetwork.from_patterns(X)
    cue = flip_noise(X[:1], 0.45, seed=5)[0]
    full = record_recall(net, cue, seed=6)
    tr = record_recall(net, cue, seed=6, every=2)
    np.testing.assert_array_equal(tr.final, full.final)
    assert tr.sweep[0] == 0 and set(tr.sweep[1:-1] % 2) <= {0}
    np.testing.assert_array_equal(tr.states[1:-1], full.states[tr.sweep[1:-1]])
    fl = record_recall(net, cue, seed=6, unit="flip", every=3)
    assert set(fl.flips[1:-1] % 3) <= {0} and fl.flips[-1] == full.flips[-1]
    np.testing.assert_array_equal(fl.final, full.final)
    # flips-mode frames carry the sweep in which they were taken
    assert np.all(np.diff(fl.sweep) >= 0) and fl.sweep[-1] == full.sweep[-1]


def test_sync_two_cycle_is_recorded_as_recall_reports_it():
    net = HopfieldNetwork(np.array([[0.0, -1.0], [-1.0, 0.0]]))
    cue = np.array([1, 1], np.int8)
    res = net.recall(cue, dynamics="sync")
    tr = record_recall(net, cue, dynamics="sync")
    assert (tr.sweeps, tr.converged) == (int(res.sweeps), bool(res.converged)) == (2, False)
    np.testing.assert_array_equal(tr.states, [[1, 1], [-1, -1], [1, 1]])


def test_frame_buffer_grows_and_max_frames_refuses(monkeypatch, patterns_and_cues):
    X, cues = patterns_and_cues
    net = HopfieldNetwork.from_patterns(X)
    ref_tr = record_recall(net, cues, index=1, seed=4, unit="flip")
    monkeypatch.setattr(tj, "_FIRST_CAPACITY", 2)  # force the second, exact-size run
    tr = record_recall(net, cues, index=1, seed=4, unit="flip")
    np.testing.assert_array_equal(tr.states, ref_tr.states)
    with pytest.raises(ValueError, match=r"needs \d+ frames, more than max_frames=3"):
        record_recall(net, cues, index=1, seed=4, unit="flip", max_frames=3)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(dynamics="hebbian"), ValueError, "dynamics='hebbian' is not supported"),
    (dict(dynamics="glauber"), ValueError, "temperature must be a finite number > 0"),
    (dict(temperature=0.5), ValueError, "applies only to dynamics='glauber'"),
    (dict(max_sweeps=0), ValueError, "max_sweeps must be an int >= 1"),
    (dict(every=0), ValueError, "every must be an int >= 1"),
    (dict(unit="frame"), ValueError, "unit='frame' is not supported"),
    (dict(unit="flip", dynamics="sync"), ValueError, "unit='flip' needs asynchronous dynamics"),
    (dict(index=3), ValueError, "index=3 applies to a 2-D batch"),
    (dict(patterns=np.ones((2, 5))), ValueError, "patterns have 5 neurons but the network has 37"),
    (dict(max_frames=1), ValueError, "max_frames must be an int >= 2"),
])
def test_bad_arguments(patterns_and_cues, kwargs, exc, match):
    X, cues = patterns_and_cues
    net = HopfieldNetwork.from_patterns(X)
    with pytest.raises(exc, match=match):
        record_recall(net, cues[0], **kwargs)


def test_bad_cues_and_networks(patterns_and_cues):
    X, cues = patterns_and_cues
    net = HopfieldNetwork.from_patterns(X)
    with pytest.raises(ValueError, match="cue holds 5 cues; say which one to watch with index=0..4"):
        record_recall(net, cues)
    with pytest.raises(ValueError, match=r"index must be an int in \[0, 4\]"):
        record_recall(net, cues, index=5)
    with pytest.raises(ValueError, match="cue have length 36, but the network has 37 neurons"):
        record_recall(net, cues[0, :-1])
    with pytest.raises(ValueError, match="must contain only \\+1 and -1"):
        record_recall(net, np.zeros(N_ODD))
    with pytest.raises(TypeError, match="net must be a HopfieldNetwork or QuantizedHopfieldNetwork"):
        record_recall(net.weights, cues[0])


# ---------------------------------------------------------------------- rendering


@pytest.fixture(scope="module")
def letters_trajectory():
    X = random_patterns(4, 64, seed=8)
    net = HopfieldNetwork.from_patterns(X)
    return record_recall(net, flip_noise(X[:1], 0.3, seed=9)[0], seed=10, unit="flip", patterns=X)


def test_grid_figure_written_atomically(tmp_path, letters_trajectory):
    tr = letters_trajectory
    fig = plot_trajectory(tr, (8, 8), path=tmp_path / "grid.png", n_frames=5, labels=list("ABCD"))
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["grid.png"]  # no temporary left behind
    assert len(fig.axes) == min(5, tr.n_frames) + 2
    plot_trajectory(tr)  # N = 64 is a square: shape inferred
    with pytest.raises(ValueError, match=r"shape=\(4, 4\) holds 16 pixels but the states have N=64"):
        plot_trajectory(tr, (4, 4))
    with pytest.raises(ValueError, match="got 2 labels but the trajectory has overlaps with 4 patterns"):
        plot_trajectory(tr, labels=["a", "b"])
    with pytest.raises(TypeError, match="traj must be a Trajectory"):
        plot_trajectory(tr.states)
    odd = Trajectory(**{**tr.__dict__, "states": np.ones((2, 6), np.int8)})
    with pytest.raises(ValueError, match="N=6 neurons is not a square"):
        plot_trajectory(odd)


@needs_pillow
def test_gif_animation_has_every_frame(tmp_path, letters_trajectory):
    from PIL import Image

    tr = letters_trajectory
    out = save_animation(tr, tmp_path / "sub" / "recall.gif", fps=10, max_frames=6)
    assert out == tmp_path / "sub" / "recall.gif"
    with Image.open(out) as im:
        assert im.n_frames == min(6, tr.n_frames)
    assert os.listdir(tmp_path / "sub") == ["recall.gif"]


def test_animation_formats_and_ffmpeg(tmp_path, monkeypatch, letters_trajectory):
    with pytest.raises(ValueError, match=r"animations are written as \.gif or \.mp4; got suffix '\.avi'"):
        save_animation(letters_trajectory, tmp_path / "a.avi")
    with pytest.raises(ValueError, match="fps must be a finite number > 0"):
        save_animation(letters_trajectory, tmp_path / "a.gif", fps=0)
    import hopfield.trajectory as tj

    monkeypatch.setattr(tj, "find_ffmpeg", lambda: None)
    with pytest.raises(RuntimeError, match="MP4 needs ffmpeg on PATH or the imageio-ffmpeg package"):
        save_animation(letters_trajectory, tmp_path / "a.mp4")
    assert not (tmp_path / "a.mp4").exists()


def test_mp4_animation(tmp_path, letters_trajectory):
    from hopfield.trajectory import find_ffmpeg

    if find_ffmpeg() is None:
        pytest.skip("no ffmpeg on PATH and imageio-ffmpeg is not installed (the test extra installs it)")
    out = save_animation(letters_trajectory, tmp_path / "a.mp4", max_frames=4)
    assert out.stat().st_size > 0
