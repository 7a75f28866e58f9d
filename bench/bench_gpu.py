"""The GPU backend against the CPU and PyTorch: store, quantize, recall at N = 10k ... 100k.

One command on a GPU machine (numba-cuda with the CUDA libraries: pip install ".[cuda]"):

    python bench/bench_gpu.py --out bench/results/gpu

and a quick self-check anywhere (small N; the CUDA rows run on a GPU, on numba-cuda's
simulator when NUMBA_ENABLE_CUDASIM=1, or are skipped with the reason):

    python bench/bench_gpu.py --quick --out /tmp/bench_gpu

For each N (P = N / 10 patterns, 1,000 cues with 10% flipped bits, 4-bit uniform codes):
store (Hebb), quantize, asynchronous and synchronous recall on the codes (synchronous on
the GPU twice where PyTorch has CUDA: one int8 GEMM per sweep, hopfield._sync_gemm, and the
numba-cuda kernels), asynchronous recall on float32 W, each with device="cpu" (up to --cpu-max-n) and device="cuda", and
PyTorch's synchronous recall S = sign(S @ W) until no change (ties keep the state) on
float16 W (float32 on a CPU).  Every CUDA recall row also says whether the first --check
cues ended exactly as on the CPU (states, sweeps, flags).  Profile rows (indented) split
the GPU's work: the initial integer sums of the affine recall alone; and, last for each N
(right after the quantize from N = 100,000, where recall may not fit in a run's time), the
store into its Hebb kernels, slab copies to the host (pageable and pinned) and the rest, and
a second quantize into the encode, rho on the host and the rest.  The CUDA kernels are compiled
on a small network first.  Rows go to <out>/bench_gpu.txt and <out>/bench_gpu.csv as they
are measured, so a run cut short keeps what it measured.
"""

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the package, installed or not
from _machine import describe  # noqa: E402

from hopfield import HopfieldNetwork, flip_noise, random_patterns, target_overlaps  # noqa: E402
from hopfield import _device, _sync_gemm  # noqa: E402


PROFILE_EARLY_N = 100_000  # from this N the store/quantize profile runs before recall, not after


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cuda_status():
    """(usable, description): whether device='cuda' can run here, and on what."""
    try:
        backend = _device.cuda_backend()
    except (ImportError, RuntimeError) as e:
        return False, f"CUDA rows skipped: {e}"
    from numba import cuda

    if backend.SIMULATOR:
        return True, "CUDA rows on numba-cuda's simulator (NUMBA_ENABLE_CUDASIM=1): a code-path check, not a timing"
    dev = cuda.get_current_device()
    free, total = backend.free_memory()
    return True, f"GPU: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}, " \
                 f"compute capability {dev.compute_capability}, {total / 1e9:.1f} GB ({free / 1e9:.1f} GB free)"


def torch_sync(W, cues):
    """PyTorch synchronous recall on float16 W (GPU) or float32 W (CPU): (seconds, states,
    GEMMs, label), or "no torch"."""
    try:
        import torch
    except ImportError:
        return "no torch"
    gpu = torch.cuda.is_available()
    dev, dt = ("cuda", torch.float16) if gpu else ("cpu", torch.float32)
    N = W.shape[0]
    Wt = torch.empty((N, N), dtype=dt, device=dev)
    step = max(1, (1 << 26) // N)  # rows converted at a time: no second N^2 host array
    for r0 in range(0, N, step):
        Wt[r0:r0 + step] = torch.from_numpy(np.array(W[r0:r0 + step], np.float32)).to(dev, dt)
    S0 = torch.from_numpy(cues.astype(np.float32)).to(dev, dt)

    def run():
        S, prev = S0.clone(), None
        for it in range(100):
            H = S @ Wt
            new = torch.where(H > 0, 1.0, torch.where(H < 0, -1.0, S)).to(dt)
            if torch.equal(new, S) or (prev is not None and torch.equal(new, prev)):
                break
            prev, S = S, new
        if gpu:
            torch.cuda.synchronize()
        return S, it + 1

    run()  # warm-up (cuBLAS handles, allocator)
    t, (S, gemms) = timed(run)
    label = "torch float16 GPU" if gpu else "torch float32 CPU"
    S = S.cpu().numpy().astype(np.int8)
    del Wt, S0
    if gpu:
        torch.cuda.empty_cache()  # give the memory back before the next size
    return t, S, gemms, label


def profile_sums(rep: "Report", N: int, q, cues):
    """The initial integer sums of the affine recall alone on the GPU: the numba-cuda
    kernel that recall runs, and torch's int8 GEMM (cuBLAS) on the same codes, for the
    share of the sums in the recall rows."""
    backend = _device.cuda_backend()
    if backend.SIMULATOR or not q._affine:
        return
    from numba import cuda

    d_codes, d_S = cuda.to_device(q.quantized.codes), cuda.to_device(cues)
    U = cuda.device_array(cues.shape, np.int32)
    grid = (backend._blocks(len(cues), backend.SPAN), backend._blocks(N, backend.SPAN))

    def kernel():
        backend._affine_sums_kernel[grid, (backend.TILE, backend.TILE)](d_codes, d_S, U)
        cuda.synchronize()

    kernel()
    rep.row(N, "  initial integer sums alone, numba kernel", "cuda", timed(kernel)[0])
    want = U.copy_to_host()
    del d_codes, d_S, U
    free_gpu(True)
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available() or N % 8:
        return
    C = torch.from_numpy(q.quantized.codes.view(np.int8)).cuda()
    S = torch.from_numpy(cues).cuda()
    diag = torch.from_numpy(np.diagonal(q.quantized.codes).astype(np.int32)).cuda()

    def gemm():
        out = torch._int_mm(S, C.t()) - S.to(torch.int32) * diag
        torch.cuda.synchronize()
        return out

    gemm()
    t, out = timed(gemm)
    rep.row(N, "  the same sums, torch int8 GEMM (cuBLAS)", "cuda", t,
            "yes" if np.array_equal(out.cpu().numpy(), want) else "NO", "not used by recall's async path")
    del C, S, diag, out
    torch.cuda.empty_cache()


def profile_store_quantize(rep: "Report", N: int, X, net, t_store: float, t_quantize: float):
    """Where the GPU store and quantize spend their time: the Hebb kernels alone, the slab
    copies to the host (pageable, into one already-touched slab buffer, and pinned), the
    rest of the timed store (first touch of the fresh host W, launches), and a second
    quantize split into the encode (GPU transfers and the host's chunk sums included), rho
    on the host and the rest (the fit, on the host)."""
    from numba import cuda

    from hopfield import network

    backend = _device.cuda_backend()
    P = X.shape[0]
    rows = _device._slab_rows(N)
    dB = cuda.to_device(backend._pack_patterns(X))
    dW = cuda.device_array((rows, N), np.float32)
    grid = lambda n: ((backend._blocks(N, backend.SPAN), backend._blocks(n, backend.SPAN)),  # noqa: E731
                      (backend.TILE, backend.TILE))
    slabs = [(r0, min(rows, N - r0)) for r0 in range(0, N, rows)]

    def kernels():
        for r0, n in slabs:
            backend._hebb_kernel[grid(n)](dB, P, r0, dW[:n])
        cuda.synchronize()

    def copies(host):
        for _, n in slabs:
            dW[:n].copy_to_host(host[:n])

    kernels()
    t_kernels = timed(kernels)[0]
    rep.row(N, "  store: Hebb kernels alone", "cuda", t_kernels, "", f"{len(slabs)} slabs of {rows:,} rows")
    pageable = np.ones((rows, N), np.float32)  # touched: no page faults during the copies
    t_copies = timed(lambda: copies(pageable))[0]
    rep.row(N, "  store: slab copies, pageable (touched)", "cuda", t_copies, "", f"{4 * N * N / 1e9:.3g} GB")
    rep.row(N, "  store: the rest (host W first touch, ...)", "cpu", t_store - t_kernels - t_copies, "",
            f"the timed store {t_store:.3f} s")
    del pageable
    pinned = cuda.pinned_array((rows, N), np.float32)
    rep.row(N, "  store: slab copies, pinned", "cuda", timed(lambda: copies(pinned))[0])
    del pinned, dB, dW
    encode, spent = backend.encode, []

    def timed_encode(*args):
        t, _ = timed(lambda: encode(*args))
        spent.append(t)

    backend.encode = timed_encode
    try:
        t, q = timed(lambda: net.quantize(4, "uniform", device="cuda"))
    finally:
        backend.encode = encode
    t_rho, _ = timed(lambda: network._offdiag_correlation(net, q))
    rep.row(N, "  quantize: encode (GPU, transfers, sums)", "cuda", sum(spent))
    rep.row(N, "  quantize: rho on the host", "cpu", t_rho)
    rep.row(N, "  quantize: the rest (the fit, host)", "cpu", t - sum(spent) - t_rho, "",
            f"this quantize {t:.3f} s, the timed one {t_quantize:.3f} s")
    free_gpu(True)


class Report:
    """Prints each row and appends it to <out>/bench_gpu.txt and .csv at once."""

    FIELDS = ["n", "step", "device", "seconds", "equal_to_cpu", "note"]

    def __init__(self, out: Path, header: str):
        out.mkdir(parents=True, exist_ok=True)
        self.txt, self.csv = out / "bench_gpu.txt", out / "bench_gpu.csv"
        self.txt.write_text(header + "\n")
        with open(self.csv, "w", newline="") as f:
            csv.writer(f).writerow(self.FIELDS)
        print(header)

    def line(self, text: str):
        print(text, flush=True)
        with open(self.txt, "a") as f:
            f.write(text + "\n")

    def row(self, n, step, device, seconds, equal="", note=""):
        sec = f"{seconds:10.3f}" if seconds is not None else f"{'-':>10}"
        self.line(f"{n:>8,}  {step:<44}{device:<20}{sec}  {equal:<6}{note}")
        with open(self.csv, "a", newline="") as f:
            csv.writer(f).writerow([n, step, device, "" if seconds is None else f"{seconds:.4f}", equal, note])


def warm_up(use_cuda: bool, simulator: bool):
    # above 2**20 weights the host's parallel whole-matrix passes compile too (not on the simulator: slow)
    X = random_patterns(6, 64 if simulator else 1100, seed=0)
    cues = flip_noise(X, 0.1, seed=1)
    for dev in ["cpu"] + (["cuda"] if use_cuda else []):
        net = HopfieldNetwork.from_patterns(X, device=dev)
        q = net.quantize(4, device=dev)
        for model in (net, q):
            model.recall(cues, seed=0, device=dev)
            for _sync_gemm.ENABLED in (True, False):  # the int8-GEMM sync path and the kernels
                model.recall(cues, dynamics="sync", device=dev)
        _sync_gemm.ENABLED = True


def guarded(rep: Report, N: int, step: str, fn):
    """Run one step; a failure (out of memory, say) is reported as a row and the bench goes on."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - a bench reports and continues
        rep.row(N, step, "-", None, "", f"FAILED: {type(e).__name__}: {str(e)[:300]}")
        return None


def free_gpu(use_cuda: bool):
    """Release numba-cuda's pending deallocations, so that PyTorch finds the memory free."""
    if use_cuda:
        _sync_gemm._release_numba_memory()


def bench_size(rep: Report, N: int, n_cues: int, use_cuda: bool, cpu: bool, n_check: int, seed: int):
    P = max(1, N // 10)
    X = random_patterns(P, N, seed=seed)
    targets = X[np.arange(n_cues) % P]
    cues = flip_noise(targets, 0.1, seed=seed + 1)
    fp = _device.footprint("recall", N, n_cues=n_cues, weights="affine")
    rep.line(f"\nN={N:,}, P={P:,}, {n_cues:,} cues; GPU footprint of recall on codes: {_device.size_text(fp.total)}")
    devices = (["cpu"] if cpu else []) + (["cuda"] if use_cuda else [])
    nets, qs, results, t_store, t_quantize = {}, {}, {}, {}, {}
    for dev in devices:
        out = guarded(rep, N, f"store (Hebb) {dev}", lambda: timed(lambda: HopfieldNetwork.from_patterns(X, device=dev)))
        if out is None:
            continue
        t, nets[dev] = out
        t_store[dev] = t
        rep.row(N, "store (Hebb)", dev, t)
        out = guarded(rep, N, f"quantize {dev}", lambda: timed(lambda: nets[dev].quantize(4, "uniform", device=dev)))
        if out is None:
            continue
        t, qs[dev] = out
        equal = ""
        if dev == "cuda" and "cpu" in qs:
            equal = "yes" if (np.array_equal(qs["cpu"].quantized.codes, qs[dev].quantized.codes)
                              and np.array_equal(qs["cpu"].quantized.params, qs[dev].quantized.params)) else "NO"
        rep.row(N, "quantize 4-bit uniform (+ rho)", dev, t, equal, f"rho {qs[dev].rho:.4f}")
        t_quantize[dev] = t
        if dev == "cuda" and N >= PROFILE_EARLY_N:  # where recall may not fit in a run's time: profile first
            guarded(rep, N, "profile of store and quantize",
                    lambda: profile_store_quantize(rep, N, X, nets["cuda"], t_store["cuda"], t))
    ref = nets.get("cpu") or nets.get("cuda")
    k = min(n_check, n_cues)
    for dev in devices:
        gemm_sync = dev == "cuda" and _sync_gemm.available(4, N)  # sync on cuBLAS's int8 GEMM, and the kernels
        for label, model, dynamics in (("recall async, 4-bit codes", qs.get(dev), "async"),
                                       # no shuffle: async minus this bounds the per-sweep Fisher-Yates
                                       ("recall async-fixed, 4-bit codes", qs.get(dev) if dev == "cuda" else None,
                                        "async-fixed"),
                                       ("recall sync, 4-bit codes", qs.get(dev), "sync"),
                                       ("recall sync, 4-bit codes, numba-cuda kernels", qs.get(dev) if gemm_sync
                                        else None, "sync"),
                                       ("recall async, float32 W", nets.get(dev), "async")):
            if model is None:
                continue
            _sync_gemm.ENABLED = "numba-cuda" not in label
            out = guarded(rep, N, f"{label} {dev}",
                          lambda: timed(lambda: model.recall(cues, dynamics=dynamics, seed=seed, device=dev)))
            _sync_gemm.ENABLED = True
            if out is None:
                continue
            t, res = out
            results[(label, dev)] = t
            equal = ""
            if dev == "cuda" and k:  # the timed run's first cues against the CPU on them (same per-cue seeds)
                cpu_res = guarded(rep, N, f"{label} CPU check", lambda: model.recall(cues[:k], dynamics=dynamics,
                                                                                   seed=seed))
                if cpu_res is not None:
                    equal = "yes" if (np.array_equal(cpu_res.states, res.states[:k])
                                      and np.array_equal(cpu_res.sweeps, res.sweeps[:k])
                                      and np.array_equal(cpu_res.converged, res.converged[:k])) else "NO"
            note = f"overlap {target_overlaps(res.states, targets).mean():.4f}, sweeps {res.sweeps.mean():.2f}"
            if gemm_sync and label == "recall sync, 4-bit codes":
                note += ", int8 GEMM per sweep (torch)"
            if dev == "cuda" and (label, "cpu") in results:
                note += f", {results[(label, 'cpu')] / t:.1f}x the CPU"
            rep.row(N, label, dev, t, equal, note)
    if "cuda" in qs:
        profile_sums(rep, N, qs["cuda"], cues)
    if ref is not None:
        free_gpu(use_cuda)
        torch_row(rep, N, ref, cues, targets, results)
    if "cuda" in qs and N < PROFILE_EARLY_N:  # last: a second quantize, after the rows that matter most
        del qs
        guarded(rep, N, "profile of store and quantize",
                lambda: profile_store_quantize(rep, N, X, nets["cuda"], t_store["cuda"], t_quantize["cuda"]))


def torch_row(rep, N, ref, cues, targets, results):
    out = guarded(rep, N, "PyTorch sync", lambda: torch_sync(ref.weights, cues))
    if out is None:
        return
    if out == "no torch":
        rep.row(N, "PyTorch sync S = sign(S @ W)", "-", None, "", "skipped: torch is not installed")
    else:
        t, S, gemms, label = out
        note = f"{gemms} GEMMs, overlap {target_overlaps(S, targets).mean():.4f}"
        if ("recall sync, 4-bit codes", "cuda") in results:
            note += f"; CUDA sync recall / this = {results[('recall sync, 4-bit codes', 'cuda')] / t:.2f}"
        rep.row(N, "PyTorch sync S = sign(S @ W)", label, t, "", note)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for bench_gpu.txt and bench_gpu.csv")
    ap.add_argument("--sizes", default=None, help="comma-separated N (default 10000,30000,100000; --quick: 1000)")
    ap.add_argument("--cues", type=int, default=None, help="cues per size (default 1000; --quick: 200)")
    ap.add_argument("--cpu-max-n", type=int, default=30_000, help="largest N with CPU rows (default 30000)")
    ap.add_argument("--check", type=int, default=8, help="cues compared with the CPU per CUDA recall row")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: CPU rows only; cuda (default): CPU and CUDA rows, CUDA skipped without a GPU")
    ap.add_argument("--quick", action="store_true", help="small sizes: a self-check of this script")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    use_cuda, status = cuda_status() if a.device == "cuda" else (False, "CUDA rows not requested (--device cpu)")
    simulator = use_cuda and os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
    default_sizes = "1000" if a.quick else "10000,30000,100000"
    sizes = [int(s) for s in (a.sizes or default_sizes).split(",")]
    n_cues = a.cues or (200 if a.quick else 1000)
    if simulator and a.sizes is None:
        sizes, n_cues = [48], min(n_cues, 4)  # the simulator runs Python threads: tiny sizes only
    rep = Report(a.out, f"{describe()}\n{status}\n"
                        f"{'N':>8}  {'step':<44}{'device':<20}{'seconds':>10}  {'equal':<6}note")
    t, _ = timed(lambda: warm_up(use_cuda, simulator))
    rep.line(f"warm-up (JIT of every CPU and CUDA kernel on a small network): {t:.1f} s")
    for N in sizes:
        bench_size(rep, N, n_cues, use_cuda, N <= a.cpu_max_n, a.check, a.seed)
    if not use_cuda:
        rep.line(f"\n{status}")
    rep.line(f"\nwritten: {rep.txt} and {rep.csv}")


if __name__ == "__main__":
    main()
