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
import time
from pathlib import Path

import torch

from pgolf_pack.artifact import parse_artifact
from pgolf_pack.bpb import build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.planner import evaluate_tensors, plan_from
from pgolf_pack.sensitivity import calibration_tokens, measure_sensitivities
from pgolf_pack.verify import build, load_factory, logits_fn


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--val", required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--train", required=True, help="training shards for calibration")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.25, 0.5, 1.0])
    ap.add_argument("--budget", type=int, nargs="+", default=[7_324_288, 12_346_621])
    ap.add_argument("--calibration-tokens", type=int, default=2048)
    ap.add_argument("--max-tokens", type=int, default=32768)
    args = ap.parse_args(argv)
    sd = load_state_dict(args.checkpoint)
    val = load_val_tokens(args.val, 1024, max_tokens=args.max_tokens)
    factory, device = load_factory(None), torch.device("cpu")
    tables = None

    def bpb(state) -> float:
        nonlocal tables
        fn = logits_fn(build(factory, state, device, "benchmark"), device)
        if tables is None:
            with torch.inference_mode():
                tables = build_byte_tables(args.tokenizer, vocab_size=fn(torch.zeros(1, 1, dtype=torch.long)).shape[-1])
        return evaluate(fn, val, tables, seq_len=1024, batch_size=8).val_bpb

    def packed_delta(tensors, budget: int) -> float:
        r = pack_checkpoint(sd, budget, plan=plan_from(tensors, budget))
        return bpb(parse_artifact(r.data).tensors()) - base

    base = bpb(sd)
    print(f"# {args.checkpoint.name}: val_bpb {base:.5f} unpacked on {len(val) - 1:,} tokens\n", flush=True)
    plain = evaluate_tensors(sd)
    rows = [("plain (no calibration)", "—", [packed_delta(plain, b) for b in args.budget])]
    print(rows[-1], flush=True)
    train = calibration_tokens(args.train, args.calibration_tokens)
    for noise in args.noise:
        t0 = time.perf_counter()
        sens = measure_sensitivities(sd, train, seq_len=1024, device="cpu", noise=noise)
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
