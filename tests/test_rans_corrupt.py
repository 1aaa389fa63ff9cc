"""Hostile, truncated and corrupted frames: every one raises CorruptDataError with a message
naming the problem; none crashes, hangs or decodes to something else. With the CRC fixed up
after a mutation, the native decoder and the pure-Python reference make the same decision."""

import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import _rans, rans
from pgolf_pack import _reference as ref
from pgolf_pack.errors import CorruptDataError

KERNELS = rans.kernels()


def sample_frame(n=3000, seed=0, **kw):
    rng = np.random.default_rng(seed)
    arr = np.clip(np.round(rng.normal(0, 2, n)), -8, 7).astype(np.int8)
    return arr, rans.encode(arr, **kw)


def with_crc(body: bytes) -> bytes:
    """Re-seal a mutated frame body so the check under test is not the CRC."""
    return body + struct.pack("<I", _rans.crc32c(body))


def varint(v: int) -> bytes:
    out = bytearray()
    ref.put_varint(out, v)
    return bytes(out)


def header(dtype=1, shape=(10,), offset=0, alphabet=2, precision=4, tables=1, run=0) -> bytes:
    return ref.frame_header(shape, alphabet, precision, tables, run, dtype, offset)


def table(first, count, explicit):
    return ref.table_fields(first, count, explicit)


HALVES = table(0, 2, [8])  # two symbols, 8/16 each


def decode_all(data, **kw):
    for kernel in KERNELS:
        rans.decode(data, kernel=kernel, **kw)


def test_truncation_at_every_offset_raises():
    _, data = sample_frame(n=400)
    for cut in range(len(data)):
        with pytest.raises(CorruptDataError):
            rans.decode(data[:cut])


def test_every_single_bit_flip_raises():
    _, data = sample_frame(n=300)
    for pos in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            with pytest.raises(CorruptDataError):
                rans.decode(bytes(bad))


def test_trailing_junk_raises():
    _, data = sample_frame()
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        rans.decode(data + b"\x00")
    body = data[:-4]
    with pytest.raises(CorruptDataError, match="trailing data: 3 bytes follow the last chunk"):
        rans.decode(with_crc(body + b"abc"))


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.sampled_from(["flip", "set", "insert", "delete"]))
def test_mutated_payload_agrees_with_reference(seed, count, how):
    """Body mutations with the CRC fixed: both decoders raise, or both return the same array."""
    rng = np.random.default_rng(seed)
    arr, data = sample_frame(n=int(rng.integers(1, 700)), seed=seed, lanes=int(rng.choice([4, 8, 32])))
    body = bytearray(data[:-4])
    for _ in range(count):
        pos = int(rng.integers(0, len(body)))
        if how == "flip":
            body[pos] ^= 1 << int(rng.integers(0, 8))
        elif how == "set":
            body[pos] = int(rng.integers(0, 256))
        elif how == "insert":
            body.insert(pos, int(rng.integers(0, 256)))
        elif len(body) > 10:
            del body[pos]
    frame = with_crc(bytes(body))
    try:
        expected = ref.decode(frame)
    except CorruptDataError:
        expected = None
    for kernel in KERNELS:
        if expected is None:
            with pytest.raises(CorruptDataError):
                rans.decode(frame, kernel=kernel)
        else:
            got = rans.decode(frame, kernel=kernel)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "bad magic"),
        (b"PGRB\x01\x01\x01\x01\x00", "bad magic"),
        (b"PGRA\x01\x01", "truncated: frame of 6 bytes"),
        (with_crc(b"PGRA\x02\x01\x00"), "unsupported version: frame version 2"),
        (with_crc(b"PGRA\x01\x09\x00"), "unknown dtype code 9"),
        (with_crc(b"PGRA\x01\x01\x09"), "ndim 9 exceeds 8"),
        (with_crc(b"PGRA\x01\x01\x01\x80\x00"), "non-canonical varint"),
        (with_crc(b"PGRA\x01\x01\x01" + b"\xff" * 10 + b"\x02"), "overflows 64 bits"),
        (with_crc(header(shape=(1 << 40,))), "limit exceeded: shape holds more than the limit of 268435456 symbols"),
        (with_crc(header(shape=(1 << 20, 1 << 20, 1 << 20))), "limit exceeded: shape holds more than"),
        (with_crc(header(alphabet=0)), "alphabet of 0 symbols"),
        (with_crc(header(alphabet=65537)), "alphabet of 65537 symbols"),
        (with_crc(header(precision=17)), "precision 17 is outside"),
        (with_crc(header(precision=0)), "precision 0 is outside"),
        (with_crc(header(tables=0)), "number of tables 0"),
        (with_crc(header(tables=4097, run=1)), "number of tables 4097"),
        (with_crc(header(tables=1024, precision=16, run=1)), "exceed the limit of 16777216 table entries"),
        (with_crc(header(tables=2, run=0)), "several tables but no context run length"),
        (with_crc(header() + varint(0) + varint(3)), "table range \\[0, 3\\) exceeds the alphabet of 2"),
        (with_crc(header() + varint(1) + varint(0)), "empty table must have first = 0"),
        (with_crc(header() + table(0, 2, [16])), "frequency 16 at index 0 is outside \\[0, M\\)"),
        (with_crc(header(alphabet=3) + table(0, 3, [9, 7])), "frequencies reach M = 16 by index 1"),
        (with_crc(header(alphabet=4) + table(0, 4, [0, 5, 5])), "first frequency is 0"),
        (with_crc(header(alphabet=4) + table(0, 4, [3, -1, 5])), "frequency -1 at index 1"),
        (with_crc(header() + table(0, 2, [8])[:-1]), "ends inside field 'table.bits'"),
        (with_crc(header() + table(0, 2, [8])[:-1] + bytes([table(0, 2, [8])[-1] | 0x80])), "nonzero padding"),
        (with_crc(header(precision=16) + varint(0) + varint(2) + b"\xff\xff\xff" + b"\x01\x00\x00"),
         "fits the short code \\(non-canonical\\)"),
        (with_crc(header() + HALVES + b"\x05" + varint(1)), "lanes 5 is not 4, 8, 16, 32 or 64"),
        (with_crc(header() + HALVES + b"\x04" + varint(0)), "chunk_size is 0"),
        (with_crc(header() + HALVES + b"\x04" + varint(10) + varint(15) + b"\x00" * 16),
         "chunk 0 is 15 bytes; a chunk is 16 bytes of states"),
        (with_crc(header() + HALVES + b"\x04" + varint(10) + varint(18) + b"\x00" * 16),
         "chunk 0 of 18 bytes runs past the frame"),
        (with_crc(header() + HALVES + b"\x04" + varint(1)), "10 chunks cannot fit"),
    ],
)
def test_malformed_headers_name_the_problem(data, message):
    with pytest.raises(CorruptDataError, match=message):
        rans.decode(data)


def raw_chunk_frame(states, words, n=8, lanes=4):
    """A frame over a fixed 2-symbol table (8/8 of 16) whose one chunk we write by hand."""
    chunk = b"".join(struct.pack("<I", s) for s in states) + b"".join(struct.pack("<H", w) for w in words)
    body = header(shape=(n,)) + HALVES + bytes([lanes]) + varint(1 << 20)
    return with_crc(body + varint(len(chunk)) + chunk)


def test_state_below_L_is_rejected():
    with pytest.raises(CorruptDataError, match="chunk 0 lane 2 starts at state 65535, below L"):
        decode_all(raw_chunk_frame([1 << 16, 1 << 16, (1 << 16) - 1, 1 << 16], []))


def test_final_state_check_catches_garbage():
    # one symbol per lane, states 2^20: each decodes to 2^19 without a refill, never back to L
    with pytest.raises(CorruptDataError, match=r"chunk 0 lane 0 ends at state 524288 instead of 65536"):
        decode_all(raw_chunk_frame([1 << 20] * 4, [], n=4))


def test_words_running_out_is_truncation():
    # states near L need a refill on the first decode step, and there are no words
    with pytest.raises(CorruptDataError, match="chunk 0 runs out of words at symbol 0 of 8"):
        decode_all(raw_chunk_frame([1 << 16] * 4, []))


def test_unread_words_are_trailing_data():
    arr, data = sample_frame(n=50, lanes=4)
    info = rans.frame_info(data)
    body = bytearray(data[:-4])
    # grow the one chunk by one word: fix the directory entry and append the word
    start = len(body) - info.payload_bytes
    old = varint(info.payload_bytes)
    assert bytes(body[start - len(old) : start]) == old
    new = varint(info.payload_bytes + 2)
    body[start - len(old) : start] = new
    frame = with_crc(bytes(body) + b"\x00\x00")
    with pytest.raises(CorruptDataError, match="2 unread word bytes after its last symbol"):
        decode_all(frame)


def test_wrong_contexts_are_caught():
    rng = np.random.default_rng(1)
    ctx = rng.integers(0, 3, 400)
    arr = (np.round(rng.normal(0, 1, (400, 64)) * (1 + 4 * ctx[:, None]))).astype(np.int16)
    data = rans.encode(arr, contexts=ctx, context_run=64)
    with pytest.raises(CorruptDataError, match="pass the encoder's context ids"):
        rans.decode(data)
    with pytest.raises(CorruptDataError, match="expected 400 context ids"):
        rans.decode(data, contexts=ctx[:-1])
    with pytest.raises(CorruptDataError, match="not below the number of tables, 3"):
        rans.decode(data, contexts=np.full(400, 3))
    wrong = ctx.copy()
    wrong[:200] = (wrong[:200] + 1) % 3
    with pytest.raises(CorruptDataError, match="instead of 65536|runs out of words|unread word bytes"):
        rans.decode(wrong_ctx := data, contexts=wrong)  # noqa: F841
    plain = rans.encode(arr)
    with pytest.raises(CorruptDataError, match="frame coded without contexts"):
        rans.decode(plain, contexts=ctx)


def test_context_selecting_empty_table_is_rejected():
    ctx = np.array([0, 2, 0, 2], dtype=np.uint16)
    arr = np.array([1, 5, 1, 6], dtype=np.int8)
    data = rans.encode(arr, contexts=ctx)
    with pytest.raises(CorruptDataError, match="selects an empty table"):
        rans.decode(data, contexts=np.array([0, 1, 0, 2]))


def test_max_symbols_bounds_allocation():
    arr = np.zeros(1000, dtype=np.int64)
    data = rans.encode(arr)
    with pytest.raises(CorruptDataError, match="limit of 999 symbols"):
        rans.decode(data, max_symbols=999)
    assert rans.decode(data, max_symbols=1000).shape == (1000,)


def test_crc32c_known_vector_and_chaining():
    assert _rans.crc32c(b"123456789") == 0xE3069283
    assert _rans.crc32c(b"6789", _rans.crc32c(b"12345")) == 0xE3069283
    assert ref.crc32c(b"123456789") == 0xE3069283
    blob = np.random.default_rng(0).integers(0, 256, 10_007).astype(np.uint8).tobytes()
    assert _rans.crc32c(blob) == ref.crc32c(blob)


def test_error_messages_are_one_line():
    for bad in (b"", b"PGRA\x01", with_crc(header(precision=17))):
        with pytest.raises(CorruptDataError) as e:
            rans.decode(bad)
        assert "\n" not in str(e.value) and re.match(r"^[a-z ]+: ", str(e.value))
