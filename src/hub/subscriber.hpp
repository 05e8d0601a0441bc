// The hub's view of a subscriber: what it follows and where it stands in the global order.
// The hub never sees a socket; the HTTP layer implements deliver() and flush().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hub/selector.hpp"
#include "log/event.hpp"

namespace herald::hub {

class Shard;

// What a subscriber may read, as its credential grants it: the hub's side of access
// control. Immutable; shared by every stream of one token.
struct Access {
    std::vector<Selector> read;         // public events of these topics
    std::vector<Selector> read_private; // private events too (the token's own grants)
    bool everything = false;            // every topic, private and system ones included

    [[nodiscard]] bool may_read(std::string_view topic) const noexcept;
    [[nodiscard]] bool may_read_private(std::string_view topic) const noexcept;
};

// What a subscription asks for.
struct Interest {
    std::vector<std::string> exact; // topics named exactly (system topics included)
    std::vector<Selector> patterns; // `*` and URI templates; never match system topics
    // What the subscriber may read; null when the hub is open to all (every public event,
    // no private one). Exact topics were checked against it when the stream opened; a
    // topic a pattern matches is checked on each event.
    std::shared_ptr<const Access> access;

    [[nodiscard]] bool may_read(std::string_view topic) const noexcept {
        return !access || access->may_read(topic);
    }
    [[nodiscard]] bool may_read_private(std::string_view topic) const noexcept {
        return access && access->may_read_private(topic);
    }
};

// Lives on one worker; every call on it happens on that worker's thread.
class Subscriber {
public:
    virtual ~Subscriber() = default;

    // Queues the event's frame; the shard calls flush() once after the batch.
    virtual void deliver(const log::Event& event) = 0;
    // Writes what deliver() queued, in one gathered write where possible.
    virtual void flush() = 0;
    // The log lost events this subscriber may have wanted (Hub::lost): it must end, so that
    // its client resumes and learns of the gap from the replay. A stream unsubscribes.
    virtual void lose() = 0;

    [[nodiscard]] const Interest& interest() const noexcept { return interest_; }
    // The position of the last event delivered (or replayed up to).
    [[nodiscard]] std::uint64_t position() const noexcept { return position_; }

    // Whether the replay has pages still to read (Shard::replay_more()).
    [[nodiscard]] bool replay_pending() const noexcept { return replay_more_; }

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
    // The replay's progress: the position its last page reached, the position it stops at
    // (where live events start), and whether pages remain.
    std::uint64_t replay_after_ = 0;
    std::uint64_t replay_upto_ = 0;
    bool replay_more_ = false;
    bool replay_gap_told_ = false; // the first page had a gap: the resume was told `earliest`
    bool subscribed_ = false;
    bool flush_pending_ = false;
};

} // namespace herald::hub
