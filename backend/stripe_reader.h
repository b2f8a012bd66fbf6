// Reading a byte range of a pack from its shards (DESIGN.md section 4, steps 2-3): the code is
// systematic, so the range is read from the data shards that hold it (one or two for a range
// shorter than a shard); if one of them fails, the same column range is read from any k other
// shards and only that range is decoded. A shard that answers with wrong bytes is found by
// checking the result (ReadPackRangeVerified) and reading again without the suspects.
//
// Thread safety: the functions are thread-safe if the ShardSource is.

#ifndef SHARDFS_BACKEND_STRIPE_READER_H_
#define SHARDFS_BACKEND_STRIPE_READER_H_

#include <cstdint>
#include <functional>
#include <span>
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
  int attempts = 0;                // whole reads of the range (more than 1 after a bad check)
  std::vector<int> failed_shards;  // shards whose read failed, each once
  std::vector<int> bad_shards;     // shards found to have answered with wrong bytes
};

// Reads pack bytes [offset, offset + out.size()) into out, using no shard in `exclude`.
// OutOfRange for a range outside the pack; Corruption for an inconsistent layout; Unavailable
// if some piece cannot be read from its data shard nor rebuilt from k others (the message
// says how many answered). `stats` may be null.
Status ReadPackRange(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                     uint64_t offset, MutableByteSpan out, ReadStats* stats,
                     std::span<const int> exclude = {});

// The most whole reads ReadPackRangeVerified makes for one range.
inline constexpr int kMaxVerifiedReadAttempts = 256;

// As ReadPackRange, then checks the bytes with `verify` (e.g. by opening the chunk they
// hold). If the check fails, some shard answered with wrong bytes: the range is read again
// without one shard, then without two, and so on up to m shards, at most
// kMaxVerifiedReadAttempts reads, until a read passes the check. The shards left out in the read
// that passed are in stats->bad_shards. Corruption if no read passes (more than m shards bad,
// or the data is wrong at its source); `out` then holds no unverified bytes (it is zeroed).
Status ReadPackRangeVerified(const StripeLayout& layout, const ErasureCoder& coder,
                             ShardSource& source, uint64_t offset, MutableByteSpan out,
                             const std::function<bool(ByteSpan)>& verify, ReadStats* stats);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_STRIPE_READER_H_
