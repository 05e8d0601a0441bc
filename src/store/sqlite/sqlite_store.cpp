// The SQLite event log. Three parties share it:
// - publishers, under append_mu: append() assigns positions and ids and queues the event;
//   readers (replay(), position_of()) use the in-memory cache (which locks itself) and
//   two reader connections, one for replays (under reader_mu), one for id lookups (under
//   ids_mu);
// - the writer thread: owns the writer connection and the authoritative per-topic
//   counters, runs one transaction per batch (inserts, retention, bookkeeping), then adds
//   the committed events to the cache, hands them to the listener and answers their
//   publishers;
// - both, under state_mu: the per-topic figures the writer publishes after each commit,
//   and the store's health.
//
// One row per (topic, event) in `history`: an event on several topics is stored once per
// topic, which keeps retention a range delete per topic.
#include "store/sqlite/sqlite_store.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sqlite3.h>
#include <sys/file.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "base/clock.hpp"
#include "store/sqlite/sqlite.hpp"

namespace herald::store {

namespace {

constexpr std::int64_t kSchemaVersion = 1;
// Rows retention may delete in one transaction beyond those the batch itself displaces,
// so that a lowered cap or a burst of expiry never stalls the writer; the rest waits for
// the next transactions.
constexpr std::size_t kTrimBudget = 10000;
// Files up to this size get SQLite's quick integrity check at every start.
constexpr std::uintmax_t kQuickCheckMaxBytes = std::uintmax_t{512} << 20;
// Publisher-chosen decimal ids above this are too far ahead to move positions past them.
constexpr std::uint64_t kMaxReserved = std::uint64_t{1} << 62;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topics (
    topic_id INTEGER PRIMARY KEY,
    name BLOB NOT NULL UNIQUE,
    retained INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    dropped_upto INTEGER NOT NULL DEFAULT 0,
    last_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS history (
    topic_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    data BLOB NOT NULL,
    private INTEGER NOT NULL,
    retry INTEGER,
    published_ms INTEGER NOT NULL,
    topics BLOB,
    bytes INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS history_by_topic ON history (topic_id, pos);
CREATE INDEX IF NOT EXISTS history_by_id ON history (id);
)sql";

// An event's topics, when it has more than one: each as its length, a colon and the bytes
// (topics may hold any UTF-8, newlines and NULs included).
std::string encode_topics(const std::vector<std::string>& topics) {
    std::string out;
    for (const auto& t : topics) {
        out += std::to_string(t.size());
        out += ':';
        out += t;
    }
    return out;
}

std::vector<std::string> decode_topics(std::string_view in) {
    std::vector<std::string> out;
    while (!in.empty()) {
        std::size_t n = 0;
        const auto colon = in.find(':');
        auto [p, ec] = std::from_chars(in.data(), in.data() + colon, n);
        if (colon == std::string_view::npos || ec != std::errc() || colon + 1 + n > in.size()) {
            throw sql::Error(SQLITE_CORRUPT, "a stored topic list is malformed");
        }
        out.emplace_back(in.substr(colon + 1, n));
        in.remove_prefix(colon + 1 + n);
    }
    return out;
}

// A decimal id without leading zeros that fits 64 bits: one the store could also assign.
std::optional<std::uint64_t> as_position(std::string_view id) {
    std::uint64_t v = 0;
    if (id.empty() || (id.size() > 1 && id[0] == '0')) {
        return std::nullopt;
    }
    auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
    if (ec != std::errc() || p != id.data() + id.size()) {
        return std::nullopt;
    }
    return v;
}

// Why an operation failed, in words for an operator.
std::string describe(const sql::Error& e) {
    switch (e.primary()) {
    case SQLITE_FULL: return "the disk is full (" + std::string(e.what()) + ")";
    case SQLITE_READONLY: return "the database cannot be written (" + std::string(e.what()) + ")";
    case SQLITE_IOERR: return "a disk write failed (" + std::string(e.what()) + ")";
    default: return e.what();
    }
}

} // namespace

// What one transaction did: the events it was given, in position order, now either all
// durable or (on failure) none of them written.
struct Commit {
    std::vector<log::EventPtr> events;
    log::AppendError error = log::AppendError::none; // none or unavailable
    std::string reason;                              // why, on failure
};

struct SqliteStore::Impl {
    // ---- what the hub side sees of a topic (under state_mu) ----
    struct TopicView {
        std::int64_t id = 0;
        std::size_t retained = 0;
        std::size_t bytes = 0;
        std::uint64_t dropped_upto = 0;
        std::string last_id;
    };
    // ---- the writer's view of a topic (writer thread only): the same, and its bookkeeping
    struct Topic : TopicView {
        std::int64_t oldest_ms = std::numeric_limits<std::int64_t>::max();
        std::uint64_t oldest_pos = 0; // of its retained rows, when it has any
        std::uint64_t newest_pos = 0;
        std::uint64_t stamp = 0; // the transaction that last touched it
        // Its keys in by_oldest and by_newest, while it retains rows.
        bool indexed = false;
        std::uint64_t indexed_oldest = 0;
        std::uint64_t indexed_newest = 0;
    };
    using TopicEntry = std::pair<const std::string, Topic>;
    // Topics by a position, then by name: topics tied on their newest event (one event on
    // several topics) go for max_topics in name order, as in the memory cache and in Redis.
    struct ByPositionThenName {
        bool operator()(const std::pair<std::uint64_t, TopicEntry*>& a,
                        const std::pair<std::uint64_t, TopicEntry*>& b) const {
            return a.first != b.first ? a.first < b.first : a.second->first < b.second->first;
        }
    };
    using TopicOrder = std::set<std::pair<std::uint64_t, TopicEntry*>, ByPositionThenName>;

    SqliteOptions options;
    std::string label; // "sqlite:PATH", for messages
    int lock_fd = -1;

    // The publishers' side, under append_mu.
    std::mutex append_mu;
    std::uint64_t next_position = 0;
    std::unordered_set<std::string> pending_ids;
    std::set<std::uint64_t> reserved; // publisher ids that are future positions
    // The newest event committed and handed to the listener.
    std::atomic<std::uint64_t> committed{0};
    std::optional<MemoryStore> cache; // locks itself; made once the positions are known
    // The reader connection for replays, under reader_mu; a second one for id lookups,
    // under ids_mu (taken after append_mu, never before), so that a publish with its own
    // id never waits for a long replay.
    mutable std::mutex reader_mu;
    mutable sql::Db reader;
    mutable sql::Stmt read_topic;
    mutable std::mutex ids_mu;
    mutable sql::Db id_reader;
    mutable sql::Stmt find_id;
    mutable std::atomic<std::uint64_t> memory_replays{0};
    mutable std::atomic<std::uint64_t> disk_replays{0};
    std::atomic<std::uint64_t> transactions{0};
    std::atomic<std::uint64_t> events_written{0};
    std::atomic<std::uint64_t> failed_transactions{0};
    std::atomic<std::uint64_t> commit_ns{0};

    // The queue to the writer.
    std::mutex queue_mu;
    std::condition_variable queue_cv;
    std::vector<log::EventPtr> queue;
    std::vector<log::AppendDone> queue_done; // one per queued event
    bool stopping = false;
    bool maintenance = false;                                           // retention work is waiting
    std::int64_t age_cutoff = std::numeric_limits<std::int64_t>::min(); // under queue_mu
    std::atomic<log::LogListener*> listener{nullptr};
    std::thread writer_thread;

    // Shared figures.
    mutable std::mutex state_mu;
    std::map<std::string, TopicView, std::less<>> views; // topics that retain rows, by name
    ErasedFloors erased;                                 // of the topics forgotten
    log::HistoryFigures history_figures;
    std::optional<std::string> failure;

    // Writer side.
    sql::Db writer;
    sql::Stmt begin, commit, rollback;
    sql::Stmt insert_event, insert_topic, update_topic, delete_topic, oldest_rows, delete_upto,
        set_meta;
    std::unordered_map<std::string, Topic> topics;
    std::unordered_set<std::string> backlog; // topics still over a bound
    std::vector<std::string> stale;          // topics that retain no row, to delete
    TopicOrder by_oldest;                    // topics that retain rows, by their oldest row
    TopicOrder by_newest;                    // the same, by their newest row
    std::size_t total_bytes = 0;             // of every retained row
    std::uint64_t evicted_max_topics = 0;    // rows, in committed transactions
    std::uint64_t evicted_max_total_bytes = 0;
    std::uint64_t stamp = 0;
    std::uint64_t reserved_max = 0;
    std::int64_t applied_cutoff = std::numeric_limits<std::int64_t>::min();
    std::uint64_t erased_dropped_upto_written = 0;

    explicit Impl(SqliteOptions o)
        : options(std::move(o)), label("sqlite:" + options.path),
          cache(std::in_place, cache_retention(options), 1) {}

    static Retention cache_retention(const SqliteOptions& o) {
        Retention r = o.retention;
        r.max_events = std::min(r.max_events, o.cache_events);
        return r;
    }

    [[noreturn]] void refuse(const std::string& what) const {
        throw StoreError(label + ": " + what);
    }

    void open();
    void prepare_writer();
    void load();
    void reload_topics();
    // A history row as an event; `topic` is the row's topic (the event's only one unless
    // the row lists several).
    static log::EventPtr read_event(const sql::Stmt& st, const std::string& topic);

    void run_writer();
    Commit transact(std::vector<log::EventPtr>&& batch, std::int64_t cutoff);
    std::pair<const std::string, Topic>& topic_for(const std::string& name);
    void trim(const std::string& name, Topic& t, std::int64_t cutoff, std::size_t& budget);
    // Keeps by_oldest and by_newest in step with the topic's figures.
    void index(TopicEntry& entry);
    [[nodiscard]] bool over_caps() const {
        const Retention& r = options.retention;
        return (r.max_topics > 0 && by_newest.size() > r.max_topics) ||
               (r.max_total_bytes > 0 && total_bytes > r.max_total_bytes);
    }
    // One step towards the hub-wide bounds: forgets the topic whose newest row is the oldest,
    // or drops the oldest event (in the global order) from every topic holding it. Returns
    // the rows deleted; adds the topics changed to `changed`.
    std::size_t evict_topic(std::vector<TopicEntry*>& changed);
    std::size_t evict_oldest_event(std::vector<TopicEntry*>& changed);
    [[nodiscard]] bool over(const Topic& t, std::int64_t cutoff) const {
        const Retention& r = options.retention;
        return t.retained > r.max_events || t.bytes > r.max_bytes ||
               (t.retained > 0 && t.oldest_ms < cutoff);
    }
    void store_meta(std::string_view key, std::int64_t value) {
        set_meta.bind_text(1, key).bind(2, value).run();
    }

    // After a transaction: committed events join the cache and go to the listener, then
    // every publisher of the batch gets its answer.
    void settle(Commit& done, std::vector<log::AppendDone>& dones);

    log::Replay disk_replay(std::uint64_t after, std::uint64_t upto, const log::TopicFilter& filter,
                            std::size_t max_bytes) const;
};

// ---- opening ----

void SqliteStore::Impl::open() {
    namespace fs = std::filesystem;
    const fs::path path(options.path);
    std::error_code ec;
    if (path.has_parent_path() && !fs::exists(path.parent_path(), ec)) {
        fs::create_directories(path.parent_path(), ec);
        if (ec) {
            refuse("cannot create the directory " + path.parent_path().string() + ": " +
                   ec.message());
        }
    }
    if (fs::exists(path, ec) && !fs::is_regular_file(path, ec)) {
        refuse("not a regular file");
    }
    // One hub per file: two would hand out the same positions. flock() is separate from
    // the POSIX locks SQLite takes, and is released by the kernel if the process dies.
    lock_fd = ::open(options.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
        const int err = errno;
        if (err == EROFS || err == EACCES || err == EPERM) {
            refuse(std::string("cannot write the database: ") + std::strerror(err));
        }
        refuse(std::string("cannot open the database: ") + std::strerror(err));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            refuse("the database is in use by another herald process");
        }
        refuse(std::string("cannot lock the database: ") + std::strerror(err));
    }

    try {
        writer =
            sql::Db(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
        if (sqlite3_db_readonly(writer.get(), "main") == 1) {
            refuse("cannot write the database: it opened read-only");
        }
        writer.exec("PRAGMA busy_timeout = 5000");
        if (writer.text_of("PRAGMA journal_mode = WAL") != "wal") {
            refuse("cannot write the database: it cannot be put in WAL mode");
        }
        writer.exec(options.sync_full ? "PRAGMA synchronous = FULL"
                                      : "PRAGMA synchronous = NORMAL");
        // SQLite's quick check reads the whole file (about 100 MB/s here): worth it at every
        // start up to a size, beyond which damage is found when a page is read.
        std::error_code size_ec;
        const auto size = fs::file_size(path, size_ec);
        if (!size_ec && size <= kQuickCheckMaxBytes) {
            const std::string check = writer.text_of("PRAGMA quick_check");
            if (check != "ok") {
                refuse("the database is damaged (integrity check: " + check + ")");
            }
        } else {
            spdlog::info("{}: {} MiB: the integrity check at start is skipped above {} MiB", label,
                         size / (1024 * 1024), kQuickCheckMaxBytes / (1024 * 1024));
        }
        // A write at every start: an unwritable file or a full disk is found now, not at
        // the first publish.
        writer.exec("BEGIN IMMEDIATE");
        writer.exec(kSchema);
        writer.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1)");
        writer.exec(("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_ms', " +
                     std::to_string(base::unix_ms()) + ")")
                        .c_str());
        writer.exec("COMMIT");
        const std::string version = writer.text_of("SELECT value FROM meta WHERE key = 'schema'");
        if (version != std::to_string(kSchemaVersion)) {
            refuse("the database has schema version " + version + "; this herald knows " +
                   std::to_string(kSchemaVersion));
        }
        prepare_writer();
        reader = sql::Db(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
        reader.exec("PRAGMA busy_timeout = 5000");
        id_reader = sql::Db(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
        id_reader.exec("PRAGMA busy_timeout = 5000");
        find_id =
            sql::Stmt(id_reader, "SELECT pos FROM history WHERE id = ?1 AND pos <= ?2 LIMIT 1");
        read_topic = sql::Stmt(reader, "SELECT pos, id, type, data, private, retry, "
                                       "published_ms, topics FROM history "
                                       "WHERE topic_id = ?1 AND pos > ?2 AND pos <= ?3 "
                                       "ORDER BY pos");
        load();
    } catch (const sql::Error& e) {
        switch (e.primary()) {
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
            refuse(std::string("not a SQLite database, or a damaged one (") + e.what() + ")");
        case SQLITE_READONLY:
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH: refuse(std::string("cannot write the database (") + e.what() + ")");
        case SQLITE_FULL: refuse(std::string("cannot write the database: the disk is full"));
        case SQLITE_BUSY:
        case SQLITE_LOCKED: refuse("the database is in use by another herald process");
        default: refuse(std::string("cannot use the database: ") + e.what());
        }
    }
}

void SqliteStore::Impl::prepare_writer() {
    begin = sql::Stmt(writer, "BEGIN IMMEDIATE");
    commit = sql::Stmt(writer, "COMMIT");
    rollback = sql::Stmt(writer, "ROLLBACK");
    insert_event = sql::Stmt(writer, "INSERT INTO history (topic_id, pos, id, type, data, "
                                     "private, retry, published_ms, topics, bytes) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    insert_topic = sql::Stmt(writer, "INSERT INTO topics (name) VALUES (?1)");
    update_topic = sql::Stmt(writer, "UPDATE topics SET retained = ?2, bytes = ?3, "
                                     "dropped_upto = ?4, last_id = ?5 WHERE topic_id = ?1");
    delete_topic = sql::Stmt(writer, "DELETE FROM topics WHERE topic_id = ?1");
    oldest_rows = sql::Stmt(writer, "SELECT pos, bytes, published_ms FROM history "
                                    "WHERE topic_id = ?1 ORDER BY pos LIMIT ?2");
    delete_upto = sql::Stmt(writer, "DELETE FROM history WHERE topic_id = ?1 AND pos <= ?2");
    set_meta = sql::Stmt(writer, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)");
}

// The writer's topic table, as the database has it.
void SqliteStore::Impl::reload_topics() {
    topics.clear();
    backlog.clear();
    stale.clear();
    by_oldest.clear();
    by_newest.clear();
    total_bytes = 0;
    sql::Stmt all(writer, "SELECT topic_id, name, retained, bytes, dropped_upto, last_id "
                          "FROM topics");
    sql::Stmt oldest(writer, "SELECT pos, published_ms FROM history WHERE topic_id = ?1 "
                             "ORDER BY pos LIMIT 1");
    sql::Stmt newest(writer, "SELECT pos FROM history WHERE topic_id = ?1 "
                             "ORDER BY pos DESC LIMIT 1");
    while (all.step()) {
        Topic t;
        t.id = all.integer(0);
        t.retained = static_cast<std::size_t>(all.integer(2));
        t.bytes = static_cast<std::size_t>(all.integer(3));
        t.dropped_upto = static_cast<std::uint64_t>(all.integer(4));
        t.last_id = std::string(all.text(5));
        if (t.retained > 0) {
            sql::Resetting guard(oldest);
            if (oldest.bind(1, t.id).step()) {
                t.oldest_pos = static_cast<std::uint64_t>(oldest.integer(0));
                t.oldest_ms = oldest.integer(1);
            }
            sql::Resetting guard2(newest);
            if (newest.bind(1, t.id).step()) {
                t.newest_pos = static_cast<std::uint64_t>(newest.integer(0));
            }
        }
        std::string name(all.text(1));
        if (t.retained == 0) {
            stale.push_back(name); // kept by an older herald: forgotten by the next transaction
        } else if (over(t, applied_cutoff)) {
            backlog.insert(name);
        }
        total_bytes += t.bytes;
        auto& entry = *topics.emplace(std::move(name), std::move(t)).first;
        index(entry);
    }
}

void SqliteStore::Impl::index(TopicEntry& entry) {
    Topic& t = entry.second;
    if (t.indexed) {
        by_oldest.erase({t.indexed_oldest, &entry});
        by_newest.erase({t.indexed_newest, &entry});
    }
    t.indexed = t.retained > 0;
    if (t.indexed) {
        t.indexed_oldest = t.oldest_pos;
        t.indexed_newest = t.newest_pos;
        by_oldest.emplace(t.oldest_pos, &entry);
        by_newest.emplace(t.newest_pos, &entry);
    }
}

std::size_t SqliteStore::Impl::evict_topic(std::vector<TopicEntry*>& changed) {
    TopicEntry& entry = *by_newest.begin()->second;
    Topic& t = entry.second;
    const std::size_t rows = t.retained;
    delete_upto.bind(1, t.id).bind(2, t.newest_pos).run();
    total_bytes -= std::min(total_bytes, t.bytes);
    t.dropped_upto = std::max(t.dropped_upto, t.newest_pos);
    t.retained = 0;
    t.bytes = 0;
    t.oldest_ms = std::numeric_limits<std::int64_t>::max();
    index(entry);
    changed.push_back(&entry);
    return rows;
}

std::size_t SqliteStore::Impl::evict_oldest_event(std::vector<TopicEntry*>& changed) {
    const std::uint64_t position = by_oldest.begin()->first;
    std::vector<TopicEntry*> holders;
    for (auto it = by_oldest.begin(); it != by_oldest.end() && it->first == position; ++it) {
        holders.push_back(it->second);
    }
    for (TopicEntry* entry : holders) {
        Topic& t = entry->second;
        {
            // The row itself (its bytes), then the one after it, the topic's new oldest.
            sql::Resetting guard(oldest_rows);
            oldest_rows.bind(1, t.id).bind(2, std::int64_t{2});
            if (oldest_rows.step()) {
                const auto bytes = static_cast<std::size_t>(oldest_rows.integer(1));
                t.bytes -= std::min(t.bytes, bytes);
                total_bytes -= std::min(total_bytes, bytes);
            }
            if (oldest_rows.step()) {
                t.oldest_pos = static_cast<std::uint64_t>(oldest_rows.integer(0));
                t.oldest_ms = oldest_rows.integer(2);
            } else {
                t.oldest_ms = std::numeric_limits<std::int64_t>::max();
            }
        }
        delete_upto.bind(1, t.id).bind(2, position).run();
        t.retained -= 1;
        t.dropped_upto = std::max(t.dropped_upto, position);
        index(*entry);
        changed.push_back(entry);
    }
    return holders.size();
}

log::EventPtr SqliteStore::Impl::read_event(const sql::Stmt& st, const std::string& topic) {
    log::NewEvent ev;
    ev.type = std::string(st.text(2));
    ev.data = std::string(st.text(3));
    ev.is_private = st.integer(4) != 0;
    if (!st.is_null(5)) {
        ev.retry_ms = static_cast<std::uint32_t>(st.integer(5));
    }
    if (!st.is_null(7)) {
        ev.topics = decode_topics(st.text(7));
    } else {
        ev.topics.push_back(topic);
    }
    return log::make_event(std::move(ev), static_cast<std::uint64_t>(st.integer(0)),
                           std::string(st.text(1)), st.integer(6));
}

// At start: positions, the topic table, and the newest events of each topic into memory.
void SqliteStore::Impl::load() {
    sql::Stmt meta(writer, "SELECT key, value FROM meta");
    std::uint64_t last = 0;
    while (meta.step()) {
        const std::string_view key = meta.text(0);
        const auto value = static_cast<std::uint64_t>(meta.integer(1));
        if (key == "last_position") {
            last = value;
        } else if (key == "reserved_max") {
            reserved_max = value;
        } else if (key == "erased_dropped_upto") {
            // Which topics dropped what is not kept on disk: every name gets the newest.
            erased.raise_all(value);
            erased_dropped_upto_written = value;
        }
    }
    // Positions go on from the last one written, or from the clock if that is ahead (as
    // the memory store starts), and past any decimal id a publisher chose.
    next_position = std::max<std::uint64_t>(last + 1, static_cast<std::uint64_t>(base::unix_us()));
    if (reserved_max < kMaxReserved) {
        next_position = std::max(next_position, reserved_max + 1);
    }
    committed.store(next_position - 1);
    cache.emplace(cache_retention(options), next_position);

    reload_topics();
    const std::size_t keep = cache_retention(options).max_events;
    std::map<std::uint64_t, log::EventPtr> recent;
    std::vector<std::pair<const std::string*, std::uint64_t>> floors;
    sql::Stmt newest(writer, "SELECT pos, id, type, data, private, retry, published_ms, topics "
                             "FROM history WHERE topic_id = ?1 ORDER BY pos DESC LIMIT ?2");
    for (auto& [name, t] : topics) {
        if (t.retained == 0) {
            erased.raise(name, t.dropped_upto);
            cache->raise_floor(name, t.dropped_upto);
            continue;
        }
        views.emplace(name, static_cast<const TopicView&>(t));
        std::uint64_t floor = t.dropped_upto;
        std::size_t n = 0;
        sql::Resetting guard(newest);
        newest.bind(1, t.id).bind(2, static_cast<std::int64_t>(keep + 1));
        while (newest.step()) {
            const auto pos = static_cast<std::uint64_t>(newest.integer(0));
            if (n++ == keep) {
                floor = std::max(floor, pos); // the newest one memory will not hold
                break;
            }
            if (!recent.contains(pos)) {
                recent.emplace(pos, read_event(newest, name));
            }
        }
        floors.emplace_back(&name, floor);
    }
    // In position order, as if appended now: each topic keeps its newest.
    for (auto& [pos, ev] : recent) {
        cache->insert(ev);
    }
    for (const auto& [name, floor] : floors) {
        cache->raise_floor(*name, floor);
    }
    cache->raise_erased_floor(erased_dropped_upto_written);
    history_figures = {by_newest.size(), total_bytes, 0, 0};
    spdlog::info("{}: {} topic(s), {} event(s) in memory; ids go on from {}", label, topics.size(),
                 cache->size(), next_position);
}

// ---- the writer ----

std::pair<const std::string, SqliteStore::Impl::Topic>&
SqliteStore::Impl::topic_for(const std::string& name) {
    auto it = topics.find(name);
    if (it == topics.end()) {
        insert_topic.bind_blob(1, name).run();
        Topic t;
        t.id = sqlite3_last_insert_rowid(writer.get());
        // What a forgotten topic of this name dropped still counts (the writer is the only
        // thread that changes `erased`).
        t.dropped_upto = erased.of(name);
        it = topics.emplace(name, std::move(t)).first;
    }
    return *it;
}

// Drops the topic's oldest rows while it is over a bound, at most `budget` of them.
void SqliteStore::Impl::trim(const std::string& name, Topic& t, std::int64_t cutoff,
                             std::size_t& budget) {
    if (!over(t, cutoff)) {
        backlog.erase(name);
        return;
    }
    const Retention& r = options.retention;
    std::uint64_t cut = 0;
    const std::size_t bytes_before = t.bytes;
    {
        sql::Resetting guard(oldest_rows);
        oldest_rows.bind(1, t.id).bind(2, static_cast<std::int64_t>(budget + 1));
        t.oldest_ms = std::numeric_limits<std::int64_t>::max(); // unless a row is left
        while (oldest_rows.step()) {
            const std::int64_t ms = oldest_rows.integer(2);
            t.oldest_ms = ms;
            t.oldest_pos = static_cast<std::uint64_t>(oldest_rows.integer(0));
            if (budget == 0 ||
                (t.retained <= r.max_events && t.bytes <= r.max_bytes && ms >= cutoff)) {
                break;
            }
            cut = static_cast<std::uint64_t>(oldest_rows.integer(0));
            t.retained -= 1;
            t.bytes -= std::min(t.bytes, static_cast<std::size_t>(oldest_rows.integer(1)));
            --budget;
        }
        if (t.retained == 0) {
            t.oldest_ms = std::numeric_limits<std::int64_t>::max();
        }
    }
    if (cut != 0) {
        delete_upto.bind(1, t.id).bind(2, cut).run();
        t.dropped_upto = std::max(t.dropped_upto, cut);
        total_bytes -= std::min(total_bytes, bytes_before - t.bytes);
        index(*topics.find(name));
    }
    if (over(t, cutoff)) {
        backlog.insert(name);
    } else {
        backlog.erase(name);
    }
}

Commit SqliteStore::Impl::transact(std::vector<log::EventPtr>&& batch, std::int64_t cutoff) {
    Commit out;
    out.events = std::move(batch);
    if (cutoff != applied_cutoff) {
        for (const auto& [name, t] : topics) {
            if (t.retained > 0 && t.oldest_ms < cutoff) {
                backlog.insert(name);
            }
        }
        applied_cutoff = cutoff;
    }
    if (out.events.empty() && backlog.empty() && stale.empty() && !over_caps()) {
        return out; // nothing to write: no transaction
    }
    ++stamp;
    std::vector<TopicEntry*> touched;
    auto touch = [&](TopicEntry& entry) {
        if (entry.second.stamp != stamp) {
            entry.second.stamp = stamp;
            touched.push_back(&entry);
        }
    };
    std::vector<std::pair<const std::string*, std::uint64_t>> erased_now; // name, floor
    std::uint64_t erased_upto = 0;
    std::uint64_t evicted_topics = 0;
    std::uint64_t evicted_bytes = 0;
    const std::uint64_t reserved_before = reserved_max;
    // Within the hub-wide bounds before this batch: what the batch pushes over them goes in
    // this transaction, whatever it costs (as for the per-topic bounds). Over them already
    // (bounds lowered since the last run), the work is spread over transactions.
    const bool was_over = over_caps();
    const auto started = base::MonoClock::now();
    try {
        begin.run();
        const bool keep = options.retention.max_events > 0;
        std::size_t inserted = 0;
        for (const log::EventPtr& ptr : out.events) {
            const log::Event& ev = *ptr;
            if (!keep) {
                // No history: no topic row, only the floor a replay needs.
                erased_upto = std::max(erased_upto, ev.position);
                continue;
            }
            const std::string topics_blob = ev.topics.size() > 1 ? encode_topics(ev.topics) : "";
            for (const auto& name : ev.topics) {
                auto& entry = topic_for(name);
                Topic& t = entry.second;
                touch(entry);
                t.last_id = ev.id;
                insert_event.bind(1, t.id)
                    .bind(2, ev.position)
                    .bind_text(3, ev.id)
                    .bind_text(4, ev.type)
                    .bind_blob(5, ev.data)
                    .bind(6, std::int64_t{ev.is_private ? 1 : 0});
                if (ev.retry_ms) {
                    insert_event.bind(7, std::int64_t{*ev.retry_ms});
                }
                insert_event.bind(8, ev.published_ms);
                if (!topics_blob.empty()) {
                    insert_event.bind_blob(9, topics_blob);
                }
                insert_event.bind(10, static_cast<std::int64_t>(ev.footprint())).run();
                if (t.retained++ == 0) {
                    t.oldest_ms = ev.published_ms;
                    t.oldest_pos = ev.position;
                }
                t.newest_pos = ev.position;
                t.bytes += ev.footprint();
                total_bytes += ev.footprint();
                ++inserted;
            }
            if (auto n = as_position(ev.id); n && *n != ev.position && *n < kMaxReserved) {
                reserved_max = std::max(reserved_max, *n);
            }
        }
        for (TopicEntry* entry : touched) {
            index(*entry);
        }
        // Retention: what this batch pushed over a bound (always room for that, so a
        // topic never grows past its caps), then work left over, within the budget.
        std::size_t budget = kTrimBudget + inserted;
        for (std::size_t i = 0, n = touched.size(); i < n; ++i) {
            trim(touched[i]->first, touched[i]->second, cutoff, budget);
        }
        for (auto it = backlog.begin(); it != backlog.end() && budget > 0;) {
            auto found = topics.find(*it++);
            if (found == topics.end()) {
                continue;
            }
            touch(*found);
            trim(found->first, found->second, cutoff, budget);
        }
        // The hub-wide bounds: whole topics first, then the oldest events.
        std::vector<TopicEntry*> changed;
        while (over_caps() && !by_newest.empty() && (!was_over || budget > 0)) {
            const Retention& r = options.retention;
            std::size_t rows = 0;
            if (r.max_topics > 0 && by_newest.size() > r.max_topics) {
                rows = evict_topic(changed);
                evicted_topics += rows;
            } else {
                rows = evict_oldest_event(changed);
                evicted_bytes += rows;
            }
            budget -= std::min(budget, std::max<std::size_t>(rows, 1));
            for (TopicEntry* entry : changed) {
                touch(*entry);
            }
            changed.clear();
        }
        for (const std::string& name : stale) {
            if (auto found = topics.find(name); found != topics.end()) {
                touch(*found);
            }
        }
        // A topic that retains no row is forgotten, as the memory store drops an empty
        // ring; what it dropped is kept in the floors.
        for (TopicEntry* entry : touched) {
            const Topic& t = entry->second;
            if (t.retained == 0) {
                delete_topic.bind(1, t.id).run();
                erased_upto = std::max(erased_upto, t.dropped_upto);
                erased_now.emplace_back(&entry->first, t.dropped_upto);
                continue;
            }
            update_topic.bind(1, t.id)
                .bind(2, static_cast<std::int64_t>(t.retained))
                .bind(3, static_cast<std::int64_t>(t.bytes))
                .bind(4, t.dropped_upto)
                .bind_text(5, t.last_id)
                .run();
        }
        if (!out.events.empty()) {
            store_meta("last_position", static_cast<std::int64_t>(out.events.back()->position));
        }
        if (reserved_max != reserved_before) {
            store_meta("reserved_max", static_cast<std::int64_t>(reserved_max));
        }
        if (erased_upto > erased_dropped_upto_written) {
            store_meta("erased_dropped_upto", static_cast<std::int64_t>(erased_upto));
        }
        commit.run();
    } catch (const sql::Error& e) {
        // Nothing of the transaction stays: roll back, and take the counters back from the
        // database.
        out.error = log::AppendError::unavailable;
        out.reason = describe(e);
        reserved_max = reserved_before;
        try {
            if (sqlite3_get_autocommit(writer.get()) == 0) {
                rollback.run();
            }
            reload_topics();
        } catch (const sql::Error& again) {
            spdlog::error("{}: cannot roll back: {}", label, again.what());
        }
        std::lock_guard lock(state_mu);
        if (!failure) {
            spdlog::error("{}: writes fail: {}; publishes get 503 until a write succeeds", label,
                          out.reason);
        }
        failure = out.reason;
        failed_transactions.fetch_add(1, std::memory_order_relaxed);
        return out;
    }
    commit_ns.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(base::MonoClock::now() - started)
                .count()),
        std::memory_order_relaxed);
    transactions.fetch_add(1, std::memory_order_relaxed);
    events_written.fetch_add(out.events.size(), std::memory_order_relaxed);
    erased_dropped_upto_written = std::max(erased_dropped_upto_written, erased_upto);
    evicted_max_topics += evicted_topics;
    evicted_max_total_bytes += evicted_bytes;
    stale.clear();

    std::lock_guard lock(state_mu);
    if (failure) {
        spdlog::info("{}: writes succeed again", label);
        failure.reset();
    }
    for (TopicEntry* entry : touched) {
        if (entry->second.retained > 0) {
            views.insert_or_assign(entry->first, static_cast<const TopicView&>(entry->second));
        }
    }
    if (options.retention.max_events == 0) {
        erased.raise_all(erased_upto); // a hub that keeps no history knows no topic
    }
    for (const auto& [name, floor] : erased_now) {
        erased.raise(*name, floor);
        views.erase(*name);
        backlog.erase(*name);
        topics.erase(topics.find(*name)); // last: *name lives in this map
    }
    history_figures = {by_newest.size(), total_bytes, evicted_max_topics, evicted_max_total_bytes};
    return out;
}

void SqliteStore::Impl::run_writer() {
    std::vector<log::EventPtr> batch;
    std::vector<log::AppendDone> dones;
    for (;;) {
        std::int64_t cutoff = 0;
        {
            std::unique_lock lock(queue_mu);
            queue_cv.wait(lock, [&] { return !queue.empty() || stopping || maintenance; });
            if (queue.empty() && stopping) {
                return;
            }
            batch.swap(queue);
            dones.swap(queue_done);
            maintenance = false;
            cutoff = age_cutoff;
        }
        Commit done = transact(std::move(batch), cutoff);
        batch.clear();
        const bool failed = done.error != log::AppendError::none;
        if (!done.events.empty()) {
            settle(done, dones);
        }
        dones.clear();
        // Retention left over continues in the next transactions, between batches; after
        // a failure it waits for the next publish or expiry tick.
        if ((!backlog.empty() || !stale.empty() || over_caps()) && !failed) {
            std::lock_guard lock(queue_mu);
            maintenance = true;
        }
    }
}

void SqliteStore::Impl::settle(Commit& done, std::vector<log::AppendDone>& dones) {
    const bool ok = done.error == log::AppendError::none;
    if (ok) {
        for (const log::EventPtr& ev : done.events) {
            cache->insert(ev);
        }
        committed.store(done.events.back()->position, std::memory_order_release);
        if (log::LogListener* l = listener.load(std::memory_order_acquire)) {
            l->settled(done.events);
        }
    }
    {
        std::lock_guard lock(append_mu);
        for (const log::EventPtr& ev : done.events) {
            pending_ids.erase(ev->id);
        }
    }
    for (std::size_t i = 0; i < done.events.size() && i < dones.size(); ++i) {
        if (!dones[i]) {
            continue;
        }
        if (ok) {
            dones[i]({done.events[i], log::AppendError::none, {}});
        } else {
            dones[i]({nullptr, log::AppendError::unavailable, done.reason});
        }
    }
}

// ---- replay from the database ----

log::Replay SqliteStore::Impl::disk_replay(std::uint64_t after, std::uint64_t upto,
                                           const log::TopicFilter& filter,
                                           std::size_t max_bytes) const {
    log::Replay out;
    std::vector<std::pair<std::int64_t, std::string>> covered; // (topic_id, name)
    {
        std::lock_guard lock(state_mu);
        auto cover = [&](const std::string& name, const TopicView& v) {
            covered.emplace_back(v.id, name);
            out.gap = out.gap || v.dropped_upto > after;
        };
        for (const auto& topic : filter.exact) {
            if (auto it = views.find(topic); it != views.end()) {
                cover(it->first, it->second);
            } else if (erased.of(topic) > after) {
                out.gap = true; // a forgotten topic of this name (or its bucket) dropped some
            }
        }
        if (filter.pattern) {
            // A covered topic may be any that was forgotten.
            out.gap = out.gap || erased.max() > after;
            for (const auto& [name, view] : views) {
                if (filter.pattern(name) && std::find(filter.exact.begin(), filter.exact.end(),
                                                      name) == filter.exact.end()) {
                    cover(name, view);
                }
            }
        }
    }
    std::sort(covered.begin(), covered.end());
    covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
    std::map<std::uint64_t, log::EventPtr> merged;
    // Positions are below 2^63 (SQLite integers are signed): a bound above, such as ~0 for
    // "every position", must not wrap to a negative one, which would select nothing.
    constexpr auto kMaxSql = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    // Each topic is read in position order until its own events reach the page's bytes:
    // the page cannot go past that topic's last event read (`cut`), since its next one is
    // unread, so later topics stop there too. Memory holds at most a page per topic read.
    std::uint64_t cut = upto;
    bool beyond = false; // events remain after `cut`
    std::lock_guard lock(reader_mu);
    for (const auto& [id, name] : covered) {
        sql::Resetting guard(read_topic);
        read_topic.bind(1, id).bind(2, std::min(after, kMaxSql)).bind(3, std::min(upto, kMaxSql));
        std::size_t bytes = 0;
        while (read_topic.step()) {
            const auto pos = static_cast<std::uint64_t>(read_topic.integer(0));
            if (pos > cut) {
                beyond = true; // the page cannot reach it
                break;
            }
            auto it = merged.find(pos);
            if (it == merged.end()) {
                it = merged.emplace(pos, read_event(read_topic, name)).first;
            }
            bytes += it->second->frame.size();
            if (bytes >= max_bytes) {
                cut = pos;
                beyond = beyond || read_topic.step(); // another of this topic is after it
                break;
            }
        }
    }
    // Topics read before the cut came down may hold events after it.
    if (auto first_after = merged.upper_bound(cut); first_after != merged.end()) {
        beyond = true;
        merged.erase(first_after, merged.end());
    }
    out.events.reserve(merged.size());
    for (auto& [pos, ev] : merged) {
        out.events.push_back(std::move(ev));
    }
    log::cut_page(out, after, max_bytes, beyond);
    return out;
}

// ---- SqliteStore ----

SqliteStore::SqliteStore(SqliteOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
    try {
        impl_->open();
    } catch (...) {
        if (impl_->lock_fd >= 0) {
            impl_->find_id = sql::Stmt();
            impl_->read_topic = sql::Stmt();
            impl_->reader.close();
            impl_->id_reader.close();
            impl_->writer.close();
            ::close(impl_->lock_fd);
            impl_->lock_fd = -1;
        }
        throw;
    }
    // Caps lowered since the last run are applied at once, not at the first publish.
    impl_->maintenance = !impl_->backlog.empty() || !impl_->stale.empty() || impl_->over_caps();
    impl_->writer_thread = std::thread([impl = impl_.get()] { impl->run_writer(); });
}

SqliteStore::~SqliteStore() {
    close();
    // Statements before their connections, connections before the lock.
    impl_->find_id = sql::Stmt();
    impl_->read_topic = sql::Stmt();
    impl_->begin = sql::Stmt();
    impl_->commit = sql::Stmt();
    impl_->rollback = sql::Stmt();
    impl_->insert_event = sql::Stmt();
    impl_->insert_topic = sql::Stmt();
    impl_->update_topic = sql::Stmt();
    impl_->delete_topic = sql::Stmt();
    impl_->oldest_rows = sql::Stmt();
    impl_->delete_upto = sql::Stmt();
    impl_->set_meta = sql::Stmt();
    impl_->reader.close();
    impl_->id_reader.close();
    impl_->writer.close();
    if (impl_->lock_fd >= 0) {
        ::close(impl_->lock_fd);
    }
}

void SqliteStore::close() {
    {
        std::lock_guard lock(impl_->queue_mu);
        impl_->stopping = true;
    }
    impl_->queue_cv.notify_one();
    if (impl_->writer_thread.joinable()) {
        impl_->writer_thread.join();
    }
}

void SqliteStore::set_listener(log::LogListener* listener) {
    impl_->listener.store(listener, std::memory_order_release);
}

void SqliteStore::append(log::NewEvent&& event, log::AppendDone done) {
    Impl& s = *impl_;
    auto refuse = [&done](log::AppendError error, std::string reason) {
        if (done) {
            done({nullptr, error, std::move(reason)});
        }
    };
    std::unique_lock lock(s.append_mu);
    std::string id = std::move(event.id);
    std::uint64_t position = s.next_position;
    if (id.empty()) {
        // Skip positions whose decimal form a publisher has taken as an id.
        while (!s.reserved.empty() && *s.reserved.begin() < position) {
            s.reserved.erase(s.reserved.begin());
        }
        while (s.reserved.contains(position)) {
            ++position;
        }
        id = std::to_string(position);
    } else {
        if (s.pending_ids.contains(id) || s.cache->position_of(id)) {
            lock.unlock();
            return refuse(log::AppendError::duplicate_id, {});
        }
        try {
            std::lock_guard reading(s.ids_mu);
            sql::Resetting guard(s.find_id);
            if (s.find_id.bind_text(1, id).bind(2, s.committed.load()).step()) {
                lock.unlock();
                return refuse(log::AppendError::duplicate_id, {});
            }
        } catch (const sql::Error& e) {
            lock.unlock();
            return refuse(log::AppendError::unavailable, describe(e));
        }
        if (auto n = as_position(id); n && *n >= position) {
            s.reserved.insert(*n);
        }
    }
    auto ev = log::make_event(std::move(event), position, std::move(id), base::unix_ms());
    {
        // Under append_mu too: the queue is in position order.
        std::lock_guard queued(s.queue_mu);
        if (s.stopping) {
            lock.unlock();
            return refuse(log::AppendError::unavailable, "the hub is shutting down");
        }
        s.queue.push_back(ev);
        s.queue_done.push_back(std::move(done));
    }
    s.queue_cv.notify_one();
    s.next_position = position + 1;
    s.pending_ids.insert(ev->id);
}

std::optional<std::uint64_t> SqliteStore::position_of(std::string_view id) const {
    Impl& s = *impl_;
    if (auto pos = s.cache->position_of(id)) {
        return pos;
    }
    try {
        std::lock_guard lock(s.ids_mu);
        sql::Resetting guard(s.find_id);
        if (s.find_id.bind_text(1, id).bind(2, s.committed.load()).step()) {
            return static_cast<std::uint64_t>(s.find_id.integer(0));
        }
    } catch (const sql::Error& e) {
        spdlog::warn("{}: cannot look an id up: {}", s.label, e.what());
    }
    return std::nullopt;
}

std::uint64_t SqliteStore::last_position() const {
    return impl_->committed.load(std::memory_order_acquire);
}

log::Replay SqliteStore::replay(std::uint64_t after, std::uint64_t upto,
                                const log::TopicFilter& filter, std::size_t max_bytes) const {
    Impl& s = *impl_;
    log::Replay fast = s.cache->replay(after, upto, filter, max_bytes);
    if (!fast.gap) {
        s.memory_replays.fetch_add(1, std::memory_order_relaxed);
        return fast;
    }
    // Memory lacks part of the range: the database has everything retained.
    s.disk_replays.fetch_add(1, std::memory_order_relaxed);
    try {
        return s.disk_replay(after, upto, filter, max_bytes);
    } catch (const sql::Error& e) {
        spdlog::warn("{}: replay from the database failed, serving memory's part: {}", s.label,
                     e.what());
        return fast;
    }
}

void SqliteStore::expire(std::int64_t now_ms) {
    Impl& s = *impl_;
    s.cache->expire(now_ms);
    if (s.options.retention.max_age_ms <= 0) {
        return;
    }
    {
        std::lock_guard lock(s.queue_mu);
        s.age_cutoff = now_ms - s.options.retention.max_age_ms;
        s.maintenance = true;
    }
    s.queue_cv.notify_one();
}

std::vector<log::TopicStats> SqliteStore::topics(const log::TopicRange& range) const {
    std::lock_guard lock(impl_->state_mu);
    const auto& views = impl_->views;
    std::vector<log::TopicStats> out;
    auto it = views.lower_bound(range.prefix);
    if (!range.after.empty() && range.after >= range.prefix) {
        it = views.upper_bound(range.after);
    }
    for (; it != views.end() && out.size() < range.limit; ++it) {
        const auto& [name, v] = *it;
        if (!name.starts_with(range.prefix)) {
            break; // the names with a prefix are consecutive
        }
        out.push_back({name, v.retained, v.bytes, v.last_id});
    }
    return out;
}

log::HistoryFigures SqliteStore::history() const {
    std::lock_guard lock(impl_->state_mu);
    return impl_->history_figures;
}

std::optional<std::string> SqliteStore::trouble() const {
    std::lock_guard lock(impl_->state_mu);
    return impl_->failure;
}

std::optional<log::StoreFigures> SqliteStore::figures() const {
    const Impl& s = *impl_;
    log::StoreFigures f;
    f.transactions = s.transactions.load(std::memory_order_relaxed);
    f.events_written = s.events_written.load(std::memory_order_relaxed);
    f.failed_transactions = s.failed_transactions.load(std::memory_order_relaxed);
    f.memory_replays = s.memory_replays.load(std::memory_order_relaxed);
    f.disk_replays = s.disk_replays.load(std::memory_order_relaxed);
    f.commit_seconds = static_cast<double>(s.commit_ns.load(std::memory_order_relaxed)) / 1e9;
    return f;
}

std::uint64_t SqliteStore::memory_replays() const noexcept {
    return impl_->memory_replays.load(std::memory_order_relaxed);
}

std::uint64_t SqliteStore::disk_replays() const noexcept {
    return impl_->disk_replays.load(std::memory_order_relaxed);
}

} // namespace herald::store
