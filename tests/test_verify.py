"""pgolf-verify: both models scored on the same tokens with the challenge's accounting, the
artifact's bpb reproduced by loading it back, clear refusals, and exit code 3 on --max-delta."""

import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

from pgolf_pack.artifact import load_artifact
from pgolf_pack.files import write_atomic
from pgolf_pack.bpb import build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.cli import verify as verify_cli
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.shards import write_shard
from pgolf_pack.verify import verify

REPO = Path(__file__).resolve().parent.parent
TOKENIZER = REPO.parent / "shared" / "tokenizers" / "fineweb_1024_bpe.model"
MODEL = "verify_models:bigram"
TEXT = ("The quick brown fox jumps over the lazy dog. " * 3 + "Compression is prediction; prediction is "
        "compression. Parameter golf rewards both. ") * 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not TOKENIZER.is_file():
        pytest.skip(f"challenge tokenizer {TOKENIZER} absent (CI expects ../shared/tokenizers beside the clone)")
    d = tmp_path_factory.mktemp("verify")
    sp = spm.SentencePieceProcessor(model_file=str(TOKENIZER))
    docs = [TEXT[i : i + 700] for i in range(0, len(TEXT), 700)]
    tokens = np.concatenate([[1] + sp.encode(doc) for doc in docs]).astype(np.uint16)
    write_shard(d / "fineweb_val_000000.bin", tokens)
    write_shard(d / "fineweb_train_000000.bin", tokens)
    # a bigram model fitted to the text, so its bpb means something
    counts = torch.ones(1024, 1024)
    t = torch.from_numpy(tokens.astype(np.int64))
    counts.index_put_((t[:-1], t[1:]), torch.ones(len(t) - 1), accumulate=True)
    sd = {"table.weight": counts.log().float()}
    torch.save(sd, d / "model.pt")
    r = pack_checkpoint(sd, 400_000)
    write_atomic(d / "model.pgpk", r.data)
    return d


def test_verify_scores_both_and_reproduces_the_artifact(setup):
    d = setup
    r = verify(d / "model.pgpk", d / "model.pt", str(d / "fineweb_val_*.bin"), TOKENIZER, seq_len=128, model=MODEL)
    assert r.checkpoint.tokens == r.artifact.tokens and r.checkpoint.bytes == r.artifact.bytes
    assert 0 < r.checkpoint.val_bpb < 10 and r.delta_bpb == r.artifact.val_bpb - r.checkpoint.val_bpb
    # loading the artifact back and scoring it directly gives the same number
    from verify_models import bigram

    model = bigram(load_artifact(d / "model.pgpk")).eval()
    tokens = load_val_tokens(str(d / "fineweb_val_*.bin"), 128)
    direct = evaluate(model.forward_logits, tokens, build_byte_tables(TOKENIZER, vocab_size=1024), seq_len=128)
    assert direct.val_bpb == r.artifact.val_bpb
    sliding = verify(d / "model.pgpk", d / "model.pt", str(d / "fineweb_val_*.bin"), TOKENIZER, seq_len=128,
                     stride=32, model=MODEL)
    assert sliding.checkpoint.tokens == r.checkpoint.tokens  # every token scored once either way


def test_cli_json_and_max_delta(setup, capsys):
    d = setup
    args = [str(d / "model.pgpk"), "--checkpoint", str(d / "model.pt"), "--val", str(d / "fineweb_val_*.bin"),
            "--tokenizer", str(TOKENIZER), "--seq-len", "128", "--model", MODEL]
    assert verify_cli.main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"bpb_checkpoint", "bpb_artifact", "delta_bpb", "tokens", "bytes"} <= set(out)
    assert verify_cli.main(args + ["--max-delta", "-1"]) == 3
    assert "exceeds --max-delta" in capsys.readouterr().err
    assert verify_cli.main(args + ["--max-tokens", "300"]) == 0
    text = capsys.readouterr().out
    assert "val_bpb" in text and "delta" in text


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda a, d: a.__setitem__(a.index("--val") + 1, str(d / "fineweb_train_*.bin")), "_train_"),
        (lambda a, d: a.__setitem__(a.index("--val") + 1, str(d / "nothing_*.bin")), "no file matches"),
        (lambda a, d: a.__setitem__(a.index("--model") + 1, "verify_models:nope"), "is not a function"),
        (lambda a, d: a.__setitem__(a.index("--model") + 1, "no_such_module:f"), "cannot import"),
        (lambda a, d: a.__setitem__(0, str(d / "missing.pgpk")), "does not exist"),
    ],
)
def test_refusals_are_one_line_errors(setup, capsys, change, message):
    d = setup
    args = [str(d / "model.pgpk"), "--checkpoint", str(d / "model.pt"), "--val", str(d / "fineweb_val_*.bin"),
            "--tokenizer", str(TOKENIZER), "--seq-len", "128", "--model", MODEL]
    change(args, d)
    assert verify_cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_vocab_mismatch_and_foreign_artifact_are_refused(setup, tmp_path):
    d = setup
    small = {"table.weight": torch.zeros(1000, 1000)}
    torch.save(small, tmp_path / "small.pt")
    write_atomic(tmp_path / "small.pgpk", pack_checkpoint(small, 10_000_000).data)
    with pytest.raises(Exception, match="vocab"):
        verify(tmp_path / "small.pgpk", tmp_path / "small.pt", str(d / "fineweb_val_*.bin"), TOKENIZER, seq_len=128,
               model=MODEL)
    with pytest.raises(Exception, match="does not hold this checkpoint's tensors|is \\(1024, 1024\\) in the checkpoint"):
        verify(tmp_path / "small.pgpk", d / "model.pt", str(d / "fineweb_val_*.bin"), TOKENIZER, seq_len=128,
               model=MODEL)
