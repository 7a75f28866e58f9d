"""Hopfield studies: tidy rows, determinism, plots, and the demo command."""

import csv
import json

import numpy as np
import pytest

from hopfield import HopfieldNetwork, random_patterns
from hopfield import studies as S
from hopfield.__main__ import main


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_capacity_rows_are_tidy_and_deterministic():
    kw = dict(n_neurons=200, loads=(0.05, 0.3), bits=(None, 1, 3), trials=2, seed=3)
    rows = S.capacity(**kw)
    assert len(rows) == 2 * 2 * 3
    assert {r["bits"] for r in rows} == {"float", 1, 3}
    assert _strip(rows) == _strip(S.capacity(**kw))
    assert _strip(rows) != _strip(S.capacity(**{**kw, "seed": 4}))
    low = np.mean([r["retrieved"] for r in rows if r["load"] == 0.05 and r["bits"] == "float"])
    high = np.mean([r["retrieved"] for r in rows if r["load"] == 0.3 and r["bits"] == "float"])
    assert low > 0.9 and high < 0.5
    for r in rows:
        assert 0 <= r["retrieved"] <= 1 and -1 <= r["overlap"] <= 1 and 0 < r["rho"] <= 1


def test_basins_and_recall_vs_bits():
    rows = S.basins(n_neurons=200, loads=(0.05,), bits=(None, 2), noise_levels=(0.0, 0.45), trials=1, seed=0)
    by = {(r["bits"], r["noise"]): r["retrieved"] for r in rows}
    assert by[("float", 0.0)] >= by[("float", 0.45)]
    rows = S.recall_vs_bits(n_neurons=300, loads=(0.1,), bits=(1, 2, 4), schemes=("uniform",),
                            objectives=("correlation",), trials=1, seed=0)
    rhos = [r["rho"] for r in sorted(rows, key=lambda r: r["bits"])]
    assert rhos == sorted(rhos)


def test_basin_radii():
    X = random_patterns(10, 300, seed=0)
    net = HopfieldNetwork.from_patterns(X)
    r = S.basin_radii(net, X, noise_levels=(0.0, 0.1, 0.2, 0.3, 0.4), trials=2, seed=1)
    assert r.shape == (10,) and np.all(r >= 0.2)
    X2 = random_patterns(45, 300, seed=0)
    r2 = S.basin_radii(HopfieldNetwork.from_patterns(X2), X2, noise_levels=(0.0, 0.1, 0.2, 0.3, 0.4), seed=1)
    assert r2.mean() < r.mean()


def test_plots(tmp_path):
    rows = S.capacity(n_neurons=100, loads=(0.05, 0.15), bits=(None, 2), trials=2, seed=0)
    S.plot_capacity(rows, tmp_path / "cap.png")
    S.plot_recall_vs_bits(rows, tmp_path / "rvb.png")
    rows = S.basins(n_neurons=100, loads=(0.05,), bits=(None,), noise_levels=(0.0, 0.2), trials=1)
    S.plot_basins(rows, tmp_path / "b.png")
    for f in ("cap.png", "rvb.png", "b.png"):
        assert (tmp_path / f).read_bytes()[:4] == b"\x89PNG"


def test_study_validation():
    with pytest.raises(ValueError, match="loads must be a non-empty list of positive numbers"):
        S.capacity(n_neurons=50, loads=(-0.1,))
    with pytest.raises(ValueError, match="n_neurons must be an int >= 2"):
        S.capacity(n_neurons=1)
    with pytest.raises(ValueError, match="bits is empty"):
        S.capacity(n_neurons=50, bits=())
    with pytest.raises(ValueError, match="noise must be a number in"):
        S.basins(n_neurons=50, noise_levels=(1.5,))


def test_demo_command(tmp_path, capsys):
    assert main(["demo", "--n", "150", "--loads", "0.05", "--trials", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fraction retrieved" in out and "float" in out
    rows = list(csv.DictReader(open(tmp_path / "recall_vs_bits.csv")))
    assert len(rows) == 1 + 8 * 3 * 2
    meta = json.loads((tmp_path / "recall_vs_bits.json").read_text())
    assert meta["seed"] == 0 and meta["seconds"] > 0 and meta["parameters"]["n_neurons"] == 150
    assert (tmp_path / "recall_vs_bits.png").stat().st_size > 10_000


def test_demo_bad_argument(capsys):
    assert main(["demo", "--n", "1", "--out", "/tmp/x"]) == 2
    assert "n_neurons must be an int >= 2" in capsys.readouterr().err


def test_study_is_resumable_and_loses_only_unfinished_tasks(tmp_path, monkeypatch):
    kw = dict(n_neurons=120, loads=(0.05, 0.1, 0.15), bits=(None, 2), trials=2, seed=1, cache_dir=tmp_path)
    full = S.capacity(**kw)
    assert len(list(tmp_path.glob("*.json"))) == 6
    # interrupt a fresh run after two tasks: their files stay, the rest is recomputed on rerun
    calls = {"n": 0}
    real = S._measure

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    d2 = tmp_path / "second"
    monkeypatch.setattr(S, "_measure", failing)
    with pytest.raises(KeyboardInterrupt):
        S.capacity(**{**kw, "cache_dir": d2})
    assert len(list(d2.glob("*.json"))) == 2
    monkeypatch.setattr(S, "_measure", real)
    resumed = S.capacity(**{**kw, "cache_dir": d2})
    assert _strip(resumed) == _strip(full)
    # a rerun reads every task back without computing
    monkeypatch.setattr(S, "_measure", failing)
    calls["n"] = 10
    assert _strip(S.capacity(**kw)) == _strip(full)


def test_critical_loads_and_extrapolation():
    rows = []
    for N, shift in ((500, 0.02), (1000, 0.01), (2000, 0.005)):
        for t in range(3):
            for a in np.round(np.arange(0.10, 0.2, 0.01), 3):
                ac = 0.14 + shift + 0.001 * (t - 1)
                rows.append(dict(n_neurons=N, bits="float", scheme="none", objective="none", trial=t, load=a,
                                 rho=1.0, n_patterns=int(a * N), retrieved=float(np.clip(0.5 + (ac - a) * 20, 0, 1))))
    crit = S.critical_loads(rows)
    by = {c["n_neurons"]: c for c in crit}
    assert by[1000]["alpha_c"] == pytest.approx(0.15, abs=1e-9)
    assert 0 < by[500]["alpha_c_err"] < 0.005
    ext = S.extrapolate(crit)
    assert ext[0]["alpha_inf"] == pytest.approx(0.14, abs=1e-6) and ext[0]["slope"] == pytest.approx(10.0, rel=1e-4)
    assert ext[0]["chi2_dof"] < 1e-6  # the data follow 1/N exactly
    assert S.extrapolate(crit, law="1/sqrt(N)")[0]["chi2_dof"] > ext[0]["chi2_dof"]
    with pytest.raises(ValueError, match="law='log'"):
        S.extrapolate(crit, law="log")


def test_critical_loads_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    rows = [dict(n_neurons=n, bits=b, scheme="uniform", objective="correlation", load=a, trial=t, n_patterns=int(a * n),
                 rho=0.9, retrieved=float(np.clip(0.5 - (a - 0.12) / 0.03 + rng.normal(0, 0.1), 0, 1)))
            for n in (500, 1000) for b in (1, 2) for a in (0.09, 0.11, 0.13, 0.15) for t in range(4)]
    a = S.critical_loads(rows)
    b = S.critical_loads(rows[::-1])
    key = lambda r: (r["n_neurons"], r["bits"])  # noqa: E731
    assert sorted(a, key=key) == sorted(b, key=key)
    # the bootstrap ran (four scattered trials): it sets the errors above the binomial floor
    floor = {key(r): r["alpha_c_err"] for r in S.critical_loads(rows, n_boot=0)}
    assert all(r["alpha_c_err"] >= floor[key(r)] for r in a) and any(r["alpha_c_err"] > floor[key(r)] for r in a)
