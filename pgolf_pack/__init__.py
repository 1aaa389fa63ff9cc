"""pgolf-pack: fit a trained language model into a hard byte budget.

The native rANS codec lives in `pgolf_pack.rans`; see README.md for the command line.
"""

from pgolf_pack._version import __version__
from pgolf_pack.errors import BudgetError, CorruptDataError, InputError, PgolfPackError

__all__ = ["__version__", "BudgetError", "CorruptDataError", "InputError", "PgolfPackError"]
