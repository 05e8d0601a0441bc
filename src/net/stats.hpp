// Counters kept per worker by the serving layer. One writer (the worker's thread), so an
// update is a relaxed load and store, never a locked read-modify-write; /metrics sums them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace herald::net {

enum class Reject : std::uint8_t {
    bad_request,
    header_too_large,
    body_too_large,
    timeout,
    not_found,
    method_not_allowed,
    unsupported_media_type,
    invalid_topic,
    invalid_event,
    unauthorized,
    forbidden,
    cors,
    duplicate_id,
    unavailable,
    uri_too_long,
    expectation_failed,
    not_implemented,
    max_connections,        // server.max_connections reached: 503 at accept
    max_connections_per_ip, // server.max_connections_per_ip reached: 429
    count_
};

[[nodiscard]] std::string_view reject_name(Reject reason) noexcept;

// Upper bounds, in seconds, of the publish latency histogram's buckets.
inline constexpr std::array<double, 12> kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0};

struct alignas(64) WorkerStats {
    using Counter = std::atomic<std::uint64_t>;

    static void add(Counter& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    static void sub(Counter& c, std::uint64_t n) noexcept {
        c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }

    Counter connections_open{0}; // gauge, may be read while written
    Counter connections_total{0};
    Counter bytes_out{0};
    Counter slow_disconnects{0};     // streams cut: more unsent bytes than their bound
    Counter stalled_disconnects{0};  // streams cut: no write progress for write_timeout
    Counter overload_disconnects{0}; // streams cut: furthest behind when memory ran short
    Counter queued_bytes{0};
    Counter publish_holds{0}; // publishes that waited for their topics' subscribers // gauge: bytes
                              // queued to this worker's streams, not yet written
    std::array<Counter, static_cast<std::size_t>(Reject::count_)> rejected{};
    std::array<Counter, kLatencyBuckets.size() + 1> publish_buckets{}; // last: +Inf
    Counter publish_count{0};
    Counter publish_ns_sum{0};

    void reject(Reject reason) noexcept { add(rejected[static_cast<std::size_t>(reason)]); }
    void publish_latency(std::uint64_t ns) noexcept;
};

} // namespace herald::net
