// IP address and network parsing (inet_pton, which takes no zone ids and no leading
// zeros in IPv4) and prefix matching over the 128-bit mapped form.
#include "base/ip_address.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace herald::base {

namespace {

constexpr unsigned kMappedPrefix = 96; // ::ffff:0:0/96 holds the IPv4 addresses

bool is_mapped(const IpAddress::Bytes& b) noexcept {
    return std::all_of(b.begin(), b.begin() + 10, [](std::uint8_t x) { return x == 0; }) &&
           b[10] == 0xff && b[11] == 0xff;
}

} // namespace

IpAddress IpAddress::v4(std::uint32_t host_order) noexcept {
    Bytes b{};
    b[10] = 0xff;
    b[11] = 0xff;
    b[12] = static_cast<std::uint8_t>(host_order >> 24);
    b[13] = static_cast<std::uint8_t>(host_order >> 16);
    b[14] = static_cast<std::uint8_t>(host_order >> 8);
    b[15] = static_cast<std::uint8_t>(host_order);
    return IpAddress(b);
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton needs a NUL-terminated string; no address is longer than this.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    char buf[INET6_ADDRSTRLEN] = {};
    std::memcpy(buf, text.data(), text.size());
    if (text.find(':') == std::string_view::npos) {
        in_addr a{};
        if (::inet_pton(AF_INET, buf, &a) != 1) {
            return std::nullopt;
        }
        return v4(ntohl(a.s_addr));
    }
    in6_addr a{};
    if (::inet_pton(AF_INET6, buf, &a) != 1) {
        return std::nullopt;
    }
    Bytes b{};
    std::memcpy(b.data(), &a, b.size());
    return IpAddress(b);
}

bool IpAddress::is_v4() const noexcept {
    return is_mapped(bytes_);
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4()) {
        ::inet_ntop(AF_INET, bytes_.data() + 12, buf, sizeof buf);
    } else {
        ::inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
    }
    return buf;
}

ParsedNetwork IpNetwork::parse(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    const auto addr = IpAddress::parse(addr_text);
    if (!addr) {
        return {std::nullopt, "expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8, "
                              "2001:db8::/32), got \"" +
                                  std::string(text) + "\""};
    }
    // An IPv4 text's prefix counts IPv4 bits; a mapped IPv6 text's counts all 128.
    const bool v4_text = addr_text.find(':') == std::string_view::npos;
    const unsigned width = v4_text ? 32 : 128;
    unsigned prefix = width;
    if (slash != std::string_view::npos) {
        const std::string_view p = text.substr(slash + 1);
        const auto res = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || p.size() > 3 || res.ec != std::errc() || res.ptr != p.data() + p.size() ||
            prefix > width) {
            return {std::nullopt, "expected a prefix length from 0 to " + std::to_string(width) +
                                      " after the /, got \"" + std::string(text) + "\""};
        }
    }
    const unsigned bits = v4_text ? kMappedPrefix + prefix : prefix;
    IpNetwork net(*addr, bits);
    IpAddress::Bytes masked = addr->bytes();
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned keep = bits > i * 8 ? std::min(8U, bits - i * 8) : 0;
        masked[i] &= static_cast<std::uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
    }
    if (masked != addr->bytes()) {
        IpNetwork meant(IpAddress(masked), bits);
        return {std::nullopt, "\"" + std::string(text) +
                                  "\" has bits set beyond its prefix; did you mean \"" +
                                  meant.to_string() + "\"?"};
    }
    return {net, {}};
}

bool IpNetwork::contains(const IpAddress& address) const noexcept {
    const auto& a = address.bytes();
    const auto& b = base_.bytes();
    unsigned left = prefix_;
    for (unsigned i = 0; i < 16 && left > 0; ++i) {
        const unsigned n = std::min(8U, left);
        const auto mask = static_cast<std::uint8_t>(0xff << (8 - n));
        if ((a[i] & mask) != (b[i] & mask)) {
            return false;
        }
        left -= n;
    }
    return true;
}

std::string IpNetwork::to_string() const {
    if (base_.is_v4() && prefix_ >= kMappedPrefix) {
        return base_.to_string() + "/" + std::to_string(prefix_ - kMappedPrefix);
    }
    return base_.to_string() + "/" + std::to_string(prefix_);
}

bool any_contains(const std::vector<IpNetwork>& networks, const IpAddress& address) noexcept {
    return std::any_of(networks.begin(), networks.end(),
                       [&](const IpNetwork& n) { return n.contains(address); });
}

} // namespace herald::base
