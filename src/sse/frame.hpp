// The SSE wire format (WHATWG HTML, "Server-sent events"): encoding an event, a retry hint
// or a comment into the bytes a subscriber reads, and checking the fields that go into them.
// Pure functions, no I/O; safe to call from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::sse {

// Appends one event's frame to `out`: "id: <id>\n", then "event: <type>\n" when `type` is
// non-empty, then "retry: <ms>\n" when `retry_ms` is given, then one "data: <line>\n" per
// line of `data`, then the blank line that ends the event.
//
// LF, CR and CRLF all end a line of `data`, and a trailing line end starts one more (empty)
// line, so a WHATWG parser hands the subscriber back `data` with every line end turned into
// LF: "a\n" comes back as "a\n", "a\r\nb" as "a\nb". An empty `data` gives one "data: \n"
// line and is still delivered (as an empty message).
//
// The caller must pass an `id` and `type` for which is_valid_field() holds; they are written
// as they are. An empty `id` writes no `id:` line (the hub's own $sys events: an empty
// `id:` would make EventSource forget the id it resumes from).
void encode_event(std::string& out, std::string_view id, std::string_view type,
                  std::string_view data, std::optional<std::uint32_t> retry_ms);

// "retry: <ms>\n\n": the reconnection delay hint sent when a stream opens.
[[nodiscard]] std::string encode_retry(std::uint32_t ms);

// ": <text>\n\n", a comment (keep-alive) that clients ignore. Any CR or LF in `text` is
// written as a space so that the comment stays one line. An empty text gives ":\n\n".
[[nodiscard]] std::string encode_comment(std::string_view text);

// Whether `v` can be an event id or an event type: it holds no CR, LF or NUL.
[[nodiscard]] bool is_valid_field(std::string_view v) noexcept;

// Whether `s` is well-formed UTF-8 (RFC 3629): rejects overlong forms, surrogates
// (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes and truncated
// sequences.
[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;

} // namespace herald::sse
