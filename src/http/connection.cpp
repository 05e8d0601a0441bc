// The connection state machine: read a request (Beast's parser, alive only while reading),
// answer it or become a stream; a stream writes its queued frames with non-blocking gathered
// writes and waits for writability only when the socket is full.
#include "http/connection.hpp"

#include <array>
#include <span>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/clock.hpp"
#include "http/access.hpp"
#include "http/form.hpp"
#include "http/handlers.hpp"
#include "http/static_files.hpp"

namespace herald::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

namespace {

constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::size_t kMaxIov = 64;
// A connection idle between keep-alive requests is closed after this long.
constexpr auto kIdleTimeout = std::chrono::seconds(60);

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

} // namespace

// Alive only while a request is being read. The bytes come from the worker's scratch
// buffer; only what the parser has not consumed yet (a header split across reads, a
// pipelined request) is copied here.
struct Connection::ReadState {
    std::optional<beast::http::request_parser<beast::http::string_body>> parser;
    std::string pending;
};

// ---- ConnectionList ----

void ConnectionList::link(Connection& c) noexcept {
    c.prev_ = nullptr;
    c.next_ = head_;
    if (head_ != nullptr) {
        head_->prev_ = &c;
    }
    head_ = &c;
    ++size_;
}

void ConnectionList::unlink(Connection& c) noexcept {
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

// ---- Connection ----

Connection::Connection(WorkerContext& ctx, net::Socket socket)
    : ctx_(ctx), socket_(std::move(socket)), connected_at_ms_(base::unix_ms()),
      id_((static_cast<std::uint64_t>(ctx.worker.index()) << 48) | ++ctx.next_connection) {
    ctx_.connections.link(*this);
    net::WorkerStats::add(ctx_.stats.connections_total);
    net::WorkerStats::add(ctx_.stats.connections_open);
}

Connection::~Connection() {
    close();
}

void Connection::start() {
    error_code ec;
    socket_.set_option(net::tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    deadline_ = base::MonoClock::now() +
                std::chrono::seconds(ctx_.services.config.server.request_timeout_seconds);
    read_request();
}

void Connection::close() {
    if (state_ == State::closed) {
        return;
    }
    if (state_ == State::streaming) {
        ctx_.shard.unsubscribe(*this);
    }
    state_ = State::closed;
    error_code ec;
    socket_.close(ec);
    ctx_.connections.unlink(*this);
    ctx_.stats.connections_open.store(
        ctx_.stats.connections_open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    queue_.clear();
    net::WorkerStats::sub(ctx_.stats.queued_bytes, queued_bytes_);
    queued_bytes_ = 0;
    read_.reset();
}

// Between keep-alive requests, wait for the first byte without holding a read buffer.
void Connection::wait_request() {
    state_ = State::idle;
    deadline_ = base::MonoClock::now() + kIdleTimeout;
    socket_.async_wait(net::Socket::wait_read, [self = shared_from_this()](error_code ec) {
        if (ec || self->state_ != State::idle) {
            return;
        }
        self->deadline_ =
            base::MonoClock::now() +
            std::chrono::seconds(self->ctx_.services.config.server.request_timeout_seconds);
        // Readable now: read at once rather than waiting for readiness a second time (one
        // epoll round trip and one epoll_ctl less per keep-alive request).
        self->read_request(true);
    });
}

void Connection::read_request(bool readable) {
    state_ = State::reading;
    if (!read_) {
        read_ = std::make_unique<ReadState>();
    }
    read_->parser.emplace();
    read_->parser->header_limit(kHeaderLimit);
    read_->parser->body_limit(ctx_.services.config.server.max_body_bytes);
    read_->parser->eager(true);
    if (!read_->pending.empty()) {
        // A pipelined request arrived with the previous one.
        error_code ec;
        if (feed({}, ec) || ec) {
            on_read(ec);
            return;
        }
    }
    if (readable) {
        on_readable();
    } else {
        await_bytes();
    }
}

void Connection::await_bytes() {
    socket_.async_wait(net::Socket::wait_read, [self = shared_from_this()](error_code ec) {
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

void Connection::on_readable() {
    std::vector<char>& scratch = ctx_.scratch;
    for (;;) {
        error_code ec;
        const std::size_t n = socket_.read_some(asio::buffer(scratch), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            await_bytes();
            return;
        }
        if (ec || n == 0) {
            close(); // the peer went away before a whole request arrived
            return;
        }
        const bool done = feed(std::string_view(scratch.data(), n), ec);
        if (done || ec) {
            on_read(ec);
            return;
        }
    }
}

bool Connection::feed(std::string_view bytes, error_code& ec) {
    auto& parser = *read_->parser;
    std::string& pending = read_->pending;
    if (!pending.empty()) {
        pending.append(bytes);
        bytes = pending;
    }
    std::size_t consumed = 0;
    while (consumed < bytes.size() && !parser.is_done()) {
        const std::size_t used =
            parser.put(asio::buffer(bytes.data() + consumed, bytes.size() - consumed), ec);
        if (ec == beast::http::error::need_more) {
            ec = {};
            break;
        }
        if (ec) {
            return false;
        }
        if (used == 0) {
            break;
        }
        consumed += used;
    }
    if (bytes.data() == pending.data()) {
        pending.erase(0, consumed);
    } else {
        pending.assign(bytes.substr(consumed));
    }
    return parser.is_done();
}

void Connection::on_read(error_code ec) {
    if (state_ != State::reading) {
        return; // closed by the sweep meanwhile
    }
    if (ec) {
        if (ec == beast::http::error::header_limit) {
            fail(431, "the request's header section is larger than 8 KiB",
                 net::Reject::header_too_large);
        } else if (ec == beast::http::error::body_limit) {
            fail(413,
                 "the request body is larger than server.max_body_bytes (" +
                     std::to_string(ctx_.services.config.server.max_body_bytes) + " bytes)",
                 net::Reject::body_too_large);
        } else if (ec.category() ==
                       beast::http::make_error_code(beast::http::error::end_of_stream).category() &&
                   ec != beast::http::error::end_of_stream &&
                   ec != beast::http::error::partial_message) {
            fail(400, "malformed HTTP request: " + ec.message(), net::Reject::bad_request);
        } else {
            close(); // the peer went away
        }
        return;
    }

    auto& msg = read_->parser->get();
    Request request;
    request.method = std::string(msg.method_string());
    request.target = std::string(msg.target());
    if (request.target.empty() || request.target.front() != '/') {
        fail(400, "malformed request target: expected a path starting with /",
             net::Reject::bad_request);
        return;
    }
    const auto question = request.target.find('?');
    request.path = decode_path(std::string_view(request.target).substr(0, question));
    if (question != std::string::npos) {
        for (auto& field : decode_form(std::string_view(request.target).substr(question + 1))) {
            request.query.emplace_back(std::move(field.key), std::move(field.value));
        }
    }
    if (auto it = msg.find(beast::http::field::content_type); it != msg.end()) {
        request.content_type = std::string(it->value());
    }
    if (auto it = msg.find(beast::http::field::accept); it != msg.end()) {
        request.accept = std::string(it->value());
    }
    if (auto it = msg.find("Last-Event-ID"); it != msg.end()) {
        request.last_event_id = std::string(it->value());
    }
    if (auto it = msg.find(beast::http::field::authorization); it != msg.end()) {
        request.authorization = std::string(it->value());
    }
    for (auto [it, end] = msg.equal_range(beast::http::field::cookie); it != end; ++it) {
        if (request.cookie) {
            *request.cookie += "; ";
            *request.cookie += it->value();
        } else {
            request.cookie = std::string(it->value());
        }
    }
    if (auto it = msg.find(beast::http::field::origin); it != msg.end()) {
        request.origin = std::string(it->value());
    }
    if (auto it = msg.find(beast::http::field::if_none_match); it != msg.end()) {
        request.if_none_match = std::string(it->value());
    }
    request.preflight = request.method == "OPTIONS" &&
                        msg.find(beast::http::field::access_control_request_method) != msg.end();
    request.keep_alive = msg.keep_alive();
    request.body = std::move(msg.body());
    dispatch(std::move(request));
}

void Connection::dispatch(Request&& request) {
    auto& stats = ctx_.stats;
    if (request.preflight) {
        // Browsers send no credentials with a preflight: answered before auth.
        answer(request,
               preflight(cors_origin(ctx_.services.config.server.cors_origins, request), stats));
        return;
    }
    if (request.path == "/healthz" || request.path == "/readyz") {
        // The probes are open whatever the auth settings.
        if (request.method != "GET") {
            Response r =
                json_error(405, "method " + request.method + " is not allowed on " + request.path);
            r.headers.emplace_back("Allow", "GET");
            stats.reject(net::Reject::method_not_allowed);
            answer(request, std::move(r));
        } else {
            answer(request,
                   request.path == "/healthz" ? handle_healthz() : handle_readyz(ctx_.services));
        }
        return;
    }
    if (request.path == "/dashboard" || request.path.starts_with("/dashboard/")) {
        // The page, its script and styles hold no data: they are served to anyone, and the
        // page then calls the API with the token its user gives it.
        Response r = serve_dashboard(request);
        if (r.status == 404) {
            stats.reject(net::Reject::not_found);
        } else if (r.status == 405) {
            stats.reject(net::Reject::method_not_allowed);
        }
        answer(request, std::move(r));
        return;
    }
    auto who = identify(*ctx_.auth, request, stats);
    if (auto* refusal = std::get_if<Response>(&who)) {
        answer(request, std::move(*refusal));
        return;
    }
    route(request, *std::get<auth::PrincipalPtr>(who));
    if (state_ == State::streaming) {
        principal_ = std::get<auth::PrincipalPtr>(std::move(who));
    }
}

void Connection::route(Request& request, const auth::Principal& who) {
    const std::string& path = request.path;
    const std::string& method = request.method;
    auto& services = ctx_.services;
    auto& stats = ctx_.stats;
    auto only = [&](std::string_view allowed) {
        Response r = json_error(405, "method " + method + " is not allowed on " + path);
        r.headers.emplace_back("Allow", std::string(allowed));
        stats.reject(net::Reject::method_not_allowed);
        answer(request, std::move(r));
    };

    if (path == "/events") {
        if (method == "GET") {
            start_stream(request, who);
        } else if (method == "POST") {
            publish(request, who);
        } else if (method == "OPTIONS") {
            Response r;
            r.status = 204;
            r.content_type.clear();
            r.headers.emplace_back("Allow", "GET, POST, OPTIONS");
            answer(request, std::move(r));
        } else {
            only("GET, POST, OPTIONS");
        }
        return;
    }
    if (path == "/status" || path == "/topics" || path == "/metrics" || path == "/") {
        if (method != "GET") {
            only("GET");
            return;
        }
        const bool open = path == "/" || (path == "/metrics" && ctx_.auth->open_metrics());
        if (!open) {
            if (auto refusal = require_admin(who, stats)) {
                answer(request, std::move(*refusal));
                return;
            }
        }
        if (path == "/status") {
            state_ = State::responding;
            gather_status(ctx_, [self = shared_from_this(),
                                 request = std::move(request)](Response r) mutable {
                if (self->state_ == State::responding) {
                    self->answer(request, std::move(r));
                }
            });
        } else if (path == "/topics") {
            answer(request, handle_topics(services));
        } else if (path == "/metrics") {
            answer(request, handle_metrics(services));
        } else if (auto page = serve_static(services.config.server.static_dir, path)) {
            answer(request, std::move(*page));
        } else {
            Response r;
            r.status = 302;
            r.content_type.clear();
            r.headers.emplace_back("Location", "/dashboard/");
            answer(request, std::move(r));
        }
        return;
    }
    if (method == "GET" && !services.config.server.static_dir.empty()) {
        if (auto file = serve_static(services.config.server.static_dir, path)) {
            answer(request, std::move(*file));
            return;
        }
    }
    stats.reject(net::Reject::not_found);
    answer(request, json_error(404, "no such endpoint: " + path));
}

void Connection::publish(Request& request, const auth::Principal& who) {
    auto& services = ctx_.services;
    const auto started = base::MonoClock::now();
    auto prepared = prepare_publish(services, ctx_.stats, request, who);
    if (auto* refusal = std::get_if<Response>(&prepared)) {
        answer(request, std::move(*refusal));
        return;
    }
    auto event = std::get<log::NewEvent>(std::move(prepared));
    const std::size_t limit = services.config.server.max_queued_bytes;
    if ((limit > 0 && queued_bytes(services) > limit) || !ctx_.held.empty()) {
        // The subscribers are too far behind: hold the publish (after those already held)
        // until they catch up, rather than queue more for them to be cut off over.
        hold(request, std::move(event), started);
        return;
    }
    commit(request, std::move(event), started);
}

void Connection::hold(Request& request, log::NewEvent&& event,
                      base::MonoClock::time_point started) {
    net::WorkerStats::add(ctx_.stats.publish_holds);
    state_ = State::responding;
    // The hold gives up at the request timeout with a 503; the sweep's deadline comes later.
    deadline_ =
        started + std::chrono::seconds(ctx_.services.config.server.request_timeout_seconds + 2);
    request.body = std::string();
    ctx_.held.push_back(HeldPublish{shared_from_this(), request, std::move(event), started});
    if (!ctx_.held_timer) {
        ctx_.held_timer = std::make_unique<asio::steady_timer>(ctx_.worker.io());
    }
    if (ctx_.held.size() == 1) {
        release_held(ctx_);
    }
}

void Connection::release_held(WorkerContext& ctx) {
    const std::size_t limit = ctx.services.config.server.max_queued_bytes;
    const auto wait = std::chrono::seconds(ctx.services.config.server.request_timeout_seconds);
    const auto now = base::MonoClock::now();
    while (!ctx.held.empty()) {
        HeldPublish& front = ctx.held.front();
        Connection& c = *front.connection;
        if (c.state_ != State::responding) {
            ctx.held.pop_front(); // closed meanwhile: the event was never accepted
            continue;
        }
        const bool behind = limit > 0 && queued_bytes(ctx.services) > limit;
        if (behind && now < front.started + wait) {
            // Look again shortly; the streams drain on their own writes.
            ctx.held_timer->expires_after(std::chrono::milliseconds(1));
            ctx.held_timer->async_wait([&ctx](error_code ec) {
                if (!ec) {
                    release_held(ctx);
                }
            });
            return;
        }
        HeldPublish held = std::move(front);
        ctx.held.pop_front();
        if (behind) {
            held.connection->answer(held.request,
                                    json_error(503, "the hub is overloaded: its subscribers are "
                                                    "behind; try again later"));
            ctx.stats.reject(net::Reject::unavailable);
            continue;
        }
        held.connection->commit(held.request, std::move(held.event), held.started);
    }
}

void Connection::commit(Request& request, log::NewEvent&& event,
                        base::MonoClock::time_point started) {
    auto& services = ctx_.services;
    if (services.hub.settles_at_once()) {
        auto settled = services.hub.publish(std::move(event), nullptr);
        answer(request, publish_response(ctx_.stats, request, *settled, started));
        return;
    }
    // A durable store answers once the event's transaction has ended, on its own thread:
    // the answer comes back to this worker. Meanwhile the connection waits, as for a
    // response being written, under the request timeout.
    state_ = State::responding;
    deadline_ = started + std::chrono::seconds(services.config.server.request_timeout_seconds);
    request.body = std::string(); // the event has it now; the answer needs only the rest
    auto done = [self = shared_from_this(), request, started](hub::PublishResult result) mutable {
        auto& io = self->ctx_.worker.io();
        asio::post(io, [self = std::move(self), request = std::move(request), started,
                        result = std::move(result)] {
            if (self->state_ == State::responding) {
                self->answer(request, publish_response(self->ctx_.stats, request, result, started));
            }
        });
    };
    if (auto refused = services.hub.publish(std::move(event), std::move(done))) {
        answer(request, publish_response(ctx_.stats, request, *refused, started));
    }
}

void Connection::answer(const Request& request, Response&& response) {
    if (!request.preflight) { // a preflight's answer carries its own
        if (auto origin = cors_origin(ctx_.services.config.server.cors_origins, request)) {
            add_cors(response, *origin);
        }
    }
    if (ctx_.services.config.log.access) {
        log_access(request, response.status, response.body.size());
    }
    respond(std::move(response), request.keep_alive);
}

void Connection::log_access(const Request& request, int status, std::size_t bytes) const {
    error_code ec;
    const auto remote = socket_.remote_endpoint(ec);
    // Never the headers (Authorization, Cookie) and never a token in the query string.
    spdlog::info("access {}:{} \"{} {}\" {} {}",
                 ec ? std::string("-") : remote.address().to_string(), ec ? 0 : remote.port(),
                 request.method, mask_target(request.target), status, bytes);
}

void Connection::respond(Response&& response, bool keep_alive) {
    if (state_ == State::closed) {
        return;
    }
    keep_alive = keep_alive && !ctx_.services.draining.load(std::memory_order_relaxed);
    state_ = State::responding;
    deadline_ = base::MonoClock::now() +
                std::chrono::seconds(ctx_.services.config.server.request_timeout_seconds);
    out_ = serialize(response, keep_alive);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](error_code ec, std::size_t n) {
                          if (self->state_ != State::responding) {
                              return;
                          }
                          net::WorkerStats::add(self->ctx_.stats.bytes_out, n);
                          self->out_ = std::string();
                          if (ec) {
                              self->close();
                          } else if (!keep_alive) {
                              self->linger();
                          } else if (self->read_ && !self->read_->pending.empty()) {
                              self->read_request(); // a pipelined request is waiting
                          } else {
                              self->read_.reset();
                              self->wait_request();
                          }
                      });
}

void Connection::fail(int status, std::string_view message, net::Reject reason) {
    ctx_.stats.reject(reason);
    respond(json_error(status, message), false);
}

// After a response that ends the connection: stop sending, then read and drop what the
// client still sends until it closes, so that closing does not reset the connection
// under the response before the client has read it.
void Connection::linger() {
    state_ = State::lingering;
    read_.reset();
    error_code ec;
    socket_.shutdown(net::Socket::shutdown_send, ec);
    if (ec) {
        close();
        return;
    }
    watch_peer();
}

void Connection::start_stream(const Request& request, const auth::Principal& who) {
    const auto& server = ctx_.services.config.server;
    if (ctx_.services.draining.load(std::memory_order_relaxed)) {
        // A passing refusal: EventSource gives up on anything but 200, so answer 200 and
        // close, and the client comes back (to another node, or to us once restarted).
        Response r;
        r.content_type = "text/event-stream; charset=utf-8";
        r.body = "retry: " + std::to_string(server.retry_ms) + "\n";
        answer(request, std::move(r)); // respond() closes after it while draining
        return;
    }
    auto parsed = parse_subscription(request, ctx_.stats);
    if (auto* refusal = std::get_if<Response>(&parsed)) {
        answer(request, std::move(*refusal));
        return;
    }
    auto& sub = std::get<Subscription>(parsed);
    if (auto refusal = authorize(sub.interest, who, ctx_.stats)) {
        answer(request, std::move(*refusal));
        return;
    }
    if (ctx_.services.config.log.access) {
        log_access(request, 200, 0);
    }

    state_ = State::streaming;
    read_.reset(); // an idle subscriber holds no read buffer
    if (const std::size_t sndbuf = ctx_.services.config.server.stream_send_buffer_bytes;
        sndbuf > 0) {
        // A fixed kernel send buffer instead of one that grows to megabytes: what a stream
        // has not yet sent stays in its own queue, where slow_client_bytes and
        // max_queued_bytes see it, and the latency under load stays bounded.
        error_code ec;
        socket_.set_option(asio::socket_base::send_buffer_size(static_cast<int>(sndbuf)), ec);
    }
    hub::SubscribeResult result =
        ctx_.shard.subscribe(*this, std::move(sub.interest), sub.last_event_id);

    std::string head = "HTTP/1.1 200 OK\r\n"
                       "Server: herald\r\n"
                       "Content-Type: text/event-stream; charset=utf-8\r\n"
                       "Cache-Control: no-cache\r\n"
                       "X-Accel-Buffering: no\r\n";
    if (result.resume_header) {
        head += "Last-Event-ID: " + *result.resume_header + "\r\n";
    }
    if (auto origin = cors_origin(server.cors_origins, request)) {
        head += cors_head(*origin);
    }
    // The retry: line, like the keep-alive comment, needs no blank line of its own.
    head += "Connection: close\r\n\r\nretry: " + std::to_string(server.retry_ms) + "\n";

    queue_.reserve(1 + result.replay.events.size());
    queue(base::BufferRef::copy_of(head));
    for (const auto& ev : result.replay.events) {
        queue(ev->frame);
    }
    backlog_frames_ = queue_.size();
    backlog_bytes_ = queued_bytes_;
    last_write_ = base::MonoClock::now();
    watch_peer();
    flush();
}

// Waits, holding no buffer, for the peer to close: a subscriber sends nothing after its
// request, and a lingering connection only drains what the client still sends. Whatever
// arrives is read into the worker's scratch buffer and dropped.
void Connection::watch_peer() {
    socket_.async_wait(net::Socket::wait_read,
                       [self = shared_from_this(), watched = state_](error_code ec) {
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

bool Connection::discard_input() {
    // Bounded, so a client that never stops sending cannot hold the worker.
    for (int reads = 0; reads < 16; ++reads) {
        error_code ec;
        const std::size_t n = socket_.read_some(asio::buffer(ctx_.scratch), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            return true;
        }
        if (ec || n == 0) {
            return false;
        }
    }
    return true;
}

void Connection::queue(base::BufferRef frame) {
    queued_bytes_ += frame.size();
    net::WorkerStats::add(ctx_.stats.queued_bytes, frame.size());
    queue_.push_back(std::move(frame));
}

void Connection::deliver(const log::Event& event) {
    if (slow_ || state_ != State::streaming) {
        return;
    }
    queue(event.frame);
    const std::size_t live = queued_bytes_ > backlog_bytes_ ? queued_bytes_ - backlog_bytes_ : 0;
    if (live > ctx_.services.config.server.slow_client_bytes) {
        slow_ = true; // closed in flush(): the shard is iterating its lists now
    }
}

void Connection::flush() {
    if (state_ != State::streaming) {
        return;
    }
    if (slow_) {
        net::WorkerStats::add(ctx_.stats.slow_disconnects);
        spdlog::info("closing slow subscriber {:x}: more than {} bytes unsent", id_,
                     ctx_.services.config.server.slow_client_bytes);
        close();
        return;
    }
    if (write_blocked_) {
        return;
    }
    std::size_t written_total = 0;
    while (qhead_ < queue_.size()) {
        std::array<asio::const_buffer, kMaxIov> bufs;
        std::size_t n = 0;
        for (std::size_t i = qhead_; i < queue_.size() && n < kMaxIov; ++i, ++n) {
            const auto& frame = queue_[i];
            const std::size_t skip = i == qhead_ ? head_offset_ : 0;
            bufs[n] = asio::const_buffer(frame.data() + skip, frame.size() - skip);
        }
        error_code ec;
        const std::size_t written =
            socket_.write_some(std::span<const asio::const_buffer>(bufs.data(), n), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            write_blocked_ = true;
            socket_.async_wait(net::Socket::wait_write,
                               [self = shared_from_this()](error_code wait_ec) {
                                   self->write_blocked_ = false;
                                   if (self->state_ != State::streaming) {
                                       return;
                                   }
                                   if (wait_ec) {
                                       self->close();
                                   } else {
                                       self->flush();
                                   }
                               });
            break;
        }
        if (ec) {
            close();
            return;
        }
        written_total += written;
        consume(written);
    }
    if (written_total > 0) {
        net::WorkerStats::add(ctx_.stats.bytes_out, written_total);
        last_write_ = base::MonoClock::now();
    }
    if (qhead_ == queue_.size()) {
        qhead_ = 0;
        // Keep a small queue's storage for the next event; give a large one back.
        if (queue_.capacity() > 64) {
            queue_ = std::vector<base::BufferRef>();
        } else {
            queue_.clear();
        }
    } else if (qhead_ > 1024 && qhead_ * 2 > queue_.size()) {
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(qhead_));
        qhead_ = 0;
    }
}

void Connection::consume(std::size_t bytes) {
    queued_bytes_ -= bytes;
    net::WorkerStats::sub(ctx_.stats.queued_bytes, bytes);
    while (bytes > 0) {
        base::BufferRef& frame = queue_[qhead_];
        const std::size_t left = frame.size() - head_offset_;
        if (bytes < left) {
            head_offset_ += bytes;
            return;
        }
        bytes -= left;
        head_offset_ = 0;
        if (backlog_frames_ > 0) {
            --backlog_frames_;
            backlog_bytes_ -= std::min(backlog_bytes_, frame.size());
        }
        if (is_event_frame(frame)) {
            last_frame_ = std::move(frame);
        } else {
            frame = base::BufferRef();
        }
        ++qhead_;
    }
}

void Connection::on_tick(base::MonoClock::time_point now) {
    switch (state_) {
    case State::idle:
    case State::reading:
    case State::responding:
    case State::lingering:
        if (now >= deadline_) {
            if (state_ == State::reading) {
                ctx_.stats.reject(net::Reject::timeout);
            }
            close();
        }
        break;
    case State::streaming: {
        if (principal_ && principal_->expires_ms != 0 &&
            base::unix_ms() >= principal_->expires_ms) {
            close(); // its JWT expired: the client must come back with a fresh one
            break;
        }
        const auto keepalive = std::chrono::seconds(ctx_.services.config.server.keepalive_seconds);
        if (qhead_ == queue_.size() && now - last_write_ >= keepalive) {
            queue(keepalive_frame());
            flush();
        }
        break;
    }
    case State::closed: break;
    }
}

void Connection::append_status(std::string& out) const {
    error_code ec;
    auto remote = socket_.remote_endpoint(ec);
    std::string last_id;
    if (last_frame_) {
        std::string_view frame = last_frame_.view();
        const auto end = frame.find('\n');
        last_id = std::string(frame.substr(4, end - 4)); // after "id: "
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
    out += fmt::format(
        "{}:{{\"remote\":{},\"connectedAt\":{},\"lastEventId\":{},\"topics\":{}}}",
        json_quote(fmt::format("{:x}", id_)),
        json_quote(ec ? std::string("unknown")
                      : remote.address().to_string() + ":" + std::to_string(remote.port())),
        json_quote(fmt::format("{:%FT%T}Z", fmt::gmtime(connected_at_ms_ / 1000))),
        last_id.empty() ? "null" : json_quote(last_id), topics);
}

// ---- worker entry points ----

std::uint64_t queued_bytes(const Services& services) {
    std::uint64_t total = 0;
    for (const WorkerContext* w : services.workers) {
        total += w->stats.queued_bytes.load(std::memory_order_relaxed);
    }
    return total;
}

void serve_connection(WorkerContext& ctx, net::Socket socket) {
    std::make_shared<Connection>(ctx, std::move(socket))->start();
}

// Closing a connection only unlinks that connection, and never frees it here (its pending
// operations own it until they complete), so the list can be walked directly.
void sweep(WorkerContext& ctx, base::MonoClock::time_point now) {
    ctx.connections.for_each([now](Connection& c) { c.on_tick(now); });
}

namespace {

// Whether two callers read exactly the same events.
bool same_reading(const auth::Principal& a, const auth::Principal& b) {
    if (!a.access || !b.access) {
        return !a.access && !b.access;
    }
    return a.access->everything == b.access->everything && a.access->read == b.access->read &&
           a.access->read_private == b.access->read_private;
}

} // namespace

bool Connection::recheck(const auth::Authenticator& auth) {
    if (state_ != State::streaming || !principal_) {
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
    close();
    return false;
}

std::size_t reload_auth(WorkerContext& ctx, std::shared_ptr<const auth::Authenticator> auth) {
    ctx.auth = std::move(auth);
    std::size_t closed = 0;
    ctx.connections.for_each([&](Connection& c) {
        if (!c.recheck(*ctx.auth)) {
            ++closed;
        }
    });
    return closed;
}

void close_all(WorkerContext& ctx) {
    ctx.connections.for_each([](Connection& c) {
        if (c.streaming()) {
            c.flush(); // what is queued goes out before the stream ends
        }
        c.close();
    });
}

} // namespace herald::http
