// rans_stream.hpp: interleaved, chunked rANS streams over sets of frequency tables.
//
// READ ME FIRST
//  * A stream codes n integers, split into chunks of `chunk_size` symbols (the last may be
//    shorter). Chunks are independent, so they encode and decode on several threads.
//  * A chunk of m symbols with W lanes is: W initial decoder states (u32 LE), then the 16-bit
//    words (u16 LE) in the order the decoder reads them (rans_core.hpp).
//  * Symbol i may use its own table: ctx[i] (a per-symbol context, or nullptr for table 0).
//    All tables share one alphabet [0, K) and one precision n, so the decoder finds the
//    entry for (table t, slot s) at t * 2^n + s.
//  * Decoders never trust a chunk: they check its length, every state, that the words do
//    not run out, that none are left over, and that every lane ends at L.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "freq_table.hpp"
#include "rans_core.hpp"

namespace pgolf {

constexpr unsigned kMaxLanes = 64;

inline bool valid_lanes(unsigned w) { return w == 4 || w == 8 || w == 16 || w == 32 || w == 64; }

// T frequency tables over a common alphabet of K symbols at one precision, each kept as its
// nonzero range (TableRun), so a set read from a frame costs what its bytes cost, not T x K.
struct TableSet {
    unsigned precision = 0;
    size_t alphabet = 0;
    std::vector<TableRun> runs;

    size_t count() const { return runs.size(); }
    bool table_empty(size_t t) const { return runs[t].empty(); }
    // True when every non-empty table has a single symbol: such streams cost 0 bits.
    bool zero_cost() const;
};

// Encoder view of a TableSet: for table t, the EncSymbols of indices [first[t], first[t] + span[t])
// start at symbols[base[t]]; indices outside that range, or with x_max == 0, are absent.
struct EncoderTables {
    explicit EncoderTables(const TableSet& tables);
    // The coding parameters of index `idx` in table `t`, or nullptr if its frequency is 0.
    const EncSymbol* lookup(uint32_t t, uint64_t idx) const {
        if (t >= first.size()) return nullptr;
        const uint64_t r = idx - first[t];
        if (r >= span[t]) return nullptr;
        const EncSymbol* s = &symbols[base[t] + r];
        return s->x_max ? s : nullptr;
    }

    std::vector<EncSymbol> symbols;
    std::vector<uint64_t> base, first, span;
};

// Decoder view of a TableSet, in one of two forms:
//  * slots: a 2^n-entry slot table per table (what the scalar and vector kernels index):
//    T * 2^n entries, fast, but its size does not depend on the frame's bytes;
//  * search (slots = false): each table's cumulative frequencies over its nonzero range, a
//    binary search per symbol. Memory is proportional to the serialised tables, which is how
//    a decode of a crafted frame of many high-precision tables stays proportional to its
//    bytes (docs/SECURITY.md); the frame decoder picks it when slots would cost more.
// Either way a decode must not select an empty table: decode_frame refuses such contexts first.
struct DecoderTables {
    DecoderTables(const TableSet& tables, bool slots);
    unsigned precision;
    bool slots;
    std::vector<uint32_t> entry;   // slots: T * 2^n decode entries (rans_core.hpp)
    std::vector<uint16_t> symbol;  // slots: T * 2^n symbol indices, + 2 padding for 32-bit gathers
    std::vector<uint32_t> cum;     // search: per table, cum[base[t] + j] for j = 0 .. span[t] (= M)
    std::vector<uint64_t> base, first;
    std::vector<uint32_t> span;
};

// Auto picks slots when T * 2^n is at most this many times the symbols plus the frame's bytes.
constexpr uint64_t kSlotEntriesPerUnit = 4;

enum class Kernel : int { Auto = 0, Scalar = 1, Avx2 = 2, Avx512 = 3, Search = 4 };
const char* kernel_name(Kernel k);
bool kernel_available(Kernel k);
// The kernel a decode with `lanes` lanes will use; throws InvalidArgument if `requested`
// is not available on this CPU.
Kernel resolve_kernel(Kernel requested, unsigned lanes);

struct ChunkSpan {
    const uint8_t* data;
    size_t size;
};

// One encoded chunk. The encoder writes it backwards into the end of its own allocation, so
// the bytes are [data(), data() + size()) rather than the whole buffer.
class EncodedChunk {
public:
    EncodedChunk() = default;
    EncodedChunk(std::unique_ptr<uint8_t[]> buffer, size_t begin, size_t end)
        : buffer_(std::move(buffer)), begin_(begin), end_(end) {}
    const uint8_t* data() const { return buffer_.get() + begin_; }
    size_t size() const { return end_ - begin_; }

private:
    std::unique_ptr<uint8_t[]> buffer_;
    size_t begin_ = 0, end_ = 0;
};

template <class T>
std::vector<EncodedChunk> encode_chunks(const T* values, uint64_t n, const uint16_t* ctx,
                                                const EncoderTables& tables, uint64_t offset, unsigned lanes,
                                                uint64_t chunk_size, unsigned threads);

template <class T>
void decode_chunks(const std::vector<ChunkSpan>& chunks, uint64_t n, const uint16_t* ctx,
                   const DecoderTables& tables, uint64_t offset, unsigned lanes, uint64_t chunk_size, T* out,
                   unsigned threads, Kernel kernel);

}  // namespace pgolf
