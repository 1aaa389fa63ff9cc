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

#include "rans_core.hpp"

namespace pgolf {

constexpr unsigned kMaxLanes = 64;

inline bool valid_lanes(unsigned w) { return w == 4 || w == 8 || w == 16 || w == 32 || w == 64; }

// T frequency tables over a common alphabet of K symbols at one precision.
struct TableSet {
    unsigned precision = 0;
    size_t alphabet = 0;
    std::vector<std::vector<uint32_t>> freqs;

    size_t count() const { return freqs.size(); }
    bool table_empty(size_t t) const;
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

struct DecoderTables {
    explicit DecoderTables(const TableSet& tables);
    unsigned precision;
    std::vector<uint32_t> entry;   // T * 2^n decode entries (rans_core.hpp)
    std::vector<uint16_t> symbol;  // T * 2^n symbol indices, + 2 padding for 32-bit gathers
};

enum class Kernel : int { Auto = 0, Scalar = 1, Avx2 = 2, Avx512 = 3 };
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
