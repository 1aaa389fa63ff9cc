"""val_bpb after packing: pgolf-pack beside the baseline's int8+zlib export and the records'
int6+brotli style, on the same checkpoint and the same validation tokens.

For each anchor export it reports the anchor's bytes and val_bpb, pgolf-pack's val_bpb at the
anchor's byte count (equal bytes), and the bytes pgolf-pack needs to match the anchor's val_bpb
(a bisection over budgets). Evaluation uses pgolf_pack.bpb (the challenge's accounting).

    python benchmarks/bpb.py CHECKPOINT --val 'DIR/fineweb_val_*.bin' --tokenizer T.model \\
        [--seq-len 1024] [--max-tokens 65536]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _scoring import add_scoring_arguments, load_scoring  # noqa: E402
from anchors import baseline_int8_zlib, records_int6_brotli  # noqa: E402

from pgolf_pack.errors import BudgetError  # noqa: E402
from pgolf_pack.planner import evaluate_tensors  # noqa: E402
from pgolf_pack.models import DEFAULT_FACTORY  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scoring_arguments(ap, max_tokens=65536)
    ap.add_argument("--model", default=DEFAULT_FACTORY)
    ap.add_argument("--calibrate", metavar="GLOB", help="also run pgolf-pack calibrated on these training shards")
    ap.add_argument("--calibration-tokens", type=int, default=4096)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    scoring = load_scoring(args, args.model)
    sd, tokens, bpb = scoring.state_dict, scoring.tokens, scoring.bpb

    t0 = time.perf_counter()
    base = bpb(sd)
    params = sum(t.numel() for t in sd.values())
    print(f"# {args.checkpoint.name}: {params:,} parameters; {len(tokens) - 1:,} validation tokens; "
          f"val_bpb {base:.5f} unpacked (eval {time.perf_counter() - t0:.0f} s)", flush=True)
    variants = {"pgolf-pack": evaluate_tensors(sd)}
    if args.calibrate:
        from pgolf_pack.sensitivity import calibration_tokens, measure_sensitivities

        t0 = time.perf_counter()
        sens = measure_sensitivities(sd, calibration_tokens(args.calibrate, args.calibration_tokens),
                                     model=args.model, seq_len=args.seq_len, device="cpu")
        print(f"calibrated on {args.calibration_tokens:,} training tokens in {time.perf_counter() - t0:.0f} s", flush=True)
        variants["pgolf-pack --calibrate"] = evaluate_tensors(sd, sensitivities=list(sens.items()))
    anchors = {}
    for name, export in (("baseline int8 + zlib-9", baseline_int8_zlib), ("records int6 (12.85σ) + brotli-11", records_int6_brotli)):
        size, restored = export(sd)
        anchors[name] = (size, bpb(restored))
    def compare(variant: str, tensors, name: str, size: int, anchor: float) -> dict:
        def ours(budget: int) -> tuple[int, float]:
            return scoring.packed(tensors, budget)

        ours_bytes, ours_bpb = ours(size)
        match = None
        if ours_bpb <= anchor:  # bisect for the bytes pgolf-pack needs to match the anchor's bpb
            lo, hi = size // 4, size
            for _ in range(7):
                mid = (lo + hi) // 2
                try:
                    _, b = ours(mid)
                except BudgetError:
                    lo = mid
                    continue
                lo, hi = (lo, mid) if b <= anchor else (mid, hi)
            match = hi
        print(f"[{variant}] {name}: {size:,} B, bpb {anchor:.5f} ({anchor - base:+.5f}) | at {ours_bytes:,} B: "
              f"{ours_bpb:.5f} ({ours_bpb - base:+.5f}) | bytes for bpb <= anchor: {match}", flush=True)
        return {"variant": variant, "anchor": name, "anchor_bytes": size, "anchor_bpb": anchor,
                "anchor_delta": anchor - base, "pgolf_bytes": ours_bytes, "pgolf_bpb": ours_bpb,
                "pgolf_delta": ours_bpb - base, "pgolf_bytes_for_anchor_bpb": match}

    rows = [compare(variant, tensors, name, size, anchor)
            for variant, tensors in variants.items() for name, (size, anchor) in anchors.items()]
    print("\n| export | bytes | val_bpb | Δ vs unpacked | packer | val_bpb at equal bytes | Δ | Δ ratio | "
          "bytes at equal val_bpb | bytes ratio |\n|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        m = r["pgolf_bytes_for_anchor_bpb"]
        ratio = "—" if m is None else f"{m / r['anchor_bytes']:.3f}"
        print(f"| {r['anchor']} | {r['anchor_bytes']:,} | {r['anchor_bpb']:.5f} | {r['anchor_delta']:+.5f} | "
              f"{r['variant']} | {r['pgolf_bpb']:.5f} | {r['pgolf_delta']:+.5f} | {r['pgolf_delta'] / r['anchor_delta']:.3f} | "
              f"{'—' if m is None else f'{m:,}'} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint), "unpacked_bpb": base, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
