"""What a "shared row + residual" record would buy: val_bpb at equal bytes, simulated.

The embedding rows of tokens the training text never uses (a tokenizer's byte-fallback pieces)
train into near-copies of one vector (benchmarks/unused_rows.py). A record could store that
vector once and the rows as residuals. No such record exists; this simulates it: the rows' mean
(fp16) is taken out of the checkpoint, the rest is packed calibrated at the budget less the
record's bytes (the fp16 vector and 16 B to name the rows), the mean is added back to what is
unpacked, and val_bpb is scored as benchmarks/bpb.py does. Training shards only.

    python benchmarks/shared_row.py CHECKPOINT --val 'DIR/fineweb_val_*.bin' --tokenizer DIR/tokenizer.model \
        --seq-len 256 --calibrate 'DIR/fineweb_train_*.bin' --budgets 276249,220168,180466
"""

from __future__ import annotations

import argparse

import torch
from _scoring import add_scoring_arguments, load_scoring
from unused_rows import never_used

from pgolf_pack.artifact import decode_artifact
from pgolf_pack.calibration import LossModel, calibration_tokens, collect_stats
from pgolf_pack.lossaware import evaluate_calibrated, pack_calibrated

RECORD_BYTES = 16  # besides the fp16 vector: a record naming the rows (a range or a short mask)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scoring_arguments(ap, max_tokens=32768)
    ap.add_argument("--calibrate", metavar="GLOB", required=True, help="training shards")
    ap.add_argument("--budgets", required=True, help="comma-separated byte budgets")
    ap.add_argument("--calibration-tokens", type=int, default=65536)
    ap.add_argument("--tensor", default="tok_emb.weight", help="the embedding: one row per token id")
    args = ap.parse_args(argv)

    scoring = load_scoring(args)
    sd, name = scoring.state_dict, args.tensor
    base = scoring.bpb(sd)
    stats = collect_stats(sd, calibration_tokens(args.calibrate, args.calibration_tokens), seq_len=args.seq_len,
                          device="cpu")
    rows = sd[name].shape[0]
    unused = torch.from_numpy(never_used(args.calibrate, rows, name))
    if not bool(unused.any()):
        raise SystemExit(f"every row of {name} is used by the training shards: nothing to share")
    table = sd[name].float()
    shared = table[unused].mean(0).half().float()
    residual = table.clone()
    residual[unused] -= shared
    sd_res = {**sd, name: residual.to(sd[name].dtype)}
    extra = 2 * shared.numel() + RECORD_BYTES
    print(f"{name}: {int(unused.sum())} of {rows} rows never used in training; their row std "
          f"{float(table[unused].std(1).mean()):.4f}, as residuals {float(residual[unused].std(1).mean()):.4f}; "
          f"the record costs {extra} B; val_bpb unpacked {base:.5f}")

    now = evaluate_calibrated(sd, LossModel.of(stats, sd))
    res = evaluate_calibrated(sd_res, LossModel.of(stats, sd_res))
    print("| budget | now: bytes | Δbpb | embedding B | shared row: bytes | Δbpb | embedding B |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for budget in (int(b) for b in args.budgets.split(",")):
        a = pack_calibrated(now, sd, budget)
        b = pack_calibrated(res, sd_res, budget - extra)
        unpacked = dict(decode_artifact(b.data).tensors())
        t = unpacked[name].float()
        t[unused] += shared
        unpacked[name] = t.to(sd[name].dtype)
        emb_a = next(r.coded_bytes for r in a.tensors if r.name == name)
        emb_b = next(r.coded_bytes for r in b.tensors if r.name == name)
        print(f"| {budget:,} | {a.artifact_bytes:,} | {scoring.bpb(decode_artifact(a.data).tensors()) - base:+.5f} "
              f"| {emb_a:,} | {b.artifact_bytes + extra:,} | {scoring.bpb(unpacked) - base:+.5f} | {emb_b:,} |",
              flush=True)


if __name__ == "__main__":
    main()
