"""pgolf-pack: fit a trained language model into a hard byte budget.

The native rANS codec lives in `pgolf_pack.rans`; see README.md for the command line.
"""

from pgolf_pack._version import __version__
from pgolf_pack.errors import BudgetError, CorruptDataError, InputError, PgolfPackError

__all__ = ["__version__", "BudgetError", "CorruptDataError", "InputError", "PgolfPackError"]


def __getattr__(name):  # the in-script API, imported on first use (it pulls in torch)
    if name in ("pack_checkpoint", "load_artifact"):
        from pgolf_pack import artifact, pack
        return getattr(pack if name == "pack_checkpoint" else artifact, name)
    raise AttributeError(f"module 'pgolf_pack' has no attribute '{name}'")
