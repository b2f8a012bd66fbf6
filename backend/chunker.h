// Content-defined chunking (FastCDC with normalized chunking, level 2).
//
// A cut is placed where a rolling "gear" hash of the last bytes matches a mask, so cuts
// depend on the content near them, not on offsets: inserting bytes into a file moves the cuts
// near the insertion and no others, and only the chunks there change (dedup of the rest).
//
// Cut rule for a chunk starting at byte 0 of `data` (docs/format.md, "Chunking"):
// - no cut before min_size; the gear hash starts at 0 at offset min_size and, for each byte b
//   at offset i >= min_size, becomes h = (h << 1) + gear[b] (mod 2^64);
// - the chunk ends after byte i if (h & mask_small) == 0 for i < avg_size, or
//   (h & mask_large) == 0 for i >= avg_size (normalized chunking: the small mask has two bits
//   more than log2(avg_size), the large one two bits fewer);
// - a chunk never exceeds max_size; the last chunk of the input may be shorter than min_size.
// The gear table is 256 values of SplitMix64 seeded with `seed`; a drive derives its seed from
// its key so chunk lengths do not let anyone confirm a known file across drives. With the same
// parameters and seed, cuts are identical on every run and platform.
//
// Thread safety: a Chunker is immutable and may be shared; a ChunkStream is used by one thread.

#ifndef SHARDFS_BACKEND_CHUNKER_H_
#define SHARDFS_BACKEND_CHUNKER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/byte_source.h"
#include "base/bytes.h"
#include "base/status.h"

namespace shardfs::backend {

// The largest chunk any format accepts.
inline constexpr uint32_t kMaxChunkSize = 64u << 20;

struct ChunkerParams {
  // No cut before this many bytes (the last chunk of a file may be shorter).
  uint32_t min_size = 256 * 1024;
  // Target average; must be a power of two.
  uint32_t avg_size = 1024 * 1024;
  // A cut is forced here.
  uint32_t max_size = 4 * 1024 * 1024;
  // Seed of the gear table.
  uint64_t seed = 0;

  // InvalidArgument unless 64 <= min_size < avg_size < max_size <= kMaxChunkSize and avg_size
  // is a power of two.
  Status Validate() const;
};

class Chunker {
 public:
  // REQUIRES: params.Validate().ok(); InvalidArgument otherwise.
  static Result<Chunker> Create(const ChunkerParams& params);

  // The length of the chunk that starts at data[0]. Returns 0 only when data has no cut, is
  // shorter than max_size and !at_end: the caller must supply more bytes (at least max_size,
  // or all that remain) and ask again. With at_end, returns data.size() if no cut is found.
  size_t FindCut(ByteSpan data, bool at_end) const;

  const ChunkerParams& params() const { return params_; }

 private:
  explicit Chunker(const ChunkerParams& params);
  ChunkerParams params_;
  uint64_t mask_small_;
  uint64_t mask_large_;
  std::array<uint64_t, 256> gear_;
  std::array<uint64_t, 256> gear_shifted_;  // gear_[b] << 1, for two bytes per step
};

// Cuts a ByteSource into chunks in bounded memory: a buffer of buffer_size bytes (at least
// 2 * max_size; default 4 * max_size = 16 MiB) whatever the input's length.
class ChunkStream {
 public:
  ChunkStream(const Chunker& chunker, ByteSource* source, size_t buffer_size = 0);

  // The next chunk, or nullopt at the end of the input. The span is valid until the next
  // call. Errors are the source's; after an error the stream stays failed.
  Result<std::optional<ByteSpan>> Next();

  // Bytes of input consumed by chunks returned so far.
  uint64_t offset() const { return offset_; }
  size_t buffer_capacity() const { return buffer_.size(); }

 private:
  Status Fill();

  const Chunker& chunker_;
  ByteSource* source_;
  Bytes buffer_;
  size_t begin_ = 0;  // start of the unconsumed bytes in buffer_
  size_t end_ = 0;    // end of the valid bytes in buffer_
  bool eof_ = false;
  Status error_;
  uint64_t offset_ = 0;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CHUNKER_H_
