// rans_simd.hpp: vectorised decode loops (x86-64 AVX2 and AVX-512), chosen at run time.
//
// Each kernel decodes whole groups of `lanes` symbols while at least `lanes` words remain,
// exactly as the scalar loop would, and returns how many symbols it decoded; the scalar
// loop finishes the chunk and performs every end-of-stream check. Kernels read no word
// outside [p, end) and so are safe on any input.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rans_stream.hpp"

namespace pgolf {

bool cpu_has_avx2();
bool cpu_has_avx512();

template <class T>
size_t decode_groups_avx2(uint32_t* x, unsigned lanes, const uint8_t*& p, const uint8_t* end, const uint16_t* ctx,
                          const DecoderTables& tables, T* out, size_t m, uint64_t offset);
template <class T>
size_t decode_groups_avx512(uint32_t* x, unsigned lanes, const uint8_t*& p, const uint8_t* end, const uint16_t* ctx,
                            const DecoderTables& tables, T* out, size_t m, uint64_t offset);

}  // namespace pgolf
