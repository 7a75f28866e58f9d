"""bfloat16 storage of codebook parameters: rounding, the fit it keeps, the file, the bytes."""

import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest

import quantization as qz
from quantization import FormatError, load, quantize, round_bfloat16, save


def _round_bf16_reference(x: np.float32) -> np.float32:
    """The nearest bfloat16 by exact rational arithmetic; ties to the even significand."""
    bits = int(np.array(x, np.float32).view(np.uint32))
    lo = bits & 0xFFFF0000
    hi = lo + 0x10000
    as_f = lambda b: np.array(b, np.uint32).view(np.float32)  # noqa: E731
    sign = -1 if bits >> 31 else 1
    mag = lambda b: Fraction(2) ** 128 if (b & 0x7FFFFFFF) == 0x7F800000 else abs(Fraction(float(as_f(b))))  # noqa: E731
    v = abs(Fraction(float(x)))
    da, db = v - mag(lo), mag(hi) - v
    if da < db or (da == db and (lo >> 16) % 2 == 0):
        return as_f(lo)
    return as_f(hi) if sign > 0 or (hi & 0x7FFFFFFF) != 0x7F800000 else np.float32(-np.inf)


def test_round_bfloat16_matches_exact_reference_and_torch():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.standard_normal(3000).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, 3000),
        # exact ties: low half 0x8000, with even and odd upper halves
        (rng.integers(0, 2 ** 16, 200, dtype=np.uint64).astype(np.uint32) << 16 | 0x8000).view(np.float32),
        np.array([1.0, -1.0, 1.17549435e-38, 3.0e-45, 0.0, -0.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8], np.float32),
    ])
    x = x[np.isfinite(x)]
    got = round_bfloat16(x)
    ref = np.array([_round_bf16_reference(v) for v in x], np.float32)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))
    assert not (got.view(np.uint32) & 0xFFFF).any()
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    assert np.array_equal(got.view(np.uint32), t.view(np.uint32))


def test_round_bfloat16_keeps_shape_nan_and_inf():
    assert round_bfloat16(np.float32(2.5)).shape == ()
    assert round_bfloat16(np.ones((2, 3))).shape == (2, 3)
    nans = np.array([0x7F800001, 0xFFFFFFFF, 0x7FC00000], np.uint32).view(np.float32)
    assert np.isnan(round_bfloat16(nans)).all()
    assert np.array_equal(round_bfloat16(np.array([np.inf, -np.inf], np.float32)), [np.inf, -np.inf])


def test_round_bfloat16_error_bound_and_overflow():
    x = np.random.default_rng(1).uniform(-1e3, 1e3, 10000).astype(np.float32)
    r = round_bfloat16(x)
    assert np.all(np.abs(r.astype(np.float64) - x) <= np.abs(x) * 2.0 ** -8)  # 8 significant bits
    assert np.isinf(round_bfloat16(np.array([3.4e38], np.float32)))[0]


@pytest.mark.parametrize("scheme", ["uniform", "exponential", "pow2", "lloyd", "normal"])
@pytest.mark.parametrize("layout", [dict(axis=0), dict(axis=None), dict(group_size=7)])
def test_bfloat16_keeps_the_codes_and_rounds_the_params(scheme, layout):
    rng = np.random.default_rng(2)
    w = rng.laplace(size=(6, 3, 3, 3)).astype(np.float32)
    for bits in (1, 3, 5):
        a = quantize(w, bits, scheme, preserve_mean=True, **layout)
        b = quantize(w, bits, scheme, preserve_mean=True, param_dtype="bfloat16", **layout)
        assert b.param_dtype == "bfloat16" and a.param_dtype == "float32"
        assert np.array_equal(a.codes, b.codes)
        assert np.array_equal(b.params, round_bfloat16(a.params))
        assert b.nbytes == -(-w.size * bits // 8) + 2 * a.params.size
        assert a.nbytes == -(-w.size * bits // 8) + 4 * a.params.size
        # each parameter moves by at most 2**-8 of itself; exponential levels c q^j compound q's
        span = np.abs(a.codebook).max(axis=1, keepdims=True)
        assert np.all(np.abs(b.codebook - a.codebook) <= 2 ** -8 * (2 + 2 ** (bits - 1)) * span)
        assert abs(b.correlation(w) - a.correlation(w)) < 2e-3


def test_bfloat16_cost_grows_with_bits_as_documented():
    """The figures in quantize's docstring (Laplacian rows of 576): under 0.3% more 1 - rho up
    to 4 bits for every scheme; at 8 bits exponential loses most, uniform least."""
    w = np.random.default_rng(0).laplace(size=(64, 576)).astype(np.float32)

    def cost(scheme, bits):
        a = quantize(w, bits, scheme, axis=0, preserve_mean=True)
        b = quantize(w, bits, scheme, axis=0, preserve_mean=True, param_dtype="bfloat16")
        return (1 - b.correlation(w)) / (1 - a.correlation(w))

    for scheme in ("uniform", "exponential", "lloyd", "normal"):
        for bits in (2, 4):
            assert cost(scheme, bits) < 1.003
    c8 = {s: cost(s, 8) for s in ("uniform", "normal", "lloyd", "exponential")}
    assert c8["uniform"] < 1.03 and c8["normal"] < 1.03
    assert 1.3 < c8["lloyd"] < 2.5
    assert c8["exponential"] > 5


def test_auto_picks_bfloat16_only_where_it_costs_at_most_one_percent():
    w = np.random.default_rng(0).laplace(size=(64, 576)).astype(np.float32)
    for scheme in ("uniform", "exponential", "lloyd"):
        for bits in (2, 5, 8):
            a = quantize(w, bits, scheme, axis=0, preserve_mean=True)
            b = quantize(w, bits, scheme, axis=0, preserve_mean=True, param_dtype="bfloat16")
            auto = quantize(w, bits, scheme, axis=0, preserve_mean=True, param_dtype="auto")
            e = [float(np.sum((q.dequantize().astype(np.float64) - w) ** 2)) for q in (a, b)]
            want = "bfloat16" if e[1] <= 1.01 * e[0] else "float32"
            assert auto.param_dtype == want
            assert np.array_equal(auto.params, (b if want == "bfloat16" else a).params)
    assert quantize(w, 8, "exponential", axis=0, param_dtype="auto").param_dtype == "float32"
    assert quantize(w, 3, "uniform", axis=0, param_dtype="auto").param_dtype == "bfloat16"


def test_bfloat16_handles_tiny_rows_like_float32():
    """bfloat16 has float32's exponent range: a row at 1e-30 keeps its rho."""
    w = np.random.default_rng(3).standard_normal((4, 50)).astype(np.float32)
    ref = quantize(w, 3, "uniform", axis=0, preserve_mean=True, param_dtype="bfloat16").correlation(w)
    tiny = quantize(w * np.float32(1e-30), 3, "uniform", axis=0, preserve_mean=True, param_dtype="bfloat16")
    assert np.isfinite(tiny.dequantize()).all()
    assert tiny.correlation(w * np.float32(1e-30)) == pytest.approx(ref, abs=1e-4)


def test_bad_param_dtype_and_unrepresentable_params():
    w = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="param_dtype"):
        quantize(w, 3, param_dtype="float16")
    q = quantize(w, 3, axis=0)
    with pytest.raises(ValueError, match="bfloat16 cannot represent"):
        qz.QuantizedTensor(codes=q.codes, params=q.params + np.float32(1e-3), bits=3, scheme="uniform",
                           shape=q.shape, axis=0, param_dtype="bfloat16")


def test_file_round_trip_size_and_version(tmp_path):
    rng = np.random.default_rng(5)
    b = quantize(rng.standard_normal((16, 9)).astype(np.float32), 4, "uniform", axis=0, preserve_mean=True,
                 param_dtype="bfloat16")
    f = quantize(rng.standard_normal((5, 7)).astype(np.float32), 3, "exponential", axis=0)
    p = tmp_path / "m.hq"
    n = save(p, {"b": b, "f": f})
    data = p.read_bytes()
    hlen = struct.unpack_from("<I", data, 8)[0]
    assert n == len(data) == 16 + hlen + b.nbytes + f.nbytes
    assert struct.unpack_from("<H", data, 6)[0] == 3
    got = load(p)
    assert got["b"].param_dtype == "bfloat16" and got["f"].param_dtype == "float32"
    for k, q in (("b", b), ("f", f)):
        assert np.array_equal(got[k].codes, q.codes) and np.array_equal(got[k].params, q.params)
        assert np.array_equal(got[k].codebook, q.codebook)
    # files without bfloat16 params stay at the version older readers know
    save(p, {"f": f})
    assert struct.unpack_from("<H", p.read_bytes(), 6)[0] < 3


def test_file_with_bfloat16_params_under_an_old_version_is_refused(tmp_path):
    q = quantize(np.random.default_rng(6).standard_normal(20).astype(np.float32), 3, param_dtype="bfloat16")
    p = tmp_path / "m.hq"
    save(p, {"w": q})
    data = p.read_bytes()
    hlen = struct.unpack_from("<I", data, 8)[0]
    for version, text in ((1, None), (3, '"param_dtype":"float8"')):
        header = zlib.decompress(data[12:12 + hlen]).decode()
        if text:
            header = header.replace('"param_dtype":"bfloat16"', text)
        h = zlib.compress(header.encode())
        body = data[:6] + struct.pack("<HI", version, len(h)) + h + data[12 + hlen:-4]
        p.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
        with pytest.raises(FormatError, match="bfloat16|param_dtype"):
            load(p)


def test_quantize_model_default_stores_bfloat16_where_auto_says():
    import feedforward as ff

    m = ff.digits_cnn(seed=0)
    qm = ff.quantize_model(m, 3)
    assert {q.param_dtype for q in qm.quantized.values()} == {"bfloat16"}
    q32 = ff.quantize_model(m, 3, param_dtype="float32")
    assert qm.nbytes < q32.nbytes
    saved = sum(q.params.size for q in q32.quantized.values()) * 2
    assert q32.nbytes - qm.nbytes == saved
