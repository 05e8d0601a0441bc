// Topic selectors (hub/selector): a template and topics the fuzzer chooses. Every answer of
// the single-pass matcher is held to a plain dynamic-programming reading of RFC 6570 level
// 1 written here, its work to the linear bound the unit tests use, and a topic built by
// filling the template's variables must match it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "hub/selector.hpp"

namespace {

using herald::hub::Selector;

// One piece of a template: a literal character, or a variable (one or more characters,
// no '/').
struct Token {
    bool variable = false;
    char c = 0;
};

bool alnum_or_underscore(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 6570: varname = varchar *( ["."] varchar ); varchar = ALPHA / DIGIT / "_" / "%" HEX HEX.
// Read as a sequence of varchars with single dots between them.
bool varname(std::string_view s) {
    bool need_varchar = true; // at the start and after a dot
    std::size_t i = 0;
    while (i < s.size()) {
        if (alnum_or_underscore(s[i])) {
            ++i;
        } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) && hex(s[i + 2])) {
            i += 3;
        } else if (s[i] == '.' && !need_varchar) {
            ++i;
            need_varchar = true;
            continue;
        } else {
            return false;
        }
        need_varchar = false;
    }
    return !need_varchar;
}

// The template's tokens, or nothing when the text is an exact topic.
std::optional<std::vector<Token>> tokens_of(std::string_view text) {
    if (text.find_first_of("{}") == std::string_view::npos) {
        return std::nullopt;
    }
    std::vector<Token> tokens;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '}') {
            return std::nullopt;
        }
        if (text[i] != '{') {
            tokens.push_back(Token{false, text[i]});
            continue;
        }
        const auto close = text.find('}', i);
        if (close == std::string_view::npos || !varname(text.substr(i + 1, close - i - 1))) {
            return std::nullopt;
        }
        tokens.push_back(Token{true, 0});
        i = close;
    }
    return tokens;
}

// Whether `tokens` match all of `topic`: match[i][j] for tokens[i..] against topic[j..].
bool reference_match(const std::vector<Token>& tokens, std::string_view topic) {
    const std::size_t n = tokens.size();
    const std::size_t m = topic.size();
    std::vector<std::vector<char>> match(n + 1, std::vector<char>(m + 1, 0));
    match[n][m] = 1;
    for (std::size_t i = n; i-- > 0;) {
        for (std::size_t j = m + 1; j-- > 0;) {
            if (j == m) {
                continue; // every token needs at least one character
            }
            if (!tokens[i].variable) {
                match[i][j] = tokens[i].c == topic[j] && match[i + 1][j + 1];
            } else {
                // The variable takes topic[j], then ends or goes on.
                match[i][j] = topic[j] != '/' && (match[i + 1][j + 1] || match[i][j + 1]);
            }
        }
    }
    return match[0][0] != 0;
}

bool system_topic(std::string_view topic) {
    return topic.substr(0, 5) == "$sys/";
}

void check(const Selector& sel, const std::optional<std::vector<Token>>& tokens,
           std::string_view text, std::string_view topic) {
    bool want = false;
    if (text == "*") {
        want = !system_topic(topic);
    } else if (!tokens) {
        want = topic == text;
    } else {
        want = !system_topic(topic) && reference_match(*tokens, topic);
    }
    HERALD_FUZZ_CHECK(sel.matches(topic) == want);
    std::size_t steps = 0;
    HERALD_FUZZ_CHECK(sel.matches_counting(topic, steps) == want);
    HERALD_FUZZ_CHECK(steps <= 3 * (topic.size() + text.size()) + 16);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    FuzzedDataProvider data(bytes, size);
    const std::string text = data.ConsumeRandomLengthString(256);
    const Selector sel = Selector::parse(text);
    const auto tokens = text == "*" ? std::nullopt : tokens_of(text);

    HERALD_FUZZ_CHECK(sel.text() == text);
    HERALD_FUZZ_CHECK(Selector::parse(text) == sel);
    if (text == "*") {
        HERALD_FUZZ_CHECK(sel.kind() == Selector::Kind::all && sel.expressions() == 0);
    } else if (!tokens) {
        HERALD_FUZZ_CHECK(sel.is_exact() && sel.expressions() == 0);
    } else {
        HERALD_FUZZ_CHECK(sel.kind() == Selector::Kind::uri_template);
        std::size_t vars = 0;
        for (const Token& t : *tokens) {
            vars += t.variable ? 1 : 0;
        }
        HERALD_FUZZ_CHECK(sel.expressions() == vars);

        // A topic made from the template, each variable filled with fuzzer bytes.
        std::string filled;
        bool valid_fill = true;
        for (const Token& t : *tokens) {
            if (!t.variable) {
                filled.push_back(t.c);
                continue;
            }
            std::string value = data.ConsumeRandomLengthString(16);
            if (value.empty() || value.find('/') != std::string::npos) {
                valid_fill = false;
                value = "x";
            }
            filled += value;
        }
        if (valid_fill && !system_topic(filled)) {
            HERALD_FUZZ_CHECK(sel.matches(filled));
        }
        check(sel, tokens, text, filled);
    }
    while (data.remaining_bytes() > 0) {
        check(sel, tokens, text, data.ConsumeRandomLengthString(256));
    }
    return 0;
}
