"""Weights for the benchmarks: a real checkpoint when given, else pgolf_pack.synthetic's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pgolf_pack.synthetic import baseline_state_dict


def load_matrices(path: Path | None) -> tuple[str, list[np.ndarray]]:
    """(label, the 2-D float matrices with more than 65,536 entries) of a checkpoint or a synthetic one."""
    if path is None:
        sd = baseline_state_dict()
        label = "synthetic baseline-shaped weights (17M params)"
    else:
        from pgolf_pack.checkpoint import load_state_dict

        sd = load_state_dict(path)
        label = f"checkpoint {path.name}"
    mats = [v.float().numpy() for v in sd.values() if v.dim() == 2 and v.numel() > 65536]
    return label, mats
