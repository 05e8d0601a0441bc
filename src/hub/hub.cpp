// Publish, subscribe and fan-out. The log hands settled events to the hub in position
// order, one call at a time; the hub's lock serialises that hand-off with the interest
// tables, so every shard's inbox is in position order and a new subscriber's replay meets
// its live events at one position. Each shard then delivers on its own thread without
// locks. The hub never calls into the log with its lock held.
#include "hub/hub.hpp"

#include <algorithm>
#include <future>

namespace herald::hub {

bool Access::may_read(std::string_view topic) const noexcept {
    return everything || any_matches(read, topic);
}

bool Access::may_read_private(std::string_view topic) const noexcept {
    return everything || any_matches(read_private, topic);
}

// An event is for the subscriber when one of its topics is both followed (named, or
// matched by a pattern) and readable; for a private event, readable by the token itself.
bool Subscriber::wants(const log::Event& event) const noexcept {
    const Interest& in = interest_;
    for (const auto& topic : event.topics) {
        const bool named = std::binary_search(in.exact.begin(), in.exact.end(), topic);
        if (!named && !(any_matches(in.patterns, topic) && in.may_read(topic))) {
            continue;
        }
        if (event.is_private && !in.may_read_private(topic)) {
            continue;
        }
        return true;
    }
    return false;
}

namespace {

// The hub's own events ($sys/connections, $sys/stats) have one topic, a system one; nobody
// else may publish there.
bool system_event(const log::Event& ev) noexcept {
    return ev.topics.size() == 1 && is_system_topic(ev.topics.front());
}

// A key that is the same for two interests with the same topics and selectors.
std::string signature(const Interest& interest) {
    std::string key;
    for (const auto& topic : interest.exact) {
        key += topic;
        key += '\0';
    }
    key += '\1';
    for (const auto& selector : interest.patterns) {
        key += selector.text();
        key += '\0';
    }
    // Two streams of one token share its Access; streams of different tokens never group,
    // since what they may read can differ. The group holds the Access, so the address
    // stays unique while the group exists.
    key += '\2';
    key += std::to_string(reinterpret_cast<std::uintptr_t>(interest.access.get()));
    return key;
}

// The topics a subscriber's replay covers: its named ones and those its patterns match.
// The filter refers to `in`, which must outlive it.
log::TopicFilter replay_filter(const Interest& in) {
    log::TopicFilter filter;
    filter.exact = in.exact;
    if (!in.patterns.empty()) {
        filter.pattern = [&in](std::string_view topic) {
            return std::any_of(in.patterns.begin(), in.patterns.end(),
                               [topic](const Selector& s) { return s.matches(topic); });
        };
    }
    return filter;
}

} // namespace

// ---- Shard ----

Shard::Shard(Hub& hub, unsigned index) : hub_(hub), index_(index) {}

SubscribeResult Shard::subscribe(Subscriber& sub, Interest interest,
                                 const std::optional<std::string>& last_event_id) {
    std::sort(interest.exact.begin(), interest.exact.end());
    interest.exact.erase(std::unique(interest.exact.begin(), interest.exact.end()),
                         interest.exact.end());
    sub.interest_ = std::move(interest);
    const Interest& in = sub.interest_;

    SubscribeResult result;
    std::uint64_t mark = 0;
    {
        std::lock_guard lock(hub_.mu_);
        hub_.add_interest(index_, in);
        // Events up to here were handed to the shards before this one knew the subscriber:
        // the replay covers them (or they predate the subscription). Later ones arrive
        // through the inbox, which this thread drains only after this call.
        mark = hub_.fanned_;
    }
    sub.position_ = mark;
    sub.replay_more_ = false;
    if (auto why = hub_.log_.unreachable()) {
        result.unavailable = std::move(*why);
    } else if (last_event_id) {
        // Without the hub's lock: the log may read a disk or a network here.
        std::uint64_t after = 0;
        result.resume_header = "earliest";
        if (*last_event_id != "earliest") {
            if (auto pos = hub_.log_.position_of(*last_event_id)) {
                after = *pos;
                result.resume_header = *last_event_id;
            }
        }
        // The first page only: the stream asks for the next one (replay_more()) once it has
        // queued this one, so that it never holds more than a page of decoded events.
        result.replay = hub_.log_.replay(after, mark, replay_filter(in), kReplayPageBytes);
        if (!result.replay.error.empty()) {
            result.unavailable = std::move(result.replay.error);
            result.replay = log::Replay{};
        }
        if (result.replay.gap) {
            result.resume_header = "earliest";
        }
        sub.replay_after_ = result.replay.next_after;
        sub.replay_upto_ = mark;
        sub.replay_more_ = result.replay.more;
        sub.replay_gap_told_ = result.replay.gap;
        auto& events = result.replay.events;
        events.erase(std::remove_if(events.begin(), events.end(),
                                    [&sub](const log::EventPtr& ev) { return !sub.wants(*ev); }),
                     events.end());
        // In a cluster the client may come from a node further ahead than this one: what
        // it has seen, it must not get again when it arrives here live.
        sub.position_ = std::max(mark, after);
    }
    hub_.replayed_.fetch_add(result.replay.events.size(), std::memory_order_relaxed);
    if (last_event_id && result.unavailable.empty()) {
        hub_.replay_pages_.fetch_add(1, std::memory_order_relaxed);
    }

    sub.links_.assign(in.exact.size(), Subscriber::Link{});
    for (std::size_t i = 0; i < in.exact.size(); ++i) {
        List& head = by_topic_[in.exact[i]];
        Subscriber::Link& link = sub.links_[i];
        link.self = &sub;
        link.prev = &head;
        link.next = head.next;
        if (head.next != nullptr) {
            head.next->prev = &link;
        }
        head.next = &link;
    }
    if (!in.patterns.empty()) {
        sub.pattern_slot_ = static_cast<std::uint32_t>(patterned_.size());
        patterned_.push_back(&sub);
    }
    sub.subscribed_ = true;
    ++subscriber_count_;
    hub_.subscribers_.fetch_add(1, std::memory_order_relaxed);
    hub_.comings_and_goings_.fetch_add(1, std::memory_order_relaxed);
    return result;
}

log::Replay Shard::replay_more(Subscriber& sub) {
    log::Replay page;
    if (!sub.replay_more_) {
        return page;
    }
    // Without the hub's lock, as the first page: the log may read a disk or a network.
    page = hub_.log_.replay(sub.replay_after_, sub.replay_upto_, replay_filter(sub.interest_),
                            kReplayPageBytes);
    // A log reports a gap when a covered topic dropped an event after the place asked for,
    // and cannot tell drops since the first page from older ones. A replay whose first page
    // found none has none of the older kind: a gap now is events dropped since. One whose
    // first page found one was told `earliest` (what the history still holds), and an older
    // drop past this page's place (a busy topic beside a quiet one) would end every page;
    // it goes on with what remains.
    if (sub.replay_gap_told_) {
        page.gap = false;
    }
    sub.replay_after_ = page.next_after;
    sub.replay_more_ = page.more && !page.gap && page.error.empty();
    if (page.gap || !page.error.empty()) {
        page.events.clear(); // the stream ends: its client resumes where it stopped
        return page;
    }
    auto& events = page.events;
    events.erase(std::remove_if(events.begin(), events.end(),
                                [&sub](const log::EventPtr& ev) { return !sub.wants(*ev); }),
                 events.end());
    hub_.replayed_.fetch_add(events.size(), std::memory_order_relaxed);
    hub_.replay_pages_.fetch_add(1, std::memory_order_relaxed);
    return page;
}

void Shard::unsubscribe(Subscriber& sub) {
    if (!sub.subscribed_) {
        return;
    }
    sub.subscribed_ = false;
    sub.replay_more_ = false;
    for (std::size_t i = 0; i < sub.links_.size(); ++i) {
        Subscriber::Link& link = sub.links_[i];
        link.prev->next = link.next;
        if (link.next != nullptr) {
            link.next->prev = link.prev;
        }
        if (auto it = by_topic_.find(sub.interest_.exact[i]);
            it != by_topic_.end() && it->second.next == nullptr) {
            by_topic_.erase(it);
        }
    }
    sub.links_.clear();
    if (!sub.interest_.patterns.empty()) {
        Subscriber* last = patterned_.back();
        patterned_[sub.pattern_slot_] = last;
        last->pattern_slot_ = sub.pattern_slot_;
        patterned_.pop_back();
    }
    --subscriber_count_;
    hub_.subscribers_.fetch_sub(1, std::memory_order_relaxed);
    hub_.comings_and_goings_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(hub_.mu_);
    hub_.remove_interest(index_, sub.interest_);
}

bool Shard::enqueue(const log::EventPtr& event) {
    std::lock_guard lock(inbox_mu_);
    inbox_bytes_.fetch_add(event->frame.size(), std::memory_order_relaxed);
    inbox_.push_back(event);
    return inbox_.size() == 1;
}

void Shard::offer(Subscriber& sub, const log::Event& event) {
    if (event.position != 0) { // the hub's own events have no place in the order
        sub.position_ = event.position;
    }
    sub.deliver(event);
    if (!sub.flush_pending_) {
        sub.flush_pending_ = true;
        touched_.push_back(&sub);
    }
}

void Shard::drain() {
    {
        std::lock_guard lock(inbox_mu_);
        batch_.swap(inbox_);
    }
    std::uint64_t delivered = 0;
    std::size_t batch_bytes = 0;
    for (const log::EventPtr& ptr : batch_) {
        const log::Event& ev = *ptr;
        batch_bytes += ev.frame.size();
        const std::uint64_t before = delivered;
        for (const auto& topic : ev.topics) {
            auto it = by_topic_.find(topic);
            if (it == by_topic_.end()) {
                continue;
            }
            for (Subscriber::Link* link = it->second.next; link != nullptr; link = link->next) {
                Subscriber& sub = *link->self;
                // The position check also makes an event on several of the subscriber's
                // topics arrive once.
                // Named topics were checked readable when the stream opened; a private event
                // also needs the token's own grant for one of its topics.
                if ((ev.position > sub.position_ || ev.position == 0) &&
                    (!ev.is_private || sub.wants(ev))) {
                    offer(sub, ev);
                    ++delivered;
                }
            }
        }
        for (Subscriber* sub : patterned_) {
            if ((ev.position > sub->position_ || ev.position == 0) && sub->wants(ev)) {
                offer(*sub, ev);
                ++delivered;
            }
        }
        if (system_event(ev)) {
            delivered = before; // delivered, but not one of the users' events: not counted
        }
    }
    batch_.clear();
    delivered_.store(delivered_.load(std::memory_order_relaxed) + delivered,
                     std::memory_order_relaxed);
    // flush() may close a subscriber (a write error), which unsubscribes it; that never
    // touches touched_.
    for (Subscriber* sub : touched_) {
        sub->flush_pending_ = false;
        sub->flush();
    }
    touched_.clear();
    // Now in the streams' queues, where their unsent bytes show it.
    inbox_bytes_.fetch_sub(batch_bytes, std::memory_order_relaxed);
    if (const auto lost = hub_.lost_upto_.load(std::memory_order_acquire); lost > lost_handled_) {
        lost_handled_ = lost;
        end_lost(lost);
    }
}

void Shard::end_lost(std::uint64_t position) {
    // A subscriber of several topics is met once per topic: sorted and made unique below,
    // not searched for each time (a worker may have tens of thousands of streams).
    std::vector<Subscriber*> ending;
    auto consider = [&](Subscriber* sub) {
        if (sub->position_ < position) {
            ending.push_back(sub);
        }
    };
    for (const auto& [topic, head] : by_topic_) {
        for (Subscriber::Link* link = head.next; link != nullptr; link = link->next) {
            consider(link->self);
        }
    }
    for (Subscriber* sub : patterned_) {
        consider(sub);
    }
    std::sort(ending.begin(), ending.end());
    ending.erase(std::unique(ending.begin(), ending.end()), ending.end());
    // Each unsubscribes, which changes the lists walked above.
    for (Subscriber* sub : ending) {
        sub->lose();
    }
}

// ---- Hub ----

Hub::Hub(log::EventLog& log, unsigned workers, std::function<void(unsigned)> schedule)
    : log_(log), schedule_(std::move(schedule)), fanned_(log.last_position()) {
    workers = std::clamp(workers, 1U, kMaxWorkers);
    pattern_counts_.assign(workers, 0);
    shards_.reserve(workers);
    for (unsigned i = 0; i < workers; ++i) {
        shards_.push_back(std::make_unique<Shard>(*this, i));
    }
    log_.set_listener(this);
}

Hub::~Hub() {
    log_.set_listener(nullptr);
}

void Hub::add_interest(unsigned worker, const Interest& interest) {
    const bool has_patterns = !interest.patterns.empty();
    for (const auto& topic : interest.exact) {
        if (tracking_counts_) {
            changed_topics_.insert(topic);
        }
        Interested& entry = exact_[topic];
        if (entry.counts.empty()) {
            entry.counts.assign(shards_.size(), 0);
        }
        if (entry.counts[worker]++ == 0) {
            entry.workers.set(worker);
        }
        ++entry.total;
        entry.patterned += has_patterns ? 1 : 0;
    }
    if (has_patterns) {
        auto [it, fresh] = patterned_.try_emplace(signature(interest), PatternGroup{interest, 0});
        ++it->second.count;
        if (pattern_counts_[worker]++ == 0) {
            pattern_workers_.set(worker);
        }
    }
}

void Hub::remove_interest(unsigned worker, const Interest& interest) {
    const bool has_patterns = !interest.patterns.empty();
    for (const auto& topic : interest.exact) {
        if (tracking_counts_) {
            changed_topics_.insert(topic);
        }
        auto it = exact_.find(topic);
        if (it == exact_.end()) {
            continue;
        }
        it->second.patterned -= has_patterns ? 1 : 0;
        --it->second.total;
        if (--it->second.counts[worker] == 0) {
            it->second.workers.reset(worker);
            if (it->second.workers.none()) {
                exact_.erase(it);
            }
        }
    }
    if (has_patterns) {
        if (auto it = patterned_.find(signature(interest));
            it != patterned_.end() && --it->second.count == 0) {
            patterned_.erase(it);
        }
        if (--pattern_counts_[worker] == 0) {
            pattern_workers_.reset(worker);
        }
    }
}

void Hub::set_behind(const Interest& interest, bool behind) {
    std::lock_guard lock(mu_);
    for (const auto& topic : interest.exact) {
        auto it = exact_.find(topic);
        if (it == exact_.end()) {
            continue;
        }
        if (behind) {
            ++it->second.behind;
        } else if (it->second.behind > 0) {
            --it->second.behind;
        }
    }
}

std::optional<std::string> Hub::held_back(const std::vector<std::string>& topics,
                                          std::size_t inbox_limit) const {
    std::lock_guard lock(mu_);
    auto backlogged = [&](const WorkerSet& workers) {
        for (std::size_t w = 0; w < shards_.size(); ++w) {
            if (workers.test(w) &&
                shards_[w]->inbox_bytes_.load(std::memory_order_relaxed) > inbox_limit) {
                return true;
            }
        }
        return false;
    };
    for (const auto& topic : topics) {
        auto it = exact_.find(topic);
        if (it != exact_.end() &&
            (it->second.behind * 2 > it->second.total || backlogged(it->second.workers))) {
            return topic;
        }
    }
    if (pattern_workers_.any() && backlogged(pattern_workers_) && !topics.empty()) {
        return topics.front(); // a `*` or template subscriber's worker is behind
    }
    return std::nullopt;
}

void Hub::publish(log::NewEvent&& event, PublishDone done) {
    log_.append(std::move(event), [this, done = std::move(done)](log::AppendResult appended) {
        PublishResult r;
        switch (appended.error) {
        case log::AppendError::none:
            published_.fetch_add(1, std::memory_order_relaxed);
            r.event = std::move(appended.event);
            break;
        case log::AppendError::duplicate_id: r.error = PublishError::duplicate_id; break;
        case log::AppendError::unavailable:
            r.error = PublishError::unavailable;
            r.reason = std::move(appended.reason);
            break;
        }
        if (done) {
            done(std::move(r));
        }
    });
}

PublishResult Hub::publish(log::NewEvent&& event) {
    std::promise<PublishResult> promise;
    auto settled = promise.get_future();
    publish(std::move(event), [&promise](PublishResult r) { promise.set_value(std::move(r)); });
    return settled.get();
}

void Hub::settled(std::span<const log::EventPtr> events) {
    std::lock_guard lock(mu_);
    for (const log::EventPtr& ev : events) {
        fanned_ = std::max(fanned_, ev->position);
        fan_out(ev);
    }
}

void Hub::lost(std::uint64_t position) {
    {
        std::lock_guard lock(mu_);
        // New subscribers start after the loss; their replay reports what retention dropped.
        fanned_ = std::max(fanned_, position);
    }
    std::uint64_t seen = lost_upto_.load(std::memory_order_relaxed);
    while (seen < position &&
           !lost_upto_.compare_exchange_weak(seen, position, std::memory_order_release)) {
    }
    for (unsigned w = 0; w < shards_.size(); ++w) {
        schedule_(w);
    }
}

void Hub::fan_out(const log::EventPtr& ev) {
    WorkerSet targets;
    bool ordinary = false;
    for (const auto& topic : ev->topics) {
        if (auto it = exact_.find(topic); it != exact_.end()) {
            targets |= it->second.workers;
            it->second.last_id = ev->id;
        }
        ordinary = ordinary || !is_system_topic(topic);
    }
    if (ordinary) {
        targets |= pattern_workers_;
    }
    for (unsigned w = 0; w < shards_.size(); ++w) {
        if (targets.test(w) && shards_[w]->enqueue(ev)) {
            schedule_(w);
        }
    }
}

void Hub::announce_connections(std::uint64_t elsewhere) {
    const std::uint64_t changes = comings_and_goings_.load(std::memory_order_relaxed);
    const std::int64_t count = subscribers_.load(std::memory_order_relaxed);
    {
        std::lock_guard lock(mu_);
        if (changes == announced_ && elsewhere == announced_elsewhere_) {
            return;
        }
        announced_ = changes;
        announced_elsewhere_ = elsewhere;
    }
    const auto total = static_cast<std::uint64_t>(std::max<std::int64_t>(count, 0)) + elsewhere;
    publish_system(kConnectionsTopic, "{\"count\":" + std::to_string(total) + "}");
}

std::vector<std::pair<std::string, std::uint32_t>> Hub::changed_counts(bool all) {
    std::lock_guard lock(mu_);
    tracking_counts_ = true;
    std::vector<std::pair<std::string, std::uint32_t>> out;
    if (all) {
        out.reserve(exact_.size());
        for (const auto& [topic, entry] : exact_) {
            out.emplace_back(topic, entry.total);
        }
    } else {
        out.reserve(changed_topics_.size());
        for (const auto& topic : changed_topics_) {
            const auto it = exact_.find(topic);
            out.emplace_back(topic, it == exact_.end() ? 0 : it->second.total);
        }
    }
    changed_topics_.clear();
    return out;
}

// The hub's own events are each node's own: not in the log (never replayed, never sent to
// another node), with no id and no position; shards deliver them to whoever follows the
// topic then.
void Hub::publish_system(std::string_view topic, std::string data) {
    log::NewEvent in;
    in.topics.emplace_back(topic);
    in.data = std::move(data);
    const log::EventPtr ev = log::make_event(std::move(in), 0, std::string(), 0);
    std::lock_guard lock(mu_);
    fan_out(ev);
}

bool Hub::followed(std::string_view topic) const {
    std::lock_guard lock(mu_);
    return exact_.find(topic) != exact_.end();
}

void Hub::expire(std::int64_t now_ms) {
    log_.expire(now_ms);
}

TopicPage Hub::topics(const TopicQuery& query) const {
    // The topics with history and those followed by name, each in name order: merged, one
    // past the page to know whether more remain. The log first, without the lock.
    const std::size_t want =
        query.limit == static_cast<std::size_t>(-1) ? query.limit : query.limit + 1;
    std::vector<log::TopicStats> stored =
        log_.topics(log::TopicRange{query.after, query.prefix, want});
    std::lock_guard lock(mu_);
    auto followed = exact_.lower_bound(query.prefix);
    if (!query.after.empty() && query.after >= query.prefix) {
        followed = exact_.upper_bound(query.after);
    }
    auto in_range = [&](decltype(followed) it) {
        return it != exact_.end() && it->first.starts_with(query.prefix);
    };
    TopicPage page;
    auto s = stored.begin();
    while (page.topics.size() < want && (s != stored.end() || in_range(followed))) {
        const bool take_stored =
            s != stored.end() && (!in_range(followed) || s->topic <= followed->first);
        TopicInfo info;
        const Interested* entry = nullptr;
        if (take_stored) {
            if (in_range(followed) && followed->first == s->topic) {
                entry = &(followed++)->second;
            }
            info = {std::move(s->topic), 0, s->retained, std::move(s->last_id)};
            ++s;
        } else {
            entry = &followed->second;
            info = {followed->first, 0, 0, entry->last_id};
            ++followed;
        }
        if (entry != nullptr) {
            // Subscribers that also have patterns are counted with their group below.
            std::size_t total = 0;
            for (auto n : entry->counts) {
                total += n;
            }
            info.subscribers = total - entry->patterned;
            if (info.last_id.empty()) {
                info.last_id = entry->last_id;
            }
        }
        page.topics.push_back(std::move(info));
    }
    if (page.topics.size() > query.limit) {
        page.topics.pop_back();
        page.more = true;
    }
    for (auto& info : page.topics) {
        for (const auto& [key, group] : patterned_) {
            const auto& in = group.interest;
            const bool named =
                std::find(in.exact.begin(), in.exact.end(), info.topic) != in.exact.end();
            if (named || (any_matches(in.patterns, info.topic) && in.may_read(info.topic))) {
                info.subscribers += group.count;
            }
        }
    }
    return page;
}

log::HistoryFigures Hub::history() const {
    return log_.history();
}

std::size_t Hub::followed_topics() const {
    std::lock_guard lock(mu_);
    return exact_.size();
}

std::optional<std::string> Hub::trouble() const {
    return log_.trouble();
}

std::uint64_t Hub::delivered() const noexcept {
    std::uint64_t total = 0;
    for (const auto& shard : shards_) {
        total += shard->delivered();
    }
    return total;
}

} // namespace herald::hub
