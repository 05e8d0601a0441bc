// The transport of one connection: non-blocking reads into a caller's buffer, gathered
// non-blocking writes of a WriteQueue, and readiness waits that hold no buffer. Whatever
// speaks over it (HTTP/1.1 today; TLS and HTTP/2 later) sees bytes, never a syscall.
// Worker thread only.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "base/ip_address.hpp"
#include "net/stats.hpp"
#include "net/worker.hpp"
#include "net/write_queue.hpp"

namespace herald::net {

// The outcome of one read or write attempt.
enum class Io : std::uint8_t {
    done,    // read: some bytes arrived; write: the queue is empty
    blocked, // the socket has nothing to read or no room to write: wait for it
    closed,  // end of stream or an error: the connection is over
};

class StreamSocket {
public:
    StreamSocket(Socket socket, WorkerStats& stats);

    // Non-blocking, no Nagle; called once before any read or write.
    void start();

    // Reads what the socket holds into `buf`; `n` is how many bytes (> 0 when done).
    [[nodiscard]] Io read_some(std::span<char> buf, std::size_t& n);

    // Writes what `queue` holds until it is empty, the socket is full or it fails.
    // `done(frame)` is called for each frame written whole. `written` says how many bytes
    // went out (counted in the worker's bytes_out).
    template <typename Fn>
    [[nodiscard]] Io write(WriteQueue& queue, std::size_t& written, Fn&& done);
    [[nodiscard]] Io write(WriteQueue& queue, std::size_t& written) {
        return write(queue, written, [](const base::BufferRef&) {});
    }

    // Readiness waits: `handler(error_code)` runs on the worker once the socket is readable
    // (or writable), or with an error when it was closed meanwhile.
    template <typename Handler> void await_readable(Handler&& handler) {
        socket_.async_wait(Socket::wait_read, std::forward<Handler>(handler));
    }
    template <typename Handler> void await_writable(Handler&& handler) {
        socket_.async_wait(Socket::wait_write, std::forward<Handler>(handler));
    }

    // Bytes written to the socket that the peer has not acknowledged yet (SIOCOUTQ): what
    // the kernel still holds for a client that reads slowly.
    [[nodiscard]] std::size_t kernel_unsent() const;

    // Sends FIN: the peer sees the end of what was written; reading goes on.
    [[nodiscard]] bool shutdown_send();
    void set_send_buffer(std::size_t bytes);
    void close();
    // Closes with a reset (SO_LINGER 0): unsent bytes are dropped now, not kept by the
    // kernel for a peer that does not read.
    void abort();
    // "address:port" of the peer, or "unknown".
    [[nodiscard]] std::string remote() const;
    // The peer's address (an IPv4 one as its mapped form); nullopt once the socket is gone.
    [[nodiscard]] std::optional<base::IpAddress> remote_ip() const;
    [[nodiscard]] std::string remote_address() const;
    [[nodiscard]] std::uint16_t remote_port() const;

private:
    [[nodiscard]] Io write_some(WriteQueue& queue, std::size_t& n);

    Socket socket_;
    WorkerStats& stats_;
};

template <typename Fn> Io StreamSocket::write(WriteQueue& queue, std::size_t& written, Fn&& done) {
    written = 0;
    while (!queue.empty()) {
        std::size_t n = 0;
        const Io io = write_some(queue, n);
        if (io != Io::done) {
            if (written > 0) {
                WorkerStats::add(stats_.bytes_out, written);
            }
            return io;
        }
        written += n;
        queue.consume(n, done);
    }
    if (written > 0) {
        WorkerStats::add(stats_.bytes_out, written);
    }
    return Io::done;
}

} // namespace herald::net
