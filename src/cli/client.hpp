// The client commands `herald pub` and `herald sub`: what main.cpp fills from the command
// line and the environment, and the entry points it calls. Each returns the exit code.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace herald::cli {

// Common to both commands. main fills them from --url/HERALD_URL and --token/HERALD_TOKEN.
struct ClientOptions {
    std::string url = "http://127.0.0.1:8080"; // the hub's base URL (http:// only)
    std::string token;                         // sent as `Authorization: Bearer` if not empty
};

struct PubOptions {
    std::string topic;
    std::optional<std::string> data; // none: each line of stdin is one event
    std::string event;               // the event type; "" for none
    std::string id;                  // an id chosen by the publisher; "" lets the hub choose
    bool json_output = false;        // print `{"id": ...}` rather than the bare id
};

struct SubOptions {
    std::vector<std::string> topics;  // none: every topic the token may read
    bool json = false;                // one `{"id","event","data"}` object a line
    std::string last_event_id;        // resume after this id ("" to start live)
    std::optional<std::size_t> count; // exit 0 after this many events
};

// Publishes `data`, or each non-empty line of stdin (over one kept-alive connection), and
// prints each event id on stdout. Errors go to stderr as `herald pub: <status> <message>`
// or `herald pub: <what went wrong>`. Returns 0 if every publish succeeded, else 1.
[[nodiscard]] int run_pub(const ClientOptions& client, const PubOptions& options);

// Subscribes and prints each event's data (or JSON) on stdout, flushed per event, until
// `count` events, SIGINT or SIGTERM (0), or a refusal by the hub (4xx, 1). Reconnects after
// the hub's retry delay, sending Last-Event-ID, so nothing is missed or repeated; backs off
// up to 30 s while the hub cannot be reached. Installs its own SIGINT/SIGTERM handling.
[[nodiscard]] int run_sub(const ClientOptions& client, const SubOptions& options);

} // namespace herald::cli
