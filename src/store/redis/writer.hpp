// The writer thread of a Redis store: it takes every append queued while the previous batch
// was in flight, sends them all pipelined (one EVALSHA per up to 128 of them: ids, appends,
// retention and one Pub/Sub message in one atomic step), and answers each `done` from the
// replies.
//
// It also owns the store's view of Redis's health: after a failure it reconnects by itself
// (100 ms, doubling to 2 s between tries) and clears the failure once a connection works.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "log/event_log.hpp"
#include "store/redis/connection.hpp"
#include "store/redis/node_state.hpp"

namespace herald::store::redis {

class Writer {
public:
    // `conn` is the connection the store opened (and checked) at start.
    Writer(NodeState& node, std::unique_ptr<Connection> conn);
    void start();
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Any thread. An event Redis took is answered on the follower's thread once it has
    // delivered it to the listener (on the writer's when the follower is past it or not
    // following: Handoff); a refusal on the writer's thread, or on the caller's at once when
    // Redis is known to be down or the writer is closed. An append still unanswered by Redis
    // `timeout` after it was queued fails `unavailable`.
    void append(log::NewEvent&& event, log::AppendDone done);
    // Drops, in Redis, the events published before `cutoff_ms` (with the next batch).
    void expire(std::int64_t cutoff_ms);
    // Someone saw Redis fail: check (and reconnect) now rather than at the next append.
    void wake();
    // Answers every queued append (writing them if Redis answers), then stops the thread.
    void close();

private:
    struct Pending {
        log::NewEvent event;
        std::string body;
        std::string footprint; // without the id, as a decimal
        std::string published_ms;
        std::string topic_count;
        base::MonoClock::time_point deadline;
        log::AppendDone done;
    };

    void run();
    // Whether the connection works, reconnecting when the back-off allows.
    bool ready(bool stopping);
    void write(std::vector<Pending>& batch, std::optional<std::int64_t> cutoff);
    // Sends the items (and the expiry, if any) pipelined and answers them; returns those
    // that met NOSCRIPT, to send again once the scripts are loaded.
    std::vector<Pending*> pipeline(const std::vector<Pending*>& items,
                                   std::optional<std::int64_t>& cutoff);
    // Answers `done` from the event's part of the script's reply.
    void answer(Pending& p, const redisReply* reply);
    void fail(Pending& p, const std::string& reason);

    NodeState& node_;
    std::unique_ptr<Connection> conn_;
    std::chrono::milliseconds backoff_{100};
    base::MonoClock::time_point next_try_{};

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Pending> queue_;
    std::optional<std::int64_t> cutoff_; // an expiry to run
    bool stopping_ = false;
    bool woken_ = false;
    std::thread thread_;
};

} // namespace herald::store::redis
