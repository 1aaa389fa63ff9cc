"""Weights for the benchmarks: a real checkpoint when given, else a synthetic state dict of
the challenge baseline's shapes with realistic per-row statistics (heavy-tailed rows whose
scales vary across rows, as trained transformer matrices do)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_baseline(layers: int = 9, dim: int = 512, mlp_mult: int = 2, vocab: int = 1024, kv_heads: int = 4,
                       heads: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """A baseline-architecture state dict (float32 numpy), no training involved."""
    rng = np.random.default_rng(seed)
    kv = dim // heads * kv_heads

    def mat(rows, cols, scale):
        row_scale = scale * np.exp(rng.normal(0, 0.35, (rows, 1)))
        return (rng.standard_t(5, (rows, cols)) * row_scale / np.sqrt(5 / 3)).astype(np.float32)

    sd = {"skip_weights": np.ones((layers // 2, dim), np.float32),
          "tok_emb.weight": mat(vocab, dim, 0.05)}
    for i in range(layers):
        p = f"blocks.{i}."
        sd[p + "attn_scale"] = np.ones(dim, np.float32)
        sd[p + "mlp_scale"] = np.ones(dim, np.float32)
        sd[p + "resid_mix"] = np.stack([np.ones(dim), np.zeros(dim)]).astype(np.float32)
        sd[p + "attn.q_gain"] = np.full(heads, 1.5, np.float32)
        sd[p + "attn.c_q.weight"] = mat(dim, dim, 0.03)
        sd[p + "attn.c_k.weight"] = mat(kv, dim, 0.03)
        sd[p + "attn.c_v.weight"] = mat(kv, dim, 0.03)
        sd[p + "attn.proj.weight"] = mat(dim, dim, 0.02)
        sd[p + "mlp.fc.weight"] = mat(dim * mlp_mult, dim, 0.03)
        sd[p + "mlp.proj.weight"] = mat(dim, dim * mlp_mult, 0.015)
    return sd


def load_matrices(path: Path | None) -> tuple[str, list[np.ndarray]]:
    """(label, the 2-D float matrices with more than 65,536 entries) of a checkpoint or the synthetic one."""
    if path is None:
        sd = synthetic_baseline()
        label = "synthetic baseline-shaped weights (17M params)"
    else:
        from pgolf_pack.checkpoint import load_state_dict

        sd = {k: v.float().numpy() for k, v in load_state_dict(path).items()}
        label = f"checkpoint {path.name}"
    mats = [np.asarray(v, dtype=np.float32) for v in sd.values() if np.ndim(v) == 2 and np.size(v) > 65536]
    return label, mats
