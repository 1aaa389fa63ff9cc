"""Calibration: sensitivities come from training shards only, rank tensors by how much their
noise costs in loss, and make the planner's choice cost less loss than plain squared error."""

import numpy as np
import pytest
import torch

from pgolf_pack.errors import InputError
from pgolf_pack.sensitivity import calibration_tokens, measure_sensitivities
from pgolf_pack.shards import write_shard


def test_held_out_shards_are_refused(tmp_path):  # no "val" word in the name: pytest puts it in tmp_path
    write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(100, dtype=np.uint16))
    with pytest.raises(InputError, match="validation data may never be used"):
        calibration_tokens(str(tmp_path / "*.bin"), 50)
    with pytest.raises(InputError, match="no file matches"):
        calibration_tokens(str(tmp_path / "none_*.bin"), 50)
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(100, dtype=np.uint16))
    assert len(calibration_tokens(str(tmp_path / "fineweb_train_*.bin"), 50)) == 51


def test_sensitivity_tracks_the_loss(tmp_path):
    """A bigram model: rows of frequent tokens matter, the table of an unused token does not."""
    rng = np.random.default_rng(0)
    tokens = rng.choice(8, size=4097, p=[0.4, 0.3, 0.1, 0.1, 0.05, 0.05, 0.0, 0.0]).astype(np.uint16)
    sd = {"table.weight": torch.randn(8, 8), "unused.weight": torch.randn(4, 4)}

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(8, 8)
            self.unused = torch.nn.Linear(4, 4, bias=False)

        def forward_logits(self, x):
            return self.table(x)

    import sys
    import types

    mod = types.ModuleType("sens_models")
    mod.factory = lambda s: (lambda m: (m.load_state_dict(s), m)[1])(Model())
    sys.modules["sens_models"] = mod
    s = measure_sensitivities(sd, tokens, model="sens_models:factory", seq_len=256, device="cpu")
    assert s["table.weight"] > 1e-4 and s["unused.weight"] <= 1e-12
