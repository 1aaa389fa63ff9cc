"""The exceptions pgolf-pack raises on purpose; each message names the problem and the fix."""


class PgolfPackError(Exception):
    """Base class of every deliberate pgolf-pack error."""


class InputError(PgolfPackError, ValueError):
    """A bad argument or input: wrong dtype, missing file, a checkpoint that is not a state dict."""


class CorruptDataError(PgolfPackError, ValueError):
    """Bytes that fail validation: truncated, corrupted or hostile streams and artifacts."""


class BudgetError(PgolfPackError):
    """A byte budget that no plan can meet."""
