// The hub's base URL as `herald pub` and `herald sub` take it (`--url`, `HERALD_URL`), and
// the percent-encoding their requests need. Pure string work, no I/O.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "base/text.hpp"

namespace herald::cli {

// A plain-HTTP base URL, split into what a request needs.
struct HubUrl {
    std::string host;      // a name or an address; an IPv6 address without its brackets
    std::string port;      // decimal, "80" when the URL gives none
    std::string base_path; // "" or a path starting with "/" and not ending with "/"

    // The value of the Host header: host, bracketed if IPv6, with ":port" unless 80.
    [[nodiscard]] std::string host_header() const;
    // `path` (starting with "/") under the base path: a request target.
    [[nodiscard]] std::string target(std::string_view path) const;
};

// What parse_hub_url throws; what() is a sentence fit for the user.
class UrlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses `http://host[:port][/base/path]`; a URL without a scheme is taken as http://.
// Throws UrlError for https:// (herald's client speaks plain HTTP only), any other scheme,
// a missing host, a bad port, user info, a query or a fragment.
[[nodiscard]] HubUrl parse_hub_url(std::string_view url);

using base::percent_encode;

} // namespace herald::cli
