// Tests for the JSON nesting bound: exact depths at and around the limit, brackets inside
// strings and escapes, invalid text, and inputs far deeper than any stack could recurse.
#include "base/json_depth.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

namespace herald::base {
namespace {

std::string arrays(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

std::string objects(std::size_t depth) {
    std::string out;
    for (std::size_t i = 0; i < depth; ++i) {
        out += "{\"k\":";
    }
    out += "1";
    out += std::string(depth, '}');
    return out;
}

TEST(JsonDepth, ScalarsAreDepthZero) {
    for (const char* text : {"", "1", "\"x\"", "true", "null", "  "}) {
        EXPECT_TRUE(json_depth_within(text, 0)) << text;
    }
}

TEST(JsonDepth, ExactlyTheLimitIsWithinOneMoreIsNot) {
    EXPECT_EQ(kMaxJsonDepth, 64U);
    EXPECT_TRUE(json_depth_within(arrays(64)));
    EXPECT_FALSE(json_depth_within(arrays(65)));
    EXPECT_TRUE(json_depth_within(objects(64)));
    EXPECT_FALSE(json_depth_within(objects(65)));
    EXPECT_TRUE(json_depth_within(arrays(3), 3));
    EXPECT_FALSE(json_depth_within(arrays(3), 2));
}

TEST(JsonDepth, MixedArraysAndObjects) {
    EXPECT_TRUE(json_depth_within(R"({"a":[{"b":[1]}]})", 4));
    EXPECT_FALSE(json_depth_within(R"({"a":[{"b":[1]}]})", 3));
}

TEST(JsonDepth, SiblingsDoNotAddUp) {
    std::string wide = "[";
    for (int i = 0; i < 1000; ++i) {
        wide += arrays(10) + ",";
    }
    wide += "1]";
    EXPECT_TRUE(json_depth_within(wide, 11));
    EXPECT_FALSE(json_depth_within(wide, 10));
}

TEST(JsonDepth, BracketsInStringsDoNotCount) {
    EXPECT_TRUE(json_depth_within(R"(["[[[[{{{{"])", 1));
    // An escaped quote does not end the string; an escaped backslash does not escape it.
    EXPECT_TRUE(json_depth_within(R"(["\"[[[[", 1])", 1));
    EXPECT_FALSE(json_depth_within(R"(["\\", [[1]]])", 2));
    EXPECT_TRUE(json_depth_within(R"(["\u005b\u005b"])", 1));
}

TEST(JsonDepth, AgreesWithTheParserOnValidJson) {
    const std::string samples[] = {
        "[]",       "{}",       R"({"a":{"b":{"c":[]}}})", R"([1,[2,[3,[4]]],{"x":"]]]"}])",
        arrays(64), objects(63)};
    for (const auto& text : samples) {
        const auto doc = nlohmann::json::parse(text);
        // The deepest path, by walking the value without recursion.
        std::size_t deepest = 0;
        std::vector<std::pair<const nlohmann::json*, std::size_t>> todo{{&doc, 0}};
        while (!todo.empty()) {
            auto [v, d] = todo.back();
            todo.pop_back();
            if (v->is_structured()) {
                deepest = std::max(deepest, d + 1);
                for (const auto& child : *v) {
                    todo.emplace_back(&child, d + 1);
                }
            }
        }
        EXPECT_TRUE(json_depth_within(text, deepest)) << text;
        EXPECT_FALSE(json_depth_within(text, deepest - 1)) << text;
    }
}

TEST(JsonDepth, FarTooDeepIsRefusedWithoutRecursion) {
    EXPECT_FALSE(json_depth_within(arrays(100000)));
    EXPECT_FALSE(json_depth_within(std::string(1000000, '[')));
    EXPECT_FALSE(json_depth_within(std::string(1000000, '{')));
}

TEST(JsonDepth, UnbalancedClosersDoNotGoNegative) {
    EXPECT_TRUE(json_depth_within("]]]]][[", 2));
    EXPECT_FALSE(json_depth_within("]]]]][[[", 2));
}

} // namespace
} // namespace herald::base
