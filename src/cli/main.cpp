// The `herald` command: `serve` (the default), `pub` and `sub`. Parses flags with CLI11,
// builds the config (flag beats env beats file) and hands over to the subcommand.
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/server.hpp"
#include "auth/authenticator.hpp"
#include "bench/bench.hpp"
#include "cli/bench_command.hpp"
#include "cli/client.hpp"
#include "config/config.hpp"
#include "demo/demo.hpp"

namespace {

bool is_subcommand(std::string_view arg) {
    return arg == "serve" || arg == "pub" || arg == "sub" || arg == "bench" || arg == "demo";
}

std::string env_or(const char* name, std::string fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? std::string(value) : std::move(fallback);
}

} // namespace

int main(int argc, char** argv) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("herald"));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

    // `serve` is the default: `herald --port 9000` means `herald serve --port 9000`.
    std::vector<std::string> args(argv, argv + argc);
    if (args.size() == 1 || (!is_subcommand(args[1]) && args[1] != "--help" && args[1] != "-h" &&
                             args[1] != "--version")) {
        args.insert(args.begin() + 1, "serve");
    }

    CLI::App app{"herald: a Server-Sent Events hub.\n"
                 "Subscribe with EventSource or curl, publish with an HTTP POST, `herald pub` or "
                 "stdin;\nclients that reconnect with Last-Event-ID miss nothing."};
    app.set_version_flag("--version", std::string(HERALD_VERSION));
    app.require_subcommand(1);

    // serve
    auto* serve = app.add_subcommand(
        "serve", "Run the hub (the default subcommand); its dashboard is at /dashboard/");
    std::string config_path;
    std::optional<std::uint16_t> port;
    std::string host, store, static_dir, log_level, node_name;
    std::optional<unsigned> threads;
    bool publish_stdin = false;
    auto take_last = [](CLI::Option* o) {
        return o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    };
    take_last(serve->add_option("-c,--config", config_path, "TOML config file (herald.toml)"));
    take_last(
        serve->add_option("-p,--port", port, "Port to listen on (default 8080, or PORT; 0: any)"));
    take_last(serve->add_option("--host", host, "Address to listen on (default 0.0.0.0)"));
    take_last(serve->add_option(
        "--store", store,
        "memory (the default), sqlite:PATH (durable) or redis://[:PASSWORD@]HOST:PORT[/DB] "
        "(a cluster: every node given the same Redis serves and resumes any client)"));
    take_last(serve->add_option("--node-name", node_name,
                                "This node's name in X-Herald-Node, /healthz and /cluster "
                                "(default HOSTNAME:PORT)"));
    take_last(serve->add_option("--static", static_dir,
                                "A folder to serve at / (without it, / redirects to /dashboard/)"));
    take_last(serve->add_option("--threads", threads, "Worker threads (default: one per core)"));
    take_last(serve->add_option("--log-level", log_level, "trace|debug|info|warn|error|off"));
    serve->add_flag("--stdin", publish_stdin, "Publish each stdin line `TOPIC DATA`");
    serve->footer("Every config key can also be set as HERALD_<SECTION>_<KEY> "
                  "(HERALD_HISTORY_MAX_EVENTS=100); flag beats env beats file.\n"
                  "AUTH_TOKEN_FILE (a file) or AUTH_TOKEN sets one token with every right and "
                  "closes the hub to\nanyone without a token; [[auth.tokens]] and JWT keys come "
                  "from the config file. SIGHUP\nreloads the tokens.");

    // pub
    herald::cli::ClientOptions client;
    client.url = env_or("HERALD_URL", client.url);
    client.token = env_or("HERALD_TOKEN", "");
    auto* pub = app.add_subcommand(
        "pub", "Publish to a running hub; with no DATA, each stdin line is one event");
    herald::cli::PubOptions pub_opts;
    std::string pub_data;
    pub->add_option("TOPIC", pub_opts.topic, "The topic")->required();
    auto* data_opt =
        pub->add_option("DATA", pub_data, "The event's data (default: read lines from stdin)");
    pub->add_option("--event", pub_opts.event, "The event type (the SSE `event:` field)");
    pub->add_option("--id", pub_opts.id, "The event id (default: assigned by the hub)");
    pub->add_flag("--json", pub_opts.json_output, "Print {\"id\": ...} rather than the bare id");
    pub->add_option("--url", client.url,
                    "The hub's base URL (HERALD_URL; default http://127.0.0.1:8080)");
    pub->add_option("--token", client.token, "Access token (HERALD_TOKEN)");

    // sub
    auto* sub = app.add_subcommand(
        "sub", "Subscribe and print each event's data; reconnects with Last-Event-ID");
    herald::cli::SubOptions sub_opts;
    std::size_t count = 0;
    sub->add_option("TOPIC", sub_opts.topics,
                    "Topics or selectors (* or URI templates); none: every topic you may read");
    sub->add_flag("--json", sub_opts.json, "One JSON object a line: id, event, data");
    sub->add_option("--last-event-id", sub_opts.last_event_id,
                    "Resume after this event id (or `earliest`)");
    auto* count_opt = sub->add_option("--count", count, "Exit after N events");
    sub->add_option("--url", client.url,
                    "The hub's base URL (HERALD_URL; default http://127.0.0.1:8080)");
    sub->add_option("--token", client.token, "Access token (HERALD_TOKEN)");

    // bench
    herald::bench::Options bench_opts;
    auto* bench = herald::cli::add_bench_command(app, bench_opts);

    // demo
    auto* demo = app.add_subcommand(
        "demo", "A test event source for SSE client authors: /stream, /api/time, "
                "/api/client-count, /status");
    std::optional<std::uint16_t> demo_port;
    std::string demo_host = "0.0.0.0";
    std::string demo_interval = "1s";
    demo->add_option("-p,--port", demo_port, "Port to listen on (default 8080, or PORT; 0: any)");
    demo->add_option("--host", demo_host, "Address to listen on (default 0.0.0.0)");
    demo->add_option("--interval", demo_interval,
                     "Time between /stream messages: 1s (the default), 250ms, 1.5s ...");
    demo->footer(
        "GET /stream: a hello event, then message-1, message-2 ... whose data is\n"
        "pretty-printed JSON {\"time\", \"random\"} (random depends only on N).\n"
        "?count=K ends the response after K messages (X-Expected-Events: K);\n"
        "Last-Event-ID: message-N resumes with N+1. GET /api/time: an `event: time` each\n"
        "second. GET /api/client-count: `event: client-count` {\"Count\": N} on every\n"
        "change. GET /status: the connected clients. AUTH_TOKEN or AUTH_TOKEN_FILE: every\n"
        "request needs `Authorization: Bearer TOKEN` (or ?token=).");

    std::vector<const char*> cargv;
    for (auto& a : args) {
        cargv.push_back(a.c_str());
    }
    try {
        app.parse(static_cast<int>(cargv.size()), cargv.data());
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; any misuse exits 2, as a bad configuration does.
        return app.exit(e) == 0 ? 0 : 2;
    }

    if (*bench) {
        return herald::bench::run(std::move(bench_opts));
    }
    if (*demo) {
        herald::demo::Options options;
        options.host = demo_host;
        auto interval = herald::demo::parse_interval(demo_interval);
        if (!interval) {
            std::cerr << "herald demo: --interval must be a duration from 1ms to 1h such as 1s, "
                         "250ms, 1.5s or 2m (got '"
                      << demo_interval << "')\n";
            return 2;
        }
        options.interval = *interval;
        try {
            auto env = herald::config::environment();
            if (demo_port) {
                options.port = *demo_port;
            } else if (auto it = env.find("PORT"); it != env.end() && !it->second.empty()) {
                unsigned long p = 0;
                auto [ptr, ec] =
                    std::from_chars(it->second.data(), it->second.data() + it->second.size(), p);
                if (ec != std::errc{} || ptr != it->second.data() + it->second.size() ||
                    p > 65535) {
                    std::cerr << "herald demo: PORT must be a port number (got '" << it->second
                              << "')\n";
                    return 2;
                }
                options.port = static_cast<std::uint16_t>(p);
            }
            options.token = herald::auth::root_token_from(env);
        } catch (const herald::config::ConfigError& e) {
            std::cerr << "herald demo: bad configuration: " << e.what() << "\n";
            return 2;
        }
        return herald::demo::run(options);
    }

    if (*pub) {
        if (data_opt->count() > 0) {
            pub_opts.data = pub_data;
        }
        return herald::cli::run_pub(client, pub_opts);
    }
    if (*sub) {
        if (count_opt->count() > 0) {
            sub_opts.count = count;
        }
        return herald::cli::run_sub(client, sub_opts);
    }

    std::vector<std::pair<std::string, std::string>> overrides;
    if (port)
        overrides.emplace_back("server.port", std::to_string(*port));
    if (!host.empty())
        overrides.emplace_back("server.host", host);
    if (!store.empty())
        overrides.emplace_back("store.url", store);
    if (!node_name.empty())
        overrides.emplace_back("cluster.node_name", node_name);
    if (!static_dir.empty())
        overrides.emplace_back("server.static", static_dir);
    if (threads)
        overrides.emplace_back("server.threads", std::to_string(*threads));
    if (!log_level.empty())
        overrides.emplace_back("log.level", log_level);
    try {
        auto env = herald::config::environment();
        herald::config::Config config = herald::config::load(config_path, env, overrides);
        spdlog::set_level(spdlog::level::from_str(config.log.level));
        herald::app::ServeOptions options;
        options.publish_stdin = publish_stdin;
        options.env = std::move(env);
        options.reload = [config_path, overrides] {
            return herald::config::load(config_path, herald::config::environment(), overrides);
        };
        return herald::app::run_serve(config, options);
    } catch (const herald::config::ConfigError& e) {
        std::cerr << "herald: bad configuration: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "herald: " << e.what() << "\n";
        return 1;
    }
}
