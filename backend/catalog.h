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
// numbers only grow (the phone's changes feed and the checkpoints read it). With
// CatalogOptions::sync, the commits the write path and gc build on (AddPack, CommitFiles,
// DropDeadPack, QueueDeletions, a restore, a schema migration) are durable against a power
// loss; changes to the tree and attributes survive a killed process at once and a power loss
// with the next durable commit (an fsync of a file makes one), as on a local file system.
//
// The drive tables (the tree, extended attributes, contents, packs, journal) are what
// checkpoints store; local tables hold this machine's own state and are never checkpointed.
// For checkpoints the catalog records the changes to the drive tables as changesets
// (TakeTrackedChanges) and can dump them whole (TakeSnapshot) or rebuild them
// (RestoreFromCheckpoint).
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
#include "base/ids.h"
#include "base/status.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

class SqliteDb;
class SqliteSession;

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;
inline constexpr size_t kMaxNameBytes = 255;
inline constexpr size_t kMaxSymlinkBytes = 4095;
// Extended attributes, with Linux's limits: a name of 1 to 255 bytes (XATTR_NAME_MAX), a value
// of at most 64 KiB (XATTR_SIZE_MAX), and the names of one inode, each with a NUL, in at most
// 64 KiB (XATTR_LIST_MAX: what one listxattr(2) can return).
inline constexpr size_t kMaxXattrNameBytes = 255;
inline constexpr size_t kMaxXattrValueBytes = 65536;
inline constexpr size_t kMaxXattrListBytes = 65536;

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

// A run of a file's bytes held by a chunk: file bytes [offset, offset + size) are the chunk's
// plaintext bytes [chunk_offset, chunk_offset + size). Bytes of a file that no extent covers
// (below its size) are zeros: a sparse file.
struct Extent {
  uint64_t offset = 0;
  ChunkId chunk;
  uint64_t chunk_offset = 0;
  uint64_t size = 0;

  friend bool operator==(const Extent&, const Extent&) = default;
};

// Where a stored chunk is: its pack, and its place and sizes in the pack.
struct ChunkRecord {
  ChunkId id;
  PackId pack;
  uint64_t pack_offset = 0;
  uint32_t sealed_size = 0;
  uint32_t plain_size = 0;
  uint8_t cipher = 0;  // crypto::Cipher's number: what it was sealed with
  uint8_t codec = 0;   // ChunkCodec's number (docs/format.md, "Sealed chunk")

  friend bool operator==(const ChunkRecord&, const ChunkRecord&) = default;
};

// A pack whose shards are stored: its coding and where each shard is.
struct PackRecord {
  PackId id;
  int k = 0;
  int m = 0;
  uint64_t size = 0;            // the pack's bytes before padding
  std::vector<ShardId> shards;  // k + m
  std::vector<NodeId> nodes;    // the node holding each shard

  friend bool operator==(const PackRecord&, const PackRecord&) = default;
};

// A node's reputation with this client: weights of good and bad observations, decayed
// exponentially to the time `at_ns` (backend/peer_set.h, "Reputation").
struct ReputationSums {
  double good = 0;
  double bad = 0;
  int64_t at_ns = 0;  // ns since the Unix epoch; 0: none yet

  friend bool operator==(const ReputationSums&, const ReputationSums&) = default;
};

// What this client has seen of one storage node, kept between sessions (local state of this
// client, not part of the drive).
struct NodeRecord {
  NodeId id;
  std::string address;
  uint64_t successes = 0;
  uint64_t failures = 0;
  uint64_t bad_bytes = 0;        // answers with bytes other than the node stores
  uint64_t latency_us = 0;       // smoothed latency of its answers (0: none measured)
  std::optional<uint64_t> free;  // free space it last reported
  int64_t last_seen_ns = 0;      // when it last answered (ns since the Unix epoch; 0: never)
  ReputationSums reputation;
  uint64_t audits_passed = 0;
  uint64_t audits_failed = 0;

  friend bool operator==(const NodeRecord&, const NodeRecord&) = default;
};

// A shard's place in the drive: its pack and index there.
struct ShardKey {
  PackId pack;
  int index = 0;

  friend auto operator<=>(const ShardKey&, const ShardKey&) = default;
};

// A shard and the node that holds it.
struct ShardLocation {
  ShardKey key;
  ShardId shard;
  NodeId node;

  friend bool operator==(const ShardLocation&, const ShardLocation&) = default;
};

// A shard the client found bad on its node (a failed audit): not counted as healthy until an
// audit passes again or repair moves it.
struct ShardFault {
  ShardLocation where;
  int64_t since_ns = 0;  // when it was first found bad on that node
  std::string reason;
};

// What SetXattr does about an attribute that exists, or does not (setxattr(2)'s flags).
enum class XattrMode {
  kAny,      // flags 0: create it or replace its value
  kCreate,   // XATTR_CREATE: AlreadyExists if it exists
  kReplace,  // XATTR_REPLACE: NoAttribute if it does not exist
};

enum class RenameMode {
  kReplace,    // POSIX rename(2): an existing target of a compatible kind is replaced
  kNoReplace,  // RENAME_NOREPLACE: AlreadyExists if the target exists
  kExchange,   // RENAME_EXCHANGE: both must exist; they swap places
};

// New contents for bytes [offset, offset + length) of a file: `extents` (sorted, inside the
// range, not overlapping; gaps are holes).
struct RangeWrite {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<Extent> extents;
};

// What one commit of the write path does to one file, in this order: create it (if `create`
// is set: a new file, whatever `ino` says), cut it to `cut_to` (when it is longer), write
// `ranges`, set its size to `size` (cutting what lies past it), set mtime (now if unset) and
// ctime, give the new file its name `link`, and drop upload-queue row `upload`. A file that
// only gets its name once its contents are stored leaves nothing half-written behind a crash.
struct FileCommit {
  struct Link {
    Ino parent = 0;
    std::string name;
  };
  Ino ino = 0;
  std::optional<NewInode> create;
  std::optional<uint64_t> cut_to;
  std::vector<RangeWrite> ranges;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime_ns;
  std::optional<Link> link;
  std::optional<uint64_t> upload;
};

// One row of the changes journal: what changed, by the catalog's method that changed it.
// `op` is one of mkdir, create, replace, symlink, link, unlink, rmdir, rename, exchange,
// setattr, setxattr, removexattr, write (docs/format.md, "Catalog"). Entry ops name the entry
// (`parent`, `name`); rename and exchange also the other (`new_parent`, `new_name`); the rest
// name only the inode.
struct Change {
  uint64_t seq = 0;
  int64_t time_ns = 0;
  std::string op;
  Ino ino = 0;
  Ino parent = 0;
  std::string name;
  Ino new_parent = 0;
  std::string new_name;
  // The paths ("/a/b.txt") of `name` and `new_name` when the change was made; for an op that
  // names only the inode, its path then ("" if it had no name: an open file whose last name
  // went). Rows journaled before schema 4 have none.
  std::string path;
  std::string new_path;
};

// A device paired with the companion API (local to this machine; never checkpointed).
struct DeviceRecord {
  uint64_t id = 0;  // assigned by AddDevice, never reused
  std::string name;
  Bytes token_hash;  // a hash of its token; the token itself is not kept
  bool read_only = false;
  std::string root = "/";  // the folder it is confined to
  int64_t created_ns = 0;
  int64_t last_used_ns = 0;  // 0: never
  int64_t revoked_ns = 0;    // 0: not revoked
};

struct CatalogOptions {
  // The database file (created if missing).
  std::string path;
  // Durable commits where the write path and gc need them (see the top of this file). Only
  // tests of logic turn it off.
  bool sync = true;
  // The clock for timestamps, in nanoseconds since the epoch; the real clock if empty.
  std::function<int64_t()> clock;
  // Who opens the drive, written into the lock file (`path` + ".lock") so that a second
  // process refused the drive can say who holds it.
  std::string holder = "shardfs";
  // The changes journal keeps about this many newest rows (trimmed in steps of 1,024
  // changes); 0 keeps all. A changes feed whose cursor is older must relist.
  uint64_t journal_keep = 100000;
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
  // A new empty file with no name (nlink 0, as O_TMPFILE makes): an orphan until
  // LinkUnlinked names it. Journals nothing.
  Result<InodeAttr> CreateUnlinked(const NewInode& how);
  // Gives the unlinked file `ino` its name `name` in `parent`, replacing an existing
  // non-directory entry if `replace`, in one transaction; journals "create", or "replace" for
  // a replacement. Returns the replaced inode with its attributes after (nlink 0: an orphan).
  // InvalidArgument unless `ino` is a file without links; AlreadyExists (not `replace`);
  // IsDirectory if the name is a folder; errors of a bad parent or name as Lookup.
  Result<std::optional<InodeAttr>> LinkUnlinked(Ino ino, Ino parent, std::string_view name,
                                                bool replace);

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
  // Removes an inode with no links left, its extents and its extended attributes.
  // InvalidArgument if it still has links.
  Status DropOrphan(Ino ino);

  // Extended attributes. ----------------------------------------------------------------------
  // Named values of an inode of any kind (orphans too), part of the drive: checkpointed,
  // restored, and dropped with the inode. A name is 1 to kMaxXattrNameBytes bytes without NUL
  // (which namespaces, "user." and the like, a caller allows is the caller's business); a value
  // is 0 to kMaxXattrValueBytes bytes. For every method: NotFound for an unknown inode;
  // OutOfRange for an empty name or one over kMaxXattrNameBytes (Linux answers ERANGE);
  // InvalidArgument for a name holding NUL.

  // The value of attribute `name` of `ino`. NoAttribute if it has none of that name.
  Result<Bytes> GetXattr(Ino ino, std::string_view name);
  // Sets attribute `name` of `ino` to `value` (as `mode` allows) and the inode's ctime, and
  // journals "setxattr", in one transaction. AlreadyExists (kCreate) if the attribute exists;
  // NoAttribute (kReplace) if it does not; OutOfRange for a value over kMaxXattrValueBytes
  // (Linux answers E2BIG, and refuses it before a file system sees it); NoSpace if a new name
  // would take the inode's names past kMaxXattrListBytes. On an error nothing changes.
  Status SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode);
  // The names of `ino`'s attributes, in bytewise order.
  Result<std::vector<std::string>> ListXattr(Ino ino);
  // Removes attribute `name` of `ino`, sets its ctime and journals "removexattr", in one
  // transaction. NoAttribute if it has none of that name.
  Status RemoveXattr(Ino ino, std::string_view name);

  // File contents. --------------------------------------------------------------------------

  // Records a pack whose shards are all stored, with the chunks it holds (new chunks start
  // unreferenced). InvalidArgument for a malformed record (shard and node counts other than
  // k + m); AlreadyExists if the pack or one of its chunks is known.
  Status AddPack(const PackRecord& pack, const std::vector<ChunkRecord>& chunks);
  // A chunk the drive already stores (for dedup), or nullopt.
  Result<std::optional<ChunkRecord>> FindChunk(const ChunkId& id);
  // The pack's record. NotFound.
  Result<PackRecord> GetPack(const PackId& id);
  // The extents of file `ino` that overlap bytes [offset, offset + length), in file order,
  // whole (an extent may start before `offset` or end after the range).
  Result<std::vector<Extent>> ReadExtents(Ino ino, uint64_t offset, uint64_t length);
  // Makes bytes [offset, offset + length) of file `ino` be `extents` (sorted, inside the range,
  // not overlapping; gaps are holes), cutting any extent that crosses the range's edges, and
  // grows the file's size to the range's end if it was smaller; sets mtime and ctime. Chunks'
  // reference counts follow. NotFound for an unknown file or chunk; InvalidArgument for a
  // directory or symlink, or extents out of order, outside the range, or past their chunk.
  Result<InodeAttr> WriteExtents(Ino ino, uint64_t offset, uint64_t length,
                                 const std::vector<Extent>& extents);
  // The commit point of the write path: every commit in `commits`, in one transaction (all or
  // nothing), each appending a "write" row (and a "create" row for a link) to the journal.
  // Returns each file's attributes after, or nullopt for a file that no longer exists (its
  // commit is skipped but for its upload row). Errors as WriteExtents; AlreadyExists if a
  // link's name is taken; InvalidArgument for `create` without `link`.
  Result<std::vector<std::optional<InodeAttr>>> CommitFiles(const std::vector<FileCommit>& commits);
  // Inodes with no links (removed while open, or never linked).
  Result<std::vector<Ino>> Orphans();

  // The upload queue (local to this client): `seq` names a staged layer of file `ino` whose
  // bytes are not stored yet. CommitFiles drops the row with the layer's commit.
  Status AddUpload(uint64_t seq, Ino ino);
  Status RemoveUpload(uint64_t seq);
  // (seq, ino) rows, by seq.
  Result<std::vector<std::pair<uint64_t, Ino>>> Uploads();

  // Packs none of whose chunks any extent uses (garbage for gc), at most `limit`.
  Result<std::vector<PackId>> DeadPacks(size_t limit);
  // Forgets a dead pack, its shards and its chunks, and queues its shards for deletion from
  // their nodes (a local queue: PendingDeletions), in one transaction. InvalidArgument if some
  // chunk of it is used.
  Status DropDeadPack(const PackId& id);
  // Queues the shards of a pack the catalog does not list (a checkpoint's) for deletion.
  Status QueueDeletions(const PackRecord& pack);
  // Shards to delete from nodes, at most `limit`; DeletionDone when a node let go of one.
  Result<std::vector<std::pair<ShardId, NodeId>>> PendingDeletions(size_t limit);
  Status DeletionDone(const ShardId& shard, const NodeId& node);

  // Chunks no extent refers to any more (garbage for gc), at most `limit`.
  Result<std::vector<ChunkRecord>> UnreferencedChunks(size_t limit);

  // The changes journal. -------------------------------------------------------------------

  // The sequence number of the last change (0 before any).
  Result<uint64_t> LastChange();
  // The sequence number of the oldest change the journal still holds (LastChange() + 1 if it
  // holds none): changes after a cursor below FirstChange() - 1 were trimmed.
  Result<uint64_t> FirstChange();
  // Up to `limit` journal rows with seq > `after`, in order.
  Result<std::vector<Change>> ChangesAfter(uint64_t after, size_t limit);
  // Calls `listener` with the sequence number of every change journaled from now on (nullptr:
  // none). It is called under the catalog's lock, before the change's transaction commits (a
  // reader it wakes sees the change once that commits; a change rolled back is never seen).
  // REQUIRES: the listener does not call the catalog, and returns soon.
  void SetChangeListener(std::function<void(uint64_t)> listener);
  // The path of `ino` from the root ("/" for the root, "/a/b.txt"); of an inode with several
  // names (hard links), the first in (parent, name) order. NotFound for an inode without a
  // name.
  Result<std::string> PathOf(Ino ino);

  // Devices of the companion API (local). ------------------------------------------------

  // Records a new device (`id`, the times and `revoked_ns` are set here) and returns it.
  // InvalidArgument without a token hash; a hash already taken fails as the database says.
  Result<DeviceRecord> AddDevice(DeviceRecord device);
  // The device whose token hashes to `token_hash` (revoked ones too), or nullopt.
  Result<std::optional<DeviceRecord>> FindDevice(ByteSpan token_hash);
  // Sets the time device `id` was last used.
  Status TouchDevice(uint64_t id, int64_t when_ns);
  // Every device, revoked ones too, by id.
  Result<std::vector<DeviceRecord>> ListDevices();
  // Marks device `id` revoked (durably; a device revoked earlier keeps its time) and returns
  // it. NotFound for an unknown id.
  Result<DeviceRecord> RevokeDevice(uint64_t id);

  struct Totals {
    uint64_t files = 0;
    uint64_t folders = 0;     // the root included
    uint64_t file_bytes = 0;  // the files' sizes
    uint64_t packs = 0;
    uint64_t pack_bytes = 0;  // before erasure coding
    uint64_t chunks = 0;
    uint64_t unreferenced_chunks = 0;  // garbage for gc
  };
  // Counts over the whole drive (orphans not included).
  Result<Totals> GetTotals();

  // Checkpoints (backend/checkpoint.h). ------------------------------------------------------

  // The tables checkpoints store, in the order a snapshot lists them.
  static const std::vector<std::string>& DriveTables();
  // The schema version this build writes (docs/format.md, "Catalog").
  static int SchemaVersion();

  // A changeset of the drive tables (SQLite's session format) and the journal's last sequence
  // number when it was taken.
  struct TableChanges {
    Bytes changeset;
    uint64_t last_change = 0;
  };
  // Starts recording the changes to the drive tables (from scratch if it was recording).
  Status StartChangeTracking();
  // True if a drive table changed since recording (re)started; false when not recording.
  bool HasTrackedChanges();
  // The changes to the drive tables since recording (re)started; recording restarts, so every
  // change is in exactly one result. InvalidArgument if not recording.
  Result<TableChanges> TakeTrackedChanges();
  // Every row of the drive tables, as a changeset of inserts into empty tables (a checkpoint's
  // base); recording restarts if it was on, so the next changes are those after the snapshot.
  // Holds the catalog for the time it takes (it reads every row).
  Result<TableChanges> TakeSnapshot();
  // Makes the drive tables hold `base` (from TakeSnapshot) with `deltas` (from
  // TakeTrackedChanges) applied in order, in one transaction: on error nothing changes.
  // Corruption if a changeset does not apply exactly or the result has no root directory.
  // Recording restarts if it was on.
  Status RestoreFromCheckpoint(ByteSpan base, const std::vector<ByteSpan>& deltas);

  // This machine's own state (never checkpointed), by key: nullopt if unset.
  Result<std::optional<Bytes>> GetLocalState(std::string_view key);
  Status SetLocalState(std::string_view key, ByteSpan value);

  // Audits and repair (local: shard_faults; the shards table is the drive's). ---------------

  // Shard locations in (pack, index) order after `after` (from the start if nullopt), at most
  // `limit`: the auditor's round robin.
  Result<std::vector<ShardLocation>> ListShards(const std::optional<ShardKey>& after, size_t limit);
  // Packs in id order after `after`, at most `limit`, with their shard locations: the
  // repairer's count.
  Result<std::vector<PackRecord>> ListPacks(const std::optional<PackId>& after, size_t limit);
  // Records that `where.shard` failed on `where.node` (an audit), unless the catalog no longer
  // puts that shard there; a fault already recorded keeps its first time.
  Status RecordShardFault(const ShardLocation& where, std::string_view reason);
  // Forgets the fault of shard `key` if it is one of `node`'s (an audit passed).
  Status ClearShardFault(const ShardKey& key, const NodeId& node);
  Result<std::vector<ShardFault>> ShardFaults();
  // Repair's commit: shard `index` of `pack` is now on node `to`, for each (index, to), in one
  // transaction; each old copy is queued for deletion (gc lets go of it if its node answers
  // again) and its fault forgotten. NotFound for an unknown shard (then nothing changed).
  Status MoveShards(const PackId& pack, const std::vector<std::pair<int, NodeId>>& moves);

  // Node health (the nodes table). ---------------------------------------------------------

  // Every saved node record, in node id order.
  Result<std::vector<NodeRecord>> LoadNodes();
  // Saves `nodes` in one transaction, replacing the records of the same ids (others stay).
  Status SaveNodes(const std::vector<NodeRecord>& nodes);

 private:
  explicit Catalog(CatalogOptions options);
  int64_t Now() const;
  Result<uint64_t> LastChangeLocked() REQUIRES(mu_);
  Result<InodeAttr> GetAttrLocked(Ino ino) REQUIRES(mu_);
  // The entry `name` of live directory `parent`, or nullopt; the name and the parent are
  // checked as Lookup does.
  Result<std::optional<InodeAttr>> FindEntryLocked(Ino parent, std::string_view name) REQUIRES(mu_);
  Result<InodeAttr> LookupLocked(Ino parent, std::string_view name) REQUIRES(mu_);
  // True if directory `dir` has any entry.
  Result<bool> HasEntriesLocked(Ino dir) REQUIRES(mu_);
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
  Result<std::vector<Extent>> ReadExtentsLocked(Ino ino, uint64_t offset, uint64_t end)
      REQUIRES(mu_);
  // Drops extents covering bytes [from, to), cutting those that cross either edge.
  Status CutExtentsLocked(Ino ino, uint64_t from, uint64_t to) REQUIRES(mu_);
  Status AddChunkRefLocked(const ChunkId& chunk, int delta) REQUIRES(mu_);
  // InvalidArgument/NotFound unless `extents` fit RangeWrite's rules and their chunks exist.
  Status CheckExtentsLocked(uint64_t offset, uint64_t length, const std::vector<Extent>& extents)
      REQUIRES(mu_);
  Result<std::optional<InodeAttr>> CommitFileLocked(const FileCommit& c, int64_t now) REQUIRES(mu_);
  Status InsertExtentLocked(Ino ino, const Extent& e) REQUIRES(mu_);
  // The value of attribute `name` (a checked name) of inode `ino`, or nullopt. NotFound for
  // an unknown inode.
  Result<std::optional<Bytes>> FindXattrLocked(Ino ino, std::string_view name) REQUIRES(mu_);
  // The path of `ino` (PathOf), and of entry `name` in folder `parent`.
  Result<std::string> PathLocked(Ino ino) REQUIRES(mu_);
  Result<std::string> EntryPathLocked(Ino parent, std::string_view name) REQUIRES(mu_);
  Status JournalLocked(std::string_view op, Ino ino, Ino parent, std::string_view name,
                       Ino new_parent, std::string_view new_name, int64_t now) REQUIRES(mu_);

  const CatalogOptions options_;
  UniqueFd lock_;
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ GUARDED_BY(mu_);
  // Recording changes for checkpoints; destroyed before db_.
  std::unique_ptr<SqliteSession> session_ GUARDED_BY(mu_);
  std::function<void(uint64_t)> change_listener_ GUARDED_BY(mu_);
};

// Checks a directory entry name: InvalidArgument (empty, ".", "..", '/' or NUL in it) or
// NameTooLong.
Status CheckName(std::string_view name);
// Checks an extended attribute's name: OutOfRange (empty, or over kMaxXattrNameBytes) or
// InvalidArgument (NUL in it).
Status CheckXattrName(std::string_view name);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CATALOG_H_
