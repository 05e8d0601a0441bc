// A worker's sessions as a whole: the list, the sweep, token reloads and shutdown.
#include <algorithm>

#include "http/context.hpp"
#include "http/sse_stream.hpp"

namespace herald::http {

void ConnectionList::link(Session& c) noexcept {
    c.prev_ = nullptr;
    c.next_ = head_;
    if (head_ != nullptr) {
        head_->prev_ = &c;
    }
    head_ = &c;
    ++size_;
}

void ConnectionList::unlink(Session& c) noexcept {
    if (c.prev_ != nullptr) {
        c.prev_->next_ = c.next_;
    } else if (head_ == &c) {
        head_ = c.next_;
    } else {
        return; // not linked
    }
    if (c.next_ != nullptr) {
        c.next_->prev_ = c.prev_;
    }
    c.prev_ = c.next_ = nullptr;
    --size_;
}

std::size_t WorkerContext::queued_budget() const {
    const std::size_t total = services.config.server.max_queued_bytes;
    if (total == 0) {
        return 0;
    }
    return std::max<std::size_t>(1, total / std::max<std::size_t>(1, services.workers.size()));
}

// Closing a session only unlinks that session, and never frees it here (its pending
// operations own it until they complete), so the list can be walked directly.
void sweep(WorkerContext& ctx, base::MonoClock::time_point now) {
    ctx.connections.for_each([now](Session& s) { s.on_tick(now); });
}

std::size_t reload_auth(WorkerContext& ctx, std::shared_ptr<const auth::Authenticator> auth) {
    ctx.auth = std::move(auth);
    // Ending a stream closes its session: collect first, so that the walk unlinks nothing
    // but the session it stands on.
    std::vector<SseStream*> streams;
    ctx.connections.for_each(
        [&](Session& s) { s.for_each_stream([&](SseStream& st) { streams.push_back(&st); }); });
    std::size_t closed = 0;
    for (SseStream* s : streams) {
        if (!s->recheck(*ctx.auth)) {
            ++closed;
        }
    }
    return closed;
}

void drain_all(WorkerContext& ctx) {
    ctx.connections.for_each([](Session& s) { s.drain(); });
}

bool busy(WorkerContext& ctx) {
    bool any = false;
    ctx.connections.for_each([&any](Session& s) { any = any || s.busy(); });
    return any;
}

void close_all(WorkerContext& ctx) {
    ctx.connections.for_each([](Session& s) { s.close(); });
}

} // namespace herald::http
