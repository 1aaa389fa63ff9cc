"""report.md: the report dict as readable Markdown, summary first, caveats last."""

from __future__ import annotations

from collections import Counter

from pgolf_pack.analysis.generic import COMPRESSORS
from pgolf_pack.analysis.totals import quantized

COMPRESSOR_LABELS = {"zstd22": "zstd-22", "lzma9": "lzma-9", "brotli11": "brotli-11"}
CONTEXT_LABELS = {
    "row": "row (one table per row)",
    "scale_bucket": "row-scale bucket",
    "previous_symbol": "previous symbol in the row",
    "layer_delta": "same tensor, layer before (code ΔW)",
}
PLOT_CAPTIONS = {
    "histograms.png": "Symbol histograms with moment-fitted discretised Gaussian and Laplace",
    "bits_per_weight.png": "Bits per weight of every tensor against its order-0 floor",
    "schemes.png": "Every scheme: rANS, floor and generic compressors",
    "bytes_breakdown.png": "Where the bytes go, by tensor role",
    "rate_loss.png": "The planner's rate-loss curve",
}


def render(report: dict, plots: list[str]) -> str:
    """The whole report.md."""
    out = [_title(report), _summary(report)]
    if report["kind"] == "artifact":
        out.append(_sections(report))
    else:
        out.append(_schemes(report))
        out.append(_planner(report))
    out.append(_tensor_detail(report))
    out.append(_contexts_per_tensor(report))
    if report["kind"] == "checkpoint":
        out.append(_scheme_matrix(report))
        out.append(_weight_stats(report))
    out.append(_other_tensors(report))
    if plots:
        out.append("## Plots\n\n" + "\n\n".join(f"### {PLOT_CAPTIONS.get(p, p)}\n\n![{p}]({p})" for p in plots))
    out.append(_notes(report))
    return "\n\n".join(s for s in out if s) + "\n"


# -- formatting ---------------------------------------------------------------------------

def _b(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None else f"{v:+.2f}%"


def _signed(v) -> str:
    return "–" if v is None else f"{v:+,.0f}"


def _cell(v) -> str:
    return str(v).replace("|", "\\|")  # a bare | would end the cell


def _table(headers: list[str], rows: list[list], align: str) -> str:
    head = "| " + " | ".join(_cell(h) for h in headers) + " |"
    rule = "|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|"
    body = ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join([head, rule] + body)


def _bpw(nbytes, n) -> str:
    return "–" if nbytes is None or not n else f"{8.0 * nbytes / n:.3f}"


def _ref_phrase(report: dict) -> str:
    ref = report["summary"]["reference_scheme"]
    if ref == "planner":
        return f"the planner's choice at a budget of {report['options']['budget']:,} B"
    if ref == "stored":
        return "the artifact as stored"
    return f"scheme `{ref}` (the planner found no plan within the budget)"


def _sample_phrase(report: dict, generic: dict | None = None) -> str:
    if report["options"]["sample_symbols"] is None:
        return "exact: every tensor compressed whole, sizes summed (--full)"
    if generic is not None and generic["exact"]:
        return "exact: every symbol compressed, as one stream"
    return ("estimated: evenly spaced whole rows of every tensor (its share by size) compressed as one stream, "
            "the size scaled to all symbols; --full for exact")


# -- sections -----------------------------------------------------------------------------

def _title(report: dict) -> str:
    s = report["summary"]
    what = "Checkpoint" if report["kind"] == "checkpoint" else "Artifact"
    size = f" ({report['input_bytes']:,} B on disk)" if report.get("input_bytes") else ""
    schemes = ""
    if report["kind"] == "checkpoint":
        ids = ", ".join(f"`{x['id']}`" for x in report["schemes"])
        schemes = (f" Tensors of more than {report['options']['small_numel']:,} weights are analysed under "
                   f"{len(report['schemes'])} schemes: {ids}.")
    return (f"# pgolf-analyze: `{report['input']}`\n\n{what}{size}: {s['parameters']:,} parameters in "
            f"{s['tensors']} tensors.{schemes} Written by pgolf-pack {report['pgolf_pack_version']}; "
            f"every number is defined in docs/ANALYZE.md.")


def _summary(report: dict) -> str:
    s = report["summary"]
    ob = s["overhead_breakdown"]
    sym = s["symbols"]
    what = "artifact (as pgolf-pack writes it)" if report["kind"] == "checkpoint" else "artifact file"
    rows = [[what, _b(s["artifact_bytes"]), ""]]
    if report["kind"] == "checkpoint":
        o = report["options"]
        total = s["artifact_bytes"] + o["code_bytes"]
        rows.append(["code (`--code`)", _b(o["code_bytes"]), ", ".join(o["code_files"])])
        rows.append(["total, artifact + code", _b(total),
                     f"budget {o['budget']:,} B, headroom {o['budget'] - total:,} B"])
    elif s.get("code_bytes"):
        rows.append(["code (`--code`)", _b(s["code_bytes"]), ""])
        rows.append(["total, artifact + code", _b(s["total_bytes"]), ""])
    rows += [
        ["order-0 floor of everything coded", _b(s["floor_bytes"]), "symbols, scale codes, passthrough words"],
        ["overhead over the floor", _b(s["overhead_bytes"]), _pct(s["overhead_pct"])],
        ["· artifact header and manifest records", _b(ob["artifact_header_bytes"] + ob["record_bytes"]), ""],
        ["· rANS frame headers", _b(ob["frame_header_bytes"]), "symbols and scales"],
        ["· frequency tables", _b(ob["table_bytes"]), "symbols and scales"],
        ["· coded payload above its floor", _b(ob["payload_excess_bytes"]), "rANS rounding and table quantisation"],
        ["· other tensors above their floor", _b(ob["stored_excess_bytes"]), "passthrough values, small tensors"],
    ]
    out = [f"## Summary: {_ref_phrase(report)}", _table(["", "bytes", "note"], rows, "lrl")]
    if sym["best_generic"]:
        g = sym["generic"]
        n = s["coded_weights"]
        gen_rows = [["rANS frames (pgolf-pack)", _b(sym["rans_frame_bytes"]), _bpw(sym["rans_frame_bytes"], n), "±0"]]
        gen_rows.append(["order-0 floor", _b(sym["floor_bytes"]), _bpw(sym["floor_bytes"], s["coded_weights"]),
                         _signed(sym["floor_bytes"] - sym["rans_frame_bytes"])])
        for c in COMPRESSORS:
            v = g[c]
            gen_rows.append([COMPRESSOR_LABELS[c] + (" (best generic)" if c == sym["best_generic"] else ""), _b(v),
                             _bpw(v, s["coded_weights"]), _signed(v - sym["rans_frame_bytes"])])
        out.append(f"The {s['coded_tensors']} tensors coded as symbols ({s['coded_weights']:,} weights), and the "
                   f"same symbols one per byte ({', '.join(g['containers'])} containers) under generic compressors "
                   f"({_sample_phrase(report, g)}; {g['sample_symbols']:,} of {g['symbols']:,} symbols "
                   f"compressed):")
        out.append(_table(["symbols coded by", "bytes", "bits/weight", "vs rANS"], gen_rows, "lrrr"))
        cm = s["context_modelling"]
        ctx_rows = []
        for kind, v in cm["per_kind"].items():
            ctx_rows.append([CONTEXT_LABELS[kind], v["tensors"], _signed(v["saving_bound_bytes"]),
                             _signed(v["saving_priced_bytes"])])
        best = cm["best"]
        if best is not None and cm["saving_priced_bytes"] is not None and cm["saving_priced_bytes"] > 0:
            verdict = (f"Estimated saving from context modelling: **{cm['saving_priced_bytes']:,.0f} B** with "
                       f"{CONTEXT_LABELS[best]} contexts, tables priced.")
        else:
            verdict = ("Estimated saving from context modelling: **none**: no context model below beats the "
                       "order-0 model once its tables are paid for.")
        out.append(verdict + " Savings against the order-0 model of the same tensors; positive = fewer bytes. "
                   "\"Bound\" uses plug-in conditional entropies with free tables (optimistic, and biased low "
                   "for small contexts such as rows); \"priced\" pays for every table as the codec would store it.")
        out.append(_table(["context", "tensors", "bound: saving (B)", "priced: saving (B)"], ctx_rows, "lrrr"))
    return "\n\n".join(out)


def _sections(report: dict) -> str:
    sec = report["sections"]
    labels = [("magic_and_version_bytes", "magic `PGPK` and version"),
              ("manifest_length_bytes", "manifest length (varint)"),
              ("record_count_bytes", "record count (varint)"), ("record_bytes", "manifest records"),
              ("blob_bytes", "blobs (frames, scales, passthrough values)"), ("crc_bytes", "CRC-32C"),
              ("total_bytes", "**file**")]
    rows = [[label, _b(sec[k])] for k, label in labels]
    return "## Sections\n\n" + _table(["section", "bytes"], rows, "lr")


def _schemes(report: dict) -> str:
    rows = []
    for s in report["schemes"]:
        t = s["totals"]
        n = t["weights"]
        if not n:
            rows.append([f"`{s['id']}`", s["spec"], 0] + ["–"] * 12)
            continue
        c = t["context"]
        delta = c["layer_delta"]
        rows.append([
            f"`{s['id']}`", f"`{s['spec']}`" if s["id"] != "planner" else "per tensor", t["tensors"],
            _f(t["bits_per_weight"]), _bpw(t["frame_bytes"], n), _f(t["entropy_bits_per_weight"]),
            _pct(t["overhead_pct"]), _b(t["table_bytes"]), _b(t["scale_bytes"]),
            " / ".join(_bpw(t["generic"][k], n) for k in COMPRESSORS) if t["generic"] else "–",
            _bits(c["row"]), _bits(c["scale_bucket"]), _bits(c["previous_symbol"]),
            _delta_pair(delta), "–" if t["relative_error"] is None else f"{t['relative_error']:.2e}",
        ])
    head = ["scheme", "spec", "tensors", "bits/w all-in", "bits/w rANS", "H₀", "rANS over H₀", "tables B",
            "scales B", "zstd / lzma / brotli bits/w", "H(X|row)", "H(X|bucket)", "H(X|prev)", "H(W) → H(ΔW)",
            "rel. error"]
    return ("## Schemes\n\nSymbols of the analysed tensors under each scheme, in bits per weight unless marked B. "
            "\"All-in\" counts symbols, scales and manifest records. Generic compressors see the same symbols one "
            f"per byte ({_sample_phrase(report)}). Conditional entropies are plug-in bounds (free tables). "
            "Relative error is ‖W−Ŵ‖²/‖W‖² over these tensors.\n\n" + _table(head, rows, "llr" + "r" * 12))


def _bits(ctx: dict) -> str:
    return _f(8.0 * ctx["bound_bytes"] / ctx["weights"]) if ctx["weights"] else "–"


def _delta_pair(delta: dict) -> str:
    if not delta["weights"]:
        return "–"
    n = delta["weights"]
    return f"{8.0 * delta['order0_floor_bytes'] / n:.3f} → {8.0 * delta['bound_bytes'] / n:.3f}"


def _planner(report: dict) -> str:
    p = report["planner"]
    if not p["feasible"]:
        return f"## Planner\n\nNo plan: {p['error']}"
    counts = Counter(p["specs"].values())
    rows = [[f"`{spec}`", n] for spec, n in counts.most_common()]
    rl = report["rate_loss"]
    uni = "; ".join(f"uniform `{u['spec']}`: {u['total_bytes']:,} B, damage {u['damage']:.4g}" for u in rl["uniform"])
    return (f"## Planner\n\nAt a budget of {p['budget']:,} B the planner estimates the artifact at "
            f"{p['estimated_bytes']:,} B (it counts an upper bound for the file header; the summary's size is "
            f"exact) with damage {p['estimated_damage']:.4g} "
            f"(Σ weight × squared error). For comparison, {uni}. Smallest feasible total: "
            f"{rl['smallest_total_bytes']:,} B.\n\n" + _table(["spec chosen", "tensors"], rows, "lr"))


def _tensor_detail(report: dict) -> str:
    ref = report["summary"]["reference_scheme"]
    pairs = quantized(report["tensors"], ref)
    if not pairs:
        return ""
    rows = []
    per_tensor = all(r["generic"] is not None for _, r in pairs)
    best = report["summary"]["symbols"]["best_generic"] or "brotli11"
    for t, r in pairs:
        f = r["frame"]
        rows.append([f"`{t['name']}`", "×".join(map(str, t["shape"])), f"`{r['spec']}`", _f(r["bits_per_weight"]),
                     _f(8.0 * f["total_bytes"] / r["symbols"]), _f(r["entropy_bits_per_weight"]), _b(f["total_bytes"]),
                     _b(f["header_bytes"]), _b(f["table_bytes"]), _b(f["payload_bytes"]), _b(r["floor_bytes"]),
                     _pct(r["overhead_pct"]), _b(r["scales"]["bytes"]), _b(r["record_bytes"]),
                     _b(r["generic"][best]) if per_tensor else "–"])
    head = ["tensor", "shape", "spec", "bits/w all-in", "bits/w rANS", "H₀", "frame B", "header", "tables",
            "payload", "floor B", "over floor", "scales B", "record B", f"{COMPRESSOR_LABELS[best]} B"]
    return (f"## Tensors coded as symbols: {_ref_phrase(report)}\n\nThe symbols frame split as "
            "`rans.frame_info` reports it (header, tables, payload), beside the order-0 floor of the symbols; "
            "\"over floor\" is the whole frame's excess. Scales are the row-scale blob; the record is the "
            "tensor's manifest entry." + ("" if per_tensor else " The generic column needs --full (per-tensor "
                                          "samples would overstate generic sizes; see Notes).")
            + "\n\n" + _table(head, rows, "lll" + "r" * 12))


def _contexts_per_tensor(report: dict) -> str:
    ref = report["summary"]["reference_scheme"]
    pairs = quantized(report["tensors"], ref)
    if not pairs:
        return ""
    rows = []
    for t, r in pairs:
        c = r["context"]
        d = c["layer_delta"]
        rows.append([f"`{t['name']}`", _f(r["entropy_bits_per_weight"]), _f(c["row"]["entropy_bits_per_weight"]),
                     _b(c["row"]["priced_bytes"]), _f(c["scale_bucket"]["entropy_bits_per_weight"]),
                     _b(c["scale_bucket"]["rans_frame_bytes"]), _f(c["previous_symbol"]["entropy_bits_per_weight"]),
                     _b(c["previous_symbol"]["priced_bytes"]),
                     "–" if d is None else _f(d["entropy_bits_per_weight"]), _b(r["frame"]["total_bytes"])])
    head = ["tensor", "H₀", "H(X|row)", "row tables priced B", "H(X|bucket)", "bucket frame B (measured)",
            "H(X|prev)", "prev priced B", "H(ΔW)", "order-0 frame B"]
    return ("## Context bounds per tensor\n\nBits per weight (plug-in, free tables) and bytes with tables priced. "
            "The bucket frame is a real rANS frame with one table per row-scale bucket "
            f"({report['options']['buckets']} buckets by the rank of the row's scale). H(ΔW) is the order-0 "
            "entropy of the symbol difference with the same tensor of the layer before, coded with the same spec "
            "(– when there is none).\n\n" + _table(head, rows, "l" + "r" * 9))


def _scheme_matrix(report: dict) -> str:
    ids = [s["id"] for s in report["schemes"]]
    rows = []
    for t in report["tensors"]:
        if not t["analysed"]:
            continue
        cells = []
        for sid in ids:
            r = t["schemes"].get(sid)
            if r is None:
                cells.append("–")
            elif r["passthrough"]:
                cells.append(f"{r['spec']} {r['bits_per_weight']:.2f}")
            else:
                coded = 8.0 * r["frame"]["total_bytes"] / r["symbols"]
                cells.append(f"{coded:.3f} ({r['entropy_bits_per_weight']:.3f})")
        rows.append([f"`{t['name']}`"] + cells)
    return ("## Bits per weight by scheme\n\nrANS frame bits per weight, order-0 entropy in brackets; a passthrough "
            "choice shows its dtype and all-in bits per weight.\n\n" + _table(["tensor"] + [f"`{i}`" for i in ids],
                                                                             rows, "l" + "r" * len(ids)))


def _weight_stats(report: dict) -> str:
    rows = []
    for t in report["tensors"]:
        if not t["analysed"] or t["stats"] is None:
            continue
        s = t["stats"]
        rows.append([f"`{t['name']}`", "×".join(map(str, t["shape"])), t["dtype"], f"{s['std']:.4g}",
                     f"{s['absmax']:.4g}", _f(s["excess_kurtosis"], 2), _f(s["row_excess_kurtosis"], 2),
                     "–" if s["outlier_share"] is None else f"{s['outlier_share']:.2e}"])
    head = ["tensor", "shape", "dtype", "std", "max |w|", "excess kurtosis", "row-standardised", "share > 4σ_row"]
    return ("## Weight statistics\n\nExcess kurtosis is 0 for a Gaussian; the row-standardised one removes the "
            "spread of row scales (what per-row quantizers see). The outlier share counts |w| beyond 4 row "
            "standard deviations (a Gaussian: 6.3e-5).\n\n" + _table(head, rows, "lll" + "r" * 5))


def _other_tensors(report: dict) -> str:
    rows = []
    for t in report["tensors"]:
        if t["analysed"]:
            r = t["schemes"].get(report["summary"]["reference_scheme"])
            if r is None or not r["passthrough"]:
                continue
            s = r
        else:
            s = t["stored"]
        rows.append([f"`{t['name']}`", "×".join(map(str, t["shape"])) or "()", t["dtype"], f"`{s['spec']}`",
                     _b(s["total_bytes"]), _b(s["blob_bytes"]), _b(s["floor_bytes"])])
    if not rows:
        return ""
    what = ("Tensors the reference stores as passthrough values, and tensors too small to analyse "
            f"(≤ {report['options']['small_numel']:,} weights)" if report["kind"] == "checkpoint"
            else "Passthrough tensors")
    return (f"## Other tensors\n\n{what}. The floor of word-coded values is the order-0 entropy of their 16-bit "
            "words; raw bytes are their own floor.\n\n"
            + _table(["tensor", "shape", "dtype", "stored as", "bytes", "blob B", "floor B"], rows, "llllrrr"))


def _notes(report: dict) -> str:
    notes = [
        "Floors are order-0 plug-in entropies of the coded integers: what an ideal coder with one free, exact "
        "table per tensor would pay. The rANS frames pay for their tables and headers and lose a little to "
        "rounding, all counted under \"over floor\".",
        "H(X|row) is an optimistic bound: per-row tables are not free (they cost more than they save at these "
        "row lengths, see the priced column) and the plug-in estimate is biased low by roughly (K−1)/(2 ln 2) "
        "bits per row with K symbols in use.",
        "H(X|prev) would need an adaptive decoder (the codec's contexts must be known before decoding); the "
        "row-scale bucket contexts can be derived from the stored scales, so their frame is achievable today.",
        "Generic compressor sizes are " + _sample_phrase(report) + ". Measured against whole streams, "
        "sampled brotli-11 estimates came within ±0.5%, zstd-22 and lzma-9 within a few percent (their ratio "
        "changes with the stream's length; docs/ANALYZE.md). They see symbols only, not scales or pickle "
        "framing, so they flatter competitors' real exports slightly.",
    ]
    if report["kind"] == "checkpoint":
        notes.append("Damage is the planner's: Σ sensitivity weight × squared weight error, a data-free proxy "
                     "for the loss, not val_bpb.")
    return "## Notes\n\n" + "\n".join(f"* {n}" for n in notes)
