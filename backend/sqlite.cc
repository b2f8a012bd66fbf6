#include "backend/sqlite.h"

#include <cstring>

// The session extension's declarations (changesets for checkpoints); Debian's libsqlite3 is
// built with both.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>
#include <sys/stat.h>

namespace shardfs::backend {

Status SqliteDb::Error(std::string_view what, int rc) const {
  std::string msg = std::string(what) + ": " + sqlite3_errstr(rc);
  if (db_ != nullptr && sqlite3_errcode(db_) == rc)
    msg += std::string(" (") + sqlite3_errmsg(db_) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(msg);
    case SQLITE_FULL:
      return Status::NoSpace(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return Status::PermissionDenied(msg);
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
      return Status::InvalidArgument(msg);
    default:
      return Status::IOError(msg);
  }
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path,
                                                 const SqliteOptions& options) {
  sqlite3* raw = nullptr;
  // The file is created 0600: the index says which owners store what.
  mode_t old_mask = ::umask(077);
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  ::umask(old_mask);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, options));
  if (rc != SQLITE_OK) return db->Error("open " + path, rc);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  // Before the journal mode: in exclusive mode the WAL's index lives in the process's memory.
  if (options.exclusive) SFS_RETURN_IF_ERROR(db->Exec("PRAGMA locking_mode=EXCLUSIVE"));
  SFS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  SFS_RETURN_IF_ERROR(
      db->Exec(options.full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  // Catch a file that is not a database now, with a clear error, not at first use.
  SFS_RETURN_IF_ERROR(db->Exec("SELECT count(*) FROM sqlite_master").WithContext(path));
  return db;
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmts] : idle_) {
    for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db_);
}

void SqliteDb::Recycle(sqlite3_stmt* stmt) const {
  // A few per SQL: the same statement is rarely in use more than once at a time.
  constexpr size_t kIdlePerStatement = 4;
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  auto& idle = idle_[sqlite3_sql(stmt)];
  if (idle.size() >= kIdlePerStatement) {
    sqlite3_finalize(stmt);
    return;
  }
  idle.push_back(stmt);
}

Status SqliteDb::Exec(std::string_view sql) {
  std::string s(sql);
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error("sqlite", rc);
  return Status::Ok();
}

Result<SqliteStatement> SqliteDb::Prepare(std::string_view sql) {
  if (auto it = idle_.find(std::string(sql)); it != idle_.end() && !it->second.empty()) {
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    return SqliteStatement(this, stmt);
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error("prepare", rc);
  return SqliteStatement(this, stmt);
}

int64_t SqliteDb::Changes() const { return sqlite3_changes64(db_); }

int64_t SqliteDb::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

namespace {

// sqlite3_free for changeset buffers and error messages.
struct SqliteFree {
  void operator()(void* p) const { sqlite3_free(p); }
};

Bytes TakeBuffer(void* p, int n) {
  std::unique_ptr<void, SqliteFree> owned(p);
  const auto* b = static_cast<const uint8_t*>(p);
  if (b == nullptr || n <= 0) return {};
  return Bytes(b, b + n);
}

// The name of the empty database a snapshot diffs against.
constexpr const char* kSnapshotFrom = "sfs_snapshot_from";

}  // namespace

Result<Bytes> SqliteDb::SnapshotChangeset(const std::vector<std::string>& tables) {
  SFS_RETURN_IF_ERROR(Exec(std::string("ATTACH ':memory:' AS ") + kSnapshotFrom));
  sqlite3_session* session = nullptr;
  auto result = [&]() -> Result<Bytes> {
    // The empty tables to diff against: each made with its own CREATE statement, so columns
    // and primary keys match.
    for (const std::string& table : tables) {
      SFS_ASSIGN_OR_RETURN(
          auto q, Prepare("SELECT sql FROM main.sqlite_master WHERE type='table' AND name=?"));
      q.Bind(1, std::string_view(table));
      SFS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return Status::InvalidArgument("no table " + table);
      std::string sql = q.ColumnText(0);
      const std::string prefix = "CREATE TABLE " + table;
      if (sql.compare(0, prefix.size(), prefix) != 0) {
        return Status::InvalidArgument("unexpected definition of table " + table);
      }
      SFS_RETURN_IF_ERROR(Exec("CREATE TABLE " + std::string(kSnapshotFrom) + "." + table +
                               sql.substr(prefix.size())));
    }
    int rc = sqlite3session_create(db_, "main", &session);
    if (rc != SQLITE_OK) return Error("session", rc);
    for (const std::string& table : tables) {
      // diff adds changes only for tables attached before it.
      rc = sqlite3session_attach(session, table.c_str());
      if (rc != SQLITE_OK) return Error("session table " + table, rc);
      char* err = nullptr;
      rc = sqlite3session_diff(session, kSnapshotFrom, table.c_str(), &err);
      std::unique_ptr<char, SqliteFree> owned(err);
      if (rc != SQLITE_OK) {
        return Error("diff of " + table + (err != nullptr ? std::string(": ") + err : ""), rc);
      }
    }
    int n = 0;
    void* p = nullptr;
    rc = sqlite3session_changeset(session, &n, &p);
    Bytes out = TakeBuffer(p, n);
    if (rc != SQLITE_OK) return Error("changeset", rc);
    return out;
  }();
  if (session != nullptr) sqlite3session_delete(session);
  Status detached = Exec(std::string("DETACH ") + kSnapshotFrom);
  if (result.ok() && !detached.ok()) return detached;
  return result;
}

namespace {

struct ApplyContext {
  sqlite3* db = nullptr;
  std::string missing_table;
  std::string conflict;
};

int ApplyFilter(void* ctx, const char* table) {
  auto* c = static_cast<ApplyContext*>(ctx);
  int rc = sqlite3_table_column_metadata(c->db, "main", table, nullptr, nullptr, nullptr, nullptr,
                                         nullptr, nullptr);
  if (rc == SQLITE_OK) return 1;
  if (c->missing_table.empty()) c->missing_table = table;
  return 0;
}

int ApplyConflict(void* ctx, int kind, sqlite3_changeset_iter* it) {
  auto* c = static_cast<ApplyContext*>(ctx);
  const char* table = nullptr;
  int columns = 0;
  int op = 0;
  (void)sqlite3changeset_op(it, &table, &columns, &op, nullptr);
  const char* what = "a conflict";
  switch (kind) {
    case SQLITE_CHANGESET_DATA:
      what = "a row holds other values than the change expects";
      break;
    case SQLITE_CHANGESET_NOTFOUND:
      what = "a row to change is missing";
      break;
    case SQLITE_CHANGESET_CONFLICT:
      what = "a row to insert exists";
      break;
    case SQLITE_CHANGESET_CONSTRAINT:
      what = "a constraint fails";
      break;
    default:
      break;
  }
  if (c->conflict.empty()) c->conflict = std::string(what) + " in " + (table ? table : "?");
  return SQLITE_CHANGESET_ABORT;
}

}  // namespace

Status SqliteDb::ApplyChangeset(ByteSpan changeset) {
  if (changeset.empty()) return Status::Ok();
  if (changeset.size() > static_cast<size_t>(INT32_MAX)) {
    return Status::InvalidArgument("changeset too large");
  }
  ApplyContext ctx;
  ctx.db = db_;
  int rc = sqlite3changeset_apply(db_, static_cast<int>(changeset.size()),
                                  const_cast<uint8_t*>(changeset.data()), ApplyFilter,
                                  ApplyConflict, &ctx);
  if (!ctx.conflict.empty()) return Status::Corruption("changeset does not apply: " + ctx.conflict);
  if (rc != SQLITE_OK) {
    Status s = Error("apply changeset", rc);
    if (s.code() == Code::kCorruption) return s;
    return Status::Corruption("changeset does not apply: " + s.message());
  }
  if (!ctx.missing_table.empty()) {
    return Status::Corruption("changeset names table " + ctx.missing_table +
                              ", which the database does not have");
  }
  return Status::Ok();
}

Result<std::unique_ptr<SqliteSession>> SqliteSession::Create(
    SqliteDb* db, const std::vector<std::string>& tables) {
  sqlite3_session* raw = nullptr;
  int rc = sqlite3session_create(db->db_, "main", &raw);
  if (rc != SQLITE_OK) return db->Error("session", rc);
  std::unique_ptr<SqliteSession> s(new SqliteSession(db, raw));
  for (const std::string& table : tables) {
    rc = sqlite3session_attach(raw, table.c_str());
    if (rc != SQLITE_OK) return db->Error("session table " + table, rc);
  }
  return s;
}

SqliteSession::~SqliteSession() { sqlite3session_delete(session_); }

bool SqliteSession::IsEmpty() const { return sqlite3session_isempty(session_) != 0; }

Result<Bytes> SqliteSession::Changeset() {
  int n = 0;
  void* p = nullptr;
  int rc = sqlite3session_changeset(session_, &n, &p);
  Bytes out = TakeBuffer(p, n);
  if (rc != SQLITE_OK) return db_->Error("changeset", rc);
  return out;
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), bind_rc_(other.bind_rc_) {
  other.stmt_ = nullptr;
}

SqliteStatement::~SqliteStatement() {
  if (stmt_ != nullptr) db_->Recycle(stmt_);
}

SqliteStatement& SqliteStatement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

SqliteStatement& SqliteStatement::BindDouble(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, ByteSpan blob) {
  // An empty span may have a null data pointer, which SQLite would store as NULL.
  static const uint8_t kEmpty = 0;
  int rc = sqlite3_bind_blob64(stmt_, index, blob.empty() ? &kEmpty : blob.data(), blob.size(),
                               SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> SqliteStatement::Step() {
  if (bind_rc_ != SQLITE_OK) return db_->Error("bind", bind_rc_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("step", rc);
}

Status SqliteStatement::Run() {
  while (true) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
  }
}

int64_t SqliteStatement::ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }

double SqliteStatement::ColumnDouble(int index) const {
  return sqlite3_column_double(stmt_, index);
}

Bytes SqliteStatement::ColumnBlob(int index) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, index));
  int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr || n <= 0) return {};
  return Bytes(p, p + n);
}

std::string SqliteStatement::ColumnText(int index) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr || n <= 0) return {};
  return std::string(p, static_cast<size_t>(n));
}

bool SqliteStatement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

namespace {
// The safety level cannot change inside a transaction: it is raised before BEGIN.
bool RaiseSync(SqliteDb* db, bool wanted) {
  return wanted && db->Exec("PRAGMA synchronous=FULL").ok();
}
}  // namespace

SqliteTransaction::SqliteTransaction(SqliteDb* db, bool durable)
    : db_(db),
      raised_(RaiseSync(db, durable && !db->options_.full_sync && db->options_.durable_commits)),
      begin_(db->Exec("BEGIN IMMEDIATE")) {}

SqliteTransaction::~SqliteTransaction() {
  if (begin_.ok() && !done_) (void)db_->Exec("ROLLBACK");
  if (raised_) (void)db_->Exec("PRAGMA synchronous=NORMAL");
}

Status SqliteTransaction::Commit() {
  SFS_RETURN_IF_ERROR(begin_);
  Status s = db_->Exec("COMMIT");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace shardfs::backend
