// Form and query decoding.
#include "http/form.hpp"

namespace herald::http {

namespace {

int hex(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::string decode(std::string_view in, bool plus_is_space) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '+' && plus_is_space) {
            out += ' ';
        } else if (c == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
            out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

} // namespace

std::vector<FormField> decode_form(std::string_view text) {
    std::vector<FormField> fields;
    while (!text.empty()) {
        const auto amp = text.find('&');
        std::string_view pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const auto eq = pair.find('=');
        FormField f;
        f.key = decode(pair.substr(0, eq), true);
        if (eq != std::string_view::npos) {
            f.value = decode(pair.substr(eq + 1), true);
            f.has_value = true;
        }
        fields.push_back(std::move(f));
    }
    return fields;
}

std::string decode_path(std::string_view path) {
    return decode(path, false);
}

} // namespace herald::http
