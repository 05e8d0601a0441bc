// The HTTP/1.1 session: requests read by a RequestReader fed from the worker's scratch
// buffer, answers written in order through the write queue, and the SSE stream written with
// gathered writes straight from its queue.
#include "http/http1_session.hpp"

#include <algorithm>
#include <variant>

#include <spdlog/spdlog.h>

#include "http/forwarded.hpp"

namespace herald::http {

using boost::system::error_code;

namespace {

// A connection idle between keep-alive requests is closed after this long.
constexpr auto kIdleTimeout = std::chrono::seconds(60);
// At shutdown, an idle keep-alive connection may still bring one request this long; it
// is answered with Connection: close.
constexpr auto kDrainGrace = std::chrono::milliseconds(1000);
// A connection refused at accept waits this long at most for its client to read the
// refusal and close, so that a flood past the limit cannot hold descriptors for long.
constexpr auto kRefusedLinger = std::chrono::seconds(2);

} // namespace

Http1Session::Http1Session(WorkerContext& ctx, net::Socket socket)
    : ctx_(ctx), sock_(std::move(socket), ctx.stats),
      id_((static_cast<std::uint64_t>(ctx.worker.index()) << 48) | ++ctx.next_connection) {
    ctx_.connections.link(*this);
    net::WorkerStats::add(ctx_.stats.connections_total);
    net::WorkerStats::add(ctx_.stats.connections_open);
}

Http1Session::~Http1Session() {
    close();
}

void Http1Session::start() {
    sock_.start();
    draining_ = ctx_.services.draining.load(std::memory_order_relaxed);
    const auto& server = ctx_.services.config.server;
    peer_ = sock_.remote_ip();
    peer_trusted_ = peer_ && base::any_contains(server.trusted_proxies, *peer_);
    if (net::ConnectionLimits* limits = ctx_.services.limits; limits != nullptr) {
        // A trusted proxy's own address is not limited per IP: its clients are, once each
        // request says who they are (admit_client).
        const auto verdict = limits->admit_connection(peer_.value_or(base::IpAddress{}),
                                                      peer_.has_value() && !peer_trusted_, slot_);
        if (verdict == net::ConnectionLimits::Verdict::over_total) {
            refuse_connection(net::Reject::max_connections,
                              "the hub has " + std::to_string(limits->max_total()) +
                                  " connections open, its most (server.max_connections); try "
                                  "again later");
            return;
        }
        if (verdict == net::ConnectionLimits::Verdict::over_per_ip) {
            refuse_connection(net::Reject::max_connections_per_ip,
                              "too many connections from " + peer_->to_string() + ": at most " +
                                  std::to_string(limits->max_per_ip()) +
                                  " (server.max_connections_per_ip)");
            return;
        }
    }
    deadline_ = request_deadline();
    read_request(false);
}

void Http1Session::refuse_connection(net::Reject reason, const std::string& message) {
    spdlog::debug("connection {:x} from {} refused: {}", id_, sock_.remote(), message);
    refused_at_accept_ = true;
    keep_alive_ = false;
    head_only_ = false;
    state_ = State::waiting;
    respond(refusal(ctx_.stats, reason, message));
}

bool Http1Session::admit_client(const Request& request) {
    if (!client_ || base::any_contains(ctx_.services.config.server.trusted_proxies, *client_)) {
        // No client named, or only proxies: the proxy's own request (a health check, say),
        // not limited per IP.
        client_slot_.release();
        return true;
    }
    net::ConnectionLimits* limits = ctx_.services.limits;
    if (limits == nullptr || limits->max_per_ip() == 0) {
        return true;
    }
    if (limits->admit_request(*client_, client_slot_) == net::ConnectionLimits::Verdict::admitted) {
        return true;
    }
    state_ = State::waiting;
    answer(*this, request,
           refusal(ctx_.stats, net::Reject::max_connections_per_ip,
                   "too many connections from " + client_->to_string() + ": at most " +
                       std::to_string(limits->max_per_ip()) + " (server.max_connections_per_ip)"));
    return false;
}

std::string Http1Session::remote() const {
    if (client_) {
        return client_->to_string() + " via " + sock_.remote();
    }
    return sock_.remote();
}

base::MonoClock::time_point Http1Session::request_deadline() const {
    return ctx_.now() + std::chrono::seconds(ctx_.services.config.server.request_timeout_seconds);
}

void Http1Session::close() {
    if (state_ == State::closed) {
        return;
    }
    state_ = State::closed;
    if (stream_) {
        stream_->unsubscribe(); // the stream object lives on with the session
    }
    sock_.close();
    client_slot_.release();
    slot_.release();
    ctx_.connections.unlink(*this);
    net::WorkerStats::sub(ctx_.stats.connections_open, 1);
    out_.clear();
    read_.reset();
}

// ---- reading ----

// Between keep-alive requests, wait for the first byte without holding a read buffer.
void Http1Session::wait_request() {
    state_ = State::idle;
    deadline_ = ctx_.now() +
                (draining_ ? std::chrono::duration_cast<base::MonoClock::duration>(kDrainGrace)
                           : std::chrono::duration_cast<base::MonoClock::duration>(kIdleTimeout));
    sock_.await_readable([self = shared_from_this()](error_code ec) {
        if (ec || self->state_ != State::idle) {
            return;
        }
        self->deadline_ = self->request_deadline();
        // Readable now: read at once rather than waiting for readiness a second time (one
        // epoll round trip and one epoll_ctl less per keep-alive request).
        self->read_request(true);
    });
}

void Http1Session::read_request(bool readable) {
    state_ = State::reading;
    if (!read_) {
        read_ = std::make_unique<RequestReader>();
    }
    read_->start(ctx_.services.config.server.max_body_bytes);
    if (read_->has_pending()) {
        // A pipelined request arrived with the previous one.
        if (feed({})) {
            on_request();
            return;
        }
    }
    if (readable) {
        on_readable();
    } else {
        await_bytes();
    }
}

void Http1Session::await_bytes() {
    sock_.await_readable([self = shared_from_this()](error_code ec) {
        if (self->state_ != State::reading) {
            return;
        }
        if (ec) {
            self->close();
            return;
        }
        self->on_readable();
    });
}

void Http1Session::on_readable() {
    std::vector<char>& scratch = ctx_.scratch;
    for (;;) {
        std::size_t n = 0;
        const net::Io io = sock_.read_some(scratch, n);
        if (io == net::Io::blocked) {
            await_bytes();
            return;
        }
        if (io == net::Io::closed) {
            close(); // the peer went away before a whole request arrived
            return;
        }
        if (feed(std::string_view(scratch.data(), n))) {
            on_request();
            return;
        }
    }
}

bool Http1Session::feed(std::string_view bytes) {
    return read_->feed(bytes, [this] { return send_continue(); });
}

bool Http1Session::send_continue() {
    // The socket has nothing else queued (one request at a time), so this short write goes
    // out whole.
    static const base::BufferRef kContinue =
        base::BufferRef::copy_of("HTTP/1.1 100 Continue\r\n\r\n");
    out_.push(kContinue);
    std::size_t written = 0;
    if (sock_.write(out_, written) != net::Io::done) {
        out_.clear();
        return false;
    }
    return true;
}

void Http1Session::on_request() {
    if (state_ != State::reading) {
        return;
    }
    RequestReader& r = *read_;
    client_.reset(); // named anew by each request that comes through a trusted proxy
    if (r.refused()) {
        refuse(*r.refused(), r.detail());
        return;
    }
    auto taken = r.take_request();
    if (auto* error = std::get_if<HttpError>(&taken)) {
        refuse(*error);
        return;
    }
    Request request = std::move(std::get<Request>(taken));
    keep_alive_ = request.keep_alive;
    head_only_ = request.method == "HEAD";
    if (peer_trusted_) {
        const base::IpAddress client =
            client_address(*peer_, ctx_.services.config.server.trusted_proxies, r.forwarded(),
                           r.x_forwarded_for());
        if (client != *peer_) {
            client_ = client;
        }
        if (!admit_client(request)) {
            return;
        }
    }
    state_ = State::waiting;
    // A publish held for its topic's subscribers answers 503 at the request timeout: the
    // sweep must not close the connection under it first.
    deadline_ = request_deadline() + std::chrono::seconds(2);
    handle_request(*this, std::move(request));
}

void Http1Session::refuse(HttpError error, std::string_view detail) {
    keep_alive_ = false; // what follows a refused request cannot be trusted to be framed
    head_only_ = false;
    state_ = State::waiting;
    respond(error_response(error, ctx_.stats, detail));
}

// ---- answering ----

void Http1Session::respond(Response&& response) {
    if (state_ != State::waiting) {
        return;
    }
    draining_ = draining_ || ctx_.services.draining.load(std::memory_order_relaxed);
    keep_alive_ = keep_alive_ && !draining_;
    state_ = State::writing;
    deadline_ =
        ctx_.now() + std::chrono::seconds(ctx_.services.config.server.write_timeout_seconds);
    out_.push(
        base::BufferRef::copy_of(serialize(response, keep_alive_, head_only_, ctx_.services.node)));
    write_out();
}

void Http1Session::write_out() {
    std::size_t written = 0;
    const net::Io io = sock_.write(out_, written);
    if (written > 0) {
        deadline_ =
            ctx_.now() + std::chrono::seconds(ctx_.services.config.server.write_timeout_seconds);
    }
    if (io == net::Io::closed) {
        close();
        return;
    }
    if (io == net::Io::blocked) {
        sock_.await_writable([self = shared_from_this()](error_code ec) {
            if (self->state_ != State::writing) {
                return;
            }
            if (ec) {
                self->close();
            } else {
                self->write_out();
            }
        });
        return;
    }
    after_response();
}

void Http1Session::after_response() {
    client_slot_.release(); // the request is answered
    if (!keep_alive_) {
        linger();
    } else if (read_ && read_->has_pending()) {
        deadline_ = request_deadline();
        read_request(false); // a pipelined request is waiting
    } else {
        read_.reset();
        wait_request();
    }
}

// After an answer that ends the connection: stop sending, then read and drop what the
// client still sends until it closes, so that closing does not reset the connection under
// the answer before the client has read it.
void Http1Session::linger() {
    state_ = State::lingering;
    read_.reset();
    deadline_ =
        refused_at_accept_
            ? ctx_.now() + std::chrono::duration_cast<base::MonoClock::duration>(kRefusedLinger)
            : request_deadline();
    if (!sock_.shutdown_send()) {
        close();
        return;
    }
    watch_peer();
}

// Waits, holding no buffer, for the peer to close: a subscriber sends nothing after its
// request, and a lingering connection only drains what the client still sends.
void Http1Session::watch_peer() {
    sock_.await_readable([self = shared_from_this(), watched = state_](error_code ec) {
        if (self->state_ != watched) {
            return;
        }
        if (ec || !self->discard_input()) {
            self->close();
            return;
        }
        self->watch_peer();
    });
}

bool Http1Session::discard_input() {
    // Bounded, so a client that never stops sending cannot hold the worker.
    for (int reads = 0; reads < 16; ++reads) {
        std::size_t n = 0;
        const net::Io io = sock_.read_some(ctx_.scratch, n);
        if (io == net::Io::blocked) {
            return true;
        }
        if (io == net::Io::closed) {
            return false;
        }
    }
    return true;
}

// ---- streaming ----

void Http1Session::open_stream(const Request& request, Subscription&& subscription,
                               auth::PrincipalPtr who) {
    if (state_ != State::waiting) {
        return;
    }
    state_ = State::streaming;
    read_.reset(); // an idle subscriber holds no read buffer
    if (const std::size_t sndbuf = ctx_.services.config.server.stream_send_buffer_bytes;
        sndbuf > 0) {
        // A fixed kernel send buffer instead of one that grows to megabytes: what a stream
        // has not yet sent stays in its own queue, where slow_client_bytes and
        // max_queued_bytes see it, and the latency under load stays bounded.
        sock_.set_send_buffer(sndbuf);
    }
    // /status shows the client a trusted proxy named, else the peer.
    stream_ = std::make_unique<SseStream>(ctx_, *this, std::move(who),
                                          client_ ? client_->to_string() : sock_.remote(), id_);
    auto resume = stream_->subscribe(std::move(subscription.interest), subscription.last_event_id);
    std::string head = "HTTP/1.1 200 OK\r\n"
                       "Server: herald\r\n"
                       "Content-Type: text/event-stream; charset=utf-8\r\n";
    if (!ctx_.services.node.empty()) {
        head += "X-Herald-Node: " + ctx_.services.node + "\r\n";
    }
    for (const auto& [name, value] : stream_headers(ctx_.services, request, resume)) {
        head += name;
        head += ": ";
        head += value;
        head += "\r\n";
    }
    head += "Connection: close\r\n\r\n";
    watch_peer();
    if (!stream_->unavailable().empty()) {
        // The store cannot be read: the head and the retry: line, then a FIN, so that
        // EventSource comes back (perhaps to another node) rather than giving up.
        spdlog::info("subscription {:x} turned away: {}", id_, stream_->unavailable());
        stream_->start(head);
        if (state_ == State::streaming) {
            finish_stream();
        }
        return;
    }
    stream_->start(head);
}

void Http1Session::finish_stream() {
    // What is queued goes out if the socket takes it; then the stream ends with a FIN.
    if (!write_blocked_) {
        write_stream();
    }
    if (state_ == State::streaming) {
        stream_->unsubscribe();
        linger();
    }
}

void Http1Session::stream_ready(SseStream& /*stream*/) {
    if (state_ == State::streaming && !write_blocked_) {
        write_stream();
    }
}

void Http1Session::stream_ended(SseStream& stream) {
    if (stream.cut()) {
        sock_.abort();
    }
    close();
}

void Http1Session::write_stream() {
    for (;;) {
        std::size_t written = 0;
        const net::Io io = sock_.write(stream_->queue(), written,
                                       [this](const base::BufferRef& f) { stream_->sent(f); });
        const bool more = written > 0 && stream_->progressed(ctx_.now(), written);
        if (io == net::Io::closed) {
            close();
            return;
        }
        if (io == net::Io::blocked) {
            write_blocked_ = true;
            stream_->blocked();
            sock_.await_writable([self = shared_from_this()](error_code ec) {
                self->write_blocked_ = false;
                if (self->state_ != State::streaming) {
                    return;
                }
                if (ec) {
                    self->close();
                } else {
                    self->write_stream();
                }
            });
            return;
        }
        if (!more) {
            return;
        }
    }
}

// ---- the sweep and shutdown ----

void Http1Session::on_tick(base::MonoClock::time_point now) {
    switch (state_) {
    case State::reading:
        if (now >= deadline_) {
            // A request that started but never finished: say so before closing.
            const bool started = read_ && read_->started();
            if (started) {
                refuse(HttpError::timeout);
            } else {
                ctx_.stats.reject(net::Reject::timeout);
                close();
            }
        }
        break;
    case State::idle:
    case State::waiting:
    case State::writing:
    case State::lingering:
        if (now >= deadline_) {
            close();
        }
        break;
    case State::streaming:
        if (stream_) {
            stream_->on_tick(now);
        }
        break;
    case State::closed: break;
    }
}

void Http1Session::for_each_stream(const std::function<void(SseStream&)>& fn) {
    if (state_ == State::streaming && stream_ && !stream_->ended()) {
        fn(*stream_);
    }
}

void Http1Session::drain() {
    draining_ = true;
    const bool nothing_yet = state_ == State::reading && read_ && !read_->started();
    switch (state_) {
    case State::reading:
        if (nothing_yet) {
            // Accepted, but no byte of a request yet: as good as idle.
            deadline_ = std::min(
                deadline_,
                ctx_.now() + std::chrono::duration_cast<base::MonoClock::duration>(kDrainGrace));
        }
        break;
    case State::idle:
        // One more request may already be on its way: give it a moment, answer it with
        // Connection: close, and close the quiet ones after.
        deadline_ = std::min(
            deadline_,
            ctx_.now() + std::chrono::duration_cast<base::MonoClock::duration>(kDrainGrace));
        break;
    case State::streaming: finish_stream(); break;
    default: break; // a request in progress is answered, with Connection: close
    }
}

bool Http1Session::busy() const {
    if (state_ == State::idle) {
        return draining_ && ctx_.now() < deadline_; // its grace for one last request
    }
    if (state_ == State::reading && read_ && !read_->started()) {
        return !draining_ || ctx_.now() < deadline_;
    }
    return state_ == State::reading || state_ == State::waiting || state_ == State::writing;
}

// ---- worker entry points ----

void serve_connection(WorkerContext& ctx, net::Socket socket) {
    std::make_shared<Http1Session>(ctx, std::move(socket))->start();
}

} // namespace herald::http
