// How an event travels through Redis: one compact record, stored in the global log and sent
// as the Pub/Sub message, so that a node decodes a live event and a read-back one alike.
//
// A record is a run of fields, each `<decimal length>:<bytes>` (binary-safe, no escaping):
//   position, previous position (in the cluster order), published_ms, id,
//   type, data, flags ("p": private), retry_ms ("" when none), then one field per topic.
// The append script writes the first four; this node writes the rest (the "body") before
// sending, so that the script only concatenates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "log/event.hpp"

namespace herald::store::redis {

// The body of a record for `event` (whose topics must already be unique).
[[nodiscard]] std::string encode_body(const log::NewEvent& event);

// What the event will cost a topic's history (Event::footprint) less twice its id's length,
// which only the script knows: it adds 2 * #id (once for the field, once in the frame).
[[nodiscard]] std::size_t footprint_without_id(const log::NewEvent& event);

struct RecordHead {
    std::uint64_t position = 0;
    std::uint64_t previous = 0;
};

// The position and previous position, read without decoding the rest; nothing when the
// record is malformed.
[[nodiscard]] std::optional<RecordHead> read_head(std::string_view record);

// The whole event (its frame encoded), or nothing when the record is malformed.
[[nodiscard]] log::EventPtr decode(std::string_view record);

} // namespace herald::store::redis
