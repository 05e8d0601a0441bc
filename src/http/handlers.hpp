// The endpoints other than the stream itself: publish, introspection, health. Each takes
// a parsed Request and returns a Response; only this layer knows status codes.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "http/context.hpp"
#include "http/publish_body.hpp"
#include "http/request.hpp"
#include "hub/hub.hpp"
#include "hub/subscriber.hpp"
#include "log/event.hpp"

namespace herald::http {

// The most {var} expressions in one URI template of a subscription. Matching is linear in
// any case; this keeps one subscription's worth of templates cheap to check on every event.
inline constexpr std::size_t kMaxTemplateExpressions = 32;
// The most URI templates in one subscription (exact topics are looked up, not matched, and
// count only toward server.max_topics_per_subscription). Each template is matched against
// every topic of every event the shard sees: this bounds what one subscriber can make the
// hub do per event, whatever the number of selectors allowed.
inline constexpr std::size_t kMaxSubscriptionTemplates = 64;

// What a GET /events asks for, or the error response that refuses it (400, counted as an
// invalid topic): more than `max_topics` selectors (server.max_topics_per_subscription), a
// selector that is not a valid topic, a template with more than kMaxTemplateExpressions, or
// more than kMaxSubscriptionTemplates templates.
struct Subscription {
    hub::Interest interest;
    std::optional<std::string> last_event_id;
};
[[nodiscard]] std::variant<Subscription, Response>
parse_subscription(const Request& request, std::size_t max_topics, net::WorkerStats& stats);

// Checks a publish for `who`: the event, once it is valid and every topic is one `who` may
// publish to, or the response that refuses it.
[[nodiscard]] std::variant<log::NewEvent, Response> prepare_publish(Services& services,
                                                                    net::WorkerStats& stats,
                                                                    const Request& request,
                                                                    const auth::Principal& who);
// The answer to a publish the hub has settled (200 with the id, 409, or 503).
[[nodiscard]] Response publish_response(net::WorkerStats& stats, const Request& request,
                                        const hub::PublishResult& result,
                                        base::MonoClock::time_point started);
[[nodiscard]] Response handle_topics(const Request& request, Services& services,
                                     net::WorkerStats& stats);
[[nodiscard]] Response handle_metrics(Services& services);
// GET /cluster (admin): {"nodes": [{"name", "connections", "subscribers", "lastSeen"}]}, the
// live nodes by name; on a single-node store, this node alone.
[[nodiscard]] Response handle_cluster(const Services& services);
[[nodiscard]] Response handle_healthz(const Services& services);
[[nodiscard]] Response handle_readyz(Services& services);

// Collects every worker's streams for /status and calls `done` on the origin worker.
void gather_status(WorkerContext& origin, std::function<void(Response)> done);

} // namespace herald::http
