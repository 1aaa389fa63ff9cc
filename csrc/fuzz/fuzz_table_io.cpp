// fuzz_table_io: (1) arbitrary bytes -> read_table must return a valid table or throw;
// (2) a table built from fuzzed counts -> write -> read (with junk after it) -> identical.
#include <cstdint>
#include <vector>

#include "../errors.hpp"
#include "../freq_table.hpp"

using namespace pgolf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const unsigned precision = 1 + data[0] % 16;
    const size_t alphabet = 1 + data[1] * 7;
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
    } catch (const CodecError& e) {
        if (e.status() != Status::InvalidArgument) __builtin_trap();  // only "too many symbols"/"zero counts"
    }
    return 0;
}
