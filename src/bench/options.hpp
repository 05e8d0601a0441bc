// `herald bench`: what the command line sets, and the targets it is turned into. The load
// generator drives any SSE server: the subscribe and publish URLs and the publish body are
// templates, so nginx+Nchan or Pushpin are measured by the same code as herald.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::bench {

struct Options {
    // Each entry one URL or a comma-separated list of them; the lists are joined in order.
    // Several targets are used round-robin (see Plan).
    std::vector<std::string> urls = {"http://127.0.0.1:8080"};
    std::vector<std::string> sub_urls; // none: URL/events?topic={topic} for each URL
    std::vector<std::string> pub_urls; // none: URL/events for each URL
    std::string pub_body = "topic={topic:form}&data={data:form}";
    std::string pub_content_type = "application/x-www-form-urlencoded";
    std::vector<std::string> headers; // "Name: value", on every request

    int subscribers = 100;
    std::string topic = "bench";
    bool topic_given = false;
    int topics = 1;
    int processes = 1;
    int threads = 1; // epoll threads per process
    int connect_window = 512;
    int source_ips = 1;

    int publishers = 4;
    double rate = 0; // publishes/s in all; 0: as fast as possible
    double duration = 10;
    int payload = 64;
    bool idle = false;

    int stalled = 0;  // extra subscribers that never read (not counted in the results)
    double churn = 0; // extra connections opened and closed per second while publishing
    double churn_hold_ms = 100;

    std::vector<long> pids;
    std::vector<std::string> aux_pids; // "NAME=PID[,PID...]", as given
    double settle = 1;
    double drain = 5;
    double connect_timeout = 120;
    std::string label;
    bool json = false;
};

// A template cut into literal text and placeholders.
enum class Field : std::uint8_t { literal, topic, topic_form, data, data_form, data_json };
struct Piece {
    Field field = Field::literal;
    std::string text;
};
using Template = std::vector<Piece>;

// An http:// URL template: where to connect, and the request target with {topic} in it.
struct Endpoint {
    std::string url; // as given
    std::string host;
    std::string port;
    Template target; // path and query
    std::string host_header;
};

// Processes measured beside the server, under a name of their own (--aux-pid).
struct AuxProcess {
    std::string name;
    std::vector<long> pids; // summed
};

// Everything derived from Options once, validated.
//
// With several targets, connections are dealt round-robin: subscriber i (in the whole run,
// whichever process holds it) subscribes through subs[i % subs.size()], publisher p
// publishes through pubs[p % pubs.size()]; churn and stalled connections take the
// subscribe targets in turn. Losses stay exact: a subscriber expects every acknowledged
// event of its topic, whichever target it was published through.
struct Plan {
    std::vector<Endpoint> subs; // never empty
    std::vector<Endpoint> pubs; // never empty
    Template body;
    std::string extra_headers; // "Name: value\r\n" lines
    std::vector<std::string> topic_names;
    std::vector<AuxProcess> aux; // in the order of first mention

    [[nodiscard]] std::size_t sub_target(long subscriber) const {
        return static_cast<std::size_t>(subscriber) % subs.size();
    }
    [[nodiscard]] std::size_t pub_target(long publisher) const {
        return static_cast<std::size_t>(publisher) % pubs.size();
    }
};

// How many of `count` connections dealt round-robin over `targets` (above 0) fall on
// target `t`: what Plan::sub_target and pub_target give.
[[nodiscard]] inline int dealt_to(int count, std::size_t targets, std::size_t t) {
    const auto n = static_cast<std::size_t>(count);
    return static_cast<int>(n / targets + (t < n % targets ? 1 : 0));
}

// The placeholders a template may hold; `allowed` lists which (URLs take {topic} only).
// Throws std::invalid_argument naming `what` on an unknown {placeholder}.
Template parse_template(std::string_view text, std::string_view what, bool body);
std::string expand(const Template& t, std::string_view topic, std::string_view data = {});

// Checks ranges and templates and builds the plan; throws std::invalid_argument with a
// message naming the option at fault.
Plan make_plan(Options& o);

// The URLs of a repeatable option whose values may be comma-separated lists, in order;
// throws std::invalid_argument naming `what` on an empty item ("a,,b", a trailing comma).
std::vector<std::string> split_list(const std::vector<std::string>& values, std::string_view what);

// "NAME=PID[,PID...]" entries of --aux-pid, merged by name (a name given twice sums the
// pids of both); throws std::invalid_argument naming --aux-pid on a bad entry.
std::vector<AuxProcess> parse_aux_pids(const std::vector<std::string>& values);

std::string json_escape(std::string_view s);

} // namespace herald::bench
