// One SSE stream, whatever carries it (an HTTP/1.1 connection today, an HTTP/2 stream
// later): the hub's subscriber, its queue of frames, the replay paced into that queue, and
// the rules that cut a stream that falls behind. Every call happens on its worker's thread.
//
// Flow control (docs/architecture.md, "Slow subscribers"): a stream is cut, never waited
// for, when its unsent bytes (replay included) pass server.slow_client_bytes, when its
// writes make no progress for server.write_timeout_seconds, or when its worker's streams
// together hold more than their share of server.max_queued_bytes and it is among those
// furthest behind. A publisher is held only by the subscribers of its own topics: while more
// than half of those naming a topic are reading but far behind (the hub cannot deliver that
// topic as fast as it is published), a publish to it waits; a stalled stream never counts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/authenticator.hpp"
#include "base/clock.hpp"
#include "base/shared_buffer.hpp"
#include "hub/subscriber.hpp"
#include "log/event.hpp"
#include "net/write_queue.hpp"

namespace herald::http {

struct WorkerContext;
class SseStream;

// What carries a stream to its client. Implemented by each protocol's session.
class StreamCarrier {
public:
    // The stream queued frames: write stream.queue() now, or soon if the transport is busy.
    virtual void stream_ready(SseStream& stream) = 0;
    // The stream decided to end (cut for falling behind, its credential expired or revoked):
    // stop writing and close it. Called once; never from inside deliver().
    virtual void stream_ended(SseStream& stream) = 0;
    // Bytes the carrier wrote for the stream that its client has not received yet (kernel
    // buffers): their shrinking is progress even while the carrier cannot write more.
    [[nodiscard]] virtual std::size_t in_transport() const = 0;

protected:
    ~StreamCarrier() = default;
};

class SseStream final : public hub::Subscriber {
public:
    enum class End : std::uint8_t {
        over_bound,
        stalled,
        overload,
        expired,
        revoked,
        lost,
        replay_broken, // a later page of the replay had a gap or could not be read
    };

    SseStream(WorkerContext& ctx, StreamCarrier& carrier, auth::PrincipalPtr who,
              std::string remote, std::uint64_t id);
    ~SseStream() override;
    SseStream(const SseStream&) = delete;
    SseStream& operator=(const SseStream&) = delete;

    // Registers with the worker's shard for live events, then takes the replay after
    // `last_event_id`. Returns the value of the Last-Event-ID response header, if any.
    std::optional<std::string> subscribe(hub::Interest interest,
                                         const std::optional<std::string>& last_event_id);
    // Why the store could not serve the subscription (a cluster node cut off from Redis),
    // or empty. The carrier then sends the head and the retry: line, and closes: a passing
    // reason, so that EventSource comes back.
    [[nodiscard]] const std::string& unavailable() const noexcept { return unavailable_; }
    // Queues `head` (the carrier's response head; empty where the protocol sends headers
    // apart), the retry: line and the start of the replay, and asks the carrier to write.
    void start(std::string_view head);
    // Leaves the hub; nothing is delivered after. Safe to call more than once.
    void unsubscribe();

    // hub::Subscriber
    void deliver(const log::Event& event) override;
    void flush() override;
    void lose() override;

    // The frames to write, oldest first. The carrier writes from it, calls sent() for each
    // frame written whole and progressed() after each write that moved bytes.
    [[nodiscard]] net::WriteQueue& queue() noexcept { return queue_; }
    void sent(const base::BufferRef& frame);
    // After a write moved `bytes`: refills the queue from the replay (or the events that
    // arrived during it); true when it queued more.
    bool progressed(base::MonoClock::time_point now, std::size_t bytes);
    // The carrier could not write all of the queue: the transport is full. Notes how much
    // has reached the client so far, so that the write timeout can tell a slow reader
    // (whose kernel buffers still drain) from one that stopped.
    void blocked();

    // Once a second: keep-alive comments, the write-progress timeout, a JWT's expiry.
    void on_tick(base::MonoClock::time_point now);
    // Under new tokens: false (and the stream ended) when its caller may no longer read
    // what it reads now.
    bool recheck(const auth::Authenticator& auth);
    // Cuts the stream for the reason given (counted, logged) and tells the carrier.
    void end(End why);
    [[nodiscard]] bool ended() const noexcept { return ended_; }
    // Whether it ended for falling behind (its carrier then resets the connection: what
    // the client has not read is dropped at once rather than kept in kernel buffers).
    [[nodiscard]] bool cut() const noexcept { return cut_; }

    // Bytes the client has not received yet: queued, and arrived during the replay. The
    // frame being written is not counted, so that one large event never cuts a stream.
    [[nodiscard]] std::size_t unsent() const noexcept;
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
    // This stream's entry in /status: "id": {"remote", "connectedAt", "lastEventId", "topics"}.
    void append_status(std::string& out) const;

private:
    void push(base::BufferRef frame);
    void refill();
    // Whether replay events remain to be queued (in this page or later ones): live events
    // wait behind them.
    [[nodiscard]] bool replaying() const noexcept {
        return replay_next_ < replay_.size() || replay_pending() || replay_broken_;
    }
    // Tells the hub whether this stream is reading but far behind (hysteresis between
    // kBehindLow and kBehindHigh unsent bytes; a stream that has not moved for a second is
    // not counted: it is stalled, and the write timeout deals with it).
    void update_behind(base::MonoClock::time_point now);

    WorkerContext& ctx_;
    StreamCarrier& carrier_;
    auth::PrincipalPtr principal_;
    std::string remote_;
    std::uint64_t id_;
    std::int64_t connected_at_ms_;
    std::string unavailable_;

    net::WriteQueue queue_;
    // The page of the replay not yet queued, paced so that the queue stays short; the hub
    // reads the next page (replay_pending()) once this one is queued.
    std::vector<log::EventPtr> replay_;
    std::size_t replay_next_ = 0;
    // A later page of the replay had a gap or an error: the stream ends at its next tick
    // (not from refill(), which runs inside the carrier's writes).
    bool replay_broken_ = false;
    // Live events that arrived while the replay was still being queued.
    std::vector<base::BufferRef> parked_;
    std::size_t parked_bytes_ = 0;

    base::BufferRef last_frame_;                  // the last event frame written, for /status
    base::MonoClock::time_point last_progress_{}; // a write, or the client receiving
    base::MonoClock::time_point last_write_{};    // for keep-alives
    std::uint64_t written_ = 0;                   // bytes handed to the carrier, ever
    std::uint64_t received_ = 0; // of them, known to have reached the client when last looked
    bool subscribed_ = false;
    bool started_ = false;
    bool over_bound_ = false; // found in deliver(), acted on in flush()
    bool behind_ = false;     // counted as behind in the hub (Hub::set_behind)
    bool ended_ = false;
    bool cut_ = false;
};

// The unsent bytes above which a reading stream counts as behind, and the backlog a worker
// may have waiting for delivery before publishes to the topics it serves wait: a quarter
// of the worker's share of server.max_queued_bytes spread over its streams (4 to 256 KiB),
// so that holding publishers starts well before streams are cut for memory.
[[nodiscard]] std::size_t behind_mark(const WorkerContext& ctx);

// Cuts the worker's streams furthest behind until its streams together hold no more than
// its share of server.max_queued_bytes. Run from its own handler, never inside a delivery.
void trim_streams(WorkerContext& ctx);

} // namespace herald::http
