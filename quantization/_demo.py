"""``python -m quantization demo``: correlation and SQNR versus bits for uniform, exponential, pow2, lloyd."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._core import quantize
from ._core import POW2_MAX_BITS
from ._io import save_figure, write_csv
DEMO_SCHEMES = ("uniform", "exponential", "pow2", "lloyd")  # the demo's table and plot; normal is not shown yet
DISTRIBUTIONS = ("gaussian", "laplacian", "student-t3")
OBJECTIVES_SHOWN = ("correlation", "minmax")


def make_weights(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic weights: unit Gaussian, unit-scale Laplacian, or heavy-tailed Student-t(3)."""
    if kind == "gaussian":
        return rng.standard_normal(n).astype(np.float32)
    if kind == "laplacian":
        return rng.laplace(size=n).astype(np.float32)
    if kind == "student-t3":
        return rng.standard_t(3, size=n).astype(np.float32)
    raise ValueError(f"unknown distribution {kind!r}; choose one of {DISTRIBUTIONS}")


def run_demo(out: Path, n: int = 200_000, seed: int = 0, bits=range(1, 9), quiet: bool = False) -> list[dict]:
    """Quantize synthetic weights with each scheme of ``DEMO_SCHEMES`` and objective; write CSV and PNG.

    Returns the tidy rows (distribution, scheme, objective, bits, rho, sqnr_db, nbytes, seconds).
    SQNR uses least-squares gain (rho does not depend on the gain).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for dist in DISTRIBUTIONS:
        w = make_weights(dist, n, rng)
        for scheme in DEMO_SCHEMES:
            for objective in OBJECTIVES_SHOWN:
                for b in bits:
                    if scheme == "pow2" and b > POW2_MAX_BITS:  # refused: see quantize's docstring
                        continue
                    t0 = time.perf_counter()
                    qt = quantize(w, b, scheme, objective, gain="lsq")
                    dt = time.perf_counter() - t0
                    rows.append(dict(distribution=dist, scheme=scheme, objective=objective, bits=b,
                                     rho=qt.correlation(w), sqnr_db=qt.sqnr_db(w), nbytes=qt.nbytes, seconds=dt))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "quantization_demo.csv")
    _plot(out / "quantization_demo.png", rows, n)
    if not quiet:
        print(format_table(rows))
        print(f"\nwrote {out / 'quantization_demo.csv'} and {out / 'quantization_demo.png'}")
    return rows


def format_table(rows: list[dict]) -> str:
    """One line per (distribution, scheme, objective): rho and SQNR for each bit width."""
    bits = sorted({r["bits"] for r in rows})
    head = f"{'distribution':<12} {'scheme':<12} {'objective':<12}" + "".join(f"{f'{b} bit':>15}" for b in bits)
    lines = ["rho / SQNR dB (least-squares gain) per bit width", head, "-" * len(head)]
    keys = dict.fromkeys((r["distribution"], r["scheme"], r["objective"]) for r in rows)
    for key in keys:
        cells = {r["bits"]: r for r in rows if (r["distribution"], r["scheme"], r["objective"]) == key}
        line = f"{key[0]:<12} {key[1]:<12} {key[2]:<12}"
        line += "".join(f"{cells[b]['rho']:>8.4f}/{cells[b]['sqnr_db']:>5.1f}" if b in cells else f"{'-':>15}"
                        for b in bits)
        lines.append(line)
    return "\n".join(lines)


def _plot(path: Path, rows: list[dict], n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DISTRIBUTIONS), figsize=(15, 4.6), sharey=True)
    colors = {scheme: f"C{i}" for i, scheme in enumerate(DEMO_SCHEMES)}
    for ax, dist in zip(axes, DISTRIBUTIONS):
        for scheme in DEMO_SCHEMES:
            for objective, style in zip(OBJECTIVES_SHOWN, ("-", "--")):
                sel = [r for r in rows if (r["distribution"], r["scheme"], r["objective"]) == (dist, scheme, objective)]
                ax.semilogy([r["bits"] for r in sel], [max(1 - r["rho"], 1e-9) for r in sel], style, marker="o",
                            ms=3, color=colors[scheme], label=f"{scheme}, {objective}")
        ax.set_title(f"{dist} (n={n:,})")
        ax.set_xlabel("bits per weight")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("1 - rho (correlation loss)")
    axes[-1].legend(fontsize=8)
    fig.suptitle("Correlation between weights and quantized weights: solid = correlation-optimal, dashed = min-max")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
