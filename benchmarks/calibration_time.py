"""Time loss-aware packing (`pgolf-pack --calibrate`) stage by stage, and check that two runs on
the same device write byte-identical artifacts (issue 13's timing rows and its determinism rule).

Stages: the calibration pass (`collect_stats`, on --device), the loss-aware candidates
(`evaluate_calibrated`: error feedback on every grid, CPU threads), the plan and the artifact
(`pack_calibrated`). Without --calibrate the tokens are uniform random ids of the vocabulary:
the work per token does not depend on them, so the timings hold; the artifact is only compared
with itself.

    python benchmarks/calibration_time.py                        # synthetic 17M, device auto, 65,536 tokens
    python benchmarks/calibration_time.py --shape 36m            # 11L x 512, MLP x4, vocab 8192
    python benchmarks/calibration_time.py --checkpoint final_model.pt --calibrate 'data/fineweb_train_*.bin'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from pgolf_pack.calibration import DEFAULT_SEQ_LEN, DEFAULT_TOKENS, LossModel, calibration_tokens, collect_stats
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.lossaware import evaluate_calibrated, pack_calibrated
from pgolf_pack.models import resolve_device
from pgolf_pack.synthetic import baseline_state_dict

SHAPES = {  # the baseline's 17M and the records' 36M (11 layers, MLP x4, vocab 8192)
    "demo": dict(layers=4, dim=128, heads=4, kv_heads=2, mlp_mult=2, vocab=1024),
    "17m": dict(layers=9, dim=512, heads=8, kv_heads=4, mlp_mult=2, vocab=1024),
    "36m": dict(layers=11, dim=512, heads=8, kv_heads=4, mlp_mult=4, vocab=8192),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def one_run(sd: dict, tokens: np.ndarray, device: torch.device, seq_len: int, budget: int,
            threads: int | None) -> dict:
    """Seconds per stage and the artifact's digest, for one calibrated pack."""
    t0 = time.perf_counter()
    stats = collect_stats(sd, tokens, seq_len=seq_len, device=str(device), warn=lambda line: print(line, file=sys.stderr))
    _sync(device)
    t1 = time.perf_counter()
    evaluated = evaluate_calibrated(sd, LossModel.of(stats, sd), threads=threads)
    t2 = time.perf_counter()
    result = pack_calibrated(evaluated, sd, budget)
    t3 = time.perf_counter()
    return {"calibration_s": t1 - t0, "candidates_s": t2 - t1, "plan_s": t3 - t2, "total_s": t3 - t0,
            "bytes": len(result.data), "sha256": hashlib.sha256(result.data).hexdigest()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="17m", help="synthetic checkpoint (default: 17m)")
    ap.add_argument("--checkpoint", help="a real checkpoint instead of --shape")
    ap.add_argument("--calibrate", metavar="GLOB", help="training shards (default: random token ids)")
    ap.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, help=f"calibration tokens (default {DEFAULT_TOKENS:,})")
    ap.add_argument("--seq-len", type=int, default=DEFAULT_SEQ_LEN)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (the calibration pass)")
    ap.add_argument("--bits", type=float, default=3.5, help="budget in bits per weight (default 3.5, about GPTQ int6's)")
    ap.add_argument("--runs", type=int, default=2, help="runs compared byte for byte (default 2)")
    ap.add_argument("--threads", type=int, help="CPU threads for the candidates (default: all cores)")
    ap.add_argument("--json", help="write the runs here")
    args = ap.parse_args(argv)

    sd = load_state_dict(args.checkpoint) if args.checkpoint else baseline_state_dict(**SHAPES[args.shape])
    weights = sum(t.numel() for t in sd.values())
    if args.calibrate:
        tokens = calibration_tokens(args.calibrate, args.tokens)
    elif args.checkpoint and "tok_emb.weight" not in sd:
        raise SystemExit("random token ids need the vocabulary size from tok_emb.weight, which this checkpoint "
                         "lacks: pass --calibrate with its training shards")
    else:
        vocab = sd["tok_emb.weight"].shape[0] if args.checkpoint else SHAPES[args.shape]["vocab"]
        tokens = np.random.default_rng(0).integers(0, vocab, args.tokens + 1).astype(np.uint16)
    device = resolve_device(args.device)
    budget = int(args.bits * weights / 8)
    name = args.checkpoint or f"synthetic {args.shape}"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    print(f"{name}: {weights:,} weights, {args.tokens:,} tokens at seq_len {args.seq_len}, budget {budget:,} B, "
          f"calibration on {device} ({where}), candidates on {args.threads or os.cpu_count()} CPU threads")

    runs = []
    for i in range(args.runs):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        r = one_run(sd, tokens, device, args.seq_len, budget, args.threads)
        if device.type == "cuda":
            r["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        runs.append(r)
        print(f"run {i}: calibration {r['calibration_s']:.1f} s + candidates {r['candidates_s']:.1f} s + "
              f"plan {r['plan_s']:.2f} s = {r['total_s']:.1f} s; {r['bytes']:,} B, sha256 {r['sha256'][:16]}"
              + (f", CUDA peak {r['cuda_peak_gib']:.1f} GiB" if "cuda_peak_gib" in r else ""))
    identical = len({r["sha256"] for r in runs}) == 1
    if len(runs) > 1:
        print(f"{len(runs)} runs byte-identical" if identical else "ARTIFACTS DIFFER across runs on the same device")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": name, "weights": weights, "tokens": args.tokens, "device": str(device),
                       "device_name": where, "budget": budget, "runs": runs, "identical": identical}, f, indent=1)
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
