"""Regression tests of the feedforward side of issue 10: invalid parameters and NaN
outputs refused, plots written under unique temporary names, load errors that name the
right loader, like-with-like compression ratios, MaxPool's gradient of -inf and NaN
windows, Dropout's backward pass."""

import gzip
import os
import pickle
import struct
import threading

import numpy as np
import pytest

import quantization as qz
from feedforward import (BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, accuracy_vs_bits,
                         fold_batchnorm, load_quantized, plot_accuracy_vs_bits, quantize_model)
from feedforward.__main__ import main
from feedforward.quantize import QMODEL_FORMAT


def _small(seed=0):
    """Conv + BatchNorm + Dense on 4x4 inputs; BatchNorm statistics that are not trivial."""
    m = Sequential([Conv2D(1, 4, 3, padding=1), BatchNorm(4), ReLU(), Flatten(), Dense(64, 3)], (1, 4, 4), seed=seed)
    rng = np.random.default_rng(seed)
    bn = m.layers[1]
    bn.state["running_mean"] = rng.normal(0, 0.3, 4).astype(np.float32)
    bn.state["running_var"] = rng.uniform(0.5, 2, 4).astype(np.float32)
    return m


def _x(n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 1, 4, 4)).astype(np.float32)


def _one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------- defect 2: NaN-making parameters


def test_negative_running_variance_is_refused_by_every_entry_point(tmp_path):
    m = _small()
    m.layers[1].state["running_var"][2] = -0.5
    x, y = _x(5), np.zeros(5, np.int64)
    msg = r"parameter 1\.running_var \(layer 1, BatchNorm\) has 1 negative value \(first: channel 2, -0\.5\)"
    for call in (lambda: m.accuracy(x, y), lambda: m.predict(x), lambda: m.logits(x), lambda: fold_batchnorm(m),
                 lambda: quantize_model(m, 4), lambda: accuracy_vs_bits(m, x, y, bits=(4,))):
        with pytest.raises(ValueError, match=msg):
            call()
    m.save(tmp_path / "neg.npz")  # saving what is in memory is allowed; reading it back is not
    with pytest.raises(ValueError, match=r"neg\.npz: parameter 1\.running_var .* cannot be negative"):
        Sequential.load(tmp_path / "neg.npz")
    with pytest.raises(ValueError, match="1.running_var .* negative"):
        _small().set_parameters(m.named_parameters())


def test_nonfinite_parameter_set_in_memory_is_refused():
    m = _small()
    m.layers[4].params["weight"][1, 7] = np.inf
    with pytest.raises(ValueError, match=r"parameter 4\.weight \(layer 4, Dense\) holds 1 NaN or inf values "
                                         r"\(first at index \(1, 7\): inf\)"):
        m.accuracy(_x(3), np.zeros(3, np.int64))


def test_nan_logits_are_refused_naming_the_inputs_and_the_layer():
    m = _small()
    m.layers[4].params["weight"][:] = 3e38  # finite, but every non-zero activation overflows float32
    conv, bn = m.layers[0], m.layers[1]
    conv.params["weight"] = np.abs(conv.params["weight"])
    conv.params["bias"][:] = 0
    bn.params["bias"][:] = 0
    bn.state["running_mean"][:] = 0
    x = np.abs(_x(4))
    x[[0, 2]] *= -1  # negative inputs, positive weights: ReLU zeros everything, finite logits
    with pytest.raises(ValueError, match=r"NaN or inf for 2 of 4 inputs \(input 1, 3\); the first non-finite "
                                         r"activation is the output of layer 4 \(Dense\)"):
        m.accuracy(x, np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="NaN or inf for 2 of 4 inputs"):
        m.predict(x, batch_size=1)


def test_zero_variance_with_zero_eps_is_refused_at_the_batchnorm():
    m = Sequential([Conv2D(1, 2, 3, padding=1), BatchNorm(2, eps=0.0), Flatten(), Dense(32, 3)], (1, 4, 4))
    m.layers[1].state["running_var"][0] = 0.0
    with pytest.raises(ValueError, match=r"for 3 of 3 inputs .* layer 1 \(BatchNorm\)"):
        m.accuracy(_x(3), np.zeros(3, np.int64))


def test_batchnorm_arguments_are_checked():
    with pytest.raises(ValueError, match="BatchNorm eps must be a finite number >= 0, got -1"):
        BatchNorm(3, eps=-1)
    with pytest.raises(ValueError, match="BatchNorm eps must be a finite number >= 0, got nan"):
        BatchNorm(3, eps=float("nan"))
    with pytest.raises(ValueError, match=r"BatchNorm momentum must be a number in \[0, 1\], got 2"):
        BatchNorm(3, momentum=2)
    with pytest.raises(ValueError, match="BatchNorm num_features must be an int >= 1, got True"):
        BatchNorm(True)


def _write_idx(path, arr, code):
    arr = np.ascontiguousarray(arr)
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


@pytest.fixture
def mnist_dir(tmp_path):
    """Six 28x28 images in MNIST's IDX files, so the command line needs no download."""
    d = tmp_path / "mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        _write_idx(d / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), 0x08)
        _write_idx(d / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, 6).astype(np.uint8), 0x08)
    return d


def _mnist_model():
    return Sequential([Conv2D(1, 2, 3), BatchNorm(2), ReLU(), MaxPool2D(2), Flatten(), Dense(2 * 13 * 13, 10)],
                      (1, 28, 28), seed=0)


def test_evaluate_command_refuses_negative_variance_and_nan_logits(tmp_path, mnist_dir, capsys):
    m = _mnist_model()
    m.save(tmp_path / "ok.npz")
    assert main(["evaluate", str(tmp_path / "ok.npz"), "--data", str(mnist_dir), "--out", str(tmp_path),
                 "--quiet"]) == 0
    m.layers[1].state["running_var"][1] = -3.0
    m.save(tmp_path / "neg.npz")
    assert main(["evaluate", str(tmp_path / "neg.npz"), "--data", str(mnist_dir), "--out", str(tmp_path)]) == 2
    err = _one_line_error(capsys)
    assert "neg.npz: parameter 1.running_var" in err and "negative" in err
    m = _mnist_model()
    m.layers[5].params["weight"][:] = 3e38
    m.save(tmp_path / "big.npz")
    assert main(["evaluate", str(tmp_path / "big.npz"), "--data", str(mnist_dir), "--out", str(tmp_path)]) == 2
    err = _one_line_error(capsys)
    assert "big.npz: the model's outputs (logits) are NaN or inf for 6 of 6 inputs" in err and "layer 5 (Dense)" in err


# ------------------------------------------------- defect 4: unique temporary names


def _rows():
    return [dict(scheme="uniform", objective=o, gain="unbiased", preserve_mean=True, bits=b, accuracy=0.9 + b / 100,
                 float_accuracy=0.99, compression_ratio=32 / b) for o in ("correlation", "minmax") for b in (2, 4, 8)]


def _race(monkeypatch, write, n=2):
    """Run ``write`` in ``n`` threads that all reach os.replace before any renames:
    the interleaving that made writers sharing a fixed temporary name fail."""
    barrier = threading.Barrier(n, timeout=30)
    real = os.replace

    def replace(src, dst):
        barrier.wait()
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    errors = []

    def run(i):
        try:
            write(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    monkeypatch.setattr(os, "replace", real)
    assert not errors, errors


def test_concurrent_plots_to_the_same_path_all_succeed(tmp_path, monkeypatch):
    out = tmp_path / "plots" / "acc.png"
    _race(monkeypatch, lambda i: plot_accuracy_vs_bits(_rows(), out, title=f"run {i}"))
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in out.parent.iterdir()] == ["acc.png"]  # no temporary left behind


def test_concurrent_model_saves_to_the_same_path_all_succeed(tmp_path, monkeypatch):
    models = [_small(0), _small(1)]
    _race(monkeypatch, lambda i: models[i].save(tmp_path / "m.npz"))
    loaded = Sequential.load(tmp_path / "m.npz")
    assert any(np.array_equal(loaded.layers[0].params["weight"], m.layers[0].params["weight"]) for m in models)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_plot_refuses_empty_rows(tmp_path):
    with pytest.raises(ValueError, match="rows is empty"):
        plot_accuracy_vs_bits([], tmp_path / "a.png")


# ------------------------------------------------- defect 9: load messages


def _files(tmp_path):
    m = _small()
    m.save(tmp_path / "float.npz")
    quantize_model(m, 4).save(tmp_path / "quant.hq")
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    return tmp_path


def test_float_loader_on_a_quantized_file_names_the_right_loader(tmp_path):
    _files(tmp_path)
    with pytest.raises(ValueError) as info:
        Sequential.load(tmp_path / "quant.hq")
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'quant.hq'} is a quantized model file")
    assert "feedforward.load_quantized(" in msg and "allow_pickle" not in msg and "pickle" not in msg


def test_quantized_loader_on_a_float_file_names_the_right_loader(tmp_path):
    _files(tmp_path)
    with pytest.raises(qz.FormatError, match=r"float\.npz is a float model file .*Sequential\.load\("):
        load_quantized(tmp_path / "float.npz")


@pytest.mark.parametrize("name,match", [
    ("array.npy", r"array\.npy: not a readable model file: it is a single numpy array written by np\.save\.$"),
    ("obj.pkl", r"obj\.pkl: not a readable model file: it is a Python pickle \(pickles are never loaded"),
    ("empty.npz", r"empty\.npz: not a readable model file: it is empty \(0 bytes\)"),
    ("notes.txt", r"notes\.txt: not a readable model file: Sequential\.save writes \.npz archives"),
])
def test_float_loader_says_what_other_files_are(tmp_path, name, match):
    _files(tmp_path)
    with pytest.raises(ValueError, match=match) as info:
        Sequential.load(tmp_path / name)
    assert "allow_pickle" not in str(info.value)


def test_pickled_entry_in_an_npz_is_named_not_loaded(tmp_path):
    np.savez(tmp_path / "o.npz", __architecture__=np.zeros(2, np.uint8), w=np.array([{}], dtype=object))
    with pytest.raises(ValueError, match=r"o\.npz: entry 'w' holds Python objects") as info:
        Sequential.load(tmp_path / "o.npz")
    assert "allow_pickle" not in str(info.value)


def test_torch_checkpoint_is_recognised(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(3)}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"c\.pt is a PyTorch checkpoint .*feedforward\.from_torch"):
        Sequential.load(tmp_path / "c.pt")
    with pytest.raises(qz.FormatError, match=r"c\.pt is a PyTorch checkpoint"):
        load_quantized(tmp_path / "c.pt")


def test_onnx_loader_names_the_right_loader(tmp_path):
    pytest.importorskip("onnx")
    from feedforward import from_onnx, to_onnx

    _files(tmp_path)
    with pytest.raises(ValueError, match=r"quant\.hq is a quantized model file .*, not an ONNX model; "
                                         r".*load_quantized"):
        from_onnx(tmp_path / "quant.hq")
    to_onnx(_small(), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx is an ONNX model, .*feedforward\.from_onnx\("):
        Sequential.load(tmp_path / "m.onnx")


def test_quantized_loader_names_the_file_for_missing_tensors_and_non_models(tmp_path):
    m = _small()
    qm = quantize_model(m, 4)
    tensors = {k: qm.quantized.get(k, v) for k, v in qm.model.named_parameters().items()}
    del tensors["4.bias"]
    qz.save(tmp_path / "missing.hq", tensors, metadata={"format": QMODEL_FORMAT, "architecture": qm.model.config()})
    with pytest.raises(qz.FormatError, match=r"missing\.hq: parameters do not match .*missing \['4\.bias'\]"):
        load_quantized(tmp_path / "missing.hq")
    qz.save(tmp_path / "tensors.hq", {"w": qz.quantize(np.ones((2, 8)), 4)})
    with pytest.raises(qz.FormatError, match=r"tensors\.hq holds quantized tensors but no model .*quantization\.load"):
        load_quantized(tmp_path / "tensors.hq")


def test_command_line_tells_files_apart_by_content_not_name(tmp_path, mnist_dir, capsys):
    m = _mnist_model()
    quantize_model(m, 8).save(tmp_path / "quantized_named.npz")
    assert main(["evaluate", str(tmp_path / "quantized_named.npz"), "--data", str(mnist_dir),
                 "--out", str(tmp_path)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    (tmp_path / "x.hq").write_bytes(pickle.dumps([1]))
    assert main(["evaluate", str(tmp_path / "x.hq"), "--data", str(mnist_dir), "--out", str(tmp_path)]) == 2
    assert "is a Python pickle" in _one_line_error(capsys)


# ------------------------------------------------- defect 13: like-with-like ratios


def test_compression_ratio_compares_the_folded_network_by_hand():
    m = _small()
    x, y = _x(6), np.arange(6) % 3
    rows = accuracy_vs_bits(m, x, y, bits=(3, 4), schemes=("uniform",), objectives=("correlation",))
    # float32 parameters of the folded network: conv 4*1*3*3 + bias 4, dense 3*64 + bias 3;
    # the BatchNorm's four arrays of 4 (and the .npz container) are not counted
    float_bytes = 4 * (36 + 4 + 192 + 3)
    for r in rows:
        b = r["bits"]
        qm = quantize_model(m, b)
        # the default stores each codebook row's parameters as bfloat16: 2 bytes each
        params = 2 * (qm.quantized["0.weight"].params.size + qm.quantized["4.weight"].params.size)
        codes = -(-36 * b // 8) + -(-192 * b // 8)
        compressed = codes + params + 4 * (4 + 3)
        assert r["float_bytes"] == float_bytes
        assert r["compressed_bytes"] == compressed
        assert r["compression_ratio"] == pytest.approx(float_bytes / compressed, rel=1e-12)
        assert r["file_bytes"] > compressed  # the file adds its header
    again = accuracy_vs_bits(fold_batchnorm(m), x, y, bits=(3, 4), schemes=("uniform",), objectives=("correlation",))
    assert [r["compression_ratio"] for r in again] == [r["compression_ratio"] for r in rows]


def test_accuracy_vs_bits_refuses_bad_labels():
    with pytest.raises(ValueError, match=r"y must have shape \(6,\)"):
        accuracy_vs_bits(_small(), _x(6), np.zeros((6, 1), np.int64), bits=(4,))


def test_quantize_command_reports_a_like_with_like_ratio(tmp_path, capsys):
    import json

    m = _small()
    m.save(tmp_path / "m.npz")
    assert main(["quantize", str(tmp_path / "m.npz"), "--bits", "4", "--out", str(tmp_path), "--quiet"]) == 0
    meta = json.loads((tmp_path / "quantize.json").read_text())
    qm = quantize_model(m, 4)
    assert meta["float_bytes"] == 4 * (36 + 4 + 192 + 3) and meta["compressed_bytes"] == qm.nbytes
    assert meta["compression_ratio"] == pytest.approx(meta["float_bytes"] / qm.nbytes)
    assert meta["float_file_bytes"] == (tmp_path / "m.npz").stat().st_size


# ------------------------------------------------- defect 14: MaxPool gradient


def _maxpool_reference(x, k, stride, dy):
    """Forward and backward by loops, with PyTorch's choice of the window's maximum:
    the first in row-major order, the last NaN if any, the window's first element if all
    values are -inf."""
    N, C, H, W = x.shape
    OH, OW = (H - k) // stride + 1, (W - k) // stride + 1
    y = np.empty((N, C, OH, OW), np.float32)
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best, where = -np.inf, (i * stride, j * stride)
                    for a in range(i * stride, i * stride + k):
                        for b in range(j * stride, j * stride + k):
                            v = x[n, c, a, b]
                            if np.isnan(v) or v > best:
                                best, where = v, (a, b)
                    y[n, c, i, j] = best
                    dx[n, c, where[0], where[1]] += dy[n, c, i, j]
    return y, dx


def _special_input(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.4] = -np.inf
    x[:, :, 2:5, 2:5] = -np.inf  # whole windows of -inf, away from pixel (0, 0)
    x[rng.random(shape) < 0.05] = np.nan
    x[rng.random(shape) < 0.2] = 1.0  # ties
    return x


@pytest.mark.parametrize("k,stride,shape", [(2, 2, (2, 3, 8, 8)), (3, 2, (2, 2, 9, 7)), (3, 1, (1, 2, 7, 8)),
                                            (2, 3, (1, 1, 8, 9))])
def test_maxpool_forward_and_backward_match_the_reference(k, stride, shape):
    x = _special_input(shape, k * 10 + stride)
    layer = MaxPool2D(k, stride)
    y = layer.forward(x, train=True)
    dy = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    y_ref, dx_ref = _maxpool_reference(x, k, stride, dy)
    np.testing.assert_array_equal(y, y_ref)  # NaN in the same places
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


def test_maxpool_gradient_of_an_all_minus_inf_window_stays_in_the_window():
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x[0, 0, 0, 0] = 1.0
    layer = MaxPool2D(2)
    layer.forward(x, train=True)
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32))
    expect = np.zeros((4, 4), np.float32)
    expect[0, 0], expect[0, 2], expect[2, 0], expect[2, 2] = 1, 2, 3, 4  # each window's first element
    np.testing.assert_array_equal(dx[0, 0], expect)


def test_maxpool_matches_torch_on_inf_and_nan():
    torch = pytest.importorskip("torch")
    for k, stride, shape in ((2, 2, (2, 3, 8, 8)), (3, 2, (2, 2, 9, 7))):
        x = _special_input(shape, 3)
        layer = MaxPool2D(k, stride)
        y = layer.forward(x, train=True)
        dy = np.random.default_rng(8).standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        yt = torch.nn.functional.max_pool2d(xt, k, stride)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


# ------------------------------------------------- Dropout's backward pass


def test_dropout_backward_matches_the_reference_mask_and_scaling():
    p, seed, shape = 0.3, 5, (3, 4, 5)
    layer = Dropout(p, seed=seed)
    rng = np.random.default_rng(seed)  # the layer's mask stream, drawn the obvious way
    data = np.random.default_rng(0)
    for _ in range(3):  # each training forward draws a fresh mask
        x = data.standard_normal(shape).astype(np.float32)
        dy = data.standard_normal(shape).astype(np.float32)
        keep = rng.random(shape) >= p
        y = layer.forward(x, train=True)
        dx = layer.backward(dy)
        np.testing.assert_allclose(y, np.where(keep, x / (1 - p), 0), rtol=1e-6)
        np.testing.assert_allclose(dx, np.where(keep, dy / (1 - p), 0), rtol=1e-6)
        assert 0.5 < keep.mean() < 0.9


@pytest.mark.parametrize("p,train", [(0.0, True), (0.5, False)])
def test_dropout_backward_is_the_identity_when_nothing_is_dropped(p, train):
    layer = Dropout(p, seed=1)
    layer.forward(np.ones((2, 3), np.float32), train=True)  # a mask from an earlier step must not leak
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(layer.forward(x, train=train), x)
    np.testing.assert_array_equal(layer.backward(x + 1), x + 1)
