// The SSE wire format, both ways. Round trip: events, retry hints and comments the fuzzer
// chooses are encoded by sse/frame, parsed back by sse/parser in pieces cut at fuzzer-chosen
// places, and must come back as a WHATWG client sees them. Raw: arbitrary bytes parsed whole,
// cut at random and byte by byte must give the same events, comments, id and retry.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "sse/frame.hpp"
#include "sse/parser.hpp"

namespace {

using herald::sse::ParsedEvent;
using herald::sse::Parser;

struct Outcome {
    std::vector<ParsedEvent> events;
    std::vector<std::string> comments;
    std::string last_event_id;
    std::optional<std::uint32_t> retry;

    bool operator==(const Outcome&) const = default;
};

Outcome parse(const std::vector<std::string_view>& pieces) {
    Parser parser;
    Outcome out;
    for (const auto piece : pieces) {
        parser.feed(
            piece, [&out](const ParsedEvent& e) { out.events.push_back(e); },
            [&out](std::string_view c) { out.comments.emplace_back(c); });
    }
    out.last_event_id = parser.last_event_id();
    out.retry = parser.retry_ms();
    return out;
}

// `data` as a client reads it back: every CRLF, CR and LF is one LF.
std::string lines_joined(std::string_view data) {
    std::string out;
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] == '\r') {
            out.push_back('\n');
            if (i + 1 < data.size() && data[i + 1] == '\n') {
                ++i;
            }
        } else {
            out.push_back(data[i]);
        }
    }
    return out;
}

void round_trip(FuzzedDataProvider& data) {
    std::string stream;
    Outcome expected;
    const auto frames = data.ConsumeIntegralInRange<int>(1, 8);
    for (int i = 0; i < frames; ++i) {
        const auto kind = data.ConsumeIntegralInRange<int>(0, 5);
        if (kind == 0) {
            const auto ms = data.ConsumeIntegral<std::uint32_t>();
            stream += herald::sse::encode_retry(ms);
            expected.retry = ms;
        } else if (kind == 1) {
            const std::string text = data.ConsumeRandomLengthString(64);
            if (!herald::sse::is_valid_utf8(text)) {
                continue; // the hub's comments are its own ASCII sentences
            }
            stream += herald::sse::encode_comment(text);
            std::string seen;
            if (!text.empty()) {
                seen = " ";
                for (const char c : text) {
                    seen.push_back(c == '\r' || c == '\n' ? ' ' : c);
                }
            }
            expected.comments.push_back(seen);
        } else {
            std::string id = data.ConsumeRandomLengthString(32);
            std::string type = data.ConsumeRandomLengthString(32);
            std::string payload = data.ConsumeRandomLengthString(256);
            std::optional<std::uint32_t> retry;
            if (data.ConsumeBool()) {
                retry = data.ConsumeIntegral<std::uint32_t>();
            }
            // What the hub lets through (prepare_publish): fields without CR, LF or NUL,
            // all of it valid UTF-8.
            if (!herald::sse::is_valid_field(id) || !herald::sse::is_valid_field(type) ||
                !herald::sse::is_valid_utf8(id) || !herald::sse::is_valid_utf8(type) ||
                !herald::sse::is_valid_utf8(payload)) {
                continue;
            }
            herald::sse::encode_event(stream, id, type, payload, retry);
            if (!id.empty()) {
                expected.last_event_id = id;
            }
            if (retry) {
                expected.retry = retry;
            }
            expected.events.push_back(ParsedEvent{expected.last_event_id,
                                                  type.empty() ? std::string("message") : type,
                                                  lines_joined(payload)});
        }
    }
    const Outcome got = parse(herald::fuzz::split(stream, data));
    HERALD_FUZZ_CHECK(got == expected);
}

void raw(FuzzedDataProvider& data) {
    const auto cut_bytes = data.ConsumeIntegralInRange<std::size_t>(0, 64);
    const std::string cuts = data.ConsumeBytesAsString(cut_bytes);
    const std::string stream = data.ConsumeRemainingBytesAsString();
    FuzzedDataProvider cut_data(reinterpret_cast<const std::uint8_t*>(cuts.data()), cuts.size());

    const Outcome whole = parse({stream});
    HERALD_FUZZ_CHECK(parse(herald::fuzz::split(stream, cut_data)) == whole);
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < stream.size(); ++i) {
        bytes.push_back(std::string_view(stream).substr(i, 1));
    }
    HERALD_FUZZ_CHECK(parse(bytes) == whole);
    // Whatever came in, what comes out is valid UTF-8 (invalid input became U+FFFD).
    for (const auto& e : whole.events) {
        HERALD_FUZZ_CHECK(herald::sse::is_valid_utf8(e.id) && herald::sse::is_valid_utf8(e.type) &&
                          herald::sse::is_valid_utf8(e.data));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    FuzzedDataProvider data(bytes, size);
    if (data.ConsumeBool()) {
        round_trip(data);
    } else {
        raw(data);
    }
    return 0;
}
