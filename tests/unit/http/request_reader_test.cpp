// Tests of the request reader apart from any socket: the header limit on the whole header
// section however the bytes are cut into reads, and the 414 / 431 split.
#include "http/request_reader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

namespace herald::http {
namespace {

constexpr std::size_t kLimit = RequestReader::kHeaderLimit;

// A GET whose header section (request line to blank line) is exactly `size` bytes, made of
// whole 100-byte fields and one shorter one.
std::string request_of_size(std::size_t size) {
    std::string out = "GET /events HTTP/1.1\r\nHost: h\r\n";
    while (out.size() + 100 + 2 <= size) {
        out += "X-Pad: " + std::string(91, 'a') + "\r\n";
    }
    const std::size_t left = size - out.size() - 2; // the blank line
    if (left > 0) {
        EXPECT_GE(left, 5U);
        out += "X: " + std::string(left - 5, 'b') + "\r\n";
    }
    out += "\r\n";
    EXPECT_EQ(out.size(), size);
    return out;
}

struct Result {
    bool done = false;
    std::optional<HttpError> refused;
};

// Feeds `bytes` cut at `cuts` (offsets, ascending).
Result read(std::string_view bytes, const std::vector<std::size_t>& cuts) {
    RequestReader reader;
    reader.start(1024);
    std::size_t from = 0;
    auto send_continue = [] { return true; };
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : bytes.size();
        if (reader.feed(bytes.substr(from, to - from), send_continue)) {
            return {true, reader.refused()};
        }
        from = to;
    }
    return {false, std::nullopt};
}

TEST(RequestReader, HeaderOfExactlyTheLimitIsReadHoweverItIsCut) {
    const std::string req = request_of_size(kLimit);
    for (const auto& cuts : std::vector<std::vector<std::size_t>>{
             {}, {10}, {4000}, {6000}, {kLimit - 1}, {3000, 6000, 8000}}) {
        const Result r = read(req, cuts);
        EXPECT_TRUE(r.done);
        EXPECT_FALSE(r.refused.has_value()) << static_cast<int>(*r.refused);
    }
}

TEST(RequestReader, HeaderOverTheLimitIs431HoweverItIsCut) {
    // Beast applies its limit to the bytes it has not consumed yet: fields it took from an
    // earlier read escaped it, and a header cut in two could reach twice the limit.
    for (const std::size_t size : {kLimit + 1, kLimit + 50, kLimit + 4000, 2 * kLimit - 100}) {
        const std::string req = request_of_size(size);
        for (const auto& cuts : std::vector<std::vector<std::size_t>>{
                 {}, {10}, {4000}, {6000}, {kLimit - 1}, {3000, 6000, 8000}}) {
            const Result r = read(req, cuts);
            EXPECT_TRUE(r.done) << size;
            EXPECT_EQ(r.refused, HttpError::header_too_large) << size << " cut at " << cuts.size();
        }
    }
}

TEST(RequestReader, RequestLineOverTheLimitIs414HoweverItIsCut) {
    const std::string req =
        "GET /" + std::string(kLimit + 10, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
    for (const auto& cuts : std::vector<std::vector<std::size_t>>{{}, {3}, {5000}, {kLimit}}) {
        const Result r = read(req, cuts);
        EXPECT_TRUE(r.done);
        EXPECT_EQ(r.refused, HttpError::uri_too_long);
    }
}

TEST(RequestReader, AWholeRequestReadsBackInOnePieceOrMany) {
    const std::string req = "POST /publish?topic=a%2Fb&x HTTP/1.1\r\nHost: h\r\n"
                            "Content-Type: application/x-www-form-urlencoded\r\n"
                            "Content-Length: 6\r\nCookie: a=1\r\nCookie: b=2\r\n\r\ndata=x";
    for (std::size_t cut = 0; cut <= req.size(); ++cut) {
        RequestReader reader;
        reader.start(1024);
        auto send_continue = [] { return true; };
        const bool first = reader.feed(std::string_view(req).substr(0, cut), send_continue);
        ASSERT_TRUE(first || reader.feed(std::string_view(req).substr(cut), send_continue));
        ASSERT_FALSE(reader.refused().has_value());
        auto taken = reader.take_request();
        ASSERT_TRUE(std::holds_alternative<Request>(taken));
        const Request& r = std::get<Request>(taken);
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.path, "/publish");
        ASSERT_EQ(r.query.size(), 2U);
        EXPECT_EQ(r.query[0], (std::pair<std::string, std::string>{"topic", "a/b"}));
        EXPECT_EQ(r.cookie, "a=1; b=2");
        EXPECT_EQ(r.body, "data=x");
    }
}

} // namespace
} // namespace herald::http
