"""Roundtrip properties of the rANS codec: lossless for every dtype, shape, alphabet,
distribution, lane count, chunking, kernel and context layout; byte-identical to the
pure-Python reference; near the order-0 floor."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import _rans, rans
from pgolf_pack import _reference as ref
from pgolf_pack.errors import InputError

DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
KERNELS = rans.kernels()


@st.composite
def integer_arrays(draw, max_size=3000, max_span=65536):
    """Arrays with random dtype, shape, span (1..65536 values) and skew."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    info = np.iinfo(dtype)
    span = draw(st.integers(1, min(max_span, int(info.max) - int(info.min) + 1)))
    lo = draw(st.integers(int(info.min), int(info.max) - span + 1))
    size = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    shape_kind = draw(st.sampled_from(["flat", "2d", "3d", "scalar"]))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["uniform", "laplace", "one-hot", "two"]))
    if kind == "uniform":
        idx = rng.integers(0, span, size)
    elif kind == "laplace":
        idx = np.clip(np.round(np.abs(rng.laplace(0, max(span / 20, 0.3), size))), 0, span - 1).astype(np.int64)
    elif kind == "one-hot":
        idx = np.full(size, rng.integers(0, span))
    else:
        idx = np.where(rng.random(size) < 0.999, 0, span - 1)
    values = (np.array(idx, dtype=object) + lo) if size else np.array([], dtype=object)
    arr = np.array(values.tolist(), dtype=dtype) if size else np.zeros(0, dtype=dtype)
    if shape_kind == "scalar" and size:
        return arr[:1].reshape(())
    if shape_kind == "2d" and size:
        cols = draw(st.integers(1, max(1, size)))
        arr = arr[: (size // cols) * cols].reshape(-1, cols)
    if shape_kind == "3d" and size >= 8:
        arr = arr[: (size // 4) * 4].reshape(2, 2, -1)
    return arr


def assert_same(a, b):
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


@given(integer_arrays(), st.sampled_from([None, 4, 8, 16, 32, 64]), st.sampled_from([None, 1, 7, 64, 1000]))
def test_roundtrip_any_integers(arr, lanes, chunk_size):
    data = rans.encode(arr, lanes=lanes, chunk_size=chunk_size)
    for kernel in KERNELS:
        assert_same(arr, rans.decode(data, kernel=kernel, threads=1))
    assert_same(arr, rans.decode(data, threads=2))


@given(integer_arrays(max_size=1500, max_span=300), st.sampled_from([4, 8, 32]), st.sampled_from([None, 100]))
def test_native_matches_reference_bytes(arr, lanes, chunk_size):
    precision = None if arr.size < 400 else 12
    native = rans.encode(arr, lanes=lanes, chunk_size=chunk_size, precision=precision)
    assert native == ref.encode(arr, lanes=lanes, chunk_size=chunk_size, precision=precision)
    assert_same(arr, ref.decode(native))


@given(
    st.integers(1, 40),
    st.integers(1, 50),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
    st.sampled_from([4, 16, 32]),
)
def test_contexts_roundtrip_and_match_reference(rows, cols, tables, seed, lanes):
    rng = np.random.default_rng(seed)
    ctx = rng.integers(0, tables, rows)
    # each table gets its own distribution, so per-row tables actually differ
    scale = np.array([0.3, 1.0, 4.0, 9.0, 0.1, 2.0])[ctx][:, None]
    arr = np.round(rng.normal(0, 1, (rows, cols)) * scale).astype(np.int16)
    data = rans.encode(arr, contexts=ctx, context_run=cols, lanes=lanes, precision=11)
    assert data == ref.encode(arr, contexts=ctx, context_run=cols, lanes=lanes, precision=11)
    for kernel in KERNELS:
        assert_same(arr, rans.decode(data, contexts=ctx, kernel=kernel))
    info = rans.frame_info(data)
    assert len(info.tables) == int(ctx.max()) + 1 and info.context_run == cols


def test_per_symbol_contexts_with_unused_table():
    rng = np.random.default_rng(0)
    ctx = rng.choice([0, 2], size=200_000).astype(np.uint16)  # table 1 stays empty
    arr = np.where(ctx == 0, rng.integers(-2, 3, ctx.size), rng.integers(-60, 60, ctx.size)).astype(np.int8)
    data = rans.encode(arr, contexts=ctx)
    info = rans.frame_info(data)
    assert len(info.tables) == 3 and not info.tables[1].frequencies.any()
    for kernel in KERNELS:
        assert_same(arr, rans.decode(data, contexts=ctx, kernel=kernel))
    # contexts are worth something: separate tables beat one shared table
    assert len(data) < 0.9 * len(rans.encode(arr))


@pytest.mark.parametrize("n", [0, 1, 2, 31, 32, 33, 4095, 65536, 2_000_003])
@pytest.mark.parametrize("dtype", [np.int8, np.int32])
def test_sizes(n, dtype):
    rng = np.random.default_rng(n)
    arr = np.clip(np.round(rng.normal(0, 3, n)), -8, 7).astype(dtype)
    data = rans.encode(arr, chunk_size=600_000)
    for kernel in KERNELS:
        assert_same(arr, rans.decode(data, kernel=kernel))


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_of_each_dtype(dtype):
    info = np.iinfo(dtype)
    span = min(65535, int(info.max) - int(info.min))
    for base in (int(info.min), int(info.max) - span):
        arr = np.array([base, base + span, base + 7, base + span], dtype=dtype)
        assert_same(arr, rans.decode(rans.encode(arr)))


def test_full_16bit_alphabet_at_precision_16():
    arr = np.arange(65536, dtype=np.uint16).repeat(2)
    np.random.default_rng(0).shuffle(arr)
    data = rans.encode(arr)
    assert rans.frame_info(data).precision == 16
    for kernel in KERNELS:
        assert_same(arr, rans.decode(data, kernel=kernel))


def test_one_symbol_alphabet_costs_no_payload():
    arr = np.full((300, 70), -3, dtype=np.int8)
    data = rans.encode(arr)
    info = rans.frame_info(data)
    assert info.payload_bytes == 0 and info.chunks == 0 and len(data) < 30
    assert_same(arr, rans.decode(data))


def test_explicit_tables_shared_and_offsets_aligned():
    rng = np.random.default_rng(3)
    a = rng.integers(-2, 3, 5000).astype(np.int8)
    wide = rans.FrequencyTable.from_counts(np.ones(11), offset=-5, precision=12)
    narrow = rans.FrequencyTable.from_symbols(a, precision=12)
    data = rans.encode(a, tables=wide)
    assert rans.frame_info(data).tables[0].offset == -5
    assert_same(a, rans.decode(data))
    ctx = np.arange(50) % 2
    data2 = rans.encode(a, contexts=ctx, context_run=100, tables=[narrow, wide])
    assert_same(a, rans.decode(data2, contexts=ctx))


def test_value_absent_from_explicit_table_is_an_error():
    table = rans.FrequencyTable.from_counts([5, 0, 5], offset=0, precision=8)
    with pytest.raises(InputError, match=r"value 1 at position 2 has frequency 0"):
        rans.encode(np.array([0, 2, 1, 0], dtype=np.int32), tables=table)
    with pytest.raises(InputError, match=r"value 7 at position 0"):
        rans.encode(np.array([7], dtype=np.int32), tables=table)


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError, match="integer array"):
        rans.encode(np.zeros(3, dtype=np.float32))
    with pytest.raises(InputError, match="more than the 65536"):
        rans.encode(np.array([0, 70000], dtype=np.int32))
    with pytest.raises(InputError, match="lanes must be"):
        rans.encode(np.zeros(3, dtype=np.int8), lanes=5)
    with pytest.raises(InputError, match="expected 3 context ids"):
        rans.encode(np.zeros(30, dtype=np.int8), contexts=np.zeros(2, dtype=np.int64), context_run=10)
    with pytest.raises(InputError, match="precision"):
        rans.encode(np.arange(300, dtype=np.int16), precision=8)
    with pytest.raises(InputError, match="kernel"):
        rans.decode(rans.encode(np.zeros(3, dtype=np.int8)), kernel="neon")


def test_deterministic_bytes():
    arr = np.random.default_rng(5).integers(-30, 30, 300_000).astype(np.int8)
    assert rans.encode(arr, threads=1) == rans.encode(arr, threads=2) == rans.encode(arr)


@pytest.mark.parametrize(
    "name,make",
    [
        ("pentanary", lambda r, n: np.clip(np.round(r.normal(0, 0.8, n)), -2, 2)),
        ("int4-laplace", lambda r, n: np.clip(np.round(r.laplace(0, 2, n)), -8, 7)),
        ("int6-gauss", lambda r, n: np.clip(np.round(r.normal(0, 8, n)), -32, 31)),
        ("int8-gauss", lambda r, n: np.clip(np.round(r.normal(0, 30, n)), -127, 127)),
        ("flat-int5", lambda r, n: r.integers(-16, 16, n)),
        ("skewed", lambda r, n: np.where(r.random(n) < 0.97, 0, r.integers(-3, 4, n))),
    ],
)
def test_payload_near_cost_under_stored_table(name, make):
    """Coded size <= cost under the stored table + 0.05% + a few bytes per lane and chunk."""
    n = 1_000_000
    arr = make(np.random.default_rng(7), n).astype(np.int8)
    data = rans.encode(arr)
    info = rans.frame_info(data)
    offset, (counts,) = _rans.histogram(arr)
    bound_bits = info.tables[0].cost_bits(counts)
    slack = 4 * info.lanes * info.chunks
    assert info.payload_bytes * 8 <= bound_bits * 1.0005 + 8 * slack, name
    # and the table's own normalisation loss is tiny next to the order-0 floor
    assert bound_bits <= rans.order0_entropy_bits(arr) * 1.0005 + 64
    # tables stay below 0.1% of the payload for a million weights
    assert info.table_bytes <= 0.001 * info.payload_bytes


def test_version_agrees_with_native_module():
    import pgolf_pack

    assert _rans.__version__ == pgolf_pack.__version__
