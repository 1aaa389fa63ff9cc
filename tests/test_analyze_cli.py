"""pgolf-analyze as a user runs it: help, the files it writes (valid PNGs, report.md, the same
JSON on stdout and on disk), artifacts as input, one-line errors with exit code 2 and nothing
written."""

import json
import struct
import subprocess
import sys

import pytest
import torch

from pgolf_pack.cli import analyze as analyze_cli
from pgolf_pack.cli import pack as pack_cli
from pgolf_pack.synthetic import baseline_state_dict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "final_model.pt"
    torch.save(baseline_state_dict(layers=2, dim=64, heads=4, kv_heads=2, vocab=128, seed=4), path)
    return path


@pytest.fixture(scope="module")
def analysed(ckpt, tmp_path_factory):
    """One full run with plots, shared by the tests that read its files."""
    out = tmp_path_factory.mktemp("run") / "nested" / "analysis"
    code_file = out.parent.parent / "train_gpt.py"
    code_file.write_text("print('hi')\n" * 50)
    code = analyze_cli.main([str(ckpt), "--out", str(out), "--budget", "40KB", "--code", str(code_file),
                             "--small-numel", "1000", "--json", "--quiet"])
    return code, out, code_file


def run(capsys, *args):
    code = analyze_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_help_has_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        analyze_cli.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert out.startswith("usage: pgolf-analyze")
    assert "examples:" in out and "pgolf-analyze final_model.pt --out" in out
    assert "2  bad input" in out and "--full" in out and "docs/ANALYZE.md" in out


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-c", "from importlib.metadata import entry_points as e; "
                        "print([x.value for x in e(group='console_scripts') if x.name == 'pgolf-analyze'])"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "['pgolf_pack.cli.analyze:main']"


def test_writes_reports_and_plots(analysed, capsys):
    code, out, code_file = analysed
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bits_per_weight.png", "bytes_breakdown.png", "histograms.png", "rate_loss.png", "report.json",
                     "report.md", "schemes.png"]
    for name in names:
        if name.endswith(".png"):
            w, h = png_size((out / name).read_bytes())
            assert w > 400 and h > 300, name
    report = json.loads((out / "report.json").read_text())
    assert report["plots"] == [n for n in names if n.endswith(".png")]
    assert report["options"]["code_bytes"] == code_file.stat().st_size
    assert report["summary"]["artifact_bytes"] + code_file.stat().st_size <= 40_000
    md = (out / "report.md").read_text()
    assert md.startswith("# pgolf-analyze") and "![rate_loss.png](rate_loss.png)" in md
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


def test_json_on_stdout_is_report_json(ckpt, tmp_path, capsys):
    code, stdout, stderr = run(capsys, ckpt, "--out", tmp_path / "a", "--budget", "40000", "--small-numel", "1000",
                               "--json", "--no-plots", "--quiet", "--full", "--schemes", "int6:std12.85")
    assert code == 0 and stderr == ""
    report = json.loads(stdout)
    assert report == json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["options"]["sample_symbols"] is None
    assert report["summary"]["symbols"]["generic"]["method"] == "per_tensor"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["report.json", "report.md"]


def test_summary_without_json(ckpt, tmp_path, capsys):
    code, stdout, _ = run(capsys, ckpt, "--out", tmp_path, "--budget", "40000", "--small-numel", "1000",
                          "--no-plots", "--schemes", "int6:std12.85,pent")
    assert code == 0
    assert stdout.startswith("pgolf-analyze: ") and "floor" in stdout and "best generic" in stdout
    assert str(tmp_path / "report.md") in stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["id"] for s in report["schemes"]] == ["int6:std12.85", "pent", "planner"]


def test_artifact_input(ckpt, tmp_path, capsys):
    art = tmp_path / "m.pgpk"
    assert pack_cli.main([str(ckpt), "--budget", "40000", "-o", str(art)]) == 0
    capsys.readouterr()
    code, stdout, _ = run(capsys, art, "--out", tmp_path / "out", "--json", "--quiet")
    assert code == 0
    report = json.loads(stdout)
    assert report["kind"] == "artifact" and report["summary"]["artifact_bytes"] == art.stat().st_size
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bits_per_weight.png", "bytes_breakdown.png", "histograms.png", "report.json", "report.md"]


def _corrupt_artifact(d, ckpt):
    art = d / "bad.pgpk"
    pack_cli.main([str(ckpt), "--budget", "40000", "-o", str(art)])
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0x40
    art.write_bytes(bytes(data))
    return art


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d, c: d / "missing.pt", "does not exist"),
        (lambda d, c: (torch.save([1, 2, 3], d / "list.pt"), d / "list.pt")[1], "not a state dict"),
        (lambda d, c: ((d / "junk.pt").write_bytes(b"not a checkpoint"), d / "junk.pt")[1],
         "not a readable PyTorch checkpoint"),
        (lambda d, c: ((d / "t.pgpk").write_bytes(b"PGPK\x01\x00"), d / "t.pgpk")[1], "truncated"),
        (_corrupt_artifact, "checksum mismatch"),
    ],
)
def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys, ckpt, setup, message):
    path = setup(tmp_path, ckpt)
    capsys.readouterr()
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, path, "--out", out, "--json")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("pgolf-analyze: error: ")
    assert __import__("re").search(message, stderr), stderr
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["--schemes", "int9"], "int-k needs k in 2..8"),
    (["--schemes", "int6:wide"], "unknown clip"),
    (["--schemes", "fp16"], "passthrough"),
    (["--sample", "0"], "--sample must be"),
    (["--code", "nope.py"], "code file 'nope.py' does not exist"),
])
def test_bad_options_are_one_line_errors(ckpt, tmp_path, capsys, args, message):
    code, stdout, stderr = run(capsys, ckpt, "--out", tmp_path / "out", *args)
    assert code == 2 and stdout == "" and message in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_out_must_not_be_a_file(ckpt, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, stderr = run(capsys, ckpt, "--out", tmp_path / "f")
    assert code == 2 and "not a directory" in stderr and (tmp_path / "f").read_text() == "x"
