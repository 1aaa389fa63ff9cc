"""The artifact report: where every byte of a .pgpk file goes, beside each tensor's floor.

The file is parsed and checked by `artifact.read_artifact` (magic, version, CRC, every
manifest bound). Its bytes are then split into sections (header, manifest records, blobs,
CRC) and, per quantized tensor, the symbols frame into frame header, tables and payload
(`rans.frame_info`) and the scales; the symbols are decoded and measured by
`symbols.symbol_report` exactly as a checkpoint's would be. Passthrough tensors report their
blob against the floor the writer uses (order-0 entropy of their 16-bit words when
word-coded, their raw size otherwise).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pgolf_pack._version import __version__
from pgolf_pack.analysis import names as tnames
from pgolf_pack.analysis.checkpoint_report import DEFAULT_SAMPLE, REPORT_FORMAT
from pgolf_pack.analysis.progress import Progress, locked_update, single_threaded_torch
from pgolf_pack.analysis.entropy import order0_bits
from pgolf_pack.analysis.generic import COMPRESSORS, container_bytes, sample_share, stream_sizes
from pgolf_pack.analysis.schema import Report
from pgolf_pack.analysis.symbols import passthrough_report, symbol_report
from pgolf_pack.analysis.totals import per_tensor_generic, quantized, scheme_totals, summary_of
from pgolf_pack.artifact import format as fmt
from pgolf_pack.artifact import read_artifact
from pgolf_pack.artifact.reader import (
    TensorEntry, decode_entry, decode_row_scales, decode_symbols, decode_value_words, quantized_shape, stored_item_size,
)

STORED = "stored"
MAX_HISTOGRAMS = 8


def analyze_artifact(path: str | Path, *, code_bytes: int = 0, code_files: list[str] | None = None,
                     sample: int | None = DEFAULT_SAMPLE, buckets: int = 8, threads: int | None = None,
                     progress: Progress | None = None, max_elements: int = fmt.DEFAULT_MAX_ELEMENTS) -> Report:
    """The report dict for an artifact (see docs/ANALYZE.md). Raises CorruptDataError or
    InputError on a bad file: the same checks as the loader's, the same `max_elements`."""
    with single_threaded_torch():
        return _analyze(read_artifact(path, max_elements=max_elements), path, code_bytes, code_files, sample, buckets,
                        threads, progress)


def _analyze(art, path, code_bytes, code_files, sample, buckets, threads, progress) -> dict:
    data = art.data
    entries = list(art.entries)
    names = [e.name for e in entries]
    by_name = {e.name: e for e in entries}
    coded = [e for e in entries if not e.kind.stores_values]
    coded_numel = sum(e.numel for e in coded)
    representatives = tnames.representatives([e.name for e in coded], lambda n: by_name[n].numel, MAX_HISTOGRAMS)

    results: dict[str, dict] = {}
    histograms: dict[str, dict] = {}
    samples: dict[str, tuple] = {}
    lock = threading.Lock()
    bar = progress("analysing", len(entries), "tensor") if progress else None

    def run_group(group: list[str]) -> None:
        last: tuple[str, np.ndarray, str] | None = None
        for name in group:
            e = by_name[name]
            decode_entry(data, e)  # every check the loader makes: the report covers only what loads
            if e.kind.stores_values:
                entry, hist = _passthrough(data, e), None
                last = None
            else:
                entry, hist, symbols = _coded(data, e, names, last, sample is None, buckets, name in representatives)
                last = (name, symbols, entry["schemes"][STORED]["spec"])
                if sample is not None:
                    label, blob, m = container_bytes(symbols, sample_share(e.numel, coded_numel, sample))
                    with lock:
                        samples[name] = (label, blob, m, symbols.size)
            with lock:
                results[name] = entry
                if hist is not None:
                    histograms[name] = hist
                if bar:
                    bar.update(1)

    groups = tnames.role_groups(names)
    with ThreadPoolExecutor(max(1, min(len(groups), threads or os.cpu_count() or 1))) as pool:
        list(pool.map(run_group, groups))
    if bar:
        bar.close()

    tensors = [results[n] for n in names]
    records = [e.record_bytes for e in entries]
    header = fmt.container_bytes(records)
    sections = {
        "magic_and_version_bytes": len(fmt.MAGIC) + 1,
        "manifest_length_bytes": art.manifest_bytes - header["count_bytes"] - sum(records),
        "record_count_bytes": header["count_bytes"],
        "record_bytes": sum(records),
        "blob_bytes": sum(size for e in entries for _, size in e.blobs),
        "crc_bytes": fmt.CRC_BYTES,
    }
    sections["total_bytes"] = sum(sections.values())
    if sections["total_bytes"] != len(data):  # the reader accepted the file, so this is our bug
        raise AssertionError(f"sections add up to {sections['total_bytes']} bytes, the file has {len(data)}")
    if sample is None:
        generic = per_tensor_generic([r for _, r in quantized(tensors, STORED)])
    else:
        parts = [samples[n] for n in names if n in samples]
        generic = None
        if parts:
            bar = progress("compressing", len(COMPRESSORS), "stream") if progress else None
            generic = stream_sizes({STORED: parts}, threads or os.cpu_count() or 1,
                                   on_done=(lambda: locked_update(bar, lock)) if bar else None)[STORED]
            if bar:
                bar.close()
    summary = summary_of(tensors, STORED, header, generic)
    summary["code_bytes"] = code_bytes
    summary["total_bytes"] = len(data) + code_bytes
    return {
        "format": REPORT_FORMAT,
        "kind": "artifact",
        "pgolf_pack_version": __version__,
        "input": str(path),
        "input_bytes": len(data),
        "options": {"code_bytes": code_bytes, "code_files": list(code_files or []), "sample_symbols": sample,
                    "buckets": buckets, "compressors": list(COMPRESSORS)},
        "summary": summary,
        "sections": sections,
        "schemes": [{"id": STORED, "spec": STORED, "totals": scheme_totals(tensors, STORED, generic)}],
        "tensors": tensors,
        "histograms": [histograms[n] for n in representatives if n in histograms],
    }


def _base(e: TensorEntry) -> dict:
    return {"name": e.name, "role": tnames.role_of(e.name), "layer": tnames.layer_of(e.name), "shape": list(e.shape),
            "numel": e.numel, "dtype": str(e.dtype).replace("torch.", "")}


def _label(e: TensorEntry) -> str:
    return f"{e.label}:{'fp16' if e.scale_format == 0 else f's{e.scale_format}'}"


def _coded(data: bytes, e: TensorEntry, names, last, generic, buckets, keep) -> tuple[dict, dict | None, np.ndarray]:
    (s_off, s_size), (c_off, c_size) = e.blobs[:2]
    symbol_blob, scale_blob = data[s_off:s_off + s_size], data[c_off:c_off + c_size]
    groups_blob = b"" if len(e.blobs) < 3 else data[e.blobs[2][0]:e.blobs[2][0] + e.blobs[2][1]]
    rows, cols = quantized_shape(e)
    symbols = decode_symbols(memoryview(data), e, rows, cols)
    scales = decode_row_scales(memoryview(data), e, rows).numpy()
    spec = _label(e)
    prev_name = tnames.previous_layer(e.name, names)
    usable = last is not None and last[0] == prev_name and last[2] == spec and last[1].shape == symbols.shape
    r = symbol_report(symbols, scales, symbol_blob, scale_blob, e.scale_format, e.record_bytes,
                      previous=last[1] if usable else None, previous_name=prev_name if usable else None,
                      generic=generic, buckets=buckets, keep_histogram=keep, groups_blob=groups_blob)
    hist = None
    if keep:
        h = r.pop("histogram")
        hist = {"tensor": e.name, "scheme": STORED, "spec": spec, "offset": h["offset"], "counts": h["counts"],
                "entropy_bits_per_weight": r["entropy_bits_per_weight"]}
    entry = _base(e) | {"analysed": True, "stats": None, "planner_spec": None,
                        "schemes": {STORED: {"spec": spec, "passthrough": False} | r}}
    return entry, hist, symbols


def _passthrough(data: bytes, e: TensorEntry) -> dict:
    (off, size), = e.blobs
    blob = data[off:off + size]
    floor = float(size)  # raw bytes are their own floor, as the writer counts them
    if e.encoding == fmt.ENCODING_RANS16:
        period = stored_item_size(e) // 2
        words = decode_value_words(memoryview(data)[off:off + size], e)
        floor = sum(order0_bits(words[i::period].astype(np.int64)) for i in range(period)) / 8.0
    stored = passthrough_report(e.scheme, blob, e.encoding, e.record_bytes, floor) | {"damage": None}
    return _base(e) | {"analysed": False, "stats": None, "planner_spec": None, "stored": stored}

