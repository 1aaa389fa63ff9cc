"""How the writer codes a tensor's streams: the choices a reader never needs to know.

The format (docs/FORMAT.md) allows one table per tensor or one per group of columns, and
values as bytes or as rANS-coded 16-bit words; this module picks, per tensor, whichever is
smaller, and gives the order-0 floor of what it coded. The reader only follows the record.
"""

from __future__ import annotations

import numpy as np

from pgolf_pack import rans

COLUMN_GROUPS = (2, 4, 8)  # the column-context splits tried per tensor (FORMAT.md section 4)
TABLE_BYTES_ESTIMATE = 32  # a group's frequency table, roughly (FORMAT.md: Rice-coded frequencies)
WORD_CODING_MAX_WIDE = 1 << 16  # elements: above this, 32/64-bit values stay raw bytes


def narrow_symbols(symbols: np.ndarray) -> np.ndarray:
    """Symbols in the narrowest of int8/int16 that holds them (the codec's alphabet follows)."""
    lo = int(symbols.min()) if symbols.size else 0
    hi = int(symbols.max()) if symbols.size else 0
    return symbols.astype(np.int8 if -128 <= lo and hi <= 127 else np.int16, copy=False)


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
    g, ids = most_promising_groups(symbols)
    if g:
        frame = rans.encode(symbols, contexts=np.tile(ids.astype(np.uint16), rows), threads=threads)
        ids_frame = rans.encode(ids)
        if len(frame) + len(ids_frame) < len(best[0]):
            best = (frame, g, ids_frame)
    return best


def most_promising_groups(symbols: np.ndarray) -> tuple[int, np.ndarray]:
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
    fine = rans.context_histograms(np.ascontiguousarray(symbols.T), fine_ids, context_run=rows,
                                   num_tables=finest)  # (8, alphabet)
    best_g, best_ids, best_bytes = 0, np.zeros(cols, dtype=np.uint8), rans.entropy_bits(fine.sum(axis=0)) / 8
    for g in COLUMN_GROUPS:
        merge = finest // g
        merged = fine.reshape(g, merge, -1).sum(axis=1)
        size = (sum(rans.entropy_bits(row) for row in merged) / 8 + (g - 1) * TABLE_BYTES_ESTIMATE
                + cols * np.log2(g) / 8)
        if size < best_bytes:
            best_g, best_ids, best_bytes = g, (fine_ids // merge).astype(np.uint8), size
    return best_g, best_ids


def code_values(raw: bytes, item_size: int, numel: int, threads: int | None = None) -> tuple[bool, bytes, float]:
    """(word coded?, blob, floor bits) for a value scheme's little-endian bytes: the bytes
    themselves, or a rANS frame of their 16-bit words (one table per word position) if smaller.

    Word coding pays for 16-bit floats (skewed exponents); for wide types only when small,
    since their low words are noise and their tables alone run to tens of kilobytes."""
    if item_size >= 2 and len(raw) >= 64 and (item_size == 2 or numel <= WORD_CODING_MAX_WIDE):
        words = np.frombuffer(raw, dtype="<u2").astype(np.uint16)
        period = item_size // 2
        ctx = np.arange(words.size, dtype=np.uint16) % period if period > 1 else None
        frame = rans.encode(words, contexts=ctx, precision=16, threads=threads)
        if len(frame) < len(raw):
            return True, frame, sum(rans.order0_entropy_bits(words[i::period]) for i in range(period))
    return False, raw, 8.0 * len(raw)
