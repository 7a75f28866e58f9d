"""The patterns and watch commands write what they promise and refuse bad input in one line."""

import csv
import json

import numpy as np
import pytest

from hopfield import HopfieldNetwork, flip_noise, letter_patterns, record_recall
from hopfield.__main__ import main


def test_patterns_command_from_text_and_images(tmp_path, capsys):
    assert main(["patterns", "--text", "HOP", "--size", "12", "10", "--out", str(tmp_path / "t")]) == 0
    X = np.load(tmp_path / "t" / "patterns.npy")
    np.testing.assert_array_equal(X, letter_patterns("HOP", size=(12, 10)))
    assert json.loads((tmp_path / "t" / "patterns.json").read_text())["labels"] == ["H", "O", "P"]
    assert (tmp_path / "t" / "patterns.png").read_bytes()[:4] == b"\x89PNG"
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((20, 20)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    assert main(["patterns", "--images", str(tmp_path / "a.png"), "--size", "8", "8", "--method", "dither",
                 "--out", str(tmp_path / "i"), "--quiet"]) == 0
    assert np.load(tmp_path / "i" / "patterns.npy").shape == (1, 64)
    assert main(["patterns", "--images", str(tmp_path / "missing.png"), "--out", str(tmp_path / "m")]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_watch_command_matches_record_recall(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["watch", "--text", "HOPF", "--size", "10", "10", "--target", "1", "--noise", "0.2", "--bits", "2",
                 "--rule", "projection", "--seed", "3", "--out", str(out), "--fps", "20"]) == 0
    assert "overlap" in capsys.readouterr().out
    for name in ("recall.gif", "recall_frames.png", "trajectory.csv", "watch.json"):
        assert (out / name).stat().st_size > 0
    X = letter_patterns("HOPF", size=(10, 10))
    net = HopfieldNetwork.from_patterns(X, "projection").quantize(2)
    cue_seed, dyn_seed = np.random.SeedSequence(3).spawn(2)
    cue = flip_noise(X[1], 0.2, seed=np.random.default_rng(cue_seed))[0]
    tr = record_recall(net, cue, seed=np.random.default_rng(dyn_seed), patterns=X)
    rows = list(csv.DictReader(open(out / "trajectory.csv")))
    assert len(rows) == tr.n_frames
    np.testing.assert_allclose([float(r["energy"]) for r in rows], tr.energies)
    np.testing.assert_allclose([float(r["overlap_1"]) for r in rows], tr.overlaps[:, 1])
    side = json.loads((out / "watch.json").read_text())
    assert side["converged"] == tr.converged and side["labels"] == list("HOPF")


def test_watch_from_a_patterns_file_per_flip(tmp_path):
    X = np.where(np.random.default_rng(0).random((3, 36)) < 0.5, 1, -1).astype(np.int8)
    np.save(tmp_path / "X.npy", X)
    assert main(["watch", "--patterns", str(tmp_path / "X.npy"), "--unit", "flip", "--every", "2",
                 "--animation", "none", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert not (tmp_path / "o" / "recall.gif").exists()
    flips = [int(r["flips"]) for r in csv.DictReader(open(tmp_path / "o" / "trajectory.csv"))]
    assert all(f % 2 == 0 for f in flips[:-1])


@pytest.mark.parametrize("argv,message", [
    (["watch", "--text", "AB", "--target", "2"], "--target 2 is not a pattern index; there are 2 patterns"),
    (["watch", "--text", "AB", "--unit", "flip", "--dynamics", "sync"], "unit='flip' needs asynchronous"),
    (["watch", "--text", "AB", "--size", "0", "4"], "size=(height=0, width=4)"),
    (["watch", "--text", "AB", "--animation", "mp4", "--every", "0"], "every must be an int >= 1"),
])
def test_watch_refuses_bad_input_in_one_line(tmp_path, capsys, argv, message):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_watch_patterns_file_that_is_not_square(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.ones((2, 10), np.int8))
    assert main(["watch", "--patterns", str(tmp_path / "X.npy"), "--out", str(tmp_path)]) == 2
    assert "give --shape HEIGHT WIDTH" in capsys.readouterr().err
