// The table of the HTTP layer's own refusals.
#include "http/errors.hpp"

#include <array>
#include <string>

namespace herald::http {

namespace {

using R = net::Reject;

// One status per counted reason, in net::Reject's order.
constexpr std::array<int, static_cast<std::size_t>(R::count_)> kStatus = {
    400, // bad_request
    431, // header_too_large
    413, // body_too_large
    408, // timeout
    404, // not_found
    405, // method_not_allowed
    415, // unsupported_media_type
    400, // invalid_topic
    400, // invalid_event
    401, // unauthorized
    403, // forbidden
    403, // cors
    409, // duplicate_id
    503, // unavailable
    414, // uri_too_long
    417, // expectation_failed
    501, // not_implemented
    503, // max_connections
    429, // max_connections_per_ip
};

constexpr std::array<ErrorInfo, static_cast<std::size_t>(HttpError::count_)> kTable = {{
    {R::bad_request, "malformed HTTP request"},
    {R::bad_request, "malformed request target: expected a path starting with /"},
    {R::header_too_large, "the request's header section is larger than 8 KiB"},
    {R::uri_too_long, "the request line is longer than 8 KiB"},
    {R::body_too_large, "the request body is larger than server.max_body_bytes"},
    {R::bad_request,
     "Transfer-Encoding must end in chunked (a request body's length must be known)"},
    {R::not_implemented, "herald decodes no transfer coding but chunked"},
    {R::bad_request, "a request may not carry both Content-Length and Transfer-Encoding"},
    {R::bad_request, "an HTTP/1.1 request needs exactly one Host header"},
    {R::expectation_failed, "the only expectation herald meets is 100-continue"},
    {R::timeout, "the request did not arrive within server.request_timeout_seconds"},
    {R::method_not_allowed, "method not allowed"},
    {R::not_found, "no such endpoint"},
}};

} // namespace

int status_of(net::Reject reason) noexcept {
    return kStatus[static_cast<std::size_t>(reason)];
}

const ErrorInfo& describe(HttpError error) noexcept {
    return kTable[static_cast<std::size_t>(error)];
}

Response refusal(net::WorkerStats& stats, net::Reject reason, std::string_view message) {
    stats.reject(reason);
    return json_error(status_of(reason), message);
}

Response error_response(HttpError error, net::WorkerStats& stats, std::string_view detail) {
    const ErrorInfo& info = describe(error);
    if (detail.empty()) {
        return refusal(stats, info.reason, info.sentence);
    }
    std::string message(info.sentence);
    message += ": ";
    message += detail;
    return refusal(stats, info.reason, message);
}

} // namespace herald::http
