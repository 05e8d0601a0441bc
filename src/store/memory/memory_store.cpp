// The in-memory event log. Each topic has a ring of shared event pointers in position
// order; an event on several topics sits in several rings and is freed when the last one
// drops it. A replay over many topics is a k-way merge of their rings by position.
#include "store/memory/memory_store.hpp"

#include <algorithm>
#include <charconv>
#include <queue>

#include "base/clock.hpp"

namespace herald::store {

MemoryStore::MemoryStore(Retention retention, std::uint64_t first_position)
    : retention_(retention),
      last_position_(first_position != 0 ? first_position - 1
                                         : static_cast<std::uint64_t>(base::unix_us())) {}

log::AppendResult MemoryStore::append(log::NewEvent&& event) {
    std::string id = std::move(event.id);
    std::uint64_t position = last_position_ + 1;
    if (id.empty()) {
        // A publisher may have taken the decimal id of a future position: skip past it.
        id = std::to_string(position);
        while (ids_.find(id) != ids_.end()) {
            id = std::to_string(++position);
        }
    } else if (ids_.find(id) != ids_.end()) {
        return {nullptr, log::AppendError::duplicate_id, {}};
    }
    last_position_ = position;
    auto ev = log::make_event(std::move(event), position, std::move(id), base::unix_ms());
    insert(ev);
    return {std::move(ev), log::AppendError::none, {}};
}

void MemoryStore::insert(log::EventPtr ev) {
    const std::uint64_t position = ev->position;
    last_position_ = std::max(last_position_, position);
    std::uint32_t holders = 0;
    const bool keep = retention_.max_events > 0;
    for (const auto& topic : ev->topics) {
        auto it = rings_.find(topic);
        if (it == rings_.end()) {
            it = rings_.emplace(topic, Ring{}).first;
        }
        Ring& ring = it->second;
        ring.last_id = ev->id;
        if (!keep) {
            ring.dropped_upto = position;
            continue;
        }
        ring.events.push_back(ev);
        ring.bytes += ev->footprint();
        ++holders;
    }
    if (holders > 0) {
        ids_.emplace(ev->id, IdEntry{position, holders});
    }
    // Trim after registering the id, so that an event dropped at once is unregistered.
    for (const auto& topic : ev->topics) {
        trim(rings_.find(topic)->second);
    }
}

void MemoryStore::raise_floor(const std::string& topic, std::uint64_t position) {
    Ring& ring = rings_[topic];
    ring.dropped_upto = std::max(ring.dropped_upto, position);
}

void MemoryStore::drop_front(Ring& ring) {
    const log::EventPtr& ev = ring.events.front();
    ring.bytes -= ev->footprint();
    ring.dropped_upto = ev->position;
    if (auto it = ids_.find(ev->id); it != ids_.end() && --it->second.holders == 0) {
        ids_.erase(it);
    }
    ring.events.pop_front();
}

void MemoryStore::trim(Ring& ring) {
    while (!ring.events.empty() &&
           (ring.events.size() > retention_.max_events || ring.bytes > retention_.max_bytes)) {
        drop_front(ring);
    }
}

std::optional<std::uint64_t> MemoryStore::position_of(std::string_view id) const {
    if (auto it = ids_.find(id); it != ids_.end()) {
        return it->second.position;
    }
    return std::nullopt;
}

void MemoryStore::collect(const Ring& ring, std::uint64_t after, std::vector<const Ring*>& rings,
                          bool& gap) const {
    if (ring.dropped_upto > after) {
        gap = true;
    }
    if (!ring.events.empty() && ring.events.back()->position > after) {
        rings.push_back(&ring);
    }
}

log::Replay MemoryStore::replay(std::uint64_t after, const log::TopicFilter& filter) const {
    log::Replay out;
    std::vector<const Ring*> rings;
    if (erased_dropped_upto_ > after) {
        // A covered topic may be one whose emptied ring was erased.
        const bool all_present =
            !filter.pattern &&
            std::all_of(filter.exact.begin(), filter.exact.end(),
                        [this](const std::string& t) { return rings_.contains(t); });
        out.gap = !all_present;
    }
    if (filter.pattern) {
        for (const auto& [topic, ring] : rings_) {
            if (filter.pattern(topic) ||
                std::find(filter.exact.begin(), filter.exact.end(), topic) != filter.exact.end()) {
                collect(ring, after, rings, out.gap);
            }
        }
    } else {
        for (const auto& topic : filter.exact) {
            if (auto it = rings_.find(topic); it != rings_.end()) {
                collect(it->second, after, rings, out.gap);
            }
        }
        // A topic named twice would otherwise be merged twice.
        std::sort(rings.begin(), rings.end());
        rings.erase(std::unique(rings.begin(), rings.end()), rings.end());
    }

    // K-way merge by position; an event on several of these topics comes out once.
    struct Cursor {
        std::deque<log::EventPtr>::const_iterator it, end;
    };
    auto later = [](const Cursor& a, const Cursor& b) {
        return (*a.it)->position > (*b.it)->position;
    };
    std::priority_queue<Cursor, std::vector<Cursor>, decltype(later)> heap(later);
    for (const Ring* ring : rings) {
        auto first = std::upper_bound(
            ring->events.begin(), ring->events.end(), after,
            [](std::uint64_t pos, const log::EventPtr& ev) { return pos < ev->position; });
        if (first != ring->events.end()) {
            heap.push({first, ring->events.end()});
        }
    }
    std::uint64_t last = after;
    while (!heap.empty()) {
        Cursor c = heap.top();
        heap.pop();
        if ((*c.it)->position > last) {
            last = (*c.it)->position;
            out.events.push_back(*c.it);
        }
        if (++c.it != c.end) {
            heap.push(c);
        }
    }
    return out;
}

void MemoryStore::expire(std::int64_t now_ms) {
    if (retention_.max_age_ms <= 0) {
        return;
    }
    const std::int64_t cutoff = now_ms - retention_.max_age_ms;
    for (auto it = rings_.begin(); it != rings_.end();) {
        Ring& ring = it->second;
        while (!ring.events.empty() && ring.events.front()->published_ms < cutoff) {
            drop_front(ring);
        }
        if (ring.events.empty()) {
            erased_dropped_upto_ = std::max(erased_dropped_upto_, ring.dropped_upto);
            it = rings_.erase(it);
        } else {
            ++it;
        }
    }
}

std::vector<log::TopicStats> MemoryStore::topics() const {
    std::vector<log::TopicStats> out;
    out.reserve(rings_.size());
    for (const auto& [topic, ring] : rings_) {
        out.push_back({topic, ring.events.size(), ring.bytes, ring.last_id});
    }
    return out;
}

} // namespace herald::store
