// herald_load: a small, honest SSE load harness. N subscribers on epoll threads, P
// publishers on keep-alive connections; reports connect time, throughput, end-to-end
// latency, lost and duplicated events, and the server's memory per subscriber.
//
// Written by hand on plain POSIX sockets and epoll (no Asio, no HTTP library) so that
// what is measured is the server, with as little client-side cost as possible. The full
// `herald bench` subcommand is separate; this is the tool behind `make bench`.

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// ---------------------------------------------------------------------------------------
// Options

constexpr const char* kHelp =
    R"(herald_load: SSE load harness (subscribers, publishers, latency, loss, memory)

Usage: herald_load [options]

Target
  --url URL            server base URL, http://HOST:PORT[/prefix]   [http://127.0.0.1:8080]
  --path PATH          stream and publish path                      [/events]

Subscribers
  --subscribers N      number of SSE subscribers                     [100]
  --topic T            the topic every subscriber follows            [bench]
  --topics K           spread subscribers round-robin over K topics named t0..tK-1
                       (T0..TK-1 with --topic T); publisher p sends seq s to
                       topic (p + s) % K
  --sub-threads M      epoll threads for the subscribers             [1]
                       (one keeps up with millions of events/s; on a small
                       machine more threads only take CPU from the server)
  --connect-window W   at most W connections being opened at once    [512]
  --source-ips K       bind subscriber sockets round-robin to 127.0.0.1..127.0.0.K,
                       so that more than ~28k connections fit the ephemeral ports [1]

Publishers
  --publishers P       publisher threads, one keep-alive connection each;
                       0 is the same as --idle                             [4]
  --rate R             total publishes per second, 0 = as fast as possible  [0]
  --duration S         seconds of publishing (fractions allowed)           [10]
  --payload BYTES      size of each event's data field (at least the
                       "<publisher>-<seq> <time_ns> " header)              [64]
  --idle               connect, measure memory, publish nothing

Measuring
  --pid PID            the server's pid: VmRSS is read from /proc/PID/status before
                       connecting and one second after every subscriber got its
                       response head; the delta / N is reported per subscriber, and
                       the server's CPU use while publishing is reported too
  --settle S           seconds to wait after connecting before reading memory [1]
  --drain S            after publishing, wait up to S seconds for in-flight events [5]
  --json               print one JSON object of the results as the last line
  -h, --help           this text

Each event's data is "<publisher>-<seq> <publish_time_ns> <padding>" (CLOCK_MONOTONIC,
shared in-process by publishers and subscribers). Every subscriber records which
(publisher, seq) pairs it received, so missing and duplicate events are exact; latency
is receive time minus publish time, in a log-bucketed histogram (about 6% precision).
Deliveries/s = events received by all subscribers / publishing duration.
RLIMIT_NOFILE is raised to its hard limit; N + P + 16 descriptors must fit in it.

Exit status: 0 when every subscriber connected and stayed, every publish got 200 and
every subscriber got each event of its topic exactly once; 1 otherwise; 2 on bad usage.
)";

struct Options {
    std::string host = "127.0.0.1";
    std::string port = "8080";
    std::string prefix;
    std::string path = "/events";
    int subscribers = 100;
    std::string topic = "bench";
    bool topic_given = false;
    int topics = 1;
    bool topics_given = false;
    int sub_threads = 1;
    int connect_window = 512;
    int source_ips = 1;
    int publishers = 4;
    double rate = 0;
    double duration = 10;
    int payload = 64;
    bool idle = false;
    long pid = 0;
    double settle = 1;
    double drain = 5;
    bool json = false;
};

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "herald_load: %s\n", message.c_str());
    std::exit(2);
}

template <typename T> T parse_number(std::string_view flag, std::string_view text) {
    T value{};
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end) {
        die("bad value for " + std::string(flag) + ": '" + std::string(text) + "'");
    }
    return value;
}

double parse_double(std::string_view flag, const std::string& text) {
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || !std::isfinite(value) || value < 0) {
        die("bad value for " + std::string(flag) + ": '" + text + "'");
    }
    return value;
}

void parse_url(Options& o, const std::string& url) {
    constexpr std::string_view scheme = "http://";
    if (url.rfind(scheme, 0) != 0) {
        die("--url must start with http:// (got '" + url + "')");
    }
    std::string rest = url.substr(scheme.size());
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    o.prefix = slash == std::string::npos ? "" : rest.substr(slash);
    while (!o.prefix.empty() && o.prefix.back() == '/') {
        o.prefix.pop_back();
    }
    auto colon = authority.rfind(':');
    if (colon == std::string::npos) {
        o.host = authority;
        o.port = "80";
    } else {
        o.host = authority.substr(0, colon);
        o.port = authority.substr(colon + 1);
    }
    if (o.host.empty() || o.port.empty()) {
        die("bad --url '" + url + "'");
    }
}

Options parse_options(int argc, char** argv) {
    Options o;
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> const std::string& {
            if (i + 1 >= args.size()) {
                die(a + " needs a value (see --help)");
            }
            return args[++i];
        };
        if (a == "-h" || a == "--help") {
            std::fputs(kHelp, stdout);
            std::exit(0);
        } else if (a == "--url") {
            parse_url(o, value());
        } else if (a == "--path") {
            o.path = value();
        } else if (a == "--subscribers") {
            o.subscribers = parse_number<int>(a, value());
        } else if (a == "--topic") {
            o.topic = value();
            o.topic_given = true;
        } else if (a == "--topics") {
            o.topics = parse_number<int>(a, value());
            o.topics_given = true;
        } else if (a == "--sub-threads") {
            o.sub_threads = parse_number<int>(a, value());
        } else if (a == "--connect-window") {
            o.connect_window = parse_number<int>(a, value());
        } else if (a == "--source-ips") {
            o.source_ips = parse_number<int>(a, value());
        } else if (a == "--publishers") {
            o.publishers = parse_number<int>(a, value());
        } else if (a == "--rate") {
            o.rate = parse_double(a, value());
        } else if (a == "--duration") {
            o.duration = parse_double(a, value());
        } else if (a == "--payload") {
            o.payload = parse_number<int>(a, value());
        } else if (a == "--idle") {
            o.idle = true;
        } else if (a == "--pid") {
            o.pid = parse_number<long>(a, value());
        } else if (a == "--settle") {
            o.settle = parse_double(a, value());
        } else if (a == "--drain") {
            o.drain = parse_double(a, value());
        } else if (a == "--json") {
            o.json = true;
        } else {
            die("unknown option '" + a + "' (see --help)");
        }
    }
    if (o.topics_given && !o.topic_given) {
        o.topic = "t";
    }
    if (o.subscribers < 0 || o.topics < 1 || o.sub_threads < 1 || o.connect_window < 1 ||
        o.source_ips < 1 || o.source_ips > 254 || o.publishers < 0 || o.payload < 0) {
        die("out-of-range option (subscribers >= 0, topics >= 1, sub-threads >= 1, "
            "source-ips 1..254, publishers >= 0, payload >= 0)");
    }
    if (o.idle || o.publishers == 0) {
        o.idle = true;
        o.publishers = 0;
    }
    o.sub_threads = std::min(o.sub_threads, std::max(1, o.subscribers));
    return o;
}

std::string topic_name(const Options& o, int index) {
    return o.topics_given ? o.topic + std::to_string(index) : o.topic;
}

// ---------------------------------------------------------------------------------------
// Small helpers

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until_ns(std::int64_t t) {
    timespec ts{};
    ts.tv_sec = t / 1'000'000'000;
    ts.tv_nsec = t % 1'000'000'000;
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

void sleep_seconds(double s) {
    sleep_until_ns(now_ns() + static_cast<std::int64_t>(s * 1e9));
}

std::string url_encode(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += ch;
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) !=
            std::tolower(static_cast<unsigned char>(prefix[i]))) {
            return false;
        }
    }
    return true;
}

// The value of header `name` (lower case, with the colon) in a response head, if present.
std::optional<std::string_view> header_value(std::string_view head, std::string_view name) {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        std::size_t start = pos + 2;
        std::size_t end = head.find("\r\n", start);
        std::string_view line = head.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (iequals_prefix(line, name)) {
            line.remove_prefix(name.size());
            while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
                line.remove_prefix(1);
            }
            return line;
        }
        pos = end;
    }
    return std::nullopt;
}

int status_code(std::string_view head) {
    // "HTTP/1.1 200 OK"
    if (head.size() < 12 || !iequals_prefix(head, "HTTP/")) {
        return -1;
    }
    auto sp = head.find(' ');
    if (sp == std::string_view::npos || sp + 4 > head.size()) {
        return -1;
    }
    int code = 0;
    auto [p, ec] = std::from_chars(head.data() + sp + 1, head.data() + sp + 4, code);
    return ec == std::errc{} ? code : -1;
}

struct ProcSample {
    long rss_kb = -1;
    double cpu_s = -1; // utime + stime
};

ProcSample sample_process(long pid) {
    ProcSample s;
    if (pid <= 0) {
        return s;
    }
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            s.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
        }
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the ")" that closes the command name; utime and stime are 14 and 15.
    auto close = all.rfind(')');
    if (close != std::string::npos) {
        std::vector<std::string> fields;
        std::size_t i = close + 2;
        while (i < all.size() && fields.size() < 13) {
            std::size_t j = all.find(' ', i);
            fields.push_back(all.substr(i, j - i));
            i = j == std::string::npos ? all.size() : j + 1;
        }
        if (fields.size() == 13) {
            double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
            s.cpu_s = (std::strtod(fields[11].c_str(), nullptr) +
                       std::strtod(fields[12].c_str(), nullptr)) /
                      ticks;
        }
    }
    return s;
}

double self_cpu_s() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---------------------------------------------------------------------------------------
// Latency histogram: 16 linear sub-buckets per power of two (values in ns).

class Histogram {
public:
    void record(std::int64_t v) {
        auto u = static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0));
        ++buckets_[index(u)];
        ++count_;
        max_ = std::max(max_, u);
    }
    void merge(const Histogram& other) {
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            buckets_[i] += other.buckets_[i];
        }
        count_ += other.count_;
        max_ = std::max(max_, other.max_);
    }
    std::uint64_t count() const { return count_; }
    std::uint64_t max() const { return max_; }
    // The upper bound of the bucket holding the q-quantile (never above the max seen).
    std::uint64_t percentile(double q) const {
        if (count_ == 0) {
            return 0;
        }
        auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
        rank = std::max<std::uint64_t>(rank, 1);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank) {
                return std::min(upper(i), max_);
            }
        }
        return max_;
    }

private:
    static constexpr int kSubBits = 4;
    static std::size_t index(std::uint64_t v) {
        if (v < (1U << kSubBits)) {
            return static_cast<std::size_t>(v);
        }
        int e = 63 - __builtin_clzll(v); // >= kSubBits
        auto sub = (v >> (e - kSubBits)) & ((1U << kSubBits) - 1);
        return static_cast<std::size_t>((e - kSubBits + 1) * (1 << kSubBits)) + sub;
    }
    static std::uint64_t upper(std::size_t i) {
        if (i < (1U << kSubBits)) {
            return i;
        }
        std::size_t e = i / (1U << kSubBits) + kSubBits - 1;
        std::uint64_t sub = i % (1U << kSubBits);
        return (((1ULL << kSubBits) + sub + 1) << (e - kSubBits)) - 1;
    }
    std::array<std::uint64_t, 64 * (1 << kSubBits)> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

// ---------------------------------------------------------------------------------------
// Shared run state

struct Shared {
    explicit Shared(int topics) : heads_by_topic(static_cast<std::size_t>(topics)) {}

    std::atomic<int> heads{0}; // subscribers that got a 200 response head
    std::vector<std::atomic<int>> heads_by_topic;
    std::atomic<int> failed{0};    // subscribers that could not connect or were refused
    std::atomic<bool> stop{false}; // subscriber threads exit
    std::atomic<bool> stop_publishing{false};

    void fail(const std::string& why) {
        std::lock_guard lock(mu_);
        if (first_failure_.empty()) {
            first_failure_ = why;
        }
        failed.fetch_add(1, std::memory_order_relaxed);
    }
    std::string first_failure() {
        std::lock_guard lock(mu_);
        return first_failure_;
    }

private:
    std::mutex mu_;
    std::string first_failure_;
};

// Publisher p sends seq s to topic (p + s) % K: the expected set per topic is known.
int topic_of(int publisher, std::uint64_t seq, int topics) {
    return static_cast<int>((static_cast<std::uint64_t>(publisher) + seq) %
                            static_cast<std::uint64_t>(topics));
}

// ---------------------------------------------------------------------------------------
// Subscribers

struct Subscriber {
    enum class State : std::uint8_t { idle, connecting, head, body, closed };
    int fd = -1;
    int topic = 0;
    State state = State::idle;
    bool chunked = false;
    bool got_head = false;
    // Chunked transfer decoding, for servers that use it (herald does not for SSE).
    enum class Chunk : std::uint8_t { size, data, data_crlf, trailer };
    Chunk chunk = Chunk::size;
    std::uint64_t chunk_left = 0;
    std::size_t request_sent = 0;
    std::string pending;    // the head so far, or the unfinished SSE line
    std::string chunk_line; // an unfinished chunk-size line
    // The event being read: parsed from its first data: line.
    bool have_data = false;
    bool data_ok = false;
    int ev_publisher = 0;
    std::uint64_t ev_seq = 0;
    std::int64_t ev_time = 0;
    // Which (publisher, seq) arrived: one bit each.
    std::vector<std::vector<std::uint64_t>> seen;
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t malformed = 0;
    bool disconnected = false; // closed by the server before the end
};

class SubscriberThread {
public:
    SubscriberThread(const Options& o, Shared& shared, const addrinfo& addr,
                     std::vector<int> topics_of_subs, int first_ip_index, int window)
        : o_(o), shared_(shared), window_(window), ip_index_(first_ip_index) {
        std::memcpy(&addr_, addr.ai_addr, addr.ai_addrlen);
        addrlen_ = addr.ai_addrlen;
        subs_.resize(topics_of_subs.size());
        for (std::size_t i = 0; i < subs_.size(); ++i) {
            subs_[i].topic = topics_of_subs[i];
            subs_[i].seen.resize(static_cast<std::size_t>(o.publishers));
        }
        for (int t = 0; t < o.topics; ++t) {
            requests_.push_back("GET " + o.prefix + o.path + "?topic=" +
                                url_encode(topic_name(o, t)) + " HTTP/1.1\r\nHost: " + o.host +
                                ":" + o.port + "\r\nAccept: text/event-stream\r\n\r\n");
        }
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) {
            die(std::string("epoll_create1: ") + std::strerror(errno));
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
        thread_ = std::thread([this] { run(); });
    }
    void join() { thread_.join(); }

    // Events received with a (publisher, seq) never seen before by that subscriber.
    std::uint64_t unique_received() const { return unique_.load(std::memory_order_relaxed); }
    const std::vector<Subscriber>& subscribers() const { return subs_; }
    const Histogram& latency() const { return latency_; }
    std::uint64_t bytes() const { return bytes_; }

private:
    void run() {
        std::size_t next = 0;
        int opening = 0;
        std::vector<epoll_event> events(1024);
        std::vector<char> buf(256 * 1024);
        for (;;) {
            while (next < subs_.size() && opening < window_) {
                if (open(subs_[next], next)) {
                    ++opening;
                }
                ++next;
            }
            if (shared_.stop.load(std::memory_order_relaxed)) {
                return;
            }
            int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 50);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                die(std::string("epoll_wait: ") + std::strerror(errno));
            }
            std::int64_t now = n > 0 ? now_ns() : 0;
            for (int i = 0; i < n; ++i) {
                auto& s = subs_[events[static_cast<std::size_t>(i)].data.u64];
                std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
                bool was_opening =
                    s.state == Subscriber::State::connecting || s.state == Subscriber::State::head;
                handle(s, ev, buf, now);
                bool still_opening =
                    s.state == Subscriber::State::connecting || s.state == Subscriber::State::head;
                if (was_opening && !still_opening) {
                    --opening;
                }
            }
        }
    }

    // Starts a non-blocking connect; false when it failed at once (counted).
    bool open(Subscriber& s, std::size_t index) {
        int fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            shared_.fail(std::string("socket: ") + std::strerror(errno));
            s.state = Subscriber::State::closed;
            return false;
        }
        if (o_.source_ips > 1 && addr_.ss_family == AF_INET) {
            int one = 1;
            ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sockaddr_in local{};
            local.sin_family = AF_INET;
            local.sin_addr.s_addr = htonl(0x7F000001U + static_cast<std::uint32_t>(ip_index_));
            ip_index_ = (ip_index_ + 1) % o_.source_ips;
            if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
                shared_.fail(std::string("bind to a source ip: ") + std::strerror(errno));
                ::close(fd);
                s.state = Subscriber::State::closed;
                return false;
            }
        }
        int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr_), addrlen_);
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
        ev.data.u64 = index;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            die(std::string("epoll_ctl: ") + std::strerror(errno));
        }
        return true;
    }

    void close(Subscriber& s, const char* why) {
        bool stopping = shared_.stop.load(std::memory_order_relaxed);
        if (!s.got_head) {
            shared_.fail(why);
        } else if (!stopping) {
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
                close(s, (std::string("connect: ") + std::strerror(err)).c_str());
                return;
            }
            const std::string& req = requests_[static_cast<std::size_t>(s.topic)];
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
        // One read per readiness event: level-triggered epoll comes back for the rest,
        // so one busy connection cannot starve the others.
        ssize_t r = ::recv(s.fd, buf.data(), buf.size(), 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            close(s, "connection reset");
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
            if (code != 200) {
                close(s, ("subscribe answered " + std::to_string(code) + ": " +
                          head.substr(0, head.find("\r\n")))
                             .c_str());
                return;
            }
            auto te = header_value(head, "transfer-encoding:");
            s.chunked = te && te->find("chunked") != std::string_view::npos;
            s.got_head = true;
            s.state = Subscriber::State::body;
            shared_.heads_by_topic[static_cast<std::size_t>(s.topic)].fetch_add(1);
            shared_.heads.fetch_add(1, std::memory_order_relaxed);
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
            switch (s.chunk) {
            case Subscriber::Chunk::data: {
                auto take =
                    static_cast<std::size_t>(std::min<std::uint64_t>(s.chunk_left, data.size()));
                lines(s, data.substr(0, take), now);
                data.remove_prefix(take);
                s.chunk_left -= take;
                if (s.chunk_left == 0) {
                    s.chunk = Subscriber::Chunk::data_crlf;
                }
                break;
            }
            case Subscriber::Chunk::data_crlf:
            case Subscriber::Chunk::size:
            case Subscriber::Chunk::trailer: {
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
                }
                s.chunk_line.clear();
                break;
            }
            }
        }
    }

    void lines(Subscriber& s, std::string_view data, std::int64_t now) {
        while (!data.empty()) {
            const void* nlp = std::memchr(data.data(), '\n', data.size());
            if (nlp == nullptr) {
                s.pending.append(data);
                return;
            }
            auto nl = static_cast<std::size_t>(static_cast<const char*>(nlp) - data.data());
            if (s.pending.empty()) {
                line(s, data.substr(0, nl), now);
            } else {
                s.pending.append(data.substr(0, nl));
                line(s, s.pending, now);
                s.pending.clear();
            }
            data.remove_prefix(nl + 1);
        }
    }

    void line(Subscriber& s, std::string_view l, std::int64_t now) {
        if (!l.empty() && l.back() == '\r') {
            l.remove_suffix(1);
        }
        if (l.empty()) {
            if (s.have_data) {
                dispatch(s, now);
            }
            s.have_data = false;
            return;
        }
        if (l.rfind("data:", 0) != 0) {
            return; // id:, retry:, event:, comments
        }
        if (s.have_data) {
            return; // only the first data line carries what we check
        }
        l.remove_prefix(5);
        if (!l.empty() && l.front() == ' ') {
            l.remove_prefix(1);
        }
        s.have_data = true;
        s.data_ok = false;
        // "<publisher>-<seq> <time_ns> ..."
        const char* p = l.data();
        const char* end = l.data() + l.size();
        auto a = std::from_chars(p, end, s.ev_publisher);
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
        s.data_ok = s.ev_publisher >= 0 && s.ev_publisher < o_.publishers;
    }

    void dispatch(Subscriber& s, std::int64_t now) {
        ++s.received;
        if (!s.data_ok) {
            ++s.malformed;
            return;
        }
        auto& bits = s.seen[static_cast<std::size_t>(s.ev_publisher)];
        std::size_t word = static_cast<std::size_t>(s.ev_seq / 64);
        std::uint64_t mask = 1ULL << (s.ev_seq % 64);
        if (word >= bits.size()) {
            bits.resize(std::max(word + 1, bits.size() * 2), 0);
        }
        if ((bits[word] & mask) != 0) {
            ++s.duplicates;
            return;
        }
        bits[word] |= mask;
        unique_.fetch_add(1, std::memory_order_relaxed);
        latency_.record(now - s.ev_time);
    }

    const Options& o_;
    Shared& shared_;
    int window_;
    int ip_index_;
    sockaddr_storage addr_{};
    socklen_t addrlen_ = 0;
    int epfd_ = -1;
    std::vector<Subscriber> subs_;
    std::vector<std::string> requests_; // one GET per topic
    Histogram latency_;
    std::uint64_t bytes_ = 0;
    std::thread thread_;
    alignas(64) std::atomic<std::uint64_t> unique_{0};
};

// ---------------------------------------------------------------------------------------
// Publishers

struct PublisherResult {
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;    // non-200 answers
    std::uint64_t io_errors = 0; // connection failures (the publisher reconnects)
    std::string first_error;
    std::vector<std::uint8_t> ok_seq; // 1 where seq got a 200
    Histogram round_trip;             // POST sent -> response read, for each 200
    std::int64_t first_ns = 0;
    std::int64_t last_ns = 0;
};

class Publisher {
public:
    Publisher(const Options& o, Shared& shared, const addrinfo& addr, int index)
        : o_(o), shared_(shared), index_(index) {
        std::memcpy(&addr_, addr.ai_addr, addr.ai_addrlen);
        addrlen_ = addr.ai_addrlen;
    }
    ~Publisher() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    void start(std::int64_t t0) {
        thread_ = std::thread([this, t0] { run(t0); });
    }
    void join() { thread_.join(); }
    const PublisherResult& result() const { return result_; }

private:
    bool connect() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            return false;
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr_), addrlen_) != 0) {
            ::close(fd_);
            fd_ = -1;
            return false;
        }
        in_.clear();
        return true;
    }

    void note_io_error(const std::string& why) {
        ++result_.io_errors;
        if (result_.first_error.empty()) {
            result_.first_error = why;
        }
    }

    // A whole response at the front of in_: consumes it and gives its status code.
    std::optional<int> take_response() {
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

    // Sends one request and reads its response; the status code, or -1 on an I/O error.
    int round_trip(const std::string& req) {
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

    void run(std::int64_t t0) {
        const double per_publisher = o_.rate > 0 ? o_.rate / o_.publishers : 0;
        const std::int64_t interval =
            per_publisher > 0 ? static_cast<std::int64_t>(1e9 / per_publisher) : 0;
        std::vector<std::string> topics;
        for (int t = 0; t < o_.topics; ++t) {
            topics.push_back(url_encode(topic_name(o_, t)));
        }
        const std::string head_start = "POST " + o_.prefix + o_.path +
                                       " HTTP/1.1\r\nHost: " + o_.host + ":" + o_.port +
                                       "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                       "Content-Length: ";
        std::string body;
        std::string req;
        // Stagger the publishers' first sends over one interval.
        std::int64_t next = t0 + (interval * index_) / std::max(1, o_.publishers);
        result_.first_ns = now_ns();
        for (std::uint64_t seq = 0; !shared_.stop_publishing.load(std::memory_order_relaxed);
             ++seq) {
            if (interval > 0) {
                sleep_until_ns(next);
                next += interval;
                if (shared_.stop_publishing.load(std::memory_order_relaxed)) {
                    break;
                }
            }
            if (fd_ < 0 && !connect()) {
                note_io_error(std::string("connect: ") + std::strerror(errno));
                result_.ok_seq.push_back(0);
                sleep_seconds(0.1);
                continue;
            }
            // data = "<publisher>-<seq> <time_ns> <padding>", padded to --payload bytes.
            std::string data = std::to_string(index_) + "-" + std::to_string(seq) + " " +
                               std::to_string(now_ns()) + " ";
            if (static_cast<int>(data.size()) < o_.payload) {
                data.append(static_cast<std::size_t>(o_.payload) - data.size(), 'x');
            }
            body = "topic=" + topics[static_cast<std::size_t>(topic_of(index_, seq, o_.topics))] +
                   "&data=" + url_encode(data);
            req = head_start + std::to_string(body.size()) + "\r\n\r\n" + body;
            const std::int64_t sent_at = now_ns();
            int code = round_trip(req);
            if (code == 200) {
                result_.round_trip.record(now_ns() - sent_at);
                ++result_.ok;
                result_.ok_seq.push_back(1);
            } else {
                result_.ok_seq.push_back(0);
                if (code < 0) {
                    note_io_error(std::string("publish connection: ") + std::strerror(errno));
                    ::close(fd_);
                    fd_ = -1;
                } else {
                    ++result_.errors;
                    if (result_.first_error.empty()) {
                        result_.first_error = "publish answered " + std::to_string(code);
                    }
                }
            }
        }
        result_.last_ns = now_ns();
    }

    const Options& o_;
    Shared& shared_;
    int index_;
    sockaddr_storage addr_{};
    socklen_t addrlen_ = 0;
    int fd_ = -1;
    std::string in_;
    PublisherResult result_;
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------
// Main

struct Results {
    int subscribers = 0;
    int connected = 0;
    int failed = 0;
    double connect_s = 0;
    std::uint64_t publishes = 0;
    std::uint64_t publish_errors = 0;
    double publish_s = 0;
    std::uint64_t deliveries = 0;
    std::uint64_t bytes = 0; // received by all subscribers, response heads included
    std::uint64_t expected = 0;
    std::uint64_t missing = 0;
    int subscribers_missing = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t malformed = 0;
    std::uint64_t stray = 0;
    int disconnected = 0;
    Histogram latency;
    Histogram publish_rtt;
    ProcSample before, after;
    double server_cpu_s = -1;
    double harness_cpu_s = 0;
    double drain_s = 0;
};

std::string fmt_ns(std::uint64_t ns) {
    char b[32];
    if (ns < 10'000) {
        std::snprintf(b, sizeof b, "%" PRIu64 " ns", ns);
    } else if (ns < 10'000'000) {
        std::snprintf(b, sizeof b, "%.1f us", static_cast<double>(ns) / 1e3);
    } else if (ns < 10'000'000'000ULL) {
        std::snprintf(b, sizeof b, "%.1f ms", static_cast<double>(ns) / 1e6);
    } else {
        std::snprintf(b, sizeof b, "%.2f s", static_cast<double>(ns) / 1e9);
    }
    return b;
}

void print(const Options& o, const Results& r) {
    auto row = [](const char* k, const std::string& v) {
        std::printf("  %-22s %s\n", k, v.c_str());
    };
    char b[256];
    std::printf("herald_load results\n");
    std::snprintf(b, sizeof b, "%d on %d topic(s), %d connected, %d failed", r.subscribers,
                  o.topics, r.connected, r.failed);
    row("subscribers", b);
    std::snprintf(b, sizeof b, "%.3f s", r.connect_s);
    row("connect time", b);
    if (r.before.rss_kb >= 0) {
        std::snprintf(b, sizeof b, "%ld KiB -> %ld KiB", r.before.rss_kb, r.after.rss_kb);
        row("server RSS", b);
        if (r.connected > 0) {
            double per =
                static_cast<double>(r.after.rss_kb - r.before.rss_kb) * 1024.0 / r.connected;
            std::snprintf(b, sizeof b, "%.0f bytes", per);
            row("RSS per subscriber", b);
        }
    }
    if (o.idle) {
        return;
    }
    std::snprintf(b, sizeof b, "%d publisher(s), %s, %d-byte payload, %.2f s", o.publishers,
                  o.rate > 0 ? ("rate " + std::to_string(static_cast<long>(o.rate)) + "/s").c_str()
                             : "as fast as possible",
                  o.payload, r.publish_s);
    row("publishing", b);
    std::snprintf(b, sizeof b, "%" PRIu64 " ok, %" PRIu64 " errors, %.0f/s", r.publishes,
                  r.publish_errors,
                  r.publish_s > 0 ? static_cast<double>(r.publishes) / r.publish_s : 0.0);
    row("publishes", b);
    std::snprintf(b, sizeof b, "%" PRIu64 " of %" PRIu64 " expected, %.0f/s, %.1f MiB/s",
                  r.deliveries, r.expected,
                  r.publish_s > 0 ? static_cast<double>(r.deliveries) / r.publish_s : 0.0,
                  r.publish_s > 0 ? static_cast<double>(r.bytes) / r.publish_s / 1048576 : 0.0);
    row("deliveries", b);
    std::snprintf(b, sizeof b, "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
                  fmt_ns(r.latency.percentile(0.50)).c_str(),
                  fmt_ns(r.latency.percentile(0.90)).c_str(),
                  fmt_ns(r.latency.percentile(0.99)).c_str(),
                  fmt_ns(r.latency.percentile(0.999)).c_str(), fmt_ns(r.latency.max()).c_str());
    row("latency", b);
    std::snprintf(
        b, sizeof b, "p50 %s  p99 %s  max %s", fmt_ns(r.publish_rtt.percentile(0.50)).c_str(),
        fmt_ns(r.publish_rtt.percentile(0.99)).c_str(), fmt_ns(r.publish_rtt.max()).c_str());
    row("publish round trip", b);
    std::snprintf(b, sizeof b, "%" PRIu64 " (in %d subscriber(s))", r.missing,
                  r.subscribers_missing);
    row("missing", b);
    std::snprintf(b, sizeof b, "%" PRIu64, r.duplicates);
    row("duplicates", b);
    if (r.malformed > 0 || r.stray > 0) {
        std::snprintf(b, sizeof b, "%" PRIu64 " malformed, %" PRIu64 " not acknowledged",
                      r.malformed, r.stray);
        row("unexpected events", b);
    }
    std::snprintf(b, sizeof b, "%d", r.disconnected);
    row("disconnected early", b);
    std::snprintf(b, sizeof b, "%.2f s", r.drain_s);
    row("drain wait", b);
    if (r.server_cpu_s >= 0) {
        std::snprintf(b, sizeof b, "server %.0f%%, harness %.0f%% (of one core, while publishing)",
                      100 * r.server_cpu_s / r.publish_s, 100 * r.harness_cpu_s / r.publish_s);
    } else {
        std::snprintf(b, sizeof b, "harness %.0f%% (of one core, while publishing)",
                      100 * r.harness_cpu_s / r.publish_s);
    }
    row("cpu", b);
}

void print_json(const Options& o, const Results& r) {
    double per = r.connected > 0 && r.before.rss_kb >= 0
                     ? static_cast<double>(r.after.rss_kb - r.before.rss_kb) * 1024.0 / r.connected
                     : -1;
    double ps = r.publish_s > 0 ? static_cast<double>(r.publishes) / r.publish_s : 0;
    double ds = r.publish_s > 0 ? static_cast<double>(r.deliveries) / r.publish_s : 0;
    std::printf(
        "{\"subscribers\":%d,\"topics\":%d,\"connected\":%d,\"failed\":%d,\"connect_s\":%.3f,"
        "\"idle\":%s,\"publishers\":%d,\"rate\":%.0f,\"payload\":%d,\"publish_s\":%.3f,"
        "\"publishes\":%" PRIu64 ",\"publish_errors\":%" PRIu64 ",\"publishes_per_s\":%.1f,"
        "\"deliveries\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"deliveries_per_s\":%.1f,"
        "\"bytes_received\":%" PRIu64 ","
        "\"latency_ns\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
        ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "},"
        "\"publish_rtt_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "},"
        "\"missing\":%" PRIu64 ",\"subscribers_missing\":%d,\"duplicates\":%" PRIu64
        ",\"malformed\":%" PRIu64 ",\"unacknowledged\":%" PRIu64 ",\"disconnected\":%d,"
        "\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"bytes_per_subscriber\":%.0f,"
        "\"server_cpu_s\":%.2f,\"harness_cpu_s\":%.2f}\n",
        r.subscribers, o.topics, r.connected, r.failed, r.connect_s, o.idle ? "true" : "false",
        o.publishers, o.rate, o.payload, r.publish_s, r.publishes, r.publish_errors, ps,
        r.deliveries, r.expected, ds, r.bytes, r.latency.percentile(0.5), r.latency.percentile(0.9),
        r.latency.percentile(0.99), r.latency.percentile(0.999), r.latency.max(),
        r.publish_rtt.percentile(0.5), r.publish_rtt.percentile(0.99), r.publish_rtt.max(),
        r.missing, r.subscribers_missing, r.duplicates, r.malformed, r.stray, r.disconnected,
        r.before.rss_kb, r.after.rss_kb, per, r.server_cpu_s, r.harness_cpu_s);
}

// Raises the soft descriptor limit to the hard one; the limit now in force.
rlim_t raise_nofile() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        die(std::string("getrlimit: ") + std::strerror(errno));
    }
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            std::fprintf(stderr, "herald_load: warning: setrlimit(NOFILE, %llu): %s\n",
                         static_cast<unsigned long long>(lim.rlim_max), std::strerror(errno));
            ::getrlimit(RLIMIT_NOFILE, &lim);
        }
    }
    return lim.rlim_cur;
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse_options(argc, argv);
    ::signal(SIGPIPE, SIG_IGN);

    const rlim_t nofile = raise_nofile();
    const auto needed = static_cast<rlim_t>(o.subscribers) + static_cast<rlim_t>(o.publishers) +
                        static_cast<rlim_t>(o.sub_threads) + 16;
    if (needed > nofile) {
        die("--subscribers " + std::to_string(o.subscribers) + " needs about " +
            std::to_string(needed) + " open files, but this process may open only " +
            std::to_string(nofile) +
            " (RLIMIT_NOFILE hard limit; raise it with `ulimit -Hn` as root, or run fewer "
            "subscribers per harness process)");
    }
    if (o.subscribers > 28000 * o.source_ips) {
        die("--subscribers " + std::to_string(o.subscribers) + " exceeds the ephemeral ports of " +
            std::to_string(o.source_ips) + " source address(es) (~28k each); use --source-ips " +
            std::to_string(o.subscribers / 28000 + 1));
    }

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &res); rc != 0) {
        die("cannot resolve " + o.host + ":" + o.port + ": " + ::gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addr(res, &::freeaddrinfo);
    if (o.source_ips > 1 && addr->ai_family != AF_INET) {
        die("--source-ips needs an IPv4 server address");
    }

    Shared shared(o.topics);
    Results r;
    r.subscribers = o.subscribers;
    r.before = sample_process(o.pid);
    if (o.pid > 0 && r.before.rss_kb < 0) {
        die("cannot read /proc/" + std::to_string(o.pid) + "/status (is --pid right?)");
    }

    // Subscriber i follows topic i % K and lives on thread i % M.
    std::vector<std::unique_ptr<SubscriberThread>> sub_threads;
    for (int t = 0; t < o.sub_threads; ++t) {
        std::vector<int> topics;
        for (int i = t; i < o.subscribers; i += o.sub_threads) {
            topics.push_back(i % o.topics);
        }
        int window = std::max(1, o.connect_window / o.sub_threads);
        sub_threads.push_back(std::make_unique<SubscriberThread>(
            o, shared, *addr, std::move(topics), t % o.source_ips, window));
    }
    const std::int64_t connect_start = now_ns();
    for (auto& t : sub_threads) {
        t->start();
    }
    // Wait for every subscriber's response head (or failure), at most 120 s.
    while (shared.heads.load() + shared.failed.load() < o.subscribers) {
        if (now_ns() - connect_start > 120'000'000'000LL) {
            std::fprintf(stderr, "herald_load: gave up waiting for response heads after 120 s\n");
            break;
        }
        sleep_seconds(0.005);
    }
    r.connect_s = static_cast<double>(now_ns() - connect_start) / 1e9;
    r.connected = shared.heads.load();
    r.failed = shared.failed.load();
    if (r.failed > 0) {
        std::fprintf(stderr, "herald_load: %d subscriber(s) failed; first: %s\n", r.failed,
                     shared.first_failure().c_str());
    }
    if (o.pid > 0) {
        sleep_seconds(o.settle);
    }
    r.after = sample_process(o.pid);

    std::vector<std::unique_ptr<Publisher>> pubs;
    std::vector<std::uint64_t> per_topic(static_cast<std::size_t>(o.topics), 0);
    if (!o.idle && o.publishers > 0) {
        for (int p = 0; p < o.publishers; ++p) {
            pubs.push_back(std::make_unique<Publisher>(o, shared, *addr, p));
        }
        ProcSample cpu0 = sample_process(o.pid);
        double self0 = self_cpu_s();
        std::int64_t t0 = now_ns();
        for (auto& p : pubs) {
            p->start(t0);
        }
        sleep_until_ns(t0 + static_cast<std::int64_t>(o.duration * 1e9));
        shared.stop_publishing.store(true);
        for (auto& p : pubs) {
            p->join();
        }
        ProcSample cpu1 = sample_process(o.pid);
        r.harness_cpu_s = self_cpu_s() - self0;
        if (cpu0.cpu_s >= 0 && cpu1.cpu_s >= 0) {
            r.server_cpu_s = cpu1.cpu_s - cpu0.cpu_s;
        }
        std::int64_t first = INT64_MAX;
        std::int64_t last = 0;
        for (auto& p : pubs) {
            first = std::min(first, p->result().first_ns);
            last = std::max(last, p->result().last_ns);
            r.publishes += p->result().ok;
            r.publish_rtt.merge(p->result().round_trip);
            r.publish_errors += p->result().errors + p->result().io_errors;
            if (!p->result().first_error.empty()) {
                std::fprintf(stderr, "herald_load: publisher %d: %" PRIu64 " error(s); first: %s\n",
                             static_cast<int>(&p - pubs.data()),
                             p->result().errors + p->result().io_errors,
                             p->result().first_error.c_str());
            }
        }
        r.publish_s = static_cast<double>(last - first) / 1e9;

        // Acknowledged publishes per topic, and what the connected subscribers should get.
        for (int p = 0; p < o.publishers; ++p) {
            const auto& ok = pubs[static_cast<std::size_t>(p)]->result().ok_seq;
            for (std::size_t s = 0; s < ok.size(); ++s) {
                if (ok[s]) {
                    ++per_topic[static_cast<std::size_t>(topic_of(p, s, o.topics))];
                }
            }
        }
        std::uint64_t expected = 0;
        for (int t = 0; t < o.topics; ++t) {
            expected += per_topic[static_cast<std::size_t>(t)] *
                        static_cast<std::uint64_t>(
                            shared.heads_by_topic[static_cast<std::size_t>(t)].load());
        }
        // Wait up to --drain seconds for events still in flight.
        std::int64_t drain0 = now_ns();
        for (;;) {
            std::uint64_t got = 0;
            for (auto& t : sub_threads) {
                got += t->unique_received();
            }
            if (got >= expected || now_ns() - drain0 > static_cast<std::int64_t>(o.drain * 1e9)) {
                break;
            }
            sleep_seconds(0.01);
        }
        r.drain_s = static_cast<double>(now_ns() - drain0) / 1e9;
    }
    shared.stop.store(true);
    for (auto& t : sub_threads) {
        t->join();
    }

    // Tally: per subscriber, compare what arrived with what was acknowledged.
    for (auto& t : sub_threads) {
        r.latency.merge(t->latency());
        r.bytes += t->bytes();
        for (const auto& s : t->subscribers()) {
            if (s.disconnected) {
                ++r.disconnected;
            }
            r.duplicates += s.duplicates;
            r.malformed += s.malformed;
            r.deliveries += s.received;
            if (!s.got_head || pubs.empty()) {
                continue;
            }
            // Walk the set bits only: the cost is the deliveries, not subscribers x seqs.
            std::uint64_t valid = 0;
            for (int p = 0; p < o.publishers; ++p) {
                const auto& ok = pubs[static_cast<std::size_t>(p)]->result().ok_seq;
                const auto& bits = s.seen[static_cast<std::size_t>(p)];
                for (std::size_t w = 0; w < bits.size(); ++w) {
                    for (std::uint64_t word = bits[w]; word != 0; word &= word - 1) {
                        std::size_t seq = w * 64 + static_cast<std::size_t>(__builtin_ctzll(word));
                        if (seq < ok.size() && ok[seq] && topic_of(p, seq, o.topics) == s.topic) {
                            ++valid;
                        } else {
                            ++r.stray;
                        }
                    }
                }
            }
            const std::uint64_t want = per_topic[static_cast<std::size_t>(s.topic)];
            const std::uint64_t missing = want - valid;
            r.expected += want;
            r.missing += missing;
            r.subscribers_missing += missing > 0 ? 1 : 0;
        }
    }

    print(o, r);
    if (o.json) {
        print_json(o, r);
    }
    std::fflush(stdout);
    const bool clean = r.failed == 0 && r.disconnected == 0 && r.publish_errors == 0 &&
                       r.missing == 0 && r.duplicates == 0 && r.malformed == 0 && r.stray == 0;
    return clean ? 0 : 1;
}
