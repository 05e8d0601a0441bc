// Publish, subscription parsing, and the introspection endpoints.
#include "http/handlers.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>
#include <mutex>

#include <boost/asio/post.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include "base/clock.hpp"
#include "http/access.hpp"
#include "http/errors.hpp"
#include "http/publish_body.hpp"
#include "http/sse_stream.hpp"
#include "sse/frame.hpp"

namespace herald::http {

namespace {

using net::Reject;

bool wants_json(const Request& request) {
    return request.accept.find("application/json") != std::string::npos;
}

// Why a topic is not acceptable, or empty when it is.
std::string topic_problem(std::string_view topic) {
    if (topic.empty()) {
        return "a topic must not be empty";
    }
    if (topic.size() > kMaxTopicBytes) {
        return "a topic must be at most 1024 bytes";
    }
    if (!sse::is_valid_utf8(topic)) {
        return "a topic must be valid UTF-8";
    }
    return {};
}

} // namespace

std::variant<Subscription, Response>
parse_subscription(const Request& request, std::size_t max_topics, net::WorkerStats& stats) {
    Subscription sub;
    std::size_t count = 0;
    for (const auto& [key, value] : request.query) {
        if (key != "topic") {
            continue;
        }
        if (++count > max_topics) {
            return refusal(stats, Reject::invalid_topic,
                           "a subscription may name at most " + std::to_string(max_topics) +
                               " topics (server.max_topics_per_subscription)");
        }
        if (auto problem = topic_problem(value); !problem.empty()) {
            return refusal(stats, Reject::invalid_topic, problem);
        }
        auto selector = hub::Selector::parse(value);
        if (selector.expressions() > kMaxTemplateExpressions) {
            return refusal(stats, Reject::invalid_topic,
                           "a URI template may hold at most " +
                               std::to_string(kMaxTemplateExpressions) + " {var} expressions");
        }
        if (selector.is_exact()) {
            sub.interest.exact.push_back(value);
        } else if (sub.interest.patterns.size() >= kMaxSubscriptionTemplates) {
            return refusal(stats, Reject::invalid_topic,
                           "a subscription may name at most " +
                               std::to_string(kMaxSubscriptionTemplates) +
                               " URI templates or * (exact topics are not limited by this)");
        } else {
            sub.interest.patterns.push_back(std::move(selector));
        }
    }
    if (count == 0) {
        // No topic: every topic the caller may read.
        sub.interest.patterns.push_back(hub::Selector::parse("*"));
    }
    if (request.last_event_id) {
        sub.last_event_id = request.last_event_id;
    } else if (auto id = request.param_any_case("lastEventID")) {
        // Polyfills send lastEventId; any capitalisation is the same parameter.
        sub.last_event_id = std::string(*id);
    }
    return sub;
}

std::variant<log::NewEvent, Response> prepare_publish(Services& services, net::WorkerStats& stats,
                                                      const Request& request,
                                                      const auth::Principal& who) {
    if (who.anonymous() && !who.may_publish_something()) {
        return refuse(stats, who, "publishing is not allowed");
    }
    auto body = read_publish_body(request.content_type, request.body);
    if (auto* error = std::get_if<PublishBodyError>(&body)) {
        return refusal(stats, error->reason, error->message);
    }
    auto& f = std::get<PublishFields>(body);
    const auto& server = services.config.server;
    if (f.topics.empty()) {
        return refusal(stats, Reject::invalid_topic, "missing topic");
    }
    if (f.topics.size() > server.max_topics_per_event) {
        return refusal(stats, Reject::invalid_topic,
                       "an event may have at most " + std::to_string(server.max_topics_per_event) +
                           " topics");
    }
    for (const auto& topic : f.topics) {
        if (auto why = topic_problem(topic); !why.empty()) {
            return refusal(stats, Reject::invalid_topic, why);
        }
        if (hub::is_system_topic(topic)) {
            return refusal(stats, Reject::forbidden,
                           "nobody may publish to the system topic " + topic);
        }
    }
    for (const auto& topic : f.topics) {
        if (!who.may_publish(topic)) {
            return refuse(stats, who, "publishing to the topic " + topic + " is not allowed");
        }
    }
    if (auto problem = check_event_fields(f)) {
        return refusal(stats, Reject::invalid_event, *problem);
    }

    log::NewEvent ev;
    ev.topics = std::move(f.topics);
    ev.id = std::move(f.id);
    ev.type = std::move(f.type);
    ev.data = std::move(*f.data);
    ev.is_private = f.is_private;
    ev.retry_ms = f.retry_ms;
    return ev;
}

Response publish_response(net::WorkerStats& stats, const Request& request,
                          const hub::PublishResult& result, base::MonoClock::time_point started) {
    switch (result.error) {
    case hub::PublishError::none: break;
    case hub::PublishError::duplicate_id:
        return refusal(stats, Reject::duplicate_id,
                       "an event with this id already exists in the history");
    case hub::PublishError::unavailable:
        return refusal(stats, Reject::unavailable,
                       "the store cannot take events now" +
                           (result.reason.empty() ? std::string() : ": " + result.reason));
    }
    stats.publish_latency(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(base::MonoClock::now() - started)
            .count()));
    Response r;
    if (wants_json(request)) {
        r.body = "{\"id\":" + json_quote(result.event->id) + "}\n";
    } else {
        r.content_type = "text/plain; charset=utf-8";
        r.body = result.event->id;
    }
    return r;
}

Response handle_topics(const Request& request, Services& services, net::WorkerStats& stats) {
    // One page: ?limit=N (default 1000, at most 10000), ?after=TOPIC (the previous page's
    // `next`), ?prefix=P.
    constexpr std::size_t kDefaultLimit = 1000;
    constexpr std::size_t kMaxLimit = 10000;
    hub::TopicQuery query;
    query.limit = kDefaultLimit;
    if (auto limit = request.param("limit")) {
        std::size_t n = 0;
        auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
        if (limit->empty() || ec != std::errc() || end != limit->data() + limit->size() || n < 1 ||
            n > kMaxLimit) {
            return refusal(stats, Reject::bad_request,
                           "limit must be an integer from 1 to " + std::to_string(kMaxLimit));
        }
        query.limit = n;
    }
    query.after = request.param("after").value_or("");
    query.prefix = request.param("prefix").value_or("");
    const hub::TopicPage page = services.hub.topics(query);
    // In a cluster, the streams of the other live nodes that name each topic too.
    std::vector<std::uint64_t> elsewhere(page.topics.size(), 0);
    if (services.cluster != nullptr && !page.topics.empty()) {
        std::vector<std::string> names;
        names.reserve(page.topics.size());
        for (const auto& info : page.topics) {
            names.push_back(info.topic);
        }
        elsewhere = services.cluster->others_subscribers(names);
        elsewhere.resize(page.topics.size(), 0);
    }
    std::string body = "{\"topics\":[";
    bool first = true;
    for (std::size_t i = 0; i < page.topics.size(); ++i) {
        const auto& info = page.topics[i];
        body += first ? "" : ",";
        first = false;
        body += "{\"topic\":" + json_quote(info.topic) +
                ",\"subscribers\":" + std::to_string(info.subscribers + elsewhere[i]) +
                ",\"retained\":" + std::to_string(info.retained) + ",\"lastEventId\":" +
                (info.last_id.empty() ? std::string("null") : json_quote(info.last_id)) + "}";
    }
    body += "]";
    if (page.more) {
        body += ",\"next\":" + json_quote(page.topics.back().topic);
    }
    body += "}\n";
    Response r;
    r.body = std::move(body);
    return r;
}

Response handle_metrics(Services& services) {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = services.render_metrics ? services.render_metrics() : std::string();
    return r;
}

Response handle_cluster(const Services& services) {
    std::vector<cluster::NodeFigures> nodes;
    if (services.cluster != nullptr) {
        nodes = services.cluster->nodes();
    } else {
        cluster::NodeFigures self;
        self.name = services.node;
        for (const WorkerContext* w : services.workers) {
            self.connections += w->stats.connections_open.load(std::memory_order_relaxed);
        }
        self.subscribers =
            static_cast<std::uint64_t>(std::max<std::int64_t>(services.hub.subscribers(), 0));
        self.last_seen_ms = base::unix_ms();
        nodes.push_back(std::move(self));
    }
    std::string body = "{\"nodes\":[";
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const auto& n = nodes[i];
        body += i == 0 ? "" : ",";
        body += "{\"name\":" + json_quote(n.name) +
                ",\"connections\":" + std::to_string(n.connections) +
                ",\"subscribers\":" + std::to_string(n.subscribers) + ",\"lastSeen\":" +
                json_quote(fmt::format("{:%FT%T}Z", fmt::gmtime(n.last_seen_ms / 1000))) + "}";
    }
    body += "]}\n";
    Response r;
    r.body = std::move(body);
    return r;
}

Response handle_healthz(const Services& services) {
    Response r;
    r.body = "{\"status\":\"ok\",\"node\":" + json_quote(services.node) + "}\n";
    return r;
}

Response handle_readyz(Services& services) {
    if (auto trouble = services.hub.trouble()) {
        return json_error(503, "not ready: " + *trouble);
    }
    Response r;
    r.body = "{\"status\":\"ready\"}\n";
    return r;
}

void gather_status(WorkerContext& origin, std::function<void(Response)> done) {
    struct Gather {
        std::mutex mu;
        std::vector<std::string> parts;
        std::atomic<std::size_t> left{0};
        std::function<void(Response)> done;
        WorkerContext* origin = nullptr;
    };
    auto g = std::make_shared<Gather>();
    const auto& workers = origin.services.workers;
    g->left = workers.size();
    g->done = std::move(done);
    g->origin = &origin;
    for (WorkerContext* w : workers) {
        boost::asio::post(w->worker.io(), [g, w] {
            std::string part;
            w->connections.for_each([&part](Session& c) {
                c.for_each_stream([&part](SseStream& s) {
                    if (!part.empty()) {
                        part += ',';
                    }
                    s.append_status(part);
                });
            });
            {
                std::lock_guard lock(g->mu);
                if (!part.empty()) {
                    g->parts.push_back(std::move(part));
                }
            }
            if (g->left.fetch_sub(1) == 1) {
                boost::asio::post(g->origin->worker.io(), [g] {
                    std::string body = "{";
                    for (std::size_t i = 0; i < g->parts.size(); ++i) {
                        if (i > 0) {
                            body += ',';
                        }
                        body += g->parts[i];
                    }
                    body += "}\n";
                    Response r;
                    r.body = std::move(body);
                    g->done(std::move(r));
                });
            }
        });
    }
}

} // namespace herald::http
