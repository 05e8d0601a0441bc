// The durable event log on an embedded SQLite database (`--store sqlite:PATH`).
//
// Appends are queued to a writer thread that commits them in groups: each transaction
// takes every event queued while the previous one was being written, so a busy hub pays
// one fsync for many events. An event is settled (acknowledged, delivered, replayable)
// only once its transaction has committed. The newest events of each topic are also kept
// in memory, so that most resumes are answered without a query; older ones are read back
// from the database.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "log/event_log.hpp"
#include "store/memory/memory_store.hpp"
#include "store/store_error.hpp"

namespace herald::store {

struct SqliteOptions {
    std::string path;
    // true: each commit is on disk before the publishes in it are answered (WAL fsync);
    // false: committed to the WAL without fsync: a process crash loses nothing, a power
    // failure may lose the last transactions.
    bool sync_full = true;
    Retention retention;
    std::size_t cache_events = 1000; // per topic, in memory
};

class SqliteStore final : public log::EventLog {
public:
    // Opens (creating it and its directory if needed) and checks the database, loads the
    // recent events, and starts the writer. Throws StoreError.
    explicit SqliteStore(SqliteOptions options);
    ~SqliteStore() override;
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    void set_listener(log::LogListener* listener) override;
    // Queues the event; `done` runs on the writer thread once its transaction has ended.
    void append(log::NewEvent&& event, log::AppendDone done) override;
    void close() override;

    [[nodiscard]] std::optional<std::uint64_t> position_of(std::string_view id) const override;
    [[nodiscard]] std::uint64_t last_position() const override;
    using log::EventLog::replay;
    [[nodiscard]] log::Replay replay(std::uint64_t after, std::uint64_t upto,
                                     const log::TopicFilter& filter,
                                     std::size_t max_bytes) const override;
    void expire(std::int64_t now_ms) override;
    using log::EventLog::topics;
    [[nodiscard]] std::vector<log::TopicStats> topics(const log::TopicRange& range) const override;
    [[nodiscard]] log::HistoryFigures history() const override;
    [[nodiscard]] std::optional<std::string> trouble() const override;

    [[nodiscard]] std::optional<log::StoreFigures> figures() const override;

    // Replays answered from memory and from the database, since the start.
    [[nodiscard]] std::uint64_t memory_replays() const noexcept;
    [[nodiscard]] std::uint64_t disk_replays() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace herald::store
