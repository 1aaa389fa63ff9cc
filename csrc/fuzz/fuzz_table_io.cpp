// fuzz_table_io: (1) arbitrary bytes -> read_table_run must return a valid table or throw,
// with a peak heap of at most 64 KiB + 64 bytes per input byte whatever the alphabet (the
// run is bounded by the bits read, not by K); (2) a table built from fuzzed counts -> write
// -> read (with junk after it) -> identical, dense and as a run.
#include <cstdint>
#include <vector>

#include "../errors.hpp"
#include "../freq_table.hpp"
#include "alloc_meter.hpp"

using namespace pgolf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const unsigned precision = 1 + data[0] % 16;
    const size_t alphabet = data[1] == 255 ? kMaxAlphabet : 1 + data[1] * 7;
    {
        const pgolf_fuzz::AllocMeter meter;
        try {
            ByteReader r(data + 2, size - 2, "table");
            const TableRun t = read_table_run(r, alphabet, precision);
            validate_run(t, alphabet, precision);
        } catch (const CodecError&) {
        }
        meter.require_within((uint64_t(1) << 16) + 64 * uint64_t(size), "fuzz_table_io", size);
    }
    try {
        ByteReader r(data + 2, size - 2, "table");
        auto f = read_table(r, alphabet, precision);
        validate_table(f.data(), f.size(), precision);
    } catch (const CodecError&) {
    }
    std::vector<uint64_t> counts(alphabet, 0);
    for (size_t i = 2; i < size; ++i) counts[(i * 31 + data[i]) % alphabet] += data[i];
    try {
        auto f = normalize_counts(counts.data(), counts.size(), precision);
        ByteWriter w;
        write_table(w, f.data(), f.size(), precision);
        w.u8(0xAB);
        ByteReader r(w.bytes.data(), w.bytes.size(), "table");
        auto g = read_table(r, alphabet, precision);
        if (g != f || r.remaining() != 1) __builtin_trap();
        ByteReader r2(w.bytes.data(), w.bytes.size(), "table");
        const TableRun run = read_table_run(r2, alphabet, precision);
        if (run.dense(alphabet) != f || r2.remaining() != 1) __builtin_trap();
        ByteWriter w2;
        write_table_run(w2, run);
        w2.u8(0xAB);
        if (w2.bytes != w.bytes) __builtin_trap();
    } catch (const CodecError& e) {
        if (e.status() != Status::InvalidArgument) __builtin_trap();  // only "too many symbols"/"zero counts"
    }
    return 0;
}
