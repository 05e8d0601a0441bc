// The bytes of HTTP/1.1 requests turned into Requests: Beast's parser, the checks RFC 9112
// asks of a server before it reads a body, and the target, query and headers as the router
// reads them. No socket: Http1Session feeds it what it reads, and the fuzz target feeds it
// inputs cut at random places. One reader per connection, used by one thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "http/errors.hpp"
#include "http/request.hpp"

namespace herald::http {

class RequestReader {
public:
    // The header section's limit; a request line alone over it is 414.
    static constexpr std::size_t kHeaderLimit = 8 * 1024;

    RequestReader();
    ~RequestReader();
    RequestReader(const RequestReader&) = delete;
    RequestReader& operator=(const RequestReader&) = delete;

    // Begins the next request, whose body may have up to `body_limit` bytes. Bytes that
    // came after the previous request (pipelined) are kept and read first.
    void start(std::size_t body_limit);

    // Reads `bytes` (any piece of the stream, possibly empty): true once the request is
    // whole or refused. `send_continue` is called when the header asks for 100-continue
    // and the body is still to come; it returns false when the interim answer could not be
    // sent, and the request is then refused. The bytes past a whole request are kept for
    // the next start().
    [[nodiscard]] bool feed(std::string_view bytes, const std::function<bool()>& send_continue);

    // Once feed() returned true: why the request is refused, if it is, with a detail for
    // the error sentence (the body limit, the parser's complaint).
    [[nodiscard]] const std::optional<HttpError>& refused() const noexcept { return refused_; }
    [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

    // Once feed() returned true and nothing was refused: the request (its body moved out),
    // or HttpError::bad_target when its target is not a path.
    [[nodiscard]] std::variant<Request, HttpError> take_request();

    // The values of every `Forwarded` and `X-Forwarded-For` field of the request, in order;
    // valid until the next start().
    [[nodiscard]] std::vector<std::string_view> forwarded() const;
    [[nodiscard]] std::vector<std::string_view> x_forwarded_for() const;

    // Whether any byte of the current request has arrived.
    [[nodiscard]] bool started() const noexcept { return consumed_ > 0 || !pending_.empty(); }
    // Whether bytes past the last request wait to be read.
    [[nodiscard]] bool has_pending() const noexcept { return !pending_.empty(); }

private:
    struct Parser; // Beast's parser, kept out of this header
    [[nodiscard]] bool check_header(const std::function<bool()>& send_continue);

    std::unique_ptr<Parser> parser_;
    std::string pending_;      // bytes the parser has not consumed yet
    std::size_t consumed_ = 0; // bytes of this request the parser has taken
    std::size_t body_limit_ = 0;
    bool header_checked_ = false;
    std::optional<HttpError> refused_;
    std::string detail_;
};

} // namespace herald::http
