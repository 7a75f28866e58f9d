"""Learning rules beyond Hebb: perceptron (Gardner) learning, sparse patterns with the
covariance rule and threshold dynamics, dilution.  Kernels against slow references."""

import math
import warnings

import numpy as np
import pytest

import reference as ref
from hopfield import HopfieldNetwork, random_patterns
from hopfield.learning import (
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

SLACK = 1e-5  # hopfield.learning._ROUNDING_SLACK: training asks for stability > kappa + SLACK


# ------------------------------------------------------------------ slow references


def row_seeds(seed, n):
    """The per-row / per-cue seeds the wrappers draw at the boundary."""
    return [int(s) for s in np.random.default_rng(seed).integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64)]


def perceptron_row(X, i, kappa, max_epochs, seed):
    """Gardner's perceptron with normalised margin for neuron i, on the primal integer
    weights: a new order every epoch (SplitMix64 Fisher-Yates), update w += y x (j != i)
    whenever y h <= kappa |w|; keep the weights with the fewest patterns below the margin
    at the end of an epoch.  Returns (best w, epochs, patterns below margin)."""
    P, N = X.shape
    w = [0] * N
    state, order = int(seed), list(range(P))
    best, best_bad = None, P + 1

    def below(mu):
        y = int(X[mu, i])
        h = sum(w[j] * int(X[mu, j]) for j in range(N) if j != i)
        return float(y * h) <= kappa * math.sqrt(float(sum(v * v for v in w)))

    for epoch in range(max_epochs):
        state, order = ref.shuffle(state, order)
        for mu in order:
            if below(mu):
                y = int(X[mu, i])
                for j in range(N):
                    if j != i:
                        w[j] += y * int(X[mu, j])
        bad = sum(below(mu) for mu in range(P))
        if bad < best_bad:
            best, best_bad = list(w), bad
        if bad == 0:
            return best, epoch + 1, 0
    return best, max_epochs, best_bad


def perceptron_reference(X, kappa, max_epochs, seed, symmetric=False):
    P, N = X.shape
    rows, epochs, bad = [], [], []
    for i, s in enumerate(row_seeds(seed, N)):
        w, e, b = perceptron_row(X, i, kappa + SLACK, max_epochs, s)
        rows.append(w)
        epochs.append(e)
        bad.append(b)
    W = np.array(rows, np.float64)
    W /= np.sqrt((W * W).sum(axis=1))[:, None]
    if symmetric:
        W = 0.5 * (W + W.T)
    return W.astype(np.float32), np.array(epochs), np.array(bad)


def stabilities_reference(W, X):
    P, N = X.shape
    D = np.zeros((P, N))
    for i in range(N):
        norm = math.sqrt(math.fsum(float(W[i, j]) ** 2 for j in range(N) if j != i))
        for mu in range(P):
            h = math.fsum(float(W[i, j]) * X[mu, j] for j in range(N) if j != i)
            D[mu, i] = X[mu, i] * h / norm
    return D


def covariance_reference(V, a):
    P, N = V.shape
    W = np.zeros((N, N))
    for x in V:
        for i in range(N):
            for j in range(N):
                if i != j:
                    W[i, j] += (x[i] - a) * (x[j] - a) / (N * a * (1 - a))
    return W


def threshold_reference(W, s0, theta, seed, max_sweeps):
    """0/1 neurons one at a time in a new random order per sweep, fields from scratch."""
    s = [int(v) for v in s0]
    N = len(s)
    state, order = int(seed), list(range(N))
    for sweep in range(max_sweeps):
        state, order = ref.shuffle(state, order)
        flips = 0
        for i in order:
            d = math.fsum(float(W[i, j]) * s[j] for j in range(N) if j != i) - theta[i]
            new = 1 if d > 0 else (0 if d < 0 else s[i])
            if new != s[i]:
                s[i] = new
                flips += 1
        if flips == 0:
            return np.array(s), sweep + 1, True
    return np.array(s), max_sweeps, False


# ------------------------------------------------------------------ Gardner's bound


def test_gardner_capacity_closed_form_against_quadrature():
    assert gardner_capacity(0.0) == 2.0
    t = np.linspace(-8.0, 12.0, 400_001)
    phi = np.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    for kappa in (0.0, 0.1, 0.5, 1.0, 2.0, 3.0):
        integrand = np.where(t >= -kappa, phi * (t + kappa) ** 2, 0.0)
        assert gardner_capacity(kappa) == pytest.approx(1.0 / np.trapezoid(integrand, t), rel=1e-6)
    ks = np.array([[0.0, 0.5], [1.0, 2.0]])
    got = gardner_capacity(ks)
    assert got.shape == (2, 2) and got[0, 0] == 2.0 and np.all(np.diff(got.ravel()) < 0)
    assert gardner_capacity(np.float32(1.0)) == pytest.approx(0.5196, abs=1e-4)


@pytest.mark.parametrize("bad", [-0.1, -1, float("nan"), float("inf")])
def test_gardner_capacity_bad_kappa(bad):
    with pytest.raises(ValueError, match="kappa"):
        gardner_capacity(bad)
    with pytest.raises(ValueError, match="kappa"):
        gardner_capacity(np.array([0.0, bad]))


# --------------------------------------------------------------------- perceptron


@pytest.mark.parametrize("P,N,kappa,seed", [(6, 8, 0.0, 0), (12, 10, 0.0, 1), (12, 10, 0.4, 2), (8, 12, 1.0, 3),
                                            (15, 9, 0.2, 4)])
def test_perceptron_kernel_equals_reference(P, N, kappa, seed):
    X = random_patterns(P, N, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W, rep = perceptron_weights(X, kappa=kappa, max_epochs=200, seed=seed + 10)
    W_ref, ep_ref, bad_ref = perceptron_reference(X, kappa, 200, seed + 10)
    np.testing.assert_array_equal(W, W_ref)
    np.testing.assert_array_equal(rep.row_epochs, ep_ref)
    np.testing.assert_array_equal(rep.row_converged, bad_ref == 0)
    np.testing.assert_allclose(stabilities(W, X), stabilities_reference(W, X), rtol=0, atol=1e-12)
    if rep.converged:
        assert rep.min_stability >= kappa and rep.n_unstable == 0 and rep.n_below_margin == 0
    assert np.all(np.diagonal(W) == 0) and W.dtype == np.float32


def test_perceptron_symmetric_variant_equals_reference_and_reports_its_fixed_points():
    X = random_patterns(8, 12, seed=5)
    W, rep = perceptron_weights(X, kappa=0.3, max_epochs=500, symmetric=True, seed=6)
    W_ref, _, _ = perceptron_reference(X, 0.3, 500, 6, symmetric=True)
    np.testing.assert_array_equal(W, W_ref)
    np.testing.assert_array_equal(W, W.T)
    D = stabilities(W, X)
    assert rep.symmetric and rep.converged  # training converged; the symmetrised W may lose stabilities
    assert rep.n_unstable == int((D.min(axis=1) <= 0).sum())
    assert rep.n_below_margin == int((D.min(axis=1) < 0.3).sum())
    assert rep.min_stability == pytest.approx(D.min())


def test_perceptron_not_converging_warns_and_returns_best_weights():
    X = random_patterns(40, 8, seed=7)  # alpha = 5: far beyond Gardner's bound
    with pytest.warns(ConvergenceWarning, match=r"max_epochs=30.*patterns are not fixed points"):
        W, rep = perceptron_weights(X, kappa=0.0, max_epochs=30, seed=8)
    W_ref, ep_ref, bad_ref = perceptron_reference(X, 0.0, 30, 8)
    np.testing.assert_array_equal(W, W_ref)
    assert not rep.converged and rep.epochs == 30 and rep.rows_converged == int((bad_ref == 0).sum()) < 8
    D = stabilities(W, X)
    assert rep.n_unstable == int((D.min(axis=1) <= 0).sum()) > 0


def test_perceptron_stores_patterns_with_margin_and_they_are_fixed_points():
    X = random_patterns(60, 120, seed=9)  # alpha = 0.5 < alpha_c(0.6) = 0.85
    W, rep = perceptron_weights(X, kappa=0.6, seed=10)
    assert rep.converged and rep.n_unstable == 0 and rep.n_below_margin == 0
    assert rep.min_stability >= 0.6
    np.testing.assert_allclose(np.linalg.norm(W.astype(np.float64), axis=1), 1.0, atol=1e-6)
    D = stabilities(W, X)
    assert D.min() == pytest.approx(rep.min_stability)
    with pytest.warns(UserWarning, match="not symmetric"):
        net = HopfieldNetwork(W)
    res = net.recall(X, seed=0)
    np.testing.assert_array_equal(res.states, X)
    assert res.sweeps.max() == 1 and res.converged.all()


def test_perceptron_goes_beyond_hebb_capacity():
    X = random_patterns(150, 100, seed=11)  # alpha = 1.5: Hebb stores nothing here
    W, rep = perceptron_weights(X, kappa=0.0, max_epochs=5000, seed=12)
    assert rep.converged and rep.n_unstable == 0


def test_perceptron_convergence_rows_match_full_training():
    X = random_patterns(17, 20, seed=13)  # near Gardner's bound 0.96 N: some rows converge, some not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, rep = perceptron_weights(X, kappa=0.5, max_epochs=300, seed=14)
    rows = np.array([3, 17, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        conv, epochs, bad = perceptron_convergence(X, kappa=0.5, rows=rows, max_epochs=300, seed=14)
    np.testing.assert_array_equal(conv, rep.row_converged[rows])
    np.testing.assert_array_equal(epochs, rep.row_epochs[rows])
    assert np.all((bad == 0) == conv)
    assert 0 < rep.rows_converged < 20
    with pytest.raises(ValueError, match="rows"):
        perceptron_convergence(X, rows=np.array([20]))


@pytest.mark.parametrize("kappa", [-0.01, -1.0, float("nan"), float("inf")])
def test_perceptron_bad_kappa(kappa):
    X = random_patterns(5, 10, seed=0)
    with pytest.raises(ValueError, match="kappa"):
        perceptron_weights(X, kappa=kappa)
    with pytest.raises(ValueError, match="kappa"):
        perceptron_convergence(X, kappa=kappa)


def test_perceptron_bad_input():
    X = random_patterns(5, 10, seed=0)
    with pytest.raises(TypeError, match="kappa"):
        perceptron_weights(X, kappa="0.5")
    with pytest.raises(ValueError, match=r"only \+1 and -1"):
        perceptron_weights(np.where(X > 0, 1, 0))
    with pytest.raises(ValueError, match="max_epochs"):
        perceptron_weights(X, max_epochs=0)
    with pytest.raises(ValueError, match="neurons"):
        stabilities(np.zeros((9, 9)), X)


# ------------------------------------------------------------------ sparse patterns


def test_sparse_patterns_and_covariance_rule_against_reference():
    V = sparse_patterns(400, 50, 0.1, seed=0)
    assert V.dtype == np.int8 and set(np.unique(V)) <= {0, 1}
    assert V.mean() == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(V, sparse_patterns(400, 50, 0.1, seed=0))
    V = V[:5, :12]
    W = covariance_weights(V, 0.2)
    np.testing.assert_allclose(W, covariance_reference(V, 0.2), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(W, W.T)
    np.testing.assert_allclose(covariance_weights(V), covariance_reference(V, V.mean()), rtol=1e-6, atol=1e-7)


def test_covariance_rule_at_half_is_hebb_on_spins():
    X = random_patterns(7, 30, seed=1)
    W = covariance_weights((X + 1) // 2, 0.5)
    np.testing.assert_allclose(W, HopfieldNetwork.from_patterns(X).weights, atol=1e-6)


@pytest.mark.parametrize("a", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_coding_level_outside_open_interval(a):
    with pytest.raises(ValueError, match="coding_level"):
        sparse_patterns(3, 10, a)
    with pytest.raises(ValueError, match="coding_level"):
        covariance_weights(np.eye(3, 10, dtype=np.int8), a)
    with pytest.raises(ValueError, match="coding_level"):
        tsodyks_feigelman_capacity(a)
    with pytest.raises(ValueError, match="coding_level"):
        sparse_overlaps(np.eye(2, 4), np.eye(2, 4), a)


def test_sparse_bad_patterns_and_thresholds():
    with pytest.raises(ValueError, match="only 0 and 1"):
        covariance_weights(random_patterns(3, 10, seed=0))
    with pytest.raises(ValueError, match="coding_level"):
        covariance_weights(np.zeros((3, 10)))  # mean activity 0
    W = np.zeros((4, 4))
    with pytest.raises(ValueError, match="theta"):
        threshold_recall(W, np.zeros(4), theta=np.zeros(3))
    with pytest.raises(ValueError, match="theta"):
        threshold_recall(W, np.zeros(4), theta=float("nan"))
    with pytest.raises(ValueError, match="only 0 and 1"):
        threshold_recall(W, -np.ones(4), theta=0.5)
    with pytest.raises(ValueError, match="length"):
        threshold_recall(W, np.zeros(5), theta=0.5)
    assert tsodyks_feigelman_capacity(0.01) == pytest.approx(1 / (2 * 0.01 * math.log(100)))


@pytest.mark.parametrize("N,n_cues,seed", [(9, 4, 0), (16, 3, 1), (25, 2, 2)])
def test_threshold_kernel_equals_reference(N, n_cues, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((N, N)).astype(np.float32)  # not symmetric: columns are read on flips
    theta = rng.standard_normal(N) * 0.5
    cues = (rng.random((n_cues, N)) < 0.3).astype(np.int8)
    res = threshold_recall(W, cues, theta, max_sweeps=20, seed=seed + 5)
    for c, s in enumerate(row_seeds(seed + 5, n_cues)):
        s_ref, sw, ok = threshold_reference(W, cues[c], theta, s, 20)
        np.testing.assert_array_equal(res.states[c], s_ref)
        assert res.sweeps[c] == sw and res.converged[c] == ok
    one = threshold_recall(W, cues[0], float(theta[0]), max_sweeps=20, seed=1)
    assert one.states.shape == (N,)


def test_sparse_patterns_are_retrieved_at_low_load():
    a, N = 0.1, 400
    V = sparse_patterns(20, N, a, seed=3)
    W = covariance_weights(V, a)
    res = threshold_recall(W, V, theta=0.5, seed=4)
    np.testing.assert_array_equal(res.states, V)
    np.testing.assert_allclose(sparse_overlaps(res.states, V, a), 1.0)
    cues = V.copy()
    cues[:, :40] = 0  # erase part of each pattern
    res = threshold_recall(W, cues, theta=0.5, seed=5)
    assert sparse_overlaps(res.states, V, a).min() > 0.95


# ---------------------------------------------------------------------- dilution


def test_dilute_symmetric_and_asymmetric():
    N = 60
    W = np.random.default_rng(0).standard_normal((N, N)).astype(np.float32)
    W = W + W.T  # no zero off the diagonal, so every removed synapse shows
    off = ~np.eye(N, dtype=bool)
    D = dilute(W, 0.3, symmetric=True, seed=1)
    np.testing.assert_array_equal(D, D.T)
    removed = (D == 0) & off
    assert removed.sum() == 2 * round(0.3 * N * (N - 1) / 2)
    np.testing.assert_array_equal(D[~removed & off], W[~removed & off])
    A = dilute(W, 0.3, symmetric=False, seed=1)
    removed = (A == 0) & off
    assert removed.sum() == round(0.3 * N * (N - 1)) and not np.array_equal(A, A.T)
    assert np.all(np.diagonal(A) == 0)
    np.testing.assert_array_equal(A, dilute(W, 0.3, symmetric=False, seed=1))
    np.testing.assert_array_equal(dilute(W, 0.0, seed=2)[off], W[off])
    rho = np.corrcoef(W[off], dilute(W, 0.5, seed=3)[off])[0, 1]
    assert rho == pytest.approx(math.sqrt(0.5), abs=0.03)


@pytest.mark.parametrize("f", [1.0, -0.1, 1.5, float("nan")])
def test_dilute_bad_fraction(f):
    with pytest.raises(ValueError, match="fraction"):
        dilute(np.zeros((4, 4)), f)


def spin_threshold_reference(W, sigma0, theta_spin, seed, max_sweeps):
    """+-1 neurons with thresholds: sigma_i <- sign(sum_j W_ij sigma_j - theta_i), ties keep."""
    s = [int(v) for v in sigma0]
    N = len(s)
    state, order = int(seed), list(range(N))
    for sweep in range(max_sweeps):
        state, order = ref.shuffle(state, order)
        flips = 0
        for i in order:
            d = math.fsum(float(W[i, j]) * s[j] for j in range(N) if j != i) - theta_spin[i]
            new = 1 if d > 0 else (-1 if d < 0 else s[i])
            if new != s[i]:
                s[i] = new
                flips += 1
        if flips == 0:
            return np.array(s), sweep + 1, True
    return np.array(s), max_sweeps, False


def test_01_threshold_dynamics_are_spin_dynamics_with_shifted_thresholds():
    """s = (1 + sigma) / 2 maps 0/1 threshold dynamics onto +-1 dynamics with the same W and
    thresholds theta'_i = 2 theta_i - sum_{j != i} W_ij (the integration path into the main
    kernels: they only need a per-neuron threshold)."""
    a, N = 0.1, 40
    V = sparse_patterns(6, N, a, seed=0)
    W = covariance_weights(V, a)
    theta = np.full(N, 0.5)
    cues = V.copy()
    cues[:, :4] = 1 - cues[:, :4]
    res = threshold_recall(W, cues, theta, seed=3)
    shifted = 2 * theta - W.astype(np.float64).sum(axis=1)
    for c, s in enumerate(row_seeds(3, len(cues))):
        sigma, sw, ok = spin_threshold_reference(W, 2 * cues[c].astype(int) - 1, shifted, s, 100)
        np.testing.assert_array_equal(res.states[c], (sigma + 1) // 2)
        assert res.sweeps[c] == sw and res.converged[c] == ok


def test_threshold_recall_leaves_the_callers_weights_alone():
    rng = np.random.default_rng(0)
    W = np.asfortranarray(rng.standard_normal((6, 6)).astype(np.float32))
    before = W.copy()
    threshold_recall(W, np.ones(6), 0.0, seed=0)
    np.testing.assert_array_equal(W, before)
    assert gardner_capacity(np.array(0.0)) == 2.0


# ------------------------------------------------------- HopfieldNetwork integration


def test_from_patterns_perceptron_equals_perceptron_weights():
    X = random_patterns(40, 100, seed=0)
    net = HopfieldNetwork.from_patterns(X, rule="perceptron", kappa=0.5, max_epochs=500, seed=1)
    W, report = perceptron_weights(X, kappa=0.5, max_epochs=500, seed=1)
    np.testing.assert_array_equal(net.weights, W)
    got = net.training_report
    assert (got.epochs, got.n_unstable, got.min_stability) == (report.epochs, report.n_unstable, report.min_stability)
    np.testing.assert_array_equal(got.row_epochs, report.row_epochs)
    assert net.training_report.converged and not net.symmetric


def test_from_patterns_perceptron_symmetric_variant():
    X = random_patterns(20, 100, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = HopfieldNetwork.from_patterns(X, rule="perceptron", kappa=0.5, symmetric=True, seed=1)
    assert net.symmetric and np.array_equal(net.weights, net.weights.T)
    assert net.training_report.symmetric


def test_perceptron_patterns_are_fixed_points_of_recall():
    X = random_patterns(60, 120, seed=2)
    net = HopfieldNetwork.from_patterns(X, rule="perceptron", kappa=0.3, seed=3)
    for dynamics in ("async", "sync"):
        res = net.recall(X, dynamics=dynamics, seed=4)
        np.testing.assert_array_equal(res.states, X)
        assert res.converged.all() and (res.sweeps == 1).all()


def test_hebb_network_has_no_training_report():
    X = random_patterns(5, 50, seed=0)
    assert HopfieldNetwork.from_patterns(X).training_report is None


@pytest.mark.parametrize("rule", ["hebb", "projection", "storkey"])
@pytest.mark.parametrize("extra", [dict(kappa=0.5), dict(max_epochs=10), dict(symmetric=True), dict(seed=0),
                                   dict(kappa=0.0, seed=1)])
def test_perceptron_extras_with_another_rule_are_refused(rule, extra):
    X = random_patterns(5, 50, seed=0)
    with pytest.raises(ValueError, match=f"{next(iter(extra))}.*apply only to rule='perceptron'"):
        HopfieldNetwork.from_patterns(X, rule=rule, **extra)


def test_from_patterns_perceptron_refuses_negative_kappa():
    X = random_patterns(5, 50, seed=0)
    with pytest.raises(ValueError, match="kappa"):
        HopfieldNetwork.from_patterns(X, rule="perceptron", kappa=-0.1)


def test_quantize_per_row_warns_only_for_symmetric_networks():
    X = random_patterns(20, 100, seed=0)
    net = HopfieldNetwork.from_patterns(X, rule="perceptron", kappa=0.5, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        net.quantize(3, axis=0)
    with pytest.warns(UserWarning, match="break the symmetry"):
        HopfieldNetwork.from_patterns(X).quantize(3, axis=0)
