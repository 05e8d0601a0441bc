// Connection counting: one atomic for the total, sharded locked maps for the addresses.
#include "net/connection_limits.hpp"

#include <functional>
#include <string_view>

namespace herald::net {

ConnectionLimits::ConnectionLimits(std::size_t max_total, std::size_t max_per_ip)
    : max_total_(max_total), max_per_ip_(max_per_ip) {}

ConnectionLimits::Slot& ConnectionLimits::Slot::operator=(Slot&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = other.owner_;
        total_ = other.total_;
        address_ = other.address_;
        other.owner_ = nullptr;
        other.total_ = false;
        other.address_.reset();
    }
    return *this;
}

void ConnectionLimits::Slot::release() noexcept {
    if (owner_ == nullptr) {
        return;
    }
    if (total_) {
        owner_->give_total();
    }
    if (address_) {
        owner_->give_address(*address_);
    }
    owner_ = nullptr;
    total_ = false;
    address_.reset();
}

std::size_t ConnectionLimits::AddressHash::operator()(const base::IpAddress& a) const noexcept {
    const auto& b = a.bytes();
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

ConnectionLimits::Shard& ConnectionLimits::shard_of(const base::IpAddress& address) {
    return shards_[AddressHash{}(address) % kShards];
}

bool ConnectionLimits::take_address(const base::IpAddress& address) {
    Shard& s = shard_of(address);
    std::lock_guard lock(s.mutex);
    std::size_t& n = s.counts[address];
    if (n >= max_per_ip_) {
        if (n == 0) {
            s.counts.erase(address);
        }
        return false;
    }
    ++n;
    return true;
}

void ConnectionLimits::give_address(const base::IpAddress& address) noexcept {
    Shard& s = shard_of(address);
    std::lock_guard lock(s.mutex);
    auto it = s.counts.find(address);
    if (it != s.counts.end() && --it->second == 0) {
        s.counts.erase(it); // an address with nothing open costs nothing
    }
}

std::size_t ConnectionLimits::held_by(const base::IpAddress& address) {
    Shard& s = shard_of(address);
    std::lock_guard lock(s.mutex);
    auto it = s.counts.find(address);
    return it == s.counts.end() ? 0 : it->second;
}

ConnectionLimits::Verdict ConnectionLimits::admit_connection(const base::IpAddress& peer,
                                                             bool count_address, Slot& slot) {
    slot.release();
    // Compare and swap rather than add and undo: the count never passes the limit, even
    // for a moment, so a refusal never comes from another refused connection.
    std::size_t n = open_.load(std::memory_order_relaxed);
    do {
        if (max_total_ != 0 && n >= max_total_) {
            return Verdict::over_total;
        }
    } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    slot.owner_ = this;
    slot.total_ = true;
    if (count_address && max_per_ip_ != 0) {
        if (!take_address(peer)) {
            slot.release();
            return Verdict::over_per_ip;
        }
        slot.address_ = peer;
    }
    return Verdict::admitted;
}

ConnectionLimits::Verdict ConnectionLimits::admit_request(const base::IpAddress& client,
                                                          Slot& slot) {
    slot.release();
    if (max_per_ip_ == 0) {
        return Verdict::admitted;
    }
    if (!take_address(client)) {
        return Verdict::over_per_ip;
    }
    slot.owner_ = this;
    slot.address_ = client;
    return Verdict::admitted;
}

} // namespace herald::net
