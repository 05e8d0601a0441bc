// The hub's live figures as the JSON of $sys/stats: what the dashboard charts. Sampled
// once a second on the main thread; rates are per second over the time since the last
// sample.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.hpp"
#include "hub/hub.hpp"
#include "net/stats.hpp"

namespace herald::ops {

class StatsFeed {
public:
    StatsFeed(const hub::Hub& hub, std::vector<const net::WorkerStats*> workers,
              base::MonoClock::time_point started);

    // A sample at `now` (`unix_ms` is the same instant on the wall clock):
    //   {"time": unix ms, "uptimeSeconds", "connections", "subscribers", "published",
    //    "delivered", "inPerSecond", "outPerSecond", "bytesOutPerSecond", "queuedBytes",
    //    "slowDisconnects", "rejected"}
    // The first sample's rates are over the time since `started`. One caller at a time.
    [[nodiscard]] std::string sample(base::MonoClock::time_point now, std::int64_t unix_ms);

private:
    struct Totals {
        std::uint64_t published = 0;
        std::uint64_t delivered = 0;
        std::uint64_t bytes_out = 0;
    };

    const hub::Hub& hub_;
    std::vector<const net::WorkerStats*> workers_;
    base::MonoClock::time_point started_;
    base::MonoClock::time_point last_at_;
    Totals last_;
};

} // namespace herald::ops
