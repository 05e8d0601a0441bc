#include "bench/publishers.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench/http_text.hpp"

namespace herald::bench {

// ---------------------------------------------------------------------------------------
// Publisher

Publisher::Publisher(const Options& o, const Plan& plan, SharedState& shared,
                     const std::vector<Address>& addrs, int index, const std::atomic<bool>& stop)
    : o_(o), plan_(plan), shared_(shared), target_(plan.pub_target(index)), addr_(addrs[target_]),
      index_(index), stop_(stop) {}

Publisher::~Publisher() {
    join();
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void Publisher::start(std::int64_t t0) {
    thread_ = std::thread([this, t0] { run(t0); });
}

void Publisher::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

bool Publisher::connect() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = ::socket(addr_.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr_.storage), addr_.length) != 0) {
        ::close(fd_);
        fd_ = -1;
        return false;
    }
    in_.clear();
    return true;
}

void Publisher::note_io_error(const std::string& why) {
    ++result_.io_errors;
    if (result_.first_error.empty()) {
        result_.first_error = why;
    }
}

// A whole response at the front of in_: consumes it and gives its status code.
std::optional<int> Publisher::take_response() {
    auto end = in_.find("\r\n\r\n");
    if (end == std::string::npos) {
        return std::nullopt;
    }
    std::string_view head(in_.data(), end);
    int code = status_code(head);
    auto conn = header_value(head, "connection:");
    bool closes = conn && iequals_prefix(*conn, "close");
    std::size_t total = 0;
    if (header_value(head, "transfer-encoding:")) {
        auto last = in_.find("\r\n0\r\n\r\n", end);
        if (last == std::string::npos) {
            return std::nullopt;
        }
        total = last + 7;
    } else {
        std::size_t body_len = 0;
        if (auto cl = header_value(head, "content-length:")) {
            std::from_chars(cl->data(), cl->data() + cl->size(), body_len);
        }
        total = end + 4 + body_len;
        if (in_.size() < total) {
            return std::nullopt;
        }
    }
    in_.erase(0, total);
    if (closes) {
        ::close(fd_);
        fd_ = -1;
    }
    return code;
}

// Sends one request and reads its answer: the status code, or -1 on an I/O error.
int Publisher::round_trip(const std::string& req) {
    std::size_t sent = 0;
    while (sent < req.size()) {
        ssize_t w = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        sent += static_cast<std::size_t>(w);
    }
    std::array<char, 4096> buf{};
    for (;;) {
        if (auto code = take_response()) {
            return *code;
        }
        ssize_t r = ::recv(fd_, buf.data(), buf.size(), 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        in_.append(buf.data(), static_cast<std::size_t>(r));
    }
}

void Publisher::run(std::int64_t t0) {
    const double per_publisher = o_.rate > 0 ? o_.rate / o_.publishers : 0;
    const std::int64_t interval =
        per_publisher > 0 ? static_cast<std::int64_t>(1e9 / per_publisher) : 0;
    // The request head up to the target, and from the target to the body, per topic.
    const Endpoint& pub = plan_.pubs[target_];
    std::vector<std::string> heads;
    for (const auto& name : plan_.topic_names) {
        heads.push_back("POST " + expand(pub.target, name) + " HTTP/1.1\r\nHost: " +
                        pub.host_header + "\r\nContent-Type: " + o_.pub_content_type + "\r\n" +
                        plan_.extra_headers + "Content-Length: ");
    }
    std::uint64_t* acks = shared_.acks(index_);
    std::string req;
    // Stagger the publishers' first sends over one interval.
    std::int64_t next = t0 + (interval * index_) / std::max(1, o_.publishers);
    result_.first_ns = now_ns();
    for (std::uint64_t seq = 0; !stop_.load(std::memory_order_relaxed); ++seq) {
        if (seq >= shared_.seq_capacity()) {
            result_.capacity_reached = true;
            break;
        }
        if (interval > 0) {
            sleep_until_ns(next);
            next += interval;
            if (stop_.load(std::memory_order_relaxed)) {
                break;
            }
        }
        if (fd_ < 0 && !connect()) {
            note_io_error(std::string("connect: ") + std::strerror(errno));
            sleep_seconds(0.1);
            continue;
        }
        const int topic = topic_of(index_, seq, o_.topics);
        const std::string& name = plan_.topic_names[static_cast<std::size_t>(topic)];
        std::string data = std::to_string(index_) + "-" + std::to_string(seq) + " " +
                           std::to_string(now_ns()) + " ";
        if (static_cast<int>(data.size()) < o_.payload) {
            data.append(static_cast<std::size_t>(o_.payload) - data.size(), 'x');
        }
        std::string body = expand(plan_.body, name, data);
        req = heads[static_cast<std::size_t>(topic)] + std::to_string(body.size()) + "\r\n\r\n" +
              body;
        const std::int64_t sent_at = now_ns();
        result_.sent = seq + 1;
        errno = 0;
        int code = round_trip(req);
        if (code >= 200 && code <= 299) {
            result_.round_trip.record(now_ns() - sent_at);
            ++result_.ok;
            acks[seq / 64] |= 1ULL << (seq % 64);
        } else if (code < 0) {
            note_io_error(errno == EAGAIN || errno == EWOULDBLOCK
                              ? std::string("no answer to a publish within 5 s")
                              : std::string("publish connection: ") +
                                    (errno != 0 ? std::strerror(errno) : "closed"));
            ::close(fd_);
            fd_ = -1;
        } else {
            ++result_.errors;
            if (result_.first_error.empty()) {
                result_.first_error = "publish answered " + std::to_string(code);
            }
        }
    }
    result_.last_ns = now_ns();
}

// ---------------------------------------------------------------------------------------
// Churn

Churn::Churn(const Options& o, const Plan& plan, const std::vector<Address>& addrs,
             const std::atomic<bool>& stop)
    : o_(o), plan_(plan), addrs_(addrs), stop_(stop) {}

void Churn::start() {
    thread_ = std::thread([this] { run(); });
}

void Churn::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Churn::run() {
    struct Conn {
        std::int64_t started = 0;
        std::int64_t close_at = 0; // once the head is in
        std::size_t sent = 0;
        int topic = 0;
        std::size_t target = 0;
        bool head = false;
        std::string in;
    };
    constexpr std::size_t kMaxOpen = 4096;
    std::unordered_map<int, Conn> open;
    int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<std::vector<std::string>> requests; // per subscribe target and topic
    for (const auto& sub : plan_.subs) {
        auto& per_topic = requests.emplace_back();
        for (const auto& name : plan_.topic_names) {
            per_topic.push_back(subscribe_request(plan_, sub, name));
        }
    }
    auto fail = [&](const std::string& why) {
        ++result_.failures;
        if (result_.first_failure.empty()) {
            result_.first_failure = why;
        }
    };
    auto finish = [&](int fd) {
        ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        open.erase(fd);
    };
    const auto interval = static_cast<std::int64_t>(1e9 / o_.churn);
    const auto hold = static_cast<std::int64_t>(o_.churn_hold_ms * 1e6);
    const std::int64_t t0 = now_ns();
    std::int64_t next = t0;
    std::uint64_t started = 0;
    std::vector<epoll_event> events(256);
    std::array<char, 16384> buf{};
    while (!stop_.load(std::memory_order_relaxed)) {
        std::int64_t now = now_ns();
        while (next <= now && open.size() < kMaxOpen) {
            next += interval;
            // Connections take the subscribe targets in turn, like the steady subscribers.
            const std::size_t target = plan_.sub_target(static_cast<long>(started));
            const Address& addr = addrs_[target];
            int fd =
                ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                fail(std::string("socket: ") + std::strerror(errno));
                continue;
            }
            if (!bind_source(fd, addr, o_.source_ips, static_cast<int>(started % 254))) {
                fail(std::string("bind to a source address: ") + std::strerror(errno));
                ::close(fd);
                continue;
            }
            int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length);
            if (r != 0 && errno != EINPROGRESS) {
                fail(std::string("connect: ") + std::strerror(errno));
                ::close(fd);
                continue;
            }
            Conn c;
            c.started = now;
            c.target = target;
            c.topic = static_cast<int>(started++ % static_cast<std::uint64_t>(o_.topics));
            open.emplace(fd, std::move(c));
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
            ev.data.fd = fd;
            ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }
        int timeout_ms = static_cast<int>(std::clamp<std::int64_t>((next - now) / 1'000'000, 0, 5));
        int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout_ms);
        now = now_ns();
        for (int i = 0; i < n; ++i) {
            int fd = events[static_cast<std::size_t>(i)].data.fd;
            auto it = open.find(fd);
            if (it == open.end()) {
                continue;
            }
            Conn& c = it->second;
            std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
            const std::string& req = requests[c.target][static_cast<std::size_t>(c.topic)];
            if (c.sent < req.size()) {
                if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
                    continue;
                }
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                ssize_t w =
                    err != 0 ? -1
                             : ::send(fd, req.data() + c.sent, req.size() - c.sent, MSG_NOSIGNAL);
                if (w < 0 && err == 0 && errno == EAGAIN) {
                    continue;
                }
                if (w < 0) {
                    fail(std::string("connect: ") + std::strerror(err != 0 ? err : errno));
                    finish(fd);
                    continue;
                }
                c.sent += static_cast<std::size_t>(w);
                if (c.sent == req.size()) {
                    epoll_event mod{};
                    mod.events = EPOLLIN | EPOLLRDHUP;
                    mod.data.fd = fd;
                    ::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &mod);
                }
                continue;
            }
            ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            if (r <= 0) {
                if (!c.head) {
                    fail("closed before the response head");
                }
                finish(fd);
                continue;
            }
            if (c.head) {
                continue; // events while held: not counted here
            }
            c.in.append(buf.data(), static_cast<std::size_t>(r));
            auto end = c.in.find("\r\n\r\n");
            if (end == std::string::npos) {
                continue;
            }
            int code = status_code(std::string_view(c.in).substr(0, end));
            if (code < 200 || code > 299) {
                fail("subscribe answered " + std::string(first_line(c.in)));
                finish(fd);
                continue;
            }
            c.head = true;
            c.in.clear();
            ++result_.connects;
            result_.head.record(now - c.started);
            c.close_at = now + hold;
        }
        // Close the connections whose hold is over.
        for (auto it = open.begin(); it != open.end();) {
            if (it->second.head && it->second.close_at <= now) {
                ::epoll_ctl(epfd, EPOLL_CTL_DEL, it->first, nullptr);
                ::close(it->first);
                it = open.erase(it);
            } else {
                ++it;
            }
        }
    }
    result_.seconds = static_cast<double>(now_ns() - t0) / 1e9;
    for (auto& [fd, c] : open) {
        ::close(fd);
    }
    ::close(epfd);
}

} // namespace herald::bench
