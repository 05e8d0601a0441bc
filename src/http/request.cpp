// Building responses: JSON errors and the serialized status line, headers and body.
#include "http/request.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "http/form.hpp"

namespace herald::http {

std::optional<std::string_view> Request::param(std::string_view name) const {
    for (const auto& [key, value] : query) {
        if (key == name) {
            return value;
        }
    }
    return std::nullopt;
}

std::optional<std::string_view> Request::param_any_case(std::string_view name) const {
    auto same = [name](std::string_view key) {
        return std::ranges::equal(key, name, [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        });
    };
    for (const auto& [key, value] : query) {
        if (same(key)) {
            return value;
        }
    }
    return std::nullopt;
}

std::string json_quote(std::string_view text) {
    // Invalid UTF-8 is replaced rather than thrown on: this is for error messages.
    return nlohmann::json(std::string(text))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response json_error(int status, std::string_view message) {
    Response r;
    r.status = status;
    r.body = "{\"error\":" + json_quote(message) + "}\n";
    return r;
}

std::string mask_target(std::string_view target) {
    const auto question = target.find('?');
    if (question == std::string_view::npos) {
        return std::string(target);
    }
    std::string out(target.substr(0, question + 1));
    std::string_view query = target.substr(question + 1);
    bool first = true;
    while (true) {
        const auto amp = query.find('&');
        const std::string_view field = query.substr(0, amp);
        const auto eq = field.find('=');
        // Compared decoded and case-blind: "%74oken" and "Token" are masked as well.
        std::string key;
        if (auto fields = decode_form(field.substr(0, eq)); !fields.empty()) {
            key = fields.front().key;
        }
        std::transform(key.begin(), key.end(), key.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        out += first ? "" : "&";
        first = false;
        if (eq != std::string_view::npos && (key == "token" || key == "authorization")) {
            out += field.substr(0, eq);
            out += "=***";
        } else {
            out += field;
        }
        if (amp == std::string_view::npos) {
            break;
        }
        query.remove_prefix(amp + 1);
    }
    return out;
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

std::string serialize(const Response& response, bool keep_alive, bool head_only,
                      std::string_view node) {
    std::string out;
    out.reserve(160 + response.body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(response.status);
    out += ' ';
    out += reason_phrase(response.status);
    out += "\r\nServer: herald\r\n";
    if (!node.empty()) {
        out += "X-Herald-Node: ";
        out += node;
        out += "\r\n";
    }
    if (!response.content_type.empty()) {
        out += "Content-Type: ";
        out += response.content_type;
        out += "\r\n";
    }
    for (const auto& [name, value] : response.headers) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    // 204 and 304 carry no body, and a 304's length would be the unsent representation's.
    if (response.status != 204 && response.status != 304 && !response.no_length) {
        out += "Content-Length: ";
        out += std::to_string(response.body.size());
        out += "\r\n";
    }
    out += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
    if (!head_only) {
        out += response.body;
    }
    return out;
}

} // namespace herald::http
