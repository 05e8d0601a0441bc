// `herald serve`: store, hub, workers and the HTTP layer wired together, signals handled
// on the main thread, and a shutdown that ends every stream before the process exits.
#include "app/server.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "auth/authenticator.hpp"
#include "base/clock.hpp"
#include "http/context.hpp"
#include "http/handlers.hpp"
#include "hub/hub.hpp"
#include "net/connection_limits.hpp"
#include "net/worker.hpp"
#include "ops/metrics.hpp"
#include "ops/stats_feed.hpp"
#include "store/memory/memory_store.hpp"
#include "store/redis/presence.hpp"
#include "store/redis/redis_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace herald::app {

namespace asio = boost::asio;

namespace {

std::unique_ptr<log::EventLog> open_store(const config::Config& config) {
    const std::string& url = config.store.url;
    store::Retention retention;
    retention.max_events = config.history.max_events;
    retention.max_bytes = config.history.max_bytes;
    retention.max_age_ms = static_cast<std::int64_t>(config.history.max_age_seconds) * 1000;
    retention.max_topics = config.history.max_topics;
    retention.max_total_bytes = config.history.max_total_bytes;
    if (url == "memory") {
        return std::make_unique<store::MemoryStore>(retention);
    }
    constexpr std::string_view kSqlite = "sqlite:";
    if (url.starts_with(kSqlite)) {
        store::SqliteOptions options;
        options.path = url.substr(kSqlite.size());
        options.sync_full = config.store.sync == config::SyncMode::full;
        options.retention = retention;
        options.cache_events = config.store.cache_events;
        return std::make_unique<store::SqliteStore>(std::move(options));
    }
    store::RedisOptions options;
    options.url = url;
    options.retention = retention;
    options.timeout_ms = config.store.timeout_ms;
    options.cache_events = config.store.cache_events;
    options.node_name = config.cluster.node_name;
    return std::make_unique<store::RedisStore>(std::move(options));
}

// HOSTNAME:PORT, the name a node has when none is configured.
std::string default_node_name(std::uint16_t port) {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') {
        return "herald:" + std::to_string(port);
    }
    return std::string(host.data()) + ":" + std::to_string(port);
}

// The hub as the stdin reader sees it: null once shutdown began. The reader is detached (it
// may sit in read() until the process exits), so it holds this, never the hub itself.
struct StdinTarget {
    std::mutex mu;
    hub::Hub* hub = nullptr;
};

// Publishes `TOPIC DATA` lines from standard input until it ends or the hub shuts down.
void publish_lines(std::shared_ptr<StdinTarget> target) {
    std::string line;
    while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (line.empty()) {
            continue;
        }
        const auto space = line.find(' ');
        log::NewEvent ev;
        ev.topics.push_back(line.substr(0, space));
        ev.data = space == std::string::npos ? std::string() : line.substr(space + 1);
        // Held while publishing: shutdown waits for this one publish, then the hub is gone.
        std::lock_guard lock(target->mu);
        if (target->hub == nullptr) {
            return;
        }
        if (hub::is_system_topic(ev.topics.front())) {
            spdlog::warn("stdin: nobody may publish to {}", ev.topics.front());
            continue;
        }
        auto result = target->hub->publish(std::move(ev));
        if (result.error != hub::PublishError::none) {
            spdlog::warn("stdin: publish failed");
        }
    }
    std::lock_guard lock(target->mu);
    if (target->hub != nullptr) {
        spdlog::info("stdin closed; still serving");
    }
}

} // namespace

namespace {

void describe_auth(const auth::Authenticator& a) {
    if (!a.enabled()) {
        spdlog::warn("no credentials configured: the hub is open to anyone who can reach it");
    } else if (!a.anonymous_allowed()) {
        spdlog::info("auth on: AUTH_TOKEN set, every request but /healthz and /readyz needs a "
                     "token");
    } else {
        spdlog::info("auth on: {} static token(s)", a.token_count());
    }
}

// SIGHUP: read the config again and put its tokens in force on every worker; streams whose
// caller may no longer read what they read are closed. A config that does not load
// changes nothing.
void reload_tokens(const ServeOptions& options,
                   const std::vector<std::unique_ptr<http::WorkerContext>>& contexts) {
    if (!options.reload) {
        spdlog::info("SIGHUP: nothing to reload");
        return;
    }
    std::shared_ptr<const auth::Authenticator> fresh;
    try {
        fresh = auth::make_authenticator(options.reload(), config::environment());
    } catch (const std::exception& e) {
        spdlog::error("SIGHUP: keeping the tokens in force: {}", e.what());
        return;
    }
    auto closed = std::make_shared<std::atomic<std::size_t>>(0);
    auto left = std::make_shared<std::atomic<std::size_t>>(contexts.size());
    for (const auto& ctx : contexts) {
        asio::post(ctx->worker.io(), [c = ctx.get(), fresh, closed, left] {
            closed->fetch_add(http::reload_auth(*c, fresh));
            if (left->fetch_sub(1) == 1) {
                spdlog::info("SIGHUP: tokens reloaded ({} static); {} stream(s) closed",
                             fresh->token_count(), closed->load());
            }
        });
    }
}

// The connection limits in force, said once at start.
void describe_limits(const config::Config& config, std::size_t max_connections,
                     std::size_t file_limit) {
    const auto& server = config.server;
    std::string total;
    if (max_connections == 0) {
        total = "no limit (no open-file limit)";
    } else if (server.max_connections != 0) {
        total = std::to_string(max_connections) + " (server.max_connections)";
    } else {
        total = std::to_string(max_connections) + " (the open-file limit, " +
                std::to_string(file_limit) + ", less a reserve)";
    }
    if (server.max_connections != 0 && file_limit != 0 && server.max_connections >= file_limit) {
        spdlog::warn("server.max_connections ({}) is not below the open-file limit ({}): "
                     "accepting will fail before the limit is reached",
                     server.max_connections, file_limit);
    }
    std::string proxies;
    for (const auto& n : server.trusted_proxies) {
        proxies += proxies.empty() ? "" : ", ";
        proxies += n.to_string();
    }
    spdlog::info("connections: at most {}; per client address: {}; trusted proxies: {}", total,
                 server.max_connections_per_ip == 0 ? std::string("no limit")
                                                    : std::to_string(server.max_connections_per_ip),
                 proxies.empty() ? std::string("none") : proxies);
}

} // namespace

// Every subscriber is a descriptor: take the whole hard limit, not the usual 1024.
// Returns the soft limit in force after, or 0 when it cannot be read (or is unlimited).
static std::size_t raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return 0;
    }
    if (limit.rlim_cur < limit.rlim_max) {
        const rlim_t soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            spdlog::warn("could not raise the open-file limit to {}", limit.rlim_max);
            limit.rlim_cur = soft;
        }
    }
    return limit.rlim_cur == RLIM_INFINITY ? 0 : static_cast<std::size_t>(limit.rlim_cur);
}

// server.max_connections when it is 0: the open-file limit less what the process needs
// besides its clients: standard streams, each worker's listener, epoll and wake-up
// descriptors, the store's files or Redis connections, log files, and room to accept and
// answer the connections refused at the limit.
static std::size_t default_max_connections(std::size_t file_limit, unsigned threads) {
    const std::size_t reserve = 64 + 4 * static_cast<std::size_t>(threads);
    if (file_limit == 0) {
        return 0; // no file limit: none here either
    }
    if (file_limit < 2 * reserve) {
        return std::max<std::size_t>(1, file_limit / 2);
    }
    return file_limit - reserve;
}

int run_serve(const config::Config& config, const ServeOptions& options) {
    std::signal(SIGPIPE, SIG_IGN);
    const std::size_t file_limit = raise_descriptor_limit();
    unsigned threads = config.server.threads;
    if (threads == 0) {
        threads = std::max(1U, std::thread::hardware_concurrency());
    }
    if (threads > hub::kMaxWorkers) {
        throw std::runtime_error("server.threads: at most " + std::to_string(hub::kMaxWorkers));
    }
    const std::size_t max_connections = config.server.max_connections != 0
                                            ? config.server.max_connections
                                            : default_max_connections(file_limit, threads);
    net::ConnectionLimits limits(max_connections, config.server.max_connections_per_ip);

    // The main thread handles signals and the $sys/connections announcements. The handlers
    // are installed before anything is announced, so a SIGTERM sent the moment the hub says
    // it listens is a clean shutdown, never the default death.
    asio::io_context main_io(1);
    asio::signal_set signals(main_io, SIGINT, SIGTERM, SIGHUP);

    std::shared_ptr<const auth::Authenticator> authenticator =
        auth::make_authenticator(config, options.env);
    std::unique_ptr<log::EventLog> store = open_store(config);
    std::vector<std::unique_ptr<net::Worker>> workers;
    for (unsigned i = 0; i < threads; ++i) {
        workers.push_back(std::make_unique<net::Worker>(i));
    }
    hub::Hub* hub_ptr = nullptr; // set right below; drains only run once workers start
    hub::Hub hub(*store, threads, [&workers, &hub_ptr](unsigned w) {
        hub::Shard* shard = &hub_ptr->shard(w);
        asio::post(workers[w]->io(), [shard] { shard->drain(); });
    });
    hub_ptr = &hub;

    http::Services services{config, hub, {}, {}, {}, {}};
    services.limits = &limits;
    std::vector<std::unique_ptr<http::WorkerContext>> contexts;
    for (unsigned i = 0; i < threads; ++i) {
        contexts.push_back(
            std::make_unique<http::WorkerContext>(services, *workers[i], hub.shard(i)));
        contexts.back()->auth = authenticator;
        services.workers.push_back(contexts.back().get());
    }
    std::vector<const net::WorkerStats*> stats;
    for (auto& c : contexts) {
        stats.push_back(&c->stats);
    }
    services.render_metrics = [&hub, stats] { return ops::render_metrics(hub, stats); };

    // Bind every listener before serving: the first picks the port when 0 was asked for.
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config.server.host, ec);
    if (ec) {
        throw std::runtime_error("server.host: not an IP address: " + config.server.host);
    }
    std::uint16_t port = config.server.port;
    if (port != 0) {
        // The workers share the port through SO_REUSEPORT, which would also let a second
        // herald of the same user join it silently and take half of the connections. A
        // plain bind fails while anything listens there.
        asio::ip::tcp::acceptor probe(main_io);
        probe.open(address.is_v6() ? asio::ip::tcp::v6() : asio::ip::tcp::v4());
        probe.set_option(asio::ip::tcp::acceptor::reuse_address(true));
        probe.bind({address, port}, ec);
        if (ec) {
            throw std::runtime_error("cannot listen on " + config.server.host + ":" +
                                     std::to_string(port) + ": " + ec.message());
        }
    }
    for (auto& w : workers) {
        try {
            port = w->listen({address, port});
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("cannot listen on " + config.server.host + ":" +
                                     std::to_string(port) + ": " + e.code().message());
        }
    }
    services.node =
        config.cluster.node_name.empty() ? default_node_name(port) : config.cluster.node_name;
    // A cluster node reports its figures to Redis and reads the others' (GET /cluster,
    // /topics, $sys/connections).
    std::unique_ptr<store::redis::Presence> presence;
    if (config.store.url.starts_with("redis://")) {
        std::string error;
        auto url = store::redis::parse_url(config.store.url, error);
        if (!url) {
            throw std::runtime_error(error); // cannot happen: the store parsed it already
        }
        presence = std::make_unique<store::redis::Presence>(
            std::move(*url), std::chrono::milliseconds(config.store.timeout_ms), services.node,
            [&services, &hub](bool all) {
                store::redis::Presence::Sample s;
                for (const http::WorkerContext* w : services.workers) {
                    s.connections += w->stats.connections_open.load(std::memory_order_relaxed);
                }
                s.subscribers =
                    static_cast<std::uint64_t>(std::max<std::int64_t>(hub.subscribers(), 0));
                s.counts = hub.changed_counts(all);
                return s;
            });
        services.cluster = presence.get();
        presence->start();
    }

    for (unsigned i = 0; i < threads; ++i) {
        http::WorkerContext* ctx = contexts[i].get();
        workers[i]->start([ctx](net::Socket s) { http::serve_connection(*ctx, std::move(s)); },
                          [ctx, &hub, i](base::MonoClock::time_point now) {
                              http::sweep(*ctx, now);
                              if (i == 0) {
                                  hub.expire(base::unix_ms());
                              }
                          });
    }
    describe_auth(*authenticator);
    describe_limits(config, max_connections, file_limit);
    if (!config.auth.jwt_secret.empty() && config.auth.jwt_secret.size() < 32) {
        spdlog::warn("auth.jwt_secret is shorter than 32 bytes: an HS256 key that short can be "
                     "guessed offline from any token it signed");
    }
    spdlog::info("herald {} listening on http://{}:{} ({} worker{}, store {})", HERALD_VERSION,
                 config.server.host, port, threads, threads == 1 ? "" : "s",
                 config::password_hidden(config.store.url));
    {
        const std::string& host = config.server.host;
        const bool any = host == "0.0.0.0" || host == "::";
        spdlog::info("dashboard: http://{}:{}/dashboard/",
                     any ? "localhost" : (address.is_v6() ? "[" + host + "]" : host), port);
    }

    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](boost::system::error_code sig_ec, int signo) {
            if (sig_ec) {
                return;
            }
            if (signo == SIGHUP) {
                reload_tokens(options, contexts);
                wait_signal();
                return;
            }
            spdlog::info("{}: shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
            main_io.stop();
        });
    };
    wait_signal();
    asio::steady_timer announcer(main_io);
    std::function<void()> announce = [&] {
        announcer.expires_after(std::chrono::milliseconds(100));
        announcer.async_wait([&](boost::system::error_code timer_ec) {
            if (timer_ec) {
                return;
            }
            hub.announce_connections(presence ? presence->others_subscribers() : 0);
            announce();
        });
    };
    announce();

    // $sys/stats: sampled every second (so a new watcher's first rates are over one
    // second), published only while somebody follows it.
    ops::StatsFeed feed(hub, stats, base::MonoClock::now());
    asio::steady_timer stats_timer(main_io);
    auto next_sample = base::MonoClock::now();
    std::function<void()> sample = [&] {
        // On the second, unless the loop fell behind: then one second from now.
        next_sample = std::max(next_sample + std::chrono::seconds(1), base::MonoClock::now());
        stats_timer.expires_at(next_sample);
        stats_timer.async_wait([&](boost::system::error_code timer_ec) {
            if (timer_ec) {
                return;
            }
            std::string figures = feed.sample(base::MonoClock::now(), base::unix_ms());
            if (hub.followed(hub::kStatsTopic)) {
                hub.publish_system(hub::kStatsTopic, std::move(figures));
            }
            sample();
        });
    };
    sample();

    auto stdin_target = std::make_shared<StdinTarget>();
    stdin_target->hub = &hub;
    if (options.publish_stdin) {
        // Blocking reads on their own thread; left running at exit (it may be in read()).
        std::thread(publish_lines, stdin_target).detach();
    }

    main_io.run();

    {
        std::lock_guard lock(stdin_target->mu);
        stdin_target->hub = nullptr; // no stdin line is published from here on
    }

    // Shutdown: refuse new streams and stop accepting; every session drains (streams end,
    // a request that has arrived is read and answered with Connection: close, idle
    // keep-alive connections get a short grace for one last request). Once no request is
    // in progress (or after a few seconds), the store is flushed and what is left closed.
    services.draining.store(true);
    for (auto& w : workers) {
        w->stop_accepting();
    }
    auto on_workers = [&](auto fn) {
        std::vector<std::future<bool>> results;
        for (unsigned i = 0; i < threads; ++i) {
            auto done = std::make_shared<std::promise<bool>>();
            results.push_back(done->get_future());
            http::WorkerContext* ctx = contexts[i].get();
            asio::post(workers[i]->io(), [ctx, done, fn] { done->set_value(fn(*ctx)); });
        }
        bool any = false;
        for (auto& f : results) {
            if (f.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
                spdlog::warn("a worker did not answer in time at shutdown");
                any = true;
                continue;
            }
            any = f.get() || any;
        }
        return any;
    };
    on_workers([](http::WorkerContext& ctx) {
        http::drain_all(ctx);
        return false;
    });
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < give_up &&
           on_workers([](http::WorkerContext& ctx) { return http::busy(ctx); })) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Publishes already taken are written and answered before the connections end.
    if (presence) {
        presence->stop(); // out of the live set at once
    }
    store->close();
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // their answers, posted
    on_workers([](http::WorkerContext& ctx) {
        http::close_all(ctx);
        return false;
    });
    for (auto& w : workers) {
        w->stop();
    }
    for (auto& w : workers) {
        w->join();
    }
    spdlog::info("stopped");
    return 0;
}

} // namespace herald::app
