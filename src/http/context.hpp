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
#include "cluster/directory.hpp"
#include "config/config.hpp"
#include "http/request.hpp"
#include "hub/hub.hpp"
#include "net/connection_limits.hpp"
#include "net/stats.hpp"
#include "net/worker.hpp"

namespace herald::http {

class SseStream;
class Exchange;

// A publish that waits while its topic's subscribers are behind: the exchange to answer,
// its request (without the body) and the event, not yet given to the hub.
struct HeldPublish {
    std::shared_ptr<Exchange> exchange;
    Request request;
    log::NewEvent event;
    base::MonoClock::time_point started;
};

// One client connection on a worker, whatever protocol it speaks. Worker thread only.
// Sessions are owned by their pending operations (shared_ptr); the worker's list holds
// them without owning them, from construction until close().
class Session {
public:
    Session() = default;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    virtual ~Session() = default;

    // The worker's once-a-second sweep: deadlines, keep-alives.
    virtual void on_tick(base::MonoClock::time_point now) = 0;
    // Ends the connection now.
    virtual void close() = 0;
    // Calls fn on each open stream it carries.
    virtual void for_each_stream(const std::function<void(SseStream&)>& fn) = 0;
    // Shutdown has begun: end the streams, answer what has arrived with Connection: close,
    // and let idle connections go after a short grace.
    virtual void drain() = 0;
    // Whether a request is being read or answered (shutdown waits for those).
    [[nodiscard]] virtual bool busy() const = 0;

private:
    friend class ConnectionList;
    Session* prev_ = nullptr;
    Session* next_ = nullptr;
};

// The sessions of one worker, as an intrusive list.
class ConnectionList {
public:
    void link(Session& c) noexcept;
    void unlink(Session& c) noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    // Calls fn on each session; fn must not unlink any session but the one given.
    template <typename Fn> void for_each(Fn&& fn) {
        for (Session* c = head_; c != nullptr;) {
            Session* next = c->next_;
            fn(*c);
            c = next;
        }
    }

private:
    Session* head_ = nullptr;
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
    // The time every deadline of this worker's sessions is read from; tests replace it.
    std::function<base::MonoClock::time_point()> clock = [] { return base::MonoClock::now(); };
    // A trim_streams() is posted and has not run yet.
    bool trim_scheduled = false;
    // Publishes held while their topics' subscribers are behind (Hub::held_back), oldest
    // first, and the timer that tries them again. Declared last: destroyed first.
    std::deque<HeldPublish> held;
    std::unique_ptr<net::asio::steady_timer> held_timer;

    [[nodiscard]] base::MonoClock::time_point now() const { return clock(); }
    // This worker's share of server.max_queued_bytes (0: no budget).
    [[nodiscard]] std::size_t queued_budget() const;
};

// Read-only after start, but for `draining`.
struct Services {
    const config::Config& config;
    hub::Hub& hub;
    std::vector<WorkerContext*> workers;
    std::function<std::string()> render_metrics; // the body of /metrics
    std::atomic<bool> draining{false};
    // This node's name (cluster.node_name, or HOSTNAME:PORT): X-Herald-Node, /healthz.
    std::string node;
    // The cluster's other nodes, on a redis:// store; null otherwise.
    const cluster::Directory* cluster = nullptr;
    // server.max_connections and max_connections_per_ip, shared by every worker; null: no
    // limits (unit tests).
    net::ConnectionLimits* limits = nullptr;
};

// Accepts a connection on its worker: the entry point from net to http.
void serve_connection(WorkerContext& ctx, net::Socket socket);
// The worker's once-a-second sweep: timeouts and keep-alive comments.
void sweep(WorkerContext& ctx, base::MonoClock::time_point now);
// Shutdown, first step (on the worker's thread): every session drains (Session::drain).
void drain_all(WorkerContext& ctx);
// Whether any session of the worker still reads or answers a request.
[[nodiscard]] bool busy(WorkerContext& ctx);
// Shutdown, last step: ends every connection of the worker (on its thread).
void close_all(WorkerContext& ctx);
// Puts new tokens in force on the worker (on its thread) and closes the streams whose
// credential no longer authenticates or whose read rights changed. Returns how many.
std::size_t reload_auth(WorkerContext& ctx, std::shared_ptr<const auth::Authenticator> auth);

} // namespace herald::http
