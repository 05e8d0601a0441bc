// Tests for the in-memory event log: id and position assignment, publisher ids and their
// duplicates, per-topic retention (events, bytes, age), multi-topic events, replays across
// topics and patterns with their gap flag, the /topics figures and the encoded frames.
#include "store/memory/memory_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.hpp"

namespace herald::store {
namespace {

using log::AppendError;
using log::EventPtr;
using log::NewEvent;
using log::TopicFilter;

// Every position, for replays that are not bounded by a hub's hand-off.
constexpr std::uint64_t kAll = ~std::uint64_t{0};

// The memory store answers an append before returning.
log::AppendResult append_now(MemoryStore& store, NewEvent&& ev) {
    log::AppendResult out;
    bool answered = false;
    store.append(std::move(ev), [&](log::AppendResult r) {
        out = std::move(r);
        answered = true;
    });
    EXPECT_TRUE(answered);
    return out;
}

NewEvent make(std::vector<std::string> topics, std::string data = "x", std::string id = {}) {
    NewEvent ev;
    ev.topics = std::move(topics);
    ev.data = std::move(data);
    ev.id = std::move(id);
    return ev;
}

// Appends and expects success.
EventPtr add(MemoryStore& store, std::vector<std::string> topics, std::string data = "x",
             std::string id = {}) {
    auto res = append_now(store, make(std::move(topics), std::move(data), std::move(id)));
    EXPECT_EQ(res.error, AppendError::none);
    EXPECT_NE(res.event, nullptr);
    return res.event;
}

TopicFilter exact(std::vector<std::string> topics) {
    TopicFilter f;
    f.exact = std::move(topics);
    return f;
}

std::vector<std::uint64_t> positions(const log::Replay& r) {
    std::vector<std::uint64_t> out;
    for (const auto& ev : r.events) {
        out.push_back(ev->position);
    }
    return out;
}

std::vector<std::string> ids(const log::Replay& r) {
    std::vector<std::string> out;
    for (const auto& ev : r.events) {
        out.push_back(ev->id);
    }
    return out;
}

const log::TopicStats* find_topic(const std::vector<log::TopicStats>& all, std::string_view t) {
    auto it = std::find_if(all.begin(), all.end(), [t](const auto& s) { return s.topic == t; });
    return it == all.end() ? nullptr : &*it;
}

constexpr Retention kLarge{10000, 100000000, 0};

// ---- ids and positions ----

TEST(MemoryStore, GeneratedIdsAreTheDecimalPositionAndIncrease) {
    MemoryStore store(kLarge, 1);
    EXPECT_EQ(store.last_position(), 0U);
    std::uint64_t prev = 0;
    for (int i = 0; i < 20; ++i) {
        auto ev = add(store, {i % 2 == 0 ? "a" : "b"});
        ASSERT_NE(ev, nullptr);
        EXPECT_GT(ev->position, prev);
        EXPECT_EQ(ev->id, std::to_string(ev->position));
        EXPECT_EQ(store.last_position(), ev->position);
        EXPECT_EQ(store.position_of(ev->id), ev->position);
        prev = ev->position;
    }
    EXPECT_EQ(prev, 20U);
    EXPECT_EQ(store.size(), 20U);
}

TEST(MemoryStore, FirstPositionIsHonoured) {
    MemoryStore store(kLarge, 1000);
    EXPECT_LT(store.last_position(), 1000U);
    auto first = add(store, {"a"});
    EXPECT_EQ(first->position, 1000U);
    EXPECT_EQ(first->id, "1000");
    auto second = add(store, {"b"});
    EXPECT_EQ(second->position, 1001U);
    EXPECT_EQ(second->id, "1001");
}

TEST(MemoryStore, DefaultFirstPositionIsTheWallClockInMicroseconds) {
    const auto before = static_cast<std::uint64_t>(base::unix_us());
    MemoryStore store(kLarge);
    const auto after = static_cast<std::uint64_t>(base::unix_us());
    auto ev = add(store, {"a"});
    EXPECT_GE(ev->position, before);
    EXPECT_LE(ev->position, after + 1);
    EXPECT_EQ(ev->id, std::to_string(ev->position));
    // A second store created later starts after every id the first one gave.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    MemoryStore later(kLarge);
    auto ev2 = add(later, {"a"});
    EXPECT_GT(ev2->position, ev->position);
}

TEST(MemoryStore, EventFieldsAndTimestamp) {
    MemoryStore store(kLarge, 1);
    NewEvent in = make({"a", "b"}, "payload");
    in.type = "update";
    in.is_private = true;
    in.retry_ms = 1500;
    const auto before = base::unix_ms();
    auto res = append_now(store, std::move(in));
    const auto after = base::unix_ms();
    ASSERT_EQ(res.error, AppendError::none);
    const auto& ev = *res.event;
    EXPECT_EQ(ev.topics, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(ev.type, "update");
    EXPECT_EQ(ev.data, "payload");
    EXPECT_TRUE(ev.is_private);
    EXPECT_EQ(ev.retry_ms, 1500U);
    EXPECT_GE(ev.published_ms, before);
    EXPECT_LE(ev.published_ms, after);
}

// ---- publisher ids ----

TEST(MemoryStore, PublisherIdIsKept) {
    MemoryStore store(kLarge, 1);
    auto ev = add(store, {"a"}, "x", "my-id");
    EXPECT_EQ(ev->id, "my-id");
    EXPECT_EQ(ev->position, 1U);
    EXPECT_EQ(store.position_of("my-id"), 1U);
    // Generated ids go on from the next position.
    EXPECT_EQ(add(store, {"a"})->id, "2");
}

TEST(MemoryStore, DuplicateOfARetainedIdIsRefused) {
    MemoryStore store(kLarge, 1);
    auto first = add(store, {"a"}, "x", "dup");
    auto res = append_now(store, make({"b"}, "y", "dup"));
    EXPECT_EQ(res.error, AppendError::duplicate_id);
    EXPECT_EQ(res.event, nullptr);
    // The refused event took no position and left no trace.
    EXPECT_EQ(store.last_position(), first->position);
    EXPECT_EQ(store.size(), 1U);
    EXPECT_EQ(find_topic(store.topics(), "b"), nullptr);
    EXPECT_EQ(store.position_of("dup"), first->position);
}

TEST(MemoryStore, DuplicateOfARetainedGeneratedIdIsRefused) {
    MemoryStore store(kLarge, 1);
    auto ev = add(store, {"a"});
    ASSERT_EQ(ev->id, "1");
    EXPECT_EQ(append_now(store, make({"a"}, "y", "1")).error, AppendError::duplicate_id);
}

TEST(MemoryStore, DuplicateOfAnEvictedIdIsAccepted) {
    MemoryStore store(Retention{2, 100000000, 0}, 1);
    auto old = add(store, {"a"}, "x", "dup");
    add(store, {"a"});
    add(store, {"a"}); // evicts "dup"
    EXPECT_EQ(store.position_of("dup"), std::nullopt);
    auto again = add(store, {"b"}, "y", "dup");
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->id, "dup");
    EXPECT_GT(again->position, old->position);
    EXPECT_EQ(store.position_of("dup"), again->position);
}

TEST(MemoryStore, GeneratedIdSkipsAPublisherIdThatTakesIt) {
    MemoryStore store(kLarge, 1);
    // The publisher takes the decimal ids of the next positions.
    auto p1 = add(store, {"a"}, "x", "2");
    auto p2 = add(store, {"a"}, "x", "3");
    EXPECT_EQ(p1->position, 1U);
    EXPECT_EQ(p2->position, 2U);
    auto gen = add(store, {"a"});
    EXPECT_EQ(gen->id, "4");
    EXPECT_EQ(gen->position, 4U);
    EXPECT_EQ(store.last_position(), 4U);
    EXPECT_EQ(store.position_of("2"), 1U);
    EXPECT_EQ(store.position_of("3"), 2U);
    EXPECT_EQ(store.position_of("4"), 4U);
    auto next = add(store, {"a"});
    EXPECT_EQ(next->id, "5");
    EXPECT_EQ(next->position, 5U);
}

// ---- retention ----

TEST(MemoryStore, MaxEventsEvictsOldestFirstOnlyOnThatTopic) {
    MemoryStore store(Retention{3, 100000000, 0}, 1);
    std::vector<EventPtr> a;
    for (int i = 0; i < 5; ++i) {
        a.push_back(add(store, {"a"}));
    }
    auto b1 = add(store, {"b"});
    auto b2 = add(store, {"b"});

    EXPECT_EQ(store.position_of(a[0]->id), std::nullopt);
    EXPECT_EQ(store.position_of(a[1]->id), std::nullopt);
    for (int i = 2; i < 5; ++i) {
        EXPECT_EQ(store.position_of(a[i]->id), a[i]->position);
    }
    EXPECT_EQ(store.position_of(b1->id), b1->position);
    EXPECT_EQ(store.position_of(b2->id), b2->position);
    EXPECT_EQ(store.size(), 5U);

    auto r = store.replay(0, kAll, exact({"a"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{3, 4, 5}));
    auto rb = store.replay(0, kAll, exact({"b"}));
    EXPECT_EQ(positions(rb), (std::vector<std::uint64_t>{6, 7}));
    EXPECT_FALSE(rb.gap);

    auto topics = store.topics();
    ASSERT_NE(find_topic(topics, "a"), nullptr);
    EXPECT_EQ(find_topic(topics, "a")->retained, 3U);
    EXPECT_EQ(find_topic(topics, "b")->retained, 2U);
}

TEST(MemoryStore, MaxBytesEvictsOldestFirstOnlyOnThatTopic) {
    // Three-digit ids keep every event the same size.
    MemoryStore probe(kLarge, 100);
    const std::size_t fp = add(probe, {"a"}, "0123456789")->footprint();

    MemoryStore store(Retention{10000, 3 * fp, 0}, 100);
    std::vector<EventPtr> a;
    for (int i = 0; i < 5; ++i) {
        a.push_back(add(store, {"a"}, "0123456789"));
        ASSERT_EQ(a.back()->footprint(), fp);
    }
    auto b = add(store, {"b"}, "0123456789");

    auto r = store.replay(0, kAll, exact({"a"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{102, 103, 104}));
    EXPECT_TRUE(r.gap);
    EXPECT_EQ(store.position_of(a[1]->id), std::nullopt);
    EXPECT_EQ(store.position_of(a[2]->id), 102U);
    EXPECT_EQ(store.position_of(b->id), b->position);

    auto topics = store.topics();
    EXPECT_EQ(find_topic(topics, "a")->bytes, 3 * fp);
    EXPECT_EQ(find_topic(topics, "a")->retained, 3U);
    EXPECT_EQ(find_topic(topics, "b")->bytes, fp);
    EXPECT_EQ(find_topic(topics, "b")->retained, 1U);

    // A bigger event pushes out as many old ones as it needs.
    auto big = add(store, {"a"}, std::string(fp / 2, 'z'));
    ASSERT_GT(big->footprint(), fp);
    ASSERT_LT(big->footprint(), 3 * fp);
    auto r2 = store.replay(0, kAll, exact({"a"}));
    EXPECT_EQ(positions(r2), (std::vector<std::uint64_t>{104, big->position}));
    EXPECT_LE(find_topic(store.topics(), "a")->bytes, 3 * fp);
}

TEST(MemoryStore, EventLargerThanMaxBytesIsNotRetained) {
    MemoryStore store(Retention{10000, 1000, 0}, 1);
    auto small = add(store, {"a"});
    auto huge = add(store, {"a"}, std::string(2000, 'x'));
    ASSERT_NE(huge, nullptr); // accepted and numbered, just not kept
    EXPECT_EQ(huge->position, 2U);
    EXPECT_EQ(store.last_position(), 2U);
    EXPECT_EQ(store.position_of(huge->id), std::nullopt);
    auto r = store.replay(small->position, kAll, exact({"a"}));
    EXPECT_TRUE(r.events.empty());
    EXPECT_TRUE(r.gap);
}

TEST(MemoryStore, MultiTopicEventIsKnownWhileAnyTopicRetainsIt) {
    MemoryStore store(Retention{2, 100000000, 0}, 1);
    auto both = add(store, {"a", "b"});
    add(store, {"a"});
    add(store, {"a"}); // "a" drops `both`; "b" still holds it
    EXPECT_EQ(store.position_of(both->id), both->position);
    EXPECT_EQ(store.size(), 3U);

    auto ra = store.replay(0, kAll, exact({"a"}));
    EXPECT_EQ(positions(ra), (std::vector<std::uint64_t>{2, 3}));
    EXPECT_TRUE(ra.gap);
    auto rb = store.replay(0, kAll, exact({"b"}));
    EXPECT_EQ(positions(rb), (std::vector<std::uint64_t>{1}));
    EXPECT_FALSE(rb.gap);
    // Over both topics it comes back once, and "a"'s loss is reported.
    auto rab = store.replay(0, kAll, exact({"a", "b"}));
    EXPECT_EQ(positions(rab), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_TRUE(rab.gap);

    add(store, {"b"});
    add(store, {"b"}); // now "b" drops it too
    EXPECT_EQ(store.position_of(both->id), std::nullopt);
    EXPECT_EQ(store.size(), 4U);
    // Its id is free again.
    EXPECT_NE(add(store, {"c"}, "x", both->id), nullptr);
}

TEST(MemoryStore, AnEventNamingATopicTwiceIsRetainedOnce) {
    // Nothing upstream removes a repeated topic (`topic=a&topic=a` on a publish).
    MemoryStore store(Retention{2, 100000000, 0}, 1);
    auto first = add(store, {"a"});
    auto twice = add(store, {"a", "a"});
    // One event: it takes one of the two places, and "a" still holds `first`.
    EXPECT_EQ(store.position_of(first->id), first->position);
    auto topics = store.topics();
    EXPECT_EQ(find_topic(topics, "a")->retained, 2U);
    EXPECT_EQ(find_topic(topics, "a")->bytes, first->footprint() + twice->footprint());
    auto r = store.replay(0, kAll, exact({"a"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{1, 2}));
    EXPECT_FALSE(r.gap);
}

TEST(MemoryStore, MaxEventsZeroKeepsNothing) {
    MemoryStore store(Retention{0, 100000000, 0}, 1);
    auto e1 = add(store, {"a"}, "x", "pub");
    auto e2 = add(store, {"a", "b"});
    EXPECT_EQ(e1->position, 1U);
    EXPECT_EQ(e2->position, 2U);
    EXPECT_EQ(e2->id, "2");
    EXPECT_EQ(store.last_position(), 2U);
    EXPECT_EQ(store.size(), 0U);
    EXPECT_EQ(store.position_of("pub"), std::nullopt);
    EXPECT_EQ(store.position_of("2"), std::nullopt);
    // Nothing retained, so a publisher id may come again.
    EXPECT_NE(add(store, {"a"}, "x", "pub"), nullptr);

    auto r = store.replay(0, kAll, exact({"a", "b"}));
    EXPECT_TRUE(r.events.empty());
    EXPECT_TRUE(r.gap);

    // A topic that retains nothing costs nothing: no entry, no figures.
    EXPECT_TRUE(store.topics().empty());
    EXPECT_EQ(store.history().topics, 0U);
    EXPECT_EQ(store.history().bytes, 0U);
}

// ---- replay ----

TEST(MemoryStore, ReplayMergesTopicsInPositionOrderEachEventOnce) {
    MemoryStore store(kLarge, 1);
    add(store, {"a"});      // 1
    add(store, {"b"});      // 2
    add(store, {"c"});      // 3
    add(store, {"a", "b"}); // 4
    add(store, {"b"});      // 5
    add(store, {"c", "a"}); // 6
    add(store, {"a"});      // 7
    add(store, {"d"});      // 8

    auto r = store.replay(0, kAll, exact({"a", "b"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{1, 2, 4, 5, 6, 7}));
    EXPECT_FALSE(r.gap);
    EXPECT_EQ(ids(r), (std::vector<std::string>{"1", "2", "4", "5", "6", "7"}));

    auto after = store.replay(4, kAll, exact({"b", "a"}));
    EXPECT_EQ(positions(after), (std::vector<std::uint64_t>{5, 6, 7}));

    // A topic named twice, and one never seen.
    auto twice = store.replay(0, kAll, exact({"c", "c", "nope"}));
    EXPECT_EQ(positions(twice), (std::vector<std::uint64_t>{3, 6}));

    EXPECT_TRUE(store.replay(8, kAll, exact({"a", "b", "c", "d"})).events.empty());
    EXPECT_TRUE(store.replay(100, kAll, exact({"a"})).events.empty());
    EXPECT_TRUE(store.replay(0, kAll, exact({})).events.empty());
    EXPECT_TRUE(store.replay(0, kAll, exact({"nope"})).events.empty());
}

TEST(MemoryStore, ReplayOfManyInterleavedTopics) {
    MemoryStore store(kLarge, 1);
    std::vector<std::uint64_t> expected;
    for (int i = 0; i < 300; ++i) {
        std::vector<std::string> topics{"t" + std::to_string(i % 7)};
        if (i % 5 == 0) {
            topics.push_back("t" + std::to_string((i + 3) % 7));
        }
        auto ev = add(store, topics);
        const bool covered = std::any_of(topics.begin(), topics.end(), [](const auto& t) {
            return t == "t1" || t == "t3" || t == "t4";
        });
        if (covered && ev->position > 50) {
            expected.push_back(ev->position);
        }
    }
    auto r = store.replay(50, kAll, exact({"t1", "t3", "t4"}));
    EXPECT_EQ(positions(r), expected);
}

TEST(MemoryStore, ReplayWithAPattern) {
    MemoryStore store(kLarge, 1);
    add(store, {"books/1"});              // 1
    add(store, {"authors/1"});            // 2
    add(store, {"books/2", "authors/1"}); // 3
    add(store, {"news"});                 // 4
    add(store, {"books/3", "news"});      // 5

    TopicFilter books;
    books.pattern = [](std::string_view t) { return t.rfind("books/", 0) == 0; };
    auto r = store.replay(0, kAll, books);
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{1, 3, 5}));
    EXPECT_FALSE(r.gap);

    // Pattern and exact topics together; the events matched by both come once.
    TopicFilter mixed = books;
    mixed.exact = {"news", "books/1"};
    auto rm = store.replay(0, kAll, mixed);
    EXPECT_EQ(positions(rm), (std::vector<std::uint64_t>{1, 3, 4, 5}));

    auto ra = store.replay(2, kAll, mixed);
    EXPECT_EQ(positions(ra), (std::vector<std::uint64_t>{3, 4, 5}));

    TopicFilter none;
    none.pattern = [](std::string_view) { return false; };
    EXPECT_TRUE(store.replay(0, kAll, none).events.empty());
}

TEST(MemoryStore, GapOnlyWhenACoveredTopicDroppedAnEventAfterThePosition) {
    MemoryStore store(Retention{2, 100000000, 0}, 1);
    add(store, {"a"}); // 1
    add(store, {"b"}); // 2
    add(store, {"a"}); // 3
    add(store, {"a"}); // 4: drops 1 from "a"
    add(store, {"a"}); // 5: drops 3 from "a"

    EXPECT_TRUE(store.replay(0, kAll, exact({"a"})).gap);
    EXPECT_TRUE(store.replay(2, kAll, exact({"a"})).gap);
    // Dropped up to 3, so a resume from 3 or later misses nothing.
    auto r3 = store.replay(3, kAll, exact({"a"}));
    EXPECT_FALSE(r3.gap);
    EXPECT_EQ(positions(r3), (std::vector<std::uint64_t>{4, 5}));
    EXPECT_FALSE(store.replay(4, kAll, exact({"a"})).gap);
    // "b" dropped nothing.
    EXPECT_FALSE(store.replay(0, kAll, exact({"b"})).gap);
    // A covered topic's loss taints the whole replay; an uncovered one's does not.
    EXPECT_TRUE(store.replay(0, kAll, exact({"a", "b"})).gap);
    TopicFilter only_b;
    only_b.pattern = [](std::string_view t) { return t == "b"; };
    EXPECT_FALSE(store.replay(0, kAll, only_b).gap);
    TopicFilter any;
    any.pattern = [](std::string_view) { return true; };
    EXPECT_TRUE(store.replay(1, kAll, any).gap);
    EXPECT_FALSE(store.replay(3, kAll, any).gap);
}

// ---- age ----

TEST(MemoryStore, ExpireDropsByAge) {
    MemoryStore store(Retention{10000, 100000000, 60000}, 1);
    auto old1 = add(store, {"a"});
    auto old2 = add(store, {"b"});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto fresh = add(store, {"a"});
    ASSERT_LT(old2->published_ms, fresh->published_ms);

    // Nothing is old enough yet.
    store.expire(fresh->published_ms);
    EXPECT_EQ(store.size(), 3U);

    // The cutoff falls between the old events and the fresh one.
    store.expire(fresh->published_ms + 60000);
    EXPECT_EQ(store.position_of(old1->id), std::nullopt);
    EXPECT_EQ(store.position_of(old2->id), std::nullopt);
    EXPECT_EQ(store.position_of(fresh->id), fresh->position);
    EXPECT_EQ(store.size(), 1U);
    auto r = store.replay(0, kAll, exact({"a", "b"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{fresh->position}));
    EXPECT_TRUE(r.gap);
    EXPECT_FALSE(store.replay(old2->position, kAll, exact({"a", "b"})).gap);

    store.expire(fresh->published_ms + 60001);
    EXPECT_EQ(store.size(), 0U);
    EXPECT_TRUE(store.replay(0, kAll, exact({"a", "b"})).events.empty());
    // Positions go on.
    EXPECT_EQ(add(store, {"a"})->position, fresh->position + 1);
}

TEST(MemoryStore, ExpireWithoutAnAgeBoundKeepsEverything) {
    MemoryStore store(kLarge, 1);
    add(store, {"a"});
    add(store, {"b"});
    store.expire(base::unix_ms() + 1000LL * 3600 * 24 * 365);
    EXPECT_EQ(store.size(), 2U);
    EXPECT_EQ(store.replay(0, kAll, exact({"a", "b"})).events.size(), 2U);
}

TEST(MemoryStore, ExpireKeepsTheGapOfATopicItEmptied) {
    // "b" loses an event after `mark` to max_bytes (too big to keep), which leaves its ring
    // empty. An age sweep that finds nothing old must not make that loss forgotten.
    MemoryStore store(Retention{10000, 1000, 3600000}, 1);
    auto mark = add(store, {"a"});
    add(store, {"b"}, std::string(2000, 'x'));
    ASSERT_TRUE(store.replay(mark->position, kAll, exact({"a", "b"})).gap);
    store.expire(base::unix_ms());
    EXPECT_TRUE(store.replay(mark->position, kAll, exact({"a", "b"})).gap);
}

// ---- figures and frames ----

TEST(MemoryStore, TopicsFigures) {
    MemoryStore store(Retention{2, 100000000, 0}, 1);
    EXPECT_TRUE(store.topics().empty());
    auto a1 = add(store, {"a"}, "one");
    auto ab = add(store, {"a", "b"}, "two");
    auto a3 = add(store, {"a"}, "three", "custom");

    auto topics = store.topics();
    ASSERT_EQ(topics.size(), 2U);
    const auto* a = find_topic(topics, "a");
    const auto* b = find_topic(topics, "b");
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->retained, 2U);
    EXPECT_EQ(a->bytes, ab->footprint() + a3->footprint());
    EXPECT_EQ(a->last_id, "custom");
    EXPECT_EQ(b->retained, 1U);
    EXPECT_EQ(b->bytes, ab->footprint());
    EXPECT_EQ(b->last_id, ab->id);
    (void)a1;
}

TEST(MemoryStore, FootprintCountsTheFrameAndFields) {
    MemoryStore store(kLarge, 1);
    auto small = add(store, {"a"}, "x");
    auto big = add(store, {"a"}, std::string(1000, 'x'));
    EXPECT_GE(small->footprint(), sizeof(log::Event) + small->frame.size());
    // The data is counted twice: in the field and in the frame.
    EXPECT_GE(big->footprint() - small->footprint(), 2 * 999U);
}

TEST(MemoryStore, FrameIsTheSseEncodingOfTheEvent) {
    MemoryStore store(kLarge, 1);
    auto plain = add(store, {"a"}, "hello");
    EXPECT_EQ(plain->frame.view(), "id: 1\ndata: hello\n\n");

    NewEvent in = make({"a"}, "line1\nline2", "custom-id");
    in.type = "update";
    in.retry_ms = 2500;
    auto res = append_now(store, std::move(in));
    ASSERT_EQ(res.error, AppendError::none);
    const std::string_view frame = res.event->frame.view();
    EXPECT_EQ(frame.substr(0, 14), "id: custom-id\n");
    EXPECT_NE(frame.find("event: update\n"), std::string_view::npos);
    EXPECT_NE(frame.find("retry: 2500\n"), std::string_view::npos);
    EXPECT_NE(frame.find("data: line1\ndata: line2\n"), std::string_view::npos);
    EXPECT_EQ(frame.substr(frame.size() - 2), "\n\n");

    auto generated = add(store, {"b"}, "");
    EXPECT_EQ(generated->frame.view(), "id: 3\ndata: \n\n");
}

TEST(MemoryStore, ReadyByDefault) {
    MemoryStore store(kLarge, 1);
    EXPECT_FALSE(store.trouble().has_value());
}

// ---- forgetting topics, hub-wide bounds ----

std::vector<std::string> names(const std::vector<log::TopicStats>& all) {
    std::vector<std::string> out;
    for (const auto& t : all) {
        out.push_back(t.topic);
    }
    return out;
}

TEST(MemoryStore, TopicsThatRetainNothingCostNothing) {
    MemoryStore none(Retention{0, 100000000, 0}, 1);
    for (int i = 0; i < 50000; ++i) {
        add(none, {"t" + std::to_string(i)});
    }
    EXPECT_TRUE(none.topics().empty());
    EXPECT_EQ(none.history().topics, 0U);
    EXPECT_EQ(none.size(), 0U);

    // Emptied by max_bytes, or by age: forgotten too.
    MemoryStore store(Retention{10000, 1000, 3600000}, 1);
    auto mark = add(store, {"a"});
    add(store, {"big"}, std::string(2000, 'x'));
    add(store, {"old"});
    store.expire(base::unix_ms() + 3600001);
    EXPECT_TRUE(store.topics().empty());
    EXPECT_EQ(store.history().bytes, 0U);
    // A resume over them still knows that events went.
    EXPECT_TRUE(store.replay(mark->position, kAll, exact({"big"})).gap);
    EXPECT_TRUE(store.replay(mark->position, kAll, exact({"old"})).gap);
    // A forgotten topic that comes back keeps that knowledge.
    auto again = add(store, {"big"});
    auto r = store.replay(mark->position, kAll, exact({"big"}));
    EXPECT_TRUE(r.gap);
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{again->position}));
    EXPECT_FALSE(store.replay(again->position, kAll, exact({"big"})).gap);
}

TEST(MemoryStore, MaxTopicsForgetsTheTopicWhoseNewestEventIsOldest) {
    Retention retention = kLarge;
    retention.max_topics = 3;
    MemoryStore store(retention, 1);
    auto a1 = add(store, {"a"});
    auto b1 = add(store, {"b"});
    auto b2 = add(store, {"b"});
    auto c1 = add(store, {"c"});
    auto a2 = add(store, {"a"}); // a is now newer than b
    auto d1 = add(store, {"d", "c"});
    EXPECT_EQ(names(store.topics()), (std::vector<std::string>{"a", "c", "d"}));
    EXPECT_EQ(store.history().topics, 3U);
    EXPECT_EQ(store.history().evicted_max_topics, 2U); // b's two events
    EXPECT_EQ(store.history().evicted_max_total_bytes, 0U);
    EXPECT_EQ(store.position_of(b1->id), std::nullopt);
    EXPECT_EQ(store.position_of(b2->id), std::nullopt);
    EXPECT_EQ(store.position_of(a1->id), a1->position);
    // A resume on b reports the loss; one on a does not.
    auto rb = store.replay(0, kAll, exact({"b"}));
    EXPECT_TRUE(rb.events.empty());
    EXPECT_TRUE(rb.gap);
    auto ra = store.replay(0, kAll, exact({"a"}));
    EXPECT_EQ(positions(ra), (std::vector<std::uint64_t>{a1->position, a2->position}));
    EXPECT_FALSE(ra.gap);

    // An event on topics that stay keeps its place there when one of them goes: c's newest
    // is d1, a's is a2, older: a goes next.
    add(store, {"e"});
    EXPECT_EQ(names(store.topics()), (std::vector<std::string>{"c", "d", "e"}));
    auto rc = store.replay(0, kAll, exact({"c"}));
    EXPECT_EQ(positions(rc), (std::vector<std::uint64_t>{c1->position, d1->position}));
    EXPECT_EQ(store.history().evicted_max_topics, 4U);
    EXPECT_EQ(store.history().bytes, 4 * a1->footprint());
}

TEST(MemoryStore, MaxTotalBytesDropsTheOldestEventsFirstFromEveryTopic) {
    const std::size_t fp = add(*std::make_unique<MemoryStore>(kLarge, 1), {"z"})->footprint();
    Retention retention = kLarge;
    retention.max_total_bytes = 4 * fp;
    MemoryStore store(retention, 1);
    auto a1 = add(store, {"a"});
    auto b2 = add(store, {"b"});
    auto ab3 = add(store, {"a", "b"}); // counts once in a, once in b
    EXPECT_EQ(store.history().bytes, 4 * fp);
    EXPECT_EQ(store.history().evicted_max_total_bytes, 0U);
    auto c4 = add(store, {"c"});
    // Over by one: a1 went, the oldest.
    EXPECT_EQ(store.position_of(a1->id), std::nullopt);
    EXPECT_EQ(store.history().bytes, 4 * fp);
    auto d5 = add(store, {"d"});
    EXPECT_EQ(store.position_of(b2->id), std::nullopt);
    // ab3 is next: it leaves a and b together, and both topics are forgotten.
    auto e6 = add(store, {"e"});
    EXPECT_EQ(store.position_of(ab3->id), std::nullopt);
    EXPECT_EQ(names(store.topics()), (std::vector<std::string>{"c", "d", "e"}));
    EXPECT_EQ(store.history().bytes, 3 * fp);
    EXPECT_EQ(store.history().evicted_max_total_bytes, 4U); // a1, b2, ab3 twice
    auto r = store.replay(0, kAll, exact({"a", "b", "c", "d", "e"}));
    EXPECT_EQ(positions(r), (std::vector<std::uint64_t>{c4->position, d5->position, e6->position}));
    EXPECT_TRUE(r.gap);
    // Resumes after the evicted range are complete.
    EXPECT_FALSE(store.replay(ab3->position, kAll, exact({"a", "b", "c"})).gap);
    EXPECT_TRUE(store.replay(b2->position, kAll, exact({"a"})).gap);
    EXPECT_EQ(store.size(), 3U);
}

TEST(MemoryStore, TopicsPageByNameAfterAndPrefix) {
    MemoryStore store(kLarge, 1);
    for (const char* t : {"b/2", "a/1", "b/1", "c", "b/3", "a/2"}) {
        add(store, {t});
    }
    EXPECT_EQ(names(store.topics()),
              (std::vector<std::string>{"a/1", "a/2", "b/1", "b/2", "b/3", "c"}));
    EXPECT_EQ(names(store.topics(log::TopicRange{"", "", 2})),
              (std::vector<std::string>{"a/1", "a/2"}));
    EXPECT_EQ(names(store.topics(log::TopicRange{"a/2", "", 2})),
              (std::vector<std::string>{"b/1", "b/2"}));
    EXPECT_EQ(names(store.topics(log::TopicRange{"", "b/", 10})),
              (std::vector<std::string>{"b/1", "b/2", "b/3"}));
    EXPECT_EQ(names(store.topics(log::TopicRange{"b/1", "b/", 10})),
              (std::vector<std::string>{"b/2", "b/3"}));
    EXPECT_EQ(names(store.topics(log::TopicRange{"a", "b/", 1})),
              (std::vector<std::string>{"b/1"}));
    EXPECT_TRUE(store.topics(log::TopicRange{"b/3", "b/", 10}).empty());
    EXPECT_TRUE(store.topics(log::TopicRange{"", "x", 10}).empty());
}

} // namespace
} // namespace herald::store
