#include "store/sqlite/sqlite.hpp"

#include <sqlite3.h>

namespace herald::store::sql {

Db::Db(const std::string& path, int flags) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        const int code = db_ != nullptr ? sqlite3_extended_errcode(db_) : rc;
        close();
        throw Error(code, message);
    }
    sqlite3_extended_result_codes(db_, 1);
}

Db& Db::operator=(Db&& other) noexcept {
    if (this != &other) {
        close();
        db_ = other.db_;
        other.db_ = nullptr;
    }
    return *this;
}

Db::~Db() {
    close();
}

void Db::close() noexcept {
    if (db_ != nullptr) {
        sqlite3_close_v2(db_);
        db_ = nullptr;
    }
}

void Db::fail() const {
    throw Error(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_));
}

void Db::exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        fail();
    }
}

std::string Db::text_of(const char* sql) {
    Stmt st(*this, sql);
    if (!st.step()) {
        return {};
    }
    return std::string(st.text(0));
}

Stmt::Stmt(Db& db, std::string_view sql) : db_(&db) {
    if (sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &st_, nullptr) != SQLITE_OK) {
        db.fail();
    }
}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(st_);
        db_ = other.db_;
        st_ = other.st_;
        other.st_ = nullptr;
    }
    return *this;
}

Stmt::~Stmt() {
    sqlite3_finalize(st_);
}

Stmt& Stmt::bind(int i, std::int64_t value) {
    if (sqlite3_bind_int64(st_, i, value) != SQLITE_OK) {
        db_->fail();
    }
    return *this;
}

Stmt& Stmt::bind_text(int i, std::string_view value) {
    if (sqlite3_bind_text64(st_, i, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8) !=
        SQLITE_OK) {
        db_->fail();
    }
    return *this;
}

Stmt& Stmt::bind_blob(int i, std::string_view value) {
    // A zero-length blob must still be a blob, not NULL: SQLite wants a non-null pointer.
    static const char empty = 0;
    if (sqlite3_bind_blob64(st_, i, value.empty() ? &empty : value.data(), value.size(),
                            SQLITE_TRANSIENT) != SQLITE_OK) {
        db_->fail();
    }
    return *this;
}

Stmt& Stmt::bind_null(int i) {
    if (sqlite3_bind_null(st_, i) != SQLITE_OK) {
        db_->fail();
    }
    return *this;
}

bool Stmt::step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    db_->fail();
}

void Stmt::run() {
    Resetting guard(*this);
    while (step()) {
    }
}

void Stmt::reset() noexcept {
    if (st_ != nullptr) {
        sqlite3_reset(st_);
        sqlite3_clear_bindings(st_);
    }
}

std::int64_t Stmt::integer(int col) const {
    return sqlite3_column_int64(st_, col);
}

std::string_view Stmt::text(int col) const {
    const void* p = sqlite3_column_blob(st_, col);
    const int n = sqlite3_column_bytes(st_, col);
    return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

bool Stmt::is_null(int col) const {
    return sqlite3_column_type(st_, col) == SQLITE_NULL;
}

} // namespace herald::store::sql
