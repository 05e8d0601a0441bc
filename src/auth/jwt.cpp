// JWT verification: the header picks a configured key, libjwt checks the signature, and the
// payload's times and grants are read here. The header's base64url is decoded by hand, not by
// libjwt: the algorithm must be chosen from the configuration before libjwt sees the token.
#include "auth/jwt.hpp"

#include <jwt.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>

#include "base/json_depth.hpp"
#include "base/text.hpp"

namespace herald::auth {

namespace {

using base::equals_ignoring_case;
using nlohmann::json;
using Verdict = std::variant<JwtClaims, std::string>;

constexpr std::size_t kMaxTokenSize = std::size_t{16} * 1024;
constexpr std::size_t kMaxShown = 16;

constexpr std::string_view kMalformed = "the token is not a well-formed JWT";
constexpr std::string_view kBadSignature = "the token's signature is not valid";

constexpr int base64url_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

// RFC 7515 base64url: no padding, so a length of 4n+1 cannot occur.
std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 4 * 3 + 2);
    std::uint32_t bits = 0;
    int nbits = 0;
    for (const char c : text) {
        const int v = base64url_value(c);
        if (v < 0) {
            return std::nullopt;
        }
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out.push_back(static_cast<char>((bits >> nbits) & 0xFFU));
        }
    }
    return out;
}

// A header value (`alg`, a `crit` name) as it may appear in a refusal: printable ASCII, at
// most 16 characters.
std::string shown(std::string_view value) {
    std::string out(value.substr(0, kMaxShown));
    for (char& c : out) {
        if (c < 0x20 || c > 0x7E) {
            c = '?';
        }
    }
    return out;
}

// A part of the token decoded and parsed as a JSON object, or the reason it is refused.
std::variant<json, std::string> decode_object(std::string_view part) {
    auto text = base64url_decode(part);
    // nlohmann's parser (and jansson, in libjwt) take a NUL for the end of the text: the
    // claims would be read from what comes before it. Valid JSON never holds a raw NUL.
    if (!text || text->find('\0') != std::string::npos) {
        return std::string(kMalformed);
    }
    // Before parsing, so that no JSON value deeper than the bound ever exists here.
    if (!base::json_depth_within(*text)) {
        return "the token's JSON nests arrays and objects more than " +
               std::to_string(base::kMaxJsonDepth) + " levels deep";
    }
    json value = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!value.is_object()) { // a parse error gives a discarded value, not an object
        return std::string(kMalformed);
    }
    return value;
}

// RFC 7515 4.1.11: a token whose `crit` names an extension the recipient does not
// understand must be refused, and herald understands none. The reason, or nothing when the
// header has no `crit`.
std::optional<std::string> crit_problem(const json& header) {
    const auto crit = header.find("crit");
    if (crit == header.end()) {
        return std::nullopt;
    }
    if (!crit->is_array() || crit->empty() ||
        !std::all_of(crit->begin(), crit->end(), [](const json& v) { return v.is_string(); })) {
        return std::string("the token's header crit must be a non-empty array of strings");
    }
    return "the token's header crit names an extension herald does not understand: " +
           shown((*crit)[0].get_ref<const std::string&>());
}

// Seconds (integer or not) as Unix milliseconds, rounded up and saturated: for an integer
// `now_ms`, now_ms >= s*1000 exactly when now_ms >= ceil(s*1000).
std::int64_t seconds_to_ms(const json& seconds) {
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
    if (seconds.is_number_unsigned()) {
        const auto s = seconds.get<std::uint64_t>();
        return s > static_cast<std::uint64_t>(kMax / 1000) ? kMax
                                                           : static_cast<std::int64_t>(s) * 1000;
    }
    if (seconds.is_number_integer()) {
        const auto s = seconds.get<std::int64_t>();
        if (s > kMax / 1000) {
            return kMax;
        }
        return s < kMin / 1000 ? kMin : s * 1000;
    }
    const double ms = std::ceil(seconds.get<double>() * 1000.0);
    // 2^63 is exactly representable; anything at or past it saturates.
    if (ms >= 9223372036854775808.0) {
        return kMax;
    }
    return ms <= -9223372036854775808.0 ? kMin : static_cast<std::int64_t>(ms);
}

// Reads `claim.key` as a list of strings into `out`; absent is empty. False if it is not one.
bool read_strings(const json& claim, const char* key, std::vector<std::string>& out) {
    const auto it = claim.find(key);
    if (it == claim.end()) {
        return true;
    }
    if (!it->is_array()) {
        return false;
    }
    out.reserve(it->size());
    for (const auto& item : *it) {
        if (!item.is_string()) {
            return false;
        }
        out.push_back(item.get<std::string>());
    }
    return true;
}

Verdict claims_from(const json& payload, std::int64_t now_ms) {
    JwtClaims claims;
    std::optional<std::int64_t> exp_ms;
    std::optional<std::int64_t> nbf_ms;
    for (const char* name : {"exp", "nbf"}) {
        const auto it = payload.find(name);
        if (it == payload.end()) {
            continue;
        }
        if (!it->is_number()) {
            return std::string("the token's claim ") + name + " must be a number";
        }
        (name[0] == 'e' ? exp_ms : nbf_ms) = seconds_to_ms(*it);
    }
    if (exp_ms && now_ms >= *exp_ms) {
        return std::string("the token has expired");
    }
    if (nbf_ms && now_ms < *nbf_ms) {
        return std::string("the token is not valid yet");
    }
    claims.expires_ms = exp_ms;

    const bool herald = payload.contains("herald");
    const char* name = herald ? "herald" : "mercure";
    const auto claim = payload.find(name);
    if (claim == payload.end() || !claim->is_object()) {
        return std::string("the token has no herald or mercure claim");
    }
    for (const char* key : {"subscribe", "publish"}) {
        auto& list = key[0] == 's' ? claims.subscribe : claims.publish;
        if (!read_strings(*claim, key, list)) {
            return std::string("the token's claim ") + name + "." + key +
                   " must be an array of strings";
        }
    }
    if (herald) {
        const auto admin = claim->find("admin");
        if (admin != claim->end()) {
            if (!admin->is_boolean()) {
                return std::string("the token's claim herald.admin must be a boolean");
            }
            claims.admin = admin->get<bool>();
        }
    }
    return claims;
}

struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free_all(bio); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct JwtFree {
    void operator()(jwt_t* jwt) const noexcept { jwt_free(jwt); }
};

// OpenSSL's default callback would ask a terminal for the passphrase of an encrypted PEM.
int no_passphrase(char*, int, int, void*) {
    return -1;
}

// The PEM re-encoded by OpenSSL as a SubjectPublicKeyInfo ("BEGIN PUBLIC KEY", the form
// libjwt reads), so that libjwt later sees exactly the key that was checked here.
std::string canonical_rsa_public_key(const std::string& pem) {
    const std::invalid_argument not_a_key(
        "auth.jwt_public_key_file: not an RSA public key in PEM form");
    if (pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw not_a_key;
    }
    std::unique_ptr<BIO, BioFree> in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    std::unique_ptr<EVP_PKEY, PkeyFree> key;
    if (in) {
        key.reset(PEM_read_bio_PUBKEY(in.get(), nullptr, no_passphrase, nullptr));
    }
    std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
    char* data = nullptr;
    long size = 0;
    if (key && EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA && out &&
        PEM_write_bio_PUBKEY(out.get(), key.get()) == 1) {
        size = BIO_get_mem_data(out.get(), &data);
    }
    ERR_clear_error(); // failures leave entries in this thread's queue for its next user
    if (data == nullptr || size <= 0) {
        throw not_a_key;
    }
    return std::string(data, static_cast<std::size_t>(size));
}

} // namespace

JwtVerifier::JwtVerifier(std::string secret, std::string public_key_pem)
    : secret_(std::move(secret)) {
    if (secret_.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::invalid_argument("auth.jwt_secret: too long");
    }
    if (!public_key_pem.empty()) {
        public_key_ = canonical_rsa_public_key(public_key_pem);
    }
}

bool JwtVerifier::looks_like_jwt(std::string_view token) noexcept {
    if (token.size() > kMaxTokenSize) {
        return false;
    }
    std::size_t dots = 0;
    std::size_t part = 0; // length of the current part
    for (const char c : token) {
        if (c == '.') {
            if (part == 0 || ++dots > 2) {
                return false;
            }
            part = 0;
        } else if (base64url_value(c) < 0) {
            return false;
        } else {
            ++part;
        }
    }
    return dots == 2 && part > 0;
}

Verdict JwtVerifier::verify(std::string_view token, std::int64_t now_ms) const {
    if (!looks_like_jwt(token)) {
        return std::string(kMalformed);
    }
    const std::size_t dot1 = token.find('.');
    const std::size_t dot2 = token.find('.', dot1 + 1);
    auto header_part = decode_object(token.substr(0, dot1));
    // The payload is parsed now only to tell a malformed token from a forged one; it is
    // trusted only once the signature checks.
    auto payload_part = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
    for (auto* part : {&header_part, &payload_part}) {
        if (auto* why = std::get_if<std::string>(part)) {
            return std::move(*why);
        }
    }
    const json& header = std::get<json>(header_part);
    const json& payload = std::get<json>(payload_part);
    const auto alg_it = header.find("alg");
    if (alg_it == header.end() || !alg_it->is_string()) {
        return std::string(kMalformed);
    }
    const auto& alg = alg_it->get_ref<const std::string&>();

    const std::string* key = nullptr;
    jwt_alg_t expected = JWT_ALG_INVAL;
    if (equals_ignoring_case(alg, "none")) {
        return std::string("the token's algorithm none is not accepted");
    }
    if (alg == "HS256") {
        if (secret_.empty()) {
            return std::string("HS256 tokens are not accepted here (no jwt_secret is configured)");
        }
        key = &secret_;
        expected = JWT_ALG_HS256;
    } else if (alg == "RS256") {
        if (public_key_.empty()) {
            return std::string(
                "RS256 tokens are not accepted here (no jwt_public_key_file is configured)");
        }
        key = &public_key_;
        expected = JWT_ALG_RS256;
    } else {
        return "the token's algorithm " + shown(alg) + " is not accepted";
    }

    // libjwt refuses any other `typ` too, but as a failed verification; say what it is.
    const auto typ = header.find("typ");
    if (typ != header.end() &&
        !(typ->is_string() && equals_ignoring_case(typ->get_ref<const std::string&>(), "JWT"))) {
        return std::string("the token's typ is not JWT");
    }
    if (auto why = crit_problem(header)) {
        return std::move(*why);
    }

    const std::string terminated(token); // jwt_decode reads a NUL-terminated string
    jwt_t* raw = nullptr;
    const int rc =
        jwt_decode(&raw, terminated.c_str(), reinterpret_cast<const unsigned char*>(key->data()),
                   static_cast<int>(key->size()));
    const std::unique_ptr<jwt_t, JwtFree> decoded(raw);
    // The algorithm is checked again in case libjwt's reading of the header differs from ours.
    if (rc != 0 || !decoded || jwt_get_alg(decoded.get()) != expected) {
        ERR_clear_error();
        return std::string(kBadSignature);
    }
    return claims_from(payload, now_ms);
}

} // namespace herald::auth
