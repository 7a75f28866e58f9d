"""PyTorch import (from_torch, load_state_dict) and quantize_torch_model."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _torch_models import MnistMLP, ResNetCifar  # noqa: E402
from conftest import SHARED  # noqa: E402

import feedforward as ff  # noqa: E402
import quantization as qz  # noqa: E402
from feedforward._graph import GraphError  # noqa: E402


def _randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return module.eval()


def _outputs(module, model, shape, n=4, seed=1):
    x = torch.randn((n,) + shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = module(x).numpy()
    return ref, model.forward(x.numpy())


def test_resnet_with_option_a_shortcuts_imports_exactly():
    module = _randomize(ResNetCifar(8))
    model = ff.from_torch(module, (3, 32, 32))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Residual") == 3
    assert [layer.shortcut for layer in model.layers if isinstance(layer, ff.Residual)] == \
        ["identity", "option_a", "option_a"]
    ref, got = _outputs(module, model, (3, 32, 32))
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # the same weights through a known architecture and the state_dict
    same = ff.from_torch(module.state_dict(), architecture=ff.resnet_cifar(8))
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    assert np.array_equal(same.forward(x), model.forward(x))


class _SamePadConv(nn.Conv2d):
    """TensorFlow 'SAME' padding as EfficientNet-Lite's PyTorch port does it: a
    ZeroPad2d (asymmetric for stride 2) and a functional conv."""

    def __init__(self, cin, cout, k, stride=1, groups=1, size=16):
        super().__init__(cin, cout, k, stride, groups=groups, bias=False)
        out = -(-size // stride)
        pad = max((out - 1) * stride + k - size, 0)
        self.static_padding = nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))

    def forward(self, x):
        return F.conv2d(self.static_padding(x), self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class _MBConv(nn.Module):
    def __init__(self, c, e=4, k=3, size=8):
        super().__init__()
        self.expand = nn.Conv2d(c, c * e, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(c * e)
        self.dw = _SamePadConv(c * e, c * e, k, 1, groups=c * e, size=size)
        self.bn1 = nn.BatchNorm2d(c * e)
        self.project = nn.Conv2d(c * e, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.act = nn.ReLU6()

    def forward(self, x):
        y = self.act(self.bn0(self.expand(x)))
        y = self.act(self.bn1(self.dw(y)))
        y = self.bn2(self.project(y))
        return y + x


class _LiteNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = _SamePadConv(3, 8, 3, stride=2, size=16)
        self.bn = nn.BatchNorm2d(8)
        self.blocks = nn.ModuleList([_MBConv(8, k=3), _MBConv(8, k=5)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(8, 7)

    def forward(self, x):
        bs = x.size(0)
        x = F.relu6(self.bn(self.stem(x)))
        for b in self.blocks:
            x = b(x)
        return self.fc(self.drop(self.pool(x).view(bs, -1)))


def test_depthwise_same_padding_relu6_net_imports_exactly():
    module = _randomize(_LiteNet())
    model = ff.from_torch(module, (3, 16, 16))
    convs = [layer for _, layer in model.named_layers() if isinstance(layer, ff.Conv2D)]
    assert convs[0].padding == (0, 1, 0, 1)  # the stride-2 "SAME" stem pads bottom/right only
    assert [c.groups for c in convs].count(32) == 2
    ref, got = _outputs(module, model, (3, 16, 16))
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert {getattr(layer, "source", None) for layer in convs} >= {"stem", "blocks.0.dw", "blocks.1.expand"}


def test_mlp_with_batchnorm1d_imports_exactly():
    module = _randomize(MnistMLP())
    model = ff.from_torch(module, (1, 28, 28))
    ref, got = _outputs(module, model, (1, 28, 28))
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_unsupported_layers_and_structures_are_named():
    with pytest.raises(GraphError, match="SiLU"):
        ff.from_torch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU()), (3, 8, 8))

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return torch.sigmoid(self.c(x)) * x

    with pytest.raises(GraphError, match="sigmoid"):
        ff.from_torch(Gate(), (3, 8, 8))

    class Proj(nn.Module):  # a shortcut that holds a layer
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return self.a(x) + self.b(x)

    with pytest.raises(GraphError, match="shortcut holds layers"):
        ff.from_torch(Proj(), (3, 8, 8))
    with pytest.raises(TypeError, match="input_shape"):
        ff.from_torch(nn.Linear(3, 2))
    bad = nn.Linear(3, 2)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="weight.*NaN"):
        ff.from_torch(bad, (3,))


def test_state_dict_mismatch_names_the_keys():
    sd = _randomize(ResNetCifar(8)).state_dict()
    missing = dict(list(sd.items())[:-1])
    with pytest.raises(ValueError, match="nothing for.*weight|bias"):
        ff.load_state_dict(ff.resnet_cifar(8), missing)
    extra = dict(sd, **{"extra.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="unexpected.*extra.weight"):
        ff.load_state_dict(ff.resnet_cifar(8), extra)
    wrong = dict(sd)
    wrong["conv1.weight"] = torch.zeros(16, 3, 5, 5)
    with pytest.raises(ValueError, match="'conv1.weight' has shape"):
        ff.load_state_dict(ff.resnet_cifar(8), wrong)
    with pytest.raises(TypeError, match="architecture"):
        ff.from_torch(sd)


@pytest.mark.parametrize("net,shape", [(lambda: ResNetCifar(8), (3, 32, 32)), (_LiteNet, (3, 16, 16))])
def test_quantize_torch_model_writes_back_the_package_model(net, shape, tmp_path):
    module = _randomize(net())
    model = ff.from_torch(module, shape)
    qm = ff.quantize_model(model, 3)
    out = ff.quantize_torch_model(module, 3, shape, path=tmp_path / "m.hq")
    assert out["structural"] and out["file_bytes"] == (tmp_path / "m.hq").stat().st_size
    assert out["compressed_bytes"] < out["file_bytes"] < out["compressed_bytes"] + 4096  # the header
    # like with like: the folded network as float32 over the same network as stored
    assert out["compressed_bytes"] == qm.nbytes
    assert out["float_bytes"] == 4 * sum(v.size for v in qm.model.named_parameters().values())
    assert not any(layer.kind == "batchnorm" for _, layer in qm.model.named_layers())
    ref, got = _outputs(module, qm, shape)
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # every conv/linear weight of the module now has at most 2**3 values per output channel
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.detach().numpy().reshape(m.weight.shape[0], -1)
            assert max(len(np.unique(r)) for r in w) <= 8
    assert {r["layer"] for r in out["report"]} >= ({"stem", "fc"} if net is _LiteNet else {"conv1", "linear"})


def test_quantize_torch_model_on_any_module_warns_and_quantizes_per_channel(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.SiLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    before = module[0].weight.detach().numpy().copy()
    with pytest.warns(UserWarning, match="SiLU"):
        out = ff.quantize_torch_model(module, 2, (3, 8, 8), path=tmp_path / "any.hq")
    assert not out["structural"]
    w = module[0].weight.detach().numpy()
    expect = qz.quantize(before, 2, axis=0, preserve_mean=True, param_dtype="auto").dequantize()
    assert np.array_equal(w, expect)
    loaded = qz.load(tmp_path / "any.hq")
    assert np.array_equal(loaded["0.weight"].dequantize(), w)
    with pytest.raises(ValueError, match="not conv/linear"), pytest.warns(UserWarning, match="no input_shape"):
        ff.quantize_torch_model(module, {"nope": 3})


@pytest.mark.skipif(not (SHARED / "data" / "pretrained").is_dir(), reason="../shared/data is absent")
def test_pretrained_resnet20_agrees_with_pytorch_on_cifar():
    d = np.load(SHARED / "data" / "cifar10-test-jpeg" / "cifar10_test_from_jpeg.npz")
    x = d["x"][:1000].astype(np.float32) / 255
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    ck = next((SHARED / "data" / "pretrained" / "akamaster-resnet-cifar10").glob("resnet20-*.th"))
    sd = {k.removeprefix("module."): v for k, v in torch.load(ck, map_location="cpu")["state_dict"].items()}
    module = ResNetCifar(20)
    module.load_state_dict(sd)
    module.eval()
    model = ff.from_torch(module, (3, 32, 32))
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    got = np.concatenate([model.forward(x[i:i + 250]) for i in range(0, len(x), 250)])
    assert np.array_equal(got.argmax(1), ref.argmax(1))
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    assert np.mean(ref.argmax(1) == d["y"][:1000]) > 0.7


def test_near_dead_channels_quantize_exactly_and_labels_are_checked():
    module = _randomize(_LiteNet())
    with torch.no_grad():
        module.blocks[0].dw.weight[:4] *= 1e-9  # max|w| ~ 1e-9, as EfficientNet-Lite0's dead channels
        module.blocks[0].dw.weight[4:6] = 0.0
        module.blocks[0].project.weight[:, :3] *= 1e-30
    model = ff.from_torch(module, (3, 16, 16))
    for scheme in ("uniform", "exponential", "lloyd", "normal"):
        qm = ff.quantize_model(model, 4, scheme)
        w = ff.fold_batchnorm(model).named_parameters()
        for name, qt in qm.quantized.items():
            wq = qt.dequantize()
            assert np.isfinite(wq).all()
            rho = qt.correlation(w[name], per_row=True)
            assert np.all(np.isfinite(rho))
        dw = qm.quantized["3.body.3.weight"].dequantize()  # the depthwise conv of the first block
        ref = w["3.body.3.weight"]
        for c in range(6):
            tiny = ref[c].ravel()
            if np.ptp(tiny) > 0:
                assert qz.correlation(tiny, dw[c].ravel()) > 0.9, (scheme, c)
            else:
                assert np.array_equal(dw[c], ref[c])
    x = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    y = np.arange(8) % 7
    assert 0 <= model.accuracy(x, y) <= 1
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        model.accuracy(x, y[:, None])
    with pytest.raises(TypeError, match="integer"):
        model.accuracy(x, y.astype(float))


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 4)
        self.weight = nn.Parameter(torch.randn(5, 4))  # a top-level weight used functionally

    def forward(self, x):
        x = F.relu(self.bn1(self.c1(x)))
        x = F.relu(self.c2(x))
        return F.linear(self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)), self.weight)


@pytest.mark.parametrize("kw", [dict(bits={"c2": 8, "fc": 8}, equalize=True),
                                dict(bits=3, equalize=True, skip=("c1",)),
                                dict(bits=3, scheme={"c1": "lloyd", "c2": "exponential"}),
                                dict(bits=4, skip=("first", "weight"))])
def test_quantize_torch_model_options_by_module_names_match_quantize_model(kw):
    module = _randomize(_Small())
    shape = (3, 8, 8)
    model = ff.from_torch(module, shape)
    paths = {layer.source: p for p, layer in model.named_layers() if isinstance(layer, (ff.Conv2D, ff.Dense))}
    assert set(paths) == {"c1", "c2", "fc", ""} or set(paths) >= {"c1", "c2", "fc"}
    kw = dict(kw)
    bits = kw.pop("bits")
    fbits = {paths[k]: v for k, v in bits.items()} if isinstance(bits, dict) else bits
    fkw = dict(kw)
    if isinstance(kw.get("scheme"), dict):
        fkw["scheme"] = {paths[k]: v for k, v in kw["scheme"].items()}
    if "skip" in kw:
        fkw["skip"] = tuple(k if k in ("first", "last") else paths[k] for k in kw["skip"])
    qm = ff.quantize_model(model, fbits, **fkw)
    out = ff.quantize_torch_model(module, bits, shape, **kw)
    assert out["structural"]
    ref, got = _outputs(module, qm, shape)
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_quantize_torch_model_refusals_and_fallback_options():
    module = _randomize(_Small())
    with pytest.raises(TypeError, match="fold_bn"):
        ff.quantize_torch_model(module, 3, (3, 8, 8), fold_bn=False)
    with pytest.raises(ValueError, match="bits names.*nope"):
        ff.quantize_torch_model(module, {"nope": 3}, (3, 8, 8))
    seq = nn.Sequential(nn.Conv2d(3, 8, 3), nn.SiLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    w0 = seq[0].weight.detach().clone()
    with pytest.warns(UserWarning, match="bias_correction ignored"):
        out = ff.quantize_torch_model(seq, 2, (3, 8, 8), skip=("0",), scheme={"3": "lloyd"}, bias_correction=True)
    assert torch.equal(seq[0].weight, w0)  # skipped
    assert [r["scheme"] for r in out["report"]] == ["float32", "lloyd"]
