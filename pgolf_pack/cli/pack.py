"""pgolf-pack: turn a checkpoint into the smallest-damage artifact that fits a byte budget."""

from __future__ import annotations

import argparse
import fnmatch
import math
import sys
from pathlib import Path

from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.cli.common import (
    EXIT_CODES_HELP, EXIT_OK, byte_count, check_outputs, code_size, positive_int, progress, read_text, run, table,
)
from pgolf_pack.errors import InputError
from pgolf_pack.files import write_all
from pgolf_pack.pack import PackResult, pack_checkpoint
from pgolf_pack.planner import Plan, default_specs, is_tiny, load_sensitivities
from pgolf_pack.quant import QuantSpec
from pgolf_pack.quant.spec import PASSTHROUGH
from pgolf_pack.shards import training_files
from pgolf_pack.text import dumps_json, printable

DESCRIPTION = """Pack a trained checkpoint into a pgolf-pack artifact that fits a byte budget.

Every tensor is tried under candidate schemes (step quantizers from ~1 to ~8 bits per weight,
int8/int6 anchors, fp32/fp16/bf16 passthrough), each coded for real with the rANS codec; the
planner then picks the combination with the least weighted reconstruction error such that
artifact + code <= budget, and prints where every byte went. Scheme grammar: see
`python -c "import pgolf_pack.quant.spec as s; help(s)"` or docs/FORMAT.md."""

EPILOG = f"""examples:
  pgolf-pack final_model.pt --budget 16000000 --code train_gpt.py
  pgolf-pack final_model.pt --budget 16MB --plan-out plan.json --json > report.json
  pgolf-pack final_model.pt --budget 16MB --force 'tok_emb.weight=fp16' --schemes step:0.05,step:0.1,int6:std12.85
  pgolf-pack final_model.pt --budget 16MB --calibrate 'data/fineweb_train_*.bin' --stats-out stats.safetensors   # loss-aware
  pgolf-pack final_model.pt --budget 12MB --stats-in stats.safetensors   # another budget, same statistics

{EXIT_CODES_HELP}"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgolf-pack", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="state dict: torch.save file (.pt) or .safetensors")
    p.add_argument("--budget", required=True, type=byte_count, help="total byte budget for artifact + code (decimal)")
    p.add_argument("--code", nargs="+", type=Path, default=[], metavar="FILE",
                   help="files that ship with the artifact and count against the budget")
    p.add_argument("--embed-loader", action="store_true",
                   help="also count the one-line loader of `pgolf-loader --compact` (pasted into your code)")
    p.add_argument("-o", "--output", type=Path, help="artifact path (default: CHECKPOINT with suffix .pgpk)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of the tables")
    p.add_argument("--plan-out", type=Path, metavar="PLAN", help="write the chosen plan (JSON) here")
    p.add_argument("--plan-in", type=Path, metavar="PLAN", help="follow this plan instead of searching")
    p.add_argument("--sensitivity", type=Path, metavar="JSON",
                   help='damage weights: {"name or glob": weight}, default weight 1')
    cal = p.add_argument_group("calibration (loss-aware packing; training data only)")
    cal.add_argument("--calibrate", metavar="GLOB",
                     help="collect Hessians and gradient energies on these training shards, quantize matrices with "
                          "error feedback and plan on predicted loss")
    cal.add_argument("--calibration-tokens", type=positive_int, default=None,
                     help="training tokens used (default 65536: about a minute for a 17M model on 2 idle CPU cores)")
    cal.add_argument("--calibration-seq-len", type=positive_int, default=None, help="sequence length (default 1024)")
    cal.add_argument("--model", metavar="MODULE:FACTORY",
                     help="model factory for calibration (default: the baseline GPT inferred from shapes)")
    cal.add_argument("--device", default="auto", help="calibration device: auto, cpu or cuda")
    cal.add_argument("--stats-out", type=Path, metavar="FILE", help="save the calibration statistics (safetensors)")
    cal.add_argument("--stats-in", type=Path, metavar="FILE",
                     help="reuse statistics saved by --stats-out instead of calibrating again")
    p.add_argument("--schemes", metavar="SPEC,...", help="restrict the candidates of float tensors to these specs")
    p.add_argument("--force", action="append", default=[], metavar="PATTERN=SPEC",
                   help="store tensors whose name matches the glob PATTERN with SPEC (repeatable)")
    p.add_argument("--threads", type=positive_int, help="codec threads (default: all cores)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that need code to unpickle (only for files you trust)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: _main(args), "pgolf-pack")


def _main(args: argparse.Namespace) -> int:
    output = args.output or args.checkpoint.with_suffix(".pgpk")
    if args.sensitivity and (args.calibrate or args.stats_in):
        raise InputError("pass either --sensitivity or --calibrate/--stats-in, not both")
    if args.calibrate and args.stats_in:
        raise InputError("pass either --calibrate or --stats-in, not both")
    if args.plan_in and (args.calibrate or args.stats_in):
        raise InputError("--plan-in cannot be combined with --calibrate/--stats-in (the plan's candidates are re-measured)")
    if args.stats_out and not args.calibrate:
        raise InputError("--stats-out saves what --calibrate measures; pass --calibrate too")
    shards = training_files(args.calibrate) if args.calibrate else []  # refuses validation data up front
    inputs = [("checkpoint", args.checkpoint)] + [("--code", c) for c in args.code]
    inputs += [(opt, path) for opt, path in (("--plan-in", args.plan_in), ("--sensitivity", args.sensitivity),
                                             ("--stats-in", args.stats_in)) if path]
    inputs += [("--calibrate", f) for f in shards]
    outputs = [("-o" if args.output else "the default output (CHECKPOINT.pgpk; pass -o)", output)]
    outputs += [(opt, path) for opt, path in (("--plan-out", args.plan_out), ("--stats-out", args.stats_out)) if path]
    check_outputs(outputs, inputs)  # before any work: nothing is written unless everything succeeds
    code_bytes = code_size(args.code)
    if args.embed_loader:
        from pgolf_pack.loader import compact_loader

        code_bytes += len(compact_loader())
        args.code = args.code + ["pgolf-loader --compact"]  # named in the report beside the files
    state_dict = load_state_dict(args.checkpoint, trust_pickle=args.trust_pickle)
    plan = Plan.from_json(read_text(args.plan_in, "plan"), str(args.plan_in)) if args.plan_in else None
    sens = load_sensitivities(args.sensitivity) if args.sensitivity else []
    specs_for = _specs_for(args.schemes, args.force)
    show_progress = not args.quiet and sys.stderr.isatty()
    stats = None
    if args.calibrate or args.stats_in:
        from pgolf_pack.lossaware import calibrated_pack

        result, stats = calibrated_pack(state_dict, args.budget, code_bytes=code_bytes, calibrate=args.calibrate,
                                        stats_in=args.stats_in, tokens=args.calibration_tokens,
                                        seq_len=args.calibration_seq_len, model=args.model, device=args.device,
                                        specs_for=specs_for, threads=args.threads, show_progress=show_progress,
                                        warn=lambda line: print(printable(line), file=sys.stderr))
    else:
        result = pack_checkpoint(state_dict, args.budget, code_bytes=code_bytes, plan=plan, sensitivities=sens,
                                 specs_for=specs_for, threads=args.threads,
                                 progress=progress("planning", show_progress))
    files = [(output, result.data)]
    if args.plan_out:
        files.append((args.plan_out, result.plan.to_json().encode()))
    if args.stats_out and stats is not None:
        files.append((args.stats_out, stats.to_bytes()))
    write_all(files)  # all or nothing
    if args.json:
        print(dumps_json(report_json(result, output, args.code)))
    else:
        print(report_text(result, args.checkpoint, output, args.code))
    return EXIT_OK


def _specs_for(schemes: str | None, force: list[str]):
    chosen = [s.strip() for s in schemes.split(",") if s.strip()] if schemes else None
    for s in chosen or []:
        QuantSpec.parse(s)
    forced = []
    for item in force:
        if "=" not in item:
            raise InputError(f"--force takes PATTERN=SPEC, got '{item}'")
        pattern, spec = item.split("=", 1)
        QuantSpec.parse(spec)
        forced.append((pattern, spec))

    def specs_for(name, tensor):
        for pattern, spec in forced:
            if fnmatch.fnmatchcase(name, pattern):
                return [spec]
        if chosen is None or not tensor.is_floating_point():
            return default_specs(tensor)
        if is_tiny(tensor):
            return [s for s in chosen if s in PASSTHROUGH] or list(PASSTHROUGH)
        return chosen

    return specs_for


def report_json(r: PackResult, output: Path, code: list[Path]) -> dict:
    return {
        "artifact": str(output),
        "artifact_bytes": r.artifact_bytes,
        "code_bytes": r.code_bytes,
        "code_files": [str(c) for c in code],
        "total_bytes": r.total_bytes,
        "budget": r.budget,
        "headroom_bytes": r.headroom,
        "floor_bytes": sum(t.floor_bytes for t in r.tensors),
        "tensors": [t.to_dict() for t in r.tensors],
    }


def report_text(r: PackResult, checkpoint: Path, output: Path, code: list[Path]) -> str:
    rows = [[t.name, "×".join(map(str, t.shape)) or "()", t.scheme, f"{t.bits_per_weight:.3f}",
             f"{t.coded_bytes:,}", f"{t.floor_bytes:,.0f}"] for t in r.tensors]
    coded = sum(t.coded_bytes for t in r.tensors)
    floor = sum(t.floor_bytes for t in r.tensors)
    params = sum(math.prod(t.shape) for t in r.tensors)
    lines = [
        f"pgolf-pack: {printable(checkpoint)} -> {printable(output)}",
        "",
        table(["tensor", "shape", "scheme", "bits/w", "coded B", "floor B"], rows, "lllrrr"),
        "",
        f"  tensors      {coded:>14,} B  ({8 * coded / max(1, params):.3f} bits/weight over {params:,} weights; "
        f"floor {floor:,.0f} B, {100 * (coded / max(floor, 1) - 1):+.2f}%)",
        f"  manifest     {r.artifact_bytes - coded:>14,} B  (header, names, shapes, schemes, checksum)",
        f"  artifact     {r.artifact_bytes:>14,} B",
        f"  code         {r.code_bytes:>14,} B" + (f"  ({', '.join(printable(c) for c in code)})" if code else ""),
        f"  total        {r.total_bytes:>14,} B",
        f"  budget       {r.budget:>14,} B",
        f"  headroom     {r.headroom:>14,} B",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
