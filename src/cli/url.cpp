// Parsing the hub's base URL and percent-encoding. By hand: the client needs only the host,
// port and path of an http:// URL, and Boost.URL (no library in Debian's Boost 1.81) would
// need a source unit of its own compiled into the build for that.
#include "cli/url.hpp"

#include <algorithm>

namespace herald::cli {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

[[noreturn]] void fail(std::string_view url, std::string_view why) {
    throw UrlError("invalid hub URL '" + std::string(url) + "': " + std::string(why));
}

} // namespace

std::string HubUrl::host_header() const {
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != "80") {
        out += ":" + port;
    }
    return out;
}

std::string HubUrl::target(std::string_view path) const {
    return base_path + std::string(path);
}

HubUrl parse_hub_url(std::string_view url) {
    std::string_view rest = url;
    if (const auto sep = rest.find("://"); sep != std::string_view::npos) {
        const std::string scheme = lower(rest.substr(0, sep));
        if (scheme == "https") {
            fail(url, "https:// is not supported; use http:// (put a TLS proxy in front of "
                      "herald for TLS)");
        }
        if (scheme != "http") {
            fail(url, "the scheme must be http://");
        }
        rest.remove_prefix(sep + 3);
    }
    if (rest.find_first_of("?#") != std::string_view::npos) {
        fail(url, "a base URL takes no query or fragment");
    }
    if (rest.find_first_of(" \t\r\n") != std::string_view::npos) {
        fail(url, "it contains white space");
    }
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) {
        fail(url, "user info is not supported; use --token");
    }

    HubUrl out;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            fail(url, "an IPv6 address lacks its ']'");
        }
        out.host = std::string(authority.substr(1, close - 1));
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                fail(url, "unexpected text after the IPv6 address");
            }
            port = after.substr(1);
            if (port.empty()) {
                fail(url, "the port is empty");
            }
        }
    } else {
        const auto colon = authority.find(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) {
                fail(url, "the port is empty");
            }
            if (port.find(':') != std::string_view::npos) {
                fail(url, "an IPv6 address must be in brackets");
            }
        }
    }
    if (out.host.empty()) {
        fail(url, "the host is missing");
    }
    if (port.empty()) {
        out.port = "80";
    } else {
        unsigned long value = 0;
        for (const char c : port) {
            if (c < '0' || c > '9' || value > 65535) {
                fail(url, "the port must be a number from 1 to 65535");
            }
            value = value * 10 + static_cast<unsigned long>(c - '0');
        }
        if (value == 0 || value > 65535) {
            fail(url, "the port must be a number from 1 to 65535");
        }
        out.port = std::to_string(value);
    }
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    out.base_path = std::string(path);
    return out;
}

} // namespace herald::cli
