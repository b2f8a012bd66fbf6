// A drive: the catalog, the write pipeline and the read path over the drive's peers
// (DESIGN.md sections 3 and 4, in their first, synchronous form).
//
// WriteWholeFile cuts a file into chunks; chunks the drive does not store yet are sealed,
// packed and Reed-Solomon coded; each pack's k + m shards go to k + m distinct peers at once
// (a peer that refuses a shard is replaced by the next one); only when every shard of a pack is
// stored is the pack recorded, and only when every pack is recorded does one catalog
// transaction point the file at its chunks. So the catalog never points at data that is not
// stored. Read fetches the bytes of each chunk it needs from the data shards holding them (a
// range request), rebuilds a range from any k shards when some are missing, and checks every
// chunk by opening it: a peer that answers with wrong bytes is read around.
//
// Not yet here: the persistent upload queue and local staging (a write waits for the
// network), hedged reads, the chunk cache, liar identification by leaf
// proofs, placement by free space and latency.
//
// Thread safety: all methods may be called from many threads; writes run one at a time.

#ifndef SHARDFS_BACKEND_DRIVE_H_
#define SHARDFS_BACKEND_DRIVE_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/catalog.h"
#include "backend/chunk_codec.h"
#include "backend/chunk_reader.h"
#include "backend/drive_config.h"
#include "backend/pack_pipeline.h"
#include "backend/peer.h"
#include "backend/peer_set.h"
#include "base/thread_annotations.h"
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
  Mutex write_mu_;  // one WriteWholeFile at a time

  Mutex health_mu_;  // held while saving the nodes' health
  CondVar health_cv_;
  bool stopping_ GUARDED_BY(health_mu_) = false;
  uint64_t saved_changes_ GUARDED_BY(health_mu_) = 0;  // PeerSet::changes() when last saved
  std::thread health_saver_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_DRIVE_H_
