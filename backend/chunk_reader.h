// Reading one stored chunk back (DESIGN.md section 4): the chunk's bytes are a range of its
// pack, read from the data shards that hold it, or rebuilt from any k shards when some are
// missing or wrong; the chunk is checked by opening it, so only verified plaintext comes out.
// What each node did is reported to the PeerSet.
//
// Thread safety: thread-safe.

#ifndef SHARDFS_BACKEND_CHUNK_READER_H_
#define SHARDFS_BACKEND_CHUNK_READER_H_

#include "backend/catalog.h"
#include "backend/chunk_codec.h"
#include "backend/peer_set.h"

namespace shardfs::backend {

class ChunkReader {
 public:
  // Both must outlive the reader.
  ChunkReader(PeerSet& peers, const ChunkSealer& sealer) : peers_(peers), sealer_(sealer) {}

  // The plaintext of `chunk`, stored in `pack`, into `out` (chunk.plain_size bytes).
  // Unavailable if fewer than k shards answer; Corruption if no k shards give bytes that open
  // (out is then zeroed: never wrong bytes).
  Status Read(const PackRecord& pack, const ChunkRecord& chunk, MutableByteSpan out);

 private:
  PeerSet& peers_;
  const ChunkSealer& sealer_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CHUNK_READER_H_
