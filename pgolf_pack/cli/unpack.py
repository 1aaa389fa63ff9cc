"""pgolf-unpack: an artifact back to a plain state dict (dequantized, original names and dtypes)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

from pgolf_pack.artifact import load_artifact
from pgolf_pack.files import write_atomic
from pgolf_pack.cli.common import EXIT_CODES_HELP, EXIT_OK, add_max_elements, check_outputs, run
from pgolf_pack.text import printable

DESCRIPTION = """Decode a pgolf-pack artifact into a state dict: torch.save format (.pt) by default,
or safetensors when the output ends in .safetensors. Every byte of the artifact is checked
first; a corrupt or truncated file is refused and nothing is written."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pgolf-unpack", description=DESCRIPTION, epilog=EXIT_CODES_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="a .pgpk artifact written by pgolf-pack")
    p.add_argument("-o", "--output", type=Path, required=True, help="state dict to write (.pt or .safetensors)")
    add_max_elements(p)
    args = p.parse_args(argv)
    return run(lambda: _main(args), "pgolf-unpack")


def _main(args: argparse.Namespace) -> int:
    check_outputs([("-o", args.output)], [("artifact", args.artifact)])
    tensors = load_artifact(args.artifact, max_elements=args.max_elements)
    if args.output.suffix == ".safetensors":
        from safetensors.torch import save

        data = save(tensors)
    else:
        buf = io.BytesIO()
        torch.save(tensors, buf)
        data = buf.getvalue()
    write_atomic(args.output, data)
    print(f"pgolf-unpack: {printable(args.artifact)} -> {printable(args.output)} ({len(tensors)} tensors, {len(data):,} bytes)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
