// A drive: the catalog, the write pipeline and the read path over the drive's peers
// (DESIGN.md sections 3 and 4, in their first, synchronous form).
//
// WriteWholeFile cuts a file into chunks; chunks the drive does not store yet are sealed,
// packed and Reed-Solomon coded; each pack's k + m shards go to k + m distinct peers at once
// (a peer that refuses a shard is replaced by the next one); only when every shard of a pack is
// stored is the pack recorded, and only when every pack is recorded does one catalog
// transaction point the file at its chunks. So the catalog never points at data that is not
// stored. Read takes each chunk it needs from the chunk cache, or from the data shards holding
// it (range requests, hedged on a pool: ChunkReader), rebuilds a range from any k shards when
// some are missing, slow or wrong, and checks every chunk by opening it: a peer that answers
// with wrong bytes is read around and remembered. Sequential reads of a file fetch the next
// chunks into the cache in the background. The nodes' health is loaded from the catalog at
// Open and saved periodically and at close.
//
// Not yet here: the persistent upload queue and local staging (a write waits for the
// network).
//
// Thread safety: all methods may be called from many threads; writes run one at a time.

#ifndef SHARDFS_BACKEND_DRIVE_H_
#define SHARDFS_BACKEND_DRIVE_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend/catalog.h"
#include "backend/chunk_cache.h"
#include "backend/chunk_codec.h"
#include "backend/chunk_reader.h"
#include "backend/drive_config.h"
#include "backend/pack_pipeline.h"
#include "backend/peer.h"
#include "backend/peer_set.h"
#include "base/thread_annotations.h"
#include "base/thread_pool.h"
#include "crypto/keys.h"

namespace shardfs::backend {

struct DriveOptions {
  DriveConfig config;
  crypto::MasterKey master;
  // The catalog's database file.
  std::string catalog_path;
  // peers[i] is config.nodes[i]; at least k + m of them.
  std::vector<std::shared_ptr<Peer>> peers;
  // Chunk sizes, pack size, cipher, threads; k, m and `known` are set by the drive.
  WritePipelineOptions pipeline;
  // fsync catalog commits. Only tests of logic turn it off.
  bool sync = true;
  // Who holds the drive (written into the catalog's lock file).
  std::string holder = "shardfs";
  // Shard reads: threads and hedging.
  ChunkReaderOptions read;
  // The folder of the cache of decrypted chunks (docs/format.md, "Chunk cache"); empty: no
  // cache and no read-ahead.
  std::string cache_dir;
  // The most bytes the chunk cache keeps on disk, and in memory as well.
  uint64_t cache_bytes = uint64_t{1} << 30;
  uint64_t memory_cache_bytes = uint64_t{32} << 20;
  // A file read sequentially gets up to this many chunks past the read fetched into the
  // cache in the background (at most this many at once, on readahead_threads). 0: none.
  int readahead_chunks = 4;
  int readahead_threads = 2;
  // How often the client's view of the nodes (PeerSet) is saved to the catalog when it has
  // changed; it is also saved when the drive closes. 0: only then.
  std::chrono::seconds health_save_interval{60};
};

class Drive {
 public:
  // Opens the catalog (Busy if another process has the drive) and prepares the pipeline.
  // InvalidArgument for a bad config, or fewer peers than k + m.
  // The nodes' health saved by earlier sessions is loaded into peers().
  static Result<std::unique_ptr<Drive>> Open(DriveOptions options);
  // Stops background work and saves the nodes' health.
  ~Drive();

  Catalog& catalog() { return *catalog_; }
  const DriveConfig& config() const { return options_.config; }
  // The drive's nodes and the client's view of them; peers().node(i) is config().nodes[i].
  PeerSet& peers() { return *peers_; }
  // The chunk cache; null without DriveOptions::cache_dir.
  ChunkCache* cache() { return cache_.get(); }

  // Makes `data` the whole contents of file `ino` (see the top of this file). Unavailable if
  // some pack could not be stored on k + m distinct peers; the file is then unchanged.
  Result<InodeAttr> WriteWholeFile(Ino ino, ByteSpan data);
  // Reads file bytes from `offset` into `out`; returns how many (fewer at the end of the
  // file). Holes read as zeros. Unavailable if a chunk cannot be read from enough peers;
  // Corruption if no k shards give a chunk that opens (never wrong bytes).
  Result<size_t> Read(Ino ino, uint64_t offset, MutableByteSpan out);

  // Saves the nodes' health (peers()) to the catalog now; errors as the catalog's.
  Status SaveNodeHealth();

 private:
  explicit Drive(DriveOptions options);
  Status StorePack(EncodedPack& pack);
  // Read's work on a range within the file: holes as zeros, chunks from the peers.
  Status ReadRange(Ino ino, uint64_t offset, MutableByteSpan out);
  // The plaintext of `chunk` into `plain`: from the cache, or from the peers (then cached).
  Status FetchChunk(const ChunkRecord& chunk, MutableByteSpan plain);
  // The plaintext of `chunk` from the peers into `plain` (or nowhere), and into the cache.
  Status FetchFromPeers(const ChunkRecord& chunk, MutableByteSpan plain);
  Status FetchFromPeers(const ChunkRecord& chunk);
  // After a read of [offset, offset + n) of file `ino` (of `size` bytes): if it went on where
  // the last read of the file ended, queues the chunks that follow for read-ahead.
  void ReadAhead(Ino ino, uint64_t offset, uint64_t n, uint64_t size);
  // A read-ahead task: fetches chunk `id` into the cache unless it is there or the drive stops.
  void ReadAheadChunk(const ChunkId& id);
  Status LoadNodeHealth();
  // Saves the nodes' health every health_save_interval while it changes, until stopped.
  void HealthSaverLoop();

  DriveOptions options_;
  crypto::DriveKeys keys_;
  std::unique_ptr<Catalog> catalog_;
  ChunkSealer sealer_;
  std::unique_ptr<WritePipeline> pipeline_;
  std::unique_ptr<PeerSet> peers_;
  std::unique_ptr<ChunkReader> reader_;
  std::unique_ptr<ChunkCache> cache_;
  Mutex write_mu_;  // one WriteWholeFile at a time

  // Read-ahead. Its pool is stopped first when the drive closes.
  Mutex ahead_mu_;
  CondVar ahead_cv_;  // a fetch ahead started or ended
  // Where a sequential read of each file recently read goes on.
  std::unordered_map<Ino, uint64_t> next_offset_ GUARDED_BY(ahead_mu_);
  // Chunks queued for read-ahead; true once the fetch has started.
  std::unordered_map<ChunkId, bool> ahead_ GUARDED_BY(ahead_mu_);
  bool ahead_stopping_ GUARDED_BY(ahead_mu_) = false;
  std::unique_ptr<ThreadPool> ahead_pool_;

  Mutex health_mu_;  // held while saving the nodes' health
  CondVar health_cv_;
  bool stopping_ GUARDED_BY(health_mu_) = false;
  uint64_t saved_changes_ GUARDED_BY(health_mu_) = 0;  // PeerSet::changes() when last saved
  std::thread health_saver_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_DRIVE_H_
