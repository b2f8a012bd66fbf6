#include "backend/catalog.h"

#include <algorithm>
#include <chrono>

#include "backend/sqlite.h"
#include "base/wall_clock.h"

namespace shardfs::backend {

namespace {

// Schema versions, each with the statements that bring the one before to it. Versions only
// grow; a catalog newer than the last one here is refused.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE inodes (
  ino INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  size INTEGER NOT NULL,
  nlink INTEGER NOT NULL,
  atime_ns INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  target BLOB
);
CREATE TABLE dentries (
  parent INTEGER NOT NULL,
  name BLOB NOT NULL,
  ino INTEGER NOT NULL,
  PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE INDEX dentries_by_ino ON dentries (ino);
CREATE TABLE packs (
  id BLOB PRIMARY KEY,
  k INTEGER NOT NULL,
  m INTEGER NOT NULL,
  size INTEGER NOT NULL,
  created_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE shards (
  pack BLOB NOT NULL,
  idx INTEGER NOT NULL,
  id BLOB NOT NULL,
  node BLOB NOT NULL,
  PRIMARY KEY (pack, idx)
) WITHOUT ROWID;
CREATE TABLE chunks (
  id BLOB PRIMARY KEY,
  pack BLOB NOT NULL,
  pack_offset INTEGER NOT NULL,
  sealed_size INTEGER NOT NULL,
  plain_size INTEGER NOT NULL,
  cipher INTEGER NOT NULL,
  codec INTEGER NOT NULL,
  refs INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX chunks_by_pack ON chunks (pack);
CREATE INDEX chunks_unreferenced ON chunks (id) WHERE refs = 0;
CREATE TABLE extents (
  ino INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  chunk BLOB NOT NULL,
  chunk_offset INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (ino, offset)
) WITHOUT ROWID;
CREATE TABLE changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ns INTEGER NOT NULL,
  op TEXT NOT NULL,
  ino INTEGER NOT NULL,
  parent INTEGER NOT NULL,
  name BLOB NOT NULL,
  new_parent INTEGER NOT NULL,
  new_name BLOB NOT NULL
);
CREATE TABLE uploads (
  seq INTEGER PRIMARY KEY,
  ino INTEGER NOT NULL,
  created_ns INTEGER NOT NULL
);
CREATE TABLE deletions (
  shard BLOB NOT NULL,
  node BLOB NOT NULL,
  PRIMARY KEY (shard, node)
) WITHOUT ROWID;
CREATE TABLE nodes (
  id BLOB PRIMARY KEY,
  address TEXT NOT NULL,
  successes INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  bad_bytes INTEGER NOT NULL,
  latency_us INTEGER NOT NULL,
  free INTEGER,
  last_seen_ns INTEGER NOT NULL,
  saved_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE local_state (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
)sql"},
    {2, R"sql(
CREATE TABLE xattrs (
  ino INTEGER NOT NULL,
  name BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (ino, name)
) WITHOUT ROWID;
)sql"},
    {3, R"sql(
ALTER TABLE nodes ADD COLUMN rep_good REAL NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN rep_bad REAL NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN rep_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN audits_passed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN audits_failed INTEGER NOT NULL DEFAULT 0;
CREATE TABLE shard_faults (
  pack BLOB NOT NULL,
  idx INTEGER NOT NULL,
  node BLOB NOT NULL,
  shard BLOB NOT NULL,
  since_ns INTEGER NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (pack, idx)
) WITHOUT ROWID;
)sql"},
    {4, R"sql(
ALTER TABLE changes ADD COLUMN path BLOB NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN new_path BLOB NOT NULL DEFAULT '';
CREATE TABLE devices (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  token_hash BLOB NOT NULL UNIQUE,
  read_only INTEGER NOT NULL,
  root TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  last_used_ns INTEGER NOT NULL,
  revoked_ns INTEGER NOT NULL
);
)sql"},
};
constexpr int kSchemaVersion = 4;

constexpr const char* kAttrColumns =
    "ino, kind, mode, uid, gid, size, nlink, atime_ns, mtime_ns, ctime_ns";

InodeAttr AttrFromRow(const SqliteStatement& q, int first) {
  InodeAttr a;
  a.ino = static_cast<Ino>(q.ColumnInt(first));
  a.kind = static_cast<FileKind>(q.ColumnInt(first + 1));
  a.mode = static_cast<uint32_t>(q.ColumnInt(first + 2));
  a.uid = static_cast<uint32_t>(q.ColumnInt(first + 3));
  a.gid = static_cast<uint32_t>(q.ColumnInt(first + 4));
  a.size = static_cast<uint64_t>(q.ColumnInt(first + 5));
  a.nlink = static_cast<uint32_t>(q.ColumnInt(first + 6));
  a.atime_ns = q.ColumnInt(first + 7);
  a.mtime_ns = q.ColumnInt(first + 8);
  a.ctime_ns = q.ColumnInt(first + 9);
  return a;
}

ByteSpan NameBytes(std::string_view name) { return AsBytes(name); }

// File offsets are stored as SQLite integers (signed 64-bit); the end of "everything".
constexpr uint64_t kEndOfFile = uint64_t{1} << 62;

// The journal is trimmed to CatalogOptions::journal_keep rows once per this many changes.
constexpr uint64_t kJournalTrimEvery = 1024;
// The deepest folder PathOf follows (a loop in a damaged catalog ends there).
constexpr int kMaxPathDepth = 4096;

constexpr const char* kChunkColumns =
    "id, pack, pack_offset, sealed_size, plain_size, cipher, codec";

template <typename Id>
Result<Id> IdColumn(const SqliteStatement& q, int index) {
  Bytes b = q.ColumnBlob(index);
  auto id = Id::FromBytes(b);
  if (!id.ok()) return Status::Corruption("catalog holds a malformed id");
  return *id;
}

Result<ChunkRecord> ChunkFromRow(const SqliteStatement& q) {
  ChunkRecord c;
  SFS_ASSIGN_OR_RETURN(c.id, IdColumn<ChunkId>(q, 0));
  SFS_ASSIGN_OR_RETURN(c.pack, IdColumn<PackId>(q, 1));
  c.pack_offset = static_cast<uint64_t>(q.ColumnInt(2));
  c.sealed_size = static_cast<uint32_t>(q.ColumnInt(3));
  c.plain_size = static_cast<uint32_t>(q.ColumnInt(4));
  c.cipher = static_cast<uint8_t>(q.ColumnInt(5));
  c.codec = static_cast<uint8_t>(q.ColumnInt(6));
  return c;
}

int64_t Int(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace

Status CheckName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name == "." || name == "..") return Status::InvalidArgument("'" + std::string(name) + "'");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("a name cannot hold '/' or NUL");
  }
  if (name.size() > kMaxNameBytes) {
    return Status::NameTooLong("name of " + std::to_string(name.size()) + " bytes (at most " +
                               std::to_string(kMaxNameBytes) + ")");
  }
  return Status::Ok();
}

Status CheckXattrName(std::string_view name) {
  // Linux answers ERANGE for an empty name or one over XATTR_NAME_MAX.
  if (name.empty() || name.size() > kMaxXattrNameBytes) {
    return Status::OutOfRange("attribute name of " + std::to_string(name.size()) + " bytes (1 to " +
                              std::to_string(kMaxXattrNameBytes) + ")");
  }
  if (name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("an attribute name cannot hold NUL");
  }
  return Status::Ok();
}

Catalog::Catalog(CatalogOptions options) : options_(std::move(options)) {}
Catalog::~Catalog() = default;

int64_t Catalog::Now() const {
  if (options_.clock) return options_.clock();
  return WallClockNs();
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const CatalogOptions& options) {
  std::unique_ptr<Catalog> c(new Catalog(options));
  auto drive_lock = LockFile(options.path + ".lock", options.holder);
  if (!drive_lock.ok()) {
    if (drive_lock.status().code() != Code::kBusy) return drive_lock.status();
    return Status::Busy("the drive is open in another process (" + drive_lock.status().message() +
                        ")");
  }
  c->lock_ = std::move(*drive_lock);
  MutexLock lock(&c->mu_);
  // Changes to the tree commit without an fsync (they survive a killed process, and a power
  // loss once a later durable commit syncs the WAL, as on a local file system without fsync);
  // the commits the write path and gc build on (packs stored, files' contents, deletions) are
  // durable.
  SqliteOptions so;
  so.full_sync = false;
  so.durable_commits = options.sync;
  // Only this process opens the catalog (the lock file says so): no file locks per
  // transaction.
  so.exclusive = true;
  SFS_ASSIGN_OR_RETURN(c->db_, SqliteDb::Open(options.path, so));
  SqliteDb& db = *c->db_;
  SFS_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=OFF"));
  SFS_ASSIGN_OR_RETURN(auto q, db.Prepare("PRAGMA user_version"));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  int version = row ? static_cast<int>(q.ColumnInt(0)) : 0;
  if (version > kSchemaVersion) {
    return Status::NotSupported("catalog " + options.path + " has schema " +
                                std::to_string(version) + "; this shardfs knows up to " +
                                std::to_string(kSchemaVersion));
  }
  if (version < kSchemaVersion) {
    SqliteTransaction txn(&db, /*durable=*/true);
    SFS_RETURN_IF_ERROR(txn.status());
    for (const Migration& m : kMigrations) {
      if (m.version <= version) continue;
      SFS_RETURN_IF_ERROR(db.Exec(m.sql).WithContext("schema " + std::to_string(m.version)));
    }
    if (version == 0) {
      int64_t now = c->Now();
      SFS_ASSIGN_OR_RETURN(auto root,
                           db.Prepare("INSERT INTO inodes (ino, kind, mode, uid, gid, size, "
                                      "nlink, atime_ns, mtime_ns, ctime_ns) "
                                      "VALUES (?, ?, 493, 0, 0, 0, 2, ?, ?, ?)"));
      SFS_RETURN_IF_ERROR(root.Bind(1, Int(kRootIno))
                              .Bind(2, static_cast<int64_t>(FileKind::kDirectory))
                              .Bind(3, now)
                              .Bind(4, now)
                              .Bind(5, now)
                              .Run());
    }
    SFS_RETURN_IF_ERROR(db.Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion)));
    SFS_RETURN_IF_ERROR(txn.Commit());
  }
  SFS_RETURN_IF_ERROR(c->GetAttrLocked(kRootIno).status().WithContext("catalog root"));
  return c;
}

Result<InodeAttr> Catalog::GetAttrLocked(Ino ino) {
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare(std::string("SELECT ") + kAttrColumns + " FROM inodes WHERE ino=?"));
  q.Bind(1, Int(ino));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("no inode " + std::to_string(ino));
  return AttrFromRow(q, 0);
}

Result<InodeAttr> Catalog::DirLocked(Ino dir) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, GetAttrLocked(dir));
  if (a.kind != FileKind::kDirectory) {
    return Status::NotDirectory("inode " + std::to_string(dir) + " is not a directory");
  }
  if (a.nlink == 0) return Status::NotFound("directory " + std::to_string(dir) + " was removed");
  return a;
}

Result<std::optional<InodeAttr>> Catalog::FindEntryLocked(Ino parent, std::string_view name) {
  SFS_RETURN_IF_ERROR(CheckName(name));
  SFS_RETURN_IF_ERROR(DirLocked(parent).status());
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(std::string("SELECT ") + kAttrColumns +
                                            " FROM dentries JOIN inodes USING (ino) "
                                            "WHERE parent=? AND name=?"));
  q.Bind(1, Int(parent)).Bind(2, NameBytes(name));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<InodeAttr>();
  return std::optional<InodeAttr>(AttrFromRow(q, 0));
}

Result<InodeAttr> Catalog::LookupLocked(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(std::optional<InodeAttr> a, FindEntryLocked(parent, name));
  if (!a) return Status::NotFound("no entry '" + std::string(name) + "'");
  return *a;
}

Result<bool> Catalog::HasEntriesLocked(Ino dir) {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT 1 FROM dentries WHERE parent=? LIMIT 1"));
  q.Bind(1, Int(dir));
  return q.Step();
}

Result<InodeAttr> Catalog::Lookup(Ino parent, std::string_view name) {
  MutexLock lock(&mu_);
  return LookupLocked(parent, name);
}

Result<InodeAttr> Catalog::GetAttr(Ino ino) {
  MutexLock lock(&mu_);
  return GetAttrLocked(ino);
}

Result<std::vector<DirEntry>> Catalog::ReadDir(Ino dir, std::string_view after, size_t limit) {
  MutexLock lock(&mu_);
  SFS_RETURN_IF_ERROR(DirLocked(dir).status());
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(std::string("SELECT name, ") + kAttrColumns +
                                            " FROM dentries JOIN inodes USING (ino) "
                                            "WHERE parent=? AND name>? ORDER BY name LIMIT ?"));
  q.Bind(1, Int(dir)).Bind(2, NameBytes(after)).Bind(3, static_cast<int64_t>(limit));
  std::vector<DirEntry> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Bytes name = q.ColumnBlob(0);
    out.push_back(DirEntry{std::string(name.begin(), name.end()), AttrFromRow(q, 1)});
  }
  return out;
}

Result<std::string> Catalog::PathLocked(Ino ino) {
  std::vector<std::string> names;
  for (int depth = 0; ino != kRootIno; ++depth) {
    if (depth == kMaxPathDepth) return Status::Corruption("catalog path deeper than allowed");
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT parent, name FROM dentries WHERE ino=? "
                                              "ORDER BY parent, name LIMIT 1"));
    q.Bind(1, Int(ino));
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Status::NotFound("inode " + std::to_string(ino) + " has no name");
    ino = static_cast<Ino>(q.ColumnInt(0));
    Bytes name = q.ColumnBlob(1);
    names.emplace_back(name.begin(), name.end());
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + *it;
  return path.empty() ? std::string("/") : path;
}

Result<std::string> Catalog::EntryPathLocked(Ino parent, std::string_view name) {
  auto dir = PathLocked(parent);
  if (!dir.ok()) return dir.status();
  std::string path = std::move(*dir);
  if (path.size() > 1) path.push_back('/');
  path.append(name);
  return path;
}

Status Catalog::JournalLocked(std::string_view op, Ino ino, Ino parent, std::string_view name,
                              Ino new_parent, std::string_view new_name, int64_t now) {
  // Each row names the paths it touched as they are now, so a reader of the journal needs no
  // later state of the tree to follow it (an inode without a name, an open file whose last
  // name went, gets an empty path).
  std::string path, new_path;
  if (parent != 0) {
    SFS_ASSIGN_OR_RETURN(path, EntryPathLocked(parent, name));
  } else {
    auto p = PathLocked(ino);
    if (p.ok()) {
      path = std::move(*p);
    } else if (p.status().code() != Code::kNotFound) {
      return p.status();
    }
  }
  if (new_parent != 0) {
    SFS_ASSIGN_OR_RETURN(new_path, EntryPathLocked(new_parent, new_name));
  }
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("INSERT INTO changes (time_ns, op, ino, parent, name, "
                                            "new_parent, new_name, path, new_path) "
                                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  SFS_RETURN_IF_ERROR(q.Bind(1, now)
                          .Bind(2, op)
                          .Bind(3, Int(ino))
                          .Bind(4, Int(parent))
                          .Bind(5, NameBytes(name))
                          .Bind(6, Int(new_parent))
                          .Bind(7, NameBytes(new_name))
                          .Bind(8, NameBytes(path))
                          .Bind(9, NameBytes(new_path))
                          .Run());
  auto seq = static_cast<uint64_t>(db_->LastInsertRowId());
  // Trims in steps rather than per row: one DELETE every kJournalTrimEvery changes.
  if (options_.journal_keep > 0 && seq % kJournalTrimEvery == 0 && seq > options_.journal_keep) {
    SFS_ASSIGN_OR_RETURN(auto trim, db_->Prepare("DELETE FROM changes WHERE seq <= ?"));
    SFS_RETURN_IF_ERROR(trim.Bind(1, Int(seq - options_.journal_keep)).Run());
  }
  if (change_listener_) change_listener_(seq);
  return Status::Ok();
}

Status Catalog::TouchDirLocked(Ino dir, int64_t now) {
  SFS_ASSIGN_OR_RETURN(auto q,
                       db_->Prepare("UPDATE inodes SET mtime_ns=?, ctime_ns=? WHERE ino=?"));
  return q.Bind(1, now).Bind(2, now).Bind(3, Int(dir)).Run();
}

Status Catalog::AddLinksLocked(Ino ino, int delta, int64_t now) {
  SFS_ASSIGN_OR_RETURN(auto q,
                       db_->Prepare("UPDATE inodes SET nlink=nlink+?, ctime_ns=? WHERE ino=?"));
  return q.Bind(1, delta).Bind(2, now).Bind(3, Int(ino)).Run();
}

Status Catalog::SetEntryLocked(Ino parent, std::string_view name, Ino ino) {
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("INSERT OR REPLACE INTO dentries (parent, name, ino) VALUES (?, ?, ?)"));
  return q.Bind(1, Int(parent)).Bind(2, NameBytes(name)).Bind(3, Int(ino)).Run();
}

Status Catalog::RemoveEntryLocked(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("DELETE FROM dentries WHERE parent=? AND name=?"));
  return q.Bind(1, Int(parent)).Bind(2, NameBytes(name)).Run();
}

Status Catalog::CheckFreeLocked(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(std::optional<InodeAttr> existing, FindEntryLocked(parent, name));
  if (existing) return Status::AlreadyExists("'" + std::string(name) + "' exists");
  return Status::Ok();
}

Result<InodeAttr> Catalog::AddEntryLocked(Ino parent, std::string_view name, FileKind kind,
                                          const NewInode& how, std::string_view target) {
  SFS_RETURN_IF_ERROR(CheckFreeLocked(parent, name));
  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(auto q,
                       db_->Prepare("INSERT INTO inodes (kind, mode, uid, gid, size, nlink, "
                                    "atime_ns, mtime_ns, ctime_ns, target) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  bool dir = kind == FileKind::kDirectory;
  q.Bind(1, static_cast<int64_t>(kind))
      .Bind(2, static_cast<int64_t>(how.mode & 07777))
      .Bind(3, static_cast<int64_t>(how.uid))
      .Bind(4, static_cast<int64_t>(how.gid))
      .Bind(5, static_cast<int64_t>(kind == FileKind::kSymlink ? target.size() : 0))
      .Bind(6, dir ? 2 : 1)
      .Bind(7, now)
      .Bind(8, now)
      .Bind(9, now);
  if (kind == FileKind::kSymlink) q.Bind(10, NameBytes(target));
  SFS_RETURN_IF_ERROR(q.Run());
  Ino ino = static_cast<Ino>(db_->LastInsertRowId());
  SFS_RETURN_IF_ERROR(SetEntryLocked(parent, name, ino));
  if (dir) SFS_RETURN_IF_ERROR(AddLinksLocked(parent, 1, now));
  SFS_RETURN_IF_ERROR(TouchDirLocked(parent, now));
  const char* op = dir ? "mkdir" : kind == FileKind::kSymlink ? "symlink" : "create";
  SFS_RETURN_IF_ERROR(JournalLocked(op, ino, parent, name, 0, "", now));
  SFS_RETURN_IF_ERROR(txn.Commit());
  return GetAttrLocked(ino);
}

Result<InodeAttr> Catalog::Mkdir(Ino parent, std::string_view name, const NewInode& how) {
  MutexLock lock(&mu_);
  return AddEntryLocked(parent, name, FileKind::kDirectory, how, "");
}

Result<InodeAttr> Catalog::CreateFile(Ino parent, std::string_view name, const NewInode& how) {
  MutexLock lock(&mu_);
  return AddEntryLocked(parent, name, FileKind::kFile, how, "");
}

Result<InodeAttr> Catalog::Symlink(Ino parent, std::string_view name, std::string_view target) {
  if (target.empty()) return Status::InvalidArgument("empty symlink target");
  if (target.size() > kMaxSymlinkBytes) return Status::NameTooLong("symlink target too long");
  if (target.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("a symlink target cannot hold NUL");
  }
  MutexLock lock(&mu_);
  return AddEntryLocked(parent, name, FileKind::kSymlink, NewInode{0777, 0, 0}, target);
}

Result<InodeAttr> Catalog::Link(Ino ino, Ino parent, std::string_view name) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr a, GetAttrLocked(ino));
  if (a.kind == FileKind::kDirectory) return Status::IsDirectory("cannot link a directory");
  if (a.nlink == 0) return Status::NotFound("inode " + std::to_string(ino) + " was removed");
  SFS_RETURN_IF_ERROR(CheckFreeLocked(parent, name));
  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_RETURN_IF_ERROR(SetEntryLocked(parent, name, ino));
  SFS_RETURN_IF_ERROR(AddLinksLocked(ino, 1, now));
  SFS_RETURN_IF_ERROR(TouchDirLocked(parent, now));
  SFS_RETURN_IF_ERROR(JournalLocked("link", ino, parent, name, 0, "", now));
  SFS_RETURN_IF_ERROR(txn.Commit());
  return GetAttrLocked(ino);
}

Result<InodeAttr> Catalog::CreateUnlinked(const NewInode& how) {
  MutexLock lock(&mu_);
  int64_t now = Now();
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("INSERT INTO inodes (kind, mode, uid, gid, size, nlink, "
                           "atime_ns, mtime_ns, ctime_ns) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)"));
  SFS_RETURN_IF_ERROR(q.Bind(1, static_cast<int64_t>(FileKind::kFile))
                          .Bind(2, static_cast<int64_t>(how.mode & 07777))
                          .Bind(3, static_cast<int64_t>(how.uid))
                          .Bind(4, static_cast<int64_t>(how.gid))
                          .Bind(5, now)
                          .Bind(6, now)
                          .Bind(7, now)
                          .Run());
  return GetAttrLocked(static_cast<Ino>(db_->LastInsertRowId()));
}

Result<std::optional<InodeAttr>> Catalog::LinkUnlinked(Ino ino, Ino parent, std::string_view name,
                                                       bool replace) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr a, GetAttrLocked(ino));
  if (a.kind != FileKind::kFile || a.nlink != 0) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not an unlinked file");
  }
  SFS_ASSIGN_OR_RETURN(std::optional<InodeAttr> existing, FindEntryLocked(parent, name));
  if (existing) {
    if (!replace) return Status::AlreadyExists("'" + std::string(name) + "' exists");
    if (existing->kind == FileKind::kDirectory) {
      return Status::IsDirectory("'" + std::string(name) + "' is a folder");
    }
  }
  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  if (existing) SFS_RETURN_IF_ERROR(AddLinksLocked(existing->ino, -1, now));
  SFS_RETURN_IF_ERROR(SetEntryLocked(parent, name, ino));
  SFS_RETURN_IF_ERROR(AddLinksLocked(ino, 1, now));
  SFS_RETURN_IF_ERROR(TouchDirLocked(parent, now));
  SFS_RETURN_IF_ERROR(
      JournalLocked(existing ? "replace" : "create", ino, parent, name, 0, "", now));
  SFS_RETURN_IF_ERROR(txn.Commit());
  if (!existing) return std::optional<InodeAttr>();
  SFS_ASSIGN_OR_RETURN(InodeAttr after, GetAttrLocked(existing->ino));
  return std::optional<InodeAttr>(after);
}

Result<std::string> Catalog::ReadLink(Ino ino) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT kind, target FROM inodes WHERE ino=?"));
  q.Bind(1, Int(ino));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("no inode " + std::to_string(ino));
  if (static_cast<FileKind>(q.ColumnInt(0)) != FileKind::kSymlink) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a symlink");
  }
  Bytes t = q.ColumnBlob(1);
  return std::string(t.begin(), t.end());
}

Result<InodeAttr> Catalog::Unlink(Ino parent, std::string_view name) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr a, LookupLocked(parent, name));
  if (a.kind == FileKind::kDirectory) {
    return Status::IsDirectory("'" + std::string(name) + "' is a directory");
  }
  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_RETURN_IF_ERROR(RemoveEntryLocked(parent, name));
  SFS_RETURN_IF_ERROR(AddLinksLocked(a.ino, -1, now));
  SFS_RETURN_IF_ERROR(TouchDirLocked(parent, now));
  SFS_RETURN_IF_ERROR(JournalLocked("unlink", a.ino, parent, name, 0, "", now));
  SFS_RETURN_IF_ERROR(txn.Commit());
  return GetAttrLocked(a.ino);
}

Status Catalog::Rmdir(Ino parent, std::string_view name) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr a, LookupLocked(parent, name));
  if (a.kind != FileKind::kDirectory) {
    return Status::NotDirectory("'" + std::string(name) + "' is not a directory");
  }
  SFS_ASSIGN_OR_RETURN(bool has_entries, HasEntriesLocked(a.ino));
  if (has_entries) return Status::NotEmpty("'" + std::string(name) + "' is not empty");
  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_RETURN_IF_ERROR(RemoveEntryLocked(parent, name));
  SFS_ASSIGN_OR_RETURN(auto gone,
                       db_->Prepare("UPDATE inodes SET nlink=0, ctime_ns=? WHERE ino=?"));
  SFS_RETURN_IF_ERROR(gone.Bind(1, now).Bind(2, Int(a.ino)).Run());
  SFS_RETURN_IF_ERROR(AddLinksLocked(parent, -1, now));
  SFS_RETURN_IF_ERROR(TouchDirLocked(parent, now));
  SFS_RETURN_IF_ERROR(JournalLocked("rmdir", a.ino, parent, name, 0, "", now));
  return txn.Commit();
}

Result<bool> Catalog::IsAncestorLocked(Ino ancestor, Ino dir) {
  // A directory has exactly one entry, so its parents form a chain up to the root.
  for (Ino at = dir; at != kRootIno;) {
    if (at == ancestor) return true;
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT parent FROM dentries WHERE ino=? LIMIT 1"));
    q.Bind(1, Int(at));
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return false;  // a removed directory: no chain
    at = static_cast<Ino>(q.ColumnInt(0));
  }
  return ancestor == kRootIno;
}

Result<std::optional<InodeAttr>> Catalog::Rename(Ino parent, std::string_view name, Ino new_parent,
                                                 std::string_view new_name, RenameMode mode) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr src, LookupLocked(parent, name));
  SFS_ASSIGN_OR_RETURN(std::optional<InodeAttr> dst, FindEntryLocked(new_parent, new_name));
  if (parent == new_parent && name == new_name) return std::optional<InodeAttr>();
  const bool src_dir = src.kind == FileKind::kDirectory;
  if (mode == RenameMode::kNoReplace && dst) {
    return Status::AlreadyExists("'" + std::string(new_name) + "' exists");
  }
  if (mode == RenameMode::kExchange && !dst) {
    return Status::NotFound("no entry '" + std::string(new_name) + "' to exchange with");
  }
  // A directory cannot go below itself (nor, in an exchange, the target below itself).
  if (src_dir) {
    SFS_ASSIGN_OR_RETURN(bool loop, IsAncestorLocked(src.ino, new_parent));
    if (loop) return Status::InvalidArgument("cannot move a directory into itself");
  }
  const bool dst_dir = dst && dst->kind == FileKind::kDirectory;
  if (mode == RenameMode::kExchange && dst_dir) {
    SFS_ASSIGN_OR_RETURN(bool loop, IsAncestorLocked(dst->ino, parent));
    if (loop) return Status::InvalidArgument("cannot move a directory into itself");
  }
  if (mode == RenameMode::kReplace && dst) {
    if (dst->ino == src.ino) return std::optional<InodeAttr>();  // two links to one inode
    if (src_dir && !dst_dir) {
      return Status::NotDirectory("'" + std::string(new_name) + "' is not a directory");
    }
    if (!src_dir && dst_dir) {
      return Status::IsDirectory("'" + std::string(new_name) + "' is a directory");
    }
    if (dst_dir) {
      SFS_ASSIGN_OR_RETURN(bool has_entries, HasEntriesLocked(dst->ino));
      if (has_entries) return Status::NotEmpty("'" + std::string(new_name) + "' is not empty");
    }
  }

  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  std::optional<InodeAttr> replaced;
  if (mode == RenameMode::kExchange) {
    SFS_RETURN_IF_ERROR(SetEntryLocked(new_parent, new_name, src.ino));
    SFS_RETURN_IF_ERROR(SetEntryLocked(parent, name, dst->ino));
    if (parent != new_parent && src_dir != dst_dir) {
      // One directory changed parents: move one of the ".." links.
      Ino gains = src_dir ? new_parent : parent;
      Ino loses = src_dir ? parent : new_parent;
      SFS_RETURN_IF_ERROR(AddLinksLocked(gains, 1, now));
      SFS_RETURN_IF_ERROR(AddLinksLocked(loses, -1, now));
    }
    SFS_RETURN_IF_ERROR(AddLinksLocked(dst->ino, 0, now));  // ctime
  } else {
    if (dst) {
      // The target loses its entry; a directory target is empty and goes entirely.
      SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(dst_dir ? "UPDATE inodes SET nlink=0, ctime_ns=? "
                                                          "WHERE ino=?"
                                                        : "UPDATE inodes SET nlink=nlink-1, "
                                                          "ctime_ns=? WHERE ino=?"));
      SFS_RETURN_IF_ERROR(q.Bind(1, now).Bind(2, Int(dst->ino)).Run());
      if (dst_dir) SFS_RETURN_IF_ERROR(AddLinksLocked(new_parent, -1, now));
      replaced = dst;
    }
    SFS_RETURN_IF_ERROR(RemoveEntryLocked(parent, name));
    SFS_RETURN_IF_ERROR(SetEntryLocked(new_parent, new_name, src.ino));
    if (src_dir && parent != new_parent) {
      SFS_RETURN_IF_ERROR(AddLinksLocked(parent, -1, now));
      SFS_RETURN_IF_ERROR(AddLinksLocked(new_parent, 1, now));
    }
  }
  SFS_RETURN_IF_ERROR(AddLinksLocked(src.ino, 0, now));  // ctime
  SFS_RETURN_IF_ERROR(TouchDirLocked(parent, now));
  if (new_parent != parent) SFS_RETURN_IF_ERROR(TouchDirLocked(new_parent, now));
  SFS_RETURN_IF_ERROR(JournalLocked(mode == RenameMode::kExchange ? "exchange" : "rename", src.ino,
                                    parent, name, new_parent, new_name, now));
  SFS_RETURN_IF_ERROR(txn.Commit());
  if (replaced) {
    SFS_ASSIGN_OR_RETURN(InodeAttr after, GetAttrLocked(replaced->ino));
    return std::optional<InodeAttr>(after);
  }
  return std::optional<InodeAttr>();
}

Result<InodeAttr> Catalog::SetAttr(Ino ino, const AttrChange& change) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr a, GetAttrLocked(ino));
  if (change.size && a.kind != FileKind::kFile) {
    return Status::InvalidArgument(a.kind == FileKind::kDirectory ? "cannot resize a directory"
                                                                  : "cannot resize a symlink");
  }
  int64_t now = Now();
  if (change.mode) a.mode = *change.mode & 07777;
  if (change.uid) a.uid = *change.uid;
  if (change.gid) a.gid = *change.gid;
  if (change.size) {
    a.size = *change.size;
    a.mtime_ns = now;  // truncate(2) updates mtime even when utimens is not part of the call
  }
  if (change.atime_ns) a.atime_ns = *change.atime_ns;
  if (change.mtime_ns) a.mtime_ns = *change.mtime_ns;
  a.ctime_ns = now;
  if (change.size && *change.size > kEndOfFile) {
    return Status::InvalidArgument("size " + std::to_string(*change.size) + " is too large");
  }
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  // A file cut short loses the extents past its new end.
  if (change.size) SFS_RETURN_IF_ERROR(CutExtentsLocked(ino, *change.size, kEndOfFile));
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE inodes SET mode=?, uid=?, gid=?, size=?, "
                                            "atime_ns=?, mtime_ns=?, ctime_ns=? WHERE ino=?"));
  SFS_RETURN_IF_ERROR(q.Bind(1, static_cast<int64_t>(a.mode))
                          .Bind(2, static_cast<int64_t>(a.uid))
                          .Bind(3, static_cast<int64_t>(a.gid))
                          .Bind(4, Int(a.size))
                          .Bind(5, a.atime_ns)
                          .Bind(6, a.mtime_ns)
                          .Bind(7, a.ctime_ns)
                          .Bind(8, Int(ino))
                          .Run());
  SFS_RETURN_IF_ERROR(JournalLocked("setattr", ino, 0, "", 0, "", now));
  SFS_RETURN_IF_ERROR(txn.Commit());
  return a;
}

Status Catalog::DropOrphan(Ino ino) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr a, GetAttrLocked(ino));
  if (a.nlink != 0) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " still has links");
  }
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_RETURN_IF_ERROR(CutExtentsLocked(ino, 0, kEndOfFile));
  for (const char* sql : {"DELETE FROM xattrs WHERE ino=?", "DELETE FROM inodes WHERE ino=?"}) {
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(sql));
    SFS_RETURN_IF_ERROR(q.Bind(1, Int(ino)).Run());
  }
  return txn.Commit();
}

// --- Extended attributes ----------------------------------------------------------------

Result<std::optional<Bytes>> Catalog::FindXattrLocked(Ino ino, std::string_view name) {
  SFS_RETURN_IF_ERROR(GetAttrLocked(ino).status());
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT value FROM xattrs WHERE ino=? AND name=?"));
  q.Bind(1, Int(ino)).Bind(2, NameBytes(name));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Bytes>();
  return std::optional<Bytes>(q.ColumnBlob(0));
}

namespace {

Status NoSuchXattr(Ino ino, std::string_view name) {
  return Status::NoAttribute("inode " + std::to_string(ino) + " has no attribute '" +
                             std::string(name) + "'");
}

}  // namespace

Result<Bytes> Catalog::GetXattr(Ino ino, std::string_view name) {
  SFS_RETURN_IF_ERROR(CheckXattrName(name));
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(std::optional<Bytes> value, FindXattrLocked(ino, name));
  if (!value) return NoSuchXattr(ino, name);
  return std::move(*value);
}

Status Catalog::SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode) {
  SFS_RETURN_IF_ERROR(CheckXattrName(name));
  if (value.size() > kMaxXattrValueBytes) {
    return Status::OutOfRange("attribute value of " + std::to_string(value.size()) +
                              " bytes (at most " + std::to_string(kMaxXattrValueBytes) + ")");
  }
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(std::optional<Bytes> old, FindXattrLocked(ino, name));
  if (old && mode == XattrMode::kCreate) {
    return Status::AlreadyExists("inode " + std::to_string(ino) + " has attribute '" +
                                 std::string(name) + "'");
  }
  if (!old && mode == XattrMode::kReplace) return NoSuchXattr(ino, name);
  if (!old) {
    // listxattr(2) hands all names (each with a NUL) in one buffer of at most 64 KiB: a name
    // that would not fit there is refused, as a file system out of room for attributes does.
    SFS_ASSIGN_OR_RETURN(
        auto q, db_->Prepare("SELECT COALESCE(SUM(LENGTH(name) + 1), 0) FROM xattrs WHERE ino=?"));
    q.Bind(1, Int(ino));
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    const uint64_t listed = row ? static_cast<uint64_t>(q.ColumnInt(0)) : 0;
    if (listed + name.size() + 1 > kMaxXattrListBytes) {
      return Status::NoSpace("inode " + std::to_string(ino) + "'s attribute names fill " +
                             std::to_string(listed) + " of " + std::to_string(kMaxXattrListBytes) +
                             " bytes");
    }
  }
  const int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("INSERT OR REPLACE INTO xattrs (ino, name, value) VALUES (?, ?, ?)"));
  SFS_RETURN_IF_ERROR(q.Bind(1, Int(ino)).Bind(2, NameBytes(name)).Bind(3, value).Run());
  SFS_RETURN_IF_ERROR(AddLinksLocked(ino, 0, now));  // ctime
  SFS_RETURN_IF_ERROR(JournalLocked("setxattr", ino, 0, "", 0, "", now));
  return txn.Commit();
}

Result<std::vector<std::string>> Catalog::ListXattr(Ino ino) {
  MutexLock lock(&mu_);
  SFS_RETURN_IF_ERROR(GetAttrLocked(ino).status());
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT name FROM xattrs WHERE ino=? ORDER BY name"));
  q.Bind(1, Int(ino));
  std::vector<std::string> out;
  for (;;) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Bytes name = q.ColumnBlob(0);
    out.emplace_back(name.begin(), name.end());
  }
  return out;
}

Status Catalog::RemoveXattr(Ino ino, std::string_view name) {
  SFS_RETURN_IF_ERROR(CheckXattrName(name));
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(std::optional<Bytes> old, FindXattrLocked(ino, name));
  if (!old) return NoSuchXattr(ino, name);
  const int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("DELETE FROM xattrs WHERE ino=? AND name=?"));
  SFS_RETURN_IF_ERROR(q.Bind(1, Int(ino)).Bind(2, NameBytes(name)).Run());
  SFS_RETURN_IF_ERROR(AddLinksLocked(ino, 0, now));  // ctime
  SFS_RETURN_IF_ERROR(JournalLocked("removexattr", ino, 0, "", 0, "", now));
  return txn.Commit();
}

// --- File contents ----------------------------------------------------------------------

Status Catalog::AddPack(const PackRecord& pack, const std::vector<ChunkRecord>& chunks) {
  const size_t n = static_cast<size_t>(pack.k) + static_cast<size_t>(pack.m);
  if (pack.k < 1 || pack.m < 0 || pack.shards.size() != n || pack.nodes.size() != n) {
    return Status::InvalidArgument("pack record needs k >= 1 and k + m shards and nodes");
  }
  for (const ChunkRecord& c : chunks) {
    if (c.pack != pack.id || c.pack_offset + c.sealed_size > pack.size) {
      return Status::InvalidArgument("chunk " + c.id.ToHex() + " does not lie in its pack");
    }
  }
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto known, db_->Prepare("SELECT 1 FROM packs WHERE id=?"));
  known.Bind(1, pack.id.span());
  SFS_ASSIGN_OR_RETURN(bool exists, known.Step());
  if (exists) return Status::AlreadyExists("pack " + pack.id.ToHex() + " is recorded");
  int64_t now = Now();
  SqliteTransaction txn(db_.get(), /*durable=*/true);
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(auto p, db_->Prepare("INSERT INTO packs (id, k, m, size, created_ns) "
                                            "VALUES (?, ?, ?, ?, ?)"));
  SFS_RETURN_IF_ERROR(p.Bind(1, pack.id.span())
                          .Bind(2, pack.k)
                          .Bind(3, pack.m)
                          .Bind(4, Int(pack.size))
                          .Bind(5, now)
                          .Run());
  for (size_t i = 0; i < n; ++i) {
    SFS_ASSIGN_OR_RETURN(
        auto q, db_->Prepare("INSERT INTO shards (pack, idx, id, node) VALUES (?, ?, ?, ?)"));
    SFS_RETURN_IF_ERROR(q.Bind(1, pack.id.span())
                            .Bind(2, static_cast<int64_t>(i))
                            .Bind(3, pack.shards[i].span())
                            .Bind(4, pack.nodes[i].span())
                            .Run());
  }
  for (const ChunkRecord& c : chunks) {
    SFS_ASSIGN_OR_RETURN(auto dup, db_->Prepare("SELECT 1 FROM chunks WHERE id=?"));
    dup.Bind(1, c.id.span());
    SFS_ASSIGN_OR_RETURN(bool have, dup.Step());
    if (have) return Status::AlreadyExists("chunk " + c.id.ToHex() + " is recorded");
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(std::string("INSERT INTO chunks (") + kChunkColumns +
                                              ", refs) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"));
    SFS_RETURN_IF_ERROR(q.Bind(1, c.id.span())
                            .Bind(2, c.pack.span())
                            .Bind(3, Int(c.pack_offset))
                            .Bind(4, static_cast<int64_t>(c.sealed_size))
                            .Bind(5, static_cast<int64_t>(c.plain_size))
                            .Bind(6, static_cast<int64_t>(c.cipher))
                            .Bind(7, static_cast<int64_t>(c.codec))
                            .Run());
  }
  return txn.Commit();
}

Result<std::optional<ChunkRecord>> Catalog::FindChunk(const ChunkId& id) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare(std::string("SELECT ") + kChunkColumns + " FROM chunks WHERE id=?"));
  q.Bind(1, id.span());
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<ChunkRecord>();
  SFS_ASSIGN_OR_RETURN(ChunkRecord c, ChunkFromRow(q));
  return std::optional<ChunkRecord>(c);
}

Result<PackRecord> Catalog::GetPack(const PackId& id) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT k, m, size FROM packs WHERE id=?"));
  q.Bind(1, id.span());
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("no pack " + id.ToHex());
  PackRecord p;
  p.id = id;
  p.k = static_cast<int>(q.ColumnInt(0));
  p.m = static_cast<int>(q.ColumnInt(1));
  p.size = static_cast<uint64_t>(q.ColumnInt(2));
  SFS_ASSIGN_OR_RETURN(auto s,
                       db_->Prepare("SELECT id, node FROM shards WHERE pack=? ORDER BY idx"));
  s.Bind(1, id.span());
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool more, s.Step());
    if (!more) break;
    SFS_ASSIGN_OR_RETURN(ShardId shard, IdColumn<ShardId>(s, 0));
    SFS_ASSIGN_OR_RETURN(NodeId node, IdColumn<NodeId>(s, 1));
    p.shards.push_back(shard);
    p.nodes.push_back(node);
  }
  if (p.shards.size() != static_cast<size_t>(p.k + p.m)) {
    return Status::Corruption("pack " + id.ToHex() + " has the wrong number of shards");
  }
  return p;
}

Result<std::vector<Extent>> Catalog::ReadExtentsLocked(Ino ino, uint64_t offset, uint64_t end) {
  // The last extent starting at or before `offset` may reach into the range; the others start
  // inside it. Both are reads of the (ino, offset) key.
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("SELECT offset, chunk, chunk_offset, size FROM extents WHERE ino=? AND "
                           "offset >= COALESCE((SELECT MAX(offset) FROM extents WHERE ino=? AND "
                           "offset <= ?), 0) AND offset < ? ORDER BY offset"));
  q.Bind(1, Int(ino)).Bind(2, Int(ino)).Bind(3, Int(offset)).Bind(4, Int(end));
  std::vector<Extent> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Extent e;
    e.offset = static_cast<uint64_t>(q.ColumnInt(0));
    SFS_ASSIGN_OR_RETURN(e.chunk, IdColumn<ChunkId>(q, 1));
    e.chunk_offset = static_cast<uint64_t>(q.ColumnInt(2));
    e.size = static_cast<uint64_t>(q.ColumnInt(3));
    if (e.offset + e.size > offset) out.push_back(e);
  }
  return out;
}

Result<std::vector<Extent>> Catalog::ReadExtents(Ino ino, uint64_t offset, uint64_t length) {
  MutexLock lock(&mu_);
  SFS_RETURN_IF_ERROR(GetAttrLocked(ino).status());
  uint64_t end = length > kEndOfFile - std::min(offset, kEndOfFile) ? kEndOfFile : offset + length;
  return ReadExtentsLocked(ino, std::min(offset, kEndOfFile), end);
}

Status Catalog::AddChunkRefLocked(const ChunkId& chunk, int delta) {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE chunks SET refs=refs+? WHERE id=?"));
  SFS_RETURN_IF_ERROR(q.Bind(1, delta).Bind(2, chunk.span()).Run());
  if (db_->Changes() != 1) return Status::NotFound("no chunk " + chunk.ToHex());
  return Status::Ok();
}

Status Catalog::InsertExtentLocked(Ino ino, const Extent& e) {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("INSERT INTO extents (ino, offset, chunk, "
                                            "chunk_offset, size) VALUES (?, ?, ?, ?, ?)"));
  SFS_RETURN_IF_ERROR(q.Bind(1, Int(ino))
                          .Bind(2, Int(e.offset))
                          .Bind(3, e.chunk.span())
                          .Bind(4, Int(e.chunk_offset))
                          .Bind(5, Int(e.size))
                          .Run());
  return AddChunkRefLocked(e.chunk, 1);
}

Status Catalog::CutExtentsLocked(Ino ino, uint64_t from, uint64_t to) {
  SFS_ASSIGN_OR_RETURN(std::vector<Extent> hit, ReadExtentsLocked(ino, from, to));
  for (const Extent& e : hit) {
    SFS_ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM extents WHERE ino=? AND offset=?"));
    SFS_RETURN_IF_ERROR(del.Bind(1, Int(ino)).Bind(2, Int(e.offset)).Run());
    SFS_RETURN_IF_ERROR(AddChunkRefLocked(e.chunk, -1));
    // What lies outside [from, to) stays, as shorter extents of the same chunk.
    if (e.offset < from) {
      SFS_RETURN_IF_ERROR(
          InsertExtentLocked(ino, Extent{e.offset, e.chunk, e.chunk_offset, from - e.offset}));
    }
    if (e.offset + e.size > to) {
      SFS_RETURN_IF_ERROR(InsertExtentLocked(
          ino, Extent{to, e.chunk, e.chunk_offset + (to - e.offset), e.offset + e.size - to}));
    }
  }
  return Status::Ok();
}

Status Catalog::CheckExtentsLocked(uint64_t offset, uint64_t length,
                                   const std::vector<Extent>& extents) {
  if (offset > kEndOfFile || length > kEndOfFile - offset) {
    return Status::InvalidArgument("range past the largest file size");
  }
  const uint64_t end = offset + length;
  uint64_t at = offset;
  for (const Extent& e : extents) {
    if (e.size == 0 || e.offset < at || e.size > end - std::min(end, e.offset) || e.offset >= end) {
      return Status::InvalidArgument("extents out of order, empty, or outside the range");
    }
    at = e.offset + e.size;
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT plain_size FROM chunks WHERE id=?"));
    q.Bind(1, e.chunk.span());
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Status::NotFound("no chunk " + e.chunk.ToHex());
    uint64_t plain = static_cast<uint64_t>(q.ColumnInt(0));
    if (e.chunk_offset > plain || e.size > plain - e.chunk_offset) {
      return Status::InvalidArgument("extent runs past the end of chunk " + e.chunk.ToHex());
    }
  }
  return Status::Ok();
}

Result<InodeAttr> Catalog::WriteExtents(Ino ino, uint64_t offset, uint64_t length,
                                        const std::vector<Extent>& extents) {
  FileCommit c;
  c.ino = ino;
  c.ranges.push_back(RangeWrite{offset, length, extents});
  SFS_ASSIGN_OR_RETURN(auto done, CommitFiles({c}));
  if (!done[0]) return Status::NotFound("no inode " + std::to_string(ino));
  return *done[0];
}

Result<std::optional<InodeAttr>> Catalog::CommitFileLocked(const FileCommit& c, int64_t now) {
  if (c.upload) {
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("DELETE FROM uploads WHERE seq=?"));
    SFS_RETURN_IF_ERROR(q.Bind(1, Int(*c.upload)).Run());
  }
  Ino ino = c.ino;
  if (c.create) {
    if (!c.link) return Status::InvalidArgument("a new file needs a name");
    SFS_ASSIGN_OR_RETURN(auto q,
                         db_->Prepare("INSERT INTO inodes (kind, mode, uid, gid, size, nlink, "
                                      "atime_ns, mtime_ns, ctime_ns) "
                                      "VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)"));
    SFS_RETURN_IF_ERROR(q.Bind(1, static_cast<int64_t>(FileKind::kFile))
                            .Bind(2, static_cast<int64_t>(c.create->mode & 07777))
                            .Bind(3, static_cast<int64_t>(c.create->uid))
                            .Bind(4, static_cast<int64_t>(c.create->gid))
                            .Bind(5, now)
                            .Bind(6, now)
                            .Bind(7, now)
                            .Run());
    ino = static_cast<Ino>(db_->LastInsertRowId());
  }
  auto found = GetAttrLocked(ino);
  if (!found.ok()) {
    // A file removed while its bytes were on their way: nothing to write.
    if (found.status().code() == Code::kNotFound) return std::optional<InodeAttr>();
    return found.status();
  }
  InodeAttr a = *found;
  if (a.kind != FileKind::kFile) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
  }
  if (c.cut_to && *c.cut_to < a.size) {
    SFS_RETURN_IF_ERROR(CutExtentsLocked(ino, *c.cut_to, kEndOfFile));
    a.size = *c.cut_to;
  }
  for (const RangeWrite& r : c.ranges) {
    SFS_RETURN_IF_ERROR(CheckExtentsLocked(r.offset, r.length, r.extents));
    SFS_RETURN_IF_ERROR(CutExtentsLocked(ino, r.offset, r.offset + r.length));
    for (const Extent& e : r.extents) SFS_RETURN_IF_ERROR(InsertExtentLocked(ino, e));
    a.size = std::max(a.size, r.offset + r.length);
  }
  if (c.size) {
    if (*c.size > kEndOfFile) return Status::InvalidArgument("size past the largest file size");
    if (*c.size < a.size) SFS_RETURN_IF_ERROR(CutExtentsLocked(ino, *c.size, kEndOfFile));
    a.size = *c.size;
  }
  a.mtime_ns = c.mtime_ns.value_or(now);
  a.ctime_ns = now;
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("UPDATE inodes SET size=?, mtime_ns=?, ctime_ns=? WHERE ino=?"));
  SFS_RETURN_IF_ERROR(
      q.Bind(1, Int(a.size)).Bind(2, a.mtime_ns).Bind(3, now).Bind(4, Int(ino)).Run());
  if (c.link) {
    if (a.nlink != 0) {
      return Status::InvalidArgument("inode " + std::to_string(ino) + " is linked already");
    }
    SFS_RETURN_IF_ERROR(CheckFreeLocked(c.link->parent, c.link->name));
    SFS_RETURN_IF_ERROR(SetEntryLocked(c.link->parent, c.link->name, ino));
    SFS_RETURN_IF_ERROR(AddLinksLocked(ino, 1, now));
    SFS_RETURN_IF_ERROR(TouchDirLocked(c.link->parent, now));
    SFS_RETURN_IF_ERROR(JournalLocked("create", ino, c.link->parent, c.link->name, 0, "", now));
    a.nlink = 1;
  }
  SFS_RETURN_IF_ERROR(JournalLocked("write", ino, 0, "", 0, "", now));
  return std::optional<InodeAttr>(a);
}

Result<std::vector<std::optional<InodeAttr>>> Catalog::CommitFiles(
    const std::vector<FileCommit>& commits) {
  MutexLock lock(&mu_);
  int64_t now = Now();
  SqliteTransaction txn(db_.get(), /*durable=*/true);
  SFS_RETURN_IF_ERROR(txn.status());
  std::vector<std::optional<InodeAttr>> done;
  done.reserve(commits.size());
  for (const FileCommit& c : commits) {
    auto a = CommitFileLocked(c, now);
    if (!a.ok()) return a.status().WithContext("inode " + std::to_string(c.ino));
    done.push_back(*a);
  }
  SFS_RETURN_IF_ERROR(txn.Commit());
  return done;
}

Result<std::vector<Ino>> Catalog::Orphans() {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT ino FROM inodes WHERE nlink=0"));
  std::vector<Ino> out;
  for (;;) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(static_cast<Ino>(q.ColumnInt(0)));
  }
  return out;
}

Status Catalog::AddUpload(uint64_t seq, Ino ino) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q,
                       db_->Prepare("INSERT INTO uploads (seq, ino, created_ns) VALUES (?, ?, ?)"));
  return q.Bind(1, Int(seq)).Bind(2, Int(ino)).Bind(3, Now()).Run();
}

Status Catalog::RemoveUpload(uint64_t seq) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("DELETE FROM uploads WHERE seq=?"));
  return q.Bind(1, Int(seq)).Run();
}

Result<std::vector<std::pair<uint64_t, Ino>>> Catalog::Uploads() {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT seq, ino FROM uploads ORDER BY seq"));
  std::vector<std::pair<uint64_t, Ino>> out;
  for (;;) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.emplace_back(static_cast<uint64_t>(q.ColumnInt(0)), static_cast<Ino>(q.ColumnInt(1)));
  }
  return out;
}

Result<std::vector<ChunkRecord>> Catalog::UnreferencedChunks(size_t limit) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(std::string("SELECT ") + kChunkColumns +
                                            " FROM chunks WHERE refs=0 LIMIT ?"));
  q.Bind(1, static_cast<int64_t>(limit));
  std::vector<ChunkRecord> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    SFS_ASSIGN_OR_RETURN(ChunkRecord c, ChunkFromRow(q));
    out.push_back(c);
  }
  return out;
}

Result<std::vector<PackId>> Catalog::DeadPacks(size_t limit) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id FROM packs WHERE NOT EXISTS (SELECT 1 "
                                            "FROM chunks WHERE chunks.pack = packs.id AND "
                                            "chunks.refs > 0) LIMIT ?"));
  q.Bind(1, static_cast<int64_t>(limit));
  std::vector<PackId> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    SFS_ASSIGN_OR_RETURN(PackId id, IdColumn<PackId>(q, 0));
    out.push_back(id);
  }
  return out;
}

Status Catalog::DropDeadPack(const PackId& id) {
  MutexLock lock(&mu_);
  SqliteTransaction txn(db_.get(), /*durable=*/true);
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(auto live,
                       db_->Prepare("SELECT 1 FROM chunks WHERE pack=? AND refs > 0 LIMIT 1"));
  live.Bind(1, id.span());
  SFS_ASSIGN_OR_RETURN(bool used, live.Step());
  if (used) return Status::InvalidArgument("pack " + id.ToHex() + " still holds used chunks");
  SFS_ASSIGN_OR_RETURN(auto queue, db_->Prepare("INSERT OR IGNORE INTO deletions (shard, node) "
                                                "SELECT id, node FROM shards WHERE pack=?"));
  SFS_RETURN_IF_ERROR(queue.Bind(1, id.span()).Run());
  for (const char* sql :
       {"DELETE FROM chunks WHERE pack=?", "DELETE FROM shards WHERE pack=?",
        "DELETE FROM shard_faults WHERE pack=?", "DELETE FROM packs WHERE id=?"}) {
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(sql));
    SFS_RETURN_IF_ERROR(q.Bind(1, id.span()).Run());
  }
  return txn.Commit();
}

Status Catalog::QueueDeletions(const PackRecord& pack) {
  MutexLock lock(&mu_);
  SqliteTransaction txn(db_.get(), /*durable=*/true);
  SFS_RETURN_IF_ERROR(txn.status());
  for (size_t i = 0; i < pack.shards.size() && i < pack.nodes.size(); ++i) {
    SFS_ASSIGN_OR_RETURN(
        auto q, db_->Prepare("INSERT OR IGNORE INTO deletions (shard, node) VALUES (?, ?)"));
    SFS_RETURN_IF_ERROR(q.Bind(1, pack.shards[i].span()).Bind(2, pack.nodes[i].span()).Run());
  }
  return txn.Commit();
}

Result<std::vector<std::pair<ShardId, NodeId>>> Catalog::PendingDeletions(size_t limit) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT shard, node FROM deletions LIMIT ?"));
  q.Bind(1, static_cast<int64_t>(limit));
  std::vector<std::pair<ShardId, NodeId>> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    SFS_ASSIGN_OR_RETURN(ShardId shard, IdColumn<ShardId>(q, 0));
    SFS_ASSIGN_OR_RETURN(NodeId node, IdColumn<NodeId>(q, 1));
    out.emplace_back(shard, node);
  }
  return out;
}

Status Catalog::DeletionDone(const ShardId& shard, const NodeId& node) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("DELETE FROM deletions WHERE shard=? AND node=?"));
  return q.Bind(1, shard.span()).Bind(2, node.span()).Run();
}

Result<Catalog::Totals> Catalog::GetTotals() {
  MutexLock lock(&mu_);
  Totals t;
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("SELECT "
                           "(SELECT COUNT(*) FROM inodes WHERE kind=1 AND nlink>0), "
                           "(SELECT COUNT(*) FROM inodes WHERE kind=2 AND nlink>0), "
                           "(SELECT COALESCE(SUM(size), 0) FROM inodes WHERE kind=1 AND nlink>0), "
                           "(SELECT COUNT(*) FROM packs), "
                           "(SELECT COALESCE(SUM(size), 0) FROM packs), "
                           "(SELECT COUNT(*) FROM chunks), "
                           "(SELECT COUNT(*) FROM chunks WHERE refs=0)"));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::Corruption("catalog totals returned no row");
  t.files = static_cast<uint64_t>(q.ColumnInt(0));
  t.folders = static_cast<uint64_t>(q.ColumnInt(1));
  t.file_bytes = static_cast<uint64_t>(q.ColumnInt(2));
  t.packs = static_cast<uint64_t>(q.ColumnInt(3));
  t.pack_bytes = static_cast<uint64_t>(q.ColumnInt(4));
  t.chunks = static_cast<uint64_t>(q.ColumnInt(5));
  t.unreferenced_chunks = static_cast<uint64_t>(q.ColumnInt(6));
  return t;
}

Result<uint64_t> Catalog::LastChange() {
  MutexLock lock(&mu_);
  return LastChangeLocked();
}

Result<uint64_t> Catalog::LastChangeLocked() {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM changes"));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? static_cast<uint64_t>(q.ColumnInt(0)) : 0;
}

Result<uint64_t> Catalog::FirstChange() {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT MIN(seq) FROM changes"));
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (row && !q.ColumnIsNull(0)) return static_cast<uint64_t>(q.ColumnInt(0));
  SFS_ASSIGN_OR_RETURN(uint64_t last, LastChangeLocked());
  return last + 1;
}

Result<std::vector<Change>> Catalog::ChangesAfter(uint64_t after, size_t limit) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT seq, time_ns, op, ino, parent, name, "
                                            "new_parent, new_name, path, new_path FROM changes "
                                            "WHERE seq > ? ORDER BY seq LIMIT ?"));
  q.Bind(1, Int(std::min<uint64_t>(after, kEndOfFile))).Bind(2, Int(limit));
  std::vector<Change> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Change c;
    c.seq = static_cast<uint64_t>(q.ColumnInt(0));
    c.time_ns = q.ColumnInt(1);
    c.op = q.ColumnText(2);
    c.ino = static_cast<Ino>(q.ColumnInt(3));
    c.parent = static_cast<Ino>(q.ColumnInt(4));
    Bytes name = q.ColumnBlob(5);
    c.name.assign(name.begin(), name.end());
    c.new_parent = static_cast<Ino>(q.ColumnInt(6));
    Bytes new_name = q.ColumnBlob(7);
    c.new_name.assign(new_name.begin(), new_name.end());
    Bytes path = q.ColumnBlob(8);
    c.path.assign(path.begin(), path.end());
    Bytes new_path = q.ColumnBlob(9);
    c.new_path.assign(new_path.begin(), new_path.end());
    out.push_back(std::move(c));
  }
  return out;
}

void Catalog::SetChangeListener(std::function<void(uint64_t)> listener) {
  MutexLock lock(&mu_);
  change_listener_ = std::move(listener);
}

Result<std::string> Catalog::PathOf(Ino ino) {
  MutexLock lock(&mu_);
  return PathLocked(ino);
}

// --- Devices --------------------------------------------------------------------------------

namespace {
constexpr const char* kDeviceColumns =
    "id, name, token_hash, read_only, root, created_ns, last_used_ns, revoked_ns";

DeviceRecord DeviceFromRow(const SqliteStatement& q) {
  DeviceRecord d;
  d.id = static_cast<uint64_t>(q.ColumnInt(0));
  d.name = q.ColumnText(1);
  d.token_hash = q.ColumnBlob(2);
  d.read_only = q.ColumnInt(3) != 0;
  d.root = q.ColumnText(4);
  d.created_ns = q.ColumnInt(5);
  d.last_used_ns = q.ColumnInt(6);
  d.revoked_ns = q.ColumnInt(7);
  return d;
}
}  // namespace

Result<DeviceRecord> Catalog::AddDevice(DeviceRecord device) {
  MutexLock lock(&mu_);
  if (device.token_hash.empty()) return Status::InvalidArgument("device without a token hash");
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("INSERT INTO devices (name, token_hash, read_only, "
                                            "root, created_ns, last_used_ns, revoked_ns) "
                                            "VALUES (?, ?, ?, ?, ?, 0, 0)"));
  device.created_ns = Now();
  device.last_used_ns = 0;
  device.revoked_ns = 0;
  SFS_RETURN_IF_ERROR(q.Bind(1, device.name)
                          .Bind(2, ByteSpan(device.token_hash))
                          .Bind(3, int64_t{device.read_only ? 1 : 0})
                          .Bind(4, device.root)
                          .Bind(5, device.created_ns)
                          .Run());
  device.id = static_cast<uint64_t>(db_->LastInsertRowId());
  return device;
}

Result<std::optional<DeviceRecord>> Catalog::FindDevice(ByteSpan token_hash) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(std::string("SELECT ") + kDeviceColumns +
                                            " FROM devices WHERE token_hash=?"));
  q.Bind(1, token_hash);
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<DeviceRecord>();
  return std::optional<DeviceRecord>(DeviceFromRow(q));
}

Status Catalog::TouchDevice(uint64_t id, int64_t when_ns) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE devices SET last_used_ns=? WHERE id=?"));
  return q.Bind(1, when_ns).Bind(2, Int(id)).Run();
}

Result<std::vector<DeviceRecord>> Catalog::ListDevices() {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare(std::string("SELECT ") + kDeviceColumns + " FROM devices ORDER BY id"));
  std::vector<DeviceRecord> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(DeviceFromRow(q));
  }
  return out;
}

Result<DeviceRecord> Catalog::RevokeDevice(uint64_t id) {
  MutexLock lock(&mu_);
  SqliteTransaction txn(db_.get(), /*durable=*/true);
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(auto find, db_->Prepare(std::string("SELECT ") + kDeviceColumns +
                                               " FROM devices WHERE id=?"));
  find.Bind(1, Int(id));
  SFS_ASSIGN_OR_RETURN(bool row, find.Step());
  if (!row) return Status::NotFound("no device " + std::to_string(id));
  DeviceRecord d = DeviceFromRow(find);
  if (d.revoked_ns == 0) {
    d.revoked_ns = Now();
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE devices SET revoked_ns=? WHERE id=?"));
    SFS_RETURN_IF_ERROR(q.Bind(1, d.revoked_ns).Bind(2, Int(id)).Run());
  }
  SFS_RETURN_IF_ERROR(txn.Commit());
  return d;
}

const std::vector<std::string>& Catalog::DriveTables() {
  // A new table that holds drive data (not this machine's state) belongs here, or restores
  // lose it.
  static const std::vector<std::string> kTables = {"inodes", "dentries", "packs",   "shards",
                                                   "chunks", "extents",  "changes", "xattrs"};
  return kTables;
}

int Catalog::SchemaVersion() { return kSchemaVersion; }

Status Catalog::StartChangeTracking() {
  MutexLock lock(&mu_);
  session_.reset();
  SFS_ASSIGN_OR_RETURN(session_, SqliteSession::Create(db_.get(), DriveTables()));
  return Status::Ok();
}

bool Catalog::HasTrackedChanges() {
  MutexLock lock(&mu_);
  return session_ != nullptr && !session_->IsEmpty();
}

Result<Catalog::TableChanges> Catalog::TakeTrackedChanges() {
  MutexLock lock(&mu_);
  if (session_ == nullptr) return Status::InvalidArgument("the catalog is not recording changes");
  TableChanges out;
  SFS_ASSIGN_OR_RETURN(out.changeset, session_->Changeset());
  SFS_ASSIGN_OR_RETURN(out.last_change, LastChangeLocked());
  session_.reset();
  SFS_ASSIGN_OR_RETURN(session_, SqliteSession::Create(db_.get(), DriveTables()));
  return out;
}

Result<Catalog::TableChanges> Catalog::TakeSnapshot() {
  MutexLock lock(&mu_);
  TableChanges out;
  SFS_ASSIGN_OR_RETURN(out.changeset, db_->SnapshotChangeset(DriveTables()));
  SFS_ASSIGN_OR_RETURN(out.last_change, LastChangeLocked());
  if (session_ != nullptr) {
    session_.reset();
    SFS_ASSIGN_OR_RETURN(session_, SqliteSession::Create(db_.get(), DriveTables()));
  }
  return out;
}

Status Catalog::RestoreFromCheckpoint(ByteSpan base, const std::vector<ByteSpan>& deltas) {
  MutexLock lock(&mu_);
  {
    SqliteTransaction txn(db_.get(), /*durable=*/true);
    SFS_RETURN_IF_ERROR(txn.status());
    for (const std::string& table : DriveTables()) {
      SFS_RETURN_IF_ERROR(db_->Exec("DELETE FROM " + table));
    }
    SFS_RETURN_IF_ERROR(db_->Exec("DELETE FROM sqlite_sequence WHERE name='changes'"));
    SFS_RETURN_IF_ERROR(db_->ApplyChangeset(base).WithContext("base"));
    for (size_t i = 0; i < deltas.size(); ++i) {
      SFS_RETURN_IF_ERROR(
          db_->ApplyChangeset(deltas[i]).WithContext("delta " + std::to_string(i + 1)));
    }
    auto root = GetAttrLocked(kRootIno);
    if (!root.ok() || root->kind != FileKind::kDirectory) {
      return Status::Corruption("the checkpoint has no root directory");
    }
    SFS_RETURN_IF_ERROR(txn.Commit());
  }
  if (session_ != nullptr) {
    session_.reset();
    SFS_ASSIGN_OR_RETURN(session_, SqliteSession::Create(db_.get(), DriveTables()));
  }
  return Status::Ok();
}

Result<std::optional<Bytes>> Catalog::GetLocalState(std::string_view key) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT value FROM local_state WHERE key=?"));
  q.Bind(1, key);
  SFS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Bytes>();
  return std::optional<Bytes>(q.ColumnBlob(0));
}

Status Catalog::SetLocalState(std::string_view key, ByteSpan value) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("INSERT OR REPLACE INTO local_state (key, value) VALUES (?, ?)"));
  return q.Bind(1, key).Bind(2, value).Run();
}

// --- Node health ------------------------------------------------------------------------

Result<std::vector<NodeRecord>> Catalog::LoadNodes() {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q,
                       db_->Prepare("SELECT id, address, successes, failures, bad_bytes, "
                                    "latency_us, free, last_seen_ns, rep_good, rep_bad, rep_ns, "
                                    "audits_passed, audits_failed FROM nodes ORDER BY id"));
  std::vector<NodeRecord> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    NodeRecord n;
    SFS_ASSIGN_OR_RETURN(n.id, IdColumn<NodeId>(q, 0));
    n.address = q.ColumnText(1);
    n.successes = static_cast<uint64_t>(q.ColumnInt(2));
    n.failures = static_cast<uint64_t>(q.ColumnInt(3));
    n.bad_bytes = static_cast<uint64_t>(q.ColumnInt(4));
    n.latency_us = static_cast<uint64_t>(q.ColumnInt(5));
    if (!q.ColumnIsNull(6)) n.free = static_cast<uint64_t>(q.ColumnInt(6));
    n.last_seen_ns = q.ColumnInt(7);
    n.reputation.good = q.ColumnDouble(8);
    n.reputation.bad = q.ColumnDouble(9);
    n.reputation.at_ns = q.ColumnInt(10);
    n.audits_passed = static_cast<uint64_t>(q.ColumnInt(11));
    n.audits_failed = static_cast<uint64_t>(q.ColumnInt(12));
    out.push_back(std::move(n));
  }
  return out;
}

Status Catalog::SaveNodes(const std::vector<NodeRecord>& nodes) {
  MutexLock lock(&mu_);
  const int64_t now = Now();
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  for (const NodeRecord& n : nodes) {
    SFS_ASSIGN_OR_RETURN(
        auto q, db_->Prepare("INSERT OR REPLACE INTO nodes (id, address, successes, failures, "
                             "bad_bytes, latency_us, free, last_seen_ns, saved_ns, rep_good, "
                             "rep_bad, rep_ns, audits_passed, audits_failed) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q.Bind(1, n.id.span())
        .Bind(2, n.address)
        .Bind(3, Int(n.successes))
        .Bind(4, Int(n.failures))
        .Bind(5, Int(n.bad_bytes))
        .Bind(6, Int(n.latency_us))
        .Bind(8, n.last_seen_ns)
        .Bind(9, now)
        .BindDouble(10, n.reputation.good)
        .BindDouble(11, n.reputation.bad)
        .Bind(12, n.reputation.at_ns)
        .Bind(13, Int(n.audits_passed))
        .Bind(14, Int(n.audits_failed));
    if (n.free) q.Bind(7, Int(*n.free));  // unbound: NULL, never reported
    SFS_RETURN_IF_ERROR(q.Run());
  }
  return txn.Commit();
}

Result<std::vector<ShardLocation>> Catalog::ListShards(const std::optional<ShardKey>& after,
                                                       size_t limit) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare(after ? "SELECT pack, idx, id, node FROM shards WHERE (pack, idx) > "
                                   "(?, ?) ORDER BY pack, idx LIMIT ?"
                                 : "SELECT pack, idx, id, node FROM shards ORDER BY pack, idx "
                                   "LIMIT ?"));
  if (after) {
    q.Bind(1, after->pack.span()).Bind(2, static_cast<int64_t>(after->index));
    q.Bind(3, static_cast<int64_t>(limit));
  } else {
    q.Bind(1, static_cast<int64_t>(limit));
  }
  std::vector<ShardLocation> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ShardLocation l;
    SFS_ASSIGN_OR_RETURN(l.key.pack, IdColumn<PackId>(q, 0));
    l.key.index = static_cast<int>(q.ColumnInt(1));
    SFS_ASSIGN_OR_RETURN(l.shard, IdColumn<ShardId>(q, 2));
    SFS_ASSIGN_OR_RETURN(l.node, IdColumn<NodeId>(q, 3));
    out.push_back(std::move(l));
  }
  return out;
}

Result<std::vector<PackRecord>> Catalog::ListPacks(const std::optional<PackId>& after,
                                                   size_t limit) {
  std::vector<PackId> ids;
  {
    MutexLock lock(&mu_);
    SFS_ASSIGN_OR_RETURN(
        auto q, db_->Prepare(after ? "SELECT id FROM packs WHERE id > ? ORDER BY id LIMIT ?"
                                   : "SELECT id FROM packs ORDER BY id LIMIT ?"));
    if (after) {
      q.Bind(1, after->span()).Bind(2, static_cast<int64_t>(limit));
    } else {
      q.Bind(1, static_cast<int64_t>(limit));
    }
    while (true) {
      SFS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      SFS_ASSIGN_OR_RETURN(PackId id, IdColumn<PackId>(q, 0));
      ids.push_back(id);
    }
  }
  std::vector<PackRecord> out;
  for (const PackId& id : ids) {
    auto p = GetPack(id);
    if (p.status().code() == Code::kNotFound) continue;  // dropped meanwhile
    if (!p.ok()) return p.status();
    out.push_back(std::move(*p));
  }
  return out;
}

Status Catalog::RecordShardFault(const ShardLocation& where, std::string_view reason) {
  MutexLock lock(&mu_);
  // A fault already known keeps its first time; one of another node (the shard moved) is
  // replaced.
  SFS_ASSIGN_OR_RETURN(
      auto q, db_->Prepare("INSERT INTO shard_faults (pack, idx, node, shard, since_ns, reason) "
                           "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM shards "
                           "WHERE pack=?1 AND idx=?2 AND node=?3) "
                           "ON CONFLICT (pack, idx) DO UPDATE SET reason=excluded.reason, "
                           "since_ns=CASE WHEN node=excluded.node THEN since_ns ELSE "
                           "excluded.since_ns END, node=excluded.node, shard=excluded.shard"));
  return q.Bind(1, where.key.pack.span())
      .Bind(2, static_cast<int64_t>(where.key.index))
      .Bind(3, where.node.span())
      .Bind(4, where.shard.span())
      .Bind(5, Now())
      .Bind(6, reason)
      .Run();
}

Status Catalog::ClearShardFault(const ShardKey& key, const NodeId& node) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q,
                       db_->Prepare("DELETE FROM shard_faults WHERE pack=? AND idx=? AND node=?"));
  return q.Bind(1, key.pack.span())
      .Bind(2, static_cast<int64_t>(key.index))
      .Bind(3, node.span())
      .Run();
}

Result<std::vector<ShardFault>> Catalog::ShardFaults() {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT pack, idx, node, shard, since_ns, reason "
                                            "FROM shard_faults ORDER BY pack, idx"));
  std::vector<ShardFault> out;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ShardFault f;
    SFS_ASSIGN_OR_RETURN(f.where.key.pack, IdColumn<PackId>(q, 0));
    f.where.key.index = static_cast<int>(q.ColumnInt(1));
    SFS_ASSIGN_OR_RETURN(f.where.node, IdColumn<NodeId>(q, 2));
    SFS_ASSIGN_OR_RETURN(f.where.shard, IdColumn<ShardId>(q, 3));
    f.since_ns = q.ColumnInt(4);
    f.reason = q.ColumnText(5);
    out.push_back(std::move(f));
  }
  return out;
}

Status Catalog::MoveShards(const PackId& pack, const std::vector<std::pair<int, NodeId>>& moves) {
  MutexLock lock(&mu_);
  SqliteTransaction txn(db_.get(), /*durable=*/true);
  SFS_RETURN_IF_ERROR(txn.status());
  for (const auto& [index, node] : moves) {
    SFS_ASSIGN_OR_RETURN(auto old, db_->Prepare("SELECT id, node FROM shards WHERE pack=? AND "
                                                "idx=?"));
    old.Bind(1, pack.span()).Bind(2, static_cast<int64_t>(index));
    SFS_ASSIGN_OR_RETURN(bool row, old.Step());
    if (!row) {
      return Status::NotFound("pack " + pack.ToHex() + " has no shard " + std::to_string(index));
    }
    SFS_ASSIGN_OR_RETURN(ShardId shard, IdColumn<ShardId>(old, 0));
    SFS_ASSIGN_OR_RETURN(NodeId from, IdColumn<NodeId>(old, 1));
    if (from == node) continue;
    // The old copy goes on the deletion queue: if its node comes back, gc lets it go.
    SFS_ASSIGN_OR_RETURN(
        auto queue, db_->Prepare("INSERT OR IGNORE INTO deletions (shard, node) VALUES (?, ?)"));
    SFS_RETURN_IF_ERROR(queue.Bind(1, shard.span()).Bind(2, from.span()).Run());
    // The new copy must not be deleted by an older queue entry for the same node.
    SFS_ASSIGN_OR_RETURN(auto unqueue,
                         db_->Prepare("DELETE FROM deletions WHERE shard=? AND node=?"));
    SFS_RETURN_IF_ERROR(unqueue.Bind(1, shard.span()).Bind(2, node.span()).Run());
    SFS_ASSIGN_OR_RETURN(auto move,
                         db_->Prepare("UPDATE shards SET node=? WHERE pack=? AND idx=?"));
    SFS_RETURN_IF_ERROR(
        move.Bind(1, node.span()).Bind(2, pack.span()).Bind(3, static_cast<int64_t>(index)).Run());
    SFS_ASSIGN_OR_RETURN(auto clear,
                         db_->Prepare("DELETE FROM shard_faults WHERE pack=? AND idx=?"));
    SFS_RETURN_IF_ERROR(clear.Bind(1, pack.span()).Bind(2, static_cast<int64_t>(index)).Run());
  }
  return txn.Commit();
}

}  // namespace shardfs::backend
