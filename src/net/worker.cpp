// Worker threads, listeners and the per-worker sweep.
#include "net/worker.hpp"

#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <spdlog/spdlog.h>

namespace herald::net {

namespace {

// SO_REUSEPORT, which Asio has no named option for.
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

} // namespace

Worker::Worker(unsigned index)
    : index_(index), io_(1), acceptor_(io_), tick_(io_), accept_retry_(io_) {}

Worker::~Worker() {
    stop();
    join();
}

std::uint16_t Worker::listen(const tcp::endpoint& endpoint) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(Acceptor::reuse_address(true));
    acceptor_.set_option(reuse_port(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    return acceptor_.local_endpoint().port();
}

void Worker::start(AcceptHandler on_accept, TickHandler on_tick) {
    on_accept_ = std::move(on_accept);
    on_tick_ = std::move(on_tick);
    if (acceptor_.is_open()) {
        accept();
    }
    arm_tick();
    thread_ = std::thread([this] { io_.run(); });
}

void Worker::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, Socket socket) {
        if (!ec) {
            on_accept_(std::move(socket));
            accept();
            return;
        }
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
            return;
        }
        // Out of descriptors or memory: leave the pending connections in the backlog and
        // try again shortly rather than spin.
        spdlog::warn("worker {}: accept failed: {}", index_, ec.message());
        accept_retry_.expires_after(std::chrono::milliseconds(100));
        accept_retry_.async_wait([this](boost::system::error_code wait_ec) {
            if (!wait_ec && acceptor_.is_open()) {
                accept();
            }
        });
    });
}

void Worker::arm_tick() {
    tick_.expires_after(std::chrono::seconds(1));
    tick_.async_wait([this](boost::system::error_code ec) {
        if (ec) {
            return;
        }
        on_tick_(base::MonoClock::now());
        arm_tick();
    });
}

void Worker::stop_accepting() {
    asio::post(io_, [this] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        accept_retry_.cancel();
    });
}

void Worker::stop() {
    io_.stop();
}

void Worker::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

} // namespace herald::net
