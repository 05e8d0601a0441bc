// Tests for topic selectors: exact topics, "*", URI templates, system topics and malformed
// templates (which are exact topics); the template matcher against a reference on
// random inputs, and its work counted in steps on adversarial ones (linear, never timed).
#include "hub/selector.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

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

TEST(Selector, CountsExpressions) {
    EXPECT_EQ(Selector::parse("a").expressions(), 0U);
    EXPECT_EQ(Selector::parse("*").expressions(), 0U);
    EXPECT_EQ(Selector::parse("/books/{+path}/{id}").expressions(), 0U); // exact
    EXPECT_EQ(Selector::parse("/books/{id}").expressions(), 1U);
    EXPECT_EQ(Selector::parse("{a}{b}/x{c}y/{d}").expressions(), 4U);
}

TEST(Selector, TemplateAdversarialShapes) {
    // Shapes that make a backtracking glob matcher quadratic, answered right.
    std::string tmpl = "{a}";
    for (int i = 0; i < 31; ++i) {
        tmpl += "x{v" + std::to_string(i) + "}";
    }
    EXPECT_FALSE(match(tmpl + "y", std::string(1024, 'x')));
    EXPECT_TRUE(match(tmpl + "y", std::string(1023, 'x') + "y"));
    EXPECT_FALSE(match(tmpl + "y", std::string(62, 'x') + "y")); // 63 characters before y
    EXPECT_TRUE(match(tmpl + "y", std::string(63, 'x') + "y"));
    EXPECT_TRUE(match(tmpl, std::string(63, 'x')));
    EXPECT_FALSE(match(tmpl, std::string(62, 'x')));
    // Pieces with self-overlap, where a naive search would restart.
    EXPECT_TRUE(match("{a}aaab{b}", "aaaaaaaaaaaabx"));
    EXPECT_FALSE(match("{a}aaab{b}", "aaaaaaaaaaaaab"));
    EXPECT_TRUE(match("{a}abab{b}abac{c}", "xabababababxabacz"));
    EXPECT_TRUE(match("{a}abab{b}abac{c}", "xababababacz"));
    EXPECT_FALSE(match("{a}abab{b}abac{c}", "xabababacz"));
    EXPECT_TRUE(match("{a}aa{b}aa{c}", "xaaxaax"));
    EXPECT_FALSE(match("{a}aa{b}aa{c}", "xaaaax"));
    // Head and tail must not overlap the pieces between them.
    EXPECT_FALSE(match("ab{x}ba", "aba"));
    EXPECT_TRUE(match("ab{x}ba", "abzba"));
    EXPECT_FALSE(match("a{x}b{y}a", "aba"));
}

// The reference: a plain dynamic program over (template position, topic position), each
// {var} one or more characters other than '/'. Quadratic, and obviously right.
bool reference_matches(const std::string& tmpl, const std::string& topic) {
    std::vector<char> tokens; // a literal character, or '\0' for a {var}
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] == '{') {
            tokens.push_back('\0');
            i = tmpl.find('}', i);
        } else {
            tokens.push_back(tmpl[i]);
        }
    }
    const std::size_t n = topic.size();
    // can[j]: the tokens so far match topic[0, j).
    std::vector<bool> can(n + 1, false);
    can[0] = true;
    for (const char token : tokens) {
        std::vector<bool> next(n + 1, false);
        for (std::size_t j = 0; j <= n; ++j) {
            if (!can[j]) {
                continue;
            }
            if (token != '\0') {
                if (j < n && topic[j] == token) {
                    next[j + 1] = true;
                }
                continue;
            }
            for (std::size_t k = j; k < n && topic[k] != '/'; ++k) {
                next[k + 1] = true;
            }
        }
        can = std::move(next);
    }
    return can[n];
}

std::string random_text(std::mt19937& rng, std::string_view alphabet, std::size_t max_len) {
    std::string out(std::uniform_int_distribution<std::size_t>(0, max_len)(rng), ' ');
    for (char& c : out) {
        c = alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    }
    return out;
}

std::string random_template(std::mt19937& rng) {
    std::string out;
    const auto parts = std::uniform_int_distribution<int>(1, 8)(rng);
    for (int i = 0; i < parts; ++i) {
        switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
        case 0: out += "{v}"; break;
        case 1: out += "/"; break;
        default: out += random_text(rng, "ab", 3); break;
        }
    }
    return out.find('{') == std::string::npos ? out + "{v}" : out;
}

TEST(Selector, TemplateAgreesWithAReferenceOnRandomInputs) {
    std::mt19937 rng(20240611);
    int matched = 0;
    for (int round = 0; round < 3000; ++round) {
        const std::string tmpl = random_template(rng);
        const auto sel = Selector::parse(tmpl);
        ASSERT_EQ(sel.kind(), Selector::Kind::uri_template) << tmpl;
        for (int t = 0; t < 20; ++t) {
            const std::string topic = random_text(rng, "aab/", 12);
            const bool want = reference_matches(tmpl, topic);
            ASSERT_EQ(sel.matches(topic), want) << tmpl << " on " << topic;
            std::size_t steps = 0;
            ASSERT_EQ(sel.matches_counting(topic, steps), want) << tmpl << " on " << topic;
            matched += want ? 1 : 0;
        }
    }
    EXPECT_GT(matched, 1000); // the inputs exercise matches, not only refusals
}

// Steps are bounded by a small multiple of the input: linear, whatever its shape.
void expect_linear(const std::string& tmpl, const std::string& topic) {
    const auto sel = Selector::parse(tmpl);
    ASSERT_EQ(sel.kind(), Selector::Kind::uri_template) << tmpl;
    std::size_t steps = 0;
    static_cast<void>(sel.matches_counting(topic, steps));
    EXPECT_LE(steps, 3 * (topic.size() + tmpl.size()) + 16)
        << tmpl.substr(0, 60) << " on " << topic.size() << " bytes";
}

TEST(Selector, TemplateWorkIsLinearOnAdversarialInputs) {
    std::string near = "https://example.com/{a}";
    std::string adjacent = "https://example.com/";
    std::string slashes;
    for (int i = 0; i < 32; ++i) {
        near += "x{v" + std::to_string(i) + "}";
        adjacent += "{v" + std::to_string(i) + "}";
        slashes += "{v" + std::to_string(i) + "}/";
    }
    for (const std::size_t n : {64U, 256U, 1024U, 16384U}) {
        const std::string xs(n, 'x');
        const std::string host = "https://example.com/";
        expect_linear(near + "y", host + xs);
        expect_linear(near + "y", host + xs + "y");
        expect_linear(near, host + xs);
        expect_linear(adjacent + "z", host + xs);
        expect_linear("{a}" + std::string(200, 'a') + "b{b}", std::string(n, 'a'));
        expect_linear("{a}abab{b}ababac{c}", std::string(n, 'a') + "bab");
        expect_linear(slashes + "x", std::string(n, '/'));
        std::string path;
        for (std::size_t i = 0; i < n / 2; ++i) {
            path += "x/";
        }
        expect_linear(slashes + "x", path);
    }
}

TEST(Selector, TemplateWorkDoublesWithTheTopic) {
    // The same shape on a topic twice as long takes at most about twice the steps.
    std::string tmpl = "{a}";
    for (int i = 0; i < 31; ++i) {
        tmpl += "x{v" + std::to_string(i) + "}";
    }
    tmpl += "y";
    const auto sel = Selector::parse(tmpl);
    std::size_t previous = 0;
    for (std::size_t n = 512; n <= 65536; n *= 2) {
        std::size_t steps = 0;
        EXPECT_FALSE(sel.matches_counting(std::string(n, 'x'), steps));
        if (previous > 0) {
            EXPECT_LE(steps, 2 * previous + 64) << n;
        }
        previous = steps;
    }
}

} // namespace
} // namespace herald::hub
