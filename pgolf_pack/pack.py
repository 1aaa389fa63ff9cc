"""pack_checkpoint: a state dict and a byte budget in, the smallest-damage artifact out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

from pgolf_pack.artifact.writer import EncodedTensor, encode_artifact
from pgolf_pack.checkpoint import check_state_dict
from pgolf_pack.errors import BudgetError, InputError
from pgolf_pack.planner import Plan, encode_with, plan_budget


@dataclass(frozen=True)
class TensorReport:
    name: str
    shape: tuple[int, ...]
    scheme: str
    bits_per_weight: float
    coded_bytes: int  # its blobs
    floor_bytes: float  # order-0 entropy of what the blobs code
    damage: float  # unweighted squared reconstruction error

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "scheme": self.scheme,
                "bits_per_weight": self.bits_per_weight, "coded_bytes": self.coded_bytes,
                "floor_bytes": self.floor_bytes, "damage": self.damage}


@dataclass(frozen=True)
class PackResult:
    data: bytes
    plan: Plan
    tensors: list[TensorReport]
    code_bytes: int
    budget: int

    @property
    def artifact_bytes(self) -> int:
        return len(self.data)

    @property
    def total_bytes(self) -> int:
        return self.artifact_bytes + self.code_bytes

    @property
    def headroom(self) -> int:
        return self.budget - self.total_bytes


def pack_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    budget: int,
    *,
    code_bytes: int = 0,
    plan: Plan | None = None,
    sensitivities: Iterable[tuple[str, float]] = (),
    specs_for: Callable[[str, torch.Tensor], list[str]] | None = None,
    threads: int | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> PackResult:
    """Plan (or follow `plan`), encode and assemble an artifact; never exceeds `budget`.

    Raises BudgetError when artifact + code_bytes cannot fit, InputError for unusable input.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise InputError(f"budget must be a positive whole number of bytes, got {budget!r}")
    if isinstance(code_bytes, bool) or not isinstance(code_bytes, int) or code_bytes < 0:
        raise InputError(f"code_bytes must be a whole number >= 0, got {code_bytes!r}")
    if not state_dict:
        raise InputError("the state dict holds no tensors")
    state_dict = check_state_dict(state_dict)
    if plan is None:
        plan = plan_budget(state_dict, budget, code_bytes=code_bytes, sensitivities=sensitivities,
                           specs_for=specs_for, threads=threads, progress=progress)
    else:
        missing = [n for n in state_dict if n not in plan.specs]
        extra = [n for n in plan.specs if n not in state_dict]
        if missing or extra:
            raise InputError(f"the plan does not match the checkpoint: missing {missing[:3]}, unknown {extra[:3]}")
    encoded: list[EncodedTensor] = []
    reports: list[TensorReport] = []
    items = list(state_dict.items())
    for name, tensor in items:
        e, damage = encode_with(name, tensor, plan.specs[name], threads=threads)
        encoded.append(e)
        reports.append(TensorReport(name, tuple(tensor.shape), e.label, 8.0 * e.blob_bytes / max(1, tensor.numel()),
                                    e.blob_bytes, e.floor_bits / 8.0, damage))
    data = encode_artifact(encoded)
    if len(data) + code_bytes > budget:
        raise BudgetError(f"the plan needs {len(data) + code_bytes:,} bytes, over the budget of {budget:,} "
                          f"(artifact {len(data):,} + code {code_bytes:,}); plan again for this budget")
    return PackResult(data, plan, reports, code_bytes, budget)
