// The client side of the wire format: an incremental parser that turns the bytes of an SSE
// stream into events exactly as the WHATWG HTML "event stream interpretation" rules say an
// EventSource does. Used by `herald sub` and the tests; pure, no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace herald::sse {

// One dispatched event.
struct ParsedEvent {
    std::string id;   // the last event id when it was dispatched (may come from an earlier event)
    std::string type; // the `event` field, or "message" when the event had none
    std::string data; // the `data` lines joined with "\n"

    bool operator==(const ParsedEvent&) const = default;
};

// Feed it the bytes of one stream in pieces of any size (a piece may end inside a CRLF or
// a UTF-8 sequence); it reports each event once its terminating blank line has arrived.
//
// - Lines end in LF, CR or CRLF; one U+FEFF byte order mark at the start is skipped.
// - Text is UTF-8; invalid sequences become U+FFFD, as the standard decoder does.
// - `:` starts a comment; `field: value` loses one space after the colon; a line without
//   a colon is a field with an empty value; unknown fields are ignored.
// - `data` lines are joined with "\n"; a blank line dispatches the event if any data came.
// - `id` sets the last event id (ignored if it contains NUL); it persists across events
//   and across reset_stream(), and is what a client sends back as `Last-Event-ID`.
// - `retry` (ASCII digits only, fitting 32 bits) sets the reconnection delay.
//
// Not thread-safe: one Parser per stream, used by one thread.
class Parser {
public:
    using EventHandler = std::function<void(const ParsedEvent&)>;
    using CommentHandler = std::function<void(std::string_view)>;

    Parser() = default;
    // Starts with a known last event id, as a client resuming from an earlier session does.
    explicit Parser(std::string last_event_id);

    // Parses `bytes`, calling `on_event` for each event completed by them and `on_comment`
    // (when given) with the text after the `:` of each comment line. The references passed
    // to the handlers are valid only during the call. A handler must not call feed() or
    // reset_stream() on this parser.
    void feed(std::string_view bytes, const EventHandler& on_event,
              const CommentHandler& on_comment = {});

    // Begins a new stream, as after a reconnect: drops a partial line and an event not yet
    // dispatched (the standard discards them at end of stream) and expects a BOM again. The
    // last event id and the retry delay are kept.
    void reset_stream() noexcept;

    // The id of the last dispatched event ("" if none): send it as `Last-Event-ID`.
    [[nodiscard]] const std::string& last_event_id() const noexcept { return last_event_id_; }

    // The last valid `retry` value seen, in milliseconds.
    [[nodiscard]] std::optional<std::uint32_t> retry_ms() const noexcept { return retry_ms_; }

private:
    void process_line(std::string_view line, const EventHandler& on_event,
                      const CommentHandler& on_comment);
    void process_field(std::string_view field, std::string_view value);
    void dispatch(const EventHandler& on_event);

    std::string line_;          // the bytes of a line whose end has not arrived yet
    std::string scratch_;       // the line with invalid UTF-8 replaced, when it needs that
    std::string data_;          // the data buffer: each data line followed by "\n"
    std::string type_;          // the event type buffer
    std::string id_buffer_;     // the last event ID buffer (set by `id`, kept by dispatch)
    std::string last_event_id_; // the last event ID string (set from the buffer on dispatch)
    std::optional<std::uint32_t> retry_ms_;
    bool skip_lf_ = false; // the previous piece ended in CR: an LF first ends no line
    bool at_start_ = true; // no line of this stream has ended yet (BOM still possible)
};

} // namespace herald::sse
