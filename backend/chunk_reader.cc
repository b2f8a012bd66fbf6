#include "backend/chunk_reader.h"

#include <chrono>
#include <cstring>

#include "backend/erasure.h"
#include "backend/stripe_reader.h"
#include "base/logging.h"

namespace shardfs::backend {

namespace {

// The shards of one recorded pack, read from the nodes that hold them; every answer is
// reported to the PeerSet.
class PeerShards final : public ShardSource {
 public:
  PeerShards(const PackRecord& pack, PeerSet& peers) : pack_(pack), peers_(peers) {}

  Status Read(int index, uint64_t offset, MutableByteSpan out) override {
    if (index < 0 || static_cast<size_t>(index) >= pack_.shards.size()) {
      return Status::OutOfRange("no shard " + std::to_string(index));
    }
    auto node = peers_.IndexOf(pack_.nodes[static_cast<size_t>(index)]);
    if (!node) return Status::Unavailable("the node of a shard is not known to the drive");
    const auto start = std::chrono::steady_clock::now();
    Status s = peers_.peer(*node).ReadShard(pack_.shards[static_cast<size_t>(index)], offset, out,
                                            nullptr);
    if (s.ok()) {
      peers_.ReportSuccess(*node, std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - start));
    } else if (s.code() == Code::kCorruption) {
      peers_.ReportBadBytes(*node);
    } else {
      peers_.ReportFailure(*node);
    }
    return s;
  }

 private:
  const PackRecord& pack_;
  PeerSet& peers_;
};

}  // namespace

Status ChunkReader::Read(const PackRecord& pack, const ChunkRecord& chunk, MutableByteSpan out) {
  SFS_ASSIGN_OR_RETURN(StripeLayout layout, StripeLayout::ForPack(pack.size, pack.k, pack.m));
  SFS_ASSIGN_OR_RETURN(ErasureCoder coder, ErasureCoder::Create(pack.k, pack.m));
  PeerShards source(pack, peers_);
  Bytes sealed(chunk.sealed_size);
  const auto cipher = static_cast<crypto::Cipher>(chunk.cipher);
  const auto codec = static_cast<ChunkCodec>(chunk.codec);
  // The check of a read is opening the chunk; the plaintext it yields is the answer.
  auto open = [&](ByteSpan bytes) {
    return sealer_.Open(cipher, chunk.id, codec, bytes, out).ok();
  };
  ReadStats stats;
  Status s = ReadPackRangeVerified(layout, coder, source, chunk.pack_offset, sealed, open, &stats);
  if (!stats.bad_shards.empty()) {
    log::Warn("pack {}: {} shard(s) answered with wrong bytes; read around them", pack.id.ToHex(),
              stats.bad_shards.size());
  }
  if (!s.ok()) std::memset(out.data(), 0, out.size());
  return s.WithContext("chunk " + chunk.id.ToHex());
}

}  // namespace shardfs::backend
