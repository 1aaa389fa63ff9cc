"""Uniform per-row quantization: w ≈ symbol * scale[row], symbols integers.

Every scheme here shares one grid: a row's scale s (rounded to its stored form first, see
scales.py) and symbols round(w / s), clamped to ±qmax. Schemes differ only in qmax and in how
s is chosen from the row: its max, k times its standard deviation, the clip with the least
squared error, or (scheme "step") s = k * std with no clamp at all. Because the stored scale is
used to compute the symbols, `dequantize(quantize(w))` is exactly what an artifact holds, and
float32 arithmetic makes it identical on CPU and GPU: that is what QAT trains against.

Tensors of more than two dimensions are quantized as rows of their first dimension; 1-D
tensors as a single row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pgolf_pack.errors import InputError
from pgolf_pack.quant.scales import round_scales
from pgolf_pack.quant.spec import QuantSpec

MSE_CLIP_GRID = 24  # clip ratios tried per row by clip "mse", from 0.25 to 1.0 of the row max


@dataclass(frozen=True)
class RowStats:
    """Per-row max |w| and standard deviation: computed once when many specs are tried."""

    amax: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, w: torch.Tensor) -> RowStats:
        x = as_rows(w)
        return cls(x.abs().amax(dim=1), _row_std(x))


@dataclass(frozen=True)
class Quantized:
    """A quantized tensor: what the artifact stores, plus the exact float32 scales."""

    spec: QuantSpec
    shape: tuple[int, ...]
    dtype: torch.dtype
    symbols: torch.Tensor | None = None  # int32 [rows, cols]
    scales: torch.Tensor | None = None  # float32 [rows], exactly representable in the stored form
    scale_codes: torch.Tensor | None = None  # int64 [rows] minifloat codes (None: fp16 scales)
    passthrough: torch.Tensor | None = None  # the tensor in the passthrough dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def as_rows(w: torch.Tensor) -> torch.Tensor:
    """The float32 [rows, cols] view a quantizer works on."""
    if w.dim() == 0 or w.numel() == 0:
        raise InputError("scalars and empty tensors can only be stored as passthrough (fp32, fp16, bf16)")
    rows = w.shape[0] if w.dim() > 1 else 1
    return w.detach().float().reshape(rows, w.numel() // rows)


def quantize(w: torch.Tensor, spec: QuantSpec, stats: RowStats | None = None,
             gain: torch.Tensor | None = None) -> Quantized:
    """Quantize a tensor under `spec` (see QuantSpec for the schemes): any dtype under `raw`,
    floating-point tensors under the others.

    `stats` (RowStats.of(w)) may be passed to save recomputing them across many specs. `gain`
    (float [rows], > 0) multiplies each row's scale before it is rounded to its stored form: the
    loss-aware packer gives rows that matter less to the loss a coarser grid this way (clip
    "mse" picks its own scales and ignores it).
    """
    shape, dtype = tuple(w.shape), w.dtype
    if spec.kind.float_only and not torch.is_floating_point(w):
        raise InputError(f"only floating-point tensors can be quantized or passed through as '{spec}', got {w.dtype}; store it as 'raw'")
    if spec.is_passthrough:
        target = spec.kind.value_dtype or dtype
        return Quantized(spec, shape, dtype, passthrough=w.detach().to(target).contiguous())
    x = as_rows(w)
    stats = stats or RowStats(x.abs().amax(dim=1), _row_std(x))
    if spec.kind.clamped and spec.clip == "mse":
        codes, scales = _mse_scales(x, stats.amax, spec)
    else:
        raw = _raw_scales(stats, spec)
        codes, scales = round_scales(raw if gain is None else raw * gain.to(raw.dtype), spec.scale_bits)
    symbols = _symbols(x, scales, spec.qmax)
    return Quantized(spec, shape, dtype, symbols=symbols, scales=scales, scale_codes=codes)


def dequantize(q: Quantized) -> torch.Tensor:
    """The float32 tensor the stored form represents (exact; original shape)."""
    if q.passthrough is not None:
        return q.passthrough.float().reshape(q.shape)
    return (q.symbols.float() * q.scales[:, None]).reshape(q.shape)


def fake_quantize(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Straight-through estimator: forward = dequantize(quantize(w)) in w's dtype, gradient = identity.

    Written as w_hat + (w - w.detach()) so the forward value is w_hat exactly (the second
    term is exactly zero), which w + (w_hat - w) would not guarantee in floating point.
    """
    w_hat = dequantize(quantize(w.detach(), spec)).to(w.dtype)
    return w_hat + (w - w.detach())


def _row_std(x: torch.Tensor) -> torch.Tensor:
    # float64 sums make the result independent of the device's reduction order (CPU and GPU
    # agree on the float32 it rounds to), so QAT on a GPU and the packer on a CPU pick the
    # same stored scales.
    return (x.double().std(dim=1) if x.shape[1] > 1 else x.double().abs()[:, 0]).float()


def _raw_scales(stats: RowStats, spec: QuantSpec) -> torch.Tensor:
    amax = stats.amax
    if spec.scheme == "step":
        s = spec.k * stats.std
        s = torch.where(s > 0, s, amax)  # constant rows: one step per value
    else:
        clip = amax if spec.clip == "max" else spec.k * stats.std
        s = torch.where(clip > 0, clip, amax) / spec.qmax
    return _fill_zero_rows(s)


def _fill_zero_rows(s: torch.Tensor) -> torch.Tensor:
    """All-zero rows code as 0 whatever their scale; give them the median scale of the others
    so their scale codes sit with the rest instead of widening the codes' alphabet."""
    zero = s <= 0
    if zero.any():
        rest = s[~zero]
        s = torch.where(zero, rest.median() if rest.numel() else torch.ones((), dtype=s.dtype), s)
    return s


def _symbols(x: torch.Tensor, scales: torch.Tensor, qmax: int) -> torch.Tensor:
    return torch.round(x / scales[:, None]).clamp_(-qmax, qmax).to(torch.int32)


def _mse_scales(x: torch.Tensor, amax: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Per row, the clip (a fraction of the row max) whose rounded scale gives the least squared error."""
    amax = _fill_zero_rows(amax)
    best_err = torch.full_like(amax, float("inf"))
    best_codes, best_scales = None, None
    for r in torch.linspace(0.25, 1.0, MSE_CLIP_GRID).tolist():
        codes, scales = round_scales(amax * r / spec.qmax, spec.scale_bits)
        err = (_symbols(x, scales, spec.qmax).float() * scales[:, None] - x).square().sum(dim=1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_scales = scales if best_scales is None else torch.where(better, scales, best_scales)
        if codes is not None:
            best_codes = codes if best_codes is None else torch.where(better, codes, best_codes)
    return best_codes, best_scales
