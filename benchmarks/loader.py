"""Loader benchmark: the standalone submission loader (numpy + torch only) beside the native one.

Packs a synthetic baseline-shaped checkpoint to a 16,000,000-byte budget (or takes an artifact),
then times, on one thread each: pgolf_pack's native loader, the standalone `load_pgpk` and its
counted one-line form, and checks that all three give the same tensors bit for bit.

    python benchmarks/loader.py                               # synthetic 36M (11L x 512, MLP x4, vocab 8192)
    python benchmarks/loader.py --artifact final_model.pgpk   # an existing artifact
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pgolf_pack.artifact import decode_artifact  # noqa: E402
from pgolf_pack.loader import compact_loader  # noqa: E402
from pgolf_pack.loader.standalone import crc32c, load_pgpk  # noqa: E402


def timed(fn, repeats: int):
    """(result, best wall seconds, CPU seconds of that run) over `repeats` runs."""
    best = None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w, time.process_time() - c
        if best is None or w < best[1]:
            best = (out, w, c)
    return best


def same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        and (not a[k].numel() or torch.equal(a[k].reshape(-1).view(torch.uint8), b[k].reshape(-1).view(torch.uint8)))
        for k in a)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", type=Path, help="an artifact to load (default: pack the synthetic 36M checkpoint)")
    p.add_argument("--save", type=Path, help="keep the packed synthetic artifact here")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.artifact:
        data = args.artifact.read_bytes()
        label = str(args.artifact)
    else:
        from pgolf_pack.pack import pack_checkpoint
        from pgolf_pack.synthetic import baseline_state_dict

        sd = baseline_state_dict(layers=11, mlp_mult=4, vocab=8192)
        t0 = time.perf_counter()
        data = pack_checkpoint(sd, 16_000_000, code_bytes=len(compact_loader())).data
        print(f"packed in {time.perf_counter() - t0:.1f} s", flush=True)
        label = "synthetic 11L×512, MLP×4, vocab 8192"
        if args.save:
            args.save.write_bytes(data)
    art = decode_artifact(data)
    weights = sum(e.numel for e in art.entries)
    kinds = Counter(f"{e.label}{'/w16' if e.encoding else ''}" for e in art.entries)
    print(f"\n{label}: {weights:,} weights, {len(data):,} bytes, {len(art.entries)} tensors "
          f"({', '.join(f'{v} {k}' for k, v in kinds.most_common())})")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}\n")
    namespace: dict = {}
    exec(compact_loader(), namespace)
    runs = [
        ("native (pgolf_pack.load_artifact), 1 thread", lambda: decode_artifact(data).tensors(threads=1)),
        ("standalone load_pgpk", lambda: load_pgpk(data)),
        (f"compact one-line form ({len(compact_loader()):,} B)", lambda: namespace["load_pgpk"](data)),
        ("  of which the artifact's CRC-32C", lambda: crc32c(memoryview(data))),
    ]
    reference = None
    print("| loader | wall s | CPU s |\n|---|---:|---:|")
    for name, fn in runs:
        out, wall, cpu = timed(fn, args.repeats)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |", flush=True)
        if isinstance(out, dict):
            reference = reference or out
            assert same(out, reference), f"{name} differs from the native loader"
    print("\nall loaders gave the same tensors, bit for bit")


if __name__ == "__main__":
    main()
