// An HTTP/1.1 connection: it reads requests (keep-alive and pipelining included) with
// a RequestReader, hands each to the router and writes the answers in order; a GET
// /events turns it into the carrier of one SSE stream for the rest of its life.
// Every method runs on the worker's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/ip_address.hpp"
#include "http/errors.hpp"
#include "http/request_reader.hpp"
#include "http/router.hpp"
#include "http/sse_stream.hpp"
#include "net/connection_limits.hpp"
#include "net/stream_socket.hpp"
#include "net/write_queue.hpp"

namespace herald::http {

class Http1Session final : public Session,
                           public Exchange,
                           public StreamCarrier,
                           public std::enable_shared_from_this<Http1Session> {
public:
    // The header section's limit; a request line alone over it is 414.
    static constexpr std::size_t kHeaderLimit = RequestReader::kHeaderLimit;

    Http1Session(WorkerContext& ctx, net::Socket socket);
    ~Http1Session() override;

    void start();

    // Session
    void on_tick(base::MonoClock::time_point now) override;
    void close() override;
    void for_each_stream(const std::function<void(SseStream&)>& fn) override;
    void drain() override;
    [[nodiscard]] bool busy() const override;

    // Exchange
    [[nodiscard]] WorkerContext& context() noexcept override { return ctx_; }
    void respond(Response&& response) override;
    void open_stream(const Request& request, Subscription&& subscription,
                     auth::PrincipalPtr who) override;
    [[nodiscard]] bool waiting() const noexcept override { return state_ == State::waiting; }
    [[nodiscard]] std::shared_ptr<Exchange> hold() override { return shared_from_this(); }
    [[nodiscard]] std::string remote() const override;

    // StreamCarrier
    void stream_ready(SseStream& stream) override;
    void stream_ended(SseStream& stream) override;
    [[nodiscard]] std::size_t in_transport() const override { return sock_.kernel_unsent(); }

private:
    enum class State : std::uint8_t {
        idle,      // between requests, holding no buffer
        reading,   // a request is arriving
        waiting,   // the router answers later (a publish settling, /status gathering)
        writing,   // an answer is being written
        streaming, // an SSE stream
        lingering, // the answer ended the connection: drain what the client still sends
        closed,
    };

    void wait_request();
    void read_request(bool readable);
    void await_bytes();
    void on_readable();
    // Feeds bytes to the parser: true once a whole request is parsed (or refused, with
    // the refusal under way).
    [[nodiscard]] bool feed(std::string_view bytes);
    // Writes "100 Continue" for a request whose header asked for it: false when the socket
    // did not take it at once.
    [[nodiscard]] bool send_continue();
    void on_request();
    void refuse(HttpError error, std::string_view detail = {});
    // Over a connection limit at accept: the refusal is written at once, without reading a
    // request, and the connection ends (with a FIN, after what the client sends is drained).
    void refuse_connection(net::Reject reason, const std::string& message);
    // Behind a trusted proxy: who the request is from, and its per-IP slot. False when the
    // request was refused (429) instead.
    [[nodiscard]] bool admit_client(const Request& request);
    void write_out();
    void after_response();
    void linger();
    void watch_peer();
    [[nodiscard]] bool discard_input();
    // Writes what the stream has queued, if the socket takes it, and ends it with a FIN.
    void finish_stream();
    void write_stream();
    [[nodiscard]] base::MonoClock::time_point request_deadline() const;

    WorkerContext& ctx_;
    net::StreamSocket sock_;
    net::WriteQueue out_;                 // answers being written
    std::unique_ptr<RequestReader> read_; // alive while a request is read
    std::unique_ptr<SseStream> stream_;
    State state_ = State::idle;
    bool keep_alive_ = true; // of the request being answered
    bool head_only_ = false; // the request being answered is a HEAD
    bool write_blocked_ = false;
    bool draining_ = false;
    bool refused_at_accept_ = false;
    base::MonoClock::time_point deadline_{};
    std::uint64_t id_ = 0;
    // The socket's peer, and whether it is a trusted proxy (server.trusted_proxies).
    std::optional<base::IpAddress> peer_;
    bool peer_trusted_ = false;
    // The client a trusted proxy named for the request in progress (or the stream).
    std::optional<base::IpAddress> client_;
    // This connection's place under server.max_connections (and, from an untrusted peer,
    // max_connections_per_ip); and, behind a trusted proxy, the place of the client of the
    // request in progress or of the stream. Given back by close().
    net::ConnectionLimits::Slot slot_;
    net::ConnectionLimits::Slot client_slot_;
};

} // namespace herald::http
