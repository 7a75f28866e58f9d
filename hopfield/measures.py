"""Overlaps and the classification of final states."""

from __future__ import annotations

import numpy as np

from ._validate import check_fraction, check_patterns

__all__ = ["overlaps", "target_overlaps", "classify_states", "STATE_KINDS"]

STATE_KINDS = ("retrieved", "reversed", "mixture", "spurious")


def overlaps(states: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Overlaps m_{a,mu} = (1/N) sum_i s_i^a xi_i^mu.

    Parameters
    ----------
    states : array of +-1, shape (n_states, N) or (N,)
    patterns : array of +-1, shape (n_patterns, N)

    Returns
    -------
    ndarray of float64, shape (n_states, n_patterns)
    """
    S = check_patterns(states, "states")
    X = check_patterns(patterns)
    if S.shape[1] != X.shape[1]:
        raise ValueError(f"states have {S.shape[1]} neurons but patterns have {X.shape[1]}.")
    return (S.astype(np.float64) @ X.T.astype(np.float64)) / X.shape[1]


def target_overlaps(states: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Overlap of each state with its own target, row by row: shape (n_states,)."""
    S = check_patterns(states, "states")
    T = check_patterns(targets, "targets")
    if S.shape != T.shape:
        raise ValueError(f"states have shape {S.shape} but targets have shape {T.shape}.")
    return np.einsum("ij,ij->i", S.astype(np.float64), T.astype(np.float64)) / S.shape[1]


def classify_states(states: np.ndarray, patterns: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """Label each final state as one of ``STATE_KINDS``.

    ``retrieved``: overlap >= threshold with some stored pattern; ``reversed``: <=
    -threshold with one (the sign-flipped pattern is an attractor too); ``mixture``:
    overlap >= threshold with sign(+-xi^a +-xi^b +-xi^c), the three patterns of largest
    |overlap| with their signs (the symmetric 3-mixtures of Amit, Gutfreund &
    Sompolinsky 1985); ``spurious``: anything else (spin-glass states).

    Returns
    -------
    ndarray of str, shape (n_states,)
    """
    thr = check_fraction(threshold, "threshold")
    S = check_patterns(states, "states")
    X = check_patterns(patterns)
    m = overlaps(S, X)
    labels = np.full(len(S), "spurious", dtype=object)
    labels[m.min(axis=1) <= -thr] = "reversed"
    labels[m.max(axis=1) >= thr] = "retrieved"
    if X.shape[0] >= 3:
        for a in np.flatnonzero(labels == "spurious"):
            top = np.argsort(-np.abs(m[a]))[:3]
            mix = np.sign(np.sign(m[a, top]) @ X[top].astype(np.float64))
            if np.mean(mix == S[a]) * 2 - 1 >= thr:
                labels[a] = "mixture"
    return labels.astype(str)
