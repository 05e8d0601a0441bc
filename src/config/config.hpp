// herald's configuration: the plain structs every module reads, and load(), which builds
// them from defaults, a TOML file, the environment and command-line flags, in that order of
// increasing precedence, and refuses bad input with the source, the key and the reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/ip_address.hpp"

namespace herald::config {

struct ServerConfig {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    unsigned threads = 0; // 0: one worker per core
    unsigned keepalive_seconds = 15;
    unsigned retry_ms = 3000;
    std::size_t max_body_bytes = 1048576;
    std::size_t slow_client_bytes = 1048576;
    // Unsent bytes queued to all of a worker's streams together (this budget split evenly
    // between the workers) above which the streams furthest behind are cut (0: no budget).
    // Publishers are never held for it.
    std::size_t max_queued_bytes = 268435456;
    // A stream with unsent bytes whose writes make no progress for this long is closed.
    unsigned write_timeout_seconds = 30;
    // SO_SNDBUF of a stream's socket (0: the kernel's own, growing as it sees fit).
    std::size_t stream_send_buffer_bytes = 262144;
    std::vector<std::string> cors_origins;
    std::string static_dir;                // key "static"
    unsigned request_timeout_seconds = 10; // headers (and body) must arrive within this
    unsigned max_topics_per_event = 64;
    unsigned max_topics_per_subscription = 1000; // selectors in one GET /events
    // Connections open at once, all clients together; beyond it a new one gets 503. 0: what
    // the open-file limit allows, less a reserve (worked out at start).
    std::size_t max_connections = 0;
    // Connections (behind a trusted proxy: requests and streams in progress) of one client
    // address; beyond it 429. 0: no limit.
    std::size_t max_connections_per_ip = 0;
    // Peers whose Forwarded / X-Forwarded-For headers name the client (none: nobody's).
    std::vector<base::IpNetwork> trusted_proxies;
};

enum class SyncMode { full, normal };

struct StoreConfig {
    std::string url = "memory"; // memory | sqlite:PATH | redis://[[USER]:PASSWORD@]HOST:PORT[/DB]
    // redis: the longest any call to Redis may take; a publish gets 503 within it when
    // Redis is down or hung.
    unsigned timeout_ms = 1000;
    SyncMode sync = SyncMode::full;
    // sqlite: the newest events per topic also kept in memory, so that most resumes are
    // answered without a query.
    std::size_t cache_events = 1000;
};

struct HistoryConfig {
    std::size_t max_events = 10000;
    std::size_t max_bytes = 5000000;
    unsigned max_age_seconds = 0; // 0: no age limit
    // Hub-wide: topics that retain events (beyond it, the topic whose newest event is the
    // oldest is forgotten whole), and the bytes of all topics' history together (beyond
    // it, the oldest events in the global order go first). 0: no bound.
    std::size_t max_topics = 100000;
    std::size_t max_total_bytes = 536870912;
};

struct Grants {
    std::vector<std::string> subscribe;
    std::vector<std::string> publish;
};

struct TokenConfig {
    std::string token;
    std::vector<std::string> subscribe;
    std::vector<std::string> publish;
    bool admin = false;
};

struct AuthConfig {
    std::string jwt_secret;
    std::string jwt_public_key_file;
    Grants anonymous;
    std::vector<TokenConfig> tokens;
    bool open_metrics = false; // /metrics without admin once auth is on
};

struct LogConfig {
    std::string level = "info"; // trace|debug|info|warn|error|off
    bool access = false;        // one line per request (tokens masked)
};

struct ClusterConfig {
    // This node's name in X-Herald-Node, /healthz and GET /cluster; empty: <hostname>:<port>.
    std::string node_name;
};

struct Config {
    ServerConfig server;
    StoreConfig store;
    ClusterConfig cluster;
    HistoryConfig history;
    AuthConfig auth;
    LogConfig log;
    std::string source; // the config file it was read from, empty if none
};

// A configuration that cannot be used. what() is "<source>: <key>: <reason>" (or
// "<source>: <reason>" when no single key is at fault, as for a file that does not parse),
// e.g. "herald.toml: server.port: expected an integer from 0 to 65535, got \"abc\"". The
// source is the file path, "environment <VAR>" or "command line". Token values never appear.
// A store URL as logs and errors may show it: a Redis password replaced by ***.
[[nodiscard]] std::string password_hidden(std::string_view url);

class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string source, std::string key, std::string reason);

    [[nodiscard]] const std::string& source() const noexcept { return source_; }
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

private:
    std::string source_;
    std::string key_;
    std::string reason_;
};

// Builds the config: the defaults, then the TOML file at `path` (when non-empty), then the
// environment `env`, then `overrides` (flag values keyed by dotted name, "server.port", as
// strings, applied in order). Flag beats env beats file. Throws ConfigError.
//
// The file: unknown sections and keys, wrong types and out-of-range values are errors.
// The environment: `PORT` sets server.port; `HERALD_<SECTION>_<KEY>` with SECTION one of
// SERVER, STORE, HISTORY, AUTH, LOG sets <section>.<key> (KEY lowercased; lists are
// comma-separated; HERALD_AUTH_ANONYMOUS_SUBSCRIBE sets auth.anonymous.subscribe) and wins
// over PORT; other HERALD_ variables (HERALD_URL, HERALD_TOKEN...) are not config and are
// ignored. auth.tokens can only be set in the file.
[[nodiscard]] Config load(const std::string& path, const std::map<std::string, std::string>& env,
                          const std::vector<std::pair<std::string, std::string>>& overrides);

// load() with the file's TOML text given rather than read: `source` names it in errors and
// becomes Config::source. For the fuzz target and tests; the server reads a file.
[[nodiscard]] Config load_text(std::string_view text, const std::string& source,
                               const std::map<std::string, std::string>& env,
                               const std::vector<std::pair<std::string, std::string>>& overrides);

// A snapshot of the process environment, for load().
[[nodiscard]] std::map<std::string, std::string> environment();

} // namespace herald::config
