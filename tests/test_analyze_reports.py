"""The checkpoint and artifact reports against what pgolf-pack actually writes: frame sizes and
splits, scales, records, whole-artifact sizes, floors of the decoded symbols, generic
compressors on independently built containers, the rate-loss curve, and report.md's tables."""

import re

import brotli
import numpy as np
import pytest
import torch

from pgolf_pack import rans
from pgolf_pack.analysis import analyze_artifact, analyze_checkpoint, CheckpointOptions
from pgolf_pack.analysis.generic import container_bytes, sample_share
from pgolf_pack.analysis.markdown import render
from pgolf_pack.analysis.stats import weight_stats
from pgolf_pack.artifact import decode_artifact
from pgolf_pack.artifact import format as fmt
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.planner import Plan
from pgolf_pack.quant import QuantSpec, quantize
from pgolf_pack.synthetic import baseline_state_dict

BUDGET = 60_000
SCHEMES = (("int6", "int6:std12.85"), ("pent", "pent:mse"), ("step", "step:0.3"))


@pytest.fixture(scope="module")
def sd():
    return baseline_state_dict(layers=3, dim=64, heads=4, kv_heads=2, mlp_mult=2, vocab=256, seed=7)


@pytest.fixture(scope="module")
def report(sd):
    return analyze_checkpoint(sd, CheckpointOptions(budget=BUDGET, small_numel=1000, schemes=SCHEMES, sample=None,
                                                    threads=2))


@pytest.fixture(scope="module")
def int6_artifact(sd, report, tmp_path_factory):
    """The artifact pgolf-pack writes when every analysed tensor is forced to int6."""
    specs = {t["name"]: "int6:std12.85" if t["analysed"] else t["stored"]["spec"] for t in report["tensors"]}
    plan = Plan(budget=10**9, code_bytes=0, specs=specs, estimated_bytes=0, estimated_damage=0.0)
    path = tmp_path_factory.mktemp("art") / "int6.pgpk"
    path.write_bytes(pack_checkpoint(sd, 10**9, plan=plan).data)
    return path


def analysed(report):
    return [t for t in report["tensors"] if t["analysed"]]


def test_rans_sizes_are_what_pgolf_pack_writes(report, int6_artifact):
    art = decode_artifact(int6_artifact.read_bytes())
    by_name = {e.name: e for e in art.entries}
    assert len(analysed(report)) == 1 + 3 * 6  # tok_emb + 6 matrices per layer
    for t in report["tensors"]:
        e = by_name[t["name"]]
        r = t["schemes"]["int6"] if t["analysed"] else t["stored"]
        assert e.record_bytes == r["record_bytes"], t["name"]
        assert sum(size for _, size in e.blobs) + e.record_bytes == r["total_bytes"], t["name"]
        if not t["analysed"]:
            continue
        (s_off, s_size), (c_off, c_size) = e.blobs
        info = rans.frame_info(art.data[s_off:s_off + s_size])
        f = r["frame"]
        assert (s_size, info.header_bytes, info.table_bytes, info.payload_bytes) == (
            f["total_bytes"], f["header_bytes"], f["table_bytes"], f["payload_bytes"]), t["name"]
        assert c_size == r["scales"]["bytes"]
    # and the whole file: records and blobs plus the header the report computes
    records = [by_name[t["name"]].record_bytes for t in report["tensors"]]
    total = sum((t["schemes"]["int6"] if t["analysed"] else t["stored"])["total_bytes"] for t in report["tensors"])
    assert len(art.data) == total + fmt.container_bytes(records)["total_bytes"]


def test_small_tensors_the_planner_quantizes_are_counted_whole(sd):
    # with a higher threshold the 32x64 attention matrices are "small": listed, not analysed,
    # yet quantized by the planner (symbols and scales)
    r = analyze_checkpoint(sd, CheckpointOptions(budget=BUDGET, small_numel=3000, schemes=SCHEMES[:1]))
    packed = pack_checkpoint(sd, BUDGET)
    small = [t["stored"] for t in r["tensors"] if not t["analysed"]]
    assert any(not s["passthrough"] and s["encoding"] == "symbols" for s in small)
    assert r["summary"]["artifact_bytes"] == len(packed.data)
    assert r["summary"]["floor_bytes"] == pytest.approx(sum(t.floor_bytes for t in packed.tensors), rel=1e-9)


def test_the_planner_scheme_is_the_artifact_pgolf_pack_packs(sd, report):
    packed = pack_checkpoint(sd, BUDGET)
    assert report["planner"]["feasible"]
    assert report["planner"]["specs"] == packed.plan.specs
    assert report["summary"]["reference_scheme"] == "planner"
    assert report["summary"]["artifact_bytes"] == len(packed.data)
    assert report["summary"]["artifact_bytes"] <= BUDGET
    # the floor the summary uses is the one pgolf-pack's own report gives, tensor by tensor
    assert report["summary"]["floor_bytes"] == pytest.approx(sum(t.floor_bytes for t in packed.tensors), rel=1e-9)


def test_artifact_report_agrees_with_the_checkpoint_report(report, int6_artifact):
    a = analyze_artifact(int6_artifact, sample=None)
    assert a["kind"] == "artifact" and a["input_bytes"] == int6_artifact.stat().st_size
    assert a["sections"]["total_bytes"] == a["input_bytes"] == a["summary"]["artifact_bytes"]
    ck = {t["name"]: t for t in report["tensors"]}
    for t in a["tensors"]:
        if not t["analysed"] or not ck[t["name"]]["analysed"]:  # small tensors: compare what is stored
            got = t["stored"] if not t["analysed"] else t["schemes"]["stored"]
            assert got["total_bytes"] == ck[t["name"]]["stored"]["total_bytes"]
            continue
        r, c = t["schemes"]["stored"], ck[t["name"]]["schemes"]["int6"]
        assert r["spec"] == "int6:s5"
        for key in ("total_bytes", "record_bytes", "symbols", "min", "max", "distinct"):
            assert r[key] == c[key], (t["name"], key)
        assert r["frame"] == c["frame"] and r["scales"] == c["scales"] and r["generic"] == c["generic"]
        assert r["floor_bytes"] == pytest.approx(c["floor_bytes"], rel=1e-12)
        assert r["context"] == c["context"]  # the same symbols and scales: the same bounds
    assert a["summary"]["floor_bytes"] == pytest.approx(
        sum((t["schemes"]["int6"]["floor_bytes"] + t["schemes"]["int6"]["scales"]["floor_bytes"]) if t["analysed"]
            else t["stored"]["floor_bytes"] for t in report["tensors"]), rel=1e-9)


def test_floors_are_the_order0_entropy_of_the_decoded_symbols(int6_artifact):
    a = analyze_artifact(int6_artifact, sample=None)
    art = decode_artifact(int6_artifact.read_bytes())
    for e, t in zip(art.entries, a["tensors"]):
        if not t["analysed"]:
            continue
        (s_off, s_size), (c_off, c_size) = e.blobs
        symbols = rans.decode(art.data[s_off:s_off + s_size])
        r = t["schemes"]["stored"]
        assert 8 * r["floor_bytes"] == pytest.approx(rans.order0_entropy_bits(symbols), rel=1e-12)
        codes = rans.decode(art.data[c_off:c_off + c_size])
        assert 8 * r["scales"]["floor_bytes"] == pytest.approx(rans.order0_entropy_bits(codes), rel=1e-12)
        assert r["overhead_bytes"] == pytest.approx(s_size - r["floor_bytes"])
    # layer deltas: same role, layer before, same scheme
    deltas = {t["name"]: t["schemes"]["stored"]["context"]["layer_delta"] for t in a["tensors"] if t["analysed"]}
    assert deltas["blocks.0.mlp.fc.weight"] is None
    assert deltas["blocks.2.mlp.fc.weight"]["previous"] == "blocks.1.mlp.fc.weight"


def test_generic_compressors_see_the_symbols_one_per_byte(sd, report):
    int6 = next(s for s in report["schemes"] if s["id"] == "int6")["totals"]["generic"]
    assert int6["exact"] and int6["method"] == "per_tensor" and int6["containers"] == ["int8"]
    first = analysed(report)[0]
    q = quantize(sd[first["name"]], QuantSpec.parse("int6:std12.85")).symbols.numpy().astype(np.int8)
    assert first["schemes"]["int6"]["generic"]["brotli11"] == len(brotli.compress(q.tobytes(), quality=11))
    # a sample covering the whole model is one exact stream over the tensors in file order
    whole = analyze_checkpoint(sd, CheckpointOptions(budget=BUDGET, small_numel=1000, schemes=SCHEMES[:1],
                                                     sample=10**9))
    g = whole["schemes"][0]["totals"]["generic"]
    int6 = QuantSpec.parse("int6:std12.85")
    stream = b"".join(quantize(sd[t["name"]], int6).symbols.numpy().astype(np.int8).tobytes() for t in analysed(report))
    assert g["method"] == "stream" and g["exact"] and g["sample_symbols"] == g["symbols"] == len(stream)
    assert g["brotli11"] == len(brotli.compress(stream, quality=11))
    # a smaller sample is an estimate and says so
    est = analyze_checkpoint(sd, CheckpointOptions(budget=BUDGET, small_numel=1000, schemes=SCHEMES[:1],
                                                   sample=20_000))["schemes"][0]["totals"]["generic"]
    assert not est["exact"] and 20_000 <= est["sample_symbols"] < est["symbols"] == len(stream)
    assert est["brotli11"] == pytest.approx(g["brotli11"], rel=0.15)
    assert all(t["schemes"]["int6"]["generic"] is None for t in analysed(
        analyze_checkpoint(sd, CheckpointOptions(budget=BUDGET, small_numel=1000, schemes=SCHEMES[:1], sample=20_000))))


def test_samples_take_the_same_share_of_every_tensor():
    """A model-level stream is scaled by one factor, so each tensor must give exactly its share,
    not a share rounded up to whole rows."""
    x = np.arange(400).reshape(4, 100) % 7
    assert container_bytes(x, 30)[2] == len(container_bytes(x, 30)[1]) == 30
    assert container_bytes(x, 250)[2] == 250 and container_bytes(x, None)[2] == 400
    assert container_bytes(x, 10**6)[1] == x.astype(np.int8).tobytes()
    assert sample_share(1024, 36_000_000, 524_288) == 15


def test_rate_loss_curve(sd, report):
    rl = report["rate_loss"]
    pts = rl["points"]
    assert len(pts) > 10 and pts[0]["total_bytes"] >= rl["smallest_total_bytes"] - 16
    assert all(p["total_bytes"] <= p["budget"] for p in pts)
    assert all(a["damage"] >= b["damage"] for a, b in zip(pts, pts[1:]))
    assert rl["chosen"]["budget"] == BUDGET and rl["chosen"]["total_bytes"] <= BUDGET
    # the uniform int6 point is the artifact of that plan (with the header bound the planner uses)
    u = next(u for u in rl["uniform"] if u["spec"] == "int6:std12.85")
    specs = {}
    for name, t in sd.items():
        specs[name] = "int6:std12.85" if t.is_floating_point() and t.numel() >= 2 else (
            "fp32" if t.is_floating_point() else "raw")
    packed = pack_checkpoint(sd, 10**9, plan=Plan(10**9, 0, specs, 0, 0.0))
    assert len(packed.data) <= u["total_bytes"] <= len(packed.data) + 8
    assert u["damage"] == pytest.approx(sum(t.damage for t in packed.tensors), rel=1e-6)


def test_an_infeasible_budget_still_reports(sd):
    threads = torch.get_num_threads()
    r = analyze_checkpoint(sd, CheckpointOptions(budget=1_000, small_numel=1000, schemes=SCHEMES[:2]))
    assert torch.get_num_threads() == threads  # the single-threaded torch policy is undone
    assert not r["planner"]["feasible"] and "cannot be met" in r["planner"]["error"]
    assert r["summary"]["reference_scheme"] == "int6"
    assert [s["id"] for s in r["schemes"]] == ["int6", "pent"]
    assert r["rate_loss"]["chosen"] is None and r["rate_loss"]["points"]


def test_histograms_of_representatives(report, sd):
    hs = report["histograms"]
    roles = {h["tensor"].split(".", 2)[-1] if h["tensor"].startswith("blocks.") else h["tensor"] for h in hs}
    assert len(hs) == len(roles) == 7
    for h in hs:
        t = next(t for t in report["tensors"] if t["name"] == h["tensor"])
        r = t["schemes"][h["scheme"]]
        assert sum(h["counts"]) == t["numel"] and h["offset"] == r["min"]
        assert len(h["counts"]) == r["max"] - r["min"] + 1
    assert next(h for h in hs if h["tensor"].endswith("mlp.fc.weight"))["tensor"] == "blocks.1.mlp.fc.weight"


def test_weight_statistics():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(400, 1000, generator=g) * torch.linspace(0.5, 2, 400)[:, None]
    s = weight_stats(w)
    # Gaussian rows: no excess kurtosis once rows are standardised; the spread of row scales
    # alone makes the whole tensor look heavy-tailed
    assert abs(s["row_excess_kurtosis"]) < 0.05 and s["excess_kurtosis"] > 0.3
    assert s["outlier_share"] == pytest.approx(6.3e-5, rel=0.5)
    assert s["sum_squares"] == pytest.approx(float(w.double().square().sum()))
    w[0, :10] = 50.0
    assert weight_stats(w)["outlier_share"] == pytest.approx(s["outlier_share"] + 10 / w.numel(), rel=0.2)
    assert weight_stats(torch.ones(3, 4))["excess_kurtosis"] is None


def test_markdown_tables_are_well_formed(report):
    md = render(report, ["rate_loss.png"])
    assert md.startswith("# pgolf-analyze") and "## Summary" in md and "![rate_loss.png](rate_loss.png)" in md
    assert "H(X\\|row)" in md
    for block in re.split(r"\n\s*\n", md):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if not lines:
            continue
        widths = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
        assert len(widths) == 1, lines[:2]
