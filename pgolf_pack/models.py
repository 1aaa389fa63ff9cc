"""Building a model from a state dict: the one place verify, calibration and the benchmarks
get a model, a device and a logits function from.

Models come from a *factory*: a function `factory(state_dict) -> torch.nn.Module` that builds
a model with those weights loaded. The default infers the challenge baseline's GPT from the
checkpoint's shapes (`pgolf_train.model.build_model_from_state_dict`); any other architecture
plugs in as `--model package.module:function`. The module must map token ids [B, T] to logits
[B, T, V], through a `forward_logits` or `logits` method if it has one, else its forward.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

import torch

from pgolf_pack.errors import InputError

DEFAULT_FACTORY = "pgolf_train.model:build_model_from_state_dict"

Factory = Callable[[Mapping[str, torch.Tensor]], torch.nn.Module]


def load_factory(spec: str | None) -> Factory:
    """Import `package.module:function` (default: the baseline GPT builder)."""
    spec = spec or DEFAULT_FACTORY
    if ":" not in spec:
        raise InputError(f"--model takes package.module:function, got '{spec}'")
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InputError(f"cannot import '{module_name}' for the model factory ({e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"'{spec}' is not a function (expected factory(state_dict) -> nn.Module)")
    return factory


def raw_logits_call(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's token-ids -> logits entry point: `forward_logits`, `logits`, or the module itself."""
    return next((m for m in (getattr(model, n, None) for n in ("forward_logits", "logits")) if callable(m)), model)


def logits_fn(model: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model as a token-ids -> logits callable, in eval mode, bf16 autocast on CUDA as the challenge evaluates."""
    model.eval()
    call = raw_logits_call(model)

    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return call(x)

    return fn


def resolve_device(name: str) -> torch.device:
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`; one InputError otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but CUDA is not available")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"device '{name}' is not supported (use auto, cpu, cuda or cuda:N)")
    return device


def build_model(factory: Factory, state_dict: Mapping[str, torch.Tensor], device: torch.device,
                what: str) -> torch.nn.Module:
    """The factory's model with these tensors, on `device`; `what` names the tensors' source in errors."""
    try:
        model = factory(dict(state_dict))
    except (KeyError, RuntimeError, ValueError) as e:
        raise InputError(f"cannot build the model from the {what}'s tensors ({str(e).splitlines()[0][:200]}); "
                         "pass --model package.module:function for another architecture") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"the model factory returned {type(model).__name__}, not a torch.nn.Module")
    return model.to(device)
