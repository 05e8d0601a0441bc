// The write queue's bookkeeping: gathering, partial writes at every offset, the gauge.
#include "net/write_queue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

namespace herald::net {
namespace {

std::string gathered(const WriteQueue& q) {
    std::array<boost::asio::const_buffer, WriteQueue::kMaxGather> bufs;
    const std::size_t n = q.gather(bufs);
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out.append(static_cast<const char*>(bufs[i].data()), bufs[i].size());
    }
    return out;
}

TEST(WriteQueue, GathersOldestFirstAndSkipsEmptyFrames) {
    WriteQueue q;
    q.push(base::BufferRef::copy_of("abc"));
    q.push(base::BufferRef::copy_of(""));
    q.push(base::BufferRef::copy_of("de"));
    EXPECT_EQ(q.frames(), 2U);
    EXPECT_EQ(q.bytes(), 5U);
    EXPECT_EQ(q.front_bytes(), 3U);
    EXPECT_EQ(gathered(q), "abcde");
}

TEST(WriteQueue, ConsumingAtEveryOffsetLeavesTheRestAndReportsWholeFrames) {
    const std::vector<std::string> frames = {"id: 1\n", "data: x\n\n", "y", "id: 2\ndata: zz\n\n"};
    std::string all;
    for (const auto& f : frames) {
        all += f;
    }
    for (std::size_t cut = 0; cut <= all.size(); ++cut) {
        WorkerStats::Counter gauge{0};
        WriteQueue q(&gauge);
        for (const auto& f : frames) {
            q.push(base::BufferRef::copy_of(f));
        }
        ASSERT_EQ(gauge.load(), all.size());
        std::vector<std::string> done;
        q.consume(cut, [&done](const base::BufferRef& f) { done.emplace_back(f.view()); });
        EXPECT_EQ(gathered(q), all.substr(cut)) << "cut at " << cut;
        EXPECT_EQ(q.bytes(), all.size() - cut);
        EXPECT_EQ(gauge.load(), all.size() - cut);
        std::size_t whole = 0;
        std::size_t at = 0;
        for (const auto& f : frames) {
            if (at + f.size() <= cut) {
                ++whole;
            }
            at += f.size();
        }
        ASSERT_EQ(done.size(), whole) << "cut at " << cut;
        for (std::size_t i = 0; i < whole; ++i) {
            EXPECT_EQ(done[i], frames[i]);
        }
        EXPECT_EQ(q.empty(), cut == all.size());
    }
}

TEST(WriteQueue, RandomWritesDeliverEveryByteOnceInOrder) {
    std::mt19937 rng(7);
    WorkerStats::Counter gauge{0};
    WriteQueue q(&gauge);
    std::string sent;
    std::string expected;
    for (int round = 0; round < 2000; ++round) {
        const int pushes = static_cast<int>(rng() % 4);
        for (int i = 0; i < pushes; ++i) {
            std::string f(1 + rng() % 50, static_cast<char>('a' + rng() % 26));
            expected += f;
            q.push(base::BufferRef::copy_of(f));
        }
        // A write takes a prefix of what one gather offers, as write_some may.
        const std::string offer = gathered(q);
        const std::size_t n = offer.empty() ? 0 : rng() % (offer.size() + 1);
        sent += offer.substr(0, n);
        q.consume(n);
    }
    sent += gathered(q);
    q.consume(q.bytes());
    EXPECT_EQ(sent, expected);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(gauge.load(), 0U);
}

TEST(WriteQueue, GatherIsCappedAndClearReleasesTheGauge) {
    WorkerStats::Counter gauge{0};
    {
        WriteQueue q(&gauge);
        for (int i = 0; i < 200; ++i) {
            q.push(base::BufferRef::copy_of("x"));
        }
        std::array<boost::asio::const_buffer, WriteQueue::kMaxGather> bufs;
        EXPECT_EQ(q.gather(bufs), WriteQueue::kMaxGather);
        q.consume(100);
        EXPECT_EQ(q.frames(), 100U);
        EXPECT_EQ(gauge.load(), 100U);
    } // destroyed with bytes left: the gauge gives them back
    EXPECT_EQ(gauge.load(), 0U);
}

} // namespace
} // namespace herald::net
