// Tests of the client commands' base URL parsing and percent-encoding.
#include "cli/url.hpp"

#include <gtest/gtest.h>

namespace herald::cli {
namespace {

TEST(ParseHubUrl, HostPortAndPath) {
    const HubUrl url = parse_hub_url("http://127.0.0.1:8080");
    EXPECT_EQ(url.host, "127.0.0.1");
    EXPECT_EQ(url.port, "8080");
    EXPECT_EQ(url.base_path, "");
    EXPECT_EQ(url.target("/events"), "/events");
    EXPECT_EQ(url.host_header(), "127.0.0.1:8080");
}

TEST(ParseHubUrl, DefaultPortIs80) {
    const HubUrl url = parse_hub_url("http://hub.example.com");
    EXPECT_EQ(url.host, "hub.example.com");
    EXPECT_EQ(url.port, "80");
    EXPECT_EQ(url.host_header(), "hub.example.com");
}

TEST(ParseHubUrl, BasePathLosesTrailingSlashes) {
    EXPECT_EQ(parse_hub_url("http://h/").base_path, "");
    EXPECT_EQ(parse_hub_url("http://h:81/herald/").base_path, "/herald");
    EXPECT_EQ(parse_hub_url("http://h/a/b//").target("/events?topic=x"), "/a/b/events?topic=x");
}

TEST(ParseHubUrl, SchemeIsCaseInsensitiveAndOptional) {
    EXPECT_EQ(parse_hub_url("HTTP://h:1").port, "1");
    const HubUrl bare = parse_hub_url("localhost:9000");
    EXPECT_EQ(bare.host, "localhost");
    EXPECT_EQ(bare.port, "9000");
}

TEST(ParseHubUrl, Ipv6InBrackets) {
    const HubUrl url = parse_hub_url("http://[::1]:8080/x");
    EXPECT_EQ(url.host, "::1");
    EXPECT_EQ(url.port, "8080");
    EXPECT_EQ(url.base_path, "/x");
    EXPECT_EQ(url.host_header(), "[::1]:8080");
    EXPECT_EQ(parse_hub_url("http://[::1]").host_header(), "[::1]");
}

TEST(ParseHubUrl, PortIsNormalised) {
    EXPECT_EQ(parse_hub_url("http://h:08080").port, "8080");
}

TEST(ParseHubUrl, RejectsWhatItCannotServe) {
    for (const char* bad : {"https://h", "ftp://h", "http://", "http://:80", "http://h:",
                            "http://h:0", "http://h:65536", "http://h:99999999999999999999",
                            "http://h:8o", "http://u:p@h", "http://h/?q=1", "http://h/#f",
                            "http://[::1", "http://[::1]x", "http://::1:80", "http://h /x", ""}) {
        EXPECT_THROW((void)parse_hub_url(bad), UrlError) << bad;
    }
}

TEST(ParseHubUrl, HttpsMessageSaysWhy) {
    try {
        (void)parse_hub_url("https://hub.example.com");
        FAIL() << "no error";
    } catch (const UrlError& e) {
        EXPECT_NE(std::string(e.what()).find("https:// is not supported"), std::string::npos)
            << e.what();
    }
}

TEST(PercentEncode, KeepsUnreservedOnly) {
    EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
    EXPECT_EQ(percent_encode("a b&c=d+e/f?g#h%"), "a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25");
    EXPECT_EQ(percent_encode("https://example.com/books/{id}"),
              "https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D");
    EXPECT_EQ(percent_encode("caf\xC3\xA9\n"), "caf%C3%A9%0A");
    EXPECT_EQ(percent_encode(std::string_view("\0", 1)), "%00");
    EXPECT_EQ(percent_encode(""), "");
}

} // namespace
} // namespace herald::cli
