#include "frame.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "byte_io.hpp"
#include "crc32c.hpp"
#include "errors.hpp"
#include "freq_table.hpp"

namespace pgolf {

size_t dtype_size(DType d) {
    switch (d) {
        case DType::Int8: case DType::UInt8: return 1;
        case DType::Int16: case DType::UInt16: return 2;
        case DType::Int32: case DType::UInt32: return 4;
        case DType::Int64: case DType::UInt64: return 8;
    }
    return 0;
}

const char* dtype_name(DType d) {
    switch (d) {
        case DType::Int8: return "int8";
        case DType::UInt8: return "uint8";
        case DType::Int16: return "int16";
        case DType::UInt16: return "uint16";
        case DType::Int32: return "int32";
        case DType::UInt32: return "uint32";
        case DType::Int64: return "int64";
        case DType::UInt64: return "uint64";
    }
    return "?";
}

bool dtype_valid(uint8_t code) { return code >= 1 && code <= 8; }

#define PGOLF_DISPATCH(dtype, BODY)                              \
    switch (dtype) {                                              \
        case DType::Int8: { using T = int8_t; BODY; break; }      \
        case DType::UInt8: { using T = uint8_t; BODY; break; }    \
        case DType::Int16: { using T = int16_t; BODY; break; }    \
        case DType::UInt16: { using T = uint16_t; BODY; break; }  \
        case DType::Int32: { using T = int32_t; BODY; break; }    \
        case DType::UInt32: { using T = uint32_t; BODY; break; }  \
        case DType::Int64: { using T = int64_t; BODY; break; }    \
        case DType::UInt64: { using T = uint64_t; BODY; break; }  \
    }

namespace {

uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }


// Checks a context array against n symbols and `tables` tables. A mismatch is the caller's
// error when encoding (InvalidArgument) and a context mismatch when decoding.
void check_contexts(const ContextSpec& ctx, uint64_t n, uint64_t tables, Status status) {
    const uint64_t expected = ceil_div(n, ctx.run);
    PGOLF_REQUIRE(ctx.count == expected, status,
            "expected " + std::to_string(expected) + " context ids (" + std::to_string(n) + " symbols in runs of " +
                std::to_string(ctx.run) + "), got " + std::to_string(ctx.count));
    for (uint64_t k = 0; k < ctx.count; ++k)
        PGOLF_REQUIRE(ctx.ids[k] < tables, status,
                "context id " + std::to_string(ctx.ids[k]) + " at position " + std::to_string(k) +
                    " is not below the number of tables, " + std::to_string(tables));
}

// The per-symbol table ids of a checked context array (nullptr: no contexts, table 0).
// Runs longer than one symbol are expanded into `storage`.
const uint16_t* per_symbol_contexts(const ContextSpec& ctx, uint64_t n, std::vector<uint16_t>& storage) {
    if (!ctx.run) return nullptr;
    if (ctx.run == 1) return ctx.ids;
    storage.resize(n);
    for (uint64_t k = 0; k < ctx.count; ++k) {
        const uint64_t a = k * ctx.run, b = std::min(n, a + ctx.run);
        std::fill(storage.begin() + a, storage.begin() + b, ctx.ids[k]);
    }
    return storage.data();
}

// Min and max of the values; for 1-byte types from a full 256-bin count (four interleaved
// counter sets, so runs of one value do not serialise on one counter), which the caller reuses.
template <class T>
void value_range(const T* v, uint64_t n, T& lo, T& hi, std::vector<uint64_t>& byte_counts) {
    if constexpr (sizeof(T) == 1) {
        std::vector<uint64_t> c(4 * 256, 0);
        uint64_t i = 0;
        for (; i + 4 <= n; i += 4) {
            ++c[uint8_t(v[i])];
            ++c[256 + uint8_t(v[i + 1])];
            ++c[512 + uint8_t(v[i + 2])];
            ++c[768 + uint8_t(v[i + 3])];
        }
        for (; i < n; ++i) ++c[uint8_t(v[i])];
        byte_counts.assign(256, 0);
        for (int k = 0; k < 256; ++k) byte_counts[k] = c[k] + c[256 + k] + c[512 + k] + c[768 + k];
        bool any = false;
        for (int k = 0; k < 256; ++k) {  // in value order: signed types start at -128
            const T value = T(std::is_signed<T>::value ? k - 128 : k);
            if (byte_counts[uint8_t(value)]) {
                if (!any) lo = value;
                hi = value;
                any = true;
            }
        }
    } else {
        lo = hi = v[0];
        for (uint64_t i = 1; i < n; ++i) {
            lo = std::min(lo, v[i]);
            hi = std::max(hi, v[i]);
        }
    }
}

template <class T>
Histogram histogram_t(const T* v, uint64_t n, const ContextSpec& ctx, uint64_t tables) {
    Histogram h;
    if (n == 0) {
        h.offset = 0;
        h.alphabet = 1;
        h.counts.assign(tables, std::vector<uint64_t>(1, 0));
        return h;
    }
    T lo{}, hi{};
    std::vector<uint64_t> byte_counts;
    value_range(v, n, lo, hi, byte_counts);
    const uint64_t span = uint64_t(hi) - uint64_t(lo);
    PGOLF_REQUIRE(span < kMaxAlphabet, Status::InvalidArgument,
            "values span [" + std::to_string(lo) + ", " + std::to_string(hi) + "], " + std::to_string(span + 1) +
                " symbols: more than the 65536 a rANS alphabet allows");
    h.offset = int64_t(uint64_t(lo));
    h.alphabet = size_t(span + 1);
    PGOLF_REQUIRE(tables * h.alphabet <= (uint64_t(1) << 26), Status::InvalidArgument,
            std::to_string(tables) + " tables of " + std::to_string(h.alphabet) +
                " symbols exceed the encoder's limit of 2^26 counters");
    h.counts.assign(tables, std::vector<uint64_t>(h.alphabet, 0));
    const uint64_t off = uint64_t(lo);
    if (!ctx.run && !byte_counts.empty()) {
        for (size_t k = 0; k < h.alphabet; ++k) h.counts[0][k] = byte_counts[uint8_t(off + k)];
    } else if (!ctx.run) {
        uint64_t* c = h.counts[0].data();
        for (uint64_t i = 0; i < n; ++i) ++c[uint64_t(v[i]) - off];
    } else if (ctx.run == 1) {  // per-symbol tables: one flat counter array, no per-symbol lookups
        const size_t K = h.alphabet;
        std::vector<uint64_t> flat(tables * K, 0);
        for (uint64_t i = 0; i < n; ++i) ++flat[size_t(ctx.ids[i]) * K + size_t(uint64_t(v[i]) - off)];
        for (uint64_t t = 0; t < tables; ++t) std::copy_n(flat.begin() + t * K, K, h.counts[t].begin());
    } else {
        for (uint64_t k = 0; k < ctx.count; ++k) {
            uint64_t* c = h.counts[ctx.ids[k]].data();
            const uint64_t a = k * ctx.run, b = std::min(n, a + ctx.run);
            for (uint64_t i = a; i < b; ++i) ++c[uint64_t(v[i]) - off];
        }
    }
    return h;
}

}  // namespace

Histogram histogram(const void* values, DType dtype, uint64_t n, const ContextSpec& ctx_in) {
    ContextSpec ctx = ctx_in;
    uint64_t tables = 1;
    if (ctx.run) {
        PGOLF_REQUIRE(ctx.ids != nullptr || ctx.count == 0, Status::InvalidArgument, "null context array");
        tables = ctx.num_tables;
        if (!tables)
            for (uint64_t k = 0; k < ctx.count; ++k) tables = std::max<uint64_t>(tables, uint64_t(ctx.ids[k]) + 1);
        tables = std::max<uint64_t>(tables, 1);
        PGOLF_REQUIRE(tables <= kMaxTables, Status::InvalidArgument,
                "the number of tables must be in [1, 4096], got " + std::to_string(tables));
        check_contexts(ctx, n, tables, Status::InvalidArgument);
        ctx.num_tables = tables;
    }
    Histogram h;
    PGOLF_DISPATCH(dtype, h = histogram_t<T>(static_cast<const T*>(values), n, ctx, tables));
    return h;
}

unsigned choose_precision(const Histogram& h) {
    // Minimise the expected frame size over n in [max(needed, 8), 16]: the payload bound
    // under the normalised tables, the tables' bytes, and the rANS step's own rounding
    // loss, which with L = 2^16 grows about 4x per extra bit of precision and is measured at
    // ~0.005 bits/symbol for n = 16 (docs/CODER.md, "Choosing the precision").
    size_t present = 1;
    uint64_t symbols = 0;
    for (const auto& c : h.counts) {
        present = std::max<size_t>(present, size_t(std::count_if(c.begin(), c.end(), [](uint64_t v) { return v; })));
        for (uint64_t v : c) symbols += v;
    }
    unsigned needed = 1;
    while ((size_t(1) << needed) < present) ++needed;
    const unsigned lo = std::max(needed, 8u);
    unsigned best_n = lo;
    double best = std::numeric_limits<double>::infinity();
    for (unsigned n = lo; n <= kMaxPrecision; ++n) {
        double bytes = double(symbols) * 0.005 * std::ldexp(1.0, 2 * (int(n) - 16)) / 8.0;
        for (const auto& c : h.counts) {
            if (std::all_of(c.begin(), c.end(), [](uint64_t v) { return v == 0; })) continue;
            const auto f = normalize_counts(c.data(), c.size(), n);
            bytes += cost_bits(c.data(), f.data(), c.size(), n) / 8.0 + double(table_size_bytes(f.data(), f.size(), n));
        }
        if (bytes < best) { best = bytes; best_n = n; }
    }
    return best_n;
}

unsigned default_lanes(uint64_t n) {
    if (n >= (uint64_t(1) << 16)) return 32;
    if (n >= (uint64_t(1) << 12)) return 8;
    return 4;
}

size_t EncodedFrame::size() const {
    size_t s = head.size() + 4;
    for (const auto& c : chunks) s += c.size();
    return s;
}

void EncodedFrame::write(uint8_t* dst) const {
    std::memcpy(dst, head.data(), head.size());
    dst += head.size();
    for (const auto& c : chunks) {
        std::memcpy(dst, c.data(), c.size());
        dst += c.size();
    }
    for (int b = 0; b < 4; ++b) dst[b] = uint8_t(crc >> (8 * b));
}

std::vector<uint8_t> EncodedFrame::to_vector() const {
    std::vector<uint8_t> out(size());
    write(out.data());
    return out;
}

EncodedFrame encode_frame(const void* values, DType dtype, const std::vector<uint64_t>& shape,
                          const ContextSpec& ctx_in, const TableSet* given, int64_t table_offset,
                          const EncodeOptions& opt) {
    PGOLF_REQUIRE(shape.size() <= kMaxDims, Status::InvalidArgument, "arrays of more than 8 dimensions are not supported");
    uint64_t n = 1;
    for (uint64_t d : shape) {
        PGOLF_REQUIRE(d == 0 || n <= std::numeric_limits<uint64_t>::max() / d, Status::InvalidArgument, "shape overflows");
        n *= d;
    }
    PGOLF_REQUIRE(opt.lanes == 0 || valid_lanes(opt.lanes), Status::InvalidArgument,
            "lanes must be 4, 8, 16, 32 or 64, got " + std::to_string(opt.lanes));

    PGOLF_REQUIRE(ctx_in.run == 0 || ctx_in.ids != nullptr || ctx_in.count == 0, Status::InvalidArgument,
            "null context array");
    ContextSpec ctx = ctx_in;
    TableSet tables;
    int64_t offset;
    if (given) {
        tables = *given;
        offset = table_offset;
        PGOLF_REQUIRE(tables.count() >= 1 && tables.count() <= kMaxTables, Status::InvalidArgument,
                "the number of tables must be in [1, 4096], got " + std::to_string(tables.count()));
        for (const auto& r : tables.runs) validate_run(r, tables.alphabet, tables.precision);
        if (ctx.run) {
            PGOLF_REQUIRE(ctx.num_tables == 0 || ctx.num_tables == tables.count(), Status::InvalidArgument,
                    "num_tables differs from the number of tables given");
            ctx.num_tables = tables.count();
        } else {
            PGOLF_REQUIRE(tables.count() == 1, Status::InvalidArgument, "several tables need a context array");
        }
    } else {
        Histogram h = histogram(values, dtype, n, ctx);
        ctx.num_tables = h.counts.size();
        offset = h.offset;
        tables.alphabet = h.alphabet;
        tables.precision = opt.precision ? opt.precision : choose_precision(h);
        PGOLF_REQUIRE(tables.precision >= kMinPrecision && tables.precision <= kMaxPrecision, Status::InvalidArgument,
                "precision must be in [1, 16], got " + std::to_string(tables.precision));
        for (const auto& c : h.counts) {
            if (std::all_of(c.begin(), c.end(), [](uint64_t v) { return v == 0; })) {
                tables.runs.emplace_back();  // an unused context: an empty table
            } else {
                const auto f = normalize_counts(c.data(), c.size(), tables.precision);
                tables.runs.push_back(TableRun::from_dense(f.data(), f.size()));
            }
        }
    }
    PGOLF_REQUIRE(uint64_t(tables.count()) << tables.precision <= DecodeLimits{}.max_table_entries, Status::InvalidArgument,
            std::to_string(tables.count()) + " tables at precision " + std::to_string(tables.precision) +
                " exceed the decoder's default limit of 2^24 table entries");
    if (ctx.run) check_contexts(ctx, n, tables.count(), Status::InvalidArgument);
    std::vector<uint16_t> expanded;
    const uint16_t* sym_ctx = per_symbol_contexts(ctx, n, expanded);

    const unsigned lanes = opt.lanes ? opt.lanes : default_lanes(n);
    const uint64_t chunk_size = opt.chunk_size ? opt.chunk_size : kDefaultChunkSize;
    EncodedFrame frame;
    if (n && !tables.zero_cost()) {
        const EncoderTables enc(tables);
        PGOLF_DISPATCH(dtype, frame.chunks = encode_chunks<T>(static_cast<const T*>(values), n, sym_ctx, enc,
                                                              uint64_t(offset), lanes, chunk_size, opt.threads));
    } else if (n) {  // zero-cost: still check every value is the one its table allows
        const EncoderTables enc(tables);
        PGOLF_DISPATCH(dtype, {
            const T* v = static_cast<const T*>(values);
            for (uint64_t i = 0; i < n; ++i) {
                const uint32_t t = sym_ctx ? sym_ctx[i] : 0;
                PGOLF_REQUIRE(enc.lookup(t, uint64_t(v[i]) - uint64_t(offset)) != nullptr, Status::InvalidArgument,
                        "value " + std::to_string(v[i]) + " at position " + std::to_string(i) +
                            " has frequency 0 in table " + std::to_string(t));
            }
        });
    }

    ByteWriter w;
    w.append(kFrameMagic, 4);
    w.u8(kFrameVersion);
    w.u8(uint8_t(dtype));
    w.u8(uint8_t(shape.size()));
    for (uint64_t d : shape) w.varint(d);
    w.zigzag(offset);
    w.varint(tables.alphabet);
    w.u8(uint8_t(tables.precision));
    w.varint(tables.count());
    w.varint(ctx.run);
    for (const auto& r : tables.runs) write_table_run(w, r);
    w.u8(uint8_t(lanes));
    w.varint(chunk_size);
    for (const auto& c : frame.chunks) w.varint(c.size());
    frame.head = std::move(w.bytes);
    frame.crc = crc32c(frame.head.data(), frame.head.size());
    for (const auto& c : frame.chunks) frame.crc = crc32c(c.data(), c.size(), frame.crc);
    return frame;
}

Frame parse_frame(const uint8_t* data, size_t size, const DecodeLimits& limits) {
    PGOLF_REQUIRE(size >= 4 && std::memcmp(data, kFrameMagic, 4) == 0, Status::BadMagic,
            "not a pgolf rANS frame (expected the magic bytes 'PGRA')");
    PGOLF_REQUIRE(size >= 9, Status::Truncated, "frame of " + std::to_string(size) + " bytes is shorter than its fixed fields");
    const uint32_t stored = uint32_t(data[size - 4]) | uint32_t(data[size - 3]) << 8 |
                            uint32_t(data[size - 2]) << 16 | uint32_t(data[size - 1]) << 24;
    ByteReader r(data, size - 4, "frame");
    r.take(4, "magic");
    const uint8_t version = r.u8("version");
    PGOLF_REQUIRE(version == kFrameVersion, Status::UnsupportedVersion,
            "frame version " + std::to_string(version) + "; this build reads version 1");
    const uint32_t actual = crc32c(data, size - 4);
    PGOLF_REQUIRE(actual == stored, Status::ChecksumMismatch,
            "frame CRC32C is " + std::to_string(actual) + " but the frame says " + std::to_string(stored) +
                " (corrupted or truncated)");
    Frame f;
    const uint8_t dtype = r.u8("dtype");
    PGOLF_REQUIRE(dtype_valid(dtype), Status::BadHeader, "unknown dtype code " + std::to_string(dtype));
    f.dtype = DType(dtype);
    const uint8_t ndim = r.u8("ndim");
    PGOLF_REQUIRE(ndim <= kMaxDims, Status::BadHeader, "ndim " + std::to_string(ndim) + " exceeds 8");
    // An array's shape must be one numpy (and a C pointer difference) can hold: the nonzero
    // dimensions times the item size stay below 2^63. A zero dimension makes n = 0 however
    // large the others are, so the output limit applies to n, not to each dimension.
    const uint64_t max_elements = uint64_t(std::numeric_limits<int64_t>::max()) / dtype_size(f.dtype);
    uint64_t nonzero = 1;
    bool has_zero = false;
    for (unsigned d = 0; d < ndim; ++d) {
        const uint64_t dim = r.varint("shape");
        f.shape.push_back(dim);
        if (dim == 0) { has_zero = true; continue; }
        PGOLF_REQUIRE(nonzero <= max_elements / dim, Status::BadHeader,
                "shape dimension " + std::to_string(d) + " (" + std::to_string(dim) + ") makes the array's " +
                    dtype_name(f.dtype) + " bytes pass 2^63 - 1: no array can have this shape");
        nonzero *= dim;
    }
    f.n = has_zero ? 0 : nonzero;
    PGOLF_REQUIRE(f.n <= limits.max_symbols, Status::LimitExceeded,
            "shape holds more than the limit of " + std::to_string(limits.max_symbols) + " symbols (" +
                std::to_string(f.n) + "; raise max_symbols to decode it)");
    f.offset = r.zigzag("offset");
    const uint64_t alphabet = r.varint("alphabet");
    PGOLF_REQUIRE(alphabet >= 1 && alphabet <= kMaxAlphabet, Status::BadHeader,
            "alphabet of " + std::to_string(alphabet) + " symbols is outside [1, 65536]");
    const uint8_t precision = r.u8("precision");
    PGOLF_REQUIRE(precision >= kMinPrecision && precision <= kMaxPrecision, Status::BadHeader,
            "precision " + std::to_string(precision) + " is outside [1, 16]");
    const uint64_t num_tables = r.varint("num_tables");
    PGOLF_REQUIRE(num_tables >= 1 && num_tables <= kMaxTables, Status::BadHeader,
            "number of tables " + std::to_string(num_tables) + " is outside [1, 4096]");
    PGOLF_REQUIRE(num_tables << precision <= limits.max_table_entries, Status::LimitExceeded,
            std::to_string(num_tables) + " tables at precision " + std::to_string(precision) +
                " exceed the limit of " + std::to_string(limits.max_table_entries) + " table entries");
    f.ctx_run = r.varint("ctx_run");
    PGOLF_REQUIRE(f.ctx_run != 0 || num_tables == 1, Status::BadHeader, "several tables but no context run length");
    const size_t tables_start = r.offset();
    f.tables.precision = precision;
    f.tables.alphabet = size_t(alphabet);
    for (uint64_t t = 0; t < num_tables; ++t) f.tables.runs.push_back(read_table_run(r, size_t(alphabet), precision));
    f.table_bytes = r.offset() - tables_start;
    PGOLF_REQUIRE(f.ctx_run != 0 || f.n == 0 || !f.tables.table_empty(0), Status::BadTable,
            "the frame's only table is empty but it holds " + std::to_string(f.n) + " symbols");
    f.lanes = r.u8("lanes");
    PGOLF_REQUIRE(valid_lanes(f.lanes), Status::BadHeader, "lanes " + std::to_string(f.lanes) + " is not 4, 8, 16, 32 or 64");
    f.chunk_size = r.varint("chunk_size");
    PGOLF_REQUIRE(f.chunk_size >= 1, Status::BadHeader, "chunk_size is 0");
    const uint64_t num_chunks = (f.n == 0 || f.tables.zero_cost()) ? 0 : ceil_div(f.n, f.chunk_size);
    const uint64_t min_chunk = 4 * uint64_t(f.lanes);
    PGOLF_REQUIRE(num_chunks <= r.remaining() / (min_chunk + 1), Status::Truncated,
            std::to_string(num_chunks) + " chunks cannot fit in the " + std::to_string(r.remaining()) +
                " bytes that remain");
    std::vector<uint64_t> sizes(num_chunks);
    for (uint64_t c = 0; c < num_chunks; ++c) {
        sizes[c] = r.varint("chunk_bytes");
        PGOLF_REQUIRE(sizes[c] >= min_chunk && (sizes[c] - min_chunk) % 2 == 0, Status::BadHeader,
                "chunk " + std::to_string(c) + " is " + std::to_string(sizes[c]) + " bytes; a chunk is " +
                    std::to_string(min_chunk) + " bytes of states plus whole 16-bit words");
    }
    uint64_t total = 0;
    for (uint64_t c = 0; c < num_chunks; ++c) {
        PGOLF_REQUIRE(sizes[c] <= r.remaining() - total, Status::Truncated,
                "chunk " + std::to_string(c) + " of " + std::to_string(sizes[c]) + " bytes runs past the frame");
        total += sizes[c];
    }
    PGOLF_REQUIRE(total == r.remaining(), Status::TrailingData,
            std::to_string(r.remaining() - total) + " bytes follow the last chunk");
    const uint8_t* p = r.take(size_t(total), "payload");
    for (uint64_t s : sizes) {
        f.chunks.push_back({p, size_t(s)});
        p += s;
    }
    f.payload_bytes = size_t(total);
    f.total_bytes = size;
    f.header_bytes = size - f.payload_bytes - f.table_bytes;
    return f;
}

void decode_frame(const Frame& f, const uint16_t* ids, uint64_t count, void* out, unsigned threads, Kernel kernel) {
    ContextSpec ctx;
    if (f.ctx_run) {
        PGOLF_REQUIRE(ids != nullptr || f.n == 0, Status::ContextMismatch,
                "this frame was coded with contexts (" + std::to_string(f.tables.count()) +
                    " tables); pass the encoder's context ids to decode it");
        ctx = {ids, count, f.ctx_run, f.tables.count()};
        check_contexts(ctx, f.n, f.tables.count(), Status::ContextMismatch);
        std::vector<bool> empty(f.tables.count());
        for (size_t t = 0; t < empty.size(); ++t) empty[t] = f.tables.table_empty(t);
        for (uint64_t k = 0; k < count; ++k)
            PGOLF_REQUIRE(!empty[ids[k]], Status::ContextMismatch,
                    "context id " + std::to_string(ids[k]) + " at position " + std::to_string(k) +
                        " selects an empty table");
    } else {
        PGOLF_REQUIRE(ids == nullptr, Status::ContextMismatch, "contexts were given for a frame coded without contexts");
    }
    std::vector<uint16_t> expanded;
    const uint16_t* sym_ctx = per_symbol_contexts(ctx, f.n, expanded);
    if (f.n == 0) return;
    if (f.tables.zero_cost()) {  // every selected table holds one symbol (checked above): fill
        PGOLF_DISPATCH(f.dtype, {
            T* o = static_cast<T*>(out);
            for (uint64_t i = 0; i < f.n; ++i) {
                const uint32_t t = sym_ctx ? sym_ctx[i] : 0;
                o[i] = T(uint64_t(f.offset) + f.tables.runs[t].first);
            }
        });
        return;
    }
    // Slot tables cost T * 2^n entries whatever the frame's size; build them only when that is
    // within a constant factor of the work the frame pays for (its symbols and bytes), or when
    // the caller forces a slot kernel (bounded by max_table_entries, as parse_frame checked).
    const bool slots = kernel == Kernel::Auto
                           ? (uint64_t(f.tables.count()) << f.tables.precision) <=
                                 kSlotEntriesPerUnit * (f.n + uint64_t(f.total_bytes))
                           : kernel != Kernel::Search;
    const DecoderTables tables(f.tables, slots);
    if (!slots) kernel = Kernel::Search;
    PGOLF_DISPATCH(f.dtype, decode_chunks<T>(f.chunks, f.n, sym_ctx, tables, uint64_t(f.offset), f.lanes,
                                              f.chunk_size, static_cast<T*>(out), threads, kernel));
}

}  // namespace pgolf
