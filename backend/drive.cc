#include "backend/drive.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>

#include "backend/pack_upload.h"
#include "base/file.h"
#include "base/logging.h"
#include "base/units.h"
#include "base/wall_clock.h"

namespace shardfs::backend {

Drive::Drive(DriveOptions options)
    : options_(std::move(options)),
      keys_(crypto::DriveKeys::Derive(options_.master)),
      sealer_(keys_.chunk_encryption, options_.pipeline.seal) {}

namespace {

// This client's coordinate (local_state key; backend/coordinates.h's encoding).
constexpr std::string_view kCoordinateKey = "client.coordinate";

}  // namespace

Drive::~Drive() {
  // The care threads first: they use the catalog and the peers.
  {
    MutexLock lock(&health_mu_);
    stopping_ = true;
    health_cv_.NotifyAll();
  }
  if (membership_thread_.joinable()) membership_thread_.join();
  if (auditor_) auditor_->Stop();
  if (repairer_) repairer_->Stop();
  {
    MutexLock lock(&up_mu_);
    stop_ = true;
  }
  up_cv_.NotifyAll();
  if (uploader_.joinable()) uploader_.join();
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
  if (prober_.joinable()) prober_.join();
  probe_pool_.reset();  // a probe on its way ends within the node's answer deadline
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
  if (options.staging_dir.empty()) return Status::InvalidArgument("no staging folder");
  std::unique_ptr<Drive> d(new Drive(std::move(options)));
  d->peers_ = std::make_unique<PeerSet>(d->options_.config.nodes, d->options_.peers);
  d->reader_ = std::make_unique<ChunkReader>(*d->peers_, d->sealer_, d->options_.read);
  d->upload_pool_ = std::make_unique<ThreadPool>(kPacksInFlight);
  CatalogOptions co;
  co.path = d->options_.catalog_path;
  co.sync = d->options_.sync;
  co.holder = d->options_.holder;
  SFS_ASSIGN_OR_RETURN(d->catalog_, Catalog::Open(co));
  SFS_RETURN_IF_ERROR(d->LoadNodeHealth());
  if (auto saved = d->catalog_->GetLocalState(kCoordinateKey); saved.ok() && saved->has_value()) {
    if (auto own = DecodeCoordinate(**saved); own.ok()) {
      MutexLock lock(&d->coord_mu_);
      d->vivaldi_.Reset(*own);
      d->peers_->SetOwnCoordinate(d->vivaldi_.coordinate());
    }
  }
  d->auditor_ = std::make_unique<Auditor>(d->catalog_.get(), d->peers_.get(), d->options_.audit);
  d->repairer_ = std::make_unique<Repairer>(d->catalog_.get(), d->peers_.get(), d->options_.repair);
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
  if (d->options_.probe_interval.count() > 0) {
    {
      MutexLock lock(&d->health_mu_);
      d->probing_.assign(d->peers_->size(), false);
    }
    d->probe_pool_ = std::make_unique<ThreadPool>(static_cast<int>(d->peers_->size()));
    d->prober_ = std::thread([self = d.get()] { self->ProbeLoop(); });
  }
  StagingOptions so;
  so.limit = d->options_.staging_limit;
  so.freeze_bytes = d->options_.uploader.freeze_bytes;
  SFS_ASSIGN_OR_RETURN(d->staging_, Staging::Open(d->options_.staging_dir, d->catalog_.get(), so));
  // No file can be open in a process that just started: a file without a name is garbage.
  SFS_ASSIGN_OR_RETURN(std::vector<Ino> orphans, d->catalog_->Orphans());
  for (Ino ino : orphans) {
    SFS_RETURN_IF_ERROR(d->staging_->Drop(ino));
    SFS_RETURN_IF_ERROR(d->catalog_->DropOrphan(ino));
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
  SFS_ASSIGN_OR_RETURN(d->checkpointer_,
                       Checkpointer::Start(*d->catalog_, *d->peers_, d->options_.master,
                                           d->options_.config, d->options_.checkpoint));
  d->uploader_ = std::thread([self] { self->UploadLoop(); });
  if (d->options_.care) {
    if (d->options_.membership && d->options_.membership_interval.count() > 0) {
      d->membership_thread_ = std::thread([self] { self->MembershipLoop(); });
    }
    d->auditor_->Start();
    d->repairer_->Start();
  }
  return d;
}

Result<std::vector<MemberInfo>> Drive::RefreshMembership(int rtt_samples) {
  if (!options_.membership) return Status::Unavailable("the drive has no member list to ask");
  SFS_ASSIGN_OR_RETURN(std::vector<MemberInfo> members, options_.membership->Members());
  bool dead_news = false;
  MutexLock lock(&coord_mu_);
  for (const MemberInfo& m : members) {
    auto i = peers_->IndexOf(m.id);
    if (!i) continue;  // a member the drive does not use
    PeerHealth before = peers_->health(*i);
    peers_->SetMembership(*i, m.state, m.coordinate,
                          std::chrono::milliseconds(
                              static_cast<int64_t>(std::clamp(m.state_seconds, 0.0, 1e9) * 1000)));
    bool gone = m.state == NodeLiveness::kDead || m.state == NodeLiveness::kLeft;
    if (gone && before.liveness != m.state) dead_news = true;
    if (m.state != NodeLiveness::kAlive || peers_->Unresponsive(*i)) continue;
    // This client's coordinate, fitted to round trips it measured itself: a status request
    // each (the median of the last three, so a connection's setup does not count).
    std::optional<double> median;
    for (int r = 0; r < rtt_samples; ++r) {
      const auto start = std::chrono::steady_clock::now();
      auto st = peers_->peer(*i).GetStatus();
      const auto took = std::chrono::steady_clock::now() - start;
      if (!st.ok()) break;
      peers_->ReportSuccess(*i, std::chrono::duration_cast<std::chrono::microseconds>(took));
      peers_->ReportFree(*i, st->free);
      median = rtts_.Add(m.id, std::chrono::duration<double, std::milli>(took).count());
    }
    if (median) {
      peers_->SetRtt(*i, *median);
      vivaldi_.Update(m.coordinate, *median);
    }
  }
  peers_->SetOwnCoordinate(vivaldi_.coordinate());
  Status s = catalog_->SetLocalState(kCoordinateKey, EncodeCoordinate(vivaldi_.coordinate()));
  if (!s.ok()) log::Warn("saving this client's coordinate: {}", s.ToString());
  if (dead_news) repairer_->Wake();
  return members;
}

Result<bool> Drive::CareForCheckpoint(bool ignore_grace) {
  const auto grace = ignore_grace ? std::chrono::milliseconds(0) : options_.repair.dead_grace;
  for (const PackRecord& p : checkpointer_->NewestPacks()) {
    int healthy = 0;
    for (const NodeId& n : p.nodes) {
      auto i = peers_->IndexOf(n);
      if (i && peers_->Healthy(*i, grace)) ++healthy;
    }
    if (healthy > repairer_->ThresholdFor(p.k)) continue;
    log::Warn(
        "the catalog's checkpoint pack {} has {} healthy shards of {}: storing a new base "
        "checkpoint",
        p.id.ShortHex(), healthy, p.k + p.m);
    SFS_RETURN_IF_ERROR(checkpointer_->Rebase().status());
    return true;
  }
  return false;
}

void Drive::MembershipLoop() {
  while (true) {
    auto r = RefreshMembership();
    if (!r.ok()) log::Debug("member list: {}", r.status().ToString());
    if (auto c = CareForCheckpoint(false); !c.ok()) {
      log::Warn("checkpoint care: {}", c.status().ToString());
    }
    MutexLock lock(&health_mu_);
    health_cv_.WaitUntil(&health_mu_,
                         std::chrono::steady_clock::now() + options_.membership_interval,
                         [this]() REQUIRES(health_mu_) { return stopping_; });
    if (stopping_) return;
  }
}

// --- The tree ----------------------------------------------------------------------------

InodeAttr Drive::WithStaged(InodeAttr a) const {
  if (a.kind != FileKind::kFile) return a;
  if (auto o = staging_->Find(a.ino)) {
    a.size = o->size;
    if (o->mtime_ns) a.mtime_ns = *o->mtime_ns;
  }
  return a;
}

Result<InodeAttr> Drive::Lookup(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->Lookup(parent, name));
  return WithStaged(a);
}

Result<InodeAttr> Drive::GetAttr(Ino ino) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->GetAttr(ino));
  return WithStaged(a);
}

Result<std::vector<DirEntry>> Drive::ReadDir(Ino dir, std::string_view after, size_t limit) {
  SFS_ASSIGN_OR_RETURN(auto entries, catalog_->ReadDir(dir, after, limit));
  for (DirEntry& e : entries) e.attr = WithStaged(e.attr);
  return entries;
}

Result<InodeAttr> Drive::Mkdir(Ino parent, std::string_view name, const NewInode& how) {
  return catalog_->Mkdir(parent, name, how);
}

Result<InodeAttr> Drive::Create(Ino parent, std::string_view name, const NewInode& how) {
  return catalog_->CreateFile(parent, name, how);
}

Result<InodeAttr> Drive::CreateUnlinked(const NewInode& how) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->CreateUnlinked(how));
  Open(a.ino);
  return a;
}

Result<InodeAttr> Drive::LinkUnlinked(Ino ino, Ino parent, std::string_view name, bool replace) {
  SFS_ASSIGN_OR_RETURN(auto replaced, catalog_->LinkUnlinked(ino, parent, name, replace));
  if (replaced) SFS_RETURN_IF_ERROR(DropIfUnused(*replaced));
  return GetAttr(ino);
}

Result<InodeAttr> Drive::Symlink(Ino parent, std::string_view name, std::string_view target) {
  return catalog_->Symlink(parent, name, target);
}

Result<std::string> Drive::ReadLink(Ino ino) { return catalog_->ReadLink(ino); }

Result<InodeAttr> Drive::Link(Ino ino, Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->Link(ino, parent, name));
  return WithStaged(a);
}

Status Drive::DropIfUnused(const InodeAttr& a) {
  if (a.nlink != 0) return Status::Ok();
  {
    MutexLock lock(&open_mu_);
    if (opens_.count(a.ino)) return Status::Ok();  // the last Release drops it
  }
  MutexLock lock(&commit_mu_);
  SFS_RETURN_IF_ERROR(staging_->Drop(a.ino));
  return catalog_->DropOrphan(a.ino);
}

Status Drive::Unlink(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr after, catalog_->Unlink(parent, name));
  return DropIfUnused(after);
}

Status Drive::RemoveTree(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, Lookup(parent, name));
  if (a.kind != FileKind::kDirectory) return Unlink(parent, name);
  constexpr size_t kPage = 1000;
  while (true) {
    SFS_ASSIGN_OR_RETURN(auto entries, ReadDir(a.ino, "", kPage));
    if (entries.empty()) break;
    for (const auto& e : entries) SFS_RETURN_IF_ERROR(RemoveTree(a.ino, e.name));
  }
  return Rmdir(parent, name);
}

Status Drive::Rmdir(Ino parent, std::string_view name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr dir, catalog_->Lookup(parent, name));
  SFS_RETURN_IF_ERROR(catalog_->Rmdir(parent, name));
  dir.nlink = 0;
  return DropIfUnused(dir);
}

Status Drive::Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                     RenameMode mode) {
  SFS_ASSIGN_OR_RETURN(auto replaced, catalog_->Rename(parent, name, new_parent, new_name, mode));
  if (replaced) return DropIfUnused(*replaced);
  return Status::Ok();
}

Result<InodeAttr> Drive::SetAttr(Ino ino, const AttrChange& change) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->GetAttr(ino));
  AttrChange rest = change;
  if (a.kind == FileKind::kFile) {
    // A file with staged bytes takes size and mtime changes in order with its writes.
    if (staging_->Find(ino)) {
      const auto stored = StoredSize(ino);
      if (change.size) {
        SFS_RETURN_IF_ERROR(staging_->Truncate(ino, stored, *change.size, WallClockNs()));
        rest.size.reset();
      }
      if (change.mtime_ns) {
        SFS_RETURN_IF_ERROR(staging_->SetMtime(ino, stored, *change.mtime_ns));
        rest.mtime_ns.reset();
      }
    }
  } else if (change.size) {
    return Status::InvalidArgument(a.kind == FileKind::kDirectory ? "cannot resize a directory"
                                                                  : "cannot resize a symlink");
  }
  if (rest.mode || rest.uid || rest.gid || rest.size || rest.atime_ns || rest.mtime_ns) {
    SFS_ASSIGN_OR_RETURN(a, catalog_->SetAttr(ino, rest));
  }
  return WithStaged(a);
}

Result<Bytes> Drive::GetXattr(Ino ino, std::string_view name) {
  return catalog_->GetXattr(ino, name);
}

Status Drive::SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode) {
  return catalog_->SetXattr(ino, name, value, mode);
}

Result<std::vector<std::string>> Drive::ListXattr(Ino ino) { return catalog_->ListXattr(ino); }

Status Drive::RemoveXattr(Ino ino, std::string_view name) {
  return catalog_->RemoveXattr(ino, name);
}

void Drive::Open(Ino ino) {
  MutexLock lock(&open_mu_);
  ++opens_[ino];
}

Status Drive::Release(Ino ino) {
  bool last = false;
  {
    MutexLock lock(&open_mu_);
    auto it = opens_.find(ino);
    if (it != opens_.end() && --it->second == 0) {
      opens_.erase(it);
      last = true;
    }
  }
  SFS_RETURN_IF_ERROR(Flush(ino));
  if (!last) return Status::Ok();
  auto a = catalog_->GetAttr(ino);
  if (!a.ok()) return a.status().code() == Code::kNotFound ? Status::Ok() : a.status();
  return DropIfUnused(*a);
}

// --- Contents ----------------------------------------------------------------------------

Status Drive::ReadStored(Ino ino, uint64_t offset, MutableByteSpan out, bool on_disk) {
  if (out.empty()) return Status::Ok();
  auto extents = catalog_->ReadExtents(ino, offset, out.size());
  if (!extents.ok()) {
    std::memset(out.data(), 0, out.size());
    return extents.status();
  }
  // Bytes of `out` before `filled` are written: holes between extents, and past the stored
  // end, are zeroed as they are passed.
  uint64_t filled = offset;
  for (const Extent& e : *extents) {
    SFS_ASSIGN_OR_RETURN(auto chunk, catalog_->FindChunk(e.chunk));
    if (!chunk) {
      return Status::Corruption("the catalog names chunk " + e.chunk.ToHex() +
                                " but does not hold it");
    }
    if (e.chunk_offset > chunk->plain_size || e.size > chunk->plain_size - e.chunk_offset) {
      return Status::Corruption("an extent of inode " + std::to_string(ino) +
                                " runs past its chunk");
    }
    SFS_ASSIGN_OR_RETURN(ChunkCache::Plain plain, FetchChunk(*chunk, on_disk));
    const uint64_t from = std::max(e.offset, offset);
    const uint64_t to = std::min(e.offset + e.size, offset + out.size());
    if (from > filled) std::memset(out.data() + (filled - offset), 0, from - filled);
    std::memcpy(out.data() + (from - offset), plain->data() + e.chunk_offset + (from - e.offset),
                to - from);
    filled = std::max(filled, to);
  }
  if (filled < offset + out.size()) {
    std::memset(out.data() + (filled - offset), 0, offset + out.size() - filled);
  }
  return Status::Ok();
}

Result<size_t> Drive::Read(Ino ino, uint64_t offset, MutableByteSpan out) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, GetAttr(ino));
  if (a.kind != FileKind::kFile) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
  }
  if (offset >= a.size) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), a.size - offset));
  MutableByteSpan want = out.first(n);
  const bool on_disk = CacheOnDisk(ino, offset);
  auto stored = [&](uint64_t at, MutableByteSpan part) {
    return ReadStored(ino, at, part, on_disk);
  };
  auto staged = staging_->Read(ino, offset, want, stored);
  Status s = staged.ok() ? (*staged ? Status::Ok() : ReadStored(ino, offset, want, on_disk))
                         : staged.status();
  if (!s.ok()) {
    std::memset(want.data(), 0, want.size());  // no part of a failed read is returned
    return s;
  }
  ReadAhead(ino, offset, n, a.size);
  return n;
}

Staging::StoredSize Drive::StoredSize(Ino ino) {
  // Asked only when the file gets its first layer: a write to a staged file reads no catalog.
  return [this, ino]() -> Result<uint64_t> {
    SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->GetAttr(ino));
    if (a.kind != FileKind::kFile) {
      return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
    }
    return a.size;
  };
}

Status Drive::Write(Ino ino, uint64_t offset, ByteSpan data) {
  if (offset > (uint64_t{1} << 62) || data.size() > (uint64_t{1} << 62) - offset) {
    return Status::InvalidArgument("write past the largest file size");
  }
  const uint64_t limit = options_.staging_limit;
  if (limit != 0 && data.size() > limit) {
    return Status::NoSpace("a write of " + FormatByteSize(data.size()) +
                           " is larger than the local write-back area (" + FormatByteSize(limit) +
                           ")");
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  for (;;) {
    SFS_ASSIGN_OR_RETURN(StagedWrite w,
                         staging_->Write(ino, StoredSize(ino), offset, data, WallClockNs()));
    if (w == StagedWrite::kDone) return Status::Ok();
    if (w == StagedWrite::kFroze) {
      WakeUploader();  // its bytes upload while the file is written on
      return Status::Ok();
    }
    if (!deadline) deadline = std::chrono::steady_clock::now() + options_.staging_wait;
    SFS_RETURN_IF_ERROR(WaitForRoom(*deadline));
  }
}

Status Drive::WaitForRoom(std::chrono::steady_clock::time_point deadline) {
  // An open layer is never uploaded: without this, a file still being written could hold the
  // area full.
  staging_->FreezeAll();
  Status failed;
  {
    MutexLock lock(&up_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (last_error_.ok() && now < deadline) {
      const uint64_t batches = batches_;
      ++urgent_;  // no waiting for a quiet queue, and retries as for Fsync
      wake_ = true;
      up_cv_.NotifyAll();
      // A slice, not the whole wait: room may also come from a truncate or an unlink.
      done_cv_.WaitUntil(&up_mu_, std::min(deadline, now + std::chrono::milliseconds(100)),
                         [&]() REQUIRES(up_mu_) { return batches_ != batches; });
      --urgent_;
    }
    failed = last_error_;
    if (!failed.ok()) {
      // Not waiting, but the uploader retries as if a caller waited, so writes are taken
      // again soon after the nodes are back, not after its longest back-off.
      hurry_ = true;
      wake_ = true;
      up_cv_.NotifyAll();
    }
  }
  if (failed.ok() && std::chrono::steady_clock::now() < deadline) return Status::Ok();
  const std::string full =
      "the local write-back area is full: " + FormatByteSize(staging_->Stats().bytes) +
      " written and not yet stored (the limit is " + FormatByteSize(options_.staging_limit) + ")";
  if (!failed.ok()) {
    return Status::NoSpace(
        full + ", and uploads are failing (are the nodes offline?): " + failed.ToString());
  }
  return Status::NoSpace(full + "; uploads did not make room within " +
                         std::to_string(options_.staging_wait.count()) + " ms");
}

void Drive::WakeUploader() {
  MutexLock lock(&up_mu_);
  wake_ = true;
  up_cv_.NotifyAll();
}

Status Drive::Flush(Ino ino) {
  // The uploader is not woken: it looks at the queue every 100 ms, and a close per file (cp of
  // many small files) would otherwise make it scan the whole queue once per file.
  staging_->Freeze(ino);
  return Status::Ok();
}

Status Drive::WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&up_mu_);
  ++urgent_;
  wake_ = true;
  up_cv_.NotifyAll();
  bool ok = false;
  // In slices: a file dropped meanwhile ends the wait without a batch ending.
  while (!(ok = done()) && std::chrono::steady_clock::now() < deadline) {
    done_cv_.WaitUntil(
        &up_mu_,
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)),
        [&]() REQUIRES(up_mu_) { return done(); });
  }
  --urgent_;
  if (ok) return Status::Ok();
  std::string why = last_error_.ok() ? "the uploads are still running" : last_error_.ToString();
  return Status::DeadlineExceeded("not stored within " + std::to_string(timeout.count()) + " ms (" +
                                  why + "); the bytes stay queued");
}

Status Drive::Fsync(Ino ino, std::chrono::milliseconds timeout) {
  const uint64_t seq = staging_->Freeze(ino);
  if (seq == 0) return Status::Ok();
  return WaitFor([&] { return !staging_->PendingFor(ino, seq); }, timeout);
}

Status Drive::Sync(std::chrono::milliseconds timeout) {
  const uint64_t seq = staging_->FreezeAll();
  if (seq == 0) return Status::Ok();
  return WaitFor([&] { return !staging_->Pending(seq); }, timeout);
}

UploadState Drive::Uploads() const {
  UploadState s;
  s.staged = staging_->Stats();
  s.staging_limit = options_.staging_limit;
  MutexLock lock(&up_mu_);
  s.last_error = last_error_;
  return s;
}

Status Drive::SyncStaging() { return staging_->SyncToDisk(); }

std::vector<Result<PeerStatus>> Drive::AskNodes() {
  std::vector<Result<PeerStatus>> answers;
  for (size_t i = 0; i < peers_->size(); ++i) {
    answers.push_back(peers_->peer(i).GetStatus());
    if (answers.back().ok()) peers_->ReportFree(i, answers.back()->free);
  }
  return answers;
}

Result<DriveSpace> Drive::SpaceFrom(const std::vector<Result<PeerStatus>>& answers) const {
  DriveSpace space;
  uint64_t capacity = 0, free = 0;
  for (const auto& st : answers) {
    if (!st.ok()) continue;
    ++space.nodes_up;
    capacity += st->capacity;
    free += st->free;
  }
  if (space.nodes_up == 0) return Status::Unavailable("no node answered");
  const auto k = static_cast<uint64_t>(options_.config.k);
  const auto n = static_cast<uint64_t>(options_.config.k + options_.config.m);
  space.capacity = capacity / n * k;
  space.free = free / n * k;
  return space;
}

Result<ChunkCache::Plain> Drive::FetchChunk(const ChunkRecord& chunk, bool on_disk) {
  if (!cache_) return FetchFromPeers(chunk);
  {
    // A fetch of this chunk that has started (ahead, or for another read: the kernel reads a
    // file in parallel requests that share the chunks at their edges) is waited for, not
    // repeated; then the chunk is in the cache.
    MutexLock lock(&ahead_mu_);
    ahead_cv_.Wait(&ahead_mu_, [&]() REQUIRES(ahead_mu_) {
      auto it = ahead_.find(chunk.id);
      return (it == ahead_.end() || !it->second) && fetching_.count(chunk.id) == 0;
    });
    fetching_.insert(chunk.id);
  }
  auto cached = cache_->Get(chunk.id, chunk.plain_size);
  auto plain = cached.ok() ? std::move(cached) : FetchFromPeers(chunk, on_disk);
  MutexLock lock(&ahead_mu_);
  fetching_.erase(chunk.id);
  ahead_cv_.NotifyAll();
  return plain;
}

Result<ChunkCache::Plain> Drive::FetchFromPeers(const ChunkRecord& chunk, bool on_disk) {
  SFS_ASSIGN_OR_RETURN(PackRecord pack, catalog_->GetPack(chunk.pack));
  auto plain = std::make_shared<Bytes>(chunk.plain_size);
  SFS_RETURN_IF_ERROR(reader_->Read(pack, chunk, *plain));
  if (cache_) {
    // The cache keeps this very buffer in memory: no copy.
    Status s = cache_->Put(chunk.id, plain, on_disk);
    if (!s.ok()) log::Warn("chunk cache: {}", s.ToString());
  }
  return ChunkCache::Plain(std::move(plain));
}

// A read at `offset` goes on `st` if it starts near where the stream got to (near: the
// kernel's read-ahead sends a file's reads in parallel, so they come in any order within its
// window).
bool Drive::GoesOn(const Stream& st, uint64_t offset) {
  return offset + kReadAheadSlack >= st.reached && offset <= st.reached + kReadAheadSlack;
}

bool Drive::CacheOnDisk(Ino ino, uint64_t offset) {
  const uint64_t limit = options_.stream_cache_bytes;
  if (limit == 0) return true;
  MutexLock lock(&ahead_mu_);
  auto it = streams_.find(ino);
  if (it == streams_.end() || !GoesOn(it->second, offset)) return true;
  return it->second.reached - it->second.start < limit;
}

void Drive::ReadAhead(Ino ino, uint64_t offset, uint64_t n, uint64_t size) {
  if (!ahead_pool_) return;
  const uint64_t end = offset + n;
  bool on_disk = true;
  {
    MutexLock lock(&ahead_mu_);
    auto it = streams_.find(ino);
    // A read from the start of a file, or one that goes on the file's stream, is sequential.
    // Any other read starts a new stream.
    const bool known = it != streams_.end();
    const bool sequential = offset == 0 || (known && GoesOn(it->second, offset));
    if (streams_.size() >= 1024) streams_.clear();  // bounded: forget old files
    Stream& st = streams_[ino];
    if (!sequential || !known) st = Stream{offset, end};
    st.reached = std::max(st.reached, end);
    const uint64_t limit = options_.stream_cache_bytes;
    on_disk = limit == 0 || st.reached - st.start < limit;
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
    ahead_pool_->Submit([this, id = e.chunk, on_disk] { ReadAheadChunk(id, on_disk); });
  }
}

void Drive::ReadAheadChunk(const ChunkId& id, bool on_disk) {
  bool fetch = false;
  {
    MutexLock lock(&ahead_mu_);
    // Not when a read is fetching it already.
    fetch = !ahead_stopping_ && fetching_.count(id) == 0;
    ahead_[id] = true;
  }
  if (fetch && !cache_->Contains(id)) {
    auto chunk = catalog_->FindChunk(id);
    Status s = !chunk.ok() ? chunk.status()
               : !*chunk   ? Status::NotFound("no chunk " + id.ToHex())
                           : FetchFromPeers(**chunk, on_disk).status();
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
    h.reputation = r.reputation;
    h.audits_passed = r.audits_passed;
    h.audits_failed = r.audits_failed;
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
    r.reputation = h.reputation;
    r.audits_passed = h.audits_passed;
    r.audits_failed = h.audits_failed;
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

void Drive::ProbeLoop() {
  for (;;) {
    std::vector<size_t> due;
    {
      MutexLock lock(&health_mu_);
      health_cv_.WaitUntil(&health_mu_, std::chrono::steady_clock::now() + options_.probe_interval,
                           [this]() REQUIRES(health_mu_) { return stopping_; });
      if (stopping_) return;
      for (size_t i = 0; i < peers_->size(); ++i) {
        if (probing_[i] || !peers_->BackedOff(i)) continue;
        probing_[i] = true;
        due.push_back(i);
      }
    }
    for (size_t i : due) probe_pool_->Submit([this, i] { Probe(i); });
  }
}

void Drive::Probe(size_t i) {
  bool stop;
  {
    MutexLock lock(&health_mu_);
    stop = stopping_;
  }
  if (!stop) {
    const auto start = std::chrono::steady_clock::now();
    auto status = peers_->peer(i).GetStatus();
    if (status.ok()) {
      // A failure is not reported: the node's back-off goes on as its reads left it.
      peers_->ReportSuccess(i, std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start));
      peers_->ReportFree(i, status->free);
      log::Info("node {} answers again", peers_->peer(i).name());
      {
        MutexLock lock(&up_mu_);
        node_back_ = true;
        wake_ = true;
      }
      up_cv_.NotifyAll();
    }
  }
  MutexLock lock(&health_mu_);
  probing_[i] = false;
}

// --- The write path ----------------------------------------------------------------------

Status Drive::StorePack(EncodedPack& pack) {
  {
    MutexLock lock(&pack_mu_);
    if (!pack_error_.ok()) return pack_error_;  // the run has failed: stop making packs
    // At most kPacksInFlight uploads at once: the pipeline waits here, so memory stays bounded.
    pack_cv_.Wait(&pack_mu_,
                  [this]() REQUIRES(pack_mu_) { return packs_in_flight_ < kPacksInFlight; });
    ++packs_in_flight_;
  }
  // The pipeline goes on with the next pack while this one uploads.
  auto owned = std::make_shared<EncodedPack>(std::move(pack));
  upload_pool_->Submit([this, owned] {
    Status s = StoreEncodedPack(*owned);
    pipeline_->Recycle(std::move(*owned));
    MutexLock lock(&pack_mu_);
    if (!s.ok() && pack_error_.ok()) pack_error_ = s;
    --packs_in_flight_;
    pack_cv_.NotifyAll();
  });
  return Status::Ok();
}

Status Drive::FinishPackUploads() {
  MutexLock lock(&pack_mu_);
  pack_cv_.Wait(&pack_mu_, [this]() REQUIRES(pack_mu_) { return packs_in_flight_ == 0; });
  Status s = pack_error_;
  pack_error_ = Status::Ok();
  return s;
}

Status Drive::StoreEncodedPack(const EncodedPack& pack) {
  SFS_ASSIGN_OR_RETURN(PackRecord record, UploadPack(*peers_, pack));
  return catalog_->AddPack(record, ChunkRecordsOf(pack, options_.pipeline.seal.cipher));
}

Result<std::vector<std::optional<InodeAttr>>> Drive::Store(
    std::vector<FileCommit> commits, const std::vector<Piece>& pieces,
    const std::function<bool(size_t)>& still_wanted) {
  MutexLock run(&pipeline_mu_);
  std::vector<ByteSpan> inputs;
  inputs.reserve(pieces.size());
  for (const Piece& p : pieces) inputs.push_back(p.bytes);
  std::vector<ChunkRef> refs;
  Status ran = pipeline_->RunMany(inputs, &refs);
  Status uploaded = FinishPackUploads();  // whatever happened, no upload outlives the run
  pipeline_->DropSpares();                // an idle drive holds no pack buffers
  SFS_RETURN_IF_ERROR(ran);
  SFS_RETURN_IF_ERROR(uploaded);
  // Every piece becomes one RangeWrite of its file, its chunks the extents.
  std::vector<size_t> range_of(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    FileCommit& c = commits[pieces[i].commit];
    range_of[i] = c.ranges.size();
    c.ranges.push_back(RangeWrite{pieces[i].file_offset, pieces[i].bytes.size(), {}});
  }
  for (const ChunkRef& r : refs) {
    const Piece& p = pieces[r.input];
    commits[p.commit].ranges[range_of[r.input]].extents.push_back(
        Extent{p.file_offset + r.offset, r.id, 0, r.size});
  }
  MutexLock lock(&commit_mu_);
  if (still_wanted) {
    for (size_t i = 0; i < commits.size(); ++i) {
      if (still_wanted(i)) continue;
      // The file went while its bytes were stored: only its queue row goes.
      FileCommit skip;
      skip.upload = commits[i].upload;
      commits[i] = std::move(skip);
    }
  }
  return catalog_->CommitFiles(commits);
}

Result<std::vector<InodeAttr>> Drive::StoreFiles(std::span<const FileSource> files) {
  std::vector<FileCommit> commits;
  std::vector<Piece> pieces;
  commits.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const FileSource& f = files[i];
    FileCommit c;
    if (f.ino == 0) {
      c.create = f.how;
      c.link = FileCommit::Link{f.parent, f.name};
    } else {
      c.ino = f.ino;
      c.cut_to = 0;
      // Staged bytes of a file replaced whole are void (their layers would land on top).
      MutexLock lock(&commit_mu_);
      SFS_RETURN_IF_ERROR(staging_->Drop(f.ino));
    }
    c.size = f.data.size();
    c.mtime_ns = f.mtime_ns;
    commits.push_back(std::move(c));
    if (!f.runs) {
      if (!f.data.empty()) pieces.push_back(Piece{i, 0, f.data});
      continue;
    }
    uint64_t at = 0;
    for (const auto& [offset, length] : *f.runs) {
      if (offset < at || offset > f.data.size() || length > f.data.size() - offset) {
        return Status::InvalidArgument("data runs out of order or past the file's end");
      }
      if (length > 0) pieces.push_back(Piece{i, offset, f.data.subspan(offset, length)});
      at = offset + length;
    }
  }
  SFS_ASSIGN_OR_RETURN(auto done, Store(std::move(commits), pieces, nullptr));
  std::vector<InodeAttr> out;
  out.reserve(done.size());
  for (size_t i = 0; i < done.size(); ++i) {
    if (!done[i]) return Status::NotFound("inode " + std::to_string(files[i].ino) + " is gone");
    out.push_back(*done[i]);
  }
  return out;
}

Result<InodeAttr> Drive::WriteWholeFile(Ino ino, ByteSpan data) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, catalog_->GetAttr(ino));
  if (a.kind != FileKind::kFile) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a file");
  }
  FileSource f;
  f.ino = ino;
  f.data = data;
  SFS_ASSIGN_OR_RETURN(auto done, StoreFiles(std::span<const FileSource>(&f, 1)));
  return done[0];
}

Status Drive::DropDeadPacks(GcReport* report) {
  // No pipeline run may count on a chunk (dedup) while its pack goes.
  MutexLock run(&pipeline_mu_);
  MutexLock commit(&commit_mu_);
  for (;;) {
    SFS_ASSIGN_OR_RETURN(std::vector<PackId> dead, catalog_->DeadPacks(256));
    if (dead.empty()) return Status::Ok();
    for (const PackId& id : dead) {
      SFS_ASSIGN_OR_RETURN(PackRecord pack, catalog_->GetPack(id));
      SFS_RETURN_IF_ERROR(catalog_->DropDeadPack(id));
      ++report->packs_dropped;
      report->bytes_dropped += pack.size;
    }
  }
}

Result<GcReport> Drive::CollectGarbage() {
  GcReport report;
  // The newest checkpoint must not name what goes (a restore would find files without data):
  // without one of the catalog as it is, nothing new is dropped; queued deletions still go.
  report.checkpoint = checkpointer_->Sync().status();
  if (report.checkpoint.ok()) {
    SFS_RETURN_IF_ERROR(DropDeadPacks(&report));
    // And the checkpoints no kept one needs.
    SFS_ASSIGN_OR_RETURN(report.checkpoint_packs_dropped,
                         checkpointer_->DropUnusedPacks([this](const PackRecord& pack) {
                           return catalog_->QueueDeletions(pack);
                         }));
  }
  // Deleting shards from nodes needs no lock: the catalog no longer knows them.
  std::vector<std::pair<ShardId, NodeId>> failed;
  for (;;) {
    SFS_ASSIGN_OR_RETURN(auto batch, catalog_->PendingDeletions(1024 + failed.size()));
    size_t fresh = 0;
    for (const auto& [shard, node] : batch) {
      if (std::find(failed.begin(), failed.end(), std::make_pair(shard, node)) != failed.end()) {
        continue;
      }
      ++fresh;
      auto index = peers_->IndexOf(node);
      Status s = index ? peers_->peer(*index).DeleteShard(shard)
                       : Status::NotFound("the node is no longer the drive's");
      if (s.ok() || s.code() == Code::kNotFound) {
        SFS_RETURN_IF_ERROR(catalog_->DeletionDone(shard, node));
        ++report.shards_deleted;
      } else {
        failed.emplace_back(shard, node);
      }
    }
    if (fresh == 0) break;
  }
  report.deletions_pending = failed.size();
  return report;
}

// --- The uploader ------------------------------------------------------------------------

Status Drive::UploadBatch(std::vector<UploadJob>& jobs) {
  // Each segment the batch reads is mapped once. A piece the uploader holds does not change,
  // and its segment is not cut or removed before Release.
  std::map<uint64_t, std::unique_ptr<MappedFile>> maps;
  auto bytes_of = [&](const StagedPiece& p) -> Result<ByteSpan> {
    std::unique_ptr<MappedFile>& map = maps[p.segment];
    if (!map) {
      SFS_ASSIGN_OR_RETURN(map, MappedFile::Open(staging_->SegmentPath(p.segment)));
    }
    const ByteSpan all = map->bytes();
    // One shorter than its records say would fault.
    if (p.segment_offset > all.size() || p.length > all.size() - p.segment_offset) {
      return Status::Corruption("staging " + staging_->SegmentPath(p.segment) +
                                " is shorter than its records");
    }
    return all.subspan(p.segment_offset, p.length);
  };
  // A run of bytes that goes on in the file from piece to piece but not in the segment
  // (records' heads lie between writes) is copied into one buffer: the pipeline cuts each
  // input into chunks on its own, and a file written in many writes must be cut as a whole, as
  // `put` cuts it (same chunks, same dedup), not at every write. Up to kMaxJoined a run.
  constexpr uint64_t kMaxJoined = uint64_t{64} << 20;
  std::deque<Bytes> joined;
  std::vector<FileCommit> commits;
  std::vector<Piece> pieces;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const UploadJob& j = jobs[i];
    FileCommit c;
    c.ino = j.ino;
    c.cut_to = j.min_size;
    c.size = j.size;
    c.mtime_ns = j.mtime_ns;
    c.upload = j.seq;
    commits.push_back(std::move(c));
    for (size_t k = 0; k < j.pieces.size();) {
      const StagedPiece& first = j.pieces[k];
      size_t e = k + 1;
      uint64_t length = first.length;
      bool in_place = true;  // the whole run lies in one place of one segment
      for (; e < j.pieces.size(); ++e) {
        const StagedPiece& prev = j.pieces[e - 1];
        const StagedPiece& next = j.pieces[e];
        if (next.offset != prev.end() || length + next.length > kMaxJoined) break;
        in_place = in_place && next.segment == prev.segment &&
                   next.segment_offset == prev.segment_offset + prev.length;
        length += next.length;
      }
      ByteSpan run;
      if (in_place) {
        SFS_ASSIGN_OR_RETURN(
            run, bytes_of(StagedPiece{first.offset, length, first.segment, first.segment_offset}));
      } else {
        Bytes& buf = joined.emplace_back();
        buf.reserve(length);
        for (size_t p = k; p < e; ++p) {
          SFS_ASSIGN_OR_RETURN(ByteSpan part, bytes_of(j.pieces[p]));
          buf.insert(buf.end(), part.begin(), part.end());
          // Copied: the mapping's pages need not stay in this process's memory as well.
          maps[j.pieces[p].segment]->Forget(j.pieces[p].segment_offset, j.pieces[p].length);
        }
        run = buf;
      }
      pieces.push_back(Piece{i, first.offset, run});
      k = e;
    }
  }
  return Store(std::move(commits), pieces, [&](size_t i) { return staging_->Wanted(jobs[i]); })
      .status();
}

void Drive::UploadLoop() {
  const auto& o = options_.uploader;
  auto retry_wait = o.retry_wait;
  // After a failure: when to try again, and, with a caller waiting, sooner.
  auto next_try = std::chrono::steady_clock::now();
  auto next_urgent_try = next_try;
  // When to look at the queue again unless woken: idle files and a quiet queue are polled.
  auto look_at = next_try;
  for (;;) {
    bool urgent;
    bool node_back;
    {
      MutexLock lock(&up_mu_);
      up_cv_.WaitUntil(&up_mu_, look_at, [&]() REQUIRES(up_mu_) { return stop_ || wake_; });
      if (stop_) return;
      wake_ = false;
      urgent = urgent_ > 0 || hurry_;
      node_back = node_back_;
      node_back_ = false;
    }
    staging_->FreezeIdle(o.idle_freeze);
    const auto now = std::chrono::steady_clock::now();
    if (node_back) {
      // A node that had failed answers again: what failed may go through now.
      retry_wait = o.retry_wait;
      next_try = next_urgent_try = now;
    }
    look_at = now + std::chrono::milliseconds(100);
    // Not before the retry time, even with a caller waiting (sleeping, not spinning, till then).
    const auto retry_at = urgent ? next_urgent_try : next_try;
    if (now < retry_at) {
      look_at = std::min(look_at, retry_at);
      continue;
    }
    const StagingStats st = staging_->Stats();
    if (st.queued == 0) continue;
    const bool full = st.queued_bytes >= options_.pipeline.pack_target_size;
    const bool quiet = now - staging_->last_freeze() >= o.quiet;
    if (!urgent && !full && !quiet) continue;
    std::vector<UploadJob> jobs = staging_->Take(o.batch_bytes);
    if (jobs.empty()) continue;
    Status s = UploadBatch(jobs);
    staging_->Release(jobs, s.ok());
    if (s.ok()) {
      retry_wait = o.retry_wait;
      next_try = next_urgent_try = now;
      look_at = now;  // more may be queued: look again at once
    } else {
      log::Warn("upload of {} file(s) failed; retrying in {} ms: {}", jobs.size(),
                retry_wait.count(), s.ToString());
      const auto failed = std::chrono::steady_clock::now();
      next_try = failed + retry_wait;
      next_urgent_try = failed + o.retry_wait;
      retry_wait = std::min(retry_wait * 2, o.max_retry_wait);
    }
    {
      MutexLock lock(&up_mu_);
      last_error_ = s;
      ++batches_;
      hurry_ = false;
    }
    done_cv_.NotifyAll();
  }
}

}  // namespace shardfs::backend
