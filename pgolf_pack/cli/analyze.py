"""pgolf-analyze: entropy and Shannon-floor reports for a checkpoint or a packed artifact."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pgolf_pack.analysis.artifact_report import analyze_artifact
from pgolf_pack.analysis.checkpoint_report import (
    DEFAULT_BUDGET, DEFAULT_SAMPLE, DEFAULT_SCHEMES, SMALL_NUMEL, CheckpointOptions, analyze_checkpoint, parse_schemes,
)
from pgolf_pack.analysis.markdown import COMPRESSOR_LABELS, CONTEXT_LABELS, render
from pgolf_pack.analysis.plots import render_all
from pgolf_pack.artifact.format import MAGIC
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.cli.common import (
    EXIT_CODES_HELP, EXIT_OK, add_max_elements, byte_count, check_outputs, code_size, positive_int, run,
)
from pgolf_pack.errors import InputError
from pgolf_pack.files import write_all
from pgolf_pack.text import dumps_json, printable

DESCRIPTION = f"""Report where a model's bytes go and how far each tensor is from its Shannon floor.

INPUT is a checkpoint (.pt or .safetensors, loaded as pgolf-pack loads it) or a .pgpk artifact
(recognised by its magic bytes). For a checkpoint, every float tensor of more than
{SMALL_NUMEL:,} weights is quantized under each scheme ({", ".join(s for _, s in DEFAULT_SCHEMES)},
and the spec the planner picks at --budget) and coded exactly as pgolf-pack would; for an artifact,
the stored symbols are decoded. Each is reported beside its order-0 entropy, the rANS frame's
header / tables / payload, the side information, what zstd-22, lzma-9 and brotli-11 make of the
same symbols one per byte, and conditional entropies that bound what context modelling could save.

Writes DIR/report.md, DIR/report.json (schema: docs/ANALYZE.md) and PNG plots; nothing is
written unless the whole analysis succeeds."""

EPILOG = f"""examples:
  pgolf-analyze final_model.pt --out analysis/
  pgolf-analyze final_model.pt --out analysis/ --budget 16MB --code train_gpt.py
  pgolf-analyze final_model.pgpk --out analysis-pgpk/ --json > report.json
  pgolf-analyze final_model.pt --out a/ --schemes int6:std12.85,int5:std10,pent,step:0.3 --full

{EXIT_CODES_HELP}"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgolf-analyze", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, metavar="INPUT", help="checkpoint (.pt, .safetensors) or artifact (.pgpk)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--json", action="store_true", help="print report.json to stdout instead of the summary")
    p.add_argument("--budget", type=byte_count, default=DEFAULT_BUDGET,
                   help=f"byte budget for artifact + code, for the planner's choice (default {DEFAULT_BUDGET:,})")
    p.add_argument("--code", nargs="+", type=Path, default=[], metavar="FILE",
                   help="files that ship with the artifact and count against the budget")
    p.add_argument("--schemes", metavar="SPEC,...",
                   help="schemes to analyse instead of the defaults (pgolf-pack's spec grammar)")
    p.add_argument("--small-numel", type=int, default=SMALL_NUMEL, metavar="N",
                   help=f"tensors of at most N weights are listed, not analysed per scheme (default {SMALL_NUMEL:,})")
    sample = p.add_mutually_exclusive_group()
    sample.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, metavar="N",
                        help=f"symbols per scheme given to the generic compressors, spread over tensors "
                             f"(default {DEFAULT_SAMPLE:,}); sizes are extrapolated")
    sample.add_argument("--full", action="store_true", help="compress every symbol: exact generic sizes, slow")
    p.add_argument("--buckets", type=int, default=8, metavar="K", help="row-scale buckets for H(X|bucket) (default 8)")
    p.add_argument("--sensitivity", type=Path, metavar="JSON",
                   help='planner damage weights, as for pgolf-pack: {"name or glob": weight}')
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--threads", type=positive_int, help="worker threads (default: all cores)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that need code to unpickle (only for files you trust)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_max_elements(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: _main(args), "pgolf-analyze")


def _main(args: argparse.Namespace) -> int:
    code_bytes = code_size(args.code)
    if args.sample is not None and args.sample < 1:
        raise InputError(f"--sample must be a positive number of symbols, got {args.sample}")
    if args.buckets < 1:
        raise InputError(f"--buckets must be >= 1, got {args.buckets}")
    if args.small_numel < 0:
        raise InputError(f"--small-numel must be >= 0, got {args.small_numel}")
    if not args.input.is_file():
        raise InputError(f"input '{printable(args.input)}' does not exist (pass a .pt, .safetensors or .pgpk file)")
    inputs = [("INPUT", args.input)] + [("--code", c) for c in args.code]
    inputs += [("--sensitivity", args.sensitivity)] if args.sensitivity else []
    _check_out(args.out)
    sample = None if args.full else args.sample
    show = not args.quiet and sys.stderr.isatty()
    bar = _bar if show else None
    if _is_artifact(args.input):
        report = analyze_artifact(args.input, code_bytes=code_bytes, code_files=[str(c) for c in args.code],
                                  sample=sample, buckets=args.buckets, threads=args.threads, progress=bar,
                                  max_elements=args.max_elements)
    else:
        from pgolf_pack.planner import load_sensitivities

        options = CheckpointOptions(
            budget=args.budget, code_bytes=code_bytes, code_files=[str(c) for c in args.code],
            schemes=parse_schemes(args.schemes) if args.schemes else DEFAULT_SCHEMES,
            small_numel=args.small_numel, sample=sample, buckets=args.buckets,
            sensitivities=load_sensitivities(args.sensitivity) if args.sensitivity else [], threads=args.threads)
        state_dict = load_state_dict(args.input, trust_pickle=args.trust_pickle)
        report = analyze_checkpoint(state_dict, options, source=str(args.input),
                                    input_bytes=args.input.stat().st_size, progress=bar)
    plots = {} if args.no_plots else render_all(report)
    report["plots"] = sorted(plots)
    text = dumps_json(report)
    # names from the input may hold terminal escapes; `cat report.md` must not run them
    markdown = "\n".join(printable(line) for line in render(report, list(plots)).split("\n"))
    created = not args.out.exists()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create --out '{printable(args.out)}' ({e.strerror})") from None
    files = list(plots.items()) + [("report.json", text.encode()), ("report.md", markdown.encode())]
    try:
        check_outputs([(f"--out file {name}", args.out / name) for name, _ in files], inputs)
        write_all([(args.out / name, data) for name, data in files])  # all or nothing
    except InputError:
        if created:
            args.out.rmdir()
        raise
    if args.json:
        print(text)
    else:
        print(summary_text(report, args.out))
    return EXIT_OK


def _check_out(out: Path) -> None:
    """Refuse an --out that cannot become a directory of reports before any work is done."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{printable(out)}' exists and is not a directory")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"--out '{printable(out)}' cannot be created or written ('{printable(existing)}' is not "
                         "a writable directory); choose another place")


def _is_artifact(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _bar(desc: str, total: int, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)


def summary_text(report: dict, out: Path) -> str:
    s = report["summary"]
    ref = s["reference_scheme"]
    where = {"planner": f"the planner's choice at {report['options'].get('budget', 0):,} B",
             "stored": "as stored"}.get(ref, f"scheme {ref} (no plan fits the budget)")
    lines = [f"pgolf-analyze: {printable(report['input'])} ({report['kind']}, {s['parameters']:,} parameters, "
             f"{s['tensors']} tensors)",
             f"  reference      {where}",
             f"  artifact       {s['artifact_bytes']:>12,} B",
             f"  floor          {s['floor_bytes']:>12,.0f} B   overhead {s['overhead_bytes']:,.0f} B "
             f"({s['overhead_pct']:+.2f}%)" if s["overhead_pct"] is not None else
             f"  floor          {s['floor_bytes']:>12,.0f} B"]
    sym = s["symbols"]
    if sym["best_generic"]:
        best = sym["best_generic"]
        g = sym["generic"]
        est = "exact" if g["exact"] else f"estimated from {g['sample_symbols']:,} sampled symbols"
        lines.append(f"  best generic   {sym['best_generic_bytes']:>12,} B   {COMPRESSOR_LABELS[best]} on the same "
                     f"symbols, {sym['best_generic_bytes'] - sym['rans_frame_bytes']:+,} B vs rANS frames ({est})")
        cm = s["context_modelling"]
        if cm["best"] and cm["saving_priced_bytes"] and cm["saving_priced_bytes"] > 0:
            lines.append(f"  context model  {cm['saving_priced_bytes']:>12,.0f} B   saved by "
                         f"{CONTEXT_LABELS[cm['best']]} contexts, tables priced")
        else:
            lines.append("  context model  none saves bytes once its tables are priced (see report.md)")
    lines.append(f"  report         {printable(out / 'report.md')} (+ report.json, {len(report['plots'])} plots)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
