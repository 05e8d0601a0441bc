// The incremental SSE stream parser: line splitting, UTF-8 decoding and field processing
// as the WHATWG HTML standard specifies them (section "Interpreting an event stream").
// Written by hand: no packaged C++ library implements the client side of SSE.
#include "sse/parser.hpp"

#include <limits>
#include <utility>

namespace herald::sse {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; // U+FFFD

// Returns the length of the valid UTF-8 sequence starting at `s[i]`, or 0 if the bytes
// there do not start one; `*bad` then receives how many bytes the WHATWG decoder replaces
// with one U+FFFD (the "maximal subpart": at least 1).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::size_t* bad) noexcept {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t needed = 0;
    unsigned char lower = 0x80;
    unsigned char upper = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        needed = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        needed = 2;
        lower = lead == 0xE0 ? 0xA0 : 0x80; // no overlong forms
        upper = lead == 0xED ? 0x9F : 0xBF; // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        needed = 3;
        lower = lead == 0xF0 ? 0x90 : 0x80; // no overlong forms
        upper = lead == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
    } else {
        *bad = 1;
        return 0;
    }
    for (std::size_t seen = 0; seen < needed; ++seen) {
        const std::size_t j = i + 1 + seen;
        if (j >= s.size()) {
            *bad = 1 + seen;
            return 0;
        }
        const auto byte = static_cast<unsigned char>(s[j]);
        if (byte < lower || byte > upper) {
            *bad = 1 + seen; // the offending byte is decoded afresh
            return 0;
        }
        lower = 0x80;
        upper = 0xBF;
    }
    return 1 + needed;
}

// Returns `line` if it is valid UTF-8, else a copy in `scratch` with each invalid sequence
// replaced by U+FFFD, as the standard's "UTF-8 decode" does to the whole stream. Decoding
// line by line gives the same text: CR and LF never continue a sequence.
std::string_view valid_utf8(std::string_view line, std::string& scratch) {
    std::size_t i = 0;
    std::size_t bad = 0;
    while (i < line.size()) {
        const std::size_t n = utf8_sequence(line, i, &bad);
        if (n == 0) {
            break;
        }
        i += n;
    }
    if (i == line.size()) {
        return line;
    }
    scratch.assign(line.substr(0, i));
    while (i < line.size()) {
        const std::size_t n = utf8_sequence(line, i, &bad);
        if (n == 0) {
            scratch.append(kReplacement);
            i += bad;
        } else {
            scratch.append(line.substr(i, n));
            i += n;
        }
    }
    return scratch;
}

// `retry` takes ASCII digits only; a value too large for 32 bits is ignored like any other
// invalid one.
std::optional<std::uint32_t> parse_retry(std::string_view value) noexcept {
    if (value.empty()) {
        return std::nullopt;
    }
    std::uint64_t ms = 0;
    for (const char c : value) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        ms = ms * 10 + static_cast<std::uint64_t>(c - '0');
        if (ms > std::numeric_limits<std::uint32_t>::max()) {
            return std::nullopt;
        }
    }
    return static_cast<std::uint32_t>(ms);
}

} // namespace

Parser::Parser(std::string last_event_id)
    : id_buffer_(last_event_id), last_event_id_(std::move(last_event_id)) {}

void Parser::feed(std::string_view bytes, const EventHandler& on_event,
                  const CommentHandler& on_comment) {
    std::size_t pos = 0;
    if (skip_lf_ && !bytes.empty()) {
        // The CR that ended the previous piece and this LF are one CRLF.
        skip_lf_ = false;
        if (bytes.front() == '\n') {
            pos = 1;
        }
    }
    while (pos < bytes.size()) {
        const std::size_t end = bytes.find_first_of("\r\n", pos);
        if (end == std::string_view::npos) {
            line_.append(bytes.substr(pos));
            return;
        }
        if (line_.empty()) {
            process_line(bytes.substr(pos, end - pos), on_event, on_comment);
        } else {
            line_.append(bytes.substr(pos, end - pos));
            process_line(line_, on_event, on_comment);
            line_.clear();
        }
        pos = end + 1;
        if (bytes[end] == '\r') {
            if (pos == bytes.size()) {
                skip_lf_ = true;
            } else if (bytes[pos] == '\n') {
                ++pos;
            }
        }
    }
}

void Parser::reset_stream() noexcept {
    line_.clear();
    data_.clear();
    type_.clear();
    // The id buffer keeps the last dispatched id, so an event without `id:` on the new
    // stream does not forget it (the standard would start the buffer empty; browsers and
    // the reference clients keep the id).
    id_buffer_ = last_event_id_;
    skip_lf_ = false;
    at_start_ = true;
}

void Parser::process_line(std::string_view line, const EventHandler& on_event,
                          const CommentHandler& on_comment) {
    if (at_start_) {
        at_start_ = false;
        if (line.substr(0, kBom.size()) == kBom) {
            line.remove_prefix(kBom.size());
        }
    }
    line = valid_utf8(line, scratch_);
    if (line.empty()) {
        dispatch(on_event);
        return;
    }
    if (line.front() == ':') {
        if (on_comment) {
            on_comment(line.substr(1));
        }
        return;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
        process_field(line, {});
        return;
    }
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    process_field(line.substr(0, colon), value);
}

void Parser::process_field(std::string_view field, std::string_view value) {
    if (field == "data") {
        data_.append(value);
        data_.push_back('\n');
    } else if (field == "event") {
        type_.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) {
            id_buffer_.assign(value);
        }
    } else if (field == "retry") {
        if (const auto ms = parse_retry(value)) {
            retry_ms_ = ms;
        }
    }
}

void Parser::dispatch(const EventHandler& on_event) {
    last_event_id_ = id_buffer_;
    if (data_.empty()) {
        type_.clear();
        return;
    }
    data_.pop_back(); // the "\n" after the last data line
    ParsedEvent event{last_event_id_, type_.empty() ? std::string("message") : std::move(type_),
                      std::move(data_)};
    data_.clear();
    type_.clear();
    if (on_event) {
        on_event(event);
    }
}

} // namespace herald::sse
