// fuzz_roundtrip: fuzzed values, lanes, chunking and contexts -> encode -> decode with every
// available kernel (slot tables and binary search) -> identical values.
#include <cstdint>
#include <cstring>
#include <vector>

#include "../errors.hpp"
#include "../frame.hpp"

using namespace pgolf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    const unsigned lanes_opts[] = {4, 8, 16, 32, 64};
    EncodeOptions opt;
    opt.lanes = lanes_opts[data[0] % 5];
    opt.chunk_size = 1 + data[1] * 3;
    opt.threads = 1 + (data[2] & 1);
    const bool use_ctx = data[2] & 2;
    const size_t n = (size - 3) / 2;
    std::vector<int16_t> values(n);
    if (n) std::memcpy(values.data(), data + 3, n * 2);
    if (data[2] & 4)  // narrow alphabet, skewed
        for (auto& v : values) v = int16_t((v & 0xff) < 200 ? 0 : v % 5);
    std::vector<uint16_t> ids;
    ContextSpec ctx;
    if (use_ctx && n) {
        ctx.run = 1 + data[3] % 7;
        ids.resize((n + ctx.run - 1) / ctx.run);
        for (size_t k = 0; k < ids.size(); ++k) ids[k] = uint16_t((values[k * ctx.run] & 3));
        ctx.ids = ids.data();
        ctx.count = ids.size();
    }
    const std::vector<uint64_t> shape{n};
    std::vector<uint8_t> frame;
    try {
        frame = encode_frame(values.data(), DType::Int16, shape, ctx, nullptr, 0, opt).to_vector();
    } catch (const CodecError&) {
        __builtin_trap();  // every int16 array fits the alphabet: encoding must succeed
    }
    const Frame f = parse_frame(frame.data(), frame.size(), DecodeLimits{});
    for (Kernel k : {Kernel::Auto, Kernel::Scalar, Kernel::Avx2, Kernel::Avx512, Kernel::Search}) {
        if (!kernel_available(k)) continue;
        std::vector<int16_t> out(n + 1, 0x5A5A);
        decode_frame(f, ctx.run ? ids.data() : nullptr, ids.size(), out.data(), opt.threads, k);
        if (n && std::memcmp(out.data(), values.data(), n * 2) != 0) __builtin_trap();
    }
    return 0;
}
