// The little of HTTP/1.1 response parsing `herald bench` needs, on raw bytes.
#pragma once

#include <cctype>
#include <charconv>
#include <optional>
#include <string_view>

namespace herald::bench {

inline bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) !=
            std::tolower(static_cast<unsigned char>(prefix[i]))) {
            return false;
        }
    }
    return true;
}

// The value of header `name` (lower case, colon included) in a response head, if present.
inline std::optional<std::string_view> header_value(std::string_view head, std::string_view name) {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        std::size_t start = pos + 2;
        std::size_t end = head.find("\r\n", start);
        std::string_view line = head.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (iequals_prefix(line, name)) {
            line.remove_prefix(name.size());
            while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
                line.remove_prefix(1);
            }
            return line;
        }
        pos = end;
    }
    return std::nullopt;
}

// "HTTP/1.1 200 OK" -> 200; -1 when it is not a status line.
inline int status_code(std::string_view head) {
    if (head.size() < 12 || !iequals_prefix(head, "HTTP/")) {
        return -1;
    }
    auto sp = head.find(' ');
    if (sp == std::string_view::npos || sp + 4 > head.size()) {
        return -1;
    }
    // Exactly three digits, then a space or the end of the line.
    const std::string_view digits = head.substr(sp + 1, 3);
    const std::size_t after = sp + 4;
    if (digits.find_first_not_of("0123456789") != std::string_view::npos ||
        (after < head.size() && head[after] != ' ' && head[after] != '\r')) {
        return -1;
    }
    int code = 0;
    std::from_chars(digits.data(), digits.data() + 3, code);
    return code;
}

inline std::string_view first_line(std::string_view head) {
    return head.substr(0, head.find("\r\n"));
}

} // namespace herald::bench
