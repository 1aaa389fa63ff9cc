"""Crafted frames with valid CRCs whose headers ask for far more work than their bytes pay for
(issue #12): each is decoded in a child process under an address-space cap, so a regression
fails the test instead of eating the machine, and each must cost memory in proportion to its
bytes plus its declared output, or be refused with CorruptDataError."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import _rans, rans
from pgolf_pack import _reference as ref
from pgolf_pack.errors import CorruptDataError, InputError

from test_rans_corrupt import header, table, varint, with_crc

# Headroom over the child's address space after imports. A bomb of the kind fixed here asked
# for 1-2 GB; a legitimate decode of these frames needs a few MB.
CAP_BYTES = 192 << 20


def run_capped(frame: bytes, calls: str, contexts=None, cap=CAP_BYTES) -> dict:
    """Run `calls` (statements over `frame`, `ctx`, `rans`, `ref`) in a child under `cap` more bytes
    of address space; returns {"ok": bool, "error": str, "rss_kb": int} from the child."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("the address-space cap reads the child's size from Linux /proc")
    code = textwrap.dedent(
        """
        import json, resource, sys
        import numpy as np
        from pgolf_pack import rans
        from pgolf_pack import _reference as ref
        from pgolf_pack.errors import CorruptDataError
        frame = bytes.fromhex(sys.argv[1])
        ctx = None if sys.argv[2] == "-" else np.array(json.loads(sys.argv[2]), dtype=np.uint16)
        with open("/proc/self/statm") as f:
            vsize = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (vsize + int(sys.argv[3]), resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))  # a hang guard, not a timing check
        result = {"ok": True, "error": ""}
        try:
        %s
        except CorruptDataError as e:
            result = {"ok": False, "error": str(e)}
        result["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(result))
        """
    ) % textwrap.indent(textwrap.dedent(calls), "    ")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ctx_arg = "-" if contexts is None else json.dumps([int(c) for c in contexts])
    proc = subprocess.run([sys.executable, "-c", code, frame.hex(), ctx_arg, str(cap)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"child failed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def empty_table_bomb(tables=4096, alphabet=65536) -> bytes:
    """An empty tensor whose frame declares `tables` empty tables over a 65,536-symbol
    alphabet: 2 bytes per table, K x uint32 per table in a dense decoder (1 GB here)."""
    body = header(shape=(0,), alphabet=alphabet, precision=1, tables=tables, run=1)
    return with_crc(body + b"\x00\x00" * tables + b"\x04" + varint(1))


def single_symbol_bomb(tables=4096, n=4096) -> bytes:
    """`n` symbols, one per context, each table a single symbol near the top of a 65,536-symbol
    alphabet: a zero-cost frame (no payload) of ~4 bytes per table."""
    body = header(shape=(n,), alphabet=65536, precision=12, tables=tables, run=1)
    body += b"".join(table(65535 - (t % 7), 1, []) for t in range(tables))
    return with_crc(body + b"\x04" + varint(1))


def test_empty_table_bomb_costs_its_bytes_not_tables_times_alphabet():
    frame = empty_table_bomb()
    assert len(frame) < 8300
    out = run_capped(frame, """
        a = rans.decode(frame, threads=1)
        assert a.shape == (0,) and a.dtype == np.int8
        info = rans.frame_info(frame)
        assert len(info.tables) == 4096 and info.alphabet == 65536
        assert not info.tables[4095].frequencies.any()
        assert ref.decode(frame).shape == (0,)  # the reference keeps tables as ranges too
    """)
    assert out["ok"], out["error"]


def test_single_symbol_tables_bomb_decodes_in_proportion():
    frame = single_symbol_bomb()
    ctx = np.arange(4096) % 4096
    out = run_capped(frame, """
        a = rans.decode(frame, contexts=ctx, threads=1)
        assert a.shape == (4096,)
        assert a[0] == -1 and a[6] == -7  # indices 65535 and 65529 wrap to int8
        assert len(rans.frame_info(frame).tables) == 4096
        assert (ref.decode(frame, contexts=ctx) == a).all()
    """, contexts=ctx)
    assert out["ok"], out["error"]


def test_slot_table_bomb_is_bounded():
    """Many two-symbol tables at a high precision code a few symbols: the decoder must not
    expand every table into 2^precision slots (4096 x 4096 x 6 bytes here)."""
    tables, n = 4096, 8
    # the encoder writes this frame for 8 zeros under 4,096 explicit tables: it is valid
    arr = np.zeros(n, dtype=np.int8)
    half = rans.FrequencyTable(np.array([2048, 2048]), 12)
    frame = rans.encode(arr, contexts=np.arange(n), tables=[half] * tables, lanes=4)
    crafted = header(dtype=1, shape=(n,), alphabet=2, precision=12, tables=tables, run=1) + table(0, 2, [2048]) * tables
    assert frame.startswith(crafted) and len(frame) < 40_000
    full_ctx = np.arange(n)
    # slot tables for this frame would take 4096 * 4096 * 6 bytes = 96 MiB; the cap is a third
    out = run_capped(frame, """
        for kernel in ("auto", "search"):
            a = rans.decode(frame, contexts=ctx, threads=1, kernel=kernel)
            assert a.shape == (8,) and not a.any()
    """, contexts=full_ctx, cap=32 << 20)
    assert out["ok"], out["error"]
    # a forced slot kernel still builds them, within the max_table_entries limit (2^24)
    np.testing.assert_array_equal(rans.decode(frame, contexts=full_ctx, kernel="scalar"), arr)


@pytest.mark.parametrize("dtype,shape", [(1, (0, 2**63)), (1, (0, 2**64 - 1)), (2, (2**63, 0)), (1, (0, 2**62, 2)),
                                         (7, (0, 2**61)), (3, (2**62, 0, 1))])
def test_dims_numpy_cannot_hold_are_corrupt(dtype, shape):
    """numpy refuses shapes whose nonzero dimensions times the item size pass 2^63 - 1."""
    frame = with_crc(header(dtype=dtype, shape=shape) + table(0, 1, []) + b"\x04" + varint(1))
    for call in (rans.decode, rans.frame_info, ref.decode):
        with pytest.raises(CorruptDataError, match="dimension|shape"):
            call(frame)


@pytest.mark.parametrize("dtype,shape", [(np.int8, (0, 2**63 - 1)), (np.int64, (2**60 - 1, 0)), (np.int16, (0, 2**40, 3))])
def test_large_zero_sized_shape_within_numpy_decodes(dtype, shape):
    frame = rans.encode(np.zeros(shape, dtype=dtype))
    for call in (rans.decode, ref.decode):
        a = call(frame)
        assert a.shape == shape and a.dtype == dtype
    assert rans.frame_info(frame).shape == shape


def test_empty_only_table_without_contexts_is_corrupt():
    """The native decoder used to fill zeros and the reference hit StopIteration."""
    frame = with_crc(header(shape=(10,)) + varint(0) + varint(0) + b"\x04" + varint(1))
    for call in (rans.decode, rans.frame_info, ref.decode):
        with pytest.raises(CorruptDataError, match="empty"):
            call(frame)
    # an empty array keeps its empty table: that is what the encoder writes for it
    empty = rans.encode(np.zeros(0, dtype=np.int16))
    assert rans.decode(empty).shape == (0,) and ref.decode(empty).shape == (0,)


def test_frame_tables_are_dense_on_access_and_ranges_without_it():
    ctx = np.array([0, 2, 0, 2], dtype=np.uint16)
    frame = rans.encode(np.array([1, 5, 3, 6], dtype=np.int8), contexts=ctx)
    tables = rans.frame_info(frame).tables
    assert len(tables) == 3 and [t.alphabet for t in tables] == [6, 6, 6]
    assert all(t.offset == 1 for t in tables[0:3])
    assert tables.nonzero_range(1)[1].size == 0  # the unused context: an empty table
    for i, dense in enumerate(tables):
        first, run = tables.nonzero_range(i)
        np.testing.assert_array_equal(dense.frequencies[first : first + run.size], run)
        assert dense.frequencies.sum() == (1 << dense.precision if run.size else 0) == run.sum()
    first, run = tables.nonzero_range(2)
    assert (first, list(run > 0)) == (4, [True, True])  # values 5 and 6 at offset 1


@pytest.mark.parametrize("limit", [-1, 2**64, 1.5, True, "10"])
def test_bad_output_limit_is_an_input_error(limit):
    frame = rans.encode(np.zeros(3, dtype=np.int8))
    for call in (rans.decode, rans.frame_info):
        with pytest.raises(InputError, match="max_symbols must be an integer"):
            call(frame, max_symbols=limit)
    assert rans.decode(frame, max_symbols=np.uint64(3)).shape == (3,)


def test_decode_limits_are_checked_before_allocating():
    with pytest.raises(CorruptDataError, match="limit"):
        _rans.frame_info(single_symbol_bomb(), max_table_entries=1 << 20)


def _sample_frames(rng):
    """A valid frame of a random kind (contexts with an empty table, zero-cost, empty,
    multi-dimensional, wide alphabet, high precision) and the contexts it was coded with."""
    kind = int(rng.integers(0, 6))
    n = int(rng.integers(0, 300))
    if kind == 0:  # contexts, one table unused
        rows = max(1, n // 10)
        ctx = rng.choice([0, 2, 3], size=rows)
        arr = (rng.normal(0, 1, (rows, 10)) * (1 + ctx[:, None])).round().astype(np.int16)
        return rans.encode(arr, contexts=ctx, context_run=10, lanes=4), ctx
    if kind == 1:  # zero-cost: one symbol per table
        ctx = rng.integers(0, 3, n)
        return rans.encode((ctx * 7 - 5).astype(np.int32), contexts=ctx), ctx
    if kind == 2:  # empty arrays, some with a huge zero-sized shape
        shape = [(0,), (0, 2**40), (3, 0, 5)][int(rng.integers(0, 3))]
        return rans.encode(np.zeros(shape, dtype=np.uint8)), None
    if kind == 3:  # multi-dimensional, unsigned with a high offset
        arr = rng.integers(0, 20, (4, max(1, n // 4))).astype(np.uint64) + np.uint64(2**63)
        return rans.encode(arr, lanes=8, chunk_size=int(rng.integers(1, 64))), None
    if kind == 4:  # wide alphabet at precision 16
        arr = rng.integers(-3000, 3000, max(1, n)).astype(np.int16)
        return rans.encode(arr, precision=16), None
    arr = np.clip(np.round(rng.normal(0, 2, max(1, n))), -8, 7).astype(np.int8)  # plain, low precision
    return rans.encode(arr, precision=int(rng.integers(4, 9)), lanes=int(rng.choice([4, 16, 64]))), None


def _decode_or_none(call, frame, ctx):
    try:
        return call(frame, contexts=ctx)
    except CorruptDataError:
        return None


MUTATIONS = ["byte", "varint", "insert", "delete", "ctx"]


def mutate(rng, frame: bytes, ctx, how: str, count: int):
    """`frame` with `count` mutations of kind `how` and its CRC re-sealed, and the contexts to
    decode it with: set bytes, splice plausible varints where the header and tables live,
    insert or delete bytes, or ("ctx") keep the bytes and hand the decoder other contexts."""
    body = bytearray(frame[:-4])
    for _ in range(count if how != "ctx" else 0):
        pos = int(rng.integers(4, len(body)))
        if how == "byte":
            body[pos] = int(rng.integers(0, 256))
        elif how == "varint":
            pos = int(rng.integers(5, min(len(body), 40)))
            value = int(rng.choice([0, 1, 2, 3, 4, 16, 17, 255, 4096, 65535, 65536, 2**28, 2**63, 2**64 - 1]))
            body[pos : pos + int(rng.integers(1, 3))] = varint(value)
        elif how == "insert":
            body.insert(pos, int(rng.integers(0, 256)))
        elif len(body) > 12:
            del body[pos]
    if how == "ctx":
        ctx = None if ctx is None or rng.random() < 0.2 else rng.integers(0, 4, max(0, len(ctx) + int(rng.integers(-1, 2))))
    return with_crc(bytes(body)), ctx


def native_and_reference_agree(frame: bytes, ctx) -> bool:
    """Both decoders (native: every kernel) raise CorruptDataError, or all return the same
    array; anything else fails an assertion. Returns whether the frame was accepted."""
    expected = _decode_or_none(ref.decode, frame, ctx)
    for kernel in rans.kernels():
        got = _decode_or_none(lambda f, contexts: rans.decode(f, contexts=contexts, kernel=kernel), frame, ctx)
        assert (got is None) == (expected is None), (kernel, frame.hex(), "native" if got is not None else "ref")
        if got is not None:
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, expected)
    try:
        rans.frame_info(frame)
    except CorruptDataError:
        assert expected is None  # frame_info refuses only what decode refuses too
    return expected is not None


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from(MUTATIONS))
def test_mutated_frames_native_and_reference_agree(seed, count, how):
    """Differential check over whole frames, headers and tables included (CRC re-sealed): the
    native decoder and the reference make the same decision and return the same array.
    benchmarks/frame_mutants.py runs the same check in bulk."""
    rng = np.random.default_rng(seed)
    frame, ctx = _sample_frames(rng)
    native_and_reference_agree(*mutate(rng, frame, ctx, how, count))
