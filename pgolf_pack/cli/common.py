"""What every command shares: exit codes, one-line errors, progress bars, tables."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path

from pgolf_pack.errors import InputError, PgolfPackError
from pgolf_pack.text import printable

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
        print(f"{prog}: error: {printable(e)}", file=sys.stderr)  # names from files may hold escapes
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130


def add_max_elements(p: argparse.ArgumentParser) -> None:
    """--max-elements: the reader's cap on the elements an artifact may declare in all."""
    from pgolf_pack.artifact.format import DEFAULT_MAX_ELEMENTS

    p.add_argument("--max-elements", type=positive_int, default=DEFAULT_MAX_ELEMENTS, metavar="N",
                   help=f"refuse artifacts that declare more than N elements in all (default {DEFAULT_MAX_ELEMENTS:,}, "
                        "about 1 GiB of float32; a tiny artifact can declare huge all-zero tensors)")


def code_size(files: Iterable[Path]) -> int:
    """Bytes of the code files that ship with an artifact (they count against the budget)."""
    total = 0
    for f in files:
        if not f.is_file():
            raise InputError(f"code file '{printable(f)}' does not exist")
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
    cells = [[printable(h) for h in headers]] + [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


MAX_BYTES = 2**63 - 1  # the largest file size an off_t can hold


def parse_bytes(text: str) -> int:
    """A decimal byte count, parsed exactly: 16000000, 16_000_000, 16,000,000, 16e6, 16MB, 1.5KB
    (decimal units, like the challenge). Raises ValueError for anything that is not a whole
    number of bytes in [1, 2^63 - 1]: fractions, zero, negatives, inf, nan, 1e400."""
    t = text.strip().replace("_", "").replace(",", "").upper()
    mult = 1
    for suffix, m in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3), ("B", 1)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)].strip(), m
            break
    try:
        value = Decimal(t)  # exact: 9007199254740993 stays ...993 (a float makes it ...992)
    except InvalidOperation:
        raise ValueError(f"'{text}' is not a byte count (e.g. 16000000 or 16MB)") from None
    if value.is_finite() and value.adjusted() <= 18 and len(t) <= 64:  # else too big (or 1e999999999)
        with localcontext(prec=100):  # exact for anything this short
            value *= mult
    if not value.is_finite() or value <= 0 or value.adjusted() > 18 or value != value.to_integral_value():
        raise ValueError(f"'{text}' is not a whole number of bytes between 1 and {MAX_BYTES:,}")
    if value > MAX_BYTES:
        raise ValueError(f"'{text}' is more than {MAX_BYTES:,} bytes")
    return int(value)


def byte_count(text: str) -> int:
    """argparse type for byte budgets (see parse_bytes)."""
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (token counts, sequence lengths, threads)."""
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive whole number (1 or more)")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (a NaN threshold would make every comparison pass)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def check_outputs(outputs: Sequence[tuple[str, Path]], inputs: Sequence[tuple[str, Path]] = ()) -> None:
    """Refuse, before any work, outputs that cannot be written or would destroy something.

    `outputs` and `inputs` are (what, path) pairs, e.g. ("-o", Path("m.pgpk")). An output is
    refused when it resolves (symlinks followed, hard links compared with samefile) to an input
    or to another output, when it is a directory, or when its directory is missing or not
    writable. One InputError names the option, the path and what to do.
    """
    seen: list[tuple[str, str, Path]] = [("input", what, Path(p)) for what, p in inputs]
    for what, path in outputs:
        path = Path(path)
        for kind, other_what, other in seen:
            if _same_file(path, other):
                raise InputError(f"{what} '{printable(path)}' is the same file as the {kind} {other_what} "
                                 f"'{printable(other)}'; writing it would destroy that file: choose another path")
        seen.append(("output", what, path))
        if path.is_dir():
            raise InputError(f"{what} '{printable(path)}' is a directory; name a file")
        if path.exists() and not path.is_file():
            raise InputError(f"{what} '{printable(path)}' is not a regular file (a device, pipe or socket); "
                             "name a file")
        directory = path.parent
        if not directory.is_dir():
            raise InputError(f"the directory of {what} '{printable(path)}' does not exist; create it first")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InputError(f"the directory of {what} '{printable(path)}' is not writable; choose another path")
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(f"{what} '{printable(path)}' is read-only; choose another path")


def _same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file: equal after resolving symlinks, or hard links to it."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compare what we can
        if os.path.abspath(a) == os.path.abspath(b):
            return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False
