// What the HTTP layer shares: the services every worker reads (hub, config) and each
// worker's own context (its shard, its connections, its counters).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/authenticator.hpp"
#include "config/config.hpp"
#include "http/request.hpp"
#include "hub/hub.hpp"
#include "net/stats.hpp"
#include "net/worker.hpp"

namespace herald::http {

class Connection;

// A publish that waits for the subscribers to drain: its connection, its request (without
// the body) and the event, not yet given to the hub.
struct HeldPublish {
    std::shared_ptr<Connection> connection;
    Request request;
    log::NewEvent event;
    base::MonoClock::time_point started;
};

// The connections of one worker, as an intrusive list (prev_/next_ in Connection).
class ConnectionList {
public:
    void link(Connection& c) noexcept;
    void unlink(Connection& c) noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    // Calls fn on each connection; fn must not unlink any connection but the one given.
    template <typename Fn> void for_each(Fn&& fn);

private:
    Connection* head_ = nullptr;
    std::size_t size_ = 0;
};

struct Services;

// Owned by the app, one per worker; used only on that worker's thread (stats are also
// read by /metrics from any thread).
struct WorkerContext {
    WorkerContext(Services& s, net::Worker& w, hub::Shard& sh)
        : services(s), worker(w), shard(sh) {}

    Services& services;
    net::Worker& worker;
    hub::Shard& shard;
    ConnectionList connections;
    net::WorkerStats stats;
    std::uint64_t next_connection = 0;
    // The tokens in force; replaced on this thread by reload_auth().
    std::shared_ptr<const auth::Authenticator> auth;
    // Every read of a request lands here first: a connection keeps no read buffer of its own.
    std::vector<char> scratch = std::vector<char>(64 * 1024);
    // Publishes held while the subscribers are too far behind (server.max_queued_bytes),
    // oldest first, and the timer that tries them again. Declared last: destroyed first.
    std::deque<HeldPublish> held;
    std::unique_ptr<net::asio::steady_timer> held_timer;
};

// Read-only after start, but for `draining`.
struct Services {
    const config::Config& config;
    hub::Hub& hub;
    std::vector<WorkerContext*> workers;
    std::function<std::string()> render_metrics; // the body of /metrics
    std::atomic<bool> draining{false};
};

// The bytes queued to every worker's streams together, not yet written.
std::uint64_t queued_bytes(const Services& services);

// Accepts a connection on its worker: the entry point from net to http.
void serve_connection(WorkerContext& ctx, net::Socket socket);
// The worker's once-a-second sweep: timeouts and keep-alive comments.
void sweep(WorkerContext& ctx, base::MonoClock::time_point now);
// Ends every stream and connection of the worker (on its thread), for shutdown.
void close_all(WorkerContext& ctx);
// Puts new tokens in force on the worker (on its thread) and closes the streams whose
// credential no longer authenticates or whose read rights changed. Returns how many.
std::size_t reload_auth(WorkerContext& ctx, std::shared_ptr<const auth::Authenticator> auth);

} // namespace herald::http
