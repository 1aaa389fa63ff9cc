// freq_table.hpp: static frequency tables for rANS, and their compact serialisation.
//
// READ ME FIRST
//  * A table is a vector `freq` over an index alphabet [0, K), K <= 65536, whose entries sum
//    to exactly M = 2^precision (1 <= precision <= 16). Index i stands for the integer value
//    offset + i; the offset lives in the frame, not in the table.
//  * normalize_counts() returns the integer frequencies that minimise the coded size
//    sum_i counts[i] * log2(M / freq[i]) subject to freq[i] >= 1 wherever counts[i] > 0 and
//    sum freq = M. The objective is separable and convex, so greedy unit moves from a
//    rounded start reach the exact optimum; ties break on the lower index, so the result is
//    deterministic. Both encoder and decoder use the serialised integers, never floats.
//  * A table with one present symbol has freq M there: it codes that symbol in 0 bits.
//  * An empty table (all zero) is allowed in a frame as a placeholder for an unused context;
//    it can code nothing.
//
//  * Decoders keep a table as a TableRun, its nonzero range only, so that reading a table costs
//    memory and time in proportion to its serialised bytes (each stored frequency takes at
//    least one bit), never in proportion to the alphabet K.
//
// Serialised form (docs/CODER.md, "Table"):
//    varint first      index of the first nonzero entry (0 for an empty table)
//    varint count      first + count <= K; 0 = empty table, 1 = single symbol (freq M)
//    then, for count >= 2, a bit stream (LSB first, zero-padded to a byte) of the
//    frequencies of indices first .. first+count-2 (the last is implied by the sum), each as
//    the zigzag of its difference from the previous one, in adaptive Rice codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "byte_io.hpp"

namespace pgolf {

constexpr unsigned kMinPrecision = 1;
constexpr unsigned kMaxPrecision = 16;
constexpr size_t kMaxAlphabet = 65536;

// Optimal normalisation (see above). Throws InvalidArgument if no count is positive or more
// symbols are present than 2^precision allows.
std::vector<uint32_t> normalize_counts(const uint64_t* counts, size_t K, unsigned precision);

// Bits needed to code a histogram under a table: sum counts[i] * log2(M / freq[i]).
// Returns +infinity if a counted symbol has frequency 0.
double cost_bits(const uint64_t* counts, const uint32_t* freq, size_t K, unsigned precision);

// Checks the invariants above; throws BadTable naming the first violation.
void validate_table(const uint32_t* freq, size_t K, unsigned precision);

// A table as its nonzero range: freq[j] is the frequency of index first + j. `freq` is empty
// (an empty table, first = 0) or starts and ends with a nonzero entry.
struct TableRun {
    uint64_t first = 0;
    std::vector<uint32_t> freq;

    bool empty() const { return freq.empty(); }
    static TableRun from_dense(const uint32_t* f, size_t K);
    std::vector<uint32_t> dense(size_t K) const;
};

// Checks a run against alphabet K and precision as validate_table checks a dense table.
void validate_run(const TableRun& t, size_t K, unsigned precision);

// write_table validates a dense table; write_table_run trusts a run built from a valid one.
void write_table(ByteWriter& w, const uint32_t* freq, size_t K, unsigned precision);
void write_table_run(ByteWriter& w, const TableRun& t);
// Reads and fully validates one table; the run's size is bounded by the bytes read.
TableRun read_table_run(ByteReader& r, size_t K, unsigned precision);
std::vector<uint32_t> read_table(ByteReader& r, size_t K, unsigned precision);
size_t table_size_bytes(const uint32_t* freq, size_t K, unsigned precision);

}  // namespace pgolf
