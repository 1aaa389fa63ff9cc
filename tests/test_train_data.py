"""Training data: splits written as shards read back exactly, malformed shards stop the loader
with a one-line error, validation files are never trained on, and batches do not depend on the
world size. (The shard format itself is tested in test_shards.py.)"""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.shards import MAGIC, read_shard, shard_num_tokens, write_shard
from pgolf_train.data import ShardError, TrainBatches, train_shards, write_split


def _shard_bytes(tokens, magic=MAGIC, version=1, count=None):
    header = np.zeros(256, dtype="<i4")
    header[:3] = (magic, version, len(tokens) if count is None else count)
    return header.tobytes() + np.asarray(tokens, dtype="<u2").tobytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_shard_bytes(range(50))[:1000], r"shorter than its 1024-byte header"),
        (_shard_bytes(range(50), magic=1234), r"magic 1234, expected 20240520"),
        (_shard_bytes(range(50), version=2), r"version 2, expected 1"),
        (_shard_bytes(range(50))[:-1], r"\(truncated\)"),
        (_shard_bytes(range(50)) + b"\0", r"\(trailing bytes\)"),
    ],
)
def test_a_malformed_training_shard_stops_the_loader(tmp_path, data, message):
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(100))
    (tmp_path / "fineweb_train_000001.bin").write_bytes(data)
    with pytest.raises(CorruptDataError, match=message) as info:
        loader = TrainBatches(train_shards(tmp_path), 16, 4, 2)
        for _ in range(20):  # the bad shard is checked up front or, at the latest, when reached
            loader.next()
    assert "\n" not in str(info.value) and "fineweb_train_000001.bin" in str(info.value)


@given(st.lists(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=40), max_size=30), st.integers(1, 50))
def test_split_roundtrips_through_shards(tmp_path_factory, docs, shard_tokens):
    out = tmp_path_factory.mktemp("split")
    paths, total = write_split(docs, out, "train", shard_tokens)
    flat = [t for d in docs for t in d]
    assert total == len(flat)
    assert [p.name for p in paths] == [f"fineweb_train_{i:06d}.bin" for i in range(len(paths))]
    sizes = [shard_num_tokens(p) for p in paths]
    assert all(s == shard_tokens for s in sizes[:-1]) and 0 < sizes[-1] <= shard_tokens or flat == []
    assert np.concatenate([read_shard(p) for p in paths]).tolist() == flat


def test_training_never_reads_held_out_files(tmp_path):  # no "val" word: pytest puts the name in tmp_path
    write_shard(tmp_path / "fineweb_train_000000.bin", np.array([1, 2, 3]))
    write_shard(tmp_path / "fineweb_val_000000.bin", np.array([1, 2, 3]))
    assert [p.name for p in train_shards(tmp_path)] == ["fineweb_train_000000.bin"]
    with pytest.raises(ShardError, match=r"refusing to train on .*fineweb_val_000000.bin: it is validation data"):
        train_shards(tmp_path, pattern="fineweb_*.bin")
    write_shard(tmp_path / "fineweb_train_val_000001.bin", np.array([1]))
    with pytest.raises(ShardError, match="refusing to train on .*fineweb_train_val_000001.bin"):
        train_shards(tmp_path)
    # A file the validation pattern claims is refused even without "_val_" in its name.
    with pytest.raises(ShardError, match="refusing to train on .*fineweb_train_000000.bin"):
        train_shards(tmp_path, pattern="fineweb_train_00000*.bin", val_pattern="fineweb_train_000000.bin")
    with pytest.raises(ShardError, match="no training shards match"):
        train_shards(tmp_path / "empty")


def test_token_ids_beyond_the_vocabulary_are_refused(tmp_path):
    write_shard(tmp_path / "fineweb_train_000000.bin", np.array([1, 500, 3] * 20))
    with pytest.raises(ShardError, match="holds token id 500, not below VOCAB_SIZE 384"):
        TrainBatches(train_shards(tmp_path), 8, 4, 2, vocab_size=384)


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
