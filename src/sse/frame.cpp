// SSE frame encoding and field validation. The UTF-8 check is written by hand: it is a
// dozen lines, runs on every published payload, and no dependency we carry offers one.
#include "sse/frame.hpp"

#include <charconv>
#include <cstddef>

namespace herald::sse {

namespace {

void append_number(std::string& out, std::uint32_t n) {
    char buf[16];
    const auto res = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, res.ptr);
}

} // namespace

void encode_event(std::string& out, std::string_view id, std::string_view type,
                  std::string_view data, std::optional<std::uint32_t> retry_ms) {
    out.reserve(out.size() + id.size() + type.size() + data.size() + 32);
    if (!id.empty()) {
        out.append("id: ").append(id).push_back('\n');
    }
    if (!type.empty()) {
        out.append("event: ").append(type).push_back('\n');
    }
    if (retry_ms) {
        out.append("retry: ");
        append_number(out, *retry_ms);
        out.push_back('\n');
    }
    // Each line of data becomes a "data: " line; CRLF counts as one line end.
    std::size_t start = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
        const char c = data[i];
        if (c != '\n' && c != '\r') {
            continue;
        }
        out.append("data: ").append(data.substr(start, i - start)).push_back('\n');
        if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') {
            ++i;
        }
        start = i + 1;
    }
    out.append("data: ").append(data.substr(start)).append("\n\n");
}

std::string encode_retry(std::uint32_t ms) {
    std::string out = "retry: ";
    append_number(out, ms);
    out.append("\n\n");
    return out;
}

std::string encode_comment(std::string_view text) {
    if (text.empty()) {
        return ":\n\n";
    }
    std::string out;
    out.reserve(text.size() + 4);
    out.append(": ");
    for (const char c : text) {
        out.push_back(c == '\r' || c == '\n' ? ' ' : c);
    }
    out.append("\n\n");
    return out;
}

bool is_valid_field(std::string_view v) noexcept {
    return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool is_valid_utf8(std::string_view s) noexcept {
    // Table 3-7 of the Unicode standard: the second byte's range depends on the first.
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    while (p < end) {
        const unsigned char b = *p;
        if (b < 0x80) {
            ++p;
            continue;
        }
        int len = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            if (b == 0xE0) {
                lo = 0xA0; // no overlongs
            } else if (b == 0xED) {
                hi = 0x9F; // no surrogates
            }
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            if (b == 0xF0) {
                lo = 0x90; // no overlongs
            } else if (b == 0xF4) {
                hi = 0x8F; // nothing above U+10FFFF
            }
        } else {
            return false; // a continuation byte, C0/C1 (overlong) or F5..FF
        }
        if (end - p < len) {
            return false;
        }
        if (p[1] < lo || p[1] > hi) {
            return false;
        }
        for (int i = 2; i < len; ++i) {
            if (p[i] < 0x80 || p[i] > 0xBF) {
                return false;
            }
        }
        p += len;
    }
    return true;
}

} // namespace herald::sse
