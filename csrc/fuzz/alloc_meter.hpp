// alloc_meter.hpp: the fuzz targets' per-input memory check. Under AddressSanitizer (both
// build modes of build.sh) it counts every heap allocation through the sanitizer's malloc and
// free hooks and keeps the peak above the level at which an input started, so a target can
// fail an input whose decode allocated more than the codec's documented bound for its bytes
// and output (docs/SECURITY.md), instead of only failing when the machine runs out.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>

extern "C" {
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, size_t),
                                              void (*free_hook)(const volatile void*));
size_t __sanitizer_get_allocated_size(const volatile void* p);
}

namespace pgolf_fuzz {

inline std::atomic<int64_t> g_live{0}, g_peak{0};

inline void on_malloc(const volatile void*, size_t size) {
    const int64_t now = g_live.fetch_add(int64_t(size)) + int64_t(size);
    int64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
}

inline void on_free(const volatile void* p) {
    if (p) g_live.fetch_sub(int64_t(__sanitizer_get_allocated_size(p)));
}

// Peak heap bytes allocated since construction, over what was live at construction.
class AllocMeter {
public:
    AllocMeter() {
        static const bool installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
        (void)installed;
        base_ = g_live.load();
        g_peak.store(base_);
    }
    uint64_t peak() const { return uint64_t(g_peak.load() - base_); }

    // Traps (a fuzzer finding) when the peak passes `budget` bytes.
    void require_within(uint64_t budget, const char* what, size_t input_size) const {
        if (peak() <= budget) return;
        std::fprintf(stderr, "%s: peak heap %llu bytes for a %zu-byte input, above the bound of %llu\n", what,
                     (unsigned long long)peak(), input_size, (unsigned long long)budget);
        __builtin_trap();
    }

private:
    int64_t base_ = 0;
};

}  // namespace pgolf_fuzz
