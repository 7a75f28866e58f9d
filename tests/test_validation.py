"""One test per validation rule: each bad input gets a clear error naming the argument."""

import numpy as np
import pytest

from quantization import QuantizedTensor, pack_bits, quantize, unpack_bits

W = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)


@pytest.mark.parametrize("bad,what", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_non_finite_weights(bad, what):
    w = W.copy()
    w[2, 3] = bad
    with pytest.raises(ValueError, match=rf"w contains .*{what}.*\(2, 3\)"):
        quantize(w, 4)


@pytest.mark.parametrize("bits", [0, 9, -1, 16])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match=f"bits={bits} is out of range.*1..8"):
        quantize(W, bits)


@pytest.mark.parametrize("bits", [4.0, "4", True, None])
def test_bits_wrong_type(bits):
    with pytest.raises(TypeError, match="bits must be an integer"):
        quantize(W, bits)


def test_empty_tensor():
    with pytest.raises(ValueError, match="w is empty"):
        quantize(np.zeros((3, 0), np.float32), 4)


def test_scalar_tensor():
    with pytest.raises(ValueError, match="0-d scalar"):
        quantize(np.float32(1.0), 4)


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=f"axis={axis} is out of range"):
        quantize(W, 4, axis=axis)


def test_negative_axis_is_accepted():
    assert quantize(W, 4, axis=-1).axis == 1


def test_group_size_must_be_positive_and_alone():
    with pytest.raises(ValueError, match="group_size=0 must be a positive"):
        quantize(W, 4, group_size=0)
    with pytest.raises(ValueError, match="axis and group_size were both given"):
        quantize(W, 4, axis=0, group_size=3)


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.uint8, bool, np.complex64])
def test_non_float_dtypes_refused(dtype):
    with pytest.raises(TypeError, match=r"w must be a float16/float32/float64 array.*astype\(np.float32\)"):
        quantize(np.ones((3, 3), dtype), 4)


def test_float64_beyond_float32_range():
    with pytest.raises(ValueError, match="beyond the float32 range"):
        quantize(np.array([1e300, 0.0]), 4)


@pytest.mark.parametrize("kw,match", [
    (dict(scheme="linear"), "scheme='linear' is not supported"),
    (dict(objective="snr"), "objective='snr' is not supported"),
    (dict(gain="unit"), "gain='unit' is not supported"),
])
def test_unknown_choices(kw, match):
    with pytest.raises(ValueError, match=match):
        quantize(W, 4, **kw)


def test_preserve_mean_and_seed_types():
    with pytest.raises(TypeError, match="preserve_mean must be a bool"):
        quantize(W, 4, preserve_mean="yes")
    with pytest.raises(TypeError, match="seed must be None, an int"):
        quantize(W, 4, seed="1")
    quantize(W, 4, seed=np.random.default_rng(1))


def test_pack_rejects_codes_too_large():
    with pytest.raises(ValueError, match=r"codes must lie in 0..3 for bits=2, found values in 0..4"):
        pack_bits(np.array([0, 4], np.uint8), 2)
    with pytest.raises(TypeError, match="unsigned integer"):
        pack_bits(np.array([0.5]), 2)


def test_unpack_rejects_wrong_length():
    with pytest.raises(ValueError, match="buf has 2 bytes but 6 codes of 3 bits need exactly 3"):
        unpack_bits(np.zeros(2, np.uint8), 3, 6)
    with pytest.raises(ValueError, match="need exactly 2"):
        unpack_bits(b"\x00\x00\x00", 3, 5)


def test_quantized_tensor_checks_its_parts():
    qt = quantize(W, 3, "uniform", axis=0)
    with pytest.raises(ValueError, match="codes has shape"):
        QuantizedTensor(codes=qt.codes[:2], params=qt.params, bits=3, scheme="uniform", shape=W.shape, axis=0)
    with pytest.raises(ValueError, match="params has shape"):
        QuantizedTensor(codes=qt.codes, params=qt.params[:2], bits=3, scheme="uniform", shape=W.shape, axis=0)
    with pytest.raises(ValueError, match="codes must lie in 0..3"):
        QuantizedTensor(codes=qt.codes, params=qt.params, bits=2, scheme="uniform", shape=W.shape, axis=0)
    bad = qt.params.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="params contains NaN"):
        QuantizedTensor(codes=qt.codes, params=bad, bits=3, scheme="uniform", shape=W.shape, axis=0)


def test_metric_shape_mismatch():
    qt = quantize(W, 3)
    with pytest.raises(ValueError, match=r"w has shape \(6, 4\), but this tensor was quantized from shape \(4, 6\)"):
        qt.correlation(W.T)
