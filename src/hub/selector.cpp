// Parsing and matching of topic selectors. Templates are matched by hand rather than with a
// URI-template library: level 1 with single-segment variables is a small glob, and the
// matcher runs for every topic a subscription is checked against, so it must not allocate.
#include "hub/selector.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace herald::hub {

namespace {

constexpr std::string_view kSystemPrefix = "$sys/";
constexpr char kLiteral = 'l';
constexpr char kAnyOne = '?';
constexpr char kAnyRun = '*';

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
        sel.segments_.clear();
    }
    return sel;
}

bool Selector::compile_template() {
    const std::string_view text = text_;
    segments_.emplace_back();
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '}') {
            return false; // a '}' with no '{'
        }
        if (c == '/') {
            segments_.emplace_back();
            continue;
        }
        Segment& seg = segments_.back();
        if (c != '{') {
            seg.chars.push_back(c);
            seg.kinds.push_back(kLiteral);
            continue;
        }
        const std::size_t close = text.find('}', i + 1);
        if (close == std::string_view::npos || !is_varname(text.substr(i + 1, close - i - 1))) {
            return false;
        }
        seg.chars.append(2, '\0');
        seg.kinds.push_back(kAnyOne);
        seg.kinds.push_back(kAnyRun);
        i = close;
    }
    return true;
}

// Glob matching with one backtrack point: on a mismatch, the last "any run" seen takes one
// more character and matching resumes after it. That is complete for globs whose wildcard
// can take any character, which holds within a segment.
bool Selector::Segment::matches(std::string_view s) const noexcept {
    const std::size_t n = kinds.size();
    std::size_t pi = 0;
    std::size_t si = 0;
    std::size_t star_p = std::string::npos;
    std::size_t star_s = 0;
    while (si < s.size()) {
        if (pi < n && kinds[pi] == kAnyRun) {
            star_p = pi++;
            star_s = si;
        } else if (pi < n && (kinds[pi] == kAnyOne || chars[pi] == s[si])) {
            ++pi;
            ++si;
        } else if (star_p != std::string::npos) {
            pi = star_p + 1;
            si = ++star_s;
        } else {
            return false;
        }
    }
    while (pi < n && kinds[pi] == kAnyRun) {
        ++pi;
    }
    return pi == n;
}

bool Selector::matches(std::string_view topic) const noexcept {
    switch (kind_) {
    case Kind::exact: return topic == text_;
    case Kind::all: return !is_system_topic(topic);
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
        if (last != (slash == std::string_view::npos)) {
            return false;
        }
        const std::size_t end = last ? topic.size() : slash;
        if (!segments_[i].matches(topic.substr(start, end - start))) {
            return false;
        }
        start = end + 1;
    }
    return true;
}

bool any_matches(const std::vector<Selector>& selectors, std::string_view topic) noexcept {
    return std::any_of(selectors.begin(), selectors.end(),
                       [topic](const Selector& s) { return s.matches(topic); });
}

} // namespace herald::hub
