// Decoding of `application/x-www-form-urlencoded` bodies and query strings.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::http {

struct FormField {
    std::string key;
    std::string value;
    bool has_value = false; // `private` alone, with no `=`
};

// Splits on `&`, then on the first `=`; `+` is a space and `%XX` a byte. Written by hand
// because publishers send what curl sends: `-d "data=hello world"` has a raw space, which a
// strict RFC 3986 parser (Boost.URL) refuses. A `%` not followed by two hex digits stays a
// literal `%`. Never fails; validation of the decoded values is the caller's.
[[nodiscard]] std::vector<FormField> decode_form(std::string_view text);

// Percent-decodes a path (no `+` rule).
[[nodiscard]] std::string decode_path(std::string_view path);

} // namespace herald::http
