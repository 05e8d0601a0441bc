// herald demo's pure parts: the interval syntax and the message contents.
#include "demo/demo.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace herald::demo {

using std::chrono::microseconds;

TEST(ParseInterval, UnitsAndFractions) {
    EXPECT_EQ(parse_interval("1s"), microseconds(1'000'000));
    EXPECT_EQ(parse_interval("250ms"), microseconds(250'000));
    EXPECT_EQ(parse_interval("1.5s"), microseconds(1'500'000));
    EXPECT_EQ(parse_interval("2m"), microseconds(120'000'000));
    EXPECT_EQ(parse_interval("1h"), microseconds(3'600'000'000));
    EXPECT_EQ(parse_interval("1ms"), microseconds(1'000));
}

TEST(ParseInterval, RefusesWhatIsNotAnIntervalFromOneMillisecondToOneHour) {
    for (const char* bad : {"", "1", "s", "0s", "-1s", "0.5ms", "3601s", "1.01h", "abc", "1 s",
                            "1sec", "nan s", "1e400s"}) {
        EXPECT_FALSE(parse_interval(bad).has_value()) << bad;
    }
}

TEST(Messages, RandomLettersDependOnlyOnN) {
    EXPECT_EQ(random_letters(5), random_letters(5));
    EXPECT_NE(random_letters(1), random_letters(2));
    for (std::uint64_t n : {0ULL, 1ULL, 42ULL, 18446744073709551615ULL}) {
        const std::string r = random_letters(n);
        ASSERT_EQ(r.size(), 16U);
        for (char c : r) {
            EXPECT_TRUE(c >= 'a' && c <= 'z') << r;
        }
    }
}

TEST(Messages, PrettyPrintedJsonOverSeveralLines) {
    const std::string text = message_json(7, 1795459114);
    EXPECT_EQ(text, "{\n  \"time\": 1795459114,\n  \"random\": \"" + random_letters(7) + "\"\n}");
    const auto parsed = nlohmann::json::parse(text);
    EXPECT_EQ(parsed["time"], 1795459114);
    EXPECT_EQ(parsed["random"], random_letters(7));
}

} // namespace herald::demo
