"""pgolf-verify: score a packed artifact against its checkpoint with the challenge's val_bpb."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pgolf_pack.cli.common import (
    EXIT_CODES_HELP, EXIT_OK, EXIT_THRESHOLD, add_max_elements, finite_float, positive_int, run, table,
)
from pgolf_pack.models import DEFAULT_FACTORY
from pgolf_pack.text import dumps_json
from pgolf_pack.verify import verify

DESCRIPTION = """Evaluate the original checkpoint and the packed artifact on the same validation
tokens, exactly as the challenge scores val_bpb (byte tables from the SentencePiece model,
leading-space rule, boundary tokens, float64 sums, the validation stream cut to whole
sequences), and print val_loss and val_bpb for each and the difference.

The baseline GPT is inferred from the checkpoint's shapes. Other architectures plug in with
--model package.module:function, a function that takes a state dict and returns a
torch.nn.Module (with the weights loaded) mapping token ids [B, T] to logits [B, T, V]
through a forward_logits or logits method, or its forward."""

EPILOG = f"""examples:
  pgolf-verify final_model.pgpk --checkpoint final_model.pt \\
      --val 'data/datasets/fineweb10B_sp1024/fineweb_val_*.bin' --tokenizer fineweb_1024_bpe.model
  pgolf-verify m.pgpk --checkpoint m.pt --val 'val_*.bin' --tokenizer t.model --stride 64 --json
  pgolf-verify m.pgpk --checkpoint m.pt --val 'val_*.bin' --tokenizer t.model --max-tokens 200000 --max-delta 0.01

{EXIT_CODES_HELP}
  3  --max-delta was given and the artifact is worse than the checkpoint by more than that"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgolf-verify", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="the .pgpk artifact written by pgolf-pack")
    p.add_argument("--checkpoint", type=Path, required=True, help="the original state dict (.pt/.safetensors)")
    add_max_elements(p)
    p.add_argument("--val", required=True, metavar="GLOB", help="validation shards, e.g. 'data/fineweb_val_*.bin'")
    p.add_argument("--tokenizer", type=Path, required=True, help="the SentencePiece .model the shards were made with")
    p.add_argument("--seq-len", type=positive_int, default=1024, help="tokens per sequence or window (default 1024)")
    p.add_argument("--stride", type=positive_int, help="sliding-window stride; every token is scored exactly once "
                                                 "(default: non-overlapping sequences)")
    p.add_argument("--max-tokens", type=positive_int, help="use only the first N validation tokens (quick checks)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="sequences per forward pass (default 16)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--model", metavar="MODULE:FACTORY", help=f"model factory (default {DEFAULT_FACTORY})")
    p.add_argument("--max-delta", type=finite_float, metavar="X", help="exit 3 if bpb(artifact) - bpb(checkpoint) > X")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--trust-pickle", action="store_true", help="allow checkpoints that need code to unpickle")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: _main(args), "pgolf-verify")


def _main(args: argparse.Namespace) -> int:
    r = verify(args.artifact, args.checkpoint, args.val, args.tokenizer, seq_len=args.seq_len, stride=args.stride,
               max_tokens=args.max_tokens, batch_size=args.batch_size, device=args.device, model=args.model,
               trust_pickle=args.trust_pickle, max_elements=args.max_elements, progress=not args.quiet and sys.stderr.isatty())
    # written so that a NaN delta (a model that diverges) fails rather than passes
    failed = args.max_delta is not None and not r.delta_bpb <= args.max_delta
    if args.json:
        print(dumps_json(r.to_dict() | {"max_delta": args.max_delta, "passed": not failed}))
    else:
        mode = f"stride {r.stride}" if r.stride else "non-overlapping"
        print(f"pgolf-verify: {r.checkpoint.tokens:,} tokens, {r.checkpoint.bytes:,} bytes "
              f"(seq_len {r.seq_len}, {mode}); artifact {r.artifact_bytes:,} bytes\n")
        rows = [["checkpoint", f"{r.checkpoint.val_loss:.5f}", f"{r.checkpoint.val_bpb:.5f}"],
                ["artifact", f"{r.artifact.val_loss:.5f}", f"{r.artifact.val_bpb:.5f}"],
                ["delta", f"{r.artifact.val_loss - r.checkpoint.val_loss:+.5f}", f"{r.delta_bpb:+.5f}"]]
        print(table(["", "val_loss", "val_bpb"], rows, "lrr"))
        if failed:
            print(f"\npgolf-verify: delta_bpb {r.delta_bpb:+.5f} exceeds --max-delta {args.max_delta}", file=sys.stderr)
    return EXIT_THRESHOLD if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
