// Strong identifier types. A ChunkId is not a ShardId is not a NodeId is not a PackId: each
// is a distinct type over a fixed number of bytes, so swapping two of them is a compile error.
//
// - ChunkId: keyed hash of a chunk's plaintext under the drive's chunk-id key (32 bytes).
// - ShardId: Merkle root of a shard's bytes (32 bytes); anyone can check it.
// - NodeId:  a storage node's ed25519 public key (32 bytes).
// - PackId:  random, chosen when a pack is sealed (16 bytes).
//
// Thread safety: plain values.

#ifndef SHARDFS_BASE_IDS_H_
#define SHARDFS_BASE_IDS_H_

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs {

// A hash of id bytes for hash tables, keyed with a random per-process seed: ids such as node
// ids are chosen by peers, who must not be able to make them collide in our tables.
size_t KeyedIdHash(const uint8_t* data, size_t size);

template <typename Tag, size_t N>
class FixedId {
 public:
  static constexpr size_t kSize = N;

  // The all-zero id; never the id of real data.
  constexpr FixedId() : bytes_{} {}
  explicit FixedId(const std::array<uint8_t, N>& bytes) : bytes_(bytes) {}

  // REQUIRES: b.size() == N (checked: InvalidArgument otherwise).
  static Result<FixedId> FromBytes(ByteSpan b) {
    if (b.size() != N) {
      return Status::InvalidArgument(std::string(Tag::kName) + " must be " + std::to_string(N) +
                                     " bytes, got " + std::to_string(b.size()));
    }
    FixedId id;
    std::memcpy(id.bytes_.data(), b.data(), N);
    return id;
  }
  // Parses 2*N hex digits.
  static Result<FixedId> FromHex(std::string_view hex) {
    if (hex.size() != 2 * N) {
      return Status::InvalidArgument(std::string(Tag::kName) + " must be " + std::to_string(2 * N) +
                                     " hex digits");
    }
    auto raw = HexDecode(hex);
    if (!raw.ok()) return raw.status().WithContext(Tag::kName);
    return FromBytes(*raw);
  }

  std::string ToHex() const { return HexEncode(bytes_); }
  // The first 8 hex digits, for logs.
  std::string ShortHex() const { return ToHex().substr(0, 8); }
  ByteSpan span() const { return bytes_; }
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* mutable_data() { return bytes_.data(); }
  bool IsZero() const {
    for (uint8_t b : bytes_)
      if (b != 0) return false;
    return true;
  }

  friend auto operator<=>(const FixedId&, const FixedId&) = default;
  friend bool operator==(const FixedId&, const FixedId&) = default;

 private:
  std::array<uint8_t, N> bytes_;
};

struct ChunkIdTag {
  static constexpr const char* kName = "chunk id";
};
struct ShardIdTag {
  static constexpr const char* kName = "shard id";
};
struct NodeIdTag {
  static constexpr const char* kName = "node id";
};
struct PackIdTag {
  static constexpr const char* kName = "pack id";
};

using ChunkId = FixedId<ChunkIdTag, 32>;
using ShardId = FixedId<ShardIdTag, 32>;
using NodeId = FixedId<NodeIdTag, 32>;
using PackId = FixedId<PackIdTag, 16>;

}  // namespace shardfs

template <typename Tag, size_t N>
struct std::hash<shardfs::FixedId<Tag, N>> {
  size_t operator()(const shardfs::FixedId<Tag, N>& id) const noexcept {
    return shardfs::KeyedIdHash(id.data(), N);
  }
};

#endif  // SHARDFS_BASE_IDS_H_
