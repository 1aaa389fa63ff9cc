"""Empirical entropies of integer symbol arrays: the floors coders are measured against.

Every function returns *total* bits over the array (divide by the symbol count for bits per
symbol). They are plug-in estimates: a histogram is taken as its own distribution, and the
conditional ones sum that over contexts:

    H(X)     = sum_x  c(x) log2(n / c(x))
    H(X | C) = sum_c sum_x c(c, x) log2(c(c) / c(c, x))

A plug-in estimate is what a coder with free, exact tables would pay, so it is a lower bound
on any static-table coder for those contexts, and it is biased low: by about
(K - 1) / (2 ln 2) bits per context with K symbols in use (Miller-Madow). With a few hundred
symbols per context, as in per-row contexts, that bias is a large part of the "saving";
`pgolf_pack.analysis.contexts` prices the tables to give the achievable side.

Pure numpy (the order-0 formula is `rans.entropy_bits`). Dense histograms are used while contexts x alphabet stays below
DENSE_LIMIT cells, a sort otherwise, so wide alphabets (unclamped step quantizers) work too.
"""

from __future__ import annotations

import numpy as np

from pgolf_pack.rans import entropy_bits

__all__ = [
    "DENSE_LIMIT",
    "conditional_bits",
    "counts_bits",
    "delta_symbols",
    "joint_counts",
    "order0_bits",
    "previous_joint_counts",
    "previous_symbol_contexts",
    "row_contexts",
    "row_joint_counts",
    "scale_buckets",
]

DENSE_LIMIT = 1 << 24  # histogram cells held densely (128 MiB of int64 at most)


def counts_bits(counts: np.ndarray) -> float:
    """Bits to code one histogram (any shape, taken as one) under its own empirical
    distribution; the project's single order-0 formula, `rans.entropy_bits`."""
    c = np.asarray(counts, dtype=np.float64).ravel()
    return entropy_bits(c[c > 0])


def order0_bits(symbols: np.ndarray) -> float:
    """H(X) in total bits: the order-0 Shannon floor of the array's values."""
    x = _integers(symbols).ravel()
    if x.size == 0:
        return 0.0
    return counts_bits(np.bincount(x - x.min()) if _span(x) <= DENSE_LIMIT else np.unique(x, return_counts=True)[1])


def conditional_bits(symbols: np.ndarray, contexts: np.ndarray) -> float:
    """H(X | C) in total bits, C given per symbol (same size as `symbols`, integers >= 0)."""
    x = _integers(symbols).ravel()
    c = _integers(contexts).ravel()
    if x.shape != c.shape:
        raise ValueError(f"{x.size} symbols but {c.size} contexts")
    if x.size == 0:
        return 0.0
    if int(c.min()) < 0:
        raise ValueError("contexts must be >= 0")
    k = _span(x)
    num = int(c.max()) + 1
    xd = x - x.min()
    if num * k <= DENSE_LIMIT:
        joint = np.bincount(c.astype(np.int64) * k + xd, minlength=num * k)
        per_context = joint.reshape(num, k).sum(axis=1)
    else:
        keys, joint = np.unique(c.astype(np.int64) * k + xd, return_counts=True)
        per_context = np.bincount(keys // k, weights=joint)
    # sum_c [n_c log2 n_c] - sum_{c,x} n_cx log2 n_cx
    return _xlog2x_sum(per_context) - _xlog2x_sum(joint)


def joint_counts(symbols: np.ndarray, contexts: np.ndarray, num_contexts: int) -> tuple[int, np.ndarray]:
    """(offset, counts[num_contexts, K]): counts[c, i] = how often value offset + i occurs in context c.

    Dense, so only for num_contexts x K within DENSE_LIMIT (raises ValueError beyond).
    """
    x = _integers(symbols).ravel()
    c = _integers(contexts).ravel()
    if x.shape != c.shape:
        raise ValueError(f"{x.size} symbols but {c.size} contexts")
    if x.size == 0:
        return 0, np.zeros((num_contexts, 1), dtype=np.int64)
    k = _span(x)
    if num_contexts * k > DENSE_LIMIT:
        raise ValueError(f"{num_contexts} contexts x {k} values exceed {DENSE_LIMIT} histogram cells")
    lo = int(x.min())
    joint = np.bincount(c.astype(np.int64) * k + (x - lo), minlength=num_contexts * k)
    return lo, joint.reshape(num_contexts, k)


def row_joint_counts(symbols_2d: np.ndarray) -> tuple[int, np.ndarray]:
    """(offset, counts[rows, K]): per-row histograms in one pass (as joint_counts with row
    contexts, without materialising them). Dense: rows x K must be within DENSE_LIMIT."""
    x = _integers(symbols_2d)
    if x.ndim != 2:
        raise ValueError(f"expected a [rows, cols] array, got shape {x.shape}")
    rows = x.shape[0]
    if x.size == 0:
        return 0, np.zeros((rows, 1), dtype=np.int64)
    lo, k = int(x.min()), _span(x)
    if rows * k > DENSE_LIMIT:
        raise ValueError(f"{rows} rows x {k} values exceed {DENSE_LIMIT} histogram cells")
    keys = x - lo
    keys += (np.arange(rows, dtype=np.int64) * k)[:, None]
    return lo, np.bincount(keys.ravel(), minlength=rows * k).reshape(rows, k)


def previous_joint_counts(symbols_2d: np.ndarray) -> tuple[int, np.ndarray]:
    """(offset, counts[K + 1, K]): counts[p, i] = how often value offset + i follows value
    offset + p in a row; row K counts first symbols of rows (as joint_counts with
    previous_symbol_contexts, in one pass). Dense: (K + 1) x K must be within DENSE_LIMIT."""
    x = _integers(symbols_2d)
    if x.ndim != 2:
        raise ValueError(f"expected a [rows, cols] array, got shape {x.shape}")
    if x.size == 0:
        return 0, np.zeros((1, 1), dtype=np.int64)
    lo, k = int(x.min()), _span(x)
    if (k + 1) * k > DENSE_LIMIT:
        raise ValueError(f"{k + 1} contexts x {k} values exceed {DENSE_LIMIT} histogram cells")
    xo = x - lo
    keys = np.empty_like(xo)
    keys[:, 0] = k * k + xo[:, 0]
    np.multiply(xo[:, :-1], k, out=keys[:, 1:])
    keys[:, 1:] += xo[:, 1:]
    return lo, np.bincount(keys.ravel(), minlength=(k + 1) * k).reshape(k + 1, k)


def row_contexts(shape: tuple[int, int]) -> np.ndarray:
    """Context = row index, for a [rows, cols] array flattened in C order."""
    rows, cols = shape
    return np.repeat(np.arange(rows, dtype=np.int64), cols)


def scale_buckets(scales: np.ndarray, buckets: int = 8) -> np.ndarray:
    """Per row, which of `buckets` equal-count groups its scale falls in (0 = smallest scales).

    Rows are ranked by scale (ties by row index), so a decoder that knows the scales can
    recompute the ids for free.
    """
    s = np.asarray(scales, dtype=np.float64).ravel()
    rows = s.size
    if rows == 0:
        return np.zeros(0, dtype=np.int64)
    buckets = max(1, min(buckets, rows))
    rank = np.empty(rows, dtype=np.int64)
    rank[np.argsort(s, kind="stable")] = np.arange(rows)
    return rank * buckets // rows


def previous_symbol_contexts(symbols_2d: np.ndarray) -> tuple[np.ndarray, int]:
    """(contexts, count): each symbol's context is the symbol before it in its row.

    Values are shifted to 0..K-1; the first symbol of a row gets context K ("row start"), so
    there are K + 1 contexts.
    """
    x = _integers(symbols_2d)
    if x.ndim != 2:
        raise ValueError(f"expected a [rows, cols] array, got shape {x.shape}")
    if x.size == 0:
        return np.zeros(0, dtype=np.int64), 1
    k = _span(x)
    ctx = np.empty(x.shape, dtype=np.int64)
    ctx[:, 0] = k
    ctx[:, 1:] = x[:, :-1] - x.min()
    return ctx.ravel(), k + 1


def delta_symbols(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Symbol differences current - previous (same shape), e.g. a layer minus the layer before."""
    a, b = _integers(current), _integers(previous)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a.astype(np.int64) - b.astype(np.int64)


def _integers(a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _span(x: np.ndarray) -> int:
    return int(x.max()) - int(x.min()) + 1 if x.size else 1


def _xlog2x_sum(counts: np.ndarray) -> float:
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    return float((c * np.log2(c)).sum())
