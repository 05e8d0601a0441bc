// Who is calling, and what they may do: a credential (static token, AUTH_TOKEN or JWT)
// turned into a Principal with its grants. Immutable once built; SIGHUP builds a new one
// and swaps it in, so a request always sees one consistent set of tokens.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "auth/jwt.hpp"
#include "config/config.hpp"
#include "hub/selector.hpp"
#include "hub/subscriber.hpp"

namespace herald::auth {

// The caller of one request or stream, with every right it has.
struct Principal {
    enum class Kind { anonymous, token, jwt, root };

    Kind kind = Kind::anonymous;
    // What it may read (its own grants and, unless AUTH_TOKEN turned anonymous access off,
    // the anonymous ones); null when auth is off and everyone reads every public topic.
    std::shared_ptr<const hub::Access> access;
    std::vector<hub::Selector> publish; // its own grants and the anonymous ones
    bool publish_anything = false;      // auth off, or AUTH_TOKEN: every non-system topic
    bool admin = false;                 // /status, /topics, /metrics
    std::int64_t expires_ms = 0;        // a JWT's exp; 0 when it never expires
    std::string credential;             // to check again on reload; never logged

    [[nodiscard]] bool anonymous() const noexcept { return kind == Kind::anonymous; }
    [[nodiscard]] bool may_read(std::string_view topic) const noexcept {
        return !access || access->may_read(topic);
    }
    // Whether anything at all may be read (a `*` subscription with nothing is refused).
    [[nodiscard]] bool may_read_something() const noexcept {
        return !access || access->everything || !access->read.empty();
    }
    [[nodiscard]] bool may_publish(std::string_view topic) const noexcept;
    [[nodiscard]] bool may_publish_something() const noexcept {
        return publish_anything || !publish.empty();
    }
};
using PrincipalPtr = std::shared_ptr<const Principal>;

// Why a credential was refused, as a sentence for the client.
struct Refusal {
    std::string reason;
};

class Authenticator {
public:
    // `root_token`: from AUTH_TOKEN_FILE or AUTH_TOKEN, every right, anonymous off.
    // `public_key_pem`: the content of auth.jwt_public_key_file. Throws
    // config::ConfigError for a key that is not an RSA public key.
    Authenticator(const config::AuthConfig& config, std::optional<std::string> root_token,
                  std::string public_key_pem);

    // Whether any credential or anonymous grant is configured: otherwise everyone may do
    // everything but read private events.
    [[nodiscard]] bool enabled() const noexcept { return enabled_; }
    // False once AUTH_TOKEN is set: every request but the probes needs the token.
    [[nodiscard]] bool anonymous_allowed() const noexcept { return !root_principal_; }
    [[nodiscard]] std::size_t token_count() const noexcept { return tokens_.size(); }
    // auth.open_metrics: /metrics without admin.
    [[nodiscard]] bool open_metrics() const noexcept { return open_metrics_; }

    // The caller for a credential (none: anonymous), or why it is refused. Static tokens
    // are found by their SHA-256 digest and confirmed with a constant-time comparison, so
    // the time taken tells nothing about how much of a guess was right. Thread-safe.
    [[nodiscard]] std::variant<PrincipalPtr, Refusal>
    authenticate(std::optional<std::string_view> credential, std::int64_t now_ms) const;

    [[nodiscard]] const PrincipalPtr& anonymous() const noexcept { return anonymous_; }

private:
    using Digest = std::array<unsigned char, 32>;
    struct DigestHash {
        std::size_t operator()(const Digest& d) const noexcept;
    };

    [[nodiscard]] PrincipalPtr make_principal(Principal::Kind kind,
                                              const std::vector<std::string>& subscribe,
                                              const std::vector<std::string>& publish, bool admin,
                                              std::string credential,
                                              std::int64_t expires_ms = 0) const;

    bool enabled_ = false;
    bool open_metrics_ = false;
    Digest root_digest_{};
    PrincipalPtr root_principal_; // AUTH_TOKEN's; null when none is set
    PrincipalPtr anonymous_;
    std::vector<hub::Selector> anonymous_read_;
    std::vector<hub::Selector> anonymous_publish_;
    std::unordered_map<Digest, PrincipalPtr, DigestHash> tokens_;
    JwtVerifier jwt_;
};

// The root token from the environment: the content of the file AUTH_TOKEN_FILE names
// (trailing newline trimmed), or else AUTH_TOKEN; none when neither is set. Throws
// config::ConfigError for a file that cannot be read or holds no token.
[[nodiscard]] std::optional<std::string>
root_token_from(const std::map<std::string, std::string>& env);

// Builds the authenticator of a configuration: reads the root token and the public key
// file. Throws config::ConfigError naming the key at fault.
[[nodiscard]] std::shared_ptr<const Authenticator>
make_authenticator(const config::Config& config, const std::map<std::string, std::string>& env);

// Where a request's credential comes from, in order of precedence: the `Authorization:
// Bearer` header, the query parameters `token` then `authorization`, the cookies
// `herald_token` then `mercureAuthorization`.
struct CredentialSources {
    std::optional<std::string_view> authorization_header;
    std::optional<std::string_view> token_param;
    std::optional<std::string_view> authorization_param;
    std::optional<std::string_view> cookie_header; // every Cookie header, joined with "; "
};

// The credential a request carries: none (anonymous), the token, or a Refusal for a
// malformed one (an Authorization header that is not "Bearer <token>", an empty token).
[[nodiscard]] std::variant<std::monostate, std::string_view, Refusal>
find_credential(const CredentialSources& sources);

} // namespace herald::auth
