// The hub's view of a subscriber: what it follows and where it stands in the global order.
// The hub never sees a socket; the HTTP layer implements deliver() and flush().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/selector.hpp"
#include "log/event.hpp"

namespace herald::hub {

class Shard;

// What a subscription asks for.
struct Interest {
    std::vector<std::string> exact; // topics named exactly (system topics included)
    std::vector<Selector> patterns; // `*` and URI templates; never match system topics
    bool read_private = false;      // whether private events may be delivered
};

// Lives on one worker; every call on it happens on that worker's thread.
class Subscriber {
public:
    virtual ~Subscriber() = default;

    // Queues the event's frame; the shard calls flush() once after the batch.
    virtual void deliver(const log::Event& event) = 0;
    // Writes what deliver() queued, in one gathered write where possible.
    virtual void flush() = 0;

    [[nodiscard]] const Interest& interest() const noexcept { return interest_; }
    // The position of the last event delivered (or replayed up to).
    [[nodiscard]] std::uint64_t position() const noexcept { return position_; }

    // Whether the event is for this subscriber (topics and privacy; not the position).
    [[nodiscard]] bool wants(const log::Event& event) const noexcept;

private:
    friend class Shard;
    // One node per exact topic in the shard's per-topic lists (intrusive: O(1) removal).
    struct Link {
        Subscriber* self = nullptr;
        Link* prev = nullptr;
        Link* next = nullptr;
    };

    Interest interest_;
    std::vector<Link> links_; // one per interest_.exact entry, fixed while subscribed
    std::uint64_t position_ = 0;
    std::uint32_t pattern_slot_ = 0; // index in the shard's pattern list
    bool subscribed_ = false;
    bool flush_pending_ = false;
};

} // namespace herald::hub
