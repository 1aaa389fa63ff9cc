"""Predicted against real loss, one tensor at a time: how well the calibrated loss model tracks
what quantization costs (the check behind BENCHMARKS.md, "Second round").

Each matrix with a Hessian is quantized alone under SPEC (error feedback, the default row
weights), the rest of the model kept exact; its predicted damage (LossModel.damage, nats per
token) is printed beside the real loss increase on held-out *training* tokens (a window after
the calibration tokens; validation shards are refused by calibration_tokens).

    python benchmarks/damage.py CHECKPOINT --calibrate 'DIR/fineweb_train_*.bin' [--spec step:0.4]
        [--calibration-tokens 8192] [--tokens 32768] [--seq-len 256] [--labels sampled]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from pgolf_pack.artifact import decode_artifact
from pgolf_pack.artifact.writer import encode_artifact
from pgolf_pack.calibration import LossModel, calibration_tokens, collect_stats
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.lossaware import evaluate_calibrated
from pgolf_pack.models import DEFAULT_FACTORY, build_model, load_factory, logits_fn


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--calibrate", metavar="GLOB", required=True, help="training shards")
    ap.add_argument("--spec", default="step:0.4", help="the one candidate each matrix is quantized under")
    ap.add_argument("--calibration-tokens", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=32768, help="held-out training tokens that measure the real loss")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--labels", default="sampled", choices=("sampled", "data"))
    ap.add_argument("--model", default=DEFAULT_FACTORY)
    args = ap.parse_args(argv)

    sd = load_state_dict(args.checkpoint)
    cal = calibration_tokens(args.calibrate, args.calibration_tokens)
    loss_model = LossModel.of(collect_stats(sd, cal, model=args.model, seq_len=args.seq_len, device="cpu",
                                            labels=args.labels), sd)
    names = [n for n in sd if loss_model.has_hessian(n)]
    evaluated = evaluate_calibrated({n: sd[n] for n in names}, loss_model, specs_for=lambda n, t: [args.spec],
                                    rate_mus=())
    held = calibration_tokens(args.calibrate, args.tokens, offset=args.calibration_tokens + 1)
    t = torch.from_numpy(held.astype(np.int64))
    rows = (len(t) - 1) // args.seq_len
    xs = t[: rows * args.seq_len].view(rows, args.seq_len)
    ys = t[1 : rows * args.seq_len + 1].view(rows, args.seq_len)
    factory, cpu = load_factory(args.model), torch.device("cpu")

    def mean_loss(state) -> float:
        fn = logits_fn(build_model(factory, state, cpu, "checkpoint"), cpu)
        total = 0.0
        with torch.inference_mode():
            for i in range(0, rows, 16):
                logits = fn(xs[i : i + 16]).float()
                total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys[i : i + 16].reshape(-1),
                                               reduction="sum"))
        return total / (rows * args.seq_len)

    t0 = time.perf_counter()
    base = mean_loss(sd)
    print(f"# {args.checkpoint}: {len(names)} matrices under {args.spec}; {len(cal) - 1:,} calibration tokens "
          f"({args.labels} labels), real loss on {rows * args.seq_len:,} further training tokens")
    print("| tensor | candidate | bits/weight | predicted (nats/token) | real | real / predicted |\n|---|---|---:|---:|---:|---:|")
    for plan in evaluated.tensors:
        for cand in plan.candidates:
            encoded, _ = evaluated.encoded[plan.name][cand.spec]
            restored = decode_artifact(encode_artifact([encoded])).tensors()[plan.name]
            real = mean_loss(sd | {plan.name: restored}) - base
            print(f"| {plan.name} | {cand.spec} | {8 * cand.bytes / plan.numel:.2f} | {cand.damage:.3e} | {real:+.3e} | "
                  f"{real / cand.damage if cand.damage else float('nan'):.2f} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
