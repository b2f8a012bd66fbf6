// A bounded cache of decrypted chunks on the local disk (DESIGN.md section 4 step 6;
// docs/format.md, "Chunk cache"), with a small in-memory tier in front of it. Keyed by chunk
// id; a file is written to a temporary name and renamed into place, so a crash never leaves a
// partial chunk under a chunk's name, and every file read is checked by recomputing the keyed
// chunk id of its bytes: a damaged file is dropped and reported as a miss, never served. The
// least recently used chunks go first when the byte budget is reached; the order of use
// survives restarts as the files' modification times.
//
// Thread safety: all methods may be called from many threads at once.

#ifndef SHARDFS_BACKEND_CHUNK_CACHE_H_
#define SHARDFS_BACKEND_CHUNK_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "crypto/hash.h"
#include "crypto/secret.h"

namespace shardfs::backend {

struct ChunkCacheOptions {
  // The cache's folder; created (mode 0700) with its parents if missing. Files are 0600.
  std::string dir;
  // The most bytes of chunk files kept on disk (headers included).
  uint64_t disk_bytes = uint64_t{1} << 30;
  // The most plaintext bytes also kept in memory (0: none).
  uint64_t memory_bytes = uint64_t{32} << 20;
};

struct ChunkCacheStats {
  uint64_t hits = 0;         // Get answered, from memory or disk
  uint64_t memory_hits = 0;  // of which from memory
  uint64_t misses = 0;       // Get found nothing usable
  uint64_t damaged = 0;      // files dropped because their bytes were not their chunk
  uint64_t evictions = 0;    // files removed to stay within the budget
  uint64_t files = 0;        // files now
  uint64_t disk_bytes = 0;   // their bytes now
};

class ChunkCache {
 public:
  // Opens the cache in options.dir: removes temporary files a crash left and indexes the chunk
  // files there by last use, evicting down to the budget. `chunk_id_key` is the drive's
  // chunk-id key (crypto::DriveKeys::chunk_id). IOError/PermissionDenied from the disk.
  static Result<std::unique_ptr<ChunkCache>> Open(ChunkCacheOptions options,
                                                  const crypto::SecretKey& chunk_id_key);
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // A chunk's plaintext, shared by the cache's memory tier and its readers; never changed.
  using Plain = std::shared_ptr<const Bytes>;

  // The plaintext of chunk `id`, whose size must be `size`: the memory tier's own buffer (no
  // copy), or its file read and checked (then kept in memory too). NotFound if the chunk is
  // not cached, or its file is damaged (the file is then removed).
  Result<Plain> Get(const ChunkId& id, size_t size);
  // Keeps `plain` as the plaintext of chunk `id`: written to its file (unless `on_disk` is
  // false), and the buffer itself kept in the memory tier. REQUIRES: the caller checked that
  // it is (it came out of an opened chunk). Evicts the least recently used chunks beyond the
  // budget; a chunk larger than the whole budget is not kept. Errors from the disk (the cache
  // stays usable).
  Status Put(const ChunkId& id, Plain plain, bool on_disk = true);
  // True if chunk `id` is cached: it has a file (not checked), or is in memory.
  bool Contains(const ChunkId& id) const;

  ChunkCacheStats stats() const;
  // The file that holds chunk `id` (whether or not it exists): for tests and docs.
  std::string PathOf(const ChunkId& id) const;

 private:
  ChunkCache(ChunkCacheOptions options, const crypto::SecretKey& chunk_id_key);
  Status Scan();
  // Reads and checks chunk `id`'s file. NotFound if there is none; Corruption if it is not
  // chunk `id` of `size` bytes.
  Result<Plain> ReadFile(const ChunkId& id, size_t size) const;
  // Marks `id` used, most recently.
  void TouchLocked(const ChunkId& id) REQUIRES(mu_);
  // Adds or replaces `id`'s file of `size` bytes; the paths of files evicted to make room go to
  // *evicted.
  void IndexLocked(const ChunkId& id, uint64_t size, std::vector<std::string>* evicted)
      REQUIRES(mu_);
  void DropLocked(const ChunkId& id) REQUIRES(mu_);
  void RememberLocked(const ChunkId& id, Plain plain) REQUIRES(mu_);

  struct DiskEntry {
    uint64_t size = 0;
    std::list<ChunkId>::iterator lru;
  };
  struct MemoryEntry {
    Plain plain;
    std::list<ChunkId>::iterator lru;
  };

  const ChunkCacheOptions options_;
  const crypto::ChunkIdHasher hasher_;
  mutable Mutex mu_;
  std::list<ChunkId> disk_lru_ GUARDED_BY(mu_);  // most recent first
  std::unordered_map<ChunkId, DiskEntry> disk_ GUARDED_BY(mu_);
  std::list<ChunkId> memory_lru_ GUARDED_BY(mu_);
  std::unordered_map<ChunkId, MemoryEntry> memory_ GUARDED_BY(mu_);
  uint64_t memory_used_ GUARDED_BY(mu_) = 0;
  ChunkCacheStats stats_ GUARDED_BY(mu_);
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CHUNK_CACHE_H_
