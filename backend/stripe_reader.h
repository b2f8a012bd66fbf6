// Reading a byte range of a pack from its shards (DESIGN.md section 4, steps 2-3): the code is
// systematic, so the range is read from the one or two data shards that hold it; if one of
// them fails, the same column range is read from any k other shards and only that range is
// decoded.
//
// Thread safety: ReadPackRange is thread-safe if the ShardSource is.

#ifndef SHARDFS_BACKEND_STRIPE_READER_H_
#define SHARDFS_BACKEND_STRIPE_READER_H_

#include <cstdint>
#include <vector>

#include "backend/erasure.h"
#include "base/bytes.h"
#include "base/status.h"

namespace shardfs::backend {

// Where shard bytes come from: memory, a local file, a storage node.
class ShardSource {
 public:
  virtual ~ShardSource() = default;
  // Reads bytes [offset, offset + out.size()) of shard `index` (0..k+m-1) of the pack.
  // Any error means "not from this shard now"; the reader then tries the others.
  virtual Status Read(int index, uint64_t offset, MutableByteSpan out) = 0;
};

// What a read needed, for health accounting and tests.
struct ReadStats {
  int pieces = 0;                  // data shard pieces the range spans
  int degraded_pieces = 0;         // pieces rebuilt from other shards
  std::vector<int> failed_shards;  // shards whose read failed, each once
};

// Reads pack bytes [offset, offset + out.size()) into out. OutOfRange for a range outside the
// pack; Unavailable if some piece cannot be read from its data shard nor rebuilt from k
// others (the message names how many were reachable). `stats` may be null.
Status ReadPackRange(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                     uint64_t offset, MutableByteSpan out, ReadStats* stats);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_STRIPE_READER_H_
