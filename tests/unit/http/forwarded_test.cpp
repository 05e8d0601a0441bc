// Tests for reading the client's address behind trusted proxies: RFC 7239 Forwarded (quoted
// IPv6 with a port, several hops and field lines, obfuscated and unknown nodes, bad syntax)
// and X-Forwarded-For, read from the right, and ignored from peers that are not trusted.
#include "http/forwarded.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald::http {
namespace {

using base::IpAddress;
using base::IpNetwork;
using Values = std::vector<std::string_view>;

IpAddress ip(std::string_view text) {
    return IpAddress::parse(text).value();
}

std::vector<IpNetwork> nets(std::initializer_list<const char*> texts) {
    std::vector<IpNetwork> out;
    for (const char* t : texts) {
        out.push_back(IpNetwork::parse(t).network.value());
    }
    return out;
}

std::string node(std::string_view text) {
    const auto n = parse_node(text);
    return n ? n->to_string() : "-";
}

TEST(Forwarded, Nodes) {
    EXPECT_EQ(node("192.0.2.60"), "192.0.2.60");
    EXPECT_EQ(node("192.0.2.60:4711"), "192.0.2.60");
    EXPECT_EQ(node("[2001:db8:cafe::17]"), "2001:db8:cafe::17");
    EXPECT_EQ(node("[2001:db8:cafe::17]:4711"), "2001:db8:cafe::17");
    EXPECT_EQ(node("2001:db8::1"), "2001:db8::1"); // bare, as X-Forwarded-For writes it
    EXPECT_EQ(node(" 192.0.2.60 "), "192.0.2.60");
    EXPECT_EQ(node("[::ffff:192.0.2.1]"), "192.0.2.1");
    for (const char* hidden :
         {"unknown", "_hidden", "_SEVKISEK", "", "[192.0.2.1]", "[2001:db8::1", "[2001:db8::1]x",
          "[2001:db8::1]:", "192.0.2", "host.example", "192.0.2.1:80:80", "1.2.3.4;x"}) {
        EXPECT_EQ(node(hidden), "-") << '"' << hidden << '"';
    }
}

TEST(Forwarded, Elements) {
    const auto hops = forwarded_hops(
        {"for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=203.0.113.43",
         "For=198.51.100.17 ;  proto=http", "proto=https", "for=unknown", "for=_hidden"});
    ASSERT_TRUE(hops.has_value());
    ASSERT_EQ(hops->size(), 6U);
    EXPECT_EQ((*hops)[0]->to_string(), "192.0.2.43");
    EXPECT_EQ((*hops)[1]->to_string(), "2001:db8:cafe::17");
    EXPECT_EQ((*hops)[2]->to_string(), "198.51.100.17");
    EXPECT_FALSE((*hops)[3].has_value()); // no for= in the element
    EXPECT_FALSE((*hops)[4].has_value());
    EXPECT_FALSE((*hops)[5].has_value());
    // Quoted strings may hold commas and semicolons, and escapes.
    const auto quoted = forwarded_hops({"for=\"192.0.2.1\";by=\"a,b;c\", for=\"\\[::1]\""});
    ASSERT_TRUE(quoted.has_value());
    ASSERT_EQ(quoted->size(), 2U);
    EXPECT_EQ((*quoted)[0]->to_string(), "192.0.2.1");
    EXPECT_EQ((*quoted)[1]->to_string(), "::1");
    // Empty elements (",,") are skipped, as lists in HTTP allow.
    EXPECT_EQ(forwarded_hops({"for=192.0.2.1,,  ,for=192.0.2.2"})->size(), 2U);
}

TEST(Forwarded, GarbageDoesNotParse) {
    for (const char* bad :
         {"for", "for=", "for=\"192.0.2.1", "=192.0.2.1", "for=1.2.3.4 x",
          "for=1.2.3.4;for=1.2.3.5", "for=a\"b\"", "for = 1.2.3.4", "for=1.2.3.4 proto=http"}) {
        EXPECT_FALSE(forwarded_hops({bad}).has_value()) << bad;
    }
    // RFC 7239's grammar allows empty pairs: "for=...;" is well formed.
    EXPECT_EQ(forwarded_hops({"for=192.0.2.1;;proto=http;"})->at(0)->to_string(), "192.0.2.1");
}

TEST(Forwarded, XForwardedForHops) {
    const auto hops = x_forwarded_for_hops({"203.0.113.7 ,  198.51.100.2", "2001:db8::5,unknown",
                                            "[2001:db8::6]:443, 192.0.2.9:1234, ,"});
    ASSERT_EQ(hops.size(), 6U);
    EXPECT_EQ(hops[0]->to_string(), "203.0.113.7");
    EXPECT_EQ(hops[1]->to_string(), "198.51.100.2");
    EXPECT_EQ(hops[2]->to_string(), "2001:db8::5");
    EXPECT_FALSE(hops[3].has_value());
    EXPECT_EQ(hops[4]->to_string(), "2001:db8::6");
    EXPECT_EQ(hops[5]->to_string(), "192.0.2.9");
}

TEST(ClientAddress, UntrustedPeerHeadersIgnored) {
    const auto trusted = nets({"10.0.0.0/8"});
    EXPECT_EQ(client_address(ip("192.0.2.50"), trusted, {"for=203.0.113.7"}, {"203.0.113.8"}),
              ip("192.0.2.50"));
    // No trusted proxies at all: nobody's headers count.
    EXPECT_EQ(client_address(ip("10.0.0.1"), {}, {"for=203.0.113.7"}, {"203.0.113.8"}),
              ip("10.0.0.1"));
}

TEST(ClientAddress, RightMostUntrustedHop) {
    const auto trusted = nets({"10.0.0.0/8", "fd00::/8"});
    const IpAddress proxy = ip("10.0.0.1");
    // A client's own claim on the left is skipped over: the hop our proxies saw counts.
    EXPECT_EQ(client_address(proxy, trusted, {}, {"6.6.6.6, 203.0.113.7"}), ip("203.0.113.7"));
    // Several trusted proxies in a row.
    EXPECT_EQ(client_address(proxy, trusted, {}, {"6.6.6.6, 203.0.113.7, 10.1.1.1", "fd00::2"}),
              ip("203.0.113.7"));
    EXPECT_EQ(client_address(proxy, trusted,
                             {"for=6.6.6.6", "for=\"[2001:db8::1]:4711\", for=10.9.9.9"}, {}),
              ip("2001:db8::1"));
    // Forwarded wins over X-Forwarded-For.
    EXPECT_EQ(client_address(proxy, trusted, {"for=198.51.100.1"}, {"203.0.113.7"}),
              ip("198.51.100.1"));
    // A v4 client on a dual-stack socket, a v4-mapped peer.
    EXPECT_EQ(client_address(ip("::ffff:10.0.0.1"), trusted, {}, {"203.0.113.7"}),
              ip("203.0.113.7"));
}

TEST(ClientAddress, UnknownOrGarbageFallsBackToThePeer) {
    const auto trusted = nets({"10.0.0.0/8"});
    const IpAddress proxy = ip("10.0.0.1");
    EXPECT_EQ(client_address(proxy, trusted, {"for=_hidden"}, {}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {"for=unknown"}, {"203.0.113.7"}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {"for=203.0.113.7, for=unknown"}, {}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {"for=\"203.0.113.7"}, {"198.51.100.1"}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {}, {"203.0.113.7, not-an-address"}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {}, {"garbage"}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {}, {""}), proxy);
    EXPECT_EQ(client_address(proxy, trusted, {}, {}), proxy);
    // Past the unknown hop nothing is believed, even an address further left.
    EXPECT_EQ(client_address(proxy, trusted, {}, {"203.0.113.7, unknown, 10.0.0.2"}), proxy);
}

TEST(ClientAddress, OnlyTrustedHopsGiveTheLeftMost) {
    const auto trusted = nets({"10.0.0.0/8"});
    EXPECT_EQ(client_address(ip("10.0.0.1"), trusted, {}, {"10.0.0.3, 10.0.0.2"}), ip("10.0.0.3"));
}

} // namespace
} // namespace herald::http
