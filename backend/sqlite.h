// A thin SQLite wrapper: the one home of sqlite3.h. SQLite's return codes become Status here
// and nowhere else. Used by the storage node's index (backend/shardstore) and the drive's
// catalog, whose checkpoints use changesets (SQLite's session extension) made and applied here.
//
// Thread safety: a SqliteDb and its statements must be used by one thread at a time (callers
// hold their own mutex); distinct databases are independent.

#ifndef SHARDFS_BACKEND_SQLITE_H_
#define SHARDFS_BACKEND_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;
struct sqlite3_session;

namespace shardfs::backend {

class SqliteStatement;

struct SqliteOptions {
  // WAL journal, and an fsync of the WAL at every commit (synchronous=FULL), so a committed
  // transaction survives a power loss, not only a killed process. Off (synchronous=NORMAL), a
  // commit survives a killed process, and a power loss only once a later durable commit
  // (SqliteTransaction::CommitDurable) or a WAL checkpoint has synced the WAL.
  bool full_sync = true;
  // With full_sync off: whether CommitDurable syncs. Only tests of logic turn it off.
  bool durable_commits = true;
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
  // Compiles one statement, or reuses one compiled earlier from the same SQL that is no longer
  // in use. InvalidArgument if the SQL is wrong (a bug in the caller).
  Result<SqliteStatement> Prepare(std::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  // The rowid of the last row inserted on this connection.
  int64_t LastInsertRowId() const;

  // A changeset that inserts every row of `tables` (of the main database): their contents, to
  // apply to empty tables of the same schema. Tables without a primary key are left out.
  // InvalidArgument for a table that does not exist.
  Result<Bytes> SnapshotChangeset(const std::vector<std::string>& tables);
  // Applies `changeset` (from SqliteSession or SnapshotChangeset) to the main database. Every
  // change must apply exactly: Corruption if a row to insert exists already, a row to update
  // or delete is missing or holds other values, a constraint fails, or the changeset is
  // malformed or names a table the database does not have. On error, the changes of this call
  // are rolled back.
  Status ApplyChangeset(ByteSpan changeset);

 private:
  SqliteDb(sqlite3* db, const SqliteOptions& options) : db_(db), options_(options) {}
  friend class SqliteStatement;
  friend class SqliteSession;
  friend class SqliteTransaction;
  Status Error(std::string_view what, int rc) const;
  // A statement handed back by a SqliteStatement that is done with it, reset, for the next
  // Prepare of the same SQL.
  void Recycle(sqlite3_stmt* stmt) const;
  sqlite3* db_;
  SqliteOptions options_;
  // Compiled statements not in use, by their SQL: compiling costs more than most statements
  // the catalog runs.
  mutable std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle_;
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
  SqliteStatement& BindDouble(int index, double value);
  SqliteStatement& Bind(int index, ByteSpan blob);
  SqliteStatement& Bind(int index, std::string_view text);

  // Runs to the next row: true if there is one, false when done. A bind error is reported
  // here.
  Result<bool> Step();
  // Steps to the end, for statements that return no rows.
  Status Run();

  int64_t ColumnInt(int index) const;
  double ColumnDouble(int index) const;
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

// Records the changes made through one connection to some tables of its main database, as
// SQLite's session extension does: a changeset holds, for each row changed, its net change
// since recording started (an insert, a delete, or an update with the old and new values).
class SqliteSession {
 public:
  // Starts recording changes to `tables`. REQUIRES: `db` outlives the session.
  static Result<std::unique_ptr<SqliteSession>> Create(SqliteDb* db,
                                                       const std::vector<std::string>& tables);
  ~SqliteSession();
  SqliteSession(const SqliteSession&) = delete;
  SqliteSession& operator=(const SqliteSession&) = delete;

  // True if no recorded table has changed.
  bool IsEmpty() const;
  // The changes recorded so far (empty if none).
  Result<Bytes> Changeset();

 private:
  SqliteSession(SqliteDb* db, sqlite3_session* session) : db_(db), session_(session) {}
  SqliteDb* db_;
  sqlite3_session* session_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
class SqliteTransaction {
 public:
  // A `durable` transaction syncs the WAL at its commit, so it (and every commit before it)
  // survives a power loss, also when the database does not sync every commit
  // (SqliteOptions::full_sync off).
  explicit SqliteTransaction(SqliteDb* db, bool durable = false);
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  // The status of BEGIN; check before using the transaction.
  const Status& status() const { return begin_; }
  Status Commit();

 private:
  SqliteDb* db_;
  bool raised_ = false;  // synchronous was raised to FULL for this transaction
  Status begin_;
  bool done_ = false;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_SQLITE_H_
