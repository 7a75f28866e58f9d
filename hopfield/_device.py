"""The GPU backend's loader and memory footprints; importable without numba-cuda.

``cuda_backend()`` imports :mod:`hopfield._cuda` (and with it ``numba.cuda``) on first
use, so ``import hopfield`` never needs numba-cuda; its errors name the extra to install.
``footprint`` states what each step holds in memory, the formulas the README quotes and
the CUDA wrappers check against the GPU's free memory before they allocate anything.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from quantization import _encode

__all__ = ["Footprint", "footprint", "largest_n", "size_text", "encode_piece_elements", "cuda_backend"]

INSTALL_HINT = 'pip install "hopfield-quant[cuda]"'
STEPS = ("store", "quantize", "recall")
WHERE = ("cuda", "host")
WEIGHTS = ("codes", "affine", "float32")

# device buffers of the streamed steps: rows of W per Hebbian slab and elements per
# encode piece are chosen so that one slab (or piece with its codes) stays below this
SLAB_BYTES = 1 << 30
ENCODE_CHUNK = _encode.ENCODE_CHUNK  # elements per thread of the encode kernel, as on the CPU
STAT_BYTES = _encode.N_STATS * 8  # float64 sums per encode chunk


@dataclass(frozen=True)
class Footprint:
    """Bytes one step holds at its peak, by array.

    Attributes
    ----------
    step : {"store", "quantize", "recall"}
    where : {"cuda", "host"}
        ``cuda``: GPU memory of the CUDA path; ``host``: the host arrays of the CUDA
        pipeline (what from_patterns / quantize / recall with ``device="cuda"`` keep in
        RAM: the float32 W, the codes and their copies).
    n_neurons : int
    parts : dict of str to int
        Bytes of each array, named with its formula.
    """

    step: str
    where: str
    n_neurons: int
    parts: dict

    @property
    def total(self) -> int:
        return int(sum(self.parts.values()))

    def __str__(self) -> str:
        detail = " + ".join(f"{name} {size_text(b)}" for name, b in self.parts.items())
        place = "GPU" if self.where == "cuda" else "host"
        return f"{self.step} at N={self.n_neurons:,} on the {place}: {size_text(self.total)} ({detail})"


def size_text(n: float) -> str:
    """Bytes in decimal units: '6.4 kB', '10 GB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def footprint(step: str, n_neurons: int, *, where: str = "cuda", n_cues: int = 1, n_patterns: int = 0,
              weights: str = "codes", dynamics: str = "async", bits: int = 8, codebook_rows: int = 1) -> Footprint:
    """Memory of one step of the Hopfield pipeline, array by array.

    GPU (``where="cuda"``):

    * store (Hebb): the patterns bit-packed, 4 N ceil(P / 32) + one slab of W rows,
      min(4 N^2, 1 GiB) (float32);
      the slabs go to the host W one after the other.
    * quantize: the fit runs on the host; the encode streams pieces of W: min(N^2, E)
      (4 + 1) bytes (float32 in, uint8 codes out, E = 1 GiB / 5) + 40 bytes per 65,536
      elements (chunk sums).
    * recall: the weights, 4 N^2 (float32) or N^2 (uint8 codes) + 4 rows 2^bits (codebook),
      and per cue: state N + fields 8 N (float64; ``affine``: integer sums 4 N + 8) +
      visiting order 4 N (async and glauber; int32) or two states and a flip list 6 N (sync) + 17 (seed,
      sweeps, flag).

    Host (``where="host"``), the arrays the CUDA pipeline keeps in RAM: store, patterns P N
    + W 4 N^2; quantize, W 4 N^2 + codes N^2 + the QuantizedTensor's own copy N^2;
    recall, the weights (as above) + per cue state N + result 17 bytes (+ 8 N per cue of
    host fields when the weights' float64 sums are not exact, see ``hopfield._cuda``).

    Parameters
    ----------
    step : {"store", "quantize", "recall"}
    n_neurons : int
    where : {"cuda", "host"}, default "cuda"
    n_cues, n_patterns : int
    weights : {"codes", "affine", "float32"}, default "codes"
        For ``recall``: table-mode codes + codebook, the exact affine path of a uniform
        whole-matrix codebook, or float32 weights.
    dynamics : {"async", "async-fixed", "sync", "glauber"}
    bits, codebook_rows : int
        Codebook size (2**bits levels per row, ``codebook_rows`` rows).

    Returns
    -------
    Footprint
    """
    if step not in STEPS:
        raise ValueError(f"step={step!r} is not supported; choose one of {', '.join(map(repr, STEPS))}.")
    if where not in WHERE:
        raise ValueError(f"where={where!r} is not supported; choose 'cuda' or 'host'.")
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is not supported; choose one of {', '.join(map(repr, WEIGHTS))}.")
    N, C, P = int(n_neurons), int(n_cues), int(n_patterns)
    NN = N * N
    parts: dict[str, int] = {}
    if step == "store":
        if where == "cuda":
            parts["bit-packed patterns 4 N ceil(P / 32)"] = 4 * N * -(-P // 32)
            parts["W slab min(4 N^2, 1 GiB)"] = min(4 * NN, _slab_rows(N) * N * 4)
        else:
            parts["patterns P N"] = P * N
            parts["W 4 N^2"] = 4 * NN
    elif step == "quantize":
        if where == "cuda":
            piece = min(NN, encode_piece_elements())
            parts["W piece + codes piece 5 min(N^2, E)"] = 5 * piece
            parts["chunk sums 40 per 65,536"] = STAT_BYTES * -(-piece // ENCODE_CHUNK)
        else:
            parts["W 4 N^2"] = 4 * NN
            parts["codes N^2"] = NN
            parts["QuantizedTensor copy N^2"] = NN
    else:
        if weights == "float32":
            parts["W 4 N^2"] = 4 * NN
        else:
            parts["codes N^2"] = NN
            if weights == "codes":  # the affine path reads scale, zero and offset, not a codebook
                parts["codebook 4 rows 2^bits"] = 4 * codebook_rows * (1 << bits)
        if where == "cuda":
            parts["states N per cue"] = C * N
            if weights == "affine":
                parts["integer sums 4 N + 8 per cue"] = C * (4 * N + 8)
            else:
                parts["fields 8 N per cue"] = C * 8 * N
            if dynamics == "sync":
                parts["new and previous states 2 N + flip list 4 N per cue"] = C * 6 * N
            elif dynamics != "async-fixed":
                parts["visiting order 4 N per cue"] = C * 4 * N
            parts["seed, sweeps, flag 17 per cue"] = C * 17
        else:
            parts["states N + result 17 per cue"] = C * (N + 17)
    return Footprint(step, where, N, parts)


def _slab_rows(n_neurons: int) -> int:
    """Rows of W per Hebbian slab on the GPU."""
    return max(1, min(n_neurons, SLAB_BYTES // (4 * n_neurons)))


def encode_piece_elements() -> int:
    """Elements of W per encode piece on the GPU (a multiple of ENCODE_CHUNK)."""
    return max(ENCODE_CHUNK, (SLAB_BYTES // 5) // ENCODE_CHUNK * ENCODE_CHUNK)


def largest_n(budget_bytes: float, step: str, **kwargs) -> int:
    """The largest N whose ``footprint(step, N, **kwargs).total`` fits in ``budget_bytes``
    (computed from the formulas, not measured)."""
    lo, hi = 2, 2
    while footprint(step, hi, **kwargs).total <= budget_bytes:
        lo, hi = hi, hi * 2
        if hi > 1 << 40:
            return lo
    while hi - lo > 1:  # footprint grows with N: bisect the boundary
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if footprint(step, mid, **kwargs).total <= budget_bytes else (lo, mid)
    return lo if footprint(step, lo, **kwargs).total <= budget_bytes else 0


def cuda_backend():
    """The CUDA backend module :mod:`hopfield._cuda`, imported on first use.

    Raises
    ------
    ImportError
        numba-cuda is not installed (or ``numba.cuda`` is numba's old built-in target).
    RuntimeError
        No usable CUDA GPU and the simulator is not enabled.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        raise ImportError(f"device='cuda' needs numba-cuda, which is not installed: {INSTALL_HINT} "
                          "(or use device='cpu').")
    import numba.cuda

    if getattr(numba.cuda, "implementation", None) != "NVIDIA":
        raise ImportError("numba.cuda resolves to numba's deprecated built-in CUDA target, not numba-cuda's: "
                          f"reinstall numba-cuda ({INSTALL_HINT}) so that its import redirection is active.")
    if not numba.cuda.is_available():
        raise RuntimeError(
            "device='cuda' found no usable CUDA GPU (numba.cuda.is_available() is False: no NVIDIA GPU, no driver, "
            "or the CUDA libraries are missing; numba.cuda.detect() tells which). Use device='cpu', or set "
            "NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported to run the CUDA kernels on numba-cuda's simulator "
            "(slow; for tests).")
    if not numba.cuda.config.ENABLE_CUDASIM:
        try:  # the lowering registries that every kernel compile loads
            importlib.import_module("numba.cuda.cudaimpl")
        except (AttributeError, ImportError) as exc:  # e.g. numba-cuda 0.30 with numpy 2.5 (no np.row_stack)
            import numpy

            raise ImportError(
                f"numba-cuda cannot load its kernel compiler with numpy {numpy.__version__} ({type(exc).__name__}: "
                f"{exc}). Install a numpy that this numba-cuda supports (numba-cuda 0.30 needs numpy < 2.5: "
                "pip install 'numpy<2.5') or a newer numba-cuda, or use device='cpu'.") from exc
    from . import _cuda

    return _cuda
