"""Patterns to store: random (unbiased or biased), noisy copies, and the bundled digits."""

from __future__ import annotations

import numpy as np

from ._validate import check_fraction, check_patterns, check_positive_int

__all__ = ["random_patterns", "flip_noise", "digits_patterns"]


def random_patterns(
    n_patterns: int, n_neurons: int, activity: float = 0.5, seed: int | np.random.Generator | None = None
) -> np.ndarray:
    """Independent random +-1 patterns.

    Parameters
    ----------
    n_patterns, n_neurons : int
        P >= 1 patterns of N >= 2 neurons.
    activity : float, default 0.5
        Probability of +1 per neuron (0.5: unbiased; otherwise biased patterns with
        mean 2*activity - 1).
    seed : int, Generator or None

    Returns
    -------
    ndarray of int8, shape (n_patterns, n_neurons)
    """
    P = check_positive_int(n_patterns, "n_patterns")
    N = check_positive_int(n_neurons, "n_neurons", 2)
    a = check_fraction(activity, "activity")
    rng = np.random.default_rng(seed)
    return np.where(rng.random((P, N)) < a, 1, -1).astype(np.int8)


def flip_noise(patterns: np.ndarray, fraction: float, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Copies of ``patterns`` with exactly ``round(fraction * N)`` neurons flipped in each.

    Returns
    -------
    ndarray of int8, same shape as ``patterns`` (2-D)
    """
    X = check_patterns(patterns)
    f = check_fraction(fraction, "fraction")
    rng = np.random.default_rng(seed)
    P, N = X.shape
    k = int(round(f * N))
    out = X.copy()
    if k:
        idx = np.argsort(rng.random((P, N)), axis=1)[:, :k]
        rows = np.repeat(np.arange(P), k)
        out[rows, idx.ravel()] *= -1
    return out


def digits_patterns(per_class: int = 1, seed: int | np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Binarised 8x8 digits from scikit-learn's bundled data set (N = 64).

    Pixels (0..16) above 8 become +1, the rest -1.  ``per_class`` images of each digit
    are drawn at random.  Digit patterns are strongly correlated: the Hebb rule stores
    few of them; the projection rule stores them all.

    Returns
    -------
    patterns : ndarray of int8, shape (10 * per_class, 64)
    labels : ndarray of int, shape (10 * per_class,)

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install scikit-learn``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("digits_patterns needs scikit-learn: pip install scikit-learn") from exc
    k = check_positive_int(per_class, "per_class")
    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(d.target == c), k, replace=False) for c in range(10)])
    return np.where(d.data[idx] > 8, 1, -1).astype(np.int8), d.target[idx]
