"""``python -m hopfield beyond-hebb`` runs the study of hopfield/beyond_hebb.py and writes
its CSVs, plots, summary and sidecar; bad input is refused in one line."""

import csv
import json

import pytest

from hopfield import beyond_hebb, gardner_capacity
from hopfield.__main__ import main


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_beyond_hebb_command_writes_every_part(tmp_path, capsys):
    out = tmp_path / "bh"
    assert main(["beyond-hebb", "--size", "tiny", "--out", str(out), "--seed", "1"]) == 0
    assert "Perceptron capacity" in capsys.readouterr().out
    for name in ("capacity", "recall_vs_bits", "sparse", "dilution"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    cap = _rows(out / "capacity.csv")
    assert {float(r["kappa"]) for r in cap} == {0.0, 0.5}
    for r in cap:
        assert float(r["gardner"]) == pytest.approx(gardner_capacity(float(r["kappa"])))
        assert 0 < float(r["alpha_c_row"]) <= 1.5 * float(r["gardner"])  # N = 40: finite-size excess allowed
    rec = _rows(out / "recall_vs_bits.csv")
    assert {r["rule"] for r in rec} == {"hebb", "perceptron"}
    for r in rec:
        assert 0 <= float(r["retrieved"]) <= 1 and -1 <= float(r["overlap"]) <= 1 and 0 < float(r["rho"]) <= 1
        if r["rule"] == "perceptron" and r["weights"] == "float" and r["converged"] == "True":
            assert float(r["fixed_points"]) == 1.0  # trained patterns are fixed points
    sp = _rows(out / "sparse_capacity.csv")
    assert all(float(r["tsodyks_feigelman"]) > 0 for r in sp) and any(r["weights"] == "float" for r in sp)
    dil = _rows(out / "dilution_capacity.csv")
    assert _rows(out / "dilution.csv") and float(next(r for r in dil if r["weights"] == "float")["rho"]) == 1.0
    assert (out / "summary.txt").read_text().count("\n") > 10
    side = json.loads((out / "beyond_hebb.json").read_text())
    assert side["parameters"]["size"] == "tiny" and side["seed"] == 1


def test_beyond_hebb_parts_and_bad_input(tmp_path, capsys):
    out = tmp_path / "cap"
    assert main(["beyond-hebb", "--size", "tiny", "--parts", "capacity", "--out", str(out), "--quiet"]) == 0
    assert (out / "summary_capacity.txt").exists() and not (out / "sparse.csv").exists()
    assert capsys.readouterr().out == ""
    assert main(["beyond-hebb", "--size", "tiny", "--formats", "svg", "--out", str(out)]) == 2
    assert "png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["beyond-hebb", "--parts", "nonsense", "--out", str(out)])
    with pytest.raises(ValueError, match="parts"):
        beyond_hebb.run(out, ["nonsense"], "tiny")
    with pytest.raises(ValueError, match="size"):
        beyond_hebb.configs("huge")
