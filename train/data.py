"""Training data: the shards of a split, streamed as micro-batches for every rank.

Shards are the challenge's `fineweb_{train,val}_NNNNNN.bin` files, read and written by
`pgolf_pack.shards` (the one implementation of the format; a malformed shard raises its
one-line `CorruptDataError`). A split is every shard of it in sorted name order, concatenated;
each document is BOS followed by its tokens (no EOS), running across shard boundaries.

Validation data is never training data: `train_shards` refuses any file whose path names
validation data (`pgolf_pack.shards.is_validation_path`: "val", "valid" or "validation" as a word of
any component, in any case, of the path or its resolved target) and any file that the validation
pattern also matches (hard links included).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pgolf_pack.errors import InputError
from pgolf_pack.shards import is_validation_path, read_shard, shard_num_tokens, write_shard

TRAIN_PATTERN = "fineweb_train_*.bin"
VAL_PATTERN = "fineweb_val_*.bin"


class ShardError(InputError):
    """Shards that cannot be trained on: missing, of the validation split, or of another vocabulary."""


def shard_name(split: str, index: int) -> str:
    """The challenge's file name for shard `index` of `split` ("train" or "val")."""
    return f"fineweb_{split}_{index:06d}.bin"


def write_split(docs: Iterable[Sequence[int]], out_dir: str | os.PathLike, split: str,
                shard_tokens: int = 10**8) -> tuple[list[Path], int]:
    """Write documents (token lists, BOS included) as consecutive shards of one split.

    Documents run across shard boundaries, as in the challenge's export. Returns the shard
    paths and the total token count.
    """
    if shard_tokens < 1:
        raise InputError(f"shard_tokens must be positive, got {shard_tokens}")
    out_dir = Path(out_dir)
    paths: list[Path] = []
    pending: list[np.ndarray] = []
    held = total = 0

    def flush(n: int) -> None:
        nonlocal pending, held
        buf = np.concatenate(pending) if pending else np.zeros(0, dtype=np.int64)
        paths.append(out_dir / shard_name(split, len(paths)))
        write_shard(paths[-1], buf[:n])
        pending, held = [buf[n:]], held - n

    for doc in docs:
        arr = np.asarray(doc, dtype=np.int64)
        pending.append(arr)
        held += arr.size
        total += arr.size
        while held >= shard_tokens:
            flush(shard_tokens)
    if held or not paths:
        flush(held)
    return paths, total


def _glob(data_path: str | os.PathLike, pattern: str) -> list[Path]:
    return [Path(p) for p in sorted(glob.glob(os.path.join(os.fspath(data_path), pattern)))]


def train_shards(data_path: str | os.PathLike, pattern: str = TRAIN_PATTERN,
                 val_pattern: str = VAL_PATTERN) -> list[Path]:
    """The training shards under `data_path`, refusing anything that could be validation data.

    Raises:
        ShardError: no file matches, or a match is validation data by name (see the module
            docstring) or is a file the validation pattern also matches.
    """
    files = _glob(data_path, pattern)
    if not files:
        raise ShardError(f"no training shards match {os.path.join(os.fspath(data_path), pattern)}; "
                         "set DATA_PATH (or run `pgolf-train prepare`)")
    val = _glob(data_path, val_pattern)
    val_resolved = {v.resolve() for v in val}
    for p in files:
        if is_validation_path(p) or p.resolve() in val_resolved or any(_same_file(p, v) for v in val):
            raise ShardError(f"refusing to train on {p}: it is validation data; validation tokens may never be trained on")
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_vocab(tokens: np.ndarray, path: Path, vocab_size: int | None) -> None:
    if vocab_size is not None and tokens.size and int(tokens.max()) >= vocab_size:
        raise ShardError(f"shard {path} holds token id {int(tokens.max())}, not below VOCAB_SIZE {vocab_size}; "
                         "the shards were made with another tokenizer")


class TokenStream:
    """The training shards read in order, wrapping around forever (no sampling, no workers)."""

    def __init__(self, files: Sequence[Path], vocab_size: int | None = None):
        if not files:
            raise ShardError("no training shards given")
        self.files, self.vocab_size = list(files), vocab_size
        if sum(shard_num_tokens(f) for f in self.files) == 0:
            raise ShardError(f"every training shard is empty ({len(self.files)} files)")
        self.index = -1
        self._next_file()

    def _next_file(self) -> None:
        self.index = (self.index + 1) % len(self.files)
        self.tokens = read_shard(self.files[self.index], mmap=True)
        _check_vocab(self.tokens, self.files[self.index], self.vocab_size)
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        """The next `n` tokens of the stream."""
        out, need = [], n
        while need > 0:
            if self.pos >= self.tokens.size:
                self._next_file()
                continue
            chunk = self.tokens[self.pos : self.pos + need]
            out.append(chunk)
            self.pos += chunk.size
            need -= chunk.size
        return out[0] if len(out) == 1 else np.concatenate(out)


class TrainBatches:
    """Micro-batches for one rank, the same global data whatever the world size.

    A step's global batch of `batch_tokens` tokens is cut into `micro_batches` micro-batches;
    rank r of W runs micro-batches r, r + W, ... of them. Each call to `next()` reads W
    consecutive spans of (micro tokens + 1) from the stream and keeps span r, so the union of
    what all ranks see in a step is the same stream prefix as one process would see.
    """

    def __init__(self, files: Sequence[Path], batch_tokens: int, seq_len: int, micro_batches: int,
                 rank: int = 0, world_size: int = 1, device: torch.device | str = "cpu",
                 vocab_size: int | None = None):
        if micro_batches % world_size:
            raise InputError(f"micro-batches {micro_batches} must be a multiple of the world size {world_size}")
        if batch_tokens % (micro_batches * seq_len):
            raise InputError(f"TRAIN_BATCH_TOKENS {batch_tokens} must be a multiple of micro-batches x "
                             f"TRAIN_SEQ_LEN = {micro_batches} x {seq_len}")
        self.stream = TokenStream(files, vocab_size)
        self.micro_tokens = batch_tokens // micro_batches
        self.seq_len, self.rank, self.world_size = seq_len, rank, world_size
        self.device = torch.device(device)

    def next(self) -> tuple[Tensor, Tensor]:
        """One micro-batch (inputs, targets), each [micro_tokens / seq_len, seq_len] int64."""
        span = self.micro_tokens + 1
        chunk = self.stream.take(span * self.world_size)[self.rank * span : (self.rank + 1) * span]
        local = torch.from_numpy(chunk.astype(np.int64))
        x = local[:-1].view(-1, self.seq_len)
        y = local[1:].view(-1, self.seq_len)
        pin = self.device.type == "cuda"
        if pin:
            x, y = x.pin_memory(), y.pin_memory()
        return x.to(self.device, non_blocking=pin), y.to(self.device, non_blocking=pin)
