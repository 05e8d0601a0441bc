// hiredis behind a small RAII type. Every failure becomes a sentence naming what Redis or
// the socket said; none holds the password (AUTH errors are described, not quoted).
#include "store/redis/connection.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

namespace herald::store::redis {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
    const auto total = std::max<std::int64_t>(ms.count(), 1);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(total / 1000);
    tv.tv_usec = static_cast<suseconds_t>((total % 1000) * 1000);
    return tv;
}

// What a failed socket or protocol step of `ctx` means, for an operator.
std::string describe(const redisContext* ctx, std::chrono::milliseconds timeout) {
    const std::string_view what = ctx->errstr;
    if (ctx->err == REDIS_ERR_EOF) {
        return "Redis closed the connection";
    }
    if (ctx->err == REDIS_ERR_IO &&
        (what == std::strerror(EAGAIN) || what == std::strerror(EWOULDBLOCK) ||
         what == std::strerror(ETIMEDOUT) || what == std::strerror(EINPROGRESS))) {
        return "no answer from Redis within " + std::to_string(timeout.count()) + " ms";
    }
    return std::string(what.empty() ? "connection error" : what);
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// The major version in INFO's `redis_version:7.0.15`.
std::optional<unsigned> major_version(std::string_view info, std::string& version) {
    constexpr std::string_view kKey = "redis_version:";
    const auto at = info.find(kKey);
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view rest = info.substr(at + kKey.size());
    version = std::string(rest.substr(0, rest.find_first_of("\r\n")));
    unsigned major = 0;
    auto [p, ec] = std::from_chars(version.data(), version.data() + version.size(), major);
    if (ec != std::errc()) {
        return std::nullopt;
    }
    return major;
}

} // namespace

// ---- replies ----

Reply::Reply(redisReply* reply) : reply_(reply) {}

void Reply::Free::operator()(redisReply* r) const noexcept {
    freeReplyObject(r);
}

bool Reply::is_error() const noexcept {
    return reply_ && reply_->type == REDIS_REPLY_ERROR;
}

std::string_view Reply::text() const noexcept {
    return text_of(reply_.get());
}

bool is_nil(const redisReply* r) noexcept {
    return r == nullptr || r->type == REDIS_REPLY_NIL;
}

std::string_view text_of(const redisReply* r) noexcept {
    if (r == nullptr || r->str == nullptr ||
        (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS &&
         r->type != REDIS_REPLY_ERROR)) {
        return {};
    }
    return {r->str, r->len};
}

std::size_t size_of(const redisReply* r) noexcept {
    return r != nullptr && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

const redisReply* element(const redisReply* r, std::size_t i) noexcept {
    return i < size_of(r) ? r->element[i] : nullptr;
}

std::optional<std::uint64_t> number_of(const redisReply* r) noexcept {
    if (r == nullptr) {
        return std::nullopt;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        if (r->integer < 0) {
            return std::nullopt;
        }
        return static_cast<std::uint64_t>(r->integer);
    }
    const std::string_view s = text_of(r);
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

// ---- connections ----

Connection::Connection(redisContext* ctx, std::chrono::milliseconds timeout)
    : ctx_(ctx), timeout_(timeout) {}

Connection::~Connection() {
    redisFree(ctx_);
}

std::unique_ptr<Connection> Connection::open(const RedisUrl& url, std::chrono::milliseconds timeout,
                                             Options options, std::string& error) {
    redisContext* ctx = redisConnectWithTimeout(url.host.c_str(), url.port, to_timeval(timeout));
    if (ctx == nullptr) {
        error = "cannot allocate a Redis connection";
        return nullptr;
    }
    if (ctx->err != 0) {
        error = "cannot connect: " + describe(ctx, timeout);
        redisFree(ctx);
        return nullptr;
    }
    std::unique_ptr<Connection> conn(new Connection(ctx, timeout));
    conn->set_timeout(timeout);
    auto io_failed = [&](std::string_view step) {
        error = std::string(step) + ": " + conn->error();
        return nullptr;
    };

    if (!url.password.empty()) {
        Reply r = url.user.empty() ? conn->call({"AUTH", url.password})
                                   : conn->call({"AUTH", url.user, url.password});
        if (!r) {
            return io_failed("cannot authenticate");
        }
        if (r.is_error()) {
            const std::string_view text = r.text();
            if (starts_with(text, "WRONGPASS") || starts_with(text, "ERR invalid password")) {
                error = "Redis refused the password" +
                        std::string(url.user.empty() ? "" : " of user " + url.user);
            } else if (text.find("without any password configured") != std::string_view::npos) {
                error = "the URL gives a password, but this Redis has none configured";
            } else {
                error =
                    "authentication failed (" + std::string(text.substr(0, text.find(' '))) + ")";
            }
            return nullptr;
        }
    }
    // SELECT even database 0: it is also where a missing password shows (NOAUTH).
    const std::string db = std::to_string(url.db);
    Reply selected = conn->call({"SELECT", db});
    if (!selected) {
        return io_failed("cannot select the database");
    }
    if (selected.is_error()) {
        const std::string_view text = selected.text();
        if (starts_with(text, "NOAUTH")) {
            error = "Redis asks for a password: give it in the URL "
                    "(redis://:PASSWORD@HOST:PORT)";
        } else if (text.find("out of range") != std::string_view::npos) {
            error = "database " + db + " does not exist on this Redis (its `databases` setting " +
                    "is lower)";
        } else {
            error = "cannot select database " + db + ": " + std::string(text);
        }
        return nullptr;
    }
    if (options.check_version) {
        Reply info = conn->call({"INFO", "server"});
        if (!info) {
            return io_failed("cannot read the server's version");
        }
        std::string version;
        auto major = major_version(text_of(info.get()), version);
        if (!major) {
            error = "cannot read the server's version (INFO server has no redis_version)";
            return nullptr;
        }
        if (*major < 7) {
            error = "Redis 7 or newer is needed; this server runs " + version;
            return nullptr;
        }
    }
    if (options.load_scripts && !conn->load_scripts()) {
        error = "cannot load the scripts: " + conn->error();
        return nullptr;
    }
    return conn;
}

void Connection::set_timeout(std::chrono::milliseconds timeout) {
    timeout_ = std::max(timeout, std::chrono::milliseconds(1));
    if (redisSetTimeout(ctx_, to_timeval(timeout_)) != REDIS_OK && !broken()) {
        fail("cannot set the socket timeout");
    }
}

bool Connection::still_open() {
    if (broken()) {
        return false;
    }
    pollfd p{ctx_->fd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 0) {
        fail("Redis closed the connection");
        return false;
    }
    return true;
}

int Connection::fd() const noexcept {
    return ctx_->fd;
}

void Connection::fail(std::string why) {
    if (error_.empty()) {
        error_ = std::move(why);
    }
}

void Connection::fail_from_context() {
    fail(ctx_->err != 0 ? describe(ctx_, timeout_) : "connection error");
}

namespace {

struct Argv {
    mutable std::vector<const char*> ptrs; // hiredis takes `const char**`
    std::vector<std::size_t> lens;
    explicit Argv(std::span<const std::string_view> args) {
        ptrs.reserve(args.size());
        lens.reserve(args.size());
        for (auto a : args) {
            ptrs.push_back(a.data());
            lens.push_back(a.size());
        }
    }
    [[nodiscard]] int argc() const { return static_cast<int>(ptrs.size()); }
};

std::vector<std::string_view> evalsha_args(std::string_view sha,
                                           std::span<const std::string_view> args) {
    std::vector<std::string_view> out;
    out.reserve(args.size() + 3);
    out.push_back("EVALSHA");
    out.push_back(sha);
    out.push_back("0");
    out.insert(out.end(), args.begin(), args.end());
    return out;
}

} // namespace

Reply Connection::call(std::span<const std::string_view> args) {
    if (broken()) {
        return {};
    }
    const Argv argv(args);
    void* reply = redisCommandArgv(ctx_, argv.argc(), argv.ptrs.data(), argv.lens.data());
    if (reply == nullptr) {
        fail_from_context();
        return {};
    }
    return Reply(static_cast<redisReply*>(reply));
}

Reply Connection::eval(Script script, std::span<const std::string_view> args) {
    const auto& sha = shas_[static_cast<std::size_t>(script)];
    Reply r = call(evalsha_args(sha, args));
    if (r.is_error() && starts_with(r.text(), "NOSCRIPT")) {
        if (!load_scripts()) {
            return {};
        }
        r = call(evalsha_args(sha, args));
    }
    return r;
}

void Connection::send(std::span<const std::string_view> args) {
    if (broken()) {
        return;
    }
    const Argv argv(args);
    if (redisAppendCommandArgv(ctx_, argv.argc(), argv.ptrs.data(), argv.lens.data()) != REDIS_OK) {
        fail_from_context();
    }
}

void Connection::send_eval(Script script, std::span<const std::string_view> args) {
    send(evalsha_args(shas_[static_cast<std::size_t>(script)], args));
}

Reply Connection::receive() {
    if (broken()) {
        return {};
    }
    void* reply = nullptr;
    if (redisGetReply(ctx_, &reply) != REDIS_OK || reply == nullptr) {
        fail_from_context();
        return {};
    }
    return Reply(static_cast<redisReply*>(reply));
}

bool Connection::load_scripts() {
    for (std::size_t i = 0; i < kScriptCount; ++i) {
        Reply r = call({"SCRIPT", "LOAD", script_text(static_cast<Script>(i))});
        if (!r) {
            return false;
        }
        if (r.is_error()) {
            fail("SCRIPT LOAD failed: " + std::string(r.text()));
            return false;
        }
        shas_[i] = std::string(r.text());
    }
    return true;
}

} // namespace herald::store::redis
