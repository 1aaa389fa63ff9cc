"""Validation loss and val_bpb exactly as the challenge's baseline computes them.

The validation stream (all `fineweb_val_*.bin`, cut to whole sequences plus one token) is split
into sequences of TRAIN_SEQ_LEN; each rank scores a contiguous range of them. Per batch the
model's mean cross-entropy times its token count is summed in float64, and so are the bytes of
the target tokens (see `_byte_luts`). Then

    val_loss = loss_sum / tokens                       (nats per token)
    val_bpb  = val_loss / ln 2 * tokens / bytes        (bits per byte)

This is non-overlapping evaluation, the baseline's periodic metric; the sliding-window score of
later records is the packer's business.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
from torch import Tensor, nn


def _byte_luts(sp: spm.SentencePieceProcessor, vocab_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-token byte counts for val_bpb: (base_bytes int16, has_leading_space bool, is_boundary bool).

    The challenge's rule: control, unknown and unused ids are boundaries worth 0 bytes; a
    byte-fallback piece is 1 byte; any other piece is the UTF-8 length of its text without one
    leading "▁", and that "▁" adds 1 byte only when the previous token is not a boundary.
    Tables have max(tokenizer size, vocab_size) entries.

    Private on purpose: pgolf_pack.bpb is the canonical implementation; switch to it once it lands.
    """
    n = int(sp.vocab_size())
    size = max(n, vocab_size)
    base = np.zeros(size, dtype=np.int16)
    space = np.zeros(size, dtype=np.bool_)
    boundary = np.ones(size, dtype=np.bool_)
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith("\u2581"):
            space[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return torch.from_numpy(base), torch.from_numpy(space), torch.from_numpy(boundary)


class Validator:
    """Scores a model on the validation stream; holds the tokens and byte tables on one device."""

    def __init__(self, tokens: Tensor, sp: spm.SentencePieceProcessor, vocab_size: int, seq_len: int,
                 batch_seqs: int, device: torch.device, rank: int = 0, world_size: int = 1):
        self.tokens = tokens
        self.seq_len, self.batch_seqs = seq_len, max(1, batch_seqs)
        self.device, self.rank, self.world_size = device, rank, world_size
        self.base_bytes, self.has_space, self.is_boundary = (t.to(device) for t in _byte_luts(sp, vocab_size))

    @property
    def num_tokens(self) -> int:
        """Scored target tokens over all ranks."""
        return (self.tokens.numel() - 1) // self.seq_len * self.seq_len

    def target_bytes(self, prev: Tensor, target: Tensor) -> Tensor:
        """UTF-8 bytes of each target token given the token before it (int64, same shape)."""
        extra = self.has_space[target] & ~self.is_boundary[prev]
        return self.base_bytes[target].long() + extra.long()

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, autocast: AbstractContextManager | None = None) -> tuple[float, float]:
        """(val_loss in nats, val_bpb), summed over every rank's share of the sequences."""
        total = (self.tokens.numel() - 1) // self.seq_len
        first, last = total * self.rank // self.world_size, total * (self.rank + 1) // self.world_size
        sums = torch.zeros(3, device=self.device, dtype=torch.float64)  # loss, tokens, bytes
        was_training = model.training
        model.eval()
        for start in range(first, last, self.batch_seqs):
            end = min(start + self.batch_seqs, last)
            chunk = self.tokens[start * self.seq_len : end * self.seq_len + 1].to(self.device, non_blocking=True)
            x = chunk[:-1].view(-1, self.seq_len)
            y = chunk[1:].view(-1, self.seq_len)
            with autocast or nullcontext():
                loss = model(x, y).detach()
            n = y.numel()
            sums[0] += loss.double() * n
            sums[1] += n
            sums[2] += self.target_bytes(x, y).sum().double()
        if self.world_size > 1:
            dist.all_reduce(sums)
        model.train(was_training)
        loss_sum, tokens, nbytes = sums.tolist()
        val_loss = loss_sum / tokens
        return val_loss, val_loss / math.log(2.0) * tokens / nbytes
