"""The statistics and the load plan of bench/theory_vs_simulation.py, against closed forms
and a simulated study whose crossings are known."""

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import theory_vs_simulation as tvs  # noqa: E402


@pytest.mark.parametrize("x", [0.0, 0.01, 0.3, 1.0, 2.5, 5.0, 9.9, 17.2, 42.3, 80.0])
def test_chi2_sf_matches_closed_forms(x):
    # k = 1, 2, 4, 6 have elementary survival functions; both of chi2_sf's branches are hit
    assert tvs.chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-10, abs=1e-300)
    assert tvs.chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-10, abs=1e-300)
    assert tvs.chi2_sf(x, 4) == pytest.approx(math.exp(-x / 2) * (1 + x / 2), rel=1e-10, abs=1e-300)
    assert tvs.chi2_sf(x, 6) == pytest.approx(math.exp(-x / 2) * (1 + x / 2 + x * x / 8), rel=1e-10, abs=1e-300)


def test_chi2_sf_matches_scipy_at_odd_degrees():
    stats = pytest.importorskip("scipy.stats")
    for k in (3, 5, 10, 15, 31):
        for x in (0.5, k - 1.5, k + 0.5, 2.0 * k, 42.3):
            assert tvs.chi2_sf(x, k) == pytest.approx(stats.chi2.sf(x, k), rel=1e-9)


@pytest.mark.parametrize("p", [0.5, 0.8, 1.0])
def test_exponent_scan_recovers_the_exponent(p):
    sizes = [2000, 4000, 8000, 16000, 32000]
    rs = [dict(n_neurons=n, alpha_c=0.138 + 0.25 * n ** -p, alpha_c_err=1e-5) for n in sizes]
    f = tvs.exponent_scan(rs)
    assert f["p"] == pytest.approx(p, abs=0.011)
    assert f["alpha_inf"] == pytest.approx(0.138, abs=2e-4)
    assert f["p_lo"] <= p <= f["p_hi"]


class FakeStudy:
    """A study whose fraction retrieved falls linearly through each variant's crossing; the
    trials scatter around it (+-0.04) and average to it exactly."""

    def __init__(self, crossings, trials=3):
        self.crossings, self.trials, self.calls = crossings, trials, []

    def __call__(self, load, keys):
        self.calls.append((load, tuple(keys)))
        rows = []
        for k in keys:
            for t in range(self.trials):
                # retrieved falls linearly from 1 to 0 across 0.02 around the crossing
                frac = float(np.clip(0.5 - (load - self.crossings[k]) / 0.02, 0.0, 1.0))
                frac += 0.04 * (t - (self.trials - 1) / 2) if 0.1 < frac < 0.9 else 0.0
                rows.append(dict(n_neurons=32000, bits=k[0], scheme=k[1], objective=k[2], load=load, trial=t,
                                 retrieved=frac, n_patterns=int(load * 32000), rho=1.0))
        return rows


def test_bracket_extends_until_each_crossing_is_bracketed():
    true = {("float", "none", "none"): 0.14210, (1, "uniform", "correlation"): 0.10140,
            (2, "uniform", "correlation"): 0.12990}
    # predictions off by 0.0001 (float), 3 steps low (1 bit) and 2 steps high (2 bits)
    pred = {("float", "none", "none"): 0.14220, (1, "uniform", "correlation"): 0.0940,
            (2, "uniform", "correlation"): 0.1350}
    fake = FakeStudy(true)
    rows = tvs.bracket(pred, fake, 0.0025)
    for k, c in true.items():
        loads = sorted({r["load"] for r in rows if tvs.key(r) == k})
        # every load is on the grid, no load repeats, and the loads run contiguously
        assert all(abs(x / 0.0025 - round(x / 0.0025)) < 1e-6 for x in loads)
        assert len([1 for x, ks in fake.calls if k in ks]) == len(loads)
        assert np.allclose(np.diff(loads), 0.0025)
        # the lowest retrieves at least half, the highest less: the crossing lies inside
        frac = {x: np.mean([r["retrieved"] for r in rows if tvs.key(r) == k and r["load"] == x]) for x in loads}
        assert frac[loads[0]] >= 0.5 > frac[loads[-1]]
        assert loads[0] <= c <= loads[-1]
        # and nothing beyond the grid cells of the prediction and of the crossing
        assert loads[-1] - loads[0] <= abs(pred[k] - c) + 2 * 0.0025 + 1e-9
    crit = {tvs.key(x): x["alpha_c"] for x in tvs.studies.critical_loads(rows)}
    for k, c in true.items():
        assert crit[k] == pytest.approx(c, abs=1e-9)  # the fake falls linearly: interpolation is exact


def test_bracket_shares_a_load_between_variants():
    true = {("float", "none", "none"): 0.1421, (4, "uniform", "correlation"): 0.1411}
    fake = FakeStudy(true)
    tvs.bracket(dict(true), fake, 0.0025)
    loads = [x for x, _ in fake.calls]
    assert len(loads) == len(set(loads))  # one run per load, both variants in it
    assert (0.14, (("float", "none", "none"), (4, "uniform", "correlation"))) in [
        (x, tuple(sorted(ks, key=str))) for x, ks in fake.calls]


def test_bracket_gives_up_after_max_rounds(capsys):
    k, f = (1, "uniform", "correlation"), ("float", "none", "none")
    fake = FakeStudy({k: 0.5, f: 0.6})  # always retrieved on the grid it is allowed to search
    rows = tvs.bracket({k: 0.10, f: 0.11}, fake, 0.0025, max_rounds=3)
    for v in (k, f):
        assert len({r["load"] for r in rows if tvs.key(r) == v}) == 4  # two, then one more per later round
    out = capsys.readouterr().out
    assert "1-bit uniform correlation: not bracketed after 3 rounds" in out and "float: not bracketed" in out


def test_bracket_stops_at_the_load_floor_and_says_so(capsys):
    k = (1, "uniform", "correlation")
    fake = FakeStudy({k: -0.05})  # retrieved under 1/2 at every positive load
    rows = tvs.bracket({k: 0.004}, fake, 0.0025)
    assert sorted({r["load"] for r in rows}) == [0.0025, 0.005]
    assert "retrieves under 0.5 down to load 0.0025" in capsys.readouterr().out


def test_bracket_reports_a_variant_without_rows(capsys):
    k, f = (1, "uniform", "correlation"), ("float", "none", "none")
    fake = FakeStudy({k: 0.1014, f: 0.1421})
    rows = tvs.bracket({k: 0.1014, f: 0.1421}, lambda load, keys: [r for r in fake(load, keys) if tvs.key(r) == k],
                       0.0025)
    assert {tvs.key(r) for r in rows} == {k}
    assert "float: no rows at load" in capsys.readouterr().out


def test_main_runs_the_bracketed_size_last_and_forecasts_it(tmp_path, monkeypatch, capsys):
    """The whole script on a fake study whose crossings follow alpha_inf + b / sqrt(N)
    exactly: the largest size runs last, one load at a time, only next to each crossing,
    and the 1/sqrt(N) forecast made before it ran hits the measurement."""
    inf = {tvs.key(c): 0.10 + 0.01 * i for i, c in enumerate(tvs.CORE)}
    calls = []

    def fake_capacity(n_neurons, loads, configs, trials, **kw):
        calls.append((n_neurons, tuple(loads), tuple(tvs.key(c) for c in configs)))
        crossings = {tvs.key(c): inf[tvs.key(c)] + 0.3 / math.sqrt(n_neurons) for c in configs}
        rows = FakeStudy(crossings, trials)
        out = []
        for a in loads:
            for r in rows(a, list(crossings)):
                r.update(n_neurons=n_neurons, n_patterns=int(a * n_neurons), rho=1.0 if r["bits"] == "float" else 0.9)
                out.append(r)
        return out

    monkeypatch.setattr(tvs.studies, "capacity", fake_capacity)
    monkeypatch.setattr(sys, "argv", ["tvs", "--configs", "core", "--load-step", "0.0025", "--sizes", "8000", "2000",
                                      "4000", "--trials", "3", "3", "3", "--bracket", "--out", str(tmp_path)])
    tvs.main()
    sizes = [n for n, _, _ in calls]
    assert sizes[:2] == [2000, 4000] and set(sizes[2:]) == {8000}  # grid sizes first, the bracketed one last
    for n, loads, keys in calls[2:]:
        assert len(loads) == 1
        for k in keys:  # each load within two grid steps of that variant's true crossing
            assert abs(loads[0] - (inf[k] + 0.3 / math.sqrt(8000))) <= 2 * 0.0025
    out = capsys.readouterr().out
    table = out[out.index("out of sample: alpha_c at N=8000"):].splitlines()[2:7]
    assert len(table) == 5
    for line in table:  # the 1/sqrt(N) law forecasts the fake exactly, 1/N misses it
        measured, _, p_n, _, _, p_sqrt, _, dev_sqrt = map(float, re.findall(r"-?\d+\.\d+", line))
        assert abs(measured - p_sqrt) <= 2e-5 and abs(dev_sqrt) < 0.2
        assert p_n - measured > 3e-4  # 4.1e-4 for exact points at N = 2,000 and 4,000
    assert (tmp_path / "theory_vs_simulation.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "2000", "4000", "--bracket"], "at least two sizes below 4000"),
    (["--sizes", "2000", "4000", "8000", "--bracket", "9000"], "FROM_N must be positive"),
    (["--sizes", "2000", "4000", "8000", "--bracket", "--loads", "0.1", "0.11"], "--bracket chooses the loads"),
    (["--sizes", "2000", "4000", "--size-loads", "2000=0.1", "--size-loads", "2000=0.12"], "twice"),
    (["--sizes", "2000", "4000", "--size-loads", "3000=0.1"], "not one of --sizes"),
    (["--sizes", "2000", "4000", "--size-loads", "2000=0.1,abc"], "expected N=LOAD"),
    (["--sizes", "2000", "4000", "--size-loads", "2000=0.1,1.5"], "between 0 and 1"),
])
def test_main_rejects_bad_arguments(argv, message, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["tvs", "--out", str(tmp_path)] + argv)
    with pytest.raises(SystemExit):
        tvs.main()
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_forecast_matches_numpy_polyfit(power):
    rng = np.random.default_rng(1)
    sizes = [2000, 4000, 8000, 16000]
    err = rng.uniform(1e-4, 6e-4, len(sizes))
    y = 0.138 + 0.3 * np.array(sizes, float) ** -power + rng.normal(0, err)
    rs = [dict(n_neurons=n, alpha_c=a, alpha_c_err=e) for n, a, e in zip(sizes, y, err)]
    p, pe = tvs.forecast(rs, 32000, power)
    x = np.array(sizes, float) ** -power
    coef, cov = np.polyfit(x, y, 1, w=1 / err, cov="unscaled")
    v = np.array([32000.0 ** -power, 1.0])
    assert p == pytest.approx(v @ coef, rel=1e-12)
    assert pe == pytest.approx(math.sqrt(v @ cov @ v), rel=1e-9)
    assert tvs.forecast(rs[:1], 32000, power) != tvs.forecast(rs[:1], 32000, power)  # nan with one size
