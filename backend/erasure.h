// Reed-Solomon erasure coding over GF(2^8) with ISA-L (its one home), and the layout of a pack
// over its shards; and ISA-L's CRC-32C, the checksum of the staging area's records.
//
// Code (docs/format.md, "Shards", coding scheme 1): systematic; the generator is ISA-L's
// gf_gen_cauchy1_matrix over GF(2^8) with polynomial 0x11d: rows 0..k-1 are the identity (the
// data shards are the pack's bytes), row k+j of parity shard j has entries 1/(i xor c) for
// column c, i = k+j. Every k rows of it form an invertible matrix, so any k of the k+m shards
// rebuild the rest. The code works column by column: bytes at the same offset of each shard
// depend only on each other, so any column range can be rebuilt from the same range of any k
// shards.
//
// Thread safety: an ErasureCoder is immutable after Create and may be shared.

#ifndef SHARDFS_BACKEND_ERASURE_H_
#define SHARDFS_BACKEND_ERASURE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs::backend {

// Stored with every pack: do not renumber.
enum class CodingScheme : uint8_t {
  kIsalCauchyGf8 = 1,
};

// The bytes of one shard (or the same column range of it) that a caller has.
struct ShardPiece {
  int index = 0;  // 0..k-1 data, k..k+m-1 parity
  ByteSpan bytes;
};
// Where to put a shard (or column range) to rebuild.
struct ShardOutput {
  int index = 0;
  MutableByteSpan bytes;
};

class ErasureCoder {
 public:
  // InvalidArgument unless 1 <= k, 1 <= m and k + m <= 255.
  static Result<ErasureCoder> Create(int k, int m);

  int k() const { return k_; }
  int m() const { return m_; }
  int n() const { return k_ + m_; }

  // Computes the m parity shards from the k data shards. All spans have one length.
  // InvalidArgument on a count or length mismatch.
  Status Encode(std::span<const ByteSpan> data, std::span<const MutableByteSpan> parity) const;

  // Rebuilds the shards in `wanted` (data or parity) from `present`. All spans have one
  // length: the same column range of every shard. Outputs must not overlap inputs.
  // Unavailable if fewer than k distinct shards are present (the message says how many);
  // InvalidArgument for bad indices, duplicates among `wanted`, or mismatched lengths.
  Status Reconstruct(std::span<const ShardPiece> present,
                     std::span<const ShardOutput> wanted) const;

 private:
  ErasureCoder(int k, int m);

  int k_;
  int m_;
  std::vector<uint8_t> matrix_;         // (k+m) x k generator, row-major
  std::vector<uint8_t> encode_tables_;  // ISA-L tables of the m parity rows
};

// The largest pack any layout accepts.
inline constexpr uint64_t kMaxPackSize = uint64_t{256} << 20;
// No shard is smaller: a file takes a 4 KiB block on a node's disk anyway, and all packs
// below k * 4 KiB then look alike.
inline constexpr uint64_t kMinShardSize = 4096;

// How a pack's bytes lie in its data shards: pack byte p is at offset p % shard_size of data
// shard p / shard_size; the pack is padded with random bytes to k * shard_size (so a node
// cannot see where the pack ends).
struct StripeLayout {
  int k = 0;
  int m = 0;
  uint64_t pack_size = 0;
  // max(kMinShardSize, ceil(pack_size / k) rounded up to a multiple of 64).
  uint64_t shard_size = 0;

  // InvalidArgument for bad k, m, or a pack of 0 or more than kMaxPackSize bytes.
  static Result<StripeLayout> ForPack(uint64_t pack_size, int k, int m);

  // OK if the fields are what ForPack gives for this pack_size, k and m; Corruption otherwise
  // (e.g. a layout read from a damaged record).
  Status Validate() const;

  friend bool operator==(const StripeLayout&, const StripeLayout&) = default;

  uint64_t padded_size() const { return shard_size * static_cast<uint64_t>(k); }

  struct Piece {
    int shard = 0;
    uint64_t shard_offset = 0;
    uint64_t length = 0;
  };
  // The data-shard pieces that hold pack bytes [offset, offset + length), in order (one or two
  // for a range shorter than a shard, more for longer ones). OutOfRange if the range is empty
  // or ends past pack_size; Corruption if the layout is not valid.
  Result<std::vector<Piece>> Locate(uint64_t offset, uint64_t length) const;
};

// CRC-32C (Castagnoli, the iSCSI polynomial 0x1EDC6F41, reflected; RFC 3720 appendix B.4),
// ISA-L's: the checksum of the staging area's records (docs/format.md, "Staging segment"). It
// catches a record cut short or overwritten by a crash, not tampering.
// The CRC-32C of the bytes whose CRC-32C is `crc` followed by `data` (Crc32c(a || b) ==
// Crc32cExtend(Crc32c(a), b)).
uint32_t Crc32cExtend(uint32_t crc, ByteSpan data);
// The CRC-32C of `data` (of "123456789": 0xE3069283).
inline uint32_t Crc32c(ByteSpan data) { return Crc32cExtend(0, data); }

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_ERASURE_H_
