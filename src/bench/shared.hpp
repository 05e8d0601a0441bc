// The state every process of one `herald bench` run shares: one anonymous MAP_SHARED
// mapping made before the subscriber processes are forked. Publishers (in the parent)
// record which sequence numbers were acknowledged; subscriber processes report progress
// and, at the end, their tallies. Only lock-free atomics and plain data live here.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bench/measure.hpp"

namespace herald::bench {

enum class Phase : int { connecting = 0, publishing = 1, tally = 2, abort = 3 };

// What one subscriber process found, written once when it is done.
struct Tally {
    std::uint64_t deliveries = 0; // every event received, duplicates included
    std::uint64_t bytes = 0;
    std::uint64_t expected = 0;
    std::uint64_t missing = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t malformed = 0;
    std::uint64_t stray = 0; // received but never acknowledged to the publisher
    std::int64_t subscribers_missing = 0;
    std::int64_t disconnected = 0;
    double cpu_s = 0; // this process's CPU time while publishing (forked processes only)
    std::int64_t last_delivery_ns = 0; // when the last new event arrived
    Histogram latency;
    std::atomic<int> done{0};
};

struct Control {
    std::atomic<int> heads{0};            // subscribers that got a 2xx response head
    std::atomic<int> failed{0};           // subscribers refused or unable to connect
    std::atomic<std::uint64_t> unique{0}; // (publisher, seq) first seen, over all subscribers
    std::atomic<int> phase{0};
    std::atomic_flag failure_lock = ATOMIC_FLAG_INIT;
    char first_failure[256] = {};
};

class SharedState {
public:
    // `topics` head counters, `processes` tallies, and for each publisher a bitmap of
    // `seq_capacity` acknowledged-or-not bits.
    SharedState(int topics, int processes, int publishers, std::uint64_t seq_capacity);
    ~SharedState();
    SharedState(const SharedState&) = delete;
    SharedState& operator=(const SharedState&) = delete;

    Control& control() { return *control_; }
    std::atomic<int>& heads_of_topic(int t) { return heads_by_topic_[t]; }
    Tally& tally(int process) { return tallies_[process]; }
    std::uint64_t seq_capacity() const { return seq_capacity_; }

    // Publisher p's own bitmap: only p writes it, before the phase turns to tally.
    std::uint64_t* acks(int publisher) {
        return acks_ + static_cast<std::size_t>(publisher) * words_per_publisher_;
    }
    bool acknowledged(int publisher, std::uint64_t seq) const {
        return seq < seq_capacity_ &&
               (acks_[static_cast<std::size_t>(publisher) * words_per_publisher_ + seq / 64] >>
                    (seq % 64) &
                1U) != 0;
    }
    std::size_t words_per_publisher() const { return words_per_publisher_; }

    void fail(const std::string& why);
    std::string first_failure();

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
    Control* control_ = nullptr;
    std::atomic<int>* heads_by_topic_ = nullptr;
    Tally* tallies_ = nullptr;
    std::uint64_t* acks_ = nullptr;
    std::uint64_t seq_capacity_ = 0;
    std::size_t words_per_publisher_ = 0;
};

// Publisher p sends its seq s to topic (p + s) % K: the expected set of each topic is known.
inline int topic_of(int publisher, std::uint64_t seq, int topics) {
    return static_cast<int>((static_cast<std::uint64_t>(publisher) + seq) %
                            static_cast<std::uint64_t>(topics));
}

} // namespace herald::bench
