// How an event travels through Redis: one compact record in two parts, a head and a body,
// stored in the global log and sent in the Pub/Sub message, so that a node decodes a live
// event and a read-back one alike.
//
// Each part is a run of fields, each `<decimal length>:<bytes>` (binary-safe, no escaping):
//   head: position, previous position (in the cluster order), capped, published_ms, id
//   body: type, data, flags ("p": private), retry_ms ("" when none), one field per topic
// `capped` is the newest position the append's hub-wide bounds (max_topics,
// max_total_bytes) dropped, 0 when none: set in the Pub/Sub message, always 0 in the
// stored head. The append script writes the head; this node writes the body before
// sending, and the script stores and sends it as it came (a string built in Lua costs
// Redis more than all the commands of an append).
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
    std::uint64_t capped = 0;
};

// The position, previous position and capped, read without decoding the rest; nothing
// when the head is malformed.
[[nodiscard]] std::optional<RecordHead> read_head(std::string_view head);

struct Record {
    std::string_view head;
    std::string_view body;
};

// A Pub/Sub message holds the events one append script stored, in order: for each, its
// head and its body, each framed as a field. Takes the next record off the front of
// `message`; nothing when what is left is malformed.
[[nodiscard]] std::optional<Record> next_record(std::string_view& message);

// The whole event (its frame encoded), or nothing when the record is malformed.
[[nodiscard]] log::EventPtr decode(std::string_view head, std::string_view body);

} // namespace herald::store::redis
