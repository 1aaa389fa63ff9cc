"""Standalone pgolf-pack artifact loader (format version 1): numpy and torch only.

Ship this file (or its `pgolf-loader --compact` form) with a submission: `load_pgpk(data)`
returns the artifact's tensors bit-identically to `pgolf_pack.load_artifact`. It checks every
CRC and every field it uses (docs/FORMAT.md, docs/CODER.md); corrupt input raises ValueError.
rANS lanes of all chunks of all frames are stepped together as numpy arrays.
"""

import numpy as np
import torch

L = 1 << 16
U4 = np.uint32
# artifact dtype codes (FORMAT.md section 3) and frame dtype codes (CODER.md section 4)
TD = {1: torch.float32, 2: torch.float16, 3: torch.bfloat16, 4: torch.float64, 5: torch.int8, 6: torch.uint8,
      7: torch.int16, 8: torch.int32, 9: torch.int64, 10: torch.bool}
FD = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'i8', 8: 'u8'}


def fail(what):
    """Refuse the artifact; `what` names the failed check in a word (every byte here is counted)."""
    raise ValueError('corrupt pgpk artifact: ' + what)


# CRC-32C, table-driven. A long input is cut into equal blocks whose CRC registers are
# stepped together as one numpy vector, then joined by a table for "shift by one block".
crc_table = np.arange(256, dtype=U4)
for _ in range(8):
    crc_table = np.where(crc_table & 1, crc_table >> 1 ^ U4(0x82F63B78), crc_table >> 1)
crc_list = crc_table.tolist()


def crc32c(b):
    """CRC-32C (Castagnoli) of the bytes b, as the codec computes it."""
    n = len(b)
    size = max(256, int(n ** .5))
    head = n % size
    c = 0xFFFFFFFF
    for x in b[:head]:
        c = crc_list[(c ^ x) & 255] ^ c >> 8
    if n > head:
        blocks = np.frombuffer(b, np.uint8, n - head, head).reshape(-1, size).T.copy()
        r = np.zeros(blocks.shape[1], U4)
        for column in blocks:
            r = crc_table[(r ^ column) & 255] ^ r >> 8
        v = U4(1) << np.arange(32, dtype=U4)
        for _ in range(size):
            v = crc_table[v & 255] ^ v >> 8
        bits = np.arange(256)[:, None] >> np.arange(8) & 1
        z0, z1, z2, z3 = [np.bitwise_xor.reduce(bits * v[i:i + 8].astype(np.int64), 1).tolist() for i in (0, 8, 16, 24)]
        for x in r.tolist():
            c = z0[c & 255] ^ z1[c >> 8 & 255] ^ z2[c >> 16 & 255] ^ z3[c >> 24] ^ x
    return c ^ 0xFFFFFFFF


def check_crc(b):
    """b ends with the CRC-32C of what precedes it (artifact and frame alike)."""
    if crc32c(b[:-4]) != int.from_bytes(b[-4:], 'little'):
        fail('checksum')


class Reader:
    """Bounds-checked reads of b[pos:end]: bytes, u8 and canonical LEB128 varints."""

    def __init__(self, b, pos, end):
        self.b, self.pos, self.end = b, pos, end

    def take(self, n):
        if n > self.end - self.pos:
            fail('truncated')
        self.pos += n
        return self.b[self.pos - n:self.pos]

    def u8(self):
        return self.take(1)[0]

    def varint(self):
        v = shift = 0
        while 1:
            c = self.u8()
            if shift == 63 and c > 1:
                fail('varint')
            v |= (c & 127) << shift
            if c < 128:
                if shift and not c:
                    fail('varint')
                return v
            shift += 7


def read_table(r, alphabet, M):
    """(first, frequencies first..last) of one table (CODER.md section 2), or None if empty."""
    first, count = r.varint(), r.varint()
    if not count:
        if first:
            fail('table')
        return None
    if first >= alphabet or count > alphabet - first:
        fail('table')
    if count == 1:
        return first, [M]
    acc = fill = prev = total = 0
    mean, seen, freqs = 16, 1, []
    for i in range(count - 1):
        k = 0
        while seen << k < mean and k < 17:
            k += 1
        q = 0
        while q < 24:
            if not fill:
                acc, fill = r.u8(), 8
            bit = acc & 1
            acc >>= 1
            fill -= 1
            if not bit:
                break
            q += 1
        width = k if q < 24 else 18
        while fill < width:
            acc |= r.u8() << fill
            fill += 8
        z = acc & (1 << width) - 1
        acc >>= width
        fill -= width
        if q < 24:
            z |= q << k
        elif z >> k < 24:
            fail('table')
        v = prev + (z >> 1 ^ -(z & 1))
        total += v
        if not 0 <= v < M or not (i or v) or total >= M:
            fail('table')
        freqs.append(v)
        prev = v
        mean += z
        seen += 1
        if seen == 32:
            mean >>= 1
            seen >>= 1
    if acc:
        fail('table')
    return first, freqs + [M - total]


class Frame:
    """A parsed, checked rANS frame; `decode_frames` fills `.symbols` (indices into the alphabet)."""

    def __init__(self, b, shape, contexts=None, dtype=0):
        """`shape` (and `dtype`, if given) are what the caller expects; `contexts` is None or
        (pattern, length): context id j is pattern[j % len(pattern)], for j < length."""
        r = Reader(b, 5, len(b) - 4)
        if b[:5] != b'PGRA\x01' or len(b) < 9:  # magic and version
            fail('frame')
        check_crc(b)
        self.dtype, ndim = r.u8(), r.u8()
        if self.dtype not in FD or dtype and self.dtype != dtype or ndim > 8:
            fail('frame')
        self.shape = [r.varint() for _ in range(ndim)]
        n = nonzero = 1
        for d in self.shape:  # an array must be able to have the shape, even with a zero dimension
            n *= d
            nonzero *= d or 1
        if tuple(self.shape) != shape or nonzero * int(FD[self.dtype][1]) >> 63 or n > 1 << 30:
            fail('frame')
        z = r.varint()
        self.offset = (z >> 1 ^ -(z & 1)) & (1 << 64) - 1
        alphabet = r.varint()
        self.precision = p = r.u8()
        tables = r.varint()
        run = r.varint()
        if not 0 < alphabet <= L or not 0 < p < 17 or not 0 < tables <= 4096 or tables << p > 1 << 24 \
                or not run and tables > 1:
            fail('frame')
        self.M = M = 1 << p
        self.tables = [read_table(r, alphabet, M) for _ in range(tables)]
        self.W = W = r.u8()
        self.chunk = r.varint()
        if W not in (4, 8, 16, 32, 64) or not self.chunk or n and not run and self.tables[0] is None:
            fail('frame')  # (a frame without contexts that holds symbols needs a non-empty table)
        self.n = n
        self.free = all(t is None or len(t[1]) == 1 for t in self.tables)  # no payload at all
        count = 0 if self.free or not n else -(-n // self.chunk)
        if count > (r.end - r.pos) // (4 * W + 1):
            fail('chunks')
        sizes = [r.varint() for _ in range(count)]
        if any(s < 4 * W or s - 4 * W & 1 for s in sizes) or sum(sizes) != r.end - r.pos:
            fail('chunks')
        self.chunks = []
        for s in sizes:
            self.chunks.append(r.take(s))
        self.pattern = np.zeros(1, np.int64)
        if run:
            if contexts is None:
                if n:
                    fail('contexts')
            else:
                self.pattern, length = contexts
                used = self.pattern[:length]
                if length != -(-n // run) or used.size and (used.max() >= tables or any(
                        self.tables[t] is None for t in np.unique(used).tolist())):
                    fail('contexts')
        elif contexts is not None:
            fail('contexts')
        self.symbols = None

    def values(self):
        """The decoded array: (offset + symbol) mod 2^64, cast to the frame's dtype."""
        v = (np.uint64(self.offset) + self.symbols.astype(np.uint64)).astype(FD[self.dtype])
        return v.reshape(self.shape)


def decode_frames(frames):
    """Decode all frames, in batches of bounded table memory (each frame's tables <= 2^24 slots)."""
    batch, slots = [], 0
    for f in frames + [None]:
        if f is None or slots > 1 << 26:
            decode_batch(batch)
            batch, slots = [], 0
        if f is not None:
            batch.append(f)
            slots += len(f.tables) * f.M


class Chunk:
    """One chunk to decode: `size` symbols from symbol `start` of `frame`, initial `states`,
    table slot bases by context phase, and its words at `word0`..`word0 + nwords` of the batch."""

    def __init__(self, frame, size, states, bases, start, word0, nwords):
        self.frame, self.size, self.states, self.bases = frame, size, states, bases
        self.start, self.word0, self.nwords = start, word0, nwords


def decode_batch(frames):
    """Decode frames together: one slot table for all their tables, one word array for all chunks."""
    sym, freq, bias, words, rows = [], [], [], [], []
    slots = nwords = 0
    for f in frames:
        base = []
        for t in f.tables:
            base.append(slots)
            if t is not None:
                first, fr = t
                fr = np.array(fr, np.int64)
                s = np.repeat(np.arange(len(fr)), fr)
                sym.append((s + first).astype(np.uint16))
                freq.append(fr[s].astype(U4))
                bias.append((np.arange(f.M) - (np.cumsum(fr) - fr)[s]).astype(U4))
                slots += f.M
        base = np.array(base, np.int64)
        if not f.chunks:  # empty, or every table has one symbol: the contexts alone give the values
            single = np.array([t[0] if t else 0 for t in f.tables])
            f.symbols = single[np.resize(f.pattern, f.n)] if f.n else np.zeros(0, np.int64)
        f.parts = []
        for c, data in enumerate(f.chunks):
            W = f.W
            m = min(f.chunk, f.n - c * f.chunk)
            x0 = np.frombuffer(data, '<u4', W)
            if x0.min() < L:
                fail('state')
            w = np.frombuffer(data, '<u2', len(data) // 2 - 2 * W, 4 * W)
            row = Chunk(f, m, x0, base[f.pattern], c * f.chunk, nwords, len(w))
            f.parts.append(row)
            rows.append(row)
            words.append(w)
            nwords += len(w)
    if not rows:
        return
    tables = [np.concatenate(a) for a in (sym, freq, bias)]
    words = np.concatenate(words + [np.zeros(1, np.uint16)])
    for W in (4, 8, 16, 32, 64):
        decode_rows([q for q in rows if q.frame.W == W], W, *tables, words)
    for f in frames:
        if f.parts:
            f.symbols = np.concatenate([q.symbols for q in f.parts])


def decode_rows(rows, W, sym, freq, bias, words):
    """Step the W lanes of every chunk in `rows` together (one row of states per chunk)."""
    if not rows:
        return
    rows.sort(key=lambda q: -q.size)  # longest first: the chunks still running are a prefix
    steps = [-(-q.size // W) for q in rows]
    lane = np.arange(W)
    X = np.array([q.states for q in rows], U4)
    shift = np.array([[q.frame.precision] for q in rows], U4)
    mask = (U4(1) << shift) - U4(1)
    # context ids: lane l of a chunk starting at symbol a uses bases[(a + l + W*t) % P] at step t
    period = np.array([[len(q.bases)] for q in rows])
    starts = np.cumsum([0] + [len(q.bases) for q in rows])
    pattern = np.concatenate([q.bases for q in rows]).astype(U4)
    phase = starts[:-1, None] + (np.array([[q.start] for q in rows]) + lane) % period
    advance = W % period
    ends = starts[:-1, None] + period
    pos = np.array([[q.word0] for q in rows]) - 1  # the last word read
    end = np.array([[q.word0 + q.nwords] for q in rows]) - 1
    last = np.array([[q.size - (s - 1) * W] for q, s in zip(rows, steps)])  # lanes busy in the last step
    contexts = (period > 1).any()
    base = pattern[phase]
    out, active = [], []
    x = X
    k = len(rows)
    for t in range(steps[0]):
        if steps[k - 1] <= t or not t:  # chunks finished: keep their states, shrink the views
            j = k
            while steps[k - 1] <= t:
                k -= 1
            X[k:j] = x[k:]
            x, mk, sh, ps, bs, ph, pp, ad, pe, pz = (
                a[:k] for a in (x, mask, shift, pos, base, phase, period, advance, ends, end))
        if not t & 1023 and (ps > pz).any():  # read past its words: stop garbage early
            fail('state')
        i = (pattern[ph] if contexts else bs) + (x & mk)
        out.append(i)
        active.append(k)
        y = freq[i] * (x >> sh) + bias[i]
        need = y < L
        if steps[k - 1] == t + 1:  # chunks ending in a partial group of W symbols: idle lanes keep their state
            j = k
            while j and steps[j - 1] == t + 1:
                j -= 1
            a = lane < last[j:k]
            need[j:] &= a
            y[j:] = np.where(a, y[j:], x[j:])
        c = need.cumsum(1)
        x = np.where(need, y << 16 | words.take(ps + c, mode='clip'), y)
        ps += c[:, -1:]
        if contexts:
            ph += ad
            ph -= pp * (ph >= pe)
    X[:k] = x
    if (X != L).any() or (pos != end).any():
        fail('state')
    flat = np.concatenate(out).ravel()  # step t holds the slots of the first active[t] rows
    offsets = np.cumsum([0] + active) * W
    for r, (q, s) in enumerate(zip(rows, steps)):
        q.symbols = sym[flat[(offsets[:s, None] + r * W + lane).ravel()[:q.size]]]


def load_pgpk(data, max_elements=1 << 28):
    """The tensors of an artifact (bytes): {name: tensor} in original dtype and shape. Like
    load_artifact, it refuses artifacts declaring more than `max_elements` elements in all."""
    b = memoryview(bytes(data))
    if b[:5] != b'PGPK\x01' or len(b) < 10:
        fail('not a version 1 pgpk artifact')
    check_crc(b)
    r = Reader(b, 5, len(b) - 4)
    size = r.varint()
    if size > r.end - r.pos:
        fail('manifest')
    r.end = r.pos + size
    count = r.varint()
    if count > 100000:
        fail('manifest')
    entries, names, prev, blob, total = [], set(), b'', r.end, 0
    for _ in range(count):
        shared = r.varint()
        if shared > len(prev):
            fail('name')
        raw = prev[:shared] + r.take(r.varint())
        try:
            name = raw.decode()
        except UnicodeDecodeError:
            fail('name')
        if not name or name in names:
            fail('name')
        names.add(name)
        dtype, ndim = r.u8(), r.u8()
        if dtype not in TD or ndim > 8:
            fail('manifest')
        dtype = TD[dtype]
        shape = tuple(r.varint() for _ in range(ndim))
        numel = 1
        for d in shape:
            numel *= d
        scheme = r.u8()
        total += numel + sum(rows_cols(shape, numel)) * (scheme > 9)  # quantized: + scales + column ids
        if max(shape, default=0) > 1 << 28 or numel > 1 << 28 or total > max_elements \
                or scheme not in (1, 2, 3, 4, 10, 11, 12, 13):
            fail('manifest')
        bits = fmt = groups = 0
        if scheme < 5:
            fmt = r.u8()
            if fmt > 1:
                fail('manifest')
            sizes = [r.varint()]
        else:
            if scheme == 10:
                bits = r.u8()
                if not 1 < bits < 9:
                    fail('manifest')
            fmt, groups = r.u8(), r.u8()
            if fmt > 10 or groups == 1 or groups > 16 or not ndim:
                fail('manifest')
            sizes = [r.varint() for _ in range(3 if groups else 2)]
        blobs = []
        for s in sizes:
            if s > len(b) - 4 - blob:
                fail('manifest')
            blobs.append(b[blob:blob + s])
            blob += s
        entries.append([name, dtype, shape, numel, scheme, bits, fmt, groups, blobs])
        prev = raw
    if r.pos != r.end or blob != len(b) - 4:
        fail('manifest')
    # column-group maps first: they are the contexts of their symbols' frames
    maps = [Frame(blobs[2], (rows_cols(shape, numel)[1],))
            for name, dtype, shape, numel, scheme, bits, fmt, groups, blobs in entries if groups]
    decode_frames(maps)
    maps = iter(maps)
    frames = []
    for name, dtype, shape, numel, scheme, bits, fmt, groups, blobs in entries:
        if scheme < 5:
            stored = dtype if scheme == 4 else TD[scheme]
            if scheme < 4 and not dtype.is_floating_point:
                fail('dtype')
            item = stored.itemsize
            if fmt:
                n = numel * item // 2
                if item < 2:
                    fail('encoding')
                contexts = (np.arange(item // 2), n) if item > 2 else None
                frames.append(Frame(blobs[0], (n,), contexts, 4))
            elif len(blobs[0]) != numel * item:
                fail('size')
        else:
            if not dtype.is_floating_point:
                fail('dtype')
            rows, cols = rows_cols(shape, numel)
            contexts = None
            if groups:
                ids = next(maps).values().astype(np.int64)
                if ids.size and (ids.min() < 0 or ids.max() >= groups):
                    fail('groups')
                contexts = (ids, rows * cols)
            frames.append(Frame(blobs[0], (rows, cols), contexts))
            if fmt:
                frames.append(Frame(blobs[1], (rows,)))
            elif len(blobs[1]) != 2 * rows:
                fail('size')
    decode_frames(frames)
    frames = iter(frames)
    out = {}
    for name, dtype, shape, numel, scheme, bits, fmt, groups, blobs in entries:
        if scheme < 5:
            stored = dtype if scheme == 4 else TD[scheme]
            item = stored.itemsize
            raw = next(frames).values().astype('<u2').tobytes() if fmt else bytes(blobs[0])
            kind = ('u' if item == 1 else 'i') + str(item)
            a = np.frombuffer(raw, '<' + kind).astype(kind)
            if stored == torch.bool and a.size and a.max() > 1:
                fail('bool')
            out[name] = torch.from_numpy(a.copy()).view(stored).reshape(shape).to(dtype)
            continue
        s = next(frames).values()
        q = (1 << bits - 1) - 1 if scheme == 10 else {11: 2, 12: 1, 13: 32767}[scheme]
        if s.size and (int(s.min()) < -q or int(s.max()) > q):
            fail('symbols')
        if fmt:
            codes = next(frames).values().astype(np.int64)
            e = codes >> fmt
            if codes.size and (e.min() < -126 or e.max() > 127):
                fail('scales')
            scales = torch.from_numpy(((e + 127) << 23 | codes - (e << fmt) << 23 - fmt).astype(np.int32).view(np.float32))
        else:
            scales = torch.from_numpy(np.frombuffer(blobs[1], '<f2').astype(np.float32))
        out[name] = (torch.from_numpy(s.astype(np.float32)) * scales[:, None]).reshape(shape).to(dtype)
    return out


def rows_cols(shape, numel):
    """A quantized tensor's (rows, cols): shape[0] rows (1 for a 1-D tensor)."""
    rows = shape[0] if len(shape) > 1 else 1
    return rows, numel // rows if rows else 0
