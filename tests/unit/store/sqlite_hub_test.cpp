// Tests for the hub on the SQLite event log: publishes are answered once their transaction
// has committed (blocking and with a callback), subscribers get live events and resume
// across a restart, and publisher threads race through group commit (run under TSan by
// `make test`).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include "hub/hub.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace herald::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hub::PublishError;
using hub::PublishResult;

constexpr auto kWait = 20s;
// Every position, for replays that are not bounded by a hub's hand-off.
constexpr std::uint64_t kAll = ~std::uint64_t{0};

using testing::TempDir;

// A hub on a SQLite store. The store is declared first and closed before the hub goes, so
// that its writer never calls into a destroyed hub.
struct SqliteHub {
    explicit SqliteHub(SqliteOptions options, unsigned workers = 1)
        : store(std::move(options)), hub(store, workers, [](unsigned) {}) {}
    SqliteHub(const SqliteHub&) = delete;
    SqliteHub& operator=(const SqliteHub&) = delete;
    ~SqliteHub() { store.close(); }

    SqliteStore store;
    hub::Hub hub;
};

// Records what the shard hands it.
class Recorder final : public hub::Subscriber {
public:
    void lose() override { lost = true; }
    bool lost = false;
    void deliver(const log::Event& event) override {
        ids.push_back(event.id);
        positions.push_back(event.position);
    }
    void flush() override { ++flushes; }

    std::vector<std::string> ids;
    std::vector<std::uint64_t> positions;
    int flushes = 0;
};

log::NewEvent make(std::vector<std::string> topics, std::string data = "x", std::string id = {}) {
    log::NewEvent ev;
    ev.topics = std::move(topics);
    ev.data = std::move(data);
    ev.id = std::move(id);
    return ev;
}

hub::Interest interest_of(std::vector<std::string> topics) {
    hub::Interest in;
    in.exact = std::move(topics);
    return in;
}

log::TopicFilter exact(std::vector<std::string> topics) {
    log::TopicFilter f;
    f.exact = std::move(topics);
    return f;
}

std::vector<std::string> ids_of(const std::vector<log::EventPtr>& events) {
    std::vector<std::string> out;
    for (const auto& ev : events) {
        out.push_back(ev->id);
    }
    return out;
}

class SqliteHubTest : public ::testing::Test {
protected:
    [[nodiscard]] SqliteOptions options() const {
        SqliteOptions o;
        o.path = (dir_.path() / "herald.db").string();
        o.sync_full = false;
        o.retention = Retention{100000, 1000000000, 0};
        return o;
    }

    TempDir dir_;
};

TEST_F(SqliteHubTest, BlockingPublishReturnsASettledEvent) {
    SqliteHub h(options());
    const auto start = h.store.last_position();
    PublishResult res = h.hub.publish(make({"a"}, "hello"));
    ASSERT_EQ(res.error, PublishError::none) << res.reason;
    ASSERT_NE(res.event, nullptr);
    EXPECT_GT(res.event->position, start);
    EXPECT_EQ(res.event->id, std::to_string(res.event->position));
    EXPECT_EQ(res.event->frame.view(), "id: " + res.event->id + "\ndata: hello\n\n");
    // Settled when the publish returns: replayable, known, counted.
    EXPECT_EQ(h.store.last_position(), res.event->position);
    EXPECT_EQ(h.store.position_of(res.event->id), res.event->position);
    EXPECT_EQ(ids_of(h.store.replay(0, kAll, exact({"a"})).events),
              (std::vector<std::string>{res.event->id}));
    EXPECT_EQ(h.hub.published(), 1U);
    auto topics = h.hub.topics();
    ASSERT_EQ(topics.size(), 1U);
    EXPECT_EQ(topics[0].topic, "a");
    EXPECT_EQ(topics[0].retained, 1U);
    EXPECT_EQ(topics[0].last_id, res.event->id);
    EXPECT_FALSE(h.hub.trouble().has_value());

    auto dup = h.hub.publish(make({"b"}, "again", res.event->id));
    EXPECT_EQ(dup.error, PublishError::duplicate_id);
    EXPECT_EQ(dup.event, nullptr);
    EXPECT_EQ(h.hub.published(), 1U);
    h.store.close();
}

TEST_F(SqliteHubTest, AsyncPublishCallsBackOnceCommitted) {
    SqliteHub h(options());
    std::promise<std::pair<PublishResult, std::thread::id>> promise;
    auto answer = promise.get_future();
    h.hub.publish(make({"a"}, "async", "mine"), [&promise](PublishResult r) {
        promise.set_value({std::move(r), std::this_thread::get_id()});
    });
    ASSERT_EQ(answer.wait_for(kWait), std::future_status::ready);
    auto [res, thread] = answer.get();
    EXPECT_NE(thread, std::this_thread::get_id()); // answered by the store's writer
    ASSERT_EQ(res.error, PublishError::none) << res.reason;
    ASSERT_NE(res.event, nullptr);
    EXPECT_EQ(res.event->id, "mine");
    EXPECT_EQ(res.event->data, "async");
    EXPECT_EQ(h.store.position_of("mine"), res.event->position);

    // A refusal is answered at once: once, on the caller's thread, before publish returns.
    int calls = 0;
    PublishResult refusal;
    std::thread::id refused_on;
    h.hub.publish(make({"a"}, "x", "mine"), [&](PublishResult r) {
        ++calls;
        refusal = std::move(r);
        refused_on = std::this_thread::get_id();
    });
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(refusal.error, PublishError::duplicate_id);
    EXPECT_EQ(refusal.event, nullptr);
    EXPECT_EQ(refused_on, std::this_thread::get_id());

    // Many at once, each answered once, in order.
    constexpr int kCount = 50;
    std::vector<std::promise<PublishResult>> promises(kCount);
    std::vector<std::future<PublishResult>> futures;
    for (auto& p : promises) {
        futures.push_back(p.get_future());
    }
    for (int i = 0; i < kCount; ++i) {
        h.hub.publish(make({"b"}, std::to_string(i)), [&promises, i](PublishResult pr) {
            promises[static_cast<std::size_t>(i)].set_value(std::move(pr));
        });
    }
    std::uint64_t previous = res.event->position;
    for (int i = 0; i < kCount; ++i) {
        auto& f = futures[static_cast<std::size_t>(i)];
        ASSERT_EQ(f.wait_for(kWait), std::future_status::ready) << i;
        auto pr = f.get();
        ASSERT_EQ(pr.error, PublishError::none);
        EXPECT_EQ(pr.event->data, std::to_string(i));
        EXPECT_EQ(pr.event->position, previous + 1);
        previous = pr.event->position;
    }
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(h.hub.published(), 1U + kCount);
    h.store.close();
}

TEST_F(SqliteHubTest, PublishAfterCloseIsUnavailable) {
    SqliteHub h(options());
    ASSERT_EQ(h.hub.publish(make({"a"})).error, PublishError::none);
    h.store.close();
    PublishResult res = h.hub.publish(make({"a"}));
    EXPECT_EQ(res.error, PublishError::unavailable);
    EXPECT_EQ(res.event, nullptr);
    EXPECT_FALSE(res.reason.empty());
    int calls = 0;
    PublishResult async;
    h.hub.publish(make({"a"}), [&](PublishResult r) {
        ++calls;
        async = std::move(r);
    });
    EXPECT_EQ(calls, 1); // answered before publish returned
    EXPECT_EQ(async.error, PublishError::unavailable);
    EXPECT_FALSE(async.reason.empty());
    EXPECT_EQ(h.hub.published(), 1U);
}

TEST_F(SqliteHubTest, LiveSubscriberGetsCommittedEvents) {
    SqliteHub h(options());
    Recorder sub;
    auto sr = h.hub.shard(0).subscribe(sub, interest_of({"a"}), std::nullopt);
    EXPECT_TRUE(sr.replay.events.empty());
    std::vector<std::string> want;
    for (int i = 0; i < 5; ++i) {
        auto res = h.hub.publish(make({i % 2 == 0 ? "a" : "b"}, std::to_string(i)));
        ASSERT_EQ(res.error, PublishError::none);
        if (i % 2 == 0) {
            want.push_back(res.event->id);
        }
    }
    // Each event was handed to the shard before its publish returned.
    h.hub.shard(0).drain();
    EXPECT_EQ(sub.ids, want);
    EXPECT_EQ(sub.flushes, 1);
    h.hub.shard(0).unsubscribe(sub);
    h.store.close();
}

TEST_F(SqliteHubTest, SubscriberResumesAcrossARestart) {
    std::vector<std::string> ids;
    {
        SqliteHub h(options());
        for (int i = 0; i < 5; ++i) {
            auto res = h.hub.publish(make({"a"}, std::to_string(i)));
            ASSERT_EQ(res.error, PublishError::none);
            ids.push_back(res.event->id);
        }
        h.store.close();
    }
    SqliteHub h(options());
    Recorder sub;
    auto sr = h.hub.shard(0).subscribe(sub, interest_of({"a"}), ids[1]);
    EXPECT_EQ(sr.resume_header, ids[1]);
    EXPECT_FALSE(sr.replay.gap);
    EXPECT_EQ(ids_of(sr.replay.events), (std::vector<std::string>(ids.begin() + 2, ids.end())));

    Recorder from_start;
    auto all = h.hub.shard(0).subscribe(from_start, interest_of({"a"}), "earliest");
    EXPECT_EQ(all.resume_header, "earliest");
    EXPECT_EQ(ids_of(all.replay.events), ids);

    auto live = h.hub.publish(make({"a"}, "live"));
    ASSERT_EQ(live.error, PublishError::none);
    EXPECT_GT(std::stoull(live.event->id), std::stoull(ids.back()));
    h.hub.shard(0).drain();
    EXPECT_EQ(sub.ids, (std::vector<std::string>{live.event->id}));
    EXPECT_EQ(from_start.ids, (std::vector<std::string>{live.event->id}));
    h.hub.shard(0).unsubscribe(sub);
    h.hub.shard(0).unsubscribe(from_start);
    h.store.close();
}

// Four threads publish 500 events each with the blocking publish while a worker thread
// drains a subscriber to every topic. Every event is answered once, the subscriber gets
// each once in position order, and the log replays them all, also after a restart.
TEST_F(SqliteHubTest, FourPublisherThreadsEveryEventOnceInOrder) {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 500;
    const std::vector<std::string> topics{"t0", "t1", "t2", "t3", "shared"};
    std::vector<std::vector<log::EventPtr>> published(kThreads);
    std::vector<std::uint64_t> live;
    std::vector<std::uint64_t> replayed_live;
    {
        SqliteHub h(options());
        std::atomic<bool> ready{false};
        std::atomic<bool> stop{false};
        std::thread worker([&] {
            Recorder sub;
            (void)h.hub.shard(0).subscribe(sub, interest_of(topics), std::nullopt);
            ready = true;
            while (!stop) {
                h.hub.shard(0).drain();
                std::this_thread::sleep_for(200us);
            }
            h.hub.shard(0).drain();
            h.hub.shard(0).unsubscribe(sub);
            live = std::move(sub.positions);
        });
        while (!ready) {
            std::this_thread::yield();
        }

        std::vector<std::thread> publishers;
        std::atomic<int> failures{0};
        for (int t = 0; t < kThreads; ++t) {
            publishers.emplace_back([&, t] {
                for (int i = 0; i < kPerThread; ++i) {
                    std::vector<std::string> on{"t" + std::to_string(t)};
                    if (i % 10 == 0) {
                        on.emplace_back("shared");
                    }
                    auto res = h.hub.publish(
                        make(std::move(on), std::to_string(t) + ":" + std::to_string(i)));
                    if (res.error != PublishError::none || res.event == nullptr) {
                        ++failures;
                        continue;
                    }
                    published[static_cast<std::size_t>(t)].push_back(std::move(res.event));
                }
            });
        }
        for (auto& p : publishers) {
            p.join();
        }
        stop = true;
        worker.join();
        EXPECT_EQ(failures.load(), 0);
        EXPECT_EQ(h.hub.published(), std::uint64_t{kThreads * kPerThread});
        // Every publish has returned, so every event is settled.
        auto r = h.store.replay(0, kAll, exact(topics));
        EXPECT_FALSE(r.gap);
        for (const auto& ev : r.events) {
            replayed_live.push_back(ev->position);
        }
        h.store.close();
    }

    std::set<std::uint64_t> all_positions;
    std::set<std::string> all_ids;
    for (int t = 0; t < kThreads; ++t) {
        const auto& mine = published[static_cast<std::size_t>(t)];
        ASSERT_EQ(mine.size(), static_cast<std::size_t>(kPerThread));
        for (std::size_t i = 0; i < mine.size(); ++i) {
            EXPECT_EQ(mine[i]->data, std::to_string(t) + ":" + std::to_string(i));
            if (i > 0) {
                EXPECT_GT(mine[i]->position, mine[i - 1]->position);
            }
            all_positions.insert(mine[i]->position);
            all_ids.insert(mine[i]->id);
        }
    }
    ASSERT_EQ(all_positions.size(), std::size_t{kThreads * kPerThread});
    ASSERT_EQ(all_ids.size(), std::size_t{kThreads * kPerThread});
    const std::vector<std::uint64_t> expected(all_positions.begin(), all_positions.end());
    // No position was skipped or given twice.
    EXPECT_EQ(expected.back() - expected.front() + 1, expected.size());
    EXPECT_EQ(live, expected);
    EXPECT_EQ(replayed_live, expected);

    SqliteHub h(options());
    auto r = h.store.replay(0, kAll, exact(topics));
    EXPECT_FALSE(r.gap);
    std::vector<std::uint64_t> replayed;
    for (const auto& ev : r.events) {
        replayed.push_back(ev->position);
        EXPECT_EQ(ev->id, std::to_string(ev->position));
    }
    EXPECT_EQ(replayed, expected);
    h.store.close();
}

} // namespace
} // namespace herald::store
