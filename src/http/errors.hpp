// Every refusal herald answers, in two tables: each counted reason (net::Reject) has one
// status, and the refusals the HTTP layer itself makes (framing, limits, methods, overload)
// also have one sentence each, so they read the same whichever session (HTTP/1.1, later
// HTTP/2) met them. Handlers give their own sentence, naming the field at fault, but take
// the status from the reason.
#pragma once

#include <cstdint>
#include <string_view>

#include "http/request.hpp"
#include "net/stats.hpp"

namespace herald::http {

enum class HttpError : std::uint8_t {
    malformed,               // not HTTP/1.x as RFC 9112 reads it
    bad_target,              // the target is not an origin-form path
    header_too_large,        // the header section passed kHeaderLimit
    uri_too_long,            // the request line alone passed kHeaderLimit
    body_too_large,          // more than server.max_body_bytes
    transfer_not_chunked,    // a Transfer-Encoding whose last coding is not chunked
    transfer_coding_unknown, // a coding other than chunked before chunked
    length_and_transfer,     // both Content-Length and Transfer-Encoding
    missing_host,            // HTTP/1.1 with no Host, or several
    expectation_unsupported, // an Expect other than 100-continue
    timeout,                 // the request did not arrive within request_timeout_seconds
    method_not_allowed,      // a known path, another method
    not_found,               // no such endpoint
    count_
};

struct ErrorInfo {
    net::Reject reason;
    std::string_view sentence;
};

// The status every refusal counted under `reason` answers with.
[[nodiscard]] int status_of(net::Reject reason) noexcept;

[[nodiscard]] const ErrorInfo& describe(HttpError error) noexcept;

// A refusal: counted under `reason` in `stats`, answered with its status and `message` as
// the JSON error.
[[nodiscard]] Response refusal(net::WorkerStats& stats, net::Reject reason,
                               std::string_view message);

// The JSON error response: the table's sentence, then ": detail" when a detail is given.
// Counts the refusal in `stats`.
[[nodiscard]] Response error_response(HttpError error, net::WorkerStats& stats,
                                      std::string_view detail = {});

} // namespace herald::http
