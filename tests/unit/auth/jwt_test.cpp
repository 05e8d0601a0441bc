// Tests for JWT verification: HS256 and RS256 tokens signed by libjwt or by hand, every
// refusal (alg none, key confusion, bad signatures, crit, times, claims, JSON nested too
// deep, malformed tokens), the constructor's key check and the shape test.
#include "auth/jwt.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <thread>

namespace herald::auth {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000; // Unix ms
constexpr std::string_view kSecret = "a-secret-of-at-least-thirty-two-bytes";
constexpr std::string_view kOtherSecret = "another-secret-of-thirty-two-bytes!!";

const std::string kMalformed = "the token is not a well-formed JWT";
const std::string kBadSignature = "the token's signature is not valid";
const std::string kNone = "the token's algorithm none is not accepted";
const std::string kNoHs256 = "HS256 tokens are not accepted here (no jwt_secret is configured)";
const std::string kNoRs256 =
    "RS256 tokens are not accepted here (no jwt_public_key_file is configured)";
const std::string kNotAKey = "auth.jwt_public_key_file: not an RSA public key in PEM form";

// A grant set that is valid at kNow.
const std::string kGrants =
    R"({"herald":{"subscribe":["books/{id}","news"],"publish":["news"]},"exp":1700000060})";

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

// A token built by hand, with whatever header, payload and signature text.
std::string hand_token(std::string_view header, std::string_view payload,
                       std::string_view signature) {
    return base64url(header) + "." + base64url(payload) + "." + std::string(signature);
}

// A token with a correct HS256 signature over whatever header and payload.
std::string hs256_by_hand(std::string_view header, std::string_view payload,
                          std::string_view secret) {
    const std::string input = base64url(header) + "." + base64url(payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
    return input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

struct JwtFree {
    void operator()(jwt_t* jwt) const noexcept { jwt_free(jwt); }
};

// A token signed by libjwt with `alg` and `key` (a secret or a private key PEM).
std::string signed_token(jwt_alg_t alg, std::string_view key, const std::string& grants) {
    jwt_t* raw = nullptr;
    if (jwt_new(&raw) != 0) {
        throw std::runtime_error("jwt_new failed");
    }
    const std::unique_ptr<jwt_t, JwtFree> jwt(raw);
    if (jwt_add_grants_json(jwt.get(), grants.c_str()) != 0 ||
        jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()),
                    static_cast<int>(key.size())) != 0) {
        throw std::runtime_error("libjwt refused the grants or the key");
    }
    char* text = jwt_encode_str(jwt.get());
    if (text == nullptr) {
        throw std::runtime_error("jwt_encode_str failed");
    }
    std::string token(text);
    std::free(text);
    return token;
}

std::string hs256(const std::string& grants, std::string_view secret = kSecret) {
    return signed_token(JWT_ALG_HS256, secret, grants);
}

struct RsaKey {
    std::string public_pem;
    std::string private_pem;
};

struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free_all(bio); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};

std::string drain(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

RsaKey make_rsa_key() {
    const std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_RSA_gen(2048));
    const std::unique_ptr<BIO, BioFree> pub(BIO_new(BIO_s_mem()));
    const std::unique_ptr<BIO, BioFree> priv(BIO_new(BIO_s_mem()));
    if (!key || !pub || !priv || PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1 ||
        PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
            1) {
        throw std::runtime_error("RSA key generation failed");
    }
    return RsaKey{drain(pub.get()), drain(priv.get())};
}

// Generated once: RSA key generation takes a noticeable fraction of a second.
const RsaKey& rsa_key() {
    static const RsaKey key = make_rsa_key();
    return key;
}
const RsaKey& other_rsa_key() {
    static const RsaKey key = make_rsa_key();
    return key;
}

std::string rs256(const std::string& grants, const RsaKey& key = rsa_key()) {
    return signed_token(JWT_ALG_RS256, key.private_pem, grants);
}

JwtVerifier hs_only() {
    return JwtVerifier(std::string(kSecret), "");
}
JwtVerifier rs_only() {
    return JwtVerifier("", rsa_key().public_pem);
}
JwtVerifier both() {
    return JwtVerifier(std::string(kSecret), rsa_key().public_pem);
}

// The claims of an accepted token; a test failure (and empty claims) if it was refused.
JwtClaims accepted(const std::variant<JwtClaims, std::string>& verdict) {
    if (const auto* refusal = std::get_if<std::string>(&verdict)) {
        ADD_FAILURE() << "refused: " << *refusal;
        return {};
    }
    return std::get<JwtClaims>(verdict);
}

// The refusal of a refused token; "(accepted)" if it was accepted.
std::string refusal(const std::variant<JwtClaims, std::string>& verdict) {
    if (const auto* text = std::get_if<std::string>(&verdict)) {
        return *text;
    }
    return "(accepted)";
}

using Strings = std::vector<std::string>;

// --- Accepted tokens ---

TEST(JwtVerifier, Hs256WithHeraldClaim) {
    const auto claims = accepted(hs_only().verify(hs256(kGrants), kNow));
    EXPECT_EQ(claims.subscribe, (Strings{"books/{id}", "news"}));
    EXPECT_EQ(claims.publish, Strings{"news"});
    EXPECT_FALSE(claims.admin);
    EXPECT_EQ(claims.expires_ms, std::optional<std::int64_t>(1'700'000'060'000));
}

TEST(JwtVerifier, MercureClaimOnly) {
    // The mercure claim has no `admin`: one there is ignored, whatever its type.
    const auto claims = accepted(hs_only().verify(
        hs256(R"({"mercure":{"subscribe":["a"],"publish":["b","c"],"admin":true}})"), kNow));
    EXPECT_EQ(claims.subscribe, Strings{"a"});
    EXPECT_EQ(claims.publish, (Strings{"b", "c"}));
    EXPECT_FALSE(claims.admin);
    EXPECT_EQ(claims.expires_ms, std::nullopt);
}

TEST(JwtVerifier, HeraldClaimIsPreferredOverMercure) {
    const auto claims = accepted(hs_only().verify(
        hs256(R"({"herald":{"subscribe":["h"]},"mercure":{"subscribe":["m"],"publish":["m"]}})"),
        kNow));
    EXPECT_EQ(claims.subscribe, Strings{"h"});
    EXPECT_EQ(claims.publish, Strings{});
}

TEST(JwtVerifier, AbsentListsAreEmpty) {
    const auto claims = accepted(hs_only().verify(hs256(R"({"herald":{}})"), kNow));
    EXPECT_EQ(claims.subscribe, Strings{});
    EXPECT_EQ(claims.publish, Strings{});
    EXPECT_FALSE(claims.admin);
}

TEST(JwtVerifier, Admin) {
    EXPECT_TRUE(accepted(hs_only().verify(hs256(R"({"herald":{"admin":true}})"), kNow)).admin);
    EXPECT_FALSE(accepted(hs_only().verify(hs256(R"({"herald":{"admin":false}})"), kNow)).admin);
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{"admin":"yes"}})"), kNow)),
              "the token's claim herald.admin must be a boolean");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{"admin":1}})"), kNow)),
              "the token's claim herald.admin must be a boolean");
}

TEST(JwtVerifier, Rs256) {
    const auto claims = accepted(rs_only().verify(rs256(kGrants), kNow));
    EXPECT_EQ(claims.subscribe, (Strings{"books/{id}", "news"}));
    EXPECT_EQ(claims.publish, Strings{"news"});
    EXPECT_EQ(claims.expires_ms, std::optional<std::int64_t>(1'700'000'060'000));
}

TEST(JwtVerifier, BothKeysConfiguredTheHeaderPicksOne) {
    const auto verifier = both();
    EXPECT_EQ(accepted(verifier.verify(hs256(kGrants), kNow)).publish, Strings{"news"});
    EXPECT_EQ(accepted(verifier.verify(rs256(kGrants), kNow)).publish, Strings{"news"});
}

TEST(JwtVerifier, HandSignedTokenWithoutTyp) {
    const auto token =
        hs256_by_hand(R"({"alg":"HS256"})", R"({"herald":{"publish":["x"]}})", kSecret);
    EXPECT_EQ(accepted(hs_only().verify(token, kNow)).publish, Strings{"x"});
}

// --- Signatures ---

TEST(JwtVerifier, Hs256SignedWithAnotherSecret) {
    EXPECT_EQ(refusal(hs_only().verify(hs256(kGrants, kOtherSecret), kNow)), kBadSignature);
}

TEST(JwtVerifier, Rs256SignedWithAnotherKey) {
    EXPECT_EQ(refusal(rs_only().verify(rs256(kGrants, other_rsa_key()), kNow)), kBadSignature);
}

TEST(JwtVerifier, TamperedPayload) {
    const auto token = hs256(kGrants);
    const auto forged = hs256(R"({"herald":{"admin":true,"publish":["*"]}})", kOtherSecret);
    // The genuine header and signature around another payload.
    const auto dot1 = token.find('.');
    const auto dot2 = token.find('.', dot1 + 1);
    const auto forged_payload =
        forged.substr(forged.find('.'), forged.rfind('.') - forged.find('.'));
    const auto spliced = token.substr(0, dot1) + forged_payload + token.substr(dot2);
    EXPECT_EQ(refusal(hs_only().verify(spliced, kNow)), kBadSignature);
}

TEST(JwtVerifier, EmptyOrTruncatedSignature) {
    const auto token = hs256(kGrants);
    const auto unsigned_part = token.substr(0, token.rfind('.'));
    EXPECT_EQ(refusal(hs_only().verify(unsigned_part + ".", kNow)), kMalformed);
    EXPECT_EQ(refusal(hs_only().verify(token.substr(0, token.size() - 1), kNow)), kBadSignature);
    const auto rs = rs256(kGrants);
    EXPECT_EQ(refusal(rs_only().verify(rs.substr(0, rs.size() - 4), kNow)), kBadSignature);
}

// --- Algorithms ---

TEST(JwtVerifier, AlgNoneIsRefused) {
    const std::string payload = R"({"herald":{"subscribe":["*"],"admin":true}})";
    for (const auto& verifier : {hs_only(), rs_only(), both()}) {
        for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
            const std::string header = std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})";
            // A signature part is required by the shape; an empty one fails the shape test.
            EXPECT_EQ(refusal(verifier.verify(hand_token(header, payload, ""), kNow)), kMalformed);
            EXPECT_EQ(refusal(verifier.verify(hand_token(header, payload, "c2lnbmF0dXJl"), kNow)),
                      kNone)
                << alg;
        }
    }
    // The classic literal "eyJhbGciOiJub25lIn0" is {"alg":"none"}.
    EXPECT_EQ(refusal(both().verify("eyJhbGciOiJub25lIn0.eyJoZXJhbGQiOnt9fQ.", kNow)), kMalformed);
    EXPECT_EQ(refusal(both().verify("eyJhbGciOiJub25lIn0.eyJoZXJhbGQiOnt9fQ.AAAA", kNow)), kNone);
}

TEST(JwtVerifier, Hs256WhenOnlyRs256IsConfigured) {
    EXPECT_EQ(refusal(rs_only().verify(hs256(kGrants), kNow)), kNoHs256);
    // Key confusion: an HS256 token whose HMAC key is the public key's PEM text.
    const auto confused = hs256(kGrants, rsa_key().public_pem);
    EXPECT_EQ(refusal(rs_only().verify(confused, kNow)), kNoHs256);
    // With both keys, HS256 is checked with the secret, never with the public key.
    EXPECT_EQ(refusal(both().verify(confused, kNow)), kBadSignature);
}

TEST(JwtVerifier, Rs256WhenOnlyHs256IsConfigured) {
    EXPECT_EQ(refusal(hs_only().verify(rs256(kGrants), kNow)), kNoRs256);
}

TEST(JwtVerifier, UnknownAlgorithms) {
    const auto hs512 = signed_token(JWT_ALG_HS512, kSecret, kGrants);
    EXPECT_EQ(refusal(both().verify(hs512, kNow)), "the token's algorithm HS512 is not accepted");
    const auto rs512 = signed_token(JWT_ALG_RS512, rsa_key().private_pem, kGrants);
    EXPECT_EQ(refusal(both().verify(rs512, kNow)), "the token's algorithm RS512 is not accepted");
    // The algorithm's name is matched exactly.
    const auto lower = hs256_by_hand(R"({"alg":"hs256"})", kGrants, kSecret);
    EXPECT_EQ(refusal(both().verify(lower, kNow)), "the token's algorithm hs256 is not accepted");
}

TEST(JwtVerifier, UnknownAlgorithmIsShownSanitizedAndTruncated) {
    const auto token = hand_token(R"({"alg":"\u0001ABCDEFGHIJKLMNOPQRSTUVWXYZ"})", kGrants, "c2ln");
    EXPECT_EQ(refusal(both().verify(token, kNow)),
              "the token's algorithm ?ABCDEFGHIJKLMNO is not accepted");
    const auto utf8 = hand_token(R"({"alg":"é"})", kGrants, "c2ln");
    EXPECT_EQ(refusal(both().verify(utf8, kNow)), "the token's algorithm ?? is not accepted");
}

TEST(JwtVerifier, AlgMustBeAString) {
    for (const char* header :
         {R"({"typ":"JWT"})", R"({"alg":null})", R"({"alg":256})", R"({"alg":["HS256"]})"}) {
        EXPECT_EQ(refusal(both().verify(hs256_by_hand(header, kGrants, kSecret), kNow)), kMalformed)
            << header;
    }
}

TEST(JwtVerifier, DuplicateAlgInTheHeader) {
    // The header is read by the verifier and again by libjwt; both keep the last of duplicate
    // keys, so neither token gets past without the secret's signature.
    EXPECT_EQ(refusal(both().verify(hand_token(R"({"alg":"none","alg":"HS256"})", kGrants, "c2ln"),
                                    kNow)),
              kBadSignature);
    EXPECT_EQ(refusal(both().verify(hand_token(R"({"alg":"HS256","alg":"none"})", kGrants, "c2ln"),
                                    kNow)),
              kNone);
    EXPECT_EQ(refusal(both().verify(
                  hs256_by_hand(R"({"alg":"HS256","alg":"none"})", kGrants, kSecret), kNow)),
              kNone);
}

TEST(JwtVerifier, TypMustBeJwt) {
    const auto lower = hs256_by_hand(R"({"alg":"HS256","typ":"jwt"})", kGrants, kSecret);
    EXPECT_EQ(accepted(hs_only().verify(lower, kNow)).publish, Strings{"news"});
    for (const char* header : {R"({"alg":"HS256","typ":"at+jwt"})", R"({"alg":"HS256","typ":1})",
                               R"({"alg":"HS256","typ":null})"}) {
        EXPECT_EQ(refusal(hs_only().verify(hs256_by_hand(header, kGrants, kSecret), kNow)),
                  "the token's typ is not JWT")
            << header;
    }
}

// --- crit (RFC 7515 4.1.11) ---

const std::string kBadCrit = "the token's header crit must be a non-empty array of strings";
const std::string kUnknownCrit =
    "the token's header crit names an extension herald does not understand: ";

TEST(JwtVerifier, CritNamingAnyExtensionIsRefused) {
    // Correctly signed, so only crit can be the reason: herald understands no extension.
    for (const char* header : {R"({"alg":"HS256","typ":"JWT","crit":["b64"],"b64":false})",
                               R"({"alg":"HS256","crit":["exp"],"exp":1})",
                               R"({"alg":"HS256","crit":["x-a","x-b"],"x-a":1,"x-b":2})"}) {
        const auto text = refusal(hs_only().verify(hs256_by_hand(header, kGrants, kSecret), kNow));
        EXPECT_EQ(text.rfind(kUnknownCrit, 0), 0U) << header << ": " << text;
    }
    EXPECT_EQ(refusal(hs_only().verify(
                  hs256_by_hand(R"({"alg":"HS256","crit":["b64"],"b64":false})", kGrants, kSecret),
                  kNow)),
              kUnknownCrit + "b64");
}

TEST(JwtVerifier, CritOnAnRs256TokenIsRefused) {
    const auto token = rs256(kGrants);
    const std::string header = R"({"alg":"RS256","typ":"JWT","crit":["b64"],"b64":false})";
    // The signature no longer fits the new header, but crit is refused before it is checked.
    const auto forged = base64url(header) + token.substr(token.find('.'));
    EXPECT_EQ(refusal(rs_only().verify(forged, kNow)), kUnknownCrit + "b64");
}

TEST(JwtVerifier, CritNameIsShownSanitizedAndTruncated) {
    const auto token = hs256_by_hand(
        "{\"alg\":\"HS256\",\"crit\":[\"\\u0001abcdefghijklmnopqrstuvwxyz\"]}", kGrants, kSecret);
    EXPECT_EQ(refusal(hs_only().verify(token, kNow)), kUnknownCrit + "?abcdefghijklmno");
}

TEST(JwtVerifier, MalformedCritIsRefused) {
    for (const char* header :
         {R"({"alg":"HS256","crit":[]})", R"({"alg":"HS256","crit":"b64"})",
          R"({"alg":"HS256","crit":null})", R"({"alg":"HS256","crit":{}})",
          R"({"alg":"HS256","crit":[1]})", R"({"alg":"HS256","crit":["b64",2],"b64":false})",
          R"({"alg":"HS256","crit":true})"}) {
        EXPECT_EQ(refusal(hs_only().verify(hs256_by_hand(header, kGrants, kSecret), kNow)),
                  kBadCrit)
            << header;
    }
}

// --- Nesting ---

// `depth` arrays, one inside the other, around `inner`.
std::string nested(std::size_t depth, std::string_view inner = "") {
    return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
}

const std::string kTooDeep = "the token's JSON nests arrays and objects more than 64 levels deep";

TEST(JwtVerifier, PayloadNestedUpTo64IsAccepted) {
    // The payload object is level 1, so "x" may hold 63 levels.
    const std::string payload = R"({"herald":{"publish":["news"]},"x":)" + nested(63) + "}";
    const auto token = hs256_by_hand(R"({"alg":"HS256","typ":"JWT"})", payload, kSecret);
    EXPECT_EQ(accepted(hs_only().verify(token, kNow)).publish, Strings{"news"});
}

TEST(JwtVerifier, PayloadNestedDeeperThan64IsRefused) {
    for (const std::size_t depth : {64U, 1000U, 5000U}) {
        const std::string payload = R"({"herald":{"publish":["news"]},"x":)" + nested(depth) + "}";
        const auto token = hs256_by_hand(R"({"alg":"HS256","typ":"JWT"})", payload, kSecret);
        EXPECT_EQ(refusal(hs_only().verify(token, kNow)), kTooDeep) << depth;
    }
    // Brackets inside strings are not nesting.
    const std::string payload =
        R"({"herald":{"publish":["news"]},"x":")" + std::string(5000, '[') + R"(\"]"})";
    const auto token = hs256_by_hand(R"({"alg":"HS256","typ":"JWT"})", payload, kSecret);
    EXPECT_EQ(accepted(hs_only().verify(token, kNow)).publish, Strings{"news"});
}

TEST(JwtVerifier, HeaderNestedDeeperThan64IsRefused) {
    const std::string header = R"({"alg":"HS256","x":)" + nested(100) + "}";
    EXPECT_EQ(refusal(hs_only().verify(hs256_by_hand(header, kGrants, kSecret), kNow)), kTooDeep);
}

TEST(JwtVerifier, PayloadNested100000DeepIsRefusedWithoutCrashing) {
    // Far over the token size limit: refused by its shape before anything is parsed.
    const auto token =
        hs256_by_hand(R"({"alg":"HS256","typ":"JWT"})", nested(100000, "1"), kSecret);
    EXPECT_EQ(refusal(hs_only().verify(token, kNow)), kMalformed);
    // Unbalanced, as deep as fits in a token: refused by the depth check, not the parser.
    const auto open = hand_token(R"({"alg":"HS256"})", std::string(12000, '['), "c2ln");
    EXPECT_EQ(refusal(hs_only().verify(open, kNow)), kTooDeep);
}

// --- Times ---

TEST(JwtVerifier, Expired) {
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{},"exp":1699999999})"), kNow)),
              "the token has expired");
}

TEST(JwtVerifier, ExpExactlyNowIsExpired) {
    const auto token = hs256(R"({"herald":{},"exp":1700000000})");
    EXPECT_EQ(refusal(hs_only().verify(token, kNow)), "the token has expired");
    EXPECT_EQ(accepted(hs_only().verify(token, kNow - 1)).expires_ms,
              std::optional<std::int64_t>(kNow));
}

TEST(JwtVerifier, FractionalExp) {
    const auto token = hs256(R"({"herald":{},"exp":1700000000.5})");
    EXPECT_EQ(accepted(hs_only().verify(token, kNow + 499)).expires_ms,
              std::optional<std::int64_t>(kNow + 500));
    EXPECT_EQ(refusal(hs_only().verify(token, kNow + 500)), "the token has expired");
}

TEST(JwtVerifier, FarFutureExpSaturates) {
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    for (const char* exp : {"1e300", "9223372036854775807", "9223372036854775.807"}) {
        const auto token = hs256_by_hand(
            R"({"alg":"HS256"})", std::string(R"({"herald":{},"exp":)") + exp + "}", kSecret);
        EXPECT_EQ(accepted(hs_only().verify(token, kNow)).expires_ms,
                  std::optional<std::int64_t>(kMax))
            << exp;
    }
    const auto past = hs256_by_hand(R"({"alg":"HS256"})", R"({"herald":{},"exp":-1e300})", kSecret);
    EXPECT_EQ(refusal(hs_only().verify(past, kNow)), "the token has expired");
    // libjwt's JSON parser (jansson) has no integers past 2^63-1: it refuses the payload, which
    // can only be reported as a failed verification.
    const auto beyond =
        hs256_by_hand(R"({"alg":"HS256"})", R"({"herald":{},"exp":18446744073709551615})", kSecret);
    EXPECT_EQ(refusal(hs_only().verify(beyond, kNow)), kBadSignature);
}

TEST(JwtVerifier, NotValidYet) {
    const auto token = hs256(R"({"herald":{},"nbf":1700000001})");
    EXPECT_EQ(refusal(hs_only().verify(token, kNow)), "the token is not valid yet");
    EXPECT_EQ(refusal(hs_only().verify(token, kNow + 999)), "the token is not valid yet");
    EXPECT_EQ(accepted(hs_only().verify(token, kNow + 1000)).expires_ms, std::nullopt);
}

TEST(JwtVerifier, TimesMustBeNumbers) {
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{},"exp":"1700000060"})"), kNow)),
              "the token's claim exp must be a number");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{},"exp":true})"), kNow)),
              "the token's claim exp must be a number");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{},"nbf":null})"), kNow)),
              "the token's claim nbf must be a number");
}

// --- Claims ---

TEST(JwtVerifier, NoClaim) {
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"sub":"someone","exp":1700000060})"), kNow)),
              "the token has no herald or mercure claim");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"mercure":["a"]})"), kNow)),
              "the token has no herald or mercure claim");
    // A `herald` that is not an object does not fall back to `mercure`.
    EXPECT_EQ(
        refusal(hs_only().verify(hs256(R"({"herald":"x","mercure":{"subscribe":["a"]}})"), kNow)),
        "the token has no herald or mercure claim");
}

TEST(JwtVerifier, ListsMustBeArraysOfStrings) {
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{"subscribe":"news"}})"), kNow)),
              "the token's claim herald.subscribe must be an array of strings");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{"subscribe":["news",1]}})"), kNow)),
              "the token's claim herald.subscribe must be an array of strings");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"herald":{"publish":{"a":"b"}}})"), kNow)),
              "the token's claim herald.publish must be an array of strings");
    EXPECT_EQ(refusal(hs_only().verify(hs256(R"({"mercure":{"publish":[null]}})"), kNow)),
              "the token's claim mercure.publish must be an array of strings");
}

// --- Malformed tokens ---

TEST(JwtVerifier, Malformed) {
    const auto verifier = both();
    const auto token = hs256(kGrants);
    EXPECT_EQ(refusal(verifier.verify("", kNow)), kMalformed);
    EXPECT_EQ(refusal(verifier.verify(token.substr(0, token.rfind('.')), kNow)), kMalformed);
    EXPECT_EQ(refusal(verifier.verify(token + ".x", kNow)), kMalformed);
    EXPECT_EQ(refusal(verifier.verify("a+b." + token.substr(token.find('.') + 1), kNow)),
              kMalformed);
    // Five characters cannot be base64url of anything.
    EXPECT_EQ(refusal(verifier.verify("eyJhb." + token.substr(token.find('.') + 1), kNow)),
              kMalformed);
    std::string with_nul = token;
    with_nul.insert(with_nul.find('.'), 1, '\0');
    EXPECT_EQ(refusal(verifier.verify(with_nul, kNow)), kMalformed);
}

TEST(JwtVerifier, HeaderNotJson) {
    for (const char* header : {"HS256", R"({"alg":"HS256")", R"(["HS256"])", "{}garbage"}) {
        EXPECT_EQ(refusal(both().verify(hs256_by_hand(header, kGrants, kSecret), kNow)), kMalformed)
            << header;
    }
}

TEST(JwtVerifier, PayloadNotAnObject) {
    // Correctly signed, so the refusal is about the shape, not the signature.
    for (const char* payload : {R"(["herald"])", R"("herald")", "42", "{", "not json"}) {
        const auto token = hs256_by_hand(R"({"alg":"HS256","typ":"JWT"})", payload, kSecret);
        EXPECT_EQ(refusal(hs_only().verify(token, kNow)), kMalformed) << payload;
    }
}

TEST(JwtVerifier, JsonWithANulIsRefused) {
    // nlohmann's parser (and jansson's, in libjwt) take a NUL for the end of the text: the
    // claims would be read from the part before it. No valid JSON holds a raw NUL.
    const std::string header = R"({"alg":"HS256","typ":"JWT"})";
    const std::string payload = R"({"herald":{"publish":["x"]}})";
    const std::string junk = std::string(1, '\0') + R"({"herald":{"admin":true}})";
    for (const auto& [h, p] :
         {std::pair{header + junk, payload}, std::pair{header, payload + junk}}) {
        EXPECT_EQ(refusal(hs_only().verify(hs256_by_hand(h, p, kSecret), kNow)), kMalformed);
    }
}

TEST(JwtVerifier, RefusalsNeverQuoteTheToken) {
    const auto token = hs256(kGrants, kOtherSecret);
    const auto text = refusal(hs_only().verify(token, kNow));
    EXPECT_EQ(text.find(token.substr(0, 10)), std::string::npos);
    EXPECT_EQ(text.find(kSecret), std::string::npos);
}

// --- Construction and the shape test ---

TEST(JwtVerifier, ConstructorRejectsWhatIsNotAnRsaPublicKey) {
    const auto message_for = [](const std::string& pem) -> std::string {
        try {
            JwtVerifier verifier("", pem);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "(accepted)";
    };
    EXPECT_EQ(message_for("not a key at all"), kNotAKey);
    EXPECT_EQ(message_for("-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n"),
              kNotAKey);
    EXPECT_EQ(message_for("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"),
              kNotAKey);
    // A private key is not a public key, even a real one.
    EXPECT_EQ(message_for(rsa_key().private_pem), kNotAKey);
    // An EC public key is a public key, but not an RSA one.
    const std::unique_ptr<EVP_PKEY, PkeyFree> ec(EVP_EC_gen("P-256"));
    const std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    ASSERT_TRUE(ec && bio && PEM_write_bio_PUBKEY(bio.get(), ec.get()) == 1);
    EXPECT_EQ(message_for(drain(bio.get())), kNotAKey);
    EXPECT_NO_THROW(JwtVerifier("", rsa_key().public_pem));
}

TEST(JwtVerifier, Enabled) {
    EXPECT_FALSE(JwtVerifier("", "").enabled());
    EXPECT_TRUE(hs_only().enabled());
    EXPECT_TRUE(rs_only().enabled());
    EXPECT_TRUE(both().enabled());
}

TEST(JwtVerifier, NothingConfiguredRefusesEverything) {
    const JwtVerifier verifier("", "");
    EXPECT_EQ(refusal(verifier.verify(hs256(kGrants), kNow)), kNoHs256);
    EXPECT_EQ(refusal(verifier.verify(rs256(kGrants), kNow)), kNoRs256);
}

TEST(JwtVerifier, LooksLikeJwt) {
    EXPECT_TRUE(JwtVerifier::looks_like_jwt("a.b.c"));
    EXPECT_TRUE(JwtVerifier::looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.e30.Zm9v-_"));
    EXPECT_TRUE(JwtVerifier::looks_like_jwt(hs256(kGrants)));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt(""));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a.b"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a.b.c.d"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt(".b.c"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a..c"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a.b."));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt(".."));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a.b.c="));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a+.b.c"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a/.b.c"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("a.b c.d"));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt(std::string_view("a.b\0.c", 6)));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt("static-token-without-dots"));
    const std::string longest = "a.b." + std::string(16 * 1024 - 4, 'c');
    EXPECT_TRUE(JwtVerifier::looks_like_jwt(longest));
    EXPECT_FALSE(JwtVerifier::looks_like_jwt(longest + "c"));
}

TEST(JwtVerifier, ManyThreadsAtOnce) {
    const auto verifier = both();
    const auto hs = hs256(kGrants);
    const auto rs = rs256(kGrants);
    const auto bad = hs256(kGrants, kOtherSecret);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    threads.reserve(8);
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                if (!std::holds_alternative<JwtClaims>(verifier.verify(hs, kNow)) ||
                    !std::holds_alternative<JwtClaims>(verifier.verify(rs, kNow)) ||
                    refusal(verifier.verify(bad, kNow)) != kBadSignature) {
                    ++wrong;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(wrong.load(), 0);
}

} // namespace
} // namespace herald::auth
