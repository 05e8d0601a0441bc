// The follower thread: poll() on the subscription and on a wake-up eventfd, hiredis's
// reader for the messages, and a second connection for reading the log back.
#include "store/redis/follower.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "store/redis/record.hpp"

namespace herald::store::redis {

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
// A silent subscription is asked for a PING this often, so that a Redis that stopped
// answering (hung, or a network that dropped us without a reset) is noticed.
constexpr std::chrono::milliseconds kPingEvery{1000};
// Events per read-back call.
constexpr std::size_t kPage = 1000;

using Clock = std::chrono::steady_clock;

} // namespace

Follower::Follower(NodeState& node) : node_(node) {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

Follower::~Follower() {
    close();
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
    }
}

bool Follower::subscribe(std::string& error) {
    sub_.reset();
    const NodeConfig& cfg = node_.config;
    auto conn = Connection::open(cfg.url, cfg.timeout, {.load_scripts = false}, error);
    if (!conn) {
        return false;
    }
    // The reply is the subscription's confirmation: from here on, every event is sent to us.
    Reply r = conn->call({"SUBSCRIBE", cfg.channel});
    if (!r || r.is_error()) {
        error = "cannot subscribe: " + (r ? std::string(r.text()) : conn->error());
        return false;
    }
    sub_ = std::move(conn);
    heard_ = Clock::now();
    ping_sent_.reset();
    return true;
}

bool Follower::start(std::string& error) {
    if (!subscribe(error)) {
        return false;
    }
    const NodeConfig& cfg = node_.config;
    reader_ = Connection::open(cfg.url, cfg.timeout, {}, error);
    if (!reader_) {
        return false;
    }
    // Read after SUBSCRIBE: every event past this counter reaches us as a message.
    const std::string_view args[] = {cfg.prefix, "0"};
    Reply r = reader_->eval(Script::reseed, args);
    const auto counter = number_of(element(r.get(), 0));
    if (!r || r.is_error() || !counter) {
        error = "cannot read the counter: " + (r ? std::string(r.text()) : reader_->error());
        return false;
    }
    delivered_ = *counter;
    published_.store(*counter, std::memory_order_release);
    node_.saw(*counter);
    node_.handoff.delivered(*counter);
    return true;
}

void Follower::set_listener(log::LogListener* listener) {
    {
        std::lock_guard lock(listener_mu_);
        listener_ = listener;
    }
    if (listener != nullptr && !thread_.joinable() && !stop_.load()) {
        node_.handoff.following(true);
        thread_ = std::thread([this] { loop(); });
    }
}

void Follower::close() {
    stop_.store(true);
    if (wake_fd_ >= 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    node_.handoff.following(false); // answers what it did not deliver
    delivered_cv_.notify_all();
}

void Follower::wait_for(std::uint64_t position, std::chrono::milliseconds limit) {
    if (!thread_.joinable()) {
        return; // nobody listens
    }
    std::unique_lock lock(mu_);
    delivered_cv_.wait_for(lock, limit, [&] {
        return published_.load(std::memory_order_acquire) >= position || stop_.load();
    });
}

std::optional<std::string> Follower::trouble() const {
    std::lock_guard lock(mu_);
    return trouble_;
}

void Follower::set_trouble(std::optional<std::string> why) {
    const bool following = !why;
    {
        std::lock_guard lock(mu_);
        if (why && !trouble_) {
            spdlog::error("{}", *why);
        } else if (!why && trouble_) {
            spdlog::info("{}: following the cluster's events again", node_.config.label);
        }
        trouble_ = std::move(why);
    }
    // Publishes Redis took are not held while the feed is cut.
    node_.handoff.following(following);
}

void Follower::sleep(std::chrono::milliseconds d) {
    pollfd fd{wake_fd_, POLLIN, 0};
    [[maybe_unused]] int n = ::poll(&fd, 1, static_cast<int>(d.count()));
}

void Follower::loop() {
    auto backoff = kFirstBackoff;
    while (!stop_.load()) {
        if (!sub_ || sub_->broken()) {
            std::string error;
            if (sub_) {
                spdlog::warn("{}: the subscription failed ({}); reconnecting", node_.config.label,
                             sub_->error());
            }
            // The first try is at once: a dropped connection to a healthy Redis (CLIENT
            // KILL, an output buffer limit) comes back within one round trip.
            if (connect(error)) {
                set_trouble(std::nullopt);
                backoff = kFirstBackoff;
            } else {
                sub_.reset();
                set_trouble(node_.config.label + ": cannot follow the cluster's events: " + error);
                sleep(backoff);
                backoff = std::min(backoff * 2, kMaxBackoff);
                continue;
            }
        }
        listen();
    }
}

bool Follower::connect(std::string& error) {
    if (!subscribe(error)) {
        return false;
    }
    const NodeConfig& cfg = node_.config;
    if (!reader_ || reader_->broken()) {
        reader_ = Connection::open(cfg.url, cfg.timeout, {}, error);
        if (!reader_) {
            return false;
        }
    }
    // If Redis lost its data, its counter is raised past what this node has seen, and
    // `last` with it: the next event then tells every node behind it what it lost.
    const std::string seen = std::to_string(std::max(node_.seen(), delivered_));
    const std::string_view args[] = {cfg.prefix, seen};
    Reply r = reader_->eval(Script::reseed, args);
    const auto last = number_of(element(r.get(), 1));
    if (!r || r.is_error() || !last) {
        error = "cannot read the log: " + (r ? std::string(r.text()) : reader_->error());
        return false;
    }
    if (!catch_up(*last)) {
        error = "cannot read the log: " + read_error_;
        return false;
    }
    return true;
}

void Follower::listen() {
    const auto now = Clock::now();
    const auto due = ping_sent_ ? *ping_sent_ + node_.config.timeout : heard_ + kPingEvery;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
    pollfd fds[2] = {{sub_->fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
    if (n < 0) {
        if (errno != EINTR) {
            sub_->fail(std::string("poll: ") + std::strerror(errno));
        }
        return;
    }
    if (fds[1].revents != 0) {
        std::uint64_t v = 0;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
        return;
    }
    redisContext* ctx = sub_->raw();
    if (fds[0].revents != 0) {
        if (redisBufferRead(ctx) != REDIS_OK) {
            sub_->fail_from_context();
            return;
        }
        heard_ = Clock::now();
        while (!stop_.load()) {
            void* raw = nullptr;
            if (redisGetReplyFromReader(ctx, &raw) != REDIS_OK) {
                sub_->fail_from_context();
                break;
            }
            if (raw == nullptr) {
                break;
            }
            const Reply reply(static_cast<redisReply*>(raw));
            const std::string_view kind = text_of(element(reply.get(), 0));
            if (kind == "message") {
                if (!on_message(text_of(element(reply.get(), 2)))) {
                    sub_->fail("cannot read the missed events back: " + read_error_);
                    break;
                }
            } else if (kind == "pong") {
                ping_sent_.reset();
            }
        }
        flush();
        return;
    }
    if (ping_sent_ && Clock::now() - *ping_sent_ >= node_.config.timeout) {
        sub_->fail("no answer from Redis within " + std::to_string(node_.config.timeout.count()) +
                   " ms");
        return;
    }
    if (!ping_sent_ && Clock::now() - heard_ >= kPingEvery) {
        int done = 0;
        if (redisAppendCommand(ctx, "PING") != REDIS_OK) {
            sub_->fail_from_context();
            return;
        }
        while (done == 0) {
            if (redisBufferWrite(ctx, &done) != REDIS_OK) {
                sub_->fail_from_context();
                return;
            }
        }
        ping_sent_ = Clock::now();
    }
}

bool Follower::on_message(std::string_view message) {
    while (!message.empty()) {
        const auto record = next_record(message);
        if (!record) {
            spdlog::warn("{}: a malformed message on {}; the rest of it skipped",
                         node_.config.label, node_.config.channel);
            return true; // what it held shows as a break in the chain of the next one
        }
        if (!on_record(*record)) {
            return false;
        }
    }
    return true;
}

bool Follower::on_record(const Record& record) {
    const auto head = read_head(record.head);
    if (!head) {
        spdlog::warn("{}: a malformed record on {}; skipped", node_.config.label,
                     node_.config.channel);
        return true;
    }
    if (head->position <= delivered_) {
        return true; // read back already
    }
    if (head->previous > delivered_) {
        // The chain broke: events between were missed. They come first, from the log.
        flush();
        if (!catch_up(head->previous)) {
            return false;
        }
        if (head->position <= delivered_) {
            return true;
        }
    }
    if (node_.cache != nullptr && head->capped > 0) {
        // Redis's hub-wide bounds dropped events up to there: the cache must not serve a
        // replay that Redis could no longer give in full.
        node_.cache->raise_all_floors(head->capped);
    }
    deliver(record, head->position, true);
    return true;
}

bool Follower::catch_up(std::uint64_t target) {
    const NodeConfig& cfg = node_.config;
    if (!reader_ || reader_->broken()) {
        reader_ = Connection::open(cfg.url, cfg.timeout, {}, read_error_);
        if (!reader_) {
            return false;
        }
    }
    const std::string page = std::to_string(kPage);
    while (delivered_ < target) {
        const std::string after = std::to_string(delivered_);
        const std::string upto = std::to_string(target);
        const std::string_view args[] = {cfg.prefix, after, upto, page};
        Reply r = reader_->eval(Script::read_after, args);
        if (!r || r.is_error()) {
            read_error_ = r ? std::string(r.text()) : reader_->error();
            reader_.reset();
            return false;
        }
        // Each event's head, then its body.
        const std::size_t n = size_of(r.get()) / 2;
        for (std::size_t i = 0; i < n; ++i) {
            const redisReply* rec = element(r.get(), 2 * i);
            if (is_nil(rec)) {
                continue;
            }
            const Record record{text_of(rec), text_of(element(r.get(), 2 * i + 1))};
            const auto head = read_head(record.head);
            if (!head || head->position <= delivered_) {
                continue;
            }
            if (head->previous > delivered_) {
                // Redis no longer holds the events before this one (retention).
                lose(head->previous);
            }
            deliver(record, head->position, false);
        }
        flush();
        if (n < kPage) {
            break;
        }
    }
    if (delivered_ < target) {
        lose(target); // the newest ones went too
    }
    if (node_.cache != nullptr) {
        // Read-back events do not say what hub-wide bounds dropped meanwhile: replays up to
        // here go to Redis.
        node_.cache->raise_all_floors(delivered_);
    }
    return true;
}

void Follower::deliver(const Record& record, std::uint64_t position, bool live) {
    log::EventPtr ev = node_.handoff.take(position);
    if (!ev) {
        ev = decode(record.head, record.body);
    }
    if (!ev) {
        spdlog::warn("{}: event {} is malformed in Redis; reported lost", node_.config.label,
                     position);
        lose(position);
        return;
    }
    if (live && node_.cache != nullptr) {
        node_.cache->insert(ev); // before the hub hands it out: a replay then finds it
    }
    batch_.push_back(std::move(ev));
    delivered_ = position;
}

void Follower::lose(std::uint64_t position) {
    flush();
    if (position <= delivered_) {
        return;
    }
    spdlog::warn("{}: events up to {} were dropped from Redis before this node read them",
                 node_.config.label, position);
    delivered_ = position;
    if (node_.cache != nullptr) {
        node_.cache->raise_all_floors(position);
    }
    {
        std::lock_guard lock(listener_mu_);
        if (listener_ != nullptr) {
            listener_->lost(position);
        }
    }
    flush();
}

void Follower::flush() {
    if (!batch_.empty()) {
        {
            std::lock_guard lock(listener_mu_);
            if (listener_ != nullptr) {
                listener_->settled(batch_);
            }
        }
        batch_.clear();
    }
    if (published_.load(std::memory_order_relaxed) != delivered_) {
        node_.saw(delivered_);
        node_.handoff.delivered(delivered_);
        {
            std::lock_guard lock(mu_);
            published_.store(delivered_, std::memory_order_release);
        }
        delivered_cv_.notify_all();
    }
}

} // namespace herald::store::redis
