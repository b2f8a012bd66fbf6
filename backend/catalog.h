// The drive's catalog: its tree of inodes and directory entries in SQLite, with a journal of
// changes (docs/format.md, "Catalog"). This is the metadata half of the engine's inode API;
// file contents (chunk lists, packs, shards) build on it.
//
// Inode numbers are never reused; the root is inode 1. Names are bytes (any but '/' and NUL,
// not "." or "..", at most 255 bytes), compared exactly. A directory's link count is 2 plus
// its subdirectories; an inode whose last link goes stays in the catalog with link count 0
// (an "orphan": a file may still be open) until DropOrphan removes it.
//
// Every change is one SQLite transaction, and appends to the changes journal, whose sequence
// numbers only grow (the phone's changes feed and the checkpoints read it).
//
// Thread safety: all methods may be called from many threads (one mutex serializes them).

#ifndef SHARDFS_BACKEND_CATALOG_H_
#define SHARDFS_BACKEND_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/file.h"
#include "base/status.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

class SqliteDb;

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;
inline constexpr size_t kMaxNameBytes = 255;
inline constexpr size_t kMaxSymlinkBytes = 4095;

// Stored in the catalog: do not renumber.
enum class FileKind : uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3 };

struct InodeAttr {
  Ino ino = 0;
  FileKind kind = FileKind::kFile;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // bytes of a file; the target's length for a symlink; 0 for a directory
  uint32_t nlink = 0;
  int64_t atime_ns = 0;  // nanoseconds since the Unix epoch
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

struct DirEntry {
  std::string name;
  InodeAttr attr;
};

// Who creates an inode, with which permission bits.
struct NewInode {
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Which fields SetAttr changes.
struct AttrChange {
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;  // files only
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
};

enum class RenameMode {
  kReplace,    // POSIX rename(2): an existing target of a compatible kind is replaced
  kNoReplace,  // RENAME_NOREPLACE: AlreadyExists if the target exists
  kExchange,   // RENAME_EXCHANGE: both must exist; they swap places
};

struct CatalogOptions {
  // The database file (created if missing).
  std::string path;
  // fsync every commit (SQLite synchronous=FULL). Only tests of logic turn it off.
  bool sync = true;
  // The clock for timestamps, in nanoseconds since the epoch; the real clock if empty.
  std::function<int64_t()> clock;
  // Who opens the drive, written into the lock file (`path` + ".lock") so that a second
  // process refused the drive can say who holds it.
  std::string holder = "shardfs";
};

class Catalog {
 public:
  // Opens the catalog, creating it with an empty root directory (mode 0755) or bringing an
  // older schema up to date, and holds the drive's lock (`path` + ".lock") until destroyed:
  // one process owns a drive at a time. Busy, naming the holder, if another process (or
  // another open Catalog) has it; NotSupported for a schema newer than this build knows;
  // Corruption for a file that is not a catalog; IOError from the disk.
  static Result<std::unique_ptr<Catalog>> Open(const CatalogOptions& options);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // The entry `name` in directory `parent`. NotFound; NotDirectory if parent is not one;
  // InvalidArgument/NameTooLong for a bad name.
  Result<InodeAttr> Lookup(Ino parent, std::string_view name);
  // NotFound for an unknown inode (orphans are still found).
  Result<InodeAttr> GetAttr(Ino ino);
  // Up to `limit` entries of directory `dir` whose names sort after `after` (bytewise), in
  // name order, with their attributes: a page of a listing; "" starts at the beginning.
  Result<std::vector<DirEntry>> ReadDir(Ino dir, std::string_view after, size_t limit);

  // New entries. AlreadyExists if `name` is taken; NotFound/NotDirectory for a bad parent.
  Result<InodeAttr> Mkdir(Ino parent, std::string_view name, const NewInode& how);
  Result<InodeAttr> CreateFile(Ino parent, std::string_view name, const NewInode& how);
  // InvalidArgument for an empty target; NameTooLong above kMaxSymlinkBytes.
  Result<InodeAttr> Symlink(Ino parent, std::string_view name, std::string_view target);
  // A hard link to file or symlink `ino`. IsDirectory for a directory.
  Result<InodeAttr> Link(Ino ino, Ino parent, std::string_view name);
  // InvalidArgument unless `ino` is a symlink.
  Result<std::string> ReadLink(Ino ino);

  // Removes a non-directory entry; returns the inode's attributes after (nlink 0: an orphan).
  // IsDirectory for a directory.
  Result<InodeAttr> Unlink(Ino parent, std::string_view name);
  // Removes an empty directory. NotDirectory; NotEmpty.
  Status Rmdir(Ino parent, std::string_view name);
  // Moves an entry, as rename(2) with `mode`. InvalidArgument when a directory would move
  // into itself or its own subtree; for kReplace, NotDirectory/IsDirectory when the kinds do
  // not match and NotEmpty for a non-empty directory target. Returns the inode replaced, if
  // any, with its attributes after (nlink 0: an orphan).
  Result<std::optional<InodeAttr>> Rename(Ino parent, std::string_view name, Ino new_parent,
                                          std::string_view new_name, RenameMode mode);
  // Changes attributes and ctime. InvalidArgument for a size on a non-file.
  Result<InodeAttr> SetAttr(Ino ino, const AttrChange& change);
  // Removes an inode with no links left. InvalidArgument if it still has links.
  Status DropOrphan(Ino ino);

  // The sequence number of the last change (0 before any).
  Result<uint64_t> LastChange();

 private:
  explicit Catalog(CatalogOptions options);
  int64_t Now() const;
  Result<InodeAttr> GetAttrLocked(Ino ino) REQUIRES(mu_);
  Result<InodeAttr> LookupLocked(Ino parent, std::string_view name) REQUIRES(mu_);
  Result<InodeAttr> DirLocked(Ino dir) REQUIRES(mu_);
  // OK if `parent` is a live directory without an entry `name` (a valid name).
  Status CheckFreeLocked(Ino parent, std::string_view name) REQUIRES(mu_);
  Result<InodeAttr> AddEntryLocked(Ino parent, std::string_view name, FileKind kind,
                                   const NewInode& how, std::string_view target) REQUIRES(mu_);
  Status SetEntryLocked(Ino parent, std::string_view name, Ino ino) REQUIRES(mu_);
  Status RemoveEntryLocked(Ino parent, std::string_view name) REQUIRES(mu_);
  Status AddLinksLocked(Ino ino, int delta, int64_t now) REQUIRES(mu_);
  Status TouchDirLocked(Ino dir, int64_t now) REQUIRES(mu_);
  Result<bool> IsAncestorLocked(Ino ancestor, Ino dir) REQUIRES(mu_);
  Status JournalLocked(std::string_view op, Ino ino, Ino parent, std::string_view name,
                       Ino new_parent, std::string_view new_name, int64_t now) REQUIRES(mu_);

  const CatalogOptions options_;
  UniqueFd lock_;
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ GUARDED_BY(mu_);
};

// Checks a directory entry name: InvalidArgument (empty, ".", "..", '/' or NUL in it) or
// NameTooLong.
Status CheckName(std::string_view name);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CATALOG_H_
