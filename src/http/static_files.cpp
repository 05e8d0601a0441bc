// Static files: small assets read synchronously on the worker (a page, its scripts);
// anything large belongs behind a real file server.
#include "http/static_files.hpp"

#include "dashboard/dashboard.hpp"

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

// Whether an If-None-Match header names `etag` (a list, or `*`; weak tags compare equal).
bool matches_etag(std::string_view header, std::string_view etag) {
    std::size_t start = 0;
    while (start < header.size()) {
        std::size_t comma = header.find(',', start);
        if (comma == std::string_view::npos) {
            comma = header.size();
        }
        std::string_view tag = header.substr(start, comma - start);
        while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) {
            tag.remove_prefix(1);
        }
        while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) {
            tag.remove_suffix(1);
        }
        if (tag.starts_with("W/")) {
            tag.remove_prefix(2);
        }
        if (tag == "*" || tag == etag) {
            return true;
        }
        start = comma + 1;
    }
    return false;
}

} // namespace

Response serve_dashboard(const Request& request) {
    if (request.method != "GET") {
        Response r =
            json_error(405, "method " + request.method + " is not allowed on " + request.path);
        r.headers.emplace_back("Allow", "GET");
        return r;
    }
    if (request.path == "/dashboard") {
        Response r;
        r.status = 301;
        r.content_type.clear();
        r.headers.emplace_back("Location", "/dashboard/");
        return r;
    }
    const dashboard::File* file = dashboard::find(
        std::string_view(request.path).substr(std::string_view("/dashboard/").size()));
    if (file == nullptr) {
        return json_error(404, "no such dashboard file: " + request.path);
    }
    Response r;
    r.headers.emplace_back("ETag", std::string(file->etag));
    // The files change only with the binary: a browser asks again each time (no-cache) and
    // gets a 304 while its copy is current.
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (request.if_none_match && matches_etag(*request.if_none_match, file->etag)) {
        r.status = 304;
        r.content_type.clear();
        return r;
    }
    r.content_type = std::string(content_type_of(std::filesystem::path(file->name)));
    if (file->name.ends_with(".html")) {
        // Only its own scripts and styles, and calls to this hub; never framed elsewhere.
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
        r.headers.emplace_back("Referrer-Policy", "no-referrer");
    }
    r.body = std::string(file->body);
    return r;
}

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
