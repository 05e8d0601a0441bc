// A parsed HTTP request as the handlers see it, free of Beast types, and the response
// bytes they produce.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::http {

struct Request {
    std::string method;
    std::string target;                                     // as sent: path and query
    std::string path;                                       // percent-decoded path, no query
    std::vector<std::pair<std::string, std::string>> query; // decoded, in order
    std::string content_type;
    std::string accept;
    std::optional<std::string> last_event_id; // the header
    std::optional<std::string> authorization; // the header
    std::optional<std::string> cookie;        // every Cookie header, joined with "; "
    std::optional<std::string> origin;        // CORS
    std::optional<std::string> if_none_match; // for the dashboard's files
    bool preflight = false;                   // OPTIONS with Access-Control-Request-Method
    std::string body;
    bool keep_alive = true;

    // The first value of a query parameter.
    [[nodiscard]] std::optional<std::string_view> param(std::string_view name) const;
    // The same, with the name compared in any capitalisation (ASCII).
    [[nodiscard]] std::optional<std::string_view> param_any_case(std::string_view name) const;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    // No Content-Length: the answer to HEAD on a stream, whose length is not known.
    bool no_length = false;
};

[[nodiscard]] Response json_error(int status, std::string_view message);
// The target with the values of the query parameters `token` and `authorization` replaced
// by "***", for the access log.
[[nodiscard]] std::string mask_target(std::string_view target);
// Escapes a string as a JSON string literal, quotes included.
[[nodiscard]] std::string json_quote(std::string_view text);
// The whole response, head and body; `head_only` (for HEAD) leaves the body out but keeps
// the Content-Length a GET would have had. `node` (this node's name) goes in X-Herald-Node.
[[nodiscard]] std::string serialize(const Response& response, bool keep_alive,
                                    bool head_only = false, std::string_view node = {});
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

} // namespace herald::http
