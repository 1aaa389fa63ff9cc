"""Model building (pgolf_pack.models): the synthetic baseline is the trainer's GPT in layout,
factories load by name, devices and bad factories fail with one clear error."""

import pytest
import torch

from pgolf_pack.errors import InputError
from pgolf_pack.models import build_model, load_factory, logits_fn, resolve_device
from pgolf_pack.synthetic import baseline_state_dict
from pgolf_train.model import GPT, GPTConfig


@pytest.mark.parametrize("layers,dim,heads,kv,mlp,vocab", [(2, 64, 4, 2, 2, 128), (3, 32, 2, 1, 3, 96), (9, 64, 8, 4, 2, 64)])
def test_synthetic_baseline_matches_the_trainers_gpt(layers, dim, heads, kv, mlp, vocab):
    """Same names in the same order, same shapes, same control values as a freshly built GPT;
    only the tied embedding differs in dtype (bf16, as the challenge's script keeps it)."""
    sd = baseline_state_dict(layers=layers, dim=dim, heads=heads, kv_heads=kv, mlp_mult=mlp, vocab=vocab)
    ref = GPT(GPTConfig(vocab_size=vocab, num_layers=layers, model_dim=dim, num_heads=heads, num_kv_heads=kv,
                        mlp_mult=mlp)).state_dict()
    assert list(sd) == list(ref)
    for name, t in ref.items():
        assert tuple(sd[name].shape) == tuple(t.shape), name
        assert sd[name].dtype == (torch.bfloat16 if name == "tok_emb.weight" else t.dtype), name
        if not name.endswith(".weight"):  # control tensors hold the model's initial values
            assert torch.equal(sd[name], t), name
    model = build_model(load_factory(None), sd, torch.device("cpu"), "checkpoint")
    out = logits_fn(model, torch.device("cpu"))(torch.zeros(1, 5, dtype=torch.long))
    assert out.shape == (1, 5, vocab)


def test_factories_and_devices_fail_with_one_clear_error():
    with pytest.raises(InputError, match="package.module:function"):
        load_factory("no_colon")
    with pytest.raises(InputError, match="cannot import"):
        load_factory("no_such_module_xyz:f")
    with pytest.raises(InputError, match="not a function"):
        load_factory("math:pi")
    with pytest.raises(InputError, match="unknown device 'bogus'"):
        resolve_device("bogus")
    with pytest.raises(InputError, match="not supported"):
        resolve_device("meta")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="cannot build the model"):
        build_model(load_factory(None), {"x": torch.zeros(2)}, torch.device("cpu"), "checkpoint")
    with pytest.raises(InputError, match="not a torch.nn.Module"):
        build_model(lambda sd: 3, {}, torch.device("cpu"), "checkpoint")
