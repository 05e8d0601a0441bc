// Reading a publish body, form or JSON, and checking the event's own fields.
#include "http/publish_body.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <nlohmann/json.hpp>

#include "base/json_depth.hpp"
#include "http/form.hpp"
#include "sse/frame.hpp"

namespace herald::http {

namespace {

// `application/JSON; charset=utf-8` -> `application/json`
std::string media_type(std::string_view content_type) {
    std::string out(content_type.substr(0, content_type.find(';')));
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) {
        out.pop_back();
    }
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool truthy(std::string_view v) {
    return !(v == "false" || v == "0" || v == "off" || v == "no");
}

std::optional<std::string> parse_form(std::string_view body, PublishFields& f) {
    for (auto& param : decode_form(body)) {
        const std::string& key = param.key;
        if (key == "topic") {
            f.topics.push_back(std::move(param.value));
        } else if (key == "data") {
            if (f.data) {
                return "the field data must be given once";
            }
            f.data = std::move(param.value);
        } else if (key == "id") {
            f.id = std::move(param.value);
        } else if (key == "event" || key == "type") {
            f.type = std::move(param.value);
        } else if (key == "retry") {
            f.retry = std::move(param.value);
        } else if (key == "private") {
            f.is_private = !param.has_value || truthy(param.value);
        }
        // Other fields are ignored, as HTML forms send submit buttons and the like.
    }
    return std::nullopt;
}

std::optional<std::string> parse_json(std::string_view body, PublishFields& f) {
    // Checked before parsing: dump() below recurses once per level of `data`.
    if (!base::json_depth_within(body)) {
        return "the JSON body nests arrays and objects more than " +
               std::to_string(base::kMaxJsonDepth) + " levels deep (the body's own object is one)";
    }
    // nlohmann's parser takes a NUL for the end of the text and would read `{...}\0junk` as
    // the object before it; valid JSON never holds a raw NUL.
    if (body.find('\0') != std::string_view::npos) {
        return "the body is not valid JSON";
    }
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded()) {
        return "the body is not valid JSON";
    }
    if (!doc.is_object()) {
        return "the JSON body must be an object";
    }
    for (auto& [key, value] : doc.items()) {
        if (key == "topic" || key == "topics") {
            if (value.is_string()) {
                f.topics.push_back(value.get<std::string>());
            } else if (value.is_array()) {
                for (auto& t : value) {
                    if (!t.is_string()) {
                        return "topic must be a string or an array of strings";
                    }
                    f.topics.push_back(t.get<std::string>());
                }
            } else {
                return "topic must be a string or an array of strings";
            }
        } else if (key == "data") {
            f.data = value.is_string() ? value.get<std::string>() : value.dump();
        } else if (key == "id" || key == "event" || key == "type") {
            if (!value.is_string()) {
                return key + " must be a string";
            }
            (key == "id" ? f.id : f.type) = value.get<std::string>();
        } else if (key == "retry") {
            if (!value.is_number_unsigned()) {
                return "retry must be a non-negative integer (milliseconds)";
            }
            f.retry = std::to_string(value.get<std::uint64_t>());
        } else if (key == "private") {
            if (!value.is_boolean()) {
                return "private must be true or false";
            }
            f.is_private = value.get<bool>();
        }
    }
    return std::nullopt;
}

} // namespace

std::variant<PublishFields, PublishBodyError> read_publish_body(std::string_view content_type,
                                                                std::string_view body) {
    PublishFields f;
    const std::string type = media_type(content_type);
    std::optional<std::string> problem;
    if (type == "application/x-www-form-urlencoded" || type.empty()) {
        problem = parse_form(body, f);
    } else if (type == "application/json") {
        problem = parse_json(body, f);
    } else {
        return PublishBodyError{net::Reject::unsupported_media_type,
                                "unsupported Content-Type " + std::string(content_type) +
                                    ": use application/x-www-form-urlencoded or application/json"};
    }
    if (problem) {
        return PublishBodyError{net::Reject::bad_request, std::move(*problem)};
    }
    return f;
}

std::optional<std::string> check_event_fields(PublishFields& f) {
    if (!f.data) {
        return "missing data";
    }
    if (!sse::is_valid_utf8(*f.data)) {
        return "data must be valid UTF-8";
    }
    if (!f.id.empty() && (!sse::is_valid_field(f.id) || !sse::is_valid_utf8(f.id) ||
                          f.id.size() > kMaxTopicBytes || f.id == "earliest")) {
        return "id must be valid UTF-8 of at most 1024 bytes without CR, LF or NUL, and not "
               "\"earliest\"";
    }
    if (!sse::is_valid_field(f.type) || !sse::is_valid_utf8(f.type) ||
        f.type.size() > kMaxTopicBytes) {
        return "event must be valid UTF-8 of at most 1024 bytes without CR, LF or NUL";
    }
    if (f.retry) {
        std::uint32_t ms = 0;
        const auto* end = f.retry->data() + f.retry->size();
        auto [ptr, ec] = std::from_chars(f.retry->data(), end, ms);
        if (f.retry->empty() || ec != std::errc() || ptr != end || ms > kMaxRetryMs) {
            return "retry must be an integer number of milliseconds up to 86400000";
        }
        f.retry_ms = ms;
    }
    return std::nullopt;
}

} // namespace herald::http
