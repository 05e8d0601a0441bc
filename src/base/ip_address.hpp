// IP addresses and networks (CIDRs) as plain values, IPv4 and IPv6 alike: an IPv4 address
// is held as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so that a client seen through a
// dual-stack listener and the same client named in a header or a config are one address.
// Pure: no sockets, no Asio; config validates server.trusted_proxies with it.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::base {

class IpAddress {
public:
    using Bytes = std::array<std::uint8_t, 16>;

    IpAddress() = default; // :: (all zero)
    explicit IpAddress(const Bytes& bytes) noexcept : bytes_(bytes) {}
    [[nodiscard]] static IpAddress v4(std::uint32_t host_order) noexcept;

    // "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"; no brackets, port or zone id.
    [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);

    [[nodiscard]] const Bytes& bytes() const noexcept { return bytes_; }
    // An IPv4 address, or an IPv4-mapped IPv6 one (the same thing here).
    [[nodiscard]] bool is_v4() const noexcept;
    // Dotted quad for IPv4 (mapped ones included), RFC 5952 text for IPv6.
    [[nodiscard]] std::string to_string() const;

    auto operator<=>(const IpAddress&) const = default;

private:
    Bytes bytes_{};
};

struct ParsedNetwork;

// An address and a prefix length: 10.0.0.0/8, 2001:db8::/32, or one address (no prefix:
// /32 for IPv4, /128 for IPv6). An IPv4 network also matches the mapped forms of its
// addresses.
class IpNetwork {
public:
    // The network, or an error sentence: not an address, a prefix out of range, or bits
    // set beyond the prefix (10.0.0.1/8: which network was meant is not known).
    [[nodiscard]] static ParsedNetwork parse(std::string_view text);

    [[nodiscard]] bool contains(const IpAddress& address) const noexcept;
    // As written in a config: 10.0.0.0/8, 2001:db8::/32, 127.0.0.1/32.
    [[nodiscard]] std::string to_string() const;

    bool operator==(const IpNetwork&) const = default;

private:
    IpNetwork(IpAddress base, unsigned prefix) : base_(base), prefix_(prefix) {}

    IpAddress base_;
    unsigned prefix_ = 128; // over the 128 bits of the (mapped) address
};

struct ParsedNetwork {
    std::optional<IpNetwork> network;
    std::string error; // when there is no network
};

// Whether any of `networks` holds `address`.
[[nodiscard]] bool any_contains(const std::vector<IpNetwork>& networks,
                                const IpAddress& address) noexcept;

} // namespace herald::base
