"""Post-training quantization study of a CNN: accuracy and file size versus bits.

    python bench/cnn_study.py --data digits            # the bundled 8x8 digits (seconds)
    python bench/cnn_study.py --data mnist [--epochs 3] # LeNet-5 with BatchNorm on MNIST

Trains the float model (seeded), then quantizes every conv/dense weight per output
channel at 2..8 bits with no data and no retraining: uniform and exponential levels,
correlation-optimal versus min-max, and for the correlation objective every gain
(unbiased, lsq) with and without preserved channel means.  Prints a table and writes
CSV and PNG into bench/results/.  MNIST is read from ../shared/data/mnist; the script
says so and exits 0 when it is absent.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from feedforward import (SGD, accuracy_vs_bits, digits_cnn, lenet, load_digits, load_mnist,  # noqa: E402
                         plot_accuracy_vs_bits, train)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("digits", "mnist"), default="digits")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args()
    print(describe())
    if a.data == "digits":
        xtr, ytr, xte, yte = load_digits(seed=a.seed)
        model, epochs, bs = digits_cnn(seed=a.seed), a.epochs or 10, 32
    else:
        if not (SHARED / "mnist").exists():
            print(f"skipped: {SHARED / 'mnist'} not found (MNIST IDX files)")
            return
        xtr, ytr, xte, yte = load_mnist(SHARED / "mnist")
        model, epochs, bs = lenet(batchnorm=True, seed=a.seed), a.epochs or 3, 64
    t0 = time.perf_counter()
    train(model, xtr, ytr, epochs=epochs, batch_size=bs, optimizer=SGD(lr=0.05), seed=a.seed, progress=False)
    print(f"trained {a.data} model ({model.n_params():,} parameters) for {epochs} epochs in "
          f"{time.perf_counter() - t0:.0f} s; float test accuracy {model.accuracy(xte, yte):.4f}")
    rows = []
    bits = range(2, 9)
    # the grids, gains and means alone, as measured before bias correction and bfloat16
    # parameters existed; the remedies are measured on pretrained networks by
    # bench/pretrained_study.py
    rows += accuracy_vs_bits(model, xte, yte, bits=bits, schemes=("uniform", "exponential"),
                             objectives=("correlation",), gains=("unbiased", "lsq"), preserve_means=(False, True),
                             bias_correction=False, param_dtype="float32")
    rows += accuracy_vs_bits(model, xte, yte, bits=bits, schemes=("uniform", "exponential"),
                             objectives=("minmax",), gains=("unbiased",), preserve_means=(False, True),
                             bias_correction=False, param_dtype="float32")
    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / f"cnn_study_{a.data}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot_accuracy_vs_bits(rows, a.out / f"cnn_study_{a.data}.png", title=f"{a.data}: accuracy versus bits")
    print(f"float32 parameters (BatchNorm folded) {rows[0]['float_bytes']:,} bytes; test set {len(yte):,} images")
    print("accuracy (%) / compression ratio (float32 parameter bytes / stored bytes of the same folded network); "
          "objective, gain, preserve_mean")
    print(f"{'method':<44}" + "".join(f"{b:>14}" for b in bits))
    keys = list(dict.fromkeys((r["scheme"], r["objective"], r["gain"], r["preserve_mean"]) for r in rows))
    for k in keys:
        sel = {r["bits"]: r for r in rows if (r["scheme"], r["objective"], r["gain"], r["preserve_mean"]) == k}
        name = f"{k[0]}, {k[1]}, {k[2]}" + (", mean" if k[3] else "")
        print(f"{name:<44}" + "".join(f"{100 * sel[b]['accuracy']:>8.2f} /{sel[b]['compression_ratio']:>4.1f}"
                                      for b in bits))
    print("\noutput fidelity: correlation of the logits with the float model's (finer than accuracy)")
    print(f"{'method':<44}" + "".join(f"{b:>14}" for b in bits))
    for k in keys:
        sel = {r["bits"]: r for r in rows if (r["scheme"], r["objective"], r["gain"], r["preserve_mean"]) == k}
        name = f"{k[0]}, {k[1]}, {k[2]}" + (", mean" if k[3] else "")
        print(f"{name:<44}" + "".join(f"{sel[b]['logit_rho']:>14.5f}" for b in bits))


if __name__ == "__main__":
    main()
