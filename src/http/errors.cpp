// The table of the HTTP layer's own refusals.
#include "http/errors.hpp"

#include <array>
#include <string>

namespace herald::http {

namespace {

using R = net::Reject;

constexpr std::array<ErrorInfo, static_cast<std::size_t>(HttpError::count_)> kTable = {{
    {400, R::bad_request, "malformed HTTP request"},
    {400, R::bad_request, "malformed request target: expected a path starting with /"},
    {431, R::header_too_large, "the request's header section is larger than 8 KiB"},
    {414, R::uri_too_long, "the request line is longer than 8 KiB"},
    {413, R::body_too_large, "the request body is larger than server.max_body_bytes"},
    {400, R::bad_request,
     "Transfer-Encoding must end in chunked (a request body's length must be known)"},
    {501, R::not_implemented, "herald decodes no transfer coding but chunked"},
    {400, R::bad_request, "a request may not carry both Content-Length and Transfer-Encoding"},
    {400, R::bad_request, "an HTTP/1.1 request needs exactly one Host header"},
    {417, R::expectation_failed, "the only expectation herald meets is 100-continue"},
    {408, R::timeout, "the request did not arrive within server.request_timeout_seconds"},
    {405, R::method_not_allowed, "method not allowed"},
    {404, R::not_found, "no such endpoint"},
    {503, R::unavailable, "the hub is shutting down; try again shortly"},
}};

} // namespace

const ErrorInfo& describe(HttpError error) noexcept {
    return kTable[static_cast<std::size_t>(error)];
}

Response error_response(HttpError error, net::WorkerStats& stats, std::string_view detail) {
    const ErrorInfo& info = describe(error);
    stats.reject(info.reason);
    if (detail.empty()) {
        return json_error(info.status, info.sentence);
    }
    std::string message(info.sentence);
    message += ": ";
    message += detail;
    return json_error(info.status, message);
}

} // namespace herald::http
