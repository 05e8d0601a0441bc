// Tests for the publish and subscription parsing in handlers.cpp: the limits on a
// subscription's selectors and templates, and the bound on how deeply a JSON publish nests,
// each refusal a 400 with its sentence and counted by reason.
#include "http/handlers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <variant>

#include "auth/authenticator.hpp"
#include "config/config.hpp"
#include "hub/hub.hpp"
#include "store/memory/memory_store.hpp"

namespace herald::http {
namespace {

std::uint64_t rejected(const net::WorkerStats& stats, net::Reject reason) {
    return stats.rejected[static_cast<std::size_t>(reason)].load();
}

Request subscription(std::size_t topics, const std::string& topic = "t") {
    Request r;
    r.method = "GET";
    r.path = "/events";
    for (std::size_t i = 0; i < topics; ++i) {
        r.query.emplace_back("topic", topic);
    }
    return r;
}

// The error sentence of a refusal, after checking its status; "" if it was accepted.
template <typename T> std::string refusal(const std::variant<T, Response>& result, int status) {
    const auto* r = std::get_if<Response>(&result);
    if (r == nullptr) {
        return "";
    }
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->content_type, "application/json");
    return r->body;
}

std::string templ(std::size_t expressions) {
    std::string out = "https://example.com/";
    for (std::size_t i = 0; i < expressions; ++i) {
        out += "{v" + std::to_string(i) + "}-";
    }
    return out;
}

TEST(ParseSubscription, AtMostMaxTopicsSelectors) {
    net::WorkerStats stats;
    EXPECT_TRUE(
        std::holds_alternative<Subscription>(parse_subscription(subscription(3), 3, stats)));
    const auto body = refusal(parse_subscription(subscription(4), 3, stats), 400);
    EXPECT_EQ(body, "{\"error\":\"a subscription may name at most 3 topics "
                    "(server.max_topics_per_subscription)\"}\n");
    EXPECT_EQ(rejected(stats, net::Reject::invalid_topic), 1U);
}

TEST(ParseSubscription, TheDefaultLimitIs1000) {
    net::WorkerStats stats;
    const std::size_t limit = config::ServerConfig{}.max_topics_per_subscription;
    ASSERT_EQ(limit, 1000U);
    EXPECT_TRUE(
        std::holds_alternative<Subscription>(parse_subscription(subscription(1000), limit, stats)));
    EXPECT_NE(
        refusal(parse_subscription(subscription(1001), limit, stats), 400).find("at most 1000"),
        std::string::npos);
    EXPECT_EQ(rejected(stats, net::Reject::invalid_topic), 1U);
}

TEST(ParseSubscription, TemplatesHoldAtMost32Expressions) {
    net::WorkerStats stats;
    const auto ok = parse_subscription(subscription(1, templ(32)), 10, stats);
    ASSERT_TRUE(std::holds_alternative<Subscription>(ok));
    EXPECT_EQ(std::get<Subscription>(ok).interest.patterns.size(), 1U);
    EXPECT_EQ(refusal(parse_subscription(subscription(1, templ(33)), 10, stats), 400),
              "{\"error\":\"a URI template may hold at most 32 {var} expressions\"}\n");
    EXPECT_EQ(rejected(stats, net::Reject::invalid_topic), 1U);
    // Braces that do not make a template are an exact topic, however many.
    std::string exact;
    for (int i = 0; i < 40; ++i) {
        exact += "{+v}";
    }
    const auto plain = parse_subscription(subscription(1, exact), 10, stats);
    ASSERT_TRUE(std::holds_alternative<Subscription>(plain));
    EXPECT_EQ(std::get<Subscription>(plain).interest.exact.size(), 1U);
}

TEST(ParseSubscription, AtMost64TemplatesWhateverTheExactTopics) {
    net::WorkerStats stats;
    Request r = subscription(500, "exact");
    for (std::size_t i = 0; i < kMaxSubscriptionTemplates; ++i) {
        r.query.emplace_back("topic", "https://example.com/" + std::to_string(i) + "/{id}");
    }
    const auto ok = parse_subscription(r, 1000, stats);
    ASSERT_TRUE(std::holds_alternative<Subscription>(ok));
    EXPECT_EQ(std::get<Subscription>(ok).interest.patterns.size(), kMaxSubscriptionTemplates);
    r.query.emplace_back("topic", "*");
    EXPECT_NE(refusal(parse_subscription(r, 1000, stats), 400).find("at most 64 URI templates"),
              std::string::npos);
    EXPECT_EQ(rejected(stats, net::Reject::invalid_topic), 1U);
}

TEST(ParseSubscription, SelectorsAtMost1024Bytes) {
    net::WorkerStats stats;
    std::string at_limit = "{id}/" + std::string(1019, 'a');
    ASSERT_EQ(at_limit.size(), 1024U);
    EXPECT_TRUE(std::holds_alternative<Subscription>(
        parse_subscription(subscription(1, at_limit), 10, stats)));
    EXPECT_EQ(refusal(parse_subscription(subscription(1, at_limit + "a"), 10, stats), 400),
              "{\"error\":\"a topic must be at most 1024 bytes\"}\n");
}

// A hub on a memory store, with auth off: prepare_publish() needs the whole services.
class PrepareJsonPublish : public ::testing::Test {
protected:
    config::Config config_;
    store::MemoryStore store_{store::Retention{100, 1000000, 0}, 1};
    hub::Hub hub_{store_, 1, [](unsigned) {}};
    Services services_{config_, hub_, {}, {}, {}, {}};
    auth::Authenticator auth_{config::AuthConfig{}, std::nullopt, ""};
    net::WorkerStats stats_;

    std::variant<log::NewEvent, Response> publish(std::string body) {
        Request r;
        r.method = "POST";
        r.path = "/events";
        r.content_type = "application/json";
        r.body = std::move(body);
        const auto who = std::get<auth::PrincipalPtr>(auth_.authenticate(std::nullopt, 0));
        return prepare_publish(services_, stats_, r, *who);
    }
};

std::string arrays(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

const std::string kTooDeep = "{\"error\":\"the JSON body nests arrays and objects more than 64 "
                             "levels deep (the body's own object is one)\"}\n";

TEST_F(PrepareJsonPublish, DataUpTo63DeepInsideTheBodyIsAccepted) {
    auto result = publish(R"({"topic":"t","data":)" + arrays(63) + "}");
    ASSERT_TRUE(std::holds_alternative<log::NewEvent>(result)) << refusal(result, 0);
    EXPECT_EQ(std::get<log::NewEvent>(result).data, arrays(63));
}

TEST_F(PrepareJsonPublish, DeeperIsRefusedWherever) {
    for (const std::string& body : {R"({"topic":"t","data":)" + arrays(64) + "}",
                                    R"({"topic":"t","data":"x","extra":)" + arrays(64) + "}",
                                    R"({"topic":)" + arrays(64) + R"(,"data":"x"})"}) {
        EXPECT_EQ(refusal(publish(body), 400), kTooDeep) << body.substr(0, 40);
    }
    EXPECT_EQ(rejected(stats_, net::Reject::bad_request), 3U);
}

TEST_F(PrepareJsonPublish, HundredThousandDeepIsRefusedWithoutCrashing) {
    EXPECT_EQ(refusal(publish(R"({"topic":"t","data":)" + arrays(100000) + "}"), 400), kTooDeep);
    EXPECT_EQ(refusal(publish(R"({"topic":"t","data":)" + std::string(500000, '{')), 400),
              kTooDeep);
}

TEST_F(PrepareJsonPublish, BracketsInStringsAreNotNesting) {
    const std::string deep_text(100000, '[');
    auto result = publish(R"({"topic":"t","data":")" + deep_text + "\"}");
    ASSERT_TRUE(std::holds_alternative<log::NewEvent>(result)) << refusal(result, 0);
    EXPECT_EQ(std::get<log::NewEvent>(result).data, deep_text);
}

} // namespace
} // namespace herald::http
