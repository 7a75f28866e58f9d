"""The file format: round trip, exact size, and clear errors for damaged files."""

import os
import struct
import zlib

import numpy as np
import pytest

from quantization import FORMAT_VERSION, FormatError, load, quantize, save


@pytest.fixture
def tensors():
    rng = np.random.default_rng(0)
    return {
        "conv1.weight": quantize(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), 4, "exponential", axis=0,
                                 preserve_mean=True),
        "fc.weight": quantize(rng.laplace(size=(10, 33)), 3, "uniform", group_size=11, gain="lsq"),
        "hebb": quantize(rng.standard_normal(101).astype(np.float16), 1, "lloyd"),
        "b8": quantize(rng.standard_normal((5, 7)), 8, "exponential", objective="minmax", axis=1),
        "p5": quantize(rng.standard_normal((5, 7)), 5, "pow2", axis=1),
        "ragged": quantize(rng.standard_normal((4, 3, 3, 3)), 3, "uniform", group_size=8),  # 27 = 3 x 8 + 3
    }


def _header_len(path):
    return struct.unpack_from("<I", open(path, "rb").read(12), 8)[0]


def test_round_trip_identical(tmp_path, tensors):
    path = tmp_path / "model.hq"
    written = save(path, tensors, metadata={"arch": {"layers": [1, 2]}, "note": "x"})
    loaded, meta = load(path, return_metadata=True)
    assert list(loaded) == list(tensors)
    assert meta == {"arch": {"layers": [1, 2]}, "note": "x"}
    for name, qt in tensors.items():
        lt = loaded[name]
        np.testing.assert_array_equal(lt.codes, qt.codes)
        np.testing.assert_array_equal(lt.params, qt.params)
        np.testing.assert_array_equal(lt.codebook, qt.codebook)
        np.testing.assert_array_equal(lt.dequantize(), qt.dequantize())
        for attr in ("bits", "scheme", "shape", "dtype", "axis", "group_size", "objective", "gain", "preserve_mean"):
            assert getattr(lt, attr) == getattr(qt, attr), attr
    assert written == os.path.getsize(path)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("n", [1, 7, 9, 1001])
def test_size_is_packed_codes_plus_codebook_plus_header(tmp_path, bits, n):
    w = np.random.default_rng(n).standard_normal(n)
    qt = quantize(w, bits, "uniform")
    assert qt.nbytes == -(-n * bits // 8) + 4 * 3
    path = tmp_path / "t.hq"
    save(path, {"w": qt})
    assert os.path.getsize(path) == 12 + _header_len(path) + qt.nbytes + 4


def test_many_tensors_size(tmp_path, tensors):
    path = tmp_path / "m.hq"
    save(path, tensors)
    assert os.path.getsize(path) == 16 + _header_len(path) + sum(t.nbytes for t in tensors.values())


def test_truncated_file(tmp_path, tensors):
    path = tmp_path / "m.hq"
    save(path, tensors)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) - 40, 30, 13, 5, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=r"m\.hq.*(truncated|corrupted)"):
            load(path)


def test_corrupted_payload_and_header(tmp_path, tensors):
    path = tmp_path / "m.hq"
    save(path, tensors)
    data = bytearray(path.read_bytes())
    flipped = bytearray(data)
    flipped[-20] ^= 0x10
    path.write_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="checksum mismatch"):
        load(path)
    bad_header = bytearray(data)
    bad_header[14] ^= 0xFF
    path.write_bytes(bytes(bad_header))
    with pytest.raises(FormatError, match="m.hq"):
        load(path)
    path.write_bytes(bytes(data) + b"\x00")
    with pytest.raises(FormatError, match="trailing"):
        load(path)


def test_wrong_version_and_magic(tmp_path, tensors):
    path = tmp_path / "m.hq"
    save(path, tensors)
    data = bytearray(path.read_bytes())
    v = bytearray(data)
    struct.pack_into("<H", v, 6, FORMAT_VERSION + 1)
    path.write_bytes(bytes(v))
    with pytest.raises(FormatError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        load(path)
    path.write_bytes(b"PK\x03\x04" + bytes(data[4:]))
    with pytest.raises(FormatError, match="not a hopfield-quant file"):
        load(path)


def test_inconsistent_header_with_valid_checksum(tmp_path):
    """A structurally valid file whose header lies (codes out of range for bits)."""
    qt = quantize(np.random.default_rng(0).standard_normal(16), 4, "uniform")
    path = tmp_path / "m.hq"
    save(path, {"w": qt})
    data = path.read_bytes()
    hlen = _header_len(path)
    header = zlib.decompress(data[12:12 + hlen]).decode().replace('"scheme":"uniform"', '"scheme":"bogus"')
    h = zlib.compress(header.encode())
    body = data[:6] + struct.pack("<HI", 1, len(h)) + h + data[12 + hlen:-4]
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(FormatError, match="bogus|corrupted|inconsistent"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.hq")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, tensors):
    path = tmp_path / "m.hq"
    save(path, tensors)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="JSON-serialisable"):
        save(path, tensors, metadata={"bad": object()})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.hq"]  # no temp file left behind


def test_save_validation(tmp_path, tensors):
    with pytest.raises(ValueError, match="non-empty mapping"):
        save(tmp_path / "x.hq", {})
    with pytest.raises(TypeError, match="must be a QuantizedTensor or a numpy array"):
        save(tmp_path / "x.hq", {"a": [1.0, 2.0]})
    with pytest.raises(TypeError, match="plain arrays must be float, int or uint"):
        save(tmp_path / "x.hq", {"a": np.array(["x"])})
    with pytest.raises(ValueError, match="non-empty strings"):
        save(tmp_path / "x.hq", {"": tensors["hebb"]})


def test_plain_arrays_beside_quantized_tensors(tmp_path, tensors):
    arrays = {"bias": np.arange(5, dtype=np.float32) / 3, "idx": np.arange(6, dtype=np.int64).reshape(2, 3),
              "h": np.ones(3, np.float16)}
    path = tmp_path / "mixed.hq"
    save(path, {**tensors, **arrays})
    loaded = load(path)
    for k, a in arrays.items():
        assert loaded[k].dtype == a.dtype and loaded[k].shape == a.shape
        np.testing.assert_array_equal(loaded[k], a)
    expected = 16 + _header_len(path) + sum(t.nbytes for t in tensors.values()) + sum(a.nbytes for a in arrays.values())
    assert os.path.getsize(path) == expected
