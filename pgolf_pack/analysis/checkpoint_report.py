"""The checkpoint report: every large tensor under every candidate scheme, beside its floors.

For each float tensor of more than `small_numel` elements, and for each scheme (int8..int2,
pentanary, ternary, and the spec the planner picks at the budget), the tensor is quantized and
coded exactly as pgolf-pack would write it (`quantize` then `artifact.writer.encode_tensor`),
and `symbols.symbol_report` puts those bytes beside the order-0 floor, the generic
compressors and the context-model bounds. The planner's candidates also give the rate-loss
curve. The result is a plain dict, the report.json that docs/ANALYZE.md specifies.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from pgolf_pack._version import __version__
from pgolf_pack.analysis import names as tnames
from pgolf_pack.analysis.generic import COMPRESSORS, container_bytes, sample_share, stream_sizes
from pgolf_pack.analysis.progress import Progress, locked_update, single_threaded_torch, ticking
from pgolf_pack.analysis.rate_loss import rate_loss_curve
from pgolf_pack.analysis.schema import Report
from pgolf_pack.analysis.stats import weight_stats
from pgolf_pack.analysis.symbols import passthrough_report, small_coded_report, symbol_report
from pgolf_pack.analysis.totals import per_tensor_generic, quantized, scheme_totals, summary_of
from pgolf_pack.artifact import format as fmt
from pgolf_pack.artifact.coding import narrow_symbols
from pgolf_pack.artifact.writer import EncodedTensor, encode_tensor
from pgolf_pack.errors import BudgetError, InputError
from pgolf_pack.planner import encode_with, evaluate_tensors, plan_from
from pgolf_pack.quant import QuantSpec, RowStats, dequantize, quantize
from pgolf_pack.quant.spec import SCHEME_BY_ID

REPORT_FORMAT = "pgolf-analyze/1"
DEFAULT_BUDGET = 16_000_000
SMALL_NUMEL = 65_536  # the baseline's passthrough rule: tensors this small are not analysed per scheme
DEFAULT_SAMPLE = 1 << 19  # symbols per scheme in the generic compressors' model-level stream
MAX_HISTOGRAMS = 8

# (id, spec): what competitors use at each width. int8: the baseline's row-max clip; int7 and
# int6: the records' std clips (PR #1586 embeddings, PR #1394 SDClip); int5..int2 and
# pentanary: the per-row clip with the least squared error (no record sets a std clip there);
# ternary: scale 0.8 row std, BitNet b1.58's absmean scale for a Gaussian row (int2:mse is the
# same {-1, 0, 1} grid with the error-minimising scale).
DEFAULT_SCHEMES: tuple[tuple[str, str], ...] = (
    ("int8", "int8:max"), ("int7", "int7:std15"), ("int6", "int6:std12.85"), ("int5", "int5:mse"),
    ("int4", "int4:mse"), ("int3", "int3:mse"), ("int2", "int2:mse"), ("pent", "pent:mse"), ("tern", "tern:std0.8"),
)
PLANNER = "planner"


@dataclass
class CheckpointOptions:
    budget: int = DEFAULT_BUDGET
    code_bytes: int = 0
    code_files: list[str] = field(default_factory=list)
    schemes: tuple[tuple[str, str], ...] = DEFAULT_SCHEMES
    small_numel: int = SMALL_NUMEL
    sample: int | None = DEFAULT_SAMPLE  # None: compress everything (--full)
    buckets: int = 8
    sensitivities: list[tuple[str, float]] = field(default_factory=list)
    threads: int | None = None


def parse_schemes(text: str) -> tuple[tuple[str, str], ...]:
    """`int6:std12.85,pent,step:0.3` -> ((id, spec), ...); ids are the specs as written."""
    out = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part == PLANNER:
            raise InputError("'planner' is always analysed; list only quantized specs in --schemes")
        spec = QuantSpec.parse(part)
        if spec.is_passthrough:
            raise InputError(f"'{part}' is a passthrough; --schemes takes quantized specs (int-k, pent, tern, step)")
        out.append((part, part))
    if not out:
        raise InputError("--schemes lists no scheme")
    if len({i for i, _ in out}) != len(out):
        raise InputError("--schemes lists a scheme twice")
    return tuple(out)


def analyze_checkpoint(state_dict: Mapping[str, torch.Tensor], options: CheckpointOptions, *, source: str = "",
                       input_bytes: int | None = None, progress: Progress | None = None) -> Report:
    """The report dict for a state dict (see docs/ANALYZE.md for every field)."""
    if not state_dict:
        raise InputError("the state dict holds no tensors")
    with single_threaded_torch():
        return _analyze(state_dict, options, source, input_bytes, progress)


def _analyze(state_dict, options: CheckpointOptions, source: str, input_bytes: int | None,
             progress: Progress | None) -> dict:
    items = list(state_dict.items())
    all_names = [n for n, _ in items]
    previous_record = dict(zip(all_names, [""] + all_names[:-1]))

    # The planner: candidates for every tensor, the plan at the budget, the rate-loss curve.
    bar = progress("planning", len(items), "tensor") if progress else None
    plans = evaluate_tensors(state_dict, sensitivities=options.sensitivities, threads=options.threads,
                             progress=(lambda it: ticking(it, bar)) if bar else None)
    if bar:
        bar.close()
    try:
        plan = plan_from(plans, options.budget, options.code_bytes)
        planner = {"feasible": True, "budget": options.budget, "estimated_bytes": plan.estimated_bytes,
                   "estimated_damage": plan.estimated_damage, "specs": plan.specs, "error": None}
    except BudgetError as e:
        planner = {"feasible": False, "budget": options.budget, "estimated_bytes": None, "estimated_damage": None,
                   "specs": None, "error": str(e)}
    curve = rate_loss_curve(plans, options.budget, options.code_bytes)

    analysed = [n for n, t in items if _analysable(t, options.small_numel)]
    analysed_numel = sum(state_dict[n].numel() for n in analysed)
    schemes = list(options.schemes) + ([(PLANNER, PLANNER)] if planner["feasible"] else [])
    histogram_scheme = PLANNER if planner["feasible"] else _fallback_scheme(options.schemes)
    representatives = tnames.representatives(analysed, lambda n: state_dict[n].numel(), MAX_HISTOGRAMS)

    entries: dict[str, dict] = {}
    histograms: dict[str, dict] = {}
    samples: dict[str, dict[str, tuple]] = {sid: {} for sid, _ in schemes}  # scheme -> tensor -> sample
    lock = threading.Lock()
    bar = progress("analysing", len(analysed), "tensor") if progress else None

    job = _AnalysisJob(schemes, planner, options, all_names)

    def run_group(group: list[str]) -> None:
        last: dict[str, tuple[str, np.ndarray, str]] = {}  # scheme id -> (name, symbols, spec)
        for name in group:
            t = state_dict[name]
            entry, hist, parts = _analyse_tensor(job, name, t, last, previous_record[name],
                                                 sample_share(t.numel(), analysed_numel, options.sample),
                                                 histogram_scheme if name in representatives else None)
            with lock:
                entries[name] = entry
                for sid, part in parts.items():
                    samples[sid][name] = part
                if hist is not None:
                    histograms[name] = hist
                if bar:
                    bar.update(1)

    groups = tnames.role_groups(analysed)
    workers = max(1, min(len(groups), options.threads or os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run_group, groups))
    if bar:
        bar.close()

    tensors = []
    for name, t in items:
        if name in entries:
            tensors.append(entries[name])
        else:
            tensors.append(_small_tensor(name, t, planner, previous_record[name]))

    if options.sample is None:
        generic = {sid: per_tensor_generic([r for _, r in quantized(tensors, sid)]) for sid, _ in schemes}
    else:
        streams = {sid: [samples[sid][n] for n in all_names if n in samples[sid]] for sid, _ in schemes}
        streams = {sid: p for sid, p in streams.items() if p}
        bar = progress("compressing", len(streams) * len(COMPRESSORS), "stream") if progress else None
        generic = stream_sizes(streams, options.threads or os.cpu_count() or 1,
                               on_done=(lambda: locked_update(bar, lock)) if bar else None)
        if bar:
            bar.close()
    scheme_list = [{"id": sid, "spec": spec, "totals": scheme_totals(tensors, sid, generic.get(sid))}
                   for sid, spec in schemes]
    reference = PLANNER if planner["feasible"] else _fallback_scheme(options.schemes)
    header = fmt.container_bytes([_reference_record(t, reference) for t in tensors])
    return {
        "format": REPORT_FORMAT,
        "kind": "checkpoint",
        "pgolf_pack_version": __version__,
        "input": source,
        "input_bytes": input_bytes,
        "options": {
            "budget": options.budget, "code_bytes": options.code_bytes, "code_files": list(options.code_files),
            "small_numel": options.small_numel, "sample_symbols": options.sample, "buckets": options.buckets,
            "schemes": [{"id": s, "spec": p} for s, p in options.schemes],
            "compressors": list(COMPRESSORS),
            "sensitivities": [[p, w] for p, w in options.sensitivities],
        },
        "summary": summary_of(tensors, reference, header, generic.get(reference)),
        "planner": planner,
        "schemes": scheme_list,
        "tensors": tensors,
        "rate_loss": curve,
        "histograms": [histograms[n] for n in representatives if n in histograms],
    }


def _analysable(t: torch.Tensor, small_numel: int) -> bool:
    return t.is_floating_point() and t.dim() >= 1 and t.numel() > small_numel


def _fallback_scheme(schemes: tuple[tuple[str, str], ...]) -> str:
    ids = [s for s, _ in schemes]
    return "int6" if "int6" in ids else ids[0]


@dataclass(frozen=True)
class _AnalysisJob:
    """What every tensor's analysis shares: the schemes, the planner's outcome, the options."""

    schemes: list[tuple[str, str]]  # (id, spec), the planner's choice last when feasible
    planner: dict  # the report's "planner" section
    options: CheckpointOptions
    all_names: list[str]  # every tensor, in checkpoint order (for the previous layer's name)


def _analyse_tensor(job: _AnalysisJob, name: str, t: torch.Tensor, last: dict, previous_record: str,
                    sample: int | None, histogram_scheme: str | None):
    """(tensor entry, histogram or None, {scheme: generic-compressor sample}) for one tensor;
    `last` carries each scheme's previous tensor of the group (for the layer-delta context)."""
    schemes, planner, options, all_names = job.schemes, job.planner, job.options, job.all_names
    stats = RowStats.of(t)
    w = t.detach().float()
    energy = float(w.double().square().sum())
    prev_name = tnames.previous_layer(name, all_names)
    entry = {"name": name, "role": tnames.role_of(name), "layer": tnames.layer_of(name), "shape": list(t.shape),
             "numel": t.numel(), "dtype": str(t.dtype).replace("torch.", ""), "analysed": True,
             "stats": weight_stats(t), "planner_spec": planner["specs"][name] if planner["feasible"] else None,
             "schemes": {}}
    hist = None
    parts = {}
    if histogram_scheme == PLANNER and planner["feasible"] and QuantSpec.parse(planner["specs"][name]).is_passthrough:
        histogram_scheme = _fallback_scheme(options.schemes)
    for sid, text in schemes:
        spec_text = planner["specs"][name] if sid == PLANNER else text
        if QuantSpec.parse(spec_text).is_passthrough:
            e, damage = encode_with(name, t, spec_text, threads=1)
            r = _stored(e, previous_record)
            entry["schemes"][sid] = r | {"bits_per_weight": 8.0 * r["total_bytes"] / t.numel(), "damage": damage,
                                         "relative_error": damage / energy if energy else None}
            last.pop(sid, None)
            continue
        spec = QuantSpec.parse(spec_text)
        q = quantize(t, spec, stats)
        e = encode_tensor(name, q, threads=1)
        symbols = narrow_symbols(q.symbols.cpu().numpy())
        prev = last.get(sid)
        usable = prev is not None and prev[0] == prev_name and prev[2] == str(spec) and prev[1].shape == symbols.shape
        keep = sid == histogram_scheme
        r = symbol_report(symbols, q.scales.numpy(), e.blobs[0], e.blobs[1], spec.scale_bits,
                          len(e.record(previous_record)), previous=prev[1] if usable else None,
                          previous_name=prev_name if usable else None, generic=options.sample is None,
                          buckets=options.buckets, keep_histogram=keep,
                          groups_blob=e.blobs[2] if len(e.blobs) > 2 else b"")
        if options.sample is not None:
            label, data, m = container_bytes(symbols, sample)
            parts[sid] = (label, data, m, symbols.size)
        restored = dequantize(q) if t.dtype == torch.float32 else dequantize(q).to(t.dtype).float()
        damage = float((restored - w).square().sum())
        if keep:
            h = r.pop("histogram")
            hist = {"tensor": name, "scheme": sid, "spec": str(spec), "offset": h["offset"], "counts": h["counts"],
                    "entropy_bits_per_weight": r["entropy_bits_per_weight"]}
        entry["schemes"][sid] = {"spec": str(spec), "passthrough": False} | r | {
            "damage": damage, "relative_error": damage / energy if energy else None}
        last[sid] = (name, symbols, str(spec))
    return entry, hist, parts


def _small_tensor(name: str, t: torch.Tensor, planner: dict, previous_record: str) -> dict:
    """A tensor below the analysis threshold: how the planner stores it (or fp16/raw without a plan)."""
    if planner["feasible"]:
        spec = planner["specs"][name]
    else:
        spec = "fp16" if t.is_floating_point() else "raw"
    e, damage = encode_with(name, t, spec, threads=1)
    return {"name": name, "role": tnames.role_of(name), "layer": tnames.layer_of(name), "shape": list(t.shape),
            "numel": t.numel(), "dtype": str(t.dtype).replace("torch.", ""), "analysed": False,
            "stats": weight_stats(t) if t.is_floating_point() and t.numel() else None,
            "planner_spec": spec if planner["feasible"] else None,
            "stored": _stored(e, previous_record) | {"damage": damage}}


def _stored(e: EncodedTensor, previous_record: str) -> dict:
    """How an EncodedTensor is stored: values (their fields start with the encoding byte) or,
    for a small tensor the planner quantized, symbols and scales."""
    record = len(e.record(previous_record))
    if SCHEME_BY_ID[e.scheme_id].stores_values:
        return passthrough_report(e.label, e.blobs[0], e.fields[0], record, e.floor_bits / 8.0)
    return small_coded_report(e.label, e.blobs, record, e.floor_bits / 8.0)


def _reference_record(t: dict, reference: str) -> int:
    if not t["analysed"]:
        return t["stored"]["record_bytes"]
    return t["schemes"][reference]["record_bytes"]



