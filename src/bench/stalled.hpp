// Stalled subscribers for `herald bench --stalled N`: connections that ask for the stream
// like the others and then never read a byte, with a small receive buffer so that they
// stall at once. They measure what a server does to everyone else while some clients stop
// reading; they are not counted in deliveries, latency or losses.
#pragma once

#include <string>
#include <vector>

#include "bench/options.hpp"
#include "bench/subscribers.hpp" // Address

namespace herald::bench {

class Stalled {
public:
    Stalled() = default;
    Stalled(const Stalled&) = delete;
    Stalled& operator=(const Stalled&) = delete;
    ~Stalled();

    // Opens `count` connections and sends each its subscribe request (topics and subscribe
    // targets in turn; addrs: one address per target). Returns how many could not be
    // opened; `first_failure` says why.
    int open(int count, const Plan& plan, const std::vector<Address>& addrs);
    // How many of them the server has closed (or reset) by now; reads nothing.
    [[nodiscard]] int closed_by_server() const;
    [[nodiscard]] int opened() const { return static_cast<int>(fds_.size()); }
    [[nodiscard]] const std::string& first_failure() const { return first_failure_; }

private:
    std::vector<int> fds_;
    std::string first_failure_;
};

} // namespace herald::bench
