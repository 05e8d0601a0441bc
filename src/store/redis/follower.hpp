// The follower: the one path by which events reach this node's listener, its own included.
// It subscribes to the cluster's channel and checks each message's chain (its previous
// position must be the last one delivered); when the chain breaks (a dropped connection, a
// restarted Redis, a node too slow for Redis's output limit) it reads the missing events
// back from Redis's global log, in pages, and delivers them first. Events that Redis no
// longer holds are reported to the listener as lost.
//
// After every (re)connection: SUBSCRIBE first, then read back everything after the last
// delivered position, then the messages that queued meanwhile (those already delivered are
// skipped): no gap, no duplicate.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "log/event_log.hpp"
#include "store/redis/connection.hpp"
#include "store/redis/node_state.hpp"
#include "store/redis/record.hpp"

namespace herald::store::redis {

class Follower {
public:
    explicit Follower(NodeState& node);
    ~Follower();
    Follower(const Follower&) = delete;
    Follower& operator=(const Follower&) = delete;

    // Subscribes and reads where the cluster's order stands (Redis's counter): the position
    // after which this node delivers. On failure, a sentence in `error`.
    [[nodiscard]] bool start(std::string& error);
    // Sets who is told (settled() and lost(), one call at a time, from the follower thread
    // only), starting that thread at the first listener. Null stops the calls: none is in
    // progress or made once this returns (the hub unsets itself before it goes).
    void set_listener(log::LogListener* listener);
    // Waits (at most `limit`) until `position` has been delivered.
    void wait_for(std::uint64_t position, std::chrono::milliseconds limit);
    // Stops the thread; no listener call is made after it returns.
    void close();

    [[nodiscard]] std::uint64_t last_position() const noexcept {
        return published_.load(std::memory_order_acquire);
    }
    // Why live events cannot be followed now, while the subscription is down.
    [[nodiscard]] std::optional<std::string> trouble() const;

private:
    void loop();
    bool subscribe(std::string& error);
    bool connect(std::string& error); // subscribe, then read back what was missed
    void listen();                    // one poll() turn on the subscription
    // One message: the records of one append script, in order. False when a gap it shows
    // cannot be read back.
    bool on_message(std::string_view message);
    bool on_record(const Record& record);
    // Reads back and delivers every event after the last delivered up to `target`; false
    // when Redis cannot be read.
    bool catch_up(std::uint64_t target);
    // `live`: from a message (it joins the cache), not read back.
    void deliver(const Record& record, std::uint64_t position, bool live);
    void lose(std::uint64_t position);
    void flush();
    void set_trouble(std::optional<std::string> why);
    void sleep(std::chrono::milliseconds d);

    NodeState& node_;
    std::unique_ptr<Connection> sub_;    // subscribed: only messages and PING replies
    std::unique_ptr<Connection> reader_; // reads the log back
    std::mutex listener_mu_;             // held during each call to the listener
    log::LogListener* listener_ = nullptr;
    std::uint64_t delivered_ = 0; // the follower thread's own
    std::vector<log::EventPtr> batch_;
    std::string read_error_;                        // why the last read-back failed
    std::chrono::steady_clock::time_point heard_{}; // last bytes from the subscription
    std::optional<std::chrono::steady_clock::time_point> ping_sent_;

    std::atomic<std::uint64_t> published_{0}; // delivered_, once the listener has it
    std::atomic<bool> stop_{false};
    int wake_fd_ = -1;
    std::thread thread_;

    mutable std::mutex mu_;
    std::condition_variable delivered_cv_;
    std::optional<std::string> trouble_;
};

} // namespace herald::store::redis
