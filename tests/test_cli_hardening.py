"""Issue 12, the user paths: outputs never overwrite inputs, bad paths / budgets / options / shards
get one line and exit 2 with nothing written, writes are all-or-nothing and leave no temporaries,
validation data is refused by any name, and names from files cannot drive the terminal."""

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pgolf_pack import files as files_mod
from pgolf_pack.artifact.writer import encode_artifact
from pgolf_pack.cli import analyze as analyze_cli
from pgolf_pack.cli import pack as pack_cli
from pgolf_pack.cli import unpack as unpack_cli
from pgolf_pack.cli import verify as verify_cli
from pgolf_pack.cli.common import check_outputs, parse_bytes
from pgolf_pack.errors import BudgetError, InputError
from pgolf_pack.files import TMP_MARK, remove_stale_temporaries, write_all, write_atomic
from pgolf_pack.planner import encode_with, evaluate_tensors, plan_from, smallest_artifact
from pgolf_pack.shards import check_vocab, is_validation_path, training_files, write_shard
from pgolf_pack.synthetic import baseline_state_dict
from pgolf_pack.text import dumps_json, printable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    torch.save({"a.weight": torch.randn(16, 16, generator=torch.Generator().manual_seed(0)),
                "a.bias": torch.randn(16, generator=torch.Generator().manual_seed(1))}, path)
    return path


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    """A tiny baseline GPT (vocab 64) that the default calibration model can be built from."""
    path = tmp_path_factory.mktemp("gpt") / "g.pt"
    torch.save(baseline_state_dict(layers=1, dim=32, heads=2, kv_heads=1, vocab=64, seed=3), path)
    return path


def run(cli, capsys, *args):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


# --- item 5: outputs that would overwrite inputs -------------------------------------------------

@pytest.mark.parametrize("option", ["-o", "--plan-out"])
def test_pack_refuses_an_output_that_is_the_checkpoint(ckpt, tmp_path, capsys, option):
    link = tmp_path / "link.pt"
    link.symlink_to(ckpt)
    before = ckpt.read_bytes()
    args = [ckpt, "--budget", "1MB", option, link] + (["-o", tmp_path / "x.pgpk"] if option != "-o" else [])
    code, _, err = run(pack_cli, capsys, *args)
    assert code == 2 and ckpt.read_bytes() == before
    one_error_line(err, option, "same file as the input checkpoint")
    assert not (tmp_path / "x.pgpk").exists()


def test_pack_refuses_hard_links_and_outputs_that_collide(ckpt, tmp_path, capsys):
    hard = tmp_path / "hard.pt"
    os.link(ckpt, hard)
    code, _, err = run(pack_cli, capsys, hard, "--budget", "1MB", "-o", ckpt)
    one_error_line(err, "-o", "same file")
    assert code == 2
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path / "a.pgpk", "--plan-out",
                       tmp_path / "sub" / ".." / "a.pgpk")
    assert code == 2
    one_error_line(err, "--plan-out", "the output -o")
    code_file = tmp_path / "train_gpt.py"
    code_file.write_text("print(1)\n")
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "--code", code_file, "-o", code_file)
    assert code == 2 and code_file.read_text() == "print(1)\n"
    one_error_line(err, "--code")
    assert snapshot(tmp_path).keys() == {"hard.pt", "train_gpt.py"}


def test_pack_refuses_plan_out_over_plan_in(ckpt, tmp_path, capsys):
    plan = tmp_path / "plan.json"
    assert run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path / "a.pgpk", "--plan-out", plan)[0] == 0
    before = plan.read_bytes()
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path / "b.pgpk", "--plan-in", plan,
                       "--plan-out", plan)
    assert code == 2 and plan.read_bytes() == before and not (tmp_path / "b.pgpk").exists()
    one_error_line(err, "--plan-out", "--plan-in")


def test_unpack_refuses_to_overwrite_its_artifact(ckpt, tmp_path, capsys):
    art = tmp_path / "a.pgpk"
    assert run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", art)[0] == 0
    before = art.read_bytes()
    for target in (art, tmp_path / "." / "a.pgpk"):
        code, _, err = run(unpack_cli, capsys, art, "-o", target)
        assert code == 2 and art.read_bytes() == before
        one_error_line(err, "same file as the input artifact")


def test_check_outputs_is_shared_and_names_both_paths(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"x")
    with pytest.raises(InputError, match="--y .* same file as the output --x"):
        check_outputs([("--x", tmp_path / "n"), ("--y", tmp_path / "n")])
    check_outputs([("--x", tmp_path / "n"), ("--y", tmp_path / "m")], [("in", a)])  # distinct: fine


def test_analyze_refuses_to_overwrite_an_input_in_out(ckpt, tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    inside = out / "report.json"
    inside.write_bytes(ckpt.read_bytes())
    code, _, err = run(analyze_cli, capsys, inside, "--out", out, "--no-plots", "--quiet", "--sample", "1000")
    assert code == 2 and inside.read_bytes() == ckpt.read_bytes() and sorted(os.listdir(out)) == ["report.json"]
    one_error_line(err, "report.json", "same file as the input INPUT")


# --- item 6: bad output paths, full disks, bad numbers ----------------------------------------------

def test_directory_and_missing_directory_outputs(ckpt, tmp_path, capsys):
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path)
    assert code == 2
    one_error_line(err, "is a directory")
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path / "a.pgpk",
                       "--plan-out", tmp_path / "missing" / "plan.json")
    assert code == 2 and not (tmp_path / "a.pgpk").exists()  # nothing written: checked before any work
    one_error_line(err, "--plan-out", "does not exist")


def test_read_only_directory_and_file(ckpt, tmp_path, capsys, monkeypatch):
    if os.geteuid() == 0:  # root may write anywhere: answer access() as the kernel would for a user
        from pgolf_pack.cli import common

        monkeypatch.setattr(common.os, "access", lambda p, mode: not (mode & os.W_OK) or bool(os.stat(p).st_mode & 0o200))
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "locked.pgpk").write_bytes(b"keep")
    (tmp_path / "locked.pgpk").chmod(0o444)
    ro.chmod(0o555)
    try:
        code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", ro / "a.pgpk")
        assert code == 2
        one_error_line(err, "not writable")
        code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path / "locked.pgpk")
        assert code == 2 and (tmp_path / "locked.pgpk").read_bytes() == b"keep"
        one_error_line(err, "read-only")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EFBIG, errno.EIO])
def test_write_errors_keep_the_old_file_and_leave_no_temporary(tmp_path, monkeypatch, err_no):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    calls = []

    def failing_write(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(err_no, os.strerror(err_no))
        return os.write(fd, data[:10])

    monkeypatch.setattr(files_mod.os, "write", failing_write)
    with pytest.raises(InputError) as e:
        write_atomic(target, b"n" * 100)
    monkeypatch.undo()
    assert str(target) in str(e.value) and os.strerror(err_no) in str(e.value)
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_efbig_from_a_real_file_size_limit(tmp_path):
    """RLIMIT_FSIZE makes write(2) fail with EFBIG (Python ignores SIGXFSZ)."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import resource, sys
        from pgolf_pack.errors import InputError
        from pgolf_pack.files import write_atomic
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_atomic({str(target)!r}, b"x" * 100_000)
        except InputError as e:
            print(e)
            sys.exit(2)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                       env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr
    assert "File too large" in r.stdout and str(target) in r.stdout
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["big.bin"]


def test_write_all_is_all_or_nothing(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"old1")
    real_write = os.write

    def write(fd, data):
        if bytes(data[:3]) == b"bad":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(files_mod.os, "write", write)
    with pytest.raises(InputError, match="No space left on device"):
        write_all([(first, b"new1"), (second, b"bad2")])
    assert first.read_bytes() == b"old1" and not second.exists() and sorted(os.listdir(tmp_path)) == ["first"]


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400", "1e999999999", "0", "-5", "16.5", "1e-3", "abc", "",
                                  "10000000000000000000", "0x10"])
def test_bad_budgets_are_refused(text):
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_budgets_parse_exactly():
    assert parse_bytes("9007199254740993") == 9007199254740993  # a float makes it ...992
    assert parse_bytes("16MB") == parse_bytes("16e6") == parse_bytes("16_000_000") == parse_bytes("16,000,000") \
        == 16_000_000
    assert parse_bytes("1.5KB") == 1500 and parse_bytes("9223372036854775807") == 2**63 - 1


@pytest.mark.parametrize("args", [["--budget", "inf"], ["--budget", "1e400"], ["--budget", "nan"],
                                  ["--calibration-tokens", "-5"], ["--calibration-seq-len", "0"], ["--threads", "0"]])
def test_bad_numbers_exit_2(ckpt, tmp_path, capsys, args):
    full = [str(ckpt), "-o", str(tmp_path / "a.pgpk")] + (["--budget", "1MB"] if args[0] != "--budget" else []) + args
    with pytest.raises(SystemExit) as e:
        pack_cli.main(full)
    assert e.value.code == 2 and args[0] in capsys.readouterr().err
    assert not (tmp_path / "a.pgpk").exists()


def test_calibration_tokens_beyond_the_vocabulary(gpt, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_shard(data / "fineweb_train_000000.bin", np.full(200, 500, dtype=np.uint16))  # vocab is 64
    code, _, err = run(pack_cli, capsys, gpt, "--budget", "10MB", "-o", tmp_path / "a.pgpk", "--quiet",
                       "--calibrate", data / "fineweb_train_*.bin", "--calibration-tokens", "64",
                       "--calibration-seq-len", "16", "--device", "cpu")
    assert code == 2 and not (tmp_path / "a.pgpk").exists()
    one_error_line(err, "token id 500", "64")
    with pytest.raises(InputError, match="token id 9"):
        check_vocab(np.array([1, 9], dtype=np.uint16), 9, "x")
    check_vocab(np.array([1, 8], dtype=np.uint16), 9, "x")


# --- item 7: non-finite thresholds and JSON ---------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_verify_refuses_non_finite_max_delta(capsys, value):
    with pytest.raises(SystemExit) as e:
        verify_cli.build_parser().parse_args(["a", "--checkpoint", "c", "--val", "v", "--tokenizer", "t",
                                              f"--max-delta={value}"])
    assert e.value.code == 2 and "not a finite number" in capsys.readouterr().err


def test_json_outputs_never_hold_nan():
    text = dumps_json({"a": float("nan"), "b": [float("inf"), 1.5, {"c": -float("inf")}], "d": "x"})
    assert json.loads(text) == {"a": None, "b": [None, 1.5, {"c": None}], "d": "x"}
    assert "NaN" not in text and "Infinity" not in text


# --- item 9: names from files reach the terminal escaped ---------------------------------------------

def test_printable_escapes_controls_and_non_printables():
    assert printable("blocks.0.weight") == "blocks.0.weight"
    assert printable("a\x1b[2Jb\n\x00") == "a\\x1b[2Jb\\n\\x00"
    assert printable("\ud800x\u202e") == "\\ud800x\\u202e"  # a lone surrogate, a bidi override
    assert printable("poids_é_ü") == "poids_é_ü"


def test_hostile_names_are_escaped_in_tables_and_errors(tmp_path, capsys):
    evil = "\x1b[2J\x1b[Hpgolf-pack: PASSED"
    path = tmp_path / "evil.pt"
    torch.save({evil: torch.randn(8, 8), "ok": torch.randn(8, 8)}, path)
    code, out, err = run(pack_cli, capsys, path, "--budget", "1MB", "-o", tmp_path / "e.pgpk")
    assert code == 0 and "\x1b" not in out and "\\x1b[2J" in out
    torch.save({evil: torch.tensor(1.0)}, path)
    code, out, err = run(pack_cli, capsys, path, "--budget", "1MB", "-o", tmp_path / "f.pgpk", "--force", "*=step:0.1")
    assert code == 2 and "\x1b" not in err
    one_error_line(err, "\\x1b[2J")


# --- item 10: validation data refused by any name ----------------------------------------------------

@pytest.mark.parametrize("name", ["fineweb_VAL_000000.bin", "valid_0.bin", "Validation/x.bin", "val/x.bin",
                                  "data.val.bin", "val2017/t.bin"])
def test_validation_names_in_any_component_and_case(tmp_path, name):
    assert is_validation_path(tmp_path / name)


@pytest.mark.parametrize("name", ["fineweb_train_000000.bin", "interval/train.bin", "evaluate.bin", "invalid.bin"])
def test_training_names_pass(tmp_path, name):
    assert not is_validation_path(tmp_path)  # the test directory itself is clean
    assert not is_validation_path(tmp_path / name)


def test_links_to_held_out_data_are_refused(tmp_path, gpt, capsys):
    held = tmp_path / "held"
    (held / "VAL").mkdir(parents=True)
    write_shard(held / "VAL" / "fineweb_000000.bin", np.arange(100, dtype=np.uint16))
    (tmp_path / "train").symlink_to(held / "VAL")  # a directory named train that is the val split
    data = tmp_path / "data"
    data.mkdir()
    (data / "fineweb_train_000000.bin").symlink_to(held / "VAL" / "fineweb_000000.bin")
    for pattern in (tmp_path / "train" / "*.bin", data / "fineweb_train_*.bin"):
        assert is_validation_path(next(iter(sorted(pattern.parent.glob(pattern.name)))))
        with pytest.raises(InputError, match="validation data may never be used"):
            training_files(pattern)
        code, _, err = run(pack_cli, capsys, gpt, "--budget", "10MB", "-o", tmp_path / "a.pgpk", "--quiet",
                           "--calibrate", pattern, "--stats-out", tmp_path / "s.json")
        assert code == 2 and not (tmp_path / "a.pgpk").exists() and not (tmp_path / "s.json").exists()
        one_error_line(err, "validation")


def test_train_data_refuses_held_out_names(tmp_path):  # no 'val' in a test's name: it names tmp_path
    from train.data import ShardError, train_shards

    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(10, dtype=np.uint16))
    assert train_shards(tmp_path) == [tmp_path / "fineweb_train_000000.bin"]
    (tmp_path / "fineweb_train_VAL_000001.bin").symlink_to(tmp_path / "fineweb_train_000000.bin")
    with pytest.raises(ShardError, match="validation data"):
        train_shards(tmp_path)


# --- item 11: leftovers, nothing written, exact budgets -----------------------------------------------

def test_sigkill_leftover_is_named_and_cleaned(tmp_path):
    """A writer killed between writing and renaming leaves `.NAME.pgolf-tmp-PID-*`; the next write
    into that directory removes it (its PID is dead), and a live writer's temporary is kept."""
    target = tmp_path / "a.pgpk"
    script = textwrap.dedent(f"""
        import os, sys, time
        from pgolf_pack import files
        def hang(fd):
            print("written", flush=True)
            time.sleep(60)
        files.os.fsync = hang
        files.write_atomic({str(target)!r}, b"x" * 100_000)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "written"
        left = [p for p in tmp_path.iterdir() if TMP_MARK in p.name]
        assert len(left) == 1 and left[0].name.startswith(f".a.pgpk{TMP_MARK}{child.pid}-")
        assert remove_stale_temporaries(tmp_path) == []  # the writer still runs: kept
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert left[0].stat().st_size == 100_000 and not target.exists()
    write_atomic(tmp_path / "other.bin", b"y")
    assert sorted(os.listdir(tmp_path)) == ["other.bin"]


def test_stats_out_is_not_written_when_the_budget_fails(gpt, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_shard(data / "fineweb_train_000000.bin", np.arange(300, dtype=np.uint16) % 64)
    code, _, err = run(pack_cli, capsys, gpt, "--budget", "100", "-o", tmp_path / "a.pgpk", "--quiet",
                       "--calibrate", data / "fineweb_train_*.bin", "--calibration-tokens", "64",
                       "--calibration-seq-len", "16", "--device", "cpu", "--stats-out", tmp_path / "s.safetensors",
                       "--plan-out", tmp_path / "p.json")
    assert code == 2
    one_error_line(err, "cannot be met")
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_smallest_artifact_in_the_budget_error_is_exact(ckpt):
    sd = torch.load(ckpt)
    tensors = evaluate_tensors(sd, threads=1)
    smallest = smallest_artifact(tensors)
    specs = {t.name: min(t.candidates, key=lambda c: (c.bytes, c.record_bytes)).spec for t in tensors}
    real = len(encode_artifact([encode_with(n, sd[n], specs[n])[0] for n in sd]))
    assert smallest == real
    with pytest.raises(BudgetError, match=f"smallest artifact these schemes allow is {real:,} bytes"):
        plan_from(tensors, real - 1)
    assert plan_from(tensors, real).specs == specs  # and exactly that budget is met


def test_argparse_types_reject_at_parse_time():
    from pgolf_pack.cli.common import byte_count, finite_float, positive_int

    for fn, bad in ((byte_count, "inf"), (positive_int, "-5"), (positive_int, "0"), (finite_float, "nan")):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(bad)
    assert positive_int("8_192") == 8192 and finite_float("-0.01") == -0.01


@pytest.mark.parametrize("content", [None, "dir", "{", '{"format": "pgolf-plan/1", "specs": {"a.weight": 5}}',
                                     '{"format": "pgolf-plan/1", "specs": {}, "budget": "x"}',
                                     '{"format": "pgolf-plan/1", "specs": {}, "tensors": 5}'])
def test_bad_plan_in_is_one_line(ckpt, tmp_path, capsys, content):
    plan = tmp_path / "plan.json"
    if content == "dir":
        plan.mkdir()
    elif content is not None:
        plan.write_text(content)
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", tmp_path / "a.pgpk", "--plan-in", plan)
    assert code == 2 and not (tmp_path / "a.pgpk").exists()
    one_error_line(err, "plan")


def test_write_shard_leaves_no_temporary(tmp_path):
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(10, dtype=np.uint16))
    assert os.listdir(tmp_path) == ["fineweb_train_000000.bin"]


def test_analyze_escapes_hostile_names_in_the_summary_and_report(ckpt, tmp_path, capsys):
    evil = "\x1b]0;owned\x07\x1b[2J"
    path = tmp_path / "evil.pt"
    torch.save({evil: torch.randn(64, 64), "ok": torch.randn(64, 64)}, path)
    for source, out in ((path, tmp_path / "evil"), (ckpt, tmp_path / "plain")):
        code, stdout, err = run(analyze_cli, capsys, source, "--out", out, "--no-plots", "--quiet", "--sample", "1000",
                                "--small-numel", "10")
        assert code == 0, err
        md = (out / "report.md").read_text()
        assert "\x1b" not in stdout + md and "\x07" not in md
        assert ("\\x1b]0;owned\\x07" in md) == (source == path)
        if source == ckpt:  # ordinary reports are unchanged by the escaping
            assert "\\x" not in md and "\\u" not in md
        assert json.loads((out / "report.json").read_text())["tensors"]


def test_verify_a_nan_score_fails_the_threshold_and_writes_strict_json(monkeypatch, capsys):
    """A model that diverges (NaN loss) must not pass --max-delta, and the JSON stays strict."""
    from pgolf_pack.bpb import BpbResult
    from pgolf_pack.verify import VerifyResult

    nan = float("nan")
    result = VerifyResult(BpbResult(3.0, 1.2, 100, 400), BpbResult(nan, nan, 100, 400), 16, None, 1234)
    monkeypatch.setattr(verify_cli, "verify", lambda *a, **k: result)
    code = verify_cli.main(["a", "--checkpoint", "c", "--val", "v", "--tokenizer", "t", "--max-delta", "0.5", "--json"])
    out = capsys.readouterr().out
    assert code == 3
    doc = json.loads(out)
    assert doc["passed"] is False and doc["delta_bpb"] is None and "NaN" not in out


def test_only_this_hosts_dead_writers_temporaries_are_removed(tmp_path):
    dead = 2**22 + 12345  # above Linux's pid_max default range for most systems
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
        except PermissionError:
            dead += 1
    ours, other = files_mod._HOST, "000000" if files_mod._HOST != "000000" else "111111"
    mine = tmp_path / f".a.bin{TMP_MARK}{dead}-{ours}-ab12"
    theirs = tmp_path / f".a.bin{TMP_MARK}{dead}-{other}-ab12"
    unrelated = tmp_path / ".a.bin.tmp"
    for p in (mine, theirs, unrelated):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [mine]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([theirs.name, unrelated.name])


def test_outputs_that_are_not_regular_files_are_refused(ckpt, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(pack_cli, capsys, ckpt, "--budget", "1MB", "-o", fifo)
    assert code == 2 and fifo.is_fifo()
    one_error_line(err, "not a regular file")
    with pytest.raises(InputError, match="not a regular file"):
        write_atomic(fifo, b"x")
    assert fifo.is_fifo() and sorted(os.listdir(tmp_path)) == ["pipe"]
