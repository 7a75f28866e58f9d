"""Edge cases found in review, one test each."""

import json
import struct
import zlib

import numpy as np
import pytest

from quantization import FormatError, QuantizedTensor, load, quantize, save


def test_non_native_and_long_double_dtypes():
    x = np.random.default_rng(0).standard_normal(100)
    for dt in (">f4", ">f8"):
        qt = quantize(x.astype(dt), 4)
        assert qt.dtype == np.dtype(dt).name and qt.correlation(x) > 0.98
    if np.dtype(np.longdouble).itemsize > 8:
        with pytest.raises(TypeError, match="float16/float32/float64"):
            quantize(x.astype(np.longdouble), 4)


def test_codebook_overflow_is_an_error_not_inf():
    w = np.array([-3.4e38, 3.4e38, 1e37, 0], np.float32)
    try:
        qt = quantize(w, 2)
    except ValueError as exc:
        assert "overflows float32" in str(exc)
    else:
        assert np.isfinite(qt.codebook).all() and np.isfinite(qt.dequantize()).all()


def test_long_rows_keep_their_extremes_in_the_fit():
    n = (1 << 20) + 5000
    w = np.zeros(n, np.float32)
    w[123457] = 5.0  # a lone spike that a random subsample would likely miss
    for scheme in ("lloyd", "uniform"):
        qt = quantize(w, 2, scheme)
        assert qt.correlation(w) > 0.99, scheme
    t = np.random.default_rng(1).standard_t(2, n).astype(np.float32)
    mm = quantize(t, 3, "lloyd", "minmax", gain="none")
    assert mm.codebook[0, -1] == pytest.approx(t.max(), rel=1e-6)
    assert mm.codebook[0, 0] == pytest.approx(t.min(), rel=1e-6)


def test_zero_d_arrays_round_trip(tmp_path):
    save(tmp_path / "z.hq", {"z": np.array(3.0), "v": np.arange(3.0)})
    out = load(tmp_path / "z.hq")
    assert out["z"].shape == () and out["z"] == 3.0


def test_quantized_tensor_copies_caller_arrays():
    qt = quantize(np.arange(8.0), 2)
    codes, params = qt.codes.copy(), qt.params.copy()
    QuantizedTensor(codes=codes, params=params, bits=2, scheme="uniform", shape=(8,))
    codes[0] = 1
    params[0, 0] = 2.0  # still writable: the container holds its own copies


def test_non_ascending_params_are_refused():
    with pytest.raises(ValueError, match="not ascending"):
        QuantizedTensor(codes=np.zeros(4, np.uint8), params=np.array([[-1.0, 1.5, 0.0]]), bits=2, scheme="uniform",
                        shape=(4,))


def _rewrite_header(path, mutate):
    data = path.read_bytes()
    hlen = struct.unpack_from("<I", data, 8)[0]
    header = json.loads(zlib.decompress(data[12:12 + hlen]))
    mutate(header)
    h = zlib.compress(json.dumps(header).encode())
    body = data[:6] + struct.pack("<HI", 1, len(h)) + h + data[12 + hlen:-4]
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))


@pytest.mark.parametrize("mutate,match", [
    (lambda h: h.__setitem__("tensors", [1]), "list of objects"),
    (lambda h: h.__setitem__("metadata", [1]), "'metadata' must be an object"),
    (lambda h: h["tensors"].append(dict(h["tensors"][0])), "unique"),
    (lambda h: h["tensors"][0].__setitem__("shape", [1.5]), "bad shape"),
])
def test_structurally_bad_headers(tmp_path, mutate, match):
    p = tmp_path / "h.hq"
    save(p, {"w": quantize(np.arange(6.0), 2)})
    _rewrite_header(p, mutate)
    with pytest.raises(FormatError, match=match):
        load(p)


def test_model_file_errors_name_the_file(tmp_path):
    from feedforward import Residual, Sequential, digits_cnn

    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"a\.npy: not a readable model file"):
        Sequential.load(tmp_path / "a.npy")
    m = digits_cnn()
    m.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    cfg = json.loads(arrays["__architecture__"].tobytes())
    del cfg["layers"]
    arrays["__architecture__"] = np.frombuffer(json.dumps(cfg).encode(), np.uint8)
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(ValueError, match=r"b\.npz: corrupted architecture"):
        Sequential.load(tmp_path / "b.npz")
    with pytest.raises(ValueError, match="option_a shortcut expects inputs"):
        Sequential([Residual([], "option_a")], (4,))


def test_quantize_model_and_train_argument_checks():
    from feedforward import digits_cnn, quantize_model, train

    m = digits_cnn()
    with pytest.raises(ValueError, match=r"bits names \['5.weight'\]"):
        quantize_model(m, {"5.weight": 4})
    with pytest.raises(TypeError, match="skip must be a list"):
        quantize_model(m, 4, skip="first")
    with pytest.raises(ValueError, match="lr_schedule='step'"):
        train(m, np.zeros((2, 1, 8, 8)), np.array([0, 1]), lr_schedule="step", progress=False)


def test_symmetric_flag_is_checked():
    from hopfield import HopfieldNetwork, QuantizedHopfieldNetwork, random_patterns

    net = HopfieldNetwork.from_patterns(random_patterns(3, 20, seed=0))
    qt = quantize(net.weights, 2, axis=0)
    with pytest.raises(ValueError, match="symmetric=True needs one codebook"):
        QuantizedHopfieldNetwork(qt, symmetric=True)
