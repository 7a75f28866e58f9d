"""Hopfield networks of +-1 neurons with float or quantized weights.

References
----------
J. J. Hopfield, "Neural networks and physical systems with emergent collective
computational abilities", PNAS 79, 2554 (1982).
L. Personnaz, I. Guyon, G. Dreyfus, "Collective computational properties of neural
networks: new learning mechanisms", Phys. Rev. A 34, 4217 (1986) (projection rule).
A. Storkey, "Increasing the capacity of a Hopfield network without sacrificing
functionality", ICANN 1997 (Storkey rule).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from quantization import QuantizedTensor, quantize
from quantization import _core as _qcore

from . import _int8, _sync_gemm
from . import _kernels as K
from ._device import cuda_backend
from ._validate import check_device, check_patterns, check_positive_int, check_states, check_weights

__all__ = ["HopfieldNetwork", "QuantizedHopfieldNetwork", "RecallResult", "DYNAMICS", "RULES"]

DYNAMICS = ("async", "async-fixed", "sync", "glauber")
RULES = ("hebb", "projection", "storkey", "perceptron")
_TILE_ELEMENTS = 1 << 25  # elements of W per tile of the initial fields: 256 MiB float64 (128 MiB float32 for
# the integer sums); wide tiles keep each GEMM from re-reading all the cues for a few rows
_F32_EXACT_INTEGERS = 1 << 24  # float32 holds every integer up to 2**24 exactly
_MAX_SWEEPS = int(np.iinfo(np.int64).max)  # the kernels count sweeps in int64
# condition number of the Gram matrix X X^T (on the patterns' span) above which the
# projection rule's pseudo-inverse loses the accuracy of float32 weights (~1e-7 relative
# error for 1e8 * float64 epsilon)
_PROJECTION_MAX_CONDITION = 1e8
_MODES = {"async": K.ASYNC_RANDOM, "glauber": K.ASYNC_RANDOM, "async-fixed": K.ASYNC_FIXED, "sync": K.SYNC}


@dataclass(frozen=True)
class RecallResult:
    """Outcome of :meth:`HopfieldNetwork.recall`.

    Attributes
    ----------
    states : ndarray of int8, shape (n_cues, n_neurons) (or (n_neurons,) for one cue)
        Final states.
    sweeps : ndarray of int
        Sweeps run per cue (a sweep visits every neuron once; the last one is the
        sweep that found no neuron to flip).
    converged : ndarray of bool
        Whether each cue reached a fixed point within ``max_sweeps`` (for ``glauber``:
        a sweep without flips; for ``sync``: False also when a 2-cycle was detected).
    """

    states: np.ndarray
    sweeps: np.ndarray
    converged: np.ndarray


def _seed_per_cue(seed, n):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).astype(np.uint64)


class _Network:
    """Dynamics, fields and energy shared by float and quantized networks."""

    n_neurons: int
    symmetric: bool

    def _table_weights(self) -> K.TableWeights:
        raise NotImplementedError

    def _run(self, S, seeds, run: K.RunOptions, sweeps, conv, device: str = "cpu"):
        """Run the dynamics kernel in place on the states S."""
        if device == "cuda":
            cuda_backend().recall_table(self._table_weights(), S, seeds, run, sweeps, conv, self._fields)
            return
        K.recall(self._table_weights(), S, self._fields(S), seeds, run, sweeps, conv)

    def _tile(self, r0: int, r1: int) -> np.ndarray:
        raise NotImplementedError

    def fields(self, states: np.ndarray) -> np.ndarray:
        """Local fields h = W s without self-coupling, in float64.

        Parameters
        ----------
        states : array of +-1, shape (n_neurons,) or (n_states, n_neurons)

        Returns
        -------
        ndarray of float64, same shape as ``states``
        """
        S, was_1d = check_states(states, self.n_neurons, "states")
        H = self._fields(S)
        return H[0] if was_1d else H

    def _fields(self, S: np.ndarray) -> np.ndarray:
        N = self.n_neurons
        S64 = S.astype(np.float64)
        H = np.empty((S.shape[0], N))
        step = max(1, _TILE_ELEMENTS // N)
        for r0 in range(0, N, step):
            r1 = min(N, r0 + step)
            H[:, r0:r1] = S64 @ self._tile(r0, r1).T
        return H

    def energy(self, states: np.ndarray) -> np.ndarray | float:
        """Energy E = -1/2 s^T W s (self-coupling excluded) of each state."""
        S, was_1d = check_states(states, self.n_neurons, "states")
        E = -0.5 * np.einsum("ij,ij->i", S.astype(np.float64), self._fields(S))
        return float(E[0]) if was_1d else E

    def recall(
        self,
        cues: np.ndarray,
        dynamics: str = "async",
        max_sweeps: int = 100,
        temperature: float = 0.0,
        seed: int | np.random.Generator | None = None,
        device: str = "cpu",
    ) -> RecallResult:
        """Run the dynamics from each cue until a fixed point or ``max_sweeps``.

        Parameters
        ----------
        cues : array of +-1, shape (n_neurons,) or (n_cues, n_neurons)
        dynamics : {"async", "async-fixed", "sync", "glauber"}, default "async"
            ``async``: one neuron at a time, a new random order every sweep;
            ``async-fixed``: the order 0..N-1 every sweep; ``sync``: all neurons at
            once (may end in a 2-cycle); ``glauber``: async random order with
            stochastic updates, P(s_i = +1) = 1 / (1 + exp(-2 h_i / T)).
            Zero-temperature updates set s_i = sign(h_i) and keep s_i when h_i = 0.
            Asynchronous updates keep the fields and change them in O(N) per flip, so a
            sweep with few flips costs O(N), not O(N^2).  Cues run in parallel.
        max_sweeps : int, default 100
            At most 2**63 - 1.
        temperature : float, default 0
            Only for ``glauber`` (must be > 0 there, and 0 otherwise).
        seed : int, Generator or None
            Update orders and Glauber noise; each cue gets its own derived seed, so
            results do not depend on the number of threads.
        device : {"cpu", "cuda"}, default "cpu"
            ``cuda``: one NVIDIA GPU through numba-cuda (``pip install
            "hopfield-quant[cuda]"``), one cue per thread block, with the same
            per-cue streams, visiting orders, ties and field arithmetic as the CPU, so
            states, sweeps and flags equal the CPU's (see ``hopfield/_cuda.py``; for
            ``glauber`` up to exp's last bit, about 1e-16 per update).  ``sync`` on a
            uniform whole-matrix codebook of at most 7 bits runs as one int8 GEMM per
            sweep through PyTorch when it has CUDA (``hopfield/_sync_gemm.py``), with
            the same results.  Results come back as host arrays.

        Returns
        -------
        RecallResult

        Raises
        ------
        ValueError
            Unknown ``dynamics``, ``max_sweeps`` outside [1, 2**63 - 1], a temperature
            that does not fit the dynamics, cues of the wrong length or values, or a
            ``device`` other than "cpu" and "cuda".
        ImportError
            ``device="cuda"`` without numba-cuda.
        RuntimeError
            ``device="cuda"`` without a usable GPU.
        MemoryError
            ``device="cuda"`` when the weights and the cues' state exceed the GPU's free
            memory (refused before anything is allocated; the message gives the sizes).
        """
        if dynamics not in DYNAMICS:
            raise ValueError(f"dynamics={dynamics!r} is not supported; choose one of {', '.join(map(repr, DYNAMICS))}.")
        max_sweeps = check_positive_int(max_sweeps, "max_sweeps", maximum=_MAX_SWEEPS,
                                        maximum_text="2**63 - 1 (the kernels count sweeps in int64)")
        T = float(temperature)
        if dynamics == "glauber":
            if not np.isfinite(T) or T <= 0:
                raise ValueError(f"temperature must be a finite number > 0 for glauber dynamics, got {temperature!r}.")
        elif T != 0.0:
            raise ValueError(f"temperature={temperature!r} applies only to dynamics='glauber'; use 0 for {dynamics!r}.")
        device = check_device(device)
        S, was_1d = check_states(cues, self.n_neurons, "cues")
        S = S.copy()
        seeds = _seed_per_cue(seed, len(S))
        sweeps = np.zeros(len(S), np.int64)
        conv = np.zeros(len(S), np.bool_)
        self._run(S, seeds, K.RunOptions(max_sweeps, _MODES[dynamics], T), sweeps, conv, device)
        if was_1d:
            return RecallResult(S[0], sweeps[0], conv[0])
        return RecallResult(S, sweeps, conv)


class HopfieldNetwork(_Network):
    """A Hopfield network with float32 weights.

    Parameters
    ----------
    weights : array of shape (n_neurons, n_neurons)
        Couplings W_ij (float32 internally: every value must be finite and within the
        float32 range, |w| <= 3.4e38).  Self-couplings W_ii are not used by the
        dynamics or the energy; they are set to 0 (with a warning when they were not).
        Asymmetric weights are allowed with a warning: without symmetry the energy is
        not a Lyapunov function.

    Raises
    ------
    TypeError
        Weights that are not real numbers.
    ValueError
        Weights that are not a square matrix of N >= 2, or hold NaN, inf or values
        beyond the float32 range.

    Examples
    --------
    >>> from hopfield import HopfieldNetwork, random_patterns, flip_noise
    >>> X = random_patterns(50, 1000, seed=0)
    >>> net = HopfieldNetwork.from_patterns(X)
    >>> res = net.recall(flip_noise(X, 0.1, seed=1), seed=2)
    >>> bool((res.states == X).all(axis=1).mean() > 0.9)
    True
    >>> q = net.quantize(2, "uniform")
    >>> bool(q.rho > 0.9)
    True
    """

    def __init__(self, weights: np.ndarray):
        W = check_weights(weights).copy()
        if np.any(np.diagonal(W) != 0):
            warnings.warn("weights have nonzero self-couplings W_ii; they are set to 0 (the dynamics never use them).",
                          UserWarning, stacklevel=2)
            np.fill_diagonal(W, 0.0)
        self.weights = W
        self.weights.flags.writeable = False
        self.n_neurons = W.shape[0]
        self.symmetric = bool(K.is_symmetric(W))
        self.training_report = None
        if not self.symmetric:
            warnings.warn("weights are not symmetric: asynchronous dynamics may not decrease the energy "
                          "and may not reach a fixed point.", UserWarning, stacklevel=2)

    @classmethod
    def from_patterns(
        cls,
        patterns: np.ndarray,
        rule: str = "hebb",
        *,
        device: str = "cpu",
        kappa: float | None = None,
        max_epochs: int | None = None,
        symmetric: bool | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> HopfieldNetwork:
        """Store patterns with a learning rule.

        Parameters
        ----------
        patterns : array of +-1, shape (n_patterns, n_neurons)
        rule : {"hebb", "projection", "storkey", "perceptron"}, default "hebb"
            ``hebb``: W = X^T X / N, zero diagonal (Hopfield 1982).  ``projection``:
            W = X^T (X X^T)^+ X, the orthogonal projection onto the span of the
            patterns (pseudo-inverse, Personnaz et al. 1986), zero diagonal.  With the
            self-couplings removed, a pattern xi in the span has the fields
            h_i = (1 - P_ii) xi_i, where the P_ii of the projection average r/N for a
            span of dimension r: every pattern is a fixed point, correlated and
            linearly dependent ones included (dependent ones add no direction), as
            long as r <= N - 1.  So the rule stores at most N - 1 linearly independent
            patterns, and its stability margin, with the basins of attraction,
            shrinks as r approaches N: P well below N for useful basins.  Patterns
            that span all N dimensions are refused (W would be 0), and a nearly
            singular Gram matrix X X^T gives a warning.  ``storkey``: Storkey's (1997)
            local incremental rule, O(P N^2).  ``perceptron``: every neuron's incoming
            weights trained until each pattern has normalised stability >= ``kappa``
            (Gardner 1988; :func:`hopfield.learning.perceptron_weights`, which stores
            up to Gardner's bound ``gardner_capacity(kappa)`` * N patterns, 2N at
            kappa = 0).  Its W is not symmetric in general: the energy
            -1/2 s^T W s is then no Lyapunov function, asynchronous dynamics need not
            reach a fixed point (they may cycle), and ``quantize`` need not warn about
            symmetry it cannot break.  Every pattern that reached the margin is still
            a fixed point under any update order.  ``symmetric=True`` returns
            (W + W^T) / 2: energy descent comes back, but the stabilities, and with
            them the fixed points, are no longer guaranteed (the report counts the
            patterns that are not fixed points).  The training report is kept as
            ``net.training_report`` (None for the other rules).
        kappa, max_epochs, symmetric, seed
            Only for ``rule="perceptron"`` (defaults 0.0, 1000, False, None): the
            stability margin, the epoch limit per neuron, whether to symmetrise W, and
            the seed of the update orders; see
            :func:`hopfield.learning.perceptron_weights`.
        device : {"cpu", "cuda"}, default "cpu"
            ``cuda``: the Hebbian sums on one NVIDIA GPU (numba-cuda), in slabs of rows
            copied into the host W; the same float32 weights as the CPU's.  Only
            ``rule="hebb"`` runs there.

        Returns
        -------
        HopfieldNetwork

        Raises
        ------
        ValueError
            Patterns that are not +-1 of shape (P, N) with N >= 2, an unknown
            ``rule``, for ``projection`` patterns spanning all N dimensions, or a
            ``device`` other than "cpu" and "cuda" (or "cuda" with another rule),
            ``kappa``, ``max_epochs``, ``symmetric`` or ``seed`` given with a rule
            other than "perceptron", or (perceptron) kappa < 0 or max_epochs < 1.
        ImportError, RuntimeError, MemoryError
            ``device="cuda"`` without numba-cuda, without a GPU, or with too little
            free GPU memory (see :meth:`recall`).

        Warns
        -----
        UserWarning
            For ``projection``, when the Gram matrix of the patterns is
            ill-conditioned (nearly dependent patterns): W is then inaccurate.
        hopfield.learning.ConvergenceWarning
            For ``perceptron``, when some neuron did not reach the margin within
            ``max_epochs`` (the best weights are kept; see ``net.training_report``).
        """
        X = check_patterns(patterns)
        if rule not in RULES:
            raise ValueError(f"rule={rule!r} is not supported; choose one of {', '.join(map(repr, RULES))}.")
        extras = dict(kappa=kappa, max_epochs=max_epochs, symmetric=symmetric, seed=seed)
        if rule != "perceptron":
            given = [k for k, v in extras.items() if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)} apply only to rule='perceptron', got rule={rule!r}; "
                                 "drop them or use rule='perceptron'.")
        elif check_device(device) == "cpu":
            from .learning import perceptron_weights  # lazy: the training kernels compile on first use

            W, report = perceptron_weights(X, kappa=0.0 if kappa is None else kappa,
                                           max_epochs=1000 if max_epochs is None else max_epochs,
                                           symmetric=bool(symmetric), seed=seed)
            np.fill_diagonal(W, 0.0)
            net = cls._trusted(W.astype(np.float32, copy=False), symmetric=bool(K.is_symmetric(W)))
            net.training_report = report
            return net
        P, N = X.shape
        if check_device(device) == "cuda" and rule != "hebb":
            raise ValueError(f"device='cuda' stores with rule='hebb' only, got rule={rule!r}; store with "
                             "device='cpu' (recall and quantize can still use device='cuda').")
        if rule == "hebb" and device == "cuda":
            # the CPU's float32 values with a zero diagonal, finite by construction (|W_ij| <= P / N):
            # no further O(N^2) pass (at N = 100,000 a serial isfinite alone takes seconds)
            return cls._trusted(cuda_backend().hebb(X))
        elif rule == "hebb" and _int8.usable(N * N * P) and P < _F32_EXACT_INTEGERS:
            G = np.empty((N, N), np.int32)
            _int8.matmul(X.T, X, G)  # the same integer sums, from int8 patterns (|G_ij| <= P)
            W = G.view(np.float32)
            K.finish_hebb_int(G, W, N)  # in place: float32(G) / N, zero diagonal, as the float32 branch
            return cls._trusted(W)
        elif rule == "hebb":
            Xf = X.astype(np.float32)
            # integer sums, exact in float32 for P < 2**24; two operands, so that numpy calls a
            # parallel GEMM (for X.T @ X it calls SYRK and mirrors the triangle on one thread)
            W = Xf.T @ Xf.copy()
            K.finish_hebb(W, N)  # W / N, zero diagonal: one parallel pass, no second N^2 array
            return cls._trusted(W)  # |W_ij| <= P / N: finite by construction
        elif rule == "projection":
            W = _projection(X)
        else:
            W = np.zeros((N, N))
            K.storkey(X.astype(np.float64), W)
        W = W.astype(np.float32, copy=False)  # no second N^2 copy when already float32
        np.fill_diagonal(W, 0.0)
        if rule == "projection":
            W = (W + W.T) / np.float32(2)  # remove rounding asymmetry
        if not np.isfinite(W).all():
            raise ValueError(f"the {rule} rule produced non-finite weights for these patterns.")
        return cls._trusted(W)

    @classmethod
    def _trusted(cls, W: np.ndarray, symmetric: bool = True) -> HopfieldNetwork:
        """Wrap finite float32 weights with zero diagonal, without the O(N^2) checks of
        ``__init__`` (the learning rules guarantee them); ``symmetric`` says whether W is."""
        net = cls.__new__(cls)
        net.weights = W
        net.weights.flags.writeable = False
        net.n_neurons = W.shape[0]
        net.symmetric = bool(symmetric)
        net.training_report = None
        return net

    def _table_weights(self) -> K.TableWeights:
        return K.TableWeights(self.weights, np.zeros((1, 1), np.float32), self.n_neurons, 0, self.symmetric)

    def _tile(self, r0, r1):
        out = np.empty((r1 - r0, self.n_neurons))
        K.dequantize_rows(self._table_weights(), r0, r1, out)  # float64 rows, in parallel
        return out

    def quantize(
        self,
        bits: int,
        scheme: str = "uniform",
        objective: str = "correlation",
        *,
        axis: int | None = None,
        group_size: int | None = None,
        gain: str = "unbiased",
        preserve_mean: bool = False,
        device: str = "cpu",
    ) -> QuantizedHopfieldNetwork:
        """A network that runs on the quantized weights (codes + codebook).

        Quantization goes through :func:`quantization.quantize`; see it for the
        schemes, objectives, ``gain`` and ``preserve_mean``.  With ``axis=None`` (one
        codebook for the whole matrix) W stays exactly symmetric and asynchronous
        dynamics keep decreasing the energy.  ``axis=0`` (one codebook per row, i.e.
        per postsynaptic neuron) or ``group_size`` give better correlation but break
        the symmetry and with it the guarantee of energy descent; a warning says so.
        The sign dynamics ignore a global scale, so ``gain`` only matters with
        per-row codebooks or ``preserve_mean``.

        ``device="cuda"``: the levels are fitted on the host as always (on a sample of W),
        and the encode of all N^2 weights to codes, with the sums that set the gain, runs
        on one NVIDIA GPU in pieces; the result is the same QuantizedTensor as the CPU's.

        Returns
        -------
        QuantizedHopfieldNetwork
            With ``rho``: the correlation between the off-diagonal weights and their
            quantized values.
        """
        if axis not in (None, 0):
            raise ValueError(f"axis={axis!r}: use None (one codebook for W) or 0 (one per row/postsynaptic neuron).")
        if check_device(device) == "cuda":  # the core's fit, the GPU's encode
            qt = _qcore._quantize(self.weights, bits, scheme, objective, axis, group_size, gain=gain,
                                  preserve_mean=preserve_mean, seed=None, encode=cuda_backend().encode)
        else:
            qt = quantize(self.weights, bits, scheme, objective, axis=axis, group_size=group_size, gain=gain,
                          preserve_mean=preserve_mean)
        if self.symmetric and (axis is not None or group_size is not None):
            warnings.warn("per-row or per-group codebooks break the symmetry of W: energy descent is no longer "
                          "guaranteed (use axis=None to keep W symmetric).", UserWarning, stacklevel=2)
        qnet = QuantizedHopfieldNetwork(qt, symmetric=self.symmetric and axis is None and group_size is None)
        qnet.rho = _offdiag_correlation(self, qnet)
        return qnet


class QuantizedHopfieldNetwork(_Network):
    """A Hopfield network whose dynamics read uint8 codes and a codebook directly.

    Memory is one byte per weight plus the codebook; the dynamics never build a
    dequantized copy of W (initial fields use a transient tile of rows at a time).
    With one ``uniform`` codebook for the whole matrix the network runs on the exact
    affine weights W_ij = scale (c_ij - z) + offset (the codebook values before their
    float32 rounding) with integer field arithmetic: fields, ties and energy descent are
    exact, and each flip costs one pass of integer adds over a row of codes.

    Parameters
    ----------
    quantized : QuantizedTensor
        Codes of shape (N, N) with ``axis`` None or 0, or ``group_size`` set.
    symmetric : bool or None
        Whether the quantized W is symmetric; None checks the codes.

    Attributes
    ----------
    rho : float or None
        Correlation between the original and the quantized off-diagonal weights (set
        by :meth:`HopfieldNetwork.quantize`).
    """

    def __init__(self, quantized: QuantizedTensor, symmetric: bool | None = None):
        if not isinstance(quantized, QuantizedTensor):
            raise TypeError(f"quantized must be a QuantizedTensor, got {type(quantized).__name__}.")
        shape = quantized.shape
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
            raise ValueError(f"quantized weights must have shape (N, N) with N >= 2, got {shape}.")
        if quantized.axis not in (None, 0):
            raise ValueError(f"quantized.axis={quantized.axis} is not supported; use None or 0.")
        self.quantized = quantized
        self.n_neurons = shape[0]
        N = self.n_neurons
        # codebook row of W[i, j]: i * rows_per_row + j // group (see K.TableWeights)
        if quantized.group_size is not None:  # groups along each row, the last one maybe shorter
            self._group, self._rows_per_row = quantized.group_size, -(-N // quantized.group_size)
        else:
            self._group, self._rows_per_row = N, (0 if quantized.axis is None else 1)
        whole = quantized.axis is None and quantized.group_size is None
        if symmetric is None:
            symmetric = whole and bool(K.is_symmetric(quantized.codes))
        elif symmetric and not (whole and K.is_symmetric(quantized.codes)):
            raise ValueError("symmetric=True needs one codebook for the whole matrix and symmetric codes; "
                             "pass symmetric=None to detect it.")
        self.symmetric = bool(symmetric)
        self.rho: float | None = None
        self._affine = quantized.scheme == "uniform" and whole and self.symmetric
        if self._affine:
            self._scale, self._z, self._off = (float(v) for v in quantized.params[0])

    @property
    def bits(self) -> int:
        return self.quantized.bits

    def _table_weights(self) -> K.TableWeights:
        return K.TableWeights(self.quantized.codes, self.quantized.codebook, self._group, self._rows_per_row,
                              self.symmetric)

    def _tile(self, r0, r1):
        out = np.empty((r1 - r0, self.n_neurons))
        K.dequantize_rows(self._table_weights(), r0, r1, out)
        return out

    def dequantized_weights(self) -> np.ndarray:
        """A float32 copy of the quantized W with zero diagonal (for analysis only)."""
        W = self.quantized.dequantize()
        np.fill_diagonal(W, 0.0)
        return W

    def effective_weights(self) -> np.ndarray:
        """The float64 weights the dynamics use, zero diagonal (for analysis and tests):
        the codebook values, or the exact affine values for a uniform whole-matrix
        codebook."""
        if self._affine:
            W = self._scale * (self.quantized.codes.astype(np.float64) - self._z) + self._off
        else:
            W = self.quantized.dequantize().astype(np.float64)
        np.fill_diagonal(W, 0.0)
        return W

    def _integer_sums(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """U = S C^T without self-coupling (int32) and M = S.sum(1) (int64), exactly:
        a float32 GEMM of integers is exact while every partial sum stays below 2**24;
        torch's int8 GEMM (see :mod:`hopfield._int8`) gives the same integers."""
        N = self.n_neurons
        C = self.quantized.codes
        top = (1 << self.bits) - 1
        if top <= 127 and N * top <= _int8.INT32_LIMIT and _int8.usable(S.shape[0] * N * N):
            C8 = C.view(np.int8)  # codes below 128: the same values as int8
            U = _int8.matmul(S.astype(np.int8, copy=False), C8 if self.symmetric else C8.T,
                             np.empty(S.shape, np.int32))
            U -= S * np.diagonal(C).astype(np.int32)  # no self-coupling
            return U, S.sum(axis=1, dtype=np.int64)
        dt = _gemm_dtype(N, self.bits)
        Sf = S.astype(dt)
        U = np.empty(S.shape, np.int32)
        tile = np.empty((max(1, _TILE_ELEMENTS // N), N), np.float32)
        for r0 in range(0, N, tile.shape[0]):
            r1 = min(N, r0 + tile.shape[0])
            K.codes_rows(C, r0, r1, tile)
            U[:, r0:r1] = np.rint(Sf @ tile[: r1 - r0].T.astype(dt, copy=False))
        return U, S.sum(axis=1, dtype=np.int64)

    def _fields(self, S: np.ndarray) -> np.ndarray:
        if not self._affine:
            return super()._fields(S)
        U, M = self._integer_sums(S)
        Mp = (M[:, None] - S).astype(np.float64)
        return self._scale * (U - self._z * Mp) + self._off * Mp

    def _run(self, S, seeds, run, sweeps, conv, device="cpu"):
        if not self._affine:
            return super()._run(S, seeds, run, sweeps, conv, device)
        if device == "cuda":
            backend = cuda_backend()  # the same errors without numba-cuda or a GPU, whichever path runs
            if run.mode == K.SYNC and _sync_gemm.available(self.bits, self.n_neurons):
                # one int8 GEMM per sweep on cuBLAS's tensor-core kernels (see hopfield._sync_gemm)
                return _sync_gemm.recall_sync(self.quantized.codes, self._scale, self._z, self._off, S,
                                              run.max_sweeps, sweeps, conv, _sync_gemm.TORCH_DEVICE)
            w = K.AffineWeights(self.quantized.codes, self._scale, self._z, self._off)
            return backend.recall_affine(w, S, seeds, run, sweeps, conv)
        U, M = self._integer_sums(S)
        w = K.AffineWeights(self.quantized.codes, self._scale, self._z, self._off)
        K.recall_affine(w, S, U, M, seeds, run, sweeps, conv)


def _gemm_dtype(n_neurons: int, bits: int) -> type:
    """float32 when a GEMM of +-1 states with N codes below 2**bits is exact in float32
    (|partial sums| <= N (2**bits - 1) < 2**24), else float64 (exact below 2**53)."""
    return np.float32 if n_neurons * ((1 << bits) - 1) < _F32_EXACT_INTEGERS else np.float64


def _projection(X: np.ndarray) -> np.ndarray:
    """W = X^T (X X^T)^+ X in float64 after checking what the rule can store (see
    :meth:`HopfieldNetwork.from_patterns`)."""
    P, N = X.shape
    Xd = X.astype(np.float64)
    sv = np.linalg.svd(Xd, compute_uv=False)
    rank = int(np.sum(sv > sv[0] * max(P, N) * np.finfo(np.float64).eps))  # numpy.linalg.matrix_rank's rule
    if rank == N:
        raise ValueError(
            f"patterns span all N={N} dimensions (rank {rank} with P={P} patterns): the projection rule's W is then "
            "the identity, which is 0 once the self-couplings are removed, so nothing would be stored. The rule stores "
            f"at most N-1 = {N - 1} linearly independent patterns, and useful basins of attraction need P well below "
            "N; store fewer patterns or use rule='hebb' or 'storkey'.")
    cond = float(sv[0] / sv[rank - 1]) ** 2  # of X X^T restricted to the span
    if cond > _PROJECTION_MAX_CONDITION:
        warnings.warn(
            f"the patterns' Gram matrix X X^T is ill-conditioned (condition number {cond:.3g} on their span, above "
            f"{_PROJECTION_MAX_CONDITION:.3g}): nearly dependent patterns make the projection rule's W inaccurate; "
            "remove near-duplicate patterns.", UserWarning, stacklevel=3)
    return Xd.T @ np.linalg.pinv(Xd @ Xd.T) @ Xd


def _offdiag_correlation(net: HopfieldNetwork, qnet: QuantizedHopfieldNetwork) -> float:
    """Pearson rho between off-diagonal weights (the codebook values the tables hold), from
    float64 row sums computed in parallel and added in row order."""
    N = net.n_neurons
    rows = np.empty((N, 5))
    K.offdiag_sums(net.weights, qnet._table_weights(), rows)
    n = N * (N - 1)
    sw, sq, sww, sqq, swq = rows.sum(axis=0)
    vw, vq = sww - sw * sw / n, sqq - sq * sq / n
    if vw <= 0 or vq <= 0:
        return 1.0 if vw == vq else 0.0
    return float((swq - sw * sq / n) / np.sqrt(vw * vq))
