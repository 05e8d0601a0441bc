// The record a Redis message or the global log carries, decoded as the follower does: a whole
// record gives the event back, field by field; any cut, at every byte, or a damaged length
// gives nothing (the follower then reports the position lost) and never reads past the end.
// A message is several records, head and body framed each: split back exactly.
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

// The head as the append script builds it: position, previous, capped, ms, id.
std::string head(std::string_view capped = "0", std::string_view position = "42") {
    return field(position) + field("41") + field(capped) + field("1700000000000") + field("id-42");
}

TEST(RedisRecord, AWholeRecordDecodesToTheEvent) {
    const std::string h = head("7");
    const std::string body = encode_body(sample());
    auto head = read_head(h);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->position, 42U);
    EXPECT_EQ(head->previous, 41U);
    EXPECT_EQ(head->capped, 7U);
    auto ev = decode(h, body);
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
    const std::string h = head();
    const std::string body = encode_body(sample());
    for (std::size_t n = 0; n < h.size(); ++n) {
        EXPECT_EQ(decode(std::string_view(h).substr(0, n), body), nullptr) << n;
    }
    EXPECT_EQ(decode(h + "1:x", body), nullptr); // a head with a field too many
    for (std::size_t n = 0; n < body.size(); ++n) {
        // A cut inside a field's length or bytes is refused; a cut between the topics
        // leaves an event with fewer topics, which decodes (topics are the tail).
        auto ev = decode(h, std::string_view(body).substr(0, n));
        if (ev != nullptr) {
            EXPECT_LT(ev->topics.size(), 2U) << n;
        }
    }
    const std::string r = field(h) + field(body);
    for (std::size_t i = 0; i < r.size(); ++i) {
        for (char c : {'\0', ':', '9', 'x'}) {
            std::string bad = r;
            bad[i] = c;
            // Must not read past the end (ASan).
            std::string_view rest = bad;
            while (auto rec = next_record(rest)) {
                (void)read_head(rec->head);
                (void)decode(rec->head, rec->body);
            }
            (void)read_head(bad);
            (void)decode(bad, bad);
        }
    }
    EXPECT_FALSE(read_head("garbage"));
    EXPECT_FALSE(read_head("99999999999999999999999:x"));
    EXPECT_EQ(decode("3:abc", body), nullptr);
    EXPECT_EQ(decode("", ""), nullptr);
}

TEST(RedisRecord, AMessageSplitsIntoItsRecordsInOrder) {
    const std::string body = encode_body(sample());
    std::string message;
    for (std::string_view position : {"42", "43", "44"}) {
        message += field(head("0", position)) + field(body);
    }
    std::string_view rest = message;
    std::vector<std::uint64_t> positions;
    while (auto rec = next_record(rest)) {
        auto ev = decode(rec->head, rec->body);
        ASSERT_NE(ev, nullptr);
        EXPECT_EQ(ev->data, "line one\nline: two");
        positions.push_back(ev->position);
    }
    EXPECT_TRUE(rest.empty());
    EXPECT_EQ(positions, (std::vector<std::uint64_t>{42, 43, 44}));
    // A head without its body is malformed, not a record.
    std::string_view cut = std::string_view(message).substr(0, message.size() - body.size() - 4);
    std::size_t whole = 0;
    while (next_record(cut)) {
        ++whole;
    }
    EXPECT_EQ(whole, 2U);
}

} // namespace
} // namespace herald::store::redis
