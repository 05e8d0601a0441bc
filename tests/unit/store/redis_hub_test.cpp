// Tests for hubs on the Redis log, two nodes on one Redis: a publish on one node reaches a
// subscriber on the other through the hub's fan-out, a Last-Event-ID from one node resumes
// on the other, and a subscriber registering on one node among publishes on both misses
// nothing and gets nothing twice (run under TSan by `make test`).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hub/hub.hpp"
#include "redis_server.hpp"
#include "store/redis/redis_store.hpp"

namespace herald::store {
namespace {

using namespace std::chrono_literals;
using hub::PublishError;
using testing::RedisServer;

// A node: the store is declared first and closed before the hub goes, so that the follower
// never calls into a destroyed hub.
struct RedisHub {
    explicit RedisHub(const std::string& url)
        : store(options(url)), hub(store, 1, [](unsigned) {}) {}
    RedisHub(const RedisHub&) = delete;
    RedisHub& operator=(const RedisHub&) = delete;
    ~RedisHub() { store.close(); }

    static RedisOptions options(const std::string& url) {
        RedisOptions o;
        o.url = url;
        o.retention = Retention{100000, 1000000000, 0};
        return o;
    }

    RedisStore store;
    hub::Hub hub;
};

class Recorder final : public hub::Subscriber {
public:
    void lose() override { lost = true; }
    void deliver(const log::Event& event) override { positions.push_back(event.position); }
    void flush() override {}
    bool lost = false;
    std::vector<std::uint64_t> positions;
};

log::NewEvent make(std::vector<std::string> topics, std::string data = "x") {
    log::NewEvent ev;
    ev.topics = std::move(topics);
    ev.data = std::move(data);
    return ev;
}

hub::Interest interest_of(std::vector<std::string> topics) {
    hub::Interest in;
    in.exact = std::move(topics);
    return in;
}

// Drains the node's shard (the worker's job; this thread plays the worker) until `sub` has
// `n` events or the time is up.
bool drain_until(RedisHub& node, const Recorder& sub, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        node.hub.shard(0).drain();
        if (sub.positions.size() >= n) {
            return true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
}

TEST(RedisHub, APublishOnOneNodeReachesASubscriberOnTheOther) {
    RedisServer redis;
    RedisHub a(redis.url());
    RedisHub b(redis.url());
    Recorder sub;
    auto sr = b.hub.shard(0).subscribe(sub, interest_of({"a"}), std::nullopt);
    EXPECT_TRUE(sr.replay.events.empty());
    EXPECT_TRUE(sr.unavailable.empty());
    std::vector<std::uint64_t> want;
    for (int i = 0; i < 10; ++i) {
        auto res = a.hub.publish(make({i % 2 == 0 ? "a" : "b"}));
        ASSERT_EQ(res.error, PublishError::none) << res.reason;
        if (i % 2 == 0) {
            want.push_back(res.event->position);
        }
    }
    ASSERT_TRUE(drain_until(b, sub, want.size()));
    EXPECT_EQ(sub.positions, want);
    EXPECT_FALSE(sub.lost);
    b.hub.shard(0).unsubscribe(sub);
}

TEST(RedisHub, ALastEventIdFromOneNodeResumesOnTheOther) {
    RedisServer redis;
    RedisHub a(redis.url());
    RedisHub b(redis.url());
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        auto res = a.hub.publish(make({i % 2 == 0 ? "x" : "y"}));
        ASSERT_EQ(res.error, PublishError::none) << res.reason;
        ids.push_back(res.event->id);
    }
    // B's hub hands its replay up to what it has fanned out: wait until it has them all.
    const auto last = std::stoull(ids.back());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (b.store.last_position() < last && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    Recorder sub;
    auto sr = b.hub.shard(0).subscribe(sub, interest_of({"x", "y"}), ids[1]);
    EXPECT_EQ(sr.resume_header, ids[1]);
    EXPECT_FALSE(sr.replay.gap);
    std::vector<std::string> got;
    for (const auto& ev : sr.replay.events) {
        got.push_back(ev->id);
    }
    EXPECT_EQ(got, (std::vector<std::string>(ids.begin() + 2, ids.end())));
    b.hub.shard(0).unsubscribe(sub);
}

TEST(RedisHub, ASubscriberJoiningAmongPublishesOnBothNodesMissesNothing) {
    RedisServer redis;
    RedisHub a(redis.url());
    RedisHub b(redis.url());
    auto first = a.hub.publish(make({"t"}));
    ASSERT_EQ(first.error, PublishError::none);
    constexpr int kEach = 150;
    std::atomic<bool> go{false};
    std::vector<std::thread> publishers;
    for (RedisHub* node : {&a, &b}) {
        publishers.emplace_back([node, &go] {
            while (!go) {
                std::this_thread::yield();
            }
            for (int i = 0; i < kEach; ++i) {
                EXPECT_EQ(node->hub.publish(make({"t"})).error, PublishError::none);
            }
        });
    }
    go = true;
    // Join mid-stream: once some of the publishes went by.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (b.store.last_position() < first.event->position + 20 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    Recorder sub;
    auto sr = b.hub.shard(0).subscribe(sub, interest_of({"t"}), first.event->id);
    for (auto& t : publishers) {
        t.join();
    }
    std::vector<std::uint64_t> seen;
    for (const auto& ev : sr.replay.events) {
        seen.push_back(ev->position);
    }
    const std::size_t replayed = seen.size();
    ASSERT_TRUE(drain_until(b, sub, 2 * kEach - replayed));
    seen.insert(seen.end(), sub.positions.begin(), sub.positions.end());
    // Every event after the first, once, in order: positions 2 .. 2*kEach+1.
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(2 * kEach));
    for (std::size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i], first.event->position + 1 + i);
    }
    EXPECT_FALSE(sub.lost);
    b.hub.shard(0).unsubscribe(sub);
}

} // namespace
} // namespace herald::store
