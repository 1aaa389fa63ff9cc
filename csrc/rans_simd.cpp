#include "rans_simd.hpp"

#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define PGOLF_X86 1
#endif

namespace pgolf {

#ifdef PGOLF_X86

bool cpu_has_avx2() {
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    return ok;
}

bool cpu_has_avx512() {
    static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi2") &&
                           __builtin_cpu_supports("popcnt");
    return ok;
}

namespace {

// perm[mask][j]: the index of the word lane j takes when the lanes in `mask` refill, i.e.
// the number of refilling lanes below j (words are read in lane order).
struct RefillPermutation {
    alignas(32) uint32_t idx[256][8];
    RefillPermutation() {
        for (unsigned mask = 0; mask < 256; ++mask) {
            unsigned k = 0;
            for (unsigned j = 0; j < 8; ++j) idx[mask][j] = (mask >> j) & 1 ? k++ : 0;
        }
    }
};

const RefillPermutation& refill_permutation() {
    static const RefillPermutation table;
    return table;
}

template <unsigned NV, class T>
__attribute__((target("avx2,popcnt"))) size_t avx2_groups(uint32_t* x, const uint8_t*& p, const uint8_t* end,
                                                           const uint16_t* ctx, const DecoderTables& tables, T* out,
                                                           size_t m, uint64_t offset) {
    constexpr unsigned W = 8 * NV;
    const unsigned n = tables.precision;
    const __m256i slot_mask = _mm256_set1_epi32(int((1u << n) - 1));
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    const __m256i zero = _mm256_setzero_si256();
    const __m128i shift_n = _mm_cvtsi32_si128(int(n));
    const int* entry = reinterpret_cast<const int*>(tables.entry.data());
    const int* symbol = reinterpret_cast<const int*>(tables.symbol.data());
    const auto& perm = refill_permutation().idx;
    __m256i X[NV];
    for (unsigned v = 0; v < NV; ++v) X[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 8 * v));
    alignas(32) uint32_t sym[W];
    size_t i = 0;
    while (i + W <= m && size_t(end - p) >= 2 * size_t(W)) {
        for (unsigned v = 0; v < NV; ++v) {
            __m256i xv = X[v];
            __m256i slot = _mm256_and_si256(xv, slot_mask);
            if (ctx) {
                const __m256i c = _mm256_cvtepu16_epi32(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(ctx + i + 8 * v)));
                slot = _mm256_add_epi32(slot, _mm256_sll_epi32(c, shift_n));
            }
            const __m256i e = _mm256_i32gather_epi32(entry, slot, 4);
            const __m256i s = _mm256_and_si256(_mm256_i32gather_epi32(symbol, slot, 2), lo16);
            const __m256i hi = _mm256_srl_epi32(xv, shift_n);
            xv = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(_mm256_and_si256(e, lo16), hi), hi),
                                  _mm256_srli_epi32(e, 16));
            const __m256i need = _mm256_cmpeq_epi32(_mm256_srli_epi32(xv, 16), zero);
            const unsigned mk = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(need)));
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
            w = _mm256_permutevar8x32_epi32(w, _mm256_load_si256(reinterpret_cast<const __m256i*>(perm[mk])));
            xv = _mm256_blendv_epi8(xv, _mm256_or_si256(_mm256_slli_epi32(xv, 16), w), need);
            p += 2 * size_t(__builtin_popcount(mk));
            X[v] = xv;
            _mm256_store_si256(reinterpret_cast<__m256i*>(sym + 8 * v), s);
        }
        T* o = out + i;
        if constexpr (sizeof(T) <= 4) {
            const uint32_t off = uint32_t(offset);
            for (unsigned k = 0; k < W; ++k) o[k] = T(off + sym[k]);
        } else {
            for (unsigned k = 0; k < W; ++k) o[k] = T(offset + sym[k]);
        }
        i += W;
    }
    for (unsigned v = 0; v < NV; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + 8 * v), X[v]);
    return i;
}

template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void store16(T* o, __m512i s, uint64_t offset) {
    if constexpr (sizeof(T) == 8) {
        const __m512i off = _mm512_set1_epi64(int64_t(offset));
        const __m512i lo = _mm512_add_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(s)), off);
        const __m512i hi = _mm512_add_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(s, 1)), off);
        _mm512_storeu_si512(o, lo);
        _mm512_storeu_si512(o + 8, hi);
    } else {
        const __m512i v = _mm512_add_epi32(s, _mm512_set1_epi32(int(uint32_t(offset))));
        if constexpr (sizeof(T) == 1)
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtepi32_epi8(v));
        else if constexpr (sizeof(T) == 2)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm512_cvtepi32_epi16(v));
        else
            _mm512_storeu_si512(o, v);
    }
}

template <unsigned NV, class T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi2,popcnt"))) size_t avx512_groups(
    uint32_t* x, const uint8_t*& p, const uint8_t* end, const uint16_t* ctx, const DecoderTables& tables, T* out,
    size_t m, uint64_t offset) {
    constexpr unsigned W = 16 * NV;
    const unsigned n = tables.precision;
    const __m512i slot_mask = _mm512_set1_epi32(int((1u << n) - 1));
    const __m512i lo16 = _mm512_set1_epi32(0xffff);
    const __m512i L = _mm512_set1_epi32(int(kRansL));
    const __m128i shift_n = _mm_cvtsi32_si128(int(n));
    const int* entry = reinterpret_cast<const int*>(tables.entry.data());
    const int* symbol = reinterpret_cast<const int*>(tables.symbol.data());
    __m512i X[NV];
    for (unsigned v = 0; v < NV; ++v) X[v] = _mm512_loadu_si512(x + 16 * v);
    size_t i = 0;
    while (i + W <= m && size_t(end - p) >= 2 * size_t(W)) {
        for (unsigned v = 0; v < NV; ++v) {
            __m512i xv = X[v];
            __m512i slot = _mm512_and_si512(xv, slot_mask);
            if (ctx) {
                const __m512i c = _mm512_cvtepu16_epi32(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ctx + i + 16 * v)));
                slot = _mm512_add_epi32(slot, _mm512_sll_epi32(c, shift_n));
            }
            const __m512i e = _mm512_i32gather_epi32(slot, entry, 4);
            const __m512i s = _mm512_and_si512(_mm512_i32gather_epi32(slot, symbol, 2), lo16);
            const __m512i hi = _mm512_srl_epi32(xv, shift_n);
            xv = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(_mm512_and_si512(e, lo16), hi), hi),
                                  _mm512_srli_epi32(e, 16));
            const __mmask16 need = _mm512_cmplt_epu32_mask(xv, L);
            const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_expandloadu_epi16(need, p));
            xv = _mm512_mask_or_epi32(xv, need, _mm512_slli_epi32(xv, 16), w);
            p += 2 * size_t(__builtin_popcount(unsigned(need)));
            X[v] = xv;
            store16<T>(out + i + 16 * v, s, offset);
        }
        i += W;
    }
    for (unsigned v = 0; v < NV; ++v) _mm512_storeu_si512(x + 16 * v, X[v]);
    return i;
}

}  // namespace

template <class T>
size_t decode_groups_avx2(uint32_t* x, unsigned lanes, const uint8_t*& p, const uint8_t* end, const uint16_t* ctx,
                          const DecoderTables& tables, T* out, size_t m, uint64_t offset) {
    switch (lanes) {
        case 8: return avx2_groups<1, T>(x, p, end, ctx, tables, out, m, offset);
        case 16: return avx2_groups<2, T>(x, p, end, ctx, tables, out, m, offset);
        case 32: return avx2_groups<4, T>(x, p, end, ctx, tables, out, m, offset);
        case 64: return avx2_groups<8, T>(x, p, end, ctx, tables, out, m, offset);
        default: return 0;
    }
}

template <class T>
size_t decode_groups_avx512(uint32_t* x, unsigned lanes, const uint8_t*& p, const uint8_t* end, const uint16_t* ctx,
                            const DecoderTables& tables, T* out, size_t m, uint64_t offset) {
    switch (lanes) {
        case 16: return avx512_groups<1, T>(x, p, end, ctx, tables, out, m, offset);
        case 32: return avx512_groups<2, T>(x, p, end, ctx, tables, out, m, offset);
        case 64: return avx512_groups<4, T>(x, p, end, ctx, tables, out, m, offset);
        default: return 0;
    }
}

#else  // not x86-64: scalar only

bool cpu_has_avx2() { return false; }
bool cpu_has_avx512() { return false; }

template <class T>
size_t decode_groups_avx2(uint32_t*, unsigned, const uint8_t*&, const uint8_t*, const uint16_t*,
                          const DecoderTables&, T*, size_t, uint64_t) {
    return 0;
}
template <class T>
size_t decode_groups_avx512(uint32_t*, unsigned, const uint8_t*&, const uint8_t*, const uint16_t*,
                            const DecoderTables&, T*, size_t, uint64_t) {
    return 0;
}

#endif

#define PGOLF_INSTANTIATE(T)                                                                                       \
    template size_t decode_groups_avx2<T>(uint32_t*, unsigned, const uint8_t*&, const uint8_t*, const uint16_t*, \
                                          const DecoderTables&, T*, size_t, uint64_t);                          \
    template size_t decode_groups_avx512<T>(uint32_t*, unsigned, const uint8_t*&, const uint8_t*,              \
                                            const uint16_t*, const DecoderTables&, T*, size_t, uint64_t);
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
