// Topic selectors, as a subscription or a grant names them: an exact topic, "*", or an
// RFC 6570 level-1 URI template. Parsed once; matching allocates nothing. Pure; a Selector
// is immutable after parse(), so one may be shared between threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::hub {

// Whether `topic` is a system topic ("$sys/..."): read only when named exactly, never
// through "*" or a template, and never published to by clients.
[[nodiscard]] bool is_system_topic(std::string_view topic) noexcept;

// A topic selector: an exact topic, "*" (every topic except system topics), or an RFC 6570
// level-1 URI template such as "https://example.com/books/{id}", where each {var} matches
// one or more characters of a single segment (no '/') and the literal parts match exactly.
// A variable name is made of letters, digits, '_', '.' and %XX escapes, as RFC 6570 allows.
// A string with unbalanced braces, empty braces or any other expression inside braces
// ("{+path}", "{a b}") is an exact topic.
class Selector {
public:
    enum class Kind { exact, all, uri_template };

    [[nodiscard]] static Selector parse(std::string_view text);

    // Whether the selector picks `topic`. "*" and templates never match a system topic; an
    // exact selector matches only the identical string, system topics included.
    [[nodiscard]] bool matches(std::string_view topic) const noexcept;

    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    [[nodiscard]] bool is_exact() const noexcept { return kind_ == Kind::exact; }
    // The text the selector was parsed from.
    [[nodiscard]] const std::string& text() const noexcept { return text_; }

    friend bool operator==(const Selector& a, const Selector& b) noexcept {
        return a.text_ == b.text_;
    }

private:
    // One '/'-separated segment of a template. `kinds_[i]` says what `chars_[i]` is: a
    // literal character, "any one character" or "any run of characters". A {var} compiles
    // to "any one" followed by "any run", that is one or more characters.
    struct Segment {
        std::string chars;
        std::string kinds;
        [[nodiscard]] bool matches(std::string_view s) const noexcept;
    };

    Selector(std::string text, Kind kind) : text_(std::move(text)), kind_(kind) {}
    [[nodiscard]] bool compile_template();

    std::string text_;
    Kind kind_ = Kind::exact;
    std::vector<Segment> segments_; // templates only
};

// Whether any of `selectors` picks `topic`.
[[nodiscard]] bool any_matches(const std::vector<Selector>& selectors,
                               std::string_view topic) noexcept;

} // namespace herald::hub
