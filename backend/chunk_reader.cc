#include "backend/chunk_reader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "backend/erasure.h"
#include "backend/stripe_reader.h"
#include "base/buffer_pool.h"
#include "base/logging.h"
#include "base/thread_annotations.h"
#include "crypto/merkle.h"

namespace shardfs::backend {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

// The shards of one recorded pack, read from the nodes that hold them; every answer is
// reported to the PeerSet. Holds its own copy of the record: reads that lost a hedge race
// may finish after the chunk's read returned.
class PeerShards final : public ShardSource {
 public:
  // `hedge_delay`: a read cancelled after running that long was overtaken by a hedge (it
  // should have answered by then); after twice that long it counts as a failure of its node.
  PeerShards(const PackRecord& pack, PeerSet& peers, std::chrono::microseconds hedge_delay)
      : pack_(pack), peers_(peers), hedge_delay_(hedge_delay), errors_(pack.shards.size()) {}

  Status Read(int index, uint64_t offset, MutableByteSpan out, const CancelToken* cancel) override {
    if (index < 0 || static_cast<size_t>(index) >= pack_.shards.size()) {
      return Status::OutOfRange("no shard " + std::to_string(index));
    }
    auto node = peers_.IndexOf(pack_.nodes[static_cast<size_t>(index)]);
    if (!node) {
      Status s = Status::Unavailable("its node is not known to the drive");
      Note(index, s);
      return s;
    }
    if (peers_.Unresponsive(*node)) {
      // It let a request time out lately: this one would most likely wait out the deadline
      // too. Not asked, so a read that needs it fails now, saying why.
      Status s = Status::Unavailable(peers_.peer(*node).name() +
                                     ": not asked: it let a request time out lately");
      Note(index, s);
      return s;
    }
    const auto start = Clock::now();
    Status s =
        peers_.peer(*node).ReadShard(pack_.shards[static_cast<size_t>(index)], offset, out, cancel);
    if (s.ok()) {
      peers_.ReportSuccess(*node, Since(start));
    } else if (s.code() == Code::kCancelled) {
      const auto elapsed = Since(start);
      if (elapsed > 2 * hedge_delay_) {
        peers_.ReportFailure(*node);
      } else if (elapsed >= hedge_delay_) {
        peers_.ReportOvertaken(*node, elapsed);
      } else {
        peers_.ReportCancelled(*node, elapsed);
      }
    } else if (s.code() == Code::kCorruption) {
      // The node answered other bytes than asked (another range, a cut-off body).
      log::Warn("node {} served bad bytes of shard {}", peers_.peer(*node).name(),
                pack_.shards[static_cast<size_t>(index)].ToHex());
      peers_.ReportBadBytes(*node);
    } else if (s.code() == Code::kDeadlineExceeded) {
      // Accepted the request and never answered (stopped, hung): later reads go elsewhere.
      peers_.ReportTimeout(*node);
    } else {
      peers_.ReportFailure(*node);
    }
    if (!s.ok() && s.code() != Code::kCancelled) Note(index, s);
    return s;
  }

  // Why the reads that failed did, one line per shard with its node: for the error of a read
  // that could not get k shards.
  std::string Failures() const {
    MutexLock lock(&mu_);
    std::string out;
    for (size_t i = 0; i < errors_.size(); ++i) {
      if (errors_[i].ok()) continue;
      auto node = peers_.IndexOf(pack_.nodes[i]);
      std::string where = "shard " + std::to_string(i);
      // The node's name, unless the peer's message starts with it already (HttpPeer's do).
      if (node) {
        const std::string name = peers_.peer(*node).name();
        if (errors_[i].message().rfind(name, 0) != 0) where += " on node " + name;
      }
      out += (out.empty() ? "" : "; ") + where + ": " + errors_[i].ToString();
    }
    return out;
  }

 private:
  void Note(int index, const Status& s) {
    MutexLock lock(&mu_);
    errors_[static_cast<size_t>(index)] = s;
  }

  const PackRecord pack_;
  PeerSet& peers_;
  const std::chrono::microseconds hedge_delay_;
  mutable Mutex mu_;
  std::vector<Status> errors_ GUARDED_BY(mu_);  // each shard's last failure (OK: none)
};

}  // namespace

ChunkReader::ChunkReader(PeerSet& peers, const ChunkSealer& sealer, ChunkReaderOptions options)
    : peers_(peers), sealer_(sealer), options_(options) {
  if (options_.threads > 0) {
    pool_ = std::make_unique<ThreadPool>(options_.threads, options_.max_threads);
  }
}

ChunkReader::~ChunkReader() = default;

std::chrono::microseconds ChunkReader::HedgeDelay() const {
  const double typical = static_cast<double>(peers_.TypicalLatency().count());
  const auto scaled =
      std::chrono::microseconds(static_cast<int64_t>(typical * options_.hedge_factor));
  return std::clamp<std::chrono::microseconds>(scaled, options_.hedge_floor, options_.hedge_cap);
}

Status ChunkReader::Read(const PackRecord& pack, const ChunkRecord& chunk, MutableByteSpan out) {
  SFS_ASSIGN_OR_RETURN(StripeLayout layout, StripeLayout::ForPack(pack.size, pack.k, pack.m));
  SFS_ASSIGN_OR_RETURN(ErasureCoder coder, ErasureCoder::Create(pack.k, pack.m));
  const std::chrono::microseconds delay = HedgeDelay();
  auto source = std::make_shared<PeerShards>(pack, peers_, delay);
  BufferPool::Buffer sealed_buffer = BufferPool::Shared().Get(chunk.sealed_size);
  const MutableByteSpan sealed = sealed_buffer.span();
  const auto cipher = static_cast<crypto::Cipher>(chunk.cipher);
  const auto codec = static_cast<ChunkCodec>(chunk.codec);
  // The check of a read is opening the chunk; the plaintext it yields is the answer.
  auto open = [&](ByteSpan bytes) {
    return sealer_.Open(cipher, chunk.id, codec, bytes, out).ok();
  };
  // The shards' nodes: which to ask first for a rebuild, and which only as a last resort.
  std::vector<size_t> nodes;
  std::vector<int> shard_of_node(peers_.size(), -1);
  HedgeOptions hedge;
  for (size_t i = 0; i < pack.nodes.size(); ++i) {
    auto node = peers_.IndexOf(pack.nodes[i]);
    if (!node) continue;
    nodes.push_back(*node);
    shard_of_node[*node] = static_cast<int>(i);
    if (peers_.ShouldAvoid(*node)) hedge.avoid.push_back(static_cast<int>(i));
  }
  for (size_t node : peers_.ReadOrder(nodes)) hedge.order.push_back(shard_of_node[node]);
  ReadStats stats;
  Status s;
  if (pool_) {
    hedge.pool = pool_.get();
    hedge.delay = delay;
    s = ReadPackRangeVerifiedHedged(layout, coder, source, chunk.pack_offset, sealed, open, &stats,
                                    hedge);
  } else {
    s = ReadPackRangeVerified(layout, coder, *source, chunk.pack_offset, sealed, open, &stats);
  }
  // A retry singled these shards out; a node is blamed only when leaf proofs show that what
  // it served is not what it stores (else the fault is elsewhere, and no node is blamed).
  for (int bad : stats.bad_shards) {
    auto node = peers_.IndexOf(pack.nodes[static_cast<size_t>(bad)]);
    if (!node) continue;
    if (ProvenLiar(pack, *node, bad, chunk.pack_offset, chunk.sealed_size)) {
      log::Warn("pack {}: node {} served bad bytes of shard {} (leaf proofs); read around it",
                pack.id.ToHex(), peers_.peer(*node).name(), bad);
      peers_.ReportBadBytes(*node);
    } else {
      log::Warn(
          "pack {}: shard {} failed the chunk's check, but its node's answers match its "
          "proofs",
          pack.id.ToHex(), bad);
    }
  }
  if (!s.ok()) std::memset(out.data(), 0, out.size());
  if (s.code() == Code::kUnavailable) {
    // Fewer than k shards answered: say which nodes failed and how.
    const std::string failures = source->Failures();
    if (!failures.empty()) s = Status::Unavailable(s.message() + " (" + failures + ")");
  }
  return s.WithContext("chunk " + chunk.id.ToHex());
}

bool ChunkReader::ProvenLiar(const PackRecord& pack, size_t node, int index, uint64_t offset,
                             uint64_t length) {
  auto layout = StripeLayout::ForPack(pack.size, pack.k, pack.m);
  if (!layout.ok()) return false;
  auto pieces = layout->Locate(offset, length);
  if (!pieces.ok()) return false;
  const ShardId& id = pack.shards[static_cast<size_t>(index)];
  Peer& peer = peers_.peer(node);
  // Every shard is read at the same columns as the pieces' data shards.
  for (const StripeLayout::Piece& p : *pieces) {
    Bytes served(p.length);
    Status read = peer.ReadShard(id, p.shard_offset, served, nullptr);
    if (read.code() == Code::kCorruption) return true;
    if (!read.ok()) continue;
    const uint64_t end = p.shard_offset + p.length;
    uint64_t leaf = p.shard_offset / crypto::kMerkleLeafSize;
    const uint64_t last = (end - 1) / crypto::kMerkleLeafSize;
    while (leaf <= last) {
      // Proof runs of at most 256 leaves, the most a node serves in one request.
      const uint64_t count = std::min<uint64_t>(256, last - leaf + 1);
      auto proof = peer.ProveShard(id, leaf, count);
      if (!proof.ok()) {
        if (proof.status().code() == Code::kCorruption) return true;
        break;
      }
      const uint64_t run_begin = leaf * crypto::kMerkleLeafSize;
      const uint64_t from = std::max(p.shard_offset, run_begin);
      const uint64_t to = std::min(end, run_begin + proof->leaves.size());
      if (from < to && std::memcmp(served.data() + (from - p.shard_offset),
                                   proof->leaves.data() + (from - run_begin), to - from) != 0) {
        return true;
      }
      leaf += count;
    }
  }
  return false;
}

}  // namespace shardfs::backend
