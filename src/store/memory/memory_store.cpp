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

void MemoryStore::set_listener(log::LogListener* listener) {
    std::lock_guard lock(mu_);
    listener_ = listener;
}

void MemoryStore::append(log::NewEvent&& event, log::AppendDone done) {
    log::AppendResult result;
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            result = {nullptr, log::AppendError::unavailable, "the store is closed"};
        } else {
            result = append_locked(std::move(event));
        }
        if (result.event && listener_ != nullptr) {
            listener_->settled(std::span<const log::EventPtr>(&result.event, 1));
        }
    }
    if (done) {
        done(std::move(result));
    }
}

void MemoryStore::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
}

std::uint64_t MemoryStore::last_position() const {
    std::lock_guard lock(mu_);
    return last_position_;
}

std::size_t MemoryStore::size() const {
    std::lock_guard lock(mu_);
    return ids_.size();
}

log::AppendResult MemoryStore::append_locked(log::NewEvent&& event) {
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
    insert_locked(ev);
    return {std::move(ev), log::AppendError::none, {}};
}

void MemoryStore::insert(log::EventPtr ev) {
    std::lock_guard lock(mu_);
    insert_locked(std::move(ev));
}

void MemoryStore::insert_locked(log::EventPtr ev) {
    const std::uint64_t position = ev->position;
    last_position_ = std::max(last_position_, position);
    if (retention_.max_events == 0) {
        // No history: nothing to hold, only what a replay must know (events went by).
        for (const auto& topic : ev->topics) {
            erased_.raise(topic, position);
        }
        return;
    }
    std::uint32_t holders = 0;
    for (const auto& topic : ev->topics) {
        auto [it, fresh] = rings_.try_emplace(topic);
        Ring& ring = it->second;
        if (fresh) {
            ring.name = &it->first;
            // What a forgotten topic of this name dropped still counts.
            ring.dropped_upto = erased_.of(topic);
        } else {
            unlink(ring);
        }
        link_newest(ring);
        ring.events.push_back(ev);
        ring.bytes += ev->footprint();
        total_bytes_ += ev->footprint();
        ++holders;
    }
    ids_.emplace(ev->id, IdEntry{position, holders});
    by_position_.emplace(position, ev.get());
    // Trim after registering the id, so that an event dropped at once is unregistered.
    for (const auto& topic : ev->topics) {
        if (auto it = rings_.find(topic); it != rings_.end()) {
            trim(it);
        }
    }
    enforce_caps();
}

void MemoryStore::raise_floor(const std::string& topic, std::uint64_t position) {
    std::lock_guard lock(mu_);
    if (auto it = rings_.find(topic); it != rings_.end()) {
        it->second.dropped_upto = std::max(it->second.dropped_upto, position);
    } else {
        erased_.raise(topic, position);
    }
}

void MemoryStore::raise_all_floors(std::uint64_t position) {
    std::lock_guard lock(mu_);
    for (auto& [topic, ring] : rings_) {
        ring.dropped_upto = std::max(ring.dropped_upto, position);
    }
    erased_.raise_all(position);
}

void MemoryStore::link_newest(Ring& ring) {
    ring.older = newest_;
    ring.newer = nullptr;
    if (newest_ != nullptr) {
        newest_->newer = &ring;
    } else {
        oldest_ = &ring;
    }
    newest_ = &ring;
}

void MemoryStore::unlink(Ring& ring) {
    (ring.older != nullptr ? ring.older->newer : oldest_) = ring.newer;
    (ring.newer != nullptr ? ring.newer->older : newest_) = ring.older;
    ring.older = ring.newer = nullptr;
}

void MemoryStore::drop_front(Ring& ring) {
    const log::EventPtr& ev = ring.events.front();
    ring.bytes -= ev->footprint();
    total_bytes_ -= ev->footprint();
    ring.dropped_upto = std::max(ring.dropped_upto, ev->position);
    if (auto it = ids_.find(ev->id); it != ids_.end() && --it->second.holders == 0) {
        ids_.erase(it);
        by_position_.erase(ev->position);
    }
    ring.events.pop_front();
}

MemoryStore::RingMap::iterator MemoryStore::forget(RingMap::iterator it) {
    erased_.raise(it->first, it->second.dropped_upto);
    unlink(it->second);
    return rings_.erase(it);
}

void MemoryStore::trim(RingMap::iterator it) {
    Ring& ring = it->second;
    while (!ring.events.empty() &&
           (ring.events.size() > retention_.max_events || ring.bytes > retention_.max_bytes)) {
        drop_front(ring);
    }
    if (ring.events.empty()) {
        forget(it);
    }
}

// The hub-wide bounds, after an insert: whole topics first (the one whose newest event is
// the oldest), then the oldest events in the global order.
void MemoryStore::enforce_caps() {
    while (retention_.max_topics > 0 && rings_.size() > retention_.max_topics) {
        // Rings tied on their newest event (one event on several topics) are linked one
        // after another: the first name goes, as in SQLite and Redis.
        const Ring* victim = oldest_;
        const std::uint64_t newest = victim->events.back()->position;
        for (const Ring* r = victim->newer; r != nullptr && r->events.back()->position == newest;
             r = r->newer) {
            if (*r->name < *victim->name) {
                victim = r;
            }
        }
        auto it = rings_.find(*victim->name);
        while (!it->second.events.empty()) {
            drop_front(it->second);
            ++evicted_max_topics_;
        }
        forget(it);
    }
    while (retention_.max_total_bytes > 0 && total_bytes_ > retention_.max_total_bytes &&
           !by_position_.empty()) {
        const auto oldest = by_position_.begin();
        const std::uint64_t position = oldest->first;
        // The globally oldest retained event is the oldest of every ring holding it.
        log::EventPtr keep; // it must outlive the loop over its own topics
        for (const auto& topic : oldest->second->topics) {
            auto it = rings_.find(topic);
            if (it == rings_.end() || it->second.events.front()->position != position) {
                continue;
            }
            if (!keep) {
                keep = it->second.events.front();
            }
            drop_front(it->second);
            ++evicted_max_total_bytes_;
            if (it->second.events.empty()) {
                forget(it);
            }
        }
        if (!keep) {
            by_position_.erase(position); // cannot happen: no ring held it
        }
    }
}

std::optional<std::uint64_t> MemoryStore::position_of(std::string_view id) const {
    std::lock_guard lock(mu_);
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

log::Replay MemoryStore::replay(std::uint64_t after, std::uint64_t upto,
                                const log::TopicFilter& filter, std::size_t max_bytes) const {
    std::lock_guard lock(mu_);
    log::Replay out;
    std::vector<const Ring*> rings;
    if (filter.pattern) {
        // A covered topic may be any that was forgotten.
        out.gap = erased_.max() > after;
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
            } else if (erased_.of(topic) > after) {
                out.gap = true; // a forgotten topic of this name (or its bucket) dropped some
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
    std::size_t bytes = 0;
    while (!heap.empty()) {
        Cursor c = heap.top();
        if ((*c.it)->position > upto) {
            break; // the heap yields positions in order: the rest are later still
        }
        if ((*c.it)->position > last) {
            if (!out.events.empty() && bytes >= max_bytes) {
                out.more = true; // the page is full and this event is the next one
                break;
            }
            last = (*c.it)->position;
            bytes += (*c.it)->frame.size();
            out.events.push_back(*c.it);
        }
        heap.pop();
        if (++c.it != c.end) {
            heap.push(c);
        }
    }
    out.next_after = last;
    return out;
}

void MemoryStore::expire(std::int64_t now_ms) {
    std::lock_guard lock(mu_);
    if (retention_.max_age_ms <= 0) {
        return;
    }
    const std::int64_t cutoff = now_ms - retention_.max_age_ms;
    for (auto it = rings_.begin(); it != rings_.end();) {
        Ring& ring = it->second;
        while (!ring.events.empty() && ring.events.front()->published_ms < cutoff) {
            drop_front(ring);
        }
        it = ring.events.empty() ? forget(it) : std::next(it);
    }
}

std::vector<log::TopicStats> MemoryStore::topics(const log::TopicRange& range) const {
    std::lock_guard lock(mu_);
    std::vector<log::TopicStats> out;
    auto it = rings_.lower_bound(range.prefix);
    if (!range.after.empty() && range.after >= range.prefix) {
        it = rings_.upper_bound(range.after);
    }
    for (; it != rings_.end() && out.size() < range.limit; ++it) {
        const auto& [topic, ring] = *it;
        if (!topic.starts_with(range.prefix)) {
            break; // the names with a prefix are consecutive
        }
        out.push_back({topic, ring.events.size(), ring.bytes, ring.events.back()->id});
    }
    return out;
}

log::HistoryFigures MemoryStore::history() const {
    std::lock_guard lock(mu_);
    return {rings_.size(), total_bytes_, evicted_max_topics_, evicted_max_total_bytes_};
}

} // namespace herald::store
