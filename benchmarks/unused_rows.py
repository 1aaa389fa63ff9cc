"""Where a calibrated plan's embedding bytes go: rows of tokens the training text never uses.

Tokenizers with byte-fallback pieces (the demo's, the challenge's 8192-token one) have rows
that an English corpus never asks for; they train into near-copies of one vector. This packs
the checkpoint calibrated at each budget and reports, for the embedding (--tensor), the order-0 bytes of those rows under the tensor's own
symbol histogram, and whether any of them quantized to identical symbol rows (which a
repeated-row record could store once). Training shards only (calibration_tokens refuses
validation ones); "never used" is counted over all the training shards matched.

    python benchmarks/unused_rows.py CHECKPOINT --calibrate 'DIR/fineweb_train_*.bin' --budgets 276249,220168
"""

from __future__ import annotations

import argparse

import numpy as np

from pgolf_pack.artifact import decode_artifact
from pgolf_pack.artifact.reader import decode_symbols, quantized_shape
from pgolf_pack.calibration import LossModel, calibration_tokens, collect_stats
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.lossaware import evaluate_calibrated, pack_calibrated
from pgolf_pack.shards import read_shard, training_files


def never_used(pattern: str, rows: int, name: str) -> np.ndarray:
    """Which of a table's `rows` no token of the training shards matching `pattern` uses (bool)."""
    counts = sum(np.bincount(read_shard(f), minlength=rows) for f in training_files(pattern))
    if len(counts) != rows:
        raise SystemExit(f"the training shards hold token ids beyond {name}'s {rows} rows")
    return counts == 0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--calibrate", metavar="GLOB", required=True, help="training shards")
    ap.add_argument("--budgets", required=True, help="comma-separated byte budgets")
    ap.add_argument("--calibration-tokens", type=int, default=65536)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--tensor", default="tok_emb.weight", help="the embedding: one row per token id")
    args = ap.parse_args(argv)

    sd = load_state_dict(args.checkpoint)
    stats = collect_stats(sd, calibration_tokens(args.calibrate, args.calibration_tokens), seq_len=args.seq_len,
                          device="cpu")
    evaluated = evaluate_calibrated(sd, LossModel.of(stats, sd))
    unused = never_used(args.calibrate, sd[args.tensor].shape[0], args.tensor)
    for budget in (int(b) for b in args.budgets.split(",")):
        packed = pack_calibrated(evaluated, sd, budget)
        art = decode_artifact(packed.data)
        entry = next(e for e in art.entries if e.name == args.tensor)
        if entry.kind.stores_values or len(entry.shape) != 2:
            raise SystemExit(f"{args.tensor} is not stored quantized as a 2-D table in this plan")
        sym = decode_symbols(memoryview(art.data), entry, *quantized_shape(entry)).astype(np.int64)
        values, freq = np.unique(sym, return_counts=True)
        cost = -np.log2(freq / freq.sum())
        row_bits = cost[np.searchsorted(values, sym)].sum(axis=1)
        coded = next(t.coded_bytes for t in packed.tensors if t.name == entry.name)
        print(f"budget {budget:,}: {entry.name} as {packed.plan.specs[entry.name]}, {coded:,} B of "
              f"{packed.artifact_bytes:,}; {int(unused.sum())} rows never used in training, their order-0 bytes "
              f"{row_bits[unused].sum() / 8:,.0f} ({row_bits[unused].sum() / 8 / packed.artifact_bytes:.1%} of the "
              f"artifact, {row_bits[unused].mean() / sym.shape[1]:.2f} bits/weight against "
              f"{row_bits[~unused].mean() / sym.shape[1]:.2f} for used rows); distinct symbol rows among them "
              f"{len(np.unique(sym[unused], axis=0))}")


if __name__ == "__main__":
    main()
