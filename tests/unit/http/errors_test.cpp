// The error tables: one status per counted reason, one sentence per HTTP-level refusal.
#include "http/errors.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace herald::http {
namespace {

TEST(Errors, EveryReasonHasAnErrorStatus) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(net::Reject::count_); ++i) {
        const auto reason = static_cast<net::Reject>(i);
        const int status = status_of(reason);
        EXPECT_GE(status, 400) << net::reject_name(reason);
        EXPECT_LT(status, 600) << net::reject_name(reason);
        EXPECT_NE(reason_phrase(status), "Unknown") << status;
    }
    EXPECT_EQ(status_of(net::Reject::uri_too_long), 414);
    EXPECT_EQ(status_of(net::Reject::header_too_large), 431);
    EXPECT_EQ(status_of(net::Reject::duplicate_id), 409);
    EXPECT_EQ(status_of(net::Reject::not_implemented), 501);
}

TEST(Errors, EachHttpErrorIsCountedAndAnsweredWithItsReasonsStatus) {
    std::set<std::string> sentences;
    for (std::size_t i = 0; i < static_cast<std::size_t>(HttpError::count_); ++i) {
        const auto error = static_cast<HttpError>(i);
        const ErrorInfo& info = describe(error);
        EXPECT_FALSE(info.sentence.empty());
        EXPECT_TRUE(sentences.insert(std::string(info.sentence)).second)
            << "two errors read the same: " << info.sentence;
        net::WorkerStats stats;
        const Response r = error_response(error, stats, "detail");
        EXPECT_EQ(r.status, status_of(info.reason));
        EXPECT_EQ(r.content_type, "application/json");
        EXPECT_NE(r.body.find(std::string(info.sentence) + ": detail"), std::string::npos)
            << r.body;
        EXPECT_EQ(stats.rejected[static_cast<std::size_t>(info.reason)].load(), 1U);
    }
}

TEST(Errors, ARefusalCarriesTheGivenSentence) {
    net::WorkerStats stats;
    const Response r = refusal(stats, net::Reject::invalid_topic, "topic 3 is empty");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, "{\"error\":\"topic 3 is empty\"}\n");
    EXPECT_EQ(stats.rejected[static_cast<std::size_t>(net::Reject::invalid_topic)].load(), 1U);
}

} // namespace
} // namespace herald::http
