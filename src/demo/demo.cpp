#include "demo/demo.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "http/form.hpp"

namespace herald::demo {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace http_form = herald::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

std::optional<std::chrono::microseconds> parse_interval(std::string_view text) {
    double value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || !std::isfinite(value)) {
        return std::nullopt;
    }
    const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
    double us = 0;
    if (unit == "ms") {
        us = value * 1e3;
    } else if (unit == "s") {
        us = value * 1e6;
    } else if (unit == "m") {
        us = value * 60e6;
    } else if (unit == "h") {
        us = value * 3600e6;
    } else {
        return std::nullopt;
    }
    if (us < 1000 || us > 3600e6) { // 1 ms .. 1 h
        return std::nullopt;
    }
    return std::chrono::microseconds(static_cast<std::int64_t>(us));
}

std::string random_letters(std::uint64_t n) {
    // splitmix64 seeded with N: a fixed sequence per message number.
    std::uint64_t state = n;
    std::string out;
    for (int i = 0; i < 16; ++i) {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        out += static_cast<char>('a' + z % 26);
    }
    return out;
}

std::string message_json(std::uint64_t n, std::int64_t unix_seconds) {
    return "{\n  \"time\": " + std::to_string(unix_seconds) + ",\n  \"random\": \"" +
           random_letters(n) + "\"\n}";
}

namespace {

// An SSE frame: each line of `data` becomes a data: line.
std::string frame(std::string_view id, std::string_view event, std::string_view data) {
    std::string out;
    if (!id.empty()) {
        out.append("id: ").append(id).append("\n");
    }
    if (!event.empty()) {
        out.append("event: ").append(event).append("\n");
    }
    std::size_t start = 0;
    for (;;) {
        auto nl = data.find('\n', start);
        out.append("data: ").append(data.substr(start, nl - start)).append("\n");
        if (nl == std::string_view::npos) {
            break;
        }
        start = nl + 1;
    }
    out.append("\n");
    return out;
}

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// RFC 3339 with microseconds and the offset, in UTC: 2026-11-23T23:59:01.123456+00:00.
std::string rfc3339_now() {
    const auto now = std::chrono::system_clock::now();
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(us / 1'000'000);
    std::tm tm{};
    ::gmtime_r(&seconds, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(us % 1'000'000));
    return buf;
}

// The query's parameters, decoded; the first of a repeated name wins.
std::map<std::string, std::string> query_of(std::string_view target) {
    std::map<std::string, std::string> q;
    if (auto mark = target.find('?'); mark != std::string_view::npos) {
        for (auto& field : http_form::decode_form(target.substr(mark + 1))) {
            q.emplace(std::move(field.key), std::move(field.value));
        }
    }
    return q;
}

// A decimal number and nothing else.
std::optional<std::uint64_t> whole_number(std::string_view s) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    }
    return diff == 0;
}

// One streaming client: what /status shows, and what wakes its coroutine.
struct Stream {
    Stream(tcp::socket s, std::uint64_t i)
        : socket(std::move(s)), timer(socket.get_executor()), id(i) {}
    tcp::socket socket;
    asio::steady_timer timer;
    std::uint64_t id;
    std::string remote;
    std::int64_t connected_ms = 0;
    std::string last_id;
    std::string topic;
    bool gone = false;
};
using StreamPtr = std::shared_ptr<Stream>;

class Server {
public:
    Server(asio::io_context& io, const Options& o) : io_(io), o_(o), acceptor_(io) {}

    bool listen() {
        error_code ec;
        tcp::endpoint ep(asio::ip::make_address(o_.host, ec), o_.port);
        if (ec) {
            spdlog::error("herald demo: bad address {}: {}", o_.host, ec.message());
            return false;
        }
        acceptor_.open(ep.protocol(), ec);
        if (!ec) {
            acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
            acceptor_.bind(ep, ec);
        }
        if (!ec) {
            acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            spdlog::error("herald demo: cannot listen on {}:{}: {}", o_.host, o_.port,
                          ec.message());
            return false;
        }
        spdlog::info("herald demo: listening on http://{}:{}", o_.host,
                     acceptor_.local_endpoint().port());
        return true;
    }

    awaitable<void> accept_loop() {
        for (;;) {
            auto accepted = co_await acceptor_.async_accept(tuple_awaitable);
            if (std::get<0>(accepted)) {
                if (!acceptor_.is_open()) {
                    co_return;
                }
                continue;
            }
            asio::co_spawn(io_, session(std::move(std::get<1>(accepted))), asio::detached);
        }
    }

    void stop() {
        error_code ec;
        acceptor_.close(ec);
        for (auto& [id, s] : streams_) {
            s->gone = true;
            s->socket.close(ec);
            s->timer.cancel();
        }
        for (auto& socket : idle_) {
            socket->close(ec);
        }
    }

private:
    awaitable<void> session(tcp::socket socket) {
        auto self_socket = std::make_shared<tcp::socket>(std::move(socket));
        idle_.push_back(self_socket);
        auto forget = [this, self_socket] { idle_.remove(self_socket); };
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto read = co_await http::async_read(*self_socket, buffer, req, tuple_awaitable);
            if (std::get<0>(read)) {
                forget();
                co_return;
            }
            const std::string target(req.target());
            const std::string path = target.substr(0, target.find('?'));
            const auto query = query_of(target);
            std::optional<std::uint64_t> count;
            std::optional<Response> res = answer(req, path, query, count);
            if (res) {
                co_await write(*self_socket, *res);
                continue;
            }
            forget();
            auto stream = std::make_shared<Stream>(std::move(*self_socket), ++next_id_);
            error_code rec;
            const auto remote = stream->socket.remote_endpoint(rec);
            stream->remote =
                rec ? std::string("unknown")
                    : remote.address().to_string() + ":" + std::to_string(remote.port());
            stream->connected_ms = unix_ms();
            if (path == "/stream") {
                std::uint64_t after = 0;
                std::string last(req["Last-Event-ID"]);
                if (last.empty()) {
                    if (auto it = query.find("lastEventId"); it != query.end()) {
                        last = it->second;
                    }
                }
                if (last.rfind("message-", 0) == 0) {
                    after = whole_number(std::string_view(last).substr(8)).value_or(0);
                    if (after == UINT64_MAX) {
                        after = 0; // no message follows the last number: start again
                    }
                }
                co_await messages(stream, after, count);
            } else if (path == "/api/time") {
                co_await times(stream);
            } else {
                co_await client_counts(stream);
            }
            co_return;
        }
    }

    bool authorized(const http::request<http::string_body>& req,
                    const std::map<std::string, std::string>& query) const {
        std::string_view auth = req[http::field::authorization];
        if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
            return equal_constant_time(auth.substr(7), *o_.token);
        }
        if (auto it = query.find("token"); it != query.end()) {
            return equal_constant_time(it->second, *o_.token);
        }
        return false;
    }

    using Response = http::response<http::string_body>;

    static Response response(const http::request<http::string_body>& req, http::status status,
                             std::string body, const char* type) {
        Response res{status, 11};
        res.set(http::field::server, "herald-demo");
        res.set(http::field::content_type, type);
        res.set(http::field::cache_control, "no-cache");
        res.set(http::field::access_control_allow_origin, "*");
        res.body() = req.method() == http::verb::head ? std::string() : std::move(body);
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        return res;
    }

    static Response error(const http::request<http::string_body>& req, http::status status,
                          const std::string& message) {
        Response res = response(req, status, nlohmann::json{{"error", message}}.dump() + "\n",
                                "application/json");
        if (status == http::status::unauthorized) {
            res.set(http::field::www_authenticate, "Bearer");
        }
        if (status == http::status::method_not_allowed) {
            res.set(http::field::allow, "GET");
        }
        return res;
    }

    // The answer to a request that is not a stream to open (nullopt: open it). Sets `count`
    // from /stream's ?count=.
    std::optional<Response> answer(const http::request<http::string_body>& req,
                                   const std::string& path,
                                   const std::map<std::string, std::string>& query,
                                   std::optional<std::uint64_t>& count) const {
        if (o_.token && !authorized(req, query)) {
            return error(req, http::status::unauthorized,
                         "a valid token is required (Authorization: Bearer, or ?token=)");
        }
        if (path != "/stream" && path != "/status" && path != "/api/time" &&
            path != "/api/client-count") {
            return error(req, http::status::not_found, "no such endpoint: " + path);
        }
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            return error(req, http::status::method_not_allowed,
                         "method " + std::string(req.method_string()) + " is not allowed on " +
                             path);
        }
        if (path == "/status") {
            return response(req, http::status::ok, status_json(), "application/json");
        }
        if (auto it = query.find("count"); path == "/stream" && it != query.end()) {
            count = whole_number(it->second).value_or(0);
            if (*count == 0) {
                return error(req, http::status::bad_request,
                             "count must be a whole number of messages, 1 or more");
            }
        }
        if (req.method() == http::verb::head) {
            return response(req, http::status::ok, "", "text/event-stream; charset=utf-8");
        }
        return std::nullopt;
    }

    // Writes a whole response; shuts the connection down after it unless kept alive.
    static awaitable<void> write(tcp::socket& socket, Response& res) {
        auto written = co_await http::async_write(socket, res, tuple_awaitable);
        if (std::get<0>(written) || !res.keep_alive()) {
            error_code ignored;
            socket.shutdown(tcp::socket::shutdown_both, ignored);
        }
    }

    std::string status_json() const {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [id, s] : streams_) {
            char key[32];
            std::snprintf(key, sizeof key, "%llx", static_cast<unsigned long long>(id));
            out[key] = {{"remote", s->remote},
                        {"connectedAt", s->connected_ms},
                        {"lastEventId", s->last_id},
                        {"topics", nlohmann::json::array({s->topic})}};
        }
        return out.dump() + "\n";
    }

    // Registers the stream (/status and the client count see it, a watcher notices when
    // the client goes) and gives the response head to send.
    std::string open(const StreamPtr& s, const char* topic, const std::string& extra_headers) {
        s->topic = topic;
        streams_.emplace(s->id, s);
        asio::co_spawn(io_, watch(s), asio::detached);
        count_changed();
        return "HTTP/1.1 200 OK\r\nServer: herald-demo\r\n"
               "Content-Type: text/event-stream; charset=utf-8\r\n"
               "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
               "Access-Control-Allow-Origin: *\r\n"
               "Access-Control-Expose-Headers: X-Expected-Events\r\n"
               "Connection: close\r\n" +
               extra_headers + "\r\n";
    }

    void close(const StreamPtr& s) {
        s->gone = true;
        error_code ec;
        s->socket.shutdown(tcp::socket::shutdown_both, ec);
        s->socket.close(ec);
        if (streams_.erase(s->id) > 0) {
            count_changed();
        }
    }

    // Reads (and drops) what the client sends until it goes away, then wakes its stream.
    awaitable<void> watch(StreamPtr s) {
        char buf[512];
        for (;;) {
            auto got = co_await s->socket.async_read_some(asio::buffer(buf), tuple_awaitable);
            if (std::get<0>(got)) {
                break;
            }
        }
        s->gone = true;
        s->timer.cancel();
    }

    // Callers build what they send in a local first and co_await on its own statement:
    // GCC 12 mishandles temporaries inside some co_await expressions (a crash was seen
    // with `if (co_await f(tmp))`).
    awaitable<bool> send(StreamPtr s, std::string bytes) {
        if (s->gone) {
            co_return false;
        }
        auto written = co_await asio::async_write(s->socket, asio::buffer(bytes), tuple_awaitable);
        co_return !std::get<0>(written);
    }

    // Waits `d`, or until woken; false once the client is gone.
    awaitable<bool> pause(StreamPtr s, std::chrono::microseconds d) {
        if (s->gone) {
            co_return false; // it went while we were writing: its wake-up found no wait
        }
        s->timer.expires_after(d);
        co_await s->timer.async_wait(tuple_awaitable);
        co_return !s->gone;
    }

    awaitable<void> messages(StreamPtr s, std::uint64_t after, std::optional<std::uint64_t> count) {
        const std::string extra =
            count ? "X-Expected-Events: " + std::to_string(*count) + "\r\n" : std::string();
        std::string head = open(s, "stream", extra);
        bool ok = co_await send(s, std::move(head));
        if (ok) {
            s->last_id = "hello";
            std::string hello = frame("hello", "", "Hello, " + s->remote + "!");
            ok = co_await send(s, std::move(hello));
            for (std::uint64_t n = after + 1, sent = 0; ok; ++n) {
                const std::string id = "message-" + std::to_string(n);
                std::string message = frame(id, "", message_json(n, unix_ms() / 1000));
                ok = co_await send(s, std::move(message));
                if (!ok) {
                    break;
                }
                s->last_id = id;
                if (count && ++sent == *count) {
                    break; // the response ends after K messages
                }
                ok = co_await pause(s, o_.interval);
            }
        }
        close(s);
    }

    awaitable<void> times(StreamPtr s) {
        std::string head = open(s, "time", std::string());
        bool ok = co_await send(s, std::move(head));
        if (ok) {
            for (;;) {
                std::string event = frame("", "time", "\"" + rfc3339_now() + "\"");
                ok = co_await send(s, std::move(event));
                if (!ok) {
                    break;
                }
                ok = co_await pause(s, std::chrono::seconds(1));
                if (!ok) {
                    break;
                }
            }
        }
        close(s);
    }

    awaitable<void> client_counts(StreamPtr s) {
        watchers_.push_back(s);
        std::string head = open(s, "client-count", std::string());
        bool opened = co_await send(s, std::move(head));
        if (opened) {
            std::size_t sent = static_cast<std::size_t>(-1);
            const auto keepalive = std::chrono::seconds(15);
            auto last_write = std::chrono::steady_clock::now();
            for (;;) {
                const std::size_t now = streams_.size();
                std::string bytes;
                if (now != sent) {
                    bytes = frame("", "client-count", "{\"Count\": " + std::to_string(now) + "}");
                    sent = now;
                } else if (std::chrono::steady_clock::now() - last_write >= keepalive) {
                    bytes = ":\n\n"; // a comment, so that proxies keep the stream open
                }
                if (!bytes.empty()) {
                    const bool sent_ok = co_await send(s, std::move(bytes));
                    if (!sent_ok) {
                        break;
                    }
                    last_write = std::chrono::steady_clock::now();
                }
                if (streams_.size() != sent) {
                    continue; // it changed while we were writing: no wake-up is coming for it
                }
                const bool awake = co_await pause(s, keepalive);
                if (!awake) {
                    break;
                }
            }
        }
        watchers_.remove(s);
        close(s);
    }

    void count_changed() {
        for (const auto& w : watchers_) {
            w->timer.cancel(); // the watcher looks at the count again
        }
    }

    asio::io_context& io_;
    const Options& o_;
    tcp::acceptor acceptor_;
    std::uint64_t next_id_ = 0;
    std::map<std::uint64_t, StreamPtr> streams_;
    std::list<StreamPtr> watchers_;
    std::list<std::shared_ptr<tcp::socket>> idle_; // connections not streaming yet
};

} // namespace

int run(const Options& options) {
    asio::io_context io(1);
    Server server(io, options);
    if (!server.listen()) {
        return 1;
    }
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](error_code ec, int) {
        if (!ec) {
            server.stop();
            io.stop();
        }
    });
    asio::co_spawn(io, server.accept_loop(), asio::detached);
    io.run();
    return 0;
}

} // namespace herald::demo
