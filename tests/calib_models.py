"""Small non-baseline models for calibration tests, loaded through --model calib_models:<factory>."""

import torch


class TinyMLPLM(torch.nn.Module):
    """Embedding -> LayerNorm -> Linear+GELU -> Linear -> separate head; one tensor it never reads.

    Not the baseline GPT: untied head with a bias, a LayerNorm with weight and bias, nn.Linear
    layers and an `unused` matrix that calibration cannot place."""

    def __init__(self, vocab: int = 32, dim: int = 16, hidden: int = 32):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.up = torch.nn.Linear(dim, hidden, bias=False)
        self.down = torch.nn.Linear(hidden, dim, bias=False)
        self.head = torch.nn.Linear(dim, vocab)
        self.unused = torch.nn.Parameter(torch.randn(4, 4))

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(x))
        h = h + self.down(torch.nn.functional.gelu(self.up(h)))
        return self.head(h)


def _loaded(cls: type[TinyMLPLM], state_dict) -> TinyMLPLM:
    vocab, dim = state_dict["embed.weight"].shape
    model = cls(vocab, dim, state_dict["up.weight"].shape[0])
    model.load_state_dict(state_dict)
    return model


def tiny_mlp_lm(state_dict):
    return _loaded(TinyMLPLM, state_dict)


class FlagRecordingLM(TinyMLPLM):
    """TinyMLPLM that records, at each forward, whether torch's deterministic algorithms are on,
    and with `alert` also calls an operation torch reports as having no deterministic
    implementation (`put_` without accumulation; on CUDA, scatter-adds are such operations)."""

    seen: list[bool] = []
    alert = False

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        FlagRecordingLM.seen.append(torch.are_deterministic_algorithms_enabled())
        if FlagRecordingLM.alert:
            torch.zeros(2).put_(torch.tensor([0, 0]), torch.ones(2), accumulate=False)
        return super().forward_logits(x)


def flag_recording_lm(state_dict):
    return _loaded(FlagRecordingLM, state_dict)
