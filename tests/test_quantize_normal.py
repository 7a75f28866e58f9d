"""The ``normal`` scheme (NormalFloat levels): table, minmax encode, scale fits, storage, layouts."""

import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
import reference as ref

from quantization import FormatError, QuantizedTensor, load, quantize, save
from quantization._normal import NF4_OFFSET, fit_normal_row, normal_offset, normal_table

# bitsandbytes' published NF4 table (bitsandbytes/functional.py, csrc/kernels.cu)
NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]


def test_nf4_table_is_bitsandbytes():
    t = normal_table(4)
    assert t.dtype == np.float32 and t.shape == (16,)
    np.testing.assert_allclose(t.astype(np.float64), NF4, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(t, np.float32(NF4))  # in fact bit for bit
    assert normal_offset(4) == NF4_OFFSET


@pytest.mark.parametrize("bits", range(1, 9))
def test_table_shape_for_every_width(bits):
    t = normal_table(bits)
    K = 1 << bits
    assert t.shape == (K,) and np.all(np.diff(t) > 0)
    assert t[0] == -1.0 and t[-1] == 1.0
    assert not t.flags.writeable
    if bits == 1:
        np.testing.assert_array_equal(t, [-1.0, 1.0])
    else:
        # asymmetric: 2^(b-1) positive levels, 2^(b-1)-1 negative, one exact zero
        assert (t > 0).sum() == K // 2 and (t < 0).sum() == K // 2 - 1 and (t == 0).sum() == 1


def _rows(w, layout):
    from quantization._core import _to_rows

    return _to_rows(w, layout.get("axis"), layout.get("group_size"))


LAYOUTS = [dict(), dict(axis=0), dict(axis=1), dict(group_size=8)]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_minmax_is_bitsandbytes_absmax_encode(bits, layout):
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal((6, 24)) * rng.uniform(0.01, 5, (6, 1))).astype(np.float32)
    qt = quantize(w, bits, "normal", "minmax", gain="none", preserve_mean=False, **layout)
    table = normal_table(bits)
    wr, cr = _rows(w, layout), _rows(qt.codes, layout)
    for r in range(wr.shape[0]):
        np.testing.assert_array_equal(cr[r], ref.nearest_codes_absmax(wr[r], table))
        absmax = np.float32(np.abs(wr[r]).max())
        np.testing.assert_array_equal(qt.params[r], [absmax, 0.0])
        np.testing.assert_array_equal(qt.codebook[r], np.float32(np.float64(absmax) * table.astype(np.float64)))
    np.testing.assert_array_equal(_rows(qt.dequantize(), layout),
                                  np.take_along_axis(qt.codebook, cr.astype(np.intp), axis=1))


def _normalised(rng, n, kind):
    x = rng.standard_normal(n)
    if kind == "outliers":
        x[rng.integers(n, size=2)] *= 8
    elif kind == "laplace":
        x = rng.laplace(size=n)
    elif kind == "skewed":
        x = np.abs(x) - 0.3
    return np.sort(x / np.abs(x).max())


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("pm", [False, True])
@pytest.mark.parametrize("kind", ["gauss", "outliers", "laplace", "skewed"])
def test_scale_fit_matches_dense_scan(bits, pm, kind):
    """The breakpoint sweep is exact: never worse than a dense brute-force scan of the scale."""
    rng = np.random.default_rng(bits * 10 + pm)
    T = normal_table(bits).astype(np.float64)
    for n in (5, 13, 40):
        y = _normalised(rng, n, kind)
        rms = float(np.sqrt(np.mean(y * y)))
        lo = max(min(rms / 8, 0.5), 1e-6)
        for objective in ("mse", "correlation"):
            oid = 1 if objective == "mse" else 0
            a = fit_normal_row(y, T, oid, pm, rms, 1 << 18)
            assert lo * (1 - 1e-12) <= a <= 1.0
            got = ref.grid_score(y, a * T, objective, pm)
            best, _ = ref.best_scale_dense(y, T, objective, pm, lo)
            if objective == "mse":
                assert -got <= -best * (1 + 1e-9) + 1e-15, (n, objective)
            else:
                assert got >= best - 1e-12, (n, objective)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_scan_fallback_is_close_to_the_exact_sweep(bits):
    """Rows with more breakpoints than max_events get a scan + golden section."""
    rng = np.random.default_rng(bits)
    T = normal_table(bits).astype(np.float64)
    for _ in range(3):
        y = _normalised(rng, 300, "outliers")
        rms = float(np.sqrt(np.mean(y * y)))
        exact = fit_normal_row(y, T, 1, False, rms, 1 << 18)
        scan = fit_normal_row(y, T, 1, False, rms, 0)
        e_exact = -ref.grid_score(y, exact * T, "mse", False)
        e_scan = -ref.grid_score(y, scan * T, "mse", False)
        e_minmax = -ref.grid_score(y, T, "mse", False)
        assert e_exact <= e_scan * (1 + 1e-9)
        # measured: the scan is within 1e-12 of the sweep; absmax misses by 1.2% to 250%
        # (at 8 bits absmax can be the optimum itself)
        assert e_scan <= e_exact * (1 + 1e-5)
        assert bits == 8 or e_minmax > e_exact * (1 + 1e-5)


def test_mse_beats_minmax_on_gaussian_with_outliers():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 256))
    w[np.arange(16), rng.integers(256, size=16)] = 12.0
    for bits in (2, 3, 4, 6):
        err = {o: np.sum((quantize(w, bits, "normal", o, axis=0, gain="none").dequantize() - w) ** 2, axis=1)
               for o in ("mse", "minmax")}
        assert np.all(err["mse"] <= err["minmax"]) and np.sum(err["mse"]) < np.sum(err["minmax"]), bits
        if bits <= 4:  # absmax wastes most levels on the outlier's range
            assert np.all(err["mse"] < err["minmax"]), bits
            assert np.sum(err["mse"]) < 0.9 * np.sum(err["minmax"]), bits


# Whole-tensor Pearson rho of test_every_width_and_objective's (4, 3, 3, 3) weights:
# fitted objectives (mse, correlation) must exceed FIT_RHO, which min-max (absmax) does
# not reach with either preserve_mean (measured, worst fit / best absmax: 1 bit 0.7814 /
# 0.7760, 2: 0.9215 / 0.8941, 3: 0.9838 / 0.9804, 4: 0.99701 / 0.99651, 5: 0.99920 /
# 0.99912).  From 6 bits the 27-element rows have as many levels as elements and absmax
# is within a few % of the optimal loss: one bound for both.  MINMAX_RHO guards absmax.
FIT_RHO = {1: 0.779, 2: 0.91, 3: 0.982, 4: 0.9968, 5: 0.99916, 6: 0.9996, 7: 0.9998, 8: 0.9998}
MINMAX_RHO = {1: 0.77, 2: 0.89, 3: 0.979, 4: 0.996, 5: 0.999, 6: 0.9996, 7: 0.9998, 8: 0.9998}


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("objective", ["minmax", "mse", "correlation"])
def test_every_width_and_objective(bits, objective):
    rng = np.random.default_rng(bits)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    for pm in (False, True):
        qt = quantize(w, bits, "normal", objective, axis=0, preserve_mean=pm)
        assert qt.params.shape == (4, 2) and qt.codebook.shape == (4, 1 << bits)
        assert int(qt.codes.max()) < (1 << bits) and np.all(np.diff(qt.codebook, axis=1) > 0)
        assert qt.nbytes == -(-w.size * bits // 8) + 4 * 2 * 4
        rho = qt.correlation(w)
        if objective == "minmax":
            assert MINMAX_RHO[bits] < rho and (bits > 5 or rho < FIT_RHO[bits]), rho
        else:
            assert rho > FIT_RHO[bits], rho
        if pm:
            np.testing.assert_allclose(qt.dequantize().mean(axis=(1, 2, 3)), w.mean(axis=(1, 2, 3)), atol=1e-6)


# Fits against a brute-force optimum (every scheme and objective): test_fit_optimality.py.


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts(layout):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3, 8)).astype(np.float32) * rng.uniform(0.01, 10, (6, 1, 1)).astype(np.float32)
    qt = quantize(w, 4, "normal", **layout)
    rows = 1 if not layout else (w.size // 8 if "group_size" in layout else w.shape[layout["axis"]])
    assert qt.codes.shape == w.shape and qt.codebook.shape == (rows, 16) and qt.params.shape == (rows, 2)
    assert qt.dequantize().shape == w.shape
    if layout.get("axis") == 0:
        for c in range(6):
            alone = quantize(w[c], 4, "normal")
            np.testing.assert_array_equal(qt.codes[c], alone.codes)
            np.testing.assert_array_equal(qt.params[c], alone.params[0])
        assert qt.correlation(w) > quantize(w, 4, "normal").correlation(w)
    if "group_size" in layout:
        g = quantize(w.reshape(-1, 8), 4, "normal", axis=0)
        np.testing.assert_array_equal(qt.codes.reshape(-1, 8), g.codes)
        np.testing.assert_array_equal(qt.params, g.params)


def test_constant_rows_are_exact():
    w = np.zeros((5, 9), np.float32)
    w[1] = 3.25
    w[2] = -1e-9  # a dead channel
    w[3] = np.random.default_rng(0).standard_normal(9)
    w[4] = 7.0
    for objective in ("minmax", "mse", "correlation"):
        for pm in (False, True):
            qt = quantize(w, 4, "normal", objective, axis=0, preserve_mean=pm)
            deq = qt.dequantize()
            for r in (0, 1, 2, 4):
                np.testing.assert_array_equal(deq[r], w[r])
            assert np.corrcoef(deq[3], w[3])[0, 1] > 0.997  # measured 0.9971 .. 0.9992, absmax included


def test_save_load_round_trip_is_bit_identical(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {
        "conv": quantize(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), 4, "normal", "minmax", axis=0,
                         gain="none"),
        "fc": quantize(rng.laplace(size=(10, 32)), 3, "normal", "mse", group_size=16, preserve_mean=True),
        "b1": quantize(rng.standard_normal(101).astype(np.float16), 1, "normal"),
        "b8": quantize(rng.standard_normal((5, 7)), 8, "normal", "correlation", axis=1, gain="lsq"),
        "u": quantize(rng.standard_normal(20), 2, "uniform"),
    }
    path = tmp_path / "nf.hq"
    written = save(path, tensors)
    assert written == os.path.getsize(path) == 16 + struct.unpack_from("<I", path.read_bytes(), 8)[0] + sum(
        t.nbytes for t in tensors.values())
    assert struct.unpack_from("<H", path.read_bytes(), 6)[0] == 2  # a normal tensor needs version 2
    loaded = load(path)
    for name, qt in tensors.items():
        lt = loaded[name]
        for attr in ("codes", "params", "codebook"):
            np.testing.assert_array_equal(getattr(lt, attr), getattr(qt, attr))
            assert getattr(lt, attr).tobytes() == getattr(qt, attr).tobytes()
        np.testing.assert_array_equal(lt.dequantize(), qt.dequantize())
        for attr in ("bits", "scheme", "shape", "dtype", "axis", "group_size", "objective", "gain", "preserve_mean"):
            assert getattr(lt, attr) == getattr(qt, attr), attr


def test_files_without_normal_stay_version_1_and_load(tmp_path):
    path = tmp_path / "old.hq"
    qt = quantize(np.random.default_rng(0).standard_normal((4, 9)), 3, "exponential", axis=0)
    save(path, {"w": qt})
    assert struct.unpack_from("<H", path.read_bytes(), 6)[0] == 1
    np.testing.assert_array_equal(load(path)["w"].codebook, qt.codebook)


def test_version_1_file_claiming_normal_is_refused(tmp_path):
    path = tmp_path / "v.hq"
    save(path, {"w": quantize(np.arange(8.0), 2, "normal")})
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, 6, 1)
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])))
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="needs format version 2"):
        load(path)


def test_negative_scale_is_refused():
    qt = quantize(np.arange(8.0), 2, "normal")
    params = qt.params.copy()
    params[0, 0] = -1.0
    with pytest.raises(ValueError, match="not ascending"):
        QuantizedTensor(codes=qt.codes, params=params, bits=2, scheme="normal", shape=(8,))
    with pytest.raises(ValueError, match=r"params has shape \(1, 3\), expected \(1, 2\)"):
        QuantizedTensor(codes=qt.codes, params=np.zeros((1, 3)), bits=2, scheme="normal", shape=(8,))


@pytest.mark.slow
def test_jit_equals_pure_python_and_table_is_reproducible():
    """Compiled and plain-Python (NUMBA_DISABLE_JIT=1) runs give bit-identical tables,
    codes and params, in fresh processes."""
    script = textwrap.dedent(
        """
        import numpy as np, sys
        from quantization import quantize
        from quantization._normal import normal_table
        rng = np.random.default_rng(3)
        w = rng.laplace(size=(2, 48)).astype(np.float32)
        out = {f"t{b}": normal_table(b) for b in range(1, 9)}
        for o in ("minmax", "mse", "correlation"):
            qt = quantize(w, 3, "normal", o, axis=0, preserve_mean=(o == "mse"))
            out[o + "_codes"] = qt.codes
            out[o + "_params"] = qt.params
        np.savez(sys.argv[1], **out)
        """
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        got = []
        for flag in ("0", "1"):
            p = os.path.join(d, f"jit{flag}.npz")
            env = dict(os.environ, NUMBA_DISABLE_JIT=flag)
            subprocess.run([sys.executable, "-c", script, p], check=True, env=env, cwd=os.getcwd())
            got.append(np.load(p))
        for key in got[0].files:
            np.testing.assert_array_equal(got[0][key], got[1][key], err_msg=key)
