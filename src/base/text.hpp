// Small text helpers that several modules need and no dependency of theirs offers without
// dragging in more (Beast has iequals, but auth must not include Beast).
#pragma once

#include <string>
#include <string_view>

namespace herald::base {

// ASCII case-insensitive equality, as HTTP and JOSE compare scheme and algorithm names.
[[nodiscard]] constexpr bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    constexpr auto lower = [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// Percent-encodes every byte except the RFC 3986 unreserved characters: right for a URL's
// path segment or query parameter and for an application/x-www-form-urlencoded value alike.
[[nodiscard]] std::string percent_encode(std::string_view text);

} // namespace herald::base
