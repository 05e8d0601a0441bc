// Tests of the pure parts of the `herald bench` load generator: the URL and body templates
// and the plan built from the command line (options), the latency histogram and the /proc
// sampling (measure), the response-head helpers (http_text) and the state the forked
// subscriber processes share with the parent (shared).
#include "bench/http_text.hpp"
#include "bench/measure.hpp"
#include "bench/options.hpp"
#include "bench/shared.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace herald::bench {
namespace {

// ---------------------------------------------------------------------------------------
// Templates

TEST(ParseTemplate, DefaultBodyIsCutIntoLiteralsAndPlaceholders) {
    const Template t = parse_template("topic={topic:form}&data={data:form}", "--pub-body", true);
    ASSERT_EQ(t.size(), 4U);
    EXPECT_EQ(t[0].field, Field::literal);
    EXPECT_EQ(t[0].text, "topic=");
    EXPECT_EQ(t[1].field, Field::topic_form);
    EXPECT_EQ(t[2].field, Field::literal);
    EXPECT_EQ(t[2].text, "&data=");
    EXPECT_EQ(t[3].field, Field::data_form);
}

TEST(ParseTemplate, EveryBodyPlaceholderHasItsField) {
    const Template t =
        parse_template("{topic}{topic:form}{data}{data:form}{data:json}", "--pub-body", true);
    ASSERT_EQ(t.size(), 5U);
    EXPECT_EQ(t[0].field, Field::topic);
    EXPECT_EQ(t[1].field, Field::topic_form);
    EXPECT_EQ(t[2].field, Field::data);
    EXPECT_EQ(t[3].field, Field::data_form);
    EXPECT_EQ(t[4].field, Field::data_json);
}

TEST(ParseTemplate, EmptyTextIsAnEmptyTemplate) {
    EXPECT_TRUE(parse_template("", "--pub-body", true).empty());
    EXPECT_EQ(expand(parse_template("", "--pub-body", true), "t", "d"), "");
}

TEST(ParseTemplate, BracesThatAreNoPlaceholderStayOneLiteral) {
    const Template t = parse_template("a{b", "--pub-body", true);
    ASSERT_EQ(t.size(), 1U);
    EXPECT_EQ(t[0].field, Field::literal);
    EXPECT_EQ(t[0].text, "a{b");

    for (std::string_view text :
         {"{}", "{topic", "{Topic}", "{a b}", "{1}", "}", "{\"k\":1}", "{\"k\":\"v\"}"}) {
        const Template lit = parse_template(text, "--pub-body", true);
        ASSERT_EQ(lit.size(), 1U) << text;
        EXPECT_EQ(lit[0].field, Field::literal) << text;
        EXPECT_EQ(lit[0].text, text);
    }
    EXPECT_EQ(expand(parse_template("{{topic}}", "--pub-body", true), "x"), "{x}");
}

TEST(ParseTemplate, JsonBodyKeepsItsBracesAndFillsThePlaceholders) {
    const Template t = parse_template(R"({"items":[{"channel":"{topic}","data":"{data:json}"}]})",
                                      "--pub-body", true);
    EXPECT_EQ(expand(t, "room 1", "say \"hi\"\n\\"),
              R"({"items":[{"channel":"room 1","data":"say \"hi\"\n\\"}]})");
}

TEST(ParseTemplate, UnknownPlaceholderThrowsNamingTheOption) {
    try {
        parse_template("topic={nope}", "--pub-body", true);
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("{nope}"), std::string::npos) << what;
        EXPECT_NE(what.find("--pub-body"), std::string::npos) << what;
    }
    EXPECT_THROW(parse_template("{topic:json}", "--pub-body", true), std::invalid_argument);
    EXPECT_THROW(parse_template("{data:}", "--pub-body", true), std::invalid_argument);
}

TEST(ParseTemplate, UrlTakesTopicOnly) {
    for (std::string_view text :
         {"/e?d={data}", "/e?d={data:form}", "/e?d={data:json}", "/e?t={topic:form}"}) {
        try {
            parse_template(text, "--sub-url", false);
            ADD_FAILURE() << "no exception for " << text;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("--sub-url"), std::string::npos) << e.what();
        }
    }
    const Template t = parse_template("/e?t={topic}", "--sub-url", false);
    ASSERT_EQ(t.size(), 2U);
    EXPECT_EQ(t[1].field, Field::topic_form);
}

TEST(Expand, TopicInUrlIsPercentEncoded) {
    const Template t = parse_template("/events?topic={topic}", "--sub-url", false);
    EXPECT_EQ(expand(t, "a b&c=d/é"), "/events?topic=a%20b%26c%3Dd%2F%C3%A9");
    EXPECT_EQ(expand(t, "plain-topic_1.x~"), "/events?topic=plain-topic_1.x~");
}

TEST(Expand, BodyPlaceholdersEncodeTheirOwnWay) {
    const Template t =
        parse_template("{topic}|{topic:form}|{data}|{data:form}|{data:json}", "--pub-body", true);
    EXPECT_EQ(expand(t, "a b&c", "x y\"\n+"),
              "a b&c|a%20b%26c|x y\"\n+|x%20y%22%0A%2B|x y\\\"\\n+");
}

TEST(Expand, DataDefaultsToEmpty) {
    const Template t = parse_template("[{data}][{data:form}][{data:json}]", "--pub-body", true);
    EXPECT_EQ(expand(t, "topic"), "[][][]");
}

// ---------------------------------------------------------------------------------------
// Encoders

// {topic} in a URL and {topic:form}/{data:form} in a body share base::percent_encode.
std::string form(std::string_view data) {
    return expand(parse_template("{data:form}", "--pub-body", true), "", data);
}
std::string in_url(std::string_view topic) {
    return expand(parse_template("/s?t={topic}", "--sub-url", false), topic).substr(5);
}

TEST(UrlEncode, SpaceIsPercentTwentyInFormsAndUrls) {
    EXPECT_EQ(form("a b"), "a%20b");
    EXPECT_EQ(in_url("a b"), "a%20b");
    EXPECT_EQ(form(""), "");
}

TEST(UrlEncode, UnreservedCharactersAreKept) {
    const std::string unreserved =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    EXPECT_EQ(in_url(unreserved), unreserved);
    EXPECT_EQ(form(unreserved), unreserved);
}

TEST(UrlEncode, EverythingElseIsPercentEncodedUpperCase) {
    EXPECT_EQ(in_url("/?&=+%#:@!*'()[]"), "%2F%3F%26%3D%2B%25%23%3A%40%21%2A%27%28%29%5B%5D");
    EXPECT_EQ(form("+"), "%2B");
    EXPECT_EQ(in_url("\xC3\xA9"), "%C3%A9");      // é
    EXPECT_EQ(form("\xE2\x82\xAC"), "%E2%82%AC"); // €
    EXPECT_EQ(in_url(std::string_view("a\0b", 3)), "a%00b");
    EXPECT_EQ(in_url("\x7F\xFF\n"), "%7F%FF%0A");
}

TEST(JsonEscape, QuotesBackslashesAndNewlines) {
    EXPECT_EQ(json_escape("plain é /"), "plain \xC3\xA9 /");
    EXPECT_EQ(json_escape("a\"b\\c"), "a\\\"b\\\\c");
    EXPECT_EQ(json_escape("line1\nline2"), "line1\\nline2");
    EXPECT_EQ(json_escape(""), "");
}

TEST(JsonEscape, ControlCharactersAsUnicodeEscapes) {
    auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return s;
    };
    EXPECT_EQ(json_escape(std::string_view("\0", 1)), "\\u0000");
    EXPECT_EQ(json_escape("\x01"), "\\u0001");
    EXPECT_EQ(json_escape("\t"), "\\u0009");
    EXPECT_EQ(json_escape("\x10"), "\\u0010");
    // JSON takes either case of hex digit.
    EXPECT_EQ(lower(json_escape("\r")), "\\u000d");
    EXPECT_EQ(lower(json_escape("\x1B[0m")), "\\u001b[0m");
    EXPECT_EQ(lower(json_escape("\x1F")), "\\u001f");
    EXPECT_EQ(json_escape("\x7F "), "\x7F ");
}

// ---------------------------------------------------------------------------------------
// The plan

Plan plan_of(Options o) {
    return make_plan(o);
}

// make_plan throws std::invalid_argument whose message names `option`.
void expect_rejected(Options o, std::string_view option) {
    try {
        make_plan(o);
        ADD_FAILURE() << "no exception; expected one naming " << option;
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(option), std::string::npos)
            << "message '" << e.what() << "' does not name " << option;
    }
}

TEST(MakePlan, Defaults) {
    Options o;
    const Plan p = make_plan(o);
    EXPECT_EQ(p.subs[0].host, "127.0.0.1");
    EXPECT_EQ(p.subs[0].port, "8080");
    EXPECT_EQ(p.subs[0].host_header, "127.0.0.1:8080");
    EXPECT_EQ(expand(p.subs[0].target, "bench"), "/events?topic=bench");
    EXPECT_EQ(expand(p.subs[0].target, "a b"), "/events?topic=a%20b");
    EXPECT_EQ(p.pubs[0].host, "127.0.0.1");
    EXPECT_EQ(p.pubs[0].port, "8080");
    EXPECT_EQ(p.pubs[0].host_header, "127.0.0.1:8080");
    EXPECT_EQ(expand(p.pubs[0].target, "bench"), "/events");
    EXPECT_EQ(expand(p.body, "a b", "x y&z=1"), "topic=a%20b&data=x%20y%26z%3D1");
    EXPECT_EQ(p.extra_headers, "");
    EXPECT_EQ(p.topic_names, std::vector<std::string>{"bench"});
    EXPECT_FALSE(o.idle);
    EXPECT_EQ(o.publishers, 4);
    EXPECT_EQ(o.processes, 1);
}

TEST(MakePlan, UrlWithTrailingSlashAndPath) {
    Options o;
    o.urls = {"http://example.com:9090/"};
    Plan p = plan_of(o);
    EXPECT_EQ(p.subs[0].host, "example.com");
    EXPECT_EQ(p.subs[0].port, "9090");
    EXPECT_EQ(p.subs[0].host_header, "example.com:9090");
    EXPECT_EQ(expand(p.subs[0].target, "t"), "/events?topic=t");
    EXPECT_EQ(expand(p.pubs[0].target, "t"), "/events");

    o.urls = {"http://hub.local/herald//"};
    p = plan_of(o);
    EXPECT_EQ(p.subs[0].host, "hub.local");
    EXPECT_EQ(p.subs[0].port, "80");
    EXPECT_EQ(p.subs[0].host_header, "hub.local");
    EXPECT_EQ(expand(p.subs[0].target, "t"), "/herald/events?topic=t");
    EXPECT_EQ(expand(p.pubs[0].target, "t"), "/herald/events");
}

TEST(MakePlan, ExplicitSubAndPubUrls) {
    Options o;
    o.sub_urls = {"http://10.0.0.2:7000/sub/{topic}/stream"};
    o.pub_urls = {"http://[::1]:9000/pub?channel={topic}"};
    const Plan p = plan_of(o);
    EXPECT_EQ(p.subs[0].host, "10.0.0.2");
    EXPECT_EQ(p.subs[0].port, "7000");
    EXPECT_EQ(p.subs[0].host_header, "10.0.0.2:7000");
    EXPECT_EQ(expand(p.subs[0].target, "a/b"), "/sub/a%2Fb/stream");
    EXPECT_EQ(p.pubs[0].host, "::1");
    EXPECT_EQ(p.pubs[0].port, "9000");
    EXPECT_EQ(p.pubs[0].host_header, "[::1]:9000");
    EXPECT_EQ(expand(p.pubs[0].target, "room 7"), "/pub?channel=room%207");
}

TEST(MakePlan, UrlWithoutPortIsPort80AndWithoutPathIsSlash) {
    Options o;
    o.sub_urls = {"http://example.org/lp?id={topic}"};
    o.pub_urls = {"http://[::1]"};
    const Plan p = plan_of(o);
    EXPECT_EQ(p.subs[0].host, "example.org");
    EXPECT_EQ(p.subs[0].port, "80");
    EXPECT_EQ(p.subs[0].host_header, "example.org");
    EXPECT_EQ(p.pubs[0].host, "::1");
    EXPECT_EQ(p.pubs[0].port, "80");
    EXPECT_EQ(p.pubs[0].host_header, "[::1]");
    EXPECT_EQ(expand(p.pubs[0].target, "t"), "/");
}

TEST(MakePlan, JsonBodyKeepsItsBraces) {
    Options o;
    o.pub_body = R"({"items":[{"channel":"{topic}"}],"data":"{data:json}"})";
    const Plan p = plan_of(o);
    EXPECT_EQ(expand(p.body, "r", "a\"b"), R"({"items":[{"channel":"r"}],"data":"a\"b"})");
}

TEST(MakePlan, BadTemplatesNameTheirOption) {
    Options o;
    o.sub_urls = {"http://h:1/e?t={data}"};
    expect_rejected(o, "--sub-url");
    o = Options{};
    o.pub_urls = {"http://h:1/p/{data:form}"};
    expect_rejected(o, "--pub-url");
    o = Options{};
    o.pub_body = "x={nope}";
    expect_rejected(o, "--pub-body");
}

TEST(MakePlan, NonHttpUrlsAreRejected) {
    Options o;
    o.urls = {"https://127.0.0.1:8080"};
    expect_rejected(o, "--url");
    o = Options{};
    o.urls = {"127.0.0.1:8080"};
    expect_rejected(o, "--url");
    o = Options{};
    o.sub_urls = {"https://h/events?topic={topic}"};
    expect_rejected(o, "--sub-url");
    o = Options{};
    o.pub_urls = {"ws://h/events"};
    expect_rejected(o, "--pub-url");
}

TEST(MakePlan, BadHostsAndPortsAreRejected) {
    for (const char* url :
         {"http://h:/x", "http://:80/x", "http://h:8a/x", "http://[::1/x", "http:///events",
          "http://[]:80/", "http://[::1]junk/events", "http://h:0/x", "http://h:65536/x",
          "http://h:99999/x", "http://u@h:80/x", "http://h/x#frag"}) {
        Options o;
        o.sub_urls = {url};
        expect_rejected(o, "--sub-url");
    }
}

TEST(MakePlan, OutOfRangeCountsAreRejected) {
    auto with = [](auto set) {
        Options o;
        set(o);
        return o;
    };
    expect_rejected(with([](Options& o) { o.subscribers = -1; }), "--subscribers");
    expect_rejected(with([](Options& o) { o.topics = 0; }), "--topics");
    expect_rejected(with([](Options& o) { o.topics = -3; }), "--topics");
    expect_rejected(with([](Options& o) { o.processes = 0; }), "--processes");
    expect_rejected(with([](Options& o) { o.processes = 257; }), "--processes");
    expect_rejected(with([](Options& o) { o.threads = 0; }), "--threads");
    expect_rejected(with([](Options& o) { o.threads = 257; }), "--threads");
    expect_rejected(with([](Options& o) { o.connect_window = 0; }), "--connect-window");
    expect_rejected(with([](Options& o) { o.source_ips = 0; }), "--source-ips");
    expect_rejected(with([](Options& o) { o.source_ips = 255; }), "--source-ips");
    expect_rejected(with([](Options& o) { o.publishers = -1; }), "--publishers");
    expect_rejected(with([](Options& o) { o.publishers = 4097; }), "--publishers");
    expect_rejected(with([](Options& o) { o.payload = -1; }), "--payload");
    expect_rejected(with([](Options& o) { o.payload = (1 << 20) + 1; }), "--payload");
}

TEST(MakePlan, NegativeRatesAndDurationsAreRejected) {
    auto with = [](auto set) {
        Options o;
        set(o);
        return o;
    };
    expect_rejected(with([](Options& o) { o.rate = -1; }), "--rate");
    expect_rejected(with([](Options& o) { o.duration = -0.5; }), "--duration");
    expect_rejected(with([](Options& o) { o.churn = -1; }), "--churn");
    expect_rejected(with([](Options& o) { o.churn_hold_ms = -1; }), "--churn-hold");
    expect_rejected(with([](Options& o) { o.settle = -1; }), "--settle");
    expect_rejected(with([](Options& o) { o.drain = -1; }), "--drain");
}

TEST(MakePlan, PidsMustBePositive) {
    Options o;
    o.pids = {123, 0};
    expect_rejected(o, "--pid");
    o.pids = {-5};
    expect_rejected(o, "--pid");
    o.pids = {1, 2};
    EXPECT_NO_THROW(plan_of(o));
}

TEST(MakePlan, LimitsThemselvesAreAccepted) {
    Options o;
    o.subscribers = 0;
    o.processes = 256;
    o.threads = 256;
    o.source_ips = 254;
    o.publishers = 4096;
    o.payload = 1 << 20;
    o.rate = 0;
    o.duration = 0;
    o.churn = 0;
    EXPECT_NO_THROW(make_plan(o));
    EXPECT_EQ(o.publishers, 4096);
    EXPECT_FALSE(o.idle);
}

TEST(MakePlan, HeadersBecomeRequestLines) {
    Options o;
    o.headers = {"X-Token: abc", "Authorization:Bearer z"};
    EXPECT_EQ(plan_of(o).extra_headers, "X-Token: abc\r\nAuthorization:Bearer z\r\n");
}

TEST(MakePlan, MalformedHeadersAreRejected) {
    for (const char* h : {"NoColon", ": value", "X-A: a\r\nX-B: b", "X-A: a\nb", "X-A: a\r"}) {
        Options o;
        o.headers = {"Good: 1", h};
        expect_rejected(o, "--header");
    }
}

TEST(MakePlan, TopicNames) {
    Options o;
    EXPECT_EQ(plan_of(o).topic_names, std::vector<std::string>{"bench"});

    o.topic = "room";
    o.topic_given = true;
    EXPECT_EQ(plan_of(o).topic_names, std::vector<std::string>{"room"});

    o = Options{};
    o.topics = 3;
    EXPECT_EQ(plan_of(o).topic_names, (std::vector<std::string>{"t0", "t1", "t2"}));

    o.topic = "room";
    o.topic_given = true;
    EXPECT_EQ(plan_of(o).topic_names, (std::vector<std::string>{"room0", "room1", "room2"}));

    o = Options{};
    o.topics = 12;
    const Plan p = plan_of(o);
    ASSERT_EQ(p.topic_names.size(), 12U);
    EXPECT_EQ(p.topic_names.back(), "t11");
}

TEST(MakePlan, IdleOrNoPublishersMeansIdle) {
    Options o;
    o.idle = true;
    make_plan(o);
    EXPECT_TRUE(o.idle);
    EXPECT_EQ(o.publishers, 0);

    o = Options{};
    o.publishers = 0;
    make_plan(o);
    EXPECT_TRUE(o.idle);
    EXPECT_EQ(o.publishers, 0);
}

TEST(MakePlan, ProcessesAreClampedToTheSubscribers) {
    Options o;
    o.subscribers = 10;
    o.processes = 64;
    make_plan(o);
    EXPECT_EQ(o.processes, 10);

    o = Options{};
    o.subscribers = 0;
    o.processes = 8;
    make_plan(o);
    EXPECT_EQ(o.processes, 1);

    o = Options{};
    o.subscribers = 1000;
    o.processes = 8;
    make_plan(o);
    EXPECT_EQ(o.processes, 8);
}

// ---------------------------------------------------------------------------------------
// Several targets

TEST(SplitList, RepeatsAndCommaListsJoinInOrder) {
    EXPECT_EQ(split_list({}, "--url"), std::vector<std::string>{});
    EXPECT_EQ(split_list({"http://a:1"}, "--url"), std::vector<std::string>{"http://a:1"});
    EXPECT_EQ(split_list({"http://a:1,http://b:2", "http://c:3"}, "--url"),
              (std::vector<std::string>{"http://a:1", "http://b:2", "http://c:3"}));
    // Spaces around an item are not part of it.
    EXPECT_EQ(split_list({" http://a:1 , http://b:2"}, "--url"),
              (std::vector<std::string>{"http://a:1", "http://b:2"}));
}

TEST(SplitList, EmptyItemsAreRejectedNamingTheOption) {
    for (const char* v : {"", " ", "http://a:1,", ",http://a:1", "http://a:1,,http://b:2"}) {
        try {
            (void)split_list({v}, "--sub-url");
            ADD_FAILURE() << "accepted '" << v << "'";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("--sub-url"), std::string::npos) << e.what();
        }
    }
}

TEST(MakePlan, OneUrlIsOneTargetForEverything) {
    Options o;
    const Plan p = plan_of(o);
    ASSERT_EQ(p.subs.size(), 1U);
    ASSERT_EQ(p.pubs.size(), 1U);
    EXPECT_EQ(p.subs[0].url, "http://127.0.0.1:8080/events?topic={topic}");
    EXPECT_EQ(p.pubs[0].url, "http://127.0.0.1:8080/events");
    for (long i : {0L, 1L, 999L, 123456L}) {
        EXPECT_EQ(p.sub_target(i), 0U);
        EXPECT_EQ(p.pub_target(i), 0U);
    }
}

TEST(MakePlan, SeveralUrlsRepeatedOrAsACommaList) {
    Options repeated;
    repeated.urls = {"http://10.0.0.1:8001", "http://10.0.0.2:8002/"};
    Options listed;
    listed.urls = {"http://10.0.0.1:8001,http://10.0.0.2:8002/"};
    for (const Options& o : {repeated, listed}) {
        const Plan p = plan_of(o);
        ASSERT_EQ(p.subs.size(), 2U);
        ASSERT_EQ(p.pubs.size(), 2U);
        EXPECT_EQ(p.subs[0].host_header, "10.0.0.1:8001");
        EXPECT_EQ(p.subs[1].host_header, "10.0.0.2:8002");
        EXPECT_EQ(expand(p.subs[1].target, "t"), "/events?topic=t");
        EXPECT_EQ(p.pubs[0].host_header, "10.0.0.1:8001");
        EXPECT_EQ(p.pubs[1].host_header, "10.0.0.2:8002");
        EXPECT_EQ(expand(p.pubs[1].target, "t"), "/events");
    }
    Options mixed;
    mixed.urls = {"http://a:1,http://b:2", "http://c:3"};
    const Plan p = plan_of(mixed);
    ASSERT_EQ(p.subs.size(), 3U);
    EXPECT_EQ(p.subs[2].host, "c");
}

TEST(MakePlan, SubAndPubUrlListsReplaceTheirSideOnly) {
    Options o;
    o.urls = {"http://a:1,http://b:2"};
    o.sub_urls = {"http://s:9/sub/{topic}"};
    Plan p = plan_of(o);
    ASSERT_EQ(p.subs.size(), 1U);
    EXPECT_EQ(p.subs[0].host, "s");
    ASSERT_EQ(p.pubs.size(), 2U);
    EXPECT_EQ(p.pubs[0].host, "a");
    EXPECT_EQ(p.pubs[1].host, "b");

    o = Options{};
    o.urls = {"http://a:1,http://b:2"};
    o.pub_urls = {"http://p:7/pub", "http://q:7/pub,http://r:7/pub"};
    p = plan_of(o);
    ASSERT_EQ(p.subs.size(), 2U);
    ASSERT_EQ(p.pubs.size(), 3U);
    EXPECT_EQ(p.pubs[2].host, "r");
    EXPECT_EQ(p.pubs[2].url, "http://r:7/pub");
}

TEST(MakePlan, BadItemsOfAListNameTheirOption) {
    Options o;
    o.urls = {"http://a:1,https://b:2"};
    expect_rejected(o, "--url");
    o = Options{};
    o.urls = {"http://a:1,,http://b:2"};
    expect_rejected(o, "--url");
    o = Options{};
    o.urls = {"http://a:1", "http://b:bad"};
    expect_rejected(o, "--sub-url"); // the derived subscribe URL is the first to be parsed
    o = Options{};
    o.sub_urls = {"http://a:1/e?t={topic},http://b:2/e?t={data}"};
    expect_rejected(o, "--sub-url");
    o = Options{};
    o.pub_urls = {"http://a:1/p", ""};
    expect_rejected(o, "--pub-url");
}

// Counts of connections per target, dealing indices 0..count-1 the way the plan does.
std::vector<int> spread(const Plan& p, int count, bool subscribers) {
    std::vector<int> n(subscribers ? p.subs.size() : p.pubs.size(), 0);
    for (int i = 0; i < count; ++i) {
        ++n[subscribers ? p.sub_target(i) : p.pub_target(i)];
    }
    return n;
}

TEST(RoundRobin, ThousandSubscribersAndSixtyFourPublishersOverTwoNodes) {
    Options o;
    o.urls = {"http://127.0.0.1:8001", "http://127.0.0.1:8002"};
    o.subscribers = 1000;
    o.publishers = 64;
    const Plan p = plan_of(o);
    EXPECT_EQ(spread(p, 1000, true), (std::vector<int>{500, 500}));
    EXPECT_EQ(spread(p, 64, false), (std::vector<int>{32, 32}));
    // Neighbours alternate: subscriber i and publisher p on node i % 2 and p % 2.
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(p.sub_target(i), static_cast<std::size_t>(i % 2));
        EXPECT_EQ(p.pub_target(i), static_cast<std::size_t>(i % 2));
    }
    for (std::size_t t = 0; t < 2; ++t) {
        EXPECT_EQ(dealt_to(1000, 2, t), 500);
        EXPECT_EQ(dealt_to(64, 2, t), 32);
    }
}

TEST(RoundRobin, UnevenCountsPutTheRemainderOnTheFirstTargets) {
    Options o;
    o.urls = {"http://a:1,http://b:2,http://c:3"};
    const Plan p = plan_of(o);
    EXPECT_EQ(spread(p, 1000, true), (std::vector<int>{334, 333, 333}));
    EXPECT_EQ(spread(p, 2, false), (std::vector<int>{1, 1, 0}));
    EXPECT_EQ(spread(p, 0, false), (std::vector<int>{0, 0, 0}));
    for (int count : {0, 1, 2, 3, 4, 5, 64, 1000, 19900}) {
        const auto n = spread(p, count, true);
        for (std::size_t t = 0; t < 3; ++t) {
            EXPECT_EQ(dealt_to(count, 3, t), n[t]) << count << " on target " << t;
        }
    }
}

TEST(RoundRobin, EachSubscriberProcessSpreadsItsShareOverTheTargets) {
    // bench.cpp gives process k the subscribers [1000 k / 4, 1000 (k + 1) / 4): the target
    // depends on the run-wide index, so every process has half of its share on each node.
    Options o;
    o.urls = {"http://a:1", "http://b:2"};
    const Plan p = plan_of(o);
    for (int k = 0; k < 4; ++k) {
        std::vector<int> n(2, 0);
        for (int i = 1000 * k / 4; i < 1000 * (k + 1) / 4; ++i) {
            ++n[p.sub_target(i)];
        }
        EXPECT_EQ(n[0] + n[1], 250);
        EXPECT_LE(std::abs(n[0] - n[1]), 1);
    }
}

TEST(AuxPids, NameEqualsPids) {
    const auto aux = parse_aux_pids({"redis=123", "proxy=7,8", "redis=456"});
    ASSERT_EQ(aux.size(), 2U);
    EXPECT_EQ(aux[0].name, "redis");
    EXPECT_EQ(aux[0].pids, (std::vector<long>{123, 456})); // a name given twice sums both
    EXPECT_EQ(aux[1].name, "proxy");
    EXPECT_EQ(aux[1].pids, (std::vector<long>{7, 8}));
    EXPECT_TRUE(parse_aux_pids({}).empty());
    EXPECT_EQ(parse_aux_pids({"a_b.c-9=1"})[0].name, "a_b.c-9");
}

TEST(AuxPids, BadEntriesAreRejectedNamingTheOption) {
    for (const char* v : {"redis", "=12", "redis=", "redis=0", "redis=-1", "redis=12x", "re dis=1",
                          "redis=1,,2", "a\"b=1", "redis=99999999999999999999"}) {
        Options o;
        o.aux_pids = {"ok=1", v};
        expect_rejected(o, "--aux-pid");
    }
}

TEST(MakePlan, AuxPidsReachThePlan) {
    Options o;
    o.aux_pids = {"redis=42"};
    const Plan p = plan_of(o);
    ASSERT_EQ(p.aux.size(), 1U);
    EXPECT_EQ(p.aux[0].name, "redis");
    EXPECT_EQ(p.aux[0].pids, std::vector<long>{42});
}

// ---------------------------------------------------------------------------------------
// Histogram

constexpr std::size_t kBuckets = 60 * (1U << Histogram::kSubBits);

// The nearest-rank q-quantile of `sorted`, with the rank the histogram uses.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double q) {
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(sorted.size())));
    rank = std::max<std::uint64_t>(rank, 1);
    return sorted[rank - 1];
}

// The histogram's q-quantile is the true one, or above it by at most 1/32 of it.
void expect_close_above(const Histogram& h, const std::vector<std::uint64_t>& sorted, double q) {
    const std::uint64_t want = exact_percentile(sorted, q);
    const std::uint64_t got = h.percentile(q);
    EXPECT_GE(got, want) << "q=" << q;
    EXPECT_LE(got, want + want / 32) << "q=" << q;
    EXPECT_LE(got, h.max()) << "q=" << q;
    if (want < 32) {
        EXPECT_EQ(got, want) << "q=" << q;
    }
}

const std::vector<double>& quantiles() {
    static const std::vector<double> qs = [] {
        std::vector<double> v = {0.0,  0.0001, 0.001, 0.01, 0.1,   0.25,   0.5,
                                 0.75, 0.9,    0.95,  0.99, 0.999, 0.9999, 1.0};
        for (int i = 1; i < 1000; i += 7) {
            v.push_back(i / 1000.0);
        }
        return v;
    }();
    return qs;
}

TEST(Histogram, EmptyGivesZero) {
    const Histogram h;
    EXPECT_EQ(h.count(), 0U);
    EXPECT_EQ(h.max(), 0U);
    EXPECT_EQ(h.percentile(0.0), 0U);
    EXPECT_EQ(h.percentile(0.5), 0U);
    EXPECT_EQ(h.percentile(1.0), 0U);
}

TEST(Histogram, SmallValuesAreExact) {
    Histogram h;
    std::vector<std::uint64_t> values;
    for (std::uint64_t v = 1; v <= 31; ++v) {
        h.record(static_cast<std::int64_t>(v));
        values.push_back(v);
    }
    EXPECT_EQ(h.count(), 31U);
    EXPECT_EQ(h.max(), 31U);
    EXPECT_EQ(h.percentile(0.5), 16U);
    EXPECT_EQ(h.percentile(0.0), 1U);
    EXPECT_EQ(h.percentile(1.0), 31U);
    for (double q : quantiles()) {
        EXPECT_EQ(h.percentile(q), exact_percentile(values, q)) << q;
    }
}

TEST(Histogram, UniformOneToHundredThousandNanoseconds) {
    Histogram h;
    std::vector<std::uint64_t> values;
    for (std::uint64_t v = 1; v <= 100'000; ++v) {
        h.record(static_cast<std::int64_t>(v));
        values.push_back(v);
    }
    EXPECT_EQ(h.count(), 100'000U);
    EXPECT_EQ(h.max(), 100'000U);
    EXPECT_EQ(h.percentile(1.0), 100'000U);
    EXPECT_EQ(h.percentile(0.0), 1U);
    for (double q : quantiles()) {
        expect_close_above(h, values, q);
    }
    // The median is 50,000; its bucket ends within 3% above.
    EXPECT_GE(h.percentile(0.5), 50'000U);
    EXPECT_LE(h.percentile(0.5), 51'500U);
}

TEST(Histogram, LogSpreadValues) {
    Histogram h;
    std::vector<std::uint64_t> values;
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> exponent(0.0, std::log(1e15));
    for (int i = 0; i < 20'000; ++i) {
        const auto v = static_cast<std::uint64_t>(std::exp(exponent(rng)));
        h.record(static_cast<std::int64_t>(v));
        values.push_back(v);
    }
    // Powers of 1.5 from 1 ns to about 10^18 ns, so every octave has some.
    for (double x = 1; x < 1e18; x *= 1.5) {
        const auto v = static_cast<std::uint64_t>(x);
        h.record(static_cast<std::int64_t>(v));
        values.push_back(v);
    }
    std::sort(values.begin(), values.end());
    EXPECT_EQ(h.count(), values.size());
    EXPECT_EQ(h.max(), values.back());
    for (double q : quantiles()) {
        expect_close_above(h, values, q);
    }
}

TEST(Histogram, PercentileNeverAboveTheMax) {
    Histogram h;
    h.record(1000); // its bucket reaches 1007
    EXPECT_EQ(h.max(), 1000U);
    for (double q : quantiles()) {
        EXPECT_EQ(h.percentile(q), 1000U) << q;
    }
    h.record(5000);
    EXPECT_GE(h.percentile(0.5), 1000U);
    EXPECT_LE(h.percentile(0.5), 1031U);
    EXPECT_EQ(h.percentile(1.0), 5000U);
}

TEST(Histogram, NegativeValuesRecordAsZero) {
    Histogram h;
    h.record(-1);
    h.record(-1'000'000);
    h.record(std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(h.count(), 3U);
    EXPECT_EQ(h.max(), 0U);
    EXPECT_EQ(h.percentile(0.0), 0U);
    EXPECT_EQ(h.percentile(1.0), 0U);
    h.record(7);
    EXPECT_EQ(h.percentile(0.75), 0U);
    EXPECT_EQ(h.percentile(1.0), 7U);
}

TEST(Histogram, LargestValues) {
    Histogram h;
    const std::int64_t big = std::numeric_limits<std::int64_t>::max();
    h.record(big);
    EXPECT_EQ(h.count(), 1U);
    EXPECT_EQ(h.max(), static_cast<std::uint64_t>(big));
    EXPECT_EQ(h.percentile(0.5), static_cast<std::uint64_t>(big));
}

void expect_same(const Histogram& a, const Histogram& b) {
    EXPECT_EQ(a.count(), b.count());
    EXPECT_EQ(a.max(), b.max());
    for (int i = 0; i <= 1000; ++i) {
        const double q = i / 1000.0;
        EXPECT_EQ(a.percentile(q), b.percentile(q)) << q;
    }
}

TEST(Histogram, MergeEqualsRecordingAllIntoOne) {
    Histogram a;
    Histogram b;
    Histogram all;
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<std::int64_t> small(0, 5'000);
    std::uniform_int_distribution<std::int64_t> large(1'000'000, 2'000'000'000);
    for (int i = 0; i < 3000; ++i) {
        const std::int64_t v = small(rng);
        a.record(v);
        all.record(v);
    }
    for (int i = 0; i < 1000; ++i) {
        const std::int64_t v = large(rng);
        b.record(v);
        all.record(v);
    }
    Histogram merged = a;
    merged.merge(b);
    expect_same(merged, all);
    EXPECT_EQ(merged.count(), 4000U);

    // Merging the other way, into an empty one, and an empty one in, change nothing else.
    Histogram other = b;
    other.merge(a);
    expect_same(other, all);
    Histogram empty;
    empty.merge(all);
    expect_same(empty, all);
    Histogram copy = all;
    copy.merge(Histogram{});
    expect_same(copy, all);
}

TEST(Histogram, BucketBoundsAreMonotonicAndContiguous) {
    for (std::size_t i = 0; i < 32; ++i) {
        EXPECT_EQ(Histogram::upper(i), i);
    }
    for (std::size_t i = 0; i + 1 < kBuckets; ++i) {
        ASSERT_LT(Histogram::upper(i), Histogram::upper(i + 1)) << i;
        // upper(i) is the last value of bucket i, upper(i) + 1 the first of bucket i + 1.
        ASSERT_EQ(Histogram::index(Histogram::upper(i)), i) << i;
        ASSERT_EQ(Histogram::index(Histogram::upper(i) + 1), i + 1) << i;
    }
    EXPECT_EQ(Histogram::index(std::numeric_limits<std::uint64_t>::max()), kBuckets - 1);
    EXPECT_EQ(Histogram::upper(kBuckets - 1), std::numeric_limits<std::uint64_t>::max());
}

void check_bucket_of(std::uint64_t v) {
    const std::size_t i = Histogram::index(v);
    ASSERT_LT(i, kBuckets) << v;
    const std::uint64_t up = Histogram::upper(i);
    ASSERT_LE(v, up) << v;
    if (v < 32) {
        ASSERT_EQ(up, v);
    } else {
        ASSERT_LE(static_cast<long double>(up), static_cast<long double>(v) * 1.04L) << v;
    }
}

TEST(Histogram, EveryValueFitsItsBucketWithinFourPercent) {
    for (std::uint64_t v = 0; v <= 200'000; ++v) {
        check_bucket_of(v);
    }
    for (int bit = 5; bit < 64; ++bit) {
        const std::uint64_t p = std::uint64_t{1} << bit;
        check_bucket_of(p - 1);
        check_bucket_of(p);
        check_bucket_of(p + 1);
    }
    check_bucket_of(std::numeric_limits<std::uint64_t>::max());
    std::mt19937_64 rng(99);
    for (int i = 0; i < 100'000; ++i) {
        // Random values with random magnitudes.
        check_bucket_of(rng() >> (rng() % 64));
    }
}

// ---------------------------------------------------------------------------------------
// format_ns

TEST(FormatNs, UnitsByMagnitude) {
    EXPECT_EQ(format_ns(0), "0 ns");
    EXPECT_EQ(format_ns(999), "999 ns");
    EXPECT_EQ(format_ns(9'999), "9999 ns");
    EXPECT_EQ(format_ns(10'000), "10.0 us");
    EXPECT_EQ(format_ns(12'340), "12.3 us");
    EXPECT_EQ(format_ns(9'999'000), "9999.0 us");
    EXPECT_EQ(format_ns(10'000'000), "10.0 ms");
    EXPECT_EQ(format_ns(1'234'500'000), "1234.5 ms");
    EXPECT_EQ(format_ns(10'000'000'000ULL), "10.00 s");
    EXPECT_EQ(format_ns(123'456'000'000ULL), "123.46 s");
    EXPECT_EQ(format_ns(std::numeric_limits<std::uint64_t>::max()), "18446744073.71 s");
}

// ---------------------------------------------------------------------------------------
// /proc sampling

double process_cpu_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

long pid_max() {
    std::ifstream in("/proc/sys/kernel/pid_max");
    long n = 0;
    in >> n;
    return n > 0 ? n : 4'194'304;
}

TEST(SampleProcesses, OwnPid) {
    const ProcSample s = sample_processes({static_cast<long>(::getpid())});
    EXPECT_GT(s.rss_kb, 0);
    EXPECT_GE(s.cpu_s, 0.0);
}

TEST(SampleProcesses, TheSamePidTwiceSumsToTwice) {
    const long self = ::getpid();
    const ProcSample one = sample_processes({self});
    const ProcSample two = sample_processes({self, self});
    const ProcSample after = sample_processes({self});
    ASSERT_GT(one.rss_kb, 0);
    ASSERT_GT(after.rss_kb, 0);
    // The RSS may move a little between reads.
    const long slack = 2048;
    EXPECT_GE(two.rss_kb, 2 * std::min(one.rss_kb, after.rss_kb) - slack);
    EXPECT_LE(two.rss_kb, 2 * std::max(one.rss_kb, after.rss_kb) + slack);
    EXPECT_GE(two.cpu_s, 2 * one.cpu_s - 0.05);
    EXPECT_LE(two.cpu_s, 2 * after.cpu_s + 0.05);
}

TEST(SampleProcesses, CpuTimeFollowsWorkDone) {
    const long self = ::getpid();
    const ProcSample before = sample_processes({self});
    const double start = process_cpu_now();
    volatile std::uint64_t sink = 0;
    while (process_cpu_now() - start < 0.3) {
        for (int i = 0; i < 10'000; ++i) {
            sink = sink + static_cast<std::uint64_t>(i);
        }
    }
    const ProcSample after = sample_processes({self});
    const double burnt = after.cpu_s - before.cpu_s;
    // Clock ticks are 10 ms (USER_HZ 100); allow a few.
    EXPECT_GE(burnt, 0.25);
    EXPECT_LE(burnt, 0.6);
    EXPECT_NEAR(after.cpu_s, process_cpu_now(), 0.2);
}

TEST(SampleProcesses, UnknownPidIsUnknown) {
    const long missing = pid_max() + 1;
    const ProcSample s = sample_processes({missing});
    EXPECT_EQ(s.rss_kb, -1);
    EXPECT_LT(s.cpu_s, 0.0);
    // One unknown pid among known ones makes the whole sum unknown.
    EXPECT_EQ(sample_processes({static_cast<long>(::getpid()), missing}).rss_kb, -1);
    EXPECT_EQ(sample_processes({}).rss_kb, -1);
}

// ---------------------------------------------------------------------------------------
// Response heads

TEST(HttpText, StatusCode) {
    EXPECT_EQ(status_code("HTTP/1.1 200 OK"), 200);
    EXPECT_EQ(status_code("HTTP/1.1 404 Not Found\r\nContent-Length: 0"), 404);
    EXPECT_EQ(status_code("HTTP/1.0 503 Service Unavailable"), 503);
    EXPECT_EQ(status_code("http/1.1 301 Moved"), 301);
    EXPECT_EQ(status_code("HTTP/1.1 204"), 204);
    EXPECT_EQ(status_code("HTTP/1.1 20"), -1);
    EXPECT_EQ(status_code(""), -1);
    EXPECT_EQ(status_code("ICY 200 OK\r\n\r\n"), -1);
    EXPECT_EQ(status_code("HTTP/1.1 abc Nope"), -1);
    EXPECT_EQ(status_code("HTTP/1.1_200_OK_no_spaces"), -1);
}

TEST(HttpText, HeaderValue) {
    const std::string_view head = "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: text/event-stream\r\n"
                                  "X-Foo-Bar: long\r\n"
                                  "X-Foo:  \t short\r\n"
                                  "TRANSFER-ENCODING: chunked\r\n"
                                  "Empty:\r\n"
                                  "Connection: close";
    EXPECT_EQ(header_value(head, "content-type:"),
              std::optional<std::string_view>("text/event-stream"));
    EXPECT_EQ(header_value(head, "x-foo:"), std::optional<std::string_view>("short"));
    EXPECT_EQ(header_value(head, "x-foo-bar:"), std::optional<std::string_view>("long"));
    EXPECT_EQ(header_value(head, "transfer-encoding:"), std::optional<std::string_view>("chunked"));
    EXPECT_EQ(header_value(head, "Transfer-Encoding:"), std::optional<std::string_view>("chunked"));
    EXPECT_EQ(header_value(head, "empty:"), std::optional<std::string_view>(""));
    EXPECT_EQ(header_value(head, "connection:"), std::optional<std::string_view>("close"));
    EXPECT_EQ(header_value(head, "content-length:"), std::nullopt);
    EXPECT_EQ(header_value(head, "x-fo:"), std::nullopt);
    // The status line is no header.
    EXPECT_EQ(header_value("Content-Type: x", "content-type:"), std::nullopt);
    EXPECT_EQ(header_value("HTTP/1.1 200 OK", "content-type:"), std::nullopt);
    EXPECT_EQ(header_value("", "content-type:"), std::nullopt);
}

TEST(HttpText, HeaderValueGivesTheFirstOfRepeatedHeaders) {
    const std::string_view head = "HTTP/1.1 200 OK\r\nVia: one\r\nvia: two";
    EXPECT_EQ(header_value(head, "via:"), std::optional<std::string_view>("one"));
}

TEST(HttpText, IequalsPrefix) {
    EXPECT_TRUE(iequals_prefix("Content-Type: x", "content-type:"));
    EXPECT_TRUE(iequals_prefix("CLOSE", "close"));
    EXPECT_TRUE(iequals_prefix("close, upgrade", "Close"));
    EXPECT_TRUE(iequals_prefix("abc", ""));
    EXPECT_TRUE(iequals_prefix("", ""));
    EXPECT_FALSE(iequals_prefix("clos", "close"));
    EXPECT_FALSE(iequals_prefix("keep-alive", "close"));
    EXPECT_FALSE(iequals_prefix("", "x"));
    EXPECT_FALSE(iequals_prefix("x-foo", "x_foo"));
}

TEST(HttpText, FirstLine) {
    EXPECT_EQ(first_line("HTTP/1.1 403 Forbidden\r\nA: b"), "HTTP/1.1 403 Forbidden");
    EXPECT_EQ(first_line("HTTP/1.1 200 OK"), "HTTP/1.1 200 OK");
}

// ---------------------------------------------------------------------------------------
// Shared state

TEST(SharedState, FreshStateIsZero) {
    SharedState s(3, 2, 4, 1000);
    EXPECT_EQ(s.control().heads.load(), 0);
    EXPECT_EQ(s.control().failed.load(), 0);
    EXPECT_EQ(s.control().unique.load(), 0U);
    EXPECT_EQ(s.control().phase.load(), static_cast<int>(Phase::connecting));
    EXPECT_EQ(s.first_failure(), "");
    for (int t = 0; t < 3; ++t) {
        EXPECT_EQ(s.heads_of_topic(t).load(), 0) << t;
    }
    for (int p = 0; p < 2; ++p) {
        Tally& tally = s.tally(p);
        EXPECT_EQ(tally.deliveries, 0U);
        EXPECT_EQ(tally.bytes, 0U);
        EXPECT_EQ(tally.expected, 0U);
        EXPECT_EQ(tally.missing, 0U);
        EXPECT_EQ(tally.duplicates, 0U);
        EXPECT_EQ(tally.malformed, 0U);
        EXPECT_EQ(tally.stray, 0U);
        EXPECT_EQ(tally.subscribers_missing, 0);
        EXPECT_EQ(tally.disconnected, 0);
        EXPECT_EQ(tally.latency.count(), 0U);
        EXPECT_EQ(tally.done.load(), 0);
    }
    EXPECT_EQ(s.seq_capacity(), 1000U);
    EXPECT_EQ(s.words_per_publisher(), 16U);
    for (int p = 0; p < 4; ++p) {
        for (std::uint64_t seq = 0; seq < 1000; ++seq) {
            ASSERT_FALSE(s.acknowledged(p, seq)) << p << " " << seq;
        }
    }
}

TEST(SharedState, AcknowledgementBitsArePerPublisher) {
    SharedState s(1, 1, 3, 200);
    ASSERT_EQ(s.words_per_publisher(), 4U);
    EXPECT_EQ(s.acks(1), s.acks(0) + 4);
    EXPECT_EQ(s.acks(2), s.acks(0) + 8);

    s.acks(1)[0] |= std::uint64_t{1} << 5;
    s.acks(1)[1] |= std::uint64_t{1} << 0; // seq 64
    s.acks(1)[3] |= std::uint64_t{1} << 7; // seq 199, the last
    EXPECT_TRUE(s.acknowledged(1, 5));
    EXPECT_TRUE(s.acknowledged(1, 64));
    EXPECT_TRUE(s.acknowledged(1, 199));
    EXPECT_FALSE(s.acknowledged(1, 4));
    EXPECT_FALSE(s.acknowledged(1, 6));
    EXPECT_FALSE(s.acknowledged(1, 63));
    EXPECT_FALSE(s.acknowledged(1, 65));
    for (std::uint64_t seq = 0; seq < 200; ++seq) {
        EXPECT_FALSE(s.acknowledged(0, seq)) << seq;
        EXPECT_FALSE(s.acknowledged(2, seq)) << seq;
    }

    // Every bit of publisher 0 leaves its neighbour alone.
    for (std::size_t w = 0; w < s.words_per_publisher(); ++w) {
        s.acks(0)[w] = ~std::uint64_t{0};
    }
    for (std::uint64_t seq = 0; seq < 200; ++seq) {
        EXPECT_TRUE(s.acknowledged(0, seq)) << seq;
    }
    EXPECT_FALSE(s.acknowledged(1, 0));
    EXPECT_FALSE(s.acknowledged(1, 4));
}

TEST(SharedState, SeqAtOrPastCapacityIsNeverAcknowledged) {
    SharedState s(1, 1, 2, 100);
    ASSERT_EQ(s.words_per_publisher(), 2U);
    s.acks(0)[1] = ~std::uint64_t{0}; // seqs 64..127, 100 and up beyond the capacity
    EXPECT_TRUE(s.acknowledged(0, 64));
    EXPECT_TRUE(s.acknowledged(0, 99));
    EXPECT_FALSE(s.acknowledged(0, 100));
    EXPECT_FALSE(s.acknowledged(0, 127));
    EXPECT_FALSE(s.acknowledged(0, 128));
    EXPECT_FALSE(s.acknowledged(0, std::numeric_limits<std::uint64_t>::max()));

    SharedState none(1, 1, 0, 0);
    EXPECT_EQ(none.words_per_publisher(), 0U);
    EXPECT_FALSE(none.acknowledged(0, 0));
}

TEST(SharedState, LargeCapacityOnlyUsesTouchedPages) {
    // A billion sequence numbers for each of 4 publishers: 500 MB reserved, not used.
    const std::uint64_t capacity = 1'000'000'000;
    SharedState s(1, 1, 4, capacity);
    EXPECT_EQ(s.words_per_publisher(), (capacity + 63) / 64);
    const std::uint64_t last = capacity - 1;
    s.acks(3)[last / 64] |= std::uint64_t{1} << (last % 64);
    EXPECT_TRUE(s.acknowledged(3, last));
    EXPECT_FALSE(s.acknowledged(3, last - 1));
    EXPECT_FALSE(s.acknowledged(2, last));
    EXPECT_FALSE(s.acknowledged(3, capacity));
}

TEST(SharedState, FailKeepsTheFirstTextAndCountsEach) {
    SharedState s(1, 1, 1, 64);
    s.fail("connect: Connection refused");
    s.fail("second");
    s.fail("third");
    EXPECT_EQ(s.first_failure(), "connect: Connection refused");
    EXPECT_EQ(s.control().failed.load(), 3);

    SharedState t(1, 1, 1, 64);
    t.fail(std::string(1000, 'x'));
    EXPECT_EQ(t.first_failure(), std::string(255, 'x'));
    EXPECT_EQ(t.control().failed.load(), 1);
}

TEST(TopicOf, PublisherPlusSeqModuloTopics) {
    EXPECT_EQ(topic_of(0, 0, 1), 0);
    EXPECT_EQ(topic_of(3, 5, 4), 0);
    EXPECT_EQ(topic_of(3, 6, 4), 1);
    EXPECT_EQ(topic_of(2, 0, 3), 2);
    EXPECT_EQ(topic_of(1, 1'000'000'000'001ULL, 10), 2);
}

// The multi-process run: subscriber processes are forked after the mapping is made and
// talk to the parent through it alone.
TEST(SharedState, ForkedChildAndParentSeeEachOthersWrites) {
    SharedState s(2, 2, 1, 128);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0) << "fork failed";
    if (child == 0) {
        // Wait for the parent's word (written after the fork), then report.
        const std::int64_t deadline = now_ns() + 20'000'000'000LL;
        while (s.control().phase.load() != static_cast<int>(Phase::publishing)) {
            if (now_ns() > deadline) {
                ::_exit(2);
            }
            ::usleep(1000);
        }
        Tally& t = s.tally(1);
        t.deliveries = 42;
        t.bytes = 4200;
        t.missing = 3;
        t.latency.record(1000);
        t.latency.record(2000);
        s.heads_of_topic(1).fetch_add(1);
        s.control().heads.fetch_add(5);
        s.control().unique.fetch_add(40);
        s.acks(0)[1] |= std::uint64_t{1} << 2; // seq 66
        s.fail("child failed");
        t.done.store(1);
        ::_exit(0);
    }
    s.control().phase.store(static_cast<int>(Phase::publishing));
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0) << "the child never saw the parent's phase";

    const Tally& t = s.tally(1);
    EXPECT_EQ(t.done.load(), 1);
    EXPECT_EQ(t.deliveries, 42U);
    EXPECT_EQ(t.bytes, 4200U);
    EXPECT_EQ(t.missing, 3U);
    EXPECT_EQ(t.latency.count(), 2U);
    EXPECT_EQ(t.latency.max(), 2000U);
    EXPECT_EQ(s.tally(0).deliveries, 0U);
    EXPECT_EQ(s.tally(0).done.load(), 0);
    EXPECT_EQ(s.heads_of_topic(0).load(), 0);
    EXPECT_EQ(s.heads_of_topic(1).load(), 1);
    EXPECT_EQ(s.control().heads.load(), 5);
    EXPECT_EQ(s.control().unique.load(), 40U);
    EXPECT_TRUE(s.acknowledged(0, 66));
    EXPECT_FALSE(s.acknowledged(0, 65));
    EXPECT_EQ(s.first_failure(), "child failed");
    EXPECT_EQ(s.control().failed.load(), 1);

    Histogram merged;
    merged.merge(s.tally(0).latency);
    merged.merge(t.latency);
    EXPECT_EQ(merged.count(), 2U);
}

} // namespace
TEST(MakePlan, QueryWithoutPathStartsTheTarget) {
    Options o;
    o.sub_urls = {"http://h:81?topic={topic}"};
    const Plan p = make_plan(o);
    EXPECT_EQ(p.subs[0].host, "h");
    EXPECT_EQ(p.subs[0].port, "81");
    EXPECT_EQ(expand(p.subs[0].target, "a b"), "/?topic=a%20b");
}

TEST(HttpText, StatusCodeIsExactlyThreeDigits) {
    EXPECT_EQ(status_code("HTTP/1.1 2000 OK"), -1);
    EXPECT_EQ(status_code("HTTP/1.1 2x0 OK"), -1);
    EXPECT_EQ(status_code("HTTP/1.1 -20 Bad"), -1);
    EXPECT_EQ(status_code("HTTP/1.1 20 OK\r\nA: b"), -1);
    EXPECT_EQ(status_code("HTTP/1.1 204\r\nA: b"), 204);
    EXPECT_EQ(status_code("HTTP/1.1 201 Created"), 201);
}

TEST(FormatNs, NoUnitPrintsTenThousand) {
    EXPECT_EQ(format_ns(9'999'949), "9999.9 us");
    EXPECT_EQ(format_ns(9'999'999), "10.0 ms");
    EXPECT_EQ(format_ns(9'999'999'999), "10.00 s");
}

} // namespace herald::bench
