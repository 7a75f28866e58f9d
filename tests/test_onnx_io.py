"""ONNX export (to_onnx, float and quantized) and import (from_onnx), checked against
onnxruntime."""

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import feedforward as ff  # noqa: E402
import quantization as qz  # noqa: E402
from feedforward import onnx_io  # noqa: E402
from feedforward._graph import GraphError  # noqa: E402
from feedforward.layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool,  # noqa: E402
                                MaxPool2D, ReLU, ReLU6)
from feedforward.onnx_io import from_onnx, to_onnx  # noqa: E402
from feedforward.quantize import QuantizedModel  # noqa: E402


# ------------------------------------------------------------------ models


def _perturb(model, seed=0):
    """Random BatchNorm statistics and affine parameters, non-zero biases, so that no
    layer is the identity and a wrong export shows."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for k, v in model.named_parameters().items():
        if k.endswith("running_var"):
            arrays[k] = rng.uniform(0.5, 2.0, v.shape)
        elif k.endswith("running_mean") or k.endswith("bias"):
            arrays[k] = rng.normal(0.0, 0.3, v.shape)
        elif k.endswith("weight") and v.ndim == 1:
            arrays[k] = rng.uniform(0.5, 1.5, v.shape)
        else:
            arrays[k] = v
    model.set_parameters({k: np.asarray(v, np.float32) for k, v in arrays.items()})
    return model


def resnet8():
    return _perturb(ff.resnet_cifar(8))


def separable():
    """A depthwise-separable stack: asymmetric ("SAME", stride 2) padding, grouped
    convs with a channel multiplier, ReLU6, pools, a dense head."""
    return _perturb(ff.Sequential([
        Conv2D(3, 8, 3, 2, (0, 1, 0, 1)), BatchNorm(8), ReLU6(),
        Conv2D(8, 16, 3, 1, 1, groups=8), BatchNorm(16), ReLU6(),
        Conv2D(16, 16, 1, bias=False), BatchNorm(16), ReLU(), MaxPool2D(2),
        Conv2D(16, 16, 3, 1, 1, groups=16), ReLU6(), AvgPool2D(2, 1),
        GlobalAvgPool(), Dropout(0.2), Dense(16, 5),
    ], (3, 16, 16), seed=1), seed=1)


def mlp():
    return _perturb(ff.Sequential([
        Flatten(), Dense(64, 32, bias=False), BatchNorm(32), ReLU(), Dropout(0.3),
        Dense(32, 24), BatchNorm(24), ReLU6(), Dense(24, 10),
    ], (1, 8, 8), seed=2), seed=2)


MODELS = {"resnet8": resnet8, "separable": separable, "mlp": mlp}


def _x(model, n=3, seed=1):
    return np.random.default_rng(seed).standard_normal((n,) + model.input_shape).astype(np.float32)


def _run(path_or_proto, x):
    src = path_or_proto.SerializeToString() if isinstance(path_or_proto, onnx.ModelProto) else str(path_or_proto)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _close(got, ref, rtol=1e-4):
    assert got.shape == ref.shape
    err = np.abs(got - ref).max()
    assert err <= rtol * np.abs(ref).max(), f"max abs difference {err:.3g} vs max |ref| {np.abs(ref).max():.3g}"


# ------------------------------------------------------------------ float export


@pytest.mark.parametrize("name", MODELS)
def test_float_export_runs_in_onnxruntime(tmp_path, name):
    model = MODELS[name]()
    path = tmp_path / f"{name}.onnx"
    size = to_onnx(model, path)
    assert size == path.stat().st_size
    x = _x(model)
    ref = model.forward(x)
    assert np.abs(ref).max() > 0.1  # a degenerate model would make the comparison empty
    _close(_run(path, x), ref)


@pytest.mark.parametrize("name", MODELS)
def test_round_trip(tmp_path, name):
    model = MODELS[name]()
    to_onnx(model, tmp_path / "m.onnx")
    back = from_onnx(tmp_path / "m.onnx")
    x = _x(model, 4, seed=3)
    _close(back.forward(x), model.forward(x), rtol=1e-5)
    assert back.input_shape == model.input_shape


def test_round_trip_keeps_the_architecture(tmp_path):
    model = resnet8()
    to_onnx(model, tmp_path / "m.onnx")
    back = from_onnx(tmp_path / "m.onnx")
    assert back.config() == model.config()  # residual blocks, option-A shortcuts, eps
    for k, v in model.named_parameters().items():
        np.testing.assert_array_equal(back.named_parameters()[k], v)


def test_asymmetric_padding_is_exported_per_side(tmp_path):
    model = separable()
    to_onnx(model, tmp_path / "m.onnx")
    conv = next(n for n in onnx.load(str(tmp_path / "m.onnx")).graph.node if n.op_type == "Conv")
    pads = next(a for a in conv.attribute if a.name == "pads").ints
    assert list(pads) == [0, 0, 1, 1]  # ONNX order: top, left, bottom, right


def test_pads_helper_reads_int_or_tuple_padding():
    assert onnx_io._pads(Conv2D(1, 1, 3, padding=(0, 1, 2, 3))) == (0, 1, 2, 3)

    class Old:  # a conv layer that stores only the int `pad`
        pad = 2

    assert onnx_io._pads(Old()) == (2, 2, 2, 2)


def test_export_validates_its_arguments(tmp_path):
    model = mlp()
    with pytest.raises(TypeError, match="Sequential or QuantizedModel"):
        to_onnx(model.layers, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be an int in"):
        to_onnx(model, tmp_path / "m.onnx", opset=9)
    assert not (tmp_path / "m.onnx").exists()


def test_export_with_older_opset(tmp_path):
    model = separable()
    to_onnx(model, tmp_path / "m.onnx", opset=11)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 11
    x = _x(model)
    _close(_run(tmp_path / "m.onnx", x), model.forward(x))


# ------------------------------------------------------------------ quantized export


@pytest.mark.parametrize("scheme", ["uniform", "exponential", "lloyd"])
@pytest.mark.parametrize("bits", [3, 4])
def test_quantized_export_matches_forward(tmp_path, scheme, bits):
    qm = ff.quantize_model(separable(), bits, scheme)  # resnet8: test_quantized_file_is_smaller_and_imports
    path = tmp_path / "q.onnx"
    to_onnx(qm, path)
    x = _x(qm.model)
    _close(_run(path, x), qm.forward(x), rtol=1e-5)
    # the codes are stored one byte per weight, never as float weights
    g = onnx.load(str(path)).graph
    inits = {t.name: t for t in g.initializer}
    for name, qt in qm.quantized.items():
        assert name not in inits
        codes = numpy_helper.to_array(inits[f"{name}.codes"])
        assert codes.dtype == np.uint8 and codes.size == qt.size and codes.max() < 2 ** bits
        np.testing.assert_array_equal(numpy_helper.to_array(inits[f"{name}.codebook"]), qt.codebook)


@pytest.mark.parametrize("options", [dict(axis=None), dict(group_size=8)])
def test_quantized_export_per_tensor_and_groups(tmp_path, options):
    qm = ff.quantize_model(mlp(), 4, "uniform", **options)
    to_onnx(qm, tmp_path / "q.onnx")
    x = _x(qm.model)
    _close(_run(tmp_path / "q.onnx", x), qm.forward(x), rtol=1e-5)


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_quantized_export_codebooks_along_other_axes(tmp_path, axis):
    """Rows along axis 1..3 need the Transpose back; checked against dequantize()."""
    model = ff.Sequential([Conv2D(4, 6, 3, padding=1), GlobalAvgPool(), Dense(6, 3)], (4, 6, 6), seed=4)
    w = model.layers[0].params["weight"]
    qt = qz.quantize(w, 3, "lloyd", axis=axis)
    model.layers[0].params["weight"] = qt.dequantize()
    qm = QuantizedModel(model, {"0.weight": qt}, [], {})
    to_onnx(qm, tmp_path / "q.onnx")
    x = _x(model)
    _close(_run(tmp_path / "q.onnx", x), model.forward(x), rtol=1e-5)
    # and the importer evaluates the lookup back into the same float weight
    back = from_onnx(tmp_path / "q.onnx")
    np.testing.assert_array_equal(back.layers[0].params["weight"], qt.dequantize())


def test_quantized_file_is_smaller_and_imports(tmp_path):
    model = resnet8()
    qm = ff.quantize_model(model, 4)
    float_bytes = to_onnx(model, tmp_path / "f.onnx")
    q_bytes = to_onnx(qm, tmp_path / "q.onnx")
    n_quantized = sum(qt.size for qt in qm.quantized.values())
    assert q_bytes < float_bytes - 2.5 * n_quantized  # 4 bytes -> 1 byte per quantized weight
    assert qm.save(tmp_path / "q.hq") < q_bytes  # the package's own file packs 4 bits
    back = from_onnx(tmp_path / "q.onnx")
    x = _x(model, 2)
    _close(back.forward(x), qm.forward(x), rtol=1e-5)
    _close(_run(tmp_path / "q.onnx", x), qm.forward(x), rtol=1e-5)


def test_quantized_export_refuses_stale_codes(tmp_path):
    qm = ff.quantize_model(mlp(), 4)
    name = next(iter(qm.quantized))
    path, key = name.rsplit(".", 1)
    dict(qm.model.named_layers())[path].params[key] = qm.quantized[name].dequantize() + 0.5
    with pytest.raises(ValueError, match=f"quantized weight '{name}'.*differs"):
        to_onnx(qm, tmp_path / "q.onnx")


# ------------------------------------------------------------------ import from PyTorch


def _torch_export(torch, module, shape, path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.randn(1, *shape),), str(path), dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17)
    except (ImportError, ModuleNotFoundError) as exc:
        if os.environ.get("CI"):
            raise  # CI installs every test dependency: nothing may be skipped there
        pytest.skip(f"torch.onnx.export needs a package that is missing: {exc}")


def _randomize_bn(torch, module):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return module.eval()


def _torch_models(torch):
    nn = torch.nn
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _torch_models import MnistMLP, ResNetCifar

    separable = nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 8, 3, 2), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.ReLU6(), nn.Conv2d(8, 16, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
    return {"resnet8": (ResNetCifar(8), (3, 16, 16)), "mlp": (MnistMLP(), (1, 28, 28)),
            "separable": (separable, (3, 16, 16))}


@pytest.mark.parametrize("name", ["resnet8", "mlp", "separable"])
def test_import_torch_export(tmp_path, name):
    """Option-A shortcuts (Slice + a Pad whose pads come from a constant subgraph),
    x.view(x.size(0), -1) (Shape -> Gather -> Concat -> Reshape), MatMul + BatchNorm 1-D,
    ZeroPad2d before a conv, ReLU6 as Clip, depthwise convs."""
    torch = pytest.importorskip("torch")
    module, shape = _torch_models(torch)[name]
    _randomize_bn(torch, module)
    path = tmp_path / f"{name}.onnx"
    _torch_export(torch, module, shape, path)
    model = from_onnx(path)
    x = _x(model, 3, seed=5)
    ref = _run(path, x)
    _close(model.forward(x), ref)
    with torch.no_grad():
        _close(model.forward(x), module(torch.from_numpy(x)).numpy())


# ------------------------------------------------------------------ hand-built graphs


def _model(nodes, inits, in_shape, out_shape, opset=17, inputs_extra=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape), *inputs_extra],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    return m


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_gemm_transposes_alpha_beta_and_matmul_bias():
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["g"], name="gemm", transB=0, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["mm"]),
        helper.make_node("Add", ["b2", "mm"], ["y"]),
    ]
    m = _model(nodes, {"w1": _rand(12, 7), "b1": _rand(1, 7, seed=1), "w2": _rand(7, 3, seed=2),
                       "b2": _rand(3, seed=3)}, ["N", 3, 2, 2], ["N", 3])
    model = from_onnx(m)  # checked against onnxruntime
    assert [type(layer) for layer in model.layers] == [Flatten, Dense, ReLU, Dense]
    assert model.layers[3].bias


def test_conv_auto_pad_asymmetric_pads_and_old_clip():
    w = _rand(4, 2, 3, 3)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], name="same", auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Clip", ["c1"], ["r"], min=0.0, max=6.0),
        helper.make_node("Conv", ["r", "w2", "b2"], ["c2"], pads=[1, 0, 0, 1], group=2),
        helper.make_node("GlobalAveragePool", ["c2"], ["gp"]),
        helper.make_node("Reshape", ["gp", "shape"], ["y"]),
    ]
    m = _model(nodes, {"w": w, "w2": _rand(4, 2, 2, 2, seed=1), "b2": _rand(4, seed=2),
                       "shape": np.array([0, -1], np.int64)}, ["N", 2, 8, 8], ["N", 4], opset=10)
    model = from_onnx(m)
    assert onnx_io._pads(model.layers[0]) == (0, 1, 0, 1)
    assert onnx_io._pads(model.layers[2]) == (1, 0, 0, 1)
    assert isinstance(model.layers[1], ReLU6)


@pytest.mark.parametrize("op", ["Sigmoid", "LSTM"])
def test_unsupported_operator_names_op_and_node(op):
    if op == "Sigmoid":
        nodes = [helper.make_node("Sigmoid", ["x"], ["y"], name="gate_7")]
        m = _model(nodes, {}, ["N", 4], ["N", 4])
    else:
        nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["", "y"], name="gate_7", hidden_size=2)]
        m = _model(nodes, {"W": _rand(1, 8, 3), "R": _rand(1, 8, 2)}, ["N", 5, 3], [1, 5, 2])
    with pytest.raises(GraphError, match=f"'gate_7'.*{op} is not supported"):
        from_onnx(m)


def test_unsupported_structures_are_refused():
    conv_after_pool = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
                       helper.make_node("Conv", ["g", "w"], ["y"], name="head")]
    m = _model(conv_after_pool, {"w": _rand(2, 3, 1, 1)}, ["N", 3, 4, 4], ["N", 2, 1, 1])
    with pytest.raises(GraphError, match="'head'.*follows a GlobalAveragePool"):
        from_onnx(m)
    clip = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clamp")]
    m = _model(clip, {"lo": np.float32(-1), "hi": np.float32(1)}, ["N", 3], ["N", 3])
    with pytest.raises(GraphError, match="'clamp'.*Clip\\(0, 6\\)"):
        from_onnx(m)
    reshape = [helper.make_node("Reshape", ["x", "s"], ["y"], name="fold")]
    m = _model(reshape, {"s": np.array([-1, 6], np.int64)}, ["N", 3, 4], ["N", 6])
    with pytest.raises(GraphError, match="'fold'.*only flattening"):
        from_onnx(m)


def test_input_shape_rules():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    dynamic = _model(nodes, {}, ["N", 3, "H", "W"], ["N", 3, "H", "W"])
    with pytest.raises(TypeError, match="pass input_shape"):
        from_onnx(dynamic)
    assert from_onnx(dynamic, (3, 5, 5)).input_shape == (3, 5, 5)
    static = _model(nodes, {}, ["N", 3, 4, 4], ["N", 3, 4, 4])
    with pytest.raises(ValueError, match="input_shape=\\(3, 5, 5\\) does not match"):
        from_onnx(static, (3, 5, 5))


def test_check_catches_a_wrong_translation(monkeypatch, tmp_path):
    model = mlp()
    to_onnx(model, tmp_path / "m.onnx")

    def wrong_relu(self, node, name, ins, attrs):  # a translation bug: Relu as the identity
        self._op_Identity(node, name, ins, attrs)

    monkeypatch.setattr(onnx_io._Importer, "_op_Relu", wrong_relu)
    with pytest.raises(GraphError, match="differ from onnxruntime's"):
        from_onnx(tmp_path / "m.onnx")
    from_onnx(tmp_path / "m.onnx", check=False)
    monkeypatch.setattr(onnx_io, "_onnxruntime", lambda: None)  # no onnxruntime: no check, no error
    from_onnx(tmp_path / "m.onnx")


def test_corrupt_files_name_the_file(tmp_path):
    to_onnx(resnet8(), tmp_path / "good.onnx")
    data = (tmp_path / "good.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.onnx.*truncated or corrupted"):
        from_onnx(tmp_path / "cut.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 100)
    with pytest.raises(ValueError, match="junk.onnx.*truncated or corrupted"):
        from_onnx(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="model_or_path must be"):
        from_onnx(42)


@pytest.mark.parametrize("group_size", [32, 100])
def test_quantized_export_groups_with_a_shorter_last_group(tmp_path, group_size):
    """3x3 conv rows of 54 weights: groups of 32 (32 + 22) or one short group of 54."""
    model = ff.Sequential([Conv2D(6, 5, 3, padding=1), GlobalAvgPool(), Dense(5, 3)], (6, 6, 6), seed=5)
    qm = ff.quantize_model(model, 3, "uniform", group_size=group_size)
    qt = qm.quantized["0.weight"]
    assert qt.n_rows == 5 * -(-54 // group_size)
    to_onnx(qm, tmp_path / "q.onnx")
    x = _x(qm.model)
    _close(_run(tmp_path / "q.onnx", x), qm.forward(x), rtol=1e-5)
    back = from_onnx(tmp_path / "q.onnx")
    np.testing.assert_array_equal(back.layers[0].params["weight"], qt.dequantize())
