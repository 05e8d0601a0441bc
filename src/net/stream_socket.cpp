// The stream socket's system calls: read_some and gathered write_some, non-blocking.
#include "net/stream_socket.hpp"

#include <array>

#include <linux/sockios.h>
#include <sys/ioctl.h>

namespace herald::net {

using boost::system::error_code;

namespace {

bool would_block(const error_code& ec) {
    return ec == asio::error::would_block || ec == asio::error::try_again;
}

} // namespace

StreamSocket::StreamSocket(Socket socket, WorkerStats& stats)
    : socket_(std::move(socket)), stats_(stats) {}

void StreamSocket::start() {
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
}

Io StreamSocket::read_some(std::span<char> buf, std::size_t& n) {
    error_code ec;
    n = socket_.read_some(asio::buffer(buf.data(), buf.size()), ec);
    if (would_block(ec)) {
        return Io::blocked;
    }
    if (ec || n == 0) {
        return Io::closed;
    }
    return Io::done;
}

Io StreamSocket::write_some(WriteQueue& queue, std::size_t& n) {
    std::array<asio::const_buffer, WriteQueue::kMaxGather> bufs;
    const std::size_t count = queue.gather(bufs);
    error_code ec;
    n = socket_.write_some(std::span<const asio::const_buffer>(bufs.data(), count), ec);
    if (would_block(ec)) {
        return Io::blocked;
    }
    if (ec) {
        return Io::closed;
    }
    return n > 0 ? Io::done : Io::blocked;
}

bool StreamSocket::shutdown_send() {
    error_code ec;
    socket_.shutdown(Socket::shutdown_send, ec);
    return !ec;
}

void StreamSocket::set_send_buffer(std::size_t bytes) {
    error_code ec;
    socket_.set_option(asio::socket_base::send_buffer_size(static_cast<int>(bytes)), ec);
}

void StreamSocket::close() {
    error_code ec;
    socket_.close(ec);
}

std::size_t StreamSocket::kernel_unsent() const {
    int n = 0;
    // Socket is not const-correct about native handles; the ioctl only reads.
    auto& s = const_cast<Socket&>(socket_);
    if (::ioctl(s.native_handle(), SIOCOUTQ, &n) != 0 || n < 0) {
        return 0;
    }
    return static_cast<std::size_t>(n);
}

void StreamSocket::abort() {
    error_code ec;
    socket_.set_option(asio::socket_base::linger(true, 0), ec);
    socket_.close(ec);
}

std::string StreamSocket::remote() const {
    error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    if (ec) {
        return "unknown";
    }
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::optional<base::IpAddress> StreamSocket::remote_ip() const {
    error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    if (ec) {
        return std::nullopt;
    }
    const auto address = ep.address();
    if (address.is_v4()) {
        return base::IpAddress::v4(address.to_v4().to_uint());
    }
    return base::IpAddress(address.to_v6().to_bytes());
}

std::string StreamSocket::remote_address() const {
    error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    return ec ? std::string("-") : ep.address().to_string();
}

std::uint16_t StreamSocket::remote_port() const {
    error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    return ec ? 0 : ep.port();
}

} // namespace herald::net
