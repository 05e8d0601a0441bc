// A thin C++ face on the SQLite C API, just what the store needs: a connection, prepared
// statements that reset themselves, and errors as exceptions that keep SQLite's code.
// Not thread-safe: each connection belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace herald::store::sql {

class Error : public std::runtime_error {
public:
    Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    // SQLite's extended result code; primary() is the code without the extension.
    [[nodiscard]] int code() const noexcept { return code_; }
    [[nodiscard]] int primary() const noexcept { return code_ & 0xff; }

private:
    int code_;
};

class Db {
public:
    Db() = default;
    // Opens a connection (sqlite3_open_v2 flags); throws Error.
    Db(const std::string& path, int flags);
    Db(Db&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    Db& operator=(Db&& other) noexcept;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    ~Db();

    [[nodiscard]] sqlite3* get() const noexcept { return db_; }
    [[nodiscard]] explicit operator bool() const noexcept { return db_ != nullptr; }
    // Runs statements that return no rows of interest; throws Error.
    void exec(const char* sql);
    // The first column of the first row of a query, as text ("" when no row).
    [[nodiscard]] std::string text_of(const char* sql);
    void close() noexcept;

    [[noreturn]] void fail() const;

private:
    sqlite3* db_ = nullptr;
};

class Stmt {
public:
    Stmt() = default;
    Stmt(Db& db, std::string_view sql);
    Stmt(Stmt&& other) noexcept : db_(other.db_), st_(other.st_) { other.st_ = nullptr; }
    Stmt& operator=(Stmt&& other) noexcept;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    ~Stmt();

    // Parameters count from 1, as in SQL.
    Stmt& bind(int i, std::int64_t value);
    Stmt& bind(int i, std::uint64_t value) { return bind(i, static_cast<std::int64_t>(value)); }
    Stmt& bind_text(int i, std::string_view value);
    Stmt& bind_blob(int i, std::string_view value);
    Stmt& bind_null(int i);

    // True when a row is ready; false when done. Throws Error.
    bool step();
    // Steps to the end (a statement that returns no rows), then resets.
    void run();
    // Ready for the next execution; bindings are cleared too.
    void reset() noexcept;

    // Columns count from 0.
    [[nodiscard]] std::int64_t integer(int col) const;
    [[nodiscard]] std::string_view text(int col) const; // text or blob bytes
    [[nodiscard]] bool is_null(int col) const;

private:
    Db* db_ = nullptr;
    sqlite3_stmt* st_ = nullptr;
};

// Resets a statement when the scope ends, whatever happened in between.
class Resetting {
public:
    explicit Resetting(Stmt& st) : st_(st) {}
    Resetting(const Resetting&) = delete;
    Resetting& operator=(const Resetting&) = delete;
    ~Resetting() { st_.reset(); }

private:
    Stmt& st_;
};

} // namespace herald::store::sql
