// Tests for the hub on the SQLite event log: publishes are answered once their transaction
// has committed (blocking and with a callback), subscribers get live events and resume
// across a restart, publisher threads race through group commit, and the hub's locking:
// a publish is answered while a subscribe reads a large replay from the database, and a
// subscriber registering among concurrent publishes misses nothing and gets nothing twice
// (run under TSan by `make test`).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sqlite3.h>
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

// Reads the rest of a subscription's replay, page after page, onto its first page.
void read_all_pages(hub::Shard& shard, hub::Subscriber& sub, log::Replay& replay) {
    while (sub.replay_pending()) {
        log::Replay page = shard.replay_more(sub);
        replay.gap = replay.gap || page.gap;
        replay.events.insert(replay.events.end(), page.events.begin(), page.events.end());
    }
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

// ---- the hub's locking: publishers never wait on a replay ----

// A SQLite VFS over the default one that can stop a read: a thread arms it, and the first
// read SQLite makes on that thread waits there (with whatever the store and SQLite hold at
// that moment: the store's reader connection, inside a read transaction) until the test
// opens the gate. Installed as the default VFS for its lifetime, so that a store opened
// meanwhile uses it; nothing in the store knows about it.
class ReadGate {
public:
    ReadGate() {
        real_ = sqlite3_vfs_find(nullptr);
        vfs_ = *real_;
        vfs_.pNext = nullptr;
        vfs_.zName = "herald-test-read-gate";
        vfs_.pAppData = this;
        vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
        vfs_.xOpen = &ReadGate::open_file;
        // The rest forward to the real VFS, with its own object (unix's uses pAppData).
        vfs_.xDelete = [](sqlite3_vfs* v, const char* n, int s) {
            return real(v)->xDelete(real(v), n, s);
        };
        vfs_.xAccess = [](sqlite3_vfs* v, const char* n, int f, int* out) {
            return real(v)->xAccess(real(v), n, f, out);
        };
        vfs_.xFullPathname = [](sqlite3_vfs* v, const char* n, int size, char* out) {
            return real(v)->xFullPathname(real(v), n, size, out);
        };
        vfs_.xDlOpen = [](sqlite3_vfs* v, const char* n) { return real(v)->xDlOpen(real(v), n); };
        vfs_.xDlError = [](sqlite3_vfs* v, int size, char* out) {
            real(v)->xDlError(real(v), size, out);
        };
        vfs_.xDlSym = [](sqlite3_vfs* v, void* h, const char* s) {
            return real(v)->xDlSym(real(v), h, s);
        };
        vfs_.xDlClose = [](sqlite3_vfs* v, void* h) { real(v)->xDlClose(real(v), h); };
        vfs_.xRandomness = [](sqlite3_vfs* v, int size, char* out) {
            return real(v)->xRandomness(real(v), size, out);
        };
        vfs_.xSleep = [](sqlite3_vfs* v, int us) { return real(v)->xSleep(real(v), us); };
        vfs_.xCurrentTime = [](sqlite3_vfs* v, double* out) {
            return real(v)->xCurrentTime(real(v), out);
        };
        vfs_.xGetLastError = [](sqlite3_vfs* v, int size, char* out) {
            return real(v)->xGetLastError(real(v), size, out);
        };
        vfs_.xCurrentTimeInt64 = [](sqlite3_vfs* v, sqlite3_int64* out) {
            return real(v)->xCurrentTimeInt64(real(v), out);
        };
        vfs_.xSetSystemCall = [](sqlite3_vfs* v, const char* n, sqlite3_syscall_ptr p) {
            return real(v)->xSetSystemCall(real(v), n, p);
        };
        vfs_.xGetSystemCall = [](sqlite3_vfs* v, const char* n) {
            return real(v)->xGetSystemCall(real(v), n);
        };
        vfs_.xNextSystemCall = [](sqlite3_vfs* v, const char* n) {
            return real(v)->xNextSystemCall(real(v), n);
        };
        EXPECT_EQ(sqlite3_vfs_register(&vfs_, 1), SQLITE_OK);
    }
    ~ReadGate() {
        open_gate();
        sqlite3_vfs_unregister(&vfs_);
        sqlite3_vfs_register(real_, 1); // the default again
    }
    ReadGate(const ReadGate&) = delete;
    ReadGate& operator=(const ReadGate&) = delete;

    // The next read on the calling thread stops at the gate.
    static void arm_this_thread() { armed_ = true; }
    // True once a read waits at the gate.
    bool wait_stopped() {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, kWait, [this] { return stopped_; });
    }
    [[nodiscard]] bool stopped() {
        std::lock_guard lock(mu_);
        return stopped_ && !open_;
    }
    void open_gate() {
        {
            std::lock_guard lock(mu_);
            open_ = true;
        }
        cv_.notify_all();
    }

private:
    static thread_local bool armed_;
    struct File {
        sqlite3_file base;
        sqlite3_file* real;
        ReadGate* gate;
    };
    static sqlite3_vfs* real(sqlite3_vfs* v) { return static_cast<ReadGate*>(v->pAppData)->real_; }
    static sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

    void stop_here() {
        std::unique_lock lock(mu_);
        stopped_ = true;
        cv_.notify_all();
        cv_.wait(lock, [this] { return open_; });
    }

    static int open_file(sqlite3_vfs* v, sqlite3_filename name, sqlite3_file* f, int flags,
                         int* out_flags) {
        auto* file = reinterpret_cast<File*>(f);
        file->real = reinterpret_cast<sqlite3_file*>(file + 1);
        file->gate = static_cast<ReadGate*>(v->pAppData);
        file->real->pMethods = nullptr;
        const int rc = real(v)->xOpen(real(v), name, file->real, flags, out_flags);
        if (rc != SQLITE_OK) {
            if (file->real->pMethods != nullptr) {
                file->real->pMethods->xClose(file->real);
            }
            file->base.pMethods = nullptr;
            return rc;
        }
        file->base.pMethods = &kMethods;
        return rc;
    }

    static constexpr sqlite3_io_methods kMethods = {
        3,
        [](sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); },
        [](sqlite3_file* f, void* out, int n, sqlite3_int64 at) {
            if (armed_) {
                armed_ = false;
                reinterpret_cast<File*>(f)->gate->stop_here();
            }
            return real(f)->pMethods->xRead(real(f), out, n, at);
        },
        [](sqlite3_file* f, const void* in, int n, sqlite3_int64 at) {
            return real(f)->pMethods->xWrite(real(f), in, n, at);
        },
        [](sqlite3_file* f, sqlite3_int64 size) {
            return real(f)->pMethods->xTruncate(real(f), size);
        },
        [](sqlite3_file* f, int flags) { return real(f)->pMethods->xSync(real(f), flags); },
        [](sqlite3_file* f, sqlite3_int64* size) {
            return real(f)->pMethods->xFileSize(real(f), size);
        },
        [](sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); },
        [](sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); },
        [](sqlite3_file* f, int* out) {
            return real(f)->pMethods->xCheckReservedLock(real(f), out);
        },
        [](sqlite3_file* f, int op, void* arg) {
            return real(f)->pMethods->xFileControl(real(f), op, arg);
        },
        [](sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); },
        [](sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); },
        [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
            return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
        },
        [](sqlite3_file* f, int offset, int n, int flags) {
            return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
        },
        [](sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); },
        [](sqlite3_file* f, int remove) { return real(f)->pMethods->xShmUnmap(real(f), remove); },
        [](sqlite3_file* f, sqlite3_int64 at, int n, void** out) {
            return real(f)->pMethods->xFetch(real(f), at, n, out);
        },
        [](sqlite3_file* f, sqlite3_int64 at, void* p) {
            return real(f)->pMethods->xUnfetch(real(f), at, p);
        },
    };

    sqlite3_vfs* real_ = nullptr;
    sqlite3_vfs vfs_{};
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopped_ = false;
    bool open_ = false;
};
thread_local bool ReadGate::armed_ = false;

// Publishes `count` events on `topic` (asynchronously, so that they share transactions) and
// waits until every one is answered.
void fill(hub::Hub& hub, const std::string& topic, int count) {
    std::mutex mu;
    std::condition_variable cv;
    int left = count;
    int failed = 0;
    for (int i = 0; i < count; ++i) {
        hub.publish(make({topic}, std::to_string(i)), [&](PublishResult r) {
            std::lock_guard lock(mu);
            failed += r.error == PublishError::none ? 0 : 1;
            if (--left == 0) {
                cv.notify_all();
            }
        });
    }
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 300s, [&] { return left == 0; }));
    EXPECT_EQ(failed, 0);
}

constexpr int kBig = 100000;

// A subscriber resuming from "earliest" on a topic with 100,000 events reads them from the
// database (memory holds the newest 1,000), without the hub's lock. It is stopped in the
// middle of that read, the store's reader connection held: a publish on the same topic on
// another thread is answered meanwhile, before the subscribe returns, and reaches the
// subscriber live afterwards, once, after the whole replay.
TEST_F(SqliteHubTest, PublishIsAnsweredWhileASubscribeReadsTheDatabase) {
    ReadGate gate; // before the store, which opens its connections through it
    SqliteHub h(options());
    fill(h.hub, "big", kBig);
    const auto disk_before = h.store.disk_replays();

    Recorder sub;
    hub::SubscribeResult sr;
    std::atomic<bool> returned{false};
    std::thread subscriber([&] {
        ReadGate::arm_this_thread();
        sr = h.hub.shard(0).subscribe(sub, interest_of({"big"}), "earliest");
        returned = true;
    });
    const bool stopped = gate.wait_stopped();
    EXPECT_TRUE(stopped) << "the replay never read the database";
    EXPECT_EQ(h.store.disk_replays(), disk_before + 1); // it is a disk replay

    // With the replay stopped inside its read: publish, and wait for the answer.
    auto answered = std::make_shared<std::promise<PublishResult>>();
    auto answer = answered->get_future();
    h.hub.publish(make({"big"}, "during"),
                  [answered](PublishResult r) { answered->set_value(std::move(r)); });
    const bool in_time = answer.wait_for(kWait) == std::future_status::ready;
    EXPECT_TRUE(in_time) << "a publish waited for a replay";
    // A publisher's own id is looked up in the database too, on a connection of its own.
    // On a thread of its own, so that a publish stuck behind the replay fails the test
    // rather than hanging it.
    auto answered_own = std::make_shared<std::promise<PublishResult>>();
    auto answer_own = answered_own->get_future();
    std::thread own_publisher([&h, answered_own] {
        h.hub.publish(make({"big"}, "own id", "mine-during"),
                      [answered_own](PublishResult r) { answered_own->set_value(std::move(r)); });
    });
    EXPECT_TRUE(answer_own.wait_for(std::chrono::seconds(5)) == std::future_status::ready)
        << "a publish with its own id waited for a replay";
    // The order: both were answered while the replay was still stopped in its read.
    EXPECT_TRUE(gate.stopped());
    EXPECT_FALSE(returned.load());

    gate.open_gate();
    subscriber.join();
    own_publisher.join();
    read_all_pages(h.hub.shard(0), sub, sr.replay);
    const PublishResult during = answer.get();
    ASSERT_EQ(during.error, PublishError::none) << during.reason;
    EXPECT_EQ(sr.resume_header, "earliest");
    EXPECT_FALSE(sr.replay.gap);
    ASSERT_EQ(sr.replay.events.size(), static_cast<std::size_t>(kBig));
    for (std::size_t i = 1; i < sr.replay.events.size(); ++i) {
        ASSERT_LT(sr.replay.events[i - 1]->position, sr.replay.events[i]->position) << i;
    }
    // Not in the replay (it came after the hand-off mark), but live: once.
    EXPECT_LT(sr.replay.events.back()->position, during.event->position);
    const PublishResult own = answer_own.get();
    ASSERT_EQ(own.error, PublishError::none) << own.reason;
    EXPECT_EQ(own.event->id, "mine-during");
    h.hub.shard(0).drain();
    EXPECT_EQ(sub.ids, (std::vector<std::string>{during.event->id, "mine-during"}));
    h.hub.shard(0).unsubscribe(sub);
    h.store.close();
}

// The publisher's round trip while 100,000-event replays read the database, beside the
// same without: printed (not asserted), so that the figure can be quoted.
TEST_F(SqliteHubTest, PublishRoundTripDuringALargeReplay) {
    SqliteHub h(options());
    fill(h.hub, "big", kBig);
    using Clock = std::chrono::steady_clock;
    auto micros = [](Clock::duration d) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        return static_cast<double>(ns) / 1000.0;
    };
    auto median = [](std::vector<double> v) {
        if (v.empty()) {
            return 0.0;
        }
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    constexpr std::size_t kSamples = 50;

    std::vector<double> quiet;
    for (std::size_t i = 0; i < kSamples; ++i) {
        const auto t0 = Clock::now();
        auto r = h.hub.publish(make({"other"}, "quiet"));
        quiet.push_back(micros(Clock::now() - t0));
        ASSERT_EQ(r.error, PublishError::none);
    }

    // A thread replays the whole topic from the database, again and again. `replay` counts
    // the replays begun; odd while one is in progress.
    std::atomic<std::uint64_t> replay{0};
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> short_replays{0};
    std::thread reader([&] {
        while (!stop.load()) {
            Recorder sub;
            replay.fetch_add(1);
            auto sr = h.hub.shard(0).subscribe(sub, interest_of({"big"}), "earliest");
            read_all_pages(h.hub.shard(0), sub, sr.replay);
            replay.fetch_add(1);
            if (sr.replay.events.size() != static_cast<std::size_t>(kBig)) {
                short_replays.fetch_add(1);
            }
            h.hub.shard(0).unsubscribe(sub);
        }
    });
    // Only the publishes that began and ended within one replay count.
    std::vector<double> during;
    std::size_t tries = 0;
    const auto deadline = Clock::now() + 120s;
    while (during.size() < kSamples && Clock::now() < deadline) {
        const std::uint64_t before = replay.load();
        if (before % 2 == 0) {
            std::this_thread::yield();
            continue;
        }
        ++tries;
        const auto t0 = Clock::now();
        auto r = h.hub.publish(make({"other"}, "during"));
        const auto rtt = Clock::now() - t0;
        ASSERT_EQ(r.error, PublishError::none);
        if (replay.load() == before) {
            during.push_back(micros(rtt));
        }
    }
    stop = true;
    reader.join();
    const std::uint64_t replays = replay.load() / 2;
    EXPECT_EQ(short_replays.load(), 0U);
    EXPECT_EQ(during.size(), kSamples);

    const double during_us = median(during);
    auto max_of = [](const std::vector<double>& v) {
        return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
    };
    const double quiet_us = median(quiet);
    std::cout << "[ measure  ] publish round trip, median of " << during.size()
              << " publishes inside a 100,000-event disk replay: " << during_us << " us (max "
              << max_of(during) << " us; " << tries << " tried, " << replays
              << " replays); without a replay: " << quiet_us << " us (max " << max_of(quiet)
              << " us)\n";
    RecordProperty("publish_rtt_during_replay_median_us", std::to_string(during_us));
    RecordProperty("publish_rtt_quiet_median_us", std::to_string(quiet_us));
    h.store.close();
}

// A subscriber registering while four threads publish on its topic gets, replay then live,
// exactly the events after its Last-Event-ID: each once, in position order. Repeated with
// small histories, resuming from each point of them (memory holds only the newest four of
// a topic, so early resumes read the database) and at varying points of the publishing.
TEST_F(SqliteHubTest, SubscribingWhileFourThreadsPublishHasNoGapAndNoDuplicate) {
    SqliteOptions o = options();
    o.cache_events = 4;
    SqliteHub h(o);
    constexpr int kRounds = 200;
    constexpr int kHistory = 6;
    constexpr int kThreads = 4;
    constexpr int kPerThread = 8;
    for (int round = 0; round < kRounds; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const std::string topic = "race" + std::to_string(round);
        std::vector<log::EventPtr> history;
        for (int i = 0; i < kHistory; ++i) {
            auto r = h.hub.publish(make({topic}, "h" + std::to_string(i)));
            ASSERT_EQ(r.error, PublishError::none);
            history.push_back(r.event);
        }
        // Resume from each event of the history in turn, or from the start.
        const int from = round % (kHistory + 1);
        const std::optional<std::string> last_id =
            from == kHistory ? std::string("earliest")
                             : history[static_cast<std::size_t>(from)]->id;
        const std::uint64_t after =
            from == kHistory ? 0 : history[static_cast<std::size_t>(from)]->position;
        // Register once this many of the concurrent publishes were answered.
        const int when = round % (kThreads * kPerThread / 2);

        std::atomic<int> answered{0};
        std::atomic<bool> publishing{true};
        Recorder sub;
        hub::SubscribeResult sr;
        std::vector<std::uint64_t> live;
        std::thread worker([&] {
            while (answered.load() < when) {
                std::this_thread::yield();
            }
            sr = h.hub.shard(0).subscribe(sub, interest_of({topic}), last_id);
            while (publishing.load()) {
                h.hub.shard(0).drain();
                std::this_thread::yield();
            }
            h.hub.shard(0).drain();
            h.hub.shard(0).unsubscribe(sub);
        });
        std::vector<std::vector<std::uint64_t>> published(kThreads);
        std::vector<std::thread> publishers;
        for (int t = 0; t < kThreads; ++t) {
            publishers.emplace_back([&, t] {
                for (int i = 0; i < kPerThread; ++i) {
                    const std::string data = std::to_string(t) + ":" + std::to_string(i);
                    auto r = h.hub.publish(make({topic}, data));
                    if (r.error == PublishError::none) {
                        published[static_cast<std::size_t>(t)].push_back(r.event->position);
                    }
                    answered.fetch_add(1);
                }
            });
        }
        for (auto& p : publishers) {
            p.join();
        }
        // Every publish was handed to the shard before it was answered: the last drain
        // after this sees them all.
        publishing = false;
        worker.join();

        std::vector<std::uint64_t> want;
        for (const auto& ev : history) {
            if (ev->position > after) {
                want.push_back(ev->position);
            }
        }
        for (const auto& mine : published) {
            ASSERT_EQ(mine.size(), static_cast<std::size_t>(kPerThread));
            want.insert(want.end(), mine.begin(), mine.end());
        }
        std::sort(want.begin(), want.end());
        std::vector<std::uint64_t> got;
        for (const auto& ev : sr.replay.events) {
            got.push_back(ev->position);
        }
        const std::size_t replayed = got.size();
        got.insert(got.end(), sub.positions.begin(), sub.positions.end());
        EXPECT_FALSE(sr.replay.gap);
        EXPECT_EQ(sr.resume_header, last_id);
        ASSERT_EQ(got, want) << "replayed " << replayed << ", live " << sub.positions.size();
    }
    h.store.close();
}

} // namespace
} // namespace herald::store
