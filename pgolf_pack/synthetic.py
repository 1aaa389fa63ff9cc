"""Synthetic checkpoints with the challenge baseline's names and shapes, for tests, benchmarks
and demos when no trained model is at hand.

The matrices have realistic per-row statistics for trained transformers: Student-t(5) entries
(heavier tails than a Gaussian) with row scales that vary log-normally across rows. Control
tensors hold the baseline's initial values. Nothing here is trained; use a real checkpoint for
anything that depends on what the weights compute.
"""

from __future__ import annotations

import torch


def baseline_state_dict(layers: int = 9, dim: int = 512, heads: int = 8, kv_heads: int = 4, mlp_mult: int = 2,
                        vocab: int = 1024, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the baseline GPT's layout (tok_emb in bf16, everything else fp32)."""
    g = torch.Generator().manual_seed(seed)
    kv = dim // heads * kv_heads

    def mat(rows: int, cols: int, scale: float) -> torch.Tensor:
        row_scale = scale * torch.exp(0.35 * torch.randn(rows, 1, generator=g))
        z = torch.randn(rows, cols, generator=g)
        chi2 = torch.randn(5, rows, cols, generator=g).square().sum(0)  # Student-t(5) = z / sqrt(chi2_5 / 5)
        return (z / (chi2 / 5).sqrt() * row_scale / (5 / 3) ** 0.5).float()

    sd = {"skip_weights": torch.ones(layers // 2, dim), "tok_emb.weight": mat(vocab, dim, 0.05).bfloat16()}
    for i in range(layers):
        p = f"blocks.{i}."
        sd[p + "attn_scale"] = torch.ones(dim)
        sd[p + "mlp_scale"] = torch.ones(dim)
        sd[p + "resid_mix"] = torch.stack([torch.ones(dim), torch.zeros(dim)])
        sd[p + "attn.q_gain"] = torch.full((heads,), 1.5)
        sd[p + "attn.c_q.weight"] = mat(dim, dim, 0.03)
        sd[p + "attn.c_k.weight"] = mat(kv, dim, 0.03)
        sd[p + "attn.c_v.weight"] = mat(kv, dim, 0.03)
        sd[p + "attn.proj.weight"] = mat(dim, dim, 0.02)
        sd[p + "mlp.fc.weight"] = mat(dim * mlp_mult, dim, 0.03)
        sd[p + "mlp.proj.weight"] = mat(dim, dim * mlp_mult, 0.015)
    return sd
