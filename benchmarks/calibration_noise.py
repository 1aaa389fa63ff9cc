"""Calibration noise sweep: val_bpb after packing with sensitivities measured at several noise
levels, at fixed budgets, beside plain (uncalibrated) packing. This chose
pgolf_pack.sensitivity.NOISE.

    python benchmarks/calibration_noise.py CHECKPOINT --val 'VAL_GLOB' --tokenizer T.model \\
        --train 'TRAIN_GLOB' [--noise 0.05 0.25 0.5 1.0] [--budget 7324288 12346621]

The default budgets are the records' int6+brotli and the baseline's int8+zlib sizes of the
H100 checkpoint in BENCHMARKS.md. Calibration reads only the --train shards.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _scoring import add_scoring_arguments, load_scoring  # noqa: E402

from pgolf_pack.planner import evaluate_tensors  # noqa: E402
from pgolf_pack.sensitivity import calibration_tokens, measure_sensitivities  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scoring_arguments(ap, max_tokens=32768)
    ap.add_argument("--train", required=True, help="training shards for calibration")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.25, 0.5, 1.0])
    ap.add_argument("--budget", type=int, nargs="+", default=[7_324_288, 12_346_621])
    ap.add_argument("--calibration-tokens", type=int, default=2048)
    args = ap.parse_args(argv)
    scoring = load_scoring(args)
    sd = scoring.state_dict

    def packed_delta(tensors, budget: int) -> float:
        return scoring.packed(tensors, budget)[1] - base

    base = scoring.bpb(sd)
    print(f"# {args.checkpoint.name}: val_bpb {base:.5f} unpacked on {len(scoring.tokens) - 1:,} tokens\n", flush=True)
    plain = evaluate_tensors(sd)
    rows = [("plain (no calibration)", "—", [packed_delta(plain, b) for b in args.budget])]
    print(rows[-1], flush=True)
    train = calibration_tokens(args.train, args.calibration_tokens)
    for noise in args.noise:
        t0 = time.perf_counter()
        sens = measure_sensitivities(sd, train, seq_len=args.seq_len, device="cpu", noise=noise)
        took = f"{time.perf_counter() - t0:.0f} s"
        tensors = evaluate_tensors(sd, sensitivities=list(sens.items()))
        rows.append((f"noise {noise}", took, [packed_delta(tensors, b) for b in args.budget]))
        print(rows[-1], flush=True)
    print("\n| packing | calibration time | " + " | ".join(f"Δ val_bpb at {b:,} B" for b in args.budget) + " |")
    print("|---|---:|" + "---:|" * len(args.budget))
    for name, took, deltas in rows:
        print(f"| {name} | {took} | " + " | ".join(f"{d:+.5f}" for d in deltas) + " |")


if __name__ == "__main__":
    main()
