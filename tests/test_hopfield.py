"""The Hopfield simulator against slow references, and what it must show."""

import warnings

import numpy as np
import pytest
import reference as ref

from hopfield import (
    HopfieldNetwork,
    QuantizedHopfieldNetwork,
    classify_states,
    flip_noise,
    overlaps,
    random_patterns,
    target_overlaps,
)
from hopfield import _kernels as K
from hopfield.network import _seed_per_cue
from quantization import SCHEMES, QuantizedTensor, quantize


def test_splitmix_and_shuffle_match_reference():
    st = np.uint64(0)
    rs = 0
    for _ in range(5):
        st, z = K.splitmix64(np.uint64(st))  # a plain int would be typed int64
        rs, rz = ref.splitmix64(rs)
        assert int(z) == rz
    # first output of SplitMix64 seeded with 0 (Vigna's reference implementation)
    assert ref.splitmix64(0)[1] == 0xE220A8397B1DCDAF
    orders = K.sweep_orders(12345, 3, 17)
    state, order = 12345, list(range(17))
    for s in range(3):
        state, order = ref.shuffle(state, order)
        assert list(orders[s]) == order
        assert sorted(order) == list(range(17))


@pytest.mark.parametrize("P,N", [(1, 2), (3, 7), (5, 20)])
def test_hebb_and_storkey_match_textbook_loops(P, N):
    X = random_patterns(P, N, seed=P * N)
    np.testing.assert_allclose(HopfieldNetwork.from_patterns(X).weights, ref.hebb(X), rtol=0, atol=1e-7)
    np.testing.assert_allclose(HopfieldNetwork.from_patterns(X, "storkey").weights, ref.storkey(X), rtol=1e-5,
                               atol=1e-6)


def test_projection_rule_makes_patterns_fixed_points_even_when_correlated():
    rng = np.random.default_rng(0)
    base = random_patterns(1, 100, seed=1)[0]
    X = np.array([np.where(rng.random(100) < 0.15, -base, base) for _ in range(20)], np.int8)  # highly correlated
    proj = HopfieldNetwork.from_patterns(X, "projection")
    assert np.all(proj.recall(X, max_sweeps=1).converged)
    np.testing.assert_array_equal(proj.recall(X).states, X)
    hebb = HopfieldNetwork.from_patterns(X, "hebb")
    assert not np.all(hebb.recall(X).states == X)


def _networks(N, P, seed):
    """A float Hebbian net, its quantized versions (whole-matrix, symmetric) for every
    scheme and several bit widths, and a per-row (asymmetric) one."""
    X = random_patterns(P, N, seed=seed)
    net = HopfieldNetwork.from_patterns(X)
    nets = [("float", net, net.weights.astype(np.float64))]
    for bits in range(1, 9):
        for scheme in SCHEMES:
            if scheme == "pow2" and bits > 5:
                # levels c 2^-j down to j = 127: float64 field sums are no longer exact,
                # so near-ties may resolve differently from the exactly rounded reference
                # (see test_extreme_codebooks_end_in_fixed_points)
                continue
            q = net.quantize(bits, scheme)
            nets.append((f"{scheme}{bits}", q, q.effective_weights()))
    q = net.quantize(3, "uniform", preserve_mean=True)  # affine mode with an offset
    nets.append(("uniform3-offset", q, q.effective_weights()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = net.quantize(3, "exponential", axis=0, preserve_mean=True)
    nets.append(("per-row", q, q.effective_weights()))
    return X, nets


@pytest.mark.parametrize("N,P", [(9, 2), (31, 5), (48, 12)])
@pytest.mark.parametrize("dynamics", ["async", "async-fixed"])
def test_async_kernel_equals_reference_and_energy_never_rises(N, P, dynamics):
    X, nets = _networks(N, P, seed=N)
    cues = flip_noise(X, 0.3, seed=1)
    seeds = _seed_per_cue(7, len(cues))
    for name, net, W in nets:
        res = net.recall(cues, dynamics=dynamics, seed=7)
        for c in range(len(cues)):
            s, sweeps, conv, energies = ref.async_recall(W, cues[c], seeds[c], 100, dynamics == "async")
            np.testing.assert_array_equal(res.states[c], s, err_msg=name)
            assert res.sweeps[c] == sweeps and res.converged[c] == conv, name
            if name != "per-row":  # symmetric W: the energy never rises, checked at every flip
                assert all(b <= a + 1e-12 * max(1.0, abs(a)) for a, b in zip(energies, energies[1:])), name
            assert net.energy(res.states[c]) == pytest.approx(ref.energy(W, s), abs=1e-9)


def test_extreme_codebooks_end_in_fixed_points():
    """A codebook of 256 levels +-c 2^-j, j = 0..127 (pow2's grid at 8 bits, spanning
    2^-127): every converged state is a fixed point of the exact fields, up to near-ties
    below float64 resolution."""
    X = random_patterns(12, 48, seed=48)
    w = HopfieldNetwork.from_patterns(X).weights
    c = float(np.abs(w).max())
    mags = c * 2.0 ** -np.arange(128)
    levels = np.concatenate([-mags, mags[::-1]]).astype(np.float32)  # ascending
    codes = np.abs(w[..., None] - levels).argmin(-1).astype(np.uint8)  # nearest level
    q = QuantizedHopfieldNetwork(QuantizedTensor(codes, levels[None], 8, "lloyd", w.shape))
    assert q.symmetric
    W = q.effective_weights()
    res = q.recall(flip_noise(X, 0.3, seed=1), seed=7)
    assert res.converged.all()
    for s in res.states:
        for i in range(48):
            h = ref.field(W, s, i)
            assert np.sign(h) in (s[i], 0) or abs(h) <= 1e-12 * np.abs(W[i]).sum()


@pytest.mark.parametrize("N,P", [(10, 2), (40, 8)])
def test_sync_and_glauber_equal_reference(N, P):
    X, nets = _networks(N, P, seed=N + 1)
    cues = flip_noise(X, 0.3, seed=2)
    seeds = _seed_per_cue(3, len(cues))
    for name, net, W in nets[::4]:
        res = net.recall(cues, dynamics="sync")
        for c in range(len(cues)):
            s, sweeps, conv = ref.sync_recall(W, cues[c], 100)
            np.testing.assert_array_equal(res.states[c], s, err_msg=name)
            assert (res.sweeps[c], res.converged[c]) == (sweeps, conv), name
        res = net.recall(cues, dynamics="glauber", temperature=0.05, max_sweeps=6, seed=3)
        for c in range(len(cues)):
            s, sweeps, conv, _ = ref.async_recall(W, cues[c], seeds[c], 6, True, temperature=0.05)
            np.testing.assert_array_equal(res.states[c], s, err_msg=name)
            assert (res.sweeps[c], res.converged[c]) == (sweeps, conv), name


def test_one_bit_ties_are_exact():
    """Even N-1 with 1-bit weights gives exact zero fields; ties keep the state."""
    X = random_patterns(4, 11, seed=0)
    q = HopfieldNetwork.from_patterns(X).quantize(1)
    W = q.effective_weights()
    cues = random_patterns(30, 11, seed=1)
    H = q.fields(cues)
    assert np.any(H == 0.0)
    res = q.recall(cues, seed=4)
    seeds = _seed_per_cue(4, 30)
    for c in range(30):
        np.testing.assert_array_equal(res.states[c], ref.async_recall(W, cues[c], seeds[c], 100)[0])


def test_fields_and_energy_match_direct_computation():
    X = random_patterns(6, 50, seed=3)
    net = HopfieldNetwork.from_patterns(X)
    for n in (net, net.quantize(4, "lloyd"), net.quantize(3, "uniform", preserve_mean=True)):
        W = n.weights.astype(np.float64) if n is net else n.effective_weights()
        S = random_patterns(4, 50, seed=5)
        np.testing.assert_allclose(n.fields(S), S @ W.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(n.energy(S), -0.5 * np.einsum("ij,ij->i", S @ W.T, S), rtol=1e-12)
        assert n.fields(S[0]).shape == (50,) and isinstance(n.energy(S[0]), float)


def test_uniform_networks_run_on_exact_affine_weights():
    X = random_patterns(10, 64, seed=0)
    net = HopfieldNetwork.from_patterns(X)
    for pm in (False, True):
        q = net.quantize(3, "uniform", preserve_mean=pm)
        assert q._affine
        np.testing.assert_allclose(q.effective_weights(), q.dequantized_weights(), rtol=1e-6, atol=1e-9)
    assert not net.quantize(3, "lloyd")._affine


def test_quantized_dynamics_read_the_codes():
    """A quantized network recalls as the weights its codes and codebook stand for (built
    here by a loop over the codes, not by the package) and not as the float weights."""
    N = 64
    X = random_patterns(10, N, seed=0)
    net = HopfieldNetwork.from_patterns(X)
    cues = flip_noise(X[:5], 0.3, seed=1)
    seeds = _seed_per_cue(5, len(cues))
    float_states = net.recall(cues, seed=5).states
    for bits, scheme in ((1, "uniform"), (2, "exponential")):  # affine and table modes
        q = net.quantize(bits, scheme)
        codes, book = q.quantized.codes, q.quantized.codebook
        assert codes.dtype == np.uint8 and codes.nbytes == N * N and book.shape == (1, 2**bits)
        W = np.array([[0.0 if i == j else float(book[0, codes[i, j]]) for j in range(N)] for i in range(N)])
        res = q.recall(cues, seed=5)
        for c in range(len(cues)):
            np.testing.assert_array_equal(res.states[c], ref.async_recall(W, cues[c], seeds[c], 100)[0])
        assert not np.array_equal(res.states, float_states), scheme


def test_hebb_capacity_n2000():
    """At alpha = 0.05 at least 99% of patterns are fixed points with overlap >= 0.98;
    at alpha = 0.25 (beyond AGS 0.138) most are not."""
    N = 2000
    X = random_patterns(100, N, seed=11)
    res = HopfieldNetwork.from_patterns(X).recall(X, seed=1)
    m = target_overlaps(res.states, X)
    assert np.mean(m >= 0.98) >= 0.99
    X = random_patterns(500, N, seed=12)
    res = HopfieldNetwork.from_patterns(X).recall(X, seed=1)
    assert np.mean(target_overlaps(res.states, X) >= 0.98) < 0.5


@pytest.mark.slow
def test_recall_quality_rises_with_bits_and_4_bits_near_float():
    N, P = 1000, 100  # alpha = 0.1
    X = random_patterns(P, N, seed=21)
    net = HopfieldNetwork.from_patterns(X)
    cues = flip_noise(X, 0.1, seed=22)
    m_float = target_overlaps(net.recall(cues, seed=23).states, X).mean()
    rhos, ms = [], []
    for bits in (1, 2, 3, 4, 6):
        q = net.quantize(bits, "uniform")
        rhos.append(q.rho)
        ms.append(target_overlaps(q.recall(cues, seed=23).states, X).mean())
    assert all(b > a for a, b in zip(rhos, rhos[1:]))
    # theory: quantization acts as static synaptic noise of variance 1/rho^2 - 1, so more
    # bits (higher rho) can only help; allow finite-N fluctuation of a few cues
    assert ms[0] < ms[-1] and min(ms[2:]) >= ms[0]
    assert ms[3] >= m_float - 0.03


def test_overlaps_and_classification():
    X = random_patterns(5, 400, seed=1)
    m = overlaps(X, X)
    np.testing.assert_allclose(np.diag(m), 1.0)
    mix = np.sign(X[0].astype(int) + X[1] + X[2]).astype(np.int8)
    states = np.stack([X[1], -X[2], mix, random_patterns(1, 400, seed=9)[0]])
    assert list(classify_states(states, X)) == ["retrieved", "reversed", "mixture", "spurious"]
    np.testing.assert_allclose(target_overlaps(X, -X), -1.0)


def test_digits_patterns():
    pytest.importorskip("sklearn")
    from hopfield import digits_patterns

    X, y = digits_patterns(seed=0)
    assert X.shape == (10, 64) and sorted(y) == list(range(10))
    net = HopfieldNetwork.from_patterns(X, "projection")
    np.testing.assert_array_equal(net.recall(X).states, X)


# ------------------------------------------------------------------- bad input


def test_bad_patterns():
    with pytest.raises(ValueError, match=r"only \+1 and -1, found 0 at index \(0, 1\)"):
        HopfieldNetwork.from_patterns(np.array([[1, 0, 1]]))
    with pytest.raises(ValueError, match="needs N >= 2"):
        HopfieldNetwork.from_patterns(np.array([[1]]))
    with pytest.raises(ValueError, match="holds no pattern"):
        HopfieldNetwork.from_patterns(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="shape \\(n_patterns, n_neurons\\)"):
        HopfieldNetwork.from_patterns(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="rule='oja' is not supported"):
        HopfieldNetwork.from_patterns(np.ones((2, 4)), rule="oja")
    with pytest.raises(ValueError, match="n_patterns must be an int >= 1"):
        random_patterns(0, 10)
    with pytest.raises(ValueError, match="n_neurons must be an int >= 2"):
        random_patterns(3, 1)


def test_bad_cues_and_options():
    net = HopfieldNetwork.from_patterns(random_patterns(2, 10, seed=0))
    with pytest.raises(ValueError, match="cues have length 9, but the network has 10 neurons"):
        net.recall(np.ones(9))
    with pytest.raises(ValueError, match="dynamics='parallel' is not supported"):
        net.recall(np.ones(10), dynamics="parallel")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        net.recall(np.ones(10), dynamics="glauber")
    with pytest.raises(ValueError, match="applies only to dynamics='glauber'"):
        net.recall(np.ones(10), temperature=0.5)
    with pytest.raises(ValueError, match="max_sweeps must be an int >= 1"):
        net.recall(np.ones(10), max_sweeps=0)
    with pytest.raises(ValueError, match="bits=9 is out of range"):
        net.quantize(9)
    with pytest.raises(ValueError, match="axis=1"):
        net.quantize(4, axis=1)


def test_bad_weights():
    W = np.zeros((3, 3))
    W[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        HopfieldNetwork(W)
    with pytest.raises(ValueError, match="square"):
        HopfieldNetwork(np.zeros((3, 4)))
    with pytest.warns(UserWarning, match="not symmetric"):
        HopfieldNetwork(np.triu(np.ones((3, 3)), 1))
    with pytest.warns(UserWarning, match="self-couplings"):
        net = HopfieldNetwork(np.eye(3) + 0.0)
    assert np.all(net.weights == 0)
    with pytest.raises(TypeError, match="QuantizedTensor"):
        QuantizedHopfieldNetwork(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"shape \(N, N\)"):
        QuantizedHopfieldNetwork(quantize(np.ones((3, 4)), 2))


def test_per_row_codebooks_warn():
    net = HopfieldNetwork.from_patterns(random_patterns(3, 20, seed=0))
    with pytest.warns(UserWarning, match="break the symmetry"):
        q = net.quantize(2, axis=0)
    assert not q.symmetric
