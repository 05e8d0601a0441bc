// Tests for the $sys/stats figures: every field from the hub and the workers' counters,
// rates over the time since the previous sample, and the first sample's since the start.
#include "ops/stats_feed.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/memory/memory_store.hpp"

namespace herald::ops {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class StatsFeedTest : public ::testing::Test {
protected:
    StatsFeedTest() : store_({1000, 100000000, 0}, 1), hub_(store_, 2, [](unsigned) {}) {}

    void publish(int n) {
        for (int i = 0; i < n; ++i) {
            log::NewEvent ev;
            ev.topics = {"t"};
            ev.data = "x";
            (void)hub_.publish(std::move(ev));
        }
    }

    store::MemoryStore store_;
    hub::Hub hub_;
    net::WorkerStats w0_, w1_;
    const base::MonoClock::time_point t0_ = base::MonoClock::now();
};

TEST_F(StatsFeedTest, SumsTheWorkersAndTheHub) {
    StatsFeed feed(hub_, {&w0_, &w1_}, t0_);
    w0_.connections_open = 3;
    w1_.connections_open = 4;
    w0_.queued_bytes = 100;
    w1_.slow_disconnects = 2;
    w0_.reject(net::Reject::not_found);
    w1_.reject(net::Reject::forbidden);
    w1_.reject(net::Reject::forbidden);
    publish(5);
    const json s = json::parse(feed.sample(t0_ + 2500ms, 1'700'000'000'123));
    EXPECT_EQ(s["time"], 1'700'000'000'123);
    EXPECT_EQ(s["uptimeSeconds"], 2);
    EXPECT_EQ(s["connections"], 7);
    EXPECT_EQ(s["subscribers"], 0);
    EXPECT_EQ(s["published"], 5);
    EXPECT_EQ(s["delivered"], 0);
    EXPECT_EQ(s["queuedBytes"], 100);
    EXPECT_EQ(s["slowDisconnects"], 2);
    EXPECT_EQ(s["rejected"], 3);
    // The first rates are over the time since the start: 5 events in 2.5 s.
    EXPECT_DOUBLE_EQ(s["inPerSecond"].get<double>(), 2.0);
}

TEST_F(StatsFeedTest, RatesAreOverTheTimeSinceTheLastSample) {
    StatsFeed feed(hub_, {&w0_, &w1_}, t0_);
    publish(10);
    w0_.bytes_out = 1000;
    (void)feed.sample(t0_ + 1s, 0);
    publish(3);
    w1_.bytes_out = 500;
    json s = json::parse(feed.sample(t0_ + 1500ms, 0));
    EXPECT_DOUBLE_EQ(s["inPerSecond"].get<double>(), 6.0);
    EXPECT_DOUBLE_EQ(s["bytesOutPerSecond"].get<double>(), 1000.0);
    EXPECT_EQ(s["published"], 13);
    // Nothing new: zero, never negative; and to a tenth.
    s = json::parse(feed.sample(t0_ + 2500ms, 0));
    EXPECT_DOUBLE_EQ(s["inPerSecond"].get<double>(), 0.0);
    publish(1);
    s = json::parse(feed.sample(t0_ + 5500ms, 0));
    EXPECT_DOUBLE_EQ(s["inPerSecond"].get<double>(), 0.3);
    // The same instant twice: no division by zero.
    s = json::parse(feed.sample(t0_ + 5500ms, 0));
    EXPECT_DOUBLE_EQ(s["inPerSecond"].get<double>(), 0.0);
}

TEST_F(StatsFeedTest, TheHubsOwnEventsAreNotCounted) {
    StatsFeed feed(hub_, {&w0_}, t0_);
    hub_.publish_system(hub::kStatsTopic, "{}");
    hub_.publish_system(hub::kConnectionsTopic, "{}");
    const json s = json::parse(feed.sample(t0_ + 1s, 0));
    EXPECT_EQ(s["published"], 0);
    EXPECT_DOUBLE_EQ(s["inPerSecond"].get<double>(), 0.0);
}

} // namespace
} // namespace herald::ops
