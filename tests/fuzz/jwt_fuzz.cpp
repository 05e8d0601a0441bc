// JWT verification (auth/jwt) against a fixed HS256 secret and a fixed RSA public key. Raw
// tokens must never crash it, and any token it accepts is checked again here, by OpenSSL
// directly: the header's alg is HS256 or RS256, the signature is right for that key, the
// header has no crit, the times hold. Tokens signed here with the secret, over a header and
// payload the fuzzer writes, reach the claims; one with a well-formed header is never called
// forged (unless libjwt cannot read its payload: see jansson_reads()).
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth/jwt.hpp"
#include "base/json_depth.hpp"
#include "fuzz_support.hpp"

namespace {

using herald::auth::JwtClaims;
using herald::auth::JwtVerifier;
using nlohmann::json;

constexpr std::int64_t kNow = 1'700'000'000'000; // Unix ms
constexpr std::string_view kSecret = "a-fuzzing-secret-of-thirty-two-bytes";
// A key made for these tests only; its private half signed the RS256 seeds and is not kept.
constexpr std::string_view kPublicKey = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnE7mnHzQPNlJIrR0esLv
FcgA5BZs31gHk4o85nfIrXf7e/qWUGk5BALAVuRe1jmvFGAkP/TV0Q7LXZ53i332
j/84ZeWLdqBxrNOWlDElrxlJ+u5MjUW7hhZCya+xqkgZCkLd8fUZKZX6OPW/wMnP
DN3MTlVJdHLcB8HgKNS6YpKXCUCWFJ6+YZwqNf93xjt9nGNrkzB7d/hgM2oxsEsi
yXU48GqjprnVG628HxbaLRA8s6q8i1Rqh6jNBD4Jz0v2kT+ejGjhFF0hAw7+mG17
HB7aPzpuFNngTVkRPunAFj5cGVOYkfHpGw0XvCCLs+W6QeYnpBx/Jk8yoInA276Q
zQIDAQAB
-----END PUBLIC KEY-----
)";

std::string base64url(std::string_view bytes) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t bits = 0;
    int nbits = 0;
    for (const char c : bytes) {
        bits = (bits << 8) | static_cast<unsigned char>(c);
        nbits += 8;
        while (nbits >= 6) {
            nbits -= 6;
            out.push_back(kAlphabet[(bits >> nbits) & 0x3F]);
        }
    }
    if (nbits > 0) {
        out.push_back(kAlphabet[(bits << (6 - nbits)) & 0x3F]);
    }
    return out;
}

// Decoded with OpenSSL's base64 after the alphabet is mapped back, so that this check
// shares no code with the verifier's own decoder.
std::optional<std::string> base64url_decode(std::string_view text) {
    std::string b64(text);
    for (char& c : b64) {
        c = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (b64.size() % 4 != 0) {
        b64.push_back('=');
    }
    std::string out(b64.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(b64.data()),
                                  static_cast<int>(b64.size()));
    if (n < 0) {
        return std::nullopt;
    }
    const std::size_t pad = b64.size() - text.size();
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::string hmac(std::string_view input) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return std::string(reinterpret_cast<const char*>(mac), len);
}

bool rsa_signature_holds(std::string_view input, std::string_view signature) {
    struct Free {
        void operator()(BIO* b) const { BIO_free_all(b); }
        void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
        void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<BIO, Free> bio(
        BIO_new_mem_buf(kPublicKey.data(), static_cast<int>(kPublicKey.size())));
    std::unique_ptr<EVP_PKEY, Free> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    std::unique_ptr<EVP_MD_CTX, Free> ctx(EVP_MD_CTX_new());
    const bool ok =
        key && ctx &&
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) == 1;
    ERR_clear_error();
    return ok;
}

// The header's `alg` when it is a string, else "".
std::string alg_of(const json& header) {
    const auto it = header.find("alg");
    return it != header.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Everything an accepted token must be, checked without the verifier's code.
void check_accepted(std::string_view token, const JwtClaims& claims) {
    const auto dot1 = token.find('.');
    const auto dot2 = token.rfind('.');
    HERALD_FUZZ_CHECK(dot1 != std::string_view::npos && dot2 != dot1);
    const auto header_text = base64url_decode(token.substr(0, dot1));
    const auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
    const auto signature = base64url_decode(token.substr(dot2 + 1));
    HERALD_FUZZ_CHECK(header_text && payload_text && signature);
    HERALD_FUZZ_CHECK(herald::base::json_depth_within(*header_text) &&
                      herald::base::json_depth_within(*payload_text));
    const json header = json::parse(*header_text, nullptr, false);
    const json payload = json::parse(*payload_text, nullptr, false);
    HERALD_FUZZ_CHECK(header.is_object() && payload.is_object());
    HERALD_FUZZ_CHECK(!header.contains("crit"));
    const std::string alg = alg_of(header);
    const std::string_view input = token.substr(0, dot2);
    if (alg == "HS256") {
        HERALD_FUZZ_CHECK(*signature == hmac(input));
    } else {
        HERALD_FUZZ_CHECK(alg == "RS256" && rsa_signature_holds(input, *signature));
    }
    if (claims.expires_ms) {
        HERALD_FUZZ_CHECK(*claims.expires_ms > kNow);
    }
    HERALD_FUZZ_CHECK(payload.contains("herald") || payload.contains("mercure"));
}

// Whether libjwt's JSON parser (jansson) can read `text` when nlohmann can: it refuses a
// "\u0000" escape and integers past 64 bits, and jwt_decode() then fails as it does for a
// bad signature. Approximate on the safe side: any such escape, any run of 19 digits.
bool jansson_reads(std::string_view text) {
    std::size_t digits = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        digits = text[i] >= '0' && text[i] <= '9' ? digits + 1 : 0;
        if (digits >= 19 || text.substr(i, 6) == "\\u0000") {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    static const JwtVerifier both{std::string(kSecret), std::string(kPublicKey)};
    static const JwtVerifier hs_only{std::string(kSecret), ""};
    static const JwtVerifier rs_only{"", std::string(kPublicKey)};
    FuzzedDataProvider data(bytes, size);
    std::string token;
    bool signed_here = false;
    std::string header_text;
    std::string payload_text;
    if (data.ConsumeBool()) {
        // A header and a payload the fuzzer writes, signed with the secret.
        header_text = data.ConsumeRandomLengthString(256);
        payload_text = data.ConsumeRemainingBytesAsString();
        token = base64url(header_text) + "." + base64url(payload_text);
        token += "." + base64url(hmac(token));
        signed_here = true;
    } else {
        token = data.ConsumeRemainingBytesAsString();
    }
    const auto verdict = both.verify(token, kNow);
    if (const auto* claims = std::get_if<JwtClaims>(&verdict)) {
        check_accepted(token, *claims);
        // The key that accepted it is the one its header names; the other verifier alone
        // must refuse it.
        const bool hs = std::holds_alternative<JwtClaims>(hs_only.verify(token, kNow));
        const bool rs = std::holds_alternative<JwtClaims>(rs_only.verify(token, kNow));
        HERALD_FUZZ_CHECK(hs != rs);
    }
    if (signed_here && JwtVerifier::looks_like_jwt(token)) {
        const json header = herald::base::json_depth_within(header_text) &&
                                    header_text.find('\0') == std::string::npos
                                ? json::parse(header_text, nullptr, false)
                                : json();
        if (header.is_object() && alg_of(header) == "HS256" && header.size() == 1 &&
            jansson_reads(payload_text)) {
            // Signed with the configured secret: refused for its payload, never as forged.
            const auto* why = std::get_if<std::string>(&verdict);
            if (why != nullptr && *why == "the token's signature is not valid") {
                std::fprintf(stderr, "refused as forged: %s\n", token.c_str());
            }
            HERALD_FUZZ_CHECK(why == nullptr || *why != "the token's signature is not valid");
        }
    }
    return 0;
}
