#include "freq_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <queue>
#include <string>
#include <utility>

namespace pgolf {
namespace {

// Marginal saving of one more unit of frequency, and marginal cost of one unit less.
inline double gain_up(uint64_t c, uint32_t f) { return double(c) * std::log1p(1.0 / double(f)); }
inline double loss_down(uint64_t c, uint32_t f) { return -double(c) * std::log1p(-1.0 / double(f)); }

// Priority-queue entries compare by value, then prefer the lower index (deterministic ties).
struct MaxEntry {
    double v;
    uint32_t i;
    bool operator<(const MaxEntry& o) const { return v < o.v || (v == o.v && i > o.i); }
};
struct MinEntry {
    double v;
    uint32_t i;
    bool operator<(const MinEntry& o) const { return v > o.v || (v == o.v && i > o.i); }
};

}  // namespace

std::vector<uint32_t> normalize_counts(const uint64_t* counts, size_t K, unsigned precision) {
    PGOLF_REQUIRE(precision >= kMinPrecision && precision <= kMaxPrecision, Status::InvalidArgument,
            "precision must be in [1, 16], got " + std::to_string(precision));
    PGOLF_REQUIRE(K >= 1 && K <= kMaxAlphabet, Status::InvalidArgument,
            "alphabet size must be in [1, 65536], got " + std::to_string(K));
    const uint32_t M = 1u << precision;
    std::vector<uint32_t> f(K, 0);
    size_t present = 0, last = 0;
    unsigned __int128 total = 0;
    for (size_t i = 0; i < K; ++i)
        if (counts[i]) { ++present; last = i; total += counts[i]; }
    PGOLF_REQUIRE(present > 0, Status::InvalidArgument, "cannot build a frequency table from zero counts");
    PGOLF_REQUIRE(present <= M, Status::InvalidArgument,
            std::to_string(present) + " distinct symbols need precision >= " +
                std::to_string(int(std::ceil(std::log2(double(present))))) + ", got " + std::to_string(precision));
    if (present == 1) {
        f[last] = M;
        return f;
    }
    // Rounded-down start, every present symbol at least 1.
    int64_t sum = 0;
    for (size_t i = 0; i < K; ++i) {
        if (!counts[i]) continue;
        uint64_t q = uint64_t((unsigned __int128)counts[i] * M / total);
        f[i] = uint32_t(q < 1 ? 1 : q);
        sum += f[i];
    }
    // Bring the sum to M by greedy unit moves, then swap units while that lowers the cost.
    std::priority_queue<MaxEntry> up;
    std::priority_queue<MinEntry> down;
    for (size_t i = 0; i < K; ++i) {
        if (!counts[i]) continue;
        up.push({gain_up(counts[i], f[i]), uint32_t(i)});
        if (f[i] > 1) down.push({loss_down(counts[i], f[i]), uint32_t(i)});
    }
    auto top_up = [&]() -> MaxEntry {
        while (true) {
            MaxEntry e = up.top();
            if (e.v == gain_up(counts[e.i], f[e.i])) return e;
            up.pop();
        }
    };
    auto top_down = [&]() -> MinEntry {
        while (!down.empty()) {
            MinEntry e = down.top();
            if (f[e.i] > 1 && e.v == loss_down(counts[e.i], f[e.i])) return e;
            down.pop();
        }
        return {std::numeric_limits<double>::infinity(), 0};
    };
    auto bump = [&](uint32_t i, int delta) {
        f[i] = uint32_t(int64_t(f[i]) + delta);
        up.push({gain_up(counts[i], f[i]), i});
        if (f[i] > 1) down.push({loss_down(counts[i], f[i]), i});
    };
    while (sum < int64_t(M)) { bump(top_up().i, +1); ++sum; }
    while (sum > int64_t(M)) { bump(top_down().i, -1); --sum; }
    for (;;) {
        MaxEntry a = top_up();
        MinEntry b = top_down();
        if (a.i == b.i || !(a.v > b.v * (1.0 + 1e-12) + 1e-300)) break;
        bump(a.i, +1);
        bump(b.i, -1);
    }
    return f;
}

double cost_bits(const uint64_t* counts, const uint32_t* freq, size_t K, unsigned precision) {
    double bits = 0.0;
    for (size_t i = 0; i < K; ++i) {
        if (!counts[i]) continue;
        if (!freq[i]) return std::numeric_limits<double>::infinity();
        bits += double(counts[i]) * (double(precision) - std::log2(double(freq[i])));
    }
    return bits;
}

void validate_table(const uint32_t* freq, size_t K, unsigned precision) {
    PGOLF_REQUIRE(precision >= kMinPrecision && precision <= kMaxPrecision, Status::BadTable,
            "precision must be in [1, 16], got " + std::to_string(precision));
    PGOLF_REQUIRE(K >= 1 && K <= kMaxAlphabet, Status::BadTable, "alphabet size must be in [1, 65536]");
    uint64_t sum = 0;
    for (size_t i = 0; i < K; ++i) sum += freq[i];
    PGOLF_REQUIRE(sum == 0 || sum == (uint64_t(1) << precision), Status::BadTable,
            "frequencies sum to " + std::to_string(sum) + ", expected " + std::to_string(1u << precision));
}

void validate_run(const TableRun& t, size_t K, unsigned precision) {
    PGOLF_REQUIRE(K >= 1 && K <= kMaxAlphabet, Status::BadTable, "alphabet size must be in [1, 65536]");
    PGOLF_REQUIRE(t.first <= K && t.freq.size() <= K - t.first, Status::BadTable,
            "table range exceeds the alphabet of " + std::to_string(K) + " symbols");
    if (t.freq.empty()) {
        PGOLF_REQUIRE(precision >= kMinPrecision && precision <= kMaxPrecision && t.first == 0, Status::BadTable,
                "an empty table needs first = 0 and a precision in [1, 16]");
        return;
    }
    PGOLF_REQUIRE(t.freq.front() && t.freq.back(), Status::BadTable,
            "a table run must start and end with a nonzero frequency");
    validate_table(t.freq.data(), t.freq.size(), precision);
}

namespace {

// Adaptive Rice coding of the table's frequency deltas (docs/CODER.md, "Table"): the Rice
// parameter follows the running mean of the coded magnitudes, as in LOCO-I.
constexpr unsigned kEscapeQuotient = 24;
constexpr unsigned kEscapeBits = 18;

struct RiceState {
    uint64_t sum = 16, count = 1;  // start at k = 4
    unsigned k() const {
        unsigned k = 0;
        while ((count << k) < sum && k < 17) ++k;
        return k;
    }
    void update(uint64_t v) {
        sum += v;
        if (++count == 32) { sum >>= 1; count >>= 1; }
    }
};

class BitWriter {
public:
    explicit BitWriter(ByteWriter& w) : w_(w) {}
    void put(uint64_t bits, unsigned n) {  // n <= 32, LSB first
        acc_ |= bits << fill_;
        fill_ += n;
        while (fill_ >= 8) { w_.u8(uint8_t(acc_)); acc_ >>= 8; fill_ -= 8; }
    }
    void flush() { if (fill_) w_.u8(uint8_t(acc_)); acc_ = 0; fill_ = 0; }

private:
    ByteWriter& w_;
    uint64_t acc_ = 0;
    unsigned fill_ = 0;
};

class BitReader {
public:
    explicit BitReader(ByteReader& r) : r_(r) {}
    uint64_t get(unsigned n) {
        while (fill_ < n) { acc_ |= uint64_t(r_.u8("table.bits")) << fill_; fill_ += 8; }
        const uint64_t v = acc_ & ((uint64_t(1) << n) - 1);
        acc_ >>= n;
        fill_ -= n;
        return v;
    }
    // The padding of the last byte must be zero, so that each table has one encoding.
    void finish() { PGOLF_REQUIRE(acc_ == 0, Status::BadTable, "nonzero padding after the table's last code"); }

private:
    ByteReader& r_;
    uint64_t acc_ = 0;
    unsigned fill_ = 0;
};

uint64_t zigzag64(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
int64_t unzigzag64(uint64_t z) { return int64_t(z >> 1) ^ -int64_t(z & 1); }

}  // namespace

TableRun TableRun::from_dense(const uint32_t* f, size_t K) {
    TableRun t;
    size_t lo = K, hi = 0;
    for (size_t i = 0; i < K; ++i)
        if (f[i]) { if (lo == K) lo = i; hi = i; }
    if (lo == K) return t;  // empty table
    t.first = lo;
    t.freq.assign(f + lo, f + hi + 1);
    return t;
}

std::vector<uint32_t> TableRun::dense(size_t K) const {
    std::vector<uint32_t> f(K, 0);
    std::copy(freq.begin(), freq.end(), f.begin() + ptrdiff_t(first));
    return f;
}

void write_table(ByteWriter& w, const uint32_t* freq, size_t K, unsigned precision) {
    validate_table(freq, K, precision);
    write_table_run(w, TableRun::from_dense(freq, K));
}

void write_table_run(ByteWriter& w, const TableRun& t) {
    w.varint(t.first);
    w.varint(t.freq.size());  // 0 for an empty table
    if (t.freq.size() < 2) return;
    BitWriter bits(w);
    RiceState rice;
    int64_t previous = 0;
    for (size_t j = 0; j + 1 < t.freq.size(); ++j) {  // the last frequency is implied
        const uint64_t z = zigzag64(int64_t(t.freq[j]) - previous);
        previous = t.freq[j];
        const unsigned k = rice.k();
        const uint64_t q = z >> k;
        if (q < kEscapeQuotient) {
            bits.put((uint64_t(1) << q) - 1, unsigned(q) + 1);  // q ones, then a zero
            bits.put(z & ((uint64_t(1) << k) - 1), k);
        } else {
            bits.put((uint64_t(1) << kEscapeQuotient) - 1, kEscapeQuotient);
            bits.put(z, kEscapeBits);
        }
        rice.update(z);
    }
    bits.flush();
}

size_t table_size_bytes(const uint32_t* freq, size_t K, unsigned precision) {
    ByteWriter w;
    write_table(w, freq, K, precision);
    return w.size();
}

TableRun read_table_run(ByteReader& r, size_t K, unsigned precision) {
    const uint64_t M = uint64_t(1) << precision;
    TableRun t;
    const uint64_t first = r.varint("table.first");
    const uint64_t count = r.varint("table.count");
    if (count == 0) {
        PGOLF_REQUIRE(first == 0, Status::BadTable, "an empty table must have first = 0, got " + std::to_string(first));
        return t;
    }
    PGOLF_REQUIRE(first < K && count <= K - first, Status::BadTable,
            "table range [" + std::to_string(first) + ", " + std::to_string(first + count) +
                ") exceeds the alphabet of " + std::to_string(K) + " symbols");
    t.first = first;
    if (count == 1) {
        t.freq.push_back(uint32_t(M));
        return t;
    }
    // Every stored frequency takes at least one bit, so a count the remaining bytes cannot back
    // fails here, before it costs memory; one that they can is reserved exactly.
    PGOLF_REQUIRE(count - 1 <= 8 * uint64_t(r.remaining()), Status::Truncated,
            "table ends inside field 'table.bits': its " + std::to_string(count) + " entries need at least " +
                std::to_string(count - 1) + " bits, and " + std::to_string(r.remaining()) + " bytes remain");
    t.freq.reserve(size_t(count));
    BitReader bits(r);
    RiceState rice;
    int64_t previous = 0;
    uint64_t sum = 0;
    const uint64_t end = first + count - 1;  // the implied last entry
    for (uint64_t i = first; i < end; ++i) {
        const unsigned k = rice.k();
        uint64_t q = 0;
        while (q < kEscapeQuotient && bits.get(1)) ++q;
        uint64_t z;
        if (q < kEscapeQuotient) {
            z = (q << k) | bits.get(k);
        } else {
            z = bits.get(kEscapeBits);
            PGOLF_REQUIRE((z >> k) >= kEscapeQuotient, Status::BadTable,
                          "escaped frequency at index " + std::to_string(i) + " fits the short code (non-canonical)");
        }
        const int64_t v = previous + unzigzag64(z);
        PGOLF_REQUIRE(v >= 0 && uint64_t(v) < M, Status::BadTable,
                      "frequency " + std::to_string(v) + " at index " + std::to_string(i) +
                          " is outside [0, M) in a table of several symbols (M = " + std::to_string(M) + ")");
        PGOLF_REQUIRE(i != first || v > 0, Status::BadTable, "the table's first frequency is 0");
        sum += uint64_t(v);
        PGOLF_REQUIRE(sum < M, Status::BadTable,
                      "frequencies reach M = " + std::to_string(M) + " by index " + std::to_string(i));
        t.freq.push_back(uint32_t(v));
        previous = v;
        rice.update(z);
    }
    bits.finish();
    t.freq.push_back(uint32_t(M - sum));
    return t;
}

std::vector<uint32_t> read_table(ByteReader& r, size_t K, unsigned precision) {
    return read_table_run(r, K, precision).dense(K);
}

}  // namespace pgolf
