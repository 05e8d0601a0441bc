// Configuration (config/config): TOML text, environment variables and flags the fuzzer
// writes, read by load_text(). Whatever they hold, the answer is a Config or a ConfigError
// (any other exception escaping is a failure), the error names a source the input really
// had and the key it gives, and the same input always gives the same answer.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "fuzz_support.hpp"

namespace {

using herald::config::Config;
using herald::config::ConfigError;

constexpr const char* kFile = "fuzz.toml";

// Keys and variables worth trying, the rest being the fuzzer's own.
constexpr const char* kKeys[] = {"server.port",         "server.host",
                                 "server.threads",      "server.max_body_bytes",
                                 "server.cors_origins", "server.trusted_proxies",
                                 "server.static",       "store.url",
                                 "store.sync",          "store.timeout_ms",
                                 "history.max_events",  "history.max_age_seconds",
                                 "auth.jwt_secret",     "auth.anonymous.publish",
                                 "auth.tokens",         "log.level",
                                 "log.access",          "cluster.node_name"};
constexpr const char* kVariables[] = {"PORT",
                                      "HERALD_SERVER_PORT",
                                      "HERALD_STORE_URL",
                                      "HERALD_AUTH_ANONYMOUS_SUBSCRIBE",
                                      "HERALD_SERVER",
                                      "HERALD_LOG_LEVEL",
                                      "HERALD_URL",
                                      "HERALD_SERVER_TRUSTED_PROXIES",
                                      "HERALD_HISTORY_MAX_BYTES"};

// `s` without NULs and without the characters of `also`.
std::string without(std::string s, std::string_view also) {
    std::erase_if(s,
                  [also](char c) { return c == '\0' || also.find(c) != std::string_view::npos; });
    return s;
}

// A summary of a Config, to tell two answers apart.
std::string digest(const Config& c) {
    std::string out = c.server.host + "|" + std::to_string(c.server.port) + "|" +
                      std::to_string(c.server.threads) + "|" + c.store.url + "|" +
                      std::to_string(c.history.max_events) + "|" + c.auth.jwt_secret + "|" +
                      c.log.level + "|" + c.cluster.node_name + "|" + c.source;
    for (const auto& o : c.server.cors_origins) {
        out += "|" + o;
    }
    out += "|" + std::to_string(c.server.trusted_proxies.size()) + "|" +
           std::to_string(c.auth.tokens.size());
    return out;
}

// The answer: a Config's digest, or the error's text.
std::string answer(const std::string& text, const std::map<std::string, std::string>& env,
                   const std::vector<std::pair<std::string, std::string>>& flags) {
    try {
        const Config c = herald::config::load_text(text, kFile, env, flags);
        HERALD_FUZZ_CHECK(c.source == kFile);
        return "ok " + digest(c);
    } catch (const ConfigError& e) {
        const std::string what = e.what();
        bool known = e.source() == kFile || e.source() == "command line";
        for (const auto& [name, value] : env) {
            known = known || e.source() == "environment " + name;
        }
        HERALD_FUZZ_CHECK(known);
        HERALD_FUZZ_CHECK(what.rfind(e.source() + ": ", 0) == 0);
        HERALD_FUZZ_CHECK(what.find(e.reason()) != std::string::npos);
        // A key with a control character is shown quoted, any other as it is.
        const bool plain = std::none_of(e.key().begin(), e.key().end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        });
        HERALD_FUZZ_CHECK(!plain || what.find(e.key()) != std::string::npos);
        return "error " + what;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    FuzzedDataProvider data(bytes, size);
    std::map<std::string, std::string> env;
    const auto variables = data.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < variables; ++i) {
        std::string name = data.ConsumeBool() ? std::string(data.PickValueInArray(kVariables))
                                              : "HERALD_" + data.ConsumeRandomLengthString(24);
        // An environment holds C strings: no NUL in a name or a value, nor '=' in a name.
        env[without(std::move(name), "=")] = without(data.ConsumeRandomLengthString(64), "");
    }
    std::vector<std::pair<std::string, std::string>> flags;
    const auto count = data.ConsumeIntegralInRange<int>(0, 2);
    for (int i = 0; i < count; ++i) {
        std::string key = data.ConsumeBool() ? std::string(data.PickValueInArray(kKeys))
                                             : data.ConsumeRandomLengthString(24);
        // Flags come from argv: C strings too.
        flags.emplace_back(without(std::move(key), ""),
                           without(data.ConsumeRandomLengthString(64), ""));
    }
    const std::string text = data.ConsumeRemainingBytesAsString();
    const std::string first = answer(text, env, flags);
    HERALD_FUZZ_CHECK(answer(text, env, flags) == first);
    return 0;
}
