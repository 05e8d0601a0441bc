// Access control as the HTTP layer applies it: who the caller is, what a subscription may
// read, the 401/403 answers, CORS, and the access log's masking of tokens.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "auth/authenticator.hpp"
#include "http/request.hpp"
#include "net/stats.hpp"

namespace herald::http {

// The caller of `request`, or the 401 that refuses it. A request without a credential is
// anonymous, unless AUTH_TOKEN turned anonymous access off.
[[nodiscard]] std::variant<auth::PrincipalPtr, Response>
identify(const auth::Authenticator& auth, const Request& request, net::WorkerStats& stats);

// 401 with `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a token was refused).
[[nodiscard]] Response unauthorized(net::WorkerStats& stats, std::string_view message,
                                    bool invalid_token);

// 401 for an anonymous caller (a token might help), 403 for a token (it will not).
[[nodiscard]] Response refuse(net::WorkerStats& stats, const auth::Principal& who,
                              std::string_view message);

// Checks a subscription against what the caller may read, and scopes it: its exact topics
// must each be readable; `*` and templates are narrowed to the readable topics (a `*` is
// replaced by the caller's own grants when they do not include `*`, so the hub indexes the
// stream by topic). Returns the refusal, if any.
[[nodiscard]] std::optional<Response> authorize(hub::Interest& interest, const auth::Principal& who,
                                                net::WorkerStats& stats);

// Admin endpoints (/status, /topics and, unless opened, /metrics): the refusal, if any.
// With auth off everyone is admin.
[[nodiscard]] std::optional<Response> require_admin(const auth::Principal& who,
                                                    net::WorkerStats& stats);

// CORS: the origin to echo in Access-Control-Allow-Origin when `request.origin` is one
// of `allowed` ("*" allows any), or nothing.
[[nodiscard]] std::optional<std::string> cors_origin(const std::vector<std::string>& allowed,
                                                     const Request& request);
// Adds the CORS headers of a simple (non-preflight) response.
void add_cors(Response& response, const std::string& origin);
// The answer to a preflight: 204 with the allowed methods and headers, or 403.
[[nodiscard]] Response preflight(const std::optional<std::string>& origin, net::WorkerStats& stats);

} // namespace herald::http
