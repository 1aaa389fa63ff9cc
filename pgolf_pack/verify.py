"""Roundtrip verification: a packed artifact is only worth its val_bpb.

`verify` builds the model twice, from the original checkpoint and from the artifact's
dequantized tensors, scores both on the same validation tokens with the challenge's exact
accounting (`pgolf_pack.bpb`), and reports the difference.

Models come from a factory (`pgolf_pack.models`): the baseline GPT inferred from the
checkpoint's shapes, or any architecture through `--model package.module:function`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pgolf_pack.artifact import read_artifact
from pgolf_pack.artifact.format import DEFAULT_MAX_ELEMENTS
from pgolf_pack.bpb import BpbResult, build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.errors import InputError
from pgolf_pack.models import build_model, load_factory, logits_fn, resolve_device
from pgolf_pack.text import printable


@dataclass(frozen=True)
class VerifyResult:
    checkpoint: BpbResult
    artifact: BpbResult
    seq_len: int
    stride: int | None
    artifact_bytes: int

    @property
    def delta_bpb(self) -> float:
        return self.artifact.val_bpb - self.checkpoint.val_bpb

    def to_dict(self) -> dict:
        return {
            "bpb_checkpoint": self.checkpoint.val_bpb,
            "bpb_artifact": self.artifact.val_bpb,
            "delta_bpb": self.delta_bpb,
            "val_loss_checkpoint": self.checkpoint.val_loss,
            "val_loss_artifact": self.artifact.val_loss,
            "delta_loss": self.artifact.val_loss - self.checkpoint.val_loss,
            "tokens": self.checkpoint.tokens,
            "bytes": self.checkpoint.bytes,
            "seq_len": self.seq_len,
            "stride": self.stride,
            "artifact_bytes": self.artifact_bytes,
        }


def verify(
    artifact: str | Path,
    checkpoint: str | Path,
    val: str,
    tokenizer: str | Path,
    *,
    seq_len: int = 1024,
    stride: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    model: str | None = None,
    trust_pickle: bool = False,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    progress: bool = False,
) -> VerifyResult:
    """Score the checkpoint and the packed artifact on the same validation tokens."""
    dev = resolve_device(device)
    original = load_state_dict(checkpoint, trust_pickle=trust_pickle)
    packed_artifact = read_artifact(artifact, max_elements=max_elements)
    packed = packed_artifact.tensors()
    missing = [k for k in original if k not in packed]
    extra = [k for k in packed if k not in original]
    if missing or extra:
        raise InputError(f"the artifact does not hold this checkpoint's tensors (missing {missing[:3]}, "
                         f"extra {extra[:3]})")
    for k, t in original.items():
        if tuple(packed[k].shape) != tuple(t.shape):
            raise InputError(f"tensor '{printable(k)}' is {tuple(t.shape)} in the checkpoint but {tuple(packed[k].shape)} in the artifact")
    factory = load_factory(model)
    results = []
    tables = tokens = None
    for what, sd in (("checkpoint", original), ("artifact", packed)):
        net = build_model(factory, sd, dev, what)
        fn = logits_fn(net, dev)
        if tables is None:
            with torch.inference_mode():
                vocab = fn(torch.zeros(1, 1, dtype=torch.long, device=dev)).shape[-1]
            tables = build_byte_tables(tokenizer, vocab_size=vocab)
            tokens = load_val_tokens(val, seq_len, max_tokens=max_tokens)
        results.append(evaluate(fn, tokens, tables, seq_len=seq_len, stride=stride, batch_size=batch_size,
                                device=dev, progress=progress))
        del net
    return VerifyResult(results[0], results[1], seq_len, stride, packed_artifact.total_bytes)
