#include "backend/drive.h"

#include <algorithm>
#include <cstring>

#include "backend/pack_upload.h"
#include "base/logging.h"

namespace shardfs::backend {

Drive::Drive(DriveOptions options)
    : options_(std::move(options)),
      keys_(crypto::DriveKeys::Derive(options_.master)),
      sealer_(keys_.chunk_encryption, options_.pipeline.seal) {}

Drive::~Drive() {
  {
    MutexLock lock(&ahead_mu_);
    ahead_stopping_ = true;
  }
  ahead_pool_.reset();  // queued read-ahead returns at once; running fetches end
  {
    MutexLock lock(&health_mu_);
    stopping_ = true;
    health_cv_.NotifyAll();
  }
  if (health_saver_.joinable()) health_saver_.join();
  bool changed = false;
  if (catalog_ && peers_) {
    MutexLock lock(&health_mu_);
    changed = peers_->changes() != saved_changes_;
  }
  if (changed) {
    Status s = SaveNodeHealth();
    if (!s.ok()) log::Warn("saving the nodes' health: {}", s.ToString());
  }
}

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
  d->peers_ = std::make_unique<PeerSet>(d->options_.config.nodes, d->options_.peers);
  d->reader_ = std::make_unique<ChunkReader>(*d->peers_, d->sealer_, d->options_.read);
  CatalogOptions co;
  co.path = d->options_.catalog_path;
  co.sync = d->options_.sync;
  co.holder = d->options_.holder;
  SFS_ASSIGN_OR_RETURN(d->catalog_, Catalog::Open(co));
  SFS_RETURN_IF_ERROR(d->LoadNodeHealth());
  if (!d->options_.cache_dir.empty()) {
    ChunkCacheOptions cache;
    cache.dir = d->options_.cache_dir;
    cache.disk_bytes = d->options_.cache_bytes;
    cache.memory_bytes = d->options_.memory_cache_bytes;
    SFS_ASSIGN_OR_RETURN(d->cache_, ChunkCache::Open(cache, d->keys_.chunk_id));
    if (d->options_.readahead_chunks > 0) {
      d->ahead_pool_ = std::make_unique<ThreadPool>(std::max(1, d->options_.readahead_threads));
    }
  }
  if (d->options_.health_save_interval.count() > 0) {
    d->health_saver_ = std::thread([self = d.get()] { self->HealthSaverLoop(); });
  }
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

Status Drive::FetchChunk(const ChunkRecord& chunk, MutableByteSpan plain) {
  if (cache_) {
    {
      // A fetch ahead of this chunk that has started is waited for, not repeated.
      MutexLock lock(&ahead_mu_);
      ahead_cv_.Wait(&ahead_mu_, [&]() REQUIRES(ahead_mu_) {
        auto it = ahead_.find(chunk.id);
        return it == ahead_.end() || !it->second;
      });
    }
    if (cache_->Get(chunk.id, plain).ok()) return Status::Ok();
  }
  return FetchFromPeers(chunk, plain);
}

Status Drive::FetchFromPeers(const ChunkRecord& chunk, MutableByteSpan plain) {
  SFS_ASSIGN_OR_RETURN(PackRecord pack, catalog_->GetPack(chunk.pack));
  SFS_RETURN_IF_ERROR(reader_->Read(pack, chunk, plain));
  if (cache_) {
    Status s = cache_->Put(chunk.id, plain);
    if (!s.ok()) log::Warn("chunk cache: {}", s.ToString());
  }
  return Status::Ok();
}

Status Drive::FetchFromPeers(const ChunkRecord& chunk) {
  Bytes plain(chunk.plain_size);
  return FetchFromPeers(chunk, plain);
}

void Drive::ReadAhead(Ino ino, uint64_t offset, uint64_t n, uint64_t size) {
  if (!ahead_pool_) return;
  const uint64_t end = offset + n;
  {
    MutexLock lock(&ahead_mu_);
    auto it = next_offset_.find(ino);
    // A read from the start of a file, or from where the last one ended, is sequential.
    const bool sequential = offset == 0 || (it != next_offset_.end() && it->second == offset);
    if (next_offset_.size() >= 1024) next_offset_.clear();  // bounded: forget old files
    next_offset_[ino] = end;
    if (!sequential || end >= size) return;
  }
  const int chunks = options_.readahead_chunks;
  const uint64_t window = std::min<uint64_t>(
      size - end, static_cast<uint64_t>(chunks) * options_.pipeline.chunker.max_size);
  auto extents = catalog_->ReadExtents(ino, end, window);
  if (!extents.ok()) return;  // read-ahead is a hint: the read itself went well
  MutexLock lock(&ahead_mu_);
  int queued = 0;
  for (const Extent& e : *extents) {
    if (queued >= chunks || static_cast<int>(ahead_.size()) >= chunks) break;
    if (ahead_.count(e.chunk) != 0 || cache_->Contains(e.chunk)) continue;
    ahead_.emplace(e.chunk, false);
    ++queued;
    ahead_pool_->Submit([this, id = e.chunk] { ReadAheadChunk(id); });
  }
}

void Drive::ReadAheadChunk(const ChunkId& id) {
  bool fetch = false;
  {
    MutexLock lock(&ahead_mu_);
    fetch = !ahead_stopping_;
    ahead_[id] = true;
  }
  if (fetch && !cache_->Contains(id)) {
    auto chunk = catalog_->FindChunk(id);
    Status s = !chunk.ok() ? chunk.status()
               : !*chunk   ? Status::NotFound("no chunk " + id.ToHex())
                           : FetchFromPeers(**chunk);
    if (!s.ok()) log::Debug("read-ahead of chunk {}: {}", id.ToHex(), s.ToString());
  }
  MutexLock lock(&ahead_mu_);
  ahead_.erase(id);
  ahead_cv_.NotifyAll();
}

Status Drive::LoadNodeHealth() {
  SFS_ASSIGN_OR_RETURN(std::vector<NodeRecord> saved, catalog_->LoadNodes());
  for (const NodeRecord& r : saved) {
    auto i = peers_->IndexOf(r.id);
    if (!i) continue;  // a node the drive no longer uses
    PeerHealth h;
    h.successes = r.successes;
    h.failures = r.failures;
    h.bad_bytes = static_cast<uint32_t>(std::min<uint64_t>(r.bad_bytes, UINT32_MAX));
    h.latency_us = static_cast<double>(r.latency_us);
    h.free = r.free;
    h.last_seen_ns = r.last_seen_ns;
    peers_->Restore(*i, h);
  }
  MutexLock lock(&health_mu_);
  saved_changes_ = peers_->changes();
  return Status::Ok();
}

Status Drive::SaveNodeHealth() {
  MutexLock lock(&health_mu_);
  const uint64_t changes = peers_->changes();
  std::vector<NodeRecord> records;
  for (size_t i = 0; i < peers_->size(); ++i) {
    const PeerHealth h = peers_->health(i);
    NodeRecord r;
    r.id = peers_->node(i).id;
    r.address = peers_->node(i).address;
    r.successes = h.successes;
    r.failures = h.failures;
    r.bad_bytes = h.bad_bytes;
    r.latency_us = static_cast<uint64_t>(h.latency_us);
    r.free = h.free;
    r.last_seen_ns = h.last_seen_ns;
    records.push_back(std::move(r));
  }
  SFS_RETURN_IF_ERROR(catalog_->SaveNodes(records));
  saved_changes_ = changes;
  return Status::Ok();
}

void Drive::HealthSaverLoop() {
  while (true) {
    {
      MutexLock lock(&health_mu_);
      auto due = std::chrono::steady_clock::now() + options_.health_save_interval;
      health_cv_.WaitUntil(&health_mu_, due, [this]() REQUIRES(health_mu_) { return stopping_; });
      if (stopping_) return;
      if (peers_->changes() == saved_changes_) continue;
    }
    Status s = SaveNodeHealth();
    if (!s.ok()) log::Warn("saving the nodes' health: {}", s.ToString());
  }
}

Status Drive::StorePack(EncodedPack& pack) {
  SFS_ASSIGN_OR_RETURN(PackRecord record, UploadPack(*peers_, pack));
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

Result<size_t> Drive::Read(Ino ino, uint64_t offset, MutableByteSpan out) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->GetAttr(ino));
  if (a.kind != FileKind::kFile) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
  }
  if (offset >= a.size) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), a.size - offset));
  Status s = ReadRange(ino, offset, out.first(n));
  if (!s.ok()) {
    std::memset(out.data(), 0, n);  // no part of a failed read is returned
    return s;
  }
  ReadAhead(ino, offset, n, a.size);
  return n;
}

Status Drive::ReadRange(Ino ino, uint64_t offset, MutableByteSpan out) {
  std::memset(out.data(), 0, out.size());  // holes
  SFS_ASSIGN_OR_RETURN(std::vector<Extent> extents, catalog_->ReadExtents(ino, offset, out.size()));
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
    SFS_RETURN_IF_ERROR(FetchChunk(*chunk, plain));
    const uint64_t from = std::max(e.offset, offset);
    const uint64_t to = std::min(e.offset + e.size, offset + out.size());
    std::memcpy(out.data() + (from - offset), plain.data() + e.chunk_offset + (from - e.offset),
                to - from);
  }
  return Status::Ok();
}

}  // namespace shardfs::backend
