// Tests for reading publish bodies apart from the hub: form and JSON fields, the media
// types, and the JSON texts refused before or by the parser.
#include "http/publish_body.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace herald::http {
namespace {

PublishFields read(std::string_view type, std::string_view body) {
    auto got = read_publish_body(type, body);
    if (auto* error = std::get_if<PublishBodyError>(&got)) {
        ADD_FAILURE() << "refused: " << error->message;
        return {};
    }
    return std::get<PublishFields>(got);
}

PublishBodyError refused(std::string_view type, std::string_view body) {
    auto got = read_publish_body(type, body);
    if (auto* error = std::get_if<PublishBodyError>(&got)) {
        return *error;
    }
    ADD_FAILURE() << "accepted: " << body;
    return {};
}

TEST(PublishBody, FormAndJsonGiveTheSameFields) {
    PublishFields want;
    want.topics = {"a", "b c"};
    want.data = "hello world";
    want.id = "7";
    want.type = "note";
    want.retry = "1500";
    want.is_private = true;
    EXPECT_EQ(read("", "topic=a&topic=b+c&data=hello%20world&id=7&event=note&retry=1500&private"),
              want);
    EXPECT_EQ(read("application/json; charset=utf-8",
                   R"({"topics":["a","b c"],"data":"hello world","id":"7","type":"note",)"
                   R"("retry":1500,"private":true})"),
              want);
}

TEST(PublishBody, OtherMediaTypesAreUnsupported) {
    EXPECT_EQ(refused("text/plain", "data=x").reason, net::Reject::unsupported_media_type);
}

TEST(PublishBody, JsonWithANulIsNotValidJson) {
    // nlohmann's parser stops at a NUL and would accept the object before it; valid JSON
    // never holds a raw NUL, so the whole body is refused.
    const std::string body = std::string(R"({"topic":"a","data":"x"})") + '\0' + "junk";
    const auto error = refused("application/json", body);
    EXPECT_EQ(error.reason, net::Reject::bad_request);
    EXPECT_EQ(error.message, "the body is not valid JSON");
    EXPECT_EQ(
        refused("application/json", std::string(R"({"topic":"a","data":"x"})") + '\0').message,
        "the body is not valid JSON");
}

TEST(PublishBody, JsonNestedPastTheBoundIsRefusedBeforeParsing) {
    const std::string deep =
        R"({"topic":"a","data":)" + std::string(64, '[') + std::string(64, ']') + "}";
    EXPECT_EQ(refused("application/json", deep).reason, net::Reject::bad_request);
}

TEST(PublishBody, EventFields) {
    PublishFields f = read("", "topic=a&data=x&retry=86400000");
    EXPECT_EQ(check_event_fields(f), std::nullopt);
    EXPECT_EQ(f.retry_ms, 86400000U);
    for (const char* body :
         {"topic=a", "topic=a&data=%FF", "topic=a&data=x&id=earliest", "topic=a&data=x&event=a%0Ab",
          "topic=a&data=x&retry=86400001", "topic=a&data=x&retry=1x"}) {
        PublishFields g = read("", body);
        EXPECT_NE(check_event_fields(g), std::nullopt) << body;
    }
}

} // namespace
} // namespace herald::http
