"""pgolf_train: train the Parameter Golf baseline GPT whose checkpoints pgolf-pack packs.

The model (`pgolf_train.model`) imports nothing CUDA-only, so pgolf_pack can rebuild a model
from a checkpoint's shapes on any machine. Training is `pgolf-train` (see train/README.md).
"""

from pgolf_train.model import GPT, GPTConfig, build_model_from_state_dict, config_from_state_dict

__all__ = ["GPT", "GPTConfig", "build_model_from_state_dict", "config_from_state_dict"]
