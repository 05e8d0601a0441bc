// Serving files: a folder at / (`--static DIR`), for a page that lives beside its hub, and
// the dashboard compiled into the binary at /dashboard/.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/request.hpp"

namespace herald::http {

// The file under `root` that `path` names (`/` and folders mean their index.html), read
// whole, or nullopt when there is none. Paths that climb out of `root` (`..`, symlinks
// pointing outside) are never served.
[[nodiscard]] std::optional<Response> serve_static(const std::string& root, std::string_view path);

// A GET of /dashboard or under /dashboard/: the file (200, or 304 when If-None-Match holds
// its ETag), a redirect from /dashboard to /dashboard/, 404 for an unknown file, 405 for
// another method.
[[nodiscard]] Response serve_dashboard(const Request& request);

} // namespace herald::http
