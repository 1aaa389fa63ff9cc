// rans_core.hpp: the rANS coding step for one 32-bit state with 16-bit renormalisation.
//
// READ ME FIRST
//  * State x lives in [L, 2^32) with L = 2^16. Frequencies are scaled to M = 2^n, n <= 16.
//    Renormalisation moves exactly one 16-bit word at a time, and one word is always enough:
//    after a decode step x >= (x >> n) >= 1, so one shift by 16 restores x >= L.
//  * The encoder runs over the symbols BACKWARDS and writes words backwards, from the end of
//    its buffer towards the start; the decoder then reads forwards. With W interleaved lanes,
//    symbol i belongs to lane i mod W; decoding symbol i is followed by that lane's refill,
//    so the words of one group of W symbols appear in lane order.
//  * Every lane starts encoding at x = L. A decoder that ends with every lane at exactly L
//    and every word consumed has decoded what was encoded (up to CRC-level bad luck); that
//    is the end-of-stream check of the stream layer.
//  * Encoding divides by the frequency with a 64-bit reciprocal (exact for x < 2^32, see
//    EncSymbol); frequency 1 uses ryg_rans' bias trick. Decoding needs no division.
//  * Decode tables store (freq - 1) so that freq = M (a one-symbol table at n = 16) still
//    fits in 16 bits: x' = (freq-1) * (x >> n) + (x >> n) + (slot - cum).
#pragma once

#include <cstdint>

namespace pgolf {

constexpr uint32_t kRansL = 1u << 16;  // lower bound of the normalised state interval

// Encoder view of one symbol of one table (ryg_rans' RansEncSymbol with a 64-bit reciprocal).
struct EncSymbol {
    uint64_t rcp;    // floor(2^64 / freq) + 1 for freq >= 2; 2^64 - 1 for freq == 1
    uint64_t x_max;  // renormalise (emit a word) while x >= x_max; 0 marks an absent symbol
    uint32_t bias;   // cum, or cum + M - 1 for freq == 1
    uint32_t cmpl;   // M - freq
};

inline EncSymbol make_enc_symbol(uint32_t cum, uint32_t freq, unsigned n) {
    EncSymbol s{};
    if (!freq) return s;  // x_max = 0: absent, caught by the encoder before use
    const uint64_t M = uint64_t(1) << n;
    s.x_max = (uint64_t(kRansL >> n) << 16) * freq;  // = 2^(32-n) * freq <= 2^32
    s.cmpl = uint32_t(M - freq);
    if (freq == 1) {
        s.rcp = ~uint64_t(0);  // q = floor(x * (2^64-1) / 2^64) = x - 1
        s.bias = uint32_t(cum + M - 1);
    } else {
        // rcp = 2^64/f + e with 0 < e <= 1, so x * rcp / 2^64 = x/f + d with d < 2^-32 <= 1/f
        // for x < 2^32, f <= 2^16: d cannot lift x/f across an integer, so q == floor(x/f).
        s.rcp = uint64_t(((unsigned __int128)1 << 64) / freq) + 1;
        s.bias = cum;
    }
    return s;
}

// One encode step, renormalisation included. `*words` moves backwards when a word is emitted.
inline uint32_t enc_put(uint32_t x, const EncSymbol& s, uint16_t*& words) {
    if (x >= s.x_max) {
        *--words = uint16_t(x);
        x >>= 16;
    }
    const uint32_t q = uint32_t(((unsigned __int128)x * s.rcp) >> 64);
    return x + s.bias + q * s.cmpl;
}

// Decode table entry: low 16 bits freq - 1, high 16 bits slot - cum.
inline uint32_t make_dec_entry(uint32_t freq, uint32_t slot_minus_cum) {
    return (freq - 1) | (slot_minus_cum << 16);
}

// One decode step without renormalisation; the caller refills when the result is < L.
inline uint32_t dec_advance(uint32_t x, uint32_t entry, unsigned n) {
    const uint32_t hi = x >> n;
    return (entry & 0xffffu) * hi + hi + (entry >> 16);
}

}  // namespace pgolf
