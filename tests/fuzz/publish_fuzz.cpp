// Publish bodies (http/publish_body, http/form, base/json_depth). Form and JSON bodies made
// from fields the fuzzer chooses must read back as those fields; arbitrary bodies must be
// refused or read without harm, a JSON body nested past the bound is always refused, and the
// bracket scan of json_depth_within() agrees with the depth of every JSON text that parses.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/json_depth.hpp"
#include "fuzz_support.hpp"
#include "http/form.hpp"
#include "http/publish_body.hpp"
#include "sse/frame.hpp"

namespace {

using herald::http::FormField;
using herald::http::PublishBodyError;
using herald::http::PublishFields;
using nlohmann::json;

bool same(const FormField& a, const FormField& b) {
    return a.key == b.key && a.value == b.value && a.has_value == b.has_value;
}

// `text` form-encoded: unreserved characters as they are, a space as '+' or "%20" (the
// fuzzer picks), everything else as %XX in either case of hex digit.
std::string form_encode(std::string_view text, FuzzedDataProvider& data) {
    static constexpr char kUpper[] = "0123456789ABCDEF";
    static constexpr char kLower[] = "0123456789abcdef";
    std::string out;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out.push_back(c);
        } else if (c == ' ' && data.ConsumeBool()) {
            out.push_back('+');
        } else {
            const char* digits = data.ConsumeBool() ? kUpper : kLower;
            out.push_back('%');
            out.push_back(digits[u >> 4]);
            out.push_back(digits[u & 15]);
        }
    }
    return out;
}

bool truthy(std::string_view v) {
    return v != "false" && v != "0" && v != "off" && v != "no";
}

void form_round_trip(FuzzedDataProvider& data) {
    static const char* const kKeys[] = {"topic", "data",  "id",      "event",
                                        "type",  "retry", "private", "submit"};
    std::vector<FormField> fields;
    std::string body;
    const auto count = data.ConsumeIntegralInRange<int>(0, 8);
    for (int i = 0; i < count; ++i) {
        FormField f;
        f.key = data.ConsumeBool() ? std::string(data.PickValueInArray(kKeys))
                                   : data.ConsumeRandomLengthString(16);
        f.has_value = data.ConsumeBool();
        if (f.has_value) {
            f.value = data.ConsumeRandomLengthString(64);
        }
        std::string pair = form_encode(f.key, data);
        if (f.has_value) {
            pair += '=' + form_encode(f.value, data);
        }
        body += (i > 0 ? "&" : "") + pair;
        if (!pair.empty()) { // an empty pair ("a&&b") is no field
            fields.push_back(std::move(f));
        }
    }
    const auto decoded = herald::http::decode_form(body);
    HERALD_FUZZ_CHECK(decoded.size() == fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) {
        HERALD_FUZZ_CHECK(same(decoded[i], fields[i]));
    }

    // The publish those fields make, as the form rules read it.
    PublishFields want;
    bool twice = false;
    for (const FormField& f : fields) {
        if (f.key == "topic") {
            want.topics.push_back(f.value);
        } else if (f.key == "data") {
            twice = twice || want.data.has_value();
            want.data = f.value;
        } else if (f.key == "id") {
            want.id = f.value;
        } else if (f.key == "event" || f.key == "type") {
            want.type = f.value;
        } else if (f.key == "retry") {
            want.retry = f.value;
        } else if (f.key == "private") {
            want.is_private = !f.has_value || truthy(f.value);
        }
    }
    const auto got = herald::http::read_publish_body(
        data.ConsumeBool() ? "application/x-www-form-urlencoded" : "", body);
    if (twice) {
        HERALD_FUZZ_CHECK(std::holds_alternative<PublishBodyError>(got));
    } else {
        HERALD_FUZZ_CHECK(std::holds_alternative<PublishFields>(got) &&
                          std::get<PublishFields>(got) == want);
    }
}

std::string utf8_string(FuzzedDataProvider& data, std::size_t max) {
    std::string s = data.ConsumeRandomLengthString(max);
    return herald::sse::is_valid_utf8(s) ? s : std::string("x");
}

// A value `depth` arrays and objects deep (0: a scalar), the fuzzer choosing each level.
json nested(FuzzedDataProvider& data, int depth) {
    json value =
        data.ConsumeBool() ? json(utf8_string(data, 8)) : json(data.ConsumeIntegral<int>());
    for (int i = 0; i < depth; ++i) {
        if (data.ConsumeBool()) {
            value = json::array({std::move(value)});
        } else {
            value = json::object({{utf8_string(data, 4), std::move(value)}});
        }
    }
    return value;
}

void json_round_trip(FuzzedDataProvider& data) {
    PublishFields want;
    json doc = json::object();
    const auto topics = data.ConsumeIntegralInRange<int>(0, 3);
    if (topics == 1 && data.ConsumeBool()) {
        want.topics.push_back(utf8_string(data, 32));
        doc["topic"] = want.topics.front();
    } else {
        doc["topics"] = json::array();
        for (int i = 0; i < topics; ++i) {
            want.topics.push_back(utf8_string(data, 32));
            doc["topics"].push_back(want.topics.back());
        }
    }
    const int depth = data.ConsumeIntegralInRange<int>(0, 70);
    if (data.ConsumeBool()) {
        want.data = utf8_string(data, 128);
        doc["data"] = *want.data;
    } else {
        // A string, even at depth 0, is delivered as it is; any other value as its text.
        doc["data"] = nested(data, depth);
        want.data = doc["data"].is_string() ? doc["data"].get<std::string>() : doc["data"].dump();
    }
    if (data.ConsumeBool()) {
        want.id = utf8_string(data, 32);
        doc["id"] = want.id;
    }
    if (data.ConsumeBool()) {
        want.type = utf8_string(data, 32);
        doc[data.ConsumeBool() ? "event" : "type"] = want.type;
    }
    if (data.ConsumeBool()) {
        const auto retry = data.ConsumeIntegral<std::uint64_t>();
        want.retry = std::to_string(retry);
        doc["retry"] = retry;
    }
    if (data.ConsumeBool()) {
        want.is_private = data.ConsumeBool();
        doc["private"] = want.is_private;
    }
    const std::string body = doc.dump(data.ConsumeBool() ? 2 : -1);
    const auto got = herald::http::read_publish_body("Application/JSON; charset=utf-8", body);
    // The body's object is one level, `data` the rest.
    const bool too_deep = !doc["data"].is_string() && depth + 1 > 64;
    if (too_deep) {
        HERALD_FUZZ_CHECK(std::holds_alternative<PublishBodyError>(got));
        return;
    }
    HERALD_FUZZ_CHECK(std::holds_alternative<PublishFields>(got));
    HERALD_FUZZ_CHECK(std::get<PublishFields>(got) == want);
}

// The nesting of arrays and objects in a JSON text (a scalar is 0), or nothing when it does
// not parse. Read by SAX events, not from the parsed value, where a repeated key keeps only
// its last value and may hide the deepest part of the text.
std::optional<std::size_t> depth_of(std::string_view text) {
    struct Depth : json::json_sax_t {
        std::size_t now = 0, deepest = 0;
        bool open() {
            deepest = std::max(deepest, ++now);
            return true;
        }
        bool close() {
            --now;
            return true;
        }
        bool null() override { return true; }
        bool boolean(bool) override { return true; }
        bool number_integer(number_integer_t) override { return true; }
        bool number_unsigned(number_unsigned_t) override { return true; }
        bool number_float(number_float_t, const string_t&) override { return true; }
        bool string(string_t&) override { return true; }
        bool binary(binary_t&) override { return true; }
        bool start_object(std::size_t) override { return open(); }
        bool key(string_t&) override { return true; }
        bool end_object() override { return close(); }
        bool start_array(std::size_t) override { return open(); }
        bool end_array() override { return close(); }
        bool parse_error(std::size_t, const std::string&,
                         const nlohmann::detail::exception&) override {
            return false;
        }
    } sax;
    if (!json::sax_parse(text, &sax)) {
        return std::nullopt;
    }
    return sax.deepest;
}

void raw(FuzzedDataProvider& data) {
    static const char* const kTypes[] = {"application/json", "application/x-www-form-urlencoded",
                                         "", "text/plain", "APPLICATION/JSON ; x=y"};
    const std::string type = data.PickValueInArray(kTypes);
    const std::string body = data.ConsumeRemainingBytesAsString();

    auto got = herald::http::read_publish_body(type, body);
    const bool json_body =
        type.find("JSON") != std::string::npos || type.find("json") != std::string::npos;
    if (json_body && !herald::base::json_depth_within(body)) {
        HERALD_FUZZ_CHECK(std::holds_alternative<PublishBodyError>(got));
    }
    if (json_body && body.find('\0') != std::string::npos) {
        // A parser that stops at the NUL must not be given the chance.
        HERALD_FUZZ_CHECK(std::holds_alternative<PublishBodyError>(got));
    } else if (json_body && herald::base::json_depth_within(body)) {
        // Parsed only within the bound, so that the parser itself is never the victim.
        if (const auto depth = depth_of(body)) {
            HERALD_FUZZ_CHECK(herald::base::json_depth_within(body, *depth));
            HERALD_FUZZ_CHECK(*depth == 0 || !herald::base::json_depth_within(body, *depth - 1));
        }
    }
    if (auto* fields = std::get_if<PublishFields>(&got)) {
        if (!herald::http::check_event_fields(*fields)) {
            HERALD_FUZZ_CHECK(fields->data && herald::sse::is_valid_utf8(*fields->data));
            HERALD_FUZZ_CHECK(herald::sse::is_valid_field(fields->id) &&
                              herald::sse::is_valid_field(fields->type));
            HERALD_FUZZ_CHECK(fields->id.size() <= herald::http::kMaxTopicBytes &&
                              fields->type.size() <= herald::http::kMaxTopicBytes);
            HERALD_FUZZ_CHECK(fields->retry.has_value() == fields->retry_ms.has_value());
            HERALD_FUZZ_CHECK(!fields->retry_ms || *fields->retry_ms <= herald::http::kMaxRetryMs);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    FuzzedDataProvider data(bytes, size);
    switch (data.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: form_round_trip(data); break;
    case 1: json_round_trip(data); break;
    default: raw(data); break;
    }
    return 0;
}
