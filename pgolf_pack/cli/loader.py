"""pgolf-loader: write the standalone artifact loader that a submission ships as counted code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pgolf_pack.cli.common import EXIT_CODES_HELP, EXIT_OK, check_outputs, run
from pgolf_pack.files import write_atomic
from pgolf_pack.loader import compact_loader, loader_source
from pgolf_pack.text import printable

DESCRIPTION = """Write the pgolf-pack artifact loader as one Python file that imports only numpy and
torch and defines load_pgpk(data: bytes) -> dict[str, torch.Tensor] (the same tensors as
pgolf_pack.load_artifact, bit for bit). With --compact it is one minified, compressed,
base85-encoded `exec` line to paste at the top level of train_gpt.py; its byte count is printed
and is what `pgolf-pack --embed-loader` adds to the counted code."""

EPILOG = f"""examples:
  pgolf-loader -o pgpk_loader.py              # readable: ship it, or read what it checks
  pgolf-loader --compact -o loader_line.py    # the counted one-liner

{EXIT_CODES_HELP}"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pgolf-loader", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", type=Path, required=True, help="the Python file to write")
    p.add_argument("--compact", action="store_true", help="the minified one-line exec form (counted bytes)")
    args = p.parse_args(argv)
    return run(lambda: _main(args), "pgolf-loader")


def _main(args: argparse.Namespace) -> int:
    check_outputs([("-o", args.output)])
    data = compact_loader() if args.compact else loader_source().encode()
    write_atomic(args.output, data)
    form = "compact loader" if args.compact else "loader"
    print(f"pgolf-loader: {form} -> {printable(args.output)} ({len(data):,} bytes)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
