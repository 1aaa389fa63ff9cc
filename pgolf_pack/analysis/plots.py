"""PNG plots of a report, drawn from the report dict alone (so report.json can redraw them).

* histograms.png: symbol histograms of representative tensors (log counts) with discretised
  Gaussian and Laplace distributions fitted by moments, each labelled with its cross-entropy;
* bits_per_weight.png: coded bits per weight of every tensor against its order-0 floor and
  the best generic compressor, and each one's overhead over the floor in percent;
* schemes.png: every analysed scheme's bits per weight: rANS, floor, zstd-22, lzma-9, brotli-11;
* bytes_breakdown.png: where the bytes go by tensor role, payload and side information apart;
* rate_loss.png: the planner's total bytes against estimated damage over a range of budgets.

Figures are built on matplotlib's object API with the Agg canvas (no pyplot state), so they are
safe to draw from any thread and never open a window.
"""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from pgolf_pack.analysis.generic import COMPRESSORS
from pgolf_pack.analysis.names import short_name, short_role
from pgolf_pack.analysis.totals import quantized
from pgolf_pack.quant.spec import SCHEME_BY_NAME, symbol_limit

COMPRESSOR_LABELS = {"zstd22": "zstd-22", "lzma9": "lzma-9", "brotli11": "brotli-11"}
COLORS = {"rans": "#1f77b4", "floor": "#222222", "zstd22": "#9467bd", "lzma9": "#8c564b", "brotli11": "#ff7f0e",
          "gauss": "#2ca02c", "laplace": "#d62728", "passthrough": "#aaaaaa", "side": "#17becf"}
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9}
DPI = 130


def render_all(report: dict) -> dict[str, bytes]:
    """{file name: PNG bytes} for every plot this report supports."""
    out = {}
    if report.get("histograms"):
        out["histograms.png"] = histograms(report)
    if any(quantized(report["tensors"], report["summary"]["reference_scheme"])):
        out["bits_per_weight.png"] = bits_per_weight(report)
    if report["kind"] == "checkpoint" and any(s["totals"]["generic"] for s in report["schemes"]):
        out["schemes.png"] = schemes(report)
    out["bytes_breakdown.png"] = bytes_breakdown(report)
    if report.get("rate_loss") and report["rate_loss"]["points"]:
        out["rate_loss.png"] = rate_loss(report)
    return out


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _rc(func):
    """Run a drawing function under the shared style (fonts apply when artists are created)."""
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return func(*args, **kwargs)

    wrapper.__doc__ = func.__doc__
    wrapper.__name__ = func.__name__
    return wrapper


def fitted(values: np.ndarray, counts: np.ndarray, qmax: int | None = None) -> dict[str, np.ndarray]:
    """Discretised Gaussian and Laplace probabilities over `values`, fitted by the moments of
    the histogram. For a clamped scheme (symbols within ±qmax), the mass beyond ±qmax goes to
    the end bins, as the quantizer puts it there."""
    n = counts.sum()
    mean = float((values * counts).sum() / n)
    var = float(((values - mean) ** 2 * counts).sum() / n)
    sd = math.sqrt(var) if var > 0 else 1e-6
    edges = np.concatenate([values - 0.5, [values[-1] + 0.5]]).astype(np.float64)
    gauss_cdf = np.array([0.5 * (1 + math.erf((e - mean) / (sd * math.sqrt(2)))) for e in edges])
    b = sd / math.sqrt(2)
    z = (edges - mean) / b
    laplace_cdf = np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))
    out = {}
    for name, cdf in (("gauss", gauss_cdf), ("laplace", laplace_cdf)):
        cdf = cdf.copy()
        if qmax is not None and values[0] == -qmax:
            cdf[0] = 0.0
        if qmax is not None and values[-1] == qmax:
            cdf[-1] = 1.0
        out[name] = np.maximum(np.diff(cdf), 1e-300)
    return out


def cross_entropy(counts: np.ndarray, p: np.ndarray) -> float:
    """Bits per symbol to code the histogram under the distribution p."""
    n = counts.sum()
    live = counts > 0
    return float(-(counts[live] * np.log2(p[live])).sum() / n)


@_rc
def histograms(report: dict) -> bytes:
    hs = report["histograms"]
    cols = min(4, len(hs))
    rows = -(-len(hs) // cols)
    fig = _figure(3.6 * cols, 2.9 * rows + 0.5)
    for i, h in enumerate(hs):
        ax = fig.add_subplot(rows, cols, i + 1)
        counts = np.asarray(h["counts"], dtype=np.float64)
        values = np.arange(h["offset"], h["offset"] + counts.size)
        fits = fitted(values, counts, _qmax(h["spec"]))
        n = counts.sum()
        live = counts > 0
        ax.bar(values[live], counts[live], width=1.0, color=COLORS["rans"], alpha=0.55, linewidth=0,
               label=f"data, H₀ = {h['entropy_bits_per_weight']:.3f} bits/w")
        for name, label in (("gauss", "Gaussian"), ("laplace", "Laplace")):
            ax.plot(values, fits[name] * n, color=COLORS[name], linewidth=1.4,
                    label=f"{label} fit: {cross_entropy(counts, fits[name]):.3f} bits/w")
        ax.set_yscale("log")
        peak = counts.max()
        ax.set_ylim(0.5, peak * (2 * peak) ** 0.6)  # headroom above the peak for the legend
        ax.set_title(f"{short_name(h['tensor'])}  [{h['spec']}]")
        ax.set_xlabel("symbol value")
        ax.set_ylabel("count (log scale)")
        handles, labels = ax.get_legend_handles_labels()
        order = [len(handles) - 1] + list(range(len(handles) - 1))  # data first
        ax.legend([handles[j] for j in order], [labels[j] for j in order], loc="upper center", fontsize=8,
                  framealpha=0.9)
        ax.grid(True, which="major", axis="y", alpha=0.3)
    scheme = {"planner": "the planner's choice", "stored": "the artifact's schemes"}.get(
        hs[0]["scheme"], f"scheme '{hs[0]['scheme']}'")
    fig.suptitle(f"Symbol histograms of representative tensors under {scheme}\n"
                 "with discretised Gaussian and Laplace fitted by moments; legend: bits/weight to code the "
                 "data under each (H₀: under its own histogram)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


@_rc
def bits_per_weight(report: dict) -> bytes:
    ref = report["summary"]["reference_scheme"]
    pairs = quantized(report["tensors"], ref)
    labels = [short_name(t["name"]) for t, _ in pairs]
    x = np.arange(len(pairs))
    coded = np.array([8.0 * r["frame"]["total_bytes"] / r["symbols"] for _, r in pairs])
    floor = np.array([8.0 * r["floor_bytes"] / r["symbols"] for _, r in pairs])
    model = report["summary"]["symbols"]["generic"]
    best = report["summary"]["symbols"]["best_generic"]
    per_tensor = all(r["generic"] is not None for _, r in pairs)
    fig = _figure(max(8.0, 0.17 * len(pairs) + 2.5), 6.4)
    top = fig.add_subplot(2, 1, 1)
    top.bar(x, coded, width=0.8, color=COLORS["rans"], label="rANS frame (as packed)")
    if per_tensor and best:
        generic = np.array([8.0 * r["generic"][best] / r["symbols"] for _, r in pairs])
        top.scatter(x, generic, marker="^", s=16, color=COLORS[best], zorder=3,
                    label=f"{COMPRESSOR_LABELS[best]} on int8 containers")
    top.scatter(x, floor, marker="_", s=90, color=COLORS["floor"], zorder=4, linewidths=1.6,
                label="order-0 floor H₀")
    top.set_ylabel("symbol bits per weight")
    top.set_title(f"Coded size per tensor against its order-0 floor ({_scheme_phrase(report, ref)})")
    top.legend(loc="upper right", frameon=True, ncol=3)
    top.set_ylim(0, coded.max() * 1.3)
    top.set_xlim(-0.7, len(pairs) - 0.3)
    top.tick_params(labelbottom=False)
    top.grid(True, axis="y", alpha=0.3)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    if per_tensor and best:
        bottom.bar(x - 0.2, 100 * (coded / floor - 1), width=0.4, color=COLORS["rans"], label="rANS frame")
        bottom.bar(x + 0.2, 100 * (generic / floor - 1), width=0.4, color=COLORS[best],
                   label=f"{COMPRESSOR_LABELS[best]} (exact, per tensor)")
    else:
        bottom.bar(x, 100 * (coded / floor - 1), width=0.8, color=COLORS["rans"], label="rANS frame")
    if model and best:
        floor_total = report["summary"]["symbols"]["floor_bytes"]
        level = 100 * (model[best] / floor_total - 1)
        kind = "exact" if model["exact"] else f"estimated from {model['sample_symbols']:,} sampled symbols"
        bottom.axhline(level, color=COLORS[best], linestyle="--", linewidth=1.2,
                       label=f"{COMPRESSOR_LABELS[best]}, whole model as one stream ({kind}): {level:+.2f}%")
    bottom.axhline(0, color=COLORS["floor"], linewidth=0.8)
    bottom.set_ylabel("over the floor (%)")
    bottom.set_xlabel("tensor (layer.role)")
    bottom.set_xticks(x)
    bottom.set_xticklabels(labels, rotation=90, fontsize=7 if len(labels) > 40 else 8)
    bottom.legend(loc="upper right", frameon=True, ncol=2)
    bottom.grid(True, axis="y", alpha=0.3)
    bottom.set_ylim(min(0, bottom.get_ylim()[0]), bottom.get_ylim()[1] * 1.35)
    fig.tight_layout()
    return _png(fig)


@_rc
def schemes(report: dict) -> bytes:
    rows = [s for s in report["schemes"] if s["totals"]["weights"] and s["totals"]["generic"]]
    x = np.arange(len(rows))
    series = [("rans", "rANS frames", lambda t: t["frame_bytes"]),
              ("floor", "order-0 floor H₀", lambda t: t["floor_bytes"])]
    series += [(c, COMPRESSOR_LABELS[c], lambda t, c=c: t["generic"][c]) for c in COMPRESSORS]
    width = 0.8 / len(series)
    fig = _figure(max(8.0, 1.1 * len(rows) + 2), 7.2)
    ax = fig.add_subplot(2, 1, 1)
    for i, (key, label, get) in enumerate(series):
        vals = [8.0 * get(s["totals"]) / s["totals"]["weights"] for s in rows]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width=width, color=COLORS[key], label=label)
    exact = all(s["totals"]["generic"]["exact"] for s in rows)
    sampled = max((s["totals"]["generic"]["sample_symbols"] for s in rows), default=0)
    ax.set_xticks(x)
    ax.tick_params(labelbottom=False)
    ax.set_ylabel("symbol bits per weight")
    n = rows[0]["totals"]["tensors"] if rows else 0
    ax.set_title(f"Symbols of the {n} analysed tensors under each scheme: rANS vs floor vs generic compressors"
                 + ("" if exact else f"\n(generic compressors: one model-level stream per scheme, estimated from "
                                     f"{sampled:,} sampled symbols; --full for exact)"))
    ax.legend(ncol=5, loc="upper right", frameon=True)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    low = fig.add_subplot(2, 1, 2, sharex=ax)
    coders = [k for k in series if k[0] != "floor"]
    width = 0.8 / len(coders)
    for i, (key, label, get) in enumerate(coders):
        vals = [100.0 * (get(s["totals"]) / s["totals"]["floor_bytes"] - 1) for s in rows]
        low.bar(x + (i - (len(coders) - 1) / 2) * width, vals, width=width, color=COLORS[key], label=label)
    low.axhline(0, color=COLORS["floor"], linewidth=0.8)
    ticks = []
    for s in rows:
        err = s["totals"]["relative_error"]
        ticks.append(f"{s['id']}\nrel. err {err:.1e}" if err is not None else s["id"])
    low.set_xticks(x)
    low.set_xticklabels(ticks, fontsize=8)
    low.set_ylabel("over the order-0 floor (%)")
    low.set_xlabel("scheme (relative squared error ‖W−Ŵ‖²/‖W‖² below)")
    low.legend(ncol=4, loc="upper left", frameon=True)
    low.grid(True, axis="y", alpha=0.3)
    low.set_ylim(min(0, low.get_ylim()[0]), low.get_ylim()[1] * 1.2)
    fig.tight_layout()
    return _png(fig)


def _breakdown_rows(report: dict) -> list[tuple[str, dict]]:
    """Per role: payload, passthrough, and side information split by kind, in bytes."""
    ref = report["summary"]["reference_scheme"]
    small = report.get("options", {}).get("small_numel")
    roles: dict[str, dict] = {}
    for t in report["tensors"]:
        r = t.get("schemes", {}).get(ref) if t["analysed"] else None
        if t["analysed"] or report["kind"] == "artifact":
            role = short_role(t["role"])
        else:
            role = f"small tensors (≤{small:,} weights)" if small is not None else "small tensors"
        d = roles.setdefault(role, dict.fromkeys(("payload", "passthrough", "tables", "headers", "scales", "records"),
                                                 0.0))
        if r is not None and not r["passthrough"]:
            d["payload"] += r["frame"]["payload_bytes"]
            d["tables"] += r["frame"]["table_bytes"]
            d["headers"] += r["frame"]["header_bytes"]
            d["scales"] += r["scales"]["bytes"]
            d["records"] += r["record_bytes"]
        else:
            s = r if r is not None else t["stored"]
            d["records"] += s["record_bytes"]
            if s["passthrough"]:
                d["passthrough"] += s["blob_bytes"]
            else:  # a small tensor the planner quantized: symbols frame, then scales
                f = s["frame"]
                d["payload"] += f["payload_bytes"]
                d["tables"] += f["table_bytes"]
                d["headers"] += f["header_bytes"]
                d["scales"] += s["blob_bytes"] - f["total_bytes"]
    return sorted(roles.items(), key=lambda kv: -sum(kv[1].values()))


@_rc
def bytes_breakdown(report: dict) -> bytes:
    rows = _breakdown_rows(report)
    labels = [r for r, _ in rows]
    y = np.arange(len(rows))[::-1]
    fig = _figure(12.0, 0.42 * len(rows) + 2.0)
    left = fig.add_subplot(1, 2, 1)
    acc = np.zeros(len(rows))
    for key, label, color in (("payload", "coded symbols (rANS payload)", COLORS["rans"]),
                              ("passthrough", "passthrough values", COLORS["passthrough"])):
        vals = np.array([d[key] for _, d in rows]) / 1e6
        left.barh(y, vals, left=acc, color=color, label=label)
        acc += vals
    side = np.array([d["tables"] + d["headers"] + d["scales"] + d["records"] for _, d in rows]) / 1e6
    left.barh(y, side, left=acc, color=COLORS["side"], label="side information (right)")
    acc += side
    for yi, total_mb in zip(y, acc):
        left.text(total_mb, yi, f" {total_mb * 1e6:,.0f} B", va="center", ha="left", fontsize=8)
    left.set_xlim(0, acc.max() * 1.3)
    left.set_yticks(y)
    left.set_yticklabels(labels)
    left.set_xlabel("megabytes (10⁶ B)")
    total = report["summary"]["artifact_bytes"]
    left.set_title(f"Artifact bytes by tensor role ({total:,} B in all)")
    left.legend(loc="lower right", frameon=True)
    left.grid(True, axis="x", alpha=0.3)
    right = fig.add_subplot(1, 2, 2)
    acc = np.zeros(len(rows))
    for key, label, color in (("tables", "frequency tables", "#2ca02c"), ("headers", "frame headers", "#bcbd22"),
                              ("scales", "row scales", "#e377c2"), ("records", "manifest records", "#7f7f7f")):
        vals = np.array([d[key] for _, d in rows]) / 1e3
        right.barh(y, vals, left=acc, color=color, label=label)
        acc += vals
    for yi, total_kb in zip(y, acc):
        right.text(total_kb, yi, f" {total_kb * 1e3:,.0f} B", va="center", ha="left", fontsize=8)
    right.set_xlim(0, acc.max() * 1.2)
    right.set_yticks(y)
    right.set_yticklabels([])
    right.set_xlabel("kilobytes (10³ B)")
    right.set_title("Side information by tensor role")
    right.legend(loc="lower right", frameon=True)
    right.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


@_rc
def rate_loss(report: dict) -> bytes:
    rl = report["rate_loss"]
    pts = [p for p in rl["points"] if p["damage"] > 0]
    fig = _figure(8.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([p["total_bytes"] / 1e6 for p in pts], [p["damage"] for p in pts], "-o", markersize=3,
            color=COLORS["rans"], label="planner's optimum per budget")
    budget = report["options"]["budget"]
    ax.axvline(budget / 1e6, color="#444444", linestyle="--", linewidth=1, label=f"budget {budget:,} B")
    if rl["chosen"] and rl["chosen"]["damage"] > 0:
        c = rl["chosen"]
        ax.plot([c["total_bytes"] / 1e6], [c["damage"]], marker="*", markersize=14, color=COLORS["brotli11"],
                linestyle="none", label=f"chosen plan: {c['total_bytes']:,} B")
    for u, marker, color in zip(rl["uniform"], ("s", "D"), ("#d62728", "#2ca02c")):
        if u["damage"] > 0:
            ax.plot([u["total_bytes"] / 1e6], [u["damage"]], marker=marker, markersize=8, color=color,
                    linestyle="none", label=f"uniform {u['spec']} + rANS: {u['total_bytes']:,} B")
    ax.set_yscale("log")
    ax.set_xlabel("total bytes, artifact + code (MB, 10⁶ B)")
    ax.set_ylabel("estimated damage Σ w·‖W−Ŵ‖² (log)")
    ax.set_title("Planner rate–loss curve: bytes against weighted squared weight error")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", frameon=True)
    fig.tight_layout()
    return _png(fig)


def _qmax(spec: str) -> int | None:
    """The clamp of a clamped scheme (int-k, pent, tern), None for step (unclamped)."""
    head = spec.split(":", 1)[0]
    bits = int(head[3:]) if head.startswith("int") and head[3:].isdigit() else 0
    scheme = SCHEME_BY_NAME.get("int" if bits else head)
    return symbol_limit(scheme.name, bits) if scheme is not None and scheme.clamped else None


def _scheme_phrase(report: dict, ref: str) -> str:
    if ref == "planner":
        return f"the planner's choice at {report['options']['budget']:,} B"
    if ref == "stored":
        return "as stored in the artifact"
    return f"scheme {ref}"
