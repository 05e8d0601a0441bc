// `herald demo`: a test event source for people who write SSE clients. A small server of
// its own (not the hub): /stream (a hello, then numbered JSON messages, resumable with
// Last-Event-ID, endable with ?count=K), /api/time, /api/client-count and /status, with
// optional bearer-token auth. Runs on one thread until SIGTERM or SIGINT.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::demo {

struct Options {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    std::chrono::microseconds interval{std::chrono::seconds(1)};
    std::optional<std::string> token; // every request must carry it when set
};

// "1s", "250ms", "1.5s", "2m", "1h" -> the duration; nullopt when malformed, not above 0 or over 1
// h.
std::optional<std::chrono::microseconds> parse_interval(std::string_view text);

// The 16 lowercase letters of message N: the same for the same N, always.
std::string random_letters(std::uint64_t n);

// The data of message N at `unix_seconds`, pretty-printed JSON (several lines).
std::string message_json(std::uint64_t n, std::int64_t unix_seconds);

// Serves until SIGTERM or SIGINT; the exit status (0, or 1 when it cannot listen).
[[nodiscard]] int run(const Options& options);

} // namespace herald::demo
