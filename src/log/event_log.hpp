// The event log interface: it assigns ids and positions, keeps per-topic history within the
// retention bounds, and answers replays. Stores (memory, sqlite, redis) implement it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log/event.hpp"

namespace herald::log {

enum class AppendError {
    none,
    duplicate_id, // a publisher-supplied id that a retained event already has
    unavailable,  // the store cannot take writes now
};

struct AppendResult {
    EventPtr event; // set when error == none
    AppendError error = AppendError::none;
};

// Which topics a replay covers: the exact topics named, plus every topic `pattern` accepts
// (when set). The log never interprets selectors itself.
struct TopicFilter {
    std::vector<std::string> exact;
    std::function<bool(std::string_view)> pattern;
};

struct Replay {
    std::vector<EventPtr> events; // in position order, each once
    // True when a covered topic has dropped (by retention) an event after the position
    // asked for: the replay cannot be complete.
    bool gap = false;
};

struct TopicStats {
    std::string topic;
    std::size_t retained = 0;
    std::size_t bytes = 0;
    std::string last_id; // empty when nothing was ever published to it here
};

// Not thread-safe: the hub serialises every call under its lock, which is what makes the
// order of ids the order of delivery.
class EventLog {
public:
    virtual ~EventLog() = default;

    // Assigns the position and (unless the publisher gave one) the id, encodes the frame
    // and retains the event.
    [[nodiscard]] virtual AppendResult append(NewEvent&& event) = 0;

    // The position of a retained event's id, if the log still knows it.
    [[nodiscard]] virtual std::optional<std::uint64_t> position_of(std::string_view id) const = 0;

    // The position of the newest event appended (before the first: a position below any
    // the log will assign).
    [[nodiscard]] virtual std::uint64_t last_position() const = 0;

    // Every retained event after `after` on the topics of `filter`.
    [[nodiscard]] virtual Replay replay(std::uint64_t after, const TopicFilter& filter) const = 0;

    // Drops events older than the age bound; called about once a second.
    virtual void expire(std::int64_t now_ms) = 0;

    // Per-topic figures for /topics.
    [[nodiscard]] virtual std::vector<TopicStats> topics() const = 0;

    // Whether the store can serve (for /readyz).
    [[nodiscard]] virtual bool ready() const { return true; }
};

} // namespace herald::log
