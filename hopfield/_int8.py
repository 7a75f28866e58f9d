"""Exact integer GEMMs through PyTorch's int8 kernels, when PyTorch is installed.

The Hebbian store (X^T X of +-1 patterns) and the initial integer sums of the quantized
dynamics (S C^T of +-1 states and uint8 codes) are GEMMs of small integers.  numpy has
no integer BLAS, so the package runs them as float32 GEMMs (exact below 2**24).
PyTorch's ``torch._int_mm`` multiplies int8 matrices with int32 accumulation (oneDNN's
VNNI/AMX kernels on x86-64); its results are the same integers, so every result of the
package is the same bit for bit whichever GEMM ran.

On the 2-core AMD EPYC (AVX-512 VNNI) of ``bench/bench_hopfield.py`` it takes a quarter of
the float32 GEMM's time; see that bench for the current ratio.  It is used only where it
was measured (x86-64), for GEMMs of at least ``MIN_WORK`` multiply-adds (importing torch
takes about a second), and never when ``HOPFIELD_INT8_GEMM=0`` is set in the environment.
PyTorch runs it on numba's thread count (``numba.get_num_threads()``), like the kernels.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import threading
import warnings

import numba
import numpy as np

MIN_WORK = 1 << 32  # multiply-adds from which torch's int8 GEMM is worth its import
ENABLED = os.environ.get("HOPFIELD_INT8_GEMM", "1") != "0" and platform.machine().lower() in ("x86_64", "amd64")
INT32_LIMIT = (1 << 31) - 1
_LOCK = threading.Lock()


def usable(work: int) -> bool:
    """Whether a GEMM of ``work`` multiply-adds goes through torch's int8 GEMM."""
    return ENABLED and work >= MIN_WORK and _has_torch()


def _has_torch() -> bool:
    """Whether torch imports and its CPU int8 GEMM works (checked once, on a tiny product:
    older releases lack ``_int_mm`` on the CPU; a broken install must not break the store)."""
    global _HAS_TORCH
    if _HAS_TORCH is None:
        _HAS_TORCH = False
        if importlib.util.find_spec("torch") is not None:
            try:
                import torch

                # the whole int8 range, extremes included: kernels that sum pairs of products in
                # saturating int16 (oneDNN without VNNI, say) give wrong sums here and are not used
                rng = np.random.default_rng(0)
                A = rng.integers(-128, 128, (17, 64)).astype(np.int8)
                B = rng.integers(-128, 128, (64, 8)).astype(np.int8)
                A[0], B[:, 0] = -128, -128
                A[1], B[:, 1] = 127, 127
                got = torch._int_mm(torch.from_numpy(A), torch.from_numpy(B)).numpy()
                _HAS_TORCH = bool(np.array_equal(got, A.astype(np.int64) @ B.astype(np.int64)))
            except Exception:  # noqa: BLE001 - any failure means: use numpy's GEMM
                _HAS_TORCH = False
    return _HAS_TORCH


_HAS_TORCH: bool | None = None


def matmul(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = A @ B for int8 A (m, k) and B (k, n) into int32 ``out`` (m, n), exactly.

    The caller guarantees that no sum leaves int32 (k * max|A| * max|B| <= 2**31 - 1);
    A and B may be transposed views (torch reads their strides).
    """
    import torch

    # torch takes no negative strides, and a zero stride (a broadcast view) gives wrong sums
    A, B = (x if min(x.strides) > 0 else x.copy() for x in (A, B))
    want = numba.get_num_threads()
    with _LOCK:  # torch's thread count and the warnings filter are process-wide
        had = torch.get_num_threads()
        if had != want:
            torch.set_num_threads(want)
        try:
            with warnings.catch_warnings():  # read-only codes: torch warns that it could write them; _int_mm does not
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                torch._int_mm(torch.from_numpy(A), torch.from_numpy(B), out=torch.from_numpy(out))
        finally:
            if had != want:
                torch.set_num_threads(had)
    return out
