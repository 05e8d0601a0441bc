// The address of a cluster's Redis: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, parsed
// into its parts, and the same URL with its password left out, for every log line and error.
// Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::store::redis {

struct RedisUrl {
    std::string user;     // empty: the default user
    std::string password; // empty: no AUTH
    std::string host;     // a name, an IPv4 address or an IPv6 address (without brackets)
    std::uint16_t port = 6379;
    unsigned db = 0;

    // `redis://[USER@]HOST:PORT/DB`: what messages name (never the password).
    [[nodiscard]] std::string redacted() const;
};

// Parses a URL. USER and PASSWORD may be percent-encoded (a password holding `@` or `:`);
// an IPv6 HOST is written in brackets. On failure, `error` gets a sentence that names the
// URL without its password.
[[nodiscard]] std::optional<RedisUrl> parse_url(std::string_view text, std::string& error);

// The URL with whatever stands between `://` and the last `@` of its authority replaced by
// the user name alone: safe to print even when the URL does not parse.
[[nodiscard]] std::string redact(std::string_view text);

} // namespace herald::store::redis
