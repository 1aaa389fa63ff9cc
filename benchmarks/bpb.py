"""val_bpb after packing: pgolf-pack (plain and calibrated) beside the competitors' exports, on
the same checkpoint and the same validation tokens (pgolf_pack.bpb, the challenge's accounting).

Anchors: the baseline's int8 + zlib-9, the records' int6 rounding + brotli-11, and the top
records' GPTQ export (SDClip, Hessians from training tokens) at int6 and at int5. For pgolf-pack
plain and calibrated (one calibration per seed: disjoint windows of the training shards) it
reports val_bpb at each anchor's bytes, a rate-loss curve over --curve budgets, and the bytes
needed to reach each anchor's val_bpb, read off a fitted curve: log(Δbpb) is fitted as a straight
line in bytes (least squares) through the four measured budgets of that packer whose Δbpb is
closest to the anchor's, so one noisy budget cannot move the answer the way it moves a bisection.

    python benchmarks/bpb.py CHECKPOINT --val 'DIR/fineweb_val_*.bin' --tokenizer T.model \\
        --calibrate 'DIR/fineweb_train_*.bin' [--seeds 3] [--curve 10] [--small 0] [--seq-len 256]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _scoring import add_scoring_arguments, load_scoring  # noqa: E402
from anchors import SMALL, baseline_int8_zlib, records_gptq_brotli, records_int6_brotli  # noqa: E402

from pgolf_pack.artifact import decode_artifact  # noqa: E402
from pgolf_pack.errors import BudgetError  # noqa: E402
from pgolf_pack.models import DEFAULT_FACTORY  # noqa: E402
from pgolf_pack.planner import evaluate_tensors  # noqa: E402


def fitted_bytes(points: list[tuple[int, float]], target: float, nearest: int = 4) -> float | None:
    """Bytes at which a local least-squares line log(Δ) = a + b·bytes reaches `target`, fitted on
    the `nearest` measured points (Δ > 0) closest to it in log Δ; None without a falling fit."""
    pts = sorted(((b, d) for b, d in points if d > 0), key=lambda p: abs(math.log(p[1]) - math.log(target)))[:nearest]
    if len(pts) < 3 or target <= 0:
        return None
    x = np.array([b for b, _ in pts], dtype=np.float64)
    y = np.log([d for _, d in pts])
    slope, intercept = np.polyfit(x, y, 1)
    if slope >= 0:
        return None
    return float((math.log(target) - intercept) / slope)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scoring_arguments(ap, max_tokens=65536)
    ap.add_argument("--model", default=DEFAULT_FACTORY)
    ap.add_argument("--calibrate", metavar="GLOB", required=True, help="training shards (Hessians and calibration)")
    ap.add_argument("--calibration-tokens", type=int, default=65536)
    ap.add_argument("--calibration-seq-len", type=int, default=None, help="default: --seq-len")
    ap.add_argument("--seeds", type=int, default=3, help="calibration sets (disjoint training windows)")
    ap.add_argument("--curve", type=int, default=10, help="budgets on the rate-loss curve")
    ap.add_argument("--small", type=int, default=SMALL, help="anchors keep matrices of at most this many entries fp16")
    ap.add_argument("--rate-mus", default=None, help="rate-aware variants, e.g. '1' or '0.5,1' ('' for none; "
                                                      "default: pgolf_pack.lossaware.RATE_MUS)")
    ap.add_argument("--row-gammas", default=None, help="loss-aware row-scale variants, e.g. '0.5,1' ('' for none; "
                                                        "default: pgolf_pack.lossaware.ROW_GAMMAS)")
    ap.add_argument("--labels", default="sampled", choices=("sampled", "data"),
                    help="targets of the calibration backward pass (collect_stats)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from pgolf_pack.calibration import LossModel, calibration_tokens, collect_stats
    from pgolf_pack.lossaware import RATE_MUS, ROW_GAMMAS, evaluate_calibrated, pack_calibrated

    def floats(text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
        return default if text is None else tuple(float(m) for m in text.split(",") if m.strip())

    mus, gammas = floats(args.rate_mus, RATE_MUS), floats(args.row_gammas, ROW_GAMMAS)

    scoring = load_scoring(args, args.model)
    sd, tokens, bpb = scoring.state_dict, scoring.tokens, scoring.bpb
    cal_seq = args.calibration_seq_len or args.seq_len
    t0 = time.perf_counter()
    base = bpb(sd)
    params = sum(t.numel() for t in sd.values())
    print(f"# {args.checkpoint.name}: {params:,} parameters; {len(tokens) - 1:,} validation tokens; "
          f"val_bpb {base:.5f} unpacked (eval {time.perf_counter() - t0:.0f} s)", flush=True)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plain = evaluate_tensors(sd)
    timings["plain planning (candidates)"] = time.perf_counter() - t0
    packers: dict[str, object] = {"plain": ("plain", plain)}
    stats0 = None
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        toks = calibration_tokens(args.calibrate, args.calibration_tokens, offset=seed * (args.calibration_tokens + 1))
        stats = collect_stats(sd, toks, model=args.model, seq_len=cal_seq, device="cpu", labels=args.labels)
        t1 = time.perf_counter()
        evaluated = evaluate_calibrated(sd, LossModel.of(stats, sd, warn=print), rate_mus=mus, row_gammas=gammas)
        t2 = time.perf_counter()
        if seed == 0:
            stats0 = stats
            timings["calibration pass"] = t1 - t0
            timings["calibrated planning (candidates)"] = t2 - t1
        packers[f"calibrated s{seed}"] = ("calibrated", evaluated)
        print(f"seed {seed}: calibration {t1 - t0:.1f} s, candidates {t2 - t1:.1f} s", flush=True)

    def packed(packer, budget: int) -> tuple[int, float]:
        kind, ev = packer
        if kind == "plain":
            return scoring.packed(ev, budget)
        r = pack_calibrated(ev, sd, budget)
        return r.artifact_bytes, bpb(decode_artifact(r.data).tensors())

    anchors = {}
    for name, export in (("baseline int8 + zlib-9", lambda: baseline_int8_zlib(sd)),
                         ("records int6 RTN (12.85σ) + brotli-11", lambda: records_int6_brotli(sd, small=args.small)),
                         ("records GPTQ int6 (SDClip) + brotli-11",
                          lambda: records_gptq_brotli(sd, stats0.hessian, small=args.small)),
                         ("records GPTQ int5 (SDClip) + brotli-11",
                          lambda: records_gptq_brotli(sd, stats0.hessian, matrix_bits=5, small=args.small))):
        size, restored = export()
        anchors[name] = (size, bpb(restored))
        print(f"anchor {name}: {size:,} B, val_bpb {anchors[name][1]:.5f} ({anchors[name][1] - base:+.5f})", flush=True)

    sizes = [s for s, _ in anchors.values()]
    lo, hi = 0.5 * min(sizes), 1.05 * max(sizes)
    curve_budgets = [int(lo * (hi / lo) ** (i / max(1, args.curve - 1))) for i in range(args.curve)]
    points: dict[str, list[tuple[int, int, float]]] = {}  # packer -> (budget, bytes, Δbpb)
    for label, packer in packers.items():
        pts = []
        for budget in sorted(set(curve_budgets) | set(sizes)):
            try:
                size, b = packed(packer, budget)
            except BudgetError:
                continue
            pts.append((budget, size, b - base))
            print(f"[{label}] budget {budget:,}: {size:,} B, val_bpb {b:.5f} ({b - base:+.5f})", flush=True)
        points[label] = pts

    print("\n| export | bytes | Δbpb | packer | Δbpb at equal bytes | Δ ratio | bytes at equal val_bpb (fit) | bytes ratio |"
          "\n|---|---:|---:|---|---:|---:|---:|---:|")
    rows = []
    for name, (size, anchor) in anchors.items():
        for label, pts in points.items():
            at = next((d for budget, _, d in pts if budget == size), None)
            fit = fitted_bytes([(s, d) for _, s, d in pts], anchor - base)
            rows.append({"anchor": name, "anchor_bytes": size, "anchor_delta": anchor - base, "packer": label,
                         "delta_at_anchor_bytes": at, "bytes_for_anchor_bpb_fit": fit})
            print(f"| {name} | {size:,} | {anchor - base:+.5f} | {label} | "
                  f"{'—' if at is None else f'{at:+.5f}'} | {'—' if at is None else f'{at / (anchor - base):.2f}'} | "
                  f"{'—' if fit is None else f'{fit:,.0f}'} | {'—' if fit is None else f'{fit / size:.2f}'} |")
    print("\n| budget | " + " | ".join(points) + " |\n|---:|" + "---:|" * len(points))
    for budget in sorted({b for pts in points.values() for b, _, _ in pts}):
        cells = []
        for pts in points.values():
            d = next((d for b, _, d in pts if b == budget), None)
            cells.append("—" if d is None else f"{d:+.5f}")
        print(f"| {budget:,} | " + " | ".join(cells) + " |")
    print("\n" + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint), "unpacked_bpb": base, "anchors": anchors,
                                         "points": points, "rows": rows, "timings": timings}, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
