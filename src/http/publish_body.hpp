// The body of a publish (POST /publish): form or JSON, read into the event's fields, and
// the checks of those fields that need nothing but the fields. The topics are checked by
// prepare_publish() (handlers.hpp), against the configuration and the publisher's grants.
// Pure: no I/O, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "net/stats.hpp"

namespace herald::http {

// The longest topic, id or event type a publish may give.
inline constexpr std::size_t kMaxTopicBytes = 1024;
// The largest `retry` a publish may give: a day.
inline constexpr std::uint32_t kMaxRetryMs = 86400000;

struct PublishFields {
    std::vector<std::string> topics;
    std::optional<std::string> data;
    std::string id;
    std::string type;
    std::optional<std::string> retry; // as text, until check_event_fields()
    std::optional<std::uint32_t> retry_ms;
    bool is_private = false;

    bool operator==(const PublishFields&) const = default;
};

// Why a body is refused: the reason it is counted under, and the sentence for the client.
struct PublishBodyError {
    net::Reject reason;
    std::string message;
};

// Reads `body` by the media type of `content_type` (parameters and case ignored; none is
// form). Form: `topic` may repeat, `data` may not, `event` and `type` are the same field,
// `private` alone or with any value but false/0/off/no is true, other fields are ignored.
// JSON: an object whose `topic` (or `topics`) is a string or an array of strings, `data` any
// value (kept as its text unless a string), `id` and `event` (or `type`) strings, `retry` a
// non-negative integer, `private` a boolean; nested more than base::kMaxJsonDepth deep it is
// refused before it is parsed. Another media type is unsupported_media_type.
[[nodiscard]] std::variant<PublishFields, PublishBodyError>
read_publish_body(std::string_view content_type, std::string_view body);

// Why the event's own fields are not acceptable (counted as invalid_event), or nothing:
// data must be given and be valid UTF-8; id and event valid UTF-8 of at most kMaxTopicBytes
// without CR, LF or NUL (and id not "earliest"); retry an integer up to kMaxRetryMs, which
// this sets `retry_ms` to.
[[nodiscard]] std::optional<std::string> check_event_fields(PublishFields& fields);

} // namespace herald::http
