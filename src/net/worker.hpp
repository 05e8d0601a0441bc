// A worker: one thread, one event loop (io_context), one SO_REUSEPORT listener. A
// connection accepted by a worker lives on it for life; a once-a-second sweep on each
// worker drives timeouts and keep-alives instead of one timer per connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/clock.hpp"

namespace herald::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// Sockets bound to a worker's io_context executor rather than the type-erased
// any_io_executor: each socket is 48 bytes smaller, and so is every pending operation on
// it, which matters with one idle wait per subscriber (docs/benchmarks.md).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;

class Worker {
public:
    using AcceptHandler = std::function<void(Socket)>;
    using TickHandler = std::function<void(base::MonoClock::time_point)>;

    explicit Worker(unsigned index);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    ~Worker();

    [[nodiscard]] unsigned index() const noexcept { return index_; }
    [[nodiscard]] asio::io_context& io() noexcept { return io_; }

    // Binds this worker's listener (SO_REUSEPORT, so every worker binds the same port).
    // Throws boost::system::system_error on failure. Returns the bound port.
    std::uint16_t listen(const tcp::endpoint& endpoint);

    // Starts the thread: accepting (each socket goes to `on_accept`, on this thread) and
    // calling `on_tick` about once a second.
    void start(AcceptHandler on_accept, TickHandler on_tick);

    // Any thread: stops accepting new connections.
    void stop_accepting();
    // Any thread: ends the event loop; join() waits for the thread.
    void stop();
    void join();

private:
    void accept();
    void arm_tick();

    unsigned index_;
    asio::io_context io_;
    Acceptor acceptor_;
    asio::steady_timer tick_;
    asio::steady_timer accept_retry_; // after EMFILE and the like, try again shortly
    AcceptHandler on_accept_;
    TickHandler on_tick_;
    std::thread thread_;
};

} // namespace herald::net
