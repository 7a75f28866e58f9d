"""Speed of the Hopfield simulator: store, quantize, recall; against references.

    python bench/bench_hopfield.py [--n 10000] [--p 1000] [--cues 1000] [--nd3-n 1000]
                                   [--no-float] [--no-reference] [--scaling]

Threads: numba's (NUMBA_NUM_THREADS) and BLAS's (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS);
set both to compare thread counts, e.g. ``NUMBA_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2``.

Part A (N=10,000, P=1,000, 1,000 cues with 10% flipped bits), all in one run:
  * storing (Hebb), quantizing (4-bit uniform, correlation objective), recall
    (asynchronous, random order, to a fixed point) with float and with quantized weights;
  * a plain numpy vectorised synchronous reference: S <- sign(S W) until no change;
  * this machine's limit for asynchronous recall: one float32 GEMM of the initial fields
    (cues x W) plus reading W's codes once per flip (a row of N bytes per flipped neuron;
    flips counted as the Hamming distance between cue and final state, a lower bound).
Part B: neurodynex3's Hopfield network (``pip install --no-deps neurodynex3``; its
storage is O(P N^2) Python loops, so N=1,000 is the largest size it handles in about a
minute), storing and recalling 100 cues with 5 asynchronous sweeps, against this package
on the same patterns and cues.  Skipped when neurodynex3 is not installed.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from hopfield import HopfieldNetwork, _int8, flip_noise, random_patterns, target_overlaps  # noqa: E402


@njit(parallel=True, cache=True)
def _read_rows(codes, rows):
    """Sum of the bytes of the given rows: the memory traffic of one row read per flip."""
    acc = np.zeros(rows.size, np.int64)
    for k in prange(rows.size):
        r = codes[rows[k]]
        s = 0
        for j in range(r.size):
            s += r[j]
        acc[k] = s
    return acc.sum()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def kernel_scaling(q, cues, seed):
    """Seconds of the affine dynamics kernel alone (initial sums given) at 1, 2, 4, ... threads
    up to numba's count: how the part of recall that is not a GEMM scales."""
    import numba

    from hopfield import _kernels as K
    from hopfield.network import _seed_per_cue

    U0, M0 = q._integer_sums(cues)
    w = K.AffineWeights(q.quantized.codes, q._scale, q._z, q._off)
    run = K.RunOptions(100, K.ASYNC_RANDOM, 0.0)
    seeds = _seed_per_cue(seed, len(cues))
    top = numba.get_num_threads()
    out = {}
    for k in sorted({1 << i for i in range(top.bit_length())} | {top}):  # powers of 2 up to top, and top
        numba.set_num_threads(k)
        S, U, M = cues.copy(), U0.copy(), M0.copy()
        sweeps, conv = np.zeros(len(cues), np.int64), np.zeros(len(cues), np.bool_)
        out[k] = timed(lambda: K.recall_affine(w, S, U, M, seeds, run, sweeps, conv))[0]
    numba.set_num_threads(top)
    return out


def numpy_sync(W, cues, max_iter=100):
    """Plain numpy synchronous recall, vectorised over cues (ties keep the state); stops
    when every cue is at a fixed point or in a 2-cycle (synchronous dynamics can
    alternate forever)."""
    S = cues.astype(np.float32)
    prev = None
    for it in range(max_iter):
        H = S @ W
        new = np.where(H > 0, 1.0, np.where(H < 0, -1.0, S)).astype(np.float32)
        if np.array_equal(new, S) or (prev is not None and np.array_equal(new, prev)):
            return new, it + 1
        prev, S = S, new
    return S, max_iter


def part_a(N, P, n_cues, seed, with_float=True, with_reference=True, with_scaling=False):
    print(f"\nA. N={N:,}, P={P:,} (alpha={P / N:.3f}), {n_cues:,} cues with 10% flipped bits")
    X = random_patterns(P, N, seed=seed)
    targets = X[np.arange(n_cues) % P]
    cues = flip_noise(targets, 0.1, seed=seed + 1)
    n_warm = min(N, 1100)  # above 2**20 weights: the parallel whole-matrix passes compile too
    for min_work in (_int8.MIN_WORK, 0):  # warm up every kernel, and import torch for the int8 GEMM
        _int8.MIN_WORK, was = min_work, _int8.MIN_WORK
        small = HopfieldNetwork.from_patterns(X[:5, :n_warm])
        small.recall(cues[:2, :n_warm]), small.quantize(4).recall(cues[:2, :n_warm])
        _int8.MIN_WORK = was
    t_store, net = timed(lambda: HopfieldNetwork.from_patterns(X))
    t_quant, q = timed(lambda: net.quantize(4, "uniform"))
    t_float, rf = timed(lambda: net.recall(cues, seed=seed)) if with_float else (None, None)
    t_q, rq = timed(lambda: q.recall(cues, seed=seed))
    t_sums = timed(lambda: q._integer_sums(cues))[0] if q._affine else float("nan")
    # where torch's int8 GEMM ran the store or the sums, time numpy's float32 GEMM too
    int8_store = _int8.usable(N * N * P)
    int8 = q._affine and q.bits <= 7 and _int8.usable(n_cues * N * N)  # the sums
    _int8.ENABLED, enabled = False, _int8.ENABLED
    t_store32 = timed(lambda: HopfieldNetwork.from_patterns(X))[0] if int8_store else None
    t_sums32 = timed(lambda: q._integer_sums(cues))[0] if int8 else None
    _int8.ENABLED = enabled
    if int8:
        S8 = cues.astype(np.int8)
        C8 = q.quantized.codes.view(np.int8)
        U8 = np.empty(cues.shape, np.int32)
        t_gemm8 = min(timed(lambda: _int8.matmul(S8, C8, U8))[0] for _ in range(2))
    kernel = kernel_scaling(q, cues, seed) if q._affine and with_scaling else {}
    t_np, (S_np, iters) = timed(lambda: numpy_sync(net.weights, cues)) if with_reference else (None, (None, 0))
    S32 = cues.astype(np.float32)
    t_gemm = min(timed(lambda: S32 @ net.weights)[0] for _ in range(2))
    flips = int((rq.states != cues).sum())
    rows = np.random.default_rng(seed).integers(0, N, flips)
    _read_rows(q.quantized.codes, rows[:10])
    t_read, _ = timed(lambda: _read_rows(q.quantized.codes, rows))
    limit = t_gemm + t_read
    m = lambda S: target_overlaps(np.asarray(S, np.int8), targets).mean()  # noqa: E731
    print(f"rho(W, Q4(W)) = {q.rho:.4f}; flips (lower bound) = {flips:,}")
    print(f"{'step':<52}{'seconds':>9}{'x limit':>9}  note")
    gemm, store_gemm = ("int8 GEMM, torch" if flag else "float32 GEMM" for flag in (int8, int8_store))
    print(f"{f'store (Hebb, {store_gemm})':<52}{t_store:>9.2f}{'':>9}")
    if int8_store:
        print(f"{'store (Hebb, float32 GEMM: HOPFIELD_INT8_GEMM=0)':<52}{t_store32:>9.2f}{'':>9}  "
              f"int8 {t_store32 / t_store:.1f}x faster")
    print(f"{'quantize 4-bit uniform, correlation (+ rho)':<52}{t_quant:>9.2f}{'':>9}")
    print(f"{'limit: f32 GEMM of fields + one code row per flip':<52}{limit:>9.2f}{1:>9.1f}  "
          f"GEMM {t_gemm:.2f} s + reads {t_read:.2f} s")
    print(f"{'recall async, quantized 4-bit (codes + codebook)':<52}{t_q:>9.2f}{t_q / limit:>9.1f}  "
          f"mean overlap {m(rq.states):.4f}, sweeps {rq.sweeps.mean():.2f}")
    print(f"{f'  of which the initial integer sums ({gemm})':<52}{t_sums:>9.2f}{t_sums / limit:>9.1f}")
    if int8:
        print(f"{'  the same sums by float32 GEMM (tiles)':<52}{t_sums32:>9.2f}{t_sums32 / limit:>9.1f}  "
              f"int8 {t_sums32 / t_sums:.1f}x faster")
        print(f"{'limit with the int8 GEMM of the sums':<52}{t_gemm8 + t_read:>9.2f}{(t_gemm8 + t_read) / limit:>9.1f}  "
              f"GEMM {t_gemm8:.2f} s + reads {t_read:.2f} s; recall {t_q / (t_gemm8 + t_read):.1f}x this limit")
    for k, t in kernel.items():
        print(f"{f'  the dynamics kernel alone, {k} threads':<52}{t:>9.2f}{t / limit:>9.1f}  "
              f"{kernel[1] / t:.1f}x one thread")
    if with_float:
        print(f"{'recall async, float32 weights':<52}{t_float:>9.2f}{t_float / limit:>9.1f}  "
              f"mean overlap {m(rf.states):.4f}, sweeps {rf.sweeps.mean():.2f}")
    if with_reference:
        print(f"{'numpy vectorised synchronous reference (float32)':<52}{t_np:>9.2f}{t_np / limit:>9.1f}  "
              f"mean overlap {m(S_np):.4f}, {iters} GEMMs")
        print(f"quantized async recall is {t_np / t_q:.1f}x faster than the numpy synchronous reference")


def part_b(N, seed):
    try:
        from neurodynex3.hopfield_network import network as nd3
    except ImportError:
        print("\nB. skipped: neurodynex3 is not installed (pip install --no-deps neurodynex3)")
        return
    P, n_cues, sweeps = N // 10, 100, 5
    print(f"\nB. neurodynex3 versus this package: N={N}, P={P}, {n_cues} cues (10% flipped), "
          f"{sweeps} async sweeps for neurodynex3, to a fixed point here")
    X = random_patterns(P, N, seed=seed)
    targets = X[np.arange(n_cues) % P]
    cues = flip_noise(targets, 0.1, seed=seed + 1)
    np.random.seed(seed)  # neurodynex3 draws from numpy's global generator
    nd = nd3.HopfieldNetwork(N)
    t_store_nd, _ = timed(lambda: nd.store_patterns([x.astype(int) for x in X]))
    nd.set_dynamics_sign_async()

    def nd_recall():
        out = []
        for c in cues:
            nd.set_state_from_pattern(c.astype(int))
            nd.run(sweeps)
            out.append(nd.state.copy())
        return np.array(out)

    t_rec_nd, S_nd = timed(nd_recall)
    t_store, net = timed(lambda: HopfieldNetwork.from_patterns(X))
    t_rec, res = timed(lambda: net.recall(cues, seed=seed))
    ours, theirs = t_store + t_rec, t_store_nd + t_rec_nd
    print(f"{'':<28}{'store s':>10}{'recall s':>10}{'total s':>10}{'overlap':>9}")
    print(f"{'neurodynex3':<28}{t_store_nd:>10.3f}{t_rec_nd:>10.3f}{theirs:>10.3f}"
          f"{target_overlaps(S_nd.astype(np.int8), targets).mean():>9.4f}")
    print(f"{'hopfield-quant':<28}{t_store:>10.3f}{t_rec:>10.3f}{ours:>10.3f}"
          f"{target_overlaps(res.states, targets).mean():>9.4f}")
    print(f"hopfield-quant is {theirs / ours:,.0f}x faster in total "
          f"(store {t_store_nd / t_store:,.0f}x, recall {t_rec_nd / t_rec:,.0f}x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--p", type=int, default=1_000)
    ap.add_argument("--cues", type=int, default=1_000)
    ap.add_argument("--nd3-n", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-float", action="store_true", help="skip the recall on float32 weights")
    ap.add_argument("--no-reference", action="store_true", help="skip the numpy synchronous reference")
    ap.add_argument("--scaling", action="store_true",
                    help="time the affine dynamics kernel alone at 1, 2, 4, ... threads")
    a = ap.parse_args()
    print(describe())
    part_a(a.n, a.p, a.cues, a.seed, not a.no_float, not a.no_reference, a.scaling)
    if a.nd3_n:
        part_b(a.nd3_n, a.seed)


if __name__ == "__main__":
    main()
