"""Synchronous dynamics of the exact affine path as int8 GEMMs (PyTorch), CPU or CUDA.

A synchronous sweep sets every neuron from the fields of the previous state, so one
sweep of all active cues is one GEMM: U = S C (C the symmetric codes, the self-coupling
taken out afterwards).  The integer sums are exact in any order (int8 products, int32
accumulation), and the field of each neuron is then computed with the CPU kernel's float64
operations in the CPU kernel's order, one elementwise torch operation each (separate
kernels, so no multiply-add is fused), so states, sweep counts and the 2-cycle test equal
``hopfield._kernels._run_sync`` bit for bit.  On a GPU the GEMM runs on cuBLAS's int8
tensor-core kernels (``torch._int_mm``), which needs the inner and outer sizes to be
multiples of 8 and more than 16 rows: codes and states are padded with zeros, which add
nothing to the sums and are never decided.

Used by ``QuantizedHopfieldNetwork.recall(dynamics="sync", device="cuda")`` when PyTorch
with CUDA is installed; the code is the same on the CPU, where the tests run it.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from . import _device

_MIN_ROWS = 17  # torch._int_mm on CUDA: more than 16 rows
_ALIGN = 8  # and inner / outer sizes that are multiples of 8
_BLOCK_BYTES = 1 << 29  # transient bytes per block of cues (float64 fields and temporaries, 40 N per cue)
_TEMP_BYTES_PER_NEURON = 40  # int32 sums, the float64 field and one float64 temporary, int8 states
TORCH_DEVICE = "cuda"  # where network.py runs it (the tests set "cpu")
ENABLED = True  # False: device="cuda" sync recall runs the numba-cuda kernels (bench/bench_gpu.py times both)


def available(bits: int, n_neurons: int) -> bool:
    """Whether ``device="cuda"`` synchronous recall of these codes goes through here:
    PyTorch with a usable CUDA GPU, codes below 128 (int8) and int32 sums."""
    if not ENABLED or bits > 7 or n_neurons * ((1 << bits) - 1) > (1 << 31) - 1 or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _tensor(a: np.ndarray):
    """A CPU tensor over a numpy array that may be read-only (it is only read)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def padded(n: int) -> int:
    """n rounded up to a multiple of 8."""
    return -(-n // _ALIGN) * _ALIGN


def block_cues(n_neurons: int) -> int:
    """Cues per block: their transient arrays stay below _BLOCK_BYTES."""
    return max(_MIN_ROWS, _BLOCK_BYTES // (_TEMP_BYTES_PER_NEURON * padded(n_neurons)))


def _upload_rows(n_neurons: int) -> int:
    """Rows of codes per host-to-GPU copy: at most _BLOCK_BYTES of codes at a time."""
    return max(1, min(n_neurons, _BLOCK_BYTES // padded(n_neurons)))


def footprint(n_neurons: int, n_cues: int) -> _device.Footprint:
    """GPU memory of this path: padded codes, two padded states per cue, one block's
    temporaries, and the staging copies of the uploads."""
    N, Np = n_neurons, padded(n_neurons)
    parts = {"codes Np^2 (N padded to a multiple of 8)": Np * Np,
             "diagonal 4 Np": 4 * Np,
             "state + previous state 2 Np per cue": 2 * Np * n_cues,
             "one block of cues' sums and fields 40 Np per cue": _TEMP_BYTES_PER_NEURON * Np
             * min(max(n_cues, _MIN_ROWS), block_cues(N)),
             "staging of the uploads: one block of code rows, the cues N per cue": _upload_rows(N) * N + N * n_cues,
             "sweeps, flags 9 per cue": 9 * n_cues}
    return _device.Footprint("recall", "cuda", N, parts)


def recall_sync(codes: np.ndarray, scale: float, zero: float, offset: float, S: np.ndarray, max_sweeps: int,
                sweeps: np.ndarray, converged: np.ndarray, device: str) -> None:
    """Synchronous recall on the affine weights W_ij = scale (codes_ij - zero) + offset.

    ``codes``: uint8 (N, N), symmetric, every value below 128; ``S``: int8 (C, N) states,
    updated in place; ``sweeps`` (int64) and ``converged`` (bool) filled per cue, as
    ``hopfield._kernels.recall_affine`` with mode SYNC.  ``device``: "cpu", or "cuda" for
    the GPU numba-cuda works on (refused before anything is allocated when it lacks the
    memory; torch's cached memory is handed back afterwards, also after an error).
    """
    import torch

    C, N = S.shape
    dev = torch.device(device)
    if dev.type != "cuda":
        return _run(codes, scale, zero, offset, S, max_sweeps, sweeps, converged, dev)
    dev = torch.device("cuda", _numba_device_id())
    _release_numba_memory()
    free, total = torch.cuda.mem_get_info(dev)
    fp = footprint(N, C)
    if fp.total > free:
        raise MemoryError(f"{fp} does not fit on the GPU: {_device.size_text(free)} free of "
                          f"{_device.size_text(total)}. Recall fewer cues at a time, or use device='cpu'.")
    try:
        _run(codes, scale, zero, offset, S, max_sweeps, sweeps, converged, dev)
    finally:
        torch.cuda.empty_cache()  # hand the memory back: the package's other GPU steps allocate through numba


def _run(codes, scale, zero, offset, S, max_sweeps, sweeps, converged, dev) -> None:
    import torch

    C, N = S.shape
    Np = padded(N)
    Cd = torch.zeros((Np, Np), dtype=torch.int8, device=dev)
    host = _tensor(codes.view(np.int8))
    rows = _upload_rows(N)  # uploaded in blocks of rows: no second N^2 array on the GPU
    for r0 in range(0, N, rows):
        r1 = min(N, r0 + rows)
        Cd[r0:r1, :N].copy_(host[r0:r1])
    Ct = Cd.t()  # the same values (symmetric), column-major: the layout cuBLAS's int8 GEMM takes
    diag = torch.zeros(Np, dtype=torch.int32, device=dev)
    diag[:N] = torch.from_numpy(np.diagonal(codes).astype(np.int32)).to(dev)
    St = torch.zeros((C, Np), dtype=torch.int8, device=dev)
    St[:, :N] = _tensor(S).to(dev)
    prev = St.clone()  # the state one sweep back, for the 2-cycle test
    n_sweeps = torch.full((C,), max_sweeps, dtype=torch.int64, device=dev)
    done = torch.zeros(C, dtype=torch.bool, device=dev)
    conv = torch.zeros(C, dtype=torch.bool, device=dev)
    block = block_cues(N)
    active = torch.arange(C, device=dev)
    for sweep in range(max_sweeps):
        if active.numel() == 0:
            break
        for b0 in range(0, active.numel(), block):
            idx = active[b0:b0 + block]
            Sa = St[idx]
            new = _decide(Sa, Ct, diag, N, scale, zero, offset)
            moved = (new != Sa[:, :N]).any(dim=1)
            still = idx[~moved]  # a sweep without flips: a fixed point, the state as it is
            n_sweeps[still] = sweep + 1
            conv[still] = True
            done[still] = True
            cycle = moved & (new == prev[idx, :N]).all(dim=1) if sweep > 0 else torch.zeros_like(moved)
            go = idx[moved]
            prev[go] = Sa[moved]
            St[go, :N] = new[moved]
            n_sweeps[idx[cycle]] = sweep + 1  # a 2-cycle: the new state is kept, not converged
            done[idx[cycle]] = True
        active = active[~done[active]]
    S[:] = St[:, :N].cpu().numpy()
    sweeps[:] = n_sweeps.cpu().numpy()
    converged[:] = conv.cpu().numpy()


def _numba_device_id() -> int:
    """The GPU numba-cuda works on (numba.cuda.select_device), so that both libraries use one."""
    import sys

    cuda = sys.modules.get("numba.cuda")
    if cuda is None or getattr(cuda.config, "ENABLE_CUDASIM", False):
        return 0
    return int(cuda.get_current_device().id)


def _release_numba_memory() -> None:
    """Free the device arrays numba-cuda has released but not yet returned (it frees them in
    batches), so that torch finds that memory free."""
    import sys

    cuda = sys.modules.get("numba.cuda")
    if cuda is None or getattr(cuda.config, "ENABLE_CUDASIM", False):
        return
    ctx = cuda.current_context()
    if hasattr(ctx, "deallocations"):
        ctx.deallocations.clear()


def _decide(Sa, Ct, diag, N: int, scale: float, zero: float, offset: float):
    """The next state of a block of cues (rows of Sa, padded): the CPU kernel's
    ``field`` and tie rule (h > 0: +1, h < 0: -1, h = 0: keep)."""
    import torch

    rows = Sa.shape[0]
    A = Sa
    if rows < _MIN_ROWS:
        A = torch.zeros((_MIN_ROWS, Sa.shape[1]), dtype=torch.int8, device=Sa.device)
        A[:rows] = Sa
    U = torch._int_mm(A, Ct)[:rows, :N]
    s = Sa[:, :N]
    U -= s.to(torch.int32) * diag[:N]  # sum over j != i
    total = s.sum(dim=1, dtype=torch.int64)
    m = (total[:, None] - s).to(torch.float64)  # sum_{j != i} s_j, as float64(total - s_i)
    # h = scale * (float64(U) - zero * m) + offset * m, each operation rounded on its own
    h = U.to(torch.float64)
    h -= m * zero
    h *= scale
    m *= offset
    h += m
    return torch.where(h > 0, 1, torch.where(h < 0, -1, s)).to(torch.int8)
