// Loading the configuration: a table of every settable key with its parser and checks,
// applied to the TOML file, then the environment, then the flags. Exceptions are used here
// (and only at start-up): a bad config stops the process with a ConfigError.
#include "config/config.hpp"

#include <toml++/toml.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>

namespace herald::config {

namespace {

constexpr std::array<std::string_view, 6> kSections = {"server",  "store", "cluster",
                                                       "history", "auth",  "log"};
constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};
// TOML integers are 64-bit signed: the largest value any key can hold.
constexpr std::uint64_t kNoMax =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::string_view kEnvPrefix = "HERALD_";
constexpr std::string_view kCommandLine = "command line";

// A string as it would be written in TOML, for messages: quoted, with escapes.
std::string quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                constexpr std::string_view kHex = "0123456789ABCDEF";
                const auto u = static_cast<unsigned char>(c);
                out += "\\u00";
                out += kHex[u >> 4];
                out += kHex[u & 0xF];
            } else {
                out += c;
            }
        }
    }
    out += '"';
    return out;
}

std::string compose(const std::string& source, const std::string& key, const std::string& reason) {
    if (key.empty()) {
        return source + ": " + reason;
    }
    // TOML lets a quoted key hold any character: one with a control character is shown
    // quoted, as a NUL would end what() there and a line break split the message.
    const bool plain = std::none_of(key.begin(), key.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    return source + ": " + (plain ? key : quote(key)) + ": " + reason;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string join(const auto& items) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) {
            out += ", ";
        }
        out += item;
    }
    return out;
}

// One value to apply to one key: a node from the TOML file, or text from an environment
// variable or a flag. Each accessor checks the type and throws a ConfigError naming the
// source and the key.
class Input {
public:
    Input(const std::string& source, std::string key, const toml::node& node)
        : source_(source), key_(std::move(key)), node_(&node) {}
    Input(const std::string& source, std::string key, std::string_view text)
        : source_(source), key_(std::move(key)), text_(text) {}

    [[noreturn]] void fail(const std::string& reason) const {
        throw ConfigError(source_, key_, reason);
    }

    // What was given, for messages: a string quoted, a number as written, else its kind.
    [[nodiscard]] std::string given() const {
        if (node_ == nullptr) {
            return quote(text_);
        }
        if (const auto* s = node_->as_string()) {
            return quote(s->get());
        }
        if (node_->is_array()) {
            return "an array";
        }
        if (node_->is_table()) {
            return "a table";
        }
        std::ostringstream os;
        node_->visit([&os](const auto& v) { os << v; });
        return os.str();
    }

    [[nodiscard]] std::uint64_t integer(std::uint64_t min, std::uint64_t max) const {
        std::optional<std::uint64_t> value;
        if (node_ != nullptr) {
            if (const auto* i = node_->as_integer(); i != nullptr && i->get() >= 0) {
                value = static_cast<std::uint64_t>(i->get());
            }
        } else {
            // Strict: digits only, no sign, no spaces, no trailing text.
            std::uint64_t v = 0;
            const char* const end = text_.data() + text_.size();
            const auto res = std::from_chars(text_.data(), end, v);
            if (!text_.empty() && text_.front() != '-' && text_.front() != '+' &&
                res.ec == std::errc() && res.ptr == end) {
                value = v;
            }
        }
        if (!value || *value < min || *value > max) {
            std::string expected;
            if (min == 0 && max == kNoMax) {
                expected = "a non-negative integer";
            } else if (max == kNoMax) {
                expected = "an integer of at least " + std::to_string(min);
            } else {
                expected = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
            }
            fail("expected " + expected + ", got " + given());
        }
        return *value;
    }

    [[nodiscard]] std::string string() const {
        if (node_ == nullptr) {
            return std::string(text_);
        }
        if (const auto* s = node_->as_string()) {
            return s->get();
        }
        fail("expected a string, got " + given());
    }

    // A TOML array of strings, or comma-separated text (items trimmed, empty ones dropped).
    [[nodiscard]] std::vector<std::string> strings() const {
        std::vector<std::string> out;
        if (node_ == nullptr) {
            std::size_t start = 0;
            while (start <= text_.size()) {
                const std::size_t comma = std::min(text_.find(',', start), text_.size());
                std::string_view item = text_.substr(start, comma - start);
                const auto first = item.find_first_not_of(" \t");
                if (first != std::string_view::npos) {
                    item = item.substr(first, item.find_last_not_of(" \t") - first + 1);
                    out.emplace_back(item);
                }
                start = comma + 1;
            }
            return out;
        }
        const auto* arr = node_->as_array();
        if (arr == nullptr) {
            fail("expected an array of strings, got " + given());
        }
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto* s = (*arr)[i].as_string();
            if (s == nullptr) {
                Input item(source_, key_ + "[" + std::to_string(i) + "]", (*arr)[i]);
                item.fail("expected a string, got " + item.given());
            }
            out.push_back(s->get());
        }
        return out;
    }

    [[nodiscard]] bool boolean() const {
        if (node_ != nullptr) {
            if (const auto* b = node_->as_boolean()) {
                return b->get();
            }
        } else if (text_ == "true" || text_ == "false") {
            return text_ == "true";
        }
        fail("expected true or false, got " + given());
    }

    // One of `choices`, exactly.
    template <std::size_t N>
    [[nodiscard]] std::string one_of(const std::array<std::string_view, N>& choices) const {
        std::string value = string();
        for (const auto choice : choices) {
            if (value == choice) {
                return value;
            }
        }
        fail("expected one of " + join(choices) + ", got " + given());
    }

private:
    const std::string& source_;
    std::string key_;
    const toml::node* node_ = nullptr;
    std::string_view text_;
};

// A store URL as errors may show it: a Redis password replaced by ***.
std::string hide_password(std::string_view url) {
    constexpr std::string_view kRedis = "redis://";
    const auto at = url.rfind('@');
    if (!url.starts_with(kRedis) || at == std::string_view::npos) {
        return std::string(url);
    }
    const std::string_view userinfo = url.substr(kRedis.size(), at - kRedis.size());
    const auto colon = userinfo.find(':');
    const std::string_view user =
        colon == std::string_view::npos ? std::string_view() : userinfo.substr(0, colon);
    return std::string(kRedis) + std::string(user) + ":***" + std::string(url.substr(at));
}

bool is_store_url(std::string_view url) {
    if (url == "memory") {
        return true;
    }
    if (url.starts_with("sqlite:")) {
        return url.size() > std::string_view("sqlite:").size();
    }
    constexpr std::string_view kRedis = "redis://";
    if (!url.starts_with(kRedis)) {
        return false;
    }
    // A password may hold any character; the store parses the rest (and says what is
    // wrong, without the password). Here: a HOST:PORT after it, and a DB number if any.
    std::string_view rest = url.substr(kRedis.size());
    if (const auto at = rest.rfind('@'); at != rest.npos) {
        rest = rest.substr(at + 1);
    }
    if (const auto slash = rest.find('/'); slash != rest.npos) {
        const std::string_view db = rest.substr(slash + 1);
        if (db.empty() || db.size() > 5 ||
            db.find_first_not_of("0123456789") != std::string_view::npos) {
            return false;
        }
        rest = rest.substr(0, slash);
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || rest.find('/') != rest.npos) {
        return false;
    }
    const std::string_view port = rest.substr(colon + 1);
    unsigned value = 0;
    const auto res = std::from_chars(port.data(), port.data() + port.size(), value);
    return !port.empty() && port.front() != '+' && res.ec == std::errc() &&
           res.ptr == port.data() + port.size() && value >= 1 && value <= 65535;
}

// Every key that a file, a variable or a flag may set, with what it accepts.
struct Setting {
    std::string_view key;
    void (*apply)(Config& cfg, const Input& in);
};

const std::array kSettings = {
    Setting{"server.host",
            [](Config& c, const Input& in) {
                c.server.host = in.string();
                if (c.server.host.empty()) {
                    in.fail("expected a host name or address, got \"\"");
                }
            }},
    Setting{"server.port",
            [](Config& c, const Input& in) {
                c.server.port = static_cast<std::uint16_t>(in.integer(0, 65535));
            }},
    Setting{"server.threads",
            [](Config& c, const Input& in) {
                c.server.threads = static_cast<unsigned>(in.integer(0, 1024));
            }},
    Setting{"server.keepalive_seconds",
            [](Config& c, const Input& in) {
                c.server.keepalive_seconds = static_cast<unsigned>(in.integer(1, 3600));
            }},
    Setting{"server.retry_ms",
            [](Config& c, const Input& in) {
                c.server.retry_ms = static_cast<unsigned>(in.integer(0, 86400000));
            }},
    Setting{"server.max_body_bytes",
            [](Config& c, const Input& in) { c.server.max_body_bytes = in.integer(1, kNoMax); }},
    Setting{
        "server.slow_client_bytes",
        [](Config& c, const Input& in) { c.server.slow_client_bytes = in.integer(1024, kNoMax); }},
    Setting{"server.max_queued_bytes",
            [](Config& c, const Input& in) { c.server.max_queued_bytes = in.integer(0, kNoMax); }},
    Setting{"server.stream_send_buffer_bytes",
            [](Config& c, const Input& in) {
                c.server.stream_send_buffer_bytes = in.integer(0, 64 * 1024 * 1024);
            }},
    Setting{"server.cors_origins",
            [](Config& c, const Input& in) { c.server.cors_origins = in.strings(); }},
    Setting{"server.static", [](Config& c, const Input& in) { c.server.static_dir = in.string(); }},
    Setting{"server.write_timeout_seconds",
            [](Config& c, const Input& in) {
                c.server.write_timeout_seconds = static_cast<unsigned>(in.integer(1, 3600));
            }},
    Setting{"server.request_timeout_seconds",
            [](Config& c, const Input& in) {
                c.server.request_timeout_seconds = static_cast<unsigned>(in.integer(1, 3600));
            }},
    Setting{"server.max_topics_per_event",
            [](Config& c, const Input& in) {
                c.server.max_topics_per_event = static_cast<unsigned>(in.integer(1, 10000));
            }},
    Setting{"server.max_topics_per_subscription",
            [](Config& c, const Input& in) {
                c.server.max_topics_per_subscription = static_cast<unsigned>(in.integer(1, 10000));
            }},
    Setting{"server.max_connections",
            [](Config& c, const Input& in) { c.server.max_connections = in.integer(0, kNoMax); }},
    Setting{"server.max_connections_per_ip",
            [](Config& c, const Input& in) {
                c.server.max_connections_per_ip = in.integer(0, kNoMax);
            }},
    Setting{"server.trusted_proxies",
            [](Config& c, const Input& in) {
                c.server.trusted_proxies.clear();
                for (const std::string& item : in.strings()) {
                    auto parsed = base::IpNetwork::parse(item);
                    if (!parsed.network) {
                        in.fail(parsed.error);
                    }
                    c.server.trusted_proxies.push_back(*parsed.network);
                }
            }},
    Setting{"store.url",
            [](Config& c, const Input& in) {
                c.store.url = in.string();
                if (!is_store_url(c.store.url)) {
                    in.fail("expected memory, sqlite:PATH or redis://[:PASSWORD@]HOST:PORT[/DB], "
                            "got " +
                            quote(hide_password(c.store.url)));
                }
            }},
    Setting{"store.sync",
            [](Config& c, const Input& in) {
                constexpr std::array<std::string_view, 2> kModes = {"full", "normal"};
                c.store.sync = in.one_of(kModes) == "full" ? SyncMode::full : SyncMode::normal;
            }},
    Setting{"store.timeout_ms",
            [](Config& c, const Input& in) {
                c.store.timeout_ms = static_cast<unsigned>(in.integer(10, 600000));
            }},
    Setting{"cluster.node_name",
            [](Config& c, const Input& in) {
                c.cluster.node_name = in.string();
                const auto& name = c.cluster.node_name;
                const bool printable = std::all_of(name.begin(), name.end(), [](char ch) {
                    return static_cast<unsigned char>(ch) > 0x20 && ch != 0x7f;
                });
                if (name.empty() || name.size() > 200 || !printable) {
                    in.fail("expected 1 to 200 printable characters without spaces");
                }
            }},
    Setting{"store.cache_events",
            [](Config& c, const Input& in) { c.store.cache_events = in.integer(0, kNoMax); }},
    Setting{"history.max_events",
            [](Config& c, const Input& in) { c.history.max_events = in.integer(0, kNoMax); }},
    Setting{"history.max_bytes",
            [](Config& c, const Input& in) { c.history.max_bytes = in.integer(0, kNoMax); }},
    Setting{"history.max_age_seconds",
            [](Config& c, const Input& in) {
                c.history.max_age_seconds =
                    static_cast<unsigned>(in.integer(0, std::numeric_limits<unsigned>::max()));
            }},
    Setting{"history.max_topics",
            [](Config& c, const Input& in) { c.history.max_topics = in.integer(0, kNoMax); }},
    Setting{"history.max_total_bytes",
            [](Config& c, const Input& in) { c.history.max_total_bytes = in.integer(0, kNoMax); }},
    Setting{"auth.jwt_secret", [](Config& c, const Input& in) { c.auth.jwt_secret = in.string(); }},
    Setting{"auth.jwt_public_key_file",
            [](Config& c, const Input& in) { c.auth.jwt_public_key_file = in.string(); }},
    Setting{"auth.anonymous.subscribe",
            [](Config& c, const Input& in) { c.auth.anonymous.subscribe = in.strings(); }},
    Setting{"auth.anonymous.publish",
            [](Config& c, const Input& in) { c.auth.anonymous.publish = in.strings(); }},
    Setting{"auth.open_metrics",
            [](Config& c, const Input& in) { c.auth.open_metrics = in.boolean(); }},
    Setting{"log.level", [](Config& c, const Input& in) { c.log.level = in.one_of(kLogLevels); }},
    Setting{"log.access", [](Config& c, const Input& in) { c.log.access = in.boolean(); }},
};

const Setting* find_setting(std::string_view key) {
    for (const auto& s : kSettings) {
        if (s.key == key) {
            return &s;
        }
    }
    return nullptr;
}

bool is_section(std::string_view name) {
    for (const auto s : kSections) {
        if (s == name) {
            return true;
        }
    }
    return false;
}

// The keys of `section` as its file table spells them, for "unknown key" messages.
std::string keys_of(std::string_view section) {
    std::vector<std::string> keys;
    for (const auto& s : kSettings) {
        const auto dot = s.key.find('.');
        if (s.key.substr(0, dot) != section) {
            continue;
        }
        std::string_view name = s.key.substr(dot + 1);
        name = name.substr(0, name.find('.'));
        if (keys.empty() || keys.back() != name) {
            keys.emplace_back(name);
        }
    }
    if (section == "auth") {
        keys.emplace_back("tokens");
    }
    return join(keys);
}

[[noreturn]] void unknown_key(const std::string& source, const std::string& key,
                              std::string_view section) {
    throw ConfigError(source, key,
                      "unknown key (" + std::string(section) + " has " + keys_of(section) + ")");
}

[[noreturn]] void tokens_not_here(const std::string& source) {
    throw ConfigError(source, "auth.tokens",
                      "tokens can only be set in the config file, as [[auth.tokens]] tables");
}

void apply_token(Config& cfg, const std::string& source, const std::string& key,
                 const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
        const Input in(source, key, node);
        in.fail("expected a table, got " + in.given());
    }
    TokenConfig token;
    bool has_token = false;
    for (auto&& [k, v] : *table) {
        const std::string name(k.str());
        const Input in(source, key + "." + name, v);
        if (name == "token") {
            token.token = in.string();
            if (token.token.empty()) {
                in.fail("expected a non-empty string");
            }
            has_token = true;
        } else if (name == "subscribe") {
            token.subscribe = in.strings();
        } else if (name == "publish") {
            token.publish = in.strings();
        } else if (name == "admin") {
            token.admin = in.boolean();
        } else {
            in.fail("unknown key (a token has token, subscribe, publish, admin)");
        }
    }
    if (!has_token) {
        throw ConfigError(source, key + ".token", "missing: every token needs a non-empty token");
    }
    for (std::size_t i = 0; i < cfg.auth.tokens.size(); ++i) {
        if (cfg.auth.tokens[i].token == token.token) {
            throw ConfigError(source, key + ".token",
                              "the same token as auth.tokens[" + std::to_string(i) + "]");
        }
    }
    cfg.auth.tokens.push_back(std::move(token));
}

void apply_toml(Config& cfg, std::string_view text, const std::string& path);

void apply_file(Config& cfg, const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        throw ConfigError(path, "", std::string("cannot open: ") + std::strerror(errno));
    }
    std::ostringstream text;
    text << file.rdbuf();
    if (file.bad()) {
        throw ConfigError(path, "", std::string("cannot read: ") + std::strerror(errno));
    }
    apply_toml(cfg, text.str(), path);
}

void apply_toml(Config& cfg, std::string_view text, const std::string& path) {
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        throw ConfigError(path, "",
                          "line " + std::to_string(where.line) + ", column " +
                              std::to_string(where.column) + ": " + std::string(e.description()));
    }

    cfg.source = path;
    for (auto&& [section_key, section_node] : root) {
        const std::string section(section_key.str());
        const auto* table = section_node.as_table();
        if (!is_section(section)) {
            throw ConfigError(path, section,
                              std::string(table != nullptr ? "unknown section" : "unknown key") +
                                  " (the sections are " + join(kSections) + ")");
        }
        if (table == nullptr) {
            const Input in(path, section, section_node);
            in.fail("expected a table ([" + section + "]), got " + in.given());
        }
        for (auto&& [k, v] : *table) {
            const std::string key = section + "." + std::string(k.str());
            if (key == "auth.tokens") {
                const auto* tokens = v.as_array();
                if (tokens == nullptr) {
                    const Input in(path, key, v);
                    in.fail("expected an array of tables ([[auth.tokens]]), got " + in.given());
                }
                for (std::size_t i = 0; i < tokens->size(); ++i) {
                    apply_token(cfg, path, key + "[" + std::to_string(i) + "]", (*tokens)[i]);
                }
            } else if (key == "auth.anonymous") {
                const auto* grants = v.as_table();
                if (grants == nullptr) {
                    const Input in(path, key, v);
                    in.fail("expected a table { subscribe = [...], publish = [...] }, got " +
                            in.given());
                }
                for (auto&& [gk, gv] : *grants) {
                    const std::string grant_key = key + "." + std::string(gk.str());
                    const Setting* s = find_setting(grant_key);
                    if (s == nullptr) {
                        throw ConfigError(path, grant_key,
                                          "unknown key (anonymous has subscribe, publish)");
                    }
                    s->apply(cfg, Input(path, grant_key, gv));
                }
            } else if (const Setting* s = find_setting(key)) {
                s->apply(cfg, Input(path, key, v));
            } else {
                unknown_key(path, key, section);
            }
        }
    }
}

// A flag or variable names one dotted key; text values go through the same checks.
void apply_text(Config& cfg, const std::string& source, const std::string& key,
                std::string_view value) {
    if (key == "auth.tokens") {
        tokens_not_here(source);
    }
    const Setting* s = find_setting(key);
    if (s == nullptr) {
        const std::string section = key.substr(0, key.find('.'));
        if (is_section(section)) {
            unknown_key(source, key, section);
        }
        throw ConfigError(source, key, "unknown key (the sections are " + join(kSections) + ")");
    }
    s->apply(cfg, Input(source, key, value));
}

void apply_env(Config& cfg, const std::map<std::string, std::string>& env) {
    if (const auto port = env.find("PORT"); port != env.end()) {
        apply_text(cfg, "environment PORT", "server.port", port->second);
    }
    for (const auto& [name, value] : env) {
        if (!std::string_view(name).starts_with(kEnvPrefix)) {
            continue;
        }
        const std::string_view rest = std::string_view(name).substr(kEnvPrefix.size());
        const auto sep = rest.find('_');
        const std::string section = to_lower(rest.substr(0, sep));
        if (!is_section(section)) {
            continue; // HERALD_URL, HERALD_TOKEN, HERALD_BIN...: not config
        }
        const std::string source = "environment " + name;
        const std::string word =
            sep == std::string_view::npos ? "" : to_lower(rest.substr(sep + 1));
        if (word.empty()) {
            throw ConfigError(source, section,
                              "no key named; set HERALD_" + std::string(rest.substr(0, sep)) +
                                  "_<KEY>");
        }
        // A variable spells nested keys with '_': HERALD_AUTH_ANONYMOUS_SUBSCRIBE.
        std::string key = section + "." + word;
        for (const auto& s : kSettings) {
            std::string spelled(s.key);
            for (std::size_t i = section.size() + 1; i < spelled.size(); ++i) {
                if (spelled[i] == '.') {
                    spelled[i] = '_';
                }
            }
            if (spelled == key) {
                key = s.key;
                break;
            }
        }
        apply_text(cfg, source, key, value);
    }
}

} // namespace

ConfigError::ConfigError(std::string source, std::string key, std::string reason)
    : std::runtime_error(compose(source, key, reason)), source_(std::move(source)),
      key_(std::move(key)), reason_(std::move(reason)) {}

namespace {

// The environment, then the flags, over what the file gave.
Config finish(Config cfg, const std::map<std::string, std::string>& env,
              const std::vector<std::pair<std::string, std::string>>& overrides) {
    apply_env(cfg, env);
    const std::string source(kCommandLine);
    for (const auto& [key, value] : overrides) {
        apply_text(cfg, source, key, value);
    }
    return cfg;
}

} // namespace

Config load(const std::string& path, const std::map<std::string, std::string>& env,
            const std::vector<std::pair<std::string, std::string>>& overrides) {
    Config cfg;
    if (!path.empty()) {
        apply_file(cfg, path);
    }
    return finish(std::move(cfg), env, overrides);
}

Config load_text(std::string_view text, const std::string& source,
                 const std::map<std::string, std::string>& env,
                 const std::vector<std::pair<std::string, std::string>>& overrides) {
    Config cfg;
    apply_toml(cfg, text, source);
    return finish(std::move(cfg), env, overrides);
}

std::map<std::string, std::string> environment() {
    std::map<std::string, std::string> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view var(*entry);
        const auto eq = var.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        env.emplace(var.substr(0, eq), var.substr(eq + 1));
    }
    return env;
}

std::string password_hidden(std::string_view url) {
    return hide_password(url);
}

} // namespace herald::config
