"""Numba kernels of the learning rules beyond Hebb (see :mod:`hopfield.learning`).

No validation here; the wrappers in ``learning.py`` validate and convert.

Perceptron (Gardner 1988) in the dual ("embedding strength") form: the incoming weights
of neuron i are ``w = sum_mu c_mu y_mu x_mu`` with the i-th component left out, where
``y_mu = xi_i^mu`` is the label of pattern mu, ``x_mu = xi^mu`` its input and
``c_mu >= 0`` the integer number of updates pattern mu made.  With the Gram matrix
``G = X X^T`` the fields ``h_nu = w . x_nu`` (component i excluded) change by
``y_mu (G[mu, nu] - y_mu y_nu) = y_mu G[mu, nu] - y_nu`` per update of pattern mu, so an
update costs O(P), not O(N), and every quantity (fields, ``|w|^2``, counts) is an exact
integer: the kernel is deterministic and its decisions are those of the textbook loop
on the primal weights.

Threshold dynamics: 0/1 neurons, ``s_i <- 1`` when ``h_i > theta_i``, 0 when
``h_i < theta_i``, unchanged on a tie, asynchronous in a random order per sweep
(SplitMix64, as in :mod:`hopfield._kernels`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ._kernels import shuffle

# -------------------------------------------------------------------------- perceptron


class PerceptronProblem(NamedTuple):
    """What every row's perceptron shares."""

    gram: np.ndarray  # int32 (P, P): X X^T over all N components (diagonal N)
    labels: np.ndarray  # int32 (N, P): labels[i, mu] = xi_i^mu (X^T, C-contiguous)
    kappa: float  # required normalised stability (with the rounding slack already added)
    max_epochs: int


@njit(cache=True)
def _count_bad(h, y, norm2, kappa):
    """Patterns whose stability y h / |w| is not above kappa (|w|^2 = norm2)."""
    thr = kappa * math.sqrt(np.float64(norm2))
    bad = 0
    for nu in range(h.size):
        if np.float64(y[nu] * h[nu]) <= thr:
            bad += 1
    return bad


@njit(cache=True)
def train_row(prob, i, seed, counts, best):
    """Perceptron with normalised margin for neuron i: cycle through the patterns in a
    new SplitMix64 order every epoch; whenever ``y_mu h_mu <= kappa |w|`` add
    ``y_mu x_mu`` to w (component i excluded).  At the end of each epoch the patterns
    below the margin are counted; the counts with the fewest so far are copied into
    ``best``.  Returns (epochs run, patterns below the margin for ``best``)."""
    G = prob.gram
    y = prob.labels[i]
    P = y.size
    n_in = np.int64(prob.labels.shape[0] - 1)  # |x_mu|^2 without component i
    kappa = prob.kappa
    h = np.zeros(P, np.int64)
    order = np.arange(P)
    counts[:] = 0
    best[:] = 0
    norm2 = np.int64(0)
    state = np.uint64(seed)
    best_bad = P + 1
    for epoch in range(prob.max_epochs):
        state = shuffle(state, order)
        for k in range(P):
            mu = order[k]
            s = y[mu] * h[mu]
            if np.float64(s) <= kappa * math.sqrt(np.float64(norm2)):
                norm2 += 2 * s + n_in
                counts[mu] += 1
                ym = np.int64(y[mu])
                g = G[mu]
                for nu in range(P):
                    h[nu] += ym * g[nu] - y[nu]
        bad = _count_bad(h, y, norm2, kappa)
        if bad < best_bad:
            best_bad = bad
            best[:] = counts
        if bad == 0:
            return epoch + 1, 0
    return prob.max_epochs, best_bad


# Outputs of parallel kernels are separate arrays, not fields of a NamedTuple: numba
# 0.68 silently drops writes to a NamedTuple's arrays inside ``prange`` loops.


@njit(cache=True, parallel=True)
def train_rows(prob, rows, seeds, counts, epochs, n_bad):
    """Train the rows ``rows`` (neurons) independently, in parallel.  Row r uses
    ``seeds[r]`` and writes ``counts[r]`` (int64 (P,): embedding strengths of its best
    weights), ``epochs[r]`` (epochs run) and ``n_bad[r]`` (patterns below the margin for
    the best weights; 0: converged)."""
    P = prob.gram.shape[0]
    for r in prange(rows.size):
        work = np.empty(P, np.int64)
        e, b = train_row(prob, rows[r], seeds[r], work, counts[r])
        epochs[r] = e
        n_bad[r] = b


# ------------------------------------------------------------ threshold dynamics (0/1)


class ThresholdNet(NamedTuple):
    """0/1 neurons with thresholds: ``columns[i, j] = W[j, i]`` (W^T, C-contiguous, so
    a flip of neuron i reads one contiguous row), ``theta`` float64 (N,)."""

    columns: np.ndarray  # float32 (N, N), zero diagonal
    theta: np.ndarray  # float64 (N,)


@njit(cache=True)
def run_threshold(net, s, h, seed, max_sweeps):
    """Asynchronous threshold dynamics of one cue in place (s int8 0/1, h float64 fields
    W s without self-coupling, kept up to date in O(N) per flip).  Returns (sweeps,
    converged)."""
    N = s.size
    state = np.uint64(seed)
    order = np.arange(N)
    for sweep in range(max_sweeps):
        state = shuffle(state, order)
        flips = 0
        for idx in range(N):
            i = order[idx]
            d = h[i] - net.theta[i]
            if d > 0.0:
                new = 1
            elif d < 0.0:
                new = 0
            else:
                new = s[i]
            if new != s[i]:
                s[i] = new
                delta = np.float64(2 * new - 1)  # s_i went 0 -> 1 (+1) or 1 -> 0 (-1)
                col = net.columns[i]
                hii = h[i]
                for j in range(N):
                    h[j] += col[j] * delta
                h[i] = hii
                flips += 1
        if flips == 0:
            return sweep + 1, True
    return max_sweeps, False


@njit(cache=True, parallel=True)
def threshold_recall(net, S, H, seeds, max_sweeps, sweeps, converged):
    """Run every cue (rows of S, fields H) in parallel, in place; writes sweeps[c] and
    converged[c]."""
    for c in prange(S.shape[0]):
        n, ok = run_threshold(net, S[c], H[c], seeds[c], max_sweeps)
        sweeps[c] = n
        converged[c] = ok
