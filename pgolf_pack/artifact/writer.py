"""Writing artifacts: encode each quantized tensor into its record and blobs, then write the
file atomically (a temporary file renamed into place), so a failed or interrupted pack leaves
nothing behind. The layout is docs/FORMAT.md."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgolf_pack import _rans, rans
from pgolf_pack.artifact import format as fmt
from pgolf_pack.errors import InputError
from pgolf_pack.quant import Quantized


WORD_CODING_MAX_WIDE = 1 << 16  # elements: above this, 32/64-bit passthrough stays raw bytes


@dataclass(frozen=True)
class EncodedTensor:
    """One tensor as the artifact stores it: scheme fields and blobs (its name goes in the record)."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    scheme_id: int
    fields: bytes  # the record's scheme fields (FORMAT.md section 4), blob sizes included
    blobs: tuple[bytes, ...]
    label: str  # the spec as text, for reports
    floor_bits: float  # order-0 entropy of what the blobs code (symbols and scale codes, or words)

    @property
    def blob_bytes(self) -> int:
        return sum(len(b) for b in self.blobs)

    def record(self, previous_name: str) -> bytes:
        """The manifest record, names front-coded against the previous record's name."""
        name = self.name.encode("utf-8")
        prev = previous_name.encode("utf-8")
        shared = 0
        while shared < min(len(name), len(prev)) and name[shared] == prev[shared]:
            shared += 1
        out = bytearray(_varint(shared) + _varint(len(name) - shared) + name[shared:])
        out += bytes([fmt.DTYPE_CODES[self.dtype], len(self.shape)])
        for d in self.shape:
            out += _varint(d)
        out += bytes([self.scheme_id]) + self.fields
        return bytes(out)

    def cost(self, previous_name: str) -> int:
        """Bytes this tensor adds to an artifact: its record plus its blobs."""
        return len(self.record(previous_name)) + self.blob_bytes


def encode_tensor(name: str, q: Quantized, *, threads: int | None = None) -> EncodedTensor:
    """The record fields and blobs of one quantized (or passed-through) tensor."""
    if q.dtype not in fmt.DTYPE_CODES:
        raise InputError(f"tensor '{name}' has dtype {q.dtype}, which artifacts do not store")
    if len(q.shape) > fmt.MAX_DIMS:
        raise InputError(f"tensor '{name}' has {len(q.shape)} dimensions; artifacts store at most 8")
    if q.passthrough is not None:
        return _encode_values(name, q.shape, q.dtype, q.spec.scheme_id, q.passthrough, str(q.spec), threads)
    symbols = q.symbols.cpu().numpy()
    lo, hi = int(symbols.min()) if symbols.size else 0, int(symbols.max()) if symbols.size else 0
    symbols = symbols.astype(np.int8 if -128 <= lo and hi <= 127 else np.int16, copy=False)
    sym_frame, groups, groups_frame = code_symbols(symbols, threads)
    floor = rans.order0_entropy_bits(symbols)
    if q.scale_codes is None:
        scale_blob = q.scales.to(torch.float16).view(torch.int16).cpu().numpy().astype("<i2").tobytes()
    else:
        codes = q.scale_codes.cpu().numpy()
        scale_blob = rans.encode(codes.astype(np.int16 if np.abs(codes).max(initial=0) < 32768 else np.int32))
        floor += rans.order0_entropy_bits(codes)
    fields = bytearray()
    if q.spec.scheme == "int":
        fields.append(q.spec.bits)
    fields += bytes([q.spec.scale_bits, groups]) + _varint(len(sym_frame)) + _varint(len(scale_blob))
    blobs = (sym_frame, scale_blob)
    if groups:
        fields += _varint(len(groups_frame))
        blobs += (groups_frame,)
    return EncodedTensor(name, q.shape, q.dtype, q.spec.scheme_id, bytes(fields), blobs, str(q.spec), floor)


COLUMN_GROUPS = (2, 4, 8)  # the column-context splits tried per tensor (FORMAT.md section 4)


def column_groups(symbols: np.ndarray, groups: int) -> np.ndarray:
    """Columns split into `groups` equal-sized groups by their mean |symbol|, weakest first."""
    cols = symbols.shape[1]
    strength = np.abs(symbols.astype(np.int64)).sum(axis=0)  # integer sums: deterministic
    order = np.argsort(strength, kind="stable")
    out = np.empty(cols, dtype=np.uint8)
    out[order] = np.arange(cols) * groups // cols
    return out


def code_symbols(symbols: np.ndarray, threads: int | None = None) -> tuple[bytes, int, bytes]:
    """(symbols frame, column groups G, group-map frame): the smallest of one table for the
    whole tensor, or one table per group of columns (input features often differ in spread,
    e.g. an MLP's down projection, where this saves 2-4%). G = 0 means one table.

    The split is picked by the order-0 cost of each grouping (one histogram pass) and only the
    most promising one is encoded for real: the planner codes every candidate of every tensor."""
    best = (rans.encode(symbols, threads=threads), 0, b"")
    rows, cols = symbols.shape
    if rows < 2 or cols < 16 or symbols.size < 4096:
        return best
    g, ids = _most_promising_groups(symbols)
    if g:
        frame = rans.encode(symbols, contexts=np.tile(ids.astype(np.uint16), rows), threads=threads)
        ids_frame = rans.encode(ids)
        if len(frame) + len(ids_frame) < len(best[0]):
            best = (frame, g, ids_frame)
    return best


TABLE_BYTES_ESTIMATE = 32  # a group's frequency table, roughly (FORMAT.md: Rice-coded frequencies)


def _most_promising_groups(symbols: np.ndarray) -> tuple[int, np.ndarray]:
    """(G, column -> group map) of the column split with the smallest estimated size, or (0, ...)
    when none beats one table; estimates are order-0 entropies plus table and map bytes.

    One histogram pass over the finest split (8 groups) gives the coarser ones too: with groups
    rank * G // cols, a 4-group id is the 8-group id // 2."""
    rows, cols = symbols.shape
    finest = max(COLUMN_GROUPS)
    strength = np.abs(symbols.astype(np.int32)).sum(axis=0, dtype=np.int64)
    # Skip the histogram when the columns barely differ: the order-0 saving of a split is about
    # n/2 * Var(log2 spread) bits; a margin of 4x covers non-Gaussian shapes.
    spread = np.log2(np.maximum(strength, 1) / rows)
    if 2 * symbols.size * float(spread.var()) / 8 < TABLE_BYTES_ESTIMATE + cols / 8:
        return 0, np.zeros(cols, dtype=np.uint8)
    order = np.argsort(strength, kind="stable")
    fine_ids = np.empty(cols, dtype=np.uint16)
    fine_ids[order] = np.arange(cols) * finest // cols
    _, hists = _rans.histogram(np.ascontiguousarray(symbols.T), contexts=fine_ids, context_run=rows,
                               num_tables=finest)
    fine = np.stack(hists).astype(np.float64)  # (8, alphabet)

    def bits(counts: np.ndarray) -> float:
        n = counts.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(-np.nansum(counts * np.log2(counts / n)))

    best_g, best_ids, best_bytes = 0, np.zeros(cols, dtype=np.uint8), bits(fine.sum(axis=0)) / 8
    for g in COLUMN_GROUPS:
        merge = finest // g
        size = bits(fine.reshape(g, merge, -1).sum(axis=1)) / 8 + (g - 1) * TABLE_BYTES_ESTIMATE + cols * np.log2(g) / 8
        if size < best_bytes:
            best_g, best_ids, best_bytes = g, (fine_ids // merge).astype(np.uint8), size
    return best_g, best_ids


def encode_raw(name: str, tensor: torch.Tensor, *, threads: int | None = None) -> EncodedTensor:
    """A tensor kept exactly in its own dtype (the `raw` scheme; used for non-float tensors)."""
    return _encode_values(name, tuple(tensor.shape), tensor.dtype, fmt.RAW, tensor, "raw", threads)


def _encode_values(name, shape, dtype, scheme_id, values: torch.Tensor, label: str, threads) -> EncodedTensor:
    """Passthrough/raw values: their bytes, or a rANS frame of their 16-bit words if smaller."""
    t = values.detach().cpu().contiguous()
    size = t.element_size()
    raw = t.view(fmt.BIT_VIEWS[size]).numpy().astype(f"<{'u' if size == 1 else 'i'}{size}").tobytes() if t.numel() else b""
    encoding, blob, floor = fmt.ENCODING_BYTES, raw, 8.0 * len(raw)
    # Word coding pays for 16-bit floats (skewed exponents); for wide types only when small,
    # since their low words are noise and their tables alone run to tens of kilobytes.
    if size >= 2 and len(raw) >= 64 and (size == 2 or t.numel() <= WORD_CODING_MAX_WIDE):
        words = np.frombuffer(raw, dtype="<u2").astype(np.uint16)
        period = size // 2
        ctx = np.arange(words.size, dtype=np.uint16) % period if period > 1 else None
        frame = rans.encode(words, contexts=ctx, precision=16, threads=threads)
        if len(frame) < len(raw):
            encoding, blob = fmt.ENCODING_RANS16, frame
            floor = sum(rans.order0_entropy_bits(words[i::period]) for i in range(period))
    fields = bytes([encoding]) + _varint(len(blob))
    return EncodedTensor(name, shape, dtype, scheme_id, fields, (blob,), label, floor)


def artifact_bytes(tensors: list[EncodedTensor]) -> bytes:
    """The whole artifact (FORMAT.md section 1) for tensors in this order."""
    if len(tensors) > fmt.MAX_TENSORS:
        raise InputError(f"{len(tensors)} tensors exceed the format's limit of {fmt.MAX_TENSORS}")
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InputError("tensor names must be unique")
    manifest = bytearray(_varint(len(tensors)))
    previous = ""
    for t in tensors:
        manifest += t.record(previous)
        previous = t.name
    out = bytearray(fmt.MAGIC) + bytes([fmt.VERSION]) + _varint(len(manifest)) + manifest
    for t in tensors:
        for b in t.blobs:
            out += b
    out += _rans.crc32c(bytes(out)).to_bytes(4, "little")
    return bytes(out)


def overhead_bound(count: int) -> int:
    """An upper bound on an artifact's bytes outside its records and blobs (magic, version,
    manifest length for manifests under 256 MiB, record count, CRC)."""
    return len(fmt.MAGIC) + 1 + 4 + len(_varint(count)) + 4


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"output directory '{directory}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)
