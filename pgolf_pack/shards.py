"""Token shards, the challenge's `fineweb_{train,val}_NNNNNN.bin` files: one strict reader and writer.

Layout (little-endian, as the challenge's exporter writes and its loader checks)::

    offset 0     int32[256]  header: [0] magic 20240520, [1] version 1, [2] token count n,
                             [3..255] reserved (written as 0, not checked: the challenge ignores them)
    offset 1024  uint16[n]   the tokens

A file is a shard only if its size is exactly `1024 + 2 * n`; anything else is truncated or
carries trailing bytes, and `read_shard` refuses it. This module is the one place that knows
the layout, so that evaluation (`pgolf_pack.bpb`) and training data loaders read shards the
same way. It also holds the rule that keeps validation data out of training and calibration
(`is_validation_path`, `training_files`) and the check that tokens fit a model's vocabulary.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np

from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.files import write_atomic

__all__ = ["HEADER_BYTES", "MAGIC", "VERSION", "check_vocab", "is_validation_path", "read_shard", "shard_num_tokens",
           "training_files", "write_shard"]

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TOKEN_DTYPE = np.dtype("<u2")


def shard_num_tokens(path: str | os.PathLike[str]) -> int:
    """Check a shard's header and file size without reading its tokens; return its token count.

    Raises:
        InputError: the file does not exist or is not a regular file.
        CorruptDataError: short header, wrong magic or version, negative count, or a file size
            other than 1024 + 2 * count.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            raw = f.read(HEADER_BYTES)
    except FileNotFoundError:
        raise InputError(f"shard {p} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"shard {p} is a directory, not a file") from None
    if len(raw) < HEADER_BYTES:
        raise CorruptDataError(f"shard {p} is {len(raw)} bytes, shorter than its {HEADER_BYTES}-byte header")
    magic, version, count = (int(v) for v in np.frombuffer(raw, dtype="<i4", count=3))
    if magic != MAGIC:
        raise CorruptDataError(f"shard {p} has magic {magic}, expected {MAGIC}: not a token shard")
    if version != VERSION:
        raise CorruptDataError(f"shard {p} has version {version}, expected {VERSION}")
    if count < 0:
        raise CorruptDataError(f"shard {p} has a negative token count {count} in its header")
    expected = HEADER_BYTES + TOKEN_DTYPE.itemsize * count
    if size != expected:
        what = "truncated" if size < expected else "trailing bytes"
        raise CorruptDataError(
            f"shard {p} is {size} bytes but its header says {count} tokens = {expected} bytes ({what})"
        )
    return count


def read_shard(path: str | os.PathLike[str], *, mmap: bool = False) -> np.ndarray:
    """Read one shard's tokens as a 1-D uint16 array after checking its header and size.

    Args:
        path: the `.bin` file.
        mmap: map the file read-only instead of reading it (training loaders over many shards).

    Raises:
        InputError / CorruptDataError: as `shard_num_tokens`.
    """
    count = shard_num_tokens(path)
    if mmap:
        if count == 0:
            return np.zeros(0, dtype=np.uint16)
        tokens = np.memmap(path, dtype=TOKEN_DTYPE, mode="r", offset=HEADER_BYTES, shape=(count,))
    else:
        tokens = np.fromfile(path, dtype=TOKEN_DTYPE, count=count, offset=HEADER_BYTES)
        if tokens.size != count:  # the file changed between the size check and the read
            raise CorruptDataError(f"shard {path} gave {tokens.size} tokens, its header says {count}")
    return tokens.astype(np.uint16, copy=False)  # native byte order; no copy on little-endian hosts


def write_shard(path: str | os.PathLike[str], tokens: np.ndarray) -> None:
    """Write tokens as a shard (header, then uint16 tokens); replaces `path` atomically.

    Raises:
        InputError: tokens that are not a 1-D integer array with values in [0, 65535].
    """
    arr = np.asarray(tokens)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InputError(f"shard tokens must be a 1-D integer array, got {arr.ndim}-D {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFF):
        raise InputError(f"shard tokens must lie in [0, 65535], got [{int(arr.min())}, {int(arr.max())}]")
    if arr.size > np.iinfo(np.int32).max:
        raise InputError(f"a shard holds at most {np.iinfo(np.int32).max} tokens, got {arr.size}")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, VERSION, arr.size)
    write_atomic(path, header.tobytes() + arr.astype(TOKEN_DTYPE).tobytes())


# "val", "valid", "validation" as a word of a path component: between non-letters or the ends
# (digits and punctuation separate words), in any case. "interval", "evaluate", "invalid" are not.
_VALIDATION_WORD = re.compile(r"(?<![a-z])(val|valid|validation)(?![a-z])")


def is_validation_path(path: str | os.PathLike[str]) -> bool:
    """Whether `path` may hold validation data, judged by name: True when any component of the
    path as given (made absolute) or of its resolved target (every symlink followed) has the word
    "val", "valid" or "validation" in it, case-insensitively. So `fineweb_VAL_000000.bin`,
    `valid_0.bin`, `data/val/x.bin`, and a link `train.bin -> val.bin` or `train/ -> val/` all
    count. Deliberately broad: a false alarm costs a rename, a miss would train or calibrate on
    the data the model is scored on."""
    given = Path(os.path.abspath(os.fspath(path)))
    try:
        resolved = Path(os.path.realpath(os.fspath(path)))
    except (OSError, RuntimeError, ValueError):
        resolved = given
    return any(_VALIDATION_WORD.search(part.lower()) for p in (given, resolved) for part in p.parts)


def training_files(pattern: str | os.PathLike[str], what: str = "--calibrate") -> list[Path]:
    """The files matching the glob `pattern`, sorted, after refusing validation data.

    Raises:
        InputError: nothing matches, or a match is validation data by `is_validation_path`.
    """
    files = [Path(f) for f in sorted(glob.glob(os.fspath(pattern)))]
    if not files:
        raise InputError(f"no file matches {os.fspath(pattern)!r}; point {what} at the fineweb_train_*.bin shards")
    for f in files:
        if is_validation_path(f):
            raise InputError(f"refusing '{f}' (resolved: '{os.path.realpath(f)}') for {what}: a component of its "
                             "path names validation data (val, valid, validation), and validation data may never "
                             "be used to train or calibrate; pass the training shards")
    return files


def check_vocab(tokens: np.ndarray, vocab_size: int, where: str) -> None:
    """Refuse tokens that a model with `vocab_size` embeddings cannot look up.

    Raises:
        InputError: a token id >= vocab_size (shards made with another tokenizer).
    """
    if tokens.size and int(tokens.max()) >= vocab_size:
        raise InputError(f"{where} holds token id {int(tokens.max())}, but the model's vocabulary has {vocab_size} "
                         "entries; the shards were made with another tokenizer")
