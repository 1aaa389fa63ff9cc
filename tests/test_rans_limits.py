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

from pgolf_pack import _rans, rans
from pgolf_pack import _reference as ref
from pgolf_pack.errors import CorruptDataError

from test_rans_corrupt import header, table, varint, with_crc

# Headroom over the child's address space after imports. A bomb of the kind fixed here asked
# for 1-2 GB; a legitimate decode of these frames needs a few MB.
CAP_BYTES = 192 << 20


def run_capped(frame: bytes, calls: str, contexts=None, cap=CAP_BYTES) -> dict:
    """Run `calls` (statements over `frame`, `ctx`, `rans`) in a child under `cap` more bytes
    of address space; returns {"ok": bool, "error": str, "rss_kb": int} from the child."""
    code = textwrap.dedent(
        """
        import json, resource, sys
        import numpy as np
        from pgolf_pack import rans
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
    """, contexts=ctx)
    assert out["ok"], out["error"]
    small, small_ctx = single_symbol_bomb(tables=16, n=16), np.arange(16)  # the reference is dense: keep it small
    np.testing.assert_array_equal(rans.decode(small, contexts=small_ctx), ref.decode(small, contexts=small_ctx))


def test_slot_table_bomb_is_bounded():
    """Many two-symbol tables at a high precision code a few symbols: the decoder must not
    expand every table into 2^precision slots (4096 x 4096 x 6 bytes here)."""
    tables, n = 4096, 8
    body = header(dtype=1, shape=(n,), alphabet=2, precision=12, tables=tables, run=1)
    body += table(0, 2, [2048]) * tables
    # a real payload for the first n symbols (contexts 0..n-1, all coding symbol 0 at 1/2)
    arr = np.zeros(n, dtype=np.int8)
    ctx = np.arange(n, dtype=np.uint16)
    half = rans.FrequencyTable(np.array([2048, 2048]), 12)
    good = rans.encode(arr, contexts=ctx, tables=[half] * tables, lanes=4)
    info = rans.frame_info(good)
    payload_and_dir = good[len(good) - 4 - info.payload_bytes - 1 - len(varint(info.chunk_size))
                           - len(varint(info.payload_bytes)) : -4]
    frame = with_crc(body + payload_and_dir)
    assert frame == good  # the encoder writes exactly this frame: it is valid
    assert len(frame) < 40_000
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


def test_decode_limits_are_checked_before_allocating():
    with pytest.raises(CorruptDataError, match="limit"):
        _rans.frame_info(single_symbol_bomb(), max_table_entries=1 << 20)
