"""Text to challenge-format data: documents, a tokenizer, and train/val shards.

`prepare_data` turns texts (the default corpus, or your files) into what the trainer and the
challenge's own scripts read:

    OUT/fineweb_train_000000.bin ...   training documents, [BOS] + tokens each, no EOS
    OUT/fineweb_val_000000.bin ...     validation documents, same layout
    OUT/tokenizer.model, tokenizer.vocab
    OUT/prepare.json                   what was done: counts, vocabulary size, seed

Documents are shuffled with a fixed seed and the first `val_docs` become the validation split,
as the challenge takes the first 50,000 documents of its shuffled FineWeb sample. The split is
by document, so no text is in both. The tokenizer is trained on training documents only.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pgolf_pack.errors import InputError
from pgolf_train.corpus import default_texts, split_documents
from pgolf_train.data import write_split
from pgolf_train.tokenizer import encode_documents, train_tokenizer

TOKENIZER_FILE = "tokenizer.model"
MANIFEST_FILE = "prepare.json"


@dataclass(frozen=True)
class Prepared:
    """What `prepare_data` wrote."""

    out_dir: str
    tokenizer: str
    vocab_size: int
    works: int
    train_docs: int
    val_docs: int
    train_tokens: int
    val_tokens: int
    train_shards: int
    val_shards: int
    seed: int


def _paragraphs(doc: str) -> list[str]:
    return [p for p in doc.split("\n\n") if p.strip()]


def prepare_data(out_dir: str | os.PathLike, vocab_size: int = 1024, val_docs: int | None = None,
                 texts: Sequence[tuple[str, str]] | None = None, doc_chars: int = 4000, seed: int = 1337,
                 shard_tokens: int = 10**8, force: bool = False,
                 log: Callable[[str], None] = print) -> Prepared:
    """Write shards and a tokenizer for `texts` (name, text) or, if None, the default corpus.

    Args:
        out_dir: where the files go (created if needed).
        vocab_size: requested tokenizer size (the result may be smaller on a small corpus).
        val_docs: documents in the validation split; None takes 10% of them.
        texts: (name, text) pairs; None fetches the default corpus (corpus.py).
        doc_chars: maximum characters per document.
        seed: the document shuffle's seed.
        shard_tokens: tokens per shard file (the challenge uses 10**8).
        force: replace existing fineweb_*.bin shards in out_dir instead of refusing.
        log: where progress lines go.

    Raises:
        InputError: out_dir already has shards (without force), or the split leaves a side empty.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stale = sorted(out.glob("fineweb_train_*.bin")) + sorted(out.glob("fineweb_val_*.bin"))
    if stale and not force:
        raise InputError(f"{out} already holds {len(stale)} shard files; pass --force to replace them")
    for p in stale:
        p.unlink()
    if texts is None:
        texts = default_texts()
    docs = [d for _, text in texts for d in split_documents(text, doc_chars)]
    random.Random(seed).shuffle(docs)
    n_val = max(1, len(docs) // 10) if val_docs is None else val_docs
    if not 1 <= n_val < len(docs):
        raise InputError(f"cannot put {n_val} of {len(docs)} documents in the validation split; "
                         "both splits need at least one (change --val-docs or add text)")
    val, train = docs[:n_val], docs[n_val:]
    log(f"prepare: {len(texts)} texts -> {len(docs)} documents ({len(val)} val, {len(train)} train), seed {seed}")

    model_path = out / TOKENIZER_FILE
    sp = train_tokenizer((p for d in train for p in _paragraphs(d)), vocab_size, model_path)
    got = int(sp.vocab_size())
    note = "" if got == vocab_size else f" (asked for {vocab_size}: the corpus supports no more merges)"
    log(f"tokenizer: {model_path} vocab_size:{got}{note}")

    val_paths, val_tokens = write_split(encode_documents(sp, val), out, "val", shard_tokens)
    train_paths, train_tokens = write_split(encode_documents(sp, train), out, "train", shard_tokens)
    log(f"shards: val {val_tokens} tokens in {len(val_paths)} files, train {train_tokens} tokens in {len(train_paths)} files")
    result = Prepared(str(out), str(model_path), got, len(texts), len(train), len(val), train_tokens, val_tokens,
                      len(train_paths), len(val_paths), seed)
    (out / MANIFEST_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result
