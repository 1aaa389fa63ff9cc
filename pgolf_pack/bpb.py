"""val_bpb exactly as the Parameter Golf challenge computes it.

The validation stream t[0..N-1] is every document of the split as `[BOS] + tokens`,
concatenated. Each target y = t[i] (i >= 1) is scored once with its previous token x = t[i-1]:

    bytes(y | x) = base_bytes[y] + (has_leading_space[y] and not is_boundary[x])
    val_loss     = loss_sum / token_count                           (nats; -ln p(y), float64 sums)
    val_bpb      = (val_loss / ln 2) * (token_count / byte_count)   (= loss_sum / (ln 2 * byte_count))

The byte tables (`build_byte_tables`) come from the SentencePiece model: control, unknown and
unused ids are boundaries worth 0 bytes; byte-fallback pieces are worth 1; every other piece is
worth the UTF-8 length of its text after stripping one leading "▁" (U+2581), whose presence
sets has_leading_space. A word's space byte is so counted on the token that carries it, except
right after a boundary such as BOS, where the text had no space.

The stream (`load_val_tokens`) is the `fineweb_val_*.bin` shards concatenated in sorted order
and cut to `usable + 1` tokens, `usable = ((N - 1) // seq_len) * seq_len`. `evaluate` scores
targets t[1..usable] exactly once each, either

* in non-overlapping sequences of seq_len tokens (the challenge's `eval_val`), or
* in sliding windows of seq_len tokens (`stride`): with `context = seq_len - stride`, windows
  start at ws = 0, stride, 2*stride, ... while ws + context < usable; window ws covers inputs
  t[ws .. min(ws + seq_len, usable) - 1]; the first scores all its positions, later ones only
  positions from `context` on. Every target past the first `context` has `context` tokens of
  history. This is the corrected form used by the records from 2026-04-01 on; the earlier one
  scored the stream's tail several times.

Typical use (any model that maps token ids [B, T] to logits [B, T, V] plugs in)::

    tables = build_byte_tables("fineweb_1024_bpe.model")
    tokens = load_val_tokens("data/fineweb_val_*.bin", seq_len=1024)
    result = evaluate(model.forward_logits, tokens, tables, seq_len=1024, stride=64, device="cuda")
    print(result.val_bpb)

`evaluate` computes cross-entropy in float32 from whatever the callable returns; to match a
training script that evaluates under bf16 autocast, apply the autocast inside the callable.
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pgolf_pack.errors import InputError
from pgolf_pack.shards import read_shard, shard_num_tokens

__all__ = [
    "BpbResult",
    "ByteTables",
    "Windows",
    "build_byte_tables",
    "evaluate",
    "load_val_tokens",
    "sliding_windows",
    "token_bytes",
    "truncate_stream",
]

SPACE = "\u2581"  # SentencePiece's visible space, "▁"
_VAL_SHARD_NAME = re.compile(r"(?:.*_)?val_\d+\.bin")

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class ByteTables:
    """Per-token-id byte lookup tables; index i describes token id i.

    Attributes:
        base_bytes: int16, UTF-8 bytes of the piece without its leading "▁" (0 for boundaries).
        has_leading_space: bool, the piece starts with "▁" (one more byte unless after a boundary).
        is_boundary: bool, control, unknown or unused ids (and ids past the tokenizer's vocabulary).
    """

    base_bytes: np.ndarray
    has_leading_space: np.ndarray
    is_boundary: np.ndarray

    def __post_init__(self) -> None:
        arrays = {
            "base_bytes": np.array(self.base_bytes, dtype=np.int16),
            "has_leading_space": np.array(self.has_leading_space, dtype=np.bool_),
            "is_boundary": np.array(self.is_boundary, dtype=np.bool_),
        }
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise InputError(f"byte tables must be three 1-D arrays of one length, got shapes {sorted(shapes)}")
        for name, arr in arrays.items():
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.base_bytes.size)

    def as_tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three tables as torch tensors on `device` (int16, bool, bool)."""
        base, space, boundary = (torch.from_numpy(a.copy()).to(device) for a in self._arrays())
        return base, space, boundary

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.base_bytes, self.has_leading_space, self.is_boundary


@dataclass(frozen=True)
class BpbResult:
    """The score: mean loss in nats per token, bits per byte, and what was counted."""

    val_loss: float
    val_bpb: float
    tokens: int
    bytes: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class Windows(NamedTuple):
    """Evaluation windows: window k feeds inputs t[starts[k] : starts[k] + lengths[k]] and scores
    the targets at positions first_scored[k] .. lengths[k] - 1 within it."""

    starts: np.ndarray
    lengths: np.ndarray
    first_scored: np.ndarray


def build_byte_tables(
    tokenizer: str | os.PathLike[str] | spm.SentencePieceProcessor,
    vocab_size: int | None = None,
    *,
    allow_missing_space_piece: bool = False,
    allow_inner_spaces: bool = False,
    allow_larger_vocab: bool = False,
) -> ByteTables:
    """Byte tables of a SentencePiece tokenizer by the challenge's `build_sentencepiece_luts` rule.

    Args:
        tokenizer: a `.model` file or a loaded SentencePieceProcessor.
        vocab_size: the model's output vocabulary, if it must be checked; the challenge
            requires it to equal the tokenizer's. Tables have max(tokenizer, vocab_size) entries.
        allow_missing_space_piece: score a tokenizer without a standalone "▁" piece anyway.
            Its lone spaces become three byte-fallback tokens worth 3 bytes instead of 1, which
            understates bpb (challenge issue #897), so this is refused by default.
        allow_inner_spaces: score a tokenizer with pieces that hold a "▁" past their first
            character (e.g. "▁▁", from remove_extra_whitespaces=False). The rule counts such a
            "▁" as its 3 UTF-8 bytes rather than one space, which also understates bpb.
        allow_larger_vocab: accept vocab_size above the tokenizer's (a padded output layer);
            the extra ids are boundaries worth 0 bytes.

    Raises:
        InputError: unreadable tokenizer, no "▁" piece, pieces with inner "▁", or a vocab_size
            that does not match.
    """
    sp = _load_tokenizer(tokenizer)
    sp_vocab = int(sp.vocab_size())
    if vocab_size is None:
        vocab_size = sp_vocab
    if vocab_size < sp_vocab:
        raise InputError(
            f"vocab_size={vocab_size} is smaller than the tokenizer's {sp_vocab} pieces; "
            "the model must have a logit for every token id"
        )
    if vocab_size > sp_vocab and not allow_larger_vocab:
        raise InputError(
            f"vocab_size={vocab_size} differs from the tokenizer's {sp_vocab}; the challenge requires "
            "them equal (pass allow_larger_vocab=True for a padded output layer)"
        )
    if sp.piece_to_id(SPACE) == sp.unk_id() and not allow_missing_space_piece:
        raise InputError(
            'tokenizer has no standalone "▁" piece, so a lone space would count 3 bytes and bpb would '
            "read low (challenge issue #897); retrain it with one or pass allow_missing_space_piece=True"
        )
    base = np.zeros(vocab_size, dtype=np.int16)
    space = np.zeros(vocab_size, dtype=np.bool_)
    boundary = np.ones(vocab_size, dtype=np.bool_)
    inner_spaces = []
    for i in range(sp_vocab):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith(SPACE):
            space[i] = True
            piece = piece[1:]
        if SPACE in piece:
            inner_spaces.append(i)
        base[i] = len(piece.encode("utf-8"))
    if inner_spaces and not allow_inner_spaces:
        raise InputError(
            f"{len(inner_spaces)} pieces hold a \"▁\" past their first character (id {inner_spaces[0]}: "
            f"{sp.id_to_piece(inner_spaces[0])!r}), which the rule counts as 3 bytes instead of 1 and bpb would "
            "read low; pass allow_inner_spaces=True to score it as the challenge does"
        )
    return ByteTables(base, space, boundary)


def token_bytes(tables: ByteTables, prev_ids: ArrayT, target_ids: ArrayT) -> ArrayT:
    """Bytes of each target given its previous token: base_bytes[y] + (space[y] and not boundary[x]).

    Works on numpy arrays or torch tensors of any matching shape; returns int64 of that shape
    and kind (tensors stay on their device).

    Raises:
        InputError: shapes differ, or an id is negative or has no table entry.
    """
    if isinstance(target_ids, torch.Tensor):
        x, y = torch.as_tensor(prev_ids, device=target_ids.device), target_ids
        if not (_is_integer(x) and _is_integer(y)):
            raise InputError(f"token ids must be integers, got {x.dtype} and {y.dtype}")
        x, y = x.long(), y.long()
        luts = tables.as_tensors(y.device)
    else:
        x, y = np.asarray(prev_ids), np.asarray(target_ids)
        if not (_is_integer(x) and _is_integer(y)):
            raise InputError(f"token ids must be integers, got {x.dtype} and {y.dtype}")
        x, y = x.astype(np.int64), y.astype(np.int64)
        luts = tables._arrays()
    if tuple(x.shape) != tuple(y.shape):
        raise InputError(f"prev_ids and target_ids differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if (y.numel() if isinstance(y, torch.Tensor) else y.size) > 0:
        lo, hi = min(int(x.min()), int(y.min())), max(int(x.max()), int(y.max()))
        if lo < 0 or hi >= len(tables):
            raise InputError(f"token ids span [{lo}, {hi}] but the byte tables cover [0, {len(tables)})")
    return _token_bytes(*luts, x, y)  # type: ignore[arg-type]


def truncate_stream(tokens: np.ndarray, seq_len: int, max_tokens: int | None = None) -> np.ndarray:
    """The challenge's cut: first `max_tokens` tokens (if given), then the first `usable + 1`
    with `usable = ((N - 1) // seq_len) * seq_len`, so targets fill whole sequences.

    Raises:
        InputError: seq_len or max_tokens below 1, or fewer than seq_len + 1 tokens.
    """
    _check_positive(seq_len=seq_len)
    if max_tokens is not None:
        _check_positive(max_tokens=max_tokens)
        tokens = tokens[:max_tokens]
    usable = ((len(tokens) - 1) // seq_len) * seq_len
    if usable <= 0:
        raise InputError(f"{len(tokens)} tokens are too few for seq_len={seq_len}; need at least {seq_len + 1}")
    return tokens[: usable + 1]


def load_val_tokens(
    pattern: str | os.PathLike[str],
    seq_len: int,
    *,
    max_tokens: int | None = None,
    allow_non_val: bool = False,
) -> np.ndarray:
    """The validation stream: matching shards in sorted order, concatenated, cut by `truncate_stream`.

    Every matching file's header and size are checked first; only the shards needed for
    `max_tokens` are read.

    Args:
        pattern: a glob, e.g. "data/datasets/fineweb10B_sp1024/fineweb_val_*.bin".
        seq_len: the evaluation sequence length; it decides how much of the tail is dropped.
        max_tokens: keep only the first max_tokens tokens before the cut (quick checks).
        allow_non_val: accept files not named like validation shards (`*val_NNNNNN.bin`).

    Returns:
        A read-only 1-D uint16 array of `usable + 1` tokens.

    Raises:
        InputError: no file matches, a file is a training shard or byte sidecar (or otherwise not
            named like a validation shard), or the stream is too short.
        CorruptDataError: a malformed shard.
    """
    _check_positive(seq_len=seq_len, **({} if max_tokens is None else {"max_tokens": max_tokens}))
    files = sorted(glob.glob(os.fspath(pattern)))
    if not files:
        raise InputError(f"no file matches {os.fspath(pattern)!r}; point it at the fineweb_val_*.bin shards")
    if not allow_non_val:
        for f in files:
            _check_val_name(Path(f))
    counts = [shard_num_tokens(f) for f in files]
    limit = sum(counts) if max_tokens is None else max_tokens
    parts, have = [], 0
    for f, n in zip(files, counts):
        if have >= limit:
            break
        parts.append(read_shard(f, mmap=True)[: limit - have])  # reads only what is kept
        have += len(parts[-1])
    stream = truncate_stream(np.concatenate(parts) if parts else np.zeros(0, np.uint16), seq_len)
    stream.setflags(write=False)
    return stream


def sliding_windows(total_targets: int, seq_len: int, stride: int) -> Windows:
    """Windows that score each of `total_targets` targets exactly once (module docstring).

    With stride == seq_len these are the non-overlapping sequences. The first window is
    always kept, so streams shorter than the context are scored too (the challenge's filter
    drops it there, but its truncated streams are never that short).

    Raises:
        InputError: total_targets or seq_len below 1, or stride outside [1, seq_len].
    """
    _check_positive(total_targets=total_targets, seq_len=seq_len, stride=stride)
    if stride > seq_len:
        raise InputError(f"stride={stride} exceeds seq_len={seq_len}; windows would skip tokens")
    context = seq_len - stride
    starts = np.arange(0, total_targets, stride, dtype=np.int64)
    starts = starts[(starts == 0) | (starts + context < total_targets)]
    lengths = np.minimum(starts + seq_len, total_targets) - starts
    first_scored = np.where(starts == 0, 0, context).astype(np.int64)
    return Windows(starts, lengths, first_scored)


def evaluate(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    tokens: np.ndarray | torch.Tensor,
    tables: ByteTables,
    *,
    seq_len: int = 1024,
    stride: int | None = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> BpbResult:
    """Score a model on a validation stream: val_loss (nats/token) and val_bpb.

    Args:
        logits_fn: maps int64 token ids [B, seq_len] on `device` to logits [B, seq_len, V],
            V = len(tables); it must be causal (windows are padded at the end with token 0).
            It runs under torch.inference_mode; putting the model in eval mode is the caller's job.
        tokens: the stream from `load_val_tokens(..., seq_len)` (or `truncate_stream`).
        tables: from `build_byte_tables`.
        seq_len: tokens per sequence or window.
        stride: None for non-overlapping sequences; otherwise sliding windows advancing by
            `stride`, each target scored once with up to seq_len - stride tokens of context.
        batch_size: sequences per forward call.
        device: where the stream, the tables and the inputs live ("cpu", "cuda", ...).
        progress: show a tqdm bar over sequences.

    Raises:
        InputError: bad options, a stream not cut for this seq_len, token ids outside the
            tables, logits of the wrong shape, a non-finite total loss, or zero bytes.
    """
    _check_positive(seq_len=seq_len, batch_size=batch_size)
    total = len(tokens) - 1
    if total < seq_len or total % seq_len:
        raise InputError(
            f"the stream has {total} targets, not a positive multiple of seq_len={seq_len}; "
            "cut it with load_val_tokens/truncate_stream at this seq_len"
        )
    stream = _stream_on(tokens, device, len(tables))
    windows = sliding_windows(total, seq_len, seq_len if stride is None else stride)
    starts, lengths, first = (torch.from_numpy(a).to(stream.device) for a in windows)
    luts = tables.as_tensors(stream.device)
    pos = torch.arange(seq_len, device=stream.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=stream.device)
    token_count = torch.zeros((), dtype=torch.int64, device=stream.device)
    byte_count = torch.zeros((), dtype=torch.int64, device=stream.device)
    with torch.inference_mode(), tqdm(total=len(starts), unit="seq", disable=not progress) as bar:
        for b in range(0, len(starts), batch_size):
            batch = slice(b, b + batch_size)
            inside = pos < lengths[batch, None]  # [B, seq_len]; short windows are padded at the end
            idx = torch.where(inside, starts[batch, None] + pos, 0)
            x = torch.where(inside, stream[idx], 0).long()
            y = stream[idx + 1].long()
            logits = logits_fn(x)
            _check_logits(logits, (x.shape[0], seq_len, len(tables)))
            nll = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none").view_as(y)
            scored = inside & (pos >= first[batch, None])
            loss_sum += torch.where(scored, nll.double(), 0.0).sum()
            token_count += scored.sum()
            byte_count += torch.where(scored, _token_bytes(*luts, x, y), 0).sum()
            bar.update(x.shape[0])
    loss, n_tokens, n_bytes = float(loss_sum), int(token_count), int(byte_count)
    if not math.isfinite(loss):
        raise InputError(f"the model's total loss is {loss}; its logits contain NaN or infinity")
    if n_bytes == 0:
        raise InputError(f"the {n_tokens} scored tokens hold 0 bytes (all boundary tokens?); bpb is undefined")
    val_loss = loss / n_tokens
    val_bpb = (val_loss / math.log(2.0)) * (n_tokens / n_bytes)
    return BpbResult(val_loss=val_loss, val_bpb=val_bpb, tokens=n_tokens, bytes=n_bytes)


def _token_bytes(base: ArrayT, space: ArrayT, boundary: ArrayT, x: ArrayT, y: ArrayT) -> ArrayT:
    """The byte rule on pre-checked ids; numpy and torch share the indexing syntax."""
    extra = space[y] & ~boundary[x]
    if isinstance(y, torch.Tensor):
        return base[y].long() + extra.long()
    return base[y].astype(np.int64) + extra


def _load_tokenizer(tokenizer: str | os.PathLike[str] | spm.SentencePieceProcessor) -> spm.SentencePieceProcessor:
    if isinstance(tokenizer, spm.SentencePieceProcessor):
        return tokenizer
    path = Path(tokenizer)
    if not path.is_file():
        raise InputError(f"tokenizer {path} does not exist; pass a SentencePiece .model file")
    sp = spm.SentencePieceProcessor()
    try:
        sp.Load(str(path))
    except (OSError, RuntimeError) as e:
        raise InputError(f"tokenizer {path} is not a SentencePiece model ({str(e).splitlines()[0]})") from None
    return sp


def _check_val_name(path: Path) -> None:
    name = path.name
    if "_train_" in name:
        raise InputError(f"{path} is a training shard; validation must come from fineweb_val_*.bin")
    if "_bytes_" in name:
        raise InputError(f"{path} is a byte sidecar, not tokens; narrow the glob to fineweb_val_[0-9]*.bin")
    if not _VAL_SHARD_NAME.fullmatch(name):
        raise InputError(
            f"{path} is not named like a validation shard (*val_NNNNNN.bin); pass allow_non_val=True if it is one"
        )


def _stream_on(tokens: np.ndarray | torch.Tensor, device: torch.device | str, vocab: int) -> torch.Tensor:
    """The stream as a 1-D int32 tensor on `device` (half the memory of int64), ids checked < vocab."""
    if not _is_integer(tokens):
        raise InputError(f"tokens must be an integer array or tensor, got {getattr(tokens, 'dtype', type(tokens))}")
    if tokens.ndim != 1:
        raise InputError(f"tokens must be a 1-D stream, got shape {tuple(tokens.shape)}")
    if isinstance(tokens, torch.Tensor) and tokens.dtype in (torch.uint16, torch.uint32, torch.uint64):
        tokens = tokens.to(torch.int64)  # torch has no min/max for these (shards read as uint16)
    if len(tokens):
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= vocab:
            raise InputError(
                f"stream token ids span [{lo}, {hi}] but the tokenizer has {vocab} ids; "
                "shards and tokenizer do not match"
            )
    if isinstance(tokens, torch.Tensor):
        return tokens.detach().to(device=device, dtype=torch.int32)
    return torch.from_numpy(np.asarray(tokens, dtype=np.int32)).to(device)


def _is_integer(a: object) -> bool:
    if isinstance(a, torch.Tensor):
        return not (a.dtype.is_floating_point or a.dtype.is_complex or a.dtype == torch.bool)
    return isinstance(a, np.ndarray) and a.dtype.kind in "iu"


def _check_logits(logits: object, expected: tuple[int, int, int]) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        got = f"a {logits.dtype} tensor" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"logits_fn must return a float tensor of shape {expected}, got {got}")
    if tuple(logits.shape) != expected:
        raise InputError(
            f"logits_fn returned shape {tuple(logits.shape)}, expected (batch, seq_len, vocab) = {expected}"
        )


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
