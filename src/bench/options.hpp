// `herald bench`: what the command line sets, and the targets it is turned into. The load
// generator drives any SSE server: the subscribe and publish URLs and the publish body are
// templates, so nginx+Nchan or Pushpin are measured by the same code as herald.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::bench {

struct Options {
    std::string url = "http://127.0.0.1:8080";
    std::string sub_url; // "" = URL/events?topic={topic}
    std::string pub_url; // "" = URL/events
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
    std::string host;
    std::string port;
    Template target; // path and query
    std::string host_header;
};

// Everything derived from Options once, validated.
struct Plan {
    Endpoint sub;
    Endpoint pub;
    Template body;
    std::string extra_headers; // "Name: value\r\n" lines
    std::vector<std::string> topic_names;
};

// The placeholders a template may hold; `allowed` lists which (URLs take {topic} only).
// Throws std::invalid_argument naming `what` on an unknown {placeholder}.
Template parse_template(std::string_view text, std::string_view what, bool body);
std::string expand(const Template& t, std::string_view topic, std::string_view data = {});

// Checks ranges and templates and builds the plan; throws std::invalid_argument with a
// message naming the option at fault.
Plan make_plan(Options& o);

std::string json_escape(std::string_view s);

} // namespace herald::bench
