// The endpoints other than the stream itself: publish, introspection, health. Each takes
// a parsed Request and returns a Response; only this layer knows status codes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "http/context.hpp"
#include "http/request.hpp"
#include "hub/hub.hpp"
#include "hub/subscriber.hpp"
#include "log/event.hpp"

namespace herald::http {

inline constexpr std::size_t kMaxTopicBytes = 1024;
inline constexpr std::size_t kMaxSubscriptionTopics = 256;

// What a GET /events asks for, or the error response that refuses it.
struct Subscription {
    hub::Interest interest;
    std::optional<std::string> last_event_id;
};
[[nodiscard]] std::variant<Subscription, Response> parse_subscription(const Request& request,
                                                                      net::WorkerStats& stats);

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
[[nodiscard]] Response handle_healthz();
[[nodiscard]] Response handle_readyz(Services& services);

// Collects every worker's streams for /status and calls `done` on the origin worker.
void gather_status(WorkerContext& origin, std::function<void(Response)> done);

} // namespace herald::http
