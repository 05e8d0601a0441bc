// Parsing and matching of topic selectors. Templates are matched by hand rather than with a
// URI-template library: level 1 with single-segment variables is a small glob, and the
// matcher runs for every topic a subscription is checked against, so it must not allocate,
// and it must not backtrack: a crafted template and topic would make that quadratic.
#include "hub/selector.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace herald::hub {

namespace {

constexpr std::string_view kSystemPrefix = "$sys/";

bool is_hex(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 6570: varname = varchar *( ["."] varchar ), varchar = ALPHA / DIGIT / "_" / pct-encoded.
bool is_varname(std::string_view name) noexcept {
    if (name.empty() || name.front() == '.' || name.back() == '.') {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || c == '_') {
            continue;
        }
        if (c == '.' && name[i - 1] != '.') {
            continue;
        }
        if (c == '%' && i + 2 < name.size() && is_hex(name[i + 1]) && is_hex(name[i + 2])) {
            i += 2;
            continue;
        }
        return false;
    }
    return true;
}

} // namespace

bool is_system_topic(std::string_view topic) noexcept {
    return topic.substr(0, kSystemPrefix.size()) == kSystemPrefix;
}

Selector Selector::parse(std::string_view text) {
    if (text == "*") {
        return Selector(std::string(text), Kind::all);
    }
    Selector sel(std::string(text), Kind::uri_template);
    if (text.find_first_of("{}") == std::string_view::npos || !sel.compile_template()) {
        sel.kind_ = Kind::exact;
        sel.expressions_ = 0;
        sel.segments_.clear();
    }
    return sel;
}

namespace {

// The KMP failure function of `text`: border[i] is the length of the longest proper prefix
// of text[0..i] that is also its suffix.
std::vector<std::uint32_t> borders_of(std::string_view text) {
    std::vector<std::uint32_t> border(text.size(), 0);
    std::uint32_t k = 0;
    for (std::size_t i = 1; i < text.size(); ++i) {
        while (k > 0 && text[i] != text[k]) {
            k = border[k - 1];
        }
        if (text[i] == text[k]) {
            ++k;
        }
        border[i] = k;
    }
    return border;
}

// What matches() counts when nobody asks: nothing, at no cost.
struct NoSteps {
    constexpr NoSteps& operator+=(std::size_t) noexcept { return *this; }
};

} // namespace

bool Selector::compile_template() {
    const std::string_view text = text_;
    std::size_t gap = 0; // variables since the last literal character of the segment
    bool vars = false;   // whether the segment has any variable yet
    auto finish = [&gap, &vars](Segment& seg) {
        if (!vars) {
            seg.min_size = seg.head.size();
            return;
        }
        if (gap > 0) { // the segment ends with a variable
            seg.tail_gap = gap;
        } else { // its last literal run is anchored at its end
            seg.tail_gap = seg.pieces.back().gap;
            seg.tail = std::move(seg.pieces.back().text);
            seg.pieces.pop_back();
        }
        seg.min_size = seg.head.size() + seg.tail_gap + seg.tail.size();
        for (Piece& piece : seg.pieces) {
            piece.border = borders_of(piece.text);
            seg.min_size += piece.gap + piece.text.size();
        }
        gap = 0;
        vars = false;
    };
    segments_.emplace_back();
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '}') {
            return false; // a '}' with no '{'
        }
        if (c == '/') {
            finish(segments_.back());
            segments_.emplace_back();
            continue;
        }
        Segment& seg = segments_.back();
        if (c != '{') {
            if (!vars) {
                seg.head.push_back(c);
                continue;
            }
            if (gap > 0) {
                seg.pieces.push_back(Piece{gap, {}, {}});
                gap = 0;
            }
            seg.pieces.back().text.push_back(c);
            continue;
        }
        const std::size_t close = text.find('}', i + 1);
        if (close == std::string_view::npos || !is_varname(text.substr(i + 1, close - i - 1))) {
            return false;
        }
        ++gap;
        vars = true;
        ++expressions_;
        i = close;
    }
    finish(segments_.back());
    return true;
}

template <typename Steps>
bool Selector::Segment::matches(std::string_view s, Steps& steps) const noexcept {
    steps += 1;
    if (tail_gap == 0) {
        steps += std::min(s.size(), head.size());
        return s == head;
    }
    if (s.size() < min_size) {
        return false;
    }
    steps += head.size() + tail.size();
    if (s.substr(0, head.size()) != head || s.substr(s.size() - tail.size()) != tail) {
        return false;
    }
    // What lies between head and tail: each piece is looked for at its leftmost place,
    // KMP-style, and the next search starts after it, so each character is read once.
    const std::string_view rest = s.substr(head.size(), s.size() - head.size() - tail.size());
    std::size_t pos = 0;
    for (const Piece& piece : pieces) {
        const std::string_view want = piece.text;
        std::size_t i = pos + piece.gap;
        std::size_t k = 0; // characters of `want` matched so far
        for (; i < rest.size() && k < want.size(); ++i) {
            while (k > 0 && rest[i] != want[k]) {
                k = piece.border[k - 1];
                steps += 1;
            }
            steps += 1;
            if (rest[i] == want[k]) {
                ++k;
            }
        }
        if (k < want.size()) {
            return false;
        }
        pos = i; // just past the piece
    }
    return rest.size() - pos >= tail_gap;
}

template <typename Steps>
bool Selector::match(std::string_view topic, Steps& steps) const noexcept {
    switch (kind_) {
    case Kind::exact: steps += std::min(topic.size(), text_.size()) + 1; return topic == text_;
    case Kind::all: steps += 1; return !is_system_topic(topic);
    case Kind::uri_template: break;
    }
    if (is_system_topic(topic)) {
        return false;
    }
    // Variables never hold '/', so the template's segments line up with the topic's.
    std::size_t start = 0;
    for (std::size_t i = 0; i < segments_.size(); ++i) {
        const std::size_t slash = topic.find('/', start);
        const bool last = i + 1 == segments_.size();
        const std::size_t end = slash == std::string_view::npos ? topic.size() : slash;
        steps += end - start + 1;
        if (last != (slash == std::string_view::npos)) {
            return false;
        }
        if (!segments_[i].matches(topic.substr(start, end - start), steps)) {
            return false;
        }
        start = end + 1;
    }
    return true;
}

bool Selector::matches(std::string_view topic) const noexcept {
    NoSteps none;
    return match(topic, none);
}

bool Selector::matches_counting(std::string_view topic, std::size_t& steps) const noexcept {
    steps = 0;
    return match(topic, steps);
}

bool any_matches(const std::vector<Selector>& selectors, std::string_view topic) noexcept {
    return std::any_of(selectors.begin(), selectors.end(),
                       [topic](const Selector& s) { return s.matches(topic); });
}

} // namespace herald::hub
