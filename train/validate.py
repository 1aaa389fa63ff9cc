"""Periodic validation during training: val_loss and val_bpb, shared out over the ranks.

The score is `pgolf_pack.bpb`'s, the one implementation of the challenge's byte rule: the
validation stream (`fineweb_val_*.bin`, cut to whole sequences plus one token) is scored in
non-overlapping sequences of TRAIN_SEQ_LEN, as the baseline's periodic `eval_val` does. Rank r
of W scores the contiguous run of sequences [total·r/W, total·(r+1)/W); the per-rank sums of
loss, tokens and bytes are all-reduced, so every rank gets the score of the whole stream:

    val_loss = loss_sum / tokens                       (nats per token)
    val_bpb  = val_loss / ln 2 * tokens / bytes        (bits per byte)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
from torch import Tensor

from pgolf_pack.bpb import build_byte_tables, evaluate


class Validator:
    """Scores a logits function on (this rank's share of) the validation stream."""

    def __init__(self, tokens: np.ndarray, sp: spm.SentencePieceProcessor, vocab_size: int, seq_len: int,
                 batch_seqs: int, device: torch.device, rank: int = 0, world_size: int = 1):
        self.tables = build_byte_tables(sp, vocab_size)
        self.seq_len, self.batch_seqs = seq_len, max(1, batch_seqs)
        self.device, self.rank, self.world_size = device, rank, world_size
        total = (len(tokens) - 1) // seq_len
        self.total_tokens = total * seq_len
        first, last = total * rank // world_size, total * (rank + 1) // world_size
        self.tokens = tokens[first * seq_len : last * seq_len + 1] if last > first else None

    def evaluate(self, logits_fn: Callable[[Tensor], Tensor]) -> tuple[float, float]:
        """(val_loss in nats, val_bpb) of the whole stream; every rank must call it.

        `logits_fn` maps int64 ids [B, seq_len] to logits [B, seq_len, vocab] (apply autocast and
        eval mode inside or around it).
        """
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, tokens, bytes
        if self.tokens is not None:
            r = evaluate(logits_fn, self.tokens, self.tables, seq_len=self.seq_len, batch_size=self.batch_seqs,
                         device=self.device)
            sums += torch.tensor([r.val_loss * r.tokens, r.tokens, r.bytes], dtype=torch.float64, device=self.device)
        if self.world_size > 1:
            dist.all_reduce(sums)
        loss_sum, tokens, nbytes = sums.tolist()
        val_loss = loss_sum / tokens
        return val_loss, val_loss / math.log(2.0) * tokens / nbytes
