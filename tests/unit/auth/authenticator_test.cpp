// The authenticator: which credential gives which rights, AUTH_TOKEN, anonymous grants, and
// where a request's credential is found.
#include "auth/authenticator.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace herald::auth {
namespace {

config::TokenConfig token(std::string value, std::vector<std::string> subscribe,
                          std::vector<std::string> publish = {}, bool admin = false) {
    config::TokenConfig t;
    t.token = std::move(value);
    t.subscribe = std::move(subscribe);
    t.publish = std::move(publish);
    t.admin = admin;
    return t;
}

PrincipalPtr must_pass(const Authenticator& a, std::optional<std::string_view> credential) {
    auto result = a.authenticate(credential, 0);
    if (auto* refusal = std::get_if<Refusal>(&result)) {
        ADD_FAILURE() << "refused: " << refusal->reason;
        return nullptr;
    }
    return std::get<PrincipalPtr>(result);
}

std::string must_fail(const Authenticator& a, std::optional<std::string_view> credential) {
    auto result = a.authenticate(credential, 0);
    if (auto* refusal = std::get_if<Refusal>(&result)) {
        return refusal->reason;
    }
    ADD_FAILURE() << "accepted";
    return {};
}

TEST(Authenticator, OffWhenNothingIsConfigured) {
    Authenticator a(config::AuthConfig{}, std::nullopt, "");
    EXPECT_FALSE(a.enabled());
    auto who = must_pass(a, std::nullopt);
    ASSERT_TRUE(who);
    EXPECT_TRUE(who->anonymous());
    EXPECT_TRUE(who->admin);
    EXPECT_TRUE(who->may_read("anything"));
    EXPECT_TRUE(who->may_publish("anything"));
    EXPECT_FALSE(who->may_publish("$sys/connections"));
    EXPECT_EQ(who->access, nullptr); // every public topic, no private one
    // A token changes nothing on an open hub.
    EXPECT_EQ(must_pass(a, "whatever"), who);
}

TEST(Authenticator, StaticTokensHaveTheirGrantsPlusAnonymousOnes) {
    config::AuthConfig cfg;
    cfg.tokens.push_back(token("foo", {"TicketFoo"}));
    cfg.tokens.push_back(token("pub", {}, {"Ticket{n}"}, true));
    cfg.anonymous.subscribe = {"news"};
    Authenticator a(cfg, std::nullopt, "");
    EXPECT_TRUE(a.enabled());
    EXPECT_TRUE(a.anonymous_allowed());
    EXPECT_EQ(a.token_count(), 2U);

    auto foo = must_pass(a, "foo");
    ASSERT_TRUE(foo);
    EXPECT_EQ(foo->kind, Principal::Kind::token);
    EXPECT_TRUE(foo->may_read("TicketFoo"));
    EXPECT_TRUE(foo->may_read("news"));
    EXPECT_FALSE(foo->may_read("TicketMaster"));
    EXPECT_TRUE(foo->access->may_read_private("TicketFoo"));
    EXPECT_FALSE(foo->access->may_read_private("news")); // anonymous grants never read private
    EXPECT_FALSE(foo->may_publish_something());
    EXPECT_FALSE(foo->admin);

    auto pub = must_pass(a, "pub");
    ASSERT_TRUE(pub);
    EXPECT_TRUE(pub->admin);
    EXPECT_TRUE(pub->may_publish("TicketMaster"));
    EXPECT_FALSE(pub->may_publish("Other"));
    EXPECT_FALSE(pub->may_read("TicketMaster"));

    auto anon = must_pass(a, std::nullopt);
    ASSERT_TRUE(anon);
    EXPECT_TRUE(anon->anonymous());
    EXPECT_TRUE(anon->may_read("news"));
    EXPECT_FALSE(anon->may_read("TicketFoo"));
    EXPECT_FALSE(anon->access->may_read_private("news"));
    EXPECT_FALSE(anon->admin);

    EXPECT_EQ(must_fail(a, "nope"), "the token is not valid");
    EXPECT_EQ(must_fail(a, "fo"), "the token is not valid");
    EXPECT_EQ(must_fail(a, "foo "), "the token is not valid");
    // The same token object for every request: streams of one token share it.
    EXPECT_EQ(must_pass(a, "foo"), foo);
}

TEST(Authenticator, AnonymousGrantsAloneTurnAuthOn) {
    config::AuthConfig cfg;
    cfg.anonymous.publish = {"inbox"};
    Authenticator a(cfg, std::nullopt, "");
    EXPECT_TRUE(a.enabled());
    auto anon = must_pass(a, std::nullopt);
    ASSERT_TRUE(anon);
    EXPECT_TRUE(anon->may_publish("inbox"));
    EXPECT_FALSE(anon->may_publish("other"));
    EXPECT_FALSE(anon->may_read_something());
    EXPECT_FALSE(anon->admin);
}

TEST(Authenticator, RootTokenHasEveryRightAndTurnsAnonymousOff) {
    config::AuthConfig cfg;
    cfg.anonymous.subscribe = {"*"};
    cfg.tokens.push_back(token("foo", {"a"}));
    Authenticator a(cfg, std::string("s3cret"), "");
    EXPECT_TRUE(a.enabled());
    EXPECT_FALSE(a.anonymous_allowed());
    EXPECT_EQ(must_fail(a, std::nullopt), "this hub needs a token");

    auto root = must_pass(a, "s3cret");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->kind, Principal::Kind::root);
    EXPECT_TRUE(root->admin);
    EXPECT_TRUE(root->may_read("$sys/connections"));
    EXPECT_TRUE(root->access->may_read_private("anything"));
    EXPECT_TRUE(root->may_publish("anything"));
    EXPECT_FALSE(root->may_publish("$sys/connections"));

    // Static tokens still work, without the (now off) anonymous grants.
    auto foo = must_pass(a, "foo");
    ASSERT_TRUE(foo);
    EXPECT_TRUE(foo->may_read("a"));
    EXPECT_FALSE(foo->may_read("b"));
}

TEST(Authenticator, StarGrantNeverReachesSystemTopics) {
    config::AuthConfig cfg;
    cfg.tokens.push_back(token("all", {"*"}));
    cfg.tokens.push_back(token("watch", {"$sys/connections"}));
    Authenticator a(cfg, std::nullopt, "");
    EXPECT_FALSE(must_pass(a, "all")->may_read("$sys/connections"));
    EXPECT_TRUE(must_pass(a, "all")->may_read("anything/else"));
    EXPECT_TRUE(must_pass(a, "watch")->may_read("$sys/connections"));
}

TEST(Authenticator, JwtNeedsAKeyToBeTried) {
    config::AuthConfig cfg;
    cfg.tokens.push_back(token("foo", {"a"}));
    Authenticator a(cfg, std::nullopt, "");
    // Shaped like a JWT, but no key is configured: just an unknown token.
    EXPECT_EQ(must_fail(a, "eyJhbGciOiJIUzI1NiJ9.eyJoZXJhbGQiOnt9fQ.c2ln"),
              "the token is not valid");
}

TEST(Authenticator, BadPublicKeyIsAConfigError) {
    config::AuthConfig cfg;
    cfg.jwt_public_key_file = "key.pem";
    EXPECT_THROW(Authenticator(cfg, std::nullopt, "not a key"), config::ConfigError);
}

TEST(RootToken, FileWinsOverVariableAndLosesItsNewline) {
    const auto path = std::filesystem::temp_directory_path() / "herald_root_token_test";
    {
        std::ofstream out(path);
        out << "from-file\n";
    }
    std::map<std::string, std::string> env = {{"AUTH_TOKEN", "from-env"},
                                              {"AUTH_TOKEN_FILE", path.string()}};
    EXPECT_EQ(root_token_from(env), "from-file");
    env.erase("AUTH_TOKEN_FILE");
    EXPECT_EQ(root_token_from(env), "from-env");
    env.clear();
    EXPECT_EQ(root_token_from(env), std::nullopt);
    env["AUTH_TOKEN"] = ""; // set but empty: not a token
    EXPECT_EQ(root_token_from(env), std::nullopt);

    {
        std::ofstream out(path);
        out << "\n";
    }
    env = {{"AUTH_TOKEN_FILE", path.string()}};
    EXPECT_THROW((void)root_token_from(env), config::ConfigError);
    std::filesystem::remove(path);
    try {
        (void)root_token_from(env);
        ADD_FAILURE() << "a missing file was accepted";
    } catch (const config::ConfigError& e) {
        EXPECT_EQ(e.key(), "AUTH_TOKEN_FILE");
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos);
    }
}

CredentialSources sources(std::optional<std::string_view> header,
                          std::optional<std::string_view> token_param = std::nullopt,
                          std::optional<std::string_view> authorization_param = std::nullopt,
                          std::optional<std::string_view> cookie = std::nullopt) {
    return {header, token_param, authorization_param, cookie};
}

std::string found(const CredentialSources& s) {
    auto c = find_credential(s);
    if (auto* token = std::get_if<std::string_view>(&c)) {
        return std::string(*token);
    }
    if (auto* refusal = std::get_if<Refusal>(&c)) {
        return "refused: " + refusal->reason;
    }
    return "anonymous";
}

TEST(FindCredential, PrecedenceAndShapes) {
    EXPECT_EQ(found(sources(std::nullopt)), "anonymous");
    EXPECT_EQ(found(sources("Bearer abc")), "abc");
    EXPECT_EQ(found(sources("bearer   abc  ")), "abc");
    EXPECT_EQ(found(sources("Basic dXNlcjpwYXNz")),
              "refused: the Authorization header must be \"Bearer <token>\"");
    EXPECT_EQ(found(sources("Bearer")),
              "refused: the Authorization header must be \"Bearer <token>\"");
    EXPECT_EQ(found(sources("Bearer  ")),
              "refused: the Authorization header must be \"Bearer <token>\"");
    // The header wins over everything; the query's token over its authorization.
    EXPECT_EQ(found(sources("Bearer h", "q", "a", "herald_token=c")), "h");
    EXPECT_EQ(found(sources(std::nullopt, "q", "a", "herald_token=c")), "q");
    EXPECT_EQ(found(sources(std::nullopt, std::nullopt, "a", "herald_token=c")), "a");
    EXPECT_EQ(found(sources(std::nullopt, "", "a")),
              "refused: the token in the query string is empty");
    // Cookies: herald_token first, then mercureAuthorization, among others, quoted or not.
    EXPECT_EQ(found(sources(std::nullopt, std::nullopt, std::nullopt,
                            "a=1; mercureAuthorization=m; herald_token=\"h\"")),
              "h");
    EXPECT_EQ(
        found(sources(std::nullopt, std::nullopt, std::nullopt, "a=1;mercureAuthorization=m")),
        "m");
    EXPECT_EQ(found(sources(std::nullopt, std::nullopt, std::nullopt, "xherald_token=1")),
              "anonymous");
    EXPECT_EQ(found(sources(std::nullopt, std::nullopt, std::nullopt, "herald_token=")),
              "refused: the cookie herald_token is empty");
}

} // namespace
} // namespace herald::auth
