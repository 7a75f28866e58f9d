"""Command line of the CNN module: ``python -m feedforward {train,quantize,evaluate,demo}``.

Every command writes its results (model files, a tidy CSV, a JSON sidecar with
parameters, versions, seed and timing, plots) into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

MODELS = ("digits_cnn", "lenet", "lenet_bn", "resnet20")


def _data(spec: str, split_seed: int):
    from . import load_digits, load_mnist

    if spec == "digits":
        return load_digits(seed=split_seed)
    p = Path(spec)
    if not p.is_dir():
        raise FileNotFoundError(f"--data {spec!r} is neither 'digits' nor a directory of MNIST-format IDX files")
    return load_mnist(p)


def _model(name: str, seed: int):
    from . import digits_cnn, lenet, resnet_cifar

    return {"digits_cnn": lambda: digits_cnn(seed), "lenet": lambda: lenet(False, seed),
            "lenet_bn": lambda: lenet(True, seed), "resnet20": lambda: resnet_cifar(20, seed=seed)}[name]()


def _sidecar(args, command: str, params: dict, seconds: float, **extra) -> dict:
    from quantization._io import run_sidecar

    return run_sidecar(command, params, args.seed, seconds, **extra)


def _csv_json(rows, meta, out: Path, name: str) -> None:
    from quantization._io import write_csv, write_json

    if rows:
        write_csv(rows, out / f"{name}.csv")
    write_json(meta, out / f"{name}.json")


def _load_any(path: Path):
    """A float model (.npz) or a compressed quantized model (.hq), told apart by the
    file's first bytes, not its name."""
    from . import Sequential, load_quantized
    from ._files import file_kind

    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"model file {path} is a directory; pass the model file in it")
    return load_quantized(path) if file_kind(path) == "quantized" else Sequential.load(path)


def cmd_train(args) -> None:
    from . import SGD, Adam, train

    xtr, ytr, xte, yte = _data(args.data, args.split_seed)
    model = _model(args.model, args.seed)
    if model.input_shape != xtr.shape[1:]:
        raise ValueError(f"model {args.model} expects inputs {model.input_shape}, the data have {xtr.shape[1:]}")
    opt = Adam(lr=args.lr) if args.optimizer == "adam" else SGD(lr=args.lr, momentum=0.9, weight_decay=5e-4)
    t0 = time.perf_counter()
    hist = train(model, xtr, ytr, epochs=args.epochs, batch_size=args.batch_size, optimizer=opt, seed=args.seed,
                 x_val=xte, y_val=yte, progress=not args.quiet and sys.stderr.isatty())
    size = model.save(args.out / "model.npz")
    params = dict(data=args.data, model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  optimizer=args.optimizer, split_seed=args.split_seed)
    _csv_json(hist, _sidecar(args, "train", params, time.perf_counter() - t0, test_accuracy=hist[-1]["val_accuracy"],
                             n_params=model.n_params(), file_bytes=size), args.out, "train")
    if not args.quiet:
        print(f"test accuracy {hist[-1]['val_accuracy']:.4f} after {args.epochs} epochs; "
              f"wrote {args.out / 'model.npz'} ({size:,} bytes), train.csv, train.json")


def cmd_quantize(args) -> None:
    from . import fold_batchnorm, quantize_model

    model = _load_any(args.model)
    if not hasattr(model, "named_layers"):
        raise ValueError(f"{args.model} is already quantized; quantize the float model (.npz)")
    t0 = time.perf_counter()
    qm = quantize_model(model, args.bits, args.scheme, args.objective,
                        axis=None if args.axis == "tensor" else "out_channel", gain=args.gain,
                        preserve_mean=args.preserve_mean, skip=args.skip, param_dtype=args.param_dtype)
    size = qm.save(args.out / "model.hq")
    float_size = args.model.stat().st_size
    # like with like: float32 parameters of the same BatchNorm-folded network over the quantized ones
    float_bytes = sum(v.nbytes for v in fold_batchnorm(model).named_parameters().values())
    ratio = float_bytes / qm.nbytes
    params = dict(model=str(args.model), bits=args.bits, scheme=args.scheme, objective=args.objective, axis=args.axis,
                  gain=args.gain, preserve_mean=args.preserve_mean, skip=args.skip, param_dtype=args.param_dtype)
    _csv_json(qm.report, _sidecar(args, "quantize", params, time.perf_counter() - t0, file_bytes=size,
                                  float_file_bytes=float_size, float_bytes=float_bytes, compressed_bytes=qm.nbytes,
                                  compression_ratio=ratio), args.out, "quantize")
    if not args.quiet:
        for r in qm.report:
            print(f"layer {r['layer']:<12} {r['type']:<7} {r['params']:>9,} params  {r['bits']:>2} bits  "
                  f"rho {r['rho']:.4f}  SQNR {r['sqnr_db']:6.1f} dB  {r['bytes']:>9,} bytes")
        print(f"wrote {args.out / 'model.hq'}: {size:,} bytes ({args.model}: {float_size:,}); parameters "
              f"{ratio:.2f}x smaller than in float32 ({float_bytes:,} -> {qm.nbytes:,} bytes, BatchNorm folded)")


def cmd_evaluate(args) -> None:
    xtr, ytr, xte, yte = _data(args.data, args.split_seed)
    model = _load_any(args.model)
    t0 = time.perf_counter()
    try:
        acc = model.accuracy(xte, yte)
    except ValueError as exc:  # NaN/inf outputs, labels or inputs that do not fit: say which file
        raise ValueError(f"{args.model}: {exc}") from None
    _csv_json([], _sidecar(args, "evaluate", dict(model=str(args.model), data=args.data, split_seed=args.split_seed),
                           time.perf_counter() - t0, accuracy=acc, n_test=len(yte)), args.out, "evaluate")
    if not args.quiet:
        print(f"{args.model}: test accuracy {acc:.4f} on {len(yte):,} images")


def cmd_demo(args) -> None:
    from . import SGD, accuracy_vs_bits, digits_cnn, load_digits, plot_accuracy_vs_bits, train

    xtr, ytr, xte, yte = load_digits(seed=0)
    t0 = time.perf_counter()
    model = digits_cnn(seed=args.seed)
    train(model, xtr, ytr, epochs=10, batch_size=32, optimizer=SGD(lr=0.05), seed=args.seed,
          progress=not args.quiet and sys.stderr.isatty())
    rows = accuracy_vs_bits(model, xte, yte, bits=range(1, 9), schemes=("uniform", "exponential"),
                            objectives=("correlation", "minmax"), progress=not args.quiet and sys.stderr.isatty())
    params = dict(data="digits", model="digits_cnn", epochs=10, bits=list(range(1, 9)),
                  schemes=["uniform", "exponential"], objectives=["correlation", "minmax"])
    _csv_json(rows, _sidecar(args, "demo", params, time.perf_counter() - t0), args.out, "accuracy_vs_bits")
    for f in args.formats:
        plot_accuracy_vs_bits(rows, args.out / f"accuracy_vs_bits.{f}", title="digits CNN: accuracy versus bits")
    if not args.quiet:
        print(f"float accuracy {rows[0]['float_accuracy']:.4f}; accuracy (%) / compression ratio")
        for s in ("uniform", "exponential"):
            for o in ("correlation", "minmax"):
                sel = {r["bits"]: r for r in rows if r["scheme"] == s and r["objective"] == o}
                print(f"{s + ', ' + o:<26}" + "".join(f"{b}b {100 * sel[b]['accuracy']:5.1f}/{sel[b]['compression_ratio']:4.1f}  "
                                                      for b in range(1, 9)))
        print(f"wrote {args.out / 'accuracy_vs_bits'}.csv, .json and {', '.join(args.formats)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m feedforward", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    def common(p):
        p.add_argument("--out", type=Path, default=Path("out"), help="output directory")
        p.add_argument("--seed", type=int, default=0, help="random seed (initialisation, data order)")
        p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
        p.add_argument("--debug", action="store_true", help="show the full traceback on errors")

    t = sub.add_parser("train", formatter_class=fmt, help="train a model",
                       description="Train a model and save it as model.npz with train.csv (per epoch) and train.json. "
                       "Example: python -m feedforward train --data digits --model digits_cnn --epochs 10 --out m")
    t.add_argument("--data", default="digits", help="'digits' or a directory of MNIST-format IDX files")
    t.add_argument("--model", default="digits_cnn", choices=MODELS, help="architecture")
    t.add_argument("--epochs", type=int, default=10, help="epochs")
    t.add_argument("--batch-size", type=int, default=32, help="mini-batch size")
    t.add_argument("--lr", type=float, default=0.05, help="learning rate (cosine-annealed)")
    t.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="optimizer")
    t.add_argument("--split-seed", type=int, default=0,
                   help="train/test split of the digits (use the same value with evaluate)")
    common(t)

    q = sub.add_parser("quantize", formatter_class=fmt, help="quantize a trained model, no data needed",
                       description="Quantize every conv/dense weight of a float model (.npz) and write the compressed "
                       "model.hq with a per-layer report (quantize.csv) and quantize.json. "
                       "Example: python -m feedforward quantize m/model.npz --bits 4 --scheme exponential --out q")
    q.add_argument("model", type=Path, help="float model file (.npz) written by train")
    q.add_argument("--bits", type=int, default=4, help="bits per weight, 1..8")
    q.add_argument("--scheme", default="uniform", help="uniform, exponential, pow2, lloyd")
    q.add_argument("--objective", default="correlation", help="correlation, mse, minmax")
    q.add_argument("--axis", default="out_channel", choices=["out_channel", "tensor"], help="codebook granularity")
    q.add_argument("--gain", default="unbiased", help="unbiased, lsq, none")
    q.add_argument("--preserve-mean", default=True, action=argparse.BooleanOptionalAction,
                   help="keep each output channel's mean exact")
    q.add_argument("--skip", nargs="*", default=[], help="layers left in float32: 'first', 'last' or layer paths")
    q.add_argument("--param-dtype", default="auto", choices=["auto", "bfloat16", "float32"],
                   help="storage of each codebook row's parameters; auto: bfloat16 where it adds at most 1%% "
                   "to a layer's squared quantization error")
    common(q)

    e = sub.add_parser("evaluate", formatter_class=fmt, help="test accuracy of a float or quantized model",
                       description="Test accuracy of a model file (.npz float or .hq quantized); writes evaluate.json. "
                       "Example: python -m feedforward evaluate q/model.hq --data digits")
    e.add_argument("model", type=Path, help="model file (.npz or .hq)")
    e.add_argument("--data", default="digits", help="'digits' or a directory of MNIST-format IDX files")
    e.add_argument("--split-seed", type=int, default=0, help="train/test split of the digits, as used by train")
    common(e)

    d = sub.add_parser("demo", formatter_class=fmt, help="train the digits CNN and quantize it at 1..8 bits",
                       description="Train the digits CNN (about 15 s), then quantize it with uniform and exponential "
                       "levels, correlation-optimal and min-max, at 1..8 bits, with no data; writes "
                       "accuracy_vs_bits.csv, .json and plots. Example: python -m feedforward demo --out out")
    d.add_argument("--formats", nargs="+", default=["png"], choices=["png", "svg", "pdf"], help="plot formats")
    common(d)
    return parser


def main(argv: list[str] | None = None) -> int:
    from quantization._io import run_command

    args = build_parser().parse_args(argv)
    return run_command({"train": cmd_train, "quantize": cmd_quantize, "evaluate": cmd_evaluate,
                        "demo": cmd_demo}[args.command], args, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
