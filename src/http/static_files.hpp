// Serving a folder of files at / (`--static DIR`), for a page that lives beside its hub.
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

} // namespace herald::http
