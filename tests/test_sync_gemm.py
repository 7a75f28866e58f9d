"""Synchronous dynamics as int8 GEMMs (hopfield._sync_gemm): the path that
``recall(dynamics="sync", device="cuda")`` takes when PyTorch has a GPU.  The same torch
code runs here on the CPU and must equal the numba kernel and the slow reference: states,
sweep counts, convergence flags and 2-cycles, at every width below 8 bits, odd sizes
(padded to multiples of 8), fewer than 17 cues (padded rows) and several blocks of cues.
``HOPFIELD_SYNC_GEMM_DEVICE=cuda pytest tests/test_sync_gemm.py`` runs the same equalities
on a GPU (bench/device_run.sh does)."""

import importlib.util
import os

import numpy as np
import pytest
import reference as ref

torch = pytest.importorskip("torch")

from hopfield import HopfieldNetwork, _sync_gemm, flip_noise, random_patterns  # noqa: E402
from hopfield import network as hnet  # noqa: E402

DEVICE = os.environ.get("HOPFIELD_SYNC_GEMM_DEVICE", "cpu")


def _run(q, cues, max_sweeps):
    S = cues.copy()
    sweeps = np.full(len(S), -1, np.int64)
    conv = np.zeros(len(S), np.bool_)
    _sync_gemm.recall_sync(q.quantized.codes, q._scale, q._z, q._off, S, max_sweeps, sweeps, conv, DEVICE)
    return S, sweeps, conv


def _cases():
    # (N, P, bits, cues, noise): odd and tiny N, 1 cue, many cues, heavy loads (2-cycles)
    return [(2, 1, 1, 1, 0.5), (5, 2, 1, 3, 0.4), (9, 3, 2, 16, 0.3), (37, 9, 3, 17, 0.3), (61, 14, 4, 40, 0.25),
            (64, 20, 5, 25, 0.3), (130, 40, 7, 50, 0.3), (203, 45, 6, 33, 0.2)]


@pytest.mark.parametrize("N,P,bits,n_cues,noise", _cases())
@pytest.mark.parametrize("max_sweeps", [1, 2, 3, 100])
def test_equals_the_cpu_kernel(N, P, bits, n_cues, noise, max_sweeps):
    X = random_patterns(P, N, seed=N + bits)
    q = HopfieldNetwork.from_patterns(X).quantize(bits, "uniform", preserve_mean=bits in (3, 6))
    assert q._affine
    cues = flip_noise(X[np.arange(n_cues) % P], noise, seed=N)
    want = q.recall(cues, dynamics="sync", max_sweeps=max_sweeps)
    S, sweeps, conv = _run(q, cues, max_sweeps)
    np.testing.assert_array_equal(S, want.states)
    np.testing.assert_array_equal(sweeps, want.sweeps)
    np.testing.assert_array_equal(conv, want.converged)


def test_two_cycles_and_slow_reference():
    # above capacity synchronous dynamics fall into 2-cycles: reported as not converged, the
    # state after the sweep that closed the cycle kept; the slow reference agrees cue by cue
    X = random_patterns(60, 100, seed=3)
    q = HopfieldNetwork.from_patterns(X).quantize(2, "uniform", preserve_mean=True)
    cues = flip_noise(X, 0.3, seed=4)
    S, sweeps, conv = _run(q, cues, 100)
    assert (~conv).sum() >= 5 and conv.sum() >= 5  # both outcomes occur
    W = q.effective_weights()
    for c in range(len(cues)):
        s, n, ok = ref.sync_recall(W, cues[c], 100)
        assert (S[c] == s).all() and sweeps[c] == n and conv[c] == ok


def test_several_blocks_of_cues(monkeypatch):
    monkeypatch.setattr(_sync_gemm, "_BLOCK_BYTES", 1)  # 17 cues per block: 60 cues in 4 blocks
    assert _sync_gemm.block_cues(61) == 17
    X = random_patterns(12, 61, seed=8)
    q = HopfieldNetwork.from_patterns(X).quantize(4, "uniform")
    cues = flip_noise(X[np.arange(60) % 12], 0.3, seed=9)
    want = q.recall(cues, dynamics="sync")
    S, sweeps, conv = _run(q, cues, 100)
    np.testing.assert_array_equal(S, want.states)
    np.testing.assert_array_equal(sweeps, want.sweeps)
    np.testing.assert_array_equal(conv, want.converged)


def test_ties_keep_the_state():
    # 1-bit codes on an even number of other neurons give exact zero fields: the state stays
    X = random_patterns(1, 5, seed=0)
    q = HopfieldNetwork.from_patterns(X).quantize(1, "uniform")
    cues = np.array([[1, 1, -1, -1, 1], [1, -1, 1, -1, 1], [-1, -1, -1, 1, 1]], np.int8)
    want = q.recall(cues, dynamics="sync")
    S, sweeps, conv = _run(q, cues, 100)
    assert (q.fields(cues) == 0).any()
    np.testing.assert_array_equal(S, want.states)
    np.testing.assert_array_equal(sweeps, want.sweeps)


def test_padding_and_footprint():
    assert [_sync_gemm.padded(n) for n in (1, 8, 9, 30001)] == [8, 8, 16, 30008]
    fp = _sync_gemm.footprint(30001, 1000)
    assert fp.parts["codes Np^2 (N padded to a multiple of 8)"] == 30008 ** 2
    assert fp.parts["state + previous state 2 Np per cue"] == 2 * 30008 * 1000
    assert fp.total < 1.2 * 30008 ** 2 + 40 * 30008 * 1000


def test_refused_before_allocating_when_the_gpu_is_too_small(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (1e6, 80e9))
    monkeypatch.setattr(torch, "zeros", lambda *a, **k: pytest.fail("allocated before the memory check"))
    S = np.ones((4, 2000), np.int8)
    codes = np.zeros((2000, 2000), np.uint8)
    with pytest.raises(MemoryError, match="does not fit on the GPU: 1 MB free of 80 GB"):
        _sync_gemm.recall_sync(codes, 1.0, 0.0, 0.0, S, 10, np.zeros(4, np.int64), np.zeros(4, bool), "cuda")


def test_available_needs_torch_with_cuda_and_int8_codes():
    assert _sync_gemm.available(4, 1000) == torch.cuda.is_available()
    assert not _sync_gemm.available(8, 1000)  # codes up to 255 are not int8
    assert not _sync_gemm.available(7, (1 << 31) // 127 + 1)  # int32 sums could overflow


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed (the cuda extra)")
def test_recall_device_cuda_routes_sync_here(monkeypatch):
    # the wiring of QuantizedHopfieldNetwork.recall: with a GPU-enabled torch, sync on the
    # affine path runs through recall_sync (here on torch's CPU, numba-cuda's simulator in CI)
    calls = []
    real = _sync_gemm.recall_sync
    monkeypatch.setattr(_sync_gemm, "available", lambda bits, n: True)
    monkeypatch.setattr(_sync_gemm, "TORCH_DEVICE", "cpu")
    monkeypatch.setattr(_sync_gemm, "recall_sync", lambda *a: calls.append(a[-1]) or real(*a))
    X = random_patterns(6, 40, seed=1)
    q = HopfieldNetwork.from_patterns(X).quantize(3, "uniform")
    cues = flip_noise(X, 0.25, seed=2)
    want = q.recall(cues, dynamics="sync")
    got = q.recall(cues, dynamics="sync", device="cuda")
    assert calls == ["cpu"]
    np.testing.assert_array_equal(got.states, want.states)
    np.testing.assert_array_equal(got.sweeps, want.sweeps)
    np.testing.assert_array_equal(got.converged, want.converged)
    assert hnet._sync_gemm is _sync_gemm


def test_gemm_operands_meet_cublas_int8_rules(monkeypatch):
    # torch's CPU _int_mm takes any shape; cuBLAS's int8 GEMM on a GPU wants more than 16
    # rows, inner and outer sizes that are multiples of 8, a row-major A and a column-major B
    seen = []
    real = torch._int_mm

    def strict(A, B, *args, **kw):
        assert A.shape[0] > 16 and A.shape[1] % 8 == 0 and B.shape[1] % 8 == 0, (A.shape, B.shape)
        assert A.is_contiguous() and B.stride(0) == 1, (A.stride(), B.stride())
        seen.append((tuple(A.shape), tuple(B.shape)))
        return real(A, B, *args, **kw)

    monkeypatch.setattr(torch, "_int_mm", strict)
    X = random_patterns(5, 37, seed=2)
    q = HopfieldNetwork.from_patterns(X).quantize(4, "uniform")
    cues = flip_noise(X[:3], 0.3, seed=3)  # 3 cues, N = 37: both paddings needed
    want = q.recall(cues, dynamics="sync")
    S, sweeps, conv = _run(q, cues, 100)
    assert seen and all(a == (17, 40) and b == (40, 40) for a, b in seen)
    np.testing.assert_array_equal(S, want.states)
    np.testing.assert_array_equal(sweeps, want.sweeps)


def test_field_arithmetic_in_the_cpu_kernels_order():
    # all-zero codes and W_ij = 3 (c_ij - 1/3) + 1: every field is 0 in exact arithmetic,
    # but the CPU kernel's float64 steps, scale * (U - zero * m) + offset * m, leave a
    # rounding residue whose sign depends on m; another order (scale U - m (zero scale -
    # offset), say) gives exact zeros, hence ties, and other states
    from hopfield import _kernels as K

    N, C = 45, 30
    codes = np.zeros((N, N), np.uint8)
    scale, zero, offset = 3.0, 1.0 / 3.0, 1.0
    rng = np.random.default_rng(5)
    cues = -np.ones((C, N), np.int8)
    for c in range(C):  # 15, 16, 29 or 30 neurons up: sums over the others of +-14 (residue +-9e-16) occur
        cues[c, rng.permutation(N)[:rng.choice([15, 16, 29, 30])]] = 1
    S_cpu = cues.copy()
    sw_cpu, cv_cpu = np.zeros(C, np.int64), np.zeros(C, np.bool_)
    K.recall_affine(K.AffineWeights(codes, scale, zero, offset), S_cpu, np.zeros((C, N), np.int32),
                    S_cpu.sum(axis=1, dtype=np.int64), np.zeros(C, np.uint64), K.RunOptions(100, K.SYNC, 0.0),
                    sw_cpu, cv_cpu)
    assert (S_cpu != cues).any()  # the residues flip neurons: exact-zero fields would not
    S = cues.copy()
    sweeps, conv = np.zeros(C, np.int64), np.zeros(C, np.bool_)
    _sync_gemm.recall_sync(codes, scale, zero, offset, S, 100, sweeps, conv, DEVICE)
    np.testing.assert_array_equal(S, S_cpu)
    np.testing.assert_array_equal(sweeps, sw_cpu)
    np.testing.assert_array_equal(conv, cv_cpu)
