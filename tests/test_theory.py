"""The replica-symmetric theory with static synaptic noise."""

import math

import pytest

from hopfield import theory as T


def test_known_critical_loads_and_overlap():
    assert round(T.critical_load(1.0), 3) == 0.138  # Amit, Gutfreund & Sompolinsky
    assert round(T.critical_load(math.sqrt(2 / math.pi)), 3) == 0.102  # clipped synapses, Sompolinsky 1986
    assert round(T.critical_point(1.0)[1], 3) == 0.967
    assert T.static_noise(1.0) == 0.0
    assert T.static_noise(math.sqrt(2 / math.pi)) == pytest.approx(math.pi / 2 - 1)


def test_solutions_satisfy_the_original_equations():
    """m = erf(m / sqrt(2 q)), C = sqrt(2 / (pi q)) exp(-m^2 / (2 q)), r = 1/(1-C)^2 with
    q = alpha (r + D), at the overlap the solver returns."""
    for rho in (1.0, 0.95, 0.8, 0.5):
        D = T.static_noise(rho)
        for frac in (0.2, 0.6, 0.95, 1.0):
            a = frac * T.critical_load(rho)
            m = T.overlap(a, rho)
            y = T._erfinv(m)
            q = m * m / (2 * y * y)
            C = math.sqrt(2 / (math.pi * q)) * math.exp(-m * m / (2 * q))
            r = 1 / (1 - C) ** 2
            assert m == pytest.approx(math.erf(m / math.sqrt(2 * q)), abs=1e-12)
            assert q == pytest.approx(a * (r + D), rel=1e-6), (rho, frac)


def test_overlap_branch_and_monotonicity():
    ms = [T.overlap(a, 1.0) for a in (0.01, 0.05, 0.1, 0.13, 0.1379)]
    assert all(b < a for a, b in zip(ms, ms[1:]))
    assert ms[0] > 0.999 and ms[-1] == pytest.approx(0.967, abs=2e-3)
    assert T.overlap(0.14, 1.0) == 0.0
    loads = [T.critical_load(r) for r in (0.3, 0.5, 0.8, 0.95, 1.0)]
    assert all(b > a for a, b in zip(loads, loads[1:]))


def test_predicted_rho_uses_the_core():
    assert T.predicted_rho(None) == 1.0
    assert T.predicted_rho(1, "uniform") == pytest.approx(math.sqrt(2 / math.pi), abs=2e-3)
    assert T.predicted_rho(2, "lloyd") == pytest.approx(0.9394, abs=1e-3)
    assert T.predicted_critical_load(1) == pytest.approx(0.102, abs=1e-3)
    assert T.predicted_critical_load(4, "uniform") > T.predicted_critical_load(2, "uniform")


@pytest.mark.parametrize("rho", [0.0, -0.1, 1.01, float("nan")])
def test_bad_rho(rho):
    with pytest.raises(ValueError, match="rho must lie in"):
        T.critical_load(rho)


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha must be a positive"):
        T.overlap(0.0)


def test_load_at_overlap():
    assert T.load_at_overlap(0.9, 1.0) == T.critical_load(1.0)  # m_c = 0.967 > 0.9
    a = T.load_at_overlap(0.97, math.sqrt(2 / math.pi))
    assert a < T.critical_load(math.sqrt(2 / math.pi))
    assert T.overlap(a, math.sqrt(2 / math.pi)) == pytest.approx(0.97, abs=1e-6)
    with pytest.raises(ValueError, match="m must lie in"):
        T.load_at_overlap(1.0)
