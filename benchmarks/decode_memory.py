"""Worst-case decode memory of the codec: crafted frames with valid CRCs, each decoded (and
described by `frame_info`) in a fresh child process: peak RSS (VmHWM) over the RSS before the
call, so it includes the output array and any Python objects the call returns.

Reported per input byte (frames whose cost is their tables and directory) and per output
symbol (frames whose cost is their declared output, which the caller bounds with
`max_symbols`). These are the numbers docs/SECURITY.md quotes.

    python benchmarks/decode_memory.py            # about a minute on a 2-core box
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from pgolf_pack import rans
from pgolf_pack._reference import frame_header as header
from pgolf_pack._reference import seal as sealed
from pgolf_pack._reference import table_fields, varint

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from pgolf_pack import rans
    frame = open(sys.argv[1], "rb").read()
    ctx = None if sys.argv[2] == "-" else np.load(sys.argv[2])
    call = sys.argv[3]
    def status_kb(field):  # VmHWM, unlike ru_maxrss, does not start at the parent's RSS at fork
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))
    before = status_kb("VmRSS")
    import time
    start = time.perf_counter()
    if call == "decode":
        out = rans.decode(frame, contexts=ctx, threads=1, max_symbols=1 << 30)
    else:
        out = rans.frame_info(frame, max_symbols=1 << 30)
    seconds = time.perf_counter() - start
    print(json.dumps({"delta_kb": status_kb("VmHWM") - before, "seconds": seconds}))
    """
)


def cases():
    """(name, frame, contexts, what the cost is measured against, its count)."""
    tail = b"\x04" + varint(1)
    # 4,096 empty tables over 65,536 symbols (issue #12's bomb: 1 GB before the fix)
    f = sealed(header((0,), 65536, 1, 4096, 1) + b"\x00\x00" * 4096 + tail)
    yield "4096 empty tables, K = 65536", f, None, "byte", len(f)
    # 4,096 one-symbol tables at the top of the alphabet, one output symbol each
    f = sealed(header((4096,), 65536, 12, 4096, 1) + b"".join(table_fields(65535 - t, 1, []) for t in range(4096)) + tail)
    yield "4096 one-symbol tables, K = 65536", f, np.arange(4096, dtype=np.uint16), "byte", len(f)
    # tables of the longest run per byte: K = 65,536 entries, all but the ends zero (1 bit each)
    dense = np.zeros(65536, dtype=np.uint32)
    dense[0], dense[-1] = 1, 255
    t = rans.FrequencyTable(dense, 8)
    f = rans.encode(np.zeros(128, np.uint16), contexts=np.arange(128), tables=[t] * 128)
    yield "128 tables of 65,536-entry runs, n = 8", f, np.arange(128, dtype=np.uint16), "byte", len(f)
    dense = dense.copy()
    dense[-1] = 65535  # the same at precision 16: slot tables would cost more, so "auto" searches
    t = rans.FrequencyTable(dense, 16)
    f = rans.encode(np.zeros(128, np.uint16), contexts=np.arange(128), tables=[t] * 128)
    yield "128 tables of 65,536-entry runs, n = 16", f, np.arange(128, dtype=np.uint16), "byte", len(f)
    # many two-symbol tables at precision 12 for a few symbols: slot tables would be 96 MB
    half = rans.FrequencyTable(np.array([2048, 2048]), 12)
    f = rans.encode(np.zeros(8, np.int8), contexts=np.arange(8), tables=[half] * 4096, lanes=4)
    yield "4096 two-symbol tables at n = 12, 8 symbols", f, np.arange(8, dtype=np.uint16), "byte", len(f)
    # the most slot entries per symbol that "auto" still builds: one table at 16 bits, 2^14 symbols
    rng = np.random.default_rng(0)
    f = rans.encode(rng.integers(0, 2, 1 << 14).astype(np.int8), precision=16, lanes=4)
    yield "one 2^16-slot table, 2^14 symbols (int8)", f, None, "symbol", 1 << 14
    # output of 2^26 int64 from a 23-byte zero-cost frame, with and without per-run contexts
    f = sealed(header((1 << 26,), 1, 1, 1, 0, dtype=7) + table_fields(0, 1, []) + tail)
    yield "2^26 int64 zeros from 23 bytes", f, None, "symbol", 1 << 26
    f = sealed(header((1 << 26,), 1, 1, 2, 2, dtype=1) + table_fields(0, 1, []) * 2 + tail)
    yield "2^26 int8 zeros, contexts in runs of 2", f, np.zeros(1 << 25, dtype=np.uint16), "symbol", 1 << 26


def main() -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    print(f"# decode memory, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    print("| frame | bytes | call | peak RSS over before | per unit | time |")
    print("|---|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, frame, ctx, unit, count in cases():
            path = os.path.join(tmp, "frame.bin")
            with open(path, "wb") as fh:
                fh.write(frame)
            ctx_path = "-"
            if ctx is not None:
                ctx_path = os.path.join(tmp, "ctx.npy")
                np.save(ctx_path, ctx)
            for call in ("decode", "frame_info"):
                out = subprocess.run([sys.executable, "-c", CHILD, path, ctx_path, call], capture_output=True,
                                     text=True, env=env, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                kb = result["delta_kb"]
                print(f"| {name} | {len(frame):,} | {call} | {kb / 1024:.1f} MiB | {kb * 1024 / count:.1f} B/{unit} "
                      f"| {result['seconds'] * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
