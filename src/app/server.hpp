// The composition root: builds the store, the hub and the workers from the config, runs
// them, and owns the order of shutdown.
#pragma once

#include <cstdint>
#include <memory>

#include "config/config.hpp"

namespace herald::app {

struct ServeOptions {
    bool publish_stdin = false; // each stdin line "TOPIC DATA" is published
};

// Runs `herald serve` until SIGTERM or SIGINT; returns the process exit code. Throws
// std::runtime_error for a failure to start (a port in use, a store that cannot open).
[[nodiscard]] int run_serve(const config::Config& config, const ServeOptions& options);

} // namespace herald::app
