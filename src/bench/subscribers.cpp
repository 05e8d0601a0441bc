#include "bench/subscribers.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench/http_text.hpp"
#include "bench/measure.hpp"

namespace herald::bench {

bool bind_source(int fd, const Address& to, int ips, int index) {
    if (ips <= 1 || to.storage.ss_family != AF_INET) {
        return true;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(0x7F000001U + static_cast<std::uint32_t>(index % ips));
    return ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0;
}

std::string subscribe_request(const Plan& plan, const Endpoint& target, std::string_view topic) {
    return "GET " + expand(target.target, topic) + " HTTP/1.1\r\nHost: " + target.host_header +
           "\r\nAccept: text/event-stream\r\n" + plan.extra_headers + "\r\n";
}

namespace {

struct Subscriber {
    enum class State : std::uint8_t { idle, connecting, head, body, closed };
    int fd = -1;
    int index = 0; // in the whole run
    int topic = 0;
    std::size_t target = 0; // which of the plan's subscribe targets
    State state = State::idle;
    bool chunked = false;
    bool got_head = false;
    bool disconnected = false; // closed by the server before the end
    bool after_cr = false;     // the last read ended in CR: a LF next belongs to it
    // Chunked transfer decoding, for servers that use it.
    enum class Chunk : std::uint8_t { size, data, data_crlf, trailer };
    Chunk chunk = Chunk::size;
    std::uint64_t chunk_left = 0;
    std::size_t request_sent = 0;
    std::string pending;    // the head so far, or the unfinished SSE line
    std::string chunk_line; // an unfinished chunk-size line
    // The event being read, from its first data: line.
    bool have_data = false;
    bool data_ok = false;
    int ev_publisher = 0;
    std::uint64_t ev_seq = 0;
    std::int64_t ev_time = 0;
    std::vector<std::vector<std::uint64_t>> seen; // one bit per (publisher, seq)
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t malformed = 0;
};

} // namespace

class SubscriberThread {
public:
    SubscriberThread(const Options& o, const Plan& plan, SharedState& shared,
                     const std::vector<Address>& addrs, std::vector<int> indices, int window)
        : o_(o), shared_(shared), addrs_(addrs), window_(window) {
        subs_.resize(indices.size());
        for (std::size_t i = 0; i < subs_.size(); ++i) {
            subs_[i].index = indices[i];
            subs_[i].topic = indices[i] % o.topics;
            subs_[i].target = plan.sub_target(indices[i]);
            subs_[i].seen.resize(static_cast<std::size_t>(o.publishers));
        }
        for (const auto& sub : plan.subs) {
            auto& requests = requests_.emplace_back();
            for (const auto& name : plan.topic_names) {
                requests.push_back(subscribe_request(plan, sub, name));
            }
        }
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) {
            throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
        }
    }
    ~SubscriberThread() {
        for (auto& s : subs_) {
            if (s.fd >= 0) {
                ::close(s.fd);
            }
        }
        ::close(epfd_);
    }
    SubscriberThread(const SubscriberThread&) = delete;
    SubscriberThread& operator=(const SubscriberThread&) = delete;

    void start() {
        thread_ = std::thread([this] { loop(); });
    }
    void stop() {
        stop_.store(true);
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    // Adds what this thread saw to `t` (after stop()).
    void tally(Tally& t) const {
        t.latency.merge(latency_);
        t.bytes += bytes_;
        t.last_delivery_ns = std::max(t.last_delivery_ns, last_delivery_);
        for (const auto& s : subs_) {
            t.disconnected += s.disconnected ? 1 : 0;
            t.duplicates += s.duplicates;
            t.malformed += s.malformed;
            t.deliveries += s.received;
        }
    }
    const std::vector<Subscriber>& subscribers() const { return subs_; }

private:
    void loop() {
        std::size_t next = 0;
        int opening = 0;
        std::vector<epoll_event> events(1024);
        std::vector<char> buf(256 * 1024);
        std::uint64_t reported = 0;
        for (;;) {
            while (next < subs_.size() && opening < window_) {
                if (open(subs_[next], next)) {
                    ++opening;
                }
                ++next;
            }
            if (stop_.load(std::memory_order_relaxed)) {
                break;
            }
            int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 20);
            if (n < 0 && errno != EINTR) {
                shared_.fail(std::string("epoll_wait: ") + std::strerror(errno));
                break;
            }
            std::int64_t now = n > 0 ? now_ns() : 0;
            for (int i = 0; i < n; ++i) {
                auto& s = subs_[events[static_cast<std::size_t>(i)].data.u64];
                bool was_opening =
                    s.state == Subscriber::State::connecting || s.state == Subscriber::State::head;
                handle(s, events[static_cast<std::size_t>(i)].events, buf, now);
                bool still_opening =
                    s.state == Subscriber::State::connecting || s.state == Subscriber::State::head;
                if (was_opening && !still_opening) {
                    --opening;
                }
            }
            // The run-wide count of events first seen, for the drain wait: once per loop.
            if (unique_ != reported) {
                shared_.control().unique.fetch_add(unique_ - reported, std::memory_order_relaxed);
                reported = unique_;
            }
        }
    }

    // Starts a non-blocking connect; false when it failed at once (counted).
    bool open(Subscriber& s, std::size_t slot) {
        const Address& addr = addrs_[s.target];
        int fd = ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            shared_.fail(std::string("socket: ") + std::strerror(errno));
            s.state = Subscriber::State::closed;
            return false;
        }
        if (!bind_source(fd, addr, o_.source_ips, s.index)) {
            shared_.fail(std::string("bind to a source address: ") + std::strerror(errno));
            ::close(fd);
            s.state = Subscriber::State::closed;
            return false;
        }
        int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length);
        if (r != 0 && errno != EINPROGRESS) {
            shared_.fail(std::string("connect: ") + std::strerror(errno));
            ::close(fd);
            s.state = Subscriber::State::closed;
            return false;
        }
        s.fd = fd;
        s.state = Subscriber::State::connecting;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
        ev.data.u64 = slot;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            shared_.fail(std::string("epoll_ctl: ") + std::strerror(errno));
            ::close(fd);
            s.fd = -1;
            s.state = Subscriber::State::closed;
            return false;
        }
        return true;
    }

    void close(Subscriber& s, const std::string& why) {
        if (!s.got_head) {
            shared_.fail(why);
        } else if (!stop_.load(std::memory_order_relaxed)) {
            s.disconnected = true;
        }
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, nullptr);
        ::close(s.fd);
        s.fd = -1;
        s.state = Subscriber::State::closed;
        std::string().swap(s.pending);
    }

    void handle(Subscriber& s, std::uint32_t ev, std::vector<char>& buf, std::int64_t now) {
        if (s.state == Subscriber::State::connecting) {
            if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
                return;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                close(s, std::string("connect: ") + std::strerror(err));
                return;
            }
            const std::string& req = requests_[s.target][static_cast<std::size_t>(s.topic)];
            while (s.request_sent < req.size()) {
                ssize_t w = ::send(s.fd, req.data() + s.request_sent, req.size() - s.request_sent,
                                   MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EAGAIN) {
                        return;
                    }
                    close(s, "sending the request failed");
                    return;
                }
                s.request_sent += static_cast<std::size_t>(w);
            }
            s.state = Subscriber::State::head;
            epoll_event mod{};
            mod.events = EPOLLIN | EPOLLRDHUP;
            mod.data.u64 = static_cast<std::uint64_t>(&s - subs_.data());
            ::epoll_ctl(epfd_, EPOLL_CTL_MOD, s.fd, &mod);
            return;
        }
        if (s.state == Subscriber::State::closed) {
            return;
        }
        // One read per readiness event: level-triggered epoll comes back for the rest, so
        // one busy connection cannot starve the others.
        ssize_t r = ::recv(s.fd, buf.data(), buf.size(), 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            close(s, std::string("connection: ") + std::strerror(errno));
            return;
        }
        if (r == 0) {
            close(s, s.got_head ? "closed by the server" : "closed before the response head");
            return;
        }
        bytes_ += static_cast<std::uint64_t>(r);
        std::string_view data(buf.data(), static_cast<std::size_t>(r));
        if (s.state == Subscriber::State::head) {
            s.pending.append(data);
            auto end = s.pending.find("\r\n\r\n");
            if (end == std::string::npos) {
                if (s.pending.size() > 64 * 1024) {
                    close(s, "response head too large");
                }
                return;
            }
            std::string head = s.pending.substr(0, end);
            std::string rest = s.pending.substr(end + 4);
            s.pending.clear();
            int code = status_code(head);
            if (code < 200 || code > 299) {
                close(s, "subscribe answered " + std::string(first_line(head)));
                return;
            }
            auto te = header_value(head, "transfer-encoding:");
            s.chunked = te && te->find("chunked") != std::string_view::npos;
            s.got_head = true;
            s.state = Subscriber::State::body;
            shared_.heads_of_topic(s.topic).fetch_add(1);
            shared_.control().heads.fetch_add(1);
            body(s, rest, now);
            return;
        }
        body(s, data, now);
    }

    // Transfer decoding, then SSE lines.
    void body(Subscriber& s, std::string_view data, std::int64_t now) {
        if (!s.chunked) {
            lines(s, data, now);
            return;
        }
        while (!data.empty()) {
            if (s.chunk == Subscriber::Chunk::data) {
                auto take =
                    static_cast<std::size_t>(std::min<std::uint64_t>(s.chunk_left, data.size()));
                lines(s, data.substr(0, take), now);
                data.remove_prefix(take);
                s.chunk_left -= take;
                if (s.chunk_left == 0) {
                    s.chunk = Subscriber::Chunk::data_crlf;
                }
                continue;
            }
            // Chunk-size lines and the CRLF after data are kept apart from SSE lines.
            auto nl = data.find('\n');
            if (nl == std::string_view::npos) {
                s.chunk_line.append(data);
                return;
            }
            s.chunk_line.append(data.substr(0, nl));
            data.remove_prefix(nl + 1);
            if (s.chunk == Subscriber::Chunk::data_crlf) {
                s.chunk = Subscriber::Chunk::size;
            } else if (s.chunk == Subscriber::Chunk::size) {
                std::uint64_t size = std::strtoull(s.chunk_line.c_str(), nullptr, 16);
                s.chunk = size == 0 ? Subscriber::Chunk::trailer : Subscriber::Chunk::data;
                s.chunk_left = size;
                if (size == 0) {
                    // The last chunk: the server ended the stream, though the connection
                    // may stay open.
                    s.chunk_line.clear();
                    close(s, "stream ended by the server");
                    return;
                }
            }
            s.chunk_line.clear();
        }
    }

    // SSE lines end in CRLF, LF or a lone CR.
    void lines(Subscriber& s, std::string_view data, std::int64_t now) {
        if (s.after_cr && !data.empty() && data.front() == '\n') {
            data.remove_prefix(1); // the LF of a CRLF split across reads
        }
        s.after_cr = false;
        while (!data.empty()) {
            auto eol = data.find_first_of("\r\n");
            if (eol == std::string_view::npos) {
                s.pending.append(data);
                return;
            }
            if (s.pending.empty()) {
                line(s, data.substr(0, eol), now);
            } else {
                s.pending.append(data.substr(0, eol));
                line(s, s.pending, now);
                s.pending.clear();
            }
            std::size_t skip = 1;
            if (data[eol] == '\r') {
                if (eol + 1 == data.size()) {
                    s.after_cr = true;
                } else if (data[eol + 1] == '\n') {
                    skip = 2;
                }
            }
            data.remove_prefix(eol + skip);
        }
    }

    void line(Subscriber& s, std::string_view l, std::int64_t now) {
        if (l.empty()) {
            if (s.have_data) {
                dispatch(s, now);
            }
            s.have_data = false;
            return;
        }
        if (l.rfind("data:", 0) != 0 || s.have_data) {
            return; // id:, retry:, event:, comments; only the first data line is read
        }
        l.remove_prefix(5);
        if (!l.empty() && l.front() == ' ') {
            l.remove_prefix(1);
        }
        s.have_data = true;
        s.data_ok = false;
        // "<publisher>-<seq> <time_ns> ..."
        const char* end = l.data() + l.size();
        auto a = std::from_chars(l.data(), end, s.ev_publisher);
        if (a.ec != std::errc{} || a.ptr == end || *a.ptr != '-') {
            return;
        }
        auto b = std::from_chars(a.ptr + 1, end, s.ev_seq);
        if (b.ec != std::errc{} || b.ptr == end || *b.ptr != ' ') {
            return;
        }
        auto c = std::from_chars(b.ptr + 1, end, s.ev_time);
        if (c.ec != std::errc{}) {
            return;
        }
        s.data_ok = s.ev_publisher >= 0 && s.ev_publisher < o_.publishers &&
                    s.ev_seq < shared_.seq_capacity();
    }

    void dispatch(Subscriber& s, std::int64_t now) {
        ++s.received;
        if (!s.data_ok) {
            ++s.malformed;
            return;
        }
        auto& bits = s.seen[static_cast<std::size_t>(s.ev_publisher)];
        auto word = static_cast<std::size_t>(s.ev_seq / 64);
        std::uint64_t mask = 1ULL << (s.ev_seq % 64);
        if (word >= bits.size()) {
            bits.resize(std::max(word + 1, bits.size() * 2), 0);
        }
        if ((bits[word] & mask) != 0) {
            ++s.duplicates;
            return;
        }
        bits[word] |= mask;
        ++unique_;
        last_delivery_ = now;
        latency_.record(now - s.ev_time);
    }

    const Options& o_;
    SharedState& shared_;
    const std::vector<Address>& addrs_; // one per subscribe target
    int window_;
    int epfd_ = -1;
    std::vector<Subscriber> subs_;
    std::vector<std::vector<std::string>> requests_; // one GET per target and topic
    Histogram latency_;
    std::uint64_t bytes_ = 0;
    std::uint64_t unique_ = 0;
    std::int64_t last_delivery_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

SubscriberGroup::SubscriberGroup(const Options& o, const Plan& plan, SharedState& shared,
                                 const std::vector<Address>& addrs, int process, int first,
                                 int last)
    : o_(o), shared_(shared), process_(process) {
    const int count = last - first;
    const int threads = std::max(1, std::min(o.threads, count));
    for (int t = 0; t < threads; ++t) {
        std::vector<int> indices;
        for (int i = first + t; i < last; i += threads) {
            indices.push_back(i);
        }
        int window = std::max(1, o.connect_window / (threads * o.processes));
        threads_.push_back(
            std::make_unique<SubscriberThread>(o, plan, shared, addrs, std::move(indices), window));
    }
}

SubscriberGroup::~SubscriberGroup() {
    for (auto& t : threads_) {
        t->stop();
    }
}

void SubscriberGroup::run() {
    for (auto& t : threads_) {
        t->start();
    }
    auto& control = shared_.control();
    auto phase = [&] { return static_cast<Phase>(control.phase.load(std::memory_order_acquire)); };
    while (phase() == Phase::connecting) {
        sleep_seconds(0.005);
    }
    const double cpu0 = self_cpu_s();
    while (phase() == Phase::publishing) {
        sleep_seconds(0.005);
    }
    const double cpu_s = self_cpu_s() - cpu0;
    for (auto& t : threads_) {
        t->stop();
    }
    if (phase() != Phase::tally) {
        return;
    }
    // Acknowledged publishes per topic: what each connected subscriber should have.
    std::vector<std::uint64_t> per_topic(static_cast<std::size_t>(o_.topics), 0);
    const std::size_t words = shared_.words_per_publisher();
    for (int p = 0; p < o_.publishers; ++p) {
        const std::uint64_t* acks = shared_.acks(p);
        for (std::size_t w = 0; w < words; ++w) {
            for (std::uint64_t word = acks[w]; word != 0; word &= word - 1) {
                std::uint64_t seq = w * 64 + static_cast<std::uint64_t>(__builtin_ctzll(word));
                ++per_topic[static_cast<std::size_t>(topic_of(p, seq, o_.topics))];
            }
        }
    }
    Tally& t = shared_.tally(process_);
    t.cpu_s = o_.processes > 1 ? cpu_s : 0; // in-process threads are in the parent's own
    for (auto& thread : threads_) {
        thread->tally(t);
        for (const auto& s : thread->subscribers()) {
            if (!s.got_head || o_.publishers == 0) {
                continue;
            }
            // Walk the set bits only: the cost is the deliveries, not subscribers x seqs.
            std::uint64_t valid = 0;
            for (int p = 0; p < o_.publishers; ++p) {
                const auto& bits = s.seen[static_cast<std::size_t>(p)];
                for (std::size_t w = 0; w < bits.size(); ++w) {
                    for (std::uint64_t word = bits[w]; word != 0; word &= word - 1) {
                        std::uint64_t seq =
                            w * 64 + static_cast<std::uint64_t>(__builtin_ctzll(word));
                        if (shared_.acknowledged(p, seq) &&
                            topic_of(p, seq, o_.topics) == s.topic) {
                            ++valid;
                        } else {
                            ++t.stray;
                        }
                    }
                }
            }
            const std::uint64_t want = per_topic[static_cast<std::size_t>(s.topic)];
            t.expected += want;
            t.missing += want - valid;
            t.subscribers_missing += want > valid ? 1 : 0;
        }
    }
    t.done.store(1, std::memory_order_release);
}

} // namespace herald::bench
