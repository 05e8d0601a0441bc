// Time in the forms the hub needs: wall-clock milliseconds for event timestamps and the
// JSON it reports, and a monotonic clock for timeouts.
#pragma once

#include <chrono>
#include <cstdint>

namespace herald::base {

using MonoClock = std::chrono::steady_clock;

// Milliseconds since the Unix epoch, from the system clock.
[[nodiscard]] inline std::int64_t unix_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Microseconds since the Unix epoch, from the system clock.
[[nodiscard]] inline std::int64_t unix_us() noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace herald::base
