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


@pytest.mark.parametrize("scheme", ["uniform", "exponential", "pow2", "lloyd", "normal"])
@pytest.mark.parametrize("preserve_mean", [False, True])
def test_codebook_overflow_is_an_error_not_inf(scheme, preserve_mean):
    """Near float32's limit a grid either fits (finite and faithful) or is refused by name."""
    w = np.array([-3.4e38, 3.4e38, 1e37, 0], np.float32)
    try:
        qt = quantize(w, 2, scheme, preserve_mean=preserve_mean)
    except ValueError as exc:
        assert "overflows float32" in str(exc)
        assert scheme in ("uniform", "pow2", "normal")  # lloyd and exponential place levels at the data
    else:
        assert np.isfinite(qt.codebook).all() and np.isfinite(qt.dequantize()).all()
        assert qt.correlation(w.astype(np.float64)) > 0.999


def test_codebook_overflow_uniform_is_refused():
    # the symmetric uniform grid needs a level beyond +-3.4e38 here: refused, never inf
    with pytest.raises(ValueError, match="overflows float32"):
        quantize(np.array([-3.4e38, 3.4e38, 1e37, 0], np.float32), 2)


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
    qt2 = QuantizedTensor(codes=codes, params=params, bits=2, scheme="uniform", shape=(8,))
    before = qt2.dequantize()
    codes[0] = 3
    params[0, 0] = 2.0  # the caller's arrays stay writable; the container holds its own copies
    assert qt2.codes[0] == qt.codes[0] and qt2.params[0, 0] == qt.params[0, 0]
    np.testing.assert_array_equal(qt2.dequantize(), before)
    assert not qt2.codes.flags.writeable and not qt2.params.flags.writeable


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


def test_cli_ranges_stop_at_stop():
    from hopfield.__main__ import _floats

    assert _floats("0.02:0.2:0.07") == [0.02, 0.09, 0.16]
    assert _floats("0:0.5:0.05")[-1] == 0.5 and len(_floats("0:0.5:0.05")) == 11
    assert _floats("0.3:1:0.4") == [0.3, 0.7]


def test_recall_overlaps_with_one_pattern_and_extra_cues(tmp_path):
    import csv

    from hopfield import random_patterns
    from hopfield.__main__ import main

    X = random_patterns(1, 60, seed=0)[0]
    np.save(tmp_path / "one.npy", X)
    np.save(tmp_path / "cues.npy", np.stack([X, X, -X]))
    assert main(["recall", "--patterns", str(tmp_path / "one.npy"), "--cues", str(tmp_path / "cues.npy"),
                 "--out", str(tmp_path / "o"), "--quiet"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "recall.csv")))
    assert float(rows[0]["target_overlap"]) == 1.0 and rows[1]["target_overlap"] == "nan"


def test_theory_extremes_and_0d_input():
    from hopfield import theory as T

    a, m = T.critical_point(1e-6)
    assert 0 < a < 1e-6 and 0 < m < 0.05
    assert T.critical_load(np.array(0.9)) == T.critical_load(0.9)
    assert T.overlap(0.05, np.array(0.9)) == T.overlap(0.05, 0.9)


def test_written_files_have_normal_permissions_and_strict_json(tmp_path):
    import os

    from quantization._io import atomic_write, write_json

    atomic_write(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (os.stat(tmp_path / "a.txt").st_mode & 0o777) == 0o666 & ~mask
    write_json({"a": float("nan"), "b": [np.float64(1.5), float("inf")]}, tmp_path / "j.json")
    assert json.loads((tmp_path / "j.json").read_text()) == {"a": None, "b": [1.5, None]}


def test_parallel_sweep_keeps_finished_tasks_when_one_fails(tmp_path):
    from hopfield import studies as S

    specs = [dict(study="t", n_neurons=60, load=a, trial=0, configs=[dict(bits="float", scheme="none",
                  objective="none")], noise_levels=[0.0], threshold=0.95, rule="hebb", dynamics="async",
                  max_sweeps=10, seed=0) for a in (0.05, 0.1, 0.15)]
    specs.append({**specs[0], "rule": "nonsense", "load": 0.2})  # fails in the worker
    with pytest.raises(ValueError, match="rule='nonsense'"):
        S.run_tasks(specs, cache_dir=tmp_path, jobs=2)
    assert 1 <= len(list(tmp_path.glob("*.json"))) <= 3
    rows = S.run_tasks(specs[:3], cache_dir=tmp_path, jobs=2)
    assert len(rows) == 3 and len(list(tmp_path.glob("*.json"))) == 3
