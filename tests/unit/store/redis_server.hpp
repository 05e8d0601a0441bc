// A real redis-server for one test: started on a free loopback port with its own temporary
// directory, and stopped, killed, paused (SIGSTOP), resumed or restarted on the same port
// and directory at the test's command. Commands go to it over a fresh hiredis connection.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <netinet/in.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <hiredis/hiredis.h>

#include "temp_dir.hpp"

extern char** environ;

namespace herald::store::testing {

class RedisServer {
public:
    struct Options {
        bool appendonly = false; // AOF with appendfsync always: a kill -9 loses nothing
        std::string password;    // requirepass
    };

    RedisServer() : RedisServer(Options{}) {}
    explicit RedisServer(Options options) : options_(std::move(options)) {
        // A write to a socket Redis closed must fail with EPIPE, not end the test (the
        // server does the same at start).
        std::signal(SIGPIPE, SIG_IGN);
        port_ = free_port();
        start();
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;
    ~RedisServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGCONT);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] std::string url(unsigned db = 0, std::string_view userinfo = {}) const {
        std::string out = "redis://";
        if (!userinfo.empty()) {
            out += std::string(userinfo) + "@";
        } else if (!options_.password.empty()) {
            out += ":" + options_.password + "@";
        }
        return out + "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
    }

    void start() {
        const std::string port = std::to_string(port_);
        const std::string dir = dir_.path().string();
        std::vector<std::string> args = {"redis-server",
                                         "--port",
                                         port,
                                         "--bind",
                                         "127.0.0.1",
                                         "--save",
                                         "",
                                         "--dir",
                                         dir,
                                         "--logfile",
                                         "redis.log",
                                         "--appendonly",
                                         options_.appendonly ? "yes" : "no"};
        if (options_.appendonly) {
            args.insert(args.end(), {"--appendfsync", "always"});
        }
        if (!options_.password.empty()) {
            args.insert(args.end(), {"--requirepass", options_.password});
        }
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ASSERT_EQ(::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ), 0);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (command({"PING"}) != "PONG") {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "redis-server did not start";
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    // SIGTERM: a clean shutdown (with AOF, everything is on disk).
    void stop() { end(SIGTERM); }
    // SIGKILL: what the kernel had is all that stays.
    void kill() { end(SIGKILL); }
    void restart() { start(); }
    void pause() { ::kill(pid_, SIGSTOP); }
    void resume() { ::kill(pid_, SIGCONT); }

    // Runs one command (as the admin user); the reply as text ("" on failure): a string or
    // status as is, an integer in decimal, an error as "ERR ...", an array as its count.
    std::string command(const std::vector<std::string>& args, unsigned db = 0) const {
        timeval tv{1, 0};
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
        if (c == nullptr || c->err != 0) {
            if (c != nullptr) {
                redisFree(c);
            }
            return {};
        }
        redisSetTimeout(c, tv);
        auto run = [&](const std::vector<std::string>& a) -> std::string {
            std::vector<const char*> ptrs;
            std::vector<std::size_t> lens;
            for (const auto& s : a) {
                ptrs.push_back(s.data());
                lens.push_back(s.size());
            }
            auto* r = static_cast<redisReply*>(
                redisCommandArgv(c, static_cast<int>(a.size()), ptrs.data(), lens.data()));
            if (r == nullptr) {
                return {};
            }
            std::string out;
            if (r->type == REDIS_REPLY_INTEGER) {
                out = std::to_string(r->integer);
            } else if (r->type == REDIS_REPLY_ARRAY) {
                out = std::to_string(r->elements);
            } else if (r->str != nullptr) {
                out.assign(r->str, r->len);
            }
            freeReplyObject(r);
            return out;
        };
        std::string out;
        if (!options_.password.empty() && run({"AUTH", options_.password}) != "OK") {
            redisFree(c);
            return {};
        }
        if (db != 0) {
            run({"SELECT", std::to_string(db)});
        }
        out = run(args);
        redisFree(c);
        return out;
    }

private:
    static std::uint16_t free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        ::close(fd);
        return ntohs(addr.sin_port);
    }

    void end(int signal) {
        if (pid_ <= 0) {
            return;
        }
        ::kill(pid_, SIGCONT);
        ::kill(pid_, signal);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    Options options_;
    TempDir dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace herald::store::testing
