"""Writes seed inputs for the fuzz targets: valid frames of many shapes, each prefixed with
the fuzz_decode mode byte (CRC re-sealing on), so mutations start from deep in the format;
and crafted frames with valid CRCs that ask for much more work than their bytes pay for
(issue #12: table-size and output-size cases), which fuzz_decode's memory bound must hold."""

import sys
from pathlib import Path

import numpy as np

from pgolf_pack import rans
from pgolf_pack._reference import frame_header as header
from pgolf_pack._reference import seal as sealed
from pgolf_pack._reference import table_fields, varint

RESEAL_AUTO, RESEAL_SCALAR, RESEAL_SEARCH = b"\x01", b"\x03", b"\x09"  # fuzz_decode mode bytes


def crafted() -> dict[str, bytes]:
    """Frames within fuzz_decode's limits (2^20 symbols, 2^20 table entries) at their worst."""
    tail = b"\x04" + varint(1)  # 4 lanes, chunk_size 1, no chunks
    half = rans.FrequencyTable(np.array([2048, 2048]), 12)
    return {
        # 4,096 empty tables over 65,536 symbols: 2 bytes each, K x 4 bytes each if densified
        "table_empty_bomb": sealed(header((0,), 65536, 1, 4096, 1) + b"\x00\x00" * 4096 + tail),
        # 256 one-symbol tables at the top of the alphabet, one per symbol: zero-cost, no payload
        "table_single_bomb": sealed(header((256,), 65536, 12, 256, 1)
                                    + b"".join(table_fields(65535 - t, 1, []) for t in range(256)) + tail),
        # 256 two-symbol tables at precision 12 (2^20 slot entries) coding 8 symbols
        "table_slot_bomb": rans.encode(np.zeros(8, np.int8), contexts=np.zeros(8, np.uint16), tables=[half] * 256, lanes=4),
        # the limit of 2^20 output symbols from a 20-byte zero-cost frame, and one past it
        "output_fill_max": sealed(header((1 << 20,), 1, 1, 1, 0, dtype=7) + table_fields(0, 1, []) + tail),
        "output_over_limit": sealed(header((1 << 10, (1 << 10) + 1), 1, 1, 1, 0) + table_fields(0, 1, []) + tail),
        # 2^20 symbols coded in a few hundred bytes under a skewed table
        "output_skewed_max": rans.encode(np.eye(1 << 10, dtype=np.int8), precision=16),
        # shapes no array can have, and a large empty one that is fine
        "shape_overflow_u64": sealed(header((0, 2**64 - 1), 1, 1, 1, 0) + table_fields(0, 1, []) + tail),
        "shape_overflow_bytes": sealed(header((2**62, 0, 4), 1, 1, 1, 0, dtype=7) + table_fields(0, 1, []) + tail),
        "shape_zero_wide": rans.encode(np.zeros((0, 2**40), dtype=np.int16)),
        # the only table empty while the frame holds symbols (native and reference once disagreed)
        "empty_only_table": sealed(header((10,), 2, 4, 1, 0) + b"\x00\x00" + tail),
    }


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
    for name, frame in crafted().items():
        (out / f"{name}.bin").write_bytes(RESEAL_AUTO + frame)
    # the slot-table bomb again through a forced slot kernel and the search kernel
    (out / "table_slot_bomb_scalar.bin").write_bytes(RESEAL_SCALAR + crafted()["table_slot_bomb"])
    (out / "table_slot_bomb_search.bin").write_bytes(RESEAL_SEARCH + crafted()["table_slot_bomb"])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
