// driver.cpp: a main() for the fuzz targets when libFuzzer is not available (g++ builds).
// Replays every file given on the command line, then runs random mutations of those inputs
// (and of random bytes) for the requested number of iterations with a fixed seed, so a CI
// run is repeatable. Usage: fuzz_x [-runs=N] [-seed=S] [corpus files...]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    long runs = 10000;
    unsigned long seed = 1;
    std::vector<std::vector<uint8_t>> corpus;
    for (int i = 1; i < argc; ++i) {
        if (!std::strncmp(argv[i], "-runs=", 6)) { runs = std::atol(argv[i] + 6); continue; }
        if (!std::strncmp(argv[i], "-seed=", 6)) { seed = std::strtoul(argv[i] + 6, nullptr, 10); continue; }
        std::ifstream in(argv[i], std::ios::binary);
        corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
    std::mt19937_64 rng(seed);
    for (long r = 0; r < runs; ++r) {
        std::vector<uint8_t> buf;
        if (!corpus.empty() && rng() % 4) {
            buf = corpus[rng() % corpus.size()];
            const int edits = 1 + int(rng() % 8);
            for (int e = 0; e < edits && !buf.empty(); ++e) {
                const size_t pos = rng() % buf.size();
                switch (rng() % 5) {
                    case 0: buf[pos] ^= uint8_t(1u << (rng() % 8)); break;
                    case 1: buf[pos] = uint8_t(rng()); break;
                    case 2: buf.insert(buf.begin() + long(pos), uint8_t(rng())); break;
                    case 3: buf.erase(buf.begin() + long(pos)); break;
                    case 4: buf.resize(pos); break;
                }
            }
        } else {
            buf.resize(rng() % 512);
            for (auto& b : buf) b = uint8_t(rng());
        }
        LLVMFuzzerTestOneInput(buf.data(), buf.size());
    }
    std::printf("%s: %zu corpus inputs and %ld mutations passed\n", argv[0], corpus.size(), runs);
    return 0;
}
