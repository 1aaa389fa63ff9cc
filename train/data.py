"""Token shards in the challenge's format, and the loaders that read them for training.

Shard format (`fineweb_{train,val}_NNNNNN.bin`, written by the challenge's data scripts):

    offset 0     256 little-endian int32: [0] magic 20240520, [1] version 1, [2] token count n,
                 [3..255] zero
    offset 1024  n little-endian uint16 token ids
    file size    exactly 1024 + 2 n bytes: no holes, no trailing bytes

A split is every shard of it in sorted name order, concatenated. Each document is stored as
BOS followed by its tokens (no EOS); documents run across shard boundaries.

Validation data is never training data: `train_shards` refuses any file whose name has `_val_`
in it and any file that the validation pattern also matches.
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

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MAX_TOKEN_ID = 0xFFFF
TRAIN_PATTERN = "fineweb_train_*.bin"
VAL_PATTERN = "fineweb_val_*.bin"


class ShardError(InputError):
    """A token shard that is missing, malformed, or of the wrong split."""


def shard_name(split: str, index: int) -> str:
    """The challenge's file name for shard `index` of `split` ("train" or "val")."""
    return f"fineweb_{split}_{index:06d}.bin"


def write_shard(path: str | os.PathLike, tokens: Sequence[int] | np.ndarray) -> None:
    """Write one shard atomically (a temporary file renamed into place).

    Raises:
        ShardError: a token id outside [0, 65535].
    """
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ShardError(f"shard tokens must be 1-D, got shape {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_TOKEN_ID):
        raise ShardError(f"token ids must be in [0, {MAX_TOKEN_ID}] for a uint16 shard, got "
                         f"[{int(arr.min())}, {int(arr.max())}]; use a vocabulary of at most 65536")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, arr.size)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(arr.astype("<u2").tobytes())
    os.replace(tmp, path)


def read_shard_header(path: str | os.PathLike) -> int:
    """Validate a shard's header and size; return its token count.

    Raises:
        ShardError: missing file, short header, wrong magic or version, or a size that is not
            exactly 1024 + 2 * count.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as e:
        raise ShardError(f"cannot read shard {path}: {e.strerror}") from None
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"shard {path} is {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    magic, version, count = (int(v) for v in np.frombuffer(raw, dtype="<i4", count=3))
    if magic != SHARD_MAGIC:
        raise ShardError(f"shard {path}: magic {magic}, expected {SHARD_MAGIC} (not a token shard)")
    if version != SHARD_VERSION:
        raise ShardError(f"shard {path}: version {version}, expected {SHARD_VERSION}")
    if count < 0:
        raise ShardError(f"shard {path}: negative token count {count} in the header")
    expected = HEADER_BYTES + 2 * count
    if size != expected:
        what = "truncated" if size < expected else "trailing bytes"
        raise ShardError(f"shard {path}: {size} bytes, but its header's count {count} needs exactly {expected} ({what})")
    return count


def read_shard(path: str | os.PathLike) -> np.ndarray:
    """A shard's tokens as a uint16 array, after the checks of `read_shard_header`."""
    count = read_shard_header(path)
    tokens = np.fromfile(path, dtype="<u2", count=count, offset=HEADER_BYTES)
    if tokens.size != count:  # the file changed under us
        raise ShardError(f"shard {path}: read {tokens.size} tokens, header says {count}")
    return tokens.astype(np.uint16, copy=False)


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
        ShardError: no file matches, or a match has `_val_` in its name or also matches the
            validation pattern.
    """
    files = _glob(data_path, pattern)
    if not files:
        raise ShardError(f"no training shards match {os.path.join(os.fspath(data_path), pattern)}; "
                         "set DATA_PATH (or run `pgolf-train prepare`)")
    val = {p.resolve() for p in _glob(data_path, val_pattern)}
    for p in files:
        if "_val_" in p.name or p.resolve() in val:
            raise ShardError(f"refusing to train on {p}: it is validation data; validation tokens may never be trained on")
    return files


def val_shards(data_path: str | os.PathLike, pattern: str = VAL_PATTERN) -> list[Path]:
    files = _glob(data_path, pattern)
    if not files:
        raise ShardError(f"no validation shards match {os.path.join(os.fspath(data_path), pattern)}; set DATA_PATH")
    return files


def _check_vocab(tokens: np.ndarray, path: Path, vocab_size: int | None) -> None:
    if vocab_size is not None and tokens.size and int(tokens.max()) >= vocab_size:
        raise ShardError(f"shard {path} holds token id {int(tokens.max())}, not below VOCAB_SIZE {vocab_size}; "
                         "the shards were made with another tokenizer")


def load_val_tokens(files: Sequence[Path], seq_len: int, vocab_size: int | None = None,
                    max_tokens: int = 0) -> Tensor:
    """The validation stream, cut to whole sequences plus one target token (the challenge's rule).

    `max_tokens` > 0 keeps only the first that many tokens (a quick, partial validation).
    """
    parts = []
    for f in files:
        tokens = read_shard(f)
        _check_vocab(tokens, f, vocab_size)
        parts.append(tokens)
    tokens = np.concatenate(parts)
    if max_tokens > 0:
        tokens = tokens[: max_tokens + 1]
    usable = (tokens.size - 1) // seq_len * seq_len
    if usable <= 0:
        raise ShardError(f"validation split has {tokens.size} tokens, too few for one sequence of {seq_len}")
    return torch.from_numpy(tokens[: usable + 1].astype(np.int64))


class TokenStream:
    """The training shards read in order, wrapping around forever (no sampling, no workers)."""

    def __init__(self, files: Sequence[Path], vocab_size: int | None = None):
        if not files:
            raise ShardError("no training shards given")
        self.files, self.vocab_size = list(files), vocab_size
        if sum(read_shard_header(f) for f in self.files) == 0:
            raise ShardError(f"every training shard is empty ({len(self.files)} files)")
        self.index = -1
        self._next_file()

    def _next_file(self) -> None:
        self.index = (self.index + 1) % len(self.files)
        self.tokens = read_shard(self.files[self.index])
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
