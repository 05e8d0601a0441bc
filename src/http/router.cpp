// Routing and the request pipeline: probes, the dashboard, authentication, the endpoints,
// publishing (answered once the hub has settled the event) and opening streams.
#include "http/router.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "http/access.hpp"
#include "http/errors.hpp"
#include "http/sse_stream.hpp"
#include "http/static_files.hpp"

namespace herald::http {

namespace {

void log_access(const Exchange& exchange, const Request& request, int status, std::size_t bytes) {
    // Never the headers (Authorization, Cookie) and never a token in the query string.
    spdlog::info("access {} \"{} {}\" {} {}", exchange.remote(), request.method,
                 mask_target(request.target), status, bytes);
}

Response not_allowed(Exchange& exchange, const Request& request, std::string_view allowed) {
    Response r = error_response(HttpError::method_not_allowed, exchange.context().stats,
                                request.method + " on " + request.path);
    r.headers.emplace_back("Allow", std::string(allowed));
    return r;
}

// Gives a validated event to the hub and answers once the store has settled it. One path
// for every store: the answer always comes through the callback, posted back to this
// worker (the memory store calls it at once, SQLite from its writer, Redis from its own
// thread).
void commit(Exchange& exchange, Request& request, log::NewEvent&& event,
            base::MonoClock::time_point started) {
    WorkerContext& ctx = exchange.context();
    request.body = std::string(); // the event has it now; the answer needs only the rest
    ctx.services.hub.publish(std::move(event), [held = exchange.hold(), request,
                                                started](hub::PublishResult result) mutable {
        auto& io = held->context().worker.io();
        boost::asio::post(io, [held = std::move(held), request = std::move(request), started,
                               result = std::move(result)] {
            if (held->waiting()) {
                answer(*held, request,
                       publish_response(held->context().stats, request, result, started));
            }
        });
    });
}

// Frame bytes a worker may have waiting for delivery before publishes to topics it serves
// wait: each of its streams will get them, so the same mark as a stream's (behind_mark).
std::size_t inbox_limit(const WorkerContext& ctx) {
    return behind_mark(ctx);
}

// Gives the worker's held publishes to the hub, in order, once their topics' subscribers
// have caught up; answers 503 to those that waited past the request timeout.
void release_held(WorkerContext& ctx) {
    const auto wait = std::chrono::seconds(ctx.services.config.server.request_timeout_seconds);
    const auto now = base::MonoClock::now();
    while (!ctx.held.empty()) {
        HeldPublish& front = ctx.held.front();
        if (!front.exchange->waiting()) {
            ctx.held.pop_front(); // its connection closed meanwhile: never accepted
            continue;
        }
        auto behind = ctx.services.hub.held_back(front.event.topics, inbox_limit(ctx));
        if (behind && now < front.started + wait) {
            // Look again shortly; the streams drain on their own writes.
            ctx.held_timer->expires_after(std::chrono::milliseconds(1));
            ctx.held_timer->async_wait([&ctx](boost::system::error_code ec) {
                if (!ec) {
                    release_held(ctx);
                }
            });
            return;
        }
        HeldPublish held = std::move(front);
        ctx.held.pop_front();
        if (behind) {
            answer(*held.exchange, held.request,
                   refusal(ctx.stats, net::Reject::unavailable,
                           "the subscribers of topic " + *behind +
                               " are too far behind; try again later"));
            continue;
        }
        commit(*held.exchange, held.request, std::move(held.event), held.started);
    }
}

void publish(Exchange& exchange, Request& request, const auth::Principal& who) {
    WorkerContext& ctx = exchange.context();
    const auto started = base::MonoClock::now();
    auto prepared = prepare_publish(ctx.services, ctx.stats, request, who);
    if (auto* refusal = std::get_if<Response>(&prepared)) {
        answer(exchange, request, std::move(*refusal));
        return;
    }
    auto event = std::get<log::NewEvent>(std::move(prepared));
    if (!ctx.held.empty() || ctx.services.hub.held_back(event.topics, inbox_limit(ctx))) {
        // Most of a topic's subscribers are behind: accepting more now would only cut
        // them. Wait (after the publishes already waiting, to keep their order).
        net::WorkerStats::add(ctx.stats.publish_holds);
        request.body = std::string();
        ctx.held.push_back(HeldPublish{exchange.hold(), request, std::move(event), started});
        if (!ctx.held_timer) {
            ctx.held_timer = std::make_unique<net::asio::steady_timer>(ctx.worker.io());
        }
        if (ctx.held.size() == 1) {
            release_held(ctx);
        }
        return;
    }
    commit(exchange, request, std::move(event), started);
}

void start_stream(Exchange& exchange, const Request& request, auth::PrincipalPtr who,
                  bool head_only) {
    WorkerContext& ctx = exchange.context();
    const auto& server = ctx.services.config.server;
    if (ctx.services.draining.load(std::memory_order_relaxed) && !head_only) {
        // A passing refusal: EventSource gives up on anything but 200, so answer 200 and
        // close, and the client comes back (to another node, or to us once restarted).
        Response r;
        r.content_type = "text/event-stream; charset=utf-8";
        r.body = "retry: " + std::to_string(server.retry_ms) + "\n";
        answer(exchange, request, std::move(r)); // the session closes after it while draining
        return;
    }
    auto parsed = parse_subscription(request, server.max_topics_per_subscription, ctx.stats);
    if (auto* refusal = std::get_if<Response>(&parsed)) {
        answer(exchange, request, std::move(*refusal));
        return;
    }
    auto& sub = std::get<Subscription>(parsed);
    if (auto refusal = authorize(sub.interest, *who, ctx.stats)) {
        answer(exchange, request, std::move(*refusal));
        return;
    }
    if (head_only) {
        // What GET would open, without opening it: the head of a stream of unknown length.
        Response r;
        r.content_type = "text/event-stream; charset=utf-8";
        r.no_length = true;
        // answer() adds the CORS headers, as for any other answer.
        r.headers = stream_headers(ctx.services, request, std::nullopt, false);
        answer(exchange, request, std::move(r));
        return;
    }
    if (ctx.services.config.log.access) {
        log_access(exchange, request, 200, 0);
    }
    exchange.open_stream(request, std::move(sub), std::move(who));
}

void route(Exchange& exchange, Request& request, const auth::PrincipalPtr& who_ptr) {
    WorkerContext& ctx = exchange.context();
    const auth::Principal& who = *who_ptr;
    const std::string& path = request.path;
    const std::string& method = request.method;
    const bool head = method == "HEAD";
    const bool get = method == "GET" || head;
    auto& services = ctx.services;
    auto& stats = ctx.stats;

    if (path == "/events") {
        if (get) {
            start_stream(exchange, request, who_ptr, head);
        } else if (method == "POST") {
            publish(exchange, request, who);
        } else if (method == "OPTIONS") {
            Response r;
            r.status = 204;
            r.content_type.clear();
            r.headers.emplace_back("Allow", "GET, HEAD, POST, OPTIONS");
            answer(exchange, request, std::move(r));
        } else {
            answer(exchange, request, not_allowed(exchange, request, "GET, HEAD, POST, OPTIONS"));
        }
        return;
    }
    if (path == "/status" || path == "/topics" || path == "/cluster" || path == "/metrics" ||
        path == "/") {
        if (!get) {
            answer(exchange, request, not_allowed(exchange, request, "GET, HEAD"));
            return;
        }
        const bool open = path == "/" || (path == "/metrics" && ctx.auth->open_metrics());
        if (!open) {
            if (auto refusal = require_admin(who, stats)) {
                answer(exchange, request, std::move(*refusal));
                return;
            }
        }
        if (path == "/status") {
            gather_status(ctx, [held = exchange.hold(), request = request](Response r) mutable {
                if (held->waiting()) {
                    answer(*held, request, std::move(r));
                }
            });
        } else if (path == "/topics") {
            answer(exchange, request, handle_topics(request, services, stats));
        } else if (path == "/cluster") {
            answer(exchange, request, handle_cluster(services));
        } else if (path == "/metrics") {
            answer(exchange, request, handle_metrics(services));
        } else if (auto page = serve_static(services.config.server.static_dir, path)) {
            answer(exchange, request, std::move(*page));
        } else {
            Response r;
            r.status = 302;
            r.content_type.clear();
            r.headers.emplace_back("Location", "/dashboard/");
            answer(exchange, request, std::move(r));
        }
        return;
    }
    if (get && !services.config.server.static_dir.empty()) {
        if (auto file = serve_static(services.config.server.static_dir, path)) {
            answer(exchange, request, std::move(*file));
            return;
        }
    }
    answer(exchange, request, error_response(HttpError::not_found, stats, path));
}

} // namespace

void handle_request(Exchange& exchange, Request&& request) {
    WorkerContext& ctx = exchange.context();
    auto& stats = ctx.stats;
    if (request.preflight) {
        // Browsers send no credentials with a preflight: answered before auth.
        answer(exchange, request,
               preflight(cors_origin(ctx.services.config.server.cors_origins, request), stats));
        return;
    }
    const bool get = request.method == "GET" || request.method == "HEAD";
    if (request.path == "/healthz" || request.path == "/readyz") {
        // The probes are open whatever the auth settings.
        if (!get) {
            answer(exchange, request, not_allowed(exchange, request, "GET, HEAD"));
        } else {
            answer(exchange, request,
                   request.path == "/healthz" ? handle_healthz(ctx.services)
                                              : handle_readyz(ctx.services));
        }
        return;
    }
    if (request.path == "/dashboard" || request.path.starts_with("/dashboard/")) {
        // The page, its script and styles hold no data: they are served to anyone, and the
        // page then calls the API with the token its user gives it.
        Request as_get = request;
        if (request.method == "HEAD") {
            as_get.method = "GET";
        }
        Response r = serve_dashboard(as_get);
        if (r.status == 404) {
            stats.reject(net::Reject::not_found);
        } else if (r.status == 405) {
            stats.reject(net::Reject::method_not_allowed);
        }
        answer(exchange, request, std::move(r));
        return;
    }
    auto who = identify(*ctx.auth, request, stats);
    if (auto* refusal = std::get_if<Response>(&who)) {
        answer(exchange, request, std::move(*refusal));
        return;
    }
    route(exchange, request, std::get<auth::PrincipalPtr>(who));
}

void answer(Exchange& exchange, const Request& request, Response&& response) {
    WorkerContext& ctx = exchange.context();
    if (!request.preflight) { // a preflight's answer carries its own
        if (auto origin = cors_origin(ctx.services.config.server.cors_origins, request)) {
            add_cors(response, *origin);
        }
    }
    if (ctx.services.config.log.access) {
        log_access(exchange, request, response.status, response.body.size());
    }
    exchange.respond(std::move(response));
}

std::vector<std::pair<std::string, std::string>>
stream_headers(const Services& services, const Request& request,
               const std::optional<std::string>& resume_header, bool cors) {
    Response r;
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("X-Accel-Buffering", "no");
    if (resume_header) {
        r.headers.emplace_back("Last-Event-ID", *resume_header);
    }
    if (auto origin = cors_origin(services.config.server.cors_origins, request); origin && cors) {
        add_cors(r, *origin);
    }
    return std::move(r.headers);
}

} // namespace herald::http
