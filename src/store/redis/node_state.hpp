// What the parts of one node's Redis store share: its settings, whether Redis is reachable,
// its counters, and the hand-over of the events this node wrote to the thread that
// delivers them. Every member is safe to use from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "log/event.hpp"
#include "store/memory/memory_store.hpp"
#include "store/redis/url.hpp"

namespace herald::store::redis {

// Fixed once the store is built.
struct NodeConfig {
    RedisUrl url;
    std::string label; // the URL without its password: what every message names
    std::chrono::milliseconds timeout{1000};
    Retention retention;
    std::string prefix;  // of every key, inside the selected database
    std::string channel; // Pub/Sub is not per database: the channel names it
};

// Whether this node can write to Redis. Set by whoever sees a call fail; cleared only by
// the writer, once its own connection works again.
class Health {
public:
    explicit Health(const std::string& label) : label_(label) {}

    // Who finds out whether Redis is back (the writer): told of every failure. Set before
    // any thread starts.
    void on_down(std::function<void()> wake) { wake_ = std::move(wake); }

    void down(const std::string& reason) {
        {
            std::lock_guard lock(mu_);
            if (!reason_) {
                spdlog::error("{}: {}; publishes fail until Redis answers again", label_, reason);
            }
            reason_ = label_ + ": " + reason;
            is_down_.store(true, std::memory_order_release);
        }
        if (wake_) {
            wake_();
        }
    }
    void up() {
        std::lock_guard lock(mu_);
        if (reason_) {
            spdlog::info("{}: Redis answers again", label_);
        }
        reason_.reset();
        is_down_.store(false, std::memory_order_release);
    }
    [[nodiscard]] bool is_down() const noexcept { return is_down_.load(std::memory_order_acquire); }
    // The sentence for a refused publish or /readyz (it names the URL), while down.
    [[nodiscard]] std::optional<std::string> reason() const {
        std::lock_guard lock(mu_);
        return reason_;
    }

private:
    const std::string& label_;
    std::function<void()> wake_;
    mutable std::mutex mu_;
    std::optional<std::string> reason_;
    std::atomic<bool> is_down_{false};
};

struct Counters {
    std::atomic<std::uint64_t> transactions{0}; // pipelined batches that reached Redis
    std::atomic<std::uint64_t> events_written{0};
    std::atomic<std::uint64_t> failed_transactions{0};
    std::atomic<std::uint64_t> disk_replays{0};
    std::atomic<std::uint64_t> commit_ns{0};
};

// The events this node's writer built, kept until the follower delivers the same positions,
// so that `done` and the listener see one Event object (and its frame is encoded once); and
// each one's answer, run once the follower has handed the event to the listener. So a
// publisher hears 200 once its node's subscribers have the event queued, as with the other
// stores, and a node's publishers wait while it falls behind the cluster's feed (the hub
// holds publishes while their subscribers are behind).
class Handoff {
public:
    // Keeps `event` and `answer`. Runs `answer` at once (on this thread) when the follower
    // is past its position or not following the feed.
    void offer(const log::EventPtr& event, std::function<void()> answer) {
        {
            std::lock_guard lock(mu_);
            if (following_ && event->position > delivered_) {
                waiting_.emplace(event->position, Waiting{event, std::move(answer)});
                return;
            }
        }
        answer();
    }
    // The event to deliver at `position`, if this node wrote it; its answer stays.
    [[nodiscard]] log::EventPtr take(std::uint64_t position) {
        std::lock_guard lock(mu_);
        auto it = waiting_.find(position);
        return it == waiting_.end() ? nullptr : std::move(it->second.event);
    }
    // Everything up to `position` is delivered (or lost): the answers waiting for it run.
    void delivered(std::uint64_t position) {
        std::vector<std::function<void()>> due;
        {
            std::lock_guard lock(mu_);
            delivered_ = std::max(delivered_, position);
            auto end = waiting_.upper_bound(delivered_);
            for (auto it = waiting_.begin(); it != end; ++it) {
                due.push_back(std::move(it->second.answer));
            }
            waiting_.erase(waiting_.begin(), end);
        }
        for (auto& answer : due) {
            answer();
        }
    }
    // Whether the follower delivers now. When it stops (Redis unreachable, the store
    // closing), the answers waiting run at once, and later ones are not held: the events
    // are in Redis, which is what a publisher is answered for.
    void following(bool yes) {
        std::vector<std::function<void()>> due;
        {
            std::lock_guard lock(mu_);
            following_ = yes;
            if (yes) {
                return;
            }
            for (auto& [position, w] : waiting_) {
                due.push_back(std::move(w.answer));
            }
            waiting_.clear();
        }
        for (auto& answer : due) {
            answer();
        }
    }

private:
    struct Waiting {
        log::EventPtr event;
        std::function<void()> answer;
    };
    std::mutex mu_;
    std::uint64_t delivered_ = 0;
    bool following_ = false;
    std::map<std::uint64_t, Waiting> waiting_;
};

struct NodeState {
    explicit NodeState(NodeConfig c) : config(std::move(c)), health(config.label) {}

    // The newest position this node has seen (written or delivered): if Redis's counter is
    // ever below it, Redis lost its data and the counter is raised past it.
    void saw(std::uint64_t position) noexcept {
        std::uint64_t cur = seen_.load(std::memory_order_relaxed);
        while (cur < position &&
               !seen_.compare_exchange_weak(cur, position, std::memory_order_relaxed)) {
        }
    }
    [[nodiscard]] std::uint64_t seen() const noexcept {
        return seen_.load(std::memory_order_relaxed);
    }

    const NodeConfig config;
    Health health;
    Counters counters;
    Handoff handoff;
    // The newest events of each topic, as the follower delivered them, for replays that
    // need no round trip; null when the node keeps none. Set before the follower starts.
    MemoryStore* cache = nullptr;

private:
    std::atomic<std::uint64_t> seen_{0};
};

} // namespace herald::store::redis
