// `herald bench`: the load generator. Drives any SSE server (herald by default; others
// through URL and body templates) with N subscribers and P publishers and reports
// connections, throughput, end-to-end latency, losses, duplicates and server memory, as a
// table and as one JSON line. Plain POSIX sockets and epoll: what is measured is the
// server, at as little client-side cost as possible.
#pragma once

#include "bench/options.hpp"

namespace herald::bench {

// Runs the benchmark. 0 when everything was delivered exactly once, every publish and
// subscription was accepted and nobody was cut off; 1 otherwise; 2 on bad options.
[[nodiscard]] int run(Options options);

} // namespace herald::bench
