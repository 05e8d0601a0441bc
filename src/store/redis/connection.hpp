// One synchronous connection to Redis (a hiredis context) with a timeout on every call:
// connecting, AUTH, SELECT, loading the scripts, commands one at a time or pipelined.
//
// Not thread-safe: one thread uses a connection at a time (the pool hands them over under
// its mutex). Failures are results, not exceptions: a call that gets no reply leaves the
// connection broken() with error() saying why, and its owner drops it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "store/redis/scripts.hpp"
#include "store/redis/url.hpp"

struct redisContext;
struct redisReply;

namespace herald::store::redis {

// A reply from Redis (possibly an error reply), or none when the connection failed.
class Reply {
public:
    Reply() = default;
    explicit Reply(redisReply* reply);

    [[nodiscard]] explicit operator bool() const noexcept { return reply_ != nullptr; }
    [[nodiscard]] const redisReply* get() const noexcept { return reply_.get(); }
    [[nodiscard]] bool is_error() const noexcept;
    // The text of a string, status or error reply (empty otherwise).
    [[nodiscard]] std::string_view text() const noexcept;

private:
    struct Free {
        void operator()(redisReply* r) const noexcept;
    };
    std::unique_ptr<redisReply, Free> reply_;
};

// Reading parts of a reply. Each accepts a null pointer (an absent element).
[[nodiscard]] bool is_nil(const redisReply* r) noexcept;
[[nodiscard]] std::string_view text_of(const redisReply* r) noexcept;
[[nodiscard]] std::size_t size_of(const redisReply* r) noexcept; // elements of an array
[[nodiscard]] const redisReply* element(const redisReply* r, std::size_t i) noexcept;
// An integer reply, or a string reply holding a decimal.
[[nodiscard]] std::optional<std::uint64_t> number_of(const redisReply* r) noexcept;

class Connection {
public:
    struct Options {
        bool load_scripts = true;   // SCRIPT LOAD each script (not for a subscriber)
        bool check_version = false; // refuse a server older than Redis 7
    };

    // Connects (within `timeout`), authenticates, selects the database, and sets `timeout` on
    // every later call. On failure, null, with `error` a sentence for an operator (it never
    // holds the password).
    [[nodiscard]] static std::unique_ptr<Connection> open(const RedisUrl& url,
                                                          std::chrono::milliseconds timeout,
                                                          Options options, std::string& error);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // One command and its reply.
    [[nodiscard]] Reply call(std::span<const std::string_view> args);
    [[nodiscard]] Reply call(std::initializer_list<std::string_view> args) {
        return call(std::span(args.begin(), args.size()));
    }
    // Runs a script by its SHA-1, loading the scripts again when Redis has lost them
    // (NOSCRIPT: a restart, SCRIPT FLUSH).
    [[nodiscard]] Reply eval(Script script, std::span<const std::string_view> args);

    // Pipelining: queue commands, then take their replies in order. Queued commands are
    // written when the first reply is asked for.
    void send(std::span<const std::string_view> args);
    void send_eval(Script script, std::span<const std::string_view> args);
    [[nodiscard]] Reply receive();

    // SCRIPT LOAD of every script; false (and broken) when that fails.
    bool load_scripts();

    // The limit on each later read and write (at least 1 ms).
    void set_timeout(std::chrono::milliseconds timeout);
    [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }

    // Whether an idle connection is still open: Redis sends nothing unasked, so a readable
    // socket means it closed the connection (a restart, CLIENT KILL, its idle timeout).
    // Checked before reusing a connection, so that nothing is sent into a dead one.
    [[nodiscard]] bool still_open();

    [[nodiscard]] bool broken() const noexcept { return !error_.empty(); }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    // The socket, for poll().
    [[nodiscard]] int fd() const noexcept;
    [[nodiscard]] redisContext* raw() noexcept { return ctx_; }
    // Records why the connection cannot be used any more (and says so from then on).
    void fail(std::string why);
    // Why the last I/O failed, in words; marks the connection broken.
    void fail_from_context();

private:
    Connection(redisContext* ctx, std::chrono::milliseconds timeout);
    redisContext* ctx_;
    std::chrono::milliseconds timeout_;
    std::string error_;
    std::array<std::string, kScriptCount> shas_;
};

} // namespace herald::store::redis
