// The commands' HTTP client: Beast's asynchronous operations driven one at a time by a
// private io_context, which gives each step a timeout and lets SIGINT/SIGTERM cancel the
// step in progress, while the caller sees plain blocking calls.
#include "cli/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <csignal>
#include <optional>

namespace herald::cli {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kResponseTimeout = std::chrono::seconds(30);
constexpr std::size_t kMaxErrorBody = 64 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != prefix[i]) {
            return false;
        }
    }
    return true;
}

// The errors that mean the hub closed a kept-alive connection we were about to reuse.
bool closed_by_peer(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

} // namespace

struct HttpClient::Impl {
    Impl(HubUrl u, std::string t) : url(std::move(u)), token(std::move(t)) {}

    HubUrl url;
    std::string token;
    asio::io_context ioc;
    tcp::resolver resolver{ioc};
    beast::tcp_stream stream{ioc};
    asio::steady_timer timer{ioc};
    beast::flat_buffer buffer;
    std::optional<asio::signal_set> signals;
    bool connected = false;
    bool interrupted = false;

    // "http://host:port", for messages.
    [[nodiscard]] std::string where() const { return "http://" + url.host_header(); }

    // Runs handlers until `done` is set by the completion of the operation just started;
    // a signal that arrives meanwhile cancels that operation and ends in Interrupted.
    void wait_for(const bool& done) {
        ioc.restart();
        while (!done) {
            if (ioc.run_one() == 0) {
                throw std::logic_error("http client: waiting with no operation pending");
            }
        }
        if (interrupted) {
            throw Interrupted();
        }
    }

    void throw_if_interrupted() const {
        if (interrupted) {
            throw Interrupted();
        }
    }

    void on_signal() {
        interrupted = true;
        resolver.cancel();
        timer.cancel();
        close();
    }

    void close() {
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
        buffer.clear();
        connected = false;
    }

    // Whether the kept-alive connection is still open: the hub may have closed it since the
    // last response (an idle timeout). Peeks without blocking; anything readable (the FIN,
    // or bytes nobody asked for) means it cannot carry another request.
    [[nodiscard]] bool still_open() {
        if (!connected || buffer.size() != 0) {
            return false;
        }
        auto& socket = stream.socket();
        error_code ec;
        socket.non_blocking(true, ec);
        if (ec) {
            return false;
        }
        char byte = 0;
        socket.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
        const bool open = ec == asio::error::would_block;
        socket.non_blocking(false, ec);
        return open && !ec;
    }

    void connect() {
        close();
        throw_if_interrupted();
        bool done = false;
        error_code ec;
        tcp::resolver::results_type endpoints;
        resolver.async_resolve(url.host, url.port,
                               [&](error_code e, tcp::resolver::results_type r) {
                                   ec = e;
                                   endpoints = std::move(r);
                                   done = true;
                               });
        wait_for(done);
        if (ec) {
            throw NetworkError("cannot resolve '" + url.host + "': " + ec.message());
        }
        done = false;
        stream.expires_after(kConnectTimeout);
        stream.async_connect(endpoints, [&](error_code e, const tcp::endpoint&) {
            ec = e;
            done = true;
        });
        wait_for(done);
        if (ec) {
            close();
            throw NetworkError("cannot connect to " + where() + ": " + ec.message());
        }
        connected = true;
    }

    [[nodiscard]] http::request<http::string_body>
    make_request(http::verb method, std::string_view target, const Headers& headers) const {
        http::request<http::string_body> req{method, url.target(target), 11};
        req.set(http::field::host, url.host_header());
        req.set(http::field::user_agent, "herald-cli");
        if (!token.empty()) {
            req.set(http::field::authorization, "Bearer " + token);
        }
        for (const auto& [name, value] : headers) {
            req.set(name, value);
        }
        return req;
    }

    // Writes `req`; returns the error, if any.
    error_code write(http::request<http::string_body>& req) {
        bool done = false;
        error_code ec;
        stream.expires_after(kResponseTimeout);
        http::async_write(stream, req, [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        wait_for(done);
        return ec;
    }

    template <class Parser> error_code read_header(Parser& parser) {
        bool done = false;
        error_code ec;
        http::async_read_header(stream, buffer, parser, [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        wait_for(done);
        return ec;
    }

    template <class Parser> error_code read_some(Parser& parser) {
        bool done = false;
        error_code ec;
        http::async_read_some(stream, buffer, parser, [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        wait_for(done);
        return ec;
    }

    template <class Parser> error_code read(Parser& parser) {
        bool done = false;
        error_code ec;
        http::async_read(stream, buffer, parser, [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        wait_for(done);
        return ec;
    }
};

HttpClient::HttpClient(HubUrl url, std::string token)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(token))) {}

HttpClient::~HttpClient() = default;

const HubUrl& HttpClient::url() const noexcept {
    return impl_->url;
}

void HttpClient::stop_on_signals() {
    Impl& s = *impl_;
    if (s.signals) {
        return;
    }
    s.signals.emplace(s.ioc, SIGINT, SIGTERM);
    s.signals->async_wait([&s](error_code ec, int) {
        if (!ec) {
            s.on_signal();
        }
    });
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 const Headers& headers, std::string body) {
    Impl& s = *impl_;
    const http::verb verb = http::string_to_verb(method);
    for (int attempt = 0;; ++attempt) {
        const bool reused = s.still_open();
        if (!reused) {
            s.connect();
        }
        auto req = s.make_request(verb, target, headers);
        req.body() = body;
        req.prepare_payload();
        error_code ec = s.write(req);
        if (!ec) {
            http::response_parser<http::string_body> parser;
            ec = s.read(parser);
            if (!ec) {
                const auto& res = parser.get();
                if (!res.keep_alive()) {
                    s.close();
                }
                return HttpResponse{res.result_int(), std::string(res[http::field::content_type]),
                                    res.body()};
            }
        }
        s.close();
        // A kept-alive connection the hub closed (an idle timeout) just as we sent: the hub
        // did not read the request, so send it again on a new connection, as browsers do.
        // Not after a fresh connect: that is a real failure.
        if (reused && attempt == 0 && closed_by_peer(ec)) {
            continue;
        }
        throw NetworkError("lost the connection to " + s.where() + ": " + ec.message());
    }
}

HttpClient::StreamEnd HttpClient::stream(std::string_view target, const Headers& headers,
                                         const std::function<bool(std::string_view)>& on_data) {
    Impl& s = *impl_;
    s.connect();
    auto req = s.make_request(http::verb::get, target, headers);
    req.prepare_payload();
    error_code ec = s.write(req);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none); // an event stream has no end
    if (!ec) {
        ec = s.read_header(parser);
    }
    if (ec) {
        s.close();
        throw NetworkError("lost the connection to " + s.where() + ": " + ec.message());
    }

    StreamEnd end;
    end.response.status = parser.get().result_int();
    end.response.content_type = std::string(parser.get()[http::field::content_type]);
    end.event_stream = end.response.status == 200 &&
                       starts_with_nocase(end.response.content_type, "text/event-stream");
    const bool is_stream = end.event_stream;
    if (is_stream) {
        s.stream.expires_never(); // idle streams are normal; the hub sends keep-alives
    }
    std::array<char, kReadChunk> chunk{};
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        ec = s.read_some(parser);
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        const std::size_t n = chunk.size() - parser.get().body().size;
        if (n > 0) {
            if (is_stream) {
                if (!on_data(std::string_view(chunk.data(), n))) {
                    break;
                }
            } else {
                end.response.body.append(chunk.data(), n);
                if (end.response.body.size() >= kMaxErrorBody) {
                    break;
                }
            }
        }
        if (ec) {
            if (is_stream) {
                end.error = ec.message();
            }
            break;
        }
    }
    s.close();
    return end;
}

void HttpClient::sleep(std::chrono::milliseconds duration) {
    Impl& s = *impl_;
    s.throw_if_interrupted();
    bool done = false;
    s.timer.expires_after(duration);
    s.timer.async_wait([&](error_code) { done = true; });
    s.wait_for(done);
}

std::string error_message(const HttpResponse& response) {
    const auto json = nlohmann::json::parse(response.body, nullptr, false);
    if (json.is_object()) {
        const auto it = json.find("error");
        if (it != json.end() && it->is_string()) {
            return it->get<std::string>();
        }
    }
    std::string_view text = response.body;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
        text.remove_suffix(1);
    }
    while (!text.empty() && (text.front() == '\n' || text.front() == '\r' || text.front() == ' ')) {
        text.remove_prefix(1);
    }
    return text.empty() ? std::string("HTTP error") : std::string(text);
}

} // namespace herald::cli
