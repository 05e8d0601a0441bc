// The composition root: builds the store, the hub and the workers from the config, runs
// them, and owns the order of shutdown.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace herald::app {

struct ServeOptions {
    bool publish_stdin = false; // each stdin line "TOPIC DATA" is published
    // The environment the config was read with (AUTH_TOKEN, AUTH_TOKEN_FILE).
    std::map<std::string, std::string> env;
    // Reads the config again, for SIGHUP; throws config::ConfigError. None: no reload.
    std::function<config::Config()> reload;
};

// Runs `herald serve` until SIGTERM or SIGINT; returns the process exit code. SIGHUP puts
// the tokens of a fresh read of the config in force. Throws std::runtime_error for a
// failure to start (a port in use, a store that cannot open), config::ConfigError for
// credentials that cannot be used (an unreadable AUTH_TOKEN_FILE or key file).
[[nodiscard]] int run_serve(const config::Config& config, const ServeOptions& options);

} // namespace herald::app
