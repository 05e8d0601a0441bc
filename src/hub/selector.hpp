// Topic selectors, as a subscription or a grant names them: an exact topic, "*", or an
// RFC 6570 level-1 URI template. Parsed once; matching allocates nothing. Pure; a Selector
// is immutable after parse(), so one may be shared between threads.
#pragma once

#include <cstddef>
#include <cstdint>
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
//
// Matching a template reads the topic once: its work is linear in the lengths of the topic
// and the template, whatever either holds, so no crafted pair can stall a worker.
class Selector {
public:
    enum class Kind { exact, all, uri_template };

    [[nodiscard]] static Selector parse(std::string_view text);

    // Whether the selector picks `topic`. "*" and templates never match a system topic; an
    // exact selector matches only the identical string, system topics included.
    [[nodiscard]] bool matches(std::string_view topic) const noexcept;

    // The same answer as matches(), and the number of steps (characters read or compared)
    // it took: for tests that hold the matcher to linear work without timing it.
    [[nodiscard]] bool matches_counting(std::string_view topic, std::size_t& steps) const noexcept;

    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    [[nodiscard]] bool is_exact() const noexcept { return kind_ == Kind::exact; }
    // The text the selector was parsed from.
    [[nodiscard]] const std::string& text() const noexcept { return text_; }
    // The number of {var} expressions of a template; 0 for other kinds.
    [[nodiscard]] std::size_t expressions() const noexcept { return expressions_; }

    friend bool operator==(const Selector& a, const Selector& b) noexcept {
        return a.text_ == b.text_;
    }

private:
    // A literal run of a segment that follows one or more variables: it must start at
    // least `gap` characters after whatever came before it. `border` is its KMP failure
    // function, so that finding it never reads a character of the topic twice.
    struct Piece {
        std::size_t gap = 0;
        std::string text; // not empty
        std::vector<std::uint32_t> border;
    };

    // One '/'-separated segment of a template. Without variables (`tail_gap` 0) it is
    // `head`, exactly. Otherwise it reads: `head`, each of `pieces`, then at least
    // `tail_gap` characters, then `tail`, which ends the segment. As a variable takes any
    // run of one or more characters, the leftmost place of each piece is as good as any
    // later one, so one pass from left to right decides the match.
    struct Segment {
        std::string head;
        std::vector<Piece> pieces;
        std::size_t tail_gap = 0;
        std::string tail;
        std::size_t min_size = 0; // the fewest characters the segment can match

        template <typename Steps>
        [[nodiscard]] bool matches(std::string_view s, Steps& steps) const noexcept;
    };

    Selector(std::string text, Kind kind) : text_(std::move(text)), kind_(kind) {}
    [[nodiscard]] bool compile_template();
    template <typename Steps>
    [[nodiscard]] bool match(std::string_view topic, Steps& steps) const noexcept;

    std::string text_;
    Kind kind_ = Kind::exact;
    std::size_t expressions_ = 0;   // templates only
    std::vector<Segment> segments_; // templates only
};

// Whether any of `selectors` picks `topic`.
[[nodiscard]] bool any_matches(const std::vector<Selector>& selectors,
                               std::string_view topic) noexcept;

} // namespace herald::hub
