// crc32c.hpp: CRC-32C (Castagnoli), the checksum closing every frame and artifact section.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it and a table-driven fallback
// otherwise; both give the same value (that of RFC 3720 / iSCSI, e.g. crc32c(b"123456789")
// == 0xE3069283). `crc` chains calls: crc32c(b, crc32c(a)) == crc32c(a + b).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pgolf {

uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace pgolf
