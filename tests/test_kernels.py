"""Every numba kernel against its slow reference in tests/reference.py."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import reference as ref

from quantization import _encode, _grids, _lloyd
from quantization import pack_bits, unpack_bits


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 13, 64, 101])
def test_pack_matches_reference_and_round_trips(bits, n):
    rng = np.random.default_rng(bits * 1000 + n)
    codes = rng.integers(0, 1 << bits, n, dtype=np.uint8)
    buf = pack_bits(codes, bits)
    assert buf.size == -(-n * bits // 8)
    np.testing.assert_array_equal(buf, ref.pack_bits(codes, bits).reshape(-1)[: buf.size] if n else buf)
    np.testing.assert_array_equal(unpack_bits(buf, bits, n), codes)
    np.testing.assert_array_equal(ref.unpack_bits(buf, bits, n), codes)


def test_pack_extremes():
    for bits in range(1, 9):
        top = np.full(11, (1 << bits) - 1, np.uint8)
        np.testing.assert_array_equal(unpack_bits(pack_bits(top, bits), bits, 11), top)
        np.testing.assert_array_equal(unpack_bits(pack_bits(top * 0, bits), bits, 11), top * 0)


def _grid(scheme, rng, K_):
    if scheme == "uniform":
        z = rng.choice([0.5 * (K_ - 1), 0.5 * K_, 0.5 * K_ - 1])
        return ref.uniform_levels(rng.uniform(0.01, 0.7), z, 0.0, K_)
    return ref.exponential_levels(rng.uniform(0.2, 1.0), rng.uniform(0.1, 0.9), int(rng.integers(3)), 0.0, K_)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_level_formulas(bits):
    K_ = 1 << bits
    rng = np.random.default_rng(bits)
    out = np.empty(K_)
    for _ in range(20):
        step, z, off = rng.uniform(0, 2), rng.choice([0.5 * (K_ - 1), 0.5 * K_, 0.5 * K_ - 1]), rng.normal()
        _grids.uniform_levels(step, z, off, K_, out)
        np.testing.assert_allclose(out, ref.uniform_levels(step, z, off, K_), rtol=0, atol=1e-12)
        c, q, v = rng.uniform(0, 2), rng.uniform(0.05, 0.99), int(rng.integers(3))
        _grids.exponential_levels(c, q, v, off, K_, out)
        np.testing.assert_allclose(out, ref.exponential_levels(c, q, v, off, K_), rtol=1e-12, atol=1e-12)
        assert np.all(np.diff(out) >= 0)
        if v:
            assert off in out  # the exact zero, shifted by the offset


@pytest.mark.parametrize("scheme", ["uniform", "exponential"])
@pytest.mark.parametrize("bits", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [1, 2, 17, 300])
def test_encode_and_stats_match_reference(scheme, bits, n):
    K_ = 1 << bits
    rng = np.random.default_rng(n * 7 + bits)
    for dist in ("normal", "laplace", "ties"):
        if dist == "ties":
            Y = rng.integers(-4, 5, (3, n)) / 4.0
        else:
            Y = getattr(rng, dist)(size=(3, n))
        Y /= max(np.abs(Y).max(), 1e-300) if np.abs(Y).max() > 0 else 1.0
        levels = np.stack([_grid(scheme, rng, K_) for _ in range(3)])
        codes = np.empty(Y.shape, np.uint8)
        stats = np.empty((3, 5))
        _encode.encode(np.ascontiguousarray(Y), np.zeros(3), np.ones(3), levels, codes, stats)
        for r in range(3):
            c_ref = ref.encode(Y[r], levels[r])
            np.testing.assert_array_equal(levels[r][codes[r]], levels[r][c_ref])
            if np.all(np.diff(levels[r]) > 0):
                np.testing.assert_array_equal(codes[r], c_ref)
            q = levels[r][c_ref]
            y = Y[r]
            np.testing.assert_allclose(
                stats[r], [y.sum(), (y * y).sum(), q.sum(), (q * q).sum(), (y * q).sum()], rtol=1e-12, atol=1e-12
            )


def test_encode_tie_goes_to_upper_level():
    levels = np.array([[0.0, 1.0]])
    codes = np.empty((1, 3), np.uint8)
    _encode.encode(np.array([[0.5, 0.4999999, 0.5000001]]), np.zeros(1), np.ones(1), levels, codes, np.empty((1, 5)))
    np.testing.assert_array_equal(codes[0], [1, 0, 1])


@pytest.mark.parametrize("objective", [_grids.OBJ_CORRELATION, _grids.OBJ_MSE])
@pytest.mark.parametrize("pm", [False, True])
def test_grid_score_matches_reference(objective, pm):
    rng = np.random.default_rng(objective * 2 + pm)
    name = "correlation" if objective == _grids.OBJ_CORRELATION else "mse"
    for n in (1, 3, 50, 401):
        for bits in (1, 2, 4):
            x = np.sort(rng.laplace(size=n))
            x /= np.abs(x).max()
            levels = _grid(rng.choice(["uniform", "exponential"]), rng, 1 << bits)
            p1, p2 = np.empty(n + 1), np.empty(n + 1)
            _grids.prefix_sums(x, p1, p2)
            got = _grids.grid_score(x, p1, p2, levels, objective, pm)
            np.testing.assert_allclose(got, ref.grid_score(x, levels, name, pm), rtol=1e-9, atol=1e-9)


def test_reference_kmeans_is_brute_force_optimal():
    rng = np.random.default_rng(5)
    for n in (1, 4, 7):
        for k in (1, 2, 3):
            x = rng.normal(size=n)
            assert ref.kmeans1d_sse(x, k) == pytest.approx(ref.kmeans1d_brute(x, k), abs=1e-12)


@pytest.mark.parametrize("n", [1, 5, 12, 40])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_kmeans_dp_is_optimal(n, k):
    rng = np.random.default_rng(n * 31 + k)
    for dist in ("normal", "laplace", "dup"):
        x = rng.integers(0, 4, n).astype(float) if dist == "dup" else getattr(rng, dist)(size=n)
        s = np.sort(x)
        W = np.arange(n + 1, dtype=float)
        S = np.concatenate([[0], np.cumsum(s)])
        S2 = np.concatenate([[0], np.cumsum(s * s)])
        kk = min(k, n)
        starts = _lloyd.kmeans1d_dp(W, S, S2, kk)
        assert starts[0] == 0 and starts[-1] == n and np.all(np.diff(starts) >= 0)
        sse = sum(float(np.sum((s[a:b] - s[a:b].mean()) ** 2)) for a, b in zip(starts[:-1], starts[1:]) if b > a)
        assert sse == pytest.approx(ref.kmeans1d_sse(x, k), rel=1e-9, abs=1e-9)


def test_lookup_matches_fancy_indexing():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 16, (5, 33), dtype=np.uint8)
    cb = rng.normal(size=(5, 16)).astype(np.float32)
    out = np.empty(codes.shape, np.float32)
    _encode.lookup(codes, cb, out)
    np.testing.assert_array_equal(out, np.take_along_axis(cb, codes.astype(np.intp), axis=1))


@pytest.mark.slow
def test_jit_equals_pure_python():
    """The compiled kernels give bit-identical results to the same code run as plain
    Python (NUMBA_DISABLE_JIT=1): no fastmath, no platform-dependent shortcuts."""
    script = textwrap.dedent(
        """
        import numpy as np, sys
        from quantization import quantize
        rng = np.random.default_rng(3)
        w = rng.laplace(size=(2, 48)).astype(np.float32)
        out = {}
        for s in ("uniform", "exponential", "lloyd"):
            qt = quantize(w, 3, s, axis=0, preserve_mean=(s == "uniform"))
            out[s + "_codes"] = qt.codes
            out[s + "_params"] = qt.params
        np.savez(sys.argv[1], **out)
        """
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        paths = []
        for flag in ("0", "1"):
            p = os.path.join(d, f"jit{flag}.npz")
            env = dict(os.environ, NUMBA_DISABLE_JIT=flag)
            subprocess.run([sys.executable, "-c", script, p], check=True, env=env, cwd=os.getcwd())
            paths.append(np.load(p))
        for key in paths[0].files:
            np.testing.assert_array_equal(paths[0][key], paths[1][key], err_msg=key)
