// Form and query decoding: what curl, browsers and URLSearchParams send.
#include "http/form.hpp"

#include <gtest/gtest.h>

namespace herald::http {
namespace {

TEST(DecodeForm, SplitsFieldsAndDecodesPercentAndPlus) {
    auto f = decode_form("topic=a%2Fb&topic=c+d&data=x%3Dy%26z");
    ASSERT_EQ(f.size(), 3U);
    EXPECT_EQ(f[0].key, "topic");
    EXPECT_EQ(f[0].value, "a/b");
    EXPECT_EQ(f[1].value, "c d");
    EXPECT_EQ(f[2].key, "data");
    EXPECT_EQ(f[2].value, "x=y&z");
    EXPECT_TRUE(f[2].has_value);
}

TEST(DecodeForm, KeepsWhatCurlSendsUnencoded) {
    // `curl -d "data=hello world"` sends a raw space and raw newlines.
    auto f = decode_form("data=hello world\nline 2");
    ASSERT_EQ(f.size(), 1U);
    EXPECT_EQ(f[0].value, "hello world\nline 2");
}

TEST(DecodeForm, AFieldWithoutValueAndEmptyPairs) {
    auto f = decode_form("&private&&data=&x=1");
    ASSERT_EQ(f.size(), 3U);
    EXPECT_EQ(f[0].key, "private");
    EXPECT_FALSE(f[0].has_value);
    EXPECT_EQ(f[1].key, "data");
    EXPECT_TRUE(f[1].has_value);
    EXPECT_EQ(f[1].value, "");
    EXPECT_EQ(f[2].value, "1");
}

TEST(DecodeForm, OnlyTheFirstEqualsSplits) {
    auto f = decode_form("data=a=b");
    ASSERT_EQ(f.size(), 1U);
    EXPECT_EQ(f[0].value, "a=b");
}

TEST(DecodeForm, BrokenEscapesStayLiteral) {
    auto f = decode_form("data=100%&x=%zz&y=%4&z=%41");
    ASSERT_EQ(f.size(), 4U);
    EXPECT_EQ(f[0].value, "100%");
    EXPECT_EQ(f[1].value, "%zz");
    EXPECT_EQ(f[2].value, "%4");
    EXPECT_EQ(f[3].value, "A");
}

TEST(DecodeForm, DecodesBytesNotCharacters) {
    auto f = decode_form("t=%C3%A9t%C3%A9&n=%00");
    ASSERT_EQ(f.size(), 2U);
    EXPECT_EQ(f[0].value, "\xC3\xA9t\xC3\xA9");
    EXPECT_EQ(f[1].value, std::string(1, '\0'));
}

TEST(DecodePath, DecodesPercentButNotPlus) {
    EXPECT_EQ(decode_path("/a+b/%65vents"), "/a+b/events");
    EXPECT_EQ(decode_path("/%2e%2e/x"), "/../x");
}

} // namespace
} // namespace herald::http
