// The in-memory event log: a bounded history per topic (like a capped collection) within a
// single global order, so that one stream can resume across several topics.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "log/event_log.hpp"

namespace herald::store {

struct Retention {
    std::size_t max_events = 10000; // per topic; 0 keeps no history
    std::size_t max_bytes = 5000000;
    std::int64_t max_age_ms = 0; // 0: no age bound
    // Hub-wide, 0: no bound. Topics that retain events: beyond it, the topic whose newest
    // event is the oldest is forgotten whole (of topics whose newest is the same event, the
    // first by name).
    std::size_t max_topics = 100000;
    // The footprints of all topics' events together (an event once per topic): beyond it,
    // the oldest events in the global order are dropped first, from every topic.
    std::size_t max_total_bytes = 536870912;
};

// The newest position dropped by topics that are no longer held (forgotten once they
// retained nothing), by a hash of the topic's name: a replay over a topic without history
// may have lost events up to its bucket's floor. Fixed size, so that forgetting a topic
// costs nothing afterwards; conservative (two topics share a bucket), so it can make a
// resume report `earliest` needlessly, never report a complete replay falsely.
class ErasedFloors {
public:
    void raise(std::string_view topic, std::uint64_t position) noexcept {
        std::uint64_t& floor = buckets_[bucket(topic)];
        floor = std::max(floor, position);
        max_ = std::max(max_, position);
    }
    void raise_all(std::uint64_t position) noexcept {
        for (auto& floor : buckets_) {
            floor = std::max(floor, position);
        }
        max_ = std::max(max_, position);
    }
    [[nodiscard]] std::uint64_t of(std::string_view topic) const noexcept {
        return buckets_[bucket(topic)];
    }
    // The newest drop of any forgotten topic (for replays over patterns).
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }

private:
    static constexpr std::size_t kBuckets = 4096;
    static std::size_t bucket(std::string_view topic) noexcept {
        return std::hash<std::string_view>{}(topic) % kBuckets;
    }
    std::array<std::uint64_t, kBuckets> buckets_{};
    std::uint64_t max_ = 0;
};

// Ids the store assigns are the decimal position. Positions start at the wall clock in
// microseconds when the store is created, so ids keep increasing across restarts and an
// id from before a restart is never given to another event (unless the hub sustained more
// than a million events a second since its previous start).
//
// One mutex guards the whole store: nothing here waits on I/O, and an append hands its
// event to the listener before releasing it, so the listener sees the position order.
class MemoryStore final : public log::EventLog {
public:
    explicit MemoryStore(Retention retention, std::uint64_t first_position = 0);

    void set_listener(log::LogListener* listener) override;
    // Settles at once: `done` runs before append() returns.
    void append(log::NewEvent&& event, log::AppendDone done) override;
    // Stops taking appends: each later one is refused as `unavailable`, as the durable
    // stores refuse them once closed.
    void close() override;
    [[nodiscard]] std::optional<std::uint64_t> position_of(std::string_view id) const override;
    [[nodiscard]] std::uint64_t last_position() const override;
    using log::EventLog::replay;
    [[nodiscard]] log::Replay replay(std::uint64_t after, std::uint64_t upto,
                                     const log::TopicFilter& filter,
                                     std::size_t max_bytes) const override;
    void expire(std::int64_t now_ms) override;
    using log::EventLog::topics;
    [[nodiscard]] std::vector<log::TopicStats> topics(const log::TopicRange& range) const override;
    [[nodiscard]] log::HistoryFigures history() const override;

    // Retains an event whose position and id are settled (newer than every event retained):
    // what append() does after assigning them. A durable store keeps its recent events in
    // memory through this.
    void insert(log::EventPtr event);
    // Records that the topic's history lacks events up to `position` (they exist elsewhere,
    // or were dropped), so that a replay from before it reports a gap.
    void raise_floor(const std::string& topic, std::uint64_t position);
    // Records that every topic, held here or not, may lack events up to `position`: a
    // replay from before it reports a gap (a cache that missed events falls back).
    void raise_all_floors(std::uint64_t position);
    // Records that topics no longer known here dropped events up to `position`.
    void raise_erased_floor(std::uint64_t position) {
        std::lock_guard lock(mu_);
        erased_.raise_all(position);
    }

    // Number of events retained by at least one topic.
    [[nodiscard]] std::size_t size() const;

private:
    // A topic's history. A topic has one only while it retains an event: one that retains
    // nothing is forgotten (its floor goes to erased_), so a topic costs nothing once its
    // events are gone, however many topics were ever published to.
    struct Ring {
        std::deque<log::EventPtr> events; // oldest first; never empty between calls
        std::size_t bytes = 0;
        std::uint64_t dropped_upto = 0; // position of the newest event retention dropped
        // The rings in the order of their newest event (for history.max_topics): each
        // append moves the ring to the newest end.
        Ring* older = nullptr;
        Ring* newer = nullptr;
        const std::string* name = nullptr; // the key in rings_
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
    // Ordered by name, so that /topics pages without sorting every topic.
    using RingMap = std::map<std::string, Ring, std::less<>>;

    log::AppendResult append_locked(log::NewEvent&& event);
    void insert_locked(log::EventPtr event);
    void drop_front(Ring& ring);
    // Erases a ring that retains nothing, keeping its floor in erased_.
    RingMap::iterator forget(RingMap::iterator it);
    void trim(RingMap::iterator it);
    void enforce_caps();
    void link_newest(Ring& ring);
    void unlink(Ring& ring);
    void collect(const Ring& ring, std::uint64_t after, std::vector<const Ring*>& rings,
                 bool& gap) const;

    mutable std::mutex mu_; // everything below
    log::LogListener* listener_ = nullptr;
    bool closed_ = false;
    Retention retention_;
    std::uint64_t last_position_;
    RingMap rings_;
    Ring* oldest_ = nullptr; // the ring whose newest event is the oldest
    Ring* newest_ = nullptr;
    std::size_t total_bytes_ = 0; // of every ring
    std::uint64_t evicted_max_topics_ = 0;
    std::uint64_t evicted_max_total_bytes_ = 0;
    ErasedFloors erased_;
    std::unordered_map<std::string, IdEntry, Hash, std::equal_to<>> ids_;
    // The retained events in the global order (for history.max_total_bytes).
    std::map<std::uint64_t, const log::Event*> by_position_;
};

} // namespace herald::store
