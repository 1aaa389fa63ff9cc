// fuzz_decode: arbitrary bytes -> parse and decode a frame. It must return or throw
// CodecError: never crash, hang or read out of bounds, and its peak heap must stay within
// the codec's bound for the input's bytes and declared output (docs/SECURITY.md): a fixed
// 64 KiB, 256 bytes per input byte and 64 per output symbol; a forced slot kernel may add
// its slot tables, 6 bytes x T x 2^n, which max_table_entries caps.
// The first input byte picks the kernel and whether the CRC is re-sealed, so that the
// fuzzer reaches the structural checks behind the checksum.
#include <cstdint>
#include <vector>

#include "../crc32c.hpp"
#include "../errors.hpp"
#include "../frame.hpp"
#include "alloc_meter.hpp"

using namespace pgolf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    std::vector<uint8_t> frame(data + 1, data + size);
    if ((mode & 1) && frame.size() >= 4) {  // re-seal the CRC
        const uint32_t c = crc32c(frame.data(), frame.size() - 4);
        for (int b = 0; b < 4; ++b) frame[frame.size() - 4 + b] = uint8_t(c >> (8 * b));
    }
    const Kernel kernels[] = {Kernel::Auto, Kernel::Scalar, Kernel::Avx2, Kernel::Avx512, Kernel::Search};
    Kernel kernel = kernels[(mode >> 1) % 5];
    if (!kernel_available(kernel)) kernel = Kernel::Scalar;
    const pgolf_fuzz::AllocMeter meter;
    uint64_t budget = (uint64_t(1) << 16) + 256 * uint64_t(size);
    try {
        const Frame f = parse_frame(frame.data(), frame.size(), DecodeLimits{1u << 20, 1u << 20});
        budget += 64 * f.n;
        if (kernel != Kernel::Auto && kernel != Kernel::Search) budget += 6 * (uint64_t(f.tables.count()) << f.tables.precision);
        std::vector<uint16_t> ctx;
        if (f.ctx_run) ctx.assign(f.n / f.ctx_run + 1 - (f.n % f.ctx_run == 0), uint16_t(mode >> 4) % f.tables.count());
        std::vector<uint8_t> out(f.n * dtype_size(f.dtype) + 1);
        decode_frame(f, f.ctx_run ? ctx.data() : nullptr, ctx.size(), out.data(), 1, kernel);
    } catch (const CodecError&) {
    }
    meter.require_within(budget, "fuzz_decode", size);
    return 0;
}
