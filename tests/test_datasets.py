"""IDX reading (synthetic files) and the real MNIST files when ../shared is present."""

import gzip
import struct

import numpy as np
import pytest
from conftest import SHARED

from feedforward import load_idx, load_mnist


def _idx(path, arr, code=0x08):
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    (gzip.open if str(path).endswith(".gz") else open)(path, "wb").write(data)
    return data


def test_idx_round_trip_and_errors(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _idx(tmp_path / "a.idx", a)
    np.testing.assert_array_equal(load_idx(tmp_path / "a.idx"), a)
    _idx(tmp_path / "a.idx.gz", a)
    np.testing.assert_array_equal(load_idx(tmp_path / "a.idx.gz"), a)
    f = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    _idx(tmp_path / "f.idx", f, 0x0D)
    np.testing.assert_array_equal(load_idx(tmp_path / "f.idx"), f)
    data = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "t.idx").write_bytes(data[:-3])
    with pytest.raises(ValueError, match=r"announces shape \(2, 3, 4\) \(24 bytes\) but the file has 21"):
        load_idx(tmp_path / "t.idx")
    (tmp_path / "m.idx").write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(ValueError, match="bad magic"):
        load_idx(tmp_path / "m.idx")
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "none.idx")


@pytest.mark.skipif(not (SHARED / "data" / "mnist").exists(), reason="../shared/data/mnist (MNIST IDX files) not present")
def test_real_mnist_files():
    xtr, ytr, xte, yte = load_mnist(SHARED / "data" / "mnist")
    assert xtr.shape == (60000, 1, 28, 28) and xte.shape == (10000, 1, 28, 28)
    assert np.bincount(yte).tolist()[:2] == [980, 1135]
    assert abs(float(xtr.mean())) < 1e-3 and abs(float(xtr.std()) - 1) < 1e-2
