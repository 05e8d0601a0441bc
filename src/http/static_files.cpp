// Static files: small assets read synchronously on the worker (a page, its scripts);
// anything large belongs behind a real file server.
#include "http/static_files.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

namespace herald::http {

namespace {

constexpr std::uintmax_t kMaxStaticBytes = 16 * 1024 * 1024;

std::string_view content_type_of(const std::filesystem::path& file) {
    const std::string ext = file.extension().string();
    if (ext == ".html" || ext == ".htm")
        return "text/html; charset=utf-8";
    if (ext == ".js" || ext == ".mjs")
        return "text/javascript; charset=utf-8";
    if (ext == ".css")
        return "text/css; charset=utf-8";
    if (ext == ".json")
        return "application/json";
    if (ext == ".svg")
        return "image/svg+xml";
    if (ext == ".png")
        return "image/png";
    if (ext == ".jpg" || ext == ".jpeg")
        return "image/jpeg";
    if (ext == ".gif")
        return "image/gif";
    if (ext == ".ico")
        return "image/x-icon";
    if (ext == ".txt")
        return "text/plain; charset=utf-8";
    if (ext == ".woff2")
        return "font/woff2";
    return "application/octet-stream";
}

} // namespace

std::optional<Response> serve_static(const std::string& root, std::string_view path) {
    namespace fs = std::filesystem;
    if (root.empty() || path.empty() || path.front() != '/' ||
        path.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    std::error_code ec;
    const fs::path base = fs::canonical(root, ec);
    if (ec) {
        return std::nullopt;
    }
    fs::path file = fs::weakly_canonical(base / fs::path(path.substr(1)), ec);
    if (ec) {
        return std::nullopt;
    }
    // The resolved file must lie inside the root, whatever `..` or links said.
    auto [root_end, ignored] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    if (root_end != base.end()) {
        return std::nullopt;
    }
    if (fs::is_directory(file, ec)) {
        file /= "index.html";
    }
    if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) > kMaxStaticBytes || ec) {
        return std::nullopt;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    Response r;
    r.content_type = std::string(content_type_of(file));
    r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
}

} // namespace herald::http
