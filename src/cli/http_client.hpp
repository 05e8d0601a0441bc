// The HTTP/1.1 client under `herald pub` and `herald sub`: one connection to the hub at a
// time, kept alive between requests, with timeouts, and an SSE response read as it arrives.
// Synchronous for its caller; Asio and Beast stay in http_client.cpp.
#pragma once

#include "cli/url.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::cli {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    unsigned status = 0;
    std::string content_type;
    std::string body; // for a stream, only when it was not a 200 event stream
};

// Why a request failed before a response arrived: a sentence naming the hub and the cause
// ("cannot connect to 127.0.0.1:8080: Connection refused").
class NetworkError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown out of a waiting call once SIGINT or SIGTERM arrived (see stop_on_signals()).
class Interrupted : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override { return "interrupted"; }
};

// Not thread-safe; one per command.
class HttpClient {
public:
    // `token`, when not empty, goes with every request as `Authorization: Bearer`.
    HttpClient(HubUrl url, std::string token);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // From now on SIGINT and SIGTERM no longer end the process: the call waiting at that
    // moment (or the next one) throws Interrupted instead, so the command can exit cleanly.
    void stop_on_signals();

    // Sends one request and reads the whole response, on the kept-alive connection when
    // there is one. If the hub had closed that connection (an idle keep-alive timeout) before
    // answering, the request goes once more on a new connection. `target` is the path (with
    // query) below the base URL. Throws NetworkError, Interrupted.
    [[nodiscard]] HttpResponse request(std::string_view method, std::string_view target,
                                       const Headers& headers, std::string body);

    struct StreamEnd {
        HttpResponse response;     // status and content type; body if not an event stream
        bool event_stream = false; // a 200 text/event-stream response, passed to on_data
        std::string error;         // why an event stream broke off; "" if it ended or stopped
    };
    // GETs `target` on a new connection. When the answer is a 200 `text/event-stream`,
    // calls `on_data` with each piece of the body as soon as it arrives, until the hub ends
    // the response, the connection breaks (StreamEnd::error) or `on_data` returns false.
    // Any other answer is read whole (up to 64 KiB) and returned. Throws NetworkError when
    // the hub cannot be reached or sends no response head; Interrupted.
    [[nodiscard]] StreamEnd stream(std::string_view target, const Headers& headers,
                                   const std::function<bool(std::string_view)>& on_data);

    // Waits, or throws Interrupted.
    void sleep(std::chrono::milliseconds duration);

    [[nodiscard]] const HubUrl& url() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The message of an error response: the `error` member of herald's JSON body, else the
// body's text (trimmed), else "HTTP error".
[[nodiscard]] std::string error_message(const HttpResponse& response);

} // namespace herald::cli
