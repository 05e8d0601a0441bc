// The presence thread: one EVAL a second writes this node's figures and reads every live
// node's. Liveness is judged by Redis's own clock (TIME inside the script), so the nodes'
// clocks need not agree.
#include "store/redis/presence.hpp"

#include <algorithm>
#include <charconv>

#include <spdlog/spdlog.h>

#include "store/redis/connection.hpp"

namespace herald::store::redis {

namespace {

constexpr auto kEvery = std::chrono::seconds(1);
// Topic counts per EVAL: a node with 100,000 followed topics reports them in pieces.
constexpr std::size_t kCountsPerCall = 5000;
constexpr std::string_view kNodes = "herald:nodes";

std::string node_key(std::string_view name) {
    return "herald:node:" + std::string(name);
}

std::string subs_key(std::string_view name) {
    return "herald:subs:" + std::string(name);
}

// KEYS: the live set, this node's figures, this node's topic counts.
// ARGV: name, connections, subscribers, "1" to start the counts afresh, then topic/count
// pairs (0 removes). Returns Redis's time (ms), then name, last seen, connections and
// subscribers of each live node. Nodes silent for a minute leave the set; their keys
// expire on their own.
constexpr std::string_view kReport = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], 'connections', ARGV[2], 'subscribers', ARGV[3])
redis.call('PEXPIRE', KEYS[2], 60000)
if ARGV[4] == '1' then redis.call('DEL', KEYS[3]) end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', KEYS[3], ARGV[i])
  else
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[3], 60000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - 5000, '+inf', 'WITHSCORES')
local out = {tostring(now)}
for i = 1, #live, 2 do
  local f = redis.call('HMGET', 'herald:node:' .. live[i], 'connections', 'subscribers')
  out[#out + 1] = live[i]
  out[#out + 1] = live[i + 1]
  out[#out + 1] = f[1] or '0'
  out[#out + 1] = f[2] or '0'
end
return out
)lua";

std::uint64_t number(const redisReply* r) {
    return number_of(r).value_or(0);
}

} // namespace

Presence::Presence(RedisUrl url, std::chrono::milliseconds timeout, std::string node,
                   Sampler sample)
    : url_(std::move(url)), timeout_(timeout), node_(std::move(node)), sample_(std::move(sample)) {}

Presence::~Presence() {
    stop();
}

void Presence::start() {
    thread_ = std::thread([this] { run(); });
}

void Presence::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Presence::run() {
    std::unique_ptr<Connection> conn;
    std::string last_error;
    std::unique_lock lock(mu_);
    while (!stopping_) {
        lock.unlock();
        if (!conn || conn->broken()) {
            std::string error;
            conn = Connection::open(url_, timeout_, Connection::Options{false, false}, error);
            if (!conn && error != last_error) {
                spdlog::warn("cluster figures: {}", error);
            }
            last_error = error;
            full_report_due_ = true;
        }
        if (conn && !exchange(*conn)) {
            full_report_due_ = true;
            if (conn->error() != last_error) {
                spdlog::warn("cluster figures: {}", conn->error());
                last_error = conn->error();
            }
            conn.reset();
        } else if (conn) {
            last_error.clear();
        }
        lock.lock();
        wake_.wait_for(lock, kEvery, [this] { return stopping_; });
    }
    lock.unlock();
    if (conn && !conn->broken()) {
        // Leave the live set at once rather than after five silent seconds.
        (void)conn->call({"ZREM", kNodes, node_});
        (void)conn->call({"DEL", node_key(node_), subs_key(node_)});
    }
}

bool Presence::exchange(Connection& conn) {
    Sample sample = sample_(full_report_due_);
    const std::string nodes(kNodes), node = node_key(node_), subs = subs_key(node_);
    const std::string connections = std::to_string(sample.connections);
    const std::string subscribers = std::to_string(sample.subscribers);
    std::vector<std::string> counts;
    Reply last;
    std::size_t at = 0;
    bool first = true;
    do {
        const std::size_t end = std::min(sample.counts.size(), at + kCountsPerCall);
        counts.clear();
        for (std::size_t i = at; i < end; ++i) {
            counts.push_back(std::to_string(sample.counts[i].second));
        }
        std::vector<std::string_view> args{
            "EVAL", kReport, "3",         nodes,       node,
            subs,   node_,   connections, subscribers, first && full_report_due_ ? "1" : "0"};
        for (std::size_t i = at; i < end; ++i) {
            args.push_back(sample.counts[i].first);
            args.push_back(counts[i - at]);
        }
        last = conn.call(args);
        if (!last || last.is_error()) {
            if (last.is_error()) {
                conn.fail(std::string(last.text()));
            }
            return false;
        }
        at = end;
        first = false;
    } while (at < sample.counts.size());
    full_report_due_ = false;

    std::vector<cluster::NodeFigures> live;
    const redisReply* r = last.get();
    for (std::size_t i = 1; i + 3 < size_of(r); i += 4) {
        cluster::NodeFigures f;
        f.name = std::string(text_of(element(r, i)));
        f.last_seen_ms = static_cast<std::int64_t>(number(element(r, i + 1)));
        f.connections = number(element(r, i + 2));
        f.subscribers = number(element(r, i + 3));
        live.push_back(std::move(f));
    }
    std::sort(live.begin(), live.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    std::lock_guard lock(mu_);
    live_ = std::move(live);
    read_at_ = std::chrono::steady_clock::now();
    return true;
}

bool Presence::fresh_locked(std::chrono::steady_clock::time_point now) const {
    return read_at_ != std::chrono::steady_clock::time_point{} &&
           now - read_at_ < std::chrono::milliseconds(cluster::kLiveForMs);
}

std::vector<cluster::NodeFigures> Presence::nodes() const {
    std::lock_guard lock(mu_);
    if (fresh_locked(std::chrono::steady_clock::now())) {
        return live_;
    }
    // Cut off from Redis: this node knows only itself.
    std::vector<cluster::NodeFigures> self;
    for (const auto& f : live_) {
        if (f.name == node_) {
            self.push_back(f);
        }
    }
    return self;
}

std::uint64_t Presence::others_subscribers() const {
    std::lock_guard lock(mu_);
    if (!fresh_locked(std::chrono::steady_clock::now())) {
        return 0;
    }
    std::uint64_t total = 0;
    for (const auto& f : live_) {
        total += f.name == node_ ? 0 : f.subscribers;
    }
    return total;
}

std::vector<std::uint64_t> Presence::others_subscribers(std::span<const std::string> topics) const {
    std::vector<std::uint64_t> out(topics.size(), 0);
    std::vector<std::string> others;
    {
        std::lock_guard lock(mu_);
        if (!fresh_locked(std::chrono::steady_clock::now())) {
            return out;
        }
        for (const auto& f : live_) {
            if (f.name != node_) {
                others.push_back(f.name);
            }
        }
    }
    if (others.empty() || topics.empty()) {
        return out;
    }
    std::lock_guard lock(query_mu_);
    if (!query_ || query_->broken()) {
        std::string error;
        query_ = Connection::open(url_, timeout_, Connection::Options{false, false}, error);
        if (!query_) {
            return out;
        }
    }
    for (const auto& name : others) {
        const std::string key = subs_key(name);
        std::vector<std::string_view> args{"HMGET", key};
        for (const auto& t : topics) {
            args.push_back(t);
        }
        query_->send(args);
    }
    for (std::size_t n = 0; n < others.size(); ++n) {
        Reply reply = query_->receive();
        if (!reply || reply.is_error()) {
            query_.reset();
            return out;
        }
        for (std::size_t i = 0; i < topics.size() && i < size_of(reply.get()); ++i) {
            out[i] += number(element(reply.get(), i));
        }
    }
    return out;
}

} // namespace herald::store::redis
