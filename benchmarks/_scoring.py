"""What the val_bpb benchmarks share: their common arguments, the checkpoint and validation
tokens they load, and scoring a state dict (or a packed one) with the challenge's accounting."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgolf_pack.artifact import parse_artifact
from pgolf_pack.bpb import build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.planner import TensorPlan, plan_from
from pgolf_pack.models import build, load_factory, logits_fn


def add_scoring_arguments(ap: argparse.ArgumentParser, max_tokens: int) -> None:
    """CHECKPOINT, --val, --tokenizer, --seq-len and --max-tokens."""
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--val", required=True, help="validation shards (scoring only)")
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--max-tokens", type=int, default=max_tokens)


@dataclass
class Scoring:
    """A checkpoint, validation tokens, and `bpb(state)`: val_bpb of a state dict on them (CPU)."""

    state_dict: dict[str, torch.Tensor]
    tokens: np.ndarray
    bpb: Callable[[Mapping[str, torch.Tensor]], float]

    def packed(self, tensors: list[TensorPlan], budget: int) -> tuple[int, float]:
        """(artifact bytes, val_bpb) of the checkpoint packed at `budget` from evaluated tensors."""
        r = pack_checkpoint(self.state_dict, budget, plan=plan_from(tensors, budget))
        return r.artifact_bytes, self.bpb(parse_artifact(r.data).tensors())


def load_scoring(args: argparse.Namespace, model: str | None = None) -> Scoring:
    """The checkpoint and tokens named by add_scoring_arguments' arguments, with a scorer."""
    factory, device = load_factory(model), torch.device("cpu")
    tokens = load_val_tokens(args.val, args.seq_len, max_tokens=args.max_tokens)
    tables = None

    def bpb(state: Mapping[str, torch.Tensor]) -> float:
        nonlocal tables
        fn = logits_fn(build(factory, state, device, "benchmark"), device)
        if tables is None:  # sized to the model's vocabulary
            with torch.inference_mode():
                vocab = fn(torch.zeros(1, 1, dtype=torch.long)).shape[-1]
            tables = build_byte_tables(args.tokenizer, vocab_size=vocab)
        return evaluate(fn, tokens, tables, seq_len=args.seq_len, batch_size=8).val_bpb

    return Scoring(load_state_dict(args.checkpoint), tokens, bpb)
