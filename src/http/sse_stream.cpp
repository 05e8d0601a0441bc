// The SSE stream: the replay paced into the queue, live events behind it, and the cuts.
#include "http/sse_stream.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/context.hpp"
#include "http/request.hpp"

namespace herald::http {

namespace {

// The replay is queued this far ahead of what the client has read. The hub hands it over a
// page (hub::kReplayPageBytes of frames) at a time and the next page is read only once this
// one is queued: a long resume costs the stream one page of decoded events and this window,
// never the whole history at once, whatever the store.
constexpr std::size_t kReplayWindow = 64 * 1024;
// A reading stream counts as far behind (for holding its topics' publishers) above a mark
// set so that, with half of the worker's streams just past it, the worker holds an eighth
// of its share of server.max_queued_bytes: publishers are held well before streams are cut
// for memory. Within these bounds; it counts as keeping up again below a quarter of it.
constexpr std::size_t kBehindMin = 4 * 1024;
constexpr std::size_t kBehindMax = 256 * 1024;
// A stream whose writes have not moved for this long is stalled, not slow.
constexpr auto kStalledAfter = std::chrono::seconds(5);

const base::BufferRef& keepalive_frame() {
    // A comment line with no blank line of its own: a blank line would end an empty block,
    // which several client libraries (extended-eventsource, fetch-event-source) dispatch
    // as an empty message although the spec says such a block dispatches nothing.
    static const base::BufferRef frame = base::BufferRef::copy_of(":\n");
    return frame;
}

bool is_event_frame(const base::BufferRef& frame) {
    return frame.size() > 3 && frame.view().substr(0, 3) == "id:";
}

// Whether two callers read exactly the same events.
bool same_reading(const auth::Principal& a, const auth::Principal& b) {
    if (!a.access || !b.access) {
        return !a.access && !b.access;
    }
    return a.access->everything == b.access->everything && a.access->read == b.access->read &&
           a.access->read_private == b.access->read_private;
}

} // namespace

SseStream::SseStream(WorkerContext& ctx, StreamCarrier& carrier, auth::PrincipalPtr who,
                     std::string remote, std::uint64_t id)
    : ctx_(ctx), carrier_(carrier), principal_(std::move(who)), remote_(std::move(remote)), id_(id),
      connected_at_ms_(base::unix_ms()), queue_(&ctx.stats.queued_bytes) {}

SseStream::~SseStream() {
    unsubscribe();
}

std::optional<std::string> SseStream::subscribe(hub::Interest interest,
                                                const std::optional<std::string>& last_event_id) {
    hub::SubscribeResult result = ctx_.shard.subscribe(*this, std::move(interest), last_event_id);
    subscribed_ = true;
    unavailable_ = std::move(result.unavailable);
    replay_ = std::move(result.replay.events);
    return std::move(result.resume_header);
}

void SseStream::unsubscribe() {
    if (behind_) {
        behind_ = false;
        ctx_.services.hub.set_behind(interest(), false);
    }
    if (subscribed_) {
        subscribed_ = false;
        ctx_.shard.unsubscribe(*this);
    }
    net::WorkerStats::sub(ctx_.stats.queued_bytes, parked_bytes_);
    parked_.clear();
    parked_bytes_ = 0;
    replay_.clear();
    replay_next_ = 0;
    replay_broken_ = false;
    queue_.clear();
}

void SseStream::start(std::string_view head) {
    started_ = true;
    std::string first(head);
    first += "retry: ";
    first += std::to_string(ctx_.services.config.server.retry_ms);
    // The retry: line, like the keep-alive comment, needs no blank line of its own.
    first += '\n';
    push(base::BufferRef::copy_of(first));
    refill();
    last_progress_ = ctx_.now();
    last_write_ = last_progress_;
    carrier_.stream_ready(*this);
}

void SseStream::push(base::BufferRef frame) {
    if (queue_.empty()) {
        // Waiting for write progress starts now: an idle stream is never stalled.
        last_progress_ = ctx_.now();
    }
    queue_.push(std::move(frame));
}

void SseStream::refill() {
    for (;;) {
        while (replay_next_ < replay_.size() && queue_.bytes() < kReplayWindow) {
            push(replay_[replay_next_]->frame);
            replay_[replay_next_] = nullptr; // let the event go once written
            ++replay_next_;
        }
        if (replay_next_ < replay_.size() || replay_broken_) {
            return;
        }
        if (!replay_pending()) {
            break;
        }
        if (queue_.bytes() >= kReplayWindow) {
            return; // the next page when the client has read some of this one
        }
        log::Replay page = ctx_.shard.replay_more(*this);
        if (page.gap || !page.error.empty()) {
            replay_broken_ = true;
            if (!page.error.empty()) {
                spdlog::warn("subscriber {:x}: cannot read the rest of its replay: {}", id_,
                             page.error);
            }
            return;
        }
        replay_ = std::move(page.events);
        replay_next_ = 0;
    }
    if (!replay_.empty()) {
        replay_ = std::vector<log::EventPtr>();
        replay_next_ = 0;
    }
    if (!parked_.empty()) {
        // The live events that came during the replay follow it, in order.
        net::WorkerStats::sub(ctx_.stats.queued_bytes, parked_bytes_);
        for (auto& frame : parked_) {
            push(std::move(frame));
        }
        parked_ = std::vector<base::BufferRef>();
        parked_bytes_ = 0;
    }
}

std::size_t SseStream::unsent() const noexcept {
    return queue_.bytes() - queue_.front_bytes() + parked_bytes_;
}

void SseStream::deliver(const log::Event& event) {
    if (ended_ || over_bound_ || !started_) {
        return;
    }
    if (replaying()) {
        parked_bytes_ += event.frame.size();
        net::WorkerStats::add(ctx_.stats.queued_bytes, event.frame.size());
        parked_.push_back(event.frame);
    } else {
        push(event.frame);
    }
    if (unsent() > ctx_.services.config.server.slow_client_bytes) {
        over_bound_ = true; // ended in flush(): the shard is iterating its lists now
    }
}

void SseStream::lose() {
    end(End::lost);
}

void SseStream::flush() {
    if (ended_) {
        return;
    }
    if (over_bound_) {
        end(End::over_bound);
        return;
    }
    const std::size_t budget = ctx_.queued_budget();
    if (budget > 0 && ctx_.stats.queued_bytes.load(std::memory_order_relaxed) > budget &&
        !ctx_.trim_scheduled) {
        // Cutting other streams here would unlink them from the lists the shard is walking.
        ctx_.trim_scheduled = true;
        boost::asio::post(ctx_.worker.io(), [&ctx = ctx_] { trim_streams(ctx); });
    }
    if (!queue_.empty()) {
        carrier_.stream_ready(*this);
    }
    update_behind(ctx_.now());
}

void SseStream::update_behind(base::MonoClock::time_point now) {
    if (ended_ || !subscribed_ || interest().exact.empty()) {
        return;
    }
    const std::size_t high = behind_mark(ctx_);
    const std::size_t waiting = unsent();
    const bool moving = now - last_progress_ < kStalledAfter;
    const bool behind = moving && (behind_ ? waiting >= high / 4 : waiting > high);
    if (behind != behind_) {
        behind_ = behind;
        ctx_.services.hub.set_behind(interest(), behind);
    }
}

void SseStream::sent(const base::BufferRef& frame) {
    if (is_event_frame(frame)) {
        last_frame_ = frame;
    }
}

void SseStream::blocked() {
    const std::size_t in_transport = carrier_.in_transport();
    received_ = written_ > in_transport ? written_ - in_transport : 0;
}

bool SseStream::progressed(base::MonoClock::time_point now, std::size_t bytes) {
    last_progress_ = now;
    last_write_ = now;
    written_ += bytes;
    if (behind_) {
        update_behind(now);
    }
    if (!replaying() && parked_.empty()) {
        return false;
    }
    const std::size_t before = queue_.frames();
    refill();
    return queue_.frames() > before;
}

void SseStream::on_tick(base::MonoClock::time_point now) {
    if (ended_) {
        return;
    }
    if (replay_broken_) {
        end(End::replay_broken);
        return;
    }
    if (principal_ && principal_->expires_ms != 0 && base::unix_ms() >= principal_->expires_ms) {
        end(End::expired); // its JWT expired: the client must come back with a fresh one
        return;
    }
    update_behind(now);
    const auto& server = ctx_.services.config.server;
    if (!queue_.empty()) {
        // A client that reads slowly frees kernel buffer space a little at a time, too
        // little for the socket to report writable: what it received is progress too.
        const std::size_t in_transport = carrier_.in_transport();
        const std::uint64_t received = written_ > in_transport ? written_ - in_transport : 0;
        if (received > received_) {
            received_ = received;
            last_progress_ = now;
        } else if (now - last_progress_ >= std::chrono::seconds(server.write_timeout_seconds)) {
            end(End::stalled);
        }
        return;
    }
    if (now - last_write_ >= std::chrono::seconds(server.keepalive_seconds)) {
        push(keepalive_frame());
        carrier_.stream_ready(*this);
    }
}

void SseStream::end(End why) {
    if (ended_) {
        return;
    }
    ended_ = true;
    cut_ = why == End::over_bound || why == End::stalled || why == End::overload;
    const auto& server = ctx_.services.config.server;
    switch (why) {
    case End::over_bound:
        net::WorkerStats::add(ctx_.stats.slow_disconnects);
        spdlog::info("closing slow subscriber {:x}: more than {} bytes unsent", id_,
                     server.slow_client_bytes);
        break;
    case End::stalled:
        net::WorkerStats::add(ctx_.stats.stalled_disconnects);
        spdlog::info("closing stalled subscriber {:x}: no write progress for {} s", id_,
                     server.write_timeout_seconds);
        break;
    case End::overload:
        net::WorkerStats::add(ctx_.stats.overload_disconnects);
        spdlog::info("closing subscriber {:x}, furthest behind ({} bytes unsent) while the "
                     "streams together pass server.max_queued_bytes",
                     id_, unsent());
        break;
    case End::lost:
        spdlog::info("closing subscriber {:x}: the store lost events it may have wanted; its "
                     "client resumes and learns of the gap",
                     id_);
        break;
    case End::replay_broken:
        spdlog::info("closing subscriber {:x}: the rest of its replay has a gap or cannot be "
                     "read; its client resumes and learns of it",
                     id_);
        break;
    case End::expired:
    case End::revoked: break;
    }
    unsubscribe();
    carrier_.stream_ended(*this);
}

bool SseStream::recheck(const auth::Authenticator& auth) {
    if (ended_ || !principal_) {
        return true;
    }
    std::optional<std::string_view> credential;
    if (!principal_->anonymous()) {
        credential = principal_->credential;
    }
    auto result = auth.authenticate(credential, base::unix_ms());
    if (auto* now = std::get_if<auth::PrincipalPtr>(&result);
        now != nullptr && same_reading(*principal_, **now)) {
        principal_ = *now;
        return true;
    }
    end(End::revoked);
    return false;
}

void SseStream::append_status(std::string& out) const {
    std::string last_id;
    if (last_frame_) {
        std::string_view frame = last_frame_.view();
        const auto end_of_line = frame.find('\n');
        last_id = std::string(frame.substr(4, end_of_line - 4)); // after "id: "
    }
    std::string topics = "[";
    auto add_topic = [&topics](std::string_view topic) {
        if (topics.size() > 1) {
            topics += ',';
        }
        topics += json_quote(topic);
    };
    for (const auto& topic : interest().exact) {
        add_topic(topic);
    }
    for (const auto& selector : interest().patterns) {
        add_topic(selector.text());
    }
    topics += ']';
    out += fmt::format("{}:{{\"remote\":{},\"connectedAt\":{},\"lastEventId\":{},\"topics\":{}}}",
                       json_quote(fmt::format("{:x}", id_)), json_quote(remote_),
                       json_quote(fmt::format("{:%FT%T}Z", fmt::gmtime(connected_at_ms_ / 1000))),
                       last_id.empty() ? "null" : json_quote(last_id), topics);
}

std::size_t behind_mark(const WorkerContext& ctx) {
    const std::size_t budget = ctx.queued_budget();
    const std::size_t streams = std::max<std::size_t>(1, ctx.shard.subscribers());
    return budget == 0 ? kBehindMax : std::clamp(budget / (4 * streams), kBehindMin, kBehindMax);
}

void trim_streams(WorkerContext& ctx) {
    ctx.trim_scheduled = false;
    const std::size_t budget = ctx.queued_budget();
    if (budget == 0 || ctx.stats.queued_bytes.load(std::memory_order_relaxed) <= budget) {
        return;
    }
    std::vector<SseStream*> streams;
    ctx.connections.for_each([&streams](Session& s) {
        s.for_each_stream([&](SseStream& st) { streams.push_back(&st); });
    });
    std::sort(streams.begin(), streams.end(),
              [](const SseStream* a, const SseStream* b) { return a->unsent() > b->unsent(); });
    // Ending a stream closes its session, which stays allocated until its pending waits
    // complete: the pointers stay valid through this loop.
    for (SseStream* s : streams) {
        if (ctx.stats.queued_bytes.load(std::memory_order_relaxed) <= budget || s->unsent() == 0) {
            break;
        }
        s->end(SseStream::End::overload);
    }
}

} // namespace herald::http
