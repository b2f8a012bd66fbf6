#include "backend/staging.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/logging.h"

namespace shardfs::backend {

// --- RangeSet ----------------------------------------------------------------------------

void RangeSet::Add(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  uint64_t start = offset, end = offset + length;
  // Merge with every range that overlaps or touches [start, end).
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) it = prev;
  }
  while (it != ranges_.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    bytes_ -= it->second - it->first;
    it = ranges_.erase(it);
  }
  ranges_[start] = end;
  bytes_ += end - start;
}

void RangeSet::CutFrom(uint64_t size) {
  auto it = ranges_.lower_bound(size);
  for (auto gone = it; gone != ranges_.end(); ++gone) bytes_ -= gone->second - gone->first;
  ranges_.erase(it, ranges_.end());
  if (!ranges_.empty()) {
    auto last = std::prev(ranges_.end());
    if (last->second > size) {
      bytes_ -= last->second - size;
      last->second = size;
    }
  }
}

std::vector<ByteRange> RangeSet::ranges() const {
  std::vector<ByteRange> out;
  out.reserve(ranges_.size());
  for (const auto& [start, end] : ranges_) out.push_back(ByteRange{start, end - start});
  return out;
}

std::vector<ByteRange> RangeSet::Overlap(uint64_t offset, uint64_t length) const {
  std::vector<ByteRange> out;
  const uint64_t end = offset + length;
  auto it = ranges_.upper_bound(offset);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && it->first < end; ++it) {
    uint64_t s = std::max(it->first, offset), e = std::min(it->second, end);
    if (s < e) out.push_back(ByteRange{s, e - s});
  }
  return out;
}

// --- Layers ------------------------------------------------------------------------------

namespace {

// Layer log (docs/format.md, "Staging layer"): a header, then records appended one write(2)
// each. Record types are stored: do not renumber.
constexpr char kLogMagic[4] = {'S', 'F', 'S', 'L'};
constexpr uint32_t kLogVersion = 1;
constexpr size_t kLogHeaderSize = 4 + 4 + 8 + 8;
enum class LogRecord : uint8_t { kWrite = 1, kTruncate = 2, kMtime = 3 };
constexpr size_t kWriteRecordSize = 1 + 8 + 8 + 8;
constexpr size_t kTruncateRecordSize = 1 + 8 + 8;
constexpr size_t kMtimeRecordSize = 1 + 8;

void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

using Clock = std::chrono::steady_clock;

}  // namespace

struct Staging::Layer {
  uint64_t seq = 0;
  UniqueFd data;
  UniqueFd log;
  RangeSet written;
  uint64_t min_size = 0;
  uint64_t size = 0;
  std::optional<int64_t> mtime_ns;
  bool frozen = false;
  bool full = false;  // frozen for passing freeze_bytes: takes no more writes
  bool uploading = false;
  bool dropped = false;  // the file went while the uploader held the layer
  Clock::time_point last_write{};
};

struct Staging::File {
  std::vector<std::unique_ptr<Layer>> layers;  // oldest first
};

std::string Staging::DataPath(uint64_t seq) const {
  return dir_ + "/" + std::to_string(seq) + ".data";
}
std::string Staging::LogPath(uint64_t seq) const {
  return dir_ + "/" + std::to_string(seq) + ".log";
}

Staging::Staging(std::string dir, Catalog* catalog, StagingOptions options)
    : dir_(std::move(dir)), catalog_(catalog), options_(options) {}
Staging::~Staging() = default;

Result<std::unique_ptr<Staging>> Staging::Open(const std::string& dir, Catalog* catalog,
                                               StagingOptions options) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return PosixError("create staging folder " + dir, errno);
  }
  std::unique_ptr<Staging> s(new Staging(dir, catalog, options));
  SFS_RETURN_IF_ERROR(s->Recover());
  return s;
}

Status Staging::Recover() {
  SFS_ASSIGN_OR_RETURN(auto rows, catalog_->Uploads());
  MutexLock lock(&mu_);
  std::set<uint64_t> live;
  for (const auto& [seq, ino] : rows) {
    next_seq_ = std::max(next_seq_, seq + 1);
    auto layer = std::make_unique<Layer>();
    layer->seq = seq;
    layer->frozen = true;
    int data = ::open(DataPath(seq).c_str(), O_RDWR | O_CLOEXEC);
    int log = ::open(LogPath(seq).c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    layer->data = UniqueFd(data);
    layer->log = UniqueFd(log);
    Bytes text;
    if (data >= 0 && log >= 0) {
      auto read = ReadFile(LogPath(seq), size_t{1} << 30);
      if (!read.ok()) return read.status();
      text = std::move(*read);
    }
    if (data < 0 || log < 0 || text.size() < kLogHeaderSize ||
        std::memcmp(text.data(), kLogMagic, 4) != 0 || Get64(text.data() + 8) != ino) {
      // The layer never got its first byte (a crash between the row and the files) or its
      // files were removed from outside: either way there is nothing to store.
      if (data >= 0 || log >= 0) {
        log::Error("staging: layer {} of inode {} is unreadable; its bytes are lost", seq, ino);
      }
      SFS_RETURN_IF_ERROR(catalog_->RemoveUpload(seq));
      continue;
    }
    if (Get32(text.data() + 4) != kLogVersion) {
      return Status::NotSupported("staging layer " + LogPath(seq) + " has a newer format");
    }
    layer->size = layer->min_size = Get64(text.data() + 16);
    // Replay the records; a torn last record (a crash mid-append) is ignored: its write had
    // not been accepted.
    size_t at = kLogHeaderSize;
    while (at < text.size()) {
      const uint8_t* r = text.data() + at;
      auto type = static_cast<LogRecord>(r[0]);
      if (type == LogRecord::kWrite && text.size() - at >= kWriteRecordSize) {
        uint64_t off = Get64(r + 1), len = Get64(r + 9);
        layer->written.Add(off, len);
        layer->size = std::max(layer->size, off + len);
        layer->mtime_ns = static_cast<int64_t>(Get64(r + 17));
        at += kWriteRecordSize;
      } else if (type == LogRecord::kTruncate && text.size() - at >= kTruncateRecordSize) {
        uint64_t size = Get64(r + 1);
        layer->written.CutFrom(size);
        layer->min_size = std::min(layer->min_size, size);
        layer->size = size;
        layer->mtime_ns = static_cast<int64_t>(Get64(r + 9));
        at += kTruncateRecordSize;
      } else if (type == LogRecord::kMtime && text.size() - at >= kMtimeRecordSize) {
        layer->mtime_ns = static_cast<int64_t>(Get64(r + 1));
        at += kMtimeRecordSize;
      } else if (type == LogRecord::kWrite || type == LogRecord::kTruncate ||
                 type == LogRecord::kMtime) {
        break;
      } else {
        return Status::Corruption("staging layer " + LogPath(seq) + " has an unknown record");
      }
    }
    live.insert(seq);
    bytes_ += layer->written.bytes();
    auto& file = files_[ino];
    if (!file) file = std::make_unique<File>();
    file->layers.push_back(std::move(layer));
  }
  // Files of layers without a row were committed (or never started): remove them.
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return PosixError("list staging folder " + dir_, errno);
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    char* end = nullptr;
    unsigned long long seq = std::strtoull(name.c_str(), &end, 10);
    if (end != nullptr && (std::string(end) == ".data" || std::string(end) == ".log")) {
      next_seq_ = std::max<uint64_t>(next_seq_, seq + 1);
      if (live.count(seq)) continue;
    }
    stale.push_back(dir_ + "/" + name);
  }
  ::closedir(d);
  for (const auto& path : stale) ::unlink(path.c_str());
  if (!live.empty())
    log::Info("staging: {} layer(s) waiting from before; they will be uploaded", live.size());
  return Status::Ok();
}

std::optional<Staging::Overlay> Staging::Find(Ino ino) const {
  MutexLock lock(&mu_);
  auto it = files_.find(ino);
  if (it == files_.end() || it->second->layers.empty()) return std::nullopt;
  Overlay o;
  o.size = it->second->layers.back()->size;
  for (const auto& l : it->second->layers) {
    if (l->mtime_ns) o.mtime_ns = l->mtime_ns;
  }
  return o;
}

Result<Staging::Layer*> Staging::OpenLayerLocked(Ino ino, const StoredSize& stored_size) {
  auto it = files_.find(ino);
  uint64_t base;
  if (it != files_.end()) {
    Layer* last = it->second->layers.back().get();
    // A frozen layer the uploader has not taken yet takes the writes again (fewer layers),
    // unless it was frozen for its size.
    if (!last->uploading && !last->full) {
      last->frozen = false;
      return last;
    }
    base = last->size;
  } else {
    SFS_ASSIGN_OR_RETURN(base, stored_size());
  }
  auto& file = files_[ino];
  if (!file) file = std::make_unique<File>();
  auto layer = std::make_unique<Layer>();
  layer->seq = next_seq_++;
  layer->size = layer->min_size = base;
  auto cleanup_on_error = [&](Status s) REQUIRES(mu_) {
    if (file->layers.empty()) files_.erase(ino);
    RemoveFilesLocked(layer->seq);
    return s;
  };
  int data = ::open(DataPath(layer->seq).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (data < 0) return cleanup_on_error(PosixError("create " + DataPath(layer->seq), errno));
  layer->data = UniqueFd(data);
  int log =
      ::open(LogPath(layer->seq).c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return cleanup_on_error(PosixError("create " + LogPath(layer->seq), errno));
  layer->log = UniqueFd(log);
  uint8_t header[kLogHeaderSize];
  std::memcpy(header, kLogMagic, 4);
  Put32(header + 4, kLogVersion);
  Put64(header + 8, ino);
  Put64(header + 16, base);
  Status s = WriteAll(log, ByteSpan(header, kLogHeaderSize), LogPath(layer->seq));
  if (!s.ok()) return cleanup_on_error(s);
  // The row last: from here on the layer is in the queue, and survives the process.
  s = catalog_->AddUpload(layer->seq, ino);
  if (!s.ok()) return cleanup_on_error(s);
  file->layers.push_back(std::move(layer));
  return file->layers.back().get();
}

Status Staging::AppendLocked(Layer& layer, ByteSpan record) {
  return WriteAll(layer.log.get(), record, LogPath(layer.seq));
}

Result<StagedWrite> Staging::Write(Ino ino, const StoredSize& stored_size, uint64_t offset,
                                   ByteSpan data, int64_t now_ns) {
  if (data.empty()) return StagedWrite::kDone;
  MutexLock lock(&mu_);
  // Before a layer is made: a refused write leaves no trace.
  if (options_.limit != 0 &&
      (data.size() > options_.limit || bytes_ > options_.limit - data.size())) {
    return StagedWrite::kNoRoom;
  }
  SFS_ASSIGN_OR_RETURN(Layer * layer, OpenLayerLocked(ino, stored_size));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(layer->data.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write staging " + DataPath(layer->seq), errno);
    }
    done += static_cast<size_t>(n);
  }
  uint8_t r[kWriteRecordSize];
  r[0] = static_cast<uint8_t>(LogRecord::kWrite);
  Put64(r + 1, offset);
  Put64(r + 9, data.size());
  Put64(r + 17, static_cast<uint64_t>(now_ns));
  SFS_RETURN_IF_ERROR(AppendLocked(*layer, ByteSpan(r, sizeof r)));
  const uint64_t before = layer->written.bytes();
  layer->written.Add(offset, data.size());
  bytes_ += layer->written.bytes() - before;
  layer->size = std::max(layer->size, offset + data.size());
  layer->mtime_ns = now_ns;
  layer->last_write = Clock::now();
  if (options_.freeze_bytes != 0 && layer->written.bytes() > options_.freeze_bytes) {
    layer->frozen = layer->full = true;
    last_freeze_ = layer->last_write;
    return StagedWrite::kFroze;
  }
  return StagedWrite::kDone;
}

Status Staging::Truncate(Ino ino, const StoredSize& stored_size, uint64_t size, int64_t now_ns) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(Layer * layer, OpenLayerLocked(ino, stored_size));
  uint8_t r[kTruncateRecordSize];
  r[0] = static_cast<uint8_t>(LogRecord::kTruncate);
  Put64(r + 1, size);
  Put64(r + 9, static_cast<uint64_t>(now_ns));
  SFS_RETURN_IF_ERROR(AppendLocked(*layer, ByteSpan(r, sizeof r)));
  const uint64_t before = layer->written.bytes();
  layer->written.CutFrom(size);
  bytes_ -= before - layer->written.bytes();
  layer->min_size = std::min(layer->min_size, size);
  layer->size = size;
  layer->mtime_ns = now_ns;
  layer->last_write = Clock::now();
  // Give the disk space back; the bytes past `size` are no longer part of the layer.
  struct stat st;
  if (::fstat(layer->data.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) > size) {
    if (::ftruncate(layer->data.get(), static_cast<off_t>(size)) != 0) {
      log::Warn("staging: cannot shorten {}: {}", DataPath(layer->seq), std::strerror(errno));
    }
  }
  return Status::Ok();
}

Status Staging::SetMtime(Ino ino, const StoredSize& stored_size, int64_t mtime_ns) {
  MutexLock lock(&mu_);
  SFS_ASSIGN_OR_RETURN(Layer * layer, OpenLayerLocked(ino, stored_size));
  uint8_t r[kMtimeRecordSize];
  r[0] = static_cast<uint8_t>(LogRecord::kMtime);
  Put64(r + 1, static_cast<uint64_t>(mtime_ns));
  SFS_RETURN_IF_ERROR(AppendLocked(*layer, ByteSpan(r, sizeof r)));
  layer->mtime_ns = mtime_ns;
  return Status::Ok();
}

Result<bool> Staging::Read(Ino ino, uint64_t offset, MutableByteSpan out,
                           const StoredReader& stored) {
  std::vector<ByteRange> from_store;
  {
    MutexLock lock(&mu_);
    auto it = files_.find(ino);
    if (it == files_.end() || it->second->layers.empty()) return false;
    const auto& layers = it->second->layers;
    // Each part of the range comes from the newest layer that wrote it; a part a layer did not
    // write but that lies past its smallest size is a hole; what no layer decides is stored.
    struct Part {
      ByteRange range;
      size_t level;  // layers.size() .. 1: still to decide below this level
    };
    std::vector<Part> todo{{ByteRange{offset, out.size()}, layers.size()}};
    while (!todo.empty()) {
      Part p = todo.back();
      todo.pop_back();
      if (p.level == 0) {
        from_store.push_back(p.range);
        continue;
      }
      const Layer& l = *layers[p.level - 1];
      uint64_t at = p.range.offset;
      auto fill_gap = [&](uint64_t from, uint64_t to) {
        if (from >= to) return;
        // Below min_size the layers under this one decide; from there on it is a hole.
        uint64_t below = std::min(to, std::max(from, l.min_size));
        if (from < below) todo.push_back({ByteRange{from, below - from}, p.level - 1});
        if (below < to) std::memset(out.data() + (below - offset), 0, to - below);
      };
      for (const ByteRange& w : l.written.Overlap(p.range.offset, p.range.length)) {
        fill_gap(at, w.offset);
        size_t done = 0;
        while (done < w.length) {
          ssize_t n = ::pread(l.data.get(), out.data() + (w.offset - offset) + done,
                              w.length - done, static_cast<off_t>(w.offset + done));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return PosixError("read staging " + DataPath(l.seq), errno);
          if (n == 0) {
            return Status::Corruption("staging " + DataPath(l.seq) + " is shorter than its log");
          }
          done += static_cast<size_t>(n);
        }
        at = w.end();
      }
      fill_gap(at, p.range.end());
    }
  }
  for (const ByteRange& r : from_store) {
    SFS_RETURN_IF_ERROR(stored(r.offset, out.subspan(r.offset - offset, r.length)));
  }
  return true;
}

uint64_t Staging::Freeze(Ino ino) {
  MutexLock lock(&mu_);
  auto it = files_.find(ino);
  if (it == files_.end() || it->second->layers.empty()) return 0;
  Layer& last = *it->second->layers.back();
  if (!last.frozen) {
    last.frozen = true;
    last_freeze_ = Clock::now();
  }
  return last.seq;
}

uint64_t Staging::FreezeAll() {
  MutexLock lock(&mu_);
  uint64_t top = 0;
  for (auto& [ino, file] : files_) {
    for (auto& l : file->layers) {
      if (!l->frozen) {
        l->frozen = true;
        last_freeze_ = Clock::now();
      }
      top = std::max(top, l->seq);
    }
  }
  return top;
}

void Staging::FreezeIdle(Clock::duration idle) {
  MutexLock lock(&mu_);
  const auto now = Clock::now();
  for (auto& [ino, file] : files_) {
    Layer& last = *file->layers.back();
    if (!last.frozen && now - last.last_write >= idle) {
      last.frozen = true;
      last_freeze_ = now;
    }
  }
}

void Staging::RemoveFilesLocked(uint64_t seq) {
  ::unlink(DataPath(seq).c_str());
  ::unlink(LogPath(seq).c_str());
}

Status Staging::Drop(Ino ino) {
  MutexLock lock(&mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return Status::Ok();
  Status result;
  auto& layers = it->second->layers;
  for (auto l = layers.begin(); l != layers.end();) {
    if ((*l)->uploading) {
      (*l)->dropped = true;  // the uploader's commit skips it; Release removes it
      ++l;
      continue;
    }
    Status s = catalog_->RemoveUpload((*l)->seq);
    if (!s.ok() && result.ok()) result = s;
    RemoveFilesLocked((*l)->seq);
    bytes_ -= (*l)->written.bytes();
    l = layers.erase(l);
  }
  if (layers.empty()) files_.erase(it);
  return result;
}

std::vector<UploadJob> Staging::Take(uint64_t max_bytes) {
  MutexLock lock(&mu_);
  std::vector<std::pair<Layer*, Ino>> ready;
  for (auto& [ino, file] : files_) {
    Layer& first = *file->layers.front();
    if (first.frozen && !first.uploading && !first.dropped) ready.emplace_back(&first, ino);
  }
  std::sort(ready.begin(), ready.end(),
            [](const auto& a, const auto& b) { return a.first->seq < b.first->seq; });
  std::vector<UploadJob> jobs;
  uint64_t total = 0;
  for (auto [l, ino] : ready) {
    const uint64_t bytes = l->written.bytes();
    if (!jobs.empty() && total + bytes > max_bytes) break;
    l->uploading = true;
    UploadJob j;
    j.seq = l->seq;
    j.ino = ino;
    j.ranges = l->written.ranges();
    j.min_size = l->min_size;
    j.size = l->size;
    j.mtime_ns = l->mtime_ns;
    j.data_path = DataPath(l->seq);
    j.bytes = bytes;
    total += bytes;
    jobs.push_back(std::move(j));
  }
  return jobs;
}

void Staging::Release(const std::vector<UploadJob>& jobs, bool committed) {
  MutexLock lock(&mu_);
  for (const UploadJob& j : jobs) {
    auto it = files_.find(j.ino);
    if (it == files_.end()) continue;
    auto& layers = it->second->layers;
    auto l = std::find_if(layers.begin(), layers.end(),
                          [&](const auto& layer) { return layer->seq == j.seq; });
    if (l == layers.end()) continue;
    (*l)->uploading = false;
    if (committed || (*l)->dropped) {
      if (!committed) {
        Status s = catalog_->RemoveUpload(j.seq);
        if (!s.ok()) log::Warn("staging: {}", s.ToString());
      }
      RemoveFilesLocked(j.seq);
      bytes_ -= (*l)->written.bytes();
      layers.erase(l);
    }
    if (layers.empty()) files_.erase(it);
  }
}

bool Staging::Wanted(const UploadJob& job) const {
  MutexLock lock(&mu_);
  auto it = files_.find(job.ino);
  if (it == files_.end()) return false;
  for (const auto& l : it->second->layers) {
    if (l->seq == job.seq) return !l->dropped;
  }
  return false;
}

bool Staging::Pending(uint64_t seq) const {
  MutexLock lock(&mu_);
  for (const auto& [ino, file] : files_) {
    if (file->layers.front()->seq <= seq) return true;
  }
  return false;
}

bool Staging::PendingFor(Ino ino, uint64_t seq) const {
  MutexLock lock(&mu_);
  auto it = files_.find(ino);
  return it != files_.end() && it->second->layers.front()->seq <= seq;
}

StagingStats Staging::Stats() const {
  MutexLock lock(&mu_);
  StagingStats s;
  s.bytes = bytes_;
  for (const auto& [ino, file] : files_) {
    ++s.files;
    for (const auto& l : file->layers) {
      ++s.layers;
      const uint64_t b = l->written.bytes();
      if (l->uploading) ++s.uploading;
      if (l->frozen && !l->uploading) {
        ++s.queued;
        s.queued_bytes += b;
      }
    }
  }
  return s;
}

const Staging::Layer* Staging::FindLayerLocked(Ino ino, uint64_t seq) const {
  auto it = files_.find(ino);
  if (it == files_.end()) return nullptr;
  for (const auto& l : it->second->layers) {
    if (l->seq == seq) return l.get();
  }
  return nullptr;
}

Status Staging::SyncToDisk() const {
  std::vector<std::pair<Ino, uint64_t>> layers;
  {
    MutexLock lock(&mu_);
    for (const auto& [ino, file] : files_) {
      for (const auto& l : file->layers) layers.emplace_back(ino, l->seq);
    }
  }
  for (const auto& [ino, seq] : layers) {
    // Duplicates of the layer's descriptors: an fsync can take long, and writes go on; the
    // layer may also be committed and its files removed meanwhile, which does no harm.
    UniqueFd data, log;
    {
      MutexLock lock(&mu_);
      const Layer* l = FindLayerLocked(ino, seq);
      if (l == nullptr) continue;  // committed or dropped since: nothing to keep
      data = UniqueFd(::fcntl(l->data.get(), F_DUPFD_CLOEXEC, 0));
      if (!data.valid()) return PosixError("duplicate the descriptor of " + DataPath(seq), errno);
      log = UniqueFd(::fcntl(l->log.get(), F_DUPFD_CLOEXEC, 0));
      if (!log.valid()) return PosixError("duplicate the descriptor of " + LogPath(seq), errno);
    }
    if (::fsync(data.get()) != 0) return PosixError("fsync " + DataPath(seq), errno);
    if (::fsync(log.get()) != 0) return PosixError("fsync " + LogPath(seq), errno);
  }
  return SyncDir(dir_);
}

Clock::time_point Staging::last_freeze() const {
  MutexLock lock(&mu_);
  return last_freeze_;
}

}  // namespace shardfs::backend
