"""Calibration: how much each tensor's quantization error costs in loss, measured on training data.

A weight error ε raises the loss by about ½ εᵀHε (H the loss Hessian). For each tensor we add
random noise ε and its negation and measure, on a fixed batch of *training* tokens,

    s = (L(W + ε) + L(W − ε) − 2 L(W)) / ‖ε‖²

(the antithetic pair cancels the gradient term), so s · ‖W − Ŵ‖² predicts the loss increase
(nats per token) of a quantization error with the same spread. The noise is large (half the
tensor's RMS, like the error of 2-3-bit quantization): a smaller one gives loss differences too
small to rise above the batch's float rounding, and only the ranking of tensors matters here. The planner minimises
Σ s_t · squared_error_t instead of plain squared error, i.e. it spends bytes where they buy
the most loss. The weights are written in the sensitivity-file format
({"tensor name": weight}), so they can be saved, inspected and reused.

Validation data is never used: calibration shards whose path says "val" are refused
(`pgolf_pack.shards.is_validation_path`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from pgolf_pack.errors import InputError
from pgolf_pack.shards import check_vocab, read_shard, training_files
from pgolf_pack.models import build_model, load_factory, logits_fn, resolve_device

# Noise std as a fraction of each tensor's RMS. Measured on a 17M-parameter H100 checkpoint
# (BENCHMARKS.md): at 0.05 the loss differences drown in evaluation noise and the weights hurt;
# 0.25-1.0 track real damage, 0.5 was never worse than the anchor exports at 3.4 or 5.8 bits/weight.
NOISE = 0.5
FLOOR = 1e-12  # sensitivities are clamped at this (noise can make a flat tensor's estimate negative)


def calibration_tokens(pattern: str, count: int) -> np.ndarray:
    """The first `count` + 1 tokens of the training shards matching `pattern` (sorted)."""
    files = training_files(pattern)  # refuses validation data (pgolf_pack.shards.is_validation_path)
    parts, have = [], 0
    for f in files:
        if have > count:
            break
        parts.append(np.asarray(read_shard(f, mmap=True)[: count + 1 - have]))
        have += len(parts[-1])
    tokens = np.concatenate(parts)
    if len(tokens) < 2:
        raise InputError("the calibration shards hold fewer than 2 tokens")
    return tokens


def measure_sensitivities(
    state_dict: Mapping[str, torch.Tensor],
    tokens: np.ndarray,
    *,
    model: str | None = None,
    seq_len: int = 1024,
    device: str = "auto",
    noise: float = NOISE,
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[str, float]:
    """Loss increase per unit squared error, per float tensor (see the module docstring)."""
    dev = resolve_device(device)
    net = build_model(load_factory(model), state_dict, dev, "checkpoint")
    fn = logits_fn(net, dev)
    with torch.inference_mode():
        check_vocab(tokens, fn(torch.zeros(1, 1, dtype=torch.long, device=dev)).shape[-1], "the calibration data")
    seq = min(seq_len, len(tokens) - 1)
    rows = (len(tokens) - 1) // seq
    t = torch.from_numpy(tokens[: rows * seq + 1].astype(np.int64)).to(dev)
    x, y = t[:-1].view(rows, seq), t[1:].view(rows, seq)

    def loss() -> float:
        with torch.inference_mode():
            total = 0.0
            for i in range(0, rows, 8):
                logits = fn(x[i : i + 8])
                total += float(F.cross_entropy(logits.float().flatten(0, 1), y[i : i + 8].flatten(), reduction="sum"))
            return total / y.numel()

    params = dict(net.named_parameters())
    params.update({k: v for k, v in net.named_buffers() if k not in params})
    names = [n for n, v in state_dict.items() if v.is_floating_point() and v.numel() > 0]
    missing = [n for n in names if n not in params]
    if missing:
        raise InputError(f"the model has no parameter named {missing[0]!r}; calibration needs the model's own names")
    base = loss()
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = {}
    for name in progress(names) if progress else names:
        p = params[name]
        with torch.no_grad():
            w = p.detach().clone()
            rms = float(w.float().square().mean().sqrt()) or 1e-3
            eps = (torch.randn(w.shape, generator=g) * (noise * rms)).to(device=dev, dtype=w.dtype)
            p.add_(eps)
            up = loss()
            p.copy_(w - eps)
            down = loss()
            p.copy_(w)
        energy = float(eps.float().square().sum())
        s = (up + down - 2 * base) / energy if energy > 0 else 0.0
        out[name] = max(s, FLOOR) if math.isfinite(s) else FLOOR
    return out
