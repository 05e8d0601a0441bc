// Tests for the shared connection counts: the total and per-address limits at their edges,
// slots given back on release, on destruction and when moved over, and many threads
// taking and giving slots at once ending at zero.
#include "net/connection_limits.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace herald::net {
namespace {

using V = ConnectionLimits::Verdict;

base::IpAddress ip(std::string_view t) {
    return base::IpAddress::parse(t).value();
}

TEST(ConnectionLimits, TotalAtItsEdge) {
    ConnectionLimits limits(3, 0);
    std::vector<ConnectionLimits::Slot> slots(4);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(limits.admit_connection(ip("127.0.0.1"), true, slots[i]), V::admitted);
    }
    EXPECT_EQ(limits.open(), 3U);
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.2"), true, slots[3]), V::over_total);
    EXPECT_FALSE(slots[3].held());
    EXPECT_EQ(limits.open(), 3U);
    slots[1].release();
    EXPECT_EQ(limits.open(), 2U);
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.2"), true, slots[3]), V::admitted);
    slots.clear(); // destruction gives every slot back
    EXPECT_EQ(limits.open(), 0U);
}

TEST(ConnectionLimits, PerAddressAtItsEdge) {
    ConnectionLimits limits(0, 2);
    ConnectionLimits::Slot a1;
    ConnectionLimits::Slot a2;
    ConnectionLimits::Slot a3;
    ConnectionLimits::Slot b1;
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.2"), true, a1), V::admitted);
    EXPECT_EQ(limits.admit_connection(ip("::ffff:127.0.0.2"), true, a2), V::admitted);
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.2"), true, a3), V::over_per_ip);
    EXPECT_EQ(limits.open(), 2U); // the refused one is not counted in the total either
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.3"), true, b1), V::admitted);
    EXPECT_EQ(limits.held_by(ip("127.0.0.2")), 2U);
    // A trusted proxy's own connection is counted in the total only.
    ConnectionLimits::Slot proxy;
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.2"), false, proxy), V::admitted);
    EXPECT_EQ(limits.held_by(ip("127.0.0.2")), 2U);
    // Requests of a client behind the proxy share its address's count.
    ConnectionLimits::Slot r;
    EXPECT_EQ(limits.admit_request(ip("127.0.0.2"), r), V::over_per_ip);
    EXPECT_EQ(limits.admit_request(ip("127.0.0.4"), r), V::admitted);
    EXPECT_EQ(limits.held_by(ip("127.0.0.4")), 1U);
    EXPECT_EQ(limits.open(), 4U); // requests never count in the total
    ConnectionLimits::Slot moved = std::move(a1);
    EXPECT_FALSE(a1.held()); // NOLINT(bugprone-use-after-move): the point of the test
    moved.release();
    EXPECT_EQ(limits.held_by(ip("127.0.0.2")), 1U);
    EXPECT_EQ(limits.admit_connection(ip("127.0.0.2"), true, a3), V::admitted);
    a2.release();
    a3.release();
    r.release();
    EXPECT_EQ(limits.held_by(ip("127.0.0.2")), 0U);
    EXPECT_EQ(limits.held_by(ip("127.0.0.4")), 0U);
}

TEST(ConnectionLimits, NoLimits) {
    ConnectionLimits limits(0, 0);
    std::vector<ConnectionLimits::Slot> slots(100);
    for (auto& s : slots) {
        EXPECT_EQ(limits.admit_connection(ip("127.0.0.1"), true, s), V::admitted);
    }
    ConnectionLimits::Slot r;
    EXPECT_EQ(limits.admit_request(ip("127.0.0.1"), r), V::admitted);
    EXPECT_FALSE(r.held());
    EXPECT_EQ(limits.open(), 100U);
}

TEST(ConnectionLimits, ThreadsTogetherNeverPassTheLimitAndEndAtZero) {
    ConnectionLimits limits(50, 5);
    std::atomic<int> over{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            std::vector<ConnectionLimits::Slot> mine(8);
            for (int round = 0; round < 2000; ++round) {
                auto& s = mine[static_cast<std::size_t>(round) % mine.size()];
                const auto v = limits.admit_connection(
                    base::IpAddress::v4(0x7f000000U + static_cast<unsigned>(round % 7 + t)), true,
                    s);
                if (limits.open() > 50) {
                    over.fetch_add(1);
                }
                (void)v;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(over.load(), 0);
    EXPECT_EQ(limits.open(), 0U);
    for (unsigned a = 0; a < 16; ++a) {
        EXPECT_EQ(limits.held_by(base::IpAddress::v4(0x7f000000U + a)), 0U);
    }
}

} // namespace
} // namespace herald::net
