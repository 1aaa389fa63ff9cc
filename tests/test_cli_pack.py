"""pgolf-pack and pgolf-unpack as a user runs them: help, tables, --json, exit codes, one-line
errors, nothing written on failure, plans that reproduce artifacts, pickles refused unless
trusted."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pgolf_pack.artifact import load_artifact
from pgolf_pack.cli import pack as pack_cli
from pgolf_pack.cli import unpack as unpack_cli
from pgolf_pack.synthetic import baseline_state_dict


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    path = d / "final_model.pt"
    torch.save(baseline_state_dict(layers=2, dim=64, heads=4, kv_heads=2, vocab=128, seed=2), path)
    return path


def run_pack(capsys, *args):
    code = pack_cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_documents_exit_codes():
    r = subprocess.run([sys.executable, "-m", "pgolf_pack.cli.pack", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--budget" in r.stdout and "exit codes" in r.stdout and "2  bad input" in r.stdout


def test_pack_prints_a_table_and_writes_the_artifact(ckpt, tmp_path, capsys):
    out = tmp_path / "m.pgpk"
    code_file = tmp_path / "train_gpt.py"
    code_file.write_text("print('hello')\n" * 100)
    code, stdout, _ = run_pack(capsys, ckpt, "--budget", "150000", "--code", code_file, "-o", out)
    assert code == 0
    assert "tok_emb.weight" in stdout and "headroom" in stdout and "bits/w" in stdout
    assert f"{code_file.stat().st_size:,} B" in stdout
    assert out.stat().st_size + code_file.stat().st_size <= 150_000
    assert list(load_artifact(out)) == list(torch.load(ckpt))


def test_json_report(ckpt, tmp_path, capsys):
    out = tmp_path / "m.pgpk"
    code, stdout, _ = run_pack(capsys, ckpt, "--budget", "120KB", "-o", out, "--json")
    assert code == 0
    r = json.loads(stdout)
    assert {"artifact", "artifact_bytes", "code_bytes", "total_bytes", "budget", "tensors"} <= set(r)
    assert r["budget"] == 120_000 and r["total_bytes"] == r["artifact_bytes"] <= 120_000
    assert r["artifact_bytes"] == out.stat().st_size
    t = r["tensors"][0]
    assert {"name", "shape", "scheme", "bits_per_weight", "coded_bytes", "floor_bytes"} <= set(t)


def test_infeasible_budget_exits_2_and_writes_nothing(ckpt, tmp_path, capsys):
    out = tmp_path / "m.pgpk"
    code, stdout, stderr = run_pack(capsys, ckpt, "--budget", "1000", "-o", out, "--plan-out", tmp_path / "p.json")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "cannot be met" in stderr and "smallest artifact" in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: d / "missing.pt", "does not exist"),
        (lambda d: (torch.save([1, 2, 3], d / "list.pt"), d / "list.pt")[1], "not a state dict"),
        (lambda d: ((d / "junk.pt").write_bytes(b"not a checkpoint"), d / "junk.pt")[1], "not a readable PyTorch checkpoint"),
        (lambda d: (torch.save({"w": torch.ones(3), "cfg": argparse.Namespace(a=1)}, d / "p.pt"), d / "p.pt")[1],
         "would run code to load .* --trust-pickle"),
    ],
)
def test_bad_checkpoints_are_one_line_errors(tmp_path, capsys, setup, message):
    path = setup(tmp_path)
    before = set(tmp_path.iterdir())
    code, _, stderr = run_pack(capsys, path, "--budget", "1000000", "-o", tmp_path / "out.pgpk")
    assert code == 2 and stderr.count("\n") == 1
    assert pytest.importorskip("re").search(message, stderr)
    assert set(tmp_path.iterdir()) == before


def test_trust_pickle_loads_wrapped_checkpoints(tmp_path, capsys):
    sd = baseline_state_dict(layers=1, dim=32, heads=4, kv_heads=2, vocab=64)
    path = tmp_path / "wrapped.pt"
    torch.save({"model": sd, "args": argparse.Namespace(lr=0.1)}, path)
    code, _, _ = run_pack(capsys, path, "--budget", "1000000", "-o", tmp_path / "w.pgpk", "--trust-pickle", "--json")
    assert code == 0 and list(load_artifact(tmp_path / "w.pgpk")) == list(sd)


def test_plan_out_then_plan_in_reproduces_bytes(ckpt, tmp_path, capsys):
    a, b, plan = tmp_path / "a.pgpk", tmp_path / "b.pgpk", tmp_path / "plan.json"
    assert run_pack(capsys, ckpt, "--budget", "100000", "-o", a, "--plan-out", plan)[0] == 0
    assert json.loads(plan.read_text())["format"] == "pgolf-plan/1"
    assert run_pack(capsys, ckpt, "--budget", "100000", "-o", b, "--plan-in", plan)[0] == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.json", "plan '.*missing.json' does not exist"),
    (lambda d: d, "is a directory, not a file"),
    (lambda d: (d / "bad.json").write_text("{") and d / "bad.json", "is not JSON"),
    (lambda d: (d / "other.json").write_text("{}") and d / "other.json", "is not a pgolf-pack plan"),
])
def test_bad_plan_in_is_one_line_and_exit_2(ckpt, tmp_path, capsys, make, message):
    out = tmp_path / "never.pgpk"
    code, _, stderr = run_pack(capsys, ckpt, "--budget", "100000", "-o", out, "--plan-in", make(tmp_path))
    assert code == 2 and stderr.count("\n") == 1 and re.search(message, stderr), stderr
    assert not out.exists()


def test_force_and_schemes(ckpt, tmp_path, capsys):
    out = tmp_path / "f.pgpk"
    code, stdout, _ = run_pack(capsys, ckpt, "--budget", "400000", "-o", out, "--json",
                               "--force", "tok_emb.weight=fp16", "--schemes", "int6:std12.85,fp16")
    assert code == 0
    schemes = {t["name"]: t["scheme"] for t in json.loads(stdout)["tensors"]}
    assert schemes["tok_emb.weight"] == "fp16"
    assert set(schemes.values()) <= {"fp16", "int6:std12.85:s5"}
    code, _, stderr = run_pack(capsys, ckpt, "--budget", "400000", "-o", out, "--force", "x=int9")
    assert code == 2 and "int-k needs k in 2..8" in stderr


def test_bad_budget_is_an_argument_error(ckpt, capsys):
    with pytest.raises(SystemExit) as e:
        pack_cli.main([str(ckpt), "--budget", "lots"])
    assert e.value.code == 2 and "not a byte count" in capsys.readouterr().err


def test_unpack_roundtrip_and_corrupt_input(ckpt, tmp_path, capsys):
    art = tmp_path / "m.pgpk"
    assert run_pack(capsys, ckpt, "--budget", "200000", "-o", art)[0] == 0
    out = tmp_path / "sd.pt"
    assert unpack_cli.main([str(art), "-o", str(out)]) == 0
    sd = torch.load(out, weights_only=True)
    expected = load_artifact(art)
    assert list(sd) == list(expected) and all(torch.equal(sd[k], expected[k]) for k in sd)
    st = tmp_path / "sd.safetensors"
    assert unpack_cli.main([str(art), "-o", str(st)]) == 0
    bad = tmp_path / "bad.pgpk"
    bad.write_bytes(art.read_bytes()[:-10])
    capsys.readouterr()
    assert unpack_cli.main([str(bad), "-o", str(tmp_path / "never.pt")]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert not (tmp_path / "never.pt").exists()


def test_console_scripts_are_installed():
    """The commands are installed beside the interpreter running the tests (a venv's bin/, which
    need not be on PATH: `make test` runs the venv's Python directly) and they run."""
    import sysconfig

    for name in ("pgolf-pack", "pgolf-unpack", "pgolf-verify", "pgolf-analyze", "pgolf-demo", "pgolf-train"):
        path = Path(sysconfig.get_path("scripts")) / name
        assert path.is_file(), f"{name} is not installed in {path.parent}: reinstall with pip install -e ."
        done = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, (name, done.stderr[-500:])
