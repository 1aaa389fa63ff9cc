"""A slow, readable pure-Python rANS frame coder: the oracle the native codec is tested against.

It implements docs/CODER.md directly (tables, optimal normalisation, interleaved lanes,
chunks, the frame and its CRC32C) and must produce byte-identical frames and identical
accept/reject decisions. Use it on small arrays only (about a microsecond per symbol).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from pgolf_pack.errors import CorruptDataError, InputError

L = 1 << 16
MAGIC = b"PGRA"
VERSION = 1
DTYPES = {1: "int8", 2: "uint8", 3: "int16", 4: "uint16", 5: "int32", 6: "uint32", 7: "int64", 8: "uint64"}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}
VALID_LANES = (4, 8, 16, 32, 64)
MAX_TABLES = 4096
DEFAULT_CHUNK = 1 << 22
MASK64 = (1 << 64) - 1


# --- CRC32C -----------------------------------------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


# --- varints ------------------------------------------------------------------------------

def put_varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def varint(v: int) -> bytes:
    out = bytearray()
    put_varint(out, v)
    return bytes(out)


# --- frame header and seal (also what tests, benchmarks and fuzz seeds craft frames with) --

def frame_header(shape, alphabet: int, precision: int, tables: int, run: int, dtype: int = 1,
                 offset: int = 0) -> bytes:
    """Magic, version, dtype code, shape, zigzag offset, alphabet, precision, tables, run."""
    out = bytearray(MAGIC) + bytes([VERSION, dtype, len(shape)])
    for d in shape:
        put_varint(out, d)
    put_varint(out, ((offset << 1) ^ (offset >> 63)) & MASK64)
    put_varint(out, alphabet)
    out.append(precision)
    put_varint(out, tables)
    put_varint(out, run)
    return bytes(out)


def seal(body: bytes) -> bytes:
    """The body followed by its CRC32C, as a frame ends."""
    return body + crc32c(body).to_bytes(4, "little")


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if len(self.data) - self.pos < n:
            raise CorruptDataError(f"truncated at offset {self.pos}")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        v = shift = 0
        while True:
            b = self.u8()
            if shift == 63 and b > 1:
                raise CorruptDataError("varint overflows 64 bits")
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                if b == 0 and shift > 0:
                    raise CorruptDataError("non-canonical varint")
                return v
            shift += 7

    def zigzag(self) -> int:
        z = self.varint()
        return (z >> 1) ^ -(z & 1)


# --- tables -------------------------------------------------------------------------------

def normalize_counts(counts: list[int], precision: int) -> list[int]:
    """Optimal integer frequencies summing to 2**precision (same moves and ties as the C++)."""
    M = 1 << precision
    present = [i for i, c in enumerate(counts) if c]
    if not present:
        raise InputError("cannot build a frequency table from zero counts")
    if len(present) > M:
        raise InputError("too many symbols for the precision")
    f = [0] * len(counts)
    if len(present) == 1:
        f[present[0]] = M
        return f
    total = sum(counts)
    for i in present:
        f[i] = max(1, counts[i] * M // total)
    s = sum(f)

    def gain(i):
        return counts[i] * math.log1p(1.0 / f[i])

    def loss(i):
        return -counts[i] * math.log1p(-1.0 / f[i])

    up = [(-gain(i), i) for i in present]
    down = [(loss(i), i) for i in present if f[i] > 1]
    heapq.heapify(up)
    heapq.heapify(down)

    def top_up():
        while True:
            v, i = up[0]
            if -v == gain(i):
                return -v, i
            heapq.heappop(up)

    def top_down():
        while down:
            v, i = down[0]
            if f[i] > 1 and v == loss(i):
                return v, i
            heapq.heappop(down)
        return math.inf, 0

    def bump(i, d):
        f[i] += d
        heapq.heappush(up, (-gain(i), i))
        if f[i] > 1:
            heapq.heappush(down, (loss(i), i))

    while s < M:
        bump(top_up()[1], +1)
        s += 1
    while s > M:
        bump(top_down()[1], -1)
        s -= 1
    while True:
        av, ai = top_up()
        bv, bi = top_down()
        if ai == bi or not av > bv * (1.0 + 1e-12) + 1e-300:
            break
        bump(ai, +1)
        bump(bi, -1)
    return f


def cost_bits(counts: list[int], freqs: list[int], precision: int) -> float:
    bits = 0.0
    for c, f in zip(counts, freqs):
        if c:
            if not f:
                return math.inf
            bits += float(c) * (float(precision) - math.log2(float(f)))
    return bits


ESCAPE_Q, ESCAPE_BITS = 24, 18


class Rice:
    """Adaptive Rice parameter: the running mean of coded magnitudes (start k = 4)."""

    def __init__(self):
        self.sum, self.count = 16, 1

    def k(self) -> int:
        k = 0
        while (self.count << k) < self.sum and k < 17:
            k += 1
        return k

    def update(self, v: int) -> None:
        self.sum += v
        self.count += 1
        if self.count == 32:
            self.sum >>= 1
            self.count >>= 1


def write_table(out: bytearray, f: list[int]) -> None:
    nz = [i for i, v in enumerate(f) if v]
    if not nz:
        put_varint(out, 0)
        put_varint(out, 0)
        return
    first, last = nz[0], nz[-1]
    out += table_fields(first, last - first + 1, f[first:last])


def table_fields(first: int, count: int, explicit: list[int]) -> bytes:
    """The serialised table for `first`, `count` and the explicit frequencies (all but the
    last). No validation: tests use it to build malformed tables too."""
    out = bytearray()
    put_varint(out, first)
    put_varint(out, count)
    if count < 2:
        return bytes(out)
    bits: list[int] = []  # LSB-first bit stream
    rice, prev = Rice(), 0
    for v in explicit:
        d = v - prev
        prev = v
        z = (d << 1) ^ (d >> 63) if d < 0 else d << 1
        k = rice.k()
        q = z >> k
        if q < ESCAPE_Q:
            bits += [1] * q + [0] + [(z >> j) & 1 for j in range(k)]
        else:
            bits += [1] * ESCAPE_Q + [(z >> j) & 1 for j in range(ESCAPE_BITS)]
        rice.update(z)
    bits += [0] * (-len(bits) % 8)
    out += bytes(sum(b << j for j, b in enumerate(bits[i : i + 8])) for i in range(0, len(bits), 8))
    return bytes(out)


class BitReader:
    def __init__(self, r: Reader):
        self.r, self.acc, self.fill = r, 0, 0

    def get(self, n: int) -> int:
        while self.fill < n:
            self.acc |= self.r.u8() << self.fill
            self.fill += 8
        v = self.acc & ((1 << n) - 1)
        self.acc >>= n
        self.fill -= n
        return v


def read_table_run(r: Reader, K: int, precision: int) -> tuple[int, list[int]]:
    """One table as (first, frequencies of indices first .. first + count - 1); an empty
    table is (0, []). Kept as its range so that a frame of many tables over a wide alphabet
    costs what its bytes cost here too."""
    M = 1 << precision
    first, count = r.varint(), r.varint()
    if count == 0:
        if first != 0:
            raise CorruptDataError("empty table with first != 0")
        return 0, []
    if not (first < K and count <= K - first):
        raise CorruptDataError("table range exceeds the alphabet")
    if count == 1:
        return first, [M]
    f: list[int] = []
    bits, rice, prev, total = BitReader(r), Rice(), 0, 0
    end = first + count - 1
    for i in range(first, end):
        k = rice.k()
        q = 0
        while q < ESCAPE_Q and bits.get(1):
            q += 1
        if q < ESCAPE_Q:
            z = (q << k) | bits.get(k)
        else:
            z = bits.get(ESCAPE_BITS)
            if (z >> k) < ESCAPE_Q:
                raise CorruptDataError("non-canonical escape")
        v = prev + ((z >> 1) ^ -(z & 1))
        if not 0 <= v < M:
            raise CorruptDataError("frequency outside [0, M)")
        if i == first and v == 0:
            raise CorruptDataError("first frequency is 0")
        total += v
        if total >= M:
            raise CorruptDataError("frequencies reach M")
        f.append(v)
        prev = v
        rice.update(z)
    if bits.acc:
        raise CorruptDataError("nonzero padding")
    f.append(M - total)
    return first, f


def read_table(r: Reader, K: int, precision: int) -> list[int]:
    """One table as K frequencies."""
    first, run = read_table_run(r, K, precision)
    return [0] * first + run + [0] * (K - first - len(run))


def choose_precision(counts: list[list[int]]) -> int:
    present = max([1] + [sum(1 for c in t if c) for t in counts])
    symbols = sum(sum(t) for t in counts)
    needed = 1
    while (1 << needed) < present:
        needed += 1
    best_n, best = max(needed, 8), math.inf
    for n in range(max(needed, 8), 17):
        size = float(symbols) * 0.005 * math.ldexp(1.0, 2 * (n - 16)) / 8.0
        for c in counts:
            if not any(c):
                continue
            f = normalize_counts(c, n)
            tb = bytearray()
            write_table(tb, f)
            size += cost_bits(c, f, n) / 8.0 + float(len(tb))
        if size < best:
            best, best_n = size, n
    return best_n


def default_lanes(n: int) -> int:
    return 32 if n >= 1 << 16 else 8 if n >= 1 << 12 else 4


# --- coding -------------------------------------------------------------------------------

def _cums(f: list[int]) -> list[int]:
    c, out = 0, []
    for v in f:
        out.append(c)
        c += v
    return out


def encode_chunk(idx: list[int], ctx: list[int], tables: list[list[int]], precision: int, W: int) -> bytes:
    cums = [_cums(t) for t in tables]
    x = [L] * W
    words: list[int] = []  # collected backwards
    for i in range(len(idx) - 1, -1, -1):
        t, s = ctx[i], idx[i]
        f, c = tables[t][s], cums[t][s]
        if not f:
            raise InputError(f"symbol at position {i} has frequency 0 in table {t}")
        lane = i % W
        if x[lane] >= ((L >> precision) << 16) * f:
            words.append(x[lane] & 0xFFFF)
            x[lane] >>= 16
        x[lane] = (x[lane] // f << precision) + x[lane] % f + c
    out = bytearray()
    for v in x:
        out += v.to_bytes(4, "little")
    for w in reversed(words):
        out += w.to_bytes(2, "little")
    return bytes(out)


def decode_chunk(data: bytes, m: int, ctx: list[int], tables: list[tuple[int, list[int]]], precision: int,
                 W: int) -> list[int]:
    """Decode one chunk under `tables` as read_table_run gives them (none selected is empty)."""
    if len(data) < 4 * W or (len(data) - 4 * W) % 2:
        raise CorruptDataError("bad chunk length")
    x = [int.from_bytes(data[4 * l : 4 * l + 4], "little") for l in range(W)]
    if any(v < L for v in x):
        raise CorruptDataError("state below L")
    slots: dict[int, list[int]] = {}  # table -> (slot -> index in its run), built for the tables used
    cums = [_cums(run) for _, run in tables]
    mask, pos, out = (1 << precision) - 1, 4 * W, []
    for i in range(m):
        lane, t = i % W, ctx[i]
        if t not in slots:
            slots[t] = [j for j, f in enumerate(tables[t][1]) for _ in range(f)]
        slot = x[lane] & mask
        j = slots[t][slot]
        s = tables[t][0] + j
        xn = tables[t][1][j] * (x[lane] >> precision) + slot - cums[t][j]
        if xn < L:
            if pos == len(data):
                raise CorruptDataError("chunk runs out of words")
            xn = (xn << 16) | int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        x[lane] = xn
        out.append(s)
    if pos != len(data):
        raise CorruptDataError("unread words")
    if any(v != L for v in x):
        raise CorruptDataError("final state differs from L")
    return out


def encode(
    values: np.ndarray,
    *,
    contexts: np.ndarray | None = None,
    context_run: int = 1,
    precision: int | None = None,
    lanes: int | None = None,
    chunk_size: int | None = None,
) -> bytes:
    """Same frame as pgolf_pack.rans.encode for tables built from the data."""
    a = np.asarray(values)
    flat = [int(v) for v in a.reshape(-1)]
    n = len(flat)
    lo = min(flat) if flat else 0
    K = (max(flat) - lo + 1) if flat else 1
    lo_signed = lo - (1 << 64) if lo >= 1 << 63 else lo  # the frame stores a 64-bit pattern
    if K > 65536:
        raise InputError("values span more than 65536 symbols")
    run = context_run if contexts is not None else 0
    ids = [int(c) for c in np.asarray(contexts).reshape(-1)] if contexts is not None else []
    T = max(ids) + 1 if ids else 1
    ctx = [ids[i // run] for i in range(n)] if run else [0] * n
    idx = [v - lo for v in flat]
    counts = [[0] * K for _ in range(T)]
    for t, s in zip(ctx, idx):
        counts[t][s] += 1
    precision = precision or choose_precision(counts)
    tables = [normalize_counts(c, precision) if any(c) else [0] * K for c in counts]
    W = lanes or default_lanes(n)
    chunk = chunk_size or DEFAULT_CHUNK
    M = 1 << precision
    zero_cost = all(v in (0, M) for t in tables for v in t)
    chunks = []
    if n and not zero_cost:
        for a0 in range(0, n, chunk):
            chunks.append(encode_chunk(idx[a0 : a0 + chunk], ctx[a0 : a0 + chunk], tables, precision, W))
    out = bytearray(frame_header(a.shape, K, precision, T, run, CODES[a.dtype], lo_signed))
    for t in tables:
        write_table(out, t)
    out.append(W)
    put_varint(out, chunk)
    for c in chunks:
        put_varint(out, len(c))
    for c in chunks:
        out += c
    return seal(bytes(out))


def decode(data: bytes, *, contexts: np.ndarray | None = None, max_symbols: int = 1 << 28) -> np.ndarray:
    """Same result (array, or CorruptDataError) as pgolf_pack.rans.decode."""
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise CorruptDataError("bad magic")
    if len(data) < 9:
        raise CorruptDataError("truncated")
    r = Reader(data[:-4])
    r.take(4)
    if r.u8() != VERSION:
        raise CorruptDataError("unsupported version")
    if crc32c(data[:-4]) != int.from_bytes(data[-4:], "little"):
        raise CorruptDataError("checksum mismatch")
    code = r.u8()
    if code not in DTYPES:
        raise CorruptDataError("bad dtype")
    ndim = r.u8()
    if ndim > 8:
        raise CorruptDataError("ndim > 8")
    shape = [r.varint() for _ in range(ndim)]
    nonzero = math.prod(d for d in shape if d)
    if nonzero * np.dtype(DTYPES[code]).itemsize > (1 << 63) - 1:
        raise CorruptDataError("no array can have this shape")
    n = nonzero if all(shape) else 0
    if n > max_symbols:
        raise CorruptDataError("too many symbols")
    offset = r.zigzag()
    K = r.varint()
    if not 1 <= K <= 65536:
        raise CorruptDataError("bad alphabet")
    precision = r.u8()
    if not 1 <= precision <= 16:
        raise CorruptDataError("bad precision")
    T = r.varint()
    if not 1 <= T <= MAX_TABLES or T << precision > 1 << 24:
        raise CorruptDataError("bad number of tables")
    run = r.varint()
    if run == 0 and T != 1:
        raise CorruptDataError("tables without contexts")
    tables = [read_table_run(r, K, precision) for _ in range(T)]
    if run == 0 and n and not tables[0][1]:
        raise CorruptDataError("the only table is empty but the frame holds symbols")
    W = r.u8()
    if W not in VALID_LANES:
        raise CorruptDataError("bad lanes")
    chunk = r.varint()
    if chunk < 1:
        raise CorruptDataError("chunk_size 0")
    zero_cost = all(len(run) <= 1 for _, run in tables)  # a run starts and ends nonzero
    num_chunks = 0 if (n == 0 or zero_cost) else -(-n // chunk)
    remaining = len(r.data) - r.pos
    if num_chunks > remaining // (4 * W + 1):
        raise CorruptDataError("too many chunks")
    sizes = []
    for _ in range(num_chunks):
        s = r.varint()
        if s < 4 * W or (s - 4 * W) % 2:
            raise CorruptDataError("bad chunk size")
        sizes.append(s)
    if sum(sizes) > len(r.data) - r.pos:
        raise CorruptDataError("chunks run past the frame")
    if sum(sizes) != len(r.data) - r.pos:
        raise CorruptDataError("trailing data")
    if run:
        if contexts is None and n:
            raise CorruptDataError("contexts required")
        ids = [int(c) for c in np.asarray(contexts).reshape(-1)] if contexts is not None else []
        if len(ids) != -(-n // run) or any(c >= T for c in ids):
            raise CorruptDataError("context mismatch")
        if any(not tables[c][1] for c in ids):
            raise CorruptDataError("context selects an empty table")
        ctx = [ids[i // run] for i in range(n)]
    else:
        if contexts is not None:
            raise CorruptDataError("contexts given for a frame without contexts")
        ctx = [0] * n
    idx: list[int] = []
    if n and zero_cost:
        idx = [tables[t][0] for t in ctx]
    for c, s in enumerate(sizes):
        a0 = c * chunk
        m = min(chunk, n - a0)
        idx += decode_chunk(r.take(s), m, ctx[a0 : a0 + m], tables, precision, W)
    patterns = np.array([(offset + s) & MASK64 for s in idx], dtype=np.uint64)
    return patterns.astype(np.dtype(DTYPES[code])).reshape(shape)  # wraps like a C cast
