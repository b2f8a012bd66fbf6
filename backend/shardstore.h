// A storage node's disk: content-addressed shard files, the leases owners hold on them,
// per-owner usage and quotas, and the owners' signed slots (docs/format.md, "Shard file" and
// "Node index").
//
// Layout under the data folder:
//   shards/ab/<64 hex>   one file per shard: its bytes, its leaf hashes, a footer
//   tmp/                 shards being received; emptied at every start
//   index.db             SQLite: shards, leases, owners, slots
// A shard file appears under its name only once it is whole and fsync'd (written in tmp/,
// fsync'd, renamed, folder fsync'd), and its lease is committed to the index only after that,
// so after a crash at any moment the store holds only whole shards; a file without a lease
// (from a crash between the rename and the commit) is removed at the next start.
// Opening a shard checks its leaf hashes against the shard id. Reads through Read and Prove
// also check every byte they return against the leaf hashes, and ScrubShard checks a whole
// shard; a damaged shard found so is reported as Corruption and dropped (its file, its row and
// every lease). Bytes taken straight from the file (ShardReader::fd, for sendfile) are not
// checked: the node sends them as stored, and the client checks them (docs/protocol.md).
//
// Thread safety: all methods may be called from many threads. A ShardWriter or ShardReader is
// used by one thread at a time and must not outlive its store.

#ifndef SHARDFS_BACKEND_SHARDSTORE_H_
#define SHARDFS_BACKEND_SHARDSTORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/peer.h"
#include "base/bytes.h"
#include "base/file.h"
#include "base/ids.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "crypto/merkle.h"
#include "crypto/sign.h"

namespace shardfs::backend {

class SqliteDb;

// Who holds a lease: the owner's public key.
using OwnerKey = crypto::PublicKey;

struct ShardStoreOptions {
  // The data folder (created if missing).
  std::string dir;
  // The most bytes of shard files the store keeps (the operator's --capacity). Required.
  uint64_t capacity = 0;
  // Free disk space the store always leaves, whatever the capacity says.
  uint64_t reserve = uint64_t{1} << 30;
  // The largest shard accepted (a pack of 256 MiB over k=4 is 64 MiB per shard).
  uint64_t max_shard_size = uint64_t{64} << 20;
  // The most bytes one owner may hold leases on; 0 for no limit other than capacity.
  uint64_t owner_quota = 0;
  // fsync shard files, folders and index commits. Only tests of logic turn it off.
  bool sync = true;
};

struct ShardStoreStats {
  uint64_t capacity = 0;  // as configured
  uint64_t used = 0;      // bytes of shard files stored
  uint64_t free = 0;      // bytes a new shard may still take (capacity, disk and reserve)
  uint64_t shards = 0;    // shard files stored
  uint64_t owners = 0;    // owners holding at least one lease
};

struct OwnerUsage {
  uint64_t bytes = 0;   // bytes of the shard files the owner holds leases on
  uint64_t shards = 0;  // leases the owner holds
};

class ShardStore;

// Receives one shard. Append its bytes in order, then Commit. Destroying a writer that was
// not committed deletes what it wrote and releases its space. For a shard the node already
// stores (another owner's lease), the bytes are only hashed, not written: the id check proves
// the sender holds them, and one copy serves every lease.
class ShardWriter {
 public:
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Writes the next bytes. OutOfRange past the declared length; IOError/NoSpace from the disk.
  Status Append(ByteSpan data);
  // Checks that exactly the declared length arrived (InvalidArgument if not) and that its
  // Merkle root is the shard id (Corruption if not); makes the shard durable and records the
  // owner's lease. Returns true if the lease is new, false if the owner already held it (the
  // PUT was a repeat). Nothing is stored after a failure.
  Result<bool> Commit();

  uint64_t length() const { return length_; }
  uint64_t received() const { return builder_.length(); }

 private:
  friend class ShardStore;
  ShardWriter(ShardStore* store, OwnerKey owner, ShardId id, uint64_t length, uint64_t reserved,
              uint64_t quota_reserved, UniqueFd fd, std::string tmp_path);
  void Abort();

  ShardStore* store_;
  OwnerKey owner_;
  ShardId id_;
  uint64_t length_;
  uint64_t reserved_;        // disk space held for this shard
  uint64_t quota_reserved_;  // owner quota held for this shard
  UniqueFd fd_;
  std::string tmp_path_;
  crypto::MerkleBuilder builder_;
  bool done_ = false;
};

// Called by ShardStore::ScrubShard after each piece of a shard it has checked, with the piece's
// size in bytes; returns false to stop the scrub there. May sleep (that is how a scrub is
// paced).
using ScrubPacer = std::function<bool(uint64_t bytes)>;

// One open stored shard whose leaf hashes were checked against its id when it was opened.
// Read and Prove check every byte they return against the leaf hashes; fd() gives the file
// itself, unchecked.
class ShardReader {
 public:
  uint64_t length() const { return tree_.length(); }
  const ShardId& id() const { return id_; }
  // The open shard file, to send shard bytes straight from it (sendfile): byte i of the shard
  // is byte i of the file, for i < length(). Bytes taken this way are NOT checked against the
  // leaf hashes, and a damage there is not noticed by this reader. Owned by the reader: valid
  // while it lives, and not to be closed.
  int fd() const { return fd_.get(); }

  // Reads [offset, offset + out.size()). OutOfRange if it does not lie within the shard;
  // Corruption (and the shard is dropped from the store) if the disk returns wrong bytes.
  Status Read(uint64_t offset, MutableByteSpan out);
  // The leaves [first_leaf, first_leaf + count) and their proof. OutOfRange if the run is
  // empty or outside the shard; Corruption as Read.
  Result<ShardProof> Prove(uint64_t first_leaf, uint64_t count);

 private:
  friend class ShardStore;
  ShardReader(ShardStore* store, ShardId id, UniqueFd fd, crypto::MerkleTree tree)
      : store_(store), id_(id), fd_(std::move(fd)), tree_(std::move(tree)) {}
  // Bytes in leaves [first, first + count).
  uint64_t RunBytes(uint64_t first, uint64_t count) const;
  // Checks `run`, the bytes of whole leaves from leaf `first` on (the shard's last leaf may
  // be short), against the leaf hashes. Corruption naming the first leaf that differs.
  Status CheckLeaves(uint64_t first, ByteSpan run) const;
  // Reads whole leaves from leaf `first` on into `out` (RunBytes(first, count) long for a run
  // of `count` leaves) and checks them.
  Status ReadLeaves(uint64_t first, MutableByteSpan out);
  // ShardStore::ScrubShard's work on an open shard: reads and checks every leaf.
  Status Scrub(const ScrubPacer& pace);

  ShardStore* store_;
  ShardId id_;
  UniqueFd fd_;
  crypto::MerkleTree tree_;
  Bytes scratch_;
};

class ShardStore {
 public:
  // Opens the store in options.dir, creating it if needed, and recovers from a crash: empties
  // tmp/, and if the last run did not close cleanly, removes shard files without a lease and
  // leases without a file. InvalidArgument for bad options; Busy if another process has the
  // folder open; IOError/Corruption from the disk or the index.
  static Result<std::unique_ptr<ShardStore>> Open(const ShardStoreOptions& options);
  // Closes the index and records a clean shutdown. REQUIRES: no writer or reader is alive.
  ~ShardStore();
  ShardStore(const ShardStore&) = delete;
  ShardStore& operator=(const ShardStore&) = delete;

  // Starts receiving shard `id` of `length` bytes for `owner`, holding the space it needs.
  // OutOfRange if length is 0 or above max_shard_size; NoSpace if the node (capacity, disk
  // reserve) or the owner's quota has no room.
  Result<std::unique_ptr<ShardWriter>> BeginPut(const OwnerKey& owner, const ShardId& id,
                                                uint64_t length);

  // Opens shard `id` for reading. NotFound unless `owner` holds a lease on it (one owner
  // cannot tell whether another stores a shard); Corruption (and the shard is dropped) if the
  // file does not match its id.
  Result<std::unique_ptr<ShardReader>> OpenShard(const OwnerKey& owner, const ShardId& id);

  // Drops `owner`'s lease on `id`; the file goes when no lease is left. NotFound if the owner
  // holds no lease on it.
  Status Delete(const OwnerKey& owner, const ShardId& id);

  // Up to `max` ids of stored shards, in increasing order (as byte strings), all above `after`
  // (from the lowest if nullopt): pages of a walk over the store. A shard stored or dropped
  // during the walk may or may not be listed. Unavailable if the store is closed; IOError or
  // Corruption from the index.
  Result<std::vector<ShardId>> ListShards(const std::optional<ShardId>& after, size_t max);

  // Checks stored shard `id` in full, whoever holds it: the footer and leaf hashes against the
  // id (as OpenShard does), then every byte against the leaf hashes, read from the disk (with
  // direct I/O where the file system allows it, not from a copy in the page cache), in pieces
  // of 1 MiB; `pace` (if set) is called after each piece. OK if the shard is whole. Corruption
  // if it is damaged or its bytes cannot be read: the shard has then been dropped, as a failed
  // Read drops it. NotFound if the store does not hold `id` (e.g. it was deleted since it was
  // listed); Cancelled if `pace` returned false (nothing is dropped); Unavailable if the store
  // is closed; IOError for other failures (the shard is left in place).
  Status ScrubShard(const ShardId& id, const ScrubPacer& pace = {});

  // The newest slot record `owner` stored, or nullopt.
  Result<std::optional<Bytes>> GetSlot(const OwnerKey& owner);
  // Stores `record` (a signed slot record, backend/slot.h) if its signature verifies, its
  // owner is `owner`, and its sequence is higher than the stored one's. InvalidArgument or
  // NotSupported for a malformed record; PermissionDenied for a bad signature or another
  // owner's record; AlreadyExists if the stored sequence is the same or higher.
  Status PutSlot(const OwnerKey& owner, ByteSpan record);

  ShardStoreStats Stats();
  OwnerUsage Usage(const OwnerKey& owner);
  const ShardStoreOptions& options() const { return options_; }

  // The size of the file that holds a shard of `length` bytes.
  static uint64_t FileSize(uint64_t length);

 private:
  friend class ShardWriter;
  friend class ShardReader;
  explicit ShardStore(ShardStoreOptions options);

  Status Init();
  Status Recover() REQUIRES(mu_);
  // Opens shard `id`'s file and checks its footer and leaf hashes against the id (no lease
  // check). NotFound if there is no file; Corruption (and the shard is dropped) if it does not
  // match; IOError from the disk.
  Result<std::unique_ptr<ShardReader>> OpenFile(const ShardId& id);
  std::string ShardPath(const ShardId& id) const;
  Mutex& StripeFor(const ShardId& id) { return stripes_[id.data()[0] % stripes_.size()]; }
  uint64_t DiskAvailable() const;
  uint64_t FreeLocked() REQUIRES(mu_);
  Result<bool> HasRowLocked(const ShardId& id) REQUIRES(mu_);
  Result<bool> HasLeaseLocked(const OwnerKey& owner, const ShardId& id) REQUIRES(mu_);

  // ShardWriter::Commit after the bytes are durable in `tmp_path`, or, with an empty
  // `tmp_path`, after the bytes of a shard stored when the upload began were checked
  // (Unavailable if it is gone by now).
  Result<bool> CommitShard(const OwnerKey& owner, const ShardId& id, uint64_t length,
                           const std::string& tmp_path);
  void Release(const OwnerKey& owner, uint64_t reserved, uint64_t quota_reserved);
  // Drops a shard whose file is damaged: its file, row and every lease.
  void Quarantine(const ShardId& id, const Status& why);
  // Quarantine's work: the rows in one transaction, then the file and the in-memory totals.
  Status DropShardLocked(const ShardId& id) REQUIRES(mu_);
  // Deletes shard `id`'s row and all its leases (inside the caller's transaction).
  Status DeleteShardRowsLocked(const ShardId& id) REQUIRES(mu_);
  // Takes a shard of `size` bytes off `owner`'s usage.
  void UnchargeLocked(const OwnerKey& owner, uint64_t size) REQUIRES(mu_);

  const ShardStoreOptions options_;
  UniqueFd lock_fd_;
  // Lock order: a stripe, then mu_. A stripe serializes the file-level steps (rename, unlink)
  // with the index updates for the shards that hash to it.
  std::array<Mutex, 64> stripes_;
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ GUARDED_BY(mu_);
  uint64_t used_ GUARDED_BY(mu_) = 0;
  uint64_t shard_count_ GUARDED_BY(mu_) = 0;
  uint64_t reserved_ GUARDED_BY(mu_) = 0;
  std::unordered_map<OwnerKey, OwnerUsage> usage_ GUARDED_BY(mu_);
  std::unordered_map<OwnerKey, uint64_t> quota_reserved_ GUARDED_BY(mu_);
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_SHARDSTORE_H_
