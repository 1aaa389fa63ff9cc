"""Writes seed inputs for the fuzz targets: valid frames of many shapes, each prefixed with
the fuzz_decode mode byte (CRC re-sealing on), so mutations start from deep in the format."""

import sys
from pathlib import Path

import numpy as np

from pgolf_pack import rans


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cases = {
        "pent": (np.clip(np.round(rng.normal(0, 0.8, 700)), -2, 2).astype(np.int8), {}),
        "int6_32lanes": (np.clip(np.round(rng.normal(0, 8, 3000)), -32, 31).astype(np.int8), {"lanes": 32}),
        "wide16": (np.round(rng.normal(0, 900, 400)).astype(np.int16), {"lanes": 16, "chunk_size": 100}),
        "single": (np.full((3, 5), 7, dtype=np.int32), {}),
        "empty": (np.zeros(0, dtype=np.uint8), {}),
        "u64": (np.array([2**63 + 1, 2**63 + 4] * 50, dtype=np.uint64), {"lanes": 8}),
    }
    for name, (arr, kw) in cases.items():
        (out / f"{name}.bin").write_bytes(b"\x01" + rans.encode(arr, **kw))
    ctx = rng.integers(0, 3, 40)
    arr = np.round(rng.normal(0, 1, (40, 30)) * (1 + 3 * ctx[:, None])).astype(np.int16)
    (out / "contexts.bin").write_bytes(b"\x01" + rans.encode(arr, contexts=ctx, context_run=30, lanes=8))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
