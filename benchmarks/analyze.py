"""pgolf-analyze benchmark: wall time of a whole report, and how close the sampled
generic-compressor estimates come to compressing everything.

    python benchmarks/analyze.py                      # 36M-parameter synthetic (11 layers, MLP x4, vocab 8192)
    python benchmarks/analyze.py --checkpoint final_model.pt
    python benchmarks/analyze.py --accuracy int8,int6,planner   # also the exact one-stream sizes (minutes)

Timing covers what the command does after loading: planner evaluation, per-tensor analysis,
the generic compressors, plots and report.md; CPU time is the process's (all threads).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from pgolf_pack.analysis.checkpoint_report import CheckpointOptions, analyze_checkpoint
from pgolf_pack.analysis.generic import COMPRESSORS, compress
from pgolf_pack.analysis.markdown import render
from pgolf_pack.analysis.plots import render_all
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.quant import QuantSpec, quantize
from pgolf_pack.synthetic import baseline_state_dict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--budget", type=int, default=16_000_000)
    p.add_argument("--accuracy", metavar="IDS", help="scheme ids whose full one-stream sizes to measure")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    sd = (load_state_dict(args.checkpoint) if args.checkpoint
          else baseline_state_dict(layers=11, mlp_mult=4, vocab=8192))
    params = sum(t.numel() for t in sd.values())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"checkpoint: {args.checkpoint or 'synthetic baseline_state_dict(layers=11, mlp_mult=4, vocab=8192)'}, "
          f"{params:,} parameters")
    report = None
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        report = analyze_checkpoint(sd, CheckpointOptions(budget=args.budget))
        t_analyse = time.perf_counter() - wall
        plots = render_all(report)
        render(report, list(plots))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"report: {wall:.1f} s wall ({t_analyse:.1f} s analysis, {wall - t_analyse:.1f} s plots and "
              f"markdown), {cpu:.1f} s CPU; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    s = report["summary"]
    print(f"planner artifact {s['artifact_bytes']:,} B, floor {s['floor_bytes']:,.0f} B "
          f"({s['overhead_pct']:+.3f}%), best generic {s['symbols']['best_generic']} "
          f"{s['symbols']['best_generic_bytes']:,} B (estimate)")
    if args.accuracy:
        accuracy(sd, report, [i.strip() for i in args.accuracy.split(",")])


def accuracy(sd, report, ids) -> None:
    """Sampled estimate against the whole model's symbols as one stream, per compressor."""
    names = [t["name"] for t in report["tensors"] if t["analysed"]]
    print(f"\n{'scheme':>8} {'compressor':>10} {'estimate':>12} {'exact':>12} {'error':>8} {'exact time':>10}")
    for sid in ids:
        scheme = next(s for s in report["schemes"] if s["id"] == sid)
        parts = []
        for name in names:
            r = next(t for t in report["tensors"] if t["name"] == name)["schemes"][sid]
            if r["passthrough"]:
                continue
            q = quantize(sd[name], QuantSpec.parse(r["spec"])).symbols.numpy()
            parts.append(q.astype(np.int8 if np.abs(q).max() <= 127 else "<i2").tobytes())
        stream = b"".join(parts)
        est = scheme["totals"]["generic"]
        for c in COMPRESSORS:
            t0 = time.perf_counter()
            exact = compress(c, stream)
            dt = time.perf_counter() - t0
            print(f"{sid:>8} {c:>10} {est[c]:>12,} {exact:>12,} {100 * (est[c] / exact - 1):>+7.2f}% {dt:>9.1f}s",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
