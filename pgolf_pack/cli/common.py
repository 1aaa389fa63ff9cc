"""What every command shares: exit codes, one-line errors, progress bars, tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pgolf_pack.errors import InputError, PgolfPackError

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # bad input, corrupt data or an infeasible budget
EXIT_THRESHOLD = 3  # a --max-delta style check failed

EXIT_CODES_HELP = """exit codes:
  0  success
  1  internal error (a bug: please report it)
  2  bad input, corrupt data, or a budget that cannot be met; nothing is written"""


def run(main: Callable[[], int], prog: str) -> int:
    """Run a command; turn our own errors into one line on stderr and a non-zero exit."""
    try:
        return main()
    except PgolfPackError as e:  # InputError, CorruptDataError, BudgetError
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130


def add_max_elements(p: argparse.ArgumentParser) -> None:
    """--max-elements: the reader's cap on the elements an artifact may declare in all."""
    from pgolf_pack.artifact.format import DEFAULT_MAX_ELEMENTS

    p.add_argument("--max-elements", type=_positive_int, default=DEFAULT_MAX_ELEMENTS, metavar="N",
                   help=f"refuse artifacts that declare more than N elements in all (default {DEFAULT_MAX_ELEMENTS:,}, "
                        "about 1 GiB of float32; a tiny artifact can declare huge all-zero tensors)")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def code_size(files: Iterable[Path]) -> int:
    """Bytes of the code files that ship with an artifact (they count against the budget)."""
    total = 0
    for f in files:
        if not f.is_file():
            raise InputError(f"code file '{f}' does not exist")
        total += f.stat().st_size
    return total


def read_text(path: Path, what: str) -> str:
    """A user-named text file's contents, or one InputError naming it."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InputError(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} '{path}' is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{what} '{path}' cannot be read ({e.__class__.__name__}: {e})") from None


def progress(desc: str, enabled: bool) -> Callable[[Iterable], Iterable]:
    """A tqdm wrapper on stderr (or the identity when disabled or not a terminal)."""
    def wrap(items: Iterable) -> Iterable:
        if not enabled:
            return items
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="tensor", file=sys.stderr, leave=False, dynamic_ncols=True)

    return wrap


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str) -> str:
    """A plain-text table; `align` has one 'l' or 'r' per column."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def parse_bytes(text: str) -> int:
    """A decimal byte count: 16000000, 16_000_000, 16e6, 16MB (decimal, like the challenge)."""
    t = text.strip().replace("_", "").replace(",", "").upper()
    mult = 1
    for suffix, m in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3), ("B", 1)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    try:
        value = float(t) * mult
    except ValueError:
        raise ValueError(f"'{text}' is not a byte count (e.g. 16000000 or 16MB)") from None
    if value <= 0 or value != int(value):
        raise ValueError(f"'{text}' is not a positive whole number of bytes")
    return int(value)
