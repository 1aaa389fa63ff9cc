"""The submission flow end to end on CPU: a tiny baseline-shaped model trained a few steps, packed
in-script to fit the budget minus its own counted code (the one-line loader included), reloaded
in a fresh interpreter where pgolf_pack cannot be imported, and scored; the three logged sizes
add up, the tensors equal load_artifact's bit for bit, and val_bpb equals pgolf_pack.bpb's."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from pgolf_pack.artifact import load_artifact
from pgolf_pack.bpb import build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.loader import compact_loader

HERE = Path(__file__).resolve().parent
BUDGET = 40_000


def test_train_pack_reload_and_score(train_data, tmp_path):
    script = tmp_path / "train_gpt.py"
    source = (HERE / "submission_gpt.py").read_text()
    assert source.count("# PGPK-LOADER\n") == 1
    script.write_bytes(source.replace("# PGPK-LOADER\n", "").encode().replace(
        b"import torch.nn.functional", compact_loader() + b"import torch.nn.functional", 1))
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    r = subprocess.run([sys.executable, str(script), "train", str(train_data), str(tmp_path), str(BUDGET)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    serialized = int(re.search(r"Serialized model pgpk: (\d+) bytes", r.stdout)[1])
    code = int(re.search(r"Code size: (\d+) bytes", r.stdout)[1])
    total = int(re.search(r"Total submission size pgpk: (\d+) bytes", r.stdout)[1])
    artifact = tmp_path / "final_model.pgpk"
    assert serialized == artifact.stat().st_size and code == script.stat().st_size
    assert total == serialized + code <= BUDGET

    # the evaluation side: isolated interpreter, no PYTHONPATH, pgolf_pack blocked by the script
    r = subprocess.run([sys.executable, "-I", str(script), "eval", str(train_data), str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    reloaded = torch.load(tmp_path / "reloaded.pt")
    expected = load_artifact(artifact)
    assert list(reloaded) == list(expected)
    for name, t in expected.items():
        assert reloaded[name].dtype == t.dtype and torch.equal(reloaded[name], t), name
    bpb = float(re.search(r"final_pgpk_roundtrip val_loss:[\d.]+ val_bpb:([\d.e+-]+)", r.stdout)[1])

    # pgolf-verify's scorer on the same tokens, with the submission's own model class
    spec = importlib.util.spec_from_file_location("submission_gpt", HERE / "submission_gpt.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.GPT()
    model.load_state_dict(expected)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tokens = load_val_tokens(str(train_data / "fineweb_val_*.bin"), mod.SEQ_LEN, max_tokens=mod.VAL_TOKENS)
        ref = evaluate(model.eval().forward_logits, tokens, build_byte_tables(train_data / "tokenizer.model", mod.VOCAB),
                       seq_len=mod.SEQ_LEN, batch_size=32)
    finally:
        torch.set_num_threads(threads)
    assert bpb == ref.val_bpb
