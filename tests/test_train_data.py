"""Token shards: exact roundtrips, every malformed header refused with a message naming it, the
validation split kept out of training, and batches that do not depend on the world size."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack.errors import InputError
from pgolf_train.data import (
    HEADER_BYTES,
    SHARD_MAGIC,
    ShardError,
    TrainBatches,
    load_val_tokens,
    read_shard,
    read_shard_header,
    train_shards,
    write_shard,
    write_split,
)


@given(st.lists(st.integers(0, 0xFFFF), max_size=3000))
def test_shard_roundtrip(tmp_path_factory, tokens):
    path = tmp_path_factory.mktemp("s") / "fineweb_train_000000.bin"
    write_shard(path, tokens)
    assert path.stat().st_size == HEADER_BYTES + 2 * len(tokens)
    got = read_shard(path)
    assert got.dtype == np.uint16
    assert got.tolist() == tokens


def test_shard_layout_is_the_challenge_format(tmp_path):
    path = tmp_path / "a.bin"
    write_shard(path, [1, 258, 65535])
    raw = path.read_bytes()
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert header[:3].tolist() == [20240520, 1, 3] and not header[3:].any()
    assert raw[HEADER_BYTES:] == bytes([1, 0, 2, 1, 255, 255])


def _shard_bytes(tokens, magic=SHARD_MAGIC, version=1, count=None):
    header = np.zeros(256, dtype="<i4")
    header[:3] = (magic, version, len(tokens) if count is None else count)
    return header.tobytes() + np.asarray(tokens, dtype="<u2").tobytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"0 bytes, shorter than the 1024-byte header"),
        (_shard_bytes([1, 2])[:1000], r"shorter than the 1024-byte header"),
        (_shard_bytes([1, 2], magic=1234), r"magic 1234, expected 20240520"),
        (_shard_bytes([1, 2], version=2), r"version 2, expected 1"),
        (_shard_bytes([1, 2], count=-5), r"negative token count -5"),
        (_shard_bytes([1, 2], count=3), r"needs exactly 1030 \(truncated\)"),
        (_shard_bytes([1, 2])[:-1], r"needs exactly 1028 \(truncated\)"),
        (_shard_bytes([1, 2]) + b"\0", r"1029 bytes, but its header's count 2 needs exactly 1028 \(trailing bytes\)"),
    ],
)
def test_malformed_shards_are_refused(tmp_path, data, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(data)
    for reader in (read_shard, read_shard_header):
        with pytest.raises(ShardError, match=message) as info:
            reader(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
        assert isinstance(info.value, InputError)


def test_missing_shard(tmp_path):
    with pytest.raises(ShardError, match="cannot read shard .*nope.bin"):
        read_shard(tmp_path / "nope.bin")


def test_write_refuses_ids_beyond_uint16(tmp_path):
    with pytest.raises(ShardError, match=r"\[0, 65535\]"):
        write_shard(tmp_path / "x.bin", [0, 70000])
    with pytest.raises(ShardError, match=r"\[0, 65535\]"):
        write_shard(tmp_path / "x.bin", [-1])
    assert not list(tmp_path.iterdir())


@given(st.lists(st.lists(st.integers(0, 999), min_size=1, max_size=40), max_size=30), st.integers(1, 50))
def test_write_split_concatenates_documents_across_shards(tmp_path_factory, docs, shard_tokens):
    out = tmp_path_factory.mktemp("split")
    paths, total = write_split(docs, out, "train", shard_tokens)
    flat = [t for d in docs for t in d]
    assert total == len(flat)
    assert [p.name for p in paths] == [f"fineweb_train_{i:06d}.bin" for i in range(len(paths))]
    sizes = [read_shard_header(p) for p in paths]
    assert all(s == shard_tokens for s in sizes[:-1]) and 0 < sizes[-1] <= shard_tokens or flat == []
    assert np.concatenate([read_shard(p) for p in paths]).tolist() == flat


def test_training_never_reads_validation_files(tmp_path):
    write_shard(tmp_path / "fineweb_train_000000.bin", [1, 2, 3])
    write_shard(tmp_path / "fineweb_val_000000.bin", [1, 2, 3])
    assert [p.name for p in train_shards(tmp_path)] == ["fineweb_train_000000.bin"]
    with pytest.raises(ShardError, match=r"refusing to train on .*fineweb_val_000000.bin: it is validation data"):
        train_shards(tmp_path, pattern="fineweb_*.bin")
    write_shard(tmp_path / "fineweb_train_val_000001.bin", [1])
    with pytest.raises(ShardError, match="refusing to train on .*fineweb_train_val_000001.bin"):
        train_shards(tmp_path)
    # A file the validation pattern claims is refused even without "_val_" in its name.
    with pytest.raises(ShardError, match="refusing to train on .*fineweb_train_000000.bin"):
        train_shards(tmp_path, pattern="fineweb_train_00000*.bin", val_pattern="fineweb_train_000000.bin")
    with pytest.raises(ShardError, match="no training shards match"):
        train_shards(tmp_path / "empty")


def test_token_ids_beyond_the_vocabulary_are_refused(tmp_path):
    write_shard(tmp_path / "fineweb_train_000000.bin", [1, 500, 3] * 20)
    with pytest.raises(ShardError, match="holds token id 500, not below VOCAB_SIZE 384"):
        TrainBatches(train_shards(tmp_path), 8, 4, 2, vocab_size=384)
    write_shard(tmp_path / "fineweb_val_000000.bin", [1, 500, 3] * 20)
    with pytest.raises(ShardError, match="holds token id 500"):
        load_val_tokens([tmp_path / "fineweb_val_000000.bin"], 4, vocab_size=384)


def test_validation_stream_is_cut_to_whole_sequences(tmp_path):
    write_shard(tmp_path / "fineweb_val_000000.bin", range(10))
    write_shard(tmp_path / "fineweb_val_000001.bin", range(10, 23))
    tokens = load_val_tokens(sorted(tmp_path.glob("fineweb_val_*.bin")), seq_len=5)
    assert tokens.tolist() == list(range(21))  # (23 - 1) // 5 * 5 = 20 targets, plus one
    assert load_val_tokens(sorted(tmp_path.glob("*.bin")), 5, max_tokens=7).tolist() == list(range(6))
    with pytest.raises(ShardError, match="too few for one sequence of 64"):
        load_val_tokens(sorted(tmp_path.glob("*.bin")), seq_len=64)


@pytest.mark.parametrize("world", [1, 2, 4])
def test_batches_do_not_depend_on_the_world_size(tmp_path, world):
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(1000) % 997)
    write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(333) % 997)
    files = train_shards(tmp_path)
    batch, seq, micro = 96, 4, 4

    def step_batches(w):
        """Per step, the micro-batches of every rank in (micro index) order."""
        loaders = [TrainBatches(files, batch, seq, micro, r, w) for r in range(w)]
        steps = []
        for _ in range(7):  # enough steps to wrap around both shards
            per_rank = [[ld.next() for _ in range(micro // w)] for ld in loaders]
            steps.append([per_rank[r][k] for k in range(micro // w) for r in range(w)])
        return steps

    for got, want in zip(step_batches(world), step_batches(1)):
        assert [(x.tolist(), y.tolist()) for x, y in got] == [(x.tolist(), y.tolist()) for x, y in want]
        for x, y in got:
            assert x.shape == (batch // micro // seq, seq) and np.array_equal(x.flatten()[1:], y.flatten()[:-1])


def test_batch_geometry_errors():
    with pytest.raises(InputError, match=re.escape("must be a multiple of micro-batches x TRAIN_SEQ_LEN = 4 x 5")):
        TrainBatches([], 96, 5, 4)
    with pytest.raises(InputError, match="micro-batches 4 must be a multiple of the world size 3"):
        TrainBatches([], 96, 4, 4, 0, 3)
