// Connections for the reads that the hub's threads make (replay, position_of, /topics,
// history): each call takes an idle connection, or opens one when none is idle, and gives
// it back when done, so that concurrent reads never wait on each other's round trips.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/redis/connection.hpp"
#include "store/redis/node_state.hpp"

namespace herald::store::redis {

class ReaderPool {
public:
    // A connection on loan: back to the pool when it goes, unless it broke.
    class Lease {
    public:
        Lease(ReaderPool& pool, std::unique_ptr<Connection> conn)
            : pool_(&pool), conn_(std::move(conn)) {}
        Lease(Lease&&) = default;
        Lease& operator=(Lease&&) = delete;
        ~Lease() {
            if (conn_) {
                pool_->give(std::move(conn_));
            }
        }
        [[nodiscard]] explicit operator bool() const noexcept { return conn_ != nullptr; }
        Connection* operator->() const noexcept { return conn_.get(); }
        Connection& operator*() const noexcept { return *conn_; }

    private:
        ReaderPool* pool_;
        std::unique_ptr<Connection> conn_;
    };

    explicit ReaderPool(NodeState& node) : node_(node) {}

    // A connection, or an empty lease with `error` set (the store is then marked down).
    [[nodiscard]] Lease take(std::string& error);

private:
    void give(std::unique_ptr<Connection> conn);

    // Idle connections kept beyond this are closed: a burst of reads leaves no crowd.
    static constexpr std::size_t kMaxIdle = 4;
    NodeState& node_;
    std::mutex mu_;
    std::vector<std::unique_ptr<Connection>> idle_;
};

} // namespace herald::store::redis
