"""Text that came from files, made safe to show: names escaped for terminals, JSON without NaN.

Tensor names, paths and plan keys are attacker-controlled bytes; printed raw, an ANSI escape in a
name can clear the terminal or draw a fake result. Everything shown to a person goes through
`printable`; everything written as JSON goes through `dumps_json`.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps_json", "finite_json", "printable"]


def printable(text: object) -> str:
    """`text` with every control or non-printable character (ESC, newline, lone surrogates,
    bidi overrides, ...) written as its repr-style escape, e.g. `\\x1b`; the rest unchanged."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _escape(c) for c in s)


def _escape(c: str) -> str:
    n = ord(c)
    if c in "\t\n\r":
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}[c]
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def finite_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON null), recursively:
    strict JSON has no NaN or Infinity, and other tools refuse files that hold them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """json.dumps of `finite_json(value)`, strict (allow_nan=False): never NaN or Infinity."""
    return json.dumps(finite_json(value), allow_nan=False, **kwargs)
