// Tests for redis:// URLs: every part, the defaults, percent-escapes, IPv6, the refusals,
// and that no message or redacted form ever holds the password.
#include "store/redis/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace herald::store::redis {
namespace {

std::optional<RedisUrl> parse(std::string_view text) {
    std::string error;
    auto url = parse_url(text, error);
    EXPECT_EQ(url.has_value(), error.empty()) << text;
    return url;
}

std::string refusal(std::string_view text) {
    std::string error;
    EXPECT_FALSE(parse_url(text, error).has_value()) << text;
    return error;
}

TEST(RedisUrl, HostPortAndDatabase) {
    auto url = parse("redis://127.0.0.1:6390/2");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->host, "127.0.0.1");
    EXPECT_EQ(url->port, 6390);
    EXPECT_EQ(url->db, 2U);
    EXPECT_TRUE(url->user.empty());
    EXPECT_TRUE(url->password.empty());
    EXPECT_EQ(url->redacted(), "redis://127.0.0.1:6390/2");
}

TEST(RedisUrl, Defaults) {
    auto url = parse("redis://cache.internal");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->host, "cache.internal");
    EXPECT_EQ(url->port, 6379);
    EXPECT_EQ(url->db, 0U);
    EXPECT_EQ(parse("redis://h:1/")->db, 0U);
    EXPECT_EQ(parse("redis://h:1")->redacted(), "redis://h:1/0");
}

TEST(RedisUrl, PasswordAndUser) {
    auto url = parse("redis://:s3cret@127.0.0.1:6390/2");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->password, "s3cret");
    EXPECT_TRUE(url->user.empty());
    EXPECT_EQ(url->redacted(), "redis://127.0.0.1:6390/2");

    auto acl = parse("redis://alice:s3cret@127.0.0.1:6390/1");
    ASSERT_TRUE(acl);
    EXPECT_EQ(acl->user, "alice");
    EXPECT_EQ(acl->password, "s3cret");
    EXPECT_EQ(acl->redacted(), "redis://alice@127.0.0.1:6390/1");
}

TEST(RedisUrl, PasswordMayHoldEscapedAndRawSeparators) {
    // `@` must be escaped; a `:` after the first one belongs to the password.
    auto url = parse("redis://:p%40ss:w%3Ard@host:1/3");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->password, "p@ss:w:rd");
    EXPECT_EQ(url->host, "host");
    // The last `@` of the authority ends the user info.
    auto raw = parse("redis://:a@b@host:1");
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->password, "a@b");
    EXPECT_EQ(raw->host, "host");
}

TEST(RedisUrl, Ipv6InBrackets) {
    auto url = parse("redis://[::1]:6390/4");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->host, "::1");
    EXPECT_EQ(url->port, 6390);
    EXPECT_EQ(url->redacted(), "redis://[::1]:6390/4");
    EXPECT_EQ(parse("redis://[::1]")->port, 6379);
}

TEST(RedisUrl, Refusals) {
    EXPECT_NE(refusal("http://h:1").find("redis://"), std::string::npos);
    EXPECT_NE(refusal("redis://:1").find("host"), std::string::npos);
    EXPECT_NE(refusal("redis://h:").find("port"), std::string::npos);
    EXPECT_NE(refusal("redis://h:x").find("port"), std::string::npos);
    EXPECT_NE(refusal("redis://h:0").find("port"), std::string::npos);
    EXPECT_NE(refusal("redis://h:70000").find("port"), std::string::npos);
    EXPECT_NE(refusal("redis://h:1/x").find("database"), std::string::npos);
    EXPECT_NE(refusal("redis://h:1/-1").find("database"), std::string::npos);
    EXPECT_NE(refusal("redis://[::1:1").find("IPv6"), std::string::npos);
    EXPECT_NE(refusal("redis://:%zz@h:1").find("password"), std::string::npos);
    EXPECT_NE(refusal("redis://bob@h:1").find("password"), std::string::npos);
}

TEST(RedisUrl, NoMessageHoldsThePassword) {
    for (const char* text :
         {"redis://:hunter2@h:x/1", "redis://u:hunter2@:1", "redis://:hunter2@h:1/z",
          "redis://:hunter2@[::1:1", "rediss://:hunter2@h:1"}) {
        const std::string error = refusal(text);
        EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
        EXPECT_FALSE(error.empty());
    }
    EXPECT_EQ(refusal("redis://u:hunter2@:1").substr(0, 13), "redis://u@:1:");
}

TEST(RedisUrl, RedactLeavesOnlyTheUser) {
    EXPECT_EQ(redact("redis://:pw@h:1/2"), "redis://h:1/2");
    EXPECT_EQ(redact("redis://u:pw@h:1/2"), "redis://u@h:1/2");
    EXPECT_EQ(redact("redis://h:1/2"), "redis://h:1/2");
    EXPECT_EQ(redact("redis://:p@w@h:1"), "redis://h:1");
    // An @ in the path is not user info.
    EXPECT_EQ(redact("redis://h:1/a@b"), "redis://h:1/a@b");
    EXPECT_EQ(redact("no scheme"), "no scheme");
}

} // namespace
} // namespace herald::store::redis
