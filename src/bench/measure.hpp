// What `herald bench` measures with: a monotonic clock shared by every process of the run,
// an HDR-style latency histogram that can live in shared memory, and the server's memory
// and CPU read from /proc.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace herald::bench {

// CLOCK_MONOTONIC in ns: the same clock in every process of the machine.
std::int64_t now_ns();
void sleep_until_ns(std::int64_t t);
void sleep_seconds(double s);

// Log-linear buckets: 32 per power of two, so a percentile is within about 3% of the
// value. Plain data (no pointers), so it can be merged through shared memory.
class Histogram {
public:
    void record(std::int64_t v) {
        auto u = static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0));
        ++buckets_[index(u)];
        ++count_;
        max_ = std::max(max_, u);
    }
    void merge(const Histogram& other);
    std::uint64_t count() const { return count_; }
    std::uint64_t max() const { return max_; }
    // The upper bound of the bucket holding the q-quantile (never above the max seen).
    std::uint64_t percentile(double q) const;

    static constexpr int kSubBits = 5;
    static std::size_t index(std::uint64_t v) {
        if (v < (1U << kSubBits)) {
            return static_cast<std::size_t>(v);
        }
        int e = 63 - __builtin_clzll(v); // >= kSubBits
        auto sub = (v >> (e - kSubBits)) & ((1U << kSubBits) - 1);
        return static_cast<std::size_t>((e - kSubBits + 1) * (1 << kSubBits)) + sub;
    }
    static std::uint64_t upper(std::size_t i);

private:
    std::array<std::uint64_t, 60 * (1 << kSubBits)> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

// The summed VmRSS and user+system CPU of some processes; -1 where unknown.
struct ProcSample {
    long rss_kb = -1;
    double cpu_s = -1;
};
ProcSample sample_processes(const std::vector<long>& pids);
double self_cpu_s(); // this process and its waited-for children

// Raises the soft descriptor limit to the hard one; returns the limit now in force.
std::uint64_t raise_nofile();

std::string format_ns(std::uint64_t ns);

} // namespace herald::bench
