"""The challenge baseline's GPT, with the baseline's state-dict names and shapes.

Architecture (the Parameter Golf baseline, `train_gpt.py` in openai/parameter-golf):

* token embedding, RMS-normalised; its output `x0` is fed to every block through `resid_mix`;
* `num_layers` blocks, split into an encoder half (the first `num_layers // 2`) whose outputs
  are kept, and a decoder half that adds them back in reverse order, each scaled per channel
  by a row of `skip_weights` (a U-Net over depth);
* each block: `x = resid_mix[0]*x + resid_mix[1]*x0`, then pre-norm attention and a pre-norm
  ReLU² MLP, each added with a per-channel gain (`attn_scale`, `mlp_scale`);
* attention: grouped-query (`num_kv_heads` key/value heads), RMS-normalised queries and keys,
  rotary embeddings (half-split convention), a learned per-head query gain `q_gain`;
* tied embeddings by default (no `lm_head`), logits soft-capped by `cap * tanh(z / cap)`.

Every RMS norm has no weight. Matrices are kept in float32 and cast to the compute dtype at
use, so under bf16 autocast the master weights stay exact. Nothing here needs CUDA: the model
runs, saves and loads on CPU (the packer builds one from a checkpoint's shapes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pgolf_pack.errors import InputError

# scaled_dot_product_attention(enable_gqa=...) exists from torch 2.5; older versions repeat K/V.
_SDPA_GQA = tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2]) >= (2, 5)

# Small tensors the optimizer treats as scalars/control parameters (Adam, not Muon).
CONTROL_NAMES = ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weights")


@dataclass(frozen=True)
class GPTConfig:
    """Model shape and the few constants that cannot be read back from a state dict."""

    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: float = 2.0
    tie_embeddings: bool = True
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5
    tied_embed_init_std: float = 0.005

    def __post_init__(self) -> None:
        for name in ("vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.model_dim % self.num_heads:
            raise InputError(f"model_dim {self.model_dim} is not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise InputError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        if self.head_dim % 2:
            raise InputError(f"head_dim {self.head_dim} (model_dim / num_heads) must be even for rotary embeddings")
        if self.mlp_hidden < 1:
            raise InputError(f"mlp_mult {self.mlp_mult} gives an empty MLP at model_dim {self.model_dim}")
        if not self.logit_softcap > 0:
            raise InputError(f"logit_softcap must be positive, got {self.logit_softcap}")

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(round(self.mlp_mult * self.model_dim))


class CastedLinear(nn.Linear):
    """A bias-free linear layer whose float32 weight is cast to the input's dtype at use."""

    def __init__(self, in_features: int, out_features: int, zero_init: bool = False):
        super().__init__(in_features, out_features, bias=False)
        self.zero_init = zero_init

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


def _rms(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    """Rotary position tables; `inv_freq` is a non-persistent buffer (not in the state dict)."""

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        pos = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        angles = pos[:, None] * self.inv_freq[None, :]
        return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Half-split rotary: (a, b) -> (a cos + b sin, b cos - a sin), the baseline's convention."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat((a * cos + b * sin, b * cos - a * sin), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        kv_dim = cfg.num_kv_heads * cfg.head_dim
        self.c_q = CastedLinear(cfg.model_dim, cfg.model_dim)
        self.c_k = CastedLinear(cfg.model_dim, kv_dim)
        self.c_v = CastedLinear(cfg.model_dim, kv_dim)
        self.proj = CastedLinear(cfg.model_dim, cfg.model_dim, zero_init=True)
        self.q_gain = nn.Parameter(torch.full((cfg.num_heads,), cfg.qk_gain_init, dtype=torch.float32))
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base)

    def forward(self, x: Tensor) -> Tensor:
        bsz, seq, dim = x.shape
        q = self.c_q(x).view(bsz, seq, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).view(bsz, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.c_v(x).view(bsz, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = _rms(q), _rms(k)
        cos, sin = self.rotary(seq, q.dtype)
        q = _rotate(q, cos, sin) * self.q_gain.to(q.dtype)[None, :, None, None]
        k = _rotate(k, cos, sin)
        if self.num_kv_heads == self.num_heads:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif _SDPA_GQA:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            group = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(bsz, seq, dim))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = CastedLinear(cfg.model_dim, cfg.mlp_hidden)
        self.proj = CastedLinear(cfg.mlp_hidden, cfg.model_dim, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        dim = cfg.model_dim
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)
        self.attn_scale = nn.Parameter(torch.ones(dim))
        self.mlp_scale = nn.Parameter(torch.ones(dim))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))))

    def forward(self, x: Tensor, x0: Tensor) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        x = x + self.attn_scale.to(x.dtype) * self.attn(_rms(x))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(_rms(x))


class GPT(nn.Module):
    """The baseline GPT. `model(ids, targets)` is the mean cross-entropy; `model.logits(ids)`
    the soft-capped logits [batch, seq, vocab].

    `residual_dtype`, when set (the trainer sets bfloat16 under bf16 autocast), is the dtype the
    residual stream is carried in, as in the baseline, whose embedding is stored in bf16.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.residual_dtype: torch.dtype | None = None
        self.num_encoder_layers = cfg.num_layers // 2
        self.num_decoder_layers = cfg.num_layers - self.num_encoder_layers
        num_skips = min(self.num_encoder_layers, self.num_decoder_layers)
        # Registration order gives the baseline's state-dict order: skip_weights, tok_emb, blocks.
        self.skip_weights = nn.Parameter(torch.ones(num_skips, cfg.model_dim))
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.model_dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.lm_head = None if cfg.tie_embeddings else CastedLinear(cfg.model_dim, cfg.vocab_size, zero_init=True)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The baseline's init: N(0, tied_embed_init_std) tied embedding, zero output projections,
        PyTorch's default (Kaiming-uniform) for the other matrices, identity control tensors."""
        if self.config.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=self.config.tied_embed_init_std)
        for m in self.modules():
            if isinstance(m, CastedLinear) and m.zero_init:
                nn.init.zeros_(m.weight)

    def _hidden(self, input_ids: Tensor) -> Tensor:
        x = self.tok_emb(input_ids)
        if self.residual_dtype is not None:
            x = x.to(self.residual_dtype)
        x = x0 = _rms(x)
        skips: list[Tensor] = []
        for i in range(self.num_encoder_layers):
            x = self.blocks[i](x, x0)
            skips.append(x)
        for i in range(self.num_decoder_layers):
            if skips:
                x = x + self.skip_weights[i].to(x.dtype) * skips.pop()
            x = self.blocks[self.num_encoder_layers + i](x, x0)
        return _rms(x)

    def _project(self, h: Tensor) -> Tensor:
        if self.lm_head is None:
            z = F.linear(h, self.tok_emb.weight.to(h.dtype))
        else:
            z = self.lm_head(h)
        cap = self.config.logit_softcap
        return cap * torch.tanh(z / cap)

    def logits(self, input_ids: Tensor) -> Tensor:
        """Soft-capped logits, [batch, seq, vocab], in the compute dtype."""
        return self._project(self._hidden(input_ids))

    def forward(self, input_ids: Tensor, target_ids: Tensor) -> Tensor:
        """Mean next-token cross-entropy in nats (float32), as the challenge's forward returns."""
        z = self.logits(input_ids)
        return F.cross_entropy(z.float().reshape(-1, z.size(-1)), target_ids.reshape(-1))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def _strip_wrappers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop the prefixes torch.compile (`_orig_mod.`) and DDP (`module.`) add to every key."""
    out = {}
    for name, tensor in state_dict.items():
        while name.startswith(_WRAPPER_PREFIXES):
            name = name.split(".", 1)[1]
        out[name] = tensor
    return out


def config_from_state_dict(state_dict: Mapping[str, Tensor], **constants: float) -> GPTConfig:
    """Infer a GPTConfig from a checkpoint's tensor shapes.

    Shapes fix vocab, width, depth, MLP width, tying and the key/value width, but not the number
    of heads: the query projection is [dim, dim] whatever the head count. The head count is
    read from the length of `blocks.0.attn.q_gain`, one gain per head. `rope_base`,
    `logit_softcap` (and the init-only constants) are not stored either; pass them as keyword
    arguments when a checkpoint was trained with non-default values.

    Raises:
        InputError: the state dict is not a baseline GPT's (a tensor missing or misshapen).
    """
    sd = _strip_wrappers(state_dict)

    def shape(name: str) -> tuple[int, ...]:
        if name not in sd:
            raise InputError(f"state dict has no '{name}': not a baseline GPT checkpoint")
        return tuple(sd[name].shape)

    vocab, dim = shape("tok_emb.weight")
    layers = 0
    while f"blocks.{layers}.attn.c_q.weight" in sd:
        layers += 1
    if layers == 0:
        raise InputError("state dict has no 'blocks.0.attn.c_q.weight': not a baseline GPT checkpoint")
    (heads,) = shape("blocks.0.attn.q_gain")
    if heads < 1 or dim % heads:
        raise InputError(f"q_gain has {heads} entries, which does not divide model_dim {dim}")
    kv_dim = shape("blocks.0.attn.c_k.weight")[0]
    if kv_dim % (dim // heads):
        raise InputError(f"c_k has {kv_dim} rows, not a multiple of head_dim {dim // heads}")
    hidden = shape("blocks.0.mlp.fc.weight")[0]
    mlp_mult = hidden // dim if hidden % dim == 0 else hidden / dim
    return GPTConfig(
        vocab_size=vocab,
        num_layers=layers,
        model_dim=dim,
        num_heads=heads,
        num_kv_heads=kv_dim // (dim // heads),
        mlp_mult=mlp_mult,
        tie_embeddings="lm_head.weight" not in sd,
        **constants,
    )


def build_model_from_state_dict(state_dict: Mapping[str, Tensor], **constants: float) -> GPT:
    """A GPT built from a checkpoint's shapes (see config_from_state_dict) with its weights loaded.

    The model is float32 on CPU; every key must match (no missing or extra tensors), and
    `_orig_mod.` / `module.` wrapper prefixes are accepted.

    Raises:
        InputError: the state dict does not describe a baseline GPT.
    """
    sd = _strip_wrappers(state_dict)
    model = GPT(config_from_state_dict(sd, **constants))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    if missing or extra:
        raise InputError(f"state dict does not match the inferred GPT: missing {missing[:4]}, unexpected {extra[:4]}")
    for name, ref in expected.items():
        if tuple(sd[name].shape) != tuple(ref.shape):
            raise InputError(f"'{name}' has shape {tuple(sd[name].shape)}, expected {tuple(ref.shape)}")
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model

