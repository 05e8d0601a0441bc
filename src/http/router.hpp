// The router: what herald does with one parsed request, whatever protocol carried it.
// It authenticates, routes, runs the handlers and the publish pipeline, and answers
// through the Exchange the session gives it; only the session knows the wire.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/authenticator.hpp"
#include "http/context.hpp"
#include "http/handlers.hpp"
#include "http/request.hpp"

namespace herald::http {

// One request's way back to its client, implemented by each protocol's session. Worker
// thread only.
class Exchange {
public:
    [[nodiscard]] virtual WorkerContext& context() noexcept = 0;
    // The final answer. Ignored once the exchange no longer waits for one (its connection
    // closed meanwhile).
    virtual void respond(Response&& response) = 0;
    // Turns the exchange into an SSE stream that subscribes and replays; its response
    // carries stream_headers() for `request` and the protocol's own.
    virtual void open_stream(const Request& request, Subscription&& subscription,
                             auth::PrincipalPtr who) = 0;
    // Whether the exchange still waits for its answer.
    [[nodiscard]] virtual bool waiting() const noexcept = 0;
    // Keeps the exchange alive across asynchronous work (a publish settling on the store's
    // thread); check waiting() when that work comes back.
    [[nodiscard]] virtual std::shared_ptr<Exchange> hold() = 0;
    // Who the request is from, for the access log: "ADDRESS:PORT" of the peer, or
    // "CLIENT via ADDRESS:PORT" when a trusted proxy named the client
    // (server.trusted_proxies).
    [[nodiscard]] virtual std::string remote() const = 0;

protected:
    ~Exchange() = default;
};

// Handles a whole request. HEAD is answered as GET would be, without the body.
void handle_request(Exchange& exchange, Request&& request);

// Answers with CORS headers added and the access log line written.
void answer(Exchange& exchange, const Request& request, Response&& response);

// The headers of a stream's 200 response beyond the protocol's own; the CORS ones only
// with `cors` (answer() adds them to the head that HEAD gets).
[[nodiscard]] std::vector<std::pair<std::string, std::string>>
stream_headers(const Services& services, const Request& request,
               const std::optional<std::string>& resume_header, bool cors = true);

} // namespace herald::http
