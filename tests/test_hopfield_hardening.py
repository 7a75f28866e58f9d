"""Hopfield side of issue 10: defects found by hostile use, and code paths no test reached.

Each defect test failed before its fix.  The references here are slow and obvious
(loops, Gram-Schmidt, the core's own ``dequantize``); the shared ones are in
``reference.py``.
"""

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import reference as ref

from hopfield import HopfieldNetwork, QuantizedHopfieldNetwork, flip_noise, random_patterns
from hopfield import network as hnet
from hopfield import studies
from hopfield.__main__ import main
from hopfield.network import _seed_per_cue


# ----------------------------------------------------------------- slow references


def projection_reference(X):
    """Projection onto the span of the patterns by Gram-Schmidt in plain loops (dependent
    patterns add no direction), zero diagonal."""
    P, N = X.shape
    basis = []
    for x in X.astype(float):
        v = x.copy()
        for _ in range(2):  # twice is enough (Giraud et al. 2005)
            for q in basis:
                v -= sum(q[k] * v[k] for k in range(N)) * q
        norm = math.sqrt(sum(t * t for t in v))
        if norm > 1e-8 * math.sqrt(N):
            basis.append(v / norm)
    W = np.zeros((N, N))
    for q in basis:
        for i in range(N):
            for j in range(N):
                if i != j:
                    W[i, j] += q[i] * q[j]
    return W


def dequantized_reference(q):
    """The float64 weights a quantized network stands for, from the core's definition
    (``QuantizedTensor.dequantize``), diagonal 0."""
    W = q.quantized.dequantize().astype(np.float64)
    np.fill_diagonal(W, 0.0)
    return W


def assert_recall_matches_reference(net, W, cues, seed, dynamics=("async", "async-fixed", "sync")):
    seeds = _seed_per_cue(seed, len(cues))
    for dyn in dynamics:
        res = net.recall(cues, dynamics=dyn, seed=seed)
        for c in range(len(cues)):
            if dyn == "sync":
                s, sweeps, conv = ref.sync_recall(W, cues[c], 100)
            else:
                s, sweeps, conv, _ = ref.async_recall(W, cues[c], seeds[c], 100, dyn == "async")
            np.testing.assert_array_equal(res.states[c], s, err_msg=f"{dyn}, cue {c}")
            assert (res.sweeps[c], res.converged[c]) == (sweeps, conv), f"{dyn}, cue {c}"


def offdiag_corr(W, Q):
    mask = ~np.eye(len(W), dtype=bool)
    return np.corrcoef(W[mask].astype(np.float64), Q[mask])[0, 1]


# ------------------------------------------- defect 3: workers die with their parent


def _children(pid):
    """Pids of the live (not zombie) descendants of ``pid``."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return {p.pid for p in psutil.Process(pid).children(recursive=True)
                    if p.status() != psutil.STATUS_ZOMBIE}
        except psutil.NoSuchProcess:
            return set()
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                parents[int(d)] = int(ppid)
    out, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - out
        out |= frontier
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")
@pytest.mark.slow
def test_workers_end_within_seconds_when_the_parent_is_killed(tmp_path):
    cmd = [sys.executable, "-m", "hopfield", "capacity", "--n", "300", "--loads", "0.02:0.2:0.02", "--trials", "40",
           "--bits", "float", "1", "2", "--quiet", "--jobs", "2", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        # workers are up and working once the first finished task is on disk
        while not list((tmp_path / "tasks").glob("*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the study ended before it could be killed"
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) >= 3, f"expected 2 workers and the resource tracker, found {workers}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)], "processes outlived their parent by 10 s"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started, if anything is left
        except ProcessLookupError:
            pass


# ---------------------------------------------- defect 4: concurrent plots, one path


_PLOT_WRITER = """
import sys
from matplotlib.figure import Figure
from hopfield import studies
fig = Figure(figsize=(2, 2))
fig.add_subplot().plot([0, 1], [0, int(sys.argv[2])])
for _ in range(20):
    studies._save(fig, sys.argv[1])
"""


@pytest.mark.slow
def test_concurrent_plot_writes_to_one_path_all_succeed(tmp_path):
    """Two processes save a plot to the same path 20 times each (with a fixed temporary
    name, one of them failed with FileNotFoundError)."""
    path = tmp_path / "capacity.png"
    procs = [subprocess.Popen([sys.executable, "-c", _PLOT_WRITER, str(path), str(k)], stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path)
             for k in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capacity.png"]  # no temporary left behind


# ------------------------------------------------ defect 6: weights beyond float32


def test_weights_beyond_float32_are_refused():
    W = np.zeros((3, 3))
    W[0, 1] = W[1, 0] = 1e39
    with pytest.raises(ValueError, match=r"weights have 2 value\(s\) beyond the float32 range.*1e\+39"):
        HopfieldNetwork(W)
    W[0, 1] = W[1, 0] = -np.finfo(np.float64).max
    with pytest.raises(ValueError, match="beyond the float32 range"):
        HopfieldNetwork(W)


def test_largest_float32_weights_give_finite_fields_and_the_reference_recall():
    """Fields are float64 sums of float32 weights: N * 3.4e38 cannot overflow."""
    big = float(np.finfo(np.float32).max)
    X = random_patterns(2, 9, seed=3)
    W = np.sign(ref.hebb(X)) * big
    net = HopfieldNetwork(W)
    cues = random_patterns(6, 9, seed=4)
    H = net.fields(cues)
    assert np.isfinite(H).all() and np.abs(H).max() > big
    np.testing.assert_allclose(H, cues @ W.T, rtol=1e-15)
    assert np.isfinite(net.energy(cues)).all()
    assert_recall_matches_reference(net, W, cues, seed=5)
    res = net.recall(cues, dynamics="glauber", temperature=1e-300, seed=1)  # -2h/T overflows to -+inf
    assert set(np.unique(res.states)) <= {-1, 1}


# -------------------------------------------------------- defect 7: projection rule


@pytest.mark.parametrize("P,N", [(20, 20), (30, 20), (60, 20)])
def test_projection_rule_refuses_patterns_that_span_every_dimension(P, N):
    X = random_patterns(P, N, seed=P)
    with pytest.raises(ValueError, match=rf"patterns span all N={N} dimensions.*at most N-1 = {N - 1}"):
        HopfieldNetwork.from_patterns(X, "projection")


def test_projection_rule_stores_up_to_n_minus_1_and_dependent_patterns():
    N = 20
    X = random_patterns(N - 1, N, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = HopfieldNetwork.from_patterns(X, "projection")
    assert net.recall(X, max_sweeps=1).converged.all()
    # duplicates and sign-reversed copies: a singular Gram matrix, the same span
    Y = np.concatenate([X[:5], X[:2], -X[3:4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = HopfieldNetwork.from_patterns(Y, "projection")
    np.testing.assert_allclose(net.weights, projection_reference(Y), rtol=0, atol=2e-6)
    assert net.recall(Y, max_sweeps=1).converged.all()


def test_projection_rule_warns_when_the_gram_matrix_is_ill_conditioned(monkeypatch):
    x = random_patterns(1, 100, seed=0)[0]
    y = x.copy()
    y[0] = -y[0]  # differs in one neuron: Gram eigenvalues 198 and 2, condition number 99
    monkeypatch.setattr(hnet, "_PROJECTION_MAX_CONDITION", 50.0)
    with pytest.warns(UserWarning, match=r"ill-conditioned.*condition number 99"):
        HopfieldNetwork.from_patterns(np.stack([x, y]), "projection")
    monkeypatch.setattr(hnet, "_PROJECTION_MAX_CONDITION", 100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HopfieldNetwork.from_patterns(np.stack([x, y]), "projection")


# --------------------------------------------------- defect 8: command-line ranges


@pytest.mark.parametrize("spec,message", [
    ("0:inf:0.1", "must be finite"),
    ("nan", "must be finite"),
    ("0:1:1e-12", "at most 10,000"),
    ("0:1e308:1e-308", "at most 10,000"),
    ("0:1", "start:stop:step"),
    ("1:0:0.1", "stop >= start"),
])
def test_bad_ranges_are_argument_errors(spec, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["capacity", "--loads", spec, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--loads" in err and message in err and spec in err
    with pytest.raises(SystemExit) as exc:
        main(["basins", "--noise-levels", spec, "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_largest_allowed_range():
    from hopfield.__main__ import _floats

    assert len(_floats("0:9999:1")) == 10_000
    assert _floats("0.1:0.3:0.1") == [0.1, 0.2, 0.3]


# ---------------------------------------------------- defect 9: max_sweeps bound


def test_max_sweeps_beyond_int64_is_refused_and_the_largest_works():
    X = random_patterns(3, 30, seed=0)
    net = HopfieldNetwork.from_patterns(X)
    with pytest.raises(ValueError, match=r"max_sweeps must be an int >= 1 and <= 2\*\*63 - 1.*got 9223372036854775808"):
        net.recall(X, max_sweeps=2**63)
    res = net.recall(X, max_sweeps=2**63 - 1)
    assert res.converged.all() and (res.sweeps < 10).all()


# -------------------------------------------------- paths past one tile of rows


def _tile_networks(N, P, seed):
    X = random_patterns(P, N, seed=seed)
    net = HopfieldNetwork.from_patterns(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nets = [net, net.quantize(3, "uniform"), net.quantize(3, "uniform", preserve_mean=True),
                net.quantize(4, "exponential"), net.quantize(3, "lloyd", axis=0), net.quantize(2, "lloyd", group_size=7)]
    return X, nets


@pytest.mark.parametrize("N,tile_elements", [(37, 300), (37, 1000), (9, 5)])  # 8 or 27 rows a tile; 1 row
def test_fields_energy_rho_and_recall_past_one_tile(monkeypatch, N, tile_elements):
    """A tile of _TILE_ELEMENTS // N rows (at least 1): several tiles, the last partial."""
    X, nets = _tile_networks(N, 6 if N > 20 else 2, seed=2)
    cues = flip_noise(X, 0.3, seed=3)
    expected = []
    for net in nets:
        W = net.weights.astype(np.float64) if isinstance(net, HopfieldNetwork) else dequantized_reference(net)
        if getattr(net, "_affine", False):
            W = net.effective_weights()  # exact affine values (float32 codebook within rounding)
            np.testing.assert_allclose(W, dequantized_reference(net), rtol=1e-6, atol=1e-9)
        expected.append((W, net.fields(cues), net.energy(cues), net.recall(cues, seed=4).states,
                         getattr(net, "rho", None)))
    monkeypatch.setattr(hnet, "_TILE_ELEMENTS", tile_elements)
    for net, (W, H, E, S, rho) in zip(nets, expected):
        np.testing.assert_allclose(net.fields(cues), cues @ W.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(net.fields(cues), H)
        np.testing.assert_array_equal(net.energy(cues), E)
        np.testing.assert_array_equal(net.recall(cues, seed=4).states, S)
        if rho is not None:
            assert hnet._offdiag_correlation(nets[0], net) == pytest.approx(rho, rel=1e-12)
            assert rho == pytest.approx(offdiag_corr(nets[0].weights, W), rel=1e-9)
    assert_recall_matches_reference(nets[3], expected[3][0], cues[:4], seed=6, dynamics=("async",))


@pytest.mark.slow
def test_n_above_one_tile_without_patching():
    N = 6007  # _TILE_ELEMENTS // N = 5585 rows: two tiles
    assert hnet._TILE_ELEMENTS // N < N
    X = random_patterns(8, N, seed=1)
    net = HopfieldNetwork.from_patterns(X)
    S = flip_noise(X[:3], 0.2, seed=2)
    W = net.weights.astype(np.float64)
    np.testing.assert_allclose(net.fields(S), S @ W.T, rtol=1e-12, atol=1e-12)
    for q in (net.quantize(2, "uniform"), net.quantize(2, "lloyd")):
        Wq = q.effective_weights()
        np.testing.assert_allclose(q.fields(S), S @ Wq.T, rtol=1e-12, atol=1e-12)
        assert q.rho == pytest.approx(offdiag_corr(net.weights, Wq), rel=1e-9)
        res = q.recall(S, seed=3)
        assert res.converged.all()
        Hf = res.states @ Wq.T  # a fixed point of the exact fields
        assert np.all((Hf * res.states >= 0) | (np.abs(Hf) < 1e-9))


# ------------------------------------------------------- the float64 GEMM branch


def test_integer_sums_gemm_dtype_boundary():
    # partial sums of N codes below 2**bits are exact in float32 while N (2**bits - 1) < 2**24
    assert hnet._gemm_dtype(65793, 8) is np.float32  # 65793 * 255 = 16,777,215
    assert hnet._gemm_dtype(65794, 8) is np.float64
    assert hnet._gemm_dtype(16_777_216, 1) is np.float64


def test_float64_gemm_branch_gives_the_exact_integer_sums(monkeypatch):
    X = random_patterns(7, 45, seed=5)
    net = HopfieldNetwork.from_patterns(X)
    cues = flip_noise(X, 0.25, seed=6)
    for q in (net.quantize(8, "uniform"), net.quantize(3, "uniform", preserve_mean=True)):
        assert q._affine
        before = (q.fields(cues), q.recall(cues, seed=1).states)
        used = []
        monkeypatch.setattr(hnet, "_gemm_dtype", lambda N, bits: used.append(np.float64) or np.float64)
        C = q.quantized.codes.astype(np.int64)
        np.fill_diagonal(C, 0)
        U, M = q._integer_sums(cues)
        assert used and U.dtype == np.int32
        np.testing.assert_array_equal(U, cues.astype(np.int64) @ C.T)
        np.testing.assert_array_equal(M, cues.sum(1))
        np.testing.assert_array_equal(q.fields(cues), before[0])
        np.testing.assert_array_equal(q.recall(cues, seed=1).states, before[1])
        assert_recall_matches_reference(q, q.effective_weights(), cues[:3], seed=2)
        monkeypatch.undo()


# ----------------------------------------- Storkey and projection versus references


@pytest.mark.parametrize("rule", ["storkey", "projection"])
@pytest.mark.parametrize("N,P", [(12, 3), (24, 6)])
def test_storkey_and_projection_networks_match_the_reference(rule, N, P):
    X = random_patterns(P, N, seed=N + P)
    net = HopfieldNetwork.from_patterns(X, rule)
    W = ref.storkey(X) if rule == "storkey" else projection_reference(X)
    np.testing.assert_allclose(net.weights, W, rtol=1e-5, atol=2e-6)
    cues = flip_noise(X, 0.25, seed=1)
    assert_recall_matches_reference(net, net.weights.astype(np.float64), cues, seed=2)
    for q in (net.quantize(3, "uniform"), net.quantize(3, "lloyd")):
        assert_recall_matches_reference(q, q.effective_weights(), cues, seed=3)
        assert q.rho == pytest.approx(offdiag_corr(net.weights, q.effective_weights()), rel=1e-6)
    if rule == "projection":  # every stored pattern is a fixed point
        assert net.recall(X, max_sweeps=1).converged.all()


# ----------------------------------------------- Glauber flip statistics, closed form


@pytest.mark.parametrize("h,T", [(0.0, 1.0), (0.3, 1.0), (-0.7, 0.5), (1.5, 2.0)])
def test_glauber_flip_frequency_matches_the_closed_form(h, T):
    """Neuron 0 sees the field h from neuron 1; neurons 1 and 2 are locked together by a
    coupling of 50 (a flip has probability ~e^-100 per update), so every update of
    neuron 0 is a fresh draw with P(s_0 = +1) = 1 / (1 + exp(-2 h / T))."""
    W = np.array([[0, h, 0], [h, 0, 50], [0, 50, 0]], np.float32)
    net = HopfieldNetwork(W)
    n = 20_000
    cues = np.ones((n, 3), np.int8)
    cues[::2, 0] = -1
    # one sweep: exactly one update of neuron 0 per cue (later sweeps would condition the
    # outcome on the stopping rule, a sweep without flips)
    res = net.recall(cues, dynamics="glauber", temperature=T, max_sweeps=1, seed=7)
    assert (res.states[:, 1:] == 1).all()
    p = 1.0 / (1.0 + math.exp(-2.0 * float(np.float32(h)) / T))
    freq = float(np.mean(res.states[:, 0] == 1))
    assert abs(freq - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12, (freq, p)


# --------------------------------------------- group-wise quantized Hopfield networks


@pytest.mark.parametrize("group_size", [10, 7, 45])  # divides N, a shorter last group, longer than a row
@pytest.mark.parametrize("scheme", ["lloyd", "uniform", "exponential"])
def test_group_wise_networks_match_the_reference(group_size, scheme):
    N = 30
    X = random_patterns(5, N, seed=group_size)
    net = HopfieldNetwork.from_patterns(X)
    with pytest.warns(UserWarning, match="break the symmetry"):
        q = net.quantize(3, scheme, group_size=group_size)
    groups_per_row = -(-N // group_size)
    assert q.quantized.codebook.shape[0] == N * groups_per_row
    W = dequantized_reference(q)
    np.testing.assert_array_equal(q.effective_weights(), W)
    cues = flip_noise(X, 0.3, seed=1)
    np.testing.assert_allclose(q.fields(cues), cues @ W.T, rtol=1e-12, atol=1e-12)
    assert q.rho == pytest.approx(offdiag_corr(net.weights, W), rel=1e-9)
    assert_recall_matches_reference(q, W, cues, seed=2)
    res = q.recall(cues, dynamics="glauber", temperature=0.05, max_sweeps=4, seed=3)
    seeds = _seed_per_cue(3, len(cues))
    for c in range(len(cues)):
        np.testing.assert_array_equal(res.states[c], ref.async_recall(W, cues[c], seeds[c], 4, True, 0.05)[0])


def test_quantized_network_from_a_modified_tensor_follows_its_codes():
    X = random_patterns(4, 24, seed=9)
    q = HopfieldNetwork.from_patterns(X).quantize(2, "lloyd")
    codes = q.quantized.codes.copy()
    mirrored = (2**2 - 1) - codes[:12, 12:]  # the opposite level for a quarter of the couplings
    codes[:12, 12:] = mirrored
    codes[12:, :12] = mirrored.T
    q2 = QuantizedHopfieldNetwork(dataclasses.replace(q.quantized, codes=codes))
    assert q2.symmetric
    W2 = dequantized_reference(q2)
    assert not np.array_equal(W2, dequantized_reference(q))
    assert_recall_matches_reference(q2, W2, flip_noise(X, 0.3, seed=1), seed=4)


# ------------------------------------------- the kernels' pure-Python fallbacks


_RECALL_DIGEST = """
import hashlib, warnings
from hopfield import HopfieldNetwork, flip_noise, random_patterns
warnings.simplefilter("ignore")
X = random_patterns(4, 23, seed=0)
net = HopfieldNetwork.from_patterns(X)
cues = flip_noise(X, 0.3, seed=1)
out = []
for n in (net, net.quantize(3, "uniform"), net.quantize(3, "lloyd"), net.quantize(2, "lloyd", group_size=7),
          net.quantize(2, "lloyd", axis=0)):
    for dyn, kw in (("async", {}), ("sync", {}), ("glauber", dict(temperature=0.2, max_sweeps=5))):
        r = n.recall(cues, dynamics=dyn, seed=3, **kw)
        out.append((r.states.tobytes(), r.sweeps.tolist(), r.converged.tolist(), n.fields(cues).tobytes()))
print(hashlib.sha256(repr(out).encode()).hexdigest())
"""


@pytest.mark.slow
def test_python_fallbacks_equal_the_jit_kernels(tmp_path):
    """NUMBA_DISABLE_JIT=1 runs the kernels' Python bodies (and overloads' Python
    twins): every dynamics and weight layout must give the same bits."""
    digests = []
    for disable in ("0", "1"):
        env = {**os.environ, "NUMBA_DISABLE_JIT": disable}
        run = subprocess.run([sys.executable, "-c", _RECALL_DIGEST], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        digests.append(run.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64
