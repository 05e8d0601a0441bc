#include "bench/shared.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

#include <sys/mman.h>

namespace herald::bench {

namespace {

std::size_t align_up(std::size_t n, std::size_t a) {
    return (n + a - 1) / a * a;
}

} // namespace

SharedState::SharedState(int topics, int processes, int publishers, std::uint64_t seq_capacity)
    : seq_capacity_(seq_capacity), words_per_publisher_((seq_capacity + 63) / 64) {
    const std::size_t control_at = 0;
    const std::size_t heads_at = align_up(control_at + sizeof(Control), 64);
    const std::size_t tallies_at =
        align_up(heads_at + sizeof(std::atomic<int>) * static_cast<std::size_t>(topics), 64);
    const std::size_t acks_at =
        align_up(tallies_at + sizeof(Tally) * static_cast<std::size_t>(processes), 4096);
    size_ = acks_at + sizeof(std::uint64_t) * words_per_publisher_ *
                          static_cast<std::size_t>(std::max(publishers, 1));
    // The bitmaps are sized for the most a run could publish; only touched pages use memory.
    base_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base_ == MAP_FAILED) {
        throw std::runtime_error(std::string("mmap of the shared state: ") + std::strerror(errno));
    }
    auto* bytes = static_cast<std::byte*>(base_);
    control_ = new (bytes + control_at) Control();
    heads_by_topic_ = reinterpret_cast<std::atomic<int>*>(bytes + heads_at);
    for (int t = 0; t < topics; ++t) {
        new (&heads_by_topic_[t]) std::atomic<int>(0);
    }
    tallies_ = reinterpret_cast<Tally*>(bytes + tallies_at);
    for (int p = 0; p < processes; ++p) {
        new (&tallies_[p]) Tally();
    }
    acks_ = reinterpret_cast<std::uint64_t*>(bytes + acks_at); // zero-filled by mmap
}

SharedState::~SharedState() {
    ::munmap(base_, size_);
}

void SharedState::fail(const std::string& why) {
    auto& c = *control_;
    while (c.failure_lock.test_and_set(std::memory_order_acquire)) {
    }
    if (c.first_failure[0] == '\0') {
        std::strncpy(c.first_failure, why.c_str(), sizeof c.first_failure - 1);
    }
    c.failure_lock.clear(std::memory_order_release);
    c.failed.fetch_add(1, std::memory_order_relaxed);
}

std::string SharedState::first_failure() {
    auto& c = *control_;
    while (c.failure_lock.test_and_set(std::memory_order_acquire)) {
    }
    std::string s = c.first_failure;
    c.failure_lock.clear(std::memory_order_release);
    return s;
}

} // namespace herald::bench
