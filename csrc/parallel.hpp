// parallel.hpp: run independent tasks (stream chunks) on a few threads.
//
// Tasks are claimed in index order from an atomic counter. If tasks throw, the exception of
// the lowest-numbered failing task is rethrown, so errors do not depend on scheduling.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace pgolf {

inline unsigned resolve_threads(unsigned requested, size_t tasks) {
    unsigned t = requested ? requested : std::max(1u, std::thread::hardware_concurrency());
    return unsigned(std::max<size_t>(1, std::min<size_t>(t, tasks)));
}

template <class Fn>
void parallel_for(size_t tasks, unsigned threads, Fn&& fn) {
    threads = resolve_threads(threads, tasks);
    if (threads <= 1) {
        for (size_t i = 0; i < tasks; ++i) fn(i);
        return;
    }
    std::vector<std::exception_ptr> errors(tasks);
    std::atomic<size_t> next{0};
    auto worker = [&]() {
        for (size_t i; (i = next.fetch_add(1)) < tasks;) {
            try {
                fn(i);
            } catch (...) {
                errors[i] = std::current_exception();
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace pgolf
