"""SentencePiece BPE tokenizers trained with the challenge's settings, and document encoding.

The settings are those of the challenge's `data/download_hf_docs_and_tokenize.py` (the
`sp_bpe_1024` tokenizer of the baseline): byte fallback, digits split, NFKC normalisation, no
dummy prefix, ids pad 0 / bos 1 / eos 2 / unk 3, and a soft vocabulary limit, so a small
corpus may give fewer pieces than asked for (`prepare` reports the size it got).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

from pgolf_pack.errors import InputError

CHALLENGE_SETTINGS: dict[str, object] = {
    "model_type": "bpe",
    "character_coverage": 0.999,
    "byte_fallback": True,
    "split_digits": True,
    "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": False,
    "pad_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "unk_id": 3,
    "hard_vocab_limit": False,
}
MIN_VOCAB = 4 + 256  # the special ids plus one fallback piece per byte


def clean_text(text: str) -> str:
    """The challenge's per-document cleaning: NULs become spaces, outer whitespace goes."""
    return text.replace("\x00", " ").strip()


def train_tokenizer(texts: Iterable[str], vocab_size: int, model_path: str | os.PathLike,
                    **overrides: object) -> spm.SentencePieceProcessor:
    """Train a BPE tokenizer on `texts` with CHALLENGE_SETTINGS; write `model_path` (.model).

    Each text is one SentencePiece "sentence" (sentences over 4192 bytes are skipped by
    SentencePiece, so pass paragraphs, not whole books). A `.vocab` file is written beside it.
    `overrides` replace settings (e.g. `num_threads=4`); the defaults are the challenge's.

    Raises:
        InputError: a vocabulary too small for byte fallback or for the text's characters, a path
            not ending in .model, or no non-empty text.
    """
    model_path = Path(model_path)
    if model_path.suffix != ".model":
        raise InputError(f"tokenizer path {model_path} must end in .model")
    if vocab_size < MIN_VOCAB:
        raise InputError(f"vocab_size {vocab_size} is below {MIN_VOCAB} (4 special ids + 256 byte pieces)")
    cleaned = [t for t in (clean_text(t) for t in texts) if t]
    if not cleaned:
        raise InputError("no non-empty text to train the tokenizer on")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    settings = {**CHALLENGE_SETTINGS, "minloglevel": 2, **overrides}
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(cleaned), model_prefix=str(model_path.with_suffix("")),
                                       vocab_size=vocab_size, **settings)
    except RuntimeError as e:  # e.g. "... Vocabulary size is smaller than required_chars. 320 vs 339. ..."
        reason = str(e).splitlines()[0].rsplit("] ", 1)[-1]
        raise InputError(f"SentencePiece cannot train a {vocab_size}-piece tokenizer on this text: {reason}") from None
    return load_tokenizer(model_path)


def load_tokenizer(path: str | os.PathLike) -> spm.SentencePieceProcessor:
    """Load a SentencePiece model. Raises InputError naming the path if it is not one."""
    path = Path(path)
    if path.suffix != ".model":
        raise InputError(f"TOKENIZER_PATH {path} must be a SentencePiece .model file")
    if not path.is_file():
        raise InputError(f"no tokenizer at {path}; set TOKENIZER_PATH (or run `pgolf-train prepare`)")
    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as e:
        raise InputError(f"{path} is not a SentencePiece model: {str(e).splitlines()[0]}") from None


def encode_documents(sp: spm.SentencePieceProcessor, texts: Iterable[str], batch: int = 256) -> Iterator[list[int]]:
    """Each document as [BOS] + its token ids, no EOS (the challenge's export)."""
    bos = sp.bos_id()
    pending: list[str] = []

    def flush() -> Iterator[list[int]]:
        for ids in sp.encode(pending, out_type=int):
            yield [bos, *ids]

    for text in texts:
        pending.append(clean_text(text))
        if len(pending) == batch:
            yield from flush()
            pending = []
    if pending:
        yield from flush()
