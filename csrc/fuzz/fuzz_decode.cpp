// fuzz_decode: arbitrary bytes -> parse and decode a frame. It must return or throw
// CodecError: never crash, hang, read out of bounds or allocate without bound.
// The first input byte picks the kernel and whether the CRC is re-sealed, so that the
// fuzzer reaches the structural checks behind the checksum.
#include <cstdint>
#include <vector>

#include "../crc32c.hpp"
#include "../errors.hpp"
#include "../frame.hpp"

using namespace pgolf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    std::vector<uint8_t> frame(data + 1, data + size);
    if ((mode & 1) && frame.size() >= 4) {  // re-seal the CRC
        const uint32_t c = crc32c(frame.data(), frame.size() - 4);
        for (int b = 0; b < 4; ++b) frame[frame.size() - 4 + b] = uint8_t(c >> (8 * b));
    }
    const Kernel kernels[] = {Kernel::Scalar, Kernel::Avx2, Kernel::Avx512};
    Kernel kernel = kernels[(mode >> 1) % 3];
    if (!kernel_available(kernel)) kernel = Kernel::Scalar;
    try {
        const Frame f = parse_frame(frame.data(), frame.size(), DecodeLimits{1u << 20, 1u << 20});
        std::vector<uint16_t> ctx;
        if (f.ctx_run) ctx.assign(f.n / f.ctx_run + 1 - (f.n % f.ctx_run == 0), uint16_t(mode >> 4) % f.tables.count());
        std::vector<uint8_t> out(f.n * dtype_size(f.dtype) + 1);
        decode_frame(f, f.ctx_run ? ctx.data() : nullptr, ctx.size(), out.data(), 1, kernel);
    } catch (const CodecError&) {
    }
    return 0;
}
