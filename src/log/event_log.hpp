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
    std::string reason; // why, when error == unavailable
};

// What a durable log reports once a transaction has ended: the events appended since the
// previous report, in position order, now either all durable or (on failure) none of them
// written.
struct Commit {
    std::vector<EventPtr> events;
    AppendError error = AppendError::none; // none or unavailable
    std::string reason;                    // why, on failure
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

// Which topics a /topics page lists: names after `after` (strictly), starting with `prefix`,
// in name order, at most `limit` of them.
struct TopicRange {
    std::string_view after; // empty: from the first
    std::string_view prefix;
    std::size_t limit = static_cast<std::size_t>(-1);
};

// The history as a whole, for /metrics: kept up to date as events come and go, so that
// reading them costs the same however many topics there are.
struct HistoryFigures {
    std::size_t topics = 0; // topics that retain at least one event
    std::size_t bytes = 0;  // their events' footprints, an event once per topic holding it
    // Events dropped from a topic's history (once per topic) to keep history.max_topics
    // and history.max_total_bytes.
    std::uint64_t evicted_max_topics = 0;
    std::uint64_t evicted_max_total_bytes = 0;
};

// A durable store's own counters, for /metrics.
struct StoreFigures {
    std::uint64_t transactions = 0;        // committed
    std::uint64_t events_written = 0;      // events in committed transactions
    std::uint64_t failed_transactions = 0; // rolled back (their publishes got 503)
    std::uint64_t memory_replays = 0;      // replays answered from memory
    std::uint64_t disk_replays = 0;        // replays that read the database
    double commit_seconds = 0;             // time spent writing and committing
};

// Not thread-safe: the hub serialises every call under its lock, which is what makes the
// order of ids the order of delivery.
//
// A log either settles each append at once (the memory store: the event is retained and
// may be delivered when append() returns), or later (a durable store: append() queues the
// event, and the log reports each transaction through the commit handler; the hub then
// calls settle() under its lock, and only then delivers the events). Replays, positions
// and last_position() cover settled events only.
class EventLog {
public:
    using CommitHandler = std::function<void(Commit&&)>;

    virtual ~EventLog() = default;

    // Assigns the position and (unless the publisher gave one) the id and encodes the
    // frame; retains the event, or queues it when the log settles later.
    [[nodiscard]] virtual AppendResult append(NewEvent&& event) = 0;

    // False for a log that settles appends later through the commit handler.
    [[nodiscard]] virtual bool settles_at_once() const { return true; }
    // Set once, before the first append. Called on the log's own thread, never under the
    // hub's lock, once per transaction, in position order.
    virtual void on_commit(CommitHandler handler) { (void)handler; }
    // Under the hub's lock, from the commit handler: the committed events become part of
    // the history (replays, position_of, last_position); failed ones are forgotten.
    virtual void settle(const Commit& commit) { (void)commit; }
    // Writes what is queued and stops taking appends (at shutdown). Not under the lock;
    // the commit handler may run during the call.
    virtual void close() {}

    // The position of a retained event's id, if the log still knows it.
    [[nodiscard]] virtual std::optional<std::uint64_t> position_of(std::string_view id) const = 0;

    // The position of the newest event settled (before the first: a position below any
    // the log will assign).
    [[nodiscard]] virtual std::uint64_t last_position() const = 0;

    // Every retained event after `after` on the topics of `filter`.
    [[nodiscard]] virtual Replay replay(std::uint64_t after, const TopicFilter& filter) const = 0;

    // Drops events older than the age bound; called about once a second.
    virtual void expire(std::int64_t now_ms) = 0;

    // Per-topic figures for /topics, of the topics that retain events (a topic that
    // retains none is forgotten), in name order.
    [[nodiscard]] virtual std::vector<TopicStats> topics(const TopicRange& range) const = 0;
    [[nodiscard]] std::vector<TopicStats> topics() const { return topics(TopicRange{}); }

    // The history's figures (cheap: no walk over the topics).
    [[nodiscard]] virtual HistoryFigures history() const = 0;

    // Any thread, without the hub's lock: the store's counters, if it keeps any.
    [[nodiscard]] virtual std::optional<StoreFigures> figures() const { return std::nullopt; }

    // Why the store cannot take events now (for /readyz), or nothing when it can.
    [[nodiscard]] virtual std::optional<std::string> trouble() const { return std::nullopt; }
};

} // namespace herald::log
