// Tests for config loading: defaults, a full file, the environment and flags with their
// precedence, and every kind of error with the source and key it must name.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace herald::config {
namespace {

using Env = std::map<std::string, std::string>;
using Flags = std::vector<std::pair<std::string, std::string>>;

// A config file in a fresh temporary folder, removed with the fixture.
class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/herald-config-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::remove(path_.c_str());
        ::rmdir(dir_.c_str());
    }

    const std::string& write(const std::string& text) {
        path_ = dir_ + "/herald.toml";
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out << text;
        return path_;
    }

    // The error that loading `text` as a file throws.
    ConfigError file_error(const std::string& text) {
        const std::string& path = write(text);
        try {
            (void)load(path, {}, {});
        } catch (const ConfigError& e) {
            return e;
        }
        ADD_FAILURE() << "no error for: " << text;
        return ConfigError("", "", "");
    }

    std::string dir_;
    std::string path_;
};

ConfigError env_error(const Env& env) {
    try {
        (void)load("", env, {});
    } catch (const ConfigError& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return ConfigError("", "", "");
}

ConfigError flag_error(const Flags& flags) {
    try {
        (void)load("", {}, flags);
    } catch (const ConfigError& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return ConfigError("", "", "");
}

TEST(Config, Defaults) {
    const Config c = load("", {}, {});
    EXPECT_EQ(c.server.host, "0.0.0.0");
    EXPECT_EQ(c.server.port, 8080);
    EXPECT_EQ(c.server.threads, 0U);
    EXPECT_EQ(c.server.keepalive_seconds, 15U);
    EXPECT_EQ(c.server.retry_ms, 3000U);
    EXPECT_EQ(c.server.max_body_bytes, 1048576U);
    EXPECT_EQ(c.server.slow_client_bytes, 1048576U);
    EXPECT_TRUE(c.server.cors_origins.empty());
    EXPECT_EQ(c.server.static_dir, "");
    EXPECT_EQ(c.server.request_timeout_seconds, 10U);
    EXPECT_EQ(c.server.max_topics_per_event, 64U);
    EXPECT_EQ(c.server.max_topics_per_subscription, 1000U);
    EXPECT_EQ(c.store.url, "memory");
    EXPECT_EQ(c.store.sync, SyncMode::full);
    EXPECT_EQ(c.store.cache_events, 1000U);
    EXPECT_EQ(c.history.max_events, 10000U);
    EXPECT_EQ(c.history.max_bytes, 5000000U);
    EXPECT_EQ(c.history.max_age_seconds, 0U);
    EXPECT_EQ(c.history.max_topics, 100000U);
    EXPECT_EQ(c.history.max_total_bytes, 536870912U);
    EXPECT_EQ(c.auth.jwt_secret, "");
    EXPECT_EQ(c.auth.jwt_public_key_file, "");
    EXPECT_TRUE(c.auth.anonymous.subscribe.empty());
    EXPECT_TRUE(c.auth.anonymous.publish.empty());
    EXPECT_TRUE(c.auth.tokens.empty());
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.source, "");
}

TEST(ConfigError, Message) {
    const ConfigError e("herald.toml", "server.port", "bad");
    EXPECT_STREQ(e.what(), "herald.toml: server.port: bad");
    EXPECT_EQ(e.source(), "herald.toml");
    EXPECT_EQ(e.key(), "server.port");
    EXPECT_EQ(e.reason(), "bad");
    EXPECT_STREQ(ConfigError("f", "", "r").what(), "f: r");
}

TEST_F(ConfigTest, FullFile) {
    const std::string& path = write(R"(
# Every key.
[server]
host = "127.0.0.1"
port = 9090
threads = 4
keepalive_seconds = 30
retry_ms = 500
max_body_bytes = 2048
slow_client_bytes = 4096
cors_origins = ["https://app.example.com", "http://localhost:3000"]
static = "/srv/www"
request_timeout_seconds = 5
max_topics_per_event = 8
max_topics_per_subscription = 20

[store]
url = "sqlite:/var/lib/herald/events.db"
sync = "normal"
cache_events = 50

[history]
max_events = 100
max_bytes = 0
max_age_seconds = 3600
max_topics = 500
max_total_bytes = 0

[auth]
jwt_secret = "s3cret"
jwt_public_key_file = "/etc/herald/key.pem"
anonymous = { subscribe = ["public/{id}", "news"], publish = [] }

[[auth.tokens]]
token = "foo"
subscribe = ["TicketFoo"]
publish = []
admin = false

[[auth.tokens]]
token = "root"
subscribe = ["*"]
publish = ["*"]
admin = true

[[auth.tokens]]
token = "bare"

[log]
level = "debug"
)");
    const Config c = load(path, {}, {});
    EXPECT_EQ(c.source, path);
    EXPECT_EQ(c.server.host, "127.0.0.1");
    EXPECT_EQ(c.server.port, 9090);
    EXPECT_EQ(c.server.threads, 4U);
    EXPECT_EQ(c.server.keepalive_seconds, 30U);
    EXPECT_EQ(c.server.retry_ms, 500U);
    EXPECT_EQ(c.server.max_body_bytes, 2048U);
    EXPECT_EQ(c.server.slow_client_bytes, 4096U);
    EXPECT_EQ(c.server.cors_origins,
              (std::vector<std::string>{"https://app.example.com", "http://localhost:3000"}));
    EXPECT_EQ(c.server.static_dir, "/srv/www");
    EXPECT_EQ(c.server.request_timeout_seconds, 5U);
    EXPECT_EQ(c.server.max_topics_per_event, 8U);
    EXPECT_EQ(c.server.max_topics_per_subscription, 20U);
    EXPECT_EQ(c.store.url, "sqlite:/var/lib/herald/events.db");
    EXPECT_EQ(c.store.sync, SyncMode::normal);
    EXPECT_EQ(c.store.cache_events, 50U);
    EXPECT_EQ(c.history.max_events, 100U);
    EXPECT_EQ(c.history.max_bytes, 0U);
    EXPECT_EQ(c.history.max_age_seconds, 3600U);
    EXPECT_EQ(c.history.max_topics, 500U);
    EXPECT_EQ(c.history.max_total_bytes, 0U);
    EXPECT_EQ(c.auth.jwt_secret, "s3cret");
    EXPECT_EQ(c.auth.jwt_public_key_file, "/etc/herald/key.pem");
    EXPECT_EQ(c.auth.anonymous.subscribe, (std::vector<std::string>{"public/{id}", "news"}));
    EXPECT_TRUE(c.auth.anonymous.publish.empty());
    ASSERT_EQ(c.auth.tokens.size(), 3U);
    EXPECT_EQ(c.auth.tokens[0].token, "foo");
    EXPECT_EQ(c.auth.tokens[0].subscribe, std::vector<std::string>{"TicketFoo"});
    EXPECT_TRUE(c.auth.tokens[0].publish.empty());
    EXPECT_FALSE(c.auth.tokens[0].admin);
    EXPECT_EQ(c.auth.tokens[1].token, "root");
    EXPECT_EQ(c.auth.tokens[1].publish, std::vector<std::string>{"*"});
    EXPECT_TRUE(c.auth.tokens[1].admin);
    EXPECT_EQ(c.auth.tokens[2].token, "bare");
    EXPECT_TRUE(c.auth.tokens[2].subscribe.empty());
    EXPECT_FALSE(c.auth.tokens[2].admin);
    EXPECT_EQ(c.log.level, "debug");
}

TEST_F(ConfigTest, EmptyFileKeepsDefaults) {
    const Config c = load(write(""), {}, {});
    EXPECT_EQ(c.server.port, 8080);
    EXPECT_EQ(c.source, path_);
}

TEST_F(ConfigTest, AnonymousAsSectionTable) {
    const Config c =
        load(write("[auth.anonymous]\nsubscribe = [\"a\"]\npublish = [\"b\"]\n"), {}, {});
    EXPECT_EQ(c.auth.anonymous.subscribe, std::vector<std::string>{"a"});
    EXPECT_EQ(c.auth.anonymous.publish, std::vector<std::string>{"b"});
}

TEST_F(ConfigTest, StoreUrls) {
    for (const char* url : {"memory", "sqlite:x.db", "sqlite:/a/b c.db", "redis://localhost:6379",
                            "redis://10.0.0.1:1", "redis://[::1]:65535", "redis://host:6379/0",
                            "redis://:s3cret@host:6379/2", "redis://user:p@ss:w/rd@host:1"}) {
        EXPECT_EQ(load(write(std::string("[store]\nurl = \"") + url + "\"\n"), {}, {}).store.url,
                  url);
    }
    for (const char* url :
         {"", "Memory", "sqlite:", "sqlite", "redis://localhost", "redis://:6379", "redis://host:0",
          "redis://host:65536", "redis://host:63x9", "redis://host:6379/", "redis://host:1/x",
          "redis://host:", "postgres://x:1", "redis://host:+6379"}) {
        const auto e = file_error(std::string("[store]\nurl = \"") + url + "\"\n");
        EXPECT_EQ(e.key(), "store.url") << url;
        EXPECT_EQ(e.reason(), std::string("expected memory, sqlite:PATH or "
                                          "redis://[:PASSWORD@]HOST:PORT[/DB], got \"") +
                                  url + "\"");
    }
    // A password never appears in an error.
    const auto e = file_error("[store]\nurl = \"redis://:s3cret@host:0\"\n");
    EXPECT_EQ(e.reason(), "expected memory, sqlite:PATH or redis://[:PASSWORD@]HOST:PORT[/DB], "
                          "got \"redis://:***@host:0\"");
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos);
}

TEST_F(ConfigTest, StoreUrlWithControlCharactersIsShownEscaped) {
    // As every other value: a NUL would end what() there, a line break split the message.
    const auto e = file_error("[store]\nurl = \"memory\\u0000\\n\"\n");
    EXPECT_EQ(e.reason(), "expected memory, sqlite:PATH or redis://[:PASSWORD@]HOST:PORT[/DB], "
                          "got \"memory\\u0000\\n\"");
    EXPECT_EQ(std::string(e.what()), path_ + ": store.url: " + e.reason());
}

TEST_F(ConfigTest, MissingFile) {
    const std::string missing = dir_ + "/nope.toml";
    try {
        (void)load(missing, {}, {});
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.source(), missing);
        EXPECT_EQ(e.key(), "");
        EXPECT_EQ(e.reason(), "cannot open: No such file or directory");
        EXPECT_EQ(std::string(e.what()), missing + ": cannot open: No such file or directory");
    }
}

TEST_F(ConfigTest, UnparsableFileGivesPosition) {
    const auto e = file_error("[server]\nport = 80\nhost = \n");
    EXPECT_EQ(e.source(), path_);
    EXPECT_EQ(e.key(), "");
    EXPECT_EQ(e.reason().rfind("line 3, column ", 0), 0U) << e.reason();
    const auto dup = file_error("[server]\nport = 1\nport = 2\n");
    EXPECT_EQ(dup.reason().rfind("line 3, column ", 0), 0U) << dup.reason();
}

TEST_F(ConfigTest, UnknownSection) {
    const auto e = file_error("[sever]\nport = 1\n");
    EXPECT_EQ(e.source(), path_);
    EXPECT_EQ(e.key(), "sever");
    EXPECT_EQ(e.reason(),
              "unknown section (the sections are server, store, cluster, history, auth, log)");
    EXPECT_EQ(std::string(e.what()), path_ + ": sever: " + e.reason());
}

TEST_F(ConfigTest, KeyOutsideSection) {
    const auto e = file_error("port = 1\n");
    EXPECT_EQ(e.key(), "port");
    EXPECT_EQ(e.reason().rfind("unknown key", 0), 0U);
}

TEST_F(ConfigTest, SectionNotATable) {
    const auto e = file_error("server = 5\n");
    EXPECT_EQ(e.key(), "server");
    EXPECT_EQ(e.reason(), "expected a table ([server]), got 5");
}

TEST_F(ConfigTest, UnknownKeys) {
    auto e = file_error("[server]\nprot = 1\n");
    EXPECT_EQ(e.key(), "server.prot");
    EXPECT_EQ(e.reason().rfind("unknown key (server has host, port, threads", 0), 0U) << e.reason();
    e = file_error("[history]\nmax_event = 1\n");
    EXPECT_EQ(e.key(), "history.max_event");
    EXPECT_EQ(e.reason(),
              "unknown key (history has max_events, max_bytes, max_age_seconds, max_topics, "
              "max_total_bytes)");
    e = file_error("[auth]\nanonymous = { subscribe = [], publsh = [] }\n");
    EXPECT_EQ(e.key(), "auth.anonymous.publsh");
    e = file_error("[[auth.tokens]]\ntoken = \"t\"\nadmn = true\n");
    EXPECT_EQ(e.key(), "auth.tokens[0].admn");
    e = file_error("[server.sub]\nx = 1\n");
    EXPECT_EQ(e.key(), "server.sub");
}

TEST_F(ConfigTest, KeyWithControlCharactersIsShownQuoted) {
    // TOML lets a quoted key hold any character: a NUL would end what() there, a line break
    // would split the message.
    const auto e = file_error("[server]\n\"a\\u0000b\\nc\" = 1\n");
    EXPECT_EQ(e.key(), std::string("server.a\0b\nc", 12));
    EXPECT_EQ(e.reason().rfind("unknown key", 0), 0U);
    EXPECT_EQ(std::string(e.what()), path_ + ": \"server.a\\u0000b\\nc\": " + e.reason());
}

TEST_F(ConfigTest, WrongTypes) {
    auto e = file_error("[server]\nport = \"abc\"\n");
    EXPECT_EQ(std::string(e.what()),
              path_ + ": server.port: expected an integer from 0 to 65535, got \"abc\"");
    e = file_error("[server]\nport = 80.5\n");
    EXPECT_EQ(e.reason(), "expected an integer from 0 to 65535, got 80.5");
    e = file_error("[server]\nport = true\n");
    EXPECT_EQ(e.reason(), "expected an integer from 0 to 65535, got true");
    e = file_error("[server]\nhost = 1\n");
    EXPECT_EQ(e.key(), "server.host");
    EXPECT_EQ(e.reason(), "expected a string, got 1");
    e = file_error("[server]\ncors_origins = \"https://a\"\n");
    EXPECT_EQ(e.key(), "server.cors_origins");
    EXPECT_EQ(e.reason(), "expected an array of strings, got \"https://a\"");
    e = file_error("[server]\ncors_origins = [\"a\", 2]\n");
    EXPECT_EQ(e.key(), "server.cors_origins[1]");
    EXPECT_EQ(e.reason(), "expected a string, got 2");
    e = file_error("[server]\nstatic = [\"a\"]\n");
    EXPECT_EQ(e.reason(), "expected a string, got an array");
    e = file_error("[store]\nsync = { a = 1 }\n");
    EXPECT_EQ(e.reason(), "expected a string, got a table");
    e = file_error("[auth]\nanonymous = [\"x\"]\n");
    EXPECT_EQ(e.key(), "auth.anonymous");
    e = file_error("[auth]\ntokens = \"x\"\n");
    EXPECT_EQ(e.key(), "auth.tokens");
    e = file_error("[auth]\ntokens = [\"x\"]\n");
    EXPECT_EQ(e.key(), "auth.tokens[0]");
    EXPECT_EQ(e.reason(), "expected a table, got \"x\"");
    e = file_error("[[auth.tokens]]\ntoken = \"t\"\nadmin = \"yes\"\n");
    EXPECT_EQ(e.key(), "auth.tokens[0].admin");
    EXPECT_EQ(e.reason(), "expected true or false, got \"yes\"");
    e = file_error("[[auth.tokens]]\ntoken = \"t\"\nsubscribe = \"a\"\n");
    EXPECT_EQ(e.key(), "auth.tokens[0].subscribe");
    e = file_error("[log]\nlevel = \"verbose\"\n");
    EXPECT_EQ(e.key(), "log.level");
    EXPECT_EQ(e.reason(), "expected one of trace, debug, info, warn, error, off, got \"verbose\"");
    e = file_error("[store]\nsync = \"always\"\n");
    EXPECT_EQ(e.reason(), "expected one of full, normal, got \"always\"");
}

TEST_F(ConfigTest, Ranges) {
    struct Case {
        const char* key;
        const char* section_and_value;
        const char* reason;
    };
    const Case cases[] = {
        {"server.port", "[server]\nport = 65536", "expected an integer from 0 to 65535, got 65536"},
        {"server.port", "[server]\nport = -1", "expected an integer from 0 to 65535, got -1"},
        {"server.threads", "[server]\nthreads = 1025",
         "expected an integer from 0 to 1024, got 1025"},
        {"server.keepalive_seconds", "[server]\nkeepalive_seconds = 0",
         "expected an integer from 1 to 3600, got 0"},
        {"server.keepalive_seconds", "[server]\nkeepalive_seconds = 3601",
         "expected an integer from 1 to 3600, got 3601"},
        {"server.retry_ms", "[server]\nretry_ms = 86400001",
         "expected an integer from 0 to 86400000, got 86400001"},
        {"server.max_body_bytes", "[server]\nmax_body_bytes = 0",
         "expected an integer of at least 1, got 0"},
        {"server.slow_client_bytes", "[server]\nslow_client_bytes = 1023",
         "expected an integer of at least 1024, got 1023"},
        {"server.request_timeout_seconds", "[server]\nrequest_timeout_seconds = 0",
         "expected an integer from 1 to 3600, got 0"},
        {"server.request_timeout_seconds", "[server]\nrequest_timeout_seconds = 3601",
         "expected an integer from 1 to 3600, got 3601"},
        {"server.max_topics_per_event", "[server]\nmax_topics_per_event = 0",
         "expected an integer from 1 to 10000, got 0"},
        {"server.max_topics_per_event", "[server]\nmax_topics_per_event = 10001",
         "expected an integer from 1 to 10000, got 10001"},
        {"server.max_topics_per_subscription", "[server]\nmax_topics_per_subscription = 0",
         "expected an integer from 1 to 10000, got 0"},
        {"server.max_topics_per_subscription", "[server]\nmax_topics_per_subscription = 10001",
         "expected an integer from 1 to 10000, got 10001"},
        {"server.max_topics_per_subscription", "[server]\nmax_topics_per_subscription = \"9\"",
         "expected an integer from 1 to 10000, got \"9\""},
        {"history.max_events", "[history]\nmax_events = -5",
         "expected a non-negative integer, got -5"},
        {"history.max_bytes", "[history]\nmax_bytes = -1",
         "expected a non-negative integer, got -1"},
        {"history.max_age_seconds", "[history]\nmax_age_seconds = 4294967296",
         "expected an integer from 0 to 4294967295, got 4294967296"},
        {"history.max_topics", "[history]\nmax_topics = -1",
         "expected a non-negative integer, got -1"},
        {"history.max_total_bytes", "[history]\nmax_total_bytes = \"lots\"",
         "expected a non-negative integer, got \"lots\""},
    };
    for (const auto& c : cases) {
        const auto e = file_error(std::string(c.section_and_value) + "\n");
        EXPECT_EQ(e.source(), path_);
        EXPECT_EQ(e.key(), c.key);
        EXPECT_EQ(e.reason(), c.reason);
    }
    // The ends of each range are accepted.
    const Config c = load(write("[server]\nport = 0\nthreads = 1024\nkeepalive_seconds = 3600\n"
                                "retry_ms = 86400000\nmax_body_bytes = 1\n"
                                "slow_client_bytes = 1024\nrequest_timeout_seconds = 3600\n"
                                "max_topics_per_event = 10000\n"
                                "max_topics_per_subscription = 10000\n"
                                "[history]\nmax_age_seconds = 4294967295\n"),
                          {}, {});
    EXPECT_EQ(c.server.port, 0);
    EXPECT_EQ(c.server.threads, 1024U);
    EXPECT_EQ(c.server.retry_ms, 86400000U);
    EXPECT_EQ(c.server.max_topics_per_event, 10000U);
    EXPECT_EQ(c.server.max_topics_per_subscription, 10000U);
    EXPECT_EQ(c.history.max_age_seconds, 4294967295U);
}

TEST_F(ConfigTest, TokenErrors) {
    auto e = file_error("[[auth.tokens]]\nsubscribe = [\"a\"]\n");
    EXPECT_EQ(e.key(), "auth.tokens[0].token");
    EXPECT_EQ(e.reason(), "missing: every token needs a non-empty token");
    e = file_error("[[auth.tokens]]\ntoken = \"a\"\n[[auth.tokens]]\ntoken = \"\"\n");
    EXPECT_EQ(e.key(), "auth.tokens[1].token");
    EXPECT_EQ(e.reason(), "expected a non-empty string");
    e = file_error("[[auth.tokens]]\ntoken = 5\n");
    EXPECT_EQ(e.key(), "auth.tokens[0].token");
    EXPECT_EQ(e.reason(), "expected a string, got 5");
    e = file_error("[[auth.tokens]]\ntoken = \"dup-secret\"\n[[auth.tokens]]\n"
                   "token = \"dup-secret\"\n");
    EXPECT_EQ(e.key(), "auth.tokens[1].token");
    EXPECT_EQ(e.reason(), "the same token as auth.tokens[0]");
    EXPECT_EQ(std::string(e.what()).find("dup-secret"), std::string::npos);
}

TEST(Config, EnvironmentSetsKeys) {
    const Config c = load("",
                          {{"HERALD_SERVER_SLOW_CLIENT_BYTES", "2048"},
                           {"HERALD_SERVER_MAX_TOPICS_PER_SUBSCRIPTION", "1"},
                           {"HERALD_SERVER_CORS_ORIGINS", " https://a.example , ,http://b "},
                           {"HERALD_SERVER_STATIC", "/www"},
                           {"HERALD_STORE_URL", "redis://cache:6379"},
                           {"HERALD_STORE_SYNC", "normal"},
                           {"HERALD_STORE_CACHE_EVENTS", "0"},
                           {"HERALD_HISTORY_MAX_EVENTS", "100"},
                           {"HERALD_HISTORY_MAX_AGE_SECONDS", "60"},
                           {"HERALD_HISTORY_MAX_TOPICS", "1000"},
                           {"HERALD_HISTORY_MAX_TOTAL_BYTES", "1048576"},
                           {"HERALD_AUTH_JWT_SECRET", "k"},
                           {"HERALD_AUTH_ANONYMOUS_SUBSCRIBE", "news,public/{id}"},
                           {"HERALD_AUTH_ANONYMOUS_PUBLISH", ""},
                           {"HERALD_LOG_LEVEL", "warn"}},
                          {});
    EXPECT_EQ(c.server.slow_client_bytes, 2048U);
    EXPECT_EQ(c.server.max_topics_per_subscription, 1U);
    EXPECT_EQ(c.server.cors_origins, (std::vector<std::string>{"https://a.example", "http://b"}));
    EXPECT_EQ(c.server.static_dir, "/www");
    EXPECT_EQ(c.store.url, "redis://cache:6379");
    EXPECT_EQ(c.store.sync, SyncMode::normal);
    EXPECT_EQ(c.store.cache_events, 0U);
    EXPECT_EQ(c.history.max_events, 100U);
    EXPECT_EQ(c.history.max_age_seconds, 60U);
    EXPECT_EQ(c.history.max_topics, 1000U);
    EXPECT_EQ(c.history.max_total_bytes, 1048576U);
    EXPECT_EQ(c.auth.jwt_secret, "k");
    EXPECT_EQ(c.auth.anonymous.subscribe, (std::vector<std::string>{"news", "public/{id}"}));
    EXPECT_TRUE(c.auth.anonymous.publish.empty());
    EXPECT_EQ(c.log.level, "warn");
}

TEST(Config, PortVariable) {
    EXPECT_EQ(load("", {{"PORT", "3000"}}, {}).server.port, 3000);
    // The herald-specific variable is the more deliberate one.
    EXPECT_EQ(load("", {{"PORT", "3000"}, {"HERALD_SERVER_PORT", "4000"}}, {}).server.port, 4000);
    const auto e = env_error({{"PORT", "http"}});
    EXPECT_EQ(e.source(), "environment PORT");
    EXPECT_EQ(e.key(), "server.port");
    EXPECT_STREQ(
        e.what(),
        "environment PORT: server.port: expected an integer from 0 to 65535, got \"http\"");
}

TEST(Config, OtherHeraldVariablesIgnored) {
    const Config c = load("",
                          {{"HERALD_URL", "http://127.0.0.1:8080"},
                           {"HERALD_TOKEN", "t"},
                           {"HERALD_BIN", "/usr/bin/herald"},
                           {"HERALD_", "x"},
                           {"HERALD", "x"},
                           {"HERALD_SERVERS_PORT", "1"},
                           {"HOME", "/root"}},
                          {});
    EXPECT_EQ(c.server.port, 8080);
}

TEST(Config, EnvironmentErrors) {
    auto e = env_error({{"HERALD_HISTORY_MAX_EVENTS", "x"}});
    EXPECT_STREQ(e.what(), "environment HERALD_HISTORY_MAX_EVENTS: history.max_events: expected a "
                           "non-negative integer, got \"x\"");
    e = env_error({{"HERALD_SERVER_PORTT", "1"}});
    EXPECT_EQ(e.source(), "environment HERALD_SERVER_PORTT");
    EXPECT_EQ(e.key(), "server.portt");
    EXPECT_EQ(e.reason().rfind("unknown key", 0), 0U);
    e = env_error({{"HERALD_AUTH_TOKENS", "a,b"}});
    EXPECT_EQ(e.source(), "environment HERALD_AUTH_TOKENS");
    EXPECT_EQ(e.key(), "auth.tokens");
    e = env_error({{"HERALD_LOG", "debug"}});
    EXPECT_EQ(e.source(), "environment HERALD_LOG");
    EXPECT_EQ(e.key(), "log");
    e = env_error({{"HERALD_LOG_LEVEL", "loud"}});
    EXPECT_EQ(e.key(), "log.level");
    e = env_error({{"HERALD_STORE_URL", "sqlite:"}});
    EXPECT_EQ(e.key(), "store.url");
    e = env_error({{"HERALD_STORE_CACHE_EVENTS", "-1"}});
    EXPECT_EQ(e.key(), "store.cache_events");
    EXPECT_STREQ(e.what(), "environment HERALD_STORE_CACHE_EVENTS: store.cache_events: expected a "
                           "non-negative integer, got \"-1\"");
    e = env_error({{"HERALD_SERVER_MAX_TOPICS_PER_SUBSCRIPTION", "0"}});
    EXPECT_STREQ(e.what(), "environment HERALD_SERVER_MAX_TOPICS_PER_SUBSCRIPTION: "
                           "server.max_topics_per_subscription: expected an integer from 1 to "
                           "10000, got \"0\"");
}

TEST(Config, StrictIntegersFromText) {
    for (const char* bad :
         {"", " 80", "80 ", "80x", "0x50", "-1", "+80", "8e1", "1.0", "99999999999999999999999"}) {
        const auto e = env_error({{"HERALD_SERVER_THREADS", bad}});
        EXPECT_EQ(e.key(), "server.threads") << bad;
        EXPECT_EQ(e.reason(),
                  std::string("expected an integer from 0 to 1024, got \"") + bad + "\"");
    }
    EXPECT_EQ(load("", {{"HERALD_SERVER_THREADS", "007"}}, {}).server.threads, 7U);
}

TEST(Config, Flags) {
    const Config c = load("", {},
                          {{"server.port", "0"},
                           {"store.url", "sqlite:/tmp/h.db"},
                           {"server.static", "./public"},
                           {"auth.anonymous.subscribe", "a,b"}});
    EXPECT_EQ(c.server.port, 0);
    EXPECT_EQ(c.store.url, "sqlite:/tmp/h.db");
    EXPECT_EQ(c.server.static_dir, "./public");
    EXPECT_EQ(c.auth.anonymous.subscribe, (std::vector<std::string>{"a", "b"}));
    // Later flags win.
    EXPECT_EQ(load("", {}, {{"server.port", "1"}, {"server.port", "2"}}).server.port, 2);
}

TEST(Config, FlagErrors) {
    auto e = flag_error({{"server.port", "99999"}});
    EXPECT_STREQ(e.what(),
                 "command line: server.port: expected an integer from 0 to 65535, got \"99999\"");
    e = flag_error({{"server.nope", "1"}});
    EXPECT_EQ(e.source(), "command line");
    EXPECT_EQ(e.key(), "server.nope");
    e = flag_error({{"nope.port", "1"}});
    EXPECT_EQ(e.key(), "nope.port");
    e = flag_error({{"auth.tokens", "x"}});
    EXPECT_EQ(e.key(), "auth.tokens");
    EXPECT_EQ(e.reason(), "tokens can only be set in the config file, as [[auth.tokens]] tables");
}

TEST_F(ConfigTest, FlagBeatsEnvironmentBeatsFile) {
    const std::string& path =
        write("[server]\nport = 1111\nthreads = 2\nkeepalive_seconds = 20\n[log]\nlevel = "
              "\"error\"\n");
    const Env env = {{"HERALD_SERVER_PORT", "2222"}, {"HERALD_SERVER_THREADS", "3"}};
    const Flags flags = {{"server.port", "3333"}};
    const Config c = load(path, env, flags);
    EXPECT_EQ(c.server.port, 3333);             // flag
    EXPECT_EQ(c.server.threads, 3U);            // environment over file
    EXPECT_EQ(c.server.keepalive_seconds, 20U); // file over default
    EXPECT_EQ(c.log.level, "error");
    EXPECT_EQ(load(path, {{"PORT", "5555"}}, {}).server.port, 5555);
    EXPECT_EQ(load(path, {}, {}).server.port, 1111);
}

TEST_F(ConfigTest, FileErrorWinsOverLaterSources) {
    const auto& path = write("[server]\nport = \"x\"\n");
    try {
        (void)load(path, {{"HERALD_SERVER_PORT", "1"}}, {{"server.port", "2"}});
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.source(), path);
    }
}

TEST(Config, EnvironmentSnapshot) {
    ASSERT_EQ(::setenv("HERALD_CONFIG_TEST_VAR", "a=b", 1), 0);
    const auto env = environment();
    ASSERT_TRUE(env.contains("HERALD_CONFIG_TEST_VAR"));
    EXPECT_EQ(env.at("HERALD_CONFIG_TEST_VAR"), "a=b");
    ::unsetenv("HERALD_CONFIG_TEST_VAR");
}

TEST_F(ConfigTest, ConnectionLimitsAndTrustedProxies) {
    const Config d = load("", {}, {});
    EXPECT_EQ(d.server.max_connections, 0U); // worked out from the file limit at start
    EXPECT_EQ(d.server.max_connections_per_ip, 0U);
    EXPECT_TRUE(d.server.trusted_proxies.empty());

    const Config c = load(write("[server]\nmax_connections = 5000\nmax_connections_per_ip = 20\n"
                                "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\", "
                                "\"fd00::/8\"]\n"),
                          {}, {});
    EXPECT_EQ(c.server.max_connections, 5000U);
    EXPECT_EQ(c.server.max_connections_per_ip, 20U);
    ASSERT_EQ(c.server.trusted_proxies.size(), 4U);
    EXPECT_EQ(c.server.trusted_proxies[0].to_string(), "127.0.0.1/32");
    EXPECT_EQ(c.server.trusted_proxies[1].to_string(), "10.0.0.0/8");
    EXPECT_EQ(c.server.trusted_proxies[2].to_string(), "::1/128");
    EXPECT_EQ(c.server.trusted_proxies[3].to_string(), "fd00::/8");

    const Config e = load("",
                          {{"HERALD_SERVER_TRUSTED_PROXIES", " 192.0.2.0/24 , 2001:db8::/32"},
                           {"HERALD_SERVER_MAX_CONNECTIONS_PER_IP", "3"}},
                          {});
    ASSERT_EQ(e.server.trusted_proxies.size(), 2U);
    EXPECT_EQ(e.server.trusted_proxies[1].to_string(), "2001:db8::/32");
    EXPECT_EQ(e.server.max_connections_per_ip, 3U);
}

TEST_F(ConfigTest, BadTrustedProxiesAreRefused) {
    auto e = file_error("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nginx\"]\n");
    EXPECT_EQ(e.key(), "server.trusted_proxies");
    EXPECT_EQ(e.reason(), "expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8, 2001:db8::/32), "
                          "got \"nginx\"");
    e = file_error("[server]\ntrusted_proxies = [\"10.0.0.1/8\"]\n");
    EXPECT_EQ(e.reason(), "\"10.0.0.1/8\" has bits set beyond its prefix; did you mean "
                          "\"10.0.0.0/8\"?");
    e = file_error("[server]\ntrusted_proxies = \"10.0.0.0/8\"\n");
    EXPECT_EQ(e.reason(), "expected an array of strings, got \"10.0.0.0/8\"");
    e = file_error("[server]\ntrusted_proxies = [\"::1/129\"]\n");
    EXPECT_EQ(e.reason(), "expected a prefix length from 0 to 128 after the /, got \"::1/129\"");
    const auto env = env_error({{"HERALD_SERVER_TRUSTED_PROXIES", "127.0.0.1,[::1]"}});
    EXPECT_EQ(env.source(), "environment HERALD_SERVER_TRUSTED_PROXIES");
    EXPECT_EQ(env.key(), "server.trusted_proxies");
    e = file_error("[server]\nmax_connections = -1\n");
    EXPECT_EQ(e.key(), "server.max_connections");
    EXPECT_EQ(e.reason(), "expected a non-negative integer, got -1");
    e = file_error("[server]\nmax_connections_per_ip = \"ten\"\n");
    EXPECT_EQ(e.key(), "server.max_connections_per_ip");
}

} // namespace
} // namespace herald::config
