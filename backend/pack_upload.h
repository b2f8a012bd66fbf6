// Storing an encoded pack on the network (DESIGN.md section 3, step 7): its k + m shards go at
// once to k + m distinct nodes in the PeerSet's placement order; a shard a node refuses goes
// to the next node no shard of the pack went to, and so does one whose node keeps it far
// longer than the others took (a stopped node would keep it until the peer's deadlines). The
// one place that decides when a pack counts as stored: every one of its shards acknowledged
// (docs/architecture.md, "Placement").
//
// Thread safety: thread-safe; many packs may be stored at once.

#ifndef SHARDFS_BACKEND_PACK_UPLOAD_H_
#define SHARDFS_BACKEND_PACK_UPLOAD_H_

#include <chrono>

#include "backend/catalog.h"
#include "backend/pack_pipeline.h"
#include "backend/peer_set.h"
#include "base/cancel.h"

namespace shardfs::backend {

struct UploadPackOptions {
  // A shard's put that has run this long, and move_factor times as long as the slowest put
  // of the pack that stored its shard, is cancelled and the shard goes to a node no shard of
  // the pack went to, if one is left; its node is reported as timed out. Without a node left,
  // the put goes on.
  std::chrono::milliseconds move_after{5000};
  double move_factor = 4.0;
};

// Uploads every shard of `pack` to distinct nodes of `peers`. Returns the pack's record
// (which node holds which shard). Unavailable if some shard could not be stored on a node
// distinct from the others' (the message says which and the last error); Cancelled if `cancel`
// fired. Then the shards already stored are deleted again (best effort: a node that does not
// answer keeps its copy, which nothing tracks).
Result<PackRecord> UploadPack(PeerSet& peers, const EncodedPack& pack,
                              const CancelToken* cancel = nullptr,
                              const UploadPackOptions& options = {});

// The catalog records of the chunks in `pack`, sealed with `cipher`.
std::vector<ChunkRecord> ChunkRecordsOf(const EncodedPack& pack, crypto::Cipher cipher);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_PACK_UPLOAD_H_
