// Tests for the SSE frame encoder and field validators. Frames are checked byte for byte and
// by round trip through a small parser that follows the WHATWG event-stream rules.
#include "sse/frame.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::sse {
namespace {

struct ParsedEvent {
    std::string last_id;
    std::string type;
    std::string data;
};

struct ParseResult {
    std::vector<ParsedEvent> events;
    std::optional<std::uint64_t> retry;
    int comments = 0;
};

// A reference parser for text/event-stream as WHATWG HTML section 9.2.6 describes it.
ParseResult parse_stream(std::string_view stream) {
    ParseResult result;
    std::string last_id;
    std::string type;
    std::string data;
    auto dispatch = [&] {
        if (data.empty()) {
            type.clear();
            return;
        }
        if (data.back() == '\n') {
            data.pop_back();
        }
        result.events.push_back({last_id, type.empty() ? "message" : type, data});
        type.clear();
        data.clear();
    };
    auto process_line = [&](std::string_view line) {
        if (line.empty()) {
            dispatch();
            return;
        }
        if (line.front() == ':') {
            ++result.comments;
            return;
        }
        std::string_view field = line;
        std::string_view value;
        if (const auto colon = line.find(':'); colon != std::string_view::npos) {
            field = line.substr(0, colon);
            value = line.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') {
                value.remove_prefix(1);
            }
        }
        if (field == "event") {
            type = value;
        } else if (field == "data") {
            data.append(value).push_back('\n');
        } else if (field == "id") {
            if (value.find('\0') == std::string_view::npos) {
                last_id = value;
            }
        } else if (field == "retry") {
            if (!value.empty() && value.find_first_not_of("0123456789") == value.npos) {
                result.retry = std::stoull(std::string(value));
            }
        }
    };
    std::size_t start = 0;
    for (std::size_t i = 0; i < stream.size(); ++i) {
        const char c = stream[i];
        if (c != '\n' && c != '\r') {
            continue;
        }
        process_line(stream.substr(start, i - start));
        if (c == '\r' && i + 1 < stream.size() && stream[i + 1] == '\n') {
            ++i;
        }
        start = i + 1;
    }
    // An incomplete last line (and an undispatched event) is dropped, as at end of stream.
    return result;
}

// What a subscriber gets back: every CRLF or CR turned into LF.
std::string normalize_line_ends(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out.push_back('\n');
            if (i + 1 < s.size() && s[i + 1] == '\n') {
                ++i;
            }
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::string encode(std::string_view id, std::string_view type, std::string_view data,
                   std::optional<std::uint32_t> retry = std::nullopt) {
    std::string out;
    encode_event(out, id, type, data, retry);
    return out;
}

TEST(EncodeEvent, SingleLine) {
    EXPECT_EQ(encode("42", "", "hello"), "id: 42\ndata: hello\n\n");
}

TEST(EncodeEvent, WithTypeAndRetry) {
    EXPECT_EQ(encode("7", "update", "x", 2500), "id: 7\nevent: update\nretry: 2500\ndata: x\n\n");
}

TEST(EncodeEvent, RetryZero) {
    EXPECT_EQ(encode("1", "", "x", 0), "id: 1\nretry: 0\ndata: x\n\n");
}

TEST(EncodeEvent, AppendsToExistingBuffer) {
    std::string out = "retry: 3000\n\n";
    encode_event(out, "1", "", "a", std::nullopt);
    encode_event(out, "2", "t", "b", std::nullopt);
    EXPECT_EQ(out, "retry: 3000\n\nid: 1\ndata: a\n\nid: 2\nevent: t\ndata: b\n\n");
}

TEST(EncodeEvent, EmptyData) {
    EXPECT_EQ(encode("1", "", ""), "id: 1\ndata: \n\n");
}

TEST(EncodeEvent, LineEnds) {
    EXPECT_EQ(encode("1", "", "a\nb"), "id: 1\ndata: a\ndata: b\n\n");
    EXPECT_EQ(encode("1", "", "a\r\nb"), "id: 1\ndata: a\ndata: b\n\n");
    EXPECT_EQ(encode("1", "", "a\rb"), "id: 1\ndata: a\ndata: b\n\n");
    EXPECT_EQ(encode("1", "", "a\n\nb"), "id: 1\ndata: a\ndata: \ndata: b\n\n");
    EXPECT_EQ(encode("1", "", "a\r\rb"), "id: 1\ndata: a\ndata: \ndata: b\n\n");
    EXPECT_EQ(encode("1", "", "a\n\rb"), "id: 1\ndata: a\ndata: \ndata: b\n\n");
}

TEST(EncodeEvent, TrailingLineEndGivesEmptyLastLine) {
    EXPECT_EQ(encode("1", "", "a\n"), "id: 1\ndata: a\ndata: \n\n");
    EXPECT_EQ(encode("1", "", "a\r\n"), "id: 1\ndata: a\ndata: \n\n");
    EXPECT_EQ(encode("1", "", "\n"), "id: 1\ndata: \ndata: \n\n");
}

TEST(EncodeEvent, LeadingSpaceAndColonsKept) {
    EXPECT_EQ(encode("1", "", " x"), "id: 1\ndata:  x\n\n");
    EXPECT_EQ(encode("1", "", ": not a comment"), "id: 1\ndata: : not a comment\n\n");
}

TEST(EncodeEvent, RoundTripSelectedPayloads) {
    const std::vector<std::string> payloads = {
        "",
        "a",
        "a\n",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        "\r\r\n\n",
        "a\r\nb",
        "a\rb",
        "a\n\nb",
        "\na",
        " leading space",
        "  two leading spaces",
        "trailing space ",
        "data: inside",
        ":colon first",
        "id: 99\nevent: fake",
        "{\n  \"time\": 1,\n  \"random\": \"abc\"\n}",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        std::string(70000, 'x'),
        std::string("nul\0inside", 10),
    };
    for (const auto& data : payloads) {
        const std::string frame = encode("id-1", "kind", data, 1000);
        const auto parsed = parse_stream(frame);
        ASSERT_EQ(parsed.events.size(), 1U) << "data: " << data;
        EXPECT_EQ(parsed.events[0].data, normalize_line_ends(data));
        EXPECT_EQ(parsed.events[0].last_id, "id-1");
        EXPECT_EQ(parsed.events[0].type, "kind");
        EXPECT_EQ(parsed.retry, 1000U);
    }
}

// Every string up to 6 characters over an alphabet of the characters that matter.
TEST(EncodeEvent, RoundTripExhaustiveShortPayloads) {
    const std::string_view alphabet("a \r\n:", 5);
    std::vector<std::string> level = {""};
    int checked = 0;
    for (int len = 0; len <= 6; ++len) {
        std::vector<std::string> next;
        for (const auto& data : level) {
            const std::string frame = encode("n", "", data);
            const auto parsed = parse_stream(frame);
            ASSERT_EQ(parsed.events.size(), 1U) << "data: " << data;
            ASSERT_EQ(parsed.events[0].data, normalize_line_ends(data)) << "data: " << data;
            ASSERT_EQ(parsed.events[0].type, "message");
            ++checked;
            for (const char c : alphabet) {
                next.push_back(data + c);
            }
        }
        level = std::move(next);
    }
    EXPECT_GT(checked, 19000);
}

TEST(EncodeEvent, RoundTripSeveralEventsInOneStream) {
    std::string stream = encode_retry(3000);
    stream += encode_comment("keep-alive");
    encode_event(stream, "1", "", "one\ntwo", std::nullopt);
    stream += encode_comment("");
    encode_event(stream, "2", "ping", "", std::nullopt);
    encode_event(stream, "3", "", "a\r\n", std::nullopt);
    const auto parsed = parse_stream(stream);
    EXPECT_EQ(parsed.retry, 3000U);
    EXPECT_EQ(parsed.comments, 2);
    ASSERT_EQ(parsed.events.size(), 3U);
    EXPECT_EQ(parsed.events[0].last_id, "1");
    EXPECT_EQ(parsed.events[0].data, "one\ntwo");
    EXPECT_EQ(parsed.events[1].last_id, "2");
    EXPECT_EQ(parsed.events[1].type, "ping");
    EXPECT_EQ(parsed.events[1].data, "");
    EXPECT_EQ(parsed.events[2].last_id, "3");
    EXPECT_EQ(parsed.events[2].type, "message");
    EXPECT_EQ(parsed.events[2].data, "a\n");
}

TEST(EncodeRetry, Format) {
    EXPECT_EQ(encode_retry(3000), "retry: 3000\n\n");
    EXPECT_EQ(encode_retry(0), "retry: 0\n\n");
    EXPECT_EQ(encode_retry(4294967295U), "retry: 4294967295\n\n");
}

TEST(EncodeComment, Format) {
    EXPECT_EQ(encode_comment("ping"), ": ping\n\n");
    EXPECT_EQ(encode_comment(""), ":\n\n");
    EXPECT_EQ(encode_comment("a\nb\r\nc\rd"), ": a b  c d\n\n");
}

TEST(EncodeComment, IgnoredByParser) {
    const auto parsed = parse_stream(encode_comment("x\ndata: injected\n\n"));
    EXPECT_TRUE(parsed.events.empty());
    EXPECT_EQ(parsed.comments, 1);
}

TEST(IsValidField, AcceptsPlainText) {
    EXPECT_TRUE(is_valid_field(""));
    EXPECT_TRUE(is_valid_field("message-12"));
    EXPECT_TRUE(is_valid_field("with space: and colon"));
    EXPECT_TRUE(is_valid_field("caf\xc3\xa9"));
}

TEST(IsValidField, RejectsLineEndsAndNul) {
    EXPECT_FALSE(is_valid_field("a\nb"));
    EXPECT_FALSE(is_valid_field("a\rb"));
    EXPECT_FALSE(is_valid_field("\r\n"));
    EXPECT_FALSE(is_valid_field(std::string_view("a\0b", 3)));
    EXPECT_FALSE(is_valid_field(std::string_view("\0", 1)));
}

TEST(IsValidUtf8, AcceptsWellFormed) {
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_TRUE(is_valid_utf8("plain ascii"));
    EXPECT_TRUE(is_valid_utf8(std::string_view("\0", 1)));
    EXPECT_TRUE(is_valid_utf8("\x7f"));
    EXPECT_TRUE(is_valid_utf8("\xc2\x80"));         // U+0080
    EXPECT_TRUE(is_valid_utf8("\xdf\xbf"));         // U+07FF
    EXPECT_TRUE(is_valid_utf8("\xe0\xa0\x80"));     // U+0800
    EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));     // U+D7FF
    EXPECT_TRUE(is_valid_utf8("\xee\x80\x80"));     // U+E000
    EXPECT_TRUE(is_valid_utf8("\xef\xbf\xbf"));     // U+FFFF
    EXPECT_TRUE(is_valid_utf8("\xf0\x90\x80\x80")); // U+10000
    EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf")); // U+10FFFF
    EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok"));
}

TEST(IsValidUtf8, RejectsOverlongForms) {
    EXPECT_FALSE(is_valid_utf8("\xc0\x80"));         // U+0000 in two bytes
    EXPECT_FALSE(is_valid_utf8("\xc1\xbf"));         // U+007F in two bytes
    EXPECT_FALSE(is_valid_utf8("\xe0\x80\x80"));     // U+0000 in three bytes
    EXPECT_FALSE(is_valid_utf8("\xe0\x9f\xbf"));     // U+07FF in three bytes
    EXPECT_FALSE(is_valid_utf8("\xf0\x80\x80\x80")); // U+0000 in four bytes
    EXPECT_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf")); // U+FFFF in four bytes
}

TEST(IsValidUtf8, RejectsSurrogates) {
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));             // U+D800
    EXPECT_FALSE(is_valid_utf8("\xed\xbf\xbf"));             // U+DFFF
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\xbd\xed\xb8\x80")); // a CESU-8 pair
}

TEST(IsValidUtf8, RejectsBeyondMaxCodePoint) {
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80")); // U+110000
    EXPECT_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
    EXPECT_FALSE(is_valid_utf8("\xf8\x88\x80\x80\x80")); // old five-byte form
    EXPECT_FALSE(is_valid_utf8("\xfc\x84\x80\x80\x80\x80"));
    EXPECT_FALSE(is_valid_utf8("\xfe"));
    EXPECT_FALSE(is_valid_utf8("\xff"));
}

TEST(IsValidUtf8, RejectsStrayAndTruncatedSequences) {
    EXPECT_FALSE(is_valid_utf8("\x80"));
    EXPECT_FALSE(is_valid_utf8("a\xbf"));
    EXPECT_FALSE(is_valid_utf8("\xc3"));
    EXPECT_FALSE(is_valid_utf8("\xc3 "));
    EXPECT_FALSE(is_valid_utf8("\xe2\x82"));
    EXPECT_FALSE(is_valid_utf8("\xe2\x82 x"));
    EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x98"));
    EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x98z"));
    EXPECT_FALSE(is_valid_utf8("ok\xf0"));
    EXPECT_FALSE(is_valid_utf8("\xe2\xc2\x80"));
}

// Every two-byte sequence: valid exactly when it encodes U+0080..U+07FF.
TEST(IsValidUtf8, ExhaustiveTwoBytes) {
    for (int a = 0x80; a < 0x100; ++a) {
        for (int b = 0; b < 0x100; ++b) {
            const char s[2] = {static_cast<char>(a), static_cast<char>(b)};
            const bool expected = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
            ASSERT_EQ(is_valid_utf8(std::string_view(s, 2)), expected) << a << " " << b;
        }
    }
}

// Every code point encoded by a straightforward encoder is accepted, surrogates excepted.
TEST(IsValidUtf8, EveryCodePoint) {
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        std::string s;
        if (cp < 0x80) {
            s.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        ASSERT_EQ(is_valid_utf8(s), !surrogate) << std::hex << cp;
    }
}

} // namespace
} // namespace herald::sse
