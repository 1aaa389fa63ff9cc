"""Roundtrip verification: a packed artifact is only worth its val_bpb.

`verify` builds the model twice, from the original checkpoint and from the artifact's
dequantized tensors, scores both on the same validation tokens with the challenge's exact
accounting (`pgolf_pack.bpb`), and reports the difference.

Models come from a *factory*: a function `factory(state_dict) -> torch.nn.Module` that builds
a model with those weights loaded. The default infers the challenge baseline's GPT from the
checkpoint's shapes (`pgolf_train.model.build_model_from_state_dict`); any other architecture
plugs in as `--model package.module:function`. The module must map token ids [B, T] to logits
[B, T, V], through a `forward_logits` or `logits` method if it has one, else its forward.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from pgolf_pack.artifact import read_artifact
from pgolf_pack.bpb import BpbResult, build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.errors import InputError

DEFAULT_FACTORY = "pgolf_train.model:build_model_from_state_dict"

Factory = Callable[[Mapping[str, torch.Tensor]], torch.nn.Module]


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


def load_factory(spec: str | None) -> Factory:
    """Import `package.module:function` (default: the baseline GPT builder)."""
    spec = spec or DEFAULT_FACTORY
    if ":" not in spec:
        raise InputError(f"--model takes package.module:function, got '{spec}'")
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InputError(f"cannot import '{module_name}' for the model factory ({e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"'{spec}' is not a function (expected factory(state_dict) -> nn.Module)")
    return factory


def logits_fn(model: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model as a token-ids -> logits callable, in eval mode, bf16 autocast on CUDA as the challenge evaluates."""
    model.eval()
    call = next((m for m in (getattr(model, n, None) for n in ("forward_logits", "logits")) if callable(m)), model)

    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return call(x)

    return fn


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but CUDA is not available")
    return torch.device(name)


def build(factory: Factory, state_dict: Mapping[str, torch.Tensor], device: torch.device, what: str) -> torch.nn.Module:
    try:
        model = factory(dict(state_dict))
    except (KeyError, RuntimeError, ValueError) as e:
        raise InputError(f"cannot build the model from the {what}'s tensors ({str(e).splitlines()[0][:200]}); "
                         "pass --model package.module:function for another architecture") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"the model factory returned {type(model).__name__}, not a torch.nn.Module")
    return model.to(device)


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
    progress: bool = False,
) -> VerifyResult:
    """Score the checkpoint and the packed artifact on the same validation tokens."""
    dev = resolve_device(device)
    original = load_state_dict(checkpoint, trust_pickle=trust_pickle)
    packed_artifact = read_artifact(artifact)
    packed = packed_artifact.tensors()
    missing = [k for k in original if k not in packed]
    extra = [k for k in packed if k not in original]
    if missing or extra:
        raise InputError(f"the artifact does not hold this checkpoint's tensors (missing {missing[:3]}, "
                         f"extra {extra[:3]})")
    for k, t in original.items():
        if tuple(packed[k].shape) != tuple(t.shape):
            raise InputError(f"tensor '{k}' is {tuple(t.shape)} in the checkpoint but {tuple(packed[k].shape)} in the artifact")
    factory = load_factory(model)
    results = []
    tables = tokens = None
    for what, sd in (("checkpoint", original), ("artifact", packed)):
        net = build(factory, sd, dev, what)
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
