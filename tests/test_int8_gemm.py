"""torch's int8 GEMM for the Hebbian store and the initial integer sums (hopfield._int8):
the same integers, hence the same weights, fields and final states, as numpy's float32
GEMM, at every width; and only where it is allowed to run."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hopfield import HopfieldNetwork, _int8, flip_noise, random_patterns  # noqa: E402
from hopfield import _kernels as K  # noqa: E402

pytestmark = pytest.mark.skipif(not _int8._has_torch(), reason="torch's CPU int8 GEMM is missing or inexact here")

import reference as ref  # noqa: E402


@pytest.fixture
def int8_always(monkeypatch):
    """Route every integer GEMM, however small, through torch."""
    monkeypatch.setattr(_int8, "MIN_WORK", 0)
    monkeypatch.setattr(_int8, "ENABLED", True)


def _float_path(fn, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(_int8, "ENABLED", False)
        return fn()


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 7, 5), (17, 64, 33), (40, 129, 8)])
def test_matmul_equals_int64_reference(m, k, n):
    rng = np.random.default_rng(m * 1000 + k)
    A = rng.integers(-128, 128, (m, k)).astype(np.int8)
    B = rng.integers(-128, 128, (k, n)).astype(np.int8)
    want = A.astype(np.int64) @ B.astype(np.int64)
    out = np.full((m, n), -7, np.int32)
    assert _int8.matmul(A, B, out) is out
    np.testing.assert_array_equal(out, want)
    # transposed views, as the store (X^T X) and the sums of per-row codes (S C^T) pass them
    out2 = np.empty((m, n), np.int32)
    _int8.matmul(np.ascontiguousarray(A.T).T, np.ascontiguousarray(B.T).T, out2)
    np.testing.assert_array_equal(out2, want)
    out3 = np.empty((m, n), np.int32)  # reversed views (negative strides)
    _int8.matmul(A[::-1, ::-1].copy()[::-1, ::-1], B[::-1].copy()[::-1], out3)
    np.testing.assert_array_equal(out3, want)
    row = A[:1]  # broadcast views (zero strides)
    np.testing.assert_array_equal(_int8.matmul(np.broadcast_to(row, (m, k)), B, np.empty((m, n), np.int32)),
                                  np.broadcast_to(row, (m, k)).astype(np.int64) @ B.astype(np.int64))


def test_matmul_reads_read_only_inputs_without_warning():
    A = np.ones((4, 6), np.int8)
    A.flags.writeable = False
    out = np.empty((4, 4), np.int32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _int8.matmul(A, A.T, out)
    np.testing.assert_array_equal(out, 6)


def test_matmul_runs_on_numbas_thread_count_and_restores_torchs(monkeypatch):
    import numba

    seen = []
    real = torch._int_mm
    monkeypatch.setattr(torch, "_int_mm", lambda *a, **kw: seen.append(torch.get_num_threads()) or real(*a, **kw))
    before = torch.get_num_threads()
    torch.set_num_threads(before + 3)
    try:
        _int8.matmul(np.ones((2, 3), np.int8), np.ones((3, 2), np.int8), np.empty((2, 2), np.int32))
        assert seen == [numba.get_num_threads()]
        assert torch.get_num_threads() == before + 3
    finally:
        torch.set_num_threads(before)


def test_usable_only_when_enabled_large_enough_and_installed(monkeypatch):
    monkeypatch.setattr(_int8, "ENABLED", True)
    assert _int8.usable(_int8.MIN_WORK)
    assert not _int8.usable(_int8.MIN_WORK - 1)
    monkeypatch.setattr(_int8, "_HAS_TORCH", False)
    assert not _int8.usable(_int8.MIN_WORK)
    monkeypatch.setattr(_int8, "_HAS_TORCH", True)
    monkeypatch.setattr(_int8, "ENABLED", False)
    assert not _int8.usable(_int8.MIN_WORK)


def test_a_torch_without_a_working_cpu_int8_gemm_is_not_used(monkeypatch):
    monkeypatch.setattr(_int8, "_HAS_TORCH", None)
    monkeypatch.setattr(_int8, "ENABLED", True)
    monkeypatch.setattr(torch, "_int_mm", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("not on CPU")))
    assert not _int8.usable(_int8.MIN_WORK)
    monkeypatch.setattr(_int8, "_HAS_TORCH", None)
    monkeypatch.undo()
    assert _int8._has_torch()


@pytest.mark.parametrize("value,enabled", [("0", False), ("1", True)])
def test_environment_switch(value, enabled):
    code = "import platform, hopfield._int8 as m; print(m.ENABLED)"
    env = {"HOPFIELD_INT8_GEMM": value, "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    import platform

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert out.strip() == str(enabled and x86)


@pytest.mark.parametrize("n", [2, 3, 37, 130])
def test_finish_hebb_int_in_place_equals_float32_division(n):
    rng = np.random.default_rng(n)
    G = rng.integers(-5000, 5000, (n, n)).astype(np.int32)
    want = (G.astype(np.float32) / np.float32(n)).astype(np.float32)
    np.fill_diagonal(want, 0.0)
    W = G.view(np.float32)
    K.finish_hebb_int(G, W, n)
    assert W.tobytes() == want.tobytes()


def _spy(monkeypatch):
    calls = []
    real = _int8.matmul
    monkeypatch.setattr(_int8, "matmul", lambda *a: calls.append(a[0].shape) or real(*a))
    return calls


@pytest.mark.parametrize("P,N", [(1, 2), (3, 37), (31, 300), (64, 129)])
def test_hebb_store_is_the_same_bit_for_bit(P, N, int8_always, monkeypatch):
    X = random_patterns(P, N, seed=P + N)
    calls = _spy(monkeypatch)
    got = HopfieldNetwork.from_patterns(X).weights
    assert calls == [(N, P)]  # the int8 GEMM ran
    want = _float_path(lambda: HopfieldNetwork.from_patterns(X).weights, monkeypatch)
    assert got.dtype == np.float32 and got.shape == (N, N)
    assert got.tobytes() == want.tobytes()
    np.testing.assert_allclose(got, ref.hebb(X), rtol=1e-6, atol=0)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 7, 8])
@pytest.mark.parametrize("N", [5, 61])
def test_integer_sums_and_recall_are_the_same(bits, N, int8_always, monkeypatch):
    X = random_patterns(max(2, N // 8), N, seed=bits)
    q = HopfieldNetwork.from_patterns(X).quantize(bits, "uniform", preserve_mean=bits == 3)
    assert q._affine
    cues = flip_noise(X[np.arange(9) % len(X)], 0.2, seed=bits + N)
    C = q.quantized.codes.astype(np.int64)
    assert np.diagonal(C).any()  # so that a missing self-coupling correction shows
    np.fill_diagonal(C, 0)
    calls = _spy(monkeypatch)
    U, M = q._integer_sums(cues)
    assert calls == ([cues.shape] if bits <= 7 else [])  # the int8 GEMM ran (8-bit codes: numpy's)
    assert U.dtype == np.int32 and M.dtype == np.int64
    np.testing.assert_array_equal(U, cues.astype(np.int64) @ C.T)
    np.testing.assert_array_equal(M, cues.sum(1))
    for dyn in ("async", "sync", "glauber"):
        kw = dict(dynamics=dyn, seed=4, temperature=0.05 if dyn == "glauber" else 0.0)
        got = q.recall(cues, **kw)
        want = _float_path(lambda: q.recall(cues, **kw), monkeypatch)
        np.testing.assert_array_equal(got.states, want.states)
        np.testing.assert_array_equal(got.sweeps, want.sweeps)


def test_eight_bit_codes_take_the_float_gemm(int8_always, monkeypatch):
    # codes up to 255 do not fit int8: the float32 GEMM must run, with the same sums
    calls = []
    monkeypatch.setattr(_int8, "matmul", lambda *a: calls.append(a) or pytest.fail("int8 GEMM on 8-bit codes"))
    X = random_patterns(6, 40, seed=1)
    with monkeypatch.context() as m:  # store through numpy so that only the sums are watched
        m.setattr(_int8, "ENABLED", False)
        q = HopfieldNetwork.from_patterns(X).quantize(8, "uniform")
    cues = flip_noise(X, 0.2, seed=2)
    C = q.quantized.codes.astype(np.int64)
    np.fill_diagonal(C, 0)
    np.testing.assert_array_equal(q._integer_sums(cues)[0], cues.astype(np.int64) @ C.T)
    assert not calls
