"""Pack benchmark: pgolf-pack beside the challenge baseline's int8+zlib export and the records'
int6+brotli style, on baseline-architecture checkpoints.

For each checkpoint it reports pack and unpack time, then, for each anchor export: its bytes
and reconstruction error (sum of squared weight errors, in the loaded dtype), pgolf-pack's
bytes at the anchor's error, and pgolf-pack's error at the anchor's bytes.

    python benchmarks/pack.py                          # synthetic 17M and 36M checkpoints
    python benchmarks/pack.py --checkpoint final_model.pt [--checkpoint other.pt]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from anchors import baseline_int8_zlib, records_int6_brotli, squared_error  # noqa: E402

from pgolf_pack.artifact import decode_artifact  # noqa: E402
from pgolf_pack.checkpoint import load_state_dict  # noqa: E402
from pgolf_pack.errors import BudgetError  # noqa: E402
from pgolf_pack.pack import pack_checkpoint  # noqa: E402
from pgolf_pack.planner import evaluate_tensors, plan_from  # noqa: E402
from pgolf_pack.synthetic import baseline_state_dict  # noqa: E402


def bytes_for_damage(tensors, target: float, lo: int, hi: int) -> int:
    """Smallest budget whose plan's damage is <= target (binary search over solves)."""
    while hi - lo > max(64, lo // 20000):
        mid = (lo + hi) // 2
        try:
            ok = plan_from(tensors, mid).estimated_damage <= target
        except BudgetError:
            ok = False
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def bench(label: str, sd: dict[str, torch.Tensor]) -> dict:
    params = sum(t.numel() for t in sd.values())
    print(f"\n### {label}: {params:,} parameters", flush=True)
    anchors = {"baseline int8 + zlib-9": baseline_int8_zlib(sd), "records int6 (12.85σ) + brotli-11": records_int6_brotli(sd)}
    # pack time at the baseline export's size, as a user would run it
    budget = anchors["baseline int8 + zlib-9"][0]
    t0 = time.perf_counter()
    packed = pack_checkpoint(sd, budget)
    t_pack = time.perf_counter() - t0
    t0 = time.perf_counter()
    decode_artifact(packed.data).tensors()
    t_unpack = time.perf_counter() - t0
    tensors = evaluate_tensors(sd)
    raw = sum(t.numel() * t.element_size() for t in sd.values())
    rows = []
    for name, (size, restored) in anchors.items():
        err = squared_error(sd, restored)
        at_err = bytes_for_damage(tensors, err, 1000, 2 * raw)
        ours_err = pack_checkpoint(sd, size, plan=plan_from(tensors, size)).tensors
        err_at_bytes = sum(t.damage for t in ours_err)
        rows.append({"anchor": name, "anchor_bytes": size, "anchor_error": err, "pgolf_bytes_at_equal_error": at_err,
                     "pgolf_error_at_equal_bytes": err_at_bytes})
    print(f"pack {t_pack:.2f} s (budget {budget:,} B), unpack {t_unpack:.2f} s")
    print("\n| anchor | anchor bytes | anchor error | pgolf-pack bytes at equal error | bytes ratio | "
          "pgolf-pack error at equal bytes | error ratio |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['anchor']} | {r['anchor_bytes']:,} | {r['anchor_error']:.4g} | {r['pgolf_bytes_at_equal_error']:,} | "
              f"{r['pgolf_bytes_at_equal_error'] / r['anchor_bytes']:.3f} | {r['pgolf_error_at_equal_bytes']:.4g} | "
              f"{r['pgolf_error_at_equal_bytes'] / r['anchor_error']:.3f} |", flush=True)
    return {"checkpoint": label, "params": params, "pack_seconds": t_pack, "unpack_seconds": t_unpack, "anchors": rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, action="append", help="a state dict (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    print(f"# pack benchmark on {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    cases = [(f"checkpoint {p.name}", load_state_dict(p)) for p in args.checkpoint or []] or [
        ("synthetic baseline 9L×512, MLP×2, vocab 1024", baseline_state_dict()),
        ("synthetic 11L×512, MLP×4, vocab 8192", baseline_state_dict(layers=11, mlp_mult=4, vocab=8192)),
    ]
    results = [bench(label, sd) for label, sd in cases]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
