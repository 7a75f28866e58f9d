"""Learning rules beyond Hebb: perceptron (Gardner) learning with a stability margin,
sparse patterns with the covariance rule and threshold dynamics, diluted synapses.

Perceptron learning
-------------------
Each neuron's incoming weights (row i of W, w_ii = 0) are trained independently until
every stored pattern is a fixed point with normalised local stability

    Delta_i^mu = xi_i^mu h_i^mu / |w_i| >= kappa,   h_i^mu = sum_{j != i} w_ij xi_j^mu,

|w_i| the Euclidean norm of row i (E. Gardner, "The space of interactions in neural
network models", J. Phys. A 21, 257 (1988)).  Random patterns can be stored this way up
to Gardner's bound alpha_c(kappa) = 1 / int_{-kappa}^inf Dt (t + kappa)^2 (2 at kappa = 0;
:func:`gardner_capacity`).  Rows are trained independently, so W is in general not
symmetric: there is no energy function, asynchronous dynamics are not guaranteed to reach
a fixed point (they may cycle) and synchronous ones may end in cycles longer than 2.  The
stored patterns themselves are fixed points whatever the update order, and a margin
kappa > 0 gives them basins of attraction.  ``symmetric=True`` returns (W + W^T) / 2 of
the row-normalised weights, which restores the energy but not the stabilities: the
report says how many patterns remain fixed points.

Sparse patterns
---------------
0/1 patterns with coding level a (fraction of active units), the covariance rule
W_ij = sum_mu (xi_i^mu - a)(xi_j^mu - a) / (N a (1 - a)) and threshold dynamics
s_i <- Theta(h_i - theta_i) (M. V. Tsodyks and M. V. Feigel'man, "The enhanced storage
capacity in neural networks with low activity level", Europhys. Lett. 6, 101 (1988):
alpha_c ~ 1 / (2 a |ln a|) as a -> 0; :func:`tsodyks_feigelman_capacity`).

Dilution
--------
:func:`dilute` removes a random fraction of the synapses, symmetrically (pairs) or not.
For zero-mean weights the diluted matrix has correlation sqrt(1 - fraction) with the
original one; for Hebbian weights symmetric dilution acts as static synaptic noise of
relative variance D = 1/rho^2 - 1 = fraction / (1 - fraction) (Sompolinsky, Phys. Rev. A
34, 2571 (1986)), the same theory as for quantization (:mod:`hopfield.theory`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from . import _learning_kernels as LK
from ._validate import check_patterns, check_positive_int, check_weights
from .network import RecallResult

__all__ = [
    "ConvergenceWarning",
    "PerceptronReport",
    "gardner_capacity",
    "perceptron_weights",
    "perceptron_convergence",
    "stabilities",
    "tsodyks_feigelman_capacity",
    "sparse_patterns",
    "covariance_weights",
    "threshold_recall",
    "sparse_overlaps",
    "dilute",
]

# Training asks for stabilities above kappa + this slack, so that rounding the trained
# weights to float32 (relative error ~6e-8 per weight, ~1e-6 on a stability) never
# takes a stability the kernel accepted below kappa.
_ROUNDING_SLACK = 1e-5
_DEFAULT_MAX_EPOCHS = 1000


class ConvergenceWarning(UserWarning):
    """A perceptron did not reach the margin within its epoch limit."""


# --------------------------------------------------------------------- validation


def _check_kappa(kappa: object) -> float:
    if isinstance(kappa, bool) or not isinstance(kappa, numbers.Real):
        raise TypeError(f"kappa must be a real number >= 0, got {type(kappa).__name__} {kappa!r}.")
    k = float(kappa)
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"kappa must be a finite number >= 0 (the required stability margin), got kappa={kappa!r}; "
                         "use kappa=0 for plain fixed points.")
    return k


def _check_coding_level(a: object, name: str = "coding_level") -> float:
    if isinstance(a, bool) or not isinstance(a, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1), got {type(a).__name__} {a!r}.")
    v = float(a)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1 (the fraction of active units), got {name}={a!r}.")
    return v


def _check_binary_patterns(patterns: object, name: str = "patterns") -> np.ndarray:
    """0/1 patterns as int8 (P, N), P >= 1, N >= 2."""
    arr = np.asarray(patterns)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_patterns, n_neurons), got shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers 0/1, got dtype {arr.dtype}.")
    if arr.shape[0] == 0 or arr.shape[1] < 2:
        raise ValueError(f"{name} must hold at least one pattern of N >= 2 neurons, got shape {arr.shape}.")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must contain only 0 and 1 (sparse patterns), found {arr[first].item()!r} at index "
                         f"{first} (from +-1 patterns use (x + 1) // 2).")
    return np.ascontiguousarray(arr, dtype=np.int8)


def _check_fraction_open(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {type(value).__name__} {value!r}.")
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must lie in [0, 1) (the fraction of synapses removed; 1 would remove all), "
                         f"got {name}={value!r}.")
    return v


def _row_seeds(seed, n: int) -> np.ndarray:
    """One 64-bit seed per row/cue, drawn once at the boundary (as the dynamics do)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).astype(np.uint64)


# ---------------------------------------------------------------------- theory


def _gardner_integral(kappa: float) -> float:
    """int_{-kappa}^inf Dt (t + kappa)^2 = (1 + kappa^2) Phi(kappa) + kappa phi(kappa)."""
    Phi = 0.5 * (1.0 + math.erf(kappa / math.sqrt(2.0)))
    phi = math.exp(-0.5 * kappa * kappa) / math.sqrt(2.0 * math.pi)
    return (1.0 + kappa * kappa) * Phi + kappa * phi


def gardner_capacity(kappa: float | np.ndarray) -> float | np.ndarray:
    """Gardner's bound on the storage capacity at stability margin kappa.

    alpha_c(kappa) = 1 / int_{-kappa}^inf Dt (t + kappa)^2, Dt the standard Gaussian
    measure, in closed form 1 / ((1 + kappa^2) Phi(kappa) + kappa phi(kappa)) with Phi
    and phi the standard normal distribution and density (E. Gardner, J. Phys. A 21, 257
    (1988), eq. 29): the largest P / N of random unbiased patterns that a network with
    continuous weights can store with every normalised stability >= kappa, as N -> inf.

    Parameters
    ----------
    kappa : float or array of float, >= 0

    Returns
    -------
    float or ndarray of float64

    Raises
    ------
    ValueError
        kappa < 0 or not finite.

    Examples
    --------
    >>> gardner_capacity(0.0)
    2.0
    >>> round(gardner_capacity(1.0), 4)
    0.5196
    """
    if np.ndim(kappa) == 0:
        if isinstance(kappa, (np.ndarray, np.generic)):
            kappa = kappa.item()
        return 1.0 / _gardner_integral(_check_kappa(kappa))
    arr = np.asarray(kappa, dtype=np.float64)
    return np.array([1.0 / _gardner_integral(_check_kappa(float(k))) for k in arr.ravel()]).reshape(arr.shape)


def tsodyks_feigelman_capacity(coding_level: float) -> float:
    """The asymptotic capacity 1 / (2 a |ln a|) of the covariance rule with sparse 0/1
    patterns of coding level a and an optimal threshold, for a -> 0 (Tsodyks &
    Feigel'man, Europhys. Lett. 6, 101 (1988)).  A leading-order result: at moderate a
    (0.01-0.2) and finite N the measured capacity lies well below it.

    Raises
    ------
    ValueError
        ``coding_level`` outside (0, 1).
    """
    a = _check_coding_level(coding_level)
    return 1.0 / (2.0 * a * abs(math.log(a)))


# -------------------------------------------------------------------- perceptron


@dataclass(frozen=True)
class PerceptronReport:
    """How perceptron training ended, measured on the returned float32 weights.

    Attributes
    ----------
    kappa : float
        The required normalised stability.
    converged : bool
        Whether training reached stability > kappa for every neuron and pattern (for
        ``symmetric=True``: before symmetrising).
    epochs : int
        Epochs (passes over the patterns) of the slowest neuron.
    rows_converged : int
        Neurons whose training converged.
    n_unstable : int
        Stored patterns that are not fixed points of the returned W: some neuron has
        xi_i h_i <= 0 (a zero field counts as unstable, although tie-keeping dynamics
        would leave the neuron as it is).
    n_below_margin : int
        Stored patterns with some normalised stability below kappa.
    min_stability : float
        The smallest normalised stability over all neurons and patterns.
    symmetric : bool
        Whether the returned W is the symmetrised (W + W^T) / 2.
    row_epochs : ndarray of int64, shape (n_neurons,)
        Epochs per neuron.
    row_converged : ndarray of bool, shape (n_neurons,)
        Whether each neuron's training converged.
    """

    kappa: float
    converged: bool
    epochs: int
    rows_converged: int
    n_unstable: int
    n_below_margin: int
    min_stability: float
    symmetric: bool
    row_epochs: np.ndarray
    row_converged: np.ndarray


def stabilities(weights: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Normalised local stabilities Delta_i^mu = xi_i^mu h_i^mu / |w_i|.

    h_i^mu = sum_{j != i} w_ij xi_j^mu (the diagonal is ignored) and |w_i| is the
    Euclidean norm of row i without its diagonal element (Gardner 1988).  A row of zeros
    has stability 0.

    Parameters
    ----------
    weights : array of shape (n_neurons, n_neurons)
    patterns : array of +-1, shape (n_patterns, n_neurons)

    Returns
    -------
    ndarray of float64, shape (n_patterns, n_neurons)
    """
    X = check_patterns(patterns)
    W = check_weights(weights).astype(np.float64)
    if W.shape[0] != X.shape[1]:
        raise ValueError(f"weights are for {W.shape[0]} neurons but patterns have {X.shape[1]}.")
    np.fill_diagonal(W, 0.0)
    Xd = X.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", W, W))
    H = Xd @ W.T
    with np.errstate(invalid="ignore", divide="ignore"):
        D = np.where(norms > 0, Xd * H / np.where(norms > 0, norms, 1.0), 0.0)
    return D


def _prepare(patterns, kappa, max_epochs):
    X = check_patterns(patterns)
    k = _check_kappa(kappa)
    epochs = check_positive_int(max_epochs, "max_epochs")
    P, N = X.shape
    Xf = X.astype(np.float32) if N < (1 << 24) else X.astype(np.float64)  # integer GEMM, exact
    gram = np.rint(Xf @ Xf.T).astype(np.int32)
    prob = LK.PerceptronProblem(gram, np.ascontiguousarray(X.T, dtype=np.int32), k + _ROUNDING_SLACK, epochs)
    return X, k, prob


def _train(prob, rows, seeds):
    """(counts (R, P), epochs (R,), n_bad (R,)) of the rows ``rows``."""
    R, P = rows.size, prob.gram.shape[0]
    counts, epochs, n_bad = np.zeros((R, P), np.int64), np.zeros(R, np.int64), np.zeros(R, np.int64)
    LK.train_rows(prob, rows, seeds, counts, epochs, n_bad)
    return counts, epochs, n_bad


def perceptron_convergence(
    patterns: np.ndarray,
    kappa: float = 0.0,
    rows: np.ndarray | None = None,
    max_epochs: int = _DEFAULT_MAX_EPOCHS,
    seed: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train some neurons' perceptrons and say which converged (for capacity studies).

    Each row is an independent perceptron problem, so the fraction of rows that
    converge can be measured on a sample of rows.  Row i uses the same seed as in
    :func:`perceptron_weights` with the same ``seed``, whatever the other rows.

    Parameters
    ----------
    patterns : array of +-1, shape (n_patterns, n_neurons)
    kappa : float >= 0, default 0
    rows : array of int or None
        Neurons to train (default: all).
    max_epochs : int, default 1000
    seed : int, Generator or None

    Returns
    -------
    converged : ndarray of bool, shape (n_rows,)
    epochs : ndarray of int64, shape (n_rows,)
    n_below_margin : ndarray of int64, shape (n_rows,)
        Patterns below the margin for the best weights of each row (0 where converged).
    """
    X, k, prob = _prepare(patterns, kappa, max_epochs)
    N = X.shape[1]
    rows = np.arange(N) if rows is None else np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and (rows.min() < 0 or rows.max() >= N)):
        raise ValueError(f"rows must be a 1-D array of neuron indices in [0, {N}), got {rows!r}.")
    rows = rows.astype(np.int64)
    seeds = _row_seeds(seed, N)[rows]
    _, epochs, n_bad = _train(prob, rows, seeds)
    return n_bad == 0, epochs, n_bad


def perceptron_weights(
    patterns: np.ndarray,
    kappa: float = 0.0,
    max_epochs: int = _DEFAULT_MAX_EPOCHS,
    symmetric: bool = False,
    seed: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, PerceptronReport]:
    """Weights that store ``patterns`` with normalised stability >= ``kappa`` (Gardner).

    Every neuron i trains its incoming weights w_i (row i of W, w_ii = 0) with the
    perceptron rule with a normalised margin (Gardner 1988, section 5): the patterns
    are visited in a new random order every epoch, and whenever
    xi_i^mu h_i^mu <= kappa |w_i| the row gets w_ij += xi_i^mu xi_j^mu (j != i).  If a
    solution with all stabilities above kappa exists, this stops after at most
    (N - 1) / (Delta* - kappa)^2 updates (Delta*: the best achievable stability), so
    below Gardner's bound :func:`gardner_capacity` training converges, slowly near it.
    Rows are independent and run in parallel (numba ``prange``); each row has its own
    seed, so results do not depend on the thread count.  The kernel works in the dual
    form with exact integer arithmetic (fields updated through the Gram matrix X X^T,
    O(P) per update; memory 4 P^2 bytes).  Returned rows are scaled to unit norm, so a
    field xi_i h_i is the stability itself.

    W is not symmetric in general: the energy -1/2 s^T W s is then no Lyapunov
    function, asynchronous dynamics need not reach a fixed point (they may cycle) and
    synchronous ones may cycle with any period.  Every stored pattern that reached the
    margin is nevertheless a fixed point under any update order, and kappa > 0 gives it
    a basin of attraction.  With ``symmetric=True`` the weights are (W + W^T) / 2 of the
    unit-norm rows: energy descent and fixed points of asynchronous dynamics are
    guaranteed again, the stabilities are not; the report counts the patterns that are
    still fixed points.

    Parameters
    ----------
    patterns : array of +-1, shape (n_patterns, n_neurons)
    kappa : float, default 0
        Required stability margin, >= 0 (training asks for > kappa + 1e-5, so that
        rounding to float32 keeps every accepted stability >= kappa).
    max_epochs : int, default 1000
        Epoch limit per neuron.  When a neuron does not converge, its best weights
        (fewest patterns below the margin at the end of an epoch) are kept and a
        :class:`ConvergenceWarning` says how many patterns are not fixed points.
    symmetric : bool, default False
        Return (W + W^T) / 2 instead of W.
    seed : int, Generator or None
        The update orders.

    Returns
    -------
    W : ndarray of float32, shape (n_neurons, n_neurons)
        Zero diagonal, unit-norm rows (before symmetrising).
    report : PerceptronReport

    Raises
    ------
    ValueError
        Patterns that are not +-1 of shape (P, N) with N >= 2, kappa < 0 or not finite,
        max_epochs < 1.
    TypeError
        kappa not a real number.

    Warns
    -----
    ConvergenceWarning
        Some neuron did not converge within ``max_epochs``.

    Examples
    --------
    >>> from hopfield import random_patterns
    >>> X = random_patterns(100, 200, seed=0)
    >>> W, rep = perceptron_weights(X, kappa=0.5, seed=1)
    >>> rep.converged, rep.n_unstable, bool(rep.min_stability >= 0.5)
    (True, 0, True)
    """
    X, k, prob = _prepare(patterns, kappa, max_epochs)
    P, N = X.shape
    counts, epochs, n_bad = _train(prob, np.arange(N, dtype=np.int64), _row_seeds(seed, N))
    # W[i] = sum_mu c_{i mu} xi_i^mu xi^mu, diagonal removed: exact integers in float64
    A = (counts * X.T).astype(np.float64)
    W = A @ X.astype(np.float64)
    np.fill_diagonal(W, 0.0)
    norms = np.sqrt(np.einsum("ij,ij->i", W, W))
    W /= np.where(norms > 0, norms, 1.0)[:, None]  # a row can only be 0 if its updates cancelled (unstorable)
    if symmetric:
        W = 0.5 * (W + W.T)
    W = W.astype(np.float32)
    D = stabilities(W, X)
    row_conv = n_bad == 0
    report = PerceptronReport(
        kappa=k, converged=bool(row_conv.all()), epochs=int(epochs.max()), rows_converged=int(row_conv.sum()),
        n_unstable=int((D.min(axis=1) <= 0).sum()), n_below_margin=int((D.min(axis=1) < k).sum()),
        min_stability=float(D.min()), symmetric=bool(symmetric), row_epochs=epochs, row_converged=row_conv)
    if not report.converged:
        warnings.warn(
            f"perceptron training did not converge within max_epochs={prob.max_epochs}: {N - report.rows_converged} of "
            f"{N} neurons have patterns below the margin kappa={k}; with the best weights found, "
            f"{report.n_unstable} of {P} patterns are not fixed points and {report.n_below_margin} are below the "
            f"margin. Store fewer patterns (Gardner's bound is {gardner_capacity(k):.3f} N = "
            f"{gardner_capacity(k) * N:.0f} patterns), lower kappa or raise max_epochs.",
            ConvergenceWarning, stacklevel=2)
    return W, report


# ------------------------------------------------------------------ sparse patterns


def sparse_patterns(
    n_patterns: int, n_neurons: int, coding_level: float, seed: int | np.random.Generator | None = None
) -> np.ndarray:
    """Random 0/1 patterns, each unit active independently with probability a.

    Parameters
    ----------
    n_patterns, n_neurons : int
        P >= 1 patterns of N >= 2 neurons.
    coding_level : float in (0, 1)
        The probability a of a 1 (the mean fraction of active units).
    seed : int, Generator or None

    Returns
    -------
    ndarray of int8 (0/1), shape (n_patterns, n_neurons)

    Raises
    ------
    ValueError
        ``coding_level`` outside (0, 1), or bad sizes.
    """
    P = check_positive_int(n_patterns, "n_patterns")
    N = check_positive_int(n_neurons, "n_neurons", 2)
    a = _check_coding_level(coding_level)
    rng = np.random.default_rng(seed)
    return (rng.random((P, N)) < a).astype(np.int8)


def covariance_weights(patterns: np.ndarray, coding_level: float | None = None) -> np.ndarray:
    """The covariance rule for 0/1 patterns (Tsodyks & Feigel'man 1988).

    W_ij = sum_mu (xi_i^mu - a)(xi_j^mu - a) / (N a (1 - a)), W_ii = 0.  With this
    normalisation a stored pattern gives the active units a mean field 1 - a and the
    inactive ones -a (their separation is 1), and the crosstalk of the other patterns
    has variance alpha a (alpha = P / N), so a threshold near 1/2 separates them.  For
    a = 1/2 and s = (1 + sigma) / 2 this is the Hebb rule on +-1 neurons.

    Parameters
    ----------
    patterns : array of 0/1, shape (n_patterns, n_neurons)
    coding_level : float in (0, 1) or None
        a; None uses the patterns' mean activity.

    Returns
    -------
    ndarray of float32, shape (n_neurons, n_neurons), symmetric, zero diagonal

    Raises
    ------
    ValueError
        Patterns that are not 0/1, or a coding level outside (0, 1) (also when None and
        the patterns are all 0 or all 1).
    """
    V = _check_binary_patterns(patterns)
    a = _check_coding_level(float(V.mean()) if coding_level is None else coding_level, "coding_level")
    N = V.shape[1]
    Z = V.astype(np.float64) - a
    W = (Z.T @ Z) / (N * a * (1.0 - a))
    np.fill_diagonal(W, 0.0)
    return W.astype(np.float32)


def threshold_recall(
    weights: np.ndarray,
    cues: np.ndarray,
    theta: float | np.ndarray,
    max_sweeps: int = 100,
    seed: int | np.random.Generator | None = None,
) -> RecallResult:
    """Asynchronous threshold dynamics of 0/1 neurons.

    s_i <- 1 when h_i > theta_i, 0 when h_i < theta_i, unchanged when h_i = theta_i,
    h_i = sum_{j != i} W_ij s_j; one neuron at a time in a new random order every sweep,
    fields updated in O(N) per flip, cues in parallel (each with its own seed).  With
    symmetric W the energy -1/2 s^T W s + theta . s decreases at every flip.

    Parameters
    ----------
    weights : array of shape (n_neurons, n_neurons)
        The diagonal is ignored.
    cues : array of 0/1, shape (n_neurons,) or (n_cues, n_neurons)
    theta : float or array of shape (n_neurons,)
        Thresholds, one for all neurons or one per neuron.
    max_sweeps : int, default 100
    seed : int, Generator or None

    Returns
    -------
    RecallResult
        0/1 int8 states, sweeps and converged per cue.

    Raises
    ------
    ValueError
        Bad weights, cues that are not 0/1 or of the wrong length, thresholds of the
        wrong shape or not finite.
    """
    W = check_weights(weights)
    N = W.shape[0]
    was_1d = np.ndim(cues) == 1
    S = _check_binary_patterns(cues, "cues").copy()
    if S.shape[1] != N:
        raise ValueError(f"cues have length {S.shape[1]}, but the weights are for {N} neurons.")
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim == 0:
        th = np.full(N, float(th))
    if th.shape != (N,) or not np.isfinite(th).all():
        raise ValueError(f"theta must be a finite number or an array of shape ({N},), got shape {th.shape}.")
    steps = check_positive_int(max_sweeps, "max_sweeps")
    cols = np.array(W.T, dtype=np.float32, order="C", copy=True)  # never a view of the caller's array
    np.fill_diagonal(cols, 0.0)
    H = S.astype(np.float64) @ cols.astype(np.float64)  # h = W s: H[c, i] = sum_j s_j W[i, j]
    sweeps, conv = np.zeros(len(S), np.int64), np.zeros(len(S), np.bool_)
    LK.threshold_recall(LK.ThresholdNet(cols, th), S, H, _row_seeds(seed, len(S)), steps, sweeps, conv)
    if was_1d:
        return RecallResult(S[0], sweeps[0], conv[0])
    return RecallResult(S, sweeps, conv)


def sparse_overlaps(states: np.ndarray, targets: np.ndarray, coding_level: float) -> np.ndarray:
    """Overlap of each 0/1 state with its own target, row by row:
    m = sum_i (xi_i - a) s_i / sum_i (xi_i - a) xi_i.

    1 for s = xi; each missing active unit lowers it by (1 - a) / norm and each spurious
    one by a / norm (norm = sum_i (xi_i - a) xi_i, about N a (1 - a)); about 0 for a
    random state of coding level a.

    Returns
    -------
    ndarray of float64, shape (n_states,)
    """
    S = _check_binary_patterns(states, "states")
    T = _check_binary_patterns(targets, "targets")
    if S.shape != T.shape:
        raise ValueError(f"states have shape {S.shape} but targets have shape {T.shape}.")
    a = _check_coding_level(coding_level)
    Z = T.astype(np.float64) - a
    norm = np.einsum("ij,ij->i", Z, T.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("ij,ij->i", Z, S.astype(np.float64)) / norm


# ---------------------------------------------------------------------- dilution


def dilute(
    weights: np.ndarray, fraction: float, symmetric: bool = True, seed: int | np.random.Generator | None = None
) -> np.ndarray:
    """A copy of W with a random fraction of its synapses removed (set to 0).

    Exactly round(fraction * M) of the M off-diagonal synapses are removed, chosen
    uniformly: with ``symmetric=True`` M = N (N - 1) / 2 pairs and W_ij and W_ji go
    together (a symmetric W stays symmetric); otherwise M = N (N - 1) entries, each
    direction independently.  The diagonal is set to 0.  For zero-mean weights the
    correlation between W and the diluted W is about sqrt(1 - fraction), so in the
    static-noise picture dilution is noise of relative variance
    D = 1/rho^2 - 1 = fraction / (1 - fraction) (Sompolinsky 1986; exact for symmetric
    dilution of Hebbian weights at large N).

    Parameters
    ----------
    weights : array of shape (n_neurons, n_neurons)
    fraction : float in [0, 1)
        Fraction of synapses removed.
    symmetric : bool, default True
    seed : int, Generator or None

    Returns
    -------
    ndarray of float32, shape (n_neurons, n_neurons)

    Raises
    ------
    ValueError
        ``fraction`` outside [0, 1) or bad weights.
    """
    W = check_weights(weights).copy()
    f = _check_fraction_open(fraction, "fraction")
    N = W.shape[0]
    rng = np.random.default_rng(seed)
    np.fill_diagonal(W, 0.0)
    if symmetric:
        iu, ju = np.triu_indices(N, 1)
        k = int(round(f * iu.size))
        pick = rng.choice(iu.size, size=k, replace=False)
        W[iu[pick], ju[pick]] = 0.0
        W[ju[pick], iu[pick]] = 0.0
    else:
        M = N * (N - 1)
        k = int(round(f * M))
        pick = rng.choice(M, size=k, replace=False)
        # off-diagonal entry number t of row r: column t - r*(N-1), shifted past the diagonal
        r = pick // (N - 1)
        c = pick % (N - 1)
        c = c + (c >= r)
        W[r, c] = 0.0
    return W
