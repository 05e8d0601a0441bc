// One client connection on one worker: it reads HTTP/1.1 requests (keep-alive included)
// and either answers them or turns into an SSE stream, which it stays until it closes.
// Every method runs on the worker's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/shared_buffer.hpp"
#include "http/context.hpp"
#include "http/request.hpp"
#include "hub/subscriber.hpp"

namespace herald::http {

class Connection final : public hub::Subscriber, public std::enable_shared_from_this<Connection> {
public:
    Connection(WorkerContext& ctx, net::Socket socket);
    ~Connection() override;

    void start();
    void on_tick(base::MonoClock::time_point now);
    void close();

    // hub::Subscriber
    void deliver(const log::Event& event) override;
    void flush() override;

    [[nodiscard]] bool streaming() const noexcept { return state_ == State::streaming; }
    // Under new tokens: false (and the stream closed) when its caller may no longer read
    // what it reads now.
    bool recheck(const auth::Authenticator& auth);
    // This stream's entry in /status: "id": {"remote", "connectedAt", "lastEventId", "topics"}.
    void append_status(std::string& out) const;

private:
    friend class ConnectionList;
    struct ReadState; // the Beast parser, alive only while a request is read
    enum class State : std::uint8_t { idle, reading, responding, streaming, lingering, closed };

    void wait_request();
    // Starts reading a request; `readable`: the socket is known to have bytes waiting.
    void read_request(bool readable = false);
    void await_bytes();
    void on_readable();
    // Gives bytes to the parser; true once a whole request is parsed.
    [[nodiscard]] bool feed(std::string_view bytes, boost::system::error_code& ec);
    void on_read(boost::system::error_code ec);
    void dispatch(Request&& request);
    void route(Request& request, const auth::Principal& who);
    void publish(Request& request, const auth::Principal& who);
    // Gives a validated event to the hub and answers when it is settled.
    void commit(Request& request, log::NewEvent&& event, base::MonoClock::time_point started);
    // Holds a publish while the subscribers are behind (server.max_queued_bytes).
    void hold(Request& request, log::NewEvent&& event, base::MonoClock::time_point started);
    // Commits the worker's held publishes in order once the subscribers have caught up, or
    // answers 503 to those that waited past the request timeout.
    static void release_held(WorkerContext& ctx);
    // Answers, adding CORS headers and writing the access log line.
    void answer(const Request& request, Response&& response);
    void log_access(const Request& request, int status, std::size_t bytes) const;
    void respond(Response&& response, bool keep_alive);
    void fail(int status, std::string_view message, net::Reject reason);
    void linger();
    void start_stream(const Request& request, const auth::Principal& who);
    void end_stream_now(const std::string& head); // 200 + retry, then close (passing refusal)
    void watch_peer();                            // in the streaming or lingering state
    // Reads and drops what the peer sent; false once it has closed or failed.
    [[nodiscard]] bool discard_input();
    void consume(std::size_t bytes);
    void queue(base::BufferRef frame);

    WorkerContext& ctx_;
    net::Socket socket_;
    std::unique_ptr<ReadState> read_;
    std::string out_; // a response being written
    State state_ = State::idle;
    bool write_blocked_ = false;
    bool slow_ = false;
    base::MonoClock::time_point deadline_{};
    base::MonoClock::time_point last_write_{};
    std::int64_t connected_at_ms_ = 0;
    std::uint64_t id_ = 0;

    // The stream's output: frames not yet written, oldest at qhead_.
    std::vector<base::BufferRef> queue_;
    std::size_t qhead_ = 0;
    std::size_t head_offset_ = 0;    // bytes of queue_[qhead_] already written
    std::size_t queued_bytes_ = 0;   // unwritten bytes in the queue
    std::size_t backlog_frames_ = 0; // head and replay frames at the front, not "live"
    std::size_t backlog_bytes_ = 0;
    base::BufferRef last_frame_;   // the last event frame written, for /status
    auth::PrincipalPtr principal_; // a stream's caller, checked again on reload and expiry

    Connection* prev_ = nullptr; // in the worker's ConnectionList
    Connection* next_ = nullptr;
};

template <typename Fn> void ConnectionList::for_each(Fn&& fn) {
    for (Connection* c = head_; c != nullptr;) {
        Connection* next = c->next_;
        fn(*c);
        c = next;
    }
}

} // namespace herald::http
