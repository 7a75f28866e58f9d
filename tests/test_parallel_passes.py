"""The parallel whole-array passes of commit 4b430c8 against slow, obvious references.

Every kernel is run with 1 and 2 numba threads and the results must agree bit for bit
(row min/max, the finite/abs-max check, the codes copy, encode's codes and sums, the
symmetry test, rho's row sums, the Hebbian divide and the affine recall).  Arrays are
small except where a chunk border (ENCODE_CHUNK = 65536 elements) or the 2**20-element
switch to the parallel paths needs more.
"""

import contextlib
import math
import re
import warnings
from fractions import Fraction

import numba
import numpy as np
import pytest
import reference as ref
from numba import njit

from hopfield import HopfieldNetwork, QuantizedHopfieldNetwork, flip_noise, random_patterns
from hopfield import _kernels as K
from hopfield.network import _offdiag_correlation, _seed_per_cue
from quantization import QuantizedTensor, _core, _encode, _validate

CH = _encode.ENCODE_CHUNK
BIG = 1 << 20  # the size from which check_weights and _own_copy switch to the parallel kernels
THREADS = [k for k in (1, 2) if k <= numba.config.NUMBA_NUM_THREADS]
F32_MAX = float(np.finfo(np.float32).max)


# ------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def n_threads(k):
    old = numba.get_num_threads()
    numba.set_num_threads(k)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def per_thread_count(fn):
    """fn() under each thread count; returns the list of results."""
    out = []
    for k in THREADS:
        with n_threads(k):
            out.append(fn())
    return out


def alternating(items, every=2, most=None):
    """(item, context) pairs: every ``every``-th item (at most ``most`` of them) runs with the
    most threads, the rest with one (a parallel launch can cost milliseconds on a loaded
    machine)."""
    for idx, item in enumerate(items):
        multi = idx % every == 0 and (most is None or idx // every < most)
        yield item, n_threads(THREADS[-1] if multi else THREADS[0])


def same_bits(a, b):
    """Arrays (or scalars) identical bit for bit, dtype and shape included."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_thread_independent(results):
    for r in results[1:]:
        if isinstance(r, tuple):
            assert len(r) == len(results[0])
            for x, y in zip(results[0], r):
                assert same_bits(x, y)
        else:
            assert same_bits(results[0], r)


def chunk_borders(n):
    """The first and last element of every chunk of ENCODE_CHUNK elements in 0..n-1."""
    pos = set()
    for c0 in range(0, n, CH):
        pos.update((c0, min(n, c0 + CH) - 1))
    return sorted(pos)


def test_threads_are_restored_and_two_are_available():
    old = numba.get_num_threads()
    per_thread_count(lambda: None)
    assert numba.get_num_threads() == old
    if len(THREADS) < 2:
        pytest.skip("numba has one thread here: the thread-count comparisons below compare one run")


# ------------------------------------------------------------------- 1. row_range


def _row_range(X):
    lo, hi = np.full(X.shape[0], np.nan), np.full(X.shape[0], np.nan)
    _encode.row_range(X, lo, hi)
    return lo, hi


def _check_row_range(X):
    res = per_thread_count(lambda: _row_range(X))
    assert_thread_independent(res)
    lo, hi = res[0]
    np.testing.assert_array_equal(lo, X.min(axis=1).astype(np.float64))
    np.testing.assert_array_equal(hi, X.max(axis=1).astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, CH - 1, CH, CH + 1, 2 * CH + 3, 200003])
def test_row_range_equals_numpy(dtype, n):
    rng = np.random.default_rng(n)
    R = 2 if n > 100000 else 3
    X = rng.standard_normal((R, n)).astype(dtype)
    _check_row_range(X)
    # a unique new extreme at every chunk border of one row, the other rows untouched
    cases = [(r, p, v) for r in range(R) for p in chunk_borders(n) for v in (dtype(1e3), dtype(-1e3))]
    for (r, p, v), threads in alternating(cases):
        old = X[r, p]
        X[r, p] = v
        with threads:
            lo, hi = _row_range(X)
        np.testing.assert_array_equal(lo, X.min(axis=1))
        np.testing.assert_array_equal(hi, X.max(axis=1))
        assert (lo[r] if v < 0 else hi[r]) == float(v), (r, p, v)
        X[r, p] = old
    _check_row_range(X)


def test_row_range_many_short_rows_and_extreme_values():
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64):
        fi = np.finfo(dtype)
        X = rng.standard_normal((37, 5)).astype(dtype)
        X[3] = [fi.max, -fi.max, fi.tiny, -fi.smallest_subnormal, 0.0]
        X[4] = fi.smallest_subnormal * np.array([3, -1, 2, -7, 5])
        X[5] = 1.5  # a constant row
        X[6] = [np.inf, 1.0, -np.inf, 0.0, 2.0]  # infinities are ordinary values for min/max
        _check_row_range(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_range_negative_zero(dtype):
    n = CH + 5
    X = np.zeros((4, n), dtype)
    X[0, ::2] = -0.0
    X[1, :] = -0.0
    X[2, CH:] = -0.0
    X[3, : CH] = -0.0
    X[3, 7] = 2.0
    lo, hi = _row_range(X)
    assert_thread_independent(per_thread_count(lambda: _row_range(X)))
    # equal as values (-0.0 == 0.0); the sign of a zero min/max of a row mixing -0.0 and +0.0
    # is not compared: it differs from numpy's (e.g. row 2: numpy -0.0, the kernel +0.0)
    np.testing.assert_array_equal(lo, X.min(axis=1))
    np.testing.assert_array_equal(hi, X.max(axis=1))
    # a row of -0.0 only: no +0.0 can appear
    assert np.signbit(lo[1]) and np.signbit(hi[1])
    assert hi[3] == 2.0 and lo[3] == 0.0


# ----------------------------------------------------------------- 2. finite_absmax


def _finite_absmax_ref(x):
    finite = np.isfinite(x)
    peak = float(np.abs(x[finite]).max()) if finite.any() else 0.0
    return int((~finite).sum()), peak


def _check_finite_absmax(x, threads=None):
    if threads is None:
        res = per_thread_count(lambda: _encode.finite_absmax(x))
        assert_thread_independent([(np.int64(a), np.float64(b)) for a, b in res])
    else:
        with threads:
            res = [_encode.finite_absmax(x)]
    n_bad, peak = res[0]
    ref_bad, ref_peak = _finite_absmax_ref(x)
    assert int(n_bad) == ref_bad
    assert float(peak) == ref_peak and not np.signbit(peak)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, CH - 1, CH, CH + 1, 3 * CH + 17])
def test_finite_absmax_equals_numpy(dtype, n):
    rng = np.random.default_rng(n + 1)
    x = rng.standard_normal(n).astype(dtype)
    _check_finite_absmax(x)
    borders = chunk_borders(n)
    # one non-finite value at a time, at every chunk border
    for (p, v), threads in alternating([(p, v) for p in borders for v in (np.nan, np.inf, -np.inf)]):
        old = x[p]
        x[p] = v
        _check_finite_absmax(x, threads)
        x[p] = old
    # all at once, with the peak |x| at a border (negative, so abs matters)
    x[borders[::2]] = np.nan
    x[borders[1::2]] = np.inf
    x[-1] = -np.inf
    if n > 3:
        x[borders[len(borders) // 2]] = dtype(-50.0)
    _check_finite_absmax(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_absmax_all_nonfinite_chunk_and_extremes(dtype):
    rng = np.random.default_rng(5)
    n = 3 * CH + 1
    x = rng.standard_normal(n).astype(dtype)
    x[CH:2 * CH] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype), CH)  # one chunk of non-finite values
    _check_finite_absmax(x)
    x[-1] = -np.finfo(dtype).max  # the largest finite magnitude is finite, in the last chunk alone
    _check_finite_absmax(x)
    assert _encode.finite_absmax(x)[1] == float(np.finfo(dtype).max)
    # nothing finite at all: (n, 0.0)
    for v in (np.nan, np.inf, -np.inf):
        y = np.full(CH + 2, v, dtype)
        _check_finite_absmax(y)
        assert _encode.finite_absmax(y)[0] == CH + 2
    z = np.full(CH + 3, -0.0, dtype)
    _check_finite_absmax(z)
    w = np.full(7, np.finfo(dtype).smallest_subnormal, dtype)
    w[3] = -3 * w[3]
    _check_finite_absmax(w)


# ---------------------------------------------------------- 3. copy_flat, _own_copy


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, CH - 1, CH + 1, 2 * CH + 1])
def test_copy_flat_copies_every_element(dtype, n):
    rng = np.random.default_rng(n)
    src = (rng.integers(0, 256, n) if dtype == np.uint8 else rng.standard_normal(n)).astype(dtype)
    if dtype != np.uint8:
        src[:: max(1, n // 5)] = -0.0
        src[-1] = np.nan

    def run():
        dst = np.full(n, 77, dtype)
        _encode.copy_flat(src, dst)
        return dst

    res = per_thread_count(run)
    assert_thread_independent(res)
    assert same_bits(res[0], src)


def _own_copy_cases():
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (5, 7)).astype(np.uint8)
    big = rng.integers(0, 256, (1031, 1019)).astype(np.uint8)  # 1,050,589 > 2**20 elements
    assert big.size > BIG
    wide = rng.integers(0, 256, (1031, 2041)).astype(np.uint8)
    bigf = rng.standard_normal((1031, 1019)).astype(np.float32)
    ro = big.copy()
    ro.flags.writeable = False
    return {
        "small": small,
        "small-T": small.T,
        "small-strided": small[::2, 1::3],
        "big": big,
        "big-T": big.T,
        "big-strided": wide[:, ::2],  # 1031 x 1021
        "big-float32": bigf,
        "big-float32-T": bigf.T,
        "big-readonly": ro,
        "exactly-2**20": rng.integers(0, 256, (1024, 1024)).astype(np.uint8),
        "3d-big-T": rng.integers(0, 256, (64, 129, 131)).astype(np.uint8).transpose(2, 0, 1),
    }


@pytest.mark.parametrize("name", list(_own_copy_cases()))
def test_own_copy_is_an_independent_c_contiguous_copy(name):
    a = _own_copy_cases()[name]
    if "big" in name or "2**20" in name:
        assert a.size >= BIG
    before = a.copy()
    res = per_thread_count(lambda: _core._own_copy(a))
    assert_thread_independent(res)
    for c in res:
        assert c.shape == a.shape and c.dtype == a.dtype
        assert c.flags.c_contiguous and c.flags.writeable and c.flags.owndata
        assert not np.shares_memory(c, a)
        np.testing.assert_array_equal(c, a)
    c = res[0]
    flat = c.reshape(-1)  # a view: c is C-contiguous
    for k in (0, c.size // 2, c.size - 1):
        flat[k] = flat[k] + 1 if c.dtype != np.uint8 else flat[k] ^ 1
    np.testing.assert_array_equal(a, before)  # the original is untouched
    if a.flags.writeable:
        d = res[-1].copy()
        a[...] = 0
        np.testing.assert_array_equal(res[-1], d)  # and the copy does not follow the original


def test_quantized_tensor_owns_big_codes():
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 256, (1031, 1019)).astype(np.uint8)
    qt = QuantizedTensor(codes, np.array([[0.01, 127.0, 0.0]], np.float32), 8, "uniform", codes.shape)
    assert not np.shares_memory(qt.codes, codes) and qt.codes.flags.c_contiguous
    np.testing.assert_array_equal(qt.codes, codes)
    codes[0, 0] ^= 1
    assert qt.codes[0, 0] != codes[0, 0]


# ------------------------------------------------------------------------ 4. encode


def encode_ref(X, center, scale, levels):
    """Per row: y = (float64(x) - center) * (1 / scale), code = number of thresholds (the
    midpoints of consecutive levels) <= y, i.e. searchsorted side='right'; stats exact sums."""
    R, n = X.shape
    codes = np.empty((R, n), np.int64)
    stats = np.empty((R, 5))
    terms = np.empty((R, 5))
    for r in range(R):
        y = (X[r].astype(np.float64) - center[r]) * (1.0 / scale[r])
        L = np.asarray(levels[r], np.float64)
        thr = 0.5 * (L[:-1] + L[1:])
        k = np.searchsorted(thr, y, side="right")
        codes[r] = k
        q = L[k]
        cols = (y, y * y, q, q * q, y * q)
        stats[r] = [math.fsum(c) for c in cols]
        terms[r] = [math.fsum(np.abs(c)) for c in cols]
    return codes, stats, terms


def _encode_run(X, center, scale, levels):
    codes = np.full(X.shape, 255, np.uint8)
    stats = np.full((X.shape[0], 5), np.nan)
    _encode.encode(X, center, scale, levels, codes, stats)
    return codes, stats


def _check_encode(X, center, scale, levels):
    res = per_thread_count(lambda: _encode_run(X, center, scale, levels))
    assert_thread_independent(res)
    codes, stats = res[0]
    c_ref, s_ref, terms = encode_ref(X, center, scale, levels)
    np.testing.assert_array_equal(codes.astype(np.int64), c_ref)
    # rtol 1e-12, plus 1e-12 of the sum of |terms| where a row sum cancels to near 0
    assert np.all(np.abs(stats - s_ref) <= 1e-12 * (np.abs(s_ref) + terms)), (stats, s_ref)
    return codes


def _levels(rng, K, R, dup=False):
    L = np.sort(rng.standard_normal((R, K)), axis=1)
    if dup:  # repeated levels: runs of equal values in every row
        idx = np.sort(rng.integers(0, K, (R, K)), axis=1)
        L = np.take_along_axis(L, idx, axis=1)
    return L


@pytest.mark.parametrize("K_", [2, 4, 16, 32, 256])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_equals_slow_reference(K_, dtype):
    rng = np.random.default_rng(K_)
    for n in (1, 7, CH, CH + 1):
        R = 3
        X = (rng.standard_normal((R, n)) * 1.3 + 0.2).astype(dtype)
        center = rng.standard_normal(R) * 0.1
        scale = rng.uniform(0.5, 2.0, R)
        for dup in (False, True):
            _check_encode(X, center, scale, _levels(rng, K_, R, dup))
    # every level equal (a constant row's grid), and levels far outside the data
    X = rng.standard_normal((2, 1001)).astype(dtype)
    L = np.array([np.full(K_, 0.25), np.linspace(5.0, 6.0, K_)])
    X[0, :50] = 0.25
    codes = _check_encode(X, np.zeros(2), np.ones(2), L)
    assert set(np.unique(codes[0])) == {0, K_ - 1} and not codes[1].any()


@pytest.mark.parametrize("K_", [2, 4, 16, 32, 256])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_ties_go_up(K_, dtype):
    """Values exactly on a threshold (y = (x - 8.25) * 0.5 is exact on a dyadic grid) get
    the upper level; the next float below gets the lower one (x stays away from 0, so that
    x - center is exact for its neighbours too)."""
    rng = np.random.default_rng(100 + K_)
    R = 2
    L = np.sort(rng.integers(-128, 129, (R, K_)), axis=1) / 64.0  # dyadic, with duplicates at K = 256
    L[1, K_ // 2:] = L[1, K_ // 2]  # a run of equal levels
    L[1] = np.sort(L[1])
    thr = 0.5 * (L[:, :-1] + L[:, 1:])
    center, scale = np.array([8.25, 8.25]), np.array([2.0, 2.0])
    x_on = thr * 2.0 + 8.25  # y == threshold exactly
    assert np.all((x_on.astype(dtype).astype(np.float64) - 8.25) * 0.5 == thr)
    below = np.nextafter(x_on.astype(dtype), dtype(-np.inf))
    above = np.nextafter(x_on.astype(dtype), dtype(np.inf))
    X = np.concatenate([x_on.astype(dtype), below, above, (L * 2.0 + 8.25).astype(dtype)], axis=1)
    X = np.ascontiguousarray(X)
    codes = _check_encode(X, center, scale, L).astype(np.int64)
    m = K_ - 1
    for r in range(R):
        for j in range(m):
            # on the threshold: the number of thresholds <= it, so above the first equal one
            assert codes[r, j] == np.count_nonzero(thr[r] <= thr[r, j]) > j
            assert codes[r, m + j] == np.count_nonzero(thr[r] < thr[r, j]) <= j


def test_encode_ties_at_chunk_borders():
    """A long row whose chunk borders hold exact threshold values."""
    L = np.array([[-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0]])
    thr = 0.5 * (L[0, :-1] + L[0, 1:])
    n = 2 * CH + 3
    rng = np.random.default_rng(9)
    X = rng.uniform(-1.5, 2.5, (1, n)).astype(np.float32)
    for i, p in enumerate(chunk_borders(n)):
        X[0, p] = thr[i % thr.size]
    codes = _check_encode(X, np.zeros(1), np.ones(1), L)
    for i, p in enumerate(chunk_borders(n)):
        assert codes[0, p] == (i % thr.size) + 1


# ------------------------------------------------------------------ 5. check_weights


def _nonfinite_message(a, name="w"):
    finite = np.isfinite(a)
    n_nan = int(np.isnan(a).sum())
    n_inf = int((~finite).sum()) - n_nan
    first = tuple(int(i) for i in np.unravel_index(np.flatnonzero(~finite.reshape(-1))[0], a.shape))
    return (f"{name} contains {n_nan} NaN and {n_inf} inf values (first at index {first}); "
            "quantization needs finite weights.")


def _message(fn):
    with pytest.raises(ValueError) as e:
        fn()
    return str(e.value)


def _serial_message(a, monkeypatch):
    """check_weights' message with the parallel pass switched off (numpy's serial path)."""
    with monkeypatch.context() as m:
        m.setattr(_validate, "_PARALLEL_CHECK_SIZE", 1 << 62)
        return _message(lambda: _validate.check_weights(a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4"])
def test_check_weights_big_nonfinite_messages(dtype, monkeypatch):
    rng = np.random.default_rng(21)
    a = rng.standard_normal((1031, 1019)).astype(dtype)  # odd shape, > 2**20 elements
    assert a.size > BIG
    np.testing.assert_array_equal(_validate.check_weights(a), a)
    flat_positions = [0, CH - 1, CH, 5 * CH + 17, a.size - 1, int(rng.integers(a.size))]
    for p in flat_positions:
        for v in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b.reshape(-1)[p] = v
            msg = _message(lambda: _validate.check_weights(b))
            assert msg == _nonfinite_message(b) == _serial_message(b, monkeypatch)
    b = a.copy()
    idx = rng.choice(a.size, 40, replace=False)
    b.reshape(-1)[idx[:13]] = np.nan
    b.reshape(-1)[idx[13:30]] = np.inf
    b.reshape(-1)[idx[30:]] = -np.inf
    msg = _message(lambda: _validate.check_weights(b, "W"))
    assert msg == _nonfinite_message(b, "W")
    assert re.search(r"W contains 13 NaN and 27 inf values \(first at index \(\d+, \d+\)\)", msg)
    # the same counts message as a small array with the same defects
    s = np.ones((3, 5), dtype)
    s.reshape(-1)[:13] = np.nan
    s.reshape(-1)[13] = np.inf
    s.reshape(-1)[14] = -np.inf
    small = _message(lambda: _validate.check_weights(s, "W"))
    assert small.startswith("W contains 13 NaN and 2 inf values (first at index (0, 0))")


def test_check_weights_big_float64_beyond_float32_range(monkeypatch):
    rng = np.random.default_rng(22)
    a = rng.standard_normal((1031, 1019))
    for p in (0, CH, a.size - 1):
        for v in (3.5e38, -3.5e38, 1e300, -np.finfo(np.float64).max):
            b = a.copy()
            b.reshape(-1)[p] = v
            msg = _message(lambda: _validate.check_weights(b))
            assert "beyond the float32 range" in msg and f"{abs(v):.3g}" in msg
            assert msg == _serial_message(b, monkeypatch)
    b = a.copy()
    b.reshape(-1)[CH - 1] = -F32_MAX  # exactly the largest float32: accepted
    b.reshape(-1)[CH] = np.nextafter(F32_MAX, 0)
    assert _validate.check_weights(b) is b
    c = a.astype(np.float32)
    c.reshape(-1)[7] = F32_MAX
    assert _validate.check_weights(c) is c


def test_check_weights_big_noncontiguous_and_float16(monkeypatch):
    rng = np.random.default_rng(23)
    wide = rng.standard_normal((1031, 2041)).astype(np.float32)
    a = wide[:, ::2]  # not contiguous, 1,052,661 elements
    assert a.size > BIG and not a.flags.c_contiguous
    out = _validate.check_weights(a)
    np.testing.assert_array_equal(out, a)
    t = wide.T  # Fortran order
    np.testing.assert_array_equal(_validate.check_weights(t), t)
    wide[700, 1000] = np.nan
    wide[3, 4] = -np.inf
    msg = _message(lambda: _validate.check_weights(a))
    assert msg == _nonfinite_message(a) == _serial_message(a, monkeypatch)
    assert "1 NaN and 1 inf values (first at index (3, 2))" in msg
    h = rng.standard_normal((1031, 1019)).astype(np.float16)
    out = _validate.check_weights(h)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, h)
    h.reshape(-1)[CH] = np.inf
    h.reshape(-1)[-1] = np.nan
    msg = _message(lambda: _validate.check_weights(h))
    assert msg == _nonfinite_message(h) == _serial_message(h, monkeypatch)


# -------------------------------------------------------------- 6. is_symmetric


def _random_symmetric(rng, N, dtype):
    if dtype == np.uint8:
        A = rng.integers(0, 256, (N, N)).astype(np.uint8)
    else:
        A = rng.standard_normal((N, N)).astype(dtype)
    A = np.triu(A)
    A = A + np.triu(A, 1).T
    return np.ascontiguousarray(A.astype(dtype))


def _bump(A, i, j):
    A[i, j] = A[i, j] + 1 if A.dtype == np.uint8 and A[i, j] < 255 else (0 if A.dtype == np.uint8 else A[i, j] + 0.5)


@pytest.mark.parametrize("N", [1, 2, 63, 64, 65, 130, 200])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_is_symmetric_equals_array_equal(N, dtype):
    rng = np.random.default_rng(N)
    A = _random_symmetric(rng, N, dtype)
    assert np.array_equal(A, A.T)
    assert per_thread_count(lambda: bool(K.is_symmetric(A))) == [True] * len(THREADS)
    # one element changed: every position for N <= 65, else every pair of positions next to a
    # tile edge (64) plus random ones; the diagonal never matters.  30 of them with 2 threads.
    if N <= 65:
        positions = [(i, j) for i in range(N) for j in range(N)]
    else:
        edges = sorted({0, N - 1} | {v for b in range(0, N, 64) for v in (b - 1, b, b + 1, b + 63) if 0 <= v < N})
        positions = [(i, j) for i in edges for j in edges]
        positions += [tuple(int(v) for v in rng.integers(0, N, 2)) for _ in range(100)]
    order = rng.permutation(len(positions))
    for k, threads in alternating(order, every=1, most=30):
        i, j = positions[k]
        old = A[i, j]
        _bump(A, i, j)
        expect = bool(np.array_equal(A, A.T))
        assert expect == (i == j)
        with threads:
            assert bool(K.is_symmetric(A)) == expect, (i, j)
        A[i, j] = old
    assert K.is_symmetric(A)


def test_is_symmetric_random_and_signed_zero():
    rng = np.random.default_rng(1)
    for N in (2, 3, 64, 65, 129):
        B = rng.integers(0, 2, (N, N)).astype(np.uint8)  # mostly not symmetric
        assert bool(K.is_symmetric(B)) == np.array_equal(B, B.T)
        B = _random_symmetric(rng, N, np.float64)
        B[-1, 0] = -0.0
        B[0, -1] = 0.0  # -0.0 == 0.0, as np.array_equal says
        assert np.array_equal(B, B.T) and K.is_symmetric(B)
    # where the package uses it: HopfieldNetwork.__init__ and QuantizedHopfieldNetwork
    W = _random_symmetric(rng, 67, np.float32)
    np.fill_diagonal(W, 0)
    assert HopfieldNetwork(W).symmetric
    W[66, 3] += 1
    with pytest.warns(UserWarning, match="not symmetric"):
        assert not HopfieldNetwork(W).symmetric
    codes = _random_symmetric(rng, 67, np.uint8) & 3
    book = np.array([[-1.0, -0.25, 0.5, 2.0]], np.float32)
    assert QuantizedHopfieldNetwork(QuantizedTensor(codes, book, 2, "lloyd", codes.shape)).symmetric
    codes[3, 66] ^= 1
    qt = QuantizedTensor(codes, book, 2, "lloyd", codes.shape)
    assert not QuantizedHopfieldNetwork(qt).symmetric
    with pytest.raises(ValueError, match="symmetric codes"):
        QuantizedHopfieldNetwork(qt, symmetric=True)


# ------------------------------------------------------------ 7. offdiag_sums, rho


def _offdiag_ref(W, Q):
    """float64 row sums with j != i, exactly rounded."""
    N = W.shape[0]
    out = np.empty((N, 5))
    terms = np.empty((N, 5))
    for i in range(N):
        a = np.delete(W[i].astype(np.float64), i)
        b = np.delete(Q[i].astype(np.float64), i)
        cols = (a, b, a * a, b * b, a * b)
        out[i] = [math.fsum(c) for c in cols]
        terms[i] = [math.fsum(np.abs(c)) for c in cols]
    return out, terms


def _codebook_values(codes, codebook, group, rows_per_row):
    """W[i, j] = codebook[i * rows_per_row + j // group, codes[i, j]], by a loop."""
    N = codes.shape[0]
    Q = np.empty((N, N), np.float32)
    for i in range(N):
        for j in range(N):
            Q[i, j] = codebook[i * rows_per_row + j // group, codes[i, j]]
    return Q


def _check_offdiag(W, w, Q):
    N = W.shape[0]

    def run():
        out = np.full((N, 5), np.nan)
        K.offdiag_sums(W, w, out)
        return out

    res = per_thread_count(run)
    assert_thread_independent(res)
    exp, terms = _offdiag_ref(W, Q)
    assert np.all(np.abs(res[0] - exp) <= 1e-12 * (np.abs(exp) + terms)), (res[0], exp)


@pytest.mark.parametrize("N", [2, 3, 17, 64, 131])
def test_offdiag_sums_float_and_codes(N):
    rng = np.random.default_rng(N)
    W = rng.standard_normal((N, N)).astype(np.float32)  # neither symmetric nor zero on the diagonal
    W[np.arange(N), np.arange(N)] = 1e6  # a diagonal that must be left out
    _check_offdiag(W, K.TableWeights(W, np.zeros((1, 1), np.float32), N, 0, False), W)
    for bits in (1, 3, 8):
        codes = rng.integers(0, 1 << bits, (N, N)).astype(np.uint8)
        for group, rpr in [(N, 0), (N, 1), (5, -(-N // 5)), (max(1, N // 2), -(-N // max(1, N // 2)))]:
            n_rows = 1 if rpr == 0 else N * rpr
            book = np.sort(rng.standard_normal((n_rows, 1 << bits)), axis=1).astype(np.float32)
            book[:, -1] += 1e3 * (rng.random(n_rows) < 0.3)  # some large codebook values
            Q = _codebook_values(codes, book, group, rpr)
            _check_offdiag(W, K.TableWeights(codes, book, group, rpr, False), Q)


def _qvalues(qnet):
    qt = qnet.quantized
    return _codebook_values(qt.codes, qt.codebook, qnet._group, qnet._rows_per_row)


@pytest.mark.parametrize("N,P", [(31, 4), (67, 9)])
def test_offdiag_correlation_equals_corrcoef(N, P):
    net = HopfieldNetwork.from_patterns(random_patterns(P, N, seed=N))
    off = ~np.eye(N, dtype=bool)
    for bits, scheme, axis in [(1, "uniform", None), (3, "uniform", None), (8, "uniform", None),
                               (2, "exponential", None), (4, "exponential", 0), (3, "lloyd", None),
                               (5, "lloyd", 0), (3, "uniform", 0)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qnet = net.quantize(bits, scheme, axis=axis)
        Q = _qvalues(qnet)
        tile = qnet._tile(0, N)
        np.testing.assert_array_equal(tile[off], Q[off].astype(np.float64))
        expect = float(np.corrcoef(net.weights[off].astype(np.float64), Q[off].astype(np.float64))[0, 1])
        got = per_thread_count(lambda: _offdiag_correlation(net, qnet))
        assert_thread_independent([np.float64(g) for g in got])
        assert got[0] == pytest.approx(expect, rel=1e-9), (bits, scheme, axis)
        assert qnet.rho == got[0]
        QW = _offdiag_ref(net.weights, Q)[0].sum(axis=0)
        rows = np.empty((N, 5))
        K.offdiag_sums(net.weights, qnet._table_weights(), rows)
        np.testing.assert_allclose(rows.sum(axis=0), QW, rtol=1e-12)


# ------------------------------------------------------------------ 8. finish_hebb


@pytest.mark.parametrize("N", [1, 2, 7, 65, 131])
def test_finish_hebb_equals_numpy_division(N):
    rng = np.random.default_rng(N)
    W0 = (rng.standard_normal((N, N)) * 10.0 ** rng.integers(-40, 38, (N, N))).astype(np.float32)
    W0.reshape(-1)[:: 3] = np.round(W0.reshape(-1)[:: 3])
    W0[0, -1] = -0.0
    W0[-1, 0] = np.finfo(np.float32).smallest_subnormal
    for n in (1, 3, 7, N, 1000003, 2**24 + 1):
        expect = W0 / np.float32(n)
        np.fill_diagonal(expect, 0.0)

        def run():
            W = W0.copy()
            K.finish_hebb(W, n)
            return W

        res = per_thread_count(run)
        assert_thread_independent(res)
        assert same_bits(res[0], expect), n


def _hebb_ref(X):
    Xi = X.astype(np.int64)
    k = Xi.T @ Xi  # exact integers
    W = k.astype(np.float32) / np.float32(X.shape[1])
    np.fill_diagonal(W, 0.0)
    return W


@pytest.mark.parametrize("P,N", [(1, 2), (3, 7), (5, 33), (17, 65), (31, 129), (7, 201), (101, 3)])
def test_from_patterns_hebb_bit_for_bit(P, N):
    X = random_patterns(P, N, seed=P * 1000 + N)
    res = per_thread_count(lambda: HopfieldNetwork.from_patterns(X).weights.copy())
    assert_thread_independent(res)
    assert same_bits(res[0], _hebb_ref(X))
    if N <= 65:
        np.testing.assert_allclose(res[0], ref.hebb(X), rtol=0, atol=1e-6)


# ------------------------------------------------------------- 9. affine flip / recall


@njit
def _flip_once(w, sums, total, i, d):
    K.flip(K.AffineField(sums, total, w), i, d)


@pytest.mark.parametrize("N", [1, 2, 7, 33, 257])
def test_affine_flip_adds_twice_the_codes(N):
    rng = np.random.default_rng(N)
    codes = rng.integers(0, 256, (N, N)).astype(np.uint8)
    codes[0, :] = 255
    w = K.AffineWeights(codes, 0.5, 127.5, 0.0)
    for i in {0, N // 2, N - 1}:
        for d in (2, -2):
            sums = rng.integers(-10**6, 10**6, N).astype(np.int32)
            total = np.array([int(rng.integers(-N, N + 1))], np.int64)
            exp = sums.astype(np.int64) + d * codes[i].astype(np.int64)
            exp[i] = sums[i]
            s0, t0 = sums.copy(), int(total[0])
            _flip_once(w, sums, total, i, np.int64(d))
            np.testing.assert_array_equal(sums, exp.astype(np.int32))
            assert sums.dtype == np.int32 and total[0] == t0 + d
            _flip_once(w, sums, total, i, np.int64(-d))  # and back
            np.testing.assert_array_equal(sums, s0)
            assert total[0] == t0


def _exact_field(W, s, i):
    """ref.field on exact (Fraction) weights: the exact local field, no rounding."""
    return sum(W[i, j] * int(s[j]) for j in range(len(s)) if j != i)


def _exact_affine_weights(q):
    """W_ij = scale (c_ij - z) + offset as Fractions of the float64 parameters the kernel uses
    (q.effective_weights() rounds each to float64, which can move an exact tie off 0)."""
    sc, z, off = (Fraction(v) for v in (q._scale, q._z, q._off))
    table = [sc * (k - z) + off for k in range(1 << q.bits)]
    N = q.n_neurons
    W = np.empty((N, N), object)
    for i in range(N):
        for j in range(N):
            W[i, j] = Fraction(0) if i == j else table[int(q.quantized.codes[i, j])]
    return W


@pytest.mark.parametrize("N,P", [(7, 2), (19, 3), (33, 5)])
def test_affine_recall_equals_reference(N, P, monkeypatch):
    """Uniform whole-matrix codebooks (affine mode, int32 flips) recall as the reference
    dynamics of tests/reference.py.  Without preserve_mean the offset is 0 and
    effective_weights() is exact in float64; with it the reference reads exact Fraction
    weights and fields."""
    X = random_patterns(P, N, seed=N)
    net = HopfieldNetwork.from_patterns(X)
    cues = np.concatenate([flip_noise(X, 0.3, seed=1), random_patterns(2, N, seed=N + 1)])
    seeds = _seed_per_cue(7, len(cues))
    for bits in range(1, 9):
        for pm in (False, True):
            q = net.quantize(bits, "uniform", preserve_mean=pm)
            assert q._affine, bits
            if pm:
                W = _exact_affine_weights(q)
                monkeypatch.setattr(ref, "field", _exact_field)
                monkeypatch.setattr(ref, "energy", lambda W, s: 0.0)  # not compared here; slow on Fractions
            else:
                assert q._off == 0.0
                W = q.effective_weights()
                monkeypatch.setattr(ref, "field", _REF_FIELD)
                monkeypatch.setattr(ref, "energy", _REF_ENERGY)
            res = per_thread_count(lambda: q.recall(cues, seed=7))
            assert_thread_independent([(r.states, r.sweeps, r.converged) for r in res])
            sync = q.recall(cues, dynamics="sync")
            for c in range(len(cues)):
                msg = f"bits={bits} preserve_mean={pm} cue={c}"
                s, sweeps, conv, _ = ref.async_recall(W, cues[c], seeds[c], 100)
                np.testing.assert_array_equal(res[0].states[c], s, err_msg=msg)
                assert (res[0].sweeps[c], res[0].converged[c]) == (sweeps, conv), msg
                s, sweeps, conv = ref.sync_recall(W, cues[c], 100)
                np.testing.assert_array_equal(sync.states[c], s, err_msg="sync " + msg)
                assert (sync.sweeps[c], sync.converged[c]) == (sweeps, conv), "sync " + msg


_REF_FIELD = ref.field
_REF_ENERGY = ref.energy
