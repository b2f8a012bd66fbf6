// Reading one stored chunk back (DESIGN.md section 4): the chunk's bytes are a range of its
// pack, read from the data shards that hold it, or rebuilt from any k shards when some are
// missing, slow or wrong; the chunk is checked by opening it, so only verified plaintext comes
// out. Shard reads run on a small pool and are hedged: a data shard that has not answered
// within the hedge delay (a few times the nodes' typical latency, within a floor and a cap) is
// raced by a rebuild from k others, and the loser is cancelled. What each node did is reported
// to the PeerSet: a read overtaken by a hedge, a timeout (a node that took the request and
// never answered) and a failure each count against the node, so later reads stop waiting for
// a node that stopped (one that timed out lately is not asked at all); a node that answered
// with wrong bytes (other bytes than asked, or a retry singled its shard out and leaf proofs
// confirm it) is reported as a liar. Shard ranges are read unchecked (Peer::ReadShard):
// opening the chunk checks them, so no proof is asked for unless a chunk fails to open.
//
// Thread safety: thread-safe.

#ifndef SHARDFS_BACKEND_CHUNK_READER_H_
#define SHARDFS_BACKEND_CHUNK_READER_H_

#include <chrono>
#include <memory>

#include "backend/catalog.h"
#include "backend/chunk_codec.h"
#include "backend/peer_set.h"
#include "base/thread_pool.h"

namespace shardfs::backend {

struct ChunkReaderOptions {
  // Threads that run shard reads, so that a slow read can be raced by others. 0: every read
  // runs on the calling thread, one after another, and nothing is hedged.
  int threads = 12;
  // The pool grows up to this many threads when a read would wait for one: reads blocked on
  // a stopped node (until they are cancelled or their deadline passes) must not hold back the
  // reads that race them, or every read waits for the deadline. With threads > 0 only.
  int max_threads = 64;
  // The hedge delay is hedge_factor times PeerSet::TypicalLatency, kept within
  // [hedge_floor, hedge_cap].
  double hedge_factor = 3.0;
  std::chrono::milliseconds hedge_floor{40};
  std::chrono::milliseconds hedge_cap{1000};
};

class ChunkReader {
 public:
  // Both must outlive the reader.
  ChunkReader(PeerSet& peers, const ChunkSealer& sealer, ChunkReaderOptions options = {});
  // Waits for shard reads still running on the pool (reads no longer needed are cancelled).
  ~ChunkReader();
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // The plaintext of `chunk`, stored in `pack`, into `out` (chunk.plain_size bytes).
  // Unavailable if fewer than k shards answer (the message says, for each shard whose read
  // failed, its node and why); Corruption if no k shards give bytes that open (out is then
  // zeroed: never wrong bytes).
  Status Read(const PackRecord& pack, const ChunkRecord& chunk, MutableByteSpan out);

  // The hedge delay now (see ChunkReaderOptions).
  std::chrono::microseconds HedgeDelay() const;

 private:
  // True if the node holding shard `index` of `pack` is shown to serve other bytes than the
  // shard's for pack bytes [offset, offset + length): its answer differs from the leaves it
  // proves against the shard id, or it cannot prove them.
  bool ProvenLiar(const PackRecord& pack, size_t node, int index, uint64_t offset, uint64_t length);

  PeerSet& peers_;
  const ChunkSealer& sealer_;
  const ChunkReaderOptions options_;
  std::unique_ptr<ThreadPool> pool_;  // null without threads
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CHUNK_READER_H_
