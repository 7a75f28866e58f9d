"""Today's weight-only quantizers, for comparison studies (not part of the package).

Each function quantizes ONE weight tensor ``w`` (numpy float32, shape ``(out, ...)``) and
returns ``(w_hat, nbytes)``: the dequantized float32 array of the same shape and the
bytes it takes to store, counted honestly: packed codes ``ceil(n * bits / 8)`` plus
every per-row/per-group parameter at the precision it is stored in.

Layout, for all four: each output channel's weights are flattened to one row
(``w.reshape(out, -1)``); ``group_size=None`` gives one set of parameters per row (per
output channel), an int ``g`` one set per ``g`` consecutive elements of that row (``g``
must divide the row length, so groups never span two channels).

* :func:`minmax_rtn`: asymmetric min-max round-to-nearest with a float16 scale and a
  float16 zero in the weight domain (torchao's int-N weight-only layout with
  ``ZeroPointDomain.FLOAT``, as its tinygemm int4 kernel stores it)::

      scale = (max - min) / (2**b - 1),   zero = min + scale * 2**(b-1)     (both float16)
      q     = clamp(round((w - zero) / scale + 2**(b-1)), 0, 2**b - 1)
      w_hat = (q - 2**(b-1)) * scale + zero

  Codes are computed with the float16-rounded scale and zero, so ``w_hat`` is exactly
  what the stored bytes give.  ONNX Runtime's MatMulNBits differs in storing the zero
  point as a b-bit integer (and widening [min, max] to include 0); not followed here.
* :func:`mse_clip_rtn`: the same grid, with the clipping range of each row/group
  shrunk to ``[p min, p max]``, ``p`` from 1 down to 1 - max_shrink in steps of
  1/grid, keeping the ``p`` of least squared error (GPTQ's ``Quantizer.find_params(mse=True)``
  grid search, grid=100, maxshrink=0.8, with the norm 2 instead of GPTQ's 2.4; AWQ's
  ``auto_clip`` does the same search on the layer output instead of the weights).
* :func:`hqq`: Half-Quadratic Quantization (Badri & Shaji 2023) through the installed
  ``hqq`` library, ``hqq.core.quantize.Quantizer.quantize`` on CPU: axis=1 over the
  ``(rows, group)`` reshaped tensor (``group_size=None``: over whole rows), the proximal
  zero-point optimisation on (``optimize=True``, its defaults: lp norm 0.7, beta 10,
  kappa 1.01, 20 iterations, float32 on CPU), ``round_zero=False``, ``bitpack=False``
  (bytes are counted here).  Its scale and zero are stored in float16 (HQQ's
  ``compute_dtype=float16``); dequantization here uses the float16-rounded values in
  float32 arithmetic.  hqq supports 1, 2, 3, 4, 5, 6 and 8 bits (not 7); rows/groups
  whose range is below 1e-4 get hqq's fallback scale 1 (coarse for tiny weights).
* :func:`nf`: bitsandbytes-style NormalFloat (NF4 at 4 bits) through this package's
  ``normal`` scheme with ``objective="minmax"``, ``preserve_mean=False``,
  ``gain="none"``: levels ``absmax * T``.  Bytes from ``QuantizedTensor.nbytes``: codes
  plus two float32 per row/group (absmax and an offset that is zero here; bitsandbytes
  stores only the float32 absmax, 4 bytes per block less).
"""

from __future__ import annotations

import numpy as np

__all__ = ["minmax_rtn", "mse_clip_rtn", "hqq", "nf", "code_bytes"]

_F16_TINY = float(np.finfo(np.float16).smallest_subnormal)


def code_bytes(n: int, bits: int) -> int:
    """Bytes of ``n`` packed ``bits``-bit codes: ``ceil(n * bits / 8)``."""
    return -(-int(n) * int(bits) // 8)


def _groups(w: np.ndarray, group_size: int | None) -> np.ndarray:
    """float64 view of ``w`` as (n_groups, group_len): one row per output channel or group."""
    w = np.asarray(w)
    if w.ndim < 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty array of shape (out, ...), got shape {w.shape}.")
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    if group_size is None:
        return rows
    g = int(group_size)
    if g < 1 or rows.shape[1] % g:
        raise ValueError(f"group_size={group_size} must be a positive divisor of the row length {rows.shape[1]} "
                         f"(w.shape={w.shape}), so that groups never span two output channels.")
    return rows.reshape(-1, g)


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an int in 1..8, got {bits!r}.")
    return int(bits)


def _affine_params(lo: np.ndarray, hi: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """float16-rounded (scale, zero) of the grid spanning [lo, hi] per row (as float64)."""
    scale = ((hi - lo) / ((1 << bits) - 1)).astype(np.float16).astype(np.float64)
    scale = np.maximum(scale, _F16_TINY)  # constant rows: any positive scale, the zero carries the value
    zero = (lo + scale * (1 << (bits - 1))).astype(np.float16).astype(np.float64)
    return scale, zero


def _affine_rtn(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    mid = 1 << (bits - 1)
    q = np.clip(np.round((x - zero[:, None]) / scale[:, None] + mid), 0, (1 << bits) - 1)
    return (q - mid) * scale[:, None] + zero[:, None]


def minmax_rtn(w: np.ndarray, bits: int, group_size: int | None = None) -> tuple[np.ndarray, int]:
    """Asymmetric min-max round-to-nearest, float16 scale and zero per row/group.

    Parameters
    ----------
    w : ndarray of shape (out, ...)
    bits : int, 1..8
    group_size : int or None
        None: per output channel; g: per g consecutive elements of each flattened row.

    Returns
    -------
    w_hat : ndarray of float32, shape ``w.shape``
    nbytes : int
        ``ceil(n bits / 8) + 4 * n_groups`` (float16 scale + float16 zero).
    """
    bits = _check_bits(bits)
    x = _groups(w, group_size)
    scale, zero = _affine_params(x.min(axis=1), x.max(axis=1), bits)
    w_hat = _affine_rtn(x, scale, zero, bits)
    return w_hat.astype(np.float32).reshape(np.shape(w)), code_bytes(x.size, bits) + 4 * x.shape[0]


def mse_clip_rtn(w: np.ndarray, bits: int, group_size: int | None = None, grid: int = 100,
                 max_shrink: float = 0.8) -> tuple[np.ndarray, int]:
    """:func:`minmax_rtn` with the clipping range chosen per row/group to minimise MSE.

    For ``p = 1 - i / grid``, ``i = 0 .. int(max_shrink * grid) - 1`` (GPTQ's defaults),
    the grid spans ``[p min, p max]``; each row/group keeps the ``p`` with the least
    squared error of its float16-stored reconstruction (p = 1, the min-max grid, is a
    candidate, so it is never worse than :func:`minmax_rtn`).

    Returns
    -------
    w_hat : ndarray of float32, shape ``w.shape``
    nbytes : int
        Same as :func:`minmax_rtn`: the shrink factor is not stored.
    """
    bits = _check_bits(bits)
    x = _groups(w, group_size)
    lo, hi = x.min(axis=1), x.max(axis=1)
    best = np.full(x.shape[0], np.inf)
    w_hat = np.empty_like(x)
    for i in range(max(1, int(max_shrink * grid))):
        p = 1.0 - i / grid
        scale, zero = _affine_params(p * lo, p * hi, bits)
        cand = _affine_rtn(x, scale, zero, bits)
        err = np.sum((cand - x) ** 2, axis=1)
        better = err < best
        best[better] = err[better]
        w_hat[better] = cand[better]
    return w_hat.astype(np.float32).reshape(np.shape(w)), code_bytes(x.size, bits) + 4 * x.shape[0]


def hqq(w: np.ndarray, bits: int, group_size: int | None = None) -> tuple[np.ndarray, int]:
    """HQQ via ``hqq.core.quantize.Quantizer`` on CPU (see the module docstring).

    Returns
    -------
    w_hat : ndarray of float32, shape ``w.shape``
    nbytes : int
        ``ceil(n bits / 8) + 4 * n_groups`` (float16 scale + float16 zero).

    Raises
    ------
    ImportError
        hqq or torch is not installed (``pip install hqq``).
    ValueError
        ``bits`` not supported by hqq (7), or a group size that does not divide the rows.
    """
    bits = _check_bits(bits)
    try:
        import torch
        from hqq.core.quantize import Quantizer
    except ImportError as exc:  # optional: only this baseline needs them
        raise ImportError(f"the hqq baseline needs torch and hqq ({exc}); install them with `pip install hqq`.") from None
    if bits not in Quantizer.SUPPORTED_BITS:
        raise ValueError(f"hqq supports bits in {sorted(b for b in Quantizer.SUPPORTED_BITS if b == int(b))}, "
                         f"got bits={bits}.")
    x = _groups(w, group_size)  # (n_groups, group_len): axis=1 quantizes each row
    t = torch.from_numpy(x.astype(np.float32))
    with torch.inference_mode():
        W_q, meta = Quantizer.quantize(t, nbits=bits, channel_wise=True, group_size=None, optimize=True,
                                       round_zero=False, axis=1, bitpack=False, compute_dtype=torch.float32,
                                       device="cpu")
        # stored as float16 (HQQ's compute dtype); dequantize with exactly those values
        meta["scale"] = meta["scale"].to(torch.float16).to(torch.float32)
        meta["zero"] = meta["zero"].to(torch.float16).to(torch.float32)
        meta["compute_dtype"] = torch.float32  # Quantizer.dequantize defaults to float16 without it
        w_hat = Quantizer.dequantize(W_q, meta).numpy()
    codes = W_q.numpy()
    if codes.min() < 0 or codes.max() > (1 << bits) - 1:  # sanity: hqq's codes fit the bit width
        raise RuntimeError(f"hqq returned codes outside 0..{(1 << bits) - 1}.")
    return w_hat.astype(np.float32).reshape(np.shape(w)), code_bytes(x.size, bits) + 4 * x.shape[0]


def nf(w: np.ndarray, bits: int, group_size: int | None = None) -> tuple[np.ndarray, int]:
    """bitsandbytes-style NormalFloat (absmax) via ``quantization``'s ``normal`` scheme.

    Returns
    -------
    w_hat : ndarray of float32, shape ``w.shape``
    nbytes : int
        ``QuantizedTensor.nbytes``: codes plus two float32 (scale, offset) per row/group.
    """
    from quantization import quantize

    bits = _check_bits(bits)
    x = np.asarray(w)
    rows = x.reshape(x.shape[0], -1)
    kw = dict(axis=0) if group_size is None else dict(group_size=int(group_size))
    _groups(x[:1], group_size)  # the same divisibility check and message as the others
    qt = quantize(rows, bits, "normal", "minmax", gain="none", preserve_mean=False, **kw)
    return qt.dequantize().reshape(x.shape), qt.nbytes


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    print(f"w: {w.shape}, {w.size} float32 = {w.nbytes} bytes")
    print(f"{'method':<14}{'bits':>5}{'group':>7}{'corr':>10}{'bytes':>8}")
    for bits in (2, 3, 4, 8):
        for group in (None, 9):
            for name, fn in (("minmax_rtn", minmax_rtn), ("mse_clip_rtn", mse_clip_rtn), ("hqq", hqq), ("nf", nf)):
                w_hat, nbytes = fn(w, bits, group)
                assert w_hat.shape == w.shape and w_hat.dtype == np.float32
                corr = np.corrcoef(w.ravel(), w_hat.ravel())[0, 1]
                print(f"{name:<14}{bits:>5}{str(group):>7}{corr:>10.5f}{nbytes:>8}")
