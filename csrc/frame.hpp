// frame.hpp: the self-describing rANS frame: dtype, shape, tables and chunked payload.
//
// READ ME FIRST
//  * encode_frame() codes a whole integer array; parse_frame() validates every header
//    field, every table and the chunk directory, and checks the CRC32C, before anything is
//    decoded or allocated; decode_frame() then decodes the chunks (rans_stream.hpp).
//  * The byte layout is specified in docs/CODER.md ("Frame"). All integers are
//    little-endian or LEB128 varints; there are no holes and no trailing bytes.
//  * Contexts (several tables in one frame) are side information the caller keeps: one
//    table id per run of `ctx_run` symbols. The frame records the number of tables and the
//    run length, so a decode with a context array of the wrong shape fails up front, and one
//    with wrong values fails the end-of-stream check with near certainty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rans_stream.hpp"

namespace pgolf {

enum class DType : uint8_t { Int8 = 1, UInt8 = 2, Int16 = 3, UInt16 = 4, Int32 = 5, UInt32 = 6, Int64 = 7, UInt64 = 8 };
size_t dtype_size(DType d);
const char* dtype_name(DType d);
bool dtype_valid(uint8_t code);

constexpr uint8_t kFrameMagic[4] = {'P', 'G', 'R', 'A'};
constexpr uint8_t kFrameVersion = 1;
constexpr unsigned kMaxDims = 8;
constexpr uint64_t kMaxTables = 4096;
constexpr uint64_t kDefaultChunkSize = uint64_t(1) << 22;

// Table ids for the symbols: ids[k] covers symbols [k * run, (k + 1) * run).
struct ContextSpec {
    const uint16_t* ids = nullptr;
    uint64_t count = 0;
    uint64_t run = 0;         // 0: no contexts, one table
    uint64_t num_tables = 0;  // encode: 0 = max(ids) + 1
};

struct EncodeOptions {
    unsigned precision = 0;   // 0: chosen per frame (choose_precision)
    unsigned lanes = 0;       // 0: by length (default_lanes)
    uint64_t chunk_size = 0;  // 0: kDefaultChunkSize
    unsigned threads = 0;     // 0: all hardware threads
};

struct DecodeLimits {
    uint64_t max_symbols = uint64_t(1) << 28;
    uint64_t max_table_entries = uint64_t(1) << 24;  // tables * 2^precision
};

// A parsed, validated frame header; chunk spans point into the caller's bytes.
struct Frame {
    DType dtype = DType::Int8;
    std::vector<uint64_t> shape;
    uint64_t n = 0;
    int64_t offset = 0;
    TableSet tables;
    uint64_t ctx_run = 0;
    unsigned lanes = 0;
    uint64_t chunk_size = 0;
    std::vector<ChunkSpan> chunks;
    size_t header_bytes = 0;     // everything before the tables and after them up to the payload
    size_t table_bytes = 0;      // the serialised tables
    size_t payload_bytes = 0;    // the chunks (states and words)
    size_t total_bytes = 0;      // the whole frame, CRC included
};

// Per-table symbol histograms over the values' common alphabet [offset, offset + alphabet).
struct Histogram {
    int64_t offset = 0;
    size_t alphabet = 0;
    std::vector<std::vector<uint64_t>> counts;
};

Histogram histogram(const void* values, DType dtype, uint64_t n, const ContextSpec& ctx);
unsigned choose_precision(const Histogram& h);
unsigned default_lanes(uint64_t n);

// An encoded frame in pieces: header and directory, then the chunks, then the CRC. write()
// assembles it into a buffer of size() bytes, so the payload is copied once.
struct EncodedFrame {
    std::vector<uint8_t> head;
    std::vector<EncodedChunk> chunks;
    uint32_t crc = 0;

    size_t size() const;
    void write(uint8_t* dst) const;
    std::vector<uint8_t> to_vector() const;
};

EncodedFrame encode_frame(const void* values, DType dtype, const std::vector<uint64_t>& shape, const ContextSpec& ctx,
                          const TableSet* tables, int64_t table_offset, const EncodeOptions& options);

Frame parse_frame(const uint8_t* data, size_t size, const DecodeLimits& limits);

// `ids`/`count`: the encoder's context ids (nullptr for a frame without contexts).
void decode_frame(const Frame& frame, const uint16_t* ids, uint64_t count, void* out, unsigned threads, Kernel kernel);

}  // namespace pgolf
