"""The exports competitors use today, re-implemented from their documented behaviour so
that benchmarks can put pgolf-pack beside them. Each returns (artifact bytes, the state dict a
loader gets back).

* baseline_int8_zlib: the challenge baseline's export (its `quantize_state_dict_int8` then
  `torch.save` then zlib-9): 2-D float tensors over 65,536 entries as per-row int8, clipped at
  the 99.99984th percentile of |w| with the row scale clip/127 floored at 1/127 and stored fp16;
  other large float tensors with one fp32 scale; small float tensors kept (fp32 for control
  tensors, else fp16); non-float tensors as they are.
* records_int6_brotli: the records' style (PR #1394 lineage): matrices as int6 in [-31, 31]
  with the row clip at 12.85 row standard deviations, the tied embedding as int8 with a 20-std
  clip, fp16 row scales, small tensors in fp16, `torch.save`, then brotli-11.
* records_gptq_brotli: the top records' export, the same grids quantized by full-Hessian GPTQ
  with Hessians from training activations (int6 matrices, int8 tied embedding).

`small` is the entry count up to which a matrix stays fp16 (65,536 in the records); at the demo
model's size that would keep every block matrix in fp16, so benchmarks pass 0 there.
"""

from __future__ import annotations

import io
import zlib

import brotli
import torch

CONTROL_PATTERNS = ("attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes", "q_gain",
                    "skip_weight", "skip_weights")
SMALL = 65_536


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def baseline_int8_zlib(sd: dict[str, torch.Tensor]) -> tuple[int, dict[str, torch.Tensor]]:
    stored, restored = {}, {}
    for name, t in sd.items():
        if not t.is_floating_point():
            stored[name] = restored[name] = t
            continue
        if t.numel() <= SMALL:
            keep = t.float() if any(p in name for p in CONTROL_PATTERNS) else (
                t.half() if t.dtype in (torch.float32, torch.bfloat16) else t)
            stored[name] = keep
            restored[name] = keep.to(t.dtype)
            continue
        w = t.float()
        if w.dim() == 2:
            clip = torch.quantile(w.abs(), 0.9999984, dim=1)
            scale = (clip / 127.0).clamp_min(1.0 / 127.0).half()
            q = torch.round(w.clamp(-clip[:, None], clip[:, None]) / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
            restored[name] = (q.float() * scale.float()[:, None]).to(t.dtype)
        else:
            clip = float(torch.quantile(w.abs().flatten(), 0.9999984))
            scale = torch.tensor(clip / 127.0 if clip > 0 else 1.0)
            q = torch.round(w.clamp(-clip, clip) / scale).clamp(-127, 127).to(torch.int8)
            restored[name] = (q.float() * scale).to(t.dtype)
        stored[name + ".q"], stored[name + ".scale"] = q, scale
    return len(zlib.compress(_save(stored), 9)), restored


def records_int6_brotli(sd: dict[str, torch.Tensor], k_matrix: float = 12.85, k_embed: float = 20.0,
                        small: int = SMALL) -> tuple[int, dict[str, torch.Tensor]]:
    """The records' grids rounded to nearest: `records_gptq_brotli` without Hessians."""
    return records_gptq_brotli(sd, {}, matrix_bits=6, k_matrix=k_matrix, embed_bits=8, k_embed=k_embed, small=small)


def squared_error(sd: dict[str, torch.Tensor], restored: dict[str, torch.Tensor]) -> float:
    return sum(float((restored[n].float() - t.float()).square().sum()) for n, t in sd.items() if t.is_floating_point())


def records_gptq_brotli(sd: dict[str, torch.Tensor], hessians: dict[str, torch.Tensor], matrix_bits: int = 6,
                        k_matrix: float = 12.85, embed_bits: int = 8, k_embed: float = 20.0, small: int = SMALL
                        ) -> tuple[int, dict[str, torch.Tensor]]:
    """The top records' export (PR #1394 lineage and later): full-Hessian GPTQ on every matrix
    with a Hessian from training activations (the tied embedding's from the final hidden states),
    SDClip row scales k * std(row) / qmax stored fp16 (k = 12.85 for int6 matrices, 20 for the int8
    embedding), tensors of at most `small` entries and non-matrices in fp16, torch.save, brotli-11.

    GPTQ as the records run it: dead columns get a unit diagonal, 1% mean-diagonal damping,
    columns in decreasing Hessian-diagonal order, blocks of 128, Cholesky of the inverse; no
    per-row fallback to rounding (that is pgolf-pack's addition). Matrices without a Hessian are
    rounded to nearest on the same grid."""
    from pgolf_pack.quant.gptq import error_feedback, factor

    stored, restored = {}, {}
    for name, t in sd.items():
        if not t.is_floating_point():
            stored[name] = restored[name] = t
            continue
        if t.dim() != 2 or t.numel() <= small:
            stored[name] = t.half()
            restored[name] = t.half().to(t.dtype)
            continue
        w = t.float()
        embed = "emb" in name
        bits, k = (embed_bits, k_embed) if embed else (matrix_bits, k_matrix)
        qmax = (1 << (bits - 1)) - 1
        scale = (k * w.std(dim=1) / qmax).clamp_min(1e-8).half()
        if name in hessians:
            q = error_feedback(w, scale.float(), torch.full((w.shape[0],), float(qmax)), factor(hessians[name]))
            q = q.to(torch.int8)
        else:
            q = torch.round(w / scale.float()[:, None]).clamp(-qmax, qmax).to(torch.int8)
        stored[name + ".q"], stored[name + ".scale"] = q, scale
        restored[name] = (q.float() * scale.float()[:, None]).to(t.dtype)
    return len(brotli.compress(_save(stored), quality=11)), restored
