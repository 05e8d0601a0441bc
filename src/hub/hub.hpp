// The hub: publish, subscribe and resume over the event log, with fan-out to per-worker
// shards. Publishing may happen on any thread; each shard belongs to one worker thread.
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "hub/subscriber.hpp"
#include "log/event_log.hpp"

namespace herald::hub {

inline constexpr unsigned kMaxWorkers = 256;
inline constexpr std::string_view kConnectionsTopic = "$sys/connections";
// The hub's live figures, once a second while anybody follows it (the dashboard's feed).
inline constexpr std::string_view kStatsTopic = "$sys/stats";

class Hub;

// The bytes of event frames a replay reads from the log at a time (log::EventLog::replay's
// bound). A stream holds one such page of decoded events (about twice this in memory, data
// and frame) besides the frames queued ahead of its client, however long the history it
// resumes from: the SQLite and Redis stores decode a copy of each event per stream.
inline constexpr std::size_t kReplayPageBytes = 256 * 1024;

struct SubscribeResult {
    log::Replay replay; // to send before anything live
    // The value of the `Last-Event-ID` response header when a resume was asked for.
    std::optional<std::string> resume_header;
    // Not empty when the store cannot be read now (a cluster node cut off from Redis): the
    // subscription is registered but should be answered with a retry and closed.
    std::string unavailable;
};

// The part of the hub that lives on one worker: its subscribers indexed by topic, and the
// inbox of events published for them. All methods but enqueue() run on the worker thread.
class Shard {
public:
    Shard(Hub& hub, unsigned index);
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    // Registers for live events, then computes the replay: events after `last_event_id`
    // (if given) on the subscriber's topics, up to the position the hub had handed to the
    // shards when the subscriber registered. Live events after that arrive through the
    // inbox, so the stream has no gap and no duplicate. The replay is read without the hub's
    // lock: a long one (disk, network) delays this worker, never a publisher.
    [[nodiscard]] SubscribeResult subscribe(Subscriber& sub, Interest interest,
                                            const std::optional<std::string>& last_event_id);
    void unsubscribe(Subscriber& sub);
    // The next page of the subscriber's replay, when subscribe() (or the last call) said
    // more remain (Subscriber::replay_pending()): up to the same position, with the same
    // filtering. A page with `gap` (retention dropped events since the last page; reported
    // only when the first page had none, see hub.cpp) or `error` (the store cannot be read)
    // carries no events and ends the replay: the stream must end so that its client resumes
    // and learns of it. Reads the log without the hub's lock, as subscribe() does.
    [[nodiscard]] log::Replay replay_more(Subscriber& sub);

    // Delivers every event in the inbox, then flushes each subscriber that got any; ends
    // the streams that may have missed events the log lost (Hub::lost).
    void drain();

    // Events delivered to subscribers by this shard (one per subscriber and event), but for
    // the hub's own $sys events.
    [[nodiscard]] std::uint64_t delivered() const noexcept {
        return delivered_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t subscribers() const noexcept { return subscriber_count_; }

private:
    friend class Hub;
    using List = Subscriber::Link; // a list head: `next` is the first node

    // Any thread, under the hub's lock. Returns true when the inbox was empty (the
    // caller must schedule a drain).
    bool enqueue(const log::EventPtr& event);
    void offer(Subscriber& sub, const log::Event& event);
    void end_lost(std::uint64_t position);

    Hub& hub_;
    unsigned index_;
    std::unordered_map<std::string, List> by_topic_;
    std::vector<Subscriber*> patterned_;
    std::vector<Subscriber*> touched_;
    std::size_t subscriber_count_ = 0;
    std::atomic<std::uint64_t> delivered_{0};

    std::mutex inbox_mu_;
    std::vector<log::EventPtr> inbox_;
    // Frame bytes handed to this shard and not yet delivered and flushed: the hub's own
    // backlog for the worker, which its streams do not show yet.
    std::atomic<std::size_t> inbox_bytes_{0};
    std::vector<log::EventPtr> batch_; // the inbox being delivered; keeps its capacity
    std::uint64_t lost_handled_ = 0;   // the newest Hub::lost() position acted on here
};

enum class PublishError { none, duplicate_id, unavailable };

struct PublishResult {
    log::EventPtr event;
    PublishError error = PublishError::none;
    std::string reason; // why, when unavailable
};

// Called once per publish when the store has settled or refused the event: on the caller's
// thread before publish() returns (the memory store, or a refusal), or later on the store's
// own thread. Never under the hub's lock.
using PublishDone = std::function<void(PublishResult)>;

struct TopicInfo {
    std::string topic;
    std::size_t subscribers = 0;
    std::size_t retained = 0;
    std::string last_id;
};

// One page of /topics: the topics that retain history or have a subscriber (by name),
// sorted by name, strictly after `after`, starting with `prefix`, at most `limit`.
struct TopicQuery {
    std::string after;
    std::string prefix;
    std::size_t limit = static_cast<std::size_t>(-1);
};

struct TopicPage {
    std::vector<TopicInfo> topics;
    bool more = false; // topics remain after the last one listed
};

// The hub is the log's listener: every event the log settles (appended here, or in a
// cluster on another node) reaches the shards through settled(), in position order.
class Hub final : private log::LogListener {
public:
    // `schedule(worker)` must arrange for shard(worker).drain() to run on that worker soon.
    Hub(log::EventLog& log, unsigned workers, std::function<void(unsigned)> schedule);
    ~Hub() override;
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    [[nodiscard]] Shard& shard(unsigned worker) { return *shards_[worker]; }
    [[nodiscard]] unsigned workers() const noexcept {
        return static_cast<unsigned>(shards_.size());
    }

    // Any thread. Appends to the log, which hands the event to the shards once it is
    // settled (at once for the memory store, when its transaction is durable for SQLite,
    // when Redis has it for a cluster); `done` (if set) gets the outcome, once.
    void publish(log::NewEvent&& event, PublishDone done);
    // Any thread but a worker's: publishes and waits until the event is settled.
    PublishResult publish(log::NewEvent&& event);

    // Any thread. Publishes {"count": N} on $sys/connections if any subscriber came or went
    // since the last call (even if the count is back where it was: a new watcher always
    // learns the count), or if `elsewhere` (the subscribers of the cluster's other nodes)
    // changed. N counts this hub's subscribers and `elsewhere`.
    void announce_connections(std::uint64_t elsewhere = 0);
    // Any thread. The topics whose number of subscribers naming them changed since the
    // last call, with that number now (0: nobody names it any longer); all followed topics
    // when `all`. What a cluster node reports to the others for /topics. Counts are kept
    // from the first call on.
    [[nodiscard]] std::vector<std::pair<std::string, std::uint32_t>> changed_counts(bool all);
    // Any thread. Publishes `data` on a system topic ($sys/...): not counted as published
    // or delivered, since those figures are the users' events.
    void publish_system(std::string_view topic, std::string data);
    // A worker thread: the subscriber with `interest` is reading but far behind (or no
    // longer). Counted per exact topic, for held_back(). Must be undone (false) before the
    // subscriber unsubscribes.
    void set_behind(const Interest& interest, bool behind);
    // Any thread. A topic of `topics` whose subscribers the hub cannot keep up with: more
    // than half of those naming it exactly are reading but far behind, or a worker that
    // serves any of its subscribers has more than `inbox_limit` bytes of events not yet
    // delivered. A publish there should wait. Nothing when none is.
    [[nodiscard]] std::optional<std::string> held_back(const std::vector<std::string>& topics,
                                                       std::size_t inbox_limit) const;
    // Any thread. Whether any subscriber names `topic` now.
    [[nodiscard]] bool followed(std::string_view topic) const;
    // Any thread. Applies age retention.
    void expire(std::int64_t now_ms);

    // Any thread. Costs the page's length (and the number of pattern subscriptions), not
    // the number of topics.
    [[nodiscard]] TopicPage topics(const TopicQuery& query) const;
    [[nodiscard]] std::vector<TopicInfo> topics() const { return topics(TopicQuery{}).topics; }
    // Any thread. The history's figures, and the number of topics followed by name: both
    // kept up to date, so reading them costs the same however many topics there are.
    [[nodiscard]] log::HistoryFigures history() const;
    [[nodiscard]] std::size_t followed_topics() const;
    // The store's own counters, if it keeps any (any thread).
    [[nodiscard]] std::optional<log::StoreFigures> store_figures() const { return log_.figures(); }
    // Why the store cannot take events now, or nothing when it can.
    [[nodiscard]] std::optional<std::string> trouble() const;

    [[nodiscard]] std::int64_t subscribers() const noexcept {
        return subscribers_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t published() const noexcept {
        return published_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t replayed() const noexcept {
        return replayed_.load(std::memory_order_relaxed);
    }
    // Replay pages read from the log (the first of each resume included).
    [[nodiscard]] std::uint64_t replay_pages() const noexcept {
        return replay_pages_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t delivered() const noexcept;

private:
    friend class Shard;
    using WorkerSet = std::bitset<kMaxWorkers>;
    struct Interested {
        WorkerSet workers;
        std::vector<std::uint32_t> counts; // subscribers per worker
        std::uint32_t patterned = 0;       // of them, those that also have patterns
        std::uint32_t total = 0;           // subscribers, all workers together
        std::uint32_t behind = 0;          // of them, reading but far behind (set_behind)
        std::string last_id; // of the newest event since it was followed (/topics, when the
                             // log retains none)
    };
    // Subscribers with patterns, grouped by their whole interest, so that /topics counts
    // each of them once per topic however many of its selectors match.
    struct PatternGroup {
        Interest interest;
        std::uint32_t count = 0;
    };

    // log::LogListener: the log's thread, one call at a time.
    void settled(std::span<const log::EventPtr> events) override;
    void lost(std::uint64_t position) override;

    void add_interest(unsigned worker, const Interest& interest);
    void fan_out(const log::EventPtr& event); // under mu_
    void remove_interest(unsigned worker, const Interest& interest);

    log::EventLog& log_;
    std::function<void(unsigned)> schedule_;
    std::vector<std::unique_ptr<Shard>> shards_;

    // The interest tables and the hand-off to the shards. Never held while calling into the
    // log, so no publisher waits on a replay, a disk or a network.
    mutable std::mutex mu_;
    // The position of the newest event handed to the shards: where a new subscriber's
    // replay stops and its live events start.
    std::uint64_t fanned_ = 0;
    // The newest position the log said it lost (Hub::lost): streams behind it end.
    std::atomic<std::uint64_t> lost_upto_{0};
    // Only topics with a subscriber have an entry; ordered by name for /topics pages.
    std::map<std::string, Interested, std::less<>> exact_;
    std::unordered_map<std::string, PatternGroup> patterned_; // by signature()
    std::vector<std::uint32_t> pattern_counts_;               // per worker
    WorkerSet pattern_workers_;

    std::atomic<std::int64_t> subscribers_{0};
    std::atomic<std::uint64_t> comings_and_goings_{0};
    std::uint64_t announced_ = 0;           // under mu_: comings_and_goings_ when last published
    std::uint64_t announced_elsewhere_ = 0; // under mu_: `elsewhere` when last published
    // Under mu_: whether changed_counts() was ever called, and the topics whose count
    // changed since its last call.
    bool tracking_counts_ = false;
    std::set<std::string, std::less<>> changed_topics_;
    std::atomic<std::uint64_t> published_{0};
    std::atomic<std::uint64_t> replayed_{0};
    std::atomic<std::uint64_t> replay_pages_{0};
};

} // namespace herald::hub
