"""Sums over a report's tensors: per-scheme totals and the summary at the top of a report.

Both reports (checkpoint and artifact) give each tensor either a `schemes` map of symbol
reports (quantized tensors that were analysed) or a `stored` entry (everything else), so the
same sums serve both. The summary is taken at one *reference* scheme: the planner's choice for
a checkpoint (another scheme if the budget is infeasible), the stored one for an artifact.
"""

from __future__ import annotations

from pgolf_pack.analysis.generic import COMPRESSORS

CONTEXT_KINDS = ("row", "scale_bucket", "previous_symbol", "layer_delta")


def quantized(tensors: list[dict], sid: str) -> list[tuple[dict, dict]]:
    """(tensor, symbol report) for every tensor coded as symbols under scheme `sid`."""
    out = []
    for t in tensors:
        r = t.get("schemes", {}).get(sid) if t["analysed"] else None
        if r is not None and not r["passthrough"]:
            out.append((t, r))
    return out


def per_tensor_generic(rs: list[dict]) -> dict | None:
    """Model-level generic sizes as the sum of exact per-tensor sizes (None if any is missing)."""
    if not rs or any(r["generic"] is None for r in rs):
        return None
    n = sum(r["symbols"] for r in rs)
    return {"method": "per_tensor", "sample_symbols": n, "symbols": n, "exact": True,
            "containers": sorted({r["generic"]["container"] for r in rs})} | {
        c: sum(r["generic"][c] for r in rs) for c in COMPRESSORS}


def scheme_totals(tensors: list[dict], sid: str, generic: dict | None) -> dict:
    """Totals of one scheme over the tensors it codes as symbols (see docs/ANALYZE.md);
    `generic` is the scheme's model-level generic-compressor entry (or None)."""
    pairs = quantized(tensors, sid)
    passthrough = [t for t in tensors if t["analysed"] and sid in t["schemes"] and t["schemes"][sid]["passthrough"]]
    rs = [r for _, r in pairs]
    n = sum(r["symbols"] for r in rs)
    frame = sum(r["frame"]["total_bytes"] for r in rs)
    floor = sum(r["floor_bytes"] for r in rs)
    damage = sum(r["damage"] for r in rs) if rs and all("damage" in r for r in rs) else None
    energy = sum(t["stats"]["sum_squares"] for t, _ in pairs) if damage is not None else 0.0
    out = {
        "tensors": len(rs),
        "passthrough_tensors": len(passthrough),
        "weights": n,
        "total_bytes": sum(r["total_bytes"] for r in rs),
        "record_bytes": sum(r["record_bytes"] for r in rs),
        "frame_bytes": frame,
        "frame_header_bytes": sum(r["frame"]["header_bytes"] for r in rs),
        "table_bytes": sum(r["frame"]["table_bytes"] for r in rs),
        "payload_bytes": sum(r["frame"]["payload_bytes"] for r in rs),
        "scale_bytes": sum(r["scales"]["bytes"] for r in rs),
        "scale_floor_bytes": sum(r["scales"]["floor_bytes"] for r in rs),
        "floor_bytes": floor,
        "overhead_bytes": frame - floor,
        "overhead_pct": 100.0 * (frame - floor) / floor if floor > 0 else None,
        "entropy_bits_per_weight": 8.0 * floor / n if n else None,
        "bits_per_weight": 8.0 * sum(r["total_bytes"] for r in rs) / n if n else None,
        "generic": generic,
        "context": {kind: _context_totals(rs, kind) for kind in CONTEXT_KINDS},
        "damage": damage,
        "relative_error": damage / energy if damage is not None and energy > 0 else None,
    }
    return out


def _context_totals(rs: list[dict], kind: str) -> dict:
    """Bound (free tables) and priced bytes (real tables) of one context model, each beside the
    order-0 model priced the same way, over the tensors the model applies to."""
    have = [r for r in rs if r["context"][kind] is not None]
    n_of = [r["symbols"] for r in have]
    bound = sum(r["context"][kind]["entropy_bits_per_weight"] * n / 8.0 for r, n in zip(have, n_of))
    order0_floor = sum(r["floor_bytes"] for r in have)
    priced_all = all(r["context"][kind]["priced_bytes"] is not None and r["context"]["order0_priced_bytes"] is not None
                     for r in have)
    priced = sum(r["context"][kind]["priced_bytes"] for r in have) if priced_all else None
    order0_priced = sum(r["context"]["order0_priced_bytes"] for r in have) if priced_all else None
    out = {"tensors": len(have), "weights": sum(n_of), "order0_floor_bytes": order0_floor, "bound_bytes": bound,
           "saving_bound_bytes": order0_floor - bound, "order0_priced_bytes": order0_priced, "priced_bytes": priced,
           "saving_priced_bytes": order0_priced - priced if priced is not None else None}
    if kind == "scale_bucket":
        frames = [r["context"][kind]["rans_frame_bytes"] for r in have]
        measured = sum(frames) if all(f is not None for f in frames) else None
        out["rans_frame_bytes"] = measured
        out["saving_measured_bytes"] = (sum(r["frame"]["total_bytes"] for r in have) - measured
                                        if measured is not None else None)
    return out


def summary_of(tensors: list[dict], reference: str, header: dict, generic: dict | None) -> dict:
    """Where the reference artifact's bytes go, against its floor, the generic compressors and
    the context models."""
    pairs = quantized(tensors, reference)
    coded_names = {t["name"] for t, _ in pairs}
    totals = scheme_totals(tensors, reference, generic)
    records = frame_headers = tables = payload_excess = stored_excess = 0.0
    floor = 0.0
    artifact = header["total_bytes"]
    for t in tensors:
        if t["name"] in coded_names:
            r = t["schemes"][reference]
            s = r["scales"]
            artifact += r["total_bytes"]
            floor += r["floor_bytes"] + s["floor_bytes"]
            records += r["record_bytes"]
            frame_headers += r["frame"]["header_bytes"] + s["header_bytes"]
            tables += r["frame"]["table_bytes"] + s["table_bytes"]
            payload_excess += (r["frame"]["payload_bytes"] - r["floor_bytes"]) + (s["payload_bytes"] - s["floor_bytes"])
        else:
            stored = t["schemes"][reference] if t["analysed"] else t["stored"]
            artifact += stored["total_bytes"]
            floor += stored["floor_bytes"]
            records += stored["record_bytes"]
            stored_excess += stored["blob_bytes"] - stored["floor_bytes"]
    best = min(COMPRESSORS, key=lambda c: generic[c]) if pairs and generic else None
    contexts = totals["context"]
    priced = {k: v["saving_priced_bytes"] for k, v in contexts.items() if v["saving_priced_bytes"] is not None}
    best_context = max(priced, key=priced.get) if priced else None
    return {
        "reference_scheme": reference,
        "tensors": len(tensors),
        "parameters": sum(t["numel"] for t in tensors),
        "coded_tensors": len(pairs),
        "coded_weights": totals["weights"],
        "artifact_bytes": int(artifact),
        "floor_bytes": floor,
        "overhead_bytes": artifact - floor,
        "overhead_pct": 100.0 * (artifact - floor) / floor if floor > 0 else None,
        "overhead_breakdown": {
            "artifact_header_bytes": header["total_bytes"],
            "record_bytes": records,
            "frame_header_bytes": frame_headers,
            "table_bytes": tables,
            "payload_excess_bytes": payload_excess,
            "stored_excess_bytes": stored_excess,
        },
        "symbols": {
            "rans_frame_bytes": totals["frame_bytes"],
            "floor_bytes": totals["floor_bytes"],
            "best_generic": best,
            "best_generic_bytes": generic[best] if best else None,
            "generic": generic,
        },
        "context_modelling": {
            "best": best_context,
            "saving_priced_bytes": priced.get(best_context) if best_context else None,
            "per_kind": {k: {"saving_bound_bytes": v["saving_bound_bytes"],
                             "saving_priced_bytes": v["saving_priced_bytes"], "tensors": v["tensors"]}
                         for k, v in contexts.items()},
        },
    }
