// The hub-wide connection limits, shared by every worker: server.max_connections (all
// connections together) and server.max_connections_per_ip (per client address). A slot is
// taken when a connection is accepted (or, for a client behind a trusted proxy, when its
// request arrives) and given back when the Slot goes: whichever way the connection ends.
// Any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "base/ip_address.hpp"

namespace herald::net {

class ConnectionLimits {
public:
    // 0: no limit, for either.
    ConnectionLimits(std::size_t max_total, std::size_t max_per_ip);
    ConnectionLimits(const ConnectionLimits&) = delete;
    ConnectionLimits& operator=(const ConnectionLimits&) = delete;

    // What a slot holds; gives it back when destroyed or released. Move-only.
    class Slot {
    public:
        Slot() = default;
        Slot(Slot&& other) noexcept { *this = std::move(other); }
        Slot& operator=(Slot&& other) noexcept;
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() { release(); }

        void release() noexcept;
        [[nodiscard]] bool held() const noexcept { return owner_ != nullptr; }

    private:
        friend class ConnectionLimits;
        ConnectionLimits* owner_ = nullptr;
        bool total_ = false;
        std::optional<base::IpAddress> address_;
    };

    enum class Verdict : std::uint8_t { admitted, over_total, over_per_ip };

    // A new connection from `peer`: counted in the total, and under `peer` unless
    // `count_address` is false (a trusted proxy's own address is not limited per IP).
    [[nodiscard]] Verdict admit_connection(const base::IpAddress& peer, bool count_address,
                                           Slot& slot);
    // A request (or stream) of `client` arriving through a trusted proxy: counted under
    // `client` only (its connection is the proxy's, already in the total).
    [[nodiscard]] Verdict admit_request(const base::IpAddress& client, Slot& slot);

    [[nodiscard]] std::size_t max_total() const noexcept { return max_total_; }
    [[nodiscard]] std::size_t max_per_ip() const noexcept { return max_per_ip_; }
    [[nodiscard]] std::size_t open() const noexcept {
        return open_.load(std::memory_order_relaxed);
    }
    // What `address` holds now (for tests and figures).
    [[nodiscard]] std::size_t held_by(const base::IpAddress& address);

private:
    struct AddressHash {
        std::size_t operator()(const base::IpAddress& a) const noexcept;
    };
    // Addresses spread over shards, each with its own lock, so that workers accepting at
    // once rarely wait on one another.
    struct alignas(64) Shard {
        std::mutex mutex;
        std::unordered_map<base::IpAddress, std::size_t, AddressHash> counts;
    };
    static constexpr std::size_t kShards = 16;

    [[nodiscard]] bool take_address(const base::IpAddress& address);
    void give_address(const base::IpAddress& address) noexcept;
    void give_total() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }
    [[nodiscard]] Shard& shard_of(const base::IpAddress& address);

    const std::size_t max_total_;
    const std::size_t max_per_ip_;
    std::atomic<std::size_t> open_{0};
    std::array<Shard, kShards> shards_;
};

} // namespace herald::net
