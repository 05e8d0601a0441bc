// Who may do what, applied to requests; see docs/access-control.md for the rules.
#include "http/access.hpp"

#include <algorithm>

#include "base/clock.hpp"
#include "http/errors.hpp"
#include "hub/selector.hpp"

namespace herald::http {

namespace {

constexpr std::string_view kExposed = "Last-Event-ID, WWW-Authenticate";
constexpr std::string_view kAllowedHeaders =
    "Authorization, Content-Type, Last-Event-ID, Cache-Control, Accept, X-Requested-With";

} // namespace

Response unauthorized(net::WorkerStats& stats, std::string_view message, bool invalid_token) {
    Response r = refusal(stats, net::Reject::unauthorized, message);
    r.headers.emplace_back("WWW-Authenticate",
                           invalid_token ? "Bearer realm=\"herald\", error=\"invalid_token\""
                                         : "Bearer realm=\"herald\"");
    return r;
}

Response refuse(net::WorkerStats& stats, const auth::Principal& who, std::string_view message) {
    if (who.anonymous()) {
        return unauthorized(stats, std::string(message) + ": a token is needed", false);
    }
    return refusal(stats, net::Reject::forbidden,
                   std::string(message) + ": this token does not grant it");
}

std::variant<auth::PrincipalPtr, Response>
identify(const auth::Authenticator& auth, const Request& request, net::WorkerStats& stats) {
    auth::CredentialSources sources;
    if (request.authorization) {
        sources.authorization_header = *request.authorization;
    }
    sources.token_param = request.param("token");
    sources.authorization_param = request.param("authorization");
    if (request.cookie) {
        sources.cookie_header = *request.cookie;
    }
    auto found = auth::find_credential(sources);
    if (auto* refusal = std::get_if<auth::Refusal>(&found)) {
        return unauthorized(stats, refusal->reason, true);
    }
    std::optional<std::string_view> credential;
    if (auto* token = std::get_if<std::string_view>(&found)) {
        credential = *token;
    }
    auto result = auth.authenticate(credential, base::unix_ms());
    if (auto* refusal = std::get_if<auth::Refusal>(&result)) {
        return unauthorized(stats, refusal->reason, credential.has_value());
    }
    return std::get<auth::PrincipalPtr>(std::move(result));
}

std::optional<Response> authorize(hub::Interest& interest, const auth::Principal& who,
                                  net::WorkerStats& stats) {
    for (const auto& topic : interest.exact) {
        // An admin sees /status and /metrics, so it may also follow the hub's own $sys
        // topics, by name.
        if (!who.may_read(topic) && !(who.admin && hub::is_system_topic(topic))) {
            return refuse(stats, who, "reading the topic " + topic + " is not allowed");
        }
    }
    interest.access = who.access;
    if (interest.patterns.empty() || !who.access || who.access->everything) {
        return std::nullopt;
    }
    if (!who.may_read_something()) {
        return refuse(stats, who, "there is no topic this caller may read");
    }
    // "*" means "all I may read": unless the grants hold a "*" themselves, that is exactly
    // the grants, which the hub can index by topic instead of testing on every event.
    const auto& read = who.access->read;
    auto star =
        std::find_if(interest.patterns.begin(), interest.patterns.end(),
                     [](const hub::Selector& s) { return s.kind() == hub::Selector::Kind::all; });
    const bool grants_star = std::any_of(read.begin(), read.end(), [](const hub::Selector& s) {
        return s.kind() == hub::Selector::Kind::all;
    });
    if (star != interest.patterns.end() && !grants_star) {
        interest.patterns.erase(star);
        for (const auto& grant : read) {
            if (grant.is_exact()) {
                if (!hub::is_system_topic(grant.text())) {
                    interest.exact.push_back(grant.text());
                }
            } else if (std::find(interest.patterns.begin(), interest.patterns.end(), grant) ==
                       interest.patterns.end()) {
                interest.patterns.push_back(grant);
            }
        }
    }
    return std::nullopt;
}

std::optional<Response> require_admin(const auth::Principal& who, net::WorkerStats& stats) {
    if (who.admin) {
        return std::nullopt;
    }
    return refuse(stats, who, "this endpoint is for admins");
}

std::optional<std::string> cors_origin(const std::vector<std::string>& allowed,
                                       const Request& request) {
    if (!request.origin || allowed.empty()) {
        return std::nullopt;
    }
    const std::string& origin = *request.origin;
    for (const auto& a : allowed) {
        if (a == "*" || a == origin) {
            return origin;
        }
    }
    return std::nullopt;
}

void add_cors(Response& response, const std::string& origin) {
    response.headers.emplace_back("Access-Control-Allow-Origin", origin);
    response.headers.emplace_back("Access-Control-Allow-Credentials", "true");
    response.headers.emplace_back("Access-Control-Expose-Headers", std::string(kExposed));
    response.headers.emplace_back("Vary", "Origin");
}

Response preflight(const std::optional<std::string>& origin, net::WorkerStats& stats) {
    if (!origin) {
        return refusal(stats, net::Reject::cors,
                       "this origin may not call the hub (see server.cors_origins)");
    }
    Response r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Access-Control-Allow-Origin", *origin);
    r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    r.headers.emplace_back("Access-Control-Allow-Headers", std::string(kAllowedHeaders));
    r.headers.emplace_back("Access-Control-Max-Age", "86400");
    r.headers.emplace_back("Vary", "Origin");
    return r;
}

} // namespace herald::http
