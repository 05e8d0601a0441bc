// The publishers and the churn of a `herald bench` run, both in the parent process.
//
// A Publisher is one keep-alive connection in a closed loop: POST, read the answer, next.
// Each event's data is "<publisher>-<seq> <publish_time_ns> <padding>"; a 2xx answer sets
// the seq's bit in the shared acknowledgement bitmap.
//
// Churn opens extra subscriber connections at a fixed rate while events flow, holds each
// for a moment after its response head and closes it: connects and disconnects per second,
// and how long a new subscriber waits for its head under load.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/measure.hpp"
#include "bench/options.hpp"
#include "bench/shared.hpp"
#include "bench/subscribers.hpp"

namespace herald::bench {

struct PublisherResult {
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;    // answers other than 2xx
    std::uint64_t io_errors = 0; // connection failures (the publisher reconnects)
    std::string first_error;
    Histogram round_trip; // POST sent -> answer read, for each 2xx
    std::int64_t first_ns = 0;
    std::int64_t last_ns = 0;
    std::uint64_t sent = 0; // sequence numbers used: 0 .. sent-1
    bool capacity_reached = false;
};

class Publisher {
public:
    // Publisher `index` of the run, through the publish target plan.pub_target(index) at
    // addrs[plan.pub_target(index)] (one address per target; the vector outlives it).
    Publisher(const Options& o, const Plan& plan, SharedState& shared,
              const std::vector<Address>& addrs, int index, const std::atomic<bool>& stop);
    ~Publisher();
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    void start(std::int64_t t0);
    void join();
    const PublisherResult& result() const { return result_; }
    std::size_t target() const { return target_; }

private:
    bool connect();
    void note_io_error(const std::string& why);
    std::optional<int> take_response();
    int round_trip(const std::string& req);
    void run(std::int64_t t0);

    const Options& o_;
    const Plan& plan_;
    SharedState& shared_;
    std::size_t target_;
    const Address& addr_;
    int index_;
    const std::atomic<bool>& stop_;
    int fd_ = -1;
    std::string in_;
    PublisherResult result_;
    std::thread thread_;
};

struct ChurnResult {
    std::uint64_t connects = 0; // response heads received
    std::uint64_t failures = 0;
    std::string first_failure;
    Histogram head; // connect() -> 2xx response head
    double seconds = 0;
};

class Churn {
public:
    // Connections take the subscribe targets in turn (addrs: one address per target).
    Churn(const Options& o, const Plan& plan, const std::vector<Address>& addrs,
          const std::atomic<bool>& stop);
    void start();
    void join();
    const ChurnResult& result() const { return result_; }

private:
    void run();

    const Options& o_;
    const Plan& plan_;
    const std::vector<Address>& addrs_;
    const std::atomic<bool>& stop_;
    ChurnResult result_;
    std::thread thread_;
};

} // namespace herald::bench
