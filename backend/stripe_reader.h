// Reading a byte range of a pack from its shards (DESIGN.md section 4, steps 2-4): the code is
// systematic, so the range is read from the data shards that hold it (one or two for a range
// shorter than a shard); if one of them fails, the same column range is read from any k other
// shards and only that range is decoded. A shard that answers with wrong bytes is found by
// checking the result (ReadPackRangeVerified) and reading again without the suspects.
//
// With a thread pool (HedgeOptions) the shard reads of a range run in parallel and are hedged:
// when a data shard has not answered within the hedge delay, the same columns are asked of k
// other shards as well, and whichever completes first is used; the reads no longer needed are
// cancelled. Without one, reads run one after another on the calling thread.
//
// Thread safety: the functions are thread-safe if the ShardSource is.

#ifndef SHARDFS_BACKEND_STRIPE_READER_H_
#define SHARDFS_BACKEND_STRIPE_READER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backend/erasure.h"
#include "base/bytes.h"
#include "base/cancel.h"
#include "base/status.h"
#include "base/thread_pool.h"

namespace shardfs::backend {

// Where shard bytes come from: memory, a local file, a storage node.
class ShardSource {
 public:
  virtual ~ShardSource() = default;
  // Reads bytes [offset, offset + out.size()) of shard `index` (0..k+m-1) of the pack.
  // Any error means "not from this shard now"; the reader then tries the others. A source may
  // stop early with Cancelled once `cancel` (null: never) fires: the answer is not wanted any
  // more.
  virtual Status Read(int index, uint64_t offset, MutableByteSpan out,
                      const CancelToken* cancel) = 0;
};

// What a read needed, for health accounting and tests.
struct ReadStats {
  int pieces = 0;                  // data shard pieces the range spans
  int degraded_pieces = 0;         // pieces rebuilt from other shards
  int hedged_pieces = 0;           // pieces whose data shard was slow, so others were asked too
  int attempts = 0;                // whole reads of the range (more than 1 after a bad check)
  std::vector<int> failed_shards;  // shards whose read failed, each once
  std::vector<int> bad_shards;     // shards found to have answered with wrong bytes
};

// How a range read spreads its shard reads over threads.
struct HedgeOptions {
  // Runs the shard reads. REQUIRES: not null, and outlives every read started with it: a range
  // read returns as soon as it has its bytes, while reads it no longer needs may still be
  // running (cancelled) on the pool.
  ThreadPool* pool = nullptr;
  // How long a piece's data shard may take before the same columns are asked of k other shards
  // too; and how long those may take before every remaining shard is asked as well.
  std::chrono::microseconds delay = std::chrono::milliseconds(50);
  // Shards in the order to ask them when rebuilding, best first; shards not listed follow in
  // index order.
  std::vector<int> order;
  // Shards asked only when no other is left (their nodes are backed off or have lied): a piece
  // whose data shard is one of them is rebuilt from other shards at once.
  std::vector<int> avoid;
};

// Reads pack bytes [offset, offset + out.size()) into out, using no shard in `exclude`.
// OutOfRange for a range outside the pack; Corruption for an inconsistent layout; Unavailable
// if some piece cannot be read from its data shard nor rebuilt from k others (the message
// says how many answered). `stats` may be null.
Status ReadPackRange(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                     uint64_t offset, MutableByteSpan out, ReadStats* stats,
                     std::span<const int> exclude = {});

// As ReadPackRange, with the shard reads in parallel on hedge.pool and hedged (see the top of
// this file). The source is shared with reads that may outlive the call.
Status ReadPackRangeHedged(const StripeLayout& layout, const ErasureCoder& coder,
                           std::shared_ptr<ShardSource> source, uint64_t offset,
                           MutableByteSpan out, ReadStats* stats, std::span<const int> exclude,
                           const HedgeOptions& hedge);

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

// As ReadPackRangeVerified, each read being ReadPackRangeHedged.
Status ReadPackRangeVerifiedHedged(const StripeLayout& layout, const ErasureCoder& coder,
                                   std::shared_ptr<ShardSource> source, uint64_t offset,
                                   MutableByteSpan out, const std::function<bool(ByteSpan)>& verify,
                                   ReadStats* stats, const HedgeOptions& hedge);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_STRIPE_READER_H_
