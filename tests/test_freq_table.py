"""Frequency tables: optimal normalisation (checked by brute force), invariants, the KL loss
against naive rounding, deterministic and compact serialisation, strict parsing."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import _rans, rans
from pgolf_pack import _reference as ref
from pgolf_pack.errors import CorruptDataError, InputError


def brute_force_best(counts, precision):
    M = 1 << precision
    present = [i for i, c in enumerate(counts) if c]
    best = math.inf
    for combo in itertools.product(range(1, M + 1), repeat=len(present)):
        if sum(combo) != M:
            continue
        best = min(best, sum(counts[i] * (precision - math.log2(f)) for i, f in zip(present, combo)))
    return best


@given(st.lists(st.integers(0, 50), min_size=1, max_size=4).filter(any), st.integers(2, 5))
def test_normalisation_is_optimal(counts, precision):
    if sum(1 for c in counts if c) > 1 << precision:
        return
    f = _rans.normalize_counts(np.array(counts, dtype=np.uint64), precision)
    assert int(f.sum()) == 1 << precision
    assert all(fi >= 1 for fi, c in zip(f, counts) if c) and all(fi == 0 for fi, c in zip(f, counts) if not c)
    got = _rans.cost_bits(np.array(counts, dtype=np.uint64), f, precision)
    assert got <= brute_force_best(counts, precision) + 1e-9


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=300).filter(any), st.integers(9, 16))
def test_normalisation_matches_reference_and_beats_rounding(counts, precision):
    c = np.array(counts, dtype=np.uint64)
    f = _rans.normalize_counts(c, precision)
    assert f.tolist() == ref.normalize_counts(counts, precision)
    # naive: round, clamp to 1, dump the remainder on the largest symbol (if that stays >= 1)
    M, total = 1 << precision, int(c.sum())
    naive = [max(1, round(x * M / total)) if x else 0 for x in counts]
    big = int(np.argmax(counts))
    naive[big] += M - sum(naive)
    if naive[big] >= 1:
        assert _rans.cost_bits(c, f, precision) <= _rans.cost_bits(c, np.array(naive, dtype=np.uint32), precision) + 1e-6


def test_kl_loss_is_small_on_realistic_weights():
    rng = np.random.default_rng(0)
    x = np.clip(np.round(rng.normal(0, 8, 1_000_000)), -32, 31).astype(np.int8)
    table = rans.FrequencyTable.from_symbols(x, precision=14)
    _, (counts,) = _rans.histogram(x)
    kl = table.cost_bits(counts) - rans.order0_entropy_bits(x)
    assert 0 <= kl < 1e-4 * rans.order0_entropy_bits(x)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=400).filter(any), st.integers(9, 16))
def test_serialisation_roundtrip(counts, precision):
    table = rans.FrequencyTable.from_counts(counts, precision=precision)
    data = table.to_bytes()
    back = rans.FrequencyTable.from_bytes(data, table.alphabet, precision)
    np.testing.assert_array_equal(back.frequencies, table.frequencies)
    assert table.serialized_size == len(data)
    expected = bytearray()
    ref.write_table(expected, table.frequencies.tolist())
    assert data == bytes(expected)


def test_pentanary_table_is_a_few_bytes():  # header 2 B + ~9 B of Rice codes
    assert rans.FrequencyTable.from_counts([10, 200, 900, 210, 8], offset=-2, precision=12).serialized_size <= 12


@pytest.mark.parametrize(
    "data,alphabet,message",
    [
        (b"", 4, "truncated"),
        (b"\x00\x05", 4, "table range \\[0, 5\\) exceeds"),
        (ref.table_fields(0, 2, [16]), 4, "outside \\[0, M\\)"),
        (ref.table_fields(0, 2, [8]) + b"\x01", 4, "1 bytes follow the table"),
        (ref.table_fields(0, 3, [0, 3]), 4, "first frequency is 0"),
        (ref.table_fields(0, 4, [5, 5, 6]), 4, "reach M"),
    ],
)
def test_parse_rejects_bad_tables(data, alphabet, message):
    with pytest.raises(CorruptDataError, match=message):
        rans.FrequencyTable.from_bytes(data, alphabet, 4)


def test_table_constructor_validates():
    with pytest.raises(InputError, match="sum to 15"):
        rans.FrequencyTable(np.array([7, 8]), precision=4)
    with pytest.raises(InputError, match="precision"):
        rans.FrequencyTable(np.array([1 << 17]), precision=17)
    with pytest.raises(InputError, match="zero counts"):
        rans.FrequencyTable.from_counts([0, 0])
    with pytest.raises(InputError, match="3 distinct symbols need precision >= 2"):
        rans.FrequencyTable.from_counts([1, 1, 1], precision=1)


def test_choose_precision_matches_reference():
    rng = np.random.default_rng(2)
    for scale in (0.5, 3, 30, 300):
        x = np.round(rng.normal(0, scale, 50_000)).astype(np.int32)
        _, (counts,) = _rans.histogram(x)
        assert _rans.choose_precision([counts]) == ref.choose_precision([counts.tolist()])
