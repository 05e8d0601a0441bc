// JSON Web Tokens as herald accepts them: HS256 with the configured secret, RS256 with the
// configured public key, signatures checked by libjwt. The algorithm is decided by the
// configuration, never by the token: "none", a wrong algorithm, a bad signature, an
// expired or not-yet-valid token are all refused, as are a header with `crit` (herald
// understands no extension) and JSON nested more than base::kMaxJsonDepth deep.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herald::auth {

// The grants a token carries, from its claim `herald` or, failing that, `mercure`.
struct JwtClaims {
    std::vector<std::string> subscribe; // topic selectors
    std::vector<std::string> publish;
    bool admin = false;                     // `herald.admin`; the mercure claim has none
    std::optional<std::int64_t> expires_ms; // `exp`, in Unix milliseconds
};

class JwtVerifier {
public:
    // `secret`: the HS256 key, empty for none. `public_key_pem`: an RSA public key in PEM
    // for RS256, empty for none. Throws std::invalid_argument when the PEM is not an RSA
    // public key, with a sentence that says so (never the key itself).
    JwtVerifier(std::string secret, std::string public_key_pem);

    // Whether any key is configured.
    [[nodiscard]] bool enabled() const noexcept { return !secret_.empty() || !public_key_.empty(); }

    // Whether `token` has the shape of a JWT: three base64url parts separated by dots.
    [[nodiscard]] static bool looks_like_jwt(std::string_view token) noexcept;

    // The claims of a valid token, or the reason it is refused: a short sentence that may
    // be sent to the client ("the token has expired"); it never quotes the token.
    // Thread-safe.
    [[nodiscard]] std::variant<JwtClaims, std::string> verify(std::string_view token,
                                                              std::int64_t now_ms) const;

private:
    std::string secret_;
    std::string public_key_;
};

} // namespace herald::auth
