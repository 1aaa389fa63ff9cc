"""The GPT: the baseline's exact state-dict inventory, checkpoints that rebuild from their shapes
with identical logits, and the optimizer pieces (Muon's orthogonalisation, parameter groups)."""

import pytest
import torch

import pgolf_train.model as model_mod
from pgolf_pack.errors import InputError
from pgolf_train.model import GPT, GPTConfig, build_model_from_state_dict, config_from_state_dict
from pgolf_train.muon import Muon, orthogonalize

TINY = GPTConfig(vocab_size=96, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2, mlp_mult=2)


def test_baseline_state_dict_inventory():
    """Names, order, shapes and the parameter count of survey §5.1 (17,059,912)."""
    sd = GPT(GPTConfig()).state_dict()
    block = {
        "attn_scale": (512,), "mlp_scale": (512,), "resid_mix": (2, 512), "attn.q_gain": (8,),
        "attn.c_q.weight": (512, 512), "attn.c_k.weight": (256, 512), "attn.c_v.weight": (256, 512),
        "attn.proj.weight": (512, 512), "mlp.fc.weight": (1024, 512), "mlp.proj.weight": (512, 1024),
    }
    expected = {"skip_weights": (4, 512), "tok_emb.weight": (1024, 512)}
    for i in range(9):
        expected.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert list(sd)[:2] == ["skip_weights", "tok_emb.weight"]
    assert sum(v.numel() for v in sd.values()) == 17_059_912
    assert not any("inv_freq" in k or "lm_head" in k for k in sd)


def test_baseline_init():
    m = GPT(TINY)
    assert torch.all(m.blocks[0].attn.proj.weight == 0) and torch.all(m.blocks[1].mlp.proj.weight == 0)
    assert m.blocks[0].attn.c_q.weight.abs().sum() > 0
    assert torch.all(m.blocks[2].attn.q_gain == 1.5) and torch.all(m.skip_weights == 1)
    assert m.blocks[0].resid_mix[0].eq(1).all() and m.blocks[0].resid_mix[1].eq(0).all()
    assert abs(m.tok_emb.weight.std().item() - 0.005) < 0.001


def test_untied_model_has_an_lm_head():
    cfg = GPTConfig(vocab_size=96, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=2, tie_embeddings=False)
    sd = GPT(cfg).state_dict()
    assert sd["lm_head.weight"].shape == (96, 32)
    assert config_from_state_dict(sd) == cfg


def _trained_like(cfg: GPTConfig, seed: int = 0) -> GPT:
    """A model whose every tensor is random (so zero-init projections do not hide anything)."""
    torch.manual_seed(seed)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.1 + (1.0 if p.ndim == 1 else 0.0))
    return m


@pytest.mark.parametrize("cfg", [
    TINY,
    GPTConfig(vocab_size=80, num_layers=4, model_dim=48, num_heads=6, num_kv_heads=6, mlp_mult=3),
    GPTConfig(vocab_size=64, num_layers=1, model_dim=16, num_heads=2, num_kv_heads=1, mlp_mult=1.5),
])
def test_checkpoint_rebuilds_from_its_shapes_with_identical_logits(tmp_path, cfg):
    model = _trained_like(cfg).eval()
    path = tmp_path / "final_model.pt"
    torch.save(model.state_dict(), path)
    sd = torch.load(path, weights_only=True)
    rebuilt = build_model_from_state_dict(sd).eval()
    assert rebuilt.config == cfg
    ids = torch.randint(0, cfg.vocab_size, (2, 17))
    with torch.no_grad():
        assert torch.equal(rebuilt.logits(ids), model.logits(ids))
        assert torch.equal(rebuilt(ids, ids), model(ids, ids))
    # torch.compile / DDP prefixes and a bf16 embedding (the baseline's dtype) are accepted too.
    wrapped = {f"_orig_mod.{k}": v for k, v in sd.items()}
    wrapped["_orig_mod.tok_emb.weight"] = sd["tok_emb.weight"].bfloat16()
    assert build_model_from_state_dict(wrapped).config == cfg


def test_heads_come_from_q_gain():
    """The same tensors but for q_gain's length describe models with different head counts."""
    sd = GPT(GPTConfig(vocab_size=64, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=4)).state_dict()
    for i in range(2):
        sd[f"blocks.{i}.attn.q_gain"] = torch.ones(2)
    cfg = config_from_state_dict(sd)
    assert (cfg.num_heads, cfg.num_kv_heads) == (2, 2)


def test_bad_state_dicts_are_refused():
    sd = GPT(TINY).state_dict()
    with pytest.raises(InputError, match="state dict has no 'tok_emb.weight'"):
        build_model_from_state_dict({k: v for k, v in sd.items() if k != "tok_emb.weight"})
    with pytest.raises(InputError, match=r"missing \['blocks.1.mlp_scale'\]"):
        build_model_from_state_dict({k: v for k, v in sd.items() if k != "blocks.1.mlp_scale"})
    with pytest.raises(InputError, match=r"unexpected \['extra'\]"):
        build_model_from_state_dict({**sd, "extra": torch.zeros(1)})
    bad = dict(sd)
    bad["blocks.2.mlp.proj.weight"] = torch.zeros(32, 32)
    with pytest.raises(InputError, match=r"'blocks.2.mlp.proj.weight' has shape \(32, 32\), expected \(32, 64\)"):
        build_model_from_state_dict(bad)
    with pytest.raises(InputError, match="q_gain has 3 entries, which does not divide model_dim 32"):
        build_model_from_state_dict({**sd, "blocks.0.attn.q_gain": torch.ones(3)})


def test_config_errors():
    with pytest.raises(InputError, match="num_heads 4 is not divisible by num_kv_heads 3"):
        GPTConfig(model_dim=32, num_heads=4, num_kv_heads=3)
    with pytest.raises(InputError, match="model_dim 30 is not divisible by num_heads 4"):
        GPTConfig(model_dim=30, num_heads=4, num_kv_heads=2)


def test_grouped_query_fallback_matches_sdpa_gqa(monkeypatch):
    """The repeat-K/V path (torch < 2.5) computes what SDPA's enable_gqa does."""
    if not model_mod._SDPA_GQA:
        pytest.skip("this torch has no enable_gqa to compare with")
    model = _trained_like(TINY).eval()
    ids = torch.randint(0, 96, (2, 9))
    with torch.no_grad():
        native = model.logits(ids)
        monkeypatch.setattr(model_mod, "_SDPA_GQA", False)
        assert torch.allclose(model.logits(ids), native, atol=1e-5, rtol=1e-5)


def test_attention_is_causal():
    model = _trained_like(TINY).eval()
    ids = torch.randint(0, 96, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 96
    with torch.no_grad():
        assert torch.equal(model.logits(ids)[:, :8], model.logits(changed)[:, :8])
        assert not torch.equal(model.logits(ids)[:, 8:], model.logits(changed)[:, 8:])


def test_logits_are_soft_capped():
    model = _trained_like(TINY)
    with torch.no_grad():
        model.tok_emb.weight.mul_(1000)
        z = model.logits(torch.randint(0, 96, (1, 5)))
    assert z.abs().max() <= 30.0 and z.abs().max() > 29.0


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48)])
def test_orthogonalize_flattens_the_spectrum(shape):
    torch.manual_seed(0)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k))
    g = u @ torch.diag(torch.logspace(0, 1.5, k)) @ v.T  # singular values from 1 to 31.6
    s = torch.linalg.svdvals(orthogonalize(g, steps=5, dtype=torch.float32))
    assert orthogonalize(g, dtype=torch.float32).shape == shape
    assert s.min() > 0.5 and s.max() < 1.3


def test_muon_step_and_its_refusals():
    w = torch.nn.Parameter(torch.randn(8, 4))
    opt = Muon([w], lr=0.1, momentum=0.0, nesterov=False, ns_dtype=torch.float32)
    before = w.detach().clone()
    w.grad = torch.randn(8, 4)
    opt.step()
    step = (before - w.detach()) / 0.1
    expected = orthogonalize(w.grad, 5, torch.float32) * (8 / 4) ** 0.5
    assert torch.allclose(step, expected, atol=1e-5)
    with pytest.raises(ValueError, match="2-D matrices only"):
        Muon([torch.nn.Parameter(torch.ones(3))], lr=0.1)
