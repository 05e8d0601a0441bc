// Tests of the incremental SSE parser against the WHATWG event stream rules, fed whole,
// byte by byte and in random pieces.
#include "sse/parser.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace herald::sse {

// Found by GoogleTest through argument-dependent lookup, so not in the unnamed namespace.
static void PrintTo(const ParsedEvent& e, std::ostream* os) {
    *os << "{id=" << testing::PrintToString(e.id) << " type=" << testing::PrintToString(e.type)
        << " data=" << testing::PrintToString(e.data) << "}";
}

namespace {

struct Outcome {
    std::vector<ParsedEvent> events;
    std::vector<std::string> comments;
    std::string last_event_id;
    std::optional<std::uint32_t> retry;

    bool operator==(const Outcome&) const = default;
};

void feed_into(Parser& parser, Outcome& out, std::string_view bytes) {
    parser.feed(
        bytes, [&](const ParsedEvent& e) { out.events.push_back(e); },
        [&](std::string_view c) { out.comments.emplace_back(c); });
    out.last_event_id = parser.last_event_id();
    out.retry = parser.retry_ms();
}

// Feeds `stream` in pieces of the given sizes (the last piece takes what is left).
Outcome parse_in_pieces(std::string_view stream, const std::vector<std::size_t>& sizes) {
    Parser parser;
    Outcome out;
    std::size_t pos = 0;
    for (const std::size_t n : sizes) {
        if (pos >= stream.size()) {
            break;
        }
        feed_into(parser, out, stream.substr(pos, n));
        pos += n;
    }
    if (pos < stream.size()) {
        feed_into(parser, out, stream.substr(pos));
    }
    return out;
}

Outcome parse(std::string_view stream) {
    return parse_in_pieces(stream, {});
}

Outcome parse_bytewise(std::string_view stream) {
    return parse_in_pieces(stream, std::vector<std::size_t>(stream.size(), 1));
}

std::vector<ParsedEvent> events(std::string_view stream) {
    return parse(stream).events;
}

ParsedEvent ev(std::string id, std::string type, std::string data) {
    return ParsedEvent{std::move(id), std::move(type), std::move(data)};
}

TEST(Parser, DispatchesOnBlankLine) {
    EXPECT_EQ(events("data: hello\n\n"), std::vector{ev("", "message", "hello")});
    EXPECT_TRUE(events("data: hello\n").empty()); // no blank line yet
}

TEST(Parser, JoinsDataLinesWithLf) {
    EXPECT_EQ(events("data: a\ndata: b\ndata:\ndata: c\n\n"),
              std::vector{ev("", "message", "a\nb\n\nc")});
    // Only the "\n" after the last line is removed.
    EXPECT_EQ(events("data:\ndata:\n\n"), std::vector{ev("", "message", "\n")});
}

TEST(Parser, StripsExactlyOneLeadingSpace) {
    EXPECT_EQ(events("data:x\n\n")[0].data, "x");
    EXPECT_EQ(events("data: x\n\n")[0].data, "x");
    EXPECT_EQ(events("data:  x \n\n")[0].data, " x ");
    EXPECT_EQ(events("data:\tx\n\n")[0].data, "\tx");
    EXPECT_EQ(events("data: a: b:c\n\n")[0].data, "a: b:c"); // only the first colon splits
}

TEST(Parser, FieldWithoutColonHasEmptyValue) {
    EXPECT_EQ(events("data\n\n"), std::vector{ev("", "message", "")});
    EXPECT_EQ(events("data\ndata\n\n"), std::vector{ev("", "message", "\n")});
    EXPECT_EQ(events("event\ndata: x\n\n"), std::vector{ev("", "message", "x")});
}

TEST(Parser, FieldNamesAreExactAndUnknownOnesIgnored) {
    EXPECT_TRUE(events("Data: x\n\n").empty());
    EXPECT_TRUE(events("data : x\n\n").empty());
    EXPECT_TRUE(events(" data: x\n\n").empty());
    EXPECT_EQ(events("foo: bar\ndata: x\nbaz\n\n"), std::vector{ev("", "message", "x")});
}

TEST(Parser, NoEventWithoutData) {
    EXPECT_TRUE(events("event: ping\n\n").empty());
    EXPECT_TRUE(events("\n\n\n").empty());
    // The event type of a data-less event does not leak into the next one.
    EXPECT_EQ(events("event: ping\n\ndata: x\n\n"), std::vector{ev("", "message", "x")});
}

TEST(Parser, EventType) {
    EXPECT_EQ(events("event: update\ndata: x\n\ndata: y\n\n"),
              (std::vector{ev("", "update", "x"), ev("", "message", "y")}));
    EXPECT_EQ(events("event: a\nevent: b\ndata: x\n\n")[0].type, "b");
    EXPECT_EQ(events("event:\ndata: x\n\n")[0].type, "message");
}

TEST(Parser, CommentsAreReportedAndIgnored) {
    const Outcome out = parse(": hello\n:\ndata: x\n: in between\n\n");
    EXPECT_EQ(out.events, std::vector{ev("", "message", "x")});
    EXPECT_EQ(out.comments, (std::vector<std::string>{" hello", "", " in between"}));
    // A comment is not a blank line: it does not dispatch.
    EXPECT_TRUE(events("data: x\n:\n").empty());
    // Handlers are optional.
    Parser parser;
    parser.feed(": c\ndata: y\n\n", {});
    EXPECT_EQ(parser.last_event_id(), "");
}

TEST(Parser, IdPersistsAcrossEvents) {
    const Outcome out = parse("id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n");
    EXPECT_EQ(out.events, (std::vector{ev("1", "message", "a"), ev("1", "message", "b"),
                                       ev("2", "message", "c")}));
    EXPECT_EQ(out.last_event_id, "2");
}

TEST(Parser, EmptyIdClearsLastEventId) {
    const Outcome out = parse("id: 1\ndata: a\n\nid\ndata: b\n\n");
    EXPECT_EQ(out.events, (std::vector{ev("1", "message", "a"), ev("", "message", "b")}));
    EXPECT_EQ(out.last_event_id, "");
}

TEST(Parser, IdWithNulIsIgnored) {
    using namespace std::string_literals;
    const Outcome out = parse("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s);
    EXPECT_EQ(out.events, (std::vector{ev("1", "message", "a"), ev("1", "message", "b")}));
    EXPECT_EQ(out.last_event_id, "1");
    // NUL elsewhere is ordinary data.
    EXPECT_EQ(events("data: a\0b\n\n"s)[0].data, "a\0b"s);
}

TEST(Parser, IdWithoutDataUpdatesLastEventIdOnBlankLine) {
    Parser parser;
    parser.feed("id: 7\n", {});
    EXPECT_EQ(parser.last_event_id(), ""); // not before the blank line
    parser.feed("\n", {});
    EXPECT_EQ(parser.last_event_id(), "7");
}

TEST(Parser, Retry) {
    EXPECT_EQ(parse("retry: 1500\n").retry, 1500U);
    EXPECT_EQ(parse("retry:0\n").retry, 0U);
    EXPECT_EQ(parse("retry: 1500\nretry: 200\n").retry, 200U);
    EXPECT_EQ(parse("retry: 4294967295\n").retry, 4294967295U);
    for (const char* bad : {"retry: 12a\n", "retry: -1\n", "retry:  5\n", "retry:\n", "retry\n",
                            "retry: 1.5\n", "retry: 4294967296\n", "retry: +5\n"}) {
        EXPECT_EQ(parse(bad).retry, std::nullopt) << bad;
    }
    // An invalid value leaves the earlier one.
    EXPECT_EQ(parse("retry: 100\nretry: x\n").retry, 100U);
    // retry alone dispatches nothing.
    EXPECT_TRUE(parse("retry: 100\n\n").events.empty());
}

TEST(Parser, LineEndingsLfCrCrlf) {
    const std::vector<ParsedEvent> expected{ev("1", "t", "a\nb"), ev("1", "message", "c")};
    EXPECT_EQ(events("id: 1\nevent: t\ndata: a\ndata: b\n\ndata: c\n\n"), expected);
    EXPECT_EQ(events("id: 1\revent: t\rdata: a\rdata: b\r\rdata: c\r\r"), expected);
    EXPECT_EQ(events("id: 1\r\nevent: t\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"), expected);
    EXPECT_EQ(events("id: 1\r\nevent: t\rdata: a\ndata: b\r\n\rdata: c\n\r\n"), expected);
}

TEST(Parser, CrLfIsOneLineEndButLfCrIsTwo) {
    EXPECT_TRUE(events("data: x\r\n").empty());
    EXPECT_EQ(events("data: x\n\r").size(), 1U);
    EXPECT_EQ(events("data: x\r\r").size(), 1U);
}

TEST(Parser, CrlfSplitAcrossPieces) {
    Parser parser;
    Outcome out;
    feed_into(parser, out, "data: x\r");
    feed_into(parser, out, "\n");
    EXPECT_TRUE(out.events.empty()); // the LF completed the CRLF, not a blank line
    feed_into(parser, out, "\r");
    EXPECT_EQ(out.events, std::vector{ev("", "message", "x")}); // a lone CR dispatches at once
    feed_into(parser, out, "");
    feed_into(parser, out, "\n");
    feed_into(parser, out, "data: y\n\n");
    EXPECT_EQ(out.events, (std::vector{ev("", "message", "x"), ev("", "message", "y")}));
}

TEST(Parser, BomAtStartIsSkipped) {
    EXPECT_EQ(events("\xEF\xBB\xBF"
                     "data: x\n\n"),
              std::vector{ev("", "message", "x")});
    // Split byte by byte.
    EXPECT_EQ(parse_bytewise("\xEF\xBB\xBF"
                             "data: x\n\n")
                  .events,
              std::vector{ev("", "message", "x")});
    // Only one, and only at the start: a second BOM makes the field name unknown.
    EXPECT_TRUE(events("\xEF\xBB\xBF\xEF\xBB\xBF"
                       "data: x\n\n")
                    .empty());
    EXPECT_EQ(events("data: a\n\n\xEF\xBB\xBF"
                     "data: b\n\n"),
              std::vector{ev("", "message", "a")});
    // A BOM inside a value is data.
    EXPECT_EQ(events("data: \xEF\xBB\xBFx\n\n")[0].data, "\xEF\xBB\xBFx");
}

TEST(Parser, Utf8SplitAnywhereIsKept) {
    const std::string text = "data: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n\n";
    const Outcome whole = parse(text);
    ASSERT_EQ(whole.events.size(), 1U);
    EXPECT_EQ(whole.events[0].data, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    EXPECT_EQ(parse_bytewise(text), whole);
}

TEST(Parser, InvalidUtf8BecomesReplacementCharacter) {
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(events("data: a\xFF"
                     "b\n\n")[0]
                  .data,
              "a" + fffd + "b");
    // A truncated sequence is one U+FFFD (its maximal subpart), then the next byte anew.
    EXPECT_EQ(events("data: \xE2\x82"
                     "x\n\n")[0]
                  .data,
              fffd + "x");
    // ... also at the end of a line.
    EXPECT_EQ(events("data: \xF0\x9F\x98\n\n")[0].data, fffd);
    // Overlong forms and surrogates are invalid byte by byte.
    EXPECT_EQ(events("data: \xC0\xAF\n\n")[0].data, fffd + fffd);
    EXPECT_EQ(events("data: \xED\xA0\x80\n\n")[0].data, fffd + fffd + fffd);
    // Field names are decoded too: an invalid byte makes the name unknown.
    EXPECT_TRUE(events("dat\xE1: x\n\n").empty());
}

TEST(Parser, IncompleteEventIsNotDispatched) {
    const Outcome out = parse("data: a\n\ndata: b\nid: 9\n");
    EXPECT_EQ(out.events, std::vector{ev("", "message", "a")});
    EXPECT_EQ(out.last_event_id, "");
}

TEST(Parser, ResetStreamDropsPendingButKeepsIdAndRetry) {
    Parser parser;
    std::vector<ParsedEvent> got;
    const auto collect = [&](const ParsedEvent& e) { got.push_back(e); };
    parser.feed("retry: 250\nid: 5\ndata: a\n\nid: 6\ndata: half", collect);
    parser.reset_stream();
    EXPECT_EQ(parser.last_event_id(), "5");
    EXPECT_EQ(parser.retry_ms(), 250U);
    // A new stream may start with a BOM again; an event without id keeps the old one.
    parser.feed("\xEF\xBB\xBF"
                "data: b\n\n",
                collect);
    EXPECT_EQ(got, (std::vector{ev("5", "message", "a"), ev("5", "message", "b")}));
}

TEST(Parser, ResetStreamForgetsPendingCr) {
    Parser parser;
    std::vector<ParsedEvent> got;
    const auto collect = [&](const ParsedEvent& e) { got.push_back(e); };
    parser.feed("data: a\r", collect);
    parser.reset_stream();
    // The LF starts the new stream with a blank line: nothing to dispatch.
    parser.feed("\ndata: b\n\n", collect);
    EXPECT_EQ(got, std::vector{ev("", "message", "b")});
}

TEST(Parser, StartsFromAGivenLastEventId) {
    Parser parser("42");
    EXPECT_EQ(parser.last_event_id(), "42");
    std::vector<ParsedEvent> got;
    parser.feed("data: x\n\n", [&](const ParsedEvent& e) { got.push_back(e); });
    EXPECT_EQ(got, std::vector{ev("42", "message", "x")});
}

const char* const kCorpus = "\xEF\xBB\xBF: opening comment\r\n"
                            "retry: 3000\r\n"
                            "\r\n"
                            "id: 1\n"
                            "event: greeting\n"
                            "data: hello\n"
                            "data:  world\n"
                            "\n"
                            "id: 2\r"
                            "data: caf\xC3\xA9 \xF0\x9F\x98\x80\r"
                            "\r"
                            ": keep-alive\n"
                            "data\n"
                            "data: bad \xFF byte\r\n"
                            "unknown: field\r\n"
                            "\r\n"
                            "event: lonely\n"
                            "\n"
                            "id: 3\r\n"
                            "retry: 10x\n"
                            "retry: 1200\r"
                            "data: last\r\n"
                            "\n"
                            "data: never dispatched\n";

TEST(Parser, CorpusWhole) {
    const Outcome out = parse(kCorpus);
    EXPECT_EQ(out.events, (std::vector{ev("1", "greeting", "hello\n world"),
                                       ev("2", "message", "caf\xC3\xA9 \xF0\x9F\x98\x80"),
                                       ev("2", "message", "\nbad \xEF\xBF\xBD byte"),
                                       ev("3", "message", "last")}));
    EXPECT_EQ(out.comments, (std::vector<std::string>{" opening comment", " keep-alive"}));
    EXPECT_EQ(out.last_event_id, "3");
    EXPECT_EQ(out.retry, 1200U);
}

TEST(Parser, ByteByByteEqualsWhole) {
    const std::string corpus = kCorpus;
    EXPECT_EQ(parse_bytewise(corpus), parse(corpus));
    for (const char* s : {"data: x\r\n\r\n", "data: x\r\r", "data: x\n\r\n", "\r\n\r\n",
                          "\xEF\xBB\xBF\r\ndata: y\r\n\r\n"}) {
        EXPECT_EQ(parse_bytewise(s), parse(s)) << testing::PrintToString(s);
    }
}

TEST(Parser, RandomPiecesEqualWhole) {
    const std::string corpus = kCorpus;
    const Outcome whole = parse(corpus);
    std::mt19937 rng(12345);
    std::uniform_int_distribution<std::size_t> size(0, 7);
    for (int round = 0; round < 500; ++round) {
        std::vector<std::size_t> sizes(corpus.size());
        for (auto& n : sizes) {
            n = size(rng);
        }
        ASSERT_EQ(parse_in_pieces(corpus, sizes), whole) << "round " << round;
    }
}

} // namespace
} // namespace herald::sse
