"""A tiny causal model for pgolf-verify tests, loaded through --model verify_models:bigram."""

import torch


class Bigram(torch.nn.Module):
    """logits[t] = table[token[t]]: causal, cheap, and its state dict is one matrix."""

    def __init__(self, vocab: int):
        super().__init__()
        self.table = torch.nn.Embedding(vocab, vocab)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.table(x)


def bigram(state_dict):
    model = Bigram(state_dict["table.weight"].shape[0])
    model.load_state_dict(state_dict)
    return model
