// The dashboard's files (src/dashboard/web), compiled into the binary by cmake/embed.cmake:
// the page needs nothing on disk at run time.
#pragma once

#include <array>
#include <span>
#include <string_view>

namespace herald::dashboard {

struct File {
    std::string_view name; // relative to /dashboard/, e.g. "app.js"
    std::string_view body;
    std::string_view etag; // quoted, as the ETag header carries it
};

// Every file, sorted by name.
[[nodiscard]] std::span<const File> files() noexcept;

// The file at `name` ("" is index.html), or null.
[[nodiscard]] const File* find(std::string_view name) noexcept;

} // namespace herald::dashboard
