"""One quantized tensor's symbols beside their floors: the unit both reports are made of.

Given the symbols, the row scales and the exact blobs an artifact holds for them (a rANS frame
of symbols and a blob of scales), `symbol_report` measures:

* the order-0 floor and the frame's overhead over it, split into frame header, tables and
  payload (`rans.frame_info`);
* the scales' bytes and their own floor;
* optionally, what zstd-22, lzma-9 and brotli-11 make of the same symbols stored one per byte
  (the reports estimate this for the whole model from samples; see generic.py);
* context bounds: H(X | row), H(X | row-scale bucket), H(X | previous symbol in the row) and,
  given the same tensor of the layer before, H(X - X_prev); each as a plug-in entropy (free
  tables: a bound) and, where the histogram fits, priced with real tables (achievable);
  scale buckets also as a measured rANS frame with one table per bucket.

docs/ANALYZE.md defines every field.
"""

from __future__ import annotations

import numpy as np

from pgolf_pack import rans
from pgolf_pack.analysis import entropy
from pgolf_pack.analysis.contexts import priced_bytes
from pgolf_pack.analysis.generic import tensor_sizes

MAX_PRICED_CONTEXTS = 4096  # previous-symbol contexts priced only up to the codec's table-id limit


def symbol_report(
    symbols: np.ndarray,
    scales: np.ndarray,
    symbol_frame: bytes,
    scale_blob: bytes,
    scale_format: int,
    record_bytes: int,
    *,
    previous: np.ndarray | None = None,
    previous_name: str | None = None,
    generic: bool = False,
    buckets: int = 8,
    keep_histogram: bool = False,
    groups_blob: bytes = b"",
) -> dict:
    """Measure one tensor's coded symbols (see the module docstring).

    Args:
        symbols: integer [rows, cols] array, what the frame codes.
        scales: float per row (for scale buckets).
        symbol_frame: the rANS frame of `symbols` as the artifact holds it.
        scale_blob: the scales as the artifact holds them (fp16 bytes or a frame of codes).
        scale_format: 0 = fp16, B = minifloat codes with B mantissa bits.
        record_bytes: the tensor's manifest record.
        previous: the same tensor one layer earlier under the same scheme (for H(ΔW)).
        generic: also compress the symbols with each generic compressor (exact, slow).
        buckets: scale-bucket contexts.
        keep_histogram: also return the order-0 histogram under "histogram".
        groups_blob: the column-group map when the symbols are coded with column contexts
            (FORMAT.md section 4); counted as side information in the frame's table bytes.
    """
    x = np.asarray(symbols)
    rows, cols = x.shape
    n = x.size
    lo, counts = _histogram(x)
    h0 = entropy.counts_bits(counts)
    info = rans.frame_info(symbol_frame)
    floor = h0 / 8.0
    frame = _frame_fields(info, len(groups_blob))
    scale = _scale_report(scale_blob, scale_format)
    total = record_bytes + frame["total_bytes"] + scale["bytes"]
    out = {
        "symbols": int(n),
        "min": int(lo),
        "max": int(lo + counts.size - 1),
        "distinct": int(np.count_nonzero(counts)),
        "entropy_bits_per_weight": h0 / max(n, 1),
        "floor_bytes": floor,
        "frame": frame,
        "overhead_bytes": frame["total_bytes"] - floor,
        "overhead_pct": _pct(frame["total_bytes"] - floor, floor),
        "scales": scale,
        "record_bytes": int(record_bytes),
        "total_bytes": int(total),
        "bits_per_weight": 8.0 * total / max(n, 1),
        "generic": tensor_sizes(x) if generic else None,
        "context": _context_report(x, scales, counts, h0, previous, previous_name, buckets),
    }
    if keep_histogram:
        out["histogram"] = {"offset": int(lo), "counts": [int(c) for c in counts]}
    return out


def passthrough_report(spec: str, blob: bytes, encoding: int, record_bytes: int, floor_bytes: float) -> dict:
    """A tensor stored as values (fp32/fp16/bf16/raw): its blob, record and floor, and the
    frame split when the values are word-coded (FORMAT.md section 4, encoding 1)."""
    frame = None
    if encoding == 1:
        info = rans.frame_info(blob)
        frame = _frame_fields(info)
    return {"spec": spec, "passthrough": True, "encoding": "rans16" if encoding == 1 else "bytes",
            "total_bytes": int(record_bytes + len(blob)), "blob_bytes": len(blob), "record_bytes": int(record_bytes),
            "floor_bytes": float(floor_bytes), "frame": frame}


def small_coded_report(spec: str, blobs: tuple[bytes, ...], record_bytes: int, floor_bytes: float) -> dict:
    """A tensor below the analysis threshold that is nevertheless quantized (the planner may
    choose that for small tensors): its blobs, record, floor and symbols frame, not analysed."""
    return {"spec": spec, "passthrough": False, "encoding": "symbols",
            "total_bytes": int(record_bytes + sum(len(b) for b in blobs)), "blob_bytes": sum(len(b) for b in blobs),
            "record_bytes": int(record_bytes), "floor_bytes": float(floor_bytes),
            "frame": _frame_fields(rans.frame_info(blobs[0]), len(blobs[2]) if len(blobs) > 2 else 0)}


def _frame_fields(info: rans.FrameInfo, groups_bytes: int = 0) -> dict:
    return {"total_bytes": info.total_bytes + groups_bytes, "header_bytes": info.header_bytes,
            "table_bytes": info.table_bytes + groups_bytes, "payload_bytes": info.payload_bytes,
            "tables": len(info.tables), "column_groups_bytes": groups_bytes, "precision": info.precision,
            "lanes": info.lanes, "chunks": info.chunks}


def _histogram(x: np.ndarray) -> tuple[int, np.ndarray]:
    if x.size == 0:
        return 0, np.zeros(1, dtype=np.int64)
    lo = int(x.min())
    return lo, np.bincount((x.astype(np.int64) - lo).ravel())


def _scale_report(blob: bytes, scale_format: int) -> dict:
    if scale_format == 0:
        words = np.frombuffer(blob, dtype="<u2")
        return {"format": "fp16", "bytes": len(blob), "floor_bytes": entropy.order0_bits(words.astype(np.int64)) / 8.0,
                "header_bytes": 0, "table_bytes": 0, "payload_bytes": len(blob)}
    info = rans.frame_info(blob)
    codes = rans.decode(blob)
    return {"format": f"s{scale_format}", "bytes": len(blob), "floor_bytes": entropy.order0_bits(codes) / 8.0,
            "header_bytes": info.header_bytes, "table_bytes": info.table_bytes, "payload_bytes": info.payload_bytes}


def _context_report(x, scales, counts, h0, previous, previous_name, buckets) -> dict:
    rows, cols = x.shape
    n = max(x.size, 1)
    k = counts.size

    def entry(bits: float, priced: dict | None, **extra) -> dict:
        return {"entropy_bits_per_weight": bits / n, "saving_bound_bytes": (h0 - bits) / 8.0,
                "priced_bytes": None if priced is None else priced["total_bytes"],
                "priced_table_bytes": None if priced is None else priced["table_bytes"]} | extra

    # The same pricing with one table: what the context models below are compared with.
    order0 = priced_bytes(counts)["total_bytes"] if k <= 65536 else None

    # H(X | row): one table per row.
    ids = entropy.scale_buckets(scales, buckets)
    nb = int(ids.max()) + 1 if ids.size else 1
    if rows * k <= entropy.DENSE_LIMIT:
        _, row_joint = entropy.row_joint_counts(x)
        row = entry(_rows_bits(row_joint), priced_bytes(row_joint, choose=False), contexts=rows)
        bucket_joint = np.zeros((nb, k), dtype=np.int64)
        np.add.at(bucket_joint, ids, row_joint)
    else:
        row = entry(entropy.conditional_bits(x, entropy.row_contexts((rows, cols))), None, contexts=rows)
        bucket_joint = None if nb * k > entropy.DENSE_LIMIT else entropy.joint_counts(x, np.repeat(ids, cols), nb)[1]

    # H(X | row-scale bucket): the decoder knows the scales, so these contexts are free.
    if bucket_joint is not None:
        bucket = entry(_rows_bits(bucket_joint), priced_bytes(bucket_joint), contexts=nb)
    else:
        bucket = entry(entropy.conditional_bits(x, np.repeat(ids, cols)), None, contexts=nb)
    bucket["rans_frame_bytes"] = _bucket_frame_bytes(x, ids, cols)

    # H(X | previous symbol in the row).
    if k + 1 <= MAX_PRICED_CONTEXTS + 1 and (k + 1) * k <= entropy.DENSE_LIMIT:
        _, prev_joint = entropy.previous_joint_counts(x)
        prev = entry(_rows_bits(prev_joint), priced_bytes(prev_joint), contexts=k + 1)
    else:
        pctx, np_ctx = entropy.previous_symbol_contexts(x)
        prev = entry(entropy.conditional_bits(x, pctx), None, contexts=np_ctx)

    # H(X - X of the layer before), same scheme.
    delta = None
    if previous is not None:
        d = entropy.delta_symbols(x, previous)
        _, dcounts = _histogram(d)
        dbits = entropy.counts_bits(dcounts)
        delta = entry(dbits, priced_bytes(dcounts) if dcounts.size <= 65536 else None, previous=previous_name)
    return {"order0_priced_bytes": order0, "row": row, "scale_bucket": bucket, "previous_symbol": prev,
            "layer_delta": delta}


def _rows_bits(joint: np.ndarray) -> float:
    """Sum over rows of counts_bits(row), vectorised."""
    j = joint.astype(np.float64)
    nc = j.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(nc > 0, nc * np.log2(np.where(nc > 0, nc, 1)), 0.0).sum()
        b = np.where(j > 0, j * np.log2(np.where(j > 0, j, 1)), 0.0).sum()
    return float(a - b)


def _bucket_frame_bytes(x: np.ndarray, ids: np.ndarray, cols: int) -> int | None:
    """Size of a real rANS frame coding the symbols with one table per scale bucket."""
    if x.size == 0 or cols == 0:
        return None
    return len(rans.encode(x, contexts=ids.astype(np.uint16), context_run=cols))


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole > 0 else None
