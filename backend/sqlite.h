// A thin SQLite wrapper: the one home of sqlite3.h. SQLite's return codes become Status here
// and nowhere else. Used by the storage node's index (backend/shardstore) and the drive's
// catalog.
//
// Thread safety: a SqliteDb and its statements must be used by one thread at a time (callers
// hold their own mutex); distinct databases are independent.

#ifndef SHARDFS_BACKEND_SQLITE_H_
#define SHARDFS_BACKEND_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace shardfs::backend {

class SqliteStatement;

struct SqliteOptions {
  // WAL journal, and an fsync of the WAL at every commit (synchronous=FULL), so a committed
  // transaction survives a power loss, not only a killed process.
  bool full_sync = true;
  // How long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
  // For a database only this connection ever opens: keep its file lock from the first
  // transaction to the close (PRAGMA locking_mode=EXCLUSIVE), so a transaction costs no lock
  // system calls and the WAL needs no shared-memory index. Nobody else can read the file
  // meanwhile.
  bool exclusive = false;
};

class SqliteDb {
 public:
  // Opens (creating if missing) the database file at `path` with mode 0600.
  // IOError/Corruption/Busy as SQLite reports.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path,
                                                const SqliteOptions& options = {});
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  // Compiles one statement. InvalidArgument if the SQL is wrong (a bug in the caller).
  Result<SqliteStatement> Prepare(std::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  // The rowid of the last row inserted on this connection.
  int64_t LastInsertRowId() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  friend class SqliteStatement;
  Status Error(std::string_view what, int rc) const;
  sqlite3* db_;
};

// A compiled statement. Bind parameters by 1-based index, Step through rows, read columns by
// 0-based index.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  SqliteStatement(const SqliteStatement&) = delete;
  ~SqliteStatement();

  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& Bind(int index, ByteSpan blob);
  SqliteStatement& Bind(int index, std::string_view text);

  // Runs to the next row: true if there is one, false when done. A bind error is reported
  // here.
  Result<bool> Step();
  // Steps to the end, for statements that return no rows.
  Status Run();

  int64_t ColumnInt(int index) const;
  Bytes ColumnBlob(int index) const;
  std::string ColumnText(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  friend class SqliteDb;
  SqliteStatement(const SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  const SqliteDb* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = 0;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(SqliteDb* db);
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  // The status of BEGIN; check before using the transaction.
  const Status& status() const { return begin_; }
  Status Commit();

 private:
  SqliteDb* db_;
  Status begin_;
  bool done_ = false;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_SQLITE_H_
