// The write pipeline of DESIGN.md section 3, steps 2-6, in memory: plaintext is cut into
// chunks, each chunk gets its keyed id and is sealed into a pack, and each pack is padded,
// Reed-Solomon coded into k data and m parity shards, and every shard gets its Merkle id.
// Uploading the shards and recording them in the catalog are the caller's (the engine's).
//
// Threads: the calling thread cuts chunks (the one sequential step) and hands out batches of
// about a pack's worth to a pool; it runs a batch itself whenever two are waiting, so a
// worker never waits on it and N threads keep N cores busy.
//
// Thread safety: a WritePipeline runs one Run at a time; its sink is called from any of its
// threads, one call at a time.

#ifndef SHARDFS_BACKEND_PACK_PIPELINE_H_
#define SHARDFS_BACKEND_PACK_PIPELINE_H_

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backend/chunk_codec.h"
#include "backend/chunker.h"
#include "backend/erasure.h"
#include "backend/pack.h"
#include "backend/stripe_reader.h"
#include "base/bytes.h"
#include "base/ids.h"
#include "crypto/keys.h"

namespace shardfs::backend {

// A sealed pack after erasure coding: what goes to k + m nodes.
struct EncodedPack {
  PackId id;
  StripeLayout layout;
  // The pack, zero-padded to layout.padded_size(): data shard i is bytes
  // [i * shard_size, (i + 1) * shard_size).
  Bytes data;
  // The m parity shards, shard_size bytes each.
  std::vector<Bytes> parity;
  // Ids of shards 0..k+m-1.
  std::vector<ShardId> shard_ids;
  // The chunks in the pack.
  std::vector<PackEntry> entries;

  // The bytes of shard i (0 <= i < k + m).
  ByteSpan shard(int i) const;
};

// Serves the shards of an EncodedPack from memory (it must outlive the source). Shards in
// `missing` answer Unavailable: a pack of which only some shards are at hand.
class EncodedPackSource final : public ShardSource {
 public:
  explicit EncodedPackSource(const EncodedPack& pack, std::span<const int> missing = {});
  // Unavailable for a missing shard, OutOfRange for bytes past the shard's end.
  Status Read(int index, uint64_t offset, MutableByteSpan out, const CancelToken* cancel) override;

 private:
  const EncodedPack& pack_;
  std::vector<bool> missing_;
};

// Pads `pack` (a finished pack from PackWriter), computes its parity and the ids of all its
// shards, and stores the result in *out, reusing out's buffers. InvalidArgument if the pack is
// empty or larger than kMaxPackSize.
Status EncodePack(const ErasureCoder& coder, const PackId& id, Bytes pack,
                  std::vector<PackEntry> entries, EncodedPack* out);

inline constexpr int kMaxPipelineThreads = 256;

struct WritePipelineOptions {
  // Chunk sizes. The seed is ignored: a pipeline always cuts with its drive's seed
  // (DriveKeys::ChunkerSeed), so every writer of a drive cuts alike and dedups.
  ChunkerParams chunker;
  ChunkSealOptions seal;
  // Data and parity shards per pack.
  int k = 4;
  int m = 2;
  // A pack is closed once its chunks' plaintext reaches this size.
  size_t pack_target_size = 16u << 20;
  // Threads that work, the caller's included (1 = all on the calling thread).
  int threads = 1;
  // Dedup: chunks for which this returns true are stored already, so they are neither sealed
  // nor packed (their ChunkRef says packed = false). Empty: every chunk is new. Called from
  // the pipeline's threads, at the same time.
  std::function<bool(const ChunkId&)> known;
};

// Where each chunk of the input went, in input order.
struct ChunkRef {
  ChunkId id;
  uint32_t input = 0;   // which input (Run with several inputs)
  uint64_t offset = 0;  // in that input
  uint32_t size = 0;
  // True if this run packed the chunk; false if it was known (options.known) or an earlier
  // chunk of the run has the same id (one copy per run).
  bool packed = false;
};

// The largest pack a pipeline with these options can make (Create refuses options whose
// worst case exceeds kMaxPackSize).
uint64_t WorstCasePackSize(const WritePipelineOptions& options);

class WritePipeline {
 public:
  // Receives each encoded pack; may move its buffers out. A non-OK status stops the run.
  using PackSink = std::function<Status(EncodedPack& pack)>;

  // InvalidArgument for bad chunker, erasure or size options.
  static Result<std::unique_ptr<WritePipeline>> Create(const crypto::DriveKeys& keys,
                                                       const WritePipelineOptions& options,
                                                       PackSink sink);
  ~WritePipeline();

  // Cuts, seals, packs and encodes all of `input` but the chunks already stored, calling the
  // sink for every pack (in any order; none when every chunk is known). Appends the input's chunks
  // to *chunks if it is not null. Returns the first error of a batch or the sink; packs already
  // given to the sink stay given.
  Status Run(ByteSpan input, std::vector<ChunkRef>* chunks);
  // As Run, over several inputs in turn: each is cut on its own (its end is a cut), but their
  // chunks share packs, so many small inputs make few packs. ChunkRef::input names the input.
  // REQUIRES: inputs.size() < 2^32.
  Status RunMany(std::span<const ByteSpan> inputs, std::vector<ChunkRef>* chunks);

  // Gives back the buffers of a pack the sink moved out, once done with them, for later packs
  // to reuse (no allocation, no page faults). Any thread, any time.
  void Recycle(EncodedPack&& pack);
  // Frees the spare buffers (between runs, so an idle pipeline holds no pack memory).
  void DropSpares();

 private:
  struct Impl;
  explicit WritePipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_PACK_PIPELINE_H_
