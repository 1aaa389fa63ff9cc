"""Entropies and priced context models against independent computations: per-symbol code
lengths summed in plain Python, known distributions (uniform, a function of the row, a Markov
chain), and the codec's own frames."""

import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import rans
from pgolf_pack.analysis import entropy
from pgolf_pack.analysis.contexts import priced_bytes


def reference_conditional_bits(symbols, contexts) -> float:
    """Σ_i -log2 P(x_i | c_i) with P estimated from the data, one symbol at a time."""
    pairs = Counter(zip(contexts, symbols))
    per_context = Counter(contexts)
    return sum(-math.log2(pairs[c, x] / per_context[c]) for c, x in zip(contexts, symbols))


def reference_order0_bits(symbols) -> float:
    return reference_conditional_bits(list(symbols), [0] * len(symbols))


@given(st.lists(st.integers(-40, 40), min_size=1, max_size=300),
       st.lists(st.integers(0, 6), min_size=300, max_size=300))
def test_entropies_match_per_symbol_code_lengths(values, ctx):
    x = np.array(values)
    c = np.array(ctx[: len(values)])
    assert entropy.order0_bits(x) == pytest.approx(reference_order0_bits(values), abs=1e-6)
    assert entropy.conditional_bits(x, c) == pytest.approx(reference_conditional_bits(values, list(c)), abs=1e-6)


@given(st.integers(1, 12), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_row_and_previous_symbol_contexts_match_the_reference(rows, cols, seed):
    x = np.random.default_rng(seed).integers(-3, 4, size=(rows, cols))
    flat = x.ravel().tolist()
    row_ids = [i // cols for i in range(x.size)]
    prev = [("start",) if i % cols == 0 else flat[i - 1] for i in range(x.size)]
    assert entropy.conditional_bits(x, entropy.row_contexts(x.shape)) == pytest.approx(
        reference_conditional_bits(flat, row_ids), abs=1e-6)
    ctx, num = entropy.previous_symbol_contexts(x)
    assert num == int(x.max() - x.min()) + 2
    assert entropy.conditional_bits(x, ctx) == pytest.approx(reference_conditional_bits(flat, prev), abs=1e-6)


@given(st.integers(1, 10), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_one_pass_joint_counts_equal_the_general_ones(rows, cols, seed):
    x = np.random.default_rng(seed).integers(-5, 3, size=(rows, cols)).astype(np.int8)
    lo, rj = entropy.row_joint_counts(x)
    assert (lo, rj.tolist()) == tuple_of(entropy.joint_counts(x, entropy.row_contexts(x.shape), rows))
    ctx, num = entropy.previous_symbol_contexts(x)
    lo, pj = entropy.previous_joint_counts(x)
    assert (lo, pj.tolist()) == tuple_of(entropy.joint_counts(x, ctx, num))
    # and against a hand count
    k = pj.shape[1]
    hand = defaultdict(int)
    for r in x.tolist():
        for j, v in enumerate(r):
            hand[(k if j == 0 else r[j - 1] - lo), v - lo] += 1
    assert {key: v for key, v in np.ndenumerate(pj) if v} == dict(hand)


def tuple_of(lo_counts):
    lo, counts = lo_counts
    return lo, counts.tolist()


def test_sparse_path_equals_dense_path(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.integers(-300, 300, size=20_000)
    c = rng.integers(0, 50, size=20_000)
    dense = entropy.conditional_bits(x, c), entropy.order0_bits(x)
    monkeypatch.setattr(entropy, "DENSE_LIMIT", 64)
    assert (entropy.conditional_bits(x, c), entropy.order0_bits(x)) == pytest.approx(dense, rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 5, 63, 255])
def test_iid_uniform_has_log2_k_bits(k):
    n = 400_000
    x = np.random.default_rng(k).integers(0, k, size=(400, n // 400))
    bias = (k - 1) / (2 * n * math.log(2))  # the plug-in estimate's expected shortfall, per symbol
    assert entropy.order0_bits(x) / n == pytest.approx(math.log2(k) - bias, abs=2e-3)
    # a context that carries no information saves nothing beyond the plug-in bias, which grows
    # with the number of contexts: about (k - 1) / (2 ln 2) bits per context
    ctx, num = entropy.previous_symbol_contexts(x)
    context_bias = num * (k - 1) / (2 * n * math.log(2))
    assert entropy.conditional_bits(x, ctx) / n == pytest.approx(math.log2(k) - context_bias,
                                                                 abs=2e-3 + 0.2 * context_bias)


def test_a_function_of_the_row_has_no_entropy_given_the_row():
    rows = np.arange(300)
    x = np.repeat(((rows * 7919) % 13)[:, None], 50, axis=1)  # every row constant, rows differ
    assert entropy.order0_bits(x) > 0.9 * x.size * math.log2(13) * 0.9
    assert entropy.conditional_bits(x, entropy.row_contexts(x.shape)) == pytest.approx(0.0, abs=1e-9)
    _, joint = entropy.row_joint_counts(x)
    assert sum(entropy.counts_bits(r) for r in joint) == pytest.approx(0.0, abs=1e-9)


def test_a_markov_chain_has_its_entropy_rate_given_the_previous_symbol():
    p = np.array([[0.80, 0.15, 0.05], [0.10, 0.60, 0.30], [0.25, 0.25, 0.50]])
    # stationary distribution: the left eigenvector for eigenvalue 1
    w, v = np.linalg.eig(p.T)
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    rate = -sum(pi[i] * p[i, j] * math.log2(p[i, j]) for i in range(3) for j in range(3))
    stationary = -sum(q * math.log2(q) for q in pi)
    rng = np.random.default_rng(11)
    rows, cols = 50, 8000
    u = rng.random((rows, cols))
    cum = p.cumsum(axis=1)
    x = np.zeros((rows, cols), dtype=np.int64)
    x[:, 0] = rng.choice(3, size=rows, p=pi)
    for j in range(1, cols):
        x[:, j] = (u[:, j, None] > cum[x[:, j - 1]]).sum(axis=1)
    n = x.size
    ctx, _ = entropy.previous_symbol_contexts(x)
    assert entropy.conditional_bits(x, ctx) / n == pytest.approx(rate, abs=0.01)
    assert entropy.order0_bits(x) / n == pytest.approx(stationary, abs=0.01)
    assert rate < stationary - 0.2  # the context is worth something here


def test_scale_buckets_are_equal_count_and_ordered_by_scale():
    scales = np.random.default_rng(5).lognormal(size=1000)
    ids = entropy.scale_buckets(scales, 8)
    assert np.bincount(ids).tolist() == [125] * 8
    order = np.argsort(scales)
    assert (np.diff(ids[order]) >= 0).all()
    assert entropy.scale_buckets(scales[:3], 8).tolist() == np.argsort(np.argsort(scales[:3])).tolist()


def test_delta_symbols():
    a = np.array([[1, 2], [3, -4]], dtype=np.int8)
    b = np.array([[-128, 2], [0, 127]], dtype=np.int8)
    assert entropy.delta_symbols(a, b).tolist() == [[129, 0], [3, -131]]  # no int8 wraparound
    with pytest.raises(ValueError, match="shapes differ"):
        entropy.delta_symbols(a, b[:1])


def test_non_integers_are_refused():
    with pytest.raises(ValueError, match="expected integers"):
        entropy.order0_bits(np.ones(3))


@pytest.mark.parametrize("spread", [0.7, 3.0, 20.0])
def test_priced_single_table_is_what_the_codec_writes(spread):
    x = np.clip(np.round(np.random.default_rng(2).standard_t(5, 300_000) * spread), -127, 127).astype(np.int8)
    _, counts = np.unique(x, return_counts=True)
    full = np.bincount(x.astype(np.int64) - x.min())
    priced = priced_bytes(full)
    info = rans.frame_info(rans.encode(x))
    assert priced["table_bytes"] == info.table_bytes
    assert priced["precision"] == info.precision
    # the payload pays the rANS step's rounding and the lanes' flushed states on top
    assert priced["payload_bytes"] <= info.payload_bytes <= priced["payload_bytes"] * 1.002 + 4 * info.lanes
    assert priced["payload_bytes"] >= entropy.order0_bits(x) / 8 - 1e-6


def test_priced_contexts_count_one_table_per_used_context():
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 50, size=(6, 9))
    counts[2] = 0  # an unused context costs nothing
    p = priced_bytes(counts, choose=False)
    assert p["tables"] == 5 and p["precision"] == 8
    assert p["payload_bytes"] >= sum(entropy.counts_bits(r) for r in counts) / 8 - 1e-9
    assert priced_bytes(np.zeros((3, 4)))["total_bytes"] == 0
