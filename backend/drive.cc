#include "backend/drive.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "backend/erasure.h"
#include "backend/stripe_reader.h"
#include "base/logging.h"

namespace shardfs::backend {

namespace {

// The shards of one recorded pack, read from the peers that hold them.
class PeerShards final : public ShardSource {
 public:
  PeerShards(const PackRecord& pack, const std::unordered_map<NodeId, Peer*>& peers)
      : pack_(pack), peers_(peers) {}

  Status Read(int index, uint64_t offset, MutableByteSpan out) override {
    if (index < 0 || static_cast<size_t>(index) >= pack_.shards.size()) {
      return Status::OutOfRange("no shard " + std::to_string(index));
    }
    auto it = peers_.find(pack_.nodes[static_cast<size_t>(index)]);
    if (it == peers_.end()) return Status::Unavailable("the node of shard is not known");
    return it->second->ReadShard(pack_.shards[static_cast<size_t>(index)], offset, out, nullptr);
  }

 private:
  const PackRecord& pack_;
  const std::unordered_map<NodeId, Peer*>& peers_;
};

}  // namespace

Drive::Drive(DriveOptions options)
    : options_(std::move(options)),
      keys_(crypto::DriveKeys::Derive(options_.master)),
      sealer_(keys_.chunk_encryption, options_.pipeline.seal) {}

Drive::~Drive() = default;

Result<std::unique_ptr<Drive>> Drive::Open(DriveOptions options) {
  SFS_RETURN_IF_ERROR(ValidateDriveConfig(options.config));
  const DriveConfig& c = options.config;
  if (options.peers.size() != c.nodes.size()) {
    return Status::InvalidArgument("one peer per configured node is needed");
  }
  if (options.peers.size() < static_cast<size_t>(c.k + c.m)) {
    return Status::InvalidArgument("RS(" + std::to_string(c.k) + "," + std::to_string(c.m) +
                                   ") needs " + std::to_string(c.k + c.m) +
                                   " nodes; the drive has " + std::to_string(options.peers.size()));
  }
  for (const auto& p : options.peers) {
    if (!p) return Status::InvalidArgument("a peer is missing");
  }
  std::unique_ptr<Drive> d(new Drive(std::move(options)));
  for (size_t i = 0; i < d->options_.peers.size(); ++i) {
    d->peer_by_node_[d->options_.config.nodes[i].id] = d->options_.peers[i].get();
  }
  CatalogOptions co;
  co.path = d->options_.catalog_path;
  co.sync = d->options_.sync;
  co.holder = d->options_.holder;
  SFS_ASSIGN_OR_RETURN(d->catalog_, Catalog::Open(co));
  WritePipelineOptions po = d->options_.pipeline;
  po.k = d->options_.config.k;
  po.m = d->options_.config.m;
  Drive* self = d.get();
  po.known = [self](const ChunkId& id) {
    auto found = self->catalog_->FindChunk(id);
    // A lookup that fails counts as "not stored": the chunk is stored again, never lost.
    return found.ok() && found->has_value();
  };
  SFS_ASSIGN_OR_RETURN(d->pipeline_, WritePipeline::Create(d->keys_, po, [self](EncodedPack& pack) {
                         return self->StorePack(pack);
                       }));
  return d;
}

Status Drive::StorePack(EncodedPack& pack) {
  const size_t n = pack.shard_ids.size();
  const size_t peers = options_.peers.size();
  // Placement: k + m distinct peers, starting where the last pack's ended, so load spreads;
  // a peer that refuses its shard is replaced by the next unused one. The first attempts run
  // in parallel, one thread per shard.
  size_t start = next_peer_.fetch_add(n) % peers;
  std::vector<bool> used(peers, false);
  PackRecord record;
  record.id = pack.id;
  record.k = pack.layout.k;
  record.m = pack.layout.m;
  record.size = pack.layout.pack_size;
  record.shards = pack.shard_ids;
  // First every shard to its own peer, all at once; then each refused shard, in turn, to the
  // next peers no shard of this pack went to.
  std::vector<size_t> holder(n);
  std::vector<Status> first(n);
  {
    std::vector<std::thread> uploads;
    uploads.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      holder[i] = (start + i) % peers;
      used[holder[i]] = true;
      uploads.emplace_back([this, &pack, &first, &holder, i] {
        first[i] = options_.peers[holder[i]]->PutShard(pack.shard_ids[i],
                                                       pack.shard(static_cast<int>(i)), nullptr);
      });
    }
    for (auto& t : uploads) t.join();
  }
  size_t cursor = n;
  for (size_t i = 0; i < n; ++i) {
    Status last = first[i];
    while (!last.ok()) {
      log::Warn("shard {} of pack {} not stored on {}: {}", i, pack.id.ToHex(),
                options_.peers[holder[i]]->name(), last.ToString());
      while (cursor < peers && used[(start + cursor) % peers]) ++cursor;
      if (cursor >= peers) {
        return Status::Unavailable("pack " + pack.id.ToHex() + ": shard " + std::to_string(i) +
                                   " of " + std::to_string(n) +
                                   " could not be stored on a node distinct from the others' "
                                   "(last: " +
                                   last.ToString() + ")");
      }
      holder[i] = (start + cursor++) % peers;
      used[holder[i]] = true;
      last = options_.peers[holder[i]]->PutShard(pack.shard_ids[i], pack.shard(static_cast<int>(i)),
                                                 nullptr);
    }
    record.nodes.push_back(options_.config.nodes[holder[i]].id);
  }
  std::vector<ChunkRecord> chunks;
  chunks.reserve(pack.entries.size());
  for (const PackEntry& e : pack.entries) {
    chunks.push_back(ChunkRecord{e.id, pack.id, e.offset, e.sealed_size, e.plain_size,
                                 static_cast<uint8_t>(options_.pipeline.seal.cipher),
                                 static_cast<uint8_t>(e.codec)});
  }
  return catalog_->AddPack(record, chunks);
}

Result<InodeAttr> Drive::WriteWholeFile(Ino ino, ByteSpan data) {
  MutexLock lock(&write_mu_);
  SFS_ASSIGN_OR_RETURN(InodeAttr before, catalog_->GetAttr(ino));
  if (before.kind != FileKind::kFile) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
  }
  std::vector<ChunkRef> refs;
  SFS_RETURN_IF_ERROR(pipeline_->Run(data, &refs));
  std::vector<Extent> extents;
  extents.reserve(refs.size());
  for (const ChunkRef& r : refs) extents.push_back(Extent{r.offset, r.id, 0, r.size});
  SFS_ASSIGN_OR_RETURN(InodeAttr after, catalog_->WriteExtents(ino, 0, data.size(), extents));
  if (after.size > data.size()) {
    // The old contents were longer. (Two transactions: a crash between them leaves the new
    // bytes followed by the old tail, all of it stored.)
    AttrChange cut;
    cut.size = data.size();
    SFS_ASSIGN_OR_RETURN(after, catalog_->SetAttr(ino, cut));
  }
  return after;
}

Status Drive::ReadChunk(const ChunkRecord& chunk, MutableByteSpan out) {
  SFS_ASSIGN_OR_RETURN(PackRecord pack, catalog_->GetPack(chunk.pack));
  SFS_ASSIGN_OR_RETURN(StripeLayout layout, StripeLayout::ForPack(pack.size, pack.k, pack.m));
  SFS_ASSIGN_OR_RETURN(ErasureCoder coder, ErasureCoder::Create(pack.k, pack.m));
  PeerShards source(pack, peer_by_node_);
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

Result<size_t> Drive::Read(Ino ino, uint64_t offset, MutableByteSpan out) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->GetAttr(ino));
  if (a.kind != FileKind::kFile) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
  }
  if (offset >= a.size) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), a.size - offset));
  std::memset(out.data(), 0, n);  // holes
  SFS_ASSIGN_OR_RETURN(std::vector<Extent> extents, catalog_->ReadExtents(ino, offset, n));
  Bytes plain;
  for (const Extent& e : extents) {
    SFS_ASSIGN_OR_RETURN(auto chunk, catalog_->FindChunk(e.chunk));
    if (!chunk)
      return Status::Corruption("the catalog names chunk " + e.chunk.ToHex() +
                                " but does not hold it");
    if (e.chunk_offset > chunk->plain_size || e.size > chunk->plain_size - e.chunk_offset) {
      return Status::Corruption("an extent of inode " + std::to_string(ino) +
                                " runs past its chunk");
    }
    plain.resize(chunk->plain_size);
    SFS_RETURN_IF_ERROR(ReadChunk(*chunk, plain));
    const uint64_t from = std::max(e.offset, offset);
    const uint64_t to = std::min(e.offset + e.size, offset + n);
    std::memcpy(out.data() + (from - offset), plain.data() + e.chunk_offset + (from - e.offset),
                to - from);
  }
  return n;
}

}  // namespace shardfs::backend
