// What a node knows of the cluster it belongs to: the live nodes and their figures, which
// each node reports to Redis about once a second. Only a node on a redis:// store has one;
// the HTTP layer reads it for GET /cluster, /topics and $sys/connections.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace herald::cluster {

// A node silent for longer than this no longer counts.
inline constexpr std::int64_t kLiveForMs = 5000;

struct NodeFigures {
    std::string name;
    std::uint64_t connections = 0; // open HTTP connections
    std::uint64_t subscribers = 0; // open streams
    std::int64_t last_seen_ms = 0; // Redis's clock when it last reported (Unix ms)
};

// Any thread. Answers from what the last exchange with Redis brought, except
// others_subscribers(topics), which asks Redis.
class Directory {
public:
    virtual ~Directory() = default;
    // The live nodes, this one included, by name.
    [[nodiscard]] virtual std::vector<NodeFigures> nodes() const = 0;
    // The open streams of the other live nodes together.
    [[nodiscard]] virtual std::uint64_t others_subscribers() const = 0;
    // For each topic, the streams of the other live nodes that name it (0 for each when
    // Redis cannot be asked).
    [[nodiscard]] virtual std::vector<std::uint64_t>
    others_subscribers(std::span<const std::string> topics) const = 0;
};

} // namespace herald::cluster
