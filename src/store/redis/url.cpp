// Parsing redis:// URLs by hand: the grammar is small, and the one rule that matters (the
// password never reaches a message) is easier to keep in a parser that is all in view.
#include "store/redis/url.hpp"

#include <charconv>

namespace herald::store::redis {

namespace {

constexpr std::string_view kScheme = "redis://";

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Percent-decoding (RFC 3986 2.1); nothing when a `%` is not followed by two hex digits.
std::optional<std::string> decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) {
            return std::nullopt;
        }
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

template <typename T> std::optional<T> number(std::string_view digits) {
    T v{};
    if (digits.empty()) {
        return std::nullopt;
    }
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || p != digits.data() + digits.size()) {
        return std::nullopt;
    }
    return v;
}

} // namespace

std::string RedisUrl::redacted() const {
    std::string out(kScheme);
    if (!user.empty()) {
        out += user;
        out += '@';
    }
    if (host.find(':') != std::string::npos) {
        out += '[' + host + ']';
    } else {
        out += host;
    }
    out += ':' + std::to_string(port) + '/' + std::to_string(db);
    return out;
}

std::string redact(std::string_view text) {
    const auto scheme = text.find("://");
    if (scheme == std::string_view::npos) {
        return std::string(text);
    }
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(text.find('/', start), text.size());
    const auto at = text.substr(0, end).rfind('@');
    if (at == std::string_view::npos || at < start) {
        return std::string(text);
    }
    std::string_view userinfo = text.substr(start, at - start);
    std::string out(text.substr(0, start));
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
        userinfo = userinfo.substr(0, colon);
    }
    if (!userinfo.empty()) {
        out += userinfo;
        out += '@';
    }
    out += text.substr(at + 1);
    return out;
}

std::optional<RedisUrl> parse_url(std::string_view text, std::string& error) {
    auto fail = [&](std::string_view why) {
        error = redact(text) + ": " + std::string(why);
        return std::nullopt;
    };
    if (!text.starts_with(kScheme)) {
        return fail("a Redis URL starts with redis://");
    }
    std::string_view rest = text.substr(kScheme.size());
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

    RedisUrl url;
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        auto user = decode(userinfo.substr(0, colon));
        if (!user) {
            return fail("the user name has a malformed %-escape");
        }
        url.user = std::move(*user);
        if (colon != std::string_view::npos) {
            auto password = decode(userinfo.substr(colon + 1));
            if (!password) {
                return fail("the password has a malformed %-escape");
            }
            url.password = std::move(*password);
        }
        if (url.password.empty()) {
            return fail(url.user.empty() ? "an empty password before @"
                                         : "a user name needs a password (USER:PASSWORD@)");
        }
    }

    std::string_view port;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return fail("an IPv6 address lacks its closing ]");
        }
        url.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') {
                return fail("expected :PORT after the IPv6 address");
            }
            port = after.substr(1);
            if (port.empty()) {
                return fail("the port is empty");
            }
        }
    } else {
        const auto colon = authority.find(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) {
                return fail("the port is empty");
            }
        }
    }
    if (url.host.empty()) {
        return fail("the host is missing");
    }
    if (!port.empty()) {
        auto p = number<std::uint16_t>(port);
        if (!p || *p == 0) {
            return fail("the port must be a number from 1 to 65535");
        }
        url.port = *p;
    }
    if (!path.empty()) {
        auto db = number<unsigned>(path);
        if (!db || *db > 1000000) {
            return fail("the database (after /) must be a number, as in redis://HOST:PORT/2");
        }
        url.db = *db;
    }
    return url;
}

} // namespace herald::store::redis
