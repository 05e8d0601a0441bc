// Credentials to principals: the root token, static tokens, JWTs and the anonymous grants.
#include "auth/authenticator.hpp"

#include "base/text.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace herald::auth {

namespace {

using hub::Selector;

std::vector<Selector> parse_all(const std::vector<std::string>& texts) {
    std::vector<Selector> out;
    out.reserve(texts.size());
    for (const auto& t : texts) {
        out.push_back(Selector::parse(t));
    }
    return out;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// The value of cookie `name` in a Cookie header ("a=1; herald_token=xyz").
std::optional<std::string_view> cookie(std::string_view header, std::string_view name) noexcept {
    while (!header.empty()) {
        const auto semi = header.find(';');
        std::string_view pair = trim(header.substr(0, semi));
        header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
            std::string_view value = trim(pair.substr(eq + 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
                value = value.substr(1, value.size() - 2);
            }
            return value;
        }
    }
    return std::nullopt;
}

} // namespace

bool Principal::may_publish(std::string_view topic) const noexcept {
    if (hub::is_system_topic(topic)) {
        return false;
    }
    return publish_anything || hub::any_matches(publish, topic);
}

std::size_t Authenticator::DigestHash::operator()(const Digest& d) const noexcept {
    std::size_t h = 0;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
}

namespace {

std::array<unsigned char, 32> sha256(std::string_view text) noexcept {
    std::array<unsigned char, 32> out{};
    ::SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
    return out;
}

} // namespace

Authenticator::Authenticator(const config::AuthConfig& config,
                             std::optional<std::string> root_token, std::string public_key_pem)
    : jwt_([&]() -> JwtVerifier {
          try {
              return JwtVerifier(config.jwt_secret, std::move(public_key_pem));
          } catch (const std::invalid_argument& e) {
              throw config::ConfigError(config.jwt_public_key_file, "auth.jwt_public_key_file",
                                        e.what());
          }
      }()) {
    open_metrics_ = config.open_metrics;
    enabled_ = root_token.has_value() || !config.tokens.empty() || jwt_.enabled() ||
               !config.anonymous.subscribe.empty() || !config.anonymous.publish.empty();

    if (root_token) {
        root_digest_ = sha256(*root_token);
        auto root = std::make_shared<Principal>();
        root->kind = Principal::Kind::root;
        auto access = std::make_shared<hub::Access>();
        access->everything = true;
        root->access = std::move(access);
        root->publish_anything = true;
        root->admin = true;
        root->credential = std::move(*root_token);
        root_principal_ = std::move(root);
    } else {
        anonymous_read_ = parse_all(config.anonymous.subscribe);
        anonymous_publish_ = parse_all(config.anonymous.publish);
    }

    if (!enabled_) {
        // Open to all: read every public topic, publish anywhere, see everything.
        auto open = std::make_shared<Principal>();
        open->publish_anything = true;
        open->admin = true;
        anonymous_ = std::move(open);
    } else {
        anonymous_ = make_principal(Principal::Kind::anonymous, {}, {}, false, {});
    }

    for (const auto& t : config.tokens) {
        tokens_.emplace(sha256(t.token), make_principal(Principal::Kind::token, t.subscribe,
                                                        t.publish, t.admin, t.token));
    }
}

PrincipalPtr Authenticator::make_principal(Principal::Kind kind,
                                           const std::vector<std::string>& subscribe,
                                           const std::vector<std::string>& publish, bool admin,
                                           std::string credential, std::int64_t expires_ms) const {
    auto p = std::make_shared<Principal>();
    p->kind = kind;
    auto access = std::make_shared<hub::Access>();
    access->read_private = parse_all(subscribe);
    access->read = access->read_private;
    for (const auto& s : anonymous_read_) {
        if (std::find(access->read.begin(), access->read.end(), s) == access->read.end()) {
            access->read.push_back(s);
        }
    }
    p->access = std::move(access);
    p->publish = parse_all(publish);
    for (const auto& s : anonymous_publish_) {
        if (std::find(p->publish.begin(), p->publish.end(), s) == p->publish.end()) {
            p->publish.push_back(s);
        }
    }
    p->admin = admin;
    p->credential = std::move(credential);
    p->expires_ms = expires_ms;
    return p;
}

std::variant<PrincipalPtr, Refusal>
Authenticator::authenticate(std::optional<std::string_view> credential, std::int64_t now_ms) const {
    if (!credential) {
        if (root_principal_) {
            return Refusal{"this hub needs a token"};
        }
        return anonymous_;
    }
    if (!enabled_) {
        // Nothing to check a token against: the hub is open, the token changes nothing.
        return anonymous_;
    }
    const Digest digest = sha256(*credential);
    if (root_principal_ && CRYPTO_memcmp(digest.data(), root_digest_.data(), digest.size()) == 0) {
        return root_principal_;
    }
    // Looked up by digest: the time the lookup takes depends on the digest, which tells
    // an attacker nothing about the token; the match is confirmed in constant time.
    if (auto it = tokens_.find(digest);
        it != tokens_.end() && CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) == 0) {
        return it->second;
    }
    if (jwt_.enabled() && JwtVerifier::looks_like_jwt(*credential)) {
        auto verified = jwt_.verify(*credential, now_ms);
        if (auto* why = std::get_if<std::string>(&verified)) {
            return Refusal{*why};
        }
        const auto& claims = std::get<JwtClaims>(verified);
        return make_principal(Principal::Kind::jwt, claims.subscribe, claims.publish, claims.admin,
                              std::string(*credential), claims.expires_ms.value_or(0));
    }
    return Refusal{"the token is not valid"};
}

std::optional<std::string> root_token_from(const std::map<std::string, std::string>& env) {
    if (auto it = env.find("AUTH_TOKEN_FILE"); it != env.end() && !it->second.empty()) {
        std::ifstream in(it->second, std::ios::binary);
        if (!in) {
            throw config::ConfigError("environment AUTH_TOKEN_FILE", "AUTH_TOKEN_FILE",
                                      "cannot read " + it->second + ": " + std::strerror(errno));
        }
        std::ostringstream content;
        content << in.rdbuf();
        std::string token = content.str();
        if (!token.empty() && token.back() == '\n') {
            token.pop_back();
            if (!token.empty() && token.back() == '\r') {
                token.pop_back();
            }
        }
        if (token.empty()) {
            throw config::ConfigError("environment AUTH_TOKEN_FILE", "AUTH_TOKEN_FILE",
                                      it->second + " holds no token");
        }
        return token;
    }
    if (auto it = env.find("AUTH_TOKEN"); it != env.end() && !it->second.empty()) {
        return it->second;
    }
    return std::nullopt;
}

std::shared_ptr<const Authenticator>
make_authenticator(const config::Config& config, const std::map<std::string, std::string>& env) {
    std::string pem;
    const std::string& key_file = config.auth.jwt_public_key_file;
    if (!key_file.empty()) {
        std::ifstream in(key_file, std::ios::binary);
        if (!in) {
            throw config::ConfigError(config.source.empty() ? "configuration" : config.source,
                                      "auth.jwt_public_key_file",
                                      "cannot read " + key_file + ": " + std::strerror(errno));
        }
        std::ostringstream content;
        content << in.rdbuf();
        pem = content.str();
    }
    return std::make_shared<const Authenticator>(config.auth, root_token_from(env), std::move(pem));
}

std::variant<std::monostate, std::string_view, Refusal>
find_credential(const CredentialSources& sources) {
    if (sources.authorization_header) {
        std::string_view value = trim(*sources.authorization_header);
        const auto space = value.find(' ');
        if (space == std::string_view::npos ||
            !base::equals_ignoring_case(value.substr(0, space), "bearer")) {
            return Refusal{"the Authorization header must be \"Bearer <token>\""};
        }
        value = trim(value.substr(space + 1));
        if (value.empty()) {
            return Refusal{"the Authorization header holds an empty token"};
        }
        return value;
    }
    for (const auto& param : {sources.token_param, sources.authorization_param}) {
        if (param) {
            if (param->empty()) {
                return Refusal{"the token in the query string is empty"};
            }
            return *param;
        }
    }
    if (sources.cookie_header) {
        for (std::string_view name : {"herald_token", "mercureAuthorization"}) {
            if (auto value = cookie(*sources.cookie_header, name)) {
                if (value->empty()) {
                    return Refusal{"the cookie " + std::string(name) + " is empty"};
                }
                return *value;
            }
        }
    }
    return std::monostate{};
}

} // namespace herald::auth
