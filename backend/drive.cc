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
    SFS_ASSIGN_OR_RETURN(PackRecord pack, catalog_->GetPack(chunk->pack));
    SFS_RETURN_IF_ERROR(reader_->Read(pack, *chunk, plain));
    const uint64_t from = std::max(e.offset, offset);
    const uint64_t to = std::min(e.offset + e.size, offset + out.size());
    std::memcpy(out.data() + (from - offset), plain.data() + e.chunk_offset + (from - e.offset),
                to - from);
  }
  return Status::Ok();
}

}  // namespace shardfs::backend
