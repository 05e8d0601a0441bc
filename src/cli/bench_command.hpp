// `herald bench`: its command-line options (CLI11), kept apart from main.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include "bench/options.hpp"

namespace herald::cli {

// Adds the `bench` subcommand to `app`, filling `options` when parsed.
CLI::App* add_bench_command(CLI::App& app, bench::Options& options);

} // namespace herald::cli
