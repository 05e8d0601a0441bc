// The pool of read connections.
#include "store/redis/reader_pool.hpp"

namespace herald::store::redis {

ReaderPool::Lease ReaderPool::take(std::string& error) {
    {
        std::lock_guard lock(mu_);
        while (!idle_.empty()) {
            auto conn = std::move(idle_.back());
            idle_.pop_back();
            if (conn->still_open()) {
                return Lease(*this, std::move(conn));
            }
        }
    }
    // Opened outside the lock: a connect may take the whole timeout.
    auto conn = Connection::open(node_.config.url, node_.config.timeout, {}, error);
    if (!conn) {
        node_.health.down(error);
    }
    return Lease(*this, std::move(conn));
}

void ReaderPool::give(std::unique_ptr<Connection> conn) {
    if (conn->broken()) {
        node_.health.down(conn->error());
        return;
    }
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) {
        idle_.push_back(std::move(conn));
    }
}

} // namespace herald::store::redis
