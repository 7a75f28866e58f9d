"""The CUDA backend (hopfield/_cuda.py) against the CPU kernels and the slow references.

Without a GPU these run on numba-cuda's simulator: conftest.py sets NUMBA_ENABLE_CUDASIM=1
unless it is set already, so ``NUMBA_ENABLE_CUDASIM=0 pytest tests/test_cuda.py`` on a GPU
machine runs the same equalities on the GPU.  On the simulator the blocks are small (8
threads, 4 x 4 tiles) so that N = 12..40 still spans several threads and tiles per block.
Equality is exact everywhere: states, sweeps and convergence flags, Hebbian weights,
codes and codebook parameters.
"""

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import reference as ref

from hopfield import HopfieldNetwork, QuantizedHopfieldNetwork, flip_noise, random_patterns
from hopfield import _device
from hopfield.network import _seed_per_cue
from quantization import SCHEMES, QuantizedTensor

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed (the cuda extra)")
README = Path(__file__).resolve().parents[1] / "README.md"
GPU_BYTES = 139e9  # the H200 and host, in decimal units
HOST_BYTES = 128e9


@pytest.fixture(scope="module")
def cu():
    backend = _device.cuda_backend()
    saved = {k: getattr(backend, k) for k in ("THREADS", "TILE", "SPAN", "RANGE_THREADS", "ENCODE_THREADS", "PENDING")}
    interval = sys.getswitchinterval()
    backend.THREADS, backend.RANGE_THREADS, backend.ENCODE_THREADS = 8, 8, 8
    if backend.SIMULATOR:
        backend.TILE = 4  # a compile-time shared-memory shape on a real GPU: only the simulator may change it
        backend.SPAN = 4 * backend.HEBB_R
        backend.PENDING = 3  # likewise: the held-back flips are applied every third flip
        sys.setswitchinterval(2e-4)  # the simulator's threads hand over the GIL sooner: 3x faster here
    yield backend
    for k, v in saved.items():
        setattr(backend, k, v)
    sys.setswitchinterval(interval)


def _networks(N, P, seed):
    """A float Hebbian net and its quantized versions: every scheme at bits 1..8 (pow2 at
    most 5), uniform with an offset (affine path), per-row and group-wise codebooks."""
    X = random_patterns(P, N, seed=seed)
    net = HopfieldNetwork.from_patterns(X)
    nets = [("float", net)]
    for bits in range(1, 9):
        for scheme in SCHEMES:
            if scheme == "pow2" and bits > 5:
                continue
            nets.append((f"{scheme}{bits}", net.quantize(bits, scheme)))
    nets.append(("uniform3-offset", net.quantize(3, "uniform", preserve_mean=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nets.append(("per-row", net.quantize(3, "exponential", axis=0, preserve_mean=True)))
        nets.append(("per-row-uniform", net.quantize(4, "uniform", axis=0)))
        nets.append(("groups", net.quantize(2, "lloyd", group_size=7)))
    return X, nets


def _assert_same(a, b, name):
    np.testing.assert_array_equal(a.states, b.states, err_msg=name)
    np.testing.assert_array_equal(a.sweeps, b.sweeps, err_msg=name)
    np.testing.assert_array_equal(a.converged, b.converged, err_msg=name)


RUNS = {"async": {}, "async-fixed": {}, "sync": {}, "glauber": {"temperature": 0.05, "max_sweeps": 6}}


@pytest.fixture(scope="module")
def nets20():
    X, nets = _networks(20, 3, seed=20)
    return flip_noise(X, 0.3, seed=1), nets


# ------------------------------------------------------------------- equality with the CPU


@needs_numba_cuda
@pytest.mark.parametrize("N,P", [(12, 3), (37, 9), (37, 70)])  # 70: three 32-bit words, the last one partial
def test_hebbian_store_on_device_equals_the_cpu_and_the_textbook_loop(cu, N, P):
    X = random_patterns(P, N, seed=N)
    W = HopfieldNetwork.from_patterns(X, device="cuda").weights
    assert W.dtype == np.float32 and isinstance(W, np.ndarray)
    np.testing.assert_array_equal(W, HopfieldNetwork.from_patterns(X).weights)
    np.testing.assert_allclose(W, ref.hebb(X), rtol=0, atol=1e-7)


@needs_numba_cuda
def test_quantize_on_device_gives_the_cpus_tensor_at_every_width_and_layout(cu):
    """Every scheme at every width, the layouts taking turns: one codebook for W (with and
    without the mean), per row, per group of 7 (the last one shorter)."""
    X = random_patterns(4, 20, seed=3)
    net = HopfieldNetwork.from_patterns(X)
    layouts = [dict(), dict(axis=0), dict(preserve_mean=True), dict(group_size=7), dict(axis=0, preserve_mean=True)]
    widths = [(bits, scheme) for bits in range(1, 9) for scheme in SCHEMES if not (scheme == "pow2" and bits > 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (bits, scheme) in enumerate(widths):
            kw = layouts[k % len(layouts)]
            a = net.quantize(bits, scheme, **kw)
            b = net.quantize(bits, scheme, device="cuda", **kw)
            name = f"{scheme}{bits} {kw}"
            np.testing.assert_array_equal(a.quantized.codes, b.quantized.codes, err_msg=name)
            np.testing.assert_array_equal(a.quantized.params, b.quantized.params, err_msg=name)
            assert a.rho == b.rho and a.symmetric == b.symmetric and a._affine == b._affine, name


@needs_numba_cuda
def test_encode_across_chunks_and_pieces_gives_the_same_sums(cu, monkeypatch):
    """N = 260: 67,600 weights, two 65,536-element chunks in the whole-matrix row, which
    pieces of one chunk split; per-row codebooks in pieces of 2 rows."""
    X = random_patterns(30, 260, seed=5)
    net = HopfieldNetwork.from_patterns(X)
    monkeypatch.setattr(_device, "encode_piece_elements", lambda: _device.ENCODE_CHUNK)
    a, b = net.quantize(5, "lloyd"), net.quantize(5, "lloyd", device="cuda")
    np.testing.assert_array_equal(a.quantized.codes, b.quantized.codes)
    np.testing.assert_array_equal(a.quantized.params, b.quantized.params)
    small = HopfieldNetwork.from_patterns(X[:4, :20])
    monkeypatch.setattr(_device, "encode_piece_elements", lambda: 45)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = small.quantize(3, "normal", axis=0, preserve_mean=True)
        b = small.quantize(3, "normal", axis=0, preserve_mean=True, device="cuda")
    np.testing.assert_array_equal(a.quantized.codes, b.quantized.codes)
    np.testing.assert_array_equal(a.quantized.params, b.quantized.params)


@needs_numba_cuda
@pytest.mark.parametrize("dynamics", ["async", "async-fixed", "sync", "glauber"])
def test_recall_on_device_equals_the_cpu_for_every_scheme_and_width(cu, nets20, dynamics):
    """Asynchronous recall on every network; the other dynamics on a third each, so that
    every network runs at least two kinds of dynamics."""
    cues, nets = nets20
    chosen = nets if dynamics == "async" else nets[["async-fixed", "sync", "glauber"].index(dynamics)::3]
    for name, net in chosen:
        a = net.recall(cues, dynamics=dynamics, seed=7, **RUNS[dynamics])
        b = net.recall(cues, dynamics=dynamics, seed=7, device="cuda", **RUNS[dynamics])
        _assert_same(a, b, name)
        assert b.states.dtype == np.int8 and b.sweeps.dtype == np.int64 and b.converged.dtype == np.bool_


@needs_numba_cuda
@pytest.mark.parametrize("dynamics", ["async", "sync"])
def test_recall_on_device_past_several_threads_and_tiles(cu, dynamics):
    """N = 37 (not a multiple of the 8 threads, the 4-wide tiles or the 16-wide output
    tiles of the initial fields), 18 cues (two output tiles), float, affine (uniform
    whole-matrix) and table (lloyd) weights stored and quantized on the device."""
    X = random_patterns(6, 37, seed=37)
    cues = flip_noise(X[np.arange(18) % 6], 0.25, seed=2)
    cpu = HopfieldNetwork.from_patterns(X)
    gpu = HopfieldNetwork.from_patterns(X, device="cuda")
    pairs = [("float", cpu, gpu), ("uniform4", cpu.quantize(4), gpu.quantize(4, device="cuda")),
             ("lloyd3", cpu.quantize(3, "lloyd"), gpu.quantize(3, "lloyd", device="cuda"))]
    for name, a_net, b_net in pairs if dynamics == "async" else pairs[::2]:  # affine sync: the N = 20 test
        a = a_net.recall(cues, dynamics=dynamics, seed=11, **RUNS[dynamics])
        b = b_net.recall(cues, dynamics=dynamics, seed=11, device="cuda", **RUNS[dynamics])
        _assert_same(a, b, name)
    one = gpu.recall(cues[0], seed=11, device="cuda")  # one cue in, one state out, as on the CPU
    assert one.states.shape == (37,) and int(one.sweeps) == cpu.recall(cues[0], seed=11).sweeps


@needs_numba_cuda
def test_recall_on_device_equals_the_slow_references(cu):
    X, nets = _networks(16, 3, seed=4)
    cues = flip_noise(X, 0.3, seed=3)
    seeds = _seed_per_cue(5, len(cues))
    for name, net in nets[::9]:
        W = net.weights.astype(np.float64) if name == "float" else net.effective_weights()
        res = net.recall(cues, seed=5, device="cuda")
        sync = net.recall(cues, dynamics="sync", device="cuda")
        fixed = net.recall(cues, dynamics="async-fixed", device="cuda")
        for c in range(len(cues)):
            s, sweeps, conv, _ = ref.async_recall(W, cues[c], seeds[c], 100)
            np.testing.assert_array_equal(res.states[c], s, err_msg=name)
            assert (res.sweeps[c], res.converged[c]) == (sweeps, conv), name
            s, sweeps, conv = ref.sync_recall(W, cues[c], 100)
            np.testing.assert_array_equal(sync.states[c], s, err_msg=name)
            assert (sync.sweeps[c], sync.converged[c]) == (sweeps, conv), name
            s, sweeps, conv, _ = ref.async_recall(W, cues[c], 0, 100, random_order=False)
            np.testing.assert_array_equal(fixed.states[c], s, err_msg=name)


@needs_numba_cuda
def test_weights_whose_sums_round_take_the_hosts_fields(cu, monkeypatch):
    """A codebook spanning 2^-127 (pow2's grid at 8 bits) and float weights with one tiny
    coupling: the float64 sums may round, so the device uses the CPU's initial fields and
    still ends where the CPU does."""
    X = random_patterns(12, 40, seed=40)
    w = HopfieldNetwork.from_patterns(X).weights
    c = float(np.abs(w).max())
    mags = c * 2.0 ** -np.arange(128)
    levels = np.concatenate([-mags, mags[::-1]]).astype(np.float32)
    codes = np.abs(w[..., None] - levels).argmin(-1).astype(np.uint8)
    q = QuantizedHopfieldNetwork(QuantizedTensor(codes, levels[None], 8, "lloyd", w.shape))
    w2 = w.copy()
    w2[0, 1] = w2[1, 0] = 1e-30
    f = HopfieldNetwork(w2)
    assert not cu._codebook_exact(q.quantized.codebook, 40)
    calls = []
    for net in (q, f):
        original = net._fields
        monkeypatch.setattr(net, "_fields", lambda S, original=original: calls.append(1) or original(S))
    cues = flip_noise(X, 0.3, seed=1)
    for net in (q, f):
        for dynamics in ("async", "sync"):
            _assert_same(net.recall(cues, dynamics=dynamics, seed=3),
                         net.recall(cues, dynamics=dynamics, seed=3, device="cuda"), type(net).__name__)
    assert len(calls) == 8  # CPU and device runs of both networks read the host fields


@needs_numba_cuda
def test_float64_sums_are_exact_up_to_2_pow_53_units(cu):
    cuda_mod = cu
    lsb = float(np.spacing(np.float32(1.0)))  # 2^-23: every float32 >= 1 is a multiple
    limit = 2.0**53 * lsb  # 2^30
    assert cuda_mod._sums_exact(limit, 1.0, 2)  # (N - 1) max|w| = 2^30 = 2^53 lsb
    assert not cuda_mod._sums_exact(np.nextafter(limit, np.inf), 1.0, 2)
    assert not cuda_mod._sums_exact(limit, 1.0, 3)
    assert cuda_mod._sums_exact(0.0, np.inf, 10)  # all-zero weights


# ---------------------------------------------------------------------------- errors


def test_unknown_device_is_refused_naming_the_argument():
    X = random_patterns(3, 10, seed=0)
    net = HopfieldNetwork.from_patterns(X)
    with pytest.raises(ValueError, match=r"device='gpu' is not supported; use 'cpu'"):
        net.recall(X, device="gpu")
    with pytest.raises(ValueError, match=r"device='CUDA'"):
        HopfieldNetwork.from_patterns(X, device="CUDA")
    with pytest.raises(ValueError, match=r"device=None"):
        net.quantize(2, device=None)
    with pytest.raises(ValueError, match=r"device=0"):
        net.quantize(2).recall(X, device=0)


def test_cuda_store_needs_the_hebb_rule():
    X = random_patterns(3, 10, seed=0)
    with pytest.raises(ValueError, match=r"rule='hebb' only, got rule='storkey'"):
        HopfieldNetwork.from_patterns(X, "storkey", device="cuda")


def test_missing_numba_cuda_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    net = HopfieldNetwork.from_patterns(random_patterns(3, 10, seed=0))
    for call in (lambda: net.recall(np.ones(10), device="cuda"), lambda: net.quantize(2, device="cuda"),
                 lambda: HopfieldNetwork.from_patterns(np.ones((2, 10)), device="cuda")):
        with pytest.raises(ImportError, match=r'needs numba-cuda.*pip install "hopfield-quant\[cuda\]"'):
            call()


@needs_numba_cuda
def test_numbas_builtin_cuda_target_is_refused(monkeypatch):
    import numba.cuda

    monkeypatch.setattr(numba.cuda, "implementation", "Built-in")
    with pytest.raises(ImportError, match=r"deprecated built-in CUDA target.*hopfield-quant\[cuda\]"):
        _device.cuda_backend()


@needs_numba_cuda
def test_a_numba_cuda_that_cannot_compile_with_this_numpy_names_the_fix(monkeypatch):
    """numba-cuda 0.30.4 with numpy 2.5 fails when it loads its lowering registries (numpy
    dropped np.row_stack): the first device call says so and what to install."""
    import importlib

    import numba.cuda

    real = importlib.import_module

    def broken(name, *args):
        if name == "numba.cuda.cudaimpl":
            raise AttributeError("module 'numpy' has no attribute 'row_stack'")
        return real(name, *args)

    monkeypatch.setattr(numba.cuda.config, "ENABLE_CUDASIM", False)
    monkeypatch.setattr(numba.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ImportError, match=r"cannot load its kernel compiler with numpy .*row_stack.*numpy<2\.5"):
        _device.cuda_backend()


@needs_numba_cuda
def test_no_gpu_is_a_runtime_error(monkeypatch):
    import numba.cuda

    monkeypatch.setattr(numba.cuda, "is_available", lambda: False)
    net = HopfieldNetwork.from_patterns(random_patterns(3, 10, seed=0))
    with pytest.raises(RuntimeError, match=r"no usable CUDA GPU.*device='cpu'.*NUMBA_ENABLE_CUDASIM=1"):
        net.recall(np.ones(10), device="cuda")


@needs_numba_cuda
def test_what_does_not_fit_is_refused_before_anything_is_allocated(cu, monkeypatch):
    def no_alloc(*args, **kwargs):
        raise AssertionError("allocated GPU memory before refusing")

    monkeypatch.setattr(cu, "free_memory", lambda: (5_000.0, 80e9))
    monkeypatch.setattr(cu.cuda, "to_device", no_alloc)
    monkeypatch.setattr(cu.cuda, "device_array", no_alloc)
    X = random_patterns(3, 40, seed=0)
    net = HopfieldNetwork.from_patterns(X)
    many = np.repeat(X, 20, axis=0)
    with pytest.raises(MemoryError, match=r"recall at N=40 on the GPU: 8.01 kB \(W 4 N\^2 6.4 kB \+ states N per cue 120 "
                                          r"B .*does not fit on the GPU: 5 kB free of 80 GB\. Recall fewer cues"):
        net.recall(X, device="cuda")
    with pytest.raises(MemoryError, match=r"\(codes N\^2 1.6 kB \+ codebook 4 rows 2\^bits 32 B \+ states N per cue"):
        net.quantize(3, "lloyd").recall(many, device="cuda")
    with pytest.raises(MemoryError, match=r"\(codes N\^2 1.6 kB \+ states N per cue 2.4 kB \+ integer sums 4 N \+ 8"):
        net.quantize(4).recall(many, device="cuda")  # the affine path
    monkeypatch.setattr(cu, "free_memory", lambda: (100.0, 80e9))
    with pytest.raises(MemoryError, match=r"store at N=40 .*Store with device='cpu'"):
        HopfieldNetwork.from_patterns(X, device="cuda")
    with pytest.raises(MemoryError, match=r"quantize at N=40 .*Quantize with device='cpu'"):
        net.quantize(2, device="cuda")


def test_import_hopfield_does_not_import_numba_cuda():
    code = ("import sys, hopfield; hopfield.HopfieldNetwork.from_patterns([[1, -1, 1]]).recall([1, 1, 1]); "
            "print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda', 'hopfield._cuda'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------- footprint


def test_footprint_states_each_array_and_the_readme_quotes_it():
    N, C = 100_000, 1_000
    fp = _device.footprint("recall", N, n_cues=C, weights="codes", bits=4)
    assert fp.parts["codes N^2"] == N * N and fp.parts["fields 8 N per cue"] == 8 * N * C
    assert fp.total == N * N + 4 * 16 + C * (N + 8 * N + 4 * N + 17)
    assert "codes N^2 10 GB" in str(fp)
    f32 = _device.footprint("recall", N, n_cues=C, weights="float32", dynamics="sync")
    assert f32.total == 4 * N * N + C * (N + 8 * N + 6 * N + 17)
    assert _device.footprint("quantize", N, where="host").total == 6 * N * N
    assert _device.footprint("store", N, n_patterns=10_000, where="host").total == 4 * N * N + 10_000 * N
    assert _device.footprint("store", N, n_patterns=10_000).total < 2 * 2**30  # slabs on the GPU
    n_gpu = _device.largest_n(GPU_BYTES, "recall", n_cues=C, weights="codes", bits=4)
    assert _device.footprint("recall", n_gpu, n_cues=C, bits=4).total <= GPU_BYTES
    assert _device.footprint("recall", n_gpu + 1, n_cues=C, bits=4).total > GPU_BYTES
    readme = README.read_text()
    expected = {
        "GPU, recall on codes": n_gpu,
        "GPU, recall on float32 W": _device.largest_n(GPU_BYTES, "recall", n_cues=C, weights="float32"),
        "host, quantize": _device.largest_n(HOST_BYTES, "quantize", where="host"),
        "host, store": _device.largest_n(HOST_BYTES, "store", where="host", n_patterns=0),
    }
    for label, n in expected.items():
        assert f"{n:,}" in readme, f"README should quote N = {n:,} ({label})"
    with pytest.raises(ValueError, match="step='train'"):
        _device.footprint("train", 10)
