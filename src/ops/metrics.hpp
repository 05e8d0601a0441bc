// The Prometheus text exposition of the hub's figures (GET /metrics).
#pragma once

#include <string>
#include <vector>

#include "hub/hub.hpp"
#include "net/stats.hpp"

namespace herald::ops {

// One per-worker counter summed over the workers (relaxed loads).
[[nodiscard]] std::uint64_t sum(const std::vector<const net::WorkerStats*>& workers,
                                const net::WorkerStats::Counter net::WorkerStats::*field);

// Sums the per-worker counters and the hub's figures. Any thread: the counters are read
// with relaxed loads, so a scrape taken while they move is consistent to within a request.
[[nodiscard]] std::string render_metrics(const hub::Hub& hub,
                                         const std::vector<const net::WorkerStats*>& workers);

} // namespace herald::ops
