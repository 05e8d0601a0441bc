// The writer thread: group "commit" by pipelining. A batch costs one round trip however
// many appends it holds, which is what lets 64 concurrent publishers through.
//
// A failed or timed-out batch fails every append in it that has no reply yet. Redis may
// still have applied some of them (the command was sent; the reply never came): such an
// event is part of the history all the same, and reaches every node's listener through
// Pub/Sub or the read-back like any other, once and in order. Only its publisher was told
// 503; that is the usual at-least-once edge of any store that answers within a deadline.
#include "store/redis/writer.hpp"

#include <algorithm>
#include <charconv>

#include "store/redis/record.hpp"

namespace herald::store::redis {

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
// Events one expiry call may drop; more wait for the next batch, so that Redis is never
// held long by one script.
constexpr std::string_view kExpireBudget = "10000";
// Appends one script takes, at most (and about how many bytes of events): the script's
// fixed cost and the message to the nodes are shared by them, and Redis is held for a few
// milliseconds at most.
constexpr std::size_t kPerScript = 128;
constexpr std::size_t kScriptBytes = 512 * 1024;

bool is_noscript(const Reply& r) {
    return r.is_error() && r.text().substr(0, 8) == "NOSCRIPT";
}

// A topic named twice is one topic (as log::make_event has it), before the script counts.
void unique_topics(std::vector<std::string>& topics) {
    for (auto it = topics.begin(); it != topics.end();) {
        it = std::find(topics.begin(), it, *it) != it ? topics.erase(it) : std::next(it);
    }
}

} // namespace

Writer::Writer(NodeState& node, std::unique_ptr<Connection> conn)
    : node_(node), conn_(std::move(conn)) {}

void Writer::start() {
    thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
    close();
}

void Writer::append(log::NewEvent&& event, log::AppendDone done) {
    if (auto why = node_.health.reason()) {
        done({nullptr, log::AppendError::unavailable, std::move(*why)});
        return;
    }
    unique_topics(event.topics);
    Pending p;
    p.body = encode_body(event);
    p.footprint = std::to_string(footprint_without_id(event));
    p.event = std::move(event);
    p.deadline = base::MonoClock::now() + node_.config.timeout;
    p.done = std::move(done);
    bool first = false;
    {
        std::unique_lock lock(mu_);
        if (stopping_) {
            lock.unlock();
            p.done({nullptr, log::AppendError::unavailable, "the store is closed"});
            return;
        }
        first = queue_.empty();
        queue_.push_back(std::move(p));
    }
    if (first) {
        // Otherwise the writer was woken for the first of the queue and takes it all.
        cv_.notify_one();
    }
}

void Writer::expire(std::int64_t cutoff_ms) {
    {
        std::lock_guard lock(mu_);
        cutoff_ = cutoff_ms;
    }
    cv_.notify_one();
}

void Writer::wake() {
    {
        std::lock_guard lock(mu_);
        woken_ = true;
    }
    cv_.notify_one();
}

void Writer::close() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Writer::run() {
    std::vector<Pending> batch;
    for (;;) {
        std::optional<std::int64_t> cutoff;
        bool stopping = false;
        {
            std::unique_lock lock(mu_);
            auto has_work = [&] { return !queue_.empty() || cutoff_ || stopping_ || woken_; };
            if (node_.health.is_down()) {
                // Wake for the next reconnection try even with nothing to write, so that
                // the store comes back by itself.
                cv_.wait_until(lock, next_try_, has_work);
            } else {
                cv_.wait(lock, has_work);
            }
            woken_ = false;
            batch.swap(queue_);
            cutoff = cutoff_;
            cutoff_.reset();
            stopping = stopping_;
        }
        if (ready(stopping)) {
            if (!batch.empty() || cutoff) {
                write(batch, cutoff);
            }
        } else {
            const std::string why =
                node_.health.reason().value_or(node_.config.label + ": Redis is unreachable");
            for (Pending& p : batch) {
                fail(p, why);
            }
            // An expiry waits for the next tick: the hub asks every second.
        }
        batch.clear();
        if (stopping) {
            return; // appends after stopping_ are refused: nothing can be queued now
        }
    }
}

bool Writer::ready(bool stopping) {
    if (conn_ && !conn_->still_open()) {
        // Closed while idle (a Redis restart): nothing was sent, so reconnect at once.
        conn_.reset();
    }
    const bool down = node_.health.is_down();
    if (conn_) {
        if (!down) {
            return true;
        }
        // Another part of the store saw Redis fail: ask on this connection.
        Reply pong = conn_->call({"PING"});
        if (pong && !pong.is_error()) {
            node_.health.up();
            backoff_ = kFirstBackoff;
            return true;
        }
        conn_.reset();
    }
    if (down && (stopping || base::MonoClock::now() < next_try_)) {
        return false;
    }
    std::string error;
    auto conn = Connection::open(node_.config.url, node_.config.timeout, {}, error);
    if (conn) {
        // A Redis that lost its data has a counter below positions already handed out:
        // raise it past every position this node has seen before writing anything.
        const std::string seen = std::to_string(node_.seen());
        const std::string_view args[] = {node_.config.prefix, seen};
        Reply r = conn->eval(Script::reseed, args);
        if (r && !r.is_error()) {
            conn_ = std::move(conn);
            node_.health.up();
            backoff_ = kFirstBackoff;
            return true;
        }
        error = r ? "cannot re-seed the counter: " + std::string(r.text()) : conn->error();
    }
    next_try_ = base::MonoClock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    node_.health.down(error);
    return false;
}

void Writer::fail(Pending& p, const std::string& reason) {
    p.done({nullptr, log::AppendError::unavailable, reason});
}

void Writer::write(std::vector<Pending>& batch, std::optional<std::int64_t> cutoff) {
    const auto now = base::MonoClock::now();
    std::vector<Pending*> live;
    for (Pending& p : batch) {
        if (p.deadline <= now) {
            // It waited behind a batch that took the whole timeout.
            fail(p, node_.config.label + ": no answer from Redis within " +
                        std::to_string(node_.config.timeout.count()) + " ms");
        } else {
            live.push_back(&p);
        }
    }
    if (live.empty() && !cutoff) {
        return;
    }
    std::vector<Pending*> retry = pipeline(live, cutoff);
    if (!retry.empty() && conn_ && conn_->load_scripts()) {
        // Redis lost its scripts mid-batch (a restart, SCRIPT FLUSH): load and go again.
        retry = pipeline(retry, cutoff);
    }
    for (Pending* p : retry) {
        fail(*p, node_.config.label + ": Redis lost the store's scripts");
    }
}

std::vector<Writer::Pending*> Writer::pipeline(const std::vector<Pending*>& items,
                                               std::optional<std::int64_t>& cutoff) {
    if (!conn_ || conn_->broken()) {
        return items;
    }
    const auto started = base::MonoClock::now();
    Connection& c = *conn_;
    const NodeConfig& cfg = node_.config;
    const Retention& r = cfg.retention;
    const std::string limits[] = {std::to_string(r.max_events), std::to_string(r.max_bytes),
                                  std::to_string(r.max_topics), std::to_string(r.max_total_bytes)};
    std::vector<std::string_view> args;
    const bool expiring = cutoff.has_value();
    if (expiring) {
        const std::string at = std::to_string(*cutoff);
        args = {cfg.prefix, cfg.channel, limits[0], limits[1],
                limits[2],  limits[3],   at,        kExpireBudget};
        c.send_eval(Script::expire, args);
    }
    auto deadline = started + cfg.timeout;
    const std::string seen = std::to_string(node_.seen());
    // One script per group of appends; `ends[k]` is one past the last item of script k.
    std::vector<std::size_t> ends;
    std::size_t next = 0;
    while (next < items.size()) {
        args = {cfg.prefix, cfg.channel, limits[0], limits[1], limits[2], limits[3], seen};
        const std::size_t first = next;
        std::size_t bytes = 0;
        while (next < items.size() && next - first < kPerScript && bytes < kScriptBytes) {
            Pending& p = *items[next++];
            p.published_ms = std::to_string(base::unix_ms());
            p.topic_count = std::to_string(p.event.topics.size());
            args.insert(args.end(),
                        {p.published_ms, p.event.id, p.footprint, p.body, p.topic_count});
            for (const auto& topic : p.event.topics) {
                args.push_back(topic);
                bytes += topic.size();
            }
            bytes += p.body.size() + p.event.id.size();
            deadline = std::min(deadline, p.deadline);
        }
        c.send_eval(Script::append, args);
        ends.push_back(next);
    }
    // Every reply must come by the earliest deadline in the batch.
    c.set_timeout(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - base::MonoClock::now()));

    // All the replies first, then the counters, then the answers: whoever learns of an
    // event from `done` finds it counted.
    bool broken = false;
    if (expiring) {
        Reply reply = c.receive();
        broken = !reply;
        const std::int64_t sent = *cutoff;
        cutoff.reset();
        if (reply && !reply.is_error() && number_of(element(reply.get(), 1)) == 1U) {
            // More is old than one call drops: go on with the next batch.
            std::lock_guard lock(mu_);
            if (!cutoff_) {
                cutoff_ = sent;
            }
        }
    }
    std::vector<Reply> replies;
    replies.reserve(ends.size());
    while (!broken && replies.size() < ends.size()) {
        Reply reply = c.receive();
        broken = !reply;
        if (reply) {
            replies.push_back(std::move(reply));
        }
    }
    std::size_t written = 0;
    for (const Reply& reply : replies) {
        for (std::size_t k = 0; !reply.is_error() && k < size_of(reply.get()); ++k) {
            written += number_of(element(element(reply.get(), k), 0)) == 1U ? 1 : 0;
        }
    }
    if (written > 0) {
        node_.counters.transactions.fetch_add(1, std::memory_order_relaxed);
        node_.counters.events_written.fetch_add(written, std::memory_order_relaxed);
        node_.counters.commit_ns.fetch_add(
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           base::MonoClock::now() - started)
                                           .count()),
            std::memory_order_relaxed);
    }
    std::string why;
    if (broken) {
        why = c.error();
        // Down first: whoever learns of the failure from `done` finds the store down.
        node_.health.down(why);
        node_.counters.failed_transactions.fetch_add(1, std::memory_order_relaxed);
        conn_.reset();
    } else {
        c.set_timeout(cfg.timeout);
    }
    std::vector<Pending*> retry;
    std::size_t first = 0;
    for (std::size_t s = 0; s < ends.size(); first = ends[s++]) {
        const std::size_t count = ends[s] - first;
        for (std::size_t k = 0; k < count; ++k) {
            Pending& p = *items[first + k];
            if (s >= replies.size() || (broken && is_noscript(replies[s]))) {
                fail(p, cfg.label + ": " + why);
            } else if (is_noscript(replies[s])) {
                retry.push_back(&p);
            } else if (replies[s].is_error()) {
                // A script error or a refusal (OOM under maxmemory): this script's events.
                fail(p, cfg.label + ": Redis refused the event: " + std::string(replies[s].text()));
            } else if (size_of(replies[s].get()) != count) {
                fail(p, cfg.label + ": unexpected reply from the append script");
            } else {
                answer(p, element(replies[s].get(), k));
            }
        }
    }
    return retry;
}

void Writer::answer(Pending& p, const redisReply* reply) {
    const std::string& label = node_.config.label;
    const auto ok = number_of(element(reply, 0));
    if (ok == 0U) {
        p.done({nullptr, log::AppendError::duplicate_id, {}});
        return;
    }
    const auto position = number_of(element(reply, 1));
    const std::string_view id = text_of(element(reply, 2));
    std::int64_t ms = 0;
    std::from_chars(p.published_ms.data(), p.published_ms.data() + p.published_ms.size(), ms);
    if (ok != 1U || !position || id.empty()) {
        fail(p, label + ": unexpected reply from the append script");
        return;
    }
    auto ev = log::make_event(std::move(p.event), *position, std::string(id), ms);
    node_.saw(*position);
    // Answered once this node's follower has delivered it (Handoff).
    node_.handoff.offer(ev, [done = std::move(p.done), ev]() mutable {
        done({std::move(ev), log::AppendError::none, {}});
    });
}

} // namespace herald::store::redis
