"""rANS entropy coding of integer arrays: the codec every other module builds on.

Two calls cover most uses::

    data = rans.encode(symbols)          # any integer numpy array -> self-describing bytes
    symbols = rans.decode(data)          # the same array: dtype, shape and values

`encode` builds an order-0 frequency table from the data (or takes yours), stores it in the
frame, and codes the values with interleaved rANS (32 lanes by default, 16-bit
renormalisation). Guarantees, in constriction's spirit:

* Lossless: `decode(encode(a))` equals `a` exactly, for every integer dtype, any shape and
  any values spanning at most 65,536 consecutive integers.
* Near the floor: the payload exceeds the data's cost under the stored table by a few bytes
  per lane and chunk plus the rANS step's own rounding (see docs/CODER.md).
* Strict: `decode` checks the CRC32C, every header field, every table, the chunk directory,
  every state and the end of every stream. Truncated, corrupted or hostile bytes raise
  `CorruptDataError` (a `ValueError`); they never crash, read out of bounds or allocate more
  than `max_symbols` outputs.
* Deterministic: the same input and options give byte-identical frames.

Several tables in one frame: pass `contexts`, one table id per run of `context_run` symbols
(e.g. one id per row of a weight matrix). The frame stores one table per id; `decode` needs
the same context array back, since contexts are side information the caller keeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pgolf_pack import _rans
from pgolf_pack.errors import InputError

__all__ = [
    "FrameInfo",
    "FrameTables",
    "FrequencyTable",
    "choose_precision",
    "context_histograms",
    "crc32c",
    "decode",
    "encode",
    "entropy_bits",
    "frame_info",
    "kernels",
    "order0_entropy_bits",
]

MAX_ALPHABET = 65536
DEFAULT_MAX_SYMBOLS = 1 << 28


@dataclass(frozen=True)
class FrequencyTable:
    """A static rANS table: integer frequencies over values [offset, offset + len(frequencies)).

    Frequencies sum to exactly 2**precision and every symbol that occurs has frequency >= 1
    (or to 0: an empty table, which a frame keeps for a context id that codes nothing).
    Build one with `from_counts` / `from_symbols` (optimal normalisation: the integer
    frequencies that minimise the coded size of those counts) or give frequencies directly.
    """

    frequencies: np.ndarray
    precision: int
    offset: int = 0

    def __post_init__(self) -> None:
        freqs = np.ascontiguousarray(self.frequencies, dtype=np.uint32)
        freqs.setflags(write=False)
        object.__setattr__(self, "frequencies", freqs)
        if not 1 <= self.precision <= 16:
            raise InputError(f"precision must be in [1, 16], got {self.precision}")
        if not 1 <= freqs.size <= MAX_ALPHABET:
            raise InputError(f"a table covers 1 to {MAX_ALPHABET} symbols, got {freqs.size}")
        total = int(freqs.sum(dtype=np.uint64))
        if total not in (0, 1 << self.precision):  # 0: an empty table, the placeholder of an unused context
            raise InputError(f"frequencies sum to {total}, expected 2**{self.precision} = {1 << self.precision}")

    @classmethod
    def from_counts(cls, counts: np.ndarray, offset: int = 0, precision: int | None = None) -> FrequencyTable:
        """Optimally normalised table for a histogram; `counts[i]` counts value `offset + i`."""
        counts = np.ascontiguousarray(counts, dtype=np.uint64)
        if precision is None:
            precision = choose_precision([counts])
        return cls(_rans.normalize_counts(counts, precision), precision, offset)

    @classmethod
    def from_symbols(cls, symbols: np.ndarray, precision: int | None = None) -> FrequencyTable:
        """Optimally normalised table for the values in an integer array."""
        offset, (counts,) = _rans.histogram(_as_integer_array(symbols))
        return cls.from_counts(counts, offset, precision)

    @property
    def alphabet(self) -> int:
        return int(self.frequencies.size)

    def probabilities(self) -> np.ndarray:
        return self.frequencies / float(1 << self.precision)

    def cost_bits(self, counts: np.ndarray) -> float:
        """Bits to code a histogram (aligned with this table's values) under this table."""
        counts = np.ascontiguousarray(counts, dtype=np.uint64)
        if counts.shape != self.frequencies.shape:
            raise InputError(f"counts cover {counts.size} values, the table {self.alphabet}")
        return float(_rans.cost_bits(counts, self.frequencies, self.precision))

    def to_bytes(self) -> bytes:
        """The compact serialised form stored in frames (docs/CODER.md, "Table")."""
        return bytes(_rans.serialize_table(self.frequencies, self.precision))

    @property
    def serialized_size(self) -> int:
        """Bytes this table costs inside a frame: it counts against every byte budget."""
        return len(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, alphabet: int, precision: int, offset: int = 0) -> FrequencyTable:
        """Parse `to_bytes` output; raises CorruptDataError on malformed or trailing bytes."""
        return cls(_rans.parse_table(data, alphabet, precision), precision, offset)


class FrameTables(Sequence):
    """A frame's tables, each a dense FrequencyTable over the frame's alphabet built when it is
    accessed: the frame keeps only each table's nonzero range, and T dense tables at once would
    cost T x K x 4 bytes for a header of a few bytes per table (issue #12)."""

    def __init__(self, runs: list[tuple[int, np.ndarray]], alphabet: int, precision: int, offset: int):
        self._runs, self._alphabet, self._precision, self._offset = runs, alphabet, precision, offset

    def __len__(self) -> int:
        return len(self._runs)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        first, run = self._runs[index]
        dense = np.zeros(self._alphabet, dtype=np.uint32)
        dense[first : first + run.size] = run
        return FrequencyTable(dense, self._precision, self._offset)

    def __iter__(self) -> Iterator[FrequencyTable]:
        return (self[i] for i in range(len(self)))

    def nonzero_range(self, index: int) -> tuple[int, np.ndarray]:
        """Table `index` as (first index, frequencies of its nonzero range), without densifying."""
        first, run = self._runs[index]
        return int(first), run


@dataclass(frozen=True)
class FrameInfo:
    """What a frame holds and where its bytes go (header, tables, payload)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int
    alphabet: int
    precision: int
    tables: FrameTables
    context_run: int
    lanes: int
    chunk_size: int
    chunks: int
    header_bytes: int
    table_bytes: int
    payload_bytes: int
    total_bytes: int


def encode(
    symbols: np.ndarray,
    *,
    contexts: np.ndarray | None = None,
    context_run: int = 1,
    tables: Sequence[FrequencyTable] | FrequencyTable | None = None,
    precision: int | None = None,
    lanes: int | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> bytes:
    """Code an integer array into a self-describing rANS frame.

    Args:
        symbols: integer array of any shape; its values may span at most 65,536 integers.
        contexts: optional table ids, one per run of `context_run` symbols (flattened C order).
            Without `tables`, one table is built per id from the symbols it covers.
        context_run: symbols per context id (e.g. the row length for per-row contexts).
        tables: explicit tables (one, or one per context id), e.g. shared across tensors.
            Every value coded with a table must have a nonzero frequency in it.
        precision: frequency precision in bits (1..16); default: chosen per frame.
        lanes: interleaved rANS states (4, 8, 16, 32, 64); default: by length.
        chunk_size: symbols per independently decodable chunk; default 4,194,304.
        threads: encoder threads; default: all cores.

    Returns:
        The frame's bytes (docs/CODER.md, "Frame").

    Raises:
        InputError: non-integer input, values too spread, or values absent from a table.
    """
    values = _as_integer_array(symbols)
    ctx = None
    if contexts is not None:
        ctx = _as_context_array(contexts)
        if context_run < 1:
            raise InputError(f"context_run must be >= 1, got {context_run}")
    freq_list = None
    table_offset = 0
    num_tables = 0
    if tables is not None:
        table_list = [tables] if isinstance(tables, FrequencyTable) else list(tables)
        if not table_list:
            raise InputError("tables is empty")
        precisions = {t.precision for t in table_list}
        if len(precisions) != 1:
            raise InputError(f"tables of one frame share a precision, got {sorted(precisions)}")
        if precision is not None and precision not in precisions:
            raise InputError(f"precision={precision} differs from the tables' {precisions.pop()}")
        precision = table_list[0].precision
        table_offset, freq_list = _align_tables(table_list)
        num_tables = len(freq_list)
        if ctx is None and num_tables != 1:
            raise InputError(f"{num_tables} tables need a contexts array to say which symbol uses which")
    return bytes(
        _rans.encode(
            values,
            contexts=ctx,
            context_run=context_run if ctx is not None else 0,
            num_tables=num_tables,
            tables=freq_list,
            precision=precision or 0,
            table_offset=table_offset,
            lanes=lanes or 0,
            chunk_size=chunk_size or 0,
            threads=_threads(threads),
        )
    )


def decode(
    data: bytes | bytearray | memoryview | np.ndarray,
    *,
    contexts: np.ndarray | None = None,
    threads: int | None = None,
    kernel: str = "auto",
    max_symbols: int = DEFAULT_MAX_SYMBOLS,
) -> np.ndarray:
    """Decode a frame made by `encode` back into the original array.

    Args:
        data: the frame's bytes.
        contexts: the context ids given to `encode`, if any.
        threads: decoder threads (chunks decode in parallel); default: all cores.
        kernel: "auto", or force "scalar", "avx2" or "avx512" (slot-table kernels) or "search"
            (per-symbol binary search, memory in proportion to the tables' bytes), for testing and
            benchmarks. "auto" uses slot tables only when they cost at most 4 entries per symbol
            plus frame byte (docs/SECURITY.md), so a crafted frame cannot buy a large decode
            table with few bytes.
        max_symbols: refuse frames that claim more output symbols than this (a memory bound
            against hostile headers).

    Raises:
        CorruptDataError: the bytes fail any check (see module docstring).
    """
    ctx = None if contexts is None else _as_context_array(contexts)
    return _rans.decode(data, contexts=ctx, threads=_threads(threads), kernel=kernel,
                        max_symbols=_max_symbols(max_symbols))


def frame_info(data: bytes | bytearray | memoryview | np.ndarray, *, max_symbols: int = DEFAULT_MAX_SYMBOLS) -> FrameInfo:
    """Validate a frame's header, tables and directory (not its payload) and describe it.
    Costs memory in proportion to the frame's bytes (docs/SECURITY.md)."""
    d = _rans.frame_info(data, max_symbols=_max_symbols(max_symbols))
    offset = _natural_offset(d["offset"], d["dtype"])
    tables = FrameTables(d["tables"], d["alphabet"], d["precision"], offset)
    return FrameInfo(
        dtype=np.dtype(d["dtype"]),
        shape=tuple(d["shape"]),
        offset=offset,
        alphabet=d["alphabet"],
        precision=d["precision"],
        tables=tables,
        context_run=d["context_run"],
        lanes=d["lanes"],
        chunk_size=d["chunk_size"],
        chunks=d["chunks"],
        header_bytes=d["header_bytes"],
        table_bytes=d["table_bytes"],
        payload_bytes=d["payload_bytes"],
        total_bytes=d["total_bytes"],
    )


def entropy_bits(counts: np.ndarray) -> float:
    """Bits to code histogram(s) under their own empirical distribution: sum c log2(n / c),
    with n taken per histogram along the last axis, summed over all of them. The one order-0
    entropy of the project (the writer's estimates, the reports' floors and `order0_entropy_bits`)."""
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.nansum(c * np.log2(c / n)))


def order0_entropy_bits(symbols: np.ndarray) -> float:
    """Empirical order-0 entropy of the values, in bits for the whole array (the Shannon floor)."""
    values = _as_integer_array(symbols)
    if values.size == 0:
        return 0.0
    _, (counts,) = _rans.histogram(values)
    return entropy_bits(counts[counts > 0])


def context_histograms(symbols: np.ndarray, contexts: np.ndarray, *, context_run: int = 1,
                       num_tables: int | None = None) -> np.ndarray:
    """[tables, alphabet] uint64 counts of the symbols under each context id (one id per run of
    `context_run` symbols), over the common alphabet the codec would use."""
    values = _as_integer_array(symbols)
    ctx = _as_context_array(contexts)
    tables = int(ctx.max()) + 1 if num_tables is None else num_tables
    _, hists = _rans.histogram(values, contexts=ctx, context_run=context_run, num_tables=tables)
    return np.stack(hists)


def choose_precision(histograms: Sequence[np.ndarray]) -> int:
    """The table precision (bits) that the encoder picks for these histograms: the smallest
    expected frame (payload under normalised tables plus the tables' bytes)."""
    return int(_rans.choose_precision([np.ascontiguousarray(h, dtype=np.uint64) for h in histograms]))


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli) of the bytes: the checksum of frames and artifacts."""
    return int(_rans.crc32c(data))


def kernels() -> list[str]:
    """Decode kernels this CPU can run, e.g. ['scalar', 'avx2', 'avx512', 'search']."""
    return list(_rans.kernels())


def _as_integer_array(symbols: np.ndarray) -> np.ndarray:
    arr = np.asarray(symbols)
    if arr.dtype.kind not in "iu":
        raise InputError(f"symbols must be an integer array, got dtype {arr.dtype}")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d arrays 0-d


def _as_context_array(contexts: np.ndarray) -> np.ndarray:
    ctx = np.asarray(contexts)
    if ctx.dtype.kind not in "iu":
        raise InputError(f"contexts must be integers, got dtype {ctx.dtype}")
    if ctx.size and (int(ctx.min()) < 0 or int(ctx.max()) >= 4096):
        raise InputError("context ids must be in [0, 4096)")
    return np.ascontiguousarray(ctx.reshape(-1), dtype=np.uint16)


def _align_tables(tables: list[FrequencyTable]) -> tuple[int, list[np.ndarray]]:
    """Place tables with different offsets on one common alphabet."""
    lo = min(t.offset for t in tables)
    hi = max(t.offset + t.alphabet for t in tables)
    if hi - lo > MAX_ALPHABET:
        raise InputError(f"tables together span {hi - lo} values, more than {MAX_ALPHABET}")
    out = []
    for t in tables:
        f = np.zeros(hi - lo, dtype=np.uint32)
        f[t.offset - lo : t.offset - lo + t.alphabet] = t.frequencies
        out.append(f)
    return lo, out


def _natural_offset(offset: int, dtype: np.dtype) -> int:
    """The frame stores the offset as a 64-bit pattern; read it back in the dtype's domain."""
    return offset + (1 << 64) if np.dtype(dtype).kind == "u" and offset < 0 else offset


def _max_symbols(limit: int) -> int:
    """The output limit as the native code takes it: an integer in [0, 2^64)."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 0 <= int(limit) < 1 << 64:
        raise InputError(f"max_symbols must be an integer in [0, 2^64), got {limit!r}")
    return int(limit)


def _threads(threads: int | None) -> int:
    if threads is None:
        return 0
    if threads < 0:
        raise InputError(f"threads must be >= 0, got {threads}")
    return threads

