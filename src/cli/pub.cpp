// `herald pub TOPIC [DATA]`: publishes one event, or one per line of stdin, with
// POST /events, and prints the ids the hub assigned.
#include "cli/client.hpp"
#include "cli/http_client.hpp"
#include "cli/url.hpp"

#include "base/json_depth.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <string>

namespace herald::cli {

namespace {

void print_line(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

void print_error(std::string_view message) {
    std::fprintf(stderr, "herald pub: %.*s\n", static_cast<int>(message.size()), message.data());
}

std::string trim_newlines(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
        s.pop_back();
    }
    return s;
}

// One POST /events; prints the id, or the error. Returns whether the hub took the event.
bool publish(HttpClient& client, const PubOptions& options, std::string_view data) {
    std::string body = "topic=" + percent_encode(options.topic) + "&data=" + percent_encode(data);
    if (!options.event.empty()) {
        body += "&event=" + percent_encode(options.event);
    }
    if (!options.id.empty()) {
        body += "&id=" + percent_encode(options.id);
    }
    Headers headers{{"Content-Type", "application/x-www-form-urlencoded"}};
    if (options.json_output) {
        headers.emplace_back("Accept", "application/json");
    }
    HttpResponse res;
    try {
        res = client.request("POST", "/events", headers, std::move(body));
    } catch (const NetworkError& e) {
        print_error(e.what());
        return false;
    }
    if (res.status < 200 || res.status > 299) {
        print_error(std::to_string(res.status) + " " + error_message(res));
        return false;
    }
    if (!options.json_output) {
        print_line(trim_newlines(res.body));
        return true;
    }
    // Checked before parsing: dump() below recurses once per level, and no hub's answer
    // needs to nest at all.
    if (!base::json_depth_within(res.body)) {
        print_error("the answer nests JSON more than " + std::to_string(base::kMaxJsonDepth) +
                    " levels deep: not a hub's answer");
        return false;
    }
    // The hub answers JSON when asked; an older or foreign one may still send the bare id.
    auto json = nlohmann::json::parse(res.body, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
        json = nlohmann::json{{"id", trim_newlines(res.body)}};
    }
    print_line(json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return true;
}

} // namespace

int run_pub(const ClientOptions& client_options, const PubOptions& options) {
    HubUrl url;
    try {
        url = parse_hub_url(client_options.url);
    } catch (const UrlError& e) {
        print_error(e.what());
        return 1;
    }
    HttpClient client(std::move(url), client_options.token);
    if (options.data) {
        return publish(client, options, *options.data) ? 0 : 1;
    }
    // One event per line, all over the same kept-alive connection. Blank lines carry no
    // event; a CR before the LF (a file written on Windows) is not part of the data.
    bool all_ok = true;
    std::string line;
    while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (line.empty()) {
            continue;
        }
        all_ok = publish(client, options, line) && all_ok;
    }
    return all_ok ? 0 : 1;
}

} // namespace herald::cli
