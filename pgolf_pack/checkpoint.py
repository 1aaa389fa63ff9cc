"""Read a trained model's weights: torch.save state dicts (plain or wrapped) and safetensors.

PyTorch checkpoints are pickles, and unpickling can run arbitrary code. We load them with
`torch.load(weights_only=True)`, which only rebuilds tensors and plain containers; a file that
needs more is refused unless the caller passes `trust_pickle=True` (`--trust-pickle` on the
command line), which should only be done for files from a trusted source.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from pgolf_pack.artifact import format as fmt
from pgolf_pack.errors import InputError
from pgolf_pack.text import printable

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "ema", "weights")


def load_state_dict(path: str | Path, *, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors by name, in file order (CPU tensors, original dtypes).

    Accepts `torch.save(model.state_dict())`, dicts that wrap one under a key such as "model"
    or "state_dict", DDP/compile prefixes ("module.", "_orig_mod.") and `.safetensors` files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint '{path}' does not exist (pass the path of a .pt or .safetensors file)")
    if path.suffix == ".safetensors" or _is_safetensors(path):
        return _load_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" not in str(e):  # refused for another reason: the bytes are no valid checkpoint
            raise InputError(f"'{path}' is not a readable PyTorch checkpoint ({_first_line(e)})") from None
        if not trust_pickle:
            found = re.search(r"GLOBAL ([\w.]+)", str(e))
            what = f"it references {found.group(1)}" if found else "it references code"
            raise InputError(
                f"'{path}' is a pickle that would run code to load ({what}); re-save it with "
                "torch.save(model.state_dict()), or pass --trust-pickle if you trust its source"
            ) from None
        obj = _load_any(path, weights_only=False)
    except Exception as e:  # torch.load raises many types on non-checkpoint bytes
        raise InputError(f"'{path}' is not a readable PyTorch checkpoint ({_first_line(e)})") from None
    return _state_dict_of(obj, path)


def _load_any(path: Path, weights_only: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:
        raise InputError(f"'{path}' is not a readable PyTorch checkpoint ({_first_line(e)})") from None


def _state_dict_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # unwrap {"model": {...}} and the like
        if isinstance(obj, Mapping) and obj and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise InputError(f"'{path}' holds a {type(obj).__name__}, not a state dict of tensors")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError(f"'{path}' holds no tensors (keys: {', '.join(map(str, list(obj)[:6]))})")
    if len(tensors) < sum(isinstance(v, torch.Tensor) for v in obj.values()):
        seen: set[str] = set()
        dup = next(str(k) for k, v in obj.items() if isinstance(v, torch.Tensor) and (str(k) in seen or seen.add(str(k))))
        raise InputError(f"'{path}' has two tensors named {dup!r} once keys are strings (e.g. 1 and '1'); rename one")
    for prefix in ("_orig_mod.", "module."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return check_state_dict({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, path)


def check_state_dict(state_dict: Mapping[str, torch.Tensor], where: str | Path = "the state dict") -> dict[str, torch.Tensor]:
    """The state dict if an artifact can hold every tensor of it (names, dtypes, sizes), else
    one InputError naming the first tensor that cannot be stored and what to do."""
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            raise InputError(f"{where}: '{printable(name)}' is a {type(t).__name__}, not a tensor")
        try:
            fmt.check_name(name)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
        if t.dtype not in fmt.DTYPE_CODES:
            kinds = ", ".join(str(d).replace("torch.", "") for d in fmt.DTYPE_CODES)
            raise InputError(f"{where}: tensor '{printable(name)}' has dtype {str(t.dtype).replace('torch.', '')}, which artifacts "
                             f"do not store; cast it to one of {kinds}")
        if t.numel() > fmt.MAX_TENSOR_ELEMENTS or max(t.shape, default=0) > fmt.MAX_TENSOR_ELEMENTS:
            raise InputError(f"{where}: tensor '{printable(name)}' has shape {tuple(t.shape)}, over the format's "
                             f"{fmt.MAX_TENSOR_ELEMENTS:,} elements a tensor and a dimension; split it")
    return dict(state_dict)


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = {k: v.contiguous() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"'{path}' is not a readable safetensors file ({_first_line(e)})") from None
    if not tensors:
        raise InputError(f"'{path}' holds no tensors")
    return check_state_dict(tensors, path)


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:160]}" if text else type(e).__name__
