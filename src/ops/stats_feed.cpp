#include "ops/stats_feed.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "ops/metrics.hpp"

namespace herald::ops {

namespace {

// Events per second, to a tenth: enough for a chart, and short on the wire.
double rate(std::uint64_t now, std::uint64_t before, double seconds) {
    if (seconds <= 0 || now < before) {
        return 0;
    }
    return std::round(static_cast<double>(now - before) / seconds * 10) / 10;
}

} // namespace

StatsFeed::StatsFeed(const hub::Hub& hub, std::vector<const net::WorkerStats*> workers,
                     base::MonoClock::time_point started)
    : hub_(hub), workers_(std::move(workers)), started_(started), last_at_(started) {}

std::string StatsFeed::sample(base::MonoClock::time_point now, std::int64_t unix_ms) {
    using S = net::WorkerStats;
    const Totals totals{hub_.published(), hub_.delivered(), sum(workers_, &S::bytes_out)};
    const double seconds = std::chrono::duration<double>(now - last_at_).count();
    std::uint64_t rejected = 0;
    for (const auto* w : workers_) {
        for (const auto& counter : w->rejected) {
            rejected += counter.load(std::memory_order_relaxed);
        }
    }
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
    std::string json = fmt::format(
        "{{\"time\":{},\"uptimeSeconds\":{},\"connections\":{},\"subscribers\":{},"
        "\"published\":{},\"delivered\":{},\"inPerSecond\":{},\"outPerSecond\":{},"
        "\"bytesOutPerSecond\":{},\"queuedBytes\":{},\"slowDisconnects\":{},\"rejected\":{}}}",
        unix_ms, uptime, sum(workers_, &S::connections_open), hub_.subscribers(), totals.published,
        totals.delivered, rate(totals.published, last_.published, seconds),
        rate(totals.delivered, last_.delivered, seconds),
        rate(totals.bytes_out, last_.bytes_out, seconds), sum(workers_, &S::queued_bytes),
        sum(workers_, &S::slow_disconnects), rejected);
    last_ = totals;
    last_at_ = now;
    return json;
}

} // namespace herald::ops
