// The in-memory event log: a bounded history per topic (like a capped collection) within a
// single global order, so that one stream can resume across several topics.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "log/event_log.hpp"

namespace herald::store {

struct Retention {
    std::size_t max_events = 10000; // per topic; 0 keeps no history
    std::size_t max_bytes = 5000000;
    std::int64_t max_age_ms = 0; // 0: no age bound
};

// Ids the store assigns are the decimal position. Positions start at the wall clock in
// microseconds when the store is created, so ids keep increasing across restarts and an
// id from before a restart is never given to another event (unless the hub sustained more
// than a million events a second since its previous start).
class MemoryStore final : public log::EventLog {
public:
    explicit MemoryStore(Retention retention, std::uint64_t first_position = 0);

    [[nodiscard]] log::AppendResult append(log::NewEvent&& event) override;
    [[nodiscard]] std::optional<std::uint64_t> position_of(std::string_view id) const override;
    [[nodiscard]] std::uint64_t last_position() const override { return last_position_; }
    [[nodiscard]] log::Replay replay(std::uint64_t after,
                                     const log::TopicFilter& filter) const override;
    void expire(std::int64_t now_ms) override;
    [[nodiscard]] std::vector<log::TopicStats> topics() const override;

    // Retains an event whose position and id are settled (newer than every event retained):
    // what append() does after assigning them. A durable store keeps its recent events in
    // memory through this.
    void insert(log::EventPtr event);
    // Records that the topic's history lacks events up to `position` (they exist elsewhere,
    // or were dropped), so that a replay from before it reports a gap.
    void raise_floor(const std::string& topic, std::uint64_t position);
    // Records that topics no longer known here dropped events up to `position`.
    void raise_erased_floor(std::uint64_t position) {
        erased_dropped_upto_ = std::max(erased_dropped_upto_, position);
    }

    // Number of events retained by at least one topic.
    [[nodiscard]] std::size_t size() const noexcept { return ids_.size(); }

private:
    struct Ring {
        std::deque<log::EventPtr> events; // oldest first
        std::size_t bytes = 0;
        std::uint64_t dropped_upto = 0; // position of the newest event retention dropped
        std::string last_id;
    };
    struct IdEntry {
        std::uint64_t position;
        std::uint32_t holders; // rings still retaining the event
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using RingMap = std::unordered_map<std::string, Ring, Hash, std::equal_to<>>;

    void drop_front(Ring& ring);
    void trim(Ring& ring);
    void collect(const Ring& ring, std::uint64_t after, std::vector<const Ring*>& rings,
                 bool& gap) const;

    Retention retention_;
    std::uint64_t last_position_;
    RingMap rings_;
    // The newest drop among rings erased for being empty: a replay over a topic that has
    // no ring (any more) may have lost events up to here. Conservative: it can make a
    // resume report `earliest` needlessly, never report a complete replay falsely.
    std::uint64_t erased_dropped_upto_ = 0;
    std::unordered_map<std::string, IdEntry, Hash, std::equal_to<>> ids_;
};

} // namespace herald::store
