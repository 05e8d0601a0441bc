// `herald sub TOPIC...`: follows GET /events as an EventSource does (same parsing, same
// reconnection with Last-Event-ID) and prints each event's data, or a JSON line per event.
#include "cli/client.hpp"
#include "cli/http_client.hpp"
#include "cli/url.hpp"
#include "sse/parser.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

namespace herald::cli {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kDefaultRetry{3000}; // EventSource's usual default
constexpr milliseconds kMinBackoff{100};    // even if the hub asked for `retry: 0`
constexpr milliseconds kMaxBackoff{30000};

void print_error(std::string_view message) {
    std::fprintf(stderr, "herald sub: %.*s\n", static_cast<int>(message.size()), message.data());
}

// Thrown when stdout is gone (the reader of a pipe exited): nobody is listening any more.
struct OutputClosed {};

void print_event(const sse::ParsedEvent& event, bool json) {
    std::string line;
    if (json) {
        nlohmann::ordered_json object{
            {"id", event.id}, {"event", event.type}, {"data", event.data}};
        line = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
        line = event.data;
    }
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    if (std::fflush(stdout) != 0) {
        throw OutputClosed();
    }
}

std::string events_target(const std::vector<std::string>& topics) {
    std::string target = "/events";
    char sep = '?';
    for (const auto& topic : topics) {
        target += sep;
        target += "topic=" + percent_encode(topic);
        sep = '&';
    }
    return target;
}

} // namespace

int run_sub(const ClientOptions& client_options, const SubOptions& options) {
    HubUrl url;
    try {
        url = parse_hub_url(client_options.url);
    } catch (const UrlError& e) {
        print_error(e.what());
        return 1;
    }
    if (options.count && *options.count == 0) {
        return 0;
    }
    HttpClient client(std::move(url), client_options.token);
    client.stop_on_signals();
    const std::string target = events_target(options.topics);
    sse::Parser parser(options.last_event_id);
    std::size_t printed = 0;
    milliseconds failed_wait{0}; // the wait after the last failure; 0 after a good stream

    try {
        for (;;) {
            Headers headers{{"Accept", "text/event-stream"}, {"Cache-Control", "no-cache"}};
            if (!parser.last_event_id().empty()) {
                headers.emplace_back("Last-Event-ID", parser.last_event_id());
            }
            parser.reset_stream();
            bool finished = false;
            bool failed = false; // no stream: the hub unreachable or failing (5xx)
            std::string why;
            try {
                const auto end = client.stream(target, headers, [&](std::string_view bytes) {
                    parser.feed(bytes, [&](const sse::ParsedEvent& event) {
                        if (finished) {
                            return;
                        }
                        print_event(event, options.json);
                        finished = options.count && ++printed >= *options.count;
                    });
                    return !finished;
                });
                if (finished) {
                    return 0;
                }
                const unsigned status = end.response.status;
                if (end.event_stream) {
                    // A stream that ended (the hub draining, a network cut): come back
                    // after the hub's retry delay, as EventSource does.
                    failed_wait = milliseconds{0};
                    why = end.error.empty() ? "the hub ended the stream"
                                            : "the stream broke off (" + end.error + ")";
                } else if (status >= 500) {
                    failed = true;
                    why = std::to_string(status) + " " + error_message(end.response);
                } else if (status >= 400) {
                    // The hub refuses us for a reason we must fix (token, topics): retrying
                    // cannot help.
                    print_error(std::to_string(status) + " " + error_message(end.response));
                    return 1;
                } else {
                    const std::string type = end.response.content_type.empty()
                                                 ? std::string("no content type")
                                                 : end.response.content_type;
                    print_error("unexpected response " + std::to_string(status) + " (" + type +
                                "), not an event stream");
                    return 1;
                }
            } catch (const NetworkError& e) {
                failed = true;
                why = e.what();
            }

            const milliseconds retry =
                parser.retry_ms() ? milliseconds{*parser.retry_ms()} : kDefaultRetry;
            milliseconds wait = retry;
            if (failed) {
                // The retry delay, then doubling up to 30 s (or the hub's delay if longer).
                const milliseconds first = std::max(retry, kMinBackoff);
                wait = failed_wait.count() == 0
                           ? first
                           : std::min(failed_wait * 2, std::max(kMaxBackoff, first));
                failed_wait = wait;
            }
            print_error(why + "; reconnecting in " + std::to_string(wait.count()) + " ms");
            client.sleep(wait);
        }
    } catch (const Interrupted&) {
        return 0;
    } catch (const OutputClosed&) {
        return 0;
    }
}

} // namespace herald::cli
