// Stalled subscribers: blocking sockets that send one request and are never read.
#include "bench/stalled.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace herald::bench {

Stalled::~Stalled() {
    for (int fd : fds_) {
        ::close(fd);
    }
}

int Stalled::open(int count, const Plan& plan, const std::vector<Address>& addrs) {
    int failures = 0;
    auto fail = [&](const std::string& why, int fd) {
        ++failures;
        if (first_failure_.empty()) {
            first_failure_ = why;
        }
        if (fd >= 0) {
            ::close(fd);
        }
    };
    for (int i = 0; i < count; ++i) {
        const std::string& topic =
            plan.topic_names[static_cast<std::size_t>(i) % plan.topic_names.size()];
        const std::size_t target = plan.sub_target(i);
        const Address& addr = addrs[target];
        const std::string request = subscribe_request(plan, plan.subs[target], topic);
        const int fd = ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fail(std::string("socket: ") + std::strerror(errno), fd);
            continue;
        }
        // Set before connecting, so that the window the server sees is small from the start.
        int small = 4096;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
            fail(std::string("connect: ") + std::strerror(errno), fd);
            continue;
        }
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
            fail(std::string("send: ") + std::strerror(errno), fd);
            continue;
        }
        fds_.push_back(fd);
    }
    return failures;
}

int Stalled::closed_by_server() const {
    std::vector<pollfd> pfds;
    pfds.reserve(fds_.size());
    for (int fd : fds_) {
        pfds.push_back(pollfd{fd, POLLRDHUP, 0});
    }
    if (pfds.empty() || ::poll(pfds.data(), pfds.size(), 0) < 0) {
        return 0;
    }
    int closed = 0;
    for (const auto& p : pfds) {
        if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            ++closed;
        }
    }
    return closed;
}

} // namespace herald::bench
