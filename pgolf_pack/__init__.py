"""pgolf-pack: fit a trained language model into a hard byte budget.

The public API, small on purpose (README.md has the command line)::

    from pgolf_pack import pack_checkpoint, load_artifact, decode_artifact

    result = pack_checkpoint(model.state_dict(), 16_000_000, code_bytes=len(code))  # PackResult
    result, stats = calibrated_pack(model.state_dict(), 16_000_000, calibrate="train_*.bin")  # loss-aware
    open("model.pgpk", "wb").write(result.data)
    tensors = load_artifact("model.pgpk")        # {name: tensor}, original dtypes and shapes
    tensors = decode_artifact(result.data).tensors()

The codec is `pgolf_pack.rans`, the quantizers `pgolf_pack.quant`. Attributes load lazily, so
`import pgolf_pack` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgolf_pack._version import __version__
from pgolf_pack.errors import BudgetError, CorruptDataError, InputError, PgolfPackError

if TYPE_CHECKING:
    from pgolf_pack.artifact import Artifact, decode_artifact, load_artifact, read_artifact
    from pgolf_pack.lossaware import calibrated_pack
    from pgolf_pack.pack import PackResult, pack_checkpoint
    from pgolf_pack.planner import Plan, plan_budget

_LAZY = {
    "Artifact": "pgolf_pack.artifact", "decode_artifact": "pgolf_pack.artifact",
    "load_artifact": "pgolf_pack.artifact", "read_artifact": "pgolf_pack.artifact",
    "PackResult": "pgolf_pack.pack", "pack_checkpoint": "pgolf_pack.pack",
    "Plan": "pgolf_pack.planner", "plan_budget": "pgolf_pack.planner",
    "calibrated_pack": "pgolf_pack.lossaware",
}

__all__ = ["__version__", "BudgetError", "CorruptDataError", "InputError", "PgolfPackError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pgolf_pack' has no attribute '{name}'")
