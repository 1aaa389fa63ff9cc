"""What a low-rank error term (the top record's LQER, in the loss metric) would buy: val_bpb at
equal bytes, simulated.

No such record exists; this simulates one: the checkpoint is packed calibrated at the budget
less X bytes, and X is spent on rank-1 components of the packed matrices' errors, best first by
predicted loss removed per byte. A matrix's components are the SVD of diag(√g) ΔW L (g its output
rows' loss weights, H = L Lᵀ its input Hessian), which minimises the predicted loss ½ Σ g_i ΔW_i H
ΔW_iᵀ for each rank; each component's two factor vectors are stored as int8 with an fp16 absmax
scale each (rows + cols + 4 bytes). The correction is subtracted from what is unpacked and val_bpb
scored as benchmarks/bpb.py does. Training shards only.

    python benchmarks/lowrank_term.py CHECKPOINT --val 'DIR/fineweb_val_*.bin' --tokenizer DIR/tokenizer.model \
        --seq-len 256 --calibrate 'DIR/fineweb_train_*.bin' --budget 276249 --extras 0,2000,5000,10000,20000
"""

from __future__ import annotations

import argparse

import torch
from _scoring import add_scoring_arguments, load_scoring

from pgolf_pack.artifact import decode_artifact
from pgolf_pack.calibration import LossModel, calibration_tokens, collect_stats
from pgolf_pack.lossaware import evaluate_calibrated, pack_calibrated


def int8_absmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x rounded to int8 with one absmax scale per vector along `dim` (what the record would store)."""
    s = x.abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / 127
    return torch.round(x / s).clamp(-127, 127) * s


def components(delta: torch.Tensor, hessian: torch.Tensor, weights: torch.Tensor, rank: int):
    """(loss removed by each rank-1 component, A [rows, rank], B [rank, cols]): the loss-metric SVD."""
    h = hessian + 1e-6 * float(hessian.diagonal().mean()) * torch.eye(hessian.shape[0], dtype=hessian.dtype)
    chol = torch.linalg.cholesky(h)
    g = weights.clamp_min(1e-30).sqrt()
    u, s, vh = torch.linalg.svd(g[:, None] * (delta @ chol), full_matrices=False)
    a = u[:, :rank] * s[:rank] / g[:, None]
    b = torch.linalg.solve_triangular(chol.T, vh[:rank].T, upper=True).T  # Vᵀ L⁻¹
    return s[:rank].square(), a, b


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scoring_arguments(ap, max_tokens=32768)
    ap.add_argument("--calibrate", metavar="GLOB", required=True, help="training shards")
    ap.add_argument("--budget", type=int, required=True)
    ap.add_argument("--extras", default="0,2000,5000,10000,20000", help="bytes given to the low-rank terms")
    ap.add_argument("--max-rank", type=int, default=16)
    ap.add_argument("--calibration-tokens", type=int, default=65536)
    args = ap.parse_args(argv)

    scoring = load_scoring(args)
    sd = scoring.state_dict
    base = scoring.bpb(sd)
    stats = collect_stats(sd, calibration_tokens(args.calibrate, args.calibration_tokens), seq_len=args.seq_len,
                          device="cpu")
    loss = LossModel.of(stats, sd)
    evaluated = evaluate_calibrated(sd, loss)
    print("| low-rank bytes | plan bytes | tensors | largest ranks | predicted loss of those tensors | Δbpb |")
    print("|---:|---:|---:|---|---|---:|")
    for extra in (int(x) for x in args.extras.split(",")):
        packed = pack_calibrated(evaluated, sd, args.budget - extra)
        unpacked = dict(decode_artifact(packed.data).tensors())
        found = {}
        for name in stats.hessian:
            if loss.has_hessian(name):
                delta = (unpacked[name].float() - sd[name].float()).double()
                found[name] = components(delta, loss.hessian(name), loss.row_weights(name), args.max_rank)
        # rank-1 components best first by predicted loss removed per byte; a matrix's in order
        offers = sorted(((float(gain) / (sum(sd[n].shape) + 4), n, k) for n, (gains, _, _) in found.items()
                         for k, gain in enumerate(gains)), reverse=True)
        ranks: dict[str, int] = {}
        spent = 0
        for _, name, k in offers:
            cost = sum(sd[name].shape) + 4
            if k == ranks.get(name, 0) and spent + cost <= extra:
                ranks[name] = k + 1
                spent += cost
        before = sum(loss.damage(n, unpacked[n].float() - sd[n].float()) for n in ranks)
        for name, rank in ranks.items():
            _, a, b = found[name]
            correction = int8_absmax(a[:, :rank].float(), 0) @ int8_absmax(b[:rank].float(), 1)
            unpacked[name] = (unpacked[name].float() - correction).to(sd[name].dtype)
        after = sum(loss.damage(n, unpacked[n].float() - sd[n].float()) for n in ranks)
        print(f"| {spent:,} | {packed.artifact_bytes:,} | {len(ranks)} | {sorted(ranks.values())[-5:]} "
              f"| {before:.5f} -> {after:.5f} | {scoring.bpb(unpacked) - base:+.5f} |", flush=True)


if __name__ == "__main__":
    main()
