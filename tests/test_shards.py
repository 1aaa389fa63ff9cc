"""Token shards (pgolf_pack.shards): the challenge's layout read back exactly, and every
malformed file refused with a message that names the file and the field."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.shards import read_shard, shard_num_tokens, write_shard


def raw_shard(tokens, magic=20240520, version=1, count=None, extra=b"") -> bytes:
    """A shard built by hand, as the challenge's exporter lays it out."""
    header = np.zeros(256, dtype="<i4")
    header[:3] = (magic, version, len(tokens) if count is None else count)
    return header.tobytes() + np.asarray(tokens, dtype="<u2").tobytes() + extra


@given(hnp.arrays(np.uint16, st.integers(0, 3000)))
def test_roundtrip_against_a_hand_built_file(tmp_path_factory, tokens):
    path = tmp_path_factory.mktemp("s") / "fineweb_val_000000.bin"
    path.write_bytes(raw_shard(tokens))
    assert shard_num_tokens(path) == len(tokens)
    for mmap in (False, True):
        got = read_shard(path, mmap=mmap)
        assert got.dtype == np.uint16 and np.array_equal(got, tokens)
    written = path.with_name("again.bin")
    write_shard(written, tokens.astype(np.int64))
    assert written.read_bytes() == path.read_bytes()


MALFORMED = {
    "bad-magic": (raw_shard([1, 2, 3], magic=20240521), r"has magic 20240521, expected 20240520: not a token shard"),
    "bad-version": (raw_shard([1, 2, 3], version=2), r"has version 2, expected 1"),
    "negative-count": (raw_shard([1, 2, 3], count=-1), r"has a negative token count -1 in its header"),
    "count-too-big": (raw_shard([1, 2, 3], count=4), r"is 1030 bytes .* 4 tokens = 1032 bytes \(truncated\)"),
    "count-too-small": (raw_shard([1, 2, 3], count=2), r"is 1030 bytes .* 2 tokens = 1028 bytes \(trailing bytes\)"),
    "trailing-byte": (raw_shard([1, 2, 3], extra=b"\x00"), r"is 1031 bytes .* = 1030 bytes \(trailing bytes\)"),
    "truncated-tokens": (raw_shard([1, 2, 3])[:1029], r"is 1029 bytes .* 3 tokens = 1030 bytes \(truncated\)"),
    "truncated-header": (raw_shard([1, 2, 3])[:1000], r"is 1000 bytes, shorter than its 1024-byte header"),
    "empty-file": (b"", r"is 0 bytes, shorter than its 1024-byte header"),
}


@pytest.mark.parametrize("data, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_shards_are_refused(tmp_path, data, message):
    path = tmp_path / "fineweb_val_000000.bin"
    path.write_bytes(data)
    for read in (shard_num_tokens, read_shard, lambda p: read_shard(p, mmap=True)):
        with pytest.raises(CorruptDataError, match=rf"^shard .*fineweb_val_000000.bin {message}"):
            read(path)


def test_truncation_at_every_offset_is_refused(tmp_path):
    data = raw_shard(np.arange(40))
    path = tmp_path / "s.bin"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(CorruptDataError):
            read_shard(path)


def test_missing_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"shard .*nope.bin does not exist"):
        read_shard(tmp_path / "nope.bin")
    with pytest.raises(InputError, match=r"is a directory"):
        read_shard(tmp_path)


def test_write_refuses_what_a_shard_cannot_hold(tmp_path):
    with pytest.raises(InputError, match=r"must lie in \[0, 65535\], got \[0, 65536\]"):
        write_shard(tmp_path / "s.bin", np.array([0, 65536]))
    with pytest.raises(InputError, match=r"got \[-1, 3\]"):
        write_shard(tmp_path / "s.bin", np.array([-1, 3]))
    with pytest.raises(InputError, match=r"1-D integer array, got 2-D int64"):
        write_shard(tmp_path / "s.bin", np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(InputError, match=r"1-D integer array, got 1-D float32"):
        write_shard(tmp_path / "s.bin", np.zeros(3, dtype=np.float32))
    assert not (tmp_path / "s.bin").exists()
