// Tests for the hub: fan-out to the shards with interest, exact / "*" / URI-template
// subscribers, system topics, private events, batching and flushes, unsubscribe, resume
// (replay, the Last-Event-ID header, retention gaps), $sys/connections and /topics; then
// publishers and resuming subscribers on real worker threads (run under TSan by `make test`).
#include "hub/hub.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.hpp"
#include "store/memory/memory_store.hpp"

namespace herald::hub {
namespace {

using namespace std::chrono_literals;

// Records what the shard hands it, as the HTTP layer's Connection would queue it.
class Recorder final : public Subscriber {
public:
    void lose() override { lost = true; }
    bool lost = false;
    void deliver(const log::Event& event) override {
        ids.push_back(event.id);
        positions.push_back(event.position);
        data.push_back(event.data);
        ++pending;
    }
    void flush() override {
        ++flushes;
        pending = 0;
    }

    std::vector<std::string> ids;
    std::vector<std::uint64_t> positions;
    std::vector<std::string> data;
    int flushes = 0;
    int pending = 0; // delivered since the last flush
};

Interest interest_of(const std::vector<std::string>& selectors, bool read_private = false) {
    Interest in;
    for (const auto& text : selectors) {
        Selector sel = Selector::parse(text);
        if (sel.is_exact()) {
            in.exact.push_back(text);
        } else {
            in.patterns.push_back(std::move(sel));
        }
    }
    if (read_private) {
        // A root-like token: reads every topic, private events included.
        auto access = std::make_shared<Access>();
        access->everything = true;
        in.access = std::move(access);
    }
    return in;
}

std::vector<std::string> ids_of(const log::Replay& replay) {
    std::vector<std::string> out;
    for (const auto& ev : replay.events) {
        out.push_back(ev->id);
    }
    return out;
}

using Strings = std::vector<std::string>;
using Workers = std::vector<unsigned>;

class HubTest : public ::testing::Test {
protected:
    // Three workers; schedule() only records, and drain() runs the shards by hand.
    explicit HubTest(store::Retention retention = {1000, 100000000, 0})
        : store_(retention, 1), hub_(store_, 3, [this](unsigned w) { scheduled_.push_back(w); }) {}

    PublishResult publish(Strings topics, std::string data = "x", bool is_private = false,
                          std::string id = {}) {
        log::NewEvent ev;
        ev.topics = std::move(topics);
        ev.data = std::move(data);
        ev.is_private = is_private;
        ev.id = std::move(id);
        return hub_.publish(std::move(ev));
    }

    // The id of a successful publish.
    std::string pub(Strings topics, std::string data = "x", bool is_private = false) {
        auto res = publish(std::move(topics), std::move(data), is_private);
        EXPECT_EQ(res.error, PublishError::none);
        return res.event ? res.event->id : std::string{};
    }

    SubscribeResult subscribe(unsigned worker, Subscriber& sub, const Strings& selectors,
                              std::optional<std::string> last_event_id = std::nullopt,
                              bool read_private = false) {
        return hub_.shard(worker).subscribe(sub, interest_of(selectors, read_private),
                                            last_event_id);
    }

    Workers take_scheduled() { return std::exchange(scheduled_, {}); }

    // Runs every scheduled drain, as the workers would.
    void drain() {
        for (unsigned w : take_scheduled()) {
            hub_.shard(w).drain();
        }
    }

    store::MemoryStore store_;
    Workers scheduled_;
    Hub hub_;
};

// ---- fan-out ----

TEST_F(HubTest, PublishReachesOnlyShardsWithInterest) {
    Recorder s0, s2;
    (void)subscribe(0, s0, {"a"});
    (void)subscribe(2, s2, {"b"});

    const auto a = pub({"a"});
    EXPECT_EQ(take_scheduled(), Workers{0});
    hub_.shard(0).drain();
    EXPECT_EQ(s0.ids, Strings{a});

    const auto b = pub({"b"});
    EXPECT_EQ(take_scheduled(), Workers{2});
    hub_.shard(2).drain();
    EXPECT_EQ(s2.ids, Strings{b});

    // Nobody follows "c": it is logged, but no shard hears of it.
    auto c = publish({"c"});
    ASSERT_EQ(c.error, PublishError::none);
    EXPECT_TRUE(take_scheduled().empty());
    EXPECT_EQ(store_.last_position(), c.event->position);

    const auto ab = pub({"a", "b"});
    auto both = take_scheduled();
    std::sort(both.begin(), both.end());
    EXPECT_EQ(both, (Workers{0, 2}));
    hub_.shard(0).drain();
    hub_.shard(1).drain(); // nothing for it; harmless
    hub_.shard(2).drain();
    EXPECT_EQ(s0.ids, (Strings{a, ab}));
    EXPECT_EQ(s2.ids, (Strings{b, ab}));
    EXPECT_EQ(hub_.published(), 4U);
}

TEST_F(HubTest, ScheduledOncePerBatchUntilDrained) {
    Recorder s1, s2;
    (void)subscribe(1, s1, {"a"});
    (void)subscribe(2, s2, {"*"});

    const auto e1 = pub({"a"});
    const auto e2 = pub({"a"});
    const auto e3 = pub({"b"});
    auto first = take_scheduled();
    std::sort(first.begin(), first.end());
    EXPECT_EQ(first, (Workers{1, 2})); // once each, not once per event

    const auto e4 = pub({"a"});
    EXPECT_TRUE(take_scheduled().empty()); // still pending on both

    hub_.shard(1).drain();
    hub_.shard(2).drain();
    EXPECT_EQ(s1.ids, (Strings{e1, e2, e4}));
    EXPECT_EQ(s2.ids, (Strings{e1, e2, e3, e4}));
    EXPECT_EQ(s1.flushes, 1);
    EXPECT_EQ(s2.flushes, 1);

    // Drained: the next event schedules again.
    const auto e5 = pub({"a"});
    auto second = take_scheduled();
    std::sort(second.begin(), second.end());
    EXPECT_EQ(second, (Workers{1, 2}));
    hub_.shard(1).drain();
    EXPECT_EQ(s1.ids.back(), e5);
    EXPECT_EQ(s1.flushes, 2);
    // Shard 2 not yet drained: one more event for it does not schedule it again.
    (void)pub({"b"});
    EXPECT_TRUE(take_scheduled().empty());
    hub_.shard(2).drain();
    EXPECT_EQ(s2.ids.size(), 6U);
    EXPECT_EQ(s2.flushes, 2);
}

TEST_F(HubTest, ExactStarAndTemplateSubscribers) {
    Recorder exact, star, books, mixed;
    (void)subscribe(0, exact, {"https://example.com/books/1"});
    (void)subscribe(1, star, {"*"});
    (void)subscribe(2, books, {"https://example.com/books/{id}"});
    (void)subscribe(2, mixed, {"https://example.com/books/{id}", "news"});

    const auto b1 = pub({"https://example.com/books/1"});
    const auto b2 = pub({"https://example.com/books/2"});
    const auto deep = pub({"https://example.com/books/2/reviews"});
    const auto news = pub({"news"});
    const auto other = pub({"https://example.com/authors/1"});
    drain();

    EXPECT_EQ(exact.ids, Strings{b1});
    EXPECT_EQ(star.ids, (Strings{b1, b2, deep, news, other}));
    EXPECT_EQ(books.ids, (Strings{b1, b2}));
    EXPECT_EQ(mixed.ids, (Strings{b1, b2, news}));
}

TEST_F(HubTest, SystemTopicsOnlyReachExactSubscribers) {
    Recorder star, tmpl, watcher, star_same_shard;
    (void)subscribe(0, star, {"*"});
    (void)subscribe(0, tmpl, {"$sys/{name}"});
    (void)subscribe(1, watcher, {std::string(kConnectionsTopic)});
    (void)subscribe(1, star_same_shard, {"*"});

    const auto sys = pub({std::string(kConnectionsTopic)});
    // Only the worker with an exact subscriber is told.
    EXPECT_EQ(take_scheduled(), Workers{1});
    hub_.shard(0).drain();
    hub_.shard(1).drain();
    EXPECT_EQ(watcher.ids, Strings{sys});
    EXPECT_TRUE(star.ids.empty());
    EXPECT_TRUE(tmpl.ids.empty());
    EXPECT_TRUE(star_same_shard.ids.empty());
    EXPECT_EQ(star_same_shard.flushes, 0);

    // Nor through a replay.
    Recorder late;
    auto res = subscribe(2, late, {"*"}, std::string("earliest"));
    EXPECT_TRUE(res.replay.events.empty());
    Recorder late_watcher;
    auto res2 =
        subscribe(2, late_watcher, {std::string(kConnectionsTopic)}, std::string("earliest"));
    EXPECT_EQ(ids_of(res2.replay), Strings{sys});
}

TEST_F(HubTest, EventOnTwoFollowedTopicsArrivesOnce) {
    Recorder two, exact_and_star, two_patterns, named_twice;
    (void)subscribe(0, two, {"a", "b"});
    (void)subscribe(0, exact_and_star, {"a", "*"});
    (void)subscribe(1, two_patterns, {"*", "{x}"});
    (void)subscribe(1, named_twice, {"a", "a"});

    const auto ab = pub({"a", "b"});
    const auto ba = pub({"b", "a"});
    drain();
    for (const Recorder* r : {&two, &exact_and_star, &two_patterns, &named_twice}) {
        EXPECT_EQ(r->ids, (Strings{ab, ba}));
        EXPECT_EQ(r->flushes, 1);
    }
    EXPECT_EQ(hub_.delivered(), 8U);

    // And once in a replay.
    Recorder resumed;
    auto res = subscribe(2, resumed, {"b", "a", "*"}, std::string("earliest"));
    EXPECT_EQ(ids_of(res.replay), (Strings{ab, ba}));
}

TEST_F(HubTest, PrivateEventsNeedReadPrivate) {
    Recorder plain, allowed, star_plain, star_allowed;
    (void)subscribe(0, plain, {"a"});
    (void)subscribe(0, allowed, {"a"}, std::nullopt, true);
    (void)subscribe(1, star_plain, {"*"});
    (void)subscribe(1, star_allowed, {"*"}, std::nullopt, true);

    const auto secret = pub({"a"}, "secret", true);
    const auto open = pub({"a"}, "open");
    drain();
    EXPECT_EQ(plain.ids, Strings{open});
    EXPECT_EQ(star_plain.ids, Strings{open});
    EXPECT_EQ(allowed.ids, (Strings{secret, open}));
    EXPECT_EQ(star_allowed.ids, (Strings{secret, open}));

    // The same rule holds for a replay.
    Recorder r_plain, r_allowed;
    auto res_plain = subscribe(2, r_plain, {"a"}, std::string("earliest"));
    auto res_allowed = subscribe(2, r_allowed, {"a"}, std::string("earliest"), true);
    EXPECT_EQ(ids_of(res_plain.replay), Strings{open});
    EXPECT_EQ(ids_of(res_allowed.replay), (Strings{secret, open}));

    // Only-private event: the plain subscriber's shard has nothing to flush for it.
    const int before = plain.flushes;
    (void)pub({"a"}, "secret2", true);
    drain();
    EXPECT_EQ(plain.flushes, before);
    EXPECT_EQ(allowed.ids.size(), 3U);
}

TEST_F(HubTest, FlushOncePerSubscriberPerDrain) {
    Recorder a, star, b;
    (void)subscribe(0, a, {"a"});
    (void)subscribe(0, star, {"*"});
    (void)subscribe(0, b, {"b"});

    for (int i = 0; i < 5; ++i) {
        (void)pub({"a"});
    }
    drain();
    EXPECT_EQ(a.ids.size(), 5U);
    EXPECT_EQ(star.ids.size(), 5U);
    EXPECT_EQ(a.flushes, 1);
    EXPECT_EQ(star.flushes, 1);
    EXPECT_EQ(b.flushes, 0); // got nothing, not flushed
    EXPECT_EQ(a.pending, 0); // every delivery was followed by the flush

    (void)pub({"b"});
    (void)pub({"a", "b"});
    drain();
    EXPECT_EQ(a.flushes, 2);
    EXPECT_EQ(star.flushes, 2);
    EXPECT_EQ(b.flushes, 1);
    EXPECT_EQ(b.ids.size(), 2U);

    // A drain with nothing in the inbox flushes nobody.
    hub_.shard(0).drain();
    EXPECT_EQ(a.flushes, 2);
}

// ---- unsubscribe ----

TEST_F(HubTest, UnsubscribeStopsDeliveryOthersKeepReceiving) {
    Recorder x, y, z, other;
    (void)subscribe(0, x, {"a"});
    (void)subscribe(0, y, {"a"});
    (void)subscribe(0, z, {"a"});
    (void)subscribe(1, other, {"a"});

    const auto e1 = pub({"a"});
    drain();
    // Out of the middle of the topic's list, then its head, then its tail.
    hub_.shard(0).unsubscribe(y);
    const auto e2 = pub({"a"});
    drain();
    hub_.shard(0).unsubscribe(z);
    const auto e3 = pub({"a"});
    drain();
    EXPECT_EQ(x.ids, (Strings{e1, e2, e3}));
    EXPECT_EQ(y.ids, Strings{e1});
    EXPECT_EQ(z.ids, (Strings{e1, e2}));
    EXPECT_EQ(other.ids, (Strings{e1, e2, e3}));

    hub_.shard(0).unsubscribe(x);
    hub_.shard(0).unsubscribe(x); // twice is harmless
    EXPECT_EQ(hub_.shard(0).subscribers(), 0U);
    // Worker 0 has lost interest in "a".
    const auto e4 = pub({"a"});
    EXPECT_EQ(take_scheduled(), Workers{1});
    hub_.shard(1).drain();
    EXPECT_EQ(other.ids.back(), e4);
    EXPECT_EQ(x.ids.size(), 3U);
}

TEST_F(HubTest, UnsubscribeDropsWhatIsStillInTheInbox) {
    Recorder gone, stays;
    (void)subscribe(0, gone, {"a"});
    (void)subscribe(0, stays, {"a"});
    const auto e1 = pub({"a"});
    hub_.shard(0).unsubscribe(gone);
    drain();
    EXPECT_TRUE(gone.ids.empty());
    EXPECT_EQ(gone.flushes, 0);
    EXPECT_EQ(stays.ids, Strings{e1});
}

TEST_F(HubTest, UnsubscribePatternSubscribersInAnyOrder) {
    Recorder p1, p2, p3;
    (void)subscribe(0, p1, {"*"});
    (void)subscribe(0, p2, {"{x}"});
    (void)subscribe(0, p3, {"*", "b"});

    hub_.shard(0).unsubscribe(p1); // the last one takes its slot
    const auto e1 = pub({"a"});
    drain();
    EXPECT_TRUE(p1.ids.empty());
    EXPECT_EQ(p2.ids, Strings{e1});
    EXPECT_EQ(p3.ids, Strings{e1});

    hub_.shard(0).unsubscribe(p3); // now in slot 0
    const auto e2 = pub({"b"});
    drain();
    EXPECT_EQ(p2.ids, (Strings{e1, e2}));
    EXPECT_EQ(p3.ids, Strings{e1});

    hub_.shard(0).unsubscribe(p2);
    (void)pub({"c"});
    EXPECT_TRUE(take_scheduled().empty()); // no pattern interest left anywhere
    EXPECT_EQ(hub_.subscribers(), 0);
}

TEST_F(HubTest, ResubscribeTheSameSubscriber) {
    Recorder s;
    (void)subscribe(0, s, {"a"});
    const auto e1 = pub({"a"});
    drain();
    hub_.shard(0).unsubscribe(s);
    const auto missed = pub({"a"});
    drain();
    auto res = subscribe(1, s, {"a", "b"}, s.ids.back());
    EXPECT_EQ(res.resume_header, e1);
    EXPECT_EQ(ids_of(res.replay), Strings{missed});
    const auto e3 = pub({"b"});
    drain();
    EXPECT_EQ(s.ids, (Strings{e1, e3}));
    EXPECT_EQ(s.position(), store_.last_position());
}

// ---- resume ----

// A long resume comes a page at a time: the subscription holds the first page, each later
// page is read when the stream asks, every page within kReplayPageBytes (plus the event
// that reached it), together every event once in order, and nothing published after the
// subscription (that comes live).
TEST_F(HubTest, ALongResumeIsReadAPageAtATimeUpToTheSubscriptionsMark) {
    const std::string body(2000, 'x');
    Strings wanted;
    for (int i = 0; i < 600; ++i) {
        wanted.push_back(pub({"a"}, body));
        (void)pub({i % 3 == 0 ? "a" : "b"}, std::to_string(i)); // some for "a", some not
        if (i % 3 == 0) {
            wanted.push_back(std::to_string(store_.last_position()));
        }
    }
    Recorder s;
    const auto pages_before = hub_.replay_pages();
    auto res = subscribe(0, s, {"a"}, "earliest");
    EXPECT_EQ(res.resume_header, "earliest");
    auto within_page = [](const log::Replay& page) {
        std::size_t bytes = 0;
        for (std::size_t i = 0; i + 1 < page.events.size(); ++i) {
            bytes += page.events[i]->frame.size();
        }
        return bytes < kReplayPageBytes;
    };
    EXPECT_TRUE(within_page(res.replay));
    EXPECT_TRUE(s.replay_pending());
    Strings got = ids_of(res.replay);
    // Published after the subscription: live, never in a page.
    const auto live = pub({"a"}, "live");
    std::size_t pages = 1;
    while (s.replay_pending()) {
        ASSERT_LT(pages, 100U) << "the pages do not end";
        auto page = hub_.shard(0).replay_more(s);
        EXPECT_FALSE(page.gap);
        EXPECT_TRUE(page.error.empty());
        EXPECT_TRUE(within_page(page));
        const auto ids = ids_of(page);
        got.insert(got.end(), ids.begin(), ids.end());
        ++pages;
    }
    EXPECT_EQ(got, wanted);
    // About 1.5 MB of frames: several pages, each counted.
    EXPECT_GE(pages, 5U);
    EXPECT_EQ(hub_.replay_pages() - pages_before, pages);
    EXPECT_EQ(hub_.replayed(), wanted.size());
    // The replay ended: no further page, and the live event arrives once.
    EXPECT_TRUE(hub_.shard(0).replay_more(s).events.empty());
    drain();
    EXPECT_EQ(s.ids, Strings{live});
    hub_.shard(0).unsubscribe(s);
}

// A page read after retention dropped events since the previous one reports the gap and
// ends the replay: the stream ends, and its client resumes and learns of it.
class SmallHistoryHubTest : public HubTest {
protected:
    SmallHistoryHubTest() : HubTest({200, 100000000, 0}) {}
};

TEST_F(SmallHistoryHubTest, ALaterPageAfterRetentionDroppedEventsReportsTheGap) {
    const std::string body(2000, 'x');
    for (int i = 0; i < 200; ++i) {
        (void)pub({"a"}, body);
    }
    Recorder s;
    auto res = subscribe(0, s, {"a"}, "earliest");
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_FALSE(res.replay.gap);
    ASSERT_TRUE(s.replay_pending());
    // The whole history turns over before the stream asks for its next page.
    for (int i = 0; i < 200; ++i) {
        (void)pub({"a"}, body);
    }
    auto page = hub_.shard(0).replay_more(s);
    EXPECT_TRUE(page.gap);
    EXPECT_TRUE(page.events.empty());
    EXPECT_FALSE(s.replay_pending());
    hub_.shard(0).unsubscribe(s);
}

// A resume already told `earliest` (its first page found events dropped after the place it
// asked for) is not ended by that same drop on a later page: a busy topic whose retention
// dropped events beyond the first page, beside a quiet one, replays whole in pages.
TEST_F(SmallHistoryHubTest, ADropTheFirstPageReportedDoesNotEndALaterPage) {
    const std::string body(2000, 'x');
    Strings wanted;
    for (int i = 0; i < 150; ++i) {
        wanted.push_back(pub({"quiet"}, body)); // about 300 KB: more than a page
    }
    Strings busy;
    for (int i = 0; i < 400; ++i) {
        busy.push_back(pub({"busy"})); // 200 retained: the first 200 are dropped
    }
    wanted.insert(wanted.end(), busy.begin() + 200, busy.end());
    Recorder s;
    auto res = subscribe(0, s, {"quiet", "busy"}, "earliest");
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_TRUE(res.replay.gap);
    ASSERT_TRUE(s.replay_pending());
    Strings got = ids_of(res.replay);
    std::size_t pages = 1;
    while (s.replay_pending()) {
        ASSERT_LT(pages, 100U) << "the pages do not end";
        auto page = hub_.shard(0).replay_more(s);
        EXPECT_FALSE(page.gap) << "page " << pages;
        const auto ids = ids_of(page);
        got.insert(got.end(), ids.begin(), ids.end());
        ++pages;
    }
    EXPECT_GE(pages, 2U);
    EXPECT_EQ(got, wanted);
    hub_.shard(0).unsubscribe(s);
}

TEST_F(HubTest, ResumeFromARetainedIdReplaysWhatFollows) {
    const auto e1 = pub({"a"});
    const auto e2 = pub({"a"});
    (void)pub({"b"});
    const auto e4 = pub({"a", "b"});
    const auto e5 = pub({"a"});
    (void)pub({"c"});

    Recorder s;
    auto res = subscribe(0, s, {"a"}, e2);
    EXPECT_EQ(res.resume_header, e2);
    EXPECT_EQ(ids_of(res.replay), (Strings{e4, e5}));
    EXPECT_FALSE(res.replay.gap);
    EXPECT_EQ(s.position(), store_.last_position());
    EXPECT_EQ(hub_.replayed(), 2U);

    // Live events follow with nothing repeated.
    const auto e7 = pub({"a"});
    drain();
    EXPECT_EQ(s.ids, Strings{e7});

    // An id on a topic the subscriber does not follow still marks the place.
    Recorder t;
    auto res2 = subscribe(1, t, {"b"}, e1);
    EXPECT_EQ(res2.resume_header, e1);
    EXPECT_EQ(res2.replay.events.size(), 2U);
}

TEST_F(HubTest, ResumeFromTheNewestIdReplaysNothing) {
    (void)pub({"a"});
    const auto last = pub({"a"});
    Recorder s;
    auto res = subscribe(0, s, {"a"}, last);
    EXPECT_EQ(res.resume_header, last);
    EXPECT_TRUE(res.replay.events.empty());
}

TEST_F(HubTest, ResumeEarliestReplaysEverythingRetained) {
    const auto e1 = pub({"a"});
    (void)pub({"b"});
    const auto e3 = pub({"a"});
    Recorder s;
    auto res = subscribe(0, s, {"a"}, std::string("earliest"));
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_EQ(ids_of(res.replay), (Strings{e1, e3}));
}

TEST_F(HubTest, ResumeFromAnUnknownIdReplaysEverythingRetained) {
    const auto e1 = pub({"a"});
    const auto e2 = pub({"a"});
    Recorder s;
    auto res = subscribe(0, s, {"a"}, std::string("no-such-id"));
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_EQ(ids_of(res.replay), (Strings{e1, e2}));

    // Empty log: still a header.
    Recorder t;
    auto res2 = subscribe(1, t, {"z"}, std::string("no-such-id"));
    EXPECT_EQ(res2.resume_header, "earliest");
    EXPECT_TRUE(res2.replay.events.empty());
}

TEST_F(HubTest, NoResumeAskedNoHeaderNoReplay) {
    (void)pub({"a"});
    Recorder s;
    auto res = subscribe(0, s, {"a"});
    EXPECT_FALSE(res.resume_header.has_value());
    EXPECT_TRUE(res.replay.events.empty());
    EXPECT_EQ(s.position(), store_.last_position());
    const auto live = pub({"a"});
    drain();
    EXPECT_EQ(s.ids, Strings{live});
}

TEST_F(HubTest, ResumeSkipsLiveEventsTheReplayCovered) {
    // Events sit in shard 0's inbox (published, not drained) when a resume replays them:
    // the shard must not deliver them a second time.
    Recorder early;
    (void)subscribe(0, early, {"a"});
    const auto e1 = pub({"a"});
    const auto e2 = pub({"a"});
    const auto e3 = pub({"a"});

    Recorder resumed;
    auto res = subscribe(0, resumed, {"a"}, e1);
    EXPECT_EQ(ids_of(res.replay), (Strings{e2, e3}));
    Recorder fresh;
    (void)subscribe(0, fresh, {"*"});
    drain();
    EXPECT_EQ(early.ids, (Strings{e1, e2, e3}));
    EXPECT_TRUE(resumed.ids.empty());
    EXPECT_EQ(resumed.flushes, 0);
    EXPECT_TRUE(fresh.ids.empty());

    const auto e4 = pub({"a"});
    drain();
    EXPECT_EQ(resumed.ids, Strings{e4});
    EXPECT_EQ(fresh.ids, Strings{e4});
}

class HubSmallHistoryTest : public HubTest {
protected:
    HubSmallHistoryTest() : HubTest(store::Retention{3, 100000000, 0}) {}
};

TEST_F(HubSmallHistoryTest, ResumeFromAnEvictedIdSaysEarliest) {
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        ids.push_back(pub({"a"}));
    }
    Recorder s;
    auto res = subscribe(0, s, {"a"}, ids[1]);
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_EQ(ids_of(res.replay), (Strings{ids[3], ids[4], ids[5]}));
}

TEST_F(HubSmallHistoryTest, ResumeAfterRetentionDroppedWhatFollowedTheIdSaysEarliest) {
    // The id stays known through topic "b", but "a" has dropped events after it.
    const auto mark = pub({"a", "b"});
    std::vector<std::string> after;
    for (int i = 0; i < 5; ++i) {
        after.push_back(pub({"a"}));
    }
    ASSERT_TRUE(store_.position_of(mark).has_value());

    Recorder s;
    auto res = subscribe(0, s, {"a"}, mark);
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_EQ(ids_of(res.replay), (Strings{after[2], after[3], after[4]}));

    // On "b" alone nothing was lost.
    Recorder t;
    auto res_b = subscribe(1, t, {"b"}, mark);
    EXPECT_EQ(res_b.resume_header, mark);
    EXPECT_TRUE(res_b.replay.events.empty());
}

// ---- $sys/connections ----

TEST_F(HubTest, AnnounceConnectionsWhenSubscribersComeOrGo) {
    hub_.announce_connections(); // 0 subscribers, never announced: nothing
    EXPECT_EQ(store_.last_position(), 0U);

    Recorder watcher, star;
    (void)subscribe(0, watcher, {std::string(kConnectionsTopic)});
    hub_.announce_connections();
    hub_.announce_connections(); // unchanged
    drain();
    EXPECT_EQ(watcher.data, Strings{R"({"count":1})"});

    (void)subscribe(1, star, {"*"});
    hub_.announce_connections();
    drain();
    EXPECT_EQ(watcher.data, (Strings{R"({"count":1})", R"({"count":2})"}));
    EXPECT_TRUE(star.ids.empty()); // "*" never reads $sys/

    hub_.shard(1).unsubscribe(star);
    hub_.announce_connections();
    drain();
    EXPECT_EQ(watcher.data.back(), R"({"count":1})");

    // Nobody came or went: nothing is published.
    hub_.announce_connections();
    drain();
    EXPECT_EQ(watcher.data.size(), 3U);

    // Up and down between two calls: the count is back where it was, but someone came and
    // went (it could have been a new watcher), so the count is published again.
    Recorder brief;
    (void)subscribe(2, brief, {"a"});
    hub_.shard(2).unsubscribe(brief);
    hub_.announce_connections();
    drain();
    EXPECT_EQ(watcher.data.size(), 4U);
    EXPECT_EQ(watcher.data.back(), R"({"count":1})");

    // The hub's own events are each node's own: not in the log, so never replayed (in a
    // cluster, never sent to another node), and they carry no id.
    EXPECT_EQ(store_.last_position(), 0U);
    EXPECT_TRUE(store_.topics().empty());
    EXPECT_EQ(watcher.ids, (Strings{"", "", "", ""}));
}

TEST_F(HubTest, SystemEventsAreNotCountedAsPublishedOrDelivered) {
    Recorder watcher, stats_watcher, user;
    (void)subscribe(0, watcher, {std::string(kConnectionsTopic)});
    (void)subscribe(1, stats_watcher, {std::string(kStatsTopic)});
    (void)subscribe(2, user, {"a"});
    hub_.announce_connections();
    hub_.publish_system(kStatsTopic, R"({"connections":3})");
    drain();
    EXPECT_EQ(watcher.data, Strings{R"({"count":3})"});
    EXPECT_EQ(stats_watcher.data, Strings{R"({"connections":3})"});
    EXPECT_EQ(hub_.published(), 0U);
    EXPECT_EQ(hub_.delivered(), 0U);

    (void)pub({"a"});
    drain();
    EXPECT_EQ(hub_.published(), 1U);
    EXPECT_EQ(hub_.delivered(), 1U);
}

TEST_F(HubTest, FollowedWhileAnExactSubscriberNamesTheTopic) {
    EXPECT_FALSE(hub_.followed(kStatsTopic));
    Recorder star, named;
    (void)subscribe(0, star, {"*"});
    EXPECT_FALSE(hub_.followed(kStatsTopic)); // "*" never reads $sys/
    (void)subscribe(1, named, {"x", std::string(kStatsTopic)});
    EXPECT_TRUE(hub_.followed(kStatsTopic));
    EXPECT_TRUE(hub_.followed("x"));
    hub_.shard(1).unsubscribe(named);
    EXPECT_FALSE(hub_.followed(kStatsTopic));
}

// ---- figures ----

TopicInfo info_of(const std::vector<TopicInfo>& all, std::string_view topic) {
    for (const auto& t : all) {
        if (t.topic == topic) {
            return t;
        }
    }
    ADD_FAILURE() << "no topic " << topic;
    return {};
}

TEST_F(HubTest, TopicsCountSubscribers) {
    Recorder a0, a1, b0, star;
    (void)subscribe(0, a0, {"a"});
    (void)subscribe(1, a1, {"a"});
    (void)subscribe(1, b0, {"b"});
    const auto ea = pub({"a"});
    const auto ec = pub({"c"});

    auto topics = hub_.topics();
    ASSERT_EQ(topics.size(), 3U);    // a, b (subscribed, never published), c
    EXPECT_EQ(topics[0].topic, "a"); // sorted
    EXPECT_EQ(topics[1].topic, "b");
    EXPECT_EQ(topics[2].topic, "c");
    EXPECT_EQ(info_of(topics, "a").subscribers, 2U);
    EXPECT_EQ(info_of(topics, "a").retained, 1U);
    EXPECT_EQ(info_of(topics, "a").last_id, ea);
    EXPECT_EQ(info_of(topics, "b").subscribers, 1U);
    EXPECT_EQ(info_of(topics, "b").retained, 0U);
    EXPECT_EQ(info_of(topics, "b").last_id, "");
    EXPECT_EQ(info_of(topics, "c").subscribers, 0U);
    EXPECT_EQ(info_of(topics, "c").last_id, ec);

    // A "*" subscriber counts on every known topic.
    (void)subscribe(2, star, {"*"});
    topics = hub_.topics();
    EXPECT_EQ(info_of(topics, "a").subscribers, 3U);
    EXPECT_EQ(info_of(topics, "b").subscribers, 2U);
    EXPECT_EQ(info_of(topics, "c").subscribers, 1U);

    hub_.shard(1).unsubscribe(a1);
    hub_.shard(1).unsubscribe(b0);
    topics = hub_.topics();
    EXPECT_EQ(info_of(topics, "a").subscribers, 2U);
    // "b" had no history and has lost its last named subscriber: no longer listed.
    EXPECT_TRUE(std::none_of(topics.begin(), topics.end(),
                             [](const TopicInfo& t) { return t.topic == "b"; }));
}

TEST_F(HubTest, TopicsCountASubscriberOnce) {
    // One subscriber that follows "a" both by name and through "*" is one subscriber of "a".
    Recorder s;
    (void)subscribe(0, s, {"a", "*", "{x}"});
    (void)pub({"a"});
    EXPECT_EQ(info_of(hub_.topics(), "a").subscribers, 1U);
}

std::vector<std::string> names_of(const std::vector<TopicInfo>& topics) {
    std::vector<std::string> out;
    for (const auto& t : topics) {
        out.push_back(t.topic);
    }
    return out;
}

TEST_F(HubTest, TopicsPagesMergeHistoryAndSubscribedTopics) {
    Recorder sb, sd;
    (void)subscribe(0, sb, {"p/b"});
    (void)subscribe(1, sd, {"p/d"});
    for (const char* t : {"p/a", "p/c", "p/e", "q"}) {
        (void)pub({t});
    }
    auto page = hub_.topics(TopicQuery{"", "", 2});
    EXPECT_EQ(names_of(page.topics), (Strings{"p/a", "p/b"}));
    EXPECT_TRUE(page.more);
    EXPECT_EQ(info_of(page.topics, "p/b").subscribers, 1U);
    page = hub_.topics(TopicQuery{"p/b", "", 2});
    EXPECT_EQ(names_of(page.topics), (Strings{"p/c", "p/d"}));
    EXPECT_TRUE(page.more);
    page = hub_.topics(TopicQuery{"p/d", "", 2});
    EXPECT_EQ(names_of(page.topics), (Strings{"p/e", "q"}));
    EXPECT_FALSE(page.more);
    page = hub_.topics(TopicQuery{"", "p/", 10});
    EXPECT_EQ(names_of(page.topics), (Strings{"p/a", "p/b", "p/c", "p/d", "p/e"}));
    EXPECT_FALSE(page.more);
    page = hub_.topics(TopicQuery{"p/c", "p/", 2});
    EXPECT_EQ(names_of(page.topics), (Strings{"p/d", "p/e"}));
    EXPECT_FALSE(page.more);
    EXPECT_TRUE(hub_.topics(TopicQuery{"", "r", 10}).topics.empty());
}

class NoHistoryHubTest : public HubTest {
protected:
    NoHistoryHubTest() : HubTest({0, 100000000, 0}) {}
};

TEST_F(NoHistoryHubTest, TopicsWithoutHistoryOrSubscribersCostNothing) {
    for (int i = 0; i < 20000; ++i) {
        (void)pub({"t" + std::to_string(i)});
    }
    EXPECT_TRUE(hub_.topics().empty());
    EXPECT_EQ(hub_.history().topics, 0U);
    EXPECT_EQ(hub_.followed_topics(), 0U);

    // A followed topic is listed while followed, with the last event seen since.
    Recorder s;
    (void)subscribe(0, s, {"live"});
    EXPECT_EQ(hub_.followed_topics(), 1U);
    const auto id = pub({"live"});
    auto topics = hub_.topics();
    ASSERT_EQ(topics.size(), 1U);
    EXPECT_EQ(topics[0].topic, "live");
    EXPECT_EQ(topics[0].retained, 0U);
    EXPECT_EQ(topics[0].subscribers, 1U);
    EXPECT_EQ(topics[0].last_id, id);
    hub_.shard(0).unsubscribe(s);
    EXPECT_TRUE(hub_.topics().empty());
    EXPECT_EQ(hub_.followed_topics(), 0U);
}

class CappedHubTest : public HubTest {
protected:
    static store::Retention capped() {
        store::Retention r{1000, 100000000, 0};
        r.max_topics = 2;
        return r;
    }
    CappedHubTest() : HubTest(capped()) {}
};

TEST_F(CappedHubTest, AResumeAcrossAnEvictedTopicSaysEarliest) {
    const auto mark = pub({"keep"});
    (void)pub({"a"});
    const auto k2 = pub({"keep"});
    (void)pub({"c"}); // a goes: its newest event is the oldest
    EXPECT_EQ(names_of(hub_.topics()), (Strings{"c", "keep"}));
    EXPECT_EQ(hub_.history().evicted_max_topics, 1U);
    EXPECT_EQ(hub_.history().topics, 2U);

    // The id is still known (keep retains it), but a lost an event after it.
    Recorder s;
    auto res = subscribe(0, s, {"a", "keep"}, mark);
    EXPECT_EQ(res.resume_header, "earliest");
    EXPECT_EQ(ids_of(res.replay), (Strings{k2}));

    // Over the topics that lost nothing, the id is kept.
    Recorder t;
    auto ok = subscribe(1, t, {"keep"}, mark);
    EXPECT_EQ(ok.resume_header, mark);
    EXPECT_EQ(ids_of(ok.replay), (Strings{k2}));
}

TEST_F(HubTest, Counters) {
    Recorder s1, s2, s3;
    (void)subscribe(0, s1, {"a"});
    (void)subscribe(0, s2, {"a"});
    (void)subscribe(1, s3, {"*"});
    EXPECT_EQ(hub_.subscribers(), 3);
    EXPECT_EQ(hub_.shard(0).subscribers(), 2U);
    EXPECT_EQ(hub_.shard(1).subscribers(), 1U);
    EXPECT_EQ(hub_.shard(2).subscribers(), 0U);
    EXPECT_EQ(hub_.workers(), 3U);

    (void)pub({"a"});
    (void)pub({"a"});
    drain();
    EXPECT_EQ(hub_.published(), 2U);
    EXPECT_EQ(hub_.shard(0).delivered(), 4U);
    EXPECT_EQ(hub_.shard(1).delivered(), 2U);
    EXPECT_EQ(hub_.delivered(), 6U);

    Recorder r;
    (void)subscribe(2, r, {"a"}, std::string("earliest"));
    EXPECT_EQ(hub_.replayed(), 2U);
    hub_.shard(0).unsubscribe(s1);
    EXPECT_EQ(hub_.subscribers(), 3);
    EXPECT_FALSE(hub_.trouble().has_value());
}

TEST_F(HubTest, DuplicatePublisherIdIsRefusedAndNotFannedOut) {
    Recorder s;
    (void)subscribe(0, s, {"a"});
    auto first = publish({"a"}, "x", false, "mine");
    ASSERT_EQ(first.error, PublishError::none);
    EXPECT_EQ(first.event->id, "mine");
    drain();
    auto again = publish({"a"}, "y", false, "mine");
    EXPECT_EQ(again.error, PublishError::duplicate_id);
    EXPECT_EQ(again.event, nullptr);
    EXPECT_TRUE(take_scheduled().empty());
    EXPECT_EQ(hub_.published(), 1U);
    EXPECT_EQ(s.ids, Strings{"mine"});
}

// ---- held back: publishers wait only for their own topic's subscribers ----

TEST_F(HubTest, ATopicIsHeldBackOnlyWhileMoreThanHalfOfItsSubscribersAreBehind) {
    auto held = [this](const Strings& topics) { return hub_.held_back(topics, SIZE_MAX); };
    Recorder a, b, c, other;
    subscribe(0, a, {"t"});
    subscribe(1, b, {"t", "u"});
    subscribe(2, c, {"t"});
    subscribe(0, other, {"o"});
    EXPECT_EQ(held({"t"}), std::nullopt);
    hub_.set_behind(a.interest(), true);
    EXPECT_EQ(held({"t"}), std::nullopt) << "one of three is a minority";
    hub_.set_behind(b.interest(), true);
    EXPECT_EQ(held({"t"}), std::optional<std::string>("t"));
    EXPECT_EQ(held({"o", "t"}), std::optional<std::string>("t"));
    EXPECT_EQ(held({"u"}), std::optional<std::string>("u")) << "b is u's only one";
    EXPECT_EQ(held({"o"}), std::nullopt) << "another topic is never held";
    EXPECT_EQ(held({"nobody"}), std::nullopt);
    hub_.set_behind(b.interest(), false);
    EXPECT_EQ(held({"t"}), std::nullopt);
    // A subscriber that leaves takes its count away (after undoing its behind mark).
    hub_.set_behind(a.interest(), false);
    hub_.shard(0).unsubscribe(a);
    hub_.set_behind(c.interest(), true);
    EXPECT_EQ(held({"t"}), std::nullopt) << "one of two is not more than half";
    hub_.set_behind(b.interest(), true);
    EXPECT_EQ(held({"t"}), std::optional<std::string>("t"));
    hub_.set_behind(b.interest(), false);
    hub_.set_behind(c.interest(), false);
    hub_.shard(1).unsubscribe(b);
    hub_.shard(2).unsubscribe(c);
    hub_.shard(0).unsubscribe(other);
    EXPECT_EQ(held({"t", "u", "o"}), std::nullopt);
}

TEST_F(HubTest, ATopicIsHeldBackWhileAWorkerServingItHasABacklogNotYetDelivered) {
    Recorder on0, on1;
    subscribe(0, on0, {"t"});
    subscribe(1, on1, {"o"});
    drain();
    for (int i = 0; i < 10; ++i) {
        pub({"t"}, std::string(1000, 'x')); // worker 0's drain is scheduled, not run
    }
    EXPECT_EQ(hub_.held_back({"t"}, 5000), std::optional<std::string>("t"));
    EXPECT_EQ(hub_.held_back({"t"}, 100000), std::nullopt) << "under the limit";
    EXPECT_EQ(hub_.held_back({"o"}, 5000), std::nullopt) << "worker 1 has no backlog";
    drain();
    EXPECT_EQ(on0.ids.size(), 10U);
    EXPECT_EQ(hub_.held_back({"t"}, 5000), std::nullopt) << "delivered: the backlog is gone";
    // A `*` subscriber's worker with a backlog holds every topic.
    Recorder all;
    subscribe(2, all, {"*"});
    for (int i = 0; i < 10; ++i) {
        pub({"elsewhere"}, std::string(1000, 'y'));
    }
    EXPECT_EQ(hub_.held_back({"o"}, 5000), std::optional<std::string>("o"));
    drain();
    EXPECT_EQ(hub_.held_back({"o"}, 5000), std::nullopt);
    hub_.shard(0).unsubscribe(on0);
    hub_.shard(1).unsubscribe(on1);
    hub_.shard(2).unsubscribe(all);
}

TEST(Hub, WorkerCountIsClamped) {
    store::MemoryStore store(store::Retention{}, 1);
    Hub none(store, 0, [](unsigned) {});
    EXPECT_EQ(none.workers(), 1U);
    Hub many(store, kMaxWorkers + 10, [](unsigned) {});
    EXPECT_EQ(many.workers(), kMaxWorkers);
}

TEST(Hub, ExpireAppliesAgeRetention) {
    store::MemoryStore store(store::Retention{100, 100000000, 1000}, 1);
    Hub hub(store, 1, [](unsigned) {});
    log::NewEvent ev;
    ev.topics = {"a"};
    auto res = hub.publish(std::move(ev));
    ASSERT_EQ(res.error, PublishError::none);
    hub.expire(res.event->published_ms + 500);
    EXPECT_EQ(store.size(), 1U);
    hub.expire(res.event->published_ms + 5000);
    EXPECT_EQ(store.size(), 0U);
}

// ---- threads ----

// One chain of subscriber incarnations: each resumes from the last id the previous one saw.
struct Chain {
    Strings selectors;
    std::vector<std::uint64_t> seen; // positions, in the order received
    std::string last_id;
    int incarnations = 0;
    int out_of_order = 0;
    int bad_headers = 0;
    int gaps = 0;
    std::size_t replayed = 0;

    void take(const log::Event& ev) {
        if (!seen.empty() && ev.position <= seen.back()) {
            ++out_of_order;
        }
        seen.push_back(ev.position);
        last_id = ev.id;
    }
};

class ChainSubscriber final : public Subscriber {
public:
    void lose() override { lost = true; }
    bool lost = false;
    explicit ChainSubscriber(Chain& chain) : chain_(chain) {}
    void deliver(const log::Event& event) override { chain_.take(event); }
    void flush() override {}

private:
    Chain& chain_;
};

struct ChurnResult {
    std::vector<std::vector<Chain>> chains; // per worker
    std::vector<std::uint64_t> published;   // positions of the test's events, sorted
    bool timed_out = false;
};

// `workers` threads each own a shard and drain it when scheduled; `publishers` threads
// publish `per_publisher` events each to feed/t (some also to feed/u) while every worker's
// subscribers keep unsubscribing and resuming from the last id they saw.
ChurnResult churn(unsigned workers, int publishers, int per_publisher) {
    struct Wake {
        std::mutex mu;
        std::condition_variable cv;
        bool pending = false;
    };
    std::vector<std::unique_ptr<Wake>> wakes;
    for (unsigned w = 0; w < workers; ++w) {
        wakes.push_back(std::make_unique<Wake>());
    }
    store::MemoryStore store(store::Retention{1000000, std::size_t{1} << 34, 0}, 1);
    Hub hub(store, workers, [&wakes](unsigned w) {
        Wake& wake = *wakes[w];
        {
            std::lock_guard lock(wake.mu);
            wake.pending = true;
        }
        wake.cv.notify_one();
    });

    const std::vector<Strings> kinds = {
        {"feed/t"}, {"feed/t", "feed/u"}, {"*"}, {"feed/{x}", "feed/u"}};
    ChurnResult out;
    out.chains.resize(workers);
    for (auto& chains : out.chains) {
        for (const auto& sel : kinds) {
            chains.push_back(Chain{sel, {}, {}, 0, 0, 0, 0, 0});
        }
    }

    std::atomic<std::uint64_t> final_position{0}; // set once every publisher is done
    std::atomic<bool> timed_out{false};
    std::atomic<int> incarnations{0}; // subscribe calls, all workers together
    const auto deadline = std::chrono::steady_clock::now() + 60s;

    auto run_worker = [&](unsigned w) {
        Shard& shard = hub.shard(w);
        Wake& wake = *wakes[w];
        std::vector<Chain>& chains = out.chains[w];
        std::vector<std::unique_ptr<ChainSubscriber>> subs(chains.size());
        std::vector<int> countdown(chains.size(), 0);
        std::mt19937 rng(w * 7919 + 17);

        auto start = [&](std::size_t i) {
            Chain& chain = chains[i];
            auto sub = std::make_unique<ChainSubscriber>(chain);
            const std::string expected = chain.last_id.empty() ? "earliest" : chain.last_id;
            auto res = shard.subscribe(*sub, interest_of(chain.selectors), expected);
            if (res.resume_header != expected) {
                ++chain.bad_headers;
            }
            if (res.replay.gap) {
                ++chain.gaps;
            }
            chain.replayed += res.replay.events.size();
            for (const auto& ev : res.replay.events) {
                chain.take(*ev);
            }
            ++chain.incarnations;
            incarnations.fetch_add(1);
            subs[i] = std::move(sub);
            countdown[i] = static_cast<int>(rng() % 40) + 1;
        };
        auto stop = [&](std::size_t i) {
            shard.unsubscribe(*subs[i]);
            subs[i].reset();
            countdown[i] = static_cast<int>(rng() % 6);
        };

        for (std::size_t i = 0; i < chains.size(); ++i) {
            start(i);
        }
        for (;;) {
            bool run_drain = false;
            {
                std::unique_lock lock(wake.mu);
                wake.cv.wait_for(lock, 200us, [&] { return wake.pending; });
                run_drain = std::exchange(wake.pending, false);
            }
            if (run_drain) {
                shard.drain();
            }
            const std::uint64_t final_pos = final_position.load();
            bool caught_up = final_pos != 0;
            for (std::size_t i = 0; i < chains.size(); ++i) {
                if (subs[i]) {
                    if (final_pos == 0 && --countdown[i] <= 0) {
                        stop(i);
                    }
                } else if (final_pos != 0 || countdown[i]-- <= 0) {
                    start(i);
                }
                // Once the hub has the subscriber past the last event, nothing more of the
                // test's events can come to it (what it missed stays missed).
                if (!subs[i] || subs[i]->position() < final_pos) {
                    caught_up = false;
                }
            }
            if (caught_up) {
                break;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                timed_out = true;
                break;
            }
        }
        for (auto& sub : subs) {
            if (sub) {
                shard.unsubscribe(*sub);
            }
        }
    };

    std::vector<std::thread> threads;
    for (unsigned w = 0; w < workers; ++w) {
        threads.emplace_back(run_worker, w);
    }

    // Meanwhile: the figures and $sys/connections, as the server's timers would.
    std::atomic<bool> publishing{true};
    std::thread stats([&] {
        while (publishing.load()) {
            hub.announce_connections();
            (void)hub.topics();
            (void)hub.delivered();
            (void)hub.subscribers();
            hub.expire(base::unix_ms());
            std::this_thread::sleep_for(1ms);
        }
    });

    std::atomic<bool> go{false};
    std::vector<std::vector<std::uint64_t>> positions(static_cast<std::size_t>(publishers));
    std::vector<std::thread> pubs;
    for (int p = 0; p < publishers; ++p) {
        pubs.emplace_back([&, p] {
            while (!go.load()) {
                std::this_thread::yield();
            }
            auto& mine = positions[static_cast<std::size_t>(p)];
            for (int n = 0; n < per_publisher; ++n) {
                log::NewEvent ev;
                ev.topics = {"feed/t"};
                if (n % 5 == 0) {
                    ev.topics.emplace_back("feed/u");
                }
                if (n % 11 == 0) {
                    std::reverse(ev.topics.begin(), ev.topics.end());
                }
                ev.data = std::to_string(p) + ":" + std::to_string(n);
                auto res = hub.publish(std::move(ev));
                if (res.error == PublishError::none) {
                    mine.push_back(res.event->position);
                }
                if (n % 64 == 0) {
                    std::this_thread::yield();
                }
                // Keep the subscribers churning while this publisher is busy: every 250
                // events, wait (a little, at most) for a few more resumes on each worker.
                if (n % 250 == 249) {
                    const int want = static_cast<int>(workers) * (4 + 2 * (n / 250 + 1));
                    const auto until = std::chrono::steady_clock::now() + 2s;
                    while (incarnations.load() < want && std::chrono::steady_clock::now() < until) {
                        std::this_thread::sleep_for(100us);
                    }
                }
            }
        });
    }
    go = true;
    for (auto& t : pubs) {
        t.join();
    }
    for (const auto& mine : positions) {
        out.published.insert(out.published.end(), mine.begin(), mine.end());
    }
    std::sort(out.published.begin(), out.published.end());
    final_position = out.published.empty() ? 1 : out.published.back();
    for (auto& t : threads) {
        t.join();
    }
    publishing = false;
    stats.join();
    out.timed_out = timed_out.load();
    EXPECT_EQ(hub.subscribers(), 0);
    return out;
}

void check_churn(const ChurnResult& r, std::size_t expected_events) {
    ASSERT_FALSE(r.timed_out) << "the subscribers never caught up";
    ASSERT_EQ(r.published.size(), expected_events);
    int incarnations = 0;
    std::size_t replayed = 0;
    for (std::size_t w = 0; w < r.chains.size(); ++w) {
        for (const Chain& chain : r.chains[w]) {
            SCOPED_TRACE("worker " + std::to_string(w) + ", chain " + chain.selectors.front());
            EXPECT_EQ(chain.out_of_order, 0);
            EXPECT_EQ(chain.bad_headers, 0);
            EXPECT_EQ(chain.gaps, 0);
            EXPECT_EQ(chain.seen.size(), r.published.size());
            const auto mismatch = std::mismatch(chain.seen.begin(), chain.seen.end(),
                                                r.published.begin(), r.published.end());
            if (mismatch.first != chain.seen.end() || mismatch.second != r.published.end()) {
                ADD_FAILURE() << "first difference at index "
                              << (mismatch.first - chain.seen.begin()) << ": received "
                              << (mismatch.first != chain.seen.end()
                                      ? std::to_string(*mismatch.first)
                                      : "nothing")
                              << ", expected "
                              << (mismatch.second != r.published.end()
                                      ? std::to_string(*mismatch.second)
                                      : "nothing");
            }
            EXPECT_GE(chain.incarnations, 1);
            incarnations += chain.incarnations;
            replayed += chain.replayed;
        }
    }
    std::printf("[ churn    ] %zu events, %d incarnations, %zu events replayed\n",
                r.published.size(), incarnations, replayed);
}

TEST(HubThreads, ResumingSubscribersSeeEveryEventOnceInOrderTwoWorkers) {
    check_churn(churn(2, 3, 2000), 6000);
}

TEST(HubThreads, ResumingSubscribersSeeEveryEventOnceInOrderFourWorkers) {
    check_churn(churn(4, 4, 2000), 8000);
}

// ---- what a cluster node reports ----

TEST_F(HubTest, ChangedCountsGiveEveryTopicFirstThenOnlyWhatMoved) {
    Recorder a1, a2, b, star;
    (void)subscribe(0, a1, {"a"});
    (void)subscribe(1, a2, {"a", "*"});
    (void)subscribe(2, b, {"b"});
    (void)subscribe(0, star, {"*"});
    using Counts = std::vector<std::pair<std::string, std::uint32_t>>;
    // The first call: every topic named, with every stream naming it (patterns or not).
    EXPECT_EQ(hub_.changed_counts(true), (Counts{{"a", 2}, {"b", 1}}));
    EXPECT_TRUE(hub_.changed_counts(false).empty());

    hub_.shard(2).unsubscribe(b);
    Recorder c;
    (void)subscribe(1, c, {"c"});
    EXPECT_EQ(hub_.changed_counts(false), (Counts{{"b", 0}, {"c", 1}}));
    EXPECT_TRUE(hub_.changed_counts(false).empty());
}

TEST_F(HubTest, ConnectionsCountTheOtherNodesToo) {
    Recorder watcher;
    (void)subscribe(0, watcher, {std::string(kConnectionsTopic)});
    hub_.announce_connections(5);
    drain();
    EXPECT_EQ(watcher.data, Strings{R"({"count":6})"});
    // Nothing moved here, but the other nodes' count did: announced again.
    hub_.announce_connections(5);
    hub_.announce_connections(7);
    drain();
    EXPECT_EQ(watcher.data, (Strings{R"({"count":6})", R"({"count":8})"}));
}

// ---- a log that hands events over late (a cluster node whose messages lag) ----

// Appends go to a memory store at once (the history, as Redis would hold it), but reach the
// hub only when the test calls deliver(): what a cluster node sees when another node's
// events are in Redis before their message arrives here.
class LateLog final : public log::EventLog, private log::LogListener {
public:
    LateLog() : inner_(store::Retention{1000, 100000000, 0}, 1) { inner_.set_listener(this); }
    void set_listener(log::LogListener* listener) override { hub_ = listener; }
    void append(log::NewEvent&& event, log::AppendDone done) override {
        inner_.append(std::move(event), std::move(done));
    }
    std::optional<std::uint64_t> position_of(std::string_view id) const override {
        return inner_.position_of(id);
    }
    std::uint64_t last_position() const override { return 0; }
    using log::EventLog::replay;
    log::Replay replay(std::uint64_t after, std::uint64_t upto, const log::TopicFilter& filter,
                       std::size_t max_bytes) const override {
        return inner_.replay(after, upto, filter, max_bytes);
    }
    void expire(std::int64_t now_ms) override { inner_.expire(now_ms); }
    using log::EventLog::topics;
    std::vector<log::TopicStats> topics(const log::TopicRange& range) const override {
        return inner_.topics(range);
    }
    log::HistoryFigures history() const override { return inner_.history(); }

    void deliver() {
        auto events = std::exchange(late_, {});
        hub_->settled(events);
    }
    // The events not delivered yet never will be: the hub is told it lost them.
    void lose() {
        if (!late_.empty()) {
            hub_->lost(late_.back()->position);
            late_.clear();
        }
    }

private:
    void settled(std::span<const log::EventPtr> events) override {
        late_.insert(late_.end(), events.begin(), events.end());
    }
    void lost(std::uint64_t /*position*/) override {}

    store::MemoryStore inner_;
    log::LogListener* hub_ = nullptr;
    std::vector<log::EventPtr> late_;
};

class LateHubTest : public ::testing::Test {
protected:
    LateHubTest() : hub_(log_, 2, [this](unsigned w) { scheduled_.push_back(w); }) {}

    std::string pub(Strings topics) {
        log::NewEvent ev;
        ev.topics = std::move(topics);
        ev.data = "x";
        auto res = hub_.publish(std::move(ev));
        EXPECT_EQ(res.error, PublishError::none);
        return res.event ? res.event->id : std::string{};
    }
    void drain() {
        for (unsigned w : std::exchange(scheduled_, {})) {
            hub_.shard(w).drain();
        }
    }

    LateLog log_;
    Workers scheduled_;
    Hub hub_;
};

TEST_F(LateHubTest, AClientFromANodeFurtherAheadGetsNothingTwice) {
    // Published elsewhere: in the history, not yet delivered here.
    const auto e1 = pub({"a"});
    const auto e2 = pub({"a"});
    const auto e3 = pub({"a"});

    // Its last event is e2: it has e1 and e2, and nothing of what this node has delivered
    // so far (nothing) is after that.
    Recorder from_e2, from_e1, fresh;
    auto r2 = hub_.shard(0).subscribe(from_e2, interest_of({"a"}), e2);
    EXPECT_EQ(r2.resume_header, e2);
    EXPECT_TRUE(r2.replay.events.empty()); // the replay stops where this node stands
    auto r1 = hub_.shard(1).subscribe(from_e1, interest_of({"a"}), e1);
    EXPECT_TRUE(r1.replay.events.empty());
    (void)hub_.shard(0).subscribe(fresh, interest_of({"a"}), std::nullopt);

    // The messages arrive: each stream gets exactly what it has not seen.
    log_.deliver();
    drain();
    EXPECT_EQ(from_e2.ids, Strings{e3});
    EXPECT_EQ(from_e1.ids, (Strings{e2, e3}));
    EXPECT_EQ(fresh.ids, (Strings{e1, e2, e3}));

    const auto e4 = pub({"a"});
    log_.deliver();
    drain();
    EXPECT_EQ(from_e2.ids, (Strings{e3, e4}));
    EXPECT_EQ(from_e1.ids, (Strings{e2, e3, e4}));
}

TEST_F(LateHubTest, ALossEndsTheStreamsThatMayHaveMissedIt) {
    Recorder before, patterned, other_worker;
    (void)hub_.shard(0).subscribe(before, interest_of({"a"}), std::nullopt);
    (void)hub_.shard(0).subscribe(patterned, interest_of({"*"}), std::nullopt);
    (void)hub_.shard(1).subscribe(other_worker, interest_of({"b"}), std::nullopt);
    const auto e1 = pub({"a"});
    log_.deliver();
    drain();
    ASSERT_EQ(before.ids, Strings{e1});

    // Two more events are gone before this node could deliver them.
    (void)pub({"a"});
    const std::uint64_t lost_upto = std::stoull(pub({"c"}));
    log_.lose();
    // Every worker is told; each ends its streams that stand before the loss.
    drain();
    EXPECT_TRUE(before.lost);
    EXPECT_TRUE(patterned.lost);
    EXPECT_TRUE(other_worker.lost);

    // A stream that arrives after the loss starts after it, and is not ended for it.
    Recorder after;
    (void)hub_.shard(0).subscribe(after, interest_of({"a"}), std::nullopt);
    EXPECT_GE(after.position(), lost_upto);
    const auto e2 = pub({"a"});
    log_.deliver();
    drain();
    EXPECT_FALSE(after.lost);
    EXPECT_EQ(after.ids, Strings{e2});
}

} // namespace
} // namespace herald::hub
