// Names of the rejection reasons (the `reason` label of herald_requests_rejected_total).
#include "net/stats.hpp"

namespace herald::net {

std::string_view reject_name(Reject reason) noexcept {
    switch (reason) {
    case Reject::bad_request: return "bad_request";
    case Reject::header_too_large: return "header_too_large";
    case Reject::body_too_large: return "body_too_large";
    case Reject::timeout: return "timeout";
    case Reject::not_found: return "not_found";
    case Reject::method_not_allowed: return "method_not_allowed";
    case Reject::unsupported_media_type: return "unsupported_media_type";
    case Reject::invalid_topic: return "invalid_topic";
    case Reject::invalid_event: return "invalid_event";
    case Reject::unauthorized: return "unauthorized";
    case Reject::forbidden: return "forbidden";
    case Reject::cors: return "cors";
    case Reject::duplicate_id: return "duplicate_id";
    case Reject::unavailable: return "unavailable";
    case Reject::uri_too_long: return "uri_too_long";
    case Reject::expectation_failed: return "expectation_failed";
    case Reject::not_implemented: return "not_implemented";
    case Reject::max_connections: return "max_connections";
    case Reject::max_connections_per_ip: return "max_connections_per_ip";
    case Reject::count_: break;
    }
    return "unknown";
}

void WorkerStats::publish_latency(std::uint64_t ns) noexcept {
    const double seconds = static_cast<double>(ns) / 1e9;
    std::size_t i = 0;
    while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) {
        ++i;
    }
    add(publish_buckets[i]);
    add(publish_count);
    add(publish_ns_sum, ns);
}

} // namespace herald::net
