"""``quantize`` and ``QuantizedTensor``: arrays in, integer codes + codebook out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _encode, _fit_parametric, _grids, _lloyd
from ._normal import MAX_EVENTS as _NORMAL_MAX_EVENTS
from ._normal import fit_normal as _fit_normal
from ._normal import normal_table
from ._validate import (
    GAINS,
    OBJECTIVES,
    SCHEMES,
    check_axis,
    check_bits,
    check_choice,
    check_codes,
    check_group_size,
    check_weights,
)
from .metrics import correlation as _correlation
from .metrics import sqnr_db as _sqnr_db

_SCHEME_ID = {"uniform": _grids.UNIFORM, "exponential": _grids.EXPONENTIAL, "pow2": _grids.POW2,
              "lloyd": _grids.LLOYD, "normal": _grids.NORMAL}
_OBJECTIVE_ID = {"correlation": _grids.OBJ_CORRELATION, "mse": _grids.OBJ_MSE, "minmax": _grids.OBJ_MINMAX}
_FLOAT_DTYPES = ("float16", "float32", "float64")
# pow2 levels are a factor 2 apart; past this width the added magnitudes go unused
POW2_MAX_BITS = 5
# quantize(gain=None): the gain under which each objective's result is what its name says
DEFAULT_GAIN = {"correlation": "unbiased", "mse": "none", "minmax": "none"}
_LLOYD_BINS = 4096
PARAM_DTYPES = ("float32", "bfloat16")
BF16_AUTO_TOLERANCE = 0.01  # param_dtype="auto": bfloat16 when it adds at most 1% to the squared error
_PARAM_BYTES = {"float32": 4, "bfloat16": 2}
FIT_SAMPLES = 1 << 20  # rows longer than this are fitted on a seeded random subsample


def n_params(scheme: str, bits: int) -> int:
    """Number of float32 parameters stored per codebook row.

    uniform: (scale, zero_point, offset); exponential and pow2: (c, q, variant, offset);
    lloyd: the 2**bits levels (an offset is free: it is folded into the levels);
    normal: (scale, offset).
    """
    if scheme == "normal":
        return 2
    if scheme == "uniform":
        return 3
    if scheme in ("exponential", "pow2"):
        return 4
    return 1 << bits


# ------------------------------------------------------------------------ layout


def _group_shape(shape: tuple[int, ...], group_size: int) -> tuple[int, int, int, int]:
    """(channels, row length, full groups per channel, tail length) of a group layout.

    Groups run along the flattened row of each slice of the first axis (each output
    channel of an (out, in, kh, kw) weight; the whole vector for 1-D tensors), in C
    order; when ``group_size`` does not divide the row, each row's last group is shorter.
    """
    C = shape[0] if len(shape) >= 2 else 1
    m = math.prod(shape) // C if C else 0
    return C, m, m // group_size, m % group_size


def _is_ragged(shape: tuple[int, ...], group_size: int | None) -> bool:
    return group_size is not None and _group_shape(shape, group_size)[3] != 0


def _to_rows(a: np.ndarray, axis: int | None, group_size: int | None) -> np.ndarray:
    """View/copy of ``a`` as (n_rows, row_len): one row per codebook row (equal-length
    layouts only; see :func:`_row_blocks` for groups with a shorter last group)."""
    if group_size is not None:
        if _is_ragged(a.shape, group_size):
            raise ValueError("groups of unequal length have no (rows, row_len) view; use _row_blocks")
        return a.reshape(-1, group_size)
    if axis is None:
        return a.reshape(1, -1)
    return np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)


def _from_rows(rows: np.ndarray, shape: tuple[int, ...], axis: int | None, group_size: int | None) -> np.ndarray:
    if group_size is not None or axis is None:
        return rows.reshape(shape)
    moved = (shape[axis],) + shape[:axis] + shape[axis + 1 :]
    return np.moveaxis(rows.reshape(moved), 0, axis)


def _row_blocks(a: np.ndarray, axis: int | None, group_size: int | None) -> list[np.ndarray]:
    """``a`` as one or two rectangular blocks of codebook rows.

    Equal-length layouts give ``[rows]``.  Groups with a shorter last group give
    ``[full groups (C * full, group_size), last groups (C, tail)]`` (the first block
    empty when ``group_size`` exceeds the row); :func:`_join_row_params` and
    :func:`_from_row_blocks` restore the codebook-row order (channel by channel).
    """
    if not _is_ragged(a.shape, group_size):
        return [_to_rows(a, axis, group_size)]
    C, m, full, _ = _group_shape(a.shape, group_size)
    flat = a.reshape(C, m)
    return [flat[:, : full * group_size].reshape(C * full, group_size), flat[:, full * group_size :]]


def _from_row_blocks(blocks: list[np.ndarray], shape: tuple[int, ...], axis: int | None,
                     group_size: int | None) -> np.ndarray:
    """Inverse of :func:`_row_blocks`."""
    if len(blocks) == 1:
        return _from_rows(blocks[0], shape, axis, group_size)
    C, m, full, _ = _group_shape(shape, group_size)
    out = np.empty((C, m), blocks[0].dtype)
    out[:, : full * group_size] = blocks[0].reshape(C, full * group_size)
    out[:, full * group_size :] = blocks[1]
    return out.reshape(shape)


def _join_row_params(parts: list[np.ndarray], shape: tuple[int, ...], group_size: int | None) -> np.ndarray:
    """Per-block parameter rows (one per block row) in codebook-row order."""
    if len(parts) == 1:
        return parts[0]
    C, _, full, _ = _group_shape(shape, group_size)
    P = parts[0].shape[1:]
    out = np.empty((C, full + 1) + P, parts[0].dtype)
    out[:, :full] = parts[0].reshape((C, full) + P)
    out[:, full] = parts[1]
    return out.reshape((C * (full + 1),) + P)


def _split_row_params(params: np.ndarray, shape: tuple[int, ...], group_size: int | None) -> list[np.ndarray]:
    """Inverse of :func:`_join_row_params`."""
    if not _is_ragged(shape, group_size):
        return [params]
    C, _, full, _ = _group_shape(shape, group_size)
    P = params.shape[1:]
    r = params.reshape((C, full + 1) + P)
    return [np.ascontiguousarray(r[:, :full].reshape((C * full,) + P)), np.ascontiguousarray(r[:, full])]


def _n_rows(shape: tuple[int, ...], axis: int | None, group_size: int | None) -> int:
    if group_size is not None:
        C, m, full, tail = _group_shape(shape, group_size)
        return C * (full + (tail > 0))
    return 1 if axis is None else shape[axis]


# ------------------------------------------------------------------ the container


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """Integer codes plus one codebook row per channel/group.

    Attributes
    ----------
    codes : ndarray of uint8, same shape as the original tensor
        Index of each element's level in its codebook row (values < 2**bits).
    params : ndarray of float32, shape (n_rows, P)
        What is stored: uniform (scale, zero_point, offset), exponential/pow2
        (c, q, variant, offset), lloyd (the 2**bits levels), normal (scale, offset).
    bits : int
        Bits per code, 1..8.
    scheme : str
        ``"uniform"``, ``"exponential"``, ``"pow2"``, ``"lloyd"`` or ``"normal"``.
    shape : tuple of int
        Original shape.
    dtype : str
        Original dtype (``"float16"``, ``"float32"`` or ``"float64"``).
    axis : int or None
        Per-slice codebooks along this axis, or None.
    group_size : int or None
        Per-group codebooks over consecutive elements of each slice of the first axis
        (flattened in C order; a row that ``group_size`` does not divide ends with a
        shorter group), or None.
    objective, gain : str
        How the levels were fitted (provenance; not needed to dequantize).
    preserve_mean : bool
        Whether each row's mean was made exact.
    param_dtype : {"float32", "bfloat16"}
        How ``params`` are stored: 4 bytes each, or 2 (bfloat16: float32's exponent
        range with an 8-bit significand; ``params`` then holds float32 values whose low
        16 bits are zero, so the conversion is exact both ways).
    codebook : ndarray of float32, shape (n_rows, 2**bits)
        The levels, ascending per row; derived from ``params`` by one deterministic
        formula, so a saved and loaded tensor has a bit-identical codebook.
    """

    codes: np.ndarray
    params: np.ndarray
    bits: int
    scheme: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    axis: int | None = None
    group_size: int | None = None
    objective: str = "correlation"
    gain: str = "unbiased"
    preserve_mean: bool = False
    param_dtype: str = "float32"
    codebook: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        bits = check_bits(self.bits)
        check_choice(self.scheme, SCHEMES, "scheme")
        check_choice(self.objective, OBJECTIVES, "objective")
        check_choice(self.gain, GAINS, "gain")
        check_choice(self.dtype, _FLOAT_DTYPES, "dtype")
        check_choice(self.param_dtype, PARAM_DTYPES, "param_dtype")
        shape = tuple(int(s) for s in self.shape)
        axis = check_axis(self.axis, len(shape))
        group_size = check_group_size(self.group_size, shape, axis) if shape else None
        codes = _own_copy(check_codes(self.codes, bits))  # own copies: they are frozen below
        if codes.shape != shape:
            raise ValueError(f"codes has shape {codes.shape}, expected the tensor shape {shape}.")
        rows = _n_rows(shape, axis, group_size)
        P = n_params(self.scheme, bits)
        params = np.array(self.params, dtype=np.float32, order="C", copy=True)
        if params.shape != (rows, P):
            raise ValueError(f"params has shape {params.shape}, expected {(rows, P)} for scheme {self.scheme!r}.")
        if not np.isfinite(params).all():
            raise ValueError("params contains NaN or inf; the codebook would not be finite.")
        if self.param_dtype == "bfloat16" and (params.view(np.uint32) & 0xFFFF).any():
            raise ValueError("param_dtype='bfloat16' but params holds values that bfloat16 cannot represent "
                             "(nonzero low 16 bits); round them with quantization.round_bfloat16 first.")
        codebook = np.empty((rows, 1 << bits), np.float32)
        _grids.levels_from_params(_SCHEME_ID[self.scheme], params, 1 << bits, normal_table(bits), codebook)
        if not np.isfinite(codebook).all():
            raise ValueError("the codebook overflows float32 (levels beyond +-3.4e38): the values are too close to "
                             "the float32 limit for this grid; rescale w (e.g. w / w.std()) and the result after.")
        if np.any(np.diff(codebook, axis=1) < 0):
            raise ValueError(f"params describe levels that are not ascending for scheme {self.scheme!r} "
                             "(negative step or scale, q outside (0, 1] or an unknown variant).")
        for name, value in (
            ("codes", codes), ("params", params), ("bits", bits), ("shape", shape),
            ("axis", axis), ("group_size", group_size), ("codebook", codebook),
            ("preserve_mean", bool(self.preserve_mean)),
        ):
            object.__setattr__(self, name, value)
        codes.flags.writeable = False
        params.flags.writeable = False
        codebook.flags.writeable = False

    @property
    def n_rows(self) -> int:
        """Number of codebook rows."""
        return self.codebook.shape[0]

    @property
    def size(self) -> int:
        """Number of quantized elements."""
        return self.codes.size

    @property
    def nbytes(self) -> int:
        """Stored size in bytes: packed codes ``ceil(size*bits/8)`` plus the params at
        4 bytes (float32) or 2 (bfloat16) each."""
        return -(-self.size * self.bits // 8) + self.params.size * _PARAM_BYTES[self.param_dtype]

    def dequantize(self) -> np.ndarray:
        """The quantized tensor as float32, shape ``self.shape``."""
        books = _split_row_params(self.codebook, self.shape, self.group_size)
        outs = []
        for c, book in zip(_row_blocks(self.codes, self.axis, self.group_size), books):
            out = np.empty(c.shape, np.float32)
            if c.size:
                _encode.lookup(np.ascontiguousarray(c), book, out)
            outs.append(out)
        return np.ascontiguousarray(_from_row_blocks(outs, self.shape, self.axis, self.group_size))

    def _check_like(self, w: np.ndarray) -> np.ndarray:
        arr = check_weights(w)
        if arr.shape != self.shape:
            raise ValueError(f"w has shape {arr.shape}, but this tensor was quantized from shape {self.shape}.")
        return arr

    def correlation(self, w: np.ndarray, per_row: bool = False) -> float | np.ndarray:
        """Pearson correlation between ``w`` and the dequantized tensor.

        Parameters
        ----------
        w : ndarray
            The original tensor (same shape).
        per_row : bool, default False
            Return one value per codebook row instead of one for the whole tensor.
        """
        w = self._check_like(w)
        q = self.dequantize()
        if not per_row:
            return _correlation(w, q)
        parts = []
        for wb, qb in zip(_row_blocks(w, self.axis, self.group_size), _row_blocks(q, self.axis, self.group_size)):
            parts.append(np.array([_correlation(a, b) for a, b in zip(wb, qb)], np.float64).reshape(-1, 1))
        return _join_row_params(parts, self.shape, self.group_size)[:, 0]

    def sqnr_db(self, w: np.ndarray) -> float:
        """Signal-to-quantization-noise ratio ``10 log10(sum w^2 / sum (w - Q)^2)`` in dB."""
        return _sqnr_db(self._check_like(w), self.dequantize())

    def __repr__(self) -> str:
        lay = "tensor" if self.axis is None and self.group_size is None else (
            f"axis={self.axis}" if self.group_size is None else f"group_size={self.group_size}")
        return (f"QuantizedTensor(shape={self.shape}, bits={self.bits}, scheme={self.scheme!r}, {lay}, "
                f"rows={self.n_rows}, nbytes={self.nbytes})")


# ------------------------------------------------------------------------ quantize


def _gain_offset(stats: np.ndarray, n: int, gain: str, preserve_mean: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-row gain g and offset o (normalised units) so that Q = g q0 + o."""
    sy, syy, sq, sqq, syq = stats.T
    g = np.ones(len(stats))
    with np.errstate(divide="ignore", invalid="ignore"):
        if preserve_mean:
            my, mq = sy / n, sq / n
            cov = syq - n * my * mq
            vy = syy - n * my * my
            vq = sqq - n * mq * mq
            if gain == "lsq":
                cand, ok = cov / vq, vq > 1e-12 * np.maximum(sqq, 1e-300)
            elif gain == "unbiased":
                cand, ok = vy / cov, cov > 1e-12 * np.maximum(syy, 1e-300)
            else:
                cand, ok = g, np.ones(len(g), bool)
        else:
            if gain == "lsq":
                cand, ok = syq / sqq, sqq > 0
            elif gain == "unbiased":
                cand, ok = syy / syq, syq > 1e-12 * np.maximum(syy, 1e-300)
            else:
                cand, ok = g, np.ones(len(g), bool)
    ok &= np.isfinite(cand) & (cand > 0)
    g = np.where(ok, cand, 1.0)
    o = (sy - g * sq) / n if preserve_mean else np.zeros(len(g))
    return g, o


def quantize(
    w: np.ndarray,
    bits: int,
    scheme: str = "uniform",
    objective: str = "correlation",
    axis: int | None = None,
    group_size: int | None = None,
    *,
    gain: str | None = None,
    preserve_mean: bool = False,
    seed: int | np.random.Generator | None = None,
    param_dtype: str = "float32",
) -> QuantizedTensor:
    """Quantize a float tensor to ``bits``-bit codes and a float32 codebook per row.

    Parameters
    ----------
    w : ndarray of float16, float32 or float64
        The tensor. NaN/inf, empty arrays and integer dtypes are refused.
    bits : int
        Bits per code, 1..8; every scheme uses all ``2**bits`` codes.
    scheme : {"uniform", "exponential", "pow2", "lloyd", "normal"}, default "uniform"
        ``uniform``: equally spaced levels ``step * (k - z)``.  The fit tries the
        symmetric grid without zero (z = (K-1)/2) and the two grids with an exact zero
        and one extra level on either side (z = K/2, K/2 - 1, like int8's -128..127),
        and keeps the best; the step (clipping range) is fitted.
        ``exponential``: sign-magnitude levels ``±c q^j``; either 2**(bits-1)
        magnitudes on each side and no zero, or an exact zero plus one more magnitude
        on one side (all codes used either way); c, q and the variant are fitted.
        ``pow2``: exponential with q = 1/2 (levels c 2^-j, shift-friendly), 1..5
        bits: the factor-2 spacing caps its correlation near 0.98, reached by 4-5
        bits; wider codes would only add unused tiny magnitudes, so they are refused.
        ``lloyd``: a free codebook, the globally optimal 1-D k-means (exact dynamic
        programming on the sorted row, or on ~4096 quantile+equal-width bins for
        longer rows) polished by Lloyd iterations on all samples.
        ``normal``: NormalFloat levels, a fixed table of 2**bits normal quantiles in
        [-1, 1] (bitsandbytes' NF4 at 4 bits: 8 positive levels including 1, 7
        negative including -1, and an exact zero; 1 bit: {-1, 1}) times a fitted
        per-row scale (QLoRA, Dettmers et al. 2023).  Stores (scale, offset).
    objective : {"correlation", "mse", "minmax"}, default "correlation"
        ``correlation`` maximises the correlation between w and Q(w) that the
        reconstruction can realise: Pearson rho when ``preserve_mean=True`` (a stored
        offset fixes the mean), and the uncentred correlation <w, Q>/(|w| |Q|) when
        ``preserve_mean=False`` (Q = g q0 carries no offset; for zero-mean rows the two
        coincide).  Pearson rho alone is blind to offsets: at 1 bit on symmetric data
        it rates the one-sided grid {0, c} as high as sign(w), which without an offset
        shifts the whole tensor.  For lloyd this is the MSE optimum (a free codebook
        absorbs any affine map).  ``mse`` minimises
        ||w - Q(w)||^2 of the fitted grid; ``minmax`` is the naive baseline (grid
        spans ±max|w|; lloyd: levels evenly over [min, max]; normal: scale = max|w|,
        bitsandbytes' absmax).  The correlation and mse
        fits always also try the minmax grid, so they are never worse than it (on the fit
        sample, for subsampled rows).  The parametric fits are coarse global scans
        plus local refinement, not certified optima; lloyd is exactly optimal on
        rows of up to 4096 elements; normal finds the exact optimal scale in
        [lo, 1] x max|w| (lo = rms/8 clipped to [1e-6, 1/2], normalised) by sweeping every
        scale where a code changes, on rows with at most 2**18 such changes (about
        n * 2**(bits-1)), and scans like the other parametric schemes beyond.
    axis : int or None, default None
        None: one codebook for the whole tensor; an int: one per slice along that axis
        (axis=0 is per output channel for (out, in, kh, kw) weights).
    group_size : int or None, default None
        One codebook per ``group_size`` consecutive elements of each output channel:
        groups run along the flattened row of each slice of the first axis (the whole
        vector for 1-D ``w``), in C order, and where ``group_size`` does not divide that
        row its last group is shorter (a 3x3 conv with 16 input channels and
        ``group_size=32`` has 5 groups per output channel: 4 of 32 and one of 16).
        Exclusive with ``axis``.  Codebook rows are ordered channel by channel.
    gain : {"unbiased", "lsq", "none"} or None, default None
        Scale applied to the fitted levels, per row.  None picks the one under which
        each objective's result is what its name says: ``"none"`` for ``mse`` (the fitted
        grid is the MSE-optimal one; any rescale adds error) and for ``minmax`` (the grid
        spans exactly ±max|w|), ``"unbiased"`` for ``correlation`` (the correlation does
        not depend on a positive gain, so the one that keeps each row's signal gain is
        chosen).  ``unbiased``: slope 1, i.e. <w, Q(w)> = <w, w> (with
        ``preserve_mean`` the slope of regressing Q(w) on w is 1), so a layer keeps its
        signal gain.  ``lsq``: least squares, the minimal MSE for these codes, which
        shrinks the tensor by about rho^2.  ``none``: the levels as fitted.
        Which one matters depends on the setting: sign dynamics of a Hopfield net ignore
        a global scale, but a conv layer feeding fixed BatchNorm statistics does not.
        Measured on the pretrained CIFAR ResNet-20 (``bench/pretrained_study.py``),
        per channel, 3 bits: correlation-optimal uniform levels with ``lsq`` gain and
        no offsets lost 10.3 points of top-1, the same codes with ``unbiased`` gain and
        ``preserve_mean=True`` 1.4 (0.8 with feedforward's bias correction).
    preserve_mean : bool, default False
        Quantize deviations from each row's mean and add one offset per row so the row
        mean is exact (stored in ``params``; free for lloyd).  With ``normal`` and
        ``objective="minmax"``, ``preserve_mean=False`` and ``gain="none"`` this is
        bitsandbytes' NF quantization (levels ``max|w| * T``).  Grids are otherwise
        centred on zero.
    seed : int, Generator or None
        Rows longer than ``2**20`` elements are fitted on a random subsample of ``2**20``
        elements drawn with ``seed`` (None means 0, so results are reproducible by
        default); all elements are then encoded.  Shorter rows are fitted exactly as
        they are and ``seed`` has no effect.
    param_dtype : {"float32", "bfloat16", "auto"}, default "float32"
        How each row's parameters are stored.  ``"bfloat16"`` halves their bytes: the
        fitted float32 parameters are rounded to the nearest bfloat16 (relative error at
        most 2**-8; the exponent range, and so the handling of tiny rows, is float32's)
        and the codes are kept (row means, with ``preserve_mean``, then hold to about
        2**-8 of the row's scale rather than exactly).  It matters where rows are short:
        a 3x3 depthwise row at 4 bits holds 4.5 bytes of codes and 12 bytes of uniform
        parameters in float32.  The rounding costs nothing measurable at low widths but
        grows with them where levels are derived from a rounded parameter: on Laplacian
        rows of 576 (``bench/core_claims.py``), 1 - rho grows by under 0.3% up to 4 bits for every scheme, and at
        8 bits by 2% (uniform, normal), 72% (lloyd) and 14x (exponential, whose levels
        c q^j compound the rounding of q).  ``"auto"`` stores bfloat16 when it adds at
        most 1% to the tensor's squared quantization error, else float32.

    Returns
    -------
    QuantizedTensor

    Raises
    ------
    TypeError
        Non-float ``w``, non-integer ``bits``/``axis``/``group_size``.
    ValueError
        NaN/inf or empty ``w``, ``bits`` outside 1..8 (1..5 for pow2), unknown scheme/objective/gain,
        axis out of range, group_size < 1 or given with axis; a non-constant row whose
        spread (or fitted step) is below float32's smallest normal number 1.2e-38, whose
        codebook would underflow when stored (rescale ``w`` first).

    Notes
    -----
    Constant rows (including all-zero and dead channels) are represented exactly: all
    levels equal the value.  Rows with tiny spread (e.g. max|w| ~ 1e-8) are fitted in
    normalised units and stored as float32, so nothing underflows; a row too small for
    float32's normal range is refused rather than silently zeroed.  When a gain is
    undefined for a row (every element on one level) that row falls back to gain 1.

    Examples
    --------
    >>> import numpy as np
    >>> from quantization import quantize
    >>> w = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    >>> qt = quantize(w, bits=4, scheme="exponential", axis=0)
    >>> qt.codes.shape, qt.codebook.shape
    ((64, 128), (64, 16))
    >>> bool(qt.correlation(w) > 0.99)
    True
    """
    return _quantize(w, bits, scheme, objective, axis, group_size, gain=gain, preserve_mean=preserve_mean, seed=seed,
                     encode=_encode.encode, param_dtype=param_dtype)


def round_bfloat16(a: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32.

    bfloat16 is the upper half of a float32: the same sign and 8-bit exponent, and 7
    stored significand bits, so the relative rounding error is at most 2**-8.  Values
    that round past float32's largest finite number become inf (the caller checks).

    Parameters
    ----------
    a : array_like
        Values, cast to float32 first; NaN stays NaN, inf stays inf.

    Returns
    -------
    ndarray of float32
        Same shape (0-d included); every finite value has its low 16 bits zero.
    """
    shape = np.shape(a)
    f = np.array(a, dtype=np.float32, order="C", copy=True).reshape(-1)
    u = f.view(np.uint32).astype(np.uint64)
    r = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    r[np.isnan(f)] = np.nan  # the carry would turn some NaN payloads into inf or 0
    return r.reshape(shape)


def _quantize(w, bits, scheme, objective, axis, group_size, *, gain, preserve_mean, seed, encode,
              param_dtype="float32") -> QuantizedTensor:
    """:func:`quantize` with the encode step given: ``encode(X, center, scale, fit_levels,
    codes, stats)`` under the contract of :func:`_encode.encode` (same codes and sums bit for
    bit).  The fit always runs here; hopfield's CUDA backend passes its device encode."""
    bits = check_bits(bits)
    scheme = check_choice(scheme, SCHEMES, "scheme")
    objective = check_choice(objective, OBJECTIVES, "objective")
    gain = check_choice(DEFAULT_GAIN[objective] if gain is None else gain, GAINS, "gain")
    if scheme == "pow2" and bits > POW2_MAX_BITS:
        raise ValueError(
            f"bits={bits} with scheme='pow2': pow2 supports 1..{POW2_MAX_BITS} bits. Its levels +-c 2^-j are a "
            "factor 2 apart, so its correlation is capped near 0.98 by that spacing, whatever the number of "
            f"levels; it reaches the cap by {POW2_MAX_BITS} bits, and each further bit only adds magnitudes "
            "below c 2^-16 that the weights do not use (34 of 256 codes at 8 bits on Gaussian weights). For "
            "more bits use scheme='exponential' (a fitted ratio q) or 'uniform'.")
    if not isinstance(preserve_mean, (bool, np.bool_)):
        raise TypeError(f"preserve_mean must be a bool, got {preserve_mean!r}.")
    param_dtype = check_choice(param_dtype, PARAM_DTYPES + ("auto",), "param_dtype")
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}.")
    arr = check_weights(w)
    if arr.ndim == 0:
        raise ValueError("w is a 0-d scalar; pass an array with at least one dimension, e.g. np.atleast_1d(w).")
    shape = arr.shape
    axis = check_axis(axis, arr.ndim)
    group_size = check_group_size(group_size, shape, axis)

    work = arr.astype(np.float32) if arr.dtype == np.float16 else arr  # numba has no float16 arithmetic
    code_blocks, param_blocks = [], []
    for block in _row_blocks(work, axis, group_size):
        if block.shape[0] == 0:  # no full group: group_size exceeds the row
            code_blocks.append(np.empty(block.shape, np.uint8))
            param_blocks.append(np.empty((0, n_params(scheme, bits))))
            continue
        c, p = _quantize_rows(np.ascontiguousarray(block), bits, scheme, objective, gain, bool(preserve_mean), seed,
                              encode)
        code_blocks.append(c)
        param_blocks.append(p)
    params = _join_row_params(param_blocks, shape, group_size)
    _check_representable(params, scheme, shape, axis, group_size)
    codes = np.ascontiguousarray(_from_row_blocks(code_blocks, shape, axis, group_size))
    params = params.astype(np.float32)
    kw = dict(codes=codes, bits=bits, scheme=scheme, shape=shape, dtype=arr.dtype.name, axis=axis,
              group_size=group_size, objective=objective, gain=gain, preserve_mean=bool(preserve_mean))
    if param_dtype == "float32":
        return QuantizedTensor(params=params, **kw)
    rounded = round_bfloat16(params)  # the codes stay: they were chosen against the fitted grid
    if not np.isfinite(rounded).all():
        if param_dtype == "bfloat16":
            raise ValueError("param_dtype='bfloat16': a fitted parameter rounds past float32's largest value "
                             "(3.4e38); rescale w (e.g. w / np.abs(w).max()) or use param_dtype='float32'.")
        return QuantizedTensor(params=params, **kw)
    q16 = QuantizedTensor(params=rounded, param_dtype="bfloat16", **kw)
    if param_dtype == "bfloat16":
        return q16
    q32 = QuantizedTensor(params=params, **kw)  # "auto"
    x = arr.astype(np.float64)
    e32 = float(np.sum((q32.dequantize().astype(np.float64) - x) ** 2))
    e16 = float(np.sum((q16.dequantize().astype(np.float64) - x) ** 2))
    return q16 if e16 <= (1.0 + BF16_AUTO_TOLERANCE) * e32 else q32


def _own_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a``; large arrays are copied by every thread."""
    if a.size < _PARALLEL_COPY_SIZE:
        return np.array(a, order="C", copy=True)
    out = np.empty(a.shape, a.dtype)
    _encode.copy_flat(np.ascontiguousarray(a).reshape(-1), out.reshape(-1))
    return out


_PARALLEL_COPY_SIZE = 1 << 20


_F32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32, 1.18e-38


def _quantize_rows(X: np.ndarray, bits: int, scheme: str, objective: str, gain: str, preserve_mean: bool,
                   seed, encode=_encode.encode) -> tuple[np.ndarray, np.ndarray]:
    """Codes (R, n) uint8 and float64 params (R, P) for equal-length rows ``X``."""
    Kc = 1 << bits
    R, n = X.shape
    xmin, xmax = np.empty(R), np.empty(R)
    _encode.row_range(X, xmin, xmax)  # parallel: one long row uses every thread
    nonconst = xmax > xmin
    center = X.mean(axis=1, dtype=np.float64) if preserve_mean else np.zeros(R)
    center = np.where(nonconst, center, xmin)  # constant rows: every level is the value
    A = np.maximum(np.abs(xmax - center), np.abs(xmin - center))
    A = np.where(nonconst & (A > 0), A, 1.0)
    _check_spread(A, nonconst)
    inv = 1.0 / A
    # the fit sees each row (or a seeded subsample of long rows), normalised to max |y| = 1
    if n > FIT_SAMPLES:
        rng = np.random.default_rng(0 if seed is None else seed)
        idx = np.sort(rng.choice(n, FIT_SAMPLES - 2, replace=False))
        # each row's own min and max join its sample: the grid's range (min-max levels,
        # lone spikes) is that of the whole row, not of the draw
        Y = np.concatenate([X[:, idx].astype(np.float64), xmin[:, None], xmax[:, None]], axis=1)
    else:
        Y = X.astype(np.float64)
    Y -= center[:, None]
    Y *= inv[:, None]
    Y[~nonconst] = 0.0
    rms = np.sqrt(np.mean(Y * Y, axis=1))

    sid, oid = _SCHEME_ID[scheme], _OBJECTIVE_ID[objective]
    fit_levels = np.empty((R, Kc))
    fitp = np.zeros((R, 3))
    nc = nonconst.astype(np.uint8)
    if scheme == "lloyd":
        _lloyd.fit_lloyd(Y, nc, Kc, oid, preserve_mean, _LLOYD_BINS, fit_levels)
    elif scheme == "normal":
        table = normal_table(bits).astype(np.float64)
        alpha = np.zeros(R)
        _fit_normal(Y, nc, table, oid, preserve_mean, rms, _NORMAL_MAX_EVENTS, alpha, fit_levels)
        fitp[:, 0] = alpha
    else:
        _fit_parametric.fit_parametric(Y, nc, sid, Kc, oid, preserve_mean, rms, fitp, fit_levels)
    del Y

    codes_rows = np.empty((R, n), np.uint8)
    stats = np.empty((R, 5))
    encode(X, center, A, fit_levels, codes_rows, stats)
    g, o = _gain_offset(stats, n, gain, preserve_mean)

    P = n_params(scheme, bits)
    params = np.zeros((len(X), P))
    scale = A * g
    off = center + A * o
    if scheme == "uniform":
        params[:, 0] = scale * fitp[:, 0]
        params[:, 1] = fitp[:, 1]
        params[:, 2] = off
    elif scheme == "lloyd":
        params[:] = scale[:, None] * fit_levels + off[:, None]
    elif scheme == "normal":
        params[:, 0] = scale * fitp[:, 0]
        params[:, 1] = off
    else:
        params[:, 0] = scale * fitp[:, 0]
        params[:, 1] = fitp[:, 1]
        params[:, 2] = fitp[:, 2]
        params[:, 3] = off
    # constant rows: zero spread, every level equal to the value
    params[~nonconst] = 0.0
    if scheme == "lloyd":
        params[~nonconst] = center[~nonconst, None]
    elif scheme == "uniform":
        params[~nonconst, 2] = center[~nonconst]
    elif scheme == "normal":
        params[~nonconst, 1] = center[~nonconst]
    else:
        params[~nonconst, 1] = 0.5
        params[~nonconst, 3] = center[~nonconst]

    return codes_rows, params


def _row_label(r: int, shape: tuple[int, ...], axis: int | None, group_size: int | None) -> str:
    if group_size is not None:
        return f"codebook row {r} (a group of up to {group_size} weights)"
    return "the tensor" if axis is None else f"slice {r} along axis {axis}"


def _check_spread(A: np.ndarray, nonconst: np.ndarray) -> None:
    """Refuse rows whose spread is below float32's normal range (their step would underflow)."""
    bad = nonconst & (A < _F32_TINY)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"w has {int(bad.sum())} codebook row(s) whose values spread by only {A[r]:.3g} or so, "
            f"below float32's smallest normal number {_F32_TINY:.3g}: the stored codebook would underflow "
            "to zero (or lose its precision). Rescale w first, e.g. s = np.abs(w).max(); quantize(w / s, ...) "
            "and multiply the dequantized result by s.")


def _check_representable(params: np.ndarray, scheme: str, shape, axis, group_size) -> None:
    """Refuse a fitted grid whose step or scale underflows float32 on a non-constant row."""
    if scheme == "lloyd":
        spread = params[:, -1] - params[:, 0]
        step = np.where(spread > 0, spread, np.inf)
    else:
        step = np.where(params[:, 0] != 0, np.abs(params[:, 0]), np.inf)  # 0: a constant row
    bad = step < _F32_TINY
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the fitted grid of {_row_label(r, shape, axis, group_size)} has a step of {step[r]:.3g}, below "
            f"float32's smallest normal number {_F32_TINY:.3g}: stored as float32 it would underflow. "
            "Rescale w first (e.g. divide by np.abs(w).max()) and scale the dequantized result back.")

