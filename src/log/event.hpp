// An event as the log holds it: its place in the hub's global order, its wire id, and the
// SSE frame encoded once at publish time and shared by every subscriber that receives it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/shared_buffer.hpp"

namespace herald::log {

// What a publisher asks for; the log turns it into an Event.
struct NewEvent {
    std::vector<std::string> topics; // at least one
    std::string id;                  // empty: the log assigns one
    std::string type;                // the SSE `event:` field, may be empty
    std::string data;
    bool is_private = false;
    std::optional<std::uint32_t> retry_ms;
};

// Immutable once appended; shared between the log, the workers and replays.
struct Event {
    std::uint64_t position = 0; // global order: strictly increasing, never reused
    std::string id;             // what subscribers see in `id:`
    std::vector<std::string> topics;
    std::string type;
    std::string data;
    bool is_private = false;
    std::optional<std::uint32_t> retry_ms;
    std::int64_t published_ms = 0; // wall clock, for age retention
    base::BufferRef frame;         // the encoded SSE frame

    // Bytes this event costs the history of one topic, for `history.max_bytes`.
    [[nodiscard]] std::size_t footprint() const noexcept {
        return sizeof(Event) + id.size() + type.size() + data.size() + frame.size();
    }
};

using EventPtr = std::shared_ptr<const Event>;

// Builds an Event from a NewEvent whose id has been settled; encodes its frame.
[[nodiscard]] EventPtr make_event(NewEvent&& in, std::uint64_t position, std::string id,
                                  std::int64_t published_ms);

} // namespace herald::log
