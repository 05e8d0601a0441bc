// The record a Redis message or the global log carries, decoded as the follower does: a whole
// record gives the event back, field by field; any cut, at every byte, or a damaged length
// gives nothing (the follower then reports the position lost) and never reads past the end.
#include "store/redis/record.hpp"

#include <gtest/gtest.h>

#include <string>

namespace herald::store::redis {
namespace {

std::string field(std::string_view v) {
    return std::to_string(v.size()) + ":" + std::string(v);
}

log::NewEvent sample() {
    log::NewEvent ev;
    ev.topics = {"books/1", "news"};
    ev.type = "update";
    ev.data = "line one\nline: two";
    ev.is_private = true;
    ev.retry_ms = 2500;
    return ev;
}

// As the append script builds it: position, previous, capped, ms, id, then the body.
std::string record(std::string_view capped = "0") {
    return field("42") + field("41") + field(capped) + field("1700000000000") + field("id-42") +
           encode_body(sample());
}

TEST(RedisRecord, AWholeRecordDecodesToTheEvent) {
    const std::string r = record("7");
    auto head = read_head(r);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->position, 42U);
    EXPECT_EQ(head->previous, 41U);
    EXPECT_EQ(head->capped, 7U);
    auto ev = decode(r);
    ASSERT_NE(ev, nullptr);
    EXPECT_EQ(ev->position, 42U);
    EXPECT_EQ(ev->id, "id-42");
    EXPECT_EQ(ev->published_ms, 1700000000000);
    EXPECT_EQ(ev->topics, (std::vector<std::string>{"books/1", "news"}));
    EXPECT_EQ(ev->type, "update");
    EXPECT_EQ(ev->data, "line one\nline: two");
    EXPECT_TRUE(ev->is_private);
    EXPECT_EQ(ev->retry_ms, 2500U);
    EXPECT_EQ(ev->frame.view().substr(0, 10), "id: id-42\n");
}

TEST(RedisRecord, EveryCutAndEveryDamagedByteIsRefusedOrDecodedWhole) {
    const std::string r = record();
    for (std::size_t n = 0; n < r.size(); ++n) {
        // A cut inside a field's length or bytes is refused; a cut between the topics
        // leaves an event with fewer topics, which decodes (topics are the tail).
        auto ev = decode(std::string_view(r).substr(0, n));
        if (ev != nullptr) {
            EXPECT_LT(ev->topics.size(), 2U) << n;
        }
    }
    for (std::size_t i = 0; i < r.size(); ++i) {
        for (char c : {'\0', ':', '9', 'x'}) {
            std::string bad = r;
            bad[i] = c;
            (void)read_head(bad); // must not read past the end (ASan)
            (void)decode(bad);
        }
    }
    EXPECT_FALSE(read_head("garbage"));
    EXPECT_FALSE(read_head("99999999999999999999999:x"));
    EXPECT_EQ(decode("3:abc"), nullptr);
    EXPECT_EQ(decode(""), nullptr);
}

} // namespace
} // namespace herald::store::redis
