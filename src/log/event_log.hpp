// The event log interface: it assigns ids and positions, keeps per-topic history within the
// retention bounds, answers replays, and reports the events that become part of the
// history, in order, to its listener (the hub). Stores (memory, sqlite, redis) implement it.
//
// Every method may be called from any thread; each log synchronises itself. The hub never
// holds its own lock while calling into the log, so a log may do I/O in any call.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
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

// Called exactly once per append: possibly before append() returns, possibly later on the
// store's own thread. Never with a lock of the log held that another call may take.
using AppendDone = std::function<void(AppendResult)>;

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
    // Not empty when the history could not be read (the store is unreachable): `events`
    // is then empty.
    std::string error;
    // True when the replay was cut at its byte bound and events remain after `next_after`
    // (up to the `upto` asked for): the next page asks for them with `after = next_after`.
    bool more = false;
    // The position this page reached: its last event's, or the `after` asked for when it
    // has none. A caller that drops some of the page's events still continues from here.
    std::uint64_t next_after = 0;
};

// A replay bound that bounds nothing: every event in the range, in one answer.
inline constexpr std::size_t kWholeReplay = std::numeric_limits<std::size_t>::max();

// Cuts `out.events` (in position order, all after `after`) to the first events whose
// frames reach `max_bytes` together (at least one), sets `more` when any were cut or when
// `beyond` (the reader stopped before the end of the range), and sets `next_after`.
inline void cut_page(Replay& out, std::uint64_t after, std::size_t max_bytes, bool beyond) {
    std::size_t bytes = 0;
    std::size_t kept = 0;
    while (kept < out.events.size() && (kept == 0 || bytes < max_bytes)) {
        bytes += out.events[kept]->frame.size();
        ++kept;
    }
    out.more = beyond || kept < out.events.size();
    out.events.resize(kept);
    out.next_after = out.events.empty() ? after : out.events.back()->position;
}

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
    std::uint64_t disk_replays = 0;        // replays that read the database (or Redis)
    double commit_seconds = 0;             // time spent writing and committing
};

// What the log tells the hub. Calls are serialised (never two at once), and may come with
// the log's own lock held: a listener must not call back into the log.
class LogListener {
public:
    virtual ~LogListener() = default;
    // Events that have become part of the history (appended here or, in a cluster, on
    // another node), in position order, each once: deliver them live.
    virtual void settled(std::span<const EventPtr> events) = 0;
    // Events up to `position` exist that the log can no longer hand over (a cluster node
    // that was cut off for longer than the history it could read back): every stream that
    // has not seen them must end, so that its client resumes and learns of the gap.
    virtual void lost(std::uint64_t position) = 0;
};

class EventLog {
public:
    virtual ~EventLog() = default;

    // Set once, before the first append.
    virtual void set_listener(LogListener* listener) = 0;

    // Assigns the position and (unless the publisher gave one) the id, encodes the frame,
    // and appends. `done` gets the event once it is part of the history (acknowledged by
    // the store: committed for SQLite, by Redis for a cluster), or the refusal. The
    // listener gets the event too, before or after `done`.
    virtual void append(NewEvent&& event, AppendDone done) = 0;

    // Writes what is queued and stops taking appends (at shutdown). `done` of every append
    // accepted before runs during the call at the latest.
    virtual void close() {}

    // The position of a retained event's id, if the log still knows it.
    [[nodiscard]] virtual std::optional<std::uint64_t> position_of(std::string_view id) const = 0;

    // The position of the newest event handed to the listener so far (before the first: a
    // position below any the log will assign). Read once, when the hub starts.
    [[nodiscard]] virtual std::uint64_t last_position() const = 0;

    // The retained events with `after` < position <= `upto` on the topics of `filter`, in
    // position order, from the first on, as many as have frames of about `max_bytes`
    // together: the first that reach it, at least one when any exists. `more` then says
    // whether events remain after `next_after`; `gap` is about drops after `after`. A
    // replay is paged this way so that a stream holds one page of decoded events, never a
    // whole history (the hub's kReplayPageBytes).
    [[nodiscard]] virtual Replay replay(std::uint64_t after, std::uint64_t upto,
                                        const TopicFilter& filter, std::size_t max_bytes) const = 0;
    // The whole range in one answer.
    [[nodiscard]] Replay replay(std::uint64_t after, std::uint64_t upto,
                                const TopicFilter& filter) const {
        return replay(after, upto, filter, kWholeReplay);
    }

    // Drops events older than the age bound; called about once a second.
    virtual void expire(std::int64_t now_ms) = 0;

    // Per-topic figures for /topics, of the topics that retain events (a topic that
    // retains none is forgotten), in name order.
    [[nodiscard]] virtual std::vector<TopicStats> topics(const TopicRange& range) const = 0;
    [[nodiscard]] std::vector<TopicStats> topics() const { return topics(TopicRange{}); }

    // The history's figures (cheap: no walk over the topics).
    [[nodiscard]] virtual HistoryFigures history() const = 0;

    // The store's counters, if it keeps any.
    [[nodiscard]] virtual std::optional<StoreFigures> figures() const { return std::nullopt; }

    // Why the store cannot take events now (for /readyz), or nothing when it can.
    [[nodiscard]] virtual std::optional<std::string> trouble() const { return std::nullopt; }
    // Why the store can neither replay nor deliver live events now (a cluster node cut off
    // from Redis), or nothing. New subscriptions are then answered with a retry and closed;
    // a local store that cannot write can still serve what it holds, so it says nothing.
    [[nodiscard]] virtual std::optional<std::string> unreachable() const { return std::nullopt; }
};

} // namespace herald::log
