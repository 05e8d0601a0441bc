// A node's place in the cluster: about once a second it reports its figures to Redis (open
// connections, open streams, and how many streams name each topic) and reads back every
// live node's, on a thread of its own. What GET /cluster, /topics and $sys/connections show
// of the other nodes comes from here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster/directory.hpp"
#include "store/redis/url.hpp"

namespace herald::store::redis {

class Connection;

class Presence final : public cluster::Directory {
public:
    struct Sample {
        std::uint64_t connections = 0;
        std::uint64_t subscribers = 0;
        // Topics whose count of streams naming them changed (0: none left), or all of them.
        std::vector<std::pair<std::string, std::uint32_t>> counts;
    };
    // This node's figures now; `all`: every topic's count, not only those that changed.
    // Called on the presence thread.
    using Sampler = std::function<Sample(bool all)>;

    Presence(RedisUrl url, std::chrono::milliseconds timeout, std::string node, Sampler sample);
    ~Presence() override;
    Presence(const Presence&) = delete;
    Presence& operator=(const Presence&) = delete;

    // Reports once at once, then every second until stop().
    void start();
    // Stops reporting and takes this node out of the live set.
    void stop();

    [[nodiscard]] std::vector<cluster::NodeFigures> nodes() const override;
    [[nodiscard]] std::uint64_t others_subscribers() const override;
    [[nodiscard]] std::vector<std::uint64_t>
    others_subscribers(std::span<const std::string> topics) const override;

private:
    void run();
    // One report and read-back; false when Redis could not be reached.
    bool exchange(Connection& conn);
    [[nodiscard]] bool fresh_locked(std::chrono::steady_clock::time_point now) const;

    const RedisUrl url_;
    const std::chrono::milliseconds timeout_;
    const std::string node_;
    const Sampler sample_;

    mutable std::mutex mu_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::vector<cluster::NodeFigures> live_;          // as last read, this node included
    std::chrono::steady_clock::time_point read_at_{}; // when live_ was read
    std::thread thread_;
    bool full_report_due_ = true; // presence thread only: the next report sends every count

    // For others_subscribers(topics), asked from a request's worker.
    mutable std::mutex query_mu_;
    mutable std::unique_ptr<Connection> query_;
};

} // namespace herald::store::redis
