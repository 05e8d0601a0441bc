// Tests for IP addresses and networks: IPv4, IPv6 and IPv4-mapped IPv6 as one address,
// CIDR matching at the edges of a prefix, and bad input refused with a sentence.
#include "base/ip_address.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald::base {
namespace {

IpAddress addr(std::string_view text) {
    auto a = IpAddress::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(IpAddress{});
}

IpNetwork net(std::string_view text) {
    auto n = IpNetwork::parse(text);
    EXPECT_TRUE(n.network.has_value()) << text << ": " << n.error;
    return n.network.value_or(IpNetwork::parse("::/0").network.value());
}

TEST(IpAddress, ParsesAndPrints) {
    EXPECT_EQ(addr("192.0.2.1").to_string(), "192.0.2.1");
    EXPECT_TRUE(addr("192.0.2.1").is_v4());
    EXPECT_EQ(addr("2001:DB8:0:0::1").to_string(), "2001:db8::1");
    EXPECT_FALSE(addr("2001:db8::1").is_v4());
    EXPECT_EQ(addr("::1").to_string(), "::1");
    EXPECT_EQ(IpAddress::v4(0x7f000001).to_string(), "127.0.0.1");
}

TEST(IpAddress, MappedV6IsTheV4Address) {
    EXPECT_EQ(addr("::ffff:192.0.2.1"), addr("192.0.2.1"));
    EXPECT_EQ(addr("::ffff:c000:201"), addr("192.0.2.1"));
    EXPECT_TRUE(addr("::ffff:192.0.2.1").is_v4());
    EXPECT_EQ(addr("::ffff:192.0.2.1").to_string(), "192.0.2.1");
    EXPECT_NE(addr("::192.0.2.1"), addr("192.0.2.1")); // IPv4-compatible, not mapped
}

TEST(IpAddress, RefusesWhatIsNoAddress) {
    for (const char* bad :
         {"", " ", "192.0.2", "192.0.2.256", "192.0.2.1.5", "1.2.3.4 ", " 1.2.3.4", "192.0.2.1:80",
          "[::1]", "fe80::1%eth0", "2001:db8:::1", "unknown", "_hidden", "localhost", "0x7f.0.0.1",
          "01.2.3.4", "1.2.3.4/8", "::1/128", "1:2:3:4:5:6:7:8:9"}) {
        EXPECT_FALSE(IpAddress::parse(bad).has_value()) << '"' << bad << '"';
    }
    EXPECT_FALSE(IpAddress::parse(std::string(100, '1')).has_value());
}

TEST(IpNetwork, V4PrefixEdges) {
    const IpNetwork n = net("10.1.0.0/16");
    EXPECT_TRUE(n.contains(addr("10.1.0.0")));
    EXPECT_TRUE(n.contains(addr("10.1.255.255")));
    EXPECT_FALSE(n.contains(addr("10.0.255.255")));
    EXPECT_FALSE(n.contains(addr("10.2.0.0")));
    EXPECT_TRUE(n.contains(addr("::ffff:10.1.2.3"))); // the same client seen on a v6 socket
    EXPECT_FALSE(n.contains(addr("2001:db8::1")));
    EXPECT_EQ(n.to_string(), "10.1.0.0/16");

    const IpNetwork odd = net("192.0.2.128/25");
    EXPECT_TRUE(odd.contains(addr("192.0.2.128")));
    EXPECT_TRUE(odd.contains(addr("192.0.2.255")));
    EXPECT_FALSE(odd.contains(addr("192.0.2.127")));
}

TEST(IpNetwork, SingleAddressesAndWholeSpaces) {
    const IpNetwork one = net("127.0.0.1");
    EXPECT_EQ(one.to_string(), "127.0.0.1/32");
    EXPECT_TRUE(one.contains(addr("127.0.0.1")));
    EXPECT_FALSE(one.contains(addr("127.0.0.2")));

    const IpNetwork v6one = net("::1");
    EXPECT_EQ(v6one.to_string(), "::1/128");
    EXPECT_TRUE(v6one.contains(addr("::1")));
    EXPECT_FALSE(v6one.contains(addr("127.0.0.1")));

    EXPECT_TRUE(net("0.0.0.0/0").contains(addr("203.0.113.9")));
    EXPECT_FALSE(net("0.0.0.0/0").contains(addr("2001:db8::1"))); // every IPv4, no IPv6
    EXPECT_TRUE(net("::/0").contains(addr("2001:db8::1")));
    EXPECT_TRUE(net("::/0").contains(addr("203.0.113.9")));
    // The mapped range written as IPv6 holds the IPv4 addresses.
    EXPECT_TRUE(net("::ffff:0:0/96").contains(addr("198.51.100.7")));
    EXPECT_TRUE(net("::ffff:10.0.0.0/104").contains(addr("10.9.9.9")));
}

TEST(IpNetwork, V6PrefixEdges) {
    const IpNetwork n = net("2001:db8:abcc::/47");
    EXPECT_TRUE(n.contains(addr("2001:db8:abcc::1")));
    EXPECT_TRUE(n.contains(addr("2001:db8:abcd:ffff::1")));
    EXPECT_FALSE(n.contains(addr("2001:db8:abce::")));
    EXPECT_FALSE(n.contains(addr("2001:db8:abcb:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_EQ(n.to_string(), "2001:db8:abcc::/47");
}

TEST(IpNetwork, RefusesBadInputWithASentence) {
    struct Case {
        const char* text;
        const char* says;
    };
    const std::vector<Case> cases = {
        {"", "expected an IPv4 or IPv6 address or CIDR"},
        {"nginx", "expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8, 2001:db8::/32), got "
                  "\"nginx\""},
        {"10.0.0.0/", "expected a prefix length from 0 to 32 after the /, got \"10.0.0.0/\""},
        {"10.0.0.0/33", "expected a prefix length from 0 to 32"},
        {"10.0.0.0/-1", "expected a prefix length from 0 to 32"},
        {"10.0.0.0/8x", "expected a prefix length from 0 to 32"},
        {"10.0.0.0/8/8", "expected a prefix length from 0 to 32"},
        {"2001:db8::/129", "expected a prefix length from 0 to 128"},
        {"10.0.0.1/8", "\"10.0.0.1/8\" has bits set beyond its prefix; did you mean "
                       "\"10.0.0.0/8\"?"},
        {"2001:db8::1/32", "did you mean \"2001:db8::/32\"?"},
        {"fe80::1%eth0", "expected an IPv4 or IPv6 address or CIDR"},
        {"[::1]", "expected an IPv4 or IPv6 address or CIDR"},
    };
    for (const auto& c : cases) {
        const auto parsed = IpNetwork::parse(c.text);
        EXPECT_FALSE(parsed.network.has_value()) << c.text;
        EXPECT_NE(parsed.error.find(c.says), std::string::npos) << c.text << ": " << parsed.error;
    }
}

TEST(IpNetwork, AnyContains) {
    const std::vector<IpNetwork> trusted = {net("10.0.0.0/8"), net("fd00::/8")};
    EXPECT_TRUE(any_contains(trusted, addr("10.20.30.40")));
    EXPECT_TRUE(any_contains(trusted, addr("fd12::1")));
    EXPECT_FALSE(any_contains(trusted, addr("192.0.2.1")));
    EXPECT_FALSE(any_contains({}, addr("10.0.0.1")));
}

} // namespace
} // namespace herald::base
