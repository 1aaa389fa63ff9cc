"""Reading artifacts: check the magic, version and CRC, parse the manifest with every bound
checked before anything is allocated, decode each tensor's frames and dequantize. Nothing here
imports the writer, so a loader can be reviewed (and shipped) on its own."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgolf_pack import rans
from pgolf_pack.artifact import format as fmt
from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.quant.scales import SCALE_EXPONENTS, decode_scales
from pgolf_pack.quant.spec import SCHEME_BY_ID, SCHEME_BY_NAME, Scheme, symbol_limit
from pgolf_pack.text import printable


@dataclass(frozen=True)
class TensorEntry:
    """A parsed record: what the tensor is, how it is stored, and where its blobs lie."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    scheme: str  # a name in pgolf_pack.quant.spec.SCHEMES
    bits: int  # int-k only
    scale_format: int  # 0 = fp16, else minifloat mantissa bits (quantized schemes)
    column_groups: int  # 0 = one table, else the symbols' tables follow this many column groups
    encoding: int  # value schemes only
    blobs: tuple[tuple[int, int], ...]  # (offset, size) in the artifact
    record_bytes: int

    @property
    def kind(self) -> Scheme:
        return SCHEME_BY_NAME[self.scheme]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def label(self) -> str:
        return f"int{self.bits}" if self.scheme == "int" else self.scheme


@dataclass(frozen=True)
class Artifact:
    """A validated artifact's layout; `tensors()` decodes it."""

    data: bytes
    entries: tuple[TensorEntry, ...]
    manifest_bytes: int

    @property
    def total_bytes(self) -> int:
        return len(self.data)

    def tensors(self, *, threads: int | None = None) -> dict[str, torch.Tensor]:
        """Every tensor, dequantized, in its original dtype and shape, in record order."""
        workers = max(1, min(len(self.entries), threads or 4))
        with ThreadPoolExecutor(workers) as pool:  # the codec releases the GIL
            values = list(pool.map(lambda e: decode_entry(self.data, e), self.entries))
        return {e.name: v for e, v in zip(self.entries, values)}


def load_artifact(path: str | Path, *, threads: int | None = None,
                  max_elements: int = fmt.DEFAULT_MAX_ELEMENTS) -> dict[str, torch.Tensor]:
    """The tensors of an artifact file: original names, shapes and dtypes, values dequantized.
    Raises InputError for a missing file, CorruptDataError for bytes that fail validation or
    hold more than `max_elements` elements in all."""
    return read_artifact(path, max_elements=max_elements).tensors(threads=threads)


def read_artifact(path: str | Path, *, max_elements: int = fmt.DEFAULT_MAX_ELEMENTS) -> Artifact:
    """An artifact file, validated and parsed (nothing decoded yet: see `Artifact.tensors`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"artifact '{path}' does not exist")
    return decode_artifact(path.read_bytes(), str(path), max_elements=max_elements)


def decode_artifact(data: bytes, where: str = "artifact", max_elements: int = fmt.DEFAULT_MAX_ELEMENTS) -> Artifact:
    """Validate and parse artifact bytes (the inverse of `encode_artifact`): magic, version,
    CRC and every manifest field, each bound checked before anything is allocated. Decoding
    (`Artifact.tensors`) then costs time and memory in proportion to the file's bytes and the
    elements it declares, at most `max_elements` in all (raise it for bigger models).
    Raises CorruptDataError naming `where` and the field."""
    if len(data) < 4 or data[:4] != fmt.MAGIC:
        raise CorruptDataError(f"{where}: not a pgolf-pack artifact (expected the magic bytes 'PGPK')")
    if len(data) < 10:
        raise CorruptDataError(f"{where}: truncated: {len(data)} bytes is shorter than the fixed fields")
    if data[4] != fmt.VERSION:
        raise CorruptDataError(f"{where}: artifact version {data[4]}; this pgolf-pack reads version {fmt.VERSION}")
    stored = int.from_bytes(data[-4:], "little")
    if rans.crc32c(data[:-4]) != stored:
        raise CorruptDataError(f"{where}: checksum mismatch: the file is corrupted or truncated")
    r = _Reader(data, 5, len(data) - 4, where)
    manifest_len = r.varint("manifest_bytes")
    if manifest_len > r.remaining():
        raise CorruptDataError(f"{where}: manifest of {manifest_len} bytes runs past the file")
    manifest_start = r.pos
    manifest_end = manifest_start + manifest_len
    m = _Reader(data, manifest_start, manifest_end, where)
    count = m.varint("count")
    if count > fmt.MAX_TENSORS:
        raise CorruptDataError(f"{where}: {count} tensors exceed the format's limit of {fmt.MAX_TENSORS}")
    entries, names, previous, total = [], set(), b"", 0
    blob_pos = manifest_end
    for i in range(count):
        start = m.pos
        shared = m.varint("name_shared")
        if shared > len(previous):
            raise CorruptDataError(f"{where}: record {i} shares {shared} name bytes; the previous name has {len(previous)}")
        suffix = m.take(m.varint("name_suffix length"), "name_suffix")
        raw_name = previous[:shared] + suffix
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptDataError(f"{where}: record {i} has a name that is not UTF-8") from None
        if not name or name in names:
            raise CorruptDataError(f"{where}: record {i} has an empty or repeated name '{printable(name)}'")
        names.add(name)
        ctx = f"{where}: tensor '{printable(name)}'"
        code = m.u8("dtype")
        if code not in fmt.CODE_DTYPES:
            raise CorruptDataError(f"{ctx}: unknown dtype code {code}")
        ndim = m.u8("ndim")
        if ndim > fmt.MAX_DIMS:
            raise CorruptDataError(f"{ctx}: {ndim} dimensions exceed 8")
        shape = tuple(m.varint("shape") for _ in range(ndim))
        if any(d > fmt.MAX_TENSOR_ELEMENTS for d in shape):
            raise CorruptDataError(f"{ctx}: a dimension of {max(shape):,} exceeds the format's limit of "
                                   f"{fmt.MAX_TENSOR_ELEMENTS:,}")
        numel = math.prod(shape)
        if numel > fmt.MAX_TENSOR_ELEMENTS:
            raise CorruptDataError(f"{ctx}: {numel:,} elements exceed the format's limit of "
                                   f"{fmt.MAX_TENSOR_ELEMENTS:,} per tensor")
        total += numel
        if total > max_elements:
            raise CorruptDataError(f"{where}: more than {max_elements:,} elements in all, the reader's limit "
                                   "(pass a larger max_elements, or --max-elements, to read it anyway)")
        scheme_id = m.u8("scheme")
        if scheme_id not in SCHEME_BY_ID:
            raise CorruptDataError(f"{ctx}: unknown scheme id {scheme_id}")
        kind = SCHEME_BY_ID[scheme_id]
        scheme = kind.name
        bits = scale_format = encoding = groups = 0
        if kind.stores_values:
            encoding = m.u8("encoding")
            if encoding not in (fmt.ENCODING_BYTES, fmt.ENCODING_RANS16):
                raise CorruptDataError(f"{ctx}: unknown passthrough encoding {encoding}")
            sizes = [m.varint("bytes")]
        else:
            if scheme == "int":
                bits = m.u8("bits")
                if not 2 <= bits <= 8:
                    raise CorruptDataError(f"{ctx}: int-k with k = {bits}, outside 2..8")
            scale_format = m.u8("scale_format")
            if scale_format > 10:
                raise CorruptDataError(f"{ctx}: scale format {scale_format}, outside 0..10")
            groups = m.u8("column_groups")
            if groups == 1 or groups > 16:
                raise CorruptDataError(f"{ctx}: {groups} column groups, expected 0 or 2..16")
            if ndim == 0:
                raise CorruptDataError(f"{ctx}: a 0-d tensor cannot be quantized")
            rows = shape[0] if ndim > 1 else 1  # one scale per row, one group id per column
            total += rows + (numel // rows if rows else 0)
            if total > max_elements:
                raise CorruptDataError(f"{where}: more than {max_elements:,} elements in all, the reader's limit "
                                       "(pass a larger max_elements, or --max-elements, to read it anyway)")
            sizes = [m.varint("symbols_bytes"), m.varint("scales_bytes")]
            if groups:
                sizes.append(m.varint("groups_bytes"))
        blobs = []
        for s in sizes:
            if s > len(data) - 4 - blob_pos:
                raise CorruptDataError(f"{ctx}: blob of {s} bytes runs past the end of the file")
            blobs.append((blob_pos, s))
            blob_pos += s
        entries.append(TensorEntry(name, fmt.CODE_DTYPES[code], shape, scheme, bits, scale_format, groups, encoding,
                                   tuple(blobs), m.pos - start))
        previous = raw_name
    if m.pos != manifest_end:
        raise CorruptDataError(f"{where}: {manifest_end - m.pos} bytes follow the last manifest record")
    if blob_pos != len(data) - 4:
        raise CorruptDataError(f"{where}: {len(data) - 4 - blob_pos} bytes follow the last blob")
    return Artifact(data, tuple(entries), manifest_end - 5)


def decode_entry(data: bytes, e: TensorEntry) -> torch.Tensor:
    """One tensor's values in its original dtype (see FORMAT.md section 4)."""
    ctx = f"tensor '{printable(e.name)}'"
    view = memoryview(data)
    if e.kind.stores_values:
        if e.kind.float_only and not e.dtype.is_floating_point:
            raise CorruptDataError(f"{ctx}: a {e.dtype} tensor cannot be stored as {e.scheme}")
        stored = e.kind.value_dtype or e.dtype
        item = stored_item_size(e)
        off, size = e.blobs[0]
        raw = _value_bytes(view[off : off + size], e, item, ctx)
        arr = np.frombuffer(raw, dtype=f"<{'u' if item == 1 else 'i'}{item}").astype(
            f"={'u' if item == 1 else 'i'}{item}")
        if stored == torch.bool and arr.size and int(arr.max()) > 1:
            raise CorruptDataError(f"{ctx}: a bool value is stored as a byte above 1")
        values = torch.from_numpy(arr.copy()).view(stored).reshape(e.shape)
        return values.to(e.dtype)
    if not e.dtype.is_floating_point:
        raise CorruptDataError(f"{ctx}: a {e.dtype} tensor cannot be stored quantized")
    rows, cols = quantized_shape(e)
    symbols = decode_symbols(view, e, rows, cols)
    qmax = symbol_limit(e.scheme, e.bits)
    if symbols.size and (int(symbols.min()) < -qmax or int(symbols.max()) > qmax):
        raise CorruptDataError(f"{ctx}: symbols outside ±{qmax} for scheme {e.label}")
    values = torch.from_numpy(symbols.astype(np.float32)) * decode_row_scales(view, e, rows)[:, None]
    return values.reshape(e.shape).to(e.dtype)


def quantized_shape(e: TensorEntry) -> tuple[int, int]:
    """(rows, cols) of a quantized tensor's symbol matrix: rows of its first dimension."""
    rows = e.shape[0] if len(e.shape) > 1 else 1
    return rows, (e.numel // rows if rows else 0)


def decode_row_scales(view: memoryview, e: TensorEntry, rows: int) -> torch.Tensor:
    """A quantized tensor's exact float32 row scales (fp16, or minifloat codes)."""
    ctx = f"tensor '{printable(e.name)}'"
    c_off, c_size = e.blobs[1]
    scale_view = view[c_off : c_off + c_size]
    if e.scale_format == 0:
        if c_size != 2 * rows:
            raise CorruptDataError(f"{ctx}: fp16 scales take {c_size} bytes, expected {2 * rows}")
        return torch.from_numpy(np.frombuffer(scale_view, dtype="<f2").astype(np.float32))
    codes = checked_frame(scale_view, ctx, "scales", (rows,))
    codes_t = torch.from_numpy(codes.astype(np.int64))
    exponent = codes_t >> e.scale_format
    if codes_t.numel() and (int(exponent.min()) < SCALE_EXPONENTS[0] or int(exponent.max()) > SCALE_EXPONENTS[1]):
        raise CorruptDataError(f"{ctx}: a scale exponent lies outside [{SCALE_EXPONENTS[0]}, {SCALE_EXPONENTS[1]}]")
    return decode_scales(codes_t, e.scale_format)


def decode_symbols(view: memoryview, e: TensorEntry, rows: int, cols: int) -> np.ndarray:
    """A quantized tensor's [rows, cols] symbols, through its column-group map when it has one."""
    ctx = f"tensor '{printable(e.name)}'"
    s_off, s_size = e.blobs[0]
    contexts = None
    if e.column_groups:
        g_off, g_size = e.blobs[2]
        ids = checked_frame(view[g_off : g_off + g_size], ctx, "column-group map", (cols,))
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= e.column_groups):
            raise CorruptDataError(f"{ctx}: column-group ids outside [0, {e.column_groups})")
        contexts = lambda: np.tile(ids.astype(np.uint16), rows)  # noqa: E731 (built after the header check)
    return checked_frame(view[s_off : s_off + s_size], ctx, "symbols", (rows, cols), contexts)


def checked_frame(blob: memoryview, ctx: str, what: str, shape: tuple[int, ...],
                  contexts: Callable[[], np.ndarray] | None = None) -> np.ndarray:
    """Decode a frame that must hold integers of exactly `shape`. The decode is limited to the
    record's count, and when the frame needs contexts (sized by the record) its header is
    checked first, so no allocation ever follows a size the frame declares but the record
    does not."""
    count = math.prod(shape)

    def agree(held) -> None:  # a FrameInfo or the decoded array
        if tuple(held.shape) != shape or held.dtype.kind not in "iu":
            raise CorruptDataError(f"holds {held.dtype}{list(held.shape)}, expected integers of shape {list(shape)}")

    try:
        context_ids = None
        if contexts is not None:
            agree(rans.frame_info(blob, max_symbols=count))
            context_ids = contexts()
        out = rans.decode(blob, contexts=context_ids, max_symbols=count)
        agree(out)
        return out
    except CorruptDataError as err:
        raise CorruptDataError(f"{ctx}: {what} frame: {err}") from None


def _value_bytes(blob: memoryview, e: TensorEntry, item: int, ctx: str) -> bytes:
    expected = e.numel * item
    if e.encoding == fmt.ENCODING_BYTES:
        if len(blob) != expected:
            raise CorruptDataError(f"{ctx}: {len(blob)} value bytes, expected {expected}")
        return bytes(blob)
    return decode_value_words(blob, e, item).astype("<u2").tobytes()


def stored_item_size(e: TensorEntry) -> int:
    """Bytes per value of a value scheme's stored dtype."""
    return torch.empty((), dtype=e.kind.value_dtype or e.dtype).element_size()


def decode_value_words(blob: memoryview, e: TensorEntry, item: int | None = None) -> np.ndarray:
    """The 16-bit words of a word-coded value blob (encoding 1), checked against the record:
    one table per word position, so a value of `item` bytes is `item / 2` words."""
    ctx = f"tensor '{printable(e.name)}'"
    item = item or stored_item_size(e)
    if item < 2:
        raise CorruptDataError(f"{ctx}: 16-bit word coding needs an item size of at least 2")
    period = item // 2
    nwords = e.numel * period
    contexts = (lambda: np.arange(nwords, dtype=np.uint16) % period) if period > 1 else None  # noqa: E731
    words = checked_frame(blob, ctx, "values", (nwords,), contexts)
    if words.dtype != np.uint16:
        raise CorruptDataError(f"{ctx}: values frame holds {words.dtype}, expected uint16")
    return words


class _Reader:
    """Bounds-checked reads of the manifest (the codec's ByteReader, in Python)."""

    def __init__(self, data: bytes, pos: int, end: int, where: str):
        self.data, self.pos, self.end, self.where = data, pos, end, where

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int, field: str) -> bytes:
        if n > self.end - self.pos:
            raise CorruptDataError(f"{self.where}: truncated: the manifest ends inside field '{field}'")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def varint(self, field: str) -> int:
        v = shift = 0
        while True:
            b = self.u8(field)
            if shift == 63 and b > 1:
                raise CorruptDataError(f"{self.where}: field '{field}' overflows 64 bits")
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                if b == 0 and shift:
                    raise CorruptDataError(f"{self.where}: field '{field}' is a non-canonical varint")
                return v
            shift += 7
