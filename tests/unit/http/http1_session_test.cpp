// The HTTP/1.1 session over a real loopback socket, driven by hand: the worker's event loop
// is polled by the test and its clock is the test's, so timeouts need no sleeping.
#include "http/http1_session.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/post.hpp>

#include "store/memory/memory_store.hpp"

namespace herald::http {
namespace {

using namespace std::chrono_literals;

// One worker's serving stack (memory store, hub, worker context) without its thread.
class Rig {
public:
    explicit Rig(config::Config c = {})
        : config_(std::move(c)), store_(store::Retention{}), worker_(0),
          hub_(store_, 1,
               [this](unsigned) {
                   boost::asio::post(worker_.io(), [this] { hub_.shard(0).drain(); });
               }),
          services_{config_, hub_, {}, {}, {}, {}}, ctx_(services_, worker_, hub_.shard(0)),
          acceptor_(worker_.io()) {
        ctx_.auth = std::make_shared<auth::Authenticator>(config_.auth, std::nullopt, "");
        ctx_.clock = [this] { return now_; };
        services_.workers.push_back(&ctx_);
        acceptor_.open(net::tcp::v4());
        acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
    }
    ~Rig() {
        close_all(ctx_);
        worker_.io().poll();
    }

    // A new client connection, served by an Http1Session; returns the client's fd.
    int connect() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(acceptor_.local_endpoint().port());
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        serve_connection(ctx_, acceptor_.accept());
        poll();
        return fd;
    }

    void send(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0) {
                poll(); // the hub reads, the buffer drains
                continue;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        poll();
    }

    // Runs the worker's loop briefly. run_for, not poll: poll()'s zero-timeout reactor
    // runs were seen to miss a socket's turn to writable, which run() never does.
    void poll() {
        worker_.io().restart();
        worker_.io().run_for(std::chrono::microseconds(100));
    }

    // Reads from the client side until `done(text)` or the peer closes, bounded.
    std::string read_until(int fd, const std::function<bool(const std::string&)>& done,
                           bool* closed = nullptr, int rounds = 5000) {
        std::string text;
        char buf[65536];
        for (int i = 0; i < rounds && !done(text); ++i) {
            poll();
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                text.append(buf, static_cast<std::size_t>(n));
            } else if (n == 0) {
                if (closed != nullptr) {
                    *closed = true;
                }
                break;
            } else {
                std::this_thread::sleep_for(200us);
            }
        }
        return text;
    }

    // Reads and drops whatever the client side has received so far.
    void drain(int fd) {
        char buf[65536];
        for (int i = 0, quiet = 0; i < 2000 && quiet < 5; ++i) {
            poll();
            quiet = ::recv(fd, buf, sizeof buf, 0) > 0 ? 0 : quiet + 1;
        }
    }

    // Advances the worker's clock and runs its sweep.
    void advance(base::MonoClock::duration d) {
        now_ += d;
        sweep(ctx_, now_);
        poll();
    }

    WorkerContext& ctx() { return ctx_; }
    hub::Hub& hub() { return hub_; }

private:
    config::Config config_;
    store::MemoryStore store_;
    net::Worker worker_;
    hub::Hub hub_;
    Services services_;
    WorkerContext ctx_;
    net::Acceptor acceptor_;
    base::MonoClock::time_point now_ = base::MonoClock::now();
};

std::size_t count(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

std::string publish_request(std::string_view topic, std::string_view data) {
    std::string body = "topic=" + std::string(topic) + "&data=" + std::string(data);
    return "POST /events HTTP/1.1\r\nHost: hub\r\nUser-Agent: test\r\n"
           "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(Http1Session, ARequestSplitAtEveryOffsetIsAnswered) {
    Rig rig;
    const std::string req = publish_request("split", "hello");
    for (std::size_t cut = 1; cut < req.size(); ++cut) {
        const int fd = rig.connect();
        rig.send(fd, req.substr(0, cut));
        rig.send(fd, req.substr(cut));
        const std::string got =
            rig.read_until(fd, [](const std::string& t) { return t.find("\r\n\r\n") != t.npos; });
        EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << "cut at " << cut << ": " << got;
        ::close(fd);
    }
}

TEST(Http1Session, PipelinedRequestsPastTheScratchBufferAreAnsweredInOrder) {
    Rig rig;
    std::string batch;
    for (int i = 0; i < 500; ++i) {
        batch += publish_request("pipe", std::string(150, 'a' + i % 26));
    }
    ASSERT_GT(batch.size(), 64U * 1024);
    const int fd = rig.connect();
    rig.send(fd, batch);
    const std::string got =
        rig.read_until(fd, [](const std::string& t) { return count(t, "HTTP/1.1 200 OK") >= 500; });
    EXPECT_EQ(count(got, "HTTP/1.1 200 OK"), 500U);
    EXPECT_EQ(count(got, "HTTP/1.1 4"), 0U);
    ::close(fd);
}

TEST(Http1Session, AHalfArrivedRequestGets408AtTheRequestTimeoutOfTheInjectedClock) {
    Rig rig;
    const int fd = rig.connect();
    rig.send(fd, "GET /healthz HTTP/1.1\r\nHost: hub\r\n");
    rig.advance(5s); // under the 10 s default: nothing yet
    bool closed = false;
    std::string got = rig.read_until(
        fd, [](const std::string& t) { return !t.empty(); }, &closed, 200);
    EXPECT_TRUE(got.empty()) << got;
    EXPECT_FALSE(closed);
    rig.advance(6s);
    got = rig.read_until(
        fd, [](const std::string&) { return false; }, &closed);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos);
    EXPECT_TRUE(closed);
    ::close(fd);
}

TEST(Http1Session, ASmuggledBodyIsRefusedAndNeverRunAsARequest) {
    Rig rig;
    const std::string inner = publish_request("smuggled", "x");
    const int fd = rig.connect();
    rig.send(fd, "POST /events HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: gzip\r\n\r\n" + inner);
    bool closed = false;
    const std::string got = rig.read_until(
        fd, [](const std::string&) { return false; }, &closed);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request\r\n")) << got;
    EXPECT_EQ(count(got, "HTTP/1.1 "), 1U) << got;
    EXPECT_TRUE(closed);
    EXPECT_EQ(rig.hub().published(), 0U);
    ::close(fd);
}

TEST(Http1Session, ExpectContinueIsAnsweredBeforeTheBody) {
    Rig rig;
    const int fd = rig.connect();
    const std::string body = "topic=t&data=" + std::string(2000, 'x');
    rig.send(fd, "POST /events HTTP/1.1\r\nHost: hub\r\nExpect: 100-continue\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n");
    std::string got =
        rig.read_until(fd, [](const std::string& t) { return t.find("\r\n\r\n") != t.npos; });
    EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
    rig.send(fd, body);
    got = rig.read_until(fd, [](const std::string& t) { return t.find("\r\n\r\n") != t.npos; });
    EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got;
    ::close(fd);
}

TEST(Http1Session, AnIdleStreamGetsKeepAliveCommentsWithNoBlankLine) {
    Rig rig;
    const int fd = rig.connect();
    rig.send(fd, "GET /events?topic=k HTTP/1.1\r\nHost: hub\r\n\r\n");
    std::string got =
        rig.read_until(fd, [](const std::string& t) { return t.find("retry: 3000\n") != t.npos; });
    ASSERT_NE(got.find("retry: 3000\n"), std::string::npos) << got;
    rig.advance(16s);
    got += rig.read_until(fd, [](const std::string& t) { return t.find(":\n") != t.npos; });
    EXPECT_NE(got.find("retry: 3000\n:\n"), std::string::npos) << got;
    EXPECT_EQ(got.find("\n\n", got.find("\r\n\r\n") + 4), std::string::npos) << got;
    ::close(fd);
}

TEST(Http1Session, AStalledStreamIsCutAtTheWriteTimeoutAndOthersKeepReceiving) {
    config::Config c;
    c.server.slow_client_bytes = 64 * 1024 * 1024; // only the write timeout may cut it
    c.server.stream_send_buffer_bytes = 16 * 1024;
    Rig rig(c);
    const int stalled = rig.connect();
    rig.send(stalled, "GET /events?topic=s HTTP/1.1\r\nHost: hub\r\n\r\n");
    const int reader = rig.connect();
    rig.send(reader, "GET /events?topic=s HTTP/1.1\r\nHost: hub\r\n\r\n");
    auto unsent = [&rig](std::uint64_t nth) {
        std::size_t n = 0;
        rig.ctx().connections.for_each([&](Session& s) {
            s.for_each_stream([&](SseStream& st) {
                if ((st.id() & 0xffff) == nth) {
                    n = st.unsent() + st.queue().front_bytes();
                }
            });
        });
        return n;
    };
    // More than the stalled client's socket buffers hold, so some stays queued.
    for (int i = 0; i < 160; ++i) {
        log::NewEvent e;
        e.topics = {"s"};
        e.data = std::string(64 * 1024, 'z');
        rig.hub().publish(std::move(e), nullptr);
        rig.drain(reader);
    }
    // The reader reads everything (loopback ACKs may come late: bounded, with pauses).
    for (int i = 0; i < 2000 && unsent(2) > 0; ++i) {
        rig.drain(reader);
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(unsent(2), 0U);
    ASSERT_GT(unsent(1), 0U);
    // The first sweep notes how much reached the stalled client's kernel; from then on
    // nothing moves.
    rig.advance(1s);
    rig.advance(29s);
    EXPECT_EQ(rig.ctx().stats.stalled_disconnects.load(), 0U);
    rig.advance(2s);
    EXPECT_EQ(rig.ctx().stats.stalled_disconnects.load(), 1U);
    EXPECT_EQ(rig.ctx().stats.queued_bytes.load(), 0U);
    EXPECT_EQ(rig.hub().subscribers(), 1);
    // The reader still receives.
    log::NewEvent e;
    e.topics = {"s"};
    e.data = "after";
    rig.hub().publish(std::move(e), nullptr);
    const std::string got = rig.read_until(
        reader, [](const std::string& t) { return t.find("data: after\n\n") != t.npos; });
    EXPECT_NE(got.find("data: after\n\n"), std::string::npos);
    ::close(stalled);
    ::close(reader);
}

} // namespace
} // namespace herald::http
