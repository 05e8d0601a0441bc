// Tests for the SQLite event log used directly: the test plays the hub (the store's
// listener records each batch the writer settles), covering group commit, when events
// become visible, reopening, publisher ids, retention on disk, replays from memory or from
// the database (bounded by `upto`), failed transactions, refusals at open, and close().
#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sqlite3.h>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include "base/clock.hpp"
#include "store/memory/memory_store.hpp"
#include "temp_dir.hpp"

namespace herald::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using log::AppendError;
using log::EventPtr;
using log::NewEvent;
using log::TopicFilter;

// How long the writer may take for anything a test waits on; far beyond what it needs.
constexpr auto kWait = 20s;
constexpr Retention kLarge{100000, 1000000000, 0};
// Every position, for replays that are not bounded by a hub's hand-off.
constexpr std::uint64_t kAll = ~std::uint64_t{0};

using testing::TempDir;

NewEvent make(std::vector<std::string> topics, std::string data = "x", std::string id = {}) {
    NewEvent ev;
    ev.topics = std::move(topics);
    ev.data = std::move(data);
    ev.id = std::move(id);
    return ev;
}

// The answer to one append, which the store gives through its `done` callback: before
// append() returns (a refusal) or later, on the writer thread, once the transaction ended.
class Pending {
public:
    void answer(log::AppendResult result) {
        {
            std::lock_guard lock(mu_);
            ++answers_;
            if (!result_) {
                result_ = std::move(result);
            }
        }
        cv_.notify_all();
    }
    // Whether the answer came, without waiting.
    [[nodiscard]] bool answered() const {
        std::lock_guard lock(mu_);
        return result_.has_value();
    }
    // How many times `done` ran (must be once).
    [[nodiscard]] int answers() const {
        std::lock_guard lock(mu_);
        return answers_;
    }
    // The answer, waiting for it for a bounded time; a failure (reported as `unavailable`)
    // if none comes.
    log::AppendResult wait() {
        std::unique_lock lock(mu_);
        waited_ = true;
        if (!cv_.wait_for(lock, kWait, [this] { return result_.has_value(); })) {
            ADD_FAILURE() << "no answer came to an append";
            return {nullptr, AppendError::unavailable, "no answer came"};
        }
        return *result_;
    }
    // The event, which must have been accepted.
    EventPtr event() {
        auto r = wait();
        EXPECT_EQ(r.error, AppendError::none) << r.reason;
        return r.event;
    }
    [[nodiscard]] bool waited() const {
        std::lock_guard lock(mu_);
        return waited_;
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::optional<log::AppendResult> result_;
    int answers_ = 0;
    bool waited_ = false;
};
using PendingPtr = std::shared_ptr<Pending>;

// The events of appends that must all have been accepted, in the order given.
std::vector<EventPtr> events_of(const std::vector<PendingPtr>& pending) {
    std::vector<EventPtr> out;
    for (const auto& p : pending) {
        out.push_back(p->event());
    }
    return out;
}

// One call of the listener: the events of one transaction, settled.
struct Commit {
    std::vector<EventPtr> events;
};

// A SqliteStore without a hub: the test's listener records each batch the writer settles.
// The listener can also be held, which keeps the writer inside settled() (the events of
// that batch committed, their appends not yet answered) so that appends pile up.
class Harness final : public log::LogListener {
public:
    explicit Harness(SqliteOptions options) : store_(std::move(options)) {
        store_.set_listener(this);
    }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;
    ~Harness() override {
        release();
        store_.close();
        // Every `done` runs once.
        for (const auto& p : pending_) {
            EXPECT_EQ(p->answers(), 1);
        }
    }

    SqliteStore* operator->() { return &store_; }
    SqliteStore& store() { return store_; }

    // Appends without waiting for the answer.
    PendingPtr append(NewEvent ev) {
        auto p = std::make_shared<Pending>();
        store_.append(std::move(ev), [p](log::AppendResult r) { p->answer(std::move(r)); });
        pending_.push_back(p);
        return p;
    }
    // Appends and waits for the answer.
    log::AppendResult append_now(NewEvent ev) { return append(std::move(ev))->wait(); }
    // Appends what the store must refuse, and expects the answer before append() returns
    // (as a duplicate id or a closed store are answered).
    log::AppendResult refused(NewEvent ev) {
        auto p = append(std::move(ev));
        EXPECT_TRUE(p->answered()) << "a refusal was not answered before append() returned";
        auto r = p->wait();
        EXPECT_NE(r.error, AppendError::none);
        return r;
    }

    // Appends, waits until the event is settled, and expects success.
    EventPtr add(std::vector<std::string> topics, std::string data = "x", std::string id = {}) {
        auto res = append_now(make(std::move(topics), std::move(data), std::move(id)));
        EXPECT_EQ(res.error, AppendError::none) << res.reason;
        EXPECT_NE(res.event, nullptr);
        return res.event;
    }

    // The next batch the listener got (taken); nothing (and a failure) if none comes in time.
    std::optional<Commit> next_commit() {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, kWait, [this] { return !commits_.empty(); })) {
            ADD_FAILURE() << "no commit came";
            return std::nullopt;
        }
        Commit c = std::move(commits_.front());
        commits_.pop_front();
        return c;
    }

    // Waits for the answer of everything appended so far (each must be accepted, unless
    // the test looked at the answer itself), then takes the batches the listener got.
    std::vector<Commit> settle_all() {
        for (const auto& p : pending_) {
            const bool checked = p->waited();
            auto r = p->wait();
            if (!checked) {
                EXPECT_EQ(r.error, AppendError::none) << r.reason;
            }
        }
        return ready();
    }

    // The batches the listener got so far (taken), without waiting.
    std::vector<Commit> ready() {
        std::lock_guard lock(mu_);
        std::vector<Commit> out(std::make_move_iterator(commits_.begin()),
                                std::make_move_iterator(commits_.end()));
        commits_.clear();
        return out;
    }

    // From now on settled() keeps the writer until step() or release().
    void hold() {
        std::lock_guard lock(mu_);
        hold_ = true;
        passed_ = entered_;
    }
    // True once the writer waits in settled() (and has not been let go).
    bool wait_held() {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, kWait, [this] { return entered_ > passed_; });
    }
    // Lets the writer out of the settled() it waits in; the next one holds it again.
    void step() {
        {
            std::lock_guard lock(mu_);
            passed_ = entered_;
        }
        cv_.notify_all();
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            hold_ = false;
        }
        cv_.notify_all();
    }

private:
    void settled(std::span<const EventPtr> events) override {
        std::unique_lock lock(mu_);
        commits_.push_back(Commit{std::vector<EventPtr>(events.begin(), events.end())});
        cv_.notify_all();
        if (hold_) {
            const std::uint64_t me = ++entered_;
            cv_.notify_all();
            cv_.wait(lock, [&] { return !hold_ || passed_ >= me; });
        }
    }
    void lost(std::uint64_t /*position*/) override { ADD_FAILURE() << "a local store lost events"; }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Commit> commits_;
    bool hold_ = false;
    std::uint64_t entered_ = 0; // holds begun
    std::uint64_t passed_ = 0;  // holds ended
    std::vector<PendingPtr> pending_;
    // Last: its writer, which calls settled(), stops before the members above go.
    SqliteStore store_;
};

TopicFilter exact(std::vector<std::string> topics) {
    TopicFilter f;
    f.exact = std::move(topics);
    return f;
}

TopicFilter prefixed(std::string prefix) {
    TopicFilter f;
    f.pattern = [prefix = std::move(prefix)](std::string_view t) {
        return t.substr(0, prefix.size()) == prefix;
    };
    return f;
}

TopicFilter everything() {
    TopicFilter f;
    f.pattern = [](std::string_view) { return true; };
    return f;
}

std::vector<std::uint64_t> positions(const std::vector<EventPtr>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& ev : events) {
        out.push_back(ev->position);
    }
    return out;
}

std::vector<EventPtr> events_of(const std::vector<Commit>& commits) {
    std::vector<EventPtr> out;
    for (const auto& c : commits) {
        out.insert(out.end(), c.events.begin(), c.events.end());
    }
    return out;
}

std::string bytes_of(const base::BufferRef& frame) {
    return frame.data() == nullptr ? std::string() : std::string(frame.data(), frame.size());
}

void expect_same(const log::Event& got, const log::Event& want) {
    EXPECT_EQ(got.position, want.position);
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.topics, want.topics);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.data, want.data);
    EXPECT_EQ(got.is_private, want.is_private);
    EXPECT_EQ(got.retry_ms, want.retry_ms);
    EXPECT_EQ(got.published_ms, want.published_ms);
    EXPECT_EQ(bytes_of(got.frame), bytes_of(want.frame));
    EXPECT_EQ(got.footprint(), want.footprint());
}

void expect_same(const std::vector<EventPtr>& got, const std::vector<EventPtr>& want) {
    ASSERT_EQ(positions(got), positions(want));
    for (std::size_t i = 0; i < got.size(); ++i) {
        SCOPED_TRACE("event " + std::to_string(i));
        expect_same(*got[i], *want[i]);
    }
}

// Each event one position after the one before it.
void expect_contiguous(const std::vector<EventPtr>& events) {
    for (std::size_t i = 1; i < events.size(); ++i) {
        EXPECT_EQ(events[i]->position, events[i - 1]->position + 1) << "at " << i;
    }
}

const log::TopicStats* find_topic(const std::vector<log::TopicStats>& all, std::string_view t) {
    auto it = std::find_if(all.begin(), all.end(), [t](const auto& s) { return s.topic == t; });
    return it == all.end() ? nullptr : &*it;
}

// Polls until `done` holds, for a bounded time.
bool eventually(const std::function<bool()>& done,
                std::chrono::steady_clock::duration bound = kWait) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// The footprint of an event the store numbers now (16-digit ids) with this data.
std::size_t footprint_of(std::string data) {
    auto ev = log::make_event(make({"a"}, std::move(data)), 1, std::string(16, '9'), 0);
    return ev->footprint();
}

// What opening throws; empty when it opens.
std::string open_error(SqliteOptions options) {
    try {
        SqliteStore store(std::move(options));
    } catch (const StoreError& e) {
        return e.what();
    }
    return {};
}

class SqliteStoreTest : public ::testing::Test {
protected:
    [[nodiscard]] std::string db_path() const { return (dir_.path() / "herald.db").string(); }

    [[nodiscard]] SqliteOptions options(Retention retention = kLarge,
                                        std::size_t cache_events = 1000) const {
        SqliteOptions o;
        o.path = db_path();
        o.sync_full = false;
        o.retention = retention;
        o.cache_events = cache_events;
        return o;
    }

    static std::unique_ptr<Harness> open(SqliteOptions o) {
        return std::make_unique<Harness>(std::move(o));
    }

    TempDir dir_;
};

// Behaviour that must not depend on how many events memory keeps: every test here runs
// with no cache (every replay reads the database), a tiny one and a big one.
class SqliteCacheTest : public SqliteStoreTest, public ::testing::WithParamInterface<std::size_t> {
protected:
    [[nodiscard]] SqliteOptions cached(Retention retention = kLarge) const {
        return options(retention, GetParam());
    }
};

INSTANTIATE_TEST_SUITE_P(Sqlite, SqliteCacheTest, ::testing::Values(0, 3, 1000),
                         [](const auto& param) { return "cache" + std::to_string(param.param); });

// ---- appending and settling ----

// An event is visible (position_of, replay, last_position) once its transaction has
// committed: already while the listener holds it, before its append is answered. Events
// still queued are not.
TEST_P(SqliteCacheTest, VisibleOnceCommittedBeforeTheListenerReturns) {
    auto h = open(cached());
    const std::uint64_t start = (*h)->last_position();
    EXPECT_FALSE((*h)->trouble().has_value());

    // The writer stays in the listener with the first event's batch.
    h->hold();
    auto first_append = h->append(make({"a"}, "first"));
    ASSERT_TRUE(h->wait_held());
    auto c1 = h->next_commit();
    ASSERT_TRUE(c1.has_value());
    ASSERT_EQ(c1->events.size(), 1U);
    const EventPtr first = c1->events[0];
    EXPECT_GT(first->position, start);
    EXPECT_EQ(first->id, std::to_string(first->position));
    // The listener has it before the publisher is answered...
    EXPECT_FALSE(first_append->answered());
    // ... and it is visible on every path already.
    EXPECT_EQ((*h)->last_position(), first->position);
    EXPECT_EQ((*h)->position_of(first->id), first->position);
    expect_same((*h)->replay(0, kAll, exact({"a"})).events, {first});
    expect_same((*h)->replay(start, first->position, everything()).events, {first});

    // Queued while the writer is held: not committed, so invisible on every path.
    std::vector<PendingPtr> more;
    for (int i = 0; i < 10; ++i) {
        more.push_back(h->append(make({i % 2 == 0 ? "a" : "b"}, "more" + std::to_string(i))));
    }
    auto queued_id = [&](int i) {
        return std::to_string(first->position + 1 + static_cast<std::uint64_t>(i));
    };
    EXPECT_EQ((*h)->last_position(), first->position);
    for (int i = 0; i < 10; ++i) {
        EXPECT_FALSE(more[static_cast<std::size_t>(i)]->answered());
        EXPECT_EQ((*h)->position_of(queued_id(i)), std::nullopt) << queued_id(i);
    }
    expect_same((*h)->replay(0, kAll, exact({"a", "b"})).events, {first});
    expect_same((*h)->replay(0, kAll, everything()).events, {first});
    EXPECT_TRUE((*h)->replay(first->position, kAll, exact({"a", "b"})).events.empty());
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"b"})).events.empty());

    // The writer goes on: the first is answered after the listener returned; the ten go
    // in one transaction, and the listener holds the writer with them.
    h->step();
    ASSERT_TRUE(h->wait_held());
    auto first_result = first_append->wait();
    ASSERT_EQ(first_result.error, AppendError::none);
    EXPECT_EQ(first_result.event, first);
    auto c2 = h->next_commit();
    ASSERT_TRUE(c2.has_value());
    ASSERT_EQ(c2->events.size(), more.size());
    expect_contiguous(c2->events);
    EXPECT_EQ(c2->events.front()->position, first->position + 1);
    for (std::size_t i = 0; i < more.size(); ++i) {
        EXPECT_FALSE(more[i]->answered()) << i; // the listener gets them first
        EXPECT_EQ(c2->events[i]->id, std::to_string(c2->events[i]->position));
    }
    // Committed, in the listener's hands: visible.
    EXPECT_EQ((*h)->last_position(), c2->events.back()->position);
    for (const auto& ev : c2->events) {
        EXPECT_EQ((*h)->position_of(ev->id), ev->position) << ev->id;
    }
    std::vector<EventPtr> all{first};
    all.insert(all.end(), c2->events.begin(), c2->events.end());
    auto r = (*h)->replay(0, kAll, exact({"a", "b"}));
    expect_same(r.events, all);
    EXPECT_FALSE(r.gap);
    expect_same((*h)->replay(first->position, kAll, everything()).events, c2->events);

    h->release();
    h->settle_all();
    // The answers are the events the listener got.
    expect_same(events_of(more), c2->events);
    for (std::size_t i = 0; i < more.size(); ++i) {
        EXPECT_EQ(more[i]->event(), c2->events[i]);
    }
    EXPECT_FALSE((*h)->trouble().has_value());
}

TEST_F(SqliteStoreTest, GroupCommitTakesEverythingQueuedMeanwhile) {
    auto h = open(options());
    h->hold();
    std::vector<PendingPtr> pending{h->append(make({"a"}, "0"))};
    ASSERT_TRUE(h->wait_held()); // the writer is inside the listener with the first commit
    for (int i = 1; i < 200; ++i) {
        pending.push_back(h->append(make({i % 3 == 0 ? "b" : "a"}, std::to_string(i))));
    }
    h->release();
    auto commits = h->settle_all();
    const auto appended = events_of(pending);
    ASSERT_EQ(commits.size(), 2U);
    EXPECT_EQ(commits[0].events.size(), 1U);
    EXPECT_EQ(commits[1].events.size(), 199U);
    expect_same(events_of(commits), appended);
    expect_contiguous(events_of(commits));
    expect_same((*h)->replay(0, kAll, exact({"a", "b"})).events, appended);
    EXPECT_EQ((*h)->last_position(), appended.back()->position);
}

// ---- replays stop at `upto` ----

// The events of `all` with after < position <= upto.
std::vector<EventPtr> between(const std::vector<EventPtr>& all, std::uint64_t after,
                              std::uint64_t upto) {
    std::vector<EventPtr> out;
    std::copy_if(all.begin(), all.end(), std::back_inserter(out),
                 [&](const EventPtr& ev) { return ev->position > after && ev->position <= upto; });
    return out;
}

// A replay never returns an event after `upto`, whether memory or the database answers
// (with no cache, a tiny one and a big one), and whatever the filter.
TEST_P(SqliteCacheTest, ReplayNeverGoesPastUpto) {
    auto h = open(cached());
    std::vector<EventPtr> all;
    for (int i = 0; i < 12; ++i) {
        all.push_back(h->add({i % 3 == 2 ? "b" : "a"}, std::to_string(i)));
    }
    std::vector<EventPtr> on_a;
    std::copy_if(all.begin(), all.end(), std::back_inserter(on_a),
                 [](const EventPtr& ev) { return ev->topics.front() == "a"; });
    std::vector<std::uint64_t> uptos{0, all.front()->position - 1, kAll};
    for (const auto& ev : all) {
        uptos.push_back(ev->position);
    }
    for (const std::uint64_t after : {std::uint64_t{0}, all[3]->position, all[9]->position}) {
        for (const std::uint64_t upto : uptos) {
            SCOPED_TRACE("after " + std::to_string(after) + " upto " + std::to_string(upto));
            auto r = (*h)->replay(after, upto, exact({"a", "b"}));
            EXPECT_FALSE(r.gap);
            expect_same(r.events, between(all, after, upto));
            expect_same((*h)->replay(after, upto, everything()).events, between(all, after, upto));
            expect_same((*h)->replay(after, upto, exact({"a"})).events, between(on_a, after, upto));
        }
    }
}

// Both paths explicitly: memory holds the newest three events of "a", the database all.
TEST_F(SqliteStoreTest, ReplayUptoFromMemoryAndFromDisk) {
    auto h = open(options(kLarge, 3));
    std::vector<EventPtr> a;
    for (int i = 0; i < 10; ++i) {
        a.push_back(h->add({"a"}, std::to_string(i)));
    }
    const auto mem = (*h)->memory_replays();
    const auto disk = (*h)->disk_replays();
    // From memory: a resume from a[6] with the hand-off at a[8].
    expect_same((*h)->replay(a[6]->position, a[8]->position, exact({"a"})).events, {a[7], a[8]});
    EXPECT_TRUE((*h)->replay(a[6]->position, a[6]->position, exact({"a"})).events.empty());
    EXPECT_EQ((*h)->memory_replays(), mem + 2);
    EXPECT_EQ((*h)->disk_replays(), disk);
    // From the database: a resume from the start, cut at a[4], and at a[8].
    expect_same((*h)->replay(0, a[4]->position, exact({"a"})).events,
                {a[0], a[1], a[2], a[3], a[4]});
    expect_same((*h)->replay(a[1]->position, a[8]->position, everything()).events,
                std::vector<EventPtr>(a.begin() + 2, a.begin() + 9));
    EXPECT_TRUE((*h)->replay(a[1]->position, a[0]->position, exact({"a"})).events.empty());
    EXPECT_EQ((*h)->memory_replays(), mem + 2);
    EXPECT_EQ((*h)->disk_replays(), disk + 3);

    // Events committed after `upto` (the listener holds the writer with them) stay out too.
    h->ready();
    h->hold();
    auto later = h->append(make({"a"}, "later"));
    ASSERT_TRUE(h->wait_held());
    const EventPtr committed = h->next_commit()->events.at(0);
    EXPECT_EQ((*h)->last_position(), committed->position);
    expect_same((*h)->replay(a[6]->position, a[9]->position, exact({"a"})).events,
                {a[7], a[8], a[9]});
    expect_same((*h)->replay(0, a[9]->position, exact({"a"})).events, a);
    auto with_it = a;
    with_it.push_back(committed);
    expect_same((*h)->replay(0, kAll, exact({"a"})).events, with_it);
    h->release();
    EXPECT_EQ(later->event(), committed);
}

// ---- failed transactions ----

// Runs SQL on the store's file through a connection of the test's own (as an operator
// could): here, to make the writer's inserts fail.
void run_on_disk(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
}

constexpr const char* kPoison =
    "CREATE TRIGGER poison BEFORE INSERT ON history WHEN CAST(NEW.data AS TEXT) = 'poison' "
    "BEGIN SELECT RAISE(ABORT, 'the test refuses this row'); END";

// An event whose transaction fails is never visible (nor any other event of that
// transaction), never reaches the listener, and its append is answered `unavailable` with
// the reason; the store recovers with the next transaction that commits.
TEST_P(SqliteCacheTest, EventsOfAFailedTransactionAreNeverVisible) {
    auto h = open(cached());
    auto before = h->add({"a"}, "before");
    h->settle_all();
    run_on_disk(db_path(), kPoison);

    // Alone in its transaction.
    auto alone = h->append_now(make({"a"}, "poison", "bad-1"));
    EXPECT_EQ(alone.error, AppendError::unavailable);
    EXPECT_EQ(alone.event, nullptr);
    EXPECT_NE(alone.reason.find("the test refuses this row"), std::string::npos) << alone.reason;
    EXPECT_EQ((*h)->trouble(), alone.reason);

    // With a good event in the same transaction: the good one fails with it.
    h->hold();
    auto blocker = h->append(make({"c"}, "blocker"));
    ASSERT_TRUE(h->wait_held());
    auto good = h->append(make({"a"}, "good", "good-1"));
    auto bad = h->append(make({"b"}, "poison", "bad-2"));
    h->release();
    ASSERT_EQ(blocker->wait().error, AppendError::none);
    for (const auto& p : {good, bad}) {
        auto r = p->wait();
        EXPECT_EQ(r.error, AppendError::unavailable);
        EXPECT_EQ(r.event, nullptr);
        EXPECT_FALSE(r.reason.empty());
    }
    const EventPtr blocked = blocker->event();
    auto check_invisible = [&](std::vector<std::string> ids) {
        for (const auto& id : ids) {
            EXPECT_EQ((*h)->position_of(id), std::nullopt) << id;
        }
        auto r = (*h)->replay(0, kAll, exact({"a", "b", "c"}));
        EXPECT_FALSE(r.gap);
        auto got = r.events;
        for (const auto& ev : got) {
            EXPECT_NE(ev->data, "poison");
            EXPECT_NE(ev->data, "good");
        }
        return got;
    };
    expect_same(check_invisible({"bad-1", "good-1", "bad-2"}), {before, blocked});
    EXPECT_EQ((*h)->last_position(), blocked->position);
    EXPECT_EQ(find_topic((*h)->topics(), "b"), nullptr);
    // The listener got only the events that committed.
    expect_same(events_of(h->ready()), {blocked});
    EXPECT_TRUE((*h)->trouble().has_value());
    EXPECT_GE((*h)->figures()->failed_transactions, 2U);

    // The ids of failed events are free again; the store recovers.
    run_on_disk(db_path(), "DROP TRIGGER poison");
    auto after = h->add({"a"}, "after", "good-1");
    EXPECT_GT(after->position, blocked->position);
    EXPECT_FALSE((*h)->trouble().has_value());
    expect_same(*check_invisible({"bad-1", "bad-2"}).back(), *after);
    expect_same((*h)->replay(0, kAll, exact({"a", "b", "c"})).events, {before, blocked, after});

    // And after a restart.
    h.reset();
    h = open(cached());
    expect_same((*h)->replay(0, kAll, exact({"a", "b", "c"})).events, {before, blocked, after});
    EXPECT_EQ((*h)->position_of("bad-1"), std::nullopt);
    EXPECT_EQ((*h)->position_of("bad-2"), std::nullopt);
}
TEST_F(SqliteStoreTest, QuickAppendsShareCommitsInPositionOrder) {
    auto h = open(options());
    std::vector<PendingPtr> pending;
    for (int i = 0; i < 200; ++i) {
        pending.push_back(h->append(make({"t" + std::to_string(i % 4)}, std::to_string(i))));
    }
    auto commits = h->settle_all();
    const auto appended = events_of(pending);
    EXPECT_LT(commits.size(), appended.size());
    for (const auto& c : commits) {
        EXPECT_FALSE(c.events.empty());
        expect_contiguous(c.events);
    }
    // One after the other, without holes or repeats: exactly what was appended.
    const auto all = events_of(commits);
    expect_same(all, appended);
    expect_contiguous(all);
    expect_same((*h)->replay(0, kAll, prefixed("t")).events, appended);
}

TEST_F(SqliteStoreTest, AnEventNamingATopicTwiceCommits) {
    auto h = open(options(Retention{2, 1000000000, 0}));
    auto first = h->add({"a"});
    auto twice = h->add({"a", "b", "a"});
    auto commits = h->settle_all();
    ASSERT_FALSE(commits.empty());
    EXPECT_EQ(twice->topics, (std::vector<std::string>{"a", "b"}));
    auto topics = (*h)->topics();
    ASSERT_NE(find_topic(topics, "a"), nullptr);
    EXPECT_EQ(find_topic(topics, "a")->retained, 2U);
    EXPECT_EQ(find_topic(topics, "a")->bytes, first->footprint() + twice->footprint());
    auto r = (*h)->replay(0, kAll, exact({"a"}));
    expect_same(r.events, {first, twice});
    EXPECT_FALSE(r.gap);
}

// ---- reopening ----

// Events with every field set in some way, topics with separators and a NUL in them.
std::vector<NewEvent> varied_events() {
    std::vector<NewEvent> out;
    out.push_back(make({"a"}, "plain"));
    NewEvent full = make({"a", "b", "c:3"}, "line1\nline2\n\u00e9\u2713", "pub-1");
    full.type = "update";
    full.is_private = true;
    full.retry_ms = 2500;
    out.push_back(std::move(full));
    out.push_back(make({"b"}, ""));
    NewEvent retry0 = make({std::string("n\0l", 3), "12:x"}, "{\"k\":1}");
    retry0.retry_ms = 0;
    retry0.type = "t";
    out.push_back(std::move(retry0));
    out.push_back(make({"c:3"}, std::string(5000, 'z'), "pub-2"));
    for (int i = 0; i < 6; ++i) {
        out.push_back(make({i % 2 == 0 ? "a" : "b"}, "n" + std::to_string(i)));
    }
    return out;
}

std::vector<std::string> varied_topics() {
    return {"a", "b", "c:3", std::string("n\0l", 3), "12:x"};
}

TEST_P(SqliteCacheTest, ReopenKeepsEveryEventExactly) {
    std::vector<EventPtr> published;
    std::uint64_t last = 0;
    {
        auto h = open(cached());
        for (auto& ev : varied_events()) {
            auto res = h->append_now(std::move(ev));
            ASSERT_EQ(res.error, AppendError::none);
            published.push_back(res.event);
        }
        h->settle_all();
        last = (*h)->last_position();
        ASSERT_EQ(last, published.back()->position);
    }

    auto h = open(cached());
    EXPECT_GE((*h)->last_position(), last);
    auto all = (*h)->replay(0, kAll, everything());
    EXPECT_FALSE(all.gap);
    expect_same(all.events, published);
    expect_same((*h)->replay(0, kAll, exact(varied_topics())).events, published);
    for (const auto& ev : published) {
        EXPECT_EQ((*h)->position_of(ev->id), ev->position) << ev->id;
    }
    // Per topic, and from a position in the middle.
    std::vector<EventPtr> on_b;
    std::copy_if(
        published.begin(), published.end(), std::back_inserter(on_b), [](const EventPtr& ev) {
            return std::find(ev->topics.begin(), ev->topics.end(), "b") != ev->topics.end();
        });
    expect_same((*h)->replay(0, kAll, exact({"b"})).events, on_b);
    expect_same((*h)->replay(published[4]->position, kAll, everything()).events,
                std::vector<EventPtr>(published.begin() + 5, published.end()));

    auto fresh = h->add({"a"}, "after");
    ASSERT_NE(fresh, nullptr);
    EXPECT_GT(fresh->position, last);
    EXPECT_EQ(fresh->id, std::to_string(fresh->position));
    h->settle_all();
    EXPECT_EQ((*h)->last_position(), fresh->position);
    EXPECT_EQ((*h)->position_of(fresh->id), fresh->position);
}

TEST_P(SqliteCacheTest, ReopenKeepsTheTopicsFigures) {
    std::vector<log::TopicStats> before;
    {
        auto h = open(cached(Retention{3, 1000000000, 0}));
        for (auto& ev : varied_events()) {
            ASSERT_EQ(h->append_now(std::move(ev)).error, AppendError::none);
        }
        h->settle_all();
        before = (*h)->topics();
    }
    auto h = open(cached(Retention{3, 1000000000, 0}));
    auto after = (*h)->topics();
    ASSERT_EQ(after.size(), before.size());
    for (const auto& t : before) {
        SCOPED_TRACE(t.topic);
        const auto* again = find_topic(after, t.topic);
        ASSERT_NE(again, nullptr);
        EXPECT_EQ(again->retained, t.retained);
        EXPECT_EQ(again->bytes, t.bytes);
        EXPECT_EQ(again->last_id, t.last_id);
    }
}

// ---- publisher ids ----

TEST_P(SqliteCacheTest, DuplicatePublisherIdIsRefusedPendingSettledAndAfterReopen) {
    std::uint64_t dup_position = 0;
    std::string generated;
    {
        auto h = open(cached());
        // The writer is held in the listener with a first batch, so that "dup" stays queued.
        h->hold();
        auto blocker = h->append(make({"c"}));
        ASSERT_TRUE(h->wait_held());
        auto first = h->append(make({"a"}, "x", "dup"));
        // Queued, not yet committed.
        auto again = h->refused(make({"b"}, "y", "dup"));
        EXPECT_EQ(again.error, AppendError::duplicate_id);
        EXPECT_EQ(again.event, nullptr);
        // Committed, in the listener's hands, not yet answered.
        h->step();
        ASSERT_TRUE(h->wait_held());
        EXPECT_FALSE(first->answered());
        EXPECT_EQ(h->refused(make({"b"}, "y", "dup")).error, AppendError::duplicate_id);
        h->release();
        dup_position = first->event()->position;
        // Answered.
        EXPECT_EQ(h->refused(make({"b"}, "y", "dup")).error, AppendError::duplicate_id);
        // A generated id is taken just the same.
        auto gen = h->add({"a"});
        ASSERT_NE(gen, nullptr);
        generated = gen->id;
        EXPECT_EQ(gen->position, dup_position + 1); // the refusals took no position
        h->settle_all();
        EXPECT_EQ(h->refused(make({"b"}, "y", generated)).error, AppendError::duplicate_id);
        EXPECT_EQ(find_topic((*h)->topics(), "b"), nullptr);
        EXPECT_EQ((*h)->position_of("dup"), dup_position);
        EXPECT_EQ(blocker->wait().error, AppendError::none);
    }
    auto h = open(cached());
    EXPECT_EQ(h->refused(make({"b"}, "y", "dup")).error, AppendError::duplicate_id);
    EXPECT_EQ(h->refused(make({"b"}, "y", generated)).error, AppendError::duplicate_id);
    EXPECT_EQ((*h)->position_of("dup"), dup_position);
    auto other = h->add({"b"}, "y", "other");
    ASSERT_NE(other, nullptr);
    EXPECT_EQ(other->id, "other");
    h->settle_all();
    EXPECT_EQ((*h)->position_of("other"), other->position);
}

TEST_P(SqliteCacheTest, IdOfAnEventRetentionDroppedIsFreeAgain) {
    auto h = open(cached(Retention{2, 1000000000, 0}));
    auto old = h->add({"a"}, "x", "dup");
    h->add({"a"});
    h->add({"a"});
    h->settle_all();
    EXPECT_EQ((*h)->position_of("dup"), std::nullopt);
    auto again = h->add({"b"}, "y", "dup");
    ASSERT_NE(again, nullptr);
    EXPECT_GT(again->position, old->position);
    h->settle_all();
    EXPECT_EQ((*h)->position_of("dup"), again->position);
}

TEST_F(SqliteStoreTest, GeneratedIdSkipsPublisherIdsOfFuturePositions) {
    auto h = open(options());
    auto p = h->add({"a"});
    ASSERT_NE(p, nullptr);
    const std::uint64_t base = p->position;
    auto taken1 = h->add({"a"}, "x", std::to_string(base + 2));
    auto taken2 = h->add({"a"}, "x", std::to_string(base + 3));
    EXPECT_EQ(taken1->position, base + 1);
    EXPECT_EQ(taken2->position, base + 2);
    auto gen = h->add({"a"});
    EXPECT_EQ(gen->position, base + 4);
    EXPECT_EQ(gen->id, std::to_string(base + 4));
    auto next = h->add({"a"});
    EXPECT_EQ(next->position, base + 5);
    EXPECT_EQ(next->id, std::to_string(base + 5));
    h->settle_all();
    EXPECT_EQ((*h)->last_position(), base + 5);
    EXPECT_EQ((*h)->position_of(std::to_string(base + 2)), base + 1);
    EXPECT_EQ((*h)->position_of(std::to_string(base + 3)), base + 2);
    EXPECT_EQ((*h)->position_of(std::to_string(base + 4)), base + 4);
}

TEST_F(SqliteStoreTest, PendingPublisherIdOfTheNextPositionIsSkipped) {
    // The publisher's id is still queued (not committed) when the next position comes up:
    // the writer is held in the listener with `p`.
    auto h = open(options());
    h->hold();
    auto p_append = h->append(make({"a"}));
    ASSERT_TRUE(h->wait_held());
    const EventPtr p = h->next_commit()->events.at(0);
    auto taken_append = h->append(make({"a"}, "x", std::to_string(p->position + 2)));
    auto gen_append = h->append(make({"a"}));
    EXPECT_FALSE(taken_append->answered());
    h->release();
    auto commits = h->settle_all();
    const EventPtr taken = taken_append->event();
    const EventPtr gen = gen_append->event();
    EXPECT_EQ(p_append->event(), p);
    EXPECT_EQ(taken->position, p->position + 1);
    EXPECT_EQ(gen->position, p->position + 3);
    EXPECT_EQ(gen->id, std::to_string(p->position + 3));
    expect_same(events_of(commits), {taken, gen});
}

TEST_F(SqliteStoreTest, FarAheadPublisherIdMovesPositionsPastItOnReopen) {
    std::uint64_t reserved = 0;
    std::uint64_t reserved_at = 0;
    {
        auto h = open(options());
        auto p = h->add({"a"});
        // About three hours ahead of the clock, which the positions follow.
        reserved = p->position + 10'000'000'000ULL;
        auto far = h->add({"a"}, "x", std::to_string(reserved));
        reserved_at = far->position;
        // Within this run, positions go on one by one.
        auto gen = h->add({"a"});
        EXPECT_EQ(gen->position, far->position + 1);
        h->settle_all();
    }
    auto h = open(options());
    EXPECT_EQ((*h)->last_position(), reserved);
    EXPECT_EQ((*h)->position_of(std::to_string(reserved)), reserved_at);
    auto next = h->add({"a"});
    ASSERT_NE(next, nullptr);
    EXPECT_EQ(next->position, reserved + 1);
    EXPECT_EQ(next->id, std::to_string(reserved + 1));
    h->settle_all();

    // And after another restart.
    h.reset();
    h = open(options());
    auto later = h->add({"a"});
    EXPECT_EQ(later->position, reserved + 2);
    h->settle_all();
}

TEST_F(SqliteStoreTest, HugeDecimalPublisherIdDoesNotMovePositions) {
    {
        auto h = open(options());
        h->add({"a"}, "x", std::to_string(std::uint64_t{1} << 62));
        h->add({"a"}, "x", "18446744073709551615");
        h->add({"a"}, "x", "99999999999999999999999");
        h->settle_all();
    }
    auto h = open(options());
    auto next = h->add({"a"});
    ASSERT_NE(next, nullptr);
    // Positions stay near the clock in microseconds.
    const auto now = static_cast<std::uint64_t>(base::unix_us());
    EXPECT_LT(next->position, now + 60'000'000ULL);
    h->settle_all();
}

// ---- retention on disk ----

TEST_P(SqliteCacheTest, MaxEventsOnDisk) {
    const Retention retention{3, 1000000000, 0};
    std::vector<EventPtr> a;
    std::vector<EventPtr> b;
    auto check = [&](Harness& h) {
        auto ra = h->replay(0, kAll, exact({"a"}));
        expect_same(ra.events, {a[2], a[3], a[4]});
        EXPECT_TRUE(ra.gap);
        // Dropped up to a[1]: a resume from there misses nothing.
        auto from1 = h->replay(a[1]->position, kAll, exact({"a"}));
        expect_same(from1.events, {a[2], a[3], a[4]});
        EXPECT_FALSE(from1.gap);
        EXPECT_TRUE(h->replay(a[0]->position, kAll, exact({"a"})).gap);
        auto rb = h->replay(0, kAll, exact({"b"}));
        expect_same(rb.events, b);
        EXPECT_FALSE(rb.gap);
        EXPECT_TRUE(h->replay(0, kAll, exact({"a", "b"})).gap);
        EXPECT_EQ(h->position_of(a[0]->id), std::nullopt);
        EXPECT_EQ(h->position_of(a[1]->id), std::nullopt);
        EXPECT_EQ(h->position_of(a[2]->id), a[2]->position);
        auto topics = h->topics();
        ASSERT_EQ(topics.size(), 2U);
        ASSERT_NE(find_topic(topics, "a"), nullptr);
        EXPECT_EQ(find_topic(topics, "a")->retained, 3U);
        EXPECT_EQ(find_topic(topics, "a")->bytes,
                  a[2]->footprint() + a[3]->footprint() + a[4]->footprint());
        EXPECT_EQ(find_topic(topics, "a")->last_id, a[4]->id);
        ASSERT_NE(find_topic(topics, "b"), nullptr);
        EXPECT_EQ(find_topic(topics, "b")->retained, 2U);
        EXPECT_EQ(find_topic(topics, "b")->last_id, b[1]->id);
    };
    {
        auto h = open(cached(retention));
        for (int i = 0; i < 5; ++i) {
            a.push_back(h->add({"a"}, "a" + std::to_string(i)));
        }
        b.push_back(h->add({"b"}));
        b.push_back(h->add({"b"}));
        h->settle_all();
        SCOPED_TRACE("first run");
        check(*h);
    }
    auto h = open(cached(retention));
    SCOPED_TRACE("after reopening");
    check(*h);
}

TEST_P(SqliteCacheTest, MaxBytesOnDisk) {
    const std::size_t fp = footprint_of("0123456789");
    const Retention retention{10000, 3 * fp, 0};
    std::vector<EventPtr> a;
    EventPtr b;
    EventPtr huge;
    auto check = [&](Harness& h) {
        auto ra = h->replay(0, kAll, exact({"a"}));
        expect_same(ra.events, {a[2], a[3], a[4]});
        EXPECT_TRUE(ra.gap);
        EXPECT_EQ(h->position_of(a[1]->id), std::nullopt);
        EXPECT_EQ(h->position_of(a[2]->id), a[2]->position);
        // Bigger than the bound by itself: numbered, never kept.
        auto rc = h->replay(0, kAll, exact({"c"}));
        EXPECT_TRUE(rc.events.empty());
        EXPECT_TRUE(rc.gap);
        EXPECT_EQ(h->position_of(huge->id), std::nullopt);
        // "c" retains nothing: forgotten (its loss stays known to replays, above).
        auto topics = h->topics();
        ASSERT_EQ(topics.size(), 2U);
        EXPECT_EQ(find_topic(topics, "a")->bytes, 3 * fp);
        EXPECT_EQ(find_topic(topics, "a")->retained, 3U);
        EXPECT_EQ(find_topic(topics, "b")->bytes, fp);
        EXPECT_EQ(find_topic(topics, "b")->retained, 1U);
        EXPECT_EQ(find_topic(topics, "c"), nullptr);
        EXPECT_EQ(h->history().topics, 2U);
        EXPECT_EQ(h->history().bytes, 4 * fp);
    };
    {
        auto h = open(cached(retention));
        for (int i = 0; i < 5; ++i) {
            a.push_back(h->add({"a"}, "0123456789"));
            ASSERT_EQ(a.back()->footprint(), fp);
        }
        b = h->add({"b"}, "0123456789");
        huge = h->add({"c"}, std::string(4 * fp, 'h'));
        h->settle_all();
        SCOPED_TRACE("first run");
        check(*h);
    }
    auto h = open(cached(retention));
    SCOPED_TRACE("after reopening");
    check(*h);
}

TEST_P(SqliteCacheTest, MaxAgeOnDiskAfterExpire) {
    const Retention retention{10000, 1000000000, 60000};
    EventPtr old_a;
    EventPtr old_b;
    EventPtr fresh;
    auto check = [&](Harness& h) {
        auto r = h->replay(0, kAll, exact({"a", "b"}));
        expect_same(r.events, {fresh});
        EXPECT_TRUE(r.gap);
        auto since = h->replay(old_b->position, kAll, exact({"a", "b"}));
        expect_same(since.events, {fresh});
        EXPECT_FALSE(since.gap);
        EXPECT_EQ(h->position_of(old_a->id), std::nullopt);
        EXPECT_EQ(h->position_of(old_b->id), std::nullopt);
        EXPECT_EQ(h->position_of(fresh->id), fresh->position);
        auto topics = h->topics();
        ASSERT_EQ(topics.size(), 1U);
        EXPECT_EQ(topics[0].topic, "a");
        EXPECT_EQ(topics[0].retained, 1U);
        EXPECT_EQ(topics[0].bytes, fresh->footprint());
        EXPECT_EQ(topics[0].last_id, fresh->id);
    };
    {
        auto h = open(cached(retention));
        old_a = h->add({"a"}, "old");
        old_b = h->add({"b"}, "old");
        h->settle_all();
        std::this_thread::sleep_for(5ms);
        fresh = h->add({"a"}, "fresh");
        h->settle_all();
        ASSERT_LT(old_b->published_ms, fresh->published_ms);

        // The cutoff falls between the old events and the fresh one.
        (*h)->expire(fresh->published_ms + 60000);
        ASSERT_TRUE(eventually([&] {
            auto topics = (*h)->topics();
            const auto* a = find_topic(topics, "a");
            return topics.size() == 1 && a != nullptr && a->retained == 1;
        })) << "the writer did not apply the age bound";
        SCOPED_TRACE("first run");
        check(*h);
    }
    auto h = open(cached(retention));
    SCOPED_TRACE("after reopening");
    check(*h);
    // The topic age emptied comes back with the next event.
    auto again = h->add({"b"}, "again");
    h->settle_all();
    ASSERT_NE(find_topic((*h)->topics(), "b"), nullptr);
    EXPECT_EQ(find_topic((*h)->topics(), "b")->retained, 1U);
    expect_same((*h)->replay(fresh->position, kAll, exact({"b"})).events, {again});
}

TEST_P(SqliteCacheTest, GapOfATopicAgeEmptiedSurvivesReopen) {
    // Age empties and erases "b"; its loss (old_b, after old_a) must still make a replay
    // from old_a (or from the start) incomplete, before and after a restart, however the
    // replay is served. The database keeps that loss (`erased_dropped_upto`); memory, which
    // answers first, must learn it when the store opens.
    const Retention retention{10000, 1000000000, 60000};
    EventPtr old_a;
    EventPtr old_b;
    EventPtr fresh;
    {
        auto h = open(cached(retention));
        old_a = h->add({"a"}, "old");
        old_b = h->add({"b"}, "old");
        h->settle_all();
        std::this_thread::sleep_for(5ms);
        fresh = h->add({"a"}, "fresh");
        h->settle_all();
        ASSERT_LT(old_b->published_ms, fresh->published_ms);
        (*h)->expire(fresh->published_ms + 60000);
        ASSERT_TRUE(eventually([&] { return find_topic((*h)->topics(), "b") == nullptr; }));
        EXPECT_TRUE((*h)->replay(old_a->position, kAll, exact({"a", "b"})).gap);
        EXPECT_TRUE((*h)->replay(old_a->position, kAll, exact({"b"})).gap);
        EXPECT_TRUE((*h)->replay(0, kAll, exact({"b"})).gap);
    }
    auto h = open(cached(retention));
    EXPECT_TRUE((*h)->replay(old_a->position, kAll, exact({"a", "b"})).gap);
    EXPECT_TRUE((*h)->replay(old_a->position, kAll, exact({"b"})).gap);
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"b"})).gap);
    EXPECT_FALSE((*h)->replay(old_b->position, kAll, exact({"a", "b"})).gap);
}

TEST_F(SqliteStoreTest, ExpireWithoutAnAgeBoundKeepsEverything) {
    auto h = open(options());
    auto e1 = h->add({"a"});
    auto e2 = h->add({"b"});
    h->settle_all();
    (*h)->expire(base::unix_ms() + 1000LL * 3600 * 24 * 365);
    // Another transaction after the expiry, so that the writer has passed it.
    auto e3 = h->add({"c"});
    h->settle_all();
    expect_same((*h)->replay(0, kAll, exact({"a", "b", "c"})).events, {e1, e2, e3});
    EXPECT_EQ((*h)->topics().size(), 3U);
}

TEST_F(SqliteStoreTest, LoweredMaxEventsOnReopenTrims) {
    std::vector<EventPtr> a;
    {
        auto h = open(options(Retention{10, 1000000000, 0}));
        for (int i = 0; i < 10; ++i) {
            a.push_back(h->add({"a"}, std::to_string(i)));
        }
        h->settle_all();
        ASSERT_EQ(find_topic((*h)->topics(), "a")->retained, 10U);
    }
    auto h = open(options(Retention{4, 1000000000, 0}));
    auto b = h->add({"b"});
    h->settle_all();
    const std::vector<EventPtr> kept(a.end() - 4, a.end());
    auto topics = (*h)->topics();
    ASSERT_NE(find_topic(topics, "a"), nullptr);
    EXPECT_EQ(find_topic(topics, "a")->retained, 4U);
    std::size_t bytes = 0;
    for (const auto& ev : kept) {
        bytes += ev->footprint();
    }
    EXPECT_EQ(find_topic(topics, "a")->bytes, bytes);
    EXPECT_EQ(find_topic(topics, "a")->last_id, a.back()->id);
    auto r = (*h)->replay(0, kAll, exact({"a"}));
    expect_same(r.events, kept);
    EXPECT_TRUE(r.gap);
    EXPECT_FALSE((*h)->replay(a[5]->position, kAll, exact({"a"})).gap);
    EXPECT_EQ((*h)->position_of(a[5]->id), std::nullopt);
    EXPECT_EQ((*h)->position_of(a[6]->id), a[6]->position);

    // And on the file: a third run sees the trimmed history.
    h.reset();
    h = open(options(Retention{4, 1000000000, 0}));
    expect_same((*h)->replay(0, kAll, exact({"a"})).events, kept);
    expect_same((*h)->replay(0, kAll, exact({"b"})).events, {b});
}

TEST_F(SqliteStoreTest, LoweredMaxEventsOnReopenTrimsWithoutAPublish) {
    std::vector<EventPtr> a;
    {
        auto h = open(options(Retention{10, 1000000000, 0}));
        for (int i = 0; i < 10; ++i) {
            a.push_back(h->add({"a"}, std::to_string(i)));
        }
        h->settle_all();
    }
    // Nothing is published after the restart: the lower cap still applies, in the figures
    // and in replays (a resume from the start must not get ten events of a topic capped at
    // four), without waiting for a publish or an expiry tick to wake the writer.
    auto h = open(options(Retention{4, 1000000000, 0}));
    std::size_t retained = 0;
    EXPECT_TRUE(eventually(
        [&] {
            const auto topics = (*h)->topics();
            const auto* t = find_topic(topics, "a");
            retained = t != nullptr ? t->retained : 0;
            return retained == 4;
        },
        5s))
        << "topics() still reports " << retained << " events for a cap of 4";
    auto r = (*h)->replay(0, kAll, exact({"a"}));
    EXPECT_EQ(r.events.size(), 4U);
    EXPECT_TRUE(r.gap);
}

TEST_P(SqliteCacheTest, TopicsFigures) {
    auto h = open(cached(Retention{2, 1000000000, 0}));
    EXPECT_TRUE((*h)->topics().empty());
    h->add({"a"}, "one");
    auto ab = h->add({"a", "b"}, "two");
    auto a3 = h->add({"a"}, "three", "custom");
    h->settle_all();
    auto topics = (*h)->topics();
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
}

TEST_P(SqliteCacheTest, MaxEventsZeroKeepsNothingButTheFigures) {
    const Retention retention{0, 1000000000, 0};
    EventPtr e1;
    EventPtr e2;
    {
        auto h = open(cached(retention));
        e1 = h->add({"a"}, "x", "pub");
        e2 = h->add({"a", "b"});
        EXPECT_EQ(e2->position, e1->position + 1);
        EXPECT_EQ(e2->id, std::to_string(e2->position));
        h->settle_all();
        EXPECT_EQ((*h)->last_position(), e2->position);
        EXPECT_EQ((*h)->position_of("pub"), std::nullopt);
        EXPECT_EQ((*h)->position_of(e2->id), std::nullopt);
        auto r = (*h)->replay(0, kAll, exact({"a", "b"}));
        EXPECT_TRUE(r.events.empty());
        EXPECT_TRUE(r.gap);
        // Nothing retained, so a publisher id may come again.
        auto again = h->add({"a"}, "x", "pub");
        ASSERT_NE(again, nullptr);
        h->settle_all();
        // A topic that retains nothing costs nothing: no row, no entry.
        EXPECT_TRUE((*h)->topics().empty());
        EXPECT_EQ((*h)->history().topics, 0U);
    }
    auto h = open(cached(retention));
    EXPECT_GE((*h)->last_position(), e2->position + 1);
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"a", "b"})).events.empty());
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"a", "b"})).gap);
    EXPECT_TRUE((*h)->topics().empty());
}

// ---- forgetting topics, hub-wide bounds on disk ----

// A count read straight from the file, as another process would see it.
std::int64_t count_on_disk(const std::string& path, const char* query) {
    sqlite3* db = nullptr;
    std::int64_t n = -1;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, query, -1, &st, nullptr) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            n = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

std::vector<std::string> names(const std::vector<log::TopicStats>& all) {
    std::vector<std::string> out;
    for (const auto& t : all) {
        out.push_back(t.topic);
    }
    return out;
}

TEST_P(SqliteCacheTest, ForgottenTopicsLeaveNoRow) {
    Retention retention = kLarge;
    retention.max_events = 0;
    {
        auto h = open(cached(retention));
        for (int i = 0; i < 2000; ++i) {
            h->add({"t" + std::to_string(i)});
        }
        h->settle_all();
        EXPECT_TRUE((*h)->topics().empty());
        EXPECT_EQ((*h)->history().topics, 0U);
    }
    EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM topics"), 0);
    EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM history"), 0);
}

TEST_P(SqliteCacheTest, MaxTopicsOnDiskAndAfterRestart) {
    Retention retention = kLarge;
    retention.max_topics = 3;
    EventPtr a1, a2, b1, b2, c1, d1;
    auto check = [&](Harness& h) {
        EXPECT_EQ(names(h->topics()), (std::vector<std::string>{"a", "c", "d"}));
        EXPECT_EQ(h->history().topics, 3U);
        EXPECT_EQ(h->position_of(b1->id), std::nullopt);
        EXPECT_EQ(h->position_of(b2->id), std::nullopt);
        auto rb = h->replay(0, kAll, exact({"b"}));
        EXPECT_TRUE(rb.events.empty());
        EXPECT_TRUE(rb.gap);
        auto ra = h->replay(0, kAll, exact({"a"}));
        expect_same(ra.events, {a1, a2});
        EXPECT_FALSE(ra.gap);
        expect_same(h->replay(0, kAll, exact({"c"})).events, {c1, d1});
        // Rows: a1, a2, c1, and d1 once for c and once for d.
        EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM history"), 5);
        EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM topics"), 3);
    };
    {
        auto h = open(cached(retention));
        a1 = h->add({"a"});
        b1 = h->add({"b"});
        b2 = h->add({"b"});
        c1 = h->add({"c"});
        a2 = h->add({"a"}); // a is now newer than b
        d1 = h->add({"d", "c"});
        h->settle_all();
        EXPECT_EQ((*h)->history().evicted_max_topics, 2U);
        SCOPED_TRACE("first run");
        check(*h);
    }
    auto h = open(cached(retention));
    SCOPED_TRACE("after reopening");
    check(*h);
    // The next topic pushes out the one whose newest event is the oldest: a.
    auto e1 = h->add({"e"});
    h->settle_all();
    EXPECT_EQ(names((*h)->topics()), (std::vector<std::string>{"c", "d", "e"}));
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"a"})).gap);
    EXPECT_EQ((*h)->history().evicted_max_topics, 2U);
    EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM history"), 4);
}

TEST_P(SqliteCacheTest, MaxTotalBytesOnDiskAndAfterRestart) {
    const std::size_t fp = footprint_of("x");
    Retention retention = kLarge;
    retention.max_total_bytes = 4 * fp;
    std::vector<EventPtr> ev;
    auto check = [&](Harness& h) {
        auto r = h->replay(0, kAll, exact({"a", "b", "c", "d", "e"}));
        expect_same(r.events, {ev[3], ev[4], ev[5]});
        EXPECT_TRUE(r.gap);
        EXPECT_EQ(names(h->topics()), (std::vector<std::string>{"c", "d", "e"}));
        EXPECT_EQ(h->history().bytes, 3 * fp);
        EXPECT_FALSE(h->replay(ev[2]->position, kAll, exact({"a", "b", "c"})).gap);
        EXPECT_TRUE(h->replay(ev[1]->position, kAll, exact({"a"})).gap);
        EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM history"), 3);
        EXPECT_EQ(count_on_disk(db_path(), "SELECT sum(bytes) FROM history"),
                  static_cast<std::int64_t>(3 * fp));
    };
    {
        auto h = open(cached(retention));
        ev.push_back(h->add({"a"}, "x"));
        ev.push_back(h->add({"b"}, "x"));
        ev.push_back(h->add({"a", "b"}, "x")); // once in a, once in b
        h->settle_all();
        EXPECT_EQ((*h)->history().bytes, 4 * fp);
        ev.push_back(h->add({"c"}, "x"));
        h->settle_all();
        // Over by one: the oldest went.
        EXPECT_EQ((*h)->position_of(ev[0]->id), std::nullopt);
        EXPECT_EQ((*h)->position_of(ev[1]->id), ev[1]->position);
        ev.push_back(h->add({"d"}, "x"));
        ev.push_back(h->add({"e"}, "x"));
        h->settle_all();
        EXPECT_EQ((*h)->history().evicted_max_total_bytes, 4U); // ev0, ev1, ev2 twice
        SCOPED_TRACE("first run");
        check(*h);
    }
    auto h = open(cached(retention));
    SCOPED_TRACE("after reopening");
    check(*h);
}

TEST_P(SqliteCacheTest, LowerHubWideBoundsAtRestartApplyAtOnce) {
    std::vector<EventPtr> ev;
    {
        auto h = open(cached());
        for (int i = 0; i < 10; ++i) {
            ev.push_back(h->add({"t" + std::to_string(i)}, "x"));
        }
        h->settle_all();
    }
    Retention retention = kLarge;
    retention.max_topics = 3;
    auto h = open(cached(retention));
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while ((*h)->history().topics != 3 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(names((*h)->topics()), (std::vector<std::string>{"t7", "t8", "t9"}));
    EXPECT_EQ(count_on_disk(db_path(), "SELECT count(*) FROM history"), 3);
    EXPECT_TRUE((*h)->replay(ev[5]->position, kAll, exact({"t6", "t7"})).gap);
    auto r = (*h)->replay(ev[6]->position, kAll, exact({"t6", "t7", "t8"}));
    expect_same(r.events, {ev[7], ev[8]});
    EXPECT_FALSE(r.gap);
}

// ---- replays from memory and from the database ----

TEST_F(SqliteStoreTest, RecentReplaysComeFromMemoryOldOnesFromDisk) {
    auto h = open(options(kLarge, 3));
    std::vector<EventPtr> a;
    for (int i = 0; i < 10; ++i) {
        a.push_back(h->add({"a"}, std::to_string(i)));
    }
    h->settle_all();
    const auto mem = (*h)->memory_replays();
    const auto disk = (*h)->disk_replays();

    // Memory holds a[7..9]: a resume from a[6] or later needs nothing else.
    auto recent = (*h)->replay(a[6]->position, kAll, exact({"a"}));
    expect_same(recent.events, {a[7], a[8], a[9]});
    EXPECT_FALSE(recent.gap);
    EXPECT_EQ((*h)->memory_replays(), mem + 1);
    EXPECT_EQ((*h)->disk_replays(), disk);

    auto newest = (*h)->replay(a[9]->position, kAll, exact({"a"}));
    EXPECT_TRUE(newest.events.empty());
    EXPECT_EQ((*h)->memory_replays(), mem + 2);
    EXPECT_EQ((*h)->disk_replays(), disk);

    auto older = (*h)->replay(a[5]->position, kAll, exact({"a"}));
    expect_same(older.events, {a[6], a[7], a[8], a[9]});
    EXPECT_FALSE(older.gap);
    EXPECT_EQ((*h)->memory_replays(), mem + 2);
    EXPECT_EQ((*h)->disk_replays(), disk + 1);

    auto all = (*h)->replay(0, kAll, exact({"a"}));
    expect_same(all.events, a);
    EXPECT_FALSE(all.gap);
    EXPECT_EQ((*h)->disk_replays(), disk + 2);

    // A topic memory holds whole is answered from memory even with another one.
    auto b = h->add({"b"});
    h->settle_all();
    auto rb = (*h)->replay(a[8]->position, kAll, exact({"a", "b"}));
    expect_same(rb.events, {a[9], b});
    EXPECT_EQ((*h)->memory_replays(), mem + 3);
    EXPECT_EQ((*h)->disk_replays(), disk + 2);
}

TEST_F(SqliteStoreTest, AfterReopenMemoryHoldsTheNewestOfEachTopic) {
    std::vector<EventPtr> a;
    {
        auto h = open(options(kLarge, 3));
        for (int i = 0; i < 10; ++i) {
            a.push_back(h->add({"a"}, std::to_string(i)));
        }
        h->settle_all();
    }
    auto h = open(options(kLarge, 3));
    expect_same((*h)->replay(a[6]->position, kAll, exact({"a"})).events, {a[7], a[8], a[9]});
    EXPECT_EQ((*h)->memory_replays(), 1U);
    EXPECT_EQ((*h)->disk_replays(), 0U);
    expect_same((*h)->replay(a[5]->position, kAll, exact({"a"})).events, {a[6], a[7], a[8], a[9]});
    EXPECT_EQ((*h)->memory_replays(), 1U);
    EXPECT_EQ((*h)->disk_replays(), 1U);
}

TEST_F(SqliteStoreTest, NoCacheReadsEveryReplayFromDisk) {
    auto h = open(options(kLarge, 0));
    std::vector<EventPtr> a;
    for (int i = 0; i < 5; ++i) {
        a.push_back(h->add({"a", i % 2 == 0 ? "even" : "odd"}, std::to_string(i)));
    }
    h->settle_all();
    const auto mem = (*h)->memory_replays();
    std::uint64_t disk = (*h)->disk_replays();
    for (std::size_t i = 0; i + 1 < a.size(); ++i) {
        SCOPED_TRACE(i);
        auto r = (*h)->replay(a[i]->position, kAll, exact({"a"}));
        expect_same(r.events, std::vector<EventPtr>(a.begin() + static_cast<long>(i) + 1, a.end()));
        EXPECT_FALSE(r.gap);
        EXPECT_EQ((*h)->disk_replays(), ++disk);
    }
    expect_same((*h)->replay(0, kAll, exact({"even"})).events, {a[0], a[2], a[4]});
    expect_same((*h)->replay(0, kAll, prefixed("o")).events, {a[1], a[3]});
    EXPECT_EQ((*h)->disk_replays(), disk + 2);
    EXPECT_EQ((*h)->memory_replays(), mem);
    // Ids are found in the database too.
    for (const auto& ev : a) {
        EXPECT_EQ((*h)->position_of(ev->id), ev->position);
    }
    EXPECT_EQ(h->refused(make({"z"}, "x", a[0]->id)).error, AppendError::duplicate_id);
}

TEST_F(SqliteStoreTest, MultiTopicEventsComeOnceFromDisk) {
    auto h = open(options(kLarge, 0));
    auto ab = h->add({"a", "b"}, "ab");
    auto a = h->add({"a"}, "a");
    auto bc = h->add({"b", "c"}, "bc");
    auto cab = h->add({"c", "a", "b"}, "cab");
    h->settle_all();
    const auto disk = (*h)->disk_replays();
    expect_same((*h)->replay(0, kAll, exact({"a", "b", "c"})).events, {ab, a, bc, cab});
    expect_same((*h)->replay(0, kAll, exact({"b", "b", "a"})).events, {ab, a, bc, cab});
    expect_same((*h)->replay(0, kAll, everything()).events, {ab, a, bc, cab});
    expect_same((*h)->replay(a->position, kAll, exact({"c", "b"})).events, {bc, cab});
    TopicFilter mixed = prefixed("b");
    mixed.exact = {"b", "c"};
    expect_same((*h)->replay(0, kAll, mixed).events, {ab, bc, cab});
    EXPECT_EQ((*h)->disk_replays(), disk + 5);
    EXPECT_EQ(bc->topics, (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(cab->topics, (std::vector<std::string>{"c", "a", "b"}));
}

TEST_F(SqliteStoreTest, PatternsOnTheDiskPath) {
    auto h = open(options(kLarge, 0));
    auto e1 = h->add({"books/1"});
    auto e2 = h->add({"authors/1"});
    auto e3 = h->add({"books/2", "authors/1"});
    auto e4 = h->add({"news"});
    auto e5 = h->add({"books/3", "news"});
    h->settle_all();
    const auto disk = (*h)->disk_replays();

    auto books = prefixed("books/");
    auto r = (*h)->replay(0, kAll, books);
    expect_same(r.events, {e1, e3, e5});
    EXPECT_FALSE(r.gap);
    TopicFilter mixed = books;
    mixed.exact = {"news", "books/1"};
    expect_same((*h)->replay(0, kAll, mixed).events, {e1, e3, e4, e5});
    expect_same((*h)->replay(e2->position, kAll, mixed).events, {e3, e4, e5});
    EXPECT_EQ((*h)->disk_replays(), disk + 3);
    TopicFilter none;
    none.pattern = [](std::string_view) { return false; };
    EXPECT_TRUE((*h)->replay(0, kAll, none).events.empty());
}

TEST_P(SqliteCacheTest, GapOnlyWhenRetentionDroppedAnEventAfterThePosition) {
    auto h = open(cached(Retention{5, 1000000000, 0}));
    std::vector<EventPtr> a;
    for (int i = 0; i < 8; ++i) {
        a.push_back(h->add({"a"}, std::to_string(i)));
    }
    auto b = h->add({"b"});
    h->settle_all();
    // The database keeps a[3..7]; retention dropped up to a[2].
    auto from = [&](std::size_t i) { return (*h)->replay(a[i]->position, kAll, exact({"a"})); };
    expect_same(from(6).events, {a[7]});
    EXPECT_FALSE(from(6).gap);
    expect_same(from(4).events, {a[5], a[6], a[7]});
    EXPECT_FALSE(from(4).gap);
    expect_same(from(2).events, {a[3], a[4], a[5], a[6], a[7]});
    EXPECT_FALSE(from(2).gap);
    expect_same(from(1).events, {a[3], a[4], a[5], a[6], a[7]});
    EXPECT_TRUE(from(1).gap);
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"a"})).gap);
    EXPECT_FALSE((*h)->replay(0, kAll, exact({"b"})).gap);
    EXPECT_TRUE((*h)->replay(0, kAll, exact({"a", "b"})).gap);
    EXPECT_FALSE((*h)->replay(0, kAll, prefixed("b")).gap);
    EXPECT_TRUE((*h)->replay(a[1]->position, kAll, everything()).gap);
    auto all = (*h)->replay(a[2]->position, kAll, everything());
    EXPECT_FALSE(all.gap);
    expect_same(all.events, {a[3], a[4], a[5], a[6], a[7], b});
}

// Every replay of a mixed workload, against the memory store fed the same events: the
// database and any cache size must answer what the memory store answers.
TEST_P(SqliteCacheTest, ReplaysMatchTheMemoryStore) {
    const Retention retention{8, 1000000000, 0};
    auto h = open(cached(retention));
    MemoryStore oracle(retention, 1);
    std::vector<EventPtr> events;
    const std::vector<std::vector<std::string>> shapes{{"a"},   {"b"},        {"a", "b"},     {"c"},
                                                       {"x/1"}, {"x/2", "c"}, {"b", "c", "a"}};
    for (int i = 0; i < 60; ++i) {
        NewEvent ev =
            make(shapes[static_cast<std::size_t>(i) % shapes.size()], "data" + std::to_string(i));
        ev.is_private = i % 5 == 0;
        if (i % 4 == 0) {
            ev.type = "kind" + std::to_string(i);
        }
        if (i % 6 == 0) {
            ev.retry_ms = static_cast<std::uint32_t>(i * 10);
        }
        if (i % 9 == 0) {
            ev.id = "pub-" + std::to_string(i);
        }
        auto res = h->append_now(std::move(ev));
        ASSERT_EQ(res.error, AppendError::none);
        events.push_back(res.event);
        oracle.insert(res.event);
    }
    h->settle_all();

    std::vector<std::pair<std::string, TopicFilter>> filters;
    filters.emplace_back("a", exact({"a"}));
    filters.emplace_back("a,b", exact({"a", "b"}));
    filters.emplace_back("b,c,nope", exact({"b", "c", "nope"}));
    filters.emplace_back("a,a", exact({"a", "a"}));
    filters.emplace_back("x/*", prefixed("x/"));
    filters.emplace_back("*", everything());
    TopicFilter mixed = prefixed("x/");
    mixed.exact = {"c"};
    filters.emplace_back("x/* and c", mixed);
    filters.emplace_back("none", exact({}));

    std::vector<std::uint64_t> afters{0};
    for (const auto& ev : events) {
        afters.push_back(ev->position - 1);
        afters.push_back(ev->position);
    }
    for (const auto& [name, filter] : filters) {
        for (auto after : afters) {
            SCOPED_TRACE(name + " after " + std::to_string(after));
            auto got = (*h)->replay(after, kAll, filter);
            auto want = oracle.replay(after, kAll, filter);
            EXPECT_EQ(got.gap, want.gap);
            expect_same(got.events, want.events);
        }
    }
    if (GetParam() < retention.max_events) {
        EXPECT_GT((*h)->disk_replays(), 0U);
    }
    EXPECT_GT((*h)->memory_replays(), 0U);
    for (const auto& ev : events) {
        EXPECT_EQ((*h)->position_of(ev->id), oracle.position_of(ev->id)) << ev->id;
    }
}

// ---- refusals at open ----

TEST_F(SqliteStoreTest, GarbageFileIsRefused) {
    {
        std::ofstream out(db_path(), std::ios::binary);
        for (int i = 0; i < 200; ++i) {
            out << "this is not a database, only some text in a file. ";
        }
    }
    const std::string what = open_error(options());
    EXPECT_NE(what.find(db_path()), std::string::npos) << what;
    EXPECT_NE(what.find("not a SQLite database"), std::string::npos) << what;
}

TEST_F(SqliteStoreTest, SecondStoreOnTheSameFileIsRefused) {
    auto first = open(options());
    auto ev = first->add({"a"});
    first->settle_all();

    const std::string what = open_error(options());
    EXPECT_NE(what.find(db_path()), std::string::npos) << what;
    EXPECT_NE(what.find("in use by another herald"), std::string::npos) << what;

    // The refusal did not disturb the first store.
    auto more = first->add({"a"});
    first->settle_all();
    expect_same((*first)->replay(0, kAll, exact({"a"})).events, {ev, more});

    // Once the first is gone the file opens again.
    first.reset();
    auto again = open(options());
    expect_same((*again)->replay(0, kAll, exact({"a"})).events, {ev, more});
}

TEST_F(SqliteStoreTest, PathUnderARegularFileIsRefused) {
    const fs::path plain = dir_.path() / "plain";
    std::ofstream(plain) << "a file, not a directory";
    for (const fs::path& path : {plain / "herald.db", plain / "sub" / "herald.db"}) {
        SCOPED_TRACE(path.string());
        SqliteOptions o = options();
        o.path = path.string();
        const std::string what = open_error(o);
        EXPECT_FALSE(what.empty());
        EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    }
}

TEST_F(SqliteStoreTest, DirectoryAsThePathIsRefused) {
    SqliteOptions o = options();
    o.path = dir_.path().string();
    const std::string what = open_error(o);
    EXPECT_NE(what.find(o.path), std::string::npos) << what;
    EXPECT_NE(what.find("not a regular file"), std::string::npos) << what;
}

TEST_F(SqliteStoreTest, MissingDirectoriesAreCreated) {
    SqliteOptions o = options();
    o.path = (dir_.path() / "x" / "y" / "herald.db").string();
    auto h = open(o);
    auto ev = h->add({"a"});
    h->settle_all();
    EXPECT_TRUE(fs::is_regular_file(o.path));
    expect_same((*h)->replay(0, kAll, exact({"a"})).events, {ev});
}

// ---- close ----

TEST_F(SqliteStoreTest, AppendAfterCloseIsUnavailable) {
    auto h = open(options());
    auto ev = h->add({"a"});
    h->settle_all();
    (*h)->close();
    auto res = h->refused(make({"a"}));
    EXPECT_EQ(res.error, AppendError::unavailable);
    EXPECT_EQ(res.event, nullptr);
    EXPECT_FALSE(res.reason.empty());
    auto with_id = h->refused(make({"a"}, "x", "mine"));
    EXPECT_EQ(with_id.error, AppendError::unavailable);
    EXPECT_EQ((*h)->last_position(), ev->position);
    // Reading still works; closing again is harmless.
    expect_same((*h)->replay(0, kAll, exact({"a"})).events, {ev});
    (*h)->close();
}

TEST_F(SqliteStoreTest, CloseCommitsEverythingQueued) {
    std::vector<EventPtr> appended;
    {
        auto h = open(options());
        std::vector<PendingPtr> pending;
        for (int i = 0; i < 100; ++i) {
            pending.push_back(h->append(make({i % 2 == 0 ? "a" : "b"}, std::to_string(i))));
        }
        (*h)->close();
        // Every append was answered, and every commit reported, before close() returned.
        for (std::size_t i = 0; i < pending.size(); ++i) {
            EXPECT_TRUE(pending[i]->answered()) << i;
        }
        appended = events_of(pending);
        const auto committed = events_of(h->ready());
        expect_same(committed, appended);
        expect_same((*h)->replay(0, kAll, exact({"a", "b"})).events, appended);
        EXPECT_EQ((*h)->last_position(), appended.back()->position);
    }
    auto h = open(options());
    EXPECT_GE((*h)->last_position(), appended.back()->position);
    expect_same((*h)->replay(0, kAll, exact({"a", "b"})).events, appended);
}

TEST_F(SqliteStoreTest, CloseWithNothingQueuedAndWithFullSync) {
    SqliteOptions o = options();
    o.sync_full = true;
    auto h = open(o);
    (*h)->close();
    EXPECT_TRUE(h->ready().empty());
    h.reset();

    h = open(o);
    auto ev = h->add({"a"}, "durable");
    h->settle_all();
    h.reset();
    h = open(o);
    expect_same((*h)->replay(0, kAll, exact({"a"})).events, {ev});
}

} // namespace
} // namespace herald::store
