// The cluster's event log, in Redis (`--store redis://...`): several herald nodes given one
// Redis share one history, one order of events and one id space.
//
// Threads and who calls what:
// - append() from any thread queues the event for the writer thread, which sends every
//   queued append pipelined and calls each `done` on that thread (or on the caller's
//   thread, at once, when Redis is known to be down or the store is closed).
// - The listener is called on the follower thread only, one call at a time, for the events
//   of every node (this one's included) in the cluster's order; it may be called before or
//   after the `done` of the same event. An event written here usually reaches both as one
//   Event object (not when its Pub/Sub message outran the writer's reply: then the
//   listener gets an equal copy).
// - replay() answers from the cache of recent events when it holds the whole range, else
//   reads Redis; position_of(), topics() read Redis. Reads happen on the caller's thread
//   through a small pool of connections; each call is bounded by the timeout. history() is
//   cached for a second.
// Every Redis call is bounded by `timeout_ms`; a publish gets `unavailable` within it when
// Redis is down or hung, and the store reconnects by itself.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "log/event_log.hpp"
#include "store/memory/memory_store.hpp"
#include "store/store_error.hpp"

namespace herald::store {

struct RedisOptions {
    std::string url; // redis://[[USER]:PASSWORD@]HOST:PORT[/DB]
    Retention retention;
    unsigned timeout_ms = 1000; // every Redis call, connecting included
    // The newest events per topic also kept in memory, so that most resumes need no read
    // from Redis; 0 keeps none.
    std::size_t cache_events = 1000;
    std::string node_name; // for log lines
};

class RedisStore final : public log::EventLog {
public:
    // Connects, authenticates, selects the database, checks that the server is Redis 7 or
    // newer, loads the scripts and subscribes. Throws StoreError with a sentence that names
    // the URL without its password.
    explicit RedisStore(RedisOptions options);
    ~RedisStore() override;
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;

    // The URL with its password left out, for messages (safe on any text).
    [[nodiscard]] static std::string redact(std::string_view url);

    void set_listener(log::LogListener* listener) override;
    void append(log::NewEvent&& event, log::AppendDone done) override;
    // Answers every queued append, waits (at most the timeout) until this node's own events
    // have reached the listener, and stops the threads.
    void close() override;

    [[nodiscard]] std::optional<std::uint64_t> position_of(std::string_view id) const override;
    [[nodiscard]] std::uint64_t last_position() const override;
    using log::EventLog::replay;
    [[nodiscard]] log::Replay replay(std::uint64_t after, std::uint64_t upto,
                                     const log::TopicFilter& filter,
                                     std::size_t max_bytes) const override;
    void expire(std::int64_t now_ms) override;
    using log::EventLog::topics;
    [[nodiscard]] std::vector<log::TopicStats> topics(const log::TopicRange& range) const override;
    [[nodiscard]] log::HistoryFigures history() const override;
    [[nodiscard]] std::optional<log::StoreFigures> figures() const override;
    [[nodiscard]] std::optional<std::string> trouble() const override;
    // The same as trouble(): cut off from Redis, a node can neither write, replay nor follow
    // the cluster's events.
    [[nodiscard]] std::optional<std::string> unreachable() const override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace herald::store
