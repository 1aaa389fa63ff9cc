"""What general-purpose compressors make of quantized symbols stored one per byte.

Competitors store int-k symbols in int8 containers (`torch.save` of int8 tensors) and run
zstd-22, lzma-9 or brotli-11 over the whole model as one stream. This measures those three on
the same symbols, without the pickle framing. Symbols that do not fit int8 (wide step
quantizers) are stored as little-endian int16, and the report says so.

brotli-11 runs at about 0.4-1.3 MB/s, so by default a scheme is measured on one model-level
stream: from every tensor, evenly spaced whole rows, its share (by size) of `sample` symbols,
concatenated in file order; the compressed size is scaled by total / sampled symbols. Small
per-tensor samples would overstate the generic sizes (each compressor needs tens of thousands
of symbols to learn a distribution: +1-2% at 16-64K symbols, +4-15% for lzma on pentanary),
which is the size of the effect being measured, so per-tensor numbers are only given when every
symbol is compressed (`--full`).
"""

from __future__ import annotations

import lzma
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import brotli
import numpy as np
import zstandard

COMPRESSORS = ("zstd22", "lzma9", "brotli11")


def compress(name: str, data: bytes) -> int:
    """Compressed size of `data` under one of COMPRESSORS."""
    if name == "zstd22":
        return len(zstandard.ZstdCompressor(level=22).compress(data))
    if name == "lzma9":
        # preset 9 with the dictionary cut to the input: identical output to lzma.compress(data,
        # preset=9) (no match can reach further back than the input), without allocating
        # 64 MiB of match-finder tables per call (~35 ms each).
        dict_size = max(4096, 1 << max(0, len(data) - 1).bit_length())
        if dict_size >= 1 << 26:
            return len(lzma.compress(data, preset=9))
        return len(lzma.compress(data, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": dict_size}]))
    if name == "brotli11":
        return len(brotli.compress(data, quality=11))
    raise ValueError(f"unknown compressor '{name}'")


def container(symbols: np.ndarray) -> tuple[str, np.dtype]:
    """The byte container for these symbols: int8 when they fit, else little-endian int16."""
    lo, hi = (int(symbols.min()), int(symbols.max())) if symbols.size else (0, 0)
    return ("int8", np.dtype(np.int8)) if -128 <= lo and hi <= 127 else ("int16", np.dtype("<i2"))


def sample_rows(rows: int, cols: int, target: int | None) -> np.ndarray:
    """Indices of whole rows, evenly spaced, holding about `target` symbols (all rows if None)."""
    if target is None or rows * cols <= target:
        return np.arange(rows)
    take = min(rows, max(1, -(-target // max(cols, 1))))
    return np.unique(np.linspace(0, rows - 1, take).round().astype(np.int64))


def sample_share(numel: int, total: int, sample: int | None) -> int | None:
    """A tensor's share of a model-level sample of `sample` symbols, proportional to its size
    (None: no sampling)."""
    if sample is None:
        return None
    return max(1, int(round(sample * numel / max(total, 1))))


def container_bytes(symbols_2d: np.ndarray, target: int | None = None) -> tuple[str, bytes, int]:
    """(container, bytes, symbols) of a sample of exactly min(`target`, all) symbols: evenly
    spaced whole rows, the last one cut short. Exact counts matter: a model-level stream is
    scaled by one factor, so every tensor must be sampled at the same rate (rounding shares up
    to whole rows once overweighted eleven 1,024-weight tensors 34-fold and moved brotli's
    estimate by 1.2%)."""
    label, dtype = container(symbols_2d)
    rows, cols = symbols_2d.shape
    idx = sample_rows(rows, cols, target)
    part = (symbols_2d if idx.size == rows else symbols_2d[idx]).reshape(-1)
    if target is not None and part.size > target:
        part = part[:target]
    return label, np.ascontiguousarray(part).astype(dtype, copy=False).tobytes(), int(part.size)


def tensor_sizes(symbols_2d: np.ndarray) -> dict:
    """Exact bytes each compressor makes of one tensor's symbols in their container."""
    label, data, _ = container_bytes(symbols_2d)
    return {"container": label} | {name: compress(name, data) for name in COMPRESSORS}


def stream_sizes(parts_by_scheme: dict[str, list[tuple[str, bytes, int, int]]], threads: int = 1,
                 on_done: Callable[[], None] | None = None) -> dict[str, dict]:
    """Model-level estimates, one per scheme, from per-tensor samples.

    Each scheme's parts are (container, sample bytes, sampled symbols, total symbols), one per
    tensor in file order. The concatenated samples are compressed once per compressor (all
    schemes and compressors in parallel: the three libraries release the GIL) and the sizes
    scaled by total / sampled symbols; `exact` when nothing was left out. `on_done` is called
    after each (scheme, compressor) job, for progress bars.
    """
    streams = {sid: b"".join(p[1] for p in parts) for sid, parts in parts_by_scheme.items()}
    jobs = [(sid, c) for sid in streams for c in sorted(COMPRESSORS, key=lambda c: c != "brotli11")]
    def run(job: tuple[str, str]) -> int:
        size = compress(job[1], streams[job[0]])
        if on_done is not None:
            on_done()
        return size

    with ThreadPoolExecutor(max(1, threads)) as pool:
        sizes = dict(zip(jobs, pool.map(run, jobs)))
    out = {}
    for sid, parts in parts_by_scheme.items():
        m, n = sum(p[2] for p in parts), sum(p[3] for p in parts)
        d = {"method": "stream", "sample_symbols": m, "symbols": n, "exact": m == n,
             "containers": sorted({p[0] for p in parts})}
        for c in COMPRESSORS:
            d[c] = int(sizes[sid, c]) if m == n else int(round(sizes[sid, c] * n / max(m, 1)))
        out[sid] = d
    return out
