// The record format: length-prefixed fields, cheap to write in Lua and to read here.
#include "store/redis/record.hpp"

#include <charconv>

#include "sse/frame.hpp"

namespace herald::store::redis {

namespace {

void put(std::string& out, std::string_view field) {
    out += std::to_string(field.size());
    out += ':';
    out += field;
}

// Reads one field off the front of `in`.
std::optional<std::string_view> take(std::string_view& in) {
    const auto colon = in.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 20) {
        return std::nullopt;
    }
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(in.data(), in.data() + colon, n);
    if (ec != std::errc() || p != in.data() + colon || n > in.size() - colon - 1) {
        return std::nullopt;
    }
    std::string_view field = in.substr(colon + 1, n);
    in.remove_prefix(colon + 1 + n);
    return field;
}

template <typename T> std::optional<T> number(std::optional<std::string_view> field) {
    T v{};
    if (!field || field->empty()) {
        return std::nullopt;
    }
    auto [p, ec] = std::from_chars(field->data(), field->data() + field->size(), v);
    if (ec != std::errc() || p != field->data() + field->size()) {
        return std::nullopt;
    }
    return v;
}

} // namespace

std::string encode_body(const log::NewEvent& event) {
    std::string out;
    out.reserve(event.data.size() + event.type.size() + 32 + 16 * event.topics.size());
    put(out, event.type);
    put(out, event.data);
    put(out, event.is_private ? "p" : "");
    put(out, event.retry_ms ? std::to_string(*event.retry_ms) : "");
    for (const auto& topic : event.topics) {
        put(out, topic);
    }
    return out;
}

std::size_t footprint_without_id(const log::NewEvent& event) {
    // The frame with a one-character id, less that character: the frame's size without the
    // id's bytes but with its `id: ` line, as every stored event has one.
    std::string frame;
    sse::encode_event(frame, "0", event.type, event.data, event.retry_ms);
    return sizeof(log::Event) + event.type.size() + event.data.size() + frame.size() - 1;
}

std::optional<RecordHead> read_head(std::string_view head) {
    auto position = number<std::uint64_t>(take(head));
    auto previous = number<std::uint64_t>(take(head));
    auto capped = number<std::uint64_t>(take(head));
    if (!position || !previous || !capped) {
        return std::nullopt;
    }
    return RecordHead{*position, *previous, *capped};
}

std::optional<Record> next_record(std::string_view& message) {
    auto head = take(message);
    auto body = head ? take(message) : std::nullopt;
    if (!body) {
        return std::nullopt;
    }
    return Record{*head, *body};
}

log::EventPtr decode(std::string_view head, std::string_view body) {
    auto position = number<std::uint64_t>(take(head));
    auto previous = number<std::uint64_t>(take(head));
    auto capped = number<std::uint64_t>(take(head));
    auto published_ms = number<std::int64_t>(take(head));
    auto id = take(head);
    if (!position || !previous || !capped || !published_ms || !id || !head.empty()) {
        return nullptr;
    }
    auto type = take(body);
    auto data = take(body);
    auto flags = take(body);
    auto retry = take(body);
    if (!type || !data || !flags || !retry) {
        return nullptr;
    }
    log::NewEvent ev;
    ev.type = std::string(*type);
    ev.data = std::string(*data);
    ev.is_private = *flags == "p";
    if (!retry->empty()) {
        auto ms = number<std::uint32_t>(retry);
        if (!ms) {
            return nullptr;
        }
        ev.retry_ms = *ms;
    }
    while (!body.empty()) {
        auto topic = take(body);
        if (!topic) {
            return nullptr;
        }
        ev.topics.emplace_back(*topic);
    }
    return log::make_event(std::move(ev), *position, std::string(*id), *published_ms);
}

} // namespace herald::store::redis
