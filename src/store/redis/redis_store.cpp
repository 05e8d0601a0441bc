// The Redis store: builds the parts (writer, follower, read pool) over one NodeState, and
// answers the reads. Replays read per-topic histories in pages of 1,000 events and at most
// 16 topics per script call, so a large replay is many short calls, never one long one.
#include "store/redis/redis_store.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#include "store/redis/connection.hpp"
#include "store/redis/follower.hpp"
#include "store/redis/node_state.hpp"
#include "store/redis/reader_pool.hpp"
#include "store/redis/record.hpp"
#include "store/redis/url.hpp"
#include "store/redis/writer.hpp"

namespace herald::store {

namespace {

using redis::element;
using redis::number_of;
using redis::Reply;
using redis::Script;
using redis::size_of;
using redis::text_of;

constexpr std::size_t kPage = 1000;
constexpr std::size_t kTopicsPerCall = 16;
constexpr std::string_view kPageText = "1000";
// The fewest events a paged replay asks Redis for at once (its first call, before it knows
// how large the events are).
constexpr std::size_t kMinChunk = 16;
constexpr auto kHistoryFresh = std::chrono::seconds(1);

redis::NodeConfig configure(const RedisOptions& options) {
    std::string error;
    auto url = redis::parse_url(options.url, error);
    if (!url) {
        throw StoreError(error);
    }
    redis::NodeConfig cfg;
    cfg.url = std::move(*url);
    cfg.label = cfg.url.redacted();
    cfg.timeout = std::chrono::milliseconds(std::max(options.timeout_ms, 1U));
    cfg.retention = options.retention;
    cfg.prefix = "herald:";
    cfg.channel = "herald:events:" + std::to_string(cfg.url.db);
    return cfg;
}

} // namespace

struct RedisStore::Impl {
    explicit Impl(redis::NodeConfig cfg) : node(std::move(cfg)), pool(node), follower(node) {}

    redis::NodeState node;
    // The newest events of each topic (store.cache_events), fed by the follower.
    std::optional<MemoryStore> cache;
    mutable redis::ReaderPool pool;
    redis::Follower follower;
    std::unique_ptr<redis::Writer> writer;
    std::atomic<bool> closed{false};
    mutable std::atomic<std::uint64_t> memory_replays{0};

    mutable std::mutex history_mu;
    mutable log::HistoryFigures history_cache;
    mutable std::chrono::steady_clock::time_point history_at{};
    mutable std::uint64_t history_written = static_cast<std::uint64_t>(-1);

    [[nodiscard]] std::string key(std::string_view name) const {
        return node.config.prefix + std::string(name);
    }
    log::Replay read_replay(redis::Connection& conn, std::uint64_t after, std::uint64_t upto,
                            const log::TopicFilter& filter, std::size_t max_bytes) const;
};

RedisStore::RedisStore(RedisOptions options) : impl_(std::make_unique<Impl>(configure(options))) {
    redis::NodeState& node = impl_->node;
    const redis::NodeConfig& cfg = node.config;
    std::string error;
    auto conn = redis::Connection::open(cfg.url, cfg.timeout,
                                        {.load_scripts = true, .check_version = true}, error);
    if (!conn) {
        throw StoreError(cfg.label + ": " + error);
    }
    if (!impl_->follower.start(error)) {
        throw StoreError(cfg.label + ": " + error);
    }
    if (options.cache_events > 0 && options.retention.max_events > 0) {
        // Everything before this node's start is only in Redis: the cache says so (a gap
        // in memory), and such replays read Redis.
        Retention r = options.retention;
        r.max_events = std::min(r.max_events, options.cache_events);
        const std::uint64_t start = impl_->follower.last_position();
        impl_->cache.emplace(r, start + 1);
        impl_->cache->raise_all_floors(start);
        node.cache = &*impl_->cache;
    }
    impl_->writer = std::make_unique<redis::Writer>(node, std::move(conn));
    node.health.on_down([w = impl_->writer.get()] { w->wake(); });
    impl_->writer->start();
    spdlog::info("{}: node {} follows the cluster from position {}", cfg.label,
                 options.node_name.empty() ? "(unnamed)" : options.node_name,
                 impl_->follower.last_position());
}

RedisStore::~RedisStore() {
    close();
}

std::string RedisStore::redact(std::string_view url) {
    return redis::redact(url);
}

void RedisStore::set_listener(log::LogListener* listener) {
    if (!impl_->closed.load()) {
        impl_->follower.set_listener(listener);
    }
}

void RedisStore::append(log::NewEvent&& event, log::AppendDone done) {
    impl_->writer->append(std::move(event), std::move(done));
}

void RedisStore::close() {
    if (impl_->closed.exchange(true)) {
        return;
    }
    impl_->writer->close();
    // This node's acknowledged events reach its own listener before the store goes.
    impl_->follower.wait_for(impl_->node.seen(), impl_->node.config.timeout);
    impl_->follower.close();
}

std::optional<std::uint64_t> RedisStore::position_of(std::string_view id) const {
    if (impl_->node.health.is_down()) {
        return std::nullopt;
    }
    std::string error;
    auto conn = impl_->pool.take(error);
    if (!conn) {
        return std::nullopt;
    }
    const std::string_view args[] = {impl_->node.config.prefix, id};
    Reply r = conn->eval(Script::lookup, args);
    return number_of(r.get());
}

std::uint64_t RedisStore::last_position() const {
    return impl_->follower.last_position();
}

log::Replay RedisStore::replay(std::uint64_t after, std::uint64_t upto,
                               const log::TopicFilter& filter, std::size_t max_bytes) const {
    if (auto why = impl_->node.health.reason()) {
        return {{}, false, std::move(*why)};
    }
    if (impl_->cache && upto <= impl_->follower.last_position()) {
        // The follower puts every live event in the cache before the hub hears of it, so
        // up to what it has delivered the cache is complete unless it reports a gap.
        log::Replay fast = impl_->cache->replay(after, upto, filter, max_bytes);
        if (!fast.gap) {
            impl_->memory_replays.fetch_add(1, std::memory_order_relaxed);
            return fast;
        }
    }
    impl_->node.counters.disk_replays.fetch_add(1, std::memory_order_relaxed);
    std::string error;
    auto conn = impl_->pool.take(error);
    if (!conn) {
        return {{}, false, impl_->node.config.label + ": " + error};
    }
    return impl_->read_replay(*conn, after, upto, filter, max_bytes);
}

log::Replay RedisStore::Impl::read_replay(redis::Connection& conn, std::uint64_t after,
                                          std::uint64_t upto, const log::TopicFilter& filter,
                                          std::size_t max_bytes) const {
    const redis::NodeConfig& cfg = node.config;
    auto failed = [&](const Reply& r) {
        return log::Replay{
            {},
            false,
            cfg.label + ": cannot read the history: " + (r ? std::string(r.text()) : conn.error())};
    };
    std::vector<std::string> names = filter.exact;
    if (filter.pattern) {
        // Every topic that retains events, by name, a page at a time.
        const std::string names_key = key("names");
        std::string start = "-";
        for (;;) {
            Reply r = conn.call({"ZRANGEBYLEX", names_key, start, "+", "LIMIT", "0", kPageText});
            if (!r || r.is_error()) {
                return failed(r);
            }
            const std::size_t n = size_of(r.get());
            for (std::size_t i = 0; i < n; ++i) {
                const std::string_view name = text_of(element(r.get(), i));
                if (filter.pattern(name)) {
                    names.emplace_back(name);
                }
            }
            if (n < kPage) {
                break;
            }
            start = "(" + std::string(text_of(element(r.get(), n - 1)));
        }
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());

    log::Replay out;
    std::map<std::uint64_t, log::EventPtr> merged;
    const std::string upto_text = std::to_string(upto);
    // Each call reads a group's events in position order from its cursor on, in chunks
    // sized from the events seen so far so that a page takes a few calls, not hundreds.
    // A group stops once its events reach the page's bytes: the page cannot go past its
    // last event read (`cut`), since the next one is unread, so later groups stop there.
    std::uint64_t cut = upto;
    bool beyond = false; // events remain after `cut`
    std::size_t seen_bytes = 0;
    std::size_t seen_events = 0;
    for (std::size_t first = 0; first < names.size(); first += kTopicsPerCall) {
        const std::size_t last = std::min(first + kTopicsPerCall, names.size());
        std::uint64_t cursor = after;
        std::size_t bytes = 0;
        for (;;) {
            std::size_t chunk = kPage;
            if (max_bytes != log::kWholeReplay && seen_events > 0) {
                const std::size_t average = std::max<std::size_t>(1, seen_bytes / seen_events);
                const std::size_t left = max_bytes > bytes ? max_bytes - bytes : 0;
                chunk = std::clamp<std::size_t>(left / average + 1, kMinChunk, kPage);
            } else if (max_bytes != log::kWholeReplay) {
                chunk = kMinChunk;
            }
            const std::string cursor_text = std::to_string(cursor);
            const std::string chunk_text = std::to_string(chunk);
            std::vector<std::string_view> args = {cfg.prefix, cursor_text, upto_text, chunk_text};
            args.insert(args.end(), names.begin() + static_cast<std::ptrdiff_t>(first),
                        names.begin() + static_cast<std::ptrdiff_t>(last));
            Reply r = conn.eval(Script::read_topics, args);
            if (!r || r.is_error()) {
                return failed(r);
            }
            const redisReply* records = element(r.get(), 0);
            const std::uint64_t before = cursor;
            bool full = false;
            // Each event's head, then its body.
            for (std::size_t i = 0; i + 1 < size_of(records); i += 2) {
                const std::string_view rec = text_of(element(records, i));
                const auto head = redis::read_head(rec);
                if (!head) {
                    continue;
                }
                if (full || head->position > cut) {
                    beyond = true; // the page cannot reach it
                    break;
                }
                cursor = std::max(cursor, head->position);
                auto it = merged.find(head->position);
                if (it == merged.end()) {
                    auto ev = redis::decode(rec, text_of(element(records, i + 1)));
                    if (!ev) {
                        continue;
                    }
                    it = merged.emplace(head->position, std::move(ev)).first;
                    seen_bytes += it->second->frame.size();
                    ++seen_events;
                }
                bytes += it->second->frame.size();
                if (bytes >= max_bytes) {
                    cut = head->position;
                    full = true;
                }
            }
            // The floors were read with the records: an event missing from them shows here.
            const redisReply* floors = element(r.get(), 1);
            for (std::size_t i = 0; i < size_of(floors); ++i) {
                if (number_of(element(floors, i)).value_or(0) > after) {
                    out.gap = true;
                }
            }
            const bool remaining = number_of(element(r.get(), 3)) == 1U;
            if (full) {
                if (!beyond && remaining) {
                    // The chunk ended with the page: one more look says whether the group
                    // has events after it.
                    const std::string cut_text = std::to_string(cut);
                    args[1] = cut_text;
                    args[3] = "1";
                    Reply next = conn.eval(Script::read_topics, args);
                    if (!next || next.is_error()) {
                        return failed(next);
                    }
                    beyond = size_of(element(next.get(), 0)) > 0;
                }
                break;
            }
            if (beyond || !remaining || cursor == before) {
                break;
            }
        }
    }
    // Groups read before the cut came down may hold events after it.
    if (auto first_after = merged.upper_bound(cut); first_after != merged.end()) {
        beyond = true;
        merged.erase(first_after, merged.end());
    }
    if (filter.pattern) {
        // A covered topic may be any that was forgotten. Read last: the floor only rises.
        Reply r = conn.call({"HGET", key("hist"), "erased_max"});
        if (!r || r.is_error()) {
            return failed(r);
        }
        out.gap = out.gap || number_of(r.get()).value_or(0) > after;
    }
    out.events.reserve(merged.size());
    for (auto& [pos, ev] : merged) {
        out.events.push_back(std::move(ev));
    }
    log::cut_page(out, after, max_bytes, beyond);
    return out;
}

void RedisStore::expire(std::int64_t now_ms) {
    const std::int64_t max_age = impl_->node.config.retention.max_age_ms;
    if (max_age > 0) {
        impl_->writer->expire(now_ms - max_age);
        if (impl_->cache) {
            impl_->cache->expire(now_ms);
        }
    }
}

std::vector<log::TopicStats> RedisStore::topics(const log::TopicRange& range) const {
    std::vector<log::TopicStats> out;
    if (impl_->node.health.is_down()) {
        return out;
    }
    std::string error;
    auto conn = impl_->pool.take(error);
    if (!conn) {
        return out;
    }
    std::string start;
    if (!range.after.empty() && range.after >= range.prefix) {
        start = "(" + std::string(range.after);
    } else {
        start = range.prefix.empty() ? "-" : "[" + std::string(range.prefix);
    }
    while (out.size() < range.limit) {
        const std::size_t want = std::min(range.limit - out.size(), kPage);
        const std::string want_text = std::to_string(want);
        const std::string_view args[] = {impl_->node.config.prefix, start, range.prefix, want_text};
        Reply r = conn->eval(Script::topics_page, args);
        if (!r || r.is_error()) {
            spdlog::warn("{}: cannot list the topics: {}", impl_->node.config.label,
                         r ? std::string(r.text()) : conn->error());
            break;
        }
        const std::size_t n = size_of(r.get()) / 4;
        for (std::size_t i = 0; i < n; ++i) {
            const redisReply* base = r.get();
            out.push_back({std::string(text_of(element(base, 4 * i))),
                           number_of(element(base, 4 * i + 1)).value_or(0),
                           number_of(element(base, 4 * i + 2)).value_or(0),
                           std::string(text_of(element(base, 4 * i + 3)))});
        }
        if (n < want) {
            break;
        }
        start = "(" + out.back().topic;
    }
    return out;
}

log::HistoryFigures RedisStore::history() const {
    Impl& s = *impl_;
    std::lock_guard lock(s.history_mu);
    const auto now = std::chrono::steady_clock::now();
    // Fresh for a second, unless this node wrote since (so that its own publishes show).
    const std::uint64_t written = s.node.counters.events_written.load(std::memory_order_relaxed);
    if (now - s.history_at < kHistoryFresh && written == s.history_written) {
        return s.history_cache;
    }
    if (s.node.health.is_down()) {
        return s.history_cache;
    }
    std::string error;
    auto conn = s.pool.take(error);
    if (!conn) {
        return s.history_cache;
    }
    const std::string hist = s.key("hist");
    const std::string newest = s.key("newest");
    const std::string_view hmget[] = {"HMGET", hist, "bytes", "evicted_topics", "evicted_bytes"};
    const std::string_view zcard[] = {"ZCARD", newest};
    conn->send(hmget);
    conn->send(zcard);
    Reply figures = conn->receive();
    Reply topics = conn->receive();
    if (!figures || !topics || figures.is_error() || topics.is_error()) {
        return s.history_cache;
    }
    s.history_cache.topics = number_of(topics.get()).value_or(0);
    s.history_cache.bytes = number_of(element(figures.get(), 0)).value_or(0);
    s.history_cache.evicted_max_topics = number_of(element(figures.get(), 1)).value_or(0);
    s.history_cache.evicted_max_total_bytes = number_of(element(figures.get(), 2)).value_or(0);
    s.history_at = now;
    s.history_written = written;
    return s.history_cache;
}

std::optional<log::StoreFigures> RedisStore::figures() const {
    const redis::Counters& c = impl_->node.counters;
    log::StoreFigures f;
    f.transactions = c.transactions.load(std::memory_order_relaxed);
    f.events_written = c.events_written.load(std::memory_order_relaxed);
    f.failed_transactions = c.failed_transactions.load(std::memory_order_relaxed);
    f.memory_replays = impl_->memory_replays.load(std::memory_order_relaxed);
    f.disk_replays = c.disk_replays.load(std::memory_order_relaxed);
    f.commit_seconds = static_cast<double>(c.commit_ns.load(std::memory_order_relaxed)) / 1e9;
    return f;
}

std::optional<std::string> RedisStore::trouble() const {
    if (auto why = impl_->node.health.reason()) {
        return why;
    }
    return impl_->follower.trouble();
}

std::optional<std::string> RedisStore::unreachable() const {
    return trouble();
}

} // namespace herald::store
