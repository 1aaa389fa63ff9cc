#include "rans_stream.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "errors.hpp"
#include "parallel.hpp"
#include "rans_simd.hpp"

namespace pgolf {

bool TableSet::zero_cost() const {
    for (const auto& r : runs)
        if (r.freq.size() > 1) return false;  // a run starts and ends nonzero: two entries, two symbols
    return true;
}

EncoderTables::EncoderTables(const TableSet& tables) {
    const unsigned n = tables.precision;
    for (const auto& r : tables.runs) {
        base.push_back(symbols.size());
        first.push_back(r.first);
        span.push_back(r.freq.size());  // 0 for an empty table: codes nothing
        uint32_t cum = 0;
        for (uint32_t f : r.freq) {
            symbols.push_back(make_enc_symbol(cum, f, n));
            cum += f;
        }
    }
}

DecoderTables::DecoderTables(const TableSet& tables, bool use_slots) : precision(tables.precision), slots(use_slots) {
    if (!slots) {
        size_t total = 0;
        for (const auto& r : tables.runs) total += r.freq.size() + 1;
        cum.reserve(total);  // exactly: growing by doubling would peak at three times this
        for (const auto& r : tables.runs) {
            base.push_back(cum.size());
            first.push_back(r.first);
            span.push_back(uint32_t(r.freq.size()));
            uint32_t c = 0;
            cum.push_back(0);
            for (uint32_t f : r.freq) cum.push_back(c += f);
        }
        return;
    }
    const size_t M = size_t(1) << precision;
    entry.assign(tables.count() * M, 0);
    symbol.assign(tables.count() * M + 2, 0);
    for (size_t t = 0; t < tables.count(); ++t) {
        const auto& r = tables.runs[t];
        uint32_t* e = entry.data() + t * M;
        uint16_t* s = symbol.data() + t * M;
        uint32_t cum = 0;
        for (size_t j = 0; j < r.freq.size(); ++j) {
            const uint32_t f = r.freq[j];
            for (uint32_t k = 0; k < f; ++k) {
                e[cum + k] = make_dec_entry(f, k);
                s[cum + k] = uint16_t(r.first + j);
            }
            cum += f;
        }
    }
}

const char* kernel_name(Kernel k) {
    switch (k) {
        case Kernel::Auto: return "auto";
        case Kernel::Scalar: return "scalar";
        case Kernel::Avx2: return "avx2";
        case Kernel::Avx512: return "avx512";
        case Kernel::Search: return "search";
    }
    return "?";
}

bool kernel_available(Kernel k) {
    switch (k) {
        case Kernel::Auto:
        case Kernel::Scalar:
        case Kernel::Search: return true;
        case Kernel::Avx2: return cpu_has_avx2();
        case Kernel::Avx512: return cpu_has_avx512();
    }
    return false;
}

Kernel resolve_kernel(Kernel requested, unsigned lanes) {
    PGOLF_REQUIRE(kernel_available(requested), Status::InvalidArgument,
            std::string("decode kernel '") + kernel_name(requested) + "' is not available on this CPU");
    if (requested != Kernel::Auto) return requested;  // Search or slot kernels: the caller built matching tables
    if (lanes % 16 == 0 && cpu_has_avx512()) return Kernel::Avx512;
    if (lanes % 8 == 0 && cpu_has_avx2()) return Kernel::Avx2;
    return Kernel::Scalar;
}

namespace {

inline void store_le16(uint8_t* dst, uint16_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = uint16_t(v << 8 | v >> 8);
#endif
    std::memcpy(dst, &v, 2);
}

// Codes v[0..m) backwards into the bytes that end at `p` (the words), leaving the final lane
// states in x; returns the start of the words, or nullptr with `bad` set if v[bad] is absent
// from its table. Table fields are copied into locals so that the byte stores, which may
// alias anything, do not force them to be reloaded for every symbol.
template <class T, bool kContexts>
uint8_t* encode_words(const T* v, const uint16_t* ctx, size_t m, const EncoderTables& tables, uint64_t offset,
                      unsigned W, uint32_t* x, uint8_t* p, size_t& bad) {
    const EncSymbol* const symbols = tables.symbols.data();
    const uint64_t* const base = tables.base.data();
    const uint64_t* const first = tables.first.data();
    const uint64_t* const span = tables.span.data();
    const EncSymbol* const symbols0 = symbols + base[0];
    const uint64_t first0 = first[0] + offset, span0 = span[0];
    const size_t lane_mask = W - 1;
    for (size_t i = m; i-- > 0;) {
        const EncSymbol* s;
        if constexpr (kContexts) {
            const uint32_t t = ctx[i];
            const uint64_t r = uint64_t(v[i]) - offset - first[t];
            if (r >= span[t]) { bad = i; return nullptr; }
            s = symbols + base[t] + r;
        } else {
            const uint64_t r = uint64_t(v[i]) - first0;
            if (r >= span0) { bad = i; return nullptr; }
            s = symbols0 + r;
        }
        if (!s->x_max) { bad = i; return nullptr; }
        uint32_t xv = x[i & lane_mask];
        const bool emit = xv >= s->x_max;  // branchless renormalisation: always store, advance if emitted
        store_le16(p - 2, uint16_t(xv));
        p -= 2 * size_t(emit);
        xv >>= 16 * unsigned(emit);
        const uint32_t q = uint32_t(((unsigned __int128)xv * s->rcp) >> 64);
        x[i & lane_mask] = xv + s->bias + q * s->cmpl;
    }
    return p;
}

template <class T>
EncodedChunk encode_chunk(const T* v, const uint16_t* ctx, size_t m, uint64_t first_position,
                          const EncoderTables& tables, uint64_t offset, unsigned W) {
    // Layout of the allocation: [spare][W states][words]; the words grow down from the end and
    // the slot below the lowest word is a guard for the branchless store.
    const size_t capacity = 4 * size_t(W) + 2 * (m + 1);
    std::unique_ptr<uint8_t[]> buffer(new uint8_t[capacity]);
    uint32_t x[kMaxLanes];
    for (unsigned l = 0; l < W; ++l) x[l] = kRansL;
    size_t bad = 0;
    uint8_t* const end = buffer.get() + capacity;
    uint8_t* p = ctx ? encode_words<T, true>(v, ctx, m, tables, offset, W, x, end, bad)
                     : encode_words<T, false>(v, ctx, m, tables, offset, W, x, end, bad);
    if (!p)
        fail(Status::InvalidArgument, "value " + std::to_string(v[bad]) + " at position " +
                                          std::to_string(first_position + bad) + " has frequency 0 in table " +
                                          std::to_string(ctx ? ctx[bad] : 0));
    p -= 4 * size_t(W);
    for (unsigned l = 0; l < W; ++l)
        for (int b = 0; b < 4; ++b) p[4 * l + b] = uint8_t(x[l] >> (8 * b));
    return EncodedChunk(std::move(buffer), size_t(p - buffer.get()), capacity);
}

template <class T>
void decode_chunk(const ChunkSpan& span, size_t chunk, size_t m, const uint16_t* ctx, const DecoderTables& tables,
                  uint64_t offset, unsigned W, T* out, Kernel kernel) {
    const std::string where = "chunk " + std::to_string(chunk);
    PGOLF_REQUIRE(span.size >= 4 * size_t(W), Status::Truncated,
            where + " holds " + std::to_string(span.size) + " bytes, fewer than its " + std::to_string(4 * W) +
                " bytes of lane states");
    PGOLF_REQUIRE((span.size - 4 * size_t(W)) % 2 == 0, Status::BadHeader,
            where + " has an odd number of word bytes (" + std::to_string(span.size - 4 * size_t(W)) + ")");
    uint32_t x[kMaxLanes];
    for (unsigned l = 0; l < W; ++l) {
        const uint8_t* b = span.data + 4 * l;
        x[l] = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
        PGOLF_REQUIRE(x[l] >= kRansL, Status::BadState,
                where + " lane " + std::to_string(l) + " starts at state " + std::to_string(x[l]) +
                    ", below L = 65536");
    }
    const uint8_t* p = span.data + 4 * size_t(W);
    const uint8_t* const end = span.data + span.size;
    // The scalar paths' renormalisation: a state below L takes the next 16-bit word.
    auto refill = [&](uint32_t xn, size_t i) -> uint32_t {
        if (xn >= kRansL) return xn;
        if (p == end)
            fail(Status::Truncated, where + " runs out of words at symbol " + std::to_string(i) + " of " +
                                        std::to_string(m));
        xn = (xn << 16) | uint32_t(p[0]) | uint32_t(p[1]) << 8;
        p += 2;
        return xn;
    };
    size_t i = 0;
    if (!tables.slots) {  // binary search over each table's cumulative frequencies
        const unsigned n = tables.precision;
        const uint32_t mask = (1u << n) - 1;
        for (; i < m; ++i) {
            const size_t lane = i & (W - 1);
            const uint32_t xv = x[lane];
            const uint32_t t = ctx ? ctx[i] : 0;
            const uint32_t* c = tables.cum.data() + tables.base[t];
            const uint32_t slot = xv & mask;
            // the last j with c[j] <= slot; c[0] = 0 and c[span] = M > slot, so c[j + 1] > slot
            const size_t j = size_t(std::upper_bound(c, c + tables.span[t] + 1, slot) - c) - 1;
            x[lane] = refill((c[j + 1] - c[j]) * (xv >> n) + slot - c[j], i);
            out[i] = T(offset + tables.first[t] + j);
        }
    } else if (kernel == Kernel::Avx512)
        i = decode_groups_avx512<T>(x, W, p, end, ctx, tables, out, m, offset);
    else if (kernel == Kernel::Avx2)
        i = decode_groups_avx2<T>(x, W, p, end, ctx, tables, out, m, offset);
    const unsigned n = tables.precision;
    const uint32_t mask = (1u << n) - 1;
    const uint32_t* entry = tables.entry.data();
    const uint16_t* symbol = tables.symbol.data();
    for (; i < m; ++i) {
        const size_t lane = i & (W - 1);
        const uint32_t xv = x[lane];
        const uint32_t idx = (ctx ? uint32_t(ctx[i]) << n : 0) | (xv & mask);
        x[lane] = refill(dec_advance(xv, entry[idx], n), i);
        out[i] = T(offset + symbol[idx]);
    }
    PGOLF_REQUIRE(p == end, Status::TrailingData,
            where + " has " + std::to_string(end - p) + " unread word bytes after its last symbol");
    for (unsigned l = 0; l < W; ++l)
        PGOLF_REQUIRE(x[l] == kRansL, Status::BadState,
                where + " lane " + std::to_string(l) + " ends at state " + std::to_string(x[l]) +
                    " instead of 65536: the stream is corrupt or decoded with other contexts");
}

}  // namespace

template <class T>
std::vector<EncodedChunk> encode_chunks(const T* values, uint64_t n, const uint16_t* ctx, const EncoderTables& tables,
                                        uint64_t offset, unsigned lanes, uint64_t chunk_size, unsigned threads) {
    const size_t count = size_t((n + chunk_size - 1) / chunk_size);
    std::vector<EncodedChunk> chunks(count);
    parallel_for(count, threads, [&](size_t c) {
        const uint64_t start = c * chunk_size;
        const size_t m = size_t(std::min<uint64_t>(chunk_size, n - start));
        chunks[c] = encode_chunk<T>(values + start, ctx ? ctx + start : nullptr, m, start, tables, offset, lanes);
    });
    return chunks;
}

template <class T>
void decode_chunks(const std::vector<ChunkSpan>& chunks, uint64_t n, const uint16_t* ctx,
                   const DecoderTables& tables, uint64_t offset, unsigned lanes, uint64_t chunk_size, T* out,
                   unsigned threads, Kernel kernel) {
    kernel = resolve_kernel(kernel, lanes);
    parallel_for(chunks.size(), threads, [&](size_t c) {
        const uint64_t start = c * chunk_size;
        const size_t m = size_t(std::min<uint64_t>(chunk_size, n - start));
        decode_chunk<T>(chunks[c], c, m, ctx ? ctx + start : nullptr, tables, offset, lanes, out + start, kernel);
    });
}

#define PGOLF_INSTANTIATE(T)                                                                                     \
    template std::vector<EncodedChunk> encode_chunks<T>(const T*, uint64_t, const uint16_t*, const EncoderTables&, \
                                                        uint64_t, unsigned, uint64_t, unsigned);                 \
    template void decode_chunks<T>(const std::vector<ChunkSpan>&, uint64_t, const uint16_t*,                    \
                                   const DecoderTables&, uint64_t, unsigned, uint64_t, T*, unsigned, Kernel);
PGOLF_INSTANTIATE(int8_t)
PGOLF_INSTANTIATE(uint8_t)
PGOLF_INSTANTIATE(int16_t)
PGOLF_INSTANTIATE(uint16_t)
PGOLF_INSTANTIATE(int32_t)
PGOLF_INSTANTIATE(uint32_t)
PGOLF_INSTANTIATE(int64_t)
PGOLF_INSTANTIATE(uint64_t)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf
