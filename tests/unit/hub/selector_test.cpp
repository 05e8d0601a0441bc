// Tests for topic selectors: exact topics, "*", URI templates, system topics and malformed
// templates (which are exact topics).
#include "hub/selector.hpp"

#include <gtest/gtest.h>

#include <string>

namespace herald::hub {
namespace {

bool match(std::string_view selector, std::string_view topic) {
    return Selector::parse(selector).matches(topic);
}

TEST(Selector, ExactMatchesOnlyTheSameString) {
    const auto sel = Selector::parse("TicketFoo");
    EXPECT_EQ(sel.kind(), Selector::Kind::exact);
    EXPECT_TRUE(sel.is_exact());
    EXPECT_EQ(sel.text(), "TicketFoo");
    EXPECT_TRUE(sel.matches("TicketFoo"));
    EXPECT_FALSE(sel.matches("ticketfoo"));
    EXPECT_FALSE(sel.matches("TicketFoo/"));
    EXPECT_FALSE(sel.matches("TicketFo"));
    EXPECT_FALSE(sel.matches(""));
}

TEST(Selector, ExactUrlAndEmpty) {
    EXPECT_TRUE(match("https://example.com/books/1", "https://example.com/books/1"));
    EXPECT_FALSE(match("https://example.com/books/1", "https://example.com/books/12"));
    EXPECT_TRUE(match("", ""));
    EXPECT_FALSE(match("", "a"));
}

TEST(Selector, StarMatchesEverythingButSystemTopics) {
    const auto sel = Selector::parse("*");
    EXPECT_EQ(sel.kind(), Selector::Kind::all);
    EXPECT_FALSE(sel.is_exact());
    EXPECT_EQ(sel.text(), "*");
    EXPECT_TRUE(sel.matches("a"));
    EXPECT_TRUE(sel.matches(""));
    EXPECT_TRUE(sel.matches("https://example.com/books/1"));
    EXPECT_TRUE(sel.matches("*"));
    EXPECT_TRUE(sel.matches("$sys"));
    EXPECT_TRUE(sel.matches("$system/x"));
    EXPECT_FALSE(sel.matches("$sys/connections"));
    EXPECT_FALSE(sel.matches("$sys/"));
}

TEST(Selector, StarInsideTextIsExact) {
    EXPECT_EQ(Selector::parse("**").kind(), Selector::Kind::exact);
    EXPECT_EQ(Selector::parse("books/*").kind(), Selector::Kind::exact);
    EXPECT_TRUE(match("books/*", "books/*"));
    EXPECT_FALSE(match("books/*", "books/1"));
}

TEST(Selector, SystemTopics) {
    EXPECT_TRUE(is_system_topic("$sys/connections"));
    EXPECT_TRUE(is_system_topic("$sys/"));
    EXPECT_FALSE(is_system_topic("$sys"));
    EXPECT_FALSE(is_system_topic("$SYS/connections"));
    EXPECT_FALSE(is_system_topic("x$sys/connections"));
    EXPECT_FALSE(is_system_topic(""));
}

TEST(Selector, ExactSystemTopicMatchesItself) {
    EXPECT_TRUE(match("$sys/connections", "$sys/connections"));
    EXPECT_FALSE(match("$sys/connections", "$sys/other"));
}

TEST(Selector, TemplateNeverMatchesSystemTopic) {
    EXPECT_FALSE(match("$sys/{name}", "$sys/connections"));
    EXPECT_FALSE(match("{scope}/connections", "$sys/connections"));
    EXPECT_TRUE(match("{scope}/connections", "sys/connections"));
}

TEST(Selector, TemplateOneVariableAtEnd) {
    const auto sel = Selector::parse("https://example.com/books/{id}");
    EXPECT_EQ(sel.kind(), Selector::Kind::uri_template);
    EXPECT_FALSE(sel.is_exact());
    EXPECT_EQ(sel.text(), "https://example.com/books/{id}");
    EXPECT_TRUE(sel.matches("https://example.com/books/1"));
    EXPECT_TRUE(sel.matches("https://example.com/books/war-and-peace"));
    EXPECT_FALSE(sel.matches("https://example.com/books/"));
    EXPECT_FALSE(sel.matches("https://example.com/books"));
    EXPECT_FALSE(sel.matches("https://example.com/books/1/reviews"));
    EXPECT_FALSE(sel.matches("https://example.com/authors/1"));
    EXPECT_FALSE(sel.matches("http://example.com/books/1"));
    EXPECT_FALSE(sel.matches("https://example.com/books/{id}/x"));
    // The template text itself is a topic the variable can take.
    EXPECT_TRUE(sel.matches("https://example.com/books/{id}"));
}

TEST(Selector, TemplateVariableAtStart) {
    EXPECT_TRUE(match("{tenant}/orders", "acme/orders"));
    EXPECT_FALSE(match("{tenant}/orders", "/orders"));
    EXPECT_FALSE(match("{tenant}/orders", "a/b/orders"));
    EXPECT_FALSE(match("{tenant}/orders", "acme/orders/1"));
    EXPECT_TRUE(match("{topic}", "anything"));
    EXPECT_FALSE(match("{topic}", "a/b"));
    EXPECT_FALSE(match("{topic}", ""));
}

TEST(Selector, TemplateVariableInMiddle) {
    const auto sel = Selector::parse("/users/{id}/notifications");
    EXPECT_TRUE(sel.matches("/users/42/notifications"));
    EXPECT_FALSE(sel.matches("/users//notifications"));
    EXPECT_FALSE(sel.matches("/users/4/2/notifications"));
    EXPECT_FALSE(sel.matches("/users/42/notifications/"));
    EXPECT_FALSE(sel.matches("/users/42/notification"));
    EXPECT_FALSE(sel.matches("users/42/notifications"));
}

TEST(Selector, TemplateLiteralTextAfterVariable) {
    const auto sel = Selector::parse("/books/{id}.json");
    EXPECT_TRUE(sel.matches("/books/1.json"));
    EXPECT_TRUE(sel.matches("/books/a.b.json"));
    EXPECT_TRUE(sel.matches("/books/x.json.json"));
    EXPECT_FALSE(sel.matches("/books/.json"));
    EXPECT_FALSE(sel.matches("/books/1.xml"));
    EXPECT_FALSE(sel.matches("/books/1.json/x"));
    EXPECT_FALSE(sel.matches("/books/a/b.json"));
}

TEST(Selector, TemplateLiteralTextBeforeVariable) {
    const auto sel = Selector::parse("/rooms/room-{n}");
    EXPECT_TRUE(sel.matches("/rooms/room-1"));
    EXPECT_TRUE(sel.matches("/rooms/room-room-1"));
    EXPECT_FALSE(sel.matches("/rooms/room-"));
    EXPECT_FALSE(sel.matches("/rooms/1"));
}

TEST(Selector, TemplateTwoVariables) {
    const auto sel = Selector::parse("/users/{user}/posts/{post}");
    EXPECT_TRUE(sel.matches("/users/ann/posts/7"));
    EXPECT_FALSE(sel.matches("/users/ann/posts/"));
    EXPECT_FALSE(sel.matches("/users//posts/7"));
    EXPECT_FALSE(sel.matches("/users/ann/comments/7"));
    EXPECT_FALSE(sel.matches("/users/ann/posts/7/8"));
}

TEST(Selector, TemplateTwoVariablesInOneSegment) {
    const auto sel = Selector::parse("/files/{name}.{ext}");
    EXPECT_TRUE(sel.matches("/files/a.b"));
    EXPECT_TRUE(sel.matches("/files/archive.tar.gz"));
    EXPECT_FALSE(sel.matches("/files/a."));
    EXPECT_FALSE(sel.matches("/files/.b"));
    EXPECT_FALSE(sel.matches("/files/ab"));

    const auto adjacent = Selector::parse("{a}{b}");
    EXPECT_EQ(adjacent.kind(), Selector::Kind::uri_template);
    EXPECT_TRUE(adjacent.matches("xy"));
    EXPECT_TRUE(adjacent.matches("xyz"));
    EXPECT_FALSE(adjacent.matches("x"));
    EXPECT_FALSE(adjacent.matches("x/y"));
}

TEST(Selector, TemplateThreeVariables) {
    const auto sel = Selector::parse("https://{host}/{section}/items/{id}-v2");
    EXPECT_TRUE(sel.matches("https://example.com/news/items/9-v2"));
    EXPECT_TRUE(sel.matches("https://h/s/items/9-v2-v2"));
    EXPECT_FALSE(sel.matches("https://example.com/news/items/-v2"));
    EXPECT_FALSE(sel.matches("https://example.com/news/items/9-v3"));
    EXPECT_FALSE(sel.matches("https://example.com/news/extra/items/9-v2"));
    EXPECT_FALSE(sel.matches("https:///news/items/9-v2"));
}

TEST(Selector, TemplateBacktracksWithinSegment) {
    EXPECT_TRUE(match("{a}ab", "aaab"));
    EXPECT_TRUE(match("{a}aab{b}b", "xaabaabyb"));
    EXPECT_FALSE(match("{a}aab{b}b", "xaabb"));
    EXPECT_TRUE(match("a{x}a{y}a", "aaaaa"));
    EXPECT_FALSE(match("a{x}a{y}a", "aaaa"));
}

TEST(Selector, VariableNamesFollowRfc6570) {
    EXPECT_EQ(Selector::parse("/b/{book_id}").kind(), Selector::Kind::uri_template);
    EXPECT_EQ(Selector::parse("/b/{Book2}").kind(), Selector::Kind::uri_template);
    EXPECT_EQ(Selector::parse("/b/{a.b}").kind(), Selector::Kind::uri_template);
    EXPECT_EQ(Selector::parse("/b/{%41x}").kind(), Selector::Kind::uri_template);
}

TEST(Selector, MalformedTemplatesAreExact) {
    for (const char* text : {"/books/{id", "/books/id}", "/books/{}", "/books/{{id}}", "/books/}{",
                             "{", "}", "{}", "/books/{id}}", "/books/{+path}", "/books/{#frag}",
                             "/books/{a b}", "/books/{a,b}", "/books/{a/b}", "/books/{.a}",
                             "/books/{a..b}", "/books/{%4}", "/books/{id:3}", "/books/{id*}"}) {
        const auto sel = Selector::parse(text);
        EXPECT_EQ(sel.kind(), Selector::Kind::exact) << text;
        EXPECT_TRUE(sel.matches(text)) << text;
        EXPECT_EQ(sel.text(), text);
    }
    EXPECT_FALSE(match("/books/{id", "/books/1"));
    EXPECT_FALSE(match("/books/{}", "/books/1"));
    EXPECT_FALSE(match("/books/{+path}", "/books/a/b"));
}

TEST(Selector, ParseDoesNotDependOnSource) {
    std::string text = "/books/{id}";
    const auto sel = Selector::parse(text);
    text = "changed";
    EXPECT_TRUE(sel.matches("/books/1"));
    const auto copy = sel;
    EXPECT_TRUE(copy.matches("/books/2"));
    EXPECT_TRUE(copy == sel);
}

} // namespace
} // namespace herald::hub
