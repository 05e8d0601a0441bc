// Tests for the cluster's log on a real redis-server (no mocks): two nodes on one Redis,
// their shared order and ids, retention with the memory store's semantics, replays, and the
// faults a cluster meets (a dropped subscription, trimmed history, a hung, killed or
// emptied Redis, wrong credentials), each asserting what the listener and the publishers
// see.
#include "store/redis/redis_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "redis_server.hpp"

namespace herald::store {
namespace {

using namespace std::chrono_literals;
using log::AppendError;
using log::AppendResult;
using log::EventPtr;
using log::NewEvent;
using log::TopicFilter;
using testing::RedisServer;

constexpr Retention kLarge{10000, 100000000, 0};

NewEvent make(std::vector<std::string> topics, std::string data = "x", std::string id = {}) {
    NewEvent ev;
    ev.topics = std::move(topics);
    ev.data = std::move(data);
    ev.id = std::move(id);
    return ev;
}

AppendResult publish(RedisStore& store, NewEvent ev) {
    std::promise<AppendResult> promise;
    auto future = promise.get_future();
    store.append(std::move(ev), [&promise](AppendResult r) { promise.set_value(std::move(r)); });
    return future.get();
}

EventPtr add(RedisStore& store, std::vector<std::string> topics, std::string data = "x",
             std::string id = {}) {
    auto res = publish(store, make(std::move(topics), std::move(data), std::move(id)));
    EXPECT_EQ(res.error, AppendError::none) << res.reason;
    return res.event;
}

TopicFilter exact(std::vector<std::string> topics) {
    TopicFilter f;
    f.exact = std::move(topics);
    return f;
}

constexpr std::uint64_t kAll = std::numeric_limits<std::uint64_t>::max();

log::Replay replay(const RedisStore& store, std::uint64_t after, const TopicFilter& filter) {
    auto r = store.replay(after, kAll, filter);
    EXPECT_TRUE(r.error.empty()) << r.error;
    return r;
}

std::vector<std::uint64_t> positions(const std::vector<EventPtr>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& ev : events) {
        out.push_back(ev->position);
    }
    return out;
}

std::vector<std::uint64_t> positions(const log::Replay& r) {
    return positions(r.events);
}

const log::TopicStats* find_topic(const std::vector<log::TopicStats>& all, std::string_view t) {
    auto it = std::find_if(all.begin(), all.end(), [t](const auto& s) { return s.topic == t; });
    return it == all.end() ? nullptr : &*it;
}

std::vector<std::string> names(const std::vector<log::TopicStats>& all) {
    std::vector<std::string> out;
    for (const auto& t : all) {
        out.push_back(t.topic);
    }
    return out;
}

// Polls `done` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

// What a node's listener was told, in order.
class Recorder : public log::LogListener {
public:
    void settled(std::span<const EventPtr> events) override {
        std::lock_guard lock(mu_);
        for (const auto& ev : events) {
            events_.push_back(ev);
        }
    }
    void lost(std::uint64_t position) override {
        std::lock_guard lock(mu_);
        lost_.push_back(position);
    }
    std::vector<EventPtr> events() const {
        std::lock_guard lock(mu_);
        return events_;
    }
    std::vector<std::uint64_t> lost_positions() const {
        std::lock_guard lock(mu_);
        return lost_;
    }
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return events_.size();
    }
    bool wait_for(std::size_t n, std::chrono::milliseconds limit = 10s) const {
        return eventually([&] { return size() >= n; }, limit);
    }

private:
    mutable std::mutex mu_;
    std::vector<EventPtr> events_;
    std::vector<std::uint64_t> lost_;
};

RedisOptions options(const std::string& url, Retention retention = kLarge,
                     unsigned timeout_ms = 1000) {
    RedisOptions o;
    o.url = url;
    o.retention = retention;
    o.timeout_ms = timeout_ms;
    o.node_name = "test";
    return o;
}

// A node with its listener.
struct Node {
    explicit Node(RedisOptions o) : store(std::move(o)) { store.set_listener(&recorder); }
    Recorder recorder;
    RedisStore store;
};

// Strictly increasing, each once.
bool increasing(const std::vector<std::uint64_t>& p) {
    return std::adjacent_find(p.begin(), p.end(), [](auto a, auto b) { return a >= b; }) == p.end();
}

// ---- two nodes ----

TEST(RedisStore, APublishOnOneNodeReachesBothListenersInOrderOnce) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    EXPECT_EQ(a.store.last_position(), 0U);
    EXPECT_EQ(b.store.last_position(), 0U);

    std::vector<EventPtr> sent;
    for (int i = 0; i < 20; ++i) {
        sent.push_back(add(a.store, {i % 2 == 0 ? "a" : "b"}, "e" + std::to_string(i)));
        ASSERT_NE(sent.back(), nullptr);
        EXPECT_EQ(sent.back()->position, static_cast<std::uint64_t>(i + 1));
        EXPECT_EQ(sent.back()->id, std::to_string(i + 1));
    }
    ASSERT_TRUE(a.recorder.wait_for(20));
    ASSERT_TRUE(b.recorder.wait_for(20));
    const auto on_a = a.recorder.events();
    const auto on_b = b.recorder.events();
    EXPECT_EQ(positions(on_a), positions(sent));
    EXPECT_EQ(positions(on_b), positions(sent));
    // The other node decoded the same event, frame included.
    for (std::size_t i = 0; i < sent.size(); ++i) {
        EXPECT_EQ(on_b[i]->id, sent[i]->id);
        EXPECT_EQ(on_b[i]->data, sent[i]->data);
        EXPECT_EQ(on_b[i]->topics, sent[i]->topics);
        EXPECT_EQ(on_b[i]->published_ms, sent[i]->published_ms);
        EXPECT_EQ(on_b[i]->frame.view(), sent[i]->frame.view());
    }
    EXPECT_TRUE(eventually([&] { return b.store.last_position() == 20U; }));
    EXPECT_TRUE(a.recorder.lost_positions().empty());
    EXPECT_TRUE(b.recorder.lost_positions().empty());
}

// A publisher is answered once its own node's listener has the event (the hub has queued it
// for the node's subscribers), as with the memory and SQLite stores: so the hub's hold on
// publishes whose subscribers are behind sees the node's real backlog, and a client that
// publishes, then resumes on the same node, finds its event.
TEST(RedisStore, APublishIsAnsweredOnceItsNodesListenerHasTheEvent) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    constexpr int kEvents = 400;
    std::atomic<int> answered{0};
    std::atomic<int> early{0}; // answered before the listener had it
    for (int i = 0; i < kEvents; ++i) {
        Node& node = i % 2 == 0 ? a : b;
        node.store.append(make({"t"}, std::to_string(i)), [&](AppendResult r) {
            if (r.event == nullptr) {
                ADD_FAILURE() << r.reason;
            } else {
                const auto had = node.recorder.events();
                if (std::none_of(had.begin(), had.end(), [&](const EventPtr& e) {
                        return e->position == r.event->position;
                    })) {
                    ++early;
                }
            }
            ++answered;
        });
    }
    ASSERT_TRUE(eventually([&] { return answered.load() == kEvents; }));
    EXPECT_EQ(early.load(), 0) << "publishes answered before their node's listener had them";
}

TEST(RedisStore, EveryFieldCrossesNodes) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    NewEvent in =
        make({"a", "b\nwith newline", "a"}, std::string("line1\r\nline2\0x", 15), "my:id");
    in.type = "update";
    in.is_private = true;
    in.retry_ms = 2500;
    auto res = publish(a.store, std::move(in));
    ASSERT_EQ(res.error, AppendError::none) << res.reason;
    ASSERT_TRUE(b.recorder.wait_for(1));
    const auto ev = b.recorder.events().front();
    EXPECT_EQ(ev->id, "my:id");
    EXPECT_EQ(ev->type, "update");
    EXPECT_EQ(ev->data, std::string("line1\r\nline2\0x", 15));
    EXPECT_TRUE(ev->is_private);
    EXPECT_EQ(ev->retry_ms, 2500U);
    EXPECT_EQ(ev->topics, (std::vector<std::string>{"a", "b\nwith newline"}));
    EXPECT_EQ(ev->frame.view(), res.event->frame.view());
    EXPECT_EQ(ev->footprint(), res.event->footprint());
}

TEST(RedisStore, ConcurrentPublishersOnTwoNodesShareOneSequence) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    constexpr int kThreads = 64;
    constexpr int kEach = 20;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            RedisStore& store = t % 2 == 0 ? a.store : b.store;
            for (int i = 0; i < kEach; ++i) {
                auto r = publish(store, make({"t" + std::to_string(t % 5)}));
                if (r.error != AppendError::none) {
                    ++failures;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(failures.load(), 0);
    constexpr std::size_t kTotal = kThreads * kEach;
    ASSERT_TRUE(a.recorder.wait_for(kTotal));
    ASSERT_TRUE(b.recorder.wait_for(kTotal));
    const auto pa = positions(a.recorder.events());
    const auto pb = positions(b.recorder.events());
    EXPECT_EQ(pa, pb);
    ASSERT_EQ(pa.size(), kTotal);
    // No gap either: positions 1..N, each once.
    for (std::size_t i = 0; i < pa.size(); ++i) {
        ASSERT_EQ(pa[i], i + 1);
    }
    // Pipelining: many appends share a round trip.
    const auto fa = *a.store.figures();
    const auto fb = *b.store.figures();
    EXPECT_EQ(fa.events_written + fb.events_written, kTotal);
    EXPECT_LT(fa.transactions + fb.transactions, kTotal);
    EXPECT_EQ(fa.failed_transactions, 0U);
}

// ---- ids ----

TEST(RedisStore, DuplicatePublisherIdIsRefusedOnAnyNode) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    auto first = add(a.store, {"a"}, "x", "dup");
    ASSERT_NE(first, nullptr);
    auto again = publish(b.store, make({"b"}, "y", "dup"));
    EXPECT_EQ(again.error, AppendError::duplicate_id);
    EXPECT_EQ(again.event, nullptr);
    // A generated id is taken too.
    auto gen = add(b.store, {"a"});
    EXPECT_EQ(publish(a.store, make({"c"}, "z", gen->id)).error, AppendError::duplicate_id);
    // The refusals took no position.
    EXPECT_EQ(gen->position, first->position + 1);
    EXPECT_EQ(b.store.position_of("dup"), first->position);
    EXPECT_EQ(a.store.position_of(gen->id), gen->position);
    EXPECT_EQ(a.store.position_of("nope"), std::nullopt);
}

TEST(RedisStore, GeneratedIdsSkipDecimalsPublishersTook) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    auto p1 = add(a.store, {"a"}, "x", "2");
    auto p2 = add(b.store, {"a"}, "x", "3");
    auto far = add(a.store, {"a"}, "x", "6");
    EXPECT_EQ(p1->position, 1U);
    EXPECT_EQ(p2->position, 2U);
    EXPECT_EQ(far->position, 3U);
    EXPECT_EQ(add(b.store, {"a"})->id, "4");
    EXPECT_EQ(add(a.store, {"a"})->id, "5");
    auto skip = add(b.store, {"a"});
    EXPECT_EQ(skip->id, "7");
    EXPECT_EQ(skip->position, 7U);
    // Even once "6" is no longer retained, its number is not handed out.
    RedisServer other;
    Retention one = kLarge;
    one.max_events = 1;
    Node c(options(other.url(), one));
    add(c.store, {"a"}, "x", "3");
    add(c.store, {"a"}); // drops "3"
    EXPECT_EQ(c.store.position_of("3"), std::nullopt);
    EXPECT_EQ(add(c.store, {"a"})->id, "4");
}

TEST(RedisStore, DuplicateOfAnEvictedIdIsAccepted) {
    RedisServer redis;
    Node a(options(redis.url(), Retention{2, 100000000, 0}));
    auto old = add(a.store, {"a"}, "x", "dup");
    add(a.store, {"a"});
    add(a.store, {"a"});
    EXPECT_EQ(a.store.position_of("dup"), std::nullopt);
    auto again = add(a.store, {"b"}, "y", "dup");
    ASSERT_NE(again, nullptr);
    EXPECT_GT(again->position, old->position);
    EXPECT_EQ(a.store.position_of("dup"), again->position);
}

// ---- replay ----

TEST(RedisStore, ResumeOnAnotherNodeAcrossTopics) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    add(a.store, {"a"});      // 1
    add(a.store, {"b"});      // 2
    add(a.store, {"c"});      // 3
    add(a.store, {"a", "b"}); // 4
    add(a.store, {"b"});      // 5
    add(a.store, {"c", "a"}); // 6
    add(a.store, {"a"});      // 7
    add(a.store, {"d"});      // 8
    auto r = replay(b.store, 0, exact({"a", "b"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{1, 2, 4, 5, 6, 7}));
    EXPECT_FALSE(r.gap);
    auto after = replay(b.store, 4, exact({"b", "a"}));
    EXPECT_EQ(positions(after), (std::vector<std::uint64_t>{5, 6, 7}));
    auto twice = replay(b.store, 0, exact({"c", "c", "nope"}));
    EXPECT_EQ(positions(twice), (std::vector<std::uint64_t>{3, 6}));
    // `upto` bounds the replay (the hub asks up to what it has delivered live).
    EXPECT_EQ(positions(b.store.replay(1, 5, exact({"a", "b"}))),
              (std::vector<std::uint64_t>{2, 4, 5}));
    EXPECT_TRUE(replay(b.store, 8, exact({"a", "b", "c", "d"})).events.empty());
    EXPECT_TRUE(replay(b.store, 0, exact({})).events.empty());
    EXPECT_EQ(b.store.position_of("6"), 6U);
    EXPECT_GE(b.store.figures()->disk_replays, 5U);
}

TEST(RedisStore, ReplayWithAPattern) {
    RedisServer redis;
    Node a(options(redis.url()));
    add(a.store, {"books/1"});              // 1
    add(a.store, {"authors/1"});            // 2
    add(a.store, {"books/2", "authors/1"}); // 3
    add(a.store, {"news"});                 // 4
    add(a.store, {"books/3", "news"});      // 5
    TopicFilter books;
    books.pattern = [](std::string_view t) { return t.rfind("books/", 0) == 0; };
    auto r = replay(a.store, 0, books);
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{1, 3, 5}));
    EXPECT_FALSE(r.gap);
    TopicFilter mixed = books;
    mixed.exact = {"news", "books/1"};
    EXPECT_EQ(positions(replay(a.store, 0, mixed)), (std::vector<std::uint64_t>{1, 3, 4, 5}));
    EXPECT_EQ(positions(replay(a.store, 2, mixed)), (std::vector<std::uint64_t>{3, 4, 5}));
    TopicFilter none;
    none.pattern = [](std::string_view) { return false; };
    EXPECT_TRUE(replay(a.store, 0, none).events.empty());
}

TEST(RedisStore, LargeReplaysArePagedAcrossManyTopics) {
    RedisServer redis;
    Node a(options(redis.url()));
    // 40 topics (three calls of 16), 2,500 events (three pages of 1,000 on some).
    constexpr int kEvents = 2500;
    std::vector<std::thread> threads;
    for (int t = 0; t < 10; ++t) {
        threads.emplace_back([&, t] {
            for (int i = t; i < kEvents; i += 10) {
                std::vector<std::string> topics{"t" + std::to_string(i % 40)};
                if (i % 7 == 0) {
                    topics.emplace_back("t" + std::to_string((i + 1) % 40));
                }
                add(a.store, topics);
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    TopicFilter all;
    all.pattern = [](std::string_view t) { return t[0] == 't'; };
    auto r = replay(a.store, 0, all);
    ASSERT_EQ(r.events.size(), static_cast<std::size_t>(kEvents));
    EXPECT_TRUE(increasing(positions(r)));
    EXPECT_FALSE(r.gap);
    std::vector<std::string> some;
    for (int i = 0; i < 40; i += 2) {
        some.push_back("t" + std::to_string(i));
    }
    auto half = replay(a.store, 100, exact(some));
    EXPECT_TRUE(increasing(positions(half)));
    std::size_t expected = 0;
    for (const auto& ev : r.events) {
        if (ev->position > 100 && std::any_of(ev->topics.begin(), ev->topics.end(), [&](auto& t) {
                return std::find(some.begin(), some.end(), t) != some.end();
            })) {
            ++expected;
        }
    }
    EXPECT_EQ(half.events.size(), expected);
}

// ---- retention: the memory store's semantics ----

TEST(RedisStore, MaxEventsEvictsOldestFirstOnlyOnThatTopic) {
    RedisServer redis;
    Node n(options(redis.url(), Retention{3, 100000000, 0}));
    std::vector<EventPtr> a;
    for (int i = 0; i < 5; ++i) {
        a.push_back(add(n.store, {"a"}));
    }
    auto b1 = add(n.store, {"b"});
    auto b2 = add(n.store, {"b"});
    EXPECT_EQ(n.store.position_of(a[0]->id), std::nullopt);
    EXPECT_EQ(n.store.position_of(a[1]->id), std::nullopt);
    for (int i = 2; i < 5; ++i) {
        EXPECT_EQ(n.store.position_of(a[i]->id), a[i]->position);
    }
    EXPECT_EQ(n.store.position_of(b1->id), b1->position);
    auto r = replay(n.store, 0, exact({"a"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{3, 4, 5}));
    EXPECT_TRUE(r.gap);
    auto rb = replay(n.store, 0, exact({"b"}));
    EXPECT_EQ(positions(rb), (std::vector<std::uint64_t>{6, 7}));
    EXPECT_FALSE(rb.gap);
    auto topics = n.store.topics();
    ASSERT_NE(find_topic(topics, "a"), nullptr);
    EXPECT_EQ(find_topic(topics, "a")->retained, 3U);
    EXPECT_EQ(find_topic(topics, "b")->retained, 2U);
    EXPECT_EQ(find_topic(topics, "b")->last_id, b2->id);
}

TEST(RedisStore, MaxBytesCountsTheMemoryStoresFootprint) {
    RedisServer redis;
    // Footprints are those of the events handed back (Event::footprint): one-digit ids
    // keep every event the same size here.
    RedisServer probe_redis;
    Node probe(options(probe_redis.url()));
    const std::size_t fp = add(probe.store, {"a"}, "0123456789")->footprint();

    Node n(options(redis.url(), Retention{10000, 3 * fp, 0}));
    std::vector<EventPtr> a;
    for (int i = 0; i < 5; ++i) {
        a.push_back(add(n.store, {"a"}, "0123456789"));
        ASSERT_EQ(a.back()->footprint(), fp);
    }
    auto b = add(n.store, {"b"}, "0123456789");
    auto r = replay(n.store, 0, exact({"a"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{3, 4, 5}));
    EXPECT_TRUE(r.gap);
    auto topics = n.store.topics();
    EXPECT_EQ(find_topic(topics, "a")->bytes, 3 * fp);
    EXPECT_EQ(find_topic(topics, "b")->bytes, fp);
    EXPECT_EQ(n.store.history().bytes, 4 * fp);
    // A bigger event pushes out as many as it needs; one larger than the bound is numbered
    // but not kept.
    auto big = add(n.store, {"a"}, std::string(fp / 2, 'z'));
    EXPECT_EQ(positions(replay(n.store, 0, exact({"a"}))),
              (std::vector<std::uint64_t>{5, big->position}));
    EXPECT_EQ(find_topic(n.store.topics(), "a")->bytes, fp + big->footprint());
    auto huge = add(n.store, {"b"}, std::string(4 * fp, 'x'));
    ASSERT_NE(huge, nullptr);
    EXPECT_EQ(n.store.position_of(huge->id), std::nullopt);
    auto rb = replay(n.store, b->position, exact({"b"}));
    EXPECT_TRUE(rb.events.empty());
    EXPECT_TRUE(rb.gap);
    (void)b;
}

TEST(RedisStore, MultiTopicEventIsKnownWhileAnyTopicRetainsIt) {
    RedisServer redis;
    Node n(options(redis.url(), Retention{2, 100000000, 0}));
    auto both = add(n.store, {"a", "b"});
    add(n.store, {"a"});
    add(n.store, {"a"});
    EXPECT_EQ(n.store.position_of(both->id), both->position);
    auto ra = replay(n.store, 0, exact({"a"}));
    EXPECT_EQ(positions(ra), (std::vector<std::uint64_t>{2, 3}));
    EXPECT_TRUE(ra.gap);
    auto rb = replay(n.store, 0, exact({"b"}));
    EXPECT_EQ(positions(rb), (std::vector<std::uint64_t>{1}));
    EXPECT_FALSE(rb.gap);
    auto rab = replay(n.store, 0, exact({"a", "b"}));
    EXPECT_EQ(positions(rab), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_TRUE(rab.gap);
    add(n.store, {"b"});
    add(n.store, {"b"});
    EXPECT_EQ(n.store.position_of(both->id), std::nullopt);
    EXPECT_NE(add(n.store, {"c"}, "x", both->id), nullptr);
}

TEST(RedisStore, GapOnlyWhenACoveredTopicDroppedAnEventAfterThePosition) {
    RedisServer redis;
    Node n(options(redis.url(), Retention{2, 100000000, 0}));
    add(n.store, {"a"}); // 1
    add(n.store, {"b"}); // 2
    add(n.store, {"a"}); // 3
    add(n.store, {"a"}); // 4: drops 1 from "a"
    add(n.store, {"a"}); // 5: drops 3 from "a"
    EXPECT_TRUE(replay(n.store, 0, exact({"a"})).gap);
    EXPECT_TRUE(replay(n.store, 2, exact({"a"})).gap);
    auto r3 = replay(n.store, 3, exact({"a"}));
    EXPECT_FALSE(r3.gap);
    EXPECT_EQ(positions(r3), (std::vector<std::uint64_t>{4, 5}));
    EXPECT_FALSE(replay(n.store, 0, exact({"b"})).gap);
    EXPECT_TRUE(replay(n.store, 0, exact({"a", "b"})).gap);
    TopicFilter only_b;
    only_b.pattern = [](std::string_view t) { return t == "b"; };
    EXPECT_FALSE(replay(n.store, 0, only_b).gap);
    TopicFilter any;
    any.pattern = [](std::string_view) { return true; };
    EXPECT_TRUE(replay(n.store, 1, any).gap);
    EXPECT_FALSE(replay(n.store, 3, any).gap);
}

TEST(RedisStore, MaxEventsZeroKeepsNothingButTheGaps) {
    RedisServer redis;
    Node n(options(redis.url(), Retention{0, 100000000, 0}));
    auto e1 = add(n.store, {"a"}, "x", "pub");
    auto e2 = add(n.store, {"a", "b"});
    EXPECT_EQ(e1->position, 1U);
    EXPECT_EQ(e2->id, "2");
    EXPECT_EQ(n.store.position_of("pub"), std::nullopt);
    EXPECT_NE(add(n.store, {"a"}, "x", "pub"), nullptr);
    auto r = replay(n.store, 0, exact({"a", "b"}));
    EXPECT_TRUE(r.events.empty());
    EXPECT_TRUE(r.gap);
    EXPECT_TRUE(n.store.topics().empty());
    EXPECT_EQ(n.store.history().topics, 0U);
    EXPECT_EQ(n.store.history().bytes, 0U);
    // Delivered live all the same, with nothing lost.
    ASSERT_TRUE(n.recorder.wait_for(3));
    EXPECT_EQ(positions(n.recorder.events()), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_TRUE(n.recorder.lost_positions().empty());
}

TEST(RedisStore, ForgottenTopicsKeepTheirGap) {
    RedisServer redis;
    Node n(options(redis.url(), Retention{10000, 1000, 3600000}));
    auto mark = add(n.store, {"a"});
    add(n.store, {"big"}, std::string(2000, 'x'));
    EXPECT_EQ(names(n.store.topics()), (std::vector<std::string>{"a"}));
    EXPECT_TRUE(replay(n.store, mark->position, exact({"big"})).gap);
    auto again = add(n.store, {"big"});
    auto r = replay(n.store, mark->position, exact({"big"}));
    EXPECT_TRUE(r.gap);
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{again->position}));
    EXPECT_FALSE(replay(n.store, again->position, exact({"big"})).gap);
}

TEST(RedisStore, ExpireDropsByAgeFromTheFrontOfTheLog) {
    RedisServer redis;
    Node n(options(redis.url(), Retention{10000, 100000000, 60000}));
    auto old1 = add(n.store, {"a"});
    auto old2 = add(n.store, {"b"});
    ASSERT_TRUE(eventually([&] { return base::unix_ms() > old2->published_ms; }));
    auto fresh = add(n.store, {"a"});
    ASSERT_LT(old2->published_ms, fresh->published_ms);
    n.store.expire(fresh->published_ms); // nothing is old enough
    n.store.expire(fresh->published_ms + 60000);
    // Expiry runs on the writer thread: wait for its effect.
    ASSERT_TRUE(eventually([&] { return !n.store.position_of(old2->id); }));
    EXPECT_EQ(n.store.position_of(old1->id), std::nullopt);
    EXPECT_EQ(n.store.position_of(fresh->id), fresh->position);
    auto r = replay(n.store, 0, exact({"a", "b"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{fresh->position}));
    EXPECT_TRUE(r.gap);
    EXPECT_FALSE(replay(n.store, old2->position, exact({"a", "b"})).gap);
    EXPECT_EQ(names(n.store.topics()), (std::vector<std::string>{"a"}));
    n.store.expire(fresh->published_ms + 60001);
    ASSERT_TRUE(eventually([&] { return n.store.topics().empty(); }));
    EXPECT_EQ(add(n.store, {"a"})->position, fresh->position + 1);
}

TEST(RedisStore, MaxTopicsForgetsTheTopicWhoseNewestEventIsOldest) {
    RedisServer redis;
    Retention retention = kLarge;
    retention.max_topics = 3;
    Node n(options(redis.url(), retention));
    auto a1 = add(n.store, {"a"});
    auto b1 = add(n.store, {"b"});
    auto b2 = add(n.store, {"b"});
    auto c1 = add(n.store, {"c"});
    auto a2 = add(n.store, {"a"});
    auto d1 = add(n.store, {"d", "c"});
    EXPECT_EQ(names(n.store.topics()), (std::vector<std::string>{"a", "c", "d"}));
    EXPECT_EQ(n.store.history().topics, 3U);
    EXPECT_EQ(n.store.history().evicted_max_topics, 2U);
    EXPECT_EQ(n.store.history().evicted_max_total_bytes, 0U);
    EXPECT_EQ(n.store.position_of(b1->id), std::nullopt);
    EXPECT_EQ(n.store.position_of(b2->id), std::nullopt);
    auto rb = replay(n.store, 0, exact({"b"}));
    EXPECT_TRUE(rb.events.empty());
    EXPECT_TRUE(rb.gap);
    auto ra = replay(n.store, 0, exact({"a"}));
    EXPECT_EQ(positions(ra), (std::vector<std::uint64_t>{a1->position, a2->position}));
    EXPECT_FALSE(ra.gap);
    add(n.store, {"e"});
    EXPECT_EQ(names(n.store.topics()), (std::vector<std::string>{"c", "d", "e"}));
    EXPECT_EQ(positions(replay(n.store, 0, exact({"c"}))),
              (std::vector<std::uint64_t>{c1->position, d1->position}));
    EXPECT_EQ(n.store.history().evicted_max_topics, 4U);
    EXPECT_EQ(n.store.history().bytes, 4 * a1->footprint());
}

TEST(RedisStore, MaxTotalBytesDropsTheOldestEventsFirstFromEveryTopic) {
    RedisServer redis;
    RedisServer probe_redis;
    Node probe(options(probe_redis.url()));
    const std::size_t fp = add(probe.store, {"z"})->footprint();
    Retention retention = kLarge;
    retention.max_total_bytes = 4 * fp;
    Node n(options(redis.url(), retention));
    auto a1 = add(n.store, {"a"});
    auto b2 = add(n.store, {"b"});
    auto ab3 = add(n.store, {"a", "b"});
    EXPECT_EQ(n.store.history().bytes, 4 * fp);
    auto c4 = add(n.store, {"c"});
    EXPECT_EQ(n.store.position_of(a1->id), std::nullopt);
    EXPECT_EQ(n.store.history().bytes, 4 * fp);
    auto d5 = add(n.store, {"d"});
    EXPECT_EQ(n.store.position_of(b2->id), std::nullopt);
    auto e6 = add(n.store, {"e"});
    EXPECT_EQ(n.store.position_of(ab3->id), std::nullopt);
    EXPECT_EQ(names(n.store.topics()), (std::vector<std::string>{"c", "d", "e"}));
    EXPECT_EQ(n.store.history().bytes, 3 * fp);
    EXPECT_EQ(n.store.history().evicted_max_total_bytes, 4U);
    auto r = replay(n.store, 0, exact({"a", "b", "c", "d", "e"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{c4->position, d5->position, e6->position}));
    EXPECT_TRUE(r.gap);
    EXPECT_FALSE(replay(n.store, ab3->position, exact({"a", "b", "c"})).gap);
    EXPECT_TRUE(replay(n.store, b2->position, exact({"a"})).gap);
}

TEST(RedisStore, TopicsPageByNameAfterAndPrefix) {
    RedisServer redis;
    Node n(options(redis.url()));
    for (const char* t : {"b/2", "a/1", "b/1", "c", "b/3", "a/2"}) {
        add(n.store, {t});
    }
    auto& s = n.store;
    EXPECT_EQ(names(s.topics()),
              (std::vector<std::string>{"a/1", "a/2", "b/1", "b/2", "b/3", "c"}));
    EXPECT_EQ(names(s.topics(log::TopicRange{"", "", 2})),
              (std::vector<std::string>{"a/1", "a/2"}));
    EXPECT_EQ(names(s.topics(log::TopicRange{"a/2", "", 2})),
              (std::vector<std::string>{"b/1", "b/2"}));
    EXPECT_EQ(names(s.topics(log::TopicRange{"", "b/", 10})),
              (std::vector<std::string>{"b/1", "b/2", "b/3"}));
    EXPECT_EQ(names(s.topics(log::TopicRange{"b/1", "b/", 10})),
              (std::vector<std::string>{"b/2", "b/3"}));
    EXPECT_EQ(names(s.topics(log::TopicRange{"a", "b/", 1})), (std::vector<std::string>{"b/1"}));
    EXPECT_TRUE(s.topics(log::TopicRange{"b/3", "b/", 10}).empty());
    EXPECT_TRUE(s.topics(log::TopicRange{"", "x", 10}).empty());
}

// ---- faults ----

TEST(RedisStore, AKilledSubscriptionIsCaughtUpInOrder) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    std::atomic<bool> done{false};
    std::thread publisher([&] {
        for (int i = 0; i < 300; ++i) {
            add(a.store, {"t" + std::to_string(i % 3)});
        }
        done = true;
    });
    // Cut every subscription, several times, while A publishes.
    while (!done) {
        redis.command({"CLIENT", "KILL", "TYPE", "pubsub"});
        std::this_thread::sleep_for(5ms);
    }
    publisher.join();
    ASSERT_TRUE(a.recorder.wait_for(300));
    ASSERT_TRUE(b.recorder.wait_for(300));
    std::vector<std::uint64_t> expected(300);
    for (std::size_t i = 0; i < expected.size(); ++i) {
        expected[i] = i + 1;
    }
    EXPECT_EQ(positions(a.recorder.events()), expected);
    EXPECT_EQ(positions(b.recorder.events()), expected);
    EXPECT_TRUE(b.recorder.lost_positions().empty());
    EXPECT_FALSE(b.store.trouble().has_value());
}

TEST(RedisStore, EventsTrimmedBeforeANodeReadsThemBackAreReportedLost) {
    RedisServer redis;
    // Node B logs in as its own ACL user, so that the test can cut it off alone.
    redis.command({"ACL", "SETUSER", "nodeb", "on", ">pw-b", "~*", "&*", "+@all"});
    Retention five = kLarge;
    five.max_events = 5;
    Node a(options(redis.url(), five, 300));
    Node b(options(redis.url(0, "nodeb:pw-b"), five, 300));
    add(a.store, {"t"}); // 1
    ASSERT_TRUE(b.recorder.wait_for(1));

    redis.command({"ACL", "SETUSER", "nodeb", "off"});
    redis.command({"CLIENT", "KILL", "USER", "nodeb"});
    for (int i = 0; i < 20; ++i) {
        add(a.store, {"t"}); // 2..21: only 17..21 stay
    }
    ASSERT_TRUE(eventually([&] { return b.store.trouble().has_value(); }));
    EXPECT_EQ(b.store.trouble()->find("pw-b"), std::string::npos);
    redis.command({"ACL", "SETUSER", "nodeb", "on"});
    ASSERT_TRUE(b.recorder.wait_for(6));
    EXPECT_EQ(positions(b.recorder.events()), (std::vector<std::uint64_t>{1, 17, 18, 19, 20, 21}));
    EXPECT_EQ(b.recorder.lost_positions(), (std::vector<std::uint64_t>{16}));
    // And live again after.
    add(a.store, {"t"});
    ASSERT_TRUE(b.recorder.wait_for(7));
    EXPECT_EQ(b.recorder.events().back()->position, 22U);
    EXPECT_TRUE(eventually([&] { return !b.store.trouble().has_value(); }));
}

TEST(RedisStore, AHungRedisFailsPublishesWithinTheTimeoutAndRecovers) {
    RedisServer redis;
    Node a(options(redis.url(), kLarge, 300));
    Node b(options(redis.url(), kLarge, 300));
    add(a.store, {"t"});
    ASSERT_TRUE(b.recorder.wait_for(1));

    redis.pause();
    const auto started = std::chrono::steady_clock::now();
    auto r = publish(a.store, make({"t"}));
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.error, AppendError::unavailable);
    EXPECT_NE(r.reason.find(redis.url()), std::string::npos) << r.reason;
    EXPECT_LT(took, 800ms);
    ASSERT_TRUE(a.store.trouble().has_value());
    // Known down: the next publish fails at once.
    const auto again_started = std::chrono::steady_clock::now();
    EXPECT_EQ(publish(a.store, make({"t"})).error, AppendError::unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - again_started, 100ms);
    EXPECT_FALSE(a.store.replay(0, kAll, exact({"t"})).error.empty());

    redis.resume();
    ASSERT_TRUE(eventually([&] { return !a.store.trouble().has_value(); }, 10s));
    auto ok = add(a.store, {"t"});
    ASSERT_NE(ok, nullptr);
    // Whatever Redis applied of the timed-out publishes is delivered too: once, in order.
    ASSERT_TRUE(eventually([&] {
        auto ev = b.recorder.events();
        return !ev.empty() && ev.back()->position == ok->position;
    }));
    const auto on_a = positions(a.recorder.events());
    const auto on_b = positions(b.recorder.events());
    EXPECT_TRUE(increasing(on_b));
    EXPECT_TRUE(eventually([&] { return positions(a.recorder.events()) == on_b; }));
    EXPECT_TRUE(b.recorder.lost_positions().empty());
    (void)on_a;
}

TEST(RedisStore, RestartWithAofLosesNoAcknowledgedEvent) {
    RedisServer redis(RedisServer::Options{.appendonly = true, .password = {}});
    Node a(options(redis.url(), kLarge, 300));
    Node b(options(redis.url(), kLarge, 300));
    std::vector<EventPtr> acked;
    for (int i = 0; i < 50; ++i) {
        acked.push_back(add(a.store, {"t"}));
    }
    redis.kill();
    auto r = publish(a.store, make({"t"}));
    EXPECT_EQ(r.error, AppendError::unavailable);
    redis.restart();
    ASSERT_TRUE(eventually([&] { return !a.store.trouble().has_value(); }, 10s));
    auto next = add(a.store, {"t"});
    ASSERT_NE(next, nullptr);
    EXPECT_EQ(next->position, acked.back()->position + 1);
    auto all = replay(b.store, 0, exact({"t"}));
    ASSERT_EQ(all.events.size(), 51U);
    EXPECT_EQ(positions(all).back(), next->position);
    ASSERT_TRUE(eventually([&] { return b.store.last_position() == next->position; }));
    EXPECT_EQ(b.recorder.size(), 51U);
    EXPECT_TRUE(b.recorder.lost_positions().empty());
}

TEST(RedisStore, ARedisThatLostItsDataIsReseededAboveEveryPositionSeen) {
    RedisServer redis;
    Node a(options(redis.url(), kLarge, 300));
    Node b(options(redis.url(), kLarge, 300));
    for (int i = 0; i < 10; ++i) {
        add(a.store, {"t"});
    }
    // Both have delivered all ten (else what Redis forgets is reported lost, rightly).
    ASSERT_TRUE(a.recorder.wait_for(10));
    ASSERT_TRUE(b.recorder.wait_for(10));
    redis.kill();
    redis.restart(); // empty: no persistence
    ASSERT_TRUE(eventually(
        [&] { return !a.store.trouble().has_value() && !b.store.trouble().has_value(); }, 10s));
    auto next = add(b.store, {"t"});
    ASSERT_NE(next, nullptr);
    EXPECT_GT(next->position, 10U);
    EXPECT_NE(next->id, "1");
    ASSERT_TRUE(a.recorder.wait_for(11));
    ASSERT_TRUE(b.recorder.wait_for(11));
    EXPECT_TRUE(increasing(positions(a.recorder.events())));
    EXPECT_TRUE(increasing(positions(b.recorder.events())));
    EXPECT_EQ(a.recorder.events().back()->position, next->position);
}

TEST(RedisStore, WrongPasswordAndUnreachableAddressAreClearErrors) {
    RedisServer redis(RedisServer::Options{.appendonly = false, .password = "right-one"});
    auto message = [](const std::string& url) {
        try {
            RedisStore store(options(url, kLarge, 300));
        } catch (const StoreError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    const std::string port = std::to_string(redis.port());
    const std::string wrong = message("redis://:wrong-one@127.0.0.1:" + port + "/2");
    EXPECT_EQ(wrong.find("wrong-one"), std::string::npos) << wrong;
    EXPECT_NE(wrong.find("redis://127.0.0.1:" + port + "/2"), std::string::npos) << wrong;
    EXPECT_NE(wrong.find("password"), std::string::npos) << wrong;

    const std::string missing = message("redis://127.0.0.1:" + port + "/0");
    EXPECT_NE(missing.find("password"), std::string::npos) << missing;

    const std::string db = message("redis://:right-one@127.0.0.1:" + port + "/99");
    EXPECT_EQ(db.find("right-one"), std::string::npos) << db;
    EXPECT_NE(db.find("database 99"), std::string::npos) << db;

    // Nothing listens on a port just freed.
    RedisServer gone;
    const std::string gone_port = std::to_string(gone.port());
    gone.stop();
    const std::string unreachable = message("redis://:secret-x@127.0.0.1:" + gone_port + "/1");
    EXPECT_EQ(unreachable.find("secret-x"), std::string::npos) << unreachable;
    EXPECT_NE(unreachable.find("cannot connect"), std::string::npos) << unreachable;
    EXPECT_NE(unreachable.find("redis://127.0.0.1:" + gone_port + "/1"), std::string::npos);

    const std::string bad = message("redis://:secret-y@127.0.0.1:notaport/1");
    EXPECT_EQ(bad.find("secret-y"), std::string::npos) << bad;

    // The right password works.
    RedisStore ok(options(redis.url(2), kLarge, 300));
    EXPECT_FALSE(ok.trouble().has_value());
}

TEST(RedisStore, DatabasesAreSeparateClustersPubSubIncluded) {
    RedisServer redis;
    Node one(options(redis.url(1)));
    Node two(options(redis.url(2)));
    auto e1 = add(one.store, {"t"}, "one");
    auto e2 = add(two.store, {"t"}, "two");
    EXPECT_EQ(e1->position, 1U);
    EXPECT_EQ(e2->position, 1U);
    ASSERT_TRUE(one.recorder.wait_for(1));
    ASSERT_TRUE(two.recorder.wait_for(1));
    add(one.store, {"t"}, "one again");
    ASSERT_TRUE(one.recorder.wait_for(2));
    // Give a stray message every chance to arrive.
    auto marker = add(two.store, {"t"}, "two again");
    ASSERT_TRUE(two.recorder.wait_for(2));
    const auto on_two = two.recorder.events();
    ASSERT_EQ(on_two.size(), 2U);
    EXPECT_EQ(on_two[0]->data, "two");
    EXPECT_EQ(on_two[1]->data, "two again");
    EXPECT_EQ(one.recorder.events()[0]->data, "one");
    EXPECT_EQ(positions(replay(two.store, 0, exact({"t"}))), (std::vector<std::uint64_t>{1, 2}));
    EXPECT_EQ(replay(one.store, 0, exact({"t"})).events.back()->data, "one again");
    EXPECT_EQ(redis.command({"DBSIZE"}), "0"); // database 0 untouched
    (void)marker;
}

TEST(RedisStore, AFlushWhileNodesStayConnectedNeverReusesAnId) {
    RedisServer redis;
    Node a(options(redis.url(), kLarge, 300));
    Node b(options(redis.url(), kLarge, 300));
    for (int i = 0; i < 10; ++i) {
        add(a.store, {"t"});
    }
    ASSERT_TRUE(a.recorder.wait_for(10));
    ASSERT_TRUE(b.recorder.wait_for(10));
    // The data goes, the connections stay: no reconnection tells the nodes.
    redis.command({"FLUSHALL"});
    auto next = add(a.store, {"t"});
    ASSERT_NE(next, nullptr);
    EXPECT_GT(next->position, 10U);
    EXPECT_NE(next->id, "1");
    auto from_b = add(b.store, {"t"});
    ASSERT_NE(from_b, nullptr);
    EXPECT_GT(from_b->position, next->position);
    // Both are delivered on both nodes, after the ten, in order.
    ASSERT_TRUE(a.recorder.wait_for(12));
    ASSERT_TRUE(b.recorder.wait_for(12));
    EXPECT_EQ(positions(a.recorder.events()), positions(b.recorder.events()));
    EXPECT_EQ(a.recorder.events().back()->position, from_b->position);
    EXPECT_TRUE(increasing(positions(a.recorder.events())));
}

// ---- the cache of recent events ----

// The same replay from a node's memory and from Redis: `cold` started after the events, so
// its cache holds none of them and every replay from before its start reads Redis.
void expect_same_replay(RedisStore& cached, RedisStore& cold, std::uint64_t after,
                        const TopicFilter& filter) {
    const std::uint64_t upto = cached.last_position();
    auto warm = cached.replay(after, upto, filter);
    auto from_redis = cold.replay(after, upto, filter);
    EXPECT_EQ(positions(warm), positions(from_redis)) << "after " << after;
    EXPECT_EQ(warm.gap, from_redis.gap) << "after " << after;
}

TEST(RedisStore, RecentEventsAreReplayedFromMemoryAsRedisWould) {
    RedisServer redis;
    Retention retention = kLarge;
    retention.max_events = 4;
    Node a(options(redis.url(), retention));
    for (int i = 0; i < 12; ++i) {
        add(a.store, {i % 3 == 0 ? "x" : "y", i % 4 == 0 ? "z" : "y"});
    }
    ASSERT_TRUE(a.recorder.wait_for(12));
    ASSERT_TRUE(eventually([&] { return a.store.last_position() == 12; }));
    Node cold(options(redis.url(), retention));
    const auto memory_before = a.store.figures()->memory_replays;
    const auto disk_before = a.store.figures()->disk_replays;
    for (std::uint64_t after = 0; after <= 12; ++after) {
        expect_same_replay(a.store, cold.store, after, exact({"x", "y", "z"}));
        expect_same_replay(a.store, cold.store, after, exact({"y"}));
    }
    // A node that saw every event answers those it still holds from memory...
    EXPECT_GT(a.store.figures()->memory_replays, memory_before);
    // ...and reads Redis only where its memory has a gap that Redis may not have.
    const auto disk_after = a.store.figures()->disk_replays;
    auto r = a.store.replay(8, 12, exact({"y"}));
    EXPECT_FALSE(r.gap);
    EXPECT_EQ(a.store.figures()->disk_replays, disk_after);
    EXPECT_GE(disk_after, disk_before);
}

TEST(RedisStore, TheCacheDropsWhatRedisHubWideBoundsDropped) {
    RedisServer redis;
    RedisServer probe_redis;
    Node probe(options(probe_redis.url()));
    const std::size_t fp = add(probe.store, {"z"})->footprint();
    Retention retention = kLarge;
    retention.max_total_bytes = 3 * fp;
    // A cache that keeps one event per topic holds fewer bytes than Redis, so it would
    // keep an event that Redis's hub-wide bound drops: the message tells it.
    RedisOptions o = options(redis.url(), retention);
    o.cache_events = 1;
    Node a(o);
    for (const char* t : {"a", "b", "b", "b"}) {
        add(a.store, {t});
    }
    ASSERT_TRUE(eventually([&] { return a.store.last_position() == 4; }));
    // Redis dropped "a" (position 1) for the bound when b's third event came; the cache
    // (a1, b4: two events) is well within it, yet "a" is a gap from memory too.
    const auto memory_before = a.store.figures()->memory_replays;
    auto only_a = a.store.replay(0, 4, exact({"a"}));
    EXPECT_TRUE(only_a.events.empty());
    EXPECT_TRUE(only_a.gap);
    // And the cache still serves what Redis still has.
    auto only_b = a.store.replay(3, 4, exact({"b"}));
    EXPECT_EQ(positions(only_b), (std::vector<std::uint64_t>{4}));
    EXPECT_GT(a.store.figures()->memory_replays, memory_before);

    for (const char* t : {"c", "d", "b", "e"}) {
        add(a.store, {t});
    }
    ASSERT_TRUE(eventually([&] { return a.store.last_position() == 8; }));
    Node cold(options(redis.url(), retention));
    for (std::uint64_t after = 0; after <= 8; ++after) {
        expect_same_replay(a.store, cold.store, after, exact({"a", "b", "c", "d", "e"}));
        for (const char* t : {"a", "b", "c", "e"}) {
            expect_same_replay(a.store, cold.store, after, exact({t}));
        }
    }
}

TEST(RedisStore, ANodeThatReadEventsBackReplaysThemFromRedis) {
    RedisServer redis;
    Node a(options(redis.url()));
    Node b(options(redis.url()));
    add(a.store, {"t"});
    ASSERT_TRUE(b.recorder.wait_for(1));
    // b misses the next ones live and reads them back.
    redis.command({"CLIENT", "KILL", "TYPE", "pubsub"});
    for (int i = 0; i < 5; ++i) {
        add(a.store, {"t"});
    }
    ASSERT_TRUE(b.recorder.wait_for(6));
    ASSERT_TRUE(eventually([&] { return b.store.last_position() == 6; }));
    const auto disk_before = b.store.figures()->disk_replays;
    auto r = b.store.replay(0, 6, exact({"t"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_FALSE(r.gap);
    EXPECT_EQ(b.store.figures()->disk_replays, disk_before + 1);
}

TEST(RedisStore, LostScriptsAreLoadedAgain) {
    RedisServer redis;
    Node a(options(redis.url()));
    add(a.store, {"t"});
    redis.command({"SCRIPT", "FLUSH"});
    auto ev = add(a.store, {"t"});
    ASSERT_NE(ev, nullptr);
    EXPECT_EQ(ev->position, 2U);
    redis.command({"SCRIPT", "FLUSH"});
    EXPECT_EQ(positions(replay(a.store, 0, exact({"t"}))), (std::vector<std::uint64_t>{1, 2}));
}

TEST(RedisStore, CloseAnswersEveryAppendAndRefusesLaterOnes) {
    RedisServer redis;
    Node a(options(redis.url()));
    std::atomic<int> answered{0};
    for (int i = 0; i < 100; ++i) {
        a.store.append(make({"t"}), [&](AppendResult r) {
            EXPECT_EQ(r.error, AppendError::none);
            ++answered;
        });
    }
    a.store.close();
    EXPECT_EQ(answered.load(), 100);
    // Its own events reached its listener before close returned.
    EXPECT_EQ(a.recorder.size(), 100U);
    EXPECT_EQ(a.store.last_position(), 100U);
    auto late = publish(a.store, make({"t"}));
    EXPECT_EQ(late.error, AppendError::unavailable);
}

} // namespace
} // namespace herald::store
