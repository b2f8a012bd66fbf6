#include "backend/staging.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend/erasure.h"
#include "base/logging.h"

namespace shardfs::backend {

// --- PieceMap ----------------------------------------------------------------------------

void PieceMap::Put(const StagedPiece& piece) {
  if (piece.length == 0) return;
  const uint64_t start = piece.offset, end = piece.end();
  // Cut every piece that overlaps [start, end) around it.
  auto it = pieces_.upper_bound(start);
  if (it != pieces_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > start) it = prev;
  }
  while (it != pieces_.end() && it->first < end) {
    const uint64_t from = it->first;
    const Place place = it->second;
    bytes_ -= place.end - from;
    it = pieces_.erase(it);
    if (from < start) {
      pieces_.emplace(from, Place{start, place.segment, place.segment_offset});
      bytes_ += start - from;
    }
    if (place.end > end) {
      pieces_.emplace(end, Place{place.end, place.segment, place.segment_offset + (end - from)});
      bytes_ += place.end - end;
    }
  }
  pieces_.emplace(start, Place{end, piece.segment, piece.segment_offset});
  bytes_ += piece.length;
}

void PieceMap::CutFrom(uint64_t size) {
  auto it = pieces_.lower_bound(size);
  for (auto gone = it; gone != pieces_.end(); ++gone) bytes_ -= gone->second.end - gone->first;
  pieces_.erase(it, pieces_.end());
  if (!pieces_.empty()) {
    auto last = std::prev(pieces_.end());
    if (last->second.end > size) {
      bytes_ -= last->second.end - size;
      last->second.end = size;
    }
  }
}

std::vector<StagedPiece> PieceMap::pieces() const {
  std::vector<StagedPiece> out;
  out.reserve(pieces_.size());
  for (const auto& [start, p] : pieces_) {
    out.push_back(StagedPiece{start, p.end - start, p.segment, p.segment_offset});
  }
  return out;
}

std::vector<StagedPiece> PieceMap::Overlap(uint64_t offset, uint64_t length) const {
  std::vector<StagedPiece> out;
  const uint64_t end = offset + length;
  auto it = pieces_.upper_bound(offset);
  if (it != pieces_.begin()) --it;
  for (; it != pieces_.end() && it->first < end; ++it) {
    const uint64_t s = std::max(it->first, offset), e = std::min(it->second.end, end);
    if (s < e) {
      out.push_back(
          StagedPiece{s, e - s, it->second.segment, it->second.segment_offset + (s - it->first)});
    }
  }
  return out;
}

// --- Formats -----------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

// File bytes [offset, offset + length).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
};

// Segment files (docs/format.md, "Staging segment"): a header, then records. Record types are
// stored: do not renumber.
constexpr char kSegmentMagic[4] = {'S', 'F', 'S', 'G'};
constexpr uint32_t kSegmentVersion = 2;
constexpr size_t kSegmentHeaderSize = 4 + 4 + 8;
constexpr char kSegmentPrefix[] = "seg-";
enum class RecordType : uint8_t { kLayer = 1, kWrite = 2, kTruncate = 3, kMtime = 4 };
// crc32c (4), type (1), seq (8), then per type:
constexpr size_t kRecordHead = 4 + 1 + 8;
constexpr size_t kLayerRecordSize = kRecordHead + 8 + 8;      // ino, base size
constexpr size_t kWriteRecordHead = kRecordHead + 8 + 8 + 8;  // offset, length, time; bytes
constexpr size_t kTruncateRecordSize = kRecordHead + 8 + 8;   // size, time
constexpr size_t kMtimeRecordSize = kRecordHead + 8;          // mtime
constexpr size_t kLargestHead = kWriteRecordHead;

// The previous format (version 1, docs/format.md, "Staging layer (version 1)"): per layer a
// sparse data file SEQ.data and a log SEQ.log, read at Open and written into a segment.
constexpr char kOldLogMagic[4] = {'S', 'F', 'S', 'L'};
constexpr uint32_t kOldLogVersion = 1;
constexpr size_t kOldLogHeaderSize = 4 + 4 + 8 + 8;
enum class OldRecord : uint8_t { kWrite = 1, kTruncate = 2, kMtime = 3 };
constexpr size_t kOldWriteRecordSize = 1 + 8 + 8 + 8;
constexpr size_t kOldTruncateRecordSize = 1 + 8 + 8;
constexpr size_t kOldMtimeRecordSize = 1 + 8;

// A record's head: its fields after the checksum, which FinishHead fills in.
class Head {
 public:
  Head(RecordType type, uint64_t seq) {
    buf_[4] = static_cast<uint8_t>(type);
    StoreLE64(buf_ + 5, seq);
    size_ = kRecordHead;
  }
  Head& U64(uint64_t v) {
    StoreLE64(buf_ + size_, v);
    size_ += 8;
    return *this;
  }
  // The checksum covers the head's fields and the payload.
  ByteSpan Finish(ByteSpan payload) {
    StoreLE32(buf_, Crc32cExtend(Crc32c(ByteSpan(buf_ + 4, size_ - 4)), payload));
    return ByteSpan(buf_, size_);
  }

 private:
  uint8_t buf_[kLargestHead];
  size_t size_;
};

// One record read back.
struct Record {
  RecordType type{};
  uint64_t seq = 0;
  uint64_t a = 0, b = 0, c = 0;  // the type's fields in order
  ByteSpan payload;              // a write's bytes
  size_t size = 0;               // the whole record's
};

// Parses the record at the start of `in`. False for one that is cut short, unknown or whose
// checksum does not match: the segment is read no further.
bool ParseRecord(ByteSpan in, Record* r) {
  if (in.size() < kRecordHead) return false;
  const uint8_t* p = in.data();
  r->type = static_cast<RecordType>(p[4]);
  r->seq = LoadLE64(p + 5);
  size_t head;
  switch (r->type) {
    case RecordType::kLayer:
      head = kLayerRecordSize;
      break;
    case RecordType::kWrite:
      head = kWriteRecordHead;
      break;
    case RecordType::kTruncate:
      head = kTruncateRecordSize;
      break;
    case RecordType::kMtime:
      head = kMtimeRecordSize;
      break;
    default:
      return false;
  }
  if (in.size() < head) return false;
  uint64_t fields[3] = {0, 0, 0};
  for (size_t i = 0; kRecordHead + 8 * i < head; ++i) fields[i] = LoadLE64(p + kRecordHead + 8 * i);
  r->a = fields[0];
  r->b = fields[1];
  r->c = fields[2];
  size_t payload = 0;
  if (r->type == RecordType::kWrite) {
    if (r->b > in.size() - head) return false;
    payload = static_cast<size_t>(r->b);
  }
  r->payload = in.subspan(head, payload);
  r->size = head + payload;
  const uint32_t crc = Crc32cExtend(Crc32c(in.subspan(4, head - 4)), r->payload);
  return crc == LoadLE32(p);
}

// Writes all of `parts` at `offset` of `fd`, retrying short writes and EINTR.
Status PwritevAll(int fd, std::vector<struct iovec> parts, uint64_t offset,
                  const std::string& path) {
  size_t i = 0;
  while (i < parts.size()) {
    ssize_t n = ::pwritev(fd, parts.data() + i, static_cast<int>(parts.size() - i),
                          static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write staging " + path, errno);
    }
    offset += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (i < parts.size() && left >= parts[i].iov_len) left -= parts[i++].iov_len;
    if (i < parts.size()) {
      parts[i].iov_base = static_cast<uint8_t*>(parts[i].iov_base) + left;
      parts[i].iov_len -= left;
    }
  }
  return Status::Ok();
}

Status PreadAll(int fd, MutableByteSpan out, uint64_t offset, const std::string& path) {
  SFS_ASSIGN_OR_RETURN(size_t n, ReadUpTo(fd, out, "staging " + path, offset));
  if (n < out.size()) return Status::Corruption("staging " + path + " is shorter than its records");
  return Status::Ok();
}

// The number in a name "PREFIX<digits>SUFFIX", if it is one.
std::optional<uint64_t> NumberIn(const std::string& name, std::string_view prefix,
                                 std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  const std::string digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoull(digits);
}

}  // namespace

// --- Layers ------------------------------------------------------------------------------

struct Staging::Layer {
  uint64_t seq = 0;
  Ino ino = 0;
  PieceMap written;
  uint64_t appended = 0;           // bytes of its writes' records (what it counts in the limit)
  std::vector<uint64_t> segments;  // segments with records of it, ascending
  uint64_t min_size = 0;
  uint64_t size = 0;
  std::optional<int64_t> mtime_ns;
  bool frozen = false;
  bool full = false;  // frozen for good (freeze_bytes, a closed segment): takes no more writes
  bool uploading = false;
  bool dropped = false;  // the file went while the uploader held the layer
  Clock::time_point last_write{};

  void ApplyWrite(uint64_t offset, uint64_t length, int64_t time, Spot data) {
    written.Put(StagedPiece{offset, length, data.segment, data.offset});
    appended += length;
    size = std::max(size, offset + length);
    mtime_ns = time;
  }
  void ApplyTruncate(uint64_t to, int64_t time) {
    written.CutFrom(to);
    min_size = std::min(min_size, to);
    size = to;
    mtime_ns = time;
  }
};

struct Staging::File {
  std::vector<std::unique_ptr<Layer>> layers;  // oldest first
};

struct Staging::Segment {
  uint64_t number = 0;
  UniqueFd fd;
  uint64_t size = 0;  // its header and records: where the next record goes
  size_t layers = 0;  // layers not yet committed with records in it
};

// A layer of the previous format, replayed from its log.
struct Staging::OldLayer {
  Ino ino = 0;
  UniqueFd data;
  uint64_t base = 0;
  PieceMap written;  // each piece "in segment 0" at its file offset: the data file's bytes
  uint64_t min_size = 0;
  uint64_t size = 0;
  std::optional<int64_t> mtime_ns;
};

std::string Staging::SegmentPath(uint64_t segment) const {
  return dir_ + "/" + kSegmentPrefix + std::to_string(segment);
}
std::string Staging::OldDataPath(uint64_t seq) const {
  return dir_ + "/" + std::to_string(seq) + ".data";
}
std::string Staging::OldLogPath(uint64_t seq) const {
  return dir_ + "/" + std::to_string(seq) + ".log";
}

Staging::Staging(std::string dir, Catalog* catalog, StagingOptions options)
    : dir_(std::move(dir)), catalog_(catalog), options_(options) {}
Staging::~Staging() = default;

Result<std::unique_ptr<Staging>> Staging::Open(const std::string& dir, Catalog* catalog,
                                               StagingOptions options) {
  if (options.segment_bytes == 0) return Status::InvalidArgument("segment_bytes must be > 0");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return PosixError("create staging folder " + dir, errno);
  }
  std::unique_ptr<Staging> s(new Staging(dir, catalog, options));
  SFS_RETURN_IF_ERROR(s->Recover());
  return s;
}

// --- Counters ----------------------------------------------------------------------------

void Staging::UncountLocked(const Layer& l) {
  bytes_ -= l.appended;
  if (l.uploading) {
    --uploading_;
  } else if (l.frozen) {
    --queued_;
    queued_bytes_ -= l.written.bytes();
  } else {
    open_.erase(l.ino);
  }
}

void Staging::CountLocked(const Layer& l) {
  bytes_ += l.appended;
  if (l.uploading) {
    ++uploading_;
  } else if (l.frozen) {
    ++queued_;
    queued_bytes_ += l.written.bytes();
  } else {
    open_.insert(l.ino);
  }
}

void Staging::FreezeLocked(Layer& l, bool full) {
  if (l.frozen && (l.full || !full)) return;
  UncountLocked(l);
  l.frozen = true;
  l.full = l.full || full;
  CountLocked(l);
  last_freeze_ = Clock::now();
}

// --- Segments ----------------------------------------------------------------------------

Result<Staging::Spot> Staging::AppendLocked(ByteSpan head, ByteSpan payload) {
  if (active_ == nullptr) {
    const uint64_t number = next_segment_++;
    const std::string path = SegmentPath(number);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return PosixError("create staging " + path, errno);
    uint8_t header[kSegmentHeaderSize];
    std::memcpy(header, kSegmentMagic, 4);
    StoreLE32(header + 4, kSegmentVersion);
    StoreLE64(header + 8, number);
    struct iovec v = {header, sizeof header};
    if (Status s = PwritevAll(fd.get(), {v}, 0, path); !s.ok()) {
      ::unlink(path.c_str());
      return s;
    }
    auto seg = std::make_unique<Segment>();
    seg->number = number;
    seg->fd = std::move(fd);
    seg->size = kSegmentHeaderSize;
    active_ = seg.get();
    segments_.emplace(number, std::move(seg));
  }
  Segment& seg = *active_;
  std::vector<struct iovec> parts;
  parts.push_back({const_cast<uint8_t*>(head.data()), head.size()});
  if (!payload.empty()) parts.push_back({const_cast<uint8_t*>(payload.data()), payload.size()});
  Status s = PwritevAll(seg.fd.get(), std::move(parts), seg.size, SegmentPath(seg.number));
  if (!s.ok()) {
    // What part of the record reached the file is garbage the next record overwrites; cut it
    // off now so a replay stops at the last good record either way.
    if (::ftruncate(seg.fd.get(), static_cast<off_t>(seg.size)) != 0) {
      log::Warn("staging: cannot cut {} back: {}", SegmentPath(seg.number), std::strerror(errno));
    }
    return s;
  }
  const Spot at{seg.number, seg.size};
  seg.size += head.size() + payload.size();
  return at;
}

Result<Staging::Spot> Staging::AppendForLocked(Layer& layer, ByteSpan head, ByteSpan payload) {
  SFS_ASSIGN_OR_RETURN(Spot at, AppendLocked(head, payload));
  if (layer.segments.empty() || layer.segments.back() != at.segment) {
    layer.segments.push_back(at.segment);
    ++segments_.at(at.segment)->layers;
  }
  return at;
}

bool Staging::RotateIfFullLocked() {
  if (active_ == nullptr || active_->size < options_.segment_bytes) return false;
  Segment* closed = active_;
  active_ = nullptr;
  if (closed->layers == 0) {
    ReleaseSegmentLocked(closed->number);
    return false;
  }
  // A layer that went on taking writes would keep this segment, and with it the records of
  // every layer committed since, on disk: from now on its file's writes go to a new layer.
  bool froze_open = false;
  for (auto& [seq, l] : layers_) {
    if (l->uploading) continue;
    froze_open = froze_open || !l->frozen;
    FreezeLocked(*l, /*full=*/true);
  }
  return froze_open;
}

void Staging::ReleaseSegmentLocked(uint64_t number) {
  auto it = segments_.find(number);
  if (it == segments_.end() || it->second->layers != 0) return;
  Segment& seg = *it->second;
  if (&seg == active_) {
    // Emptied, not removed: the next records go to the same file (no inode churn).
    if (seg.size > kSegmentHeaderSize) {
      if (::ftruncate(seg.fd.get(), static_cast<off_t>(kSegmentHeaderSize)) == 0) {
        seg.size = kSegmentHeaderSize;
      } else {
        log::Warn("staging: cannot empty {}: {}", SegmentPath(number), std::strerror(errno));
      }
    }
    return;
  }
  if (::unlink(SegmentPath(number).c_str()) != 0 && errno != ENOENT) {
    log::Warn("staging: cannot remove {}: {}", SegmentPath(number), std::strerror(errno));
  }
  segments_.erase(it);
}

// --- Recovery ----------------------------------------------------------------------------

Status Staging::Recover() {
  SFS_ASSIGN_OR_RETURN(auto row_list, catalog_->Uploads());
  std::map<uint64_t, Ino> rows(row_list.begin(), row_list.end());
  MutexLock lock(&mu_);
  for (const auto& [seq, ino] : rows) next_seq_ = std::max(next_seq_, seq + 1);

  std::vector<uint64_t> segment_numbers;
  std::set<uint64_t> old_files;  // seqs with a file of the previous format
  {
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) return PosixError("list staging folder " + dir_, errno);
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (auto n = NumberIn(name, kSegmentPrefix, "")) {
        segment_numbers.push_back(*n);
      } else if (auto seq = NumberIn(name, "", ".log")) {
        old_files.insert(*seq);
      } else if (auto seq2 = NumberIn(name, "", ".data")) {
        old_files.insert(*seq2);
      }
    }
    ::closedir(d);
  }
  std::sort(segment_numbers.begin(), segment_numbers.end());
  if (!segment_numbers.empty()) next_segment_ = segment_numbers.back() + 1;

  // Layers of the previous format first: where one has both its files and a row, they are
  // its truth (records of it in a segment come from a conversion a crash cut short).
  std::map<uint64_t, OldLayer> old;
  for (uint64_t seq : old_files) {
    next_seq_ = std::max(next_seq_, seq + 1);
    auto row = rows.find(seq);
    if (row == rows.end()) continue;
    SFS_ASSIGN_OR_RETURN(std::optional<OldLayer> layer, ReadOldLayer(seq, row->second));
    if (layer) old.emplace(seq, std::move(*layer));
  }

  for (uint64_t number : segment_numbers) {
    SFS_RETURN_IF_ERROR(ReplaySegmentLocked(number, rows, old));
  }
  for (auto& [seq, l] : layers_) {
    l->frozen = l->full = true;
    CountLocked(*l);
  }

  for (auto& [seq, layer] : old) SFS_RETURN_IF_ERROR(ConvertOldLayerLocked(seq, layer));
  if (!old.empty()) {
    // The converted layers must be on disk before their old files go.
    if (::fsync(active_->fd.get()) != 0) {
      return PosixError("fsync " + SegmentPath(active_->number), errno);
    }
    SFS_RETURN_IF_ERROR(SyncDir(dir_));
    log::Info("staging: {} layer(s) of the previous format moved into segment {}", old.size(),
              active_->number);
  }
  for (uint64_t seq : old_files) {
    ::unlink(OldDataPath(seq).c_str());
    ::unlink(OldLogPath(seq).c_str());
  }

  // Rows whose layer is nowhere: the layer never got its first record (a crash between the
  // record and the row is the other order, so this is a folder changed from outside).
  for (const auto& [seq, ino] : rows) {
    if (layers_.count(seq)) continue;
    log::Error(
        "staging: layer {} of inode {} is in no segment (nor in readable files of the "
        "previous format); its bytes are lost",
        seq, ino);
    SFS_RETURN_IF_ERROR(catalog_->RemoveUpload(seq));
  }
  // Segments no layer needs.
  std::vector<uint64_t> unused;
  for (const auto& [number, seg] : segments_) {
    if (seg->layers == 0) unused.push_back(number);
  }
  for (uint64_t number : unused) ReleaseSegmentLocked(number);
  if (!layers_.empty()) {
    log::Info("staging: {} layer(s) waiting from before; they will be uploaded", layers_.size());
  }
  return Status::Ok();
}

void Staging::NoteSegmentLocked(Layer& layer, uint64_t segment) {
  if (!layer.segments.empty() && layer.segments.back() == segment) return;
  layer.segments.push_back(segment);
  ++segments_.at(segment)->layers;
}

void Staging::InsertLayerLocked(std::unique_ptr<Layer> layer) {
  Layer* raw = layer.get();
  auto& file = files_[raw->ino];
  if (!file) file = std::make_unique<File>();
  // In seq order, which is the order the file's layers were made in.
  auto at = std::upper_bound(file->layers.begin(), file->layers.end(), raw->seq,
                             [](uint64_t seq, const auto& l) { return seq < l->seq; });
  file->layers.insert(at, std::move(layer));
  layers_[raw->seq] = raw;
}

Status Staging::ReplaySegmentLocked(uint64_t number, const std::map<uint64_t, Ino>& rows,
                                    const std::map<uint64_t, OldLayer>& old) {
  const std::string path = SegmentPath(number);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return PosixError("open staging " + path, errno);
  SFS_ASSIGN_OR_RETURN(auto map, MappedFile::Open(path));
  auto seg = std::make_unique<Segment>();
  seg->number = number;
  seg->fd = std::move(fd);
  seg->size = map->bytes().size();
  segments_.emplace(number, std::move(seg));
  const ByteSpan bytes = map->bytes();
  if (bytes.size() < kSegmentHeaderSize || std::memcmp(bytes.data(), kSegmentMagic, 4) != 0) {
    // A crash right after the file was made leaves it without its header; anything else is not
    // a segment. Either way it holds nothing, and goes.
    if (!bytes.empty()) log::Error("staging: {} is not a segment; it is ignored", path);
    return Status::Ok();
  }
  if (LoadLE32(bytes.data() + 4) != kSegmentVersion) {
    return Status::NotSupported("staging " + path + " has format version " +
                                std::to_string(LoadLE32(bytes.data() + 4)) + " (this build reads " +
                                std::to_string(kSegmentVersion) + ")");
  }
  size_t at = kSegmentHeaderSize;
  while (at < bytes.size()) {
    Record r;
    if (!ParseRecord(bytes.subspan(at), &r)) {
      // A crash while the record was appended: its change was never accepted. Records past it
      // cannot be told from garbage.
      log::Warn(
          "staging: {} ends in a cut or bad record at offset {}; its last {} bytes are ignored",
          path, at, bytes.size() - at);
      break;
    }
    next_seq_ = std::max(next_seq_, r.seq + 1);
    if (r.type == RecordType::kLayer) {
      auto row = rows.find(r.seq);
      // No row: committed or dropped. A layer of the previous format: its old files rule.
      if (row != rows.end() && !old.count(r.seq) && !layers_.count(r.seq)) {
        if (row->second != r.a) {
          log::Error("staging: layer {} is of inode {} in {} but of inode {} in the upload queue",
                     r.seq, r.a, path, row->second);
        } else {
          auto layer = std::make_unique<Layer>();
          layer->seq = r.seq;
          layer->ino = r.a;
          layer->size = layer->min_size = r.b;
          NoteSegmentLocked(*layer, number);
          InsertLayerLocked(std::move(layer));
        }
      }
    } else if (Layer* l = FindLayerLocked(r.seq)) {
      NoteSegmentLocked(*l, number);
      if (r.type == RecordType::kWrite) {
        l->ApplyWrite(r.a, r.b, static_cast<int64_t>(r.c), Spot{number, at + kWriteRecordHead});
      } else if (r.type == RecordType::kTruncate) {
        l->ApplyTruncate(r.a, static_cast<int64_t>(r.b));
      } else {
        l->mtime_ns = static_cast<int64_t>(r.a);
      }
    }
    at += r.size;
  }
  return Status::Ok();
}

Result<std::optional<Staging::OldLayer>> Staging::ReadOldLayer(uint64_t seq, Ino ino) {
  OldLayer layer;
  layer.ino = ino;
  layer.data = UniqueFd(::open(OldDataPath(seq).c_str(), O_RDONLY | O_CLOEXEC));
  if (!layer.data.valid()) return std::optional<OldLayer>();
  auto read = ReadFile(OldLogPath(seq), size_t{1} << 30);
  if (!read.ok()) {
    if (read.status().code() == Code::kNotFound) return std::optional<OldLayer>();
    return read.status();
  }
  const Bytes& text = *read;
  if (text.size() < kOldLogHeaderSize || std::memcmp(text.data(), kOldLogMagic, 4) != 0 ||
      LoadLE64(text.data() + 8) != ino) {
    return std::optional<OldLayer>();
  }
  if (LoadLE32(text.data() + 4) != kOldLogVersion) {
    return Status::NotSupported("staging layer " + OldLogPath(seq) + " has a newer format");
  }
  layer.base = layer.size = layer.min_size = LoadLE64(text.data() + 16);
  // A torn last record (a crash mid-append) is ignored: its write had not been accepted.
  size_t at = kOldLogHeaderSize;
  while (at < text.size()) {
    const uint8_t* r = text.data() + at;
    auto type = static_cast<OldRecord>(r[0]);
    if (type == OldRecord::kWrite && text.size() - at >= kOldWriteRecordSize) {
      uint64_t off = LoadLE64(r + 1), len = LoadLE64(r + 9);
      layer.written.Put(StagedPiece{off, len, 0, off});
      layer.size = std::max(layer.size, off + len);
      layer.mtime_ns = static_cast<int64_t>(LoadLE64(r + 17));
      at += kOldWriteRecordSize;
    } else if (type == OldRecord::kTruncate && text.size() - at >= kOldTruncateRecordSize) {
      uint64_t size = LoadLE64(r + 1);
      layer.written.CutFrom(size);
      layer.min_size = std::min(layer.min_size, size);
      layer.size = size;
      layer.mtime_ns = static_cast<int64_t>(LoadLE64(r + 9));
      at += kOldTruncateRecordSize;
    } else if (type == OldRecord::kMtime && text.size() - at >= kOldMtimeRecordSize) {
      layer.mtime_ns = static_cast<int64_t>(LoadLE64(r + 1));
      at += kOldMtimeRecordSize;
    } else if (type == OldRecord::kWrite || type == OldRecord::kTruncate ||
               type == OldRecord::kMtime) {
      break;
    } else {
      return Status::Corruption("staging layer " + OldLogPath(seq) + " has an unknown record");
    }
  }
  return std::optional<OldLayer>(std::move(layer));
}

Status Staging::ConvertOldLayerLocked(uint64_t seq, OldLayer& old) {
  // The same records a layer with this state would have had, so it replays to the same state.
  auto layer = std::make_unique<Layer>();
  layer->seq = seq;
  layer->ino = old.ino;
  layer->size = layer->min_size = old.base;
  const int64_t time = old.mtime_ns.value_or(0);
  Head start(RecordType::kLayer, seq);
  start.U64(old.ino).U64(old.base);
  SFS_RETURN_IF_ERROR(AppendForLocked(*layer, start.Finish({}), {}).status());
  auto truncate = [&](uint64_t to) REQUIRES(mu_) -> Status {
    Head h(RecordType::kTruncate, seq);
    h.U64(to).U64(static_cast<uint64_t>(time));
    SFS_RETURN_IF_ERROR(AppendForLocked(*layer, h.Finish({}), {}).status());
    layer->ApplyTruncate(to, time);
    return Status::Ok();
  };
  if (old.min_size < old.base) SFS_RETURN_IF_ERROR(truncate(old.min_size));
  constexpr uint64_t kPart = uint64_t{4} << 20;
  Bytes buf;
  bool short_file = false;
  for (const StagedPiece& p : old.written.pieces()) {
    for (uint64_t off = p.offset; off < p.end(); off += buf.size()) {
      buf.assign(static_cast<size_t>(std::min(kPart, p.end() - off)), 0);
      SFS_ASSIGN_OR_RETURN(size_t n,
                           ReadUpTo(old.data.get(), buf, "staging " + OldDataPath(seq), off));
      if (n < buf.size()) short_file = true;  // what is missing stays zeros
      Head h(RecordType::kWrite, seq);
      h.U64(off).U64(buf.size()).U64(static_cast<uint64_t>(time));
      SFS_ASSIGN_OR_RETURN(Spot at, AppendForLocked(*layer, h.Finish(buf), buf));
      layer->ApplyWrite(off, buf.size(), time, Spot{at.segment, at.offset + kWriteRecordHead});
    }
  }
  if (short_file) {
    log::Error("staging: {} is shorter than its log says; the missing bytes are zeros",
               OldDataPath(seq));
  }
  if (layer->size != old.size) SFS_RETURN_IF_ERROR(truncate(old.size));
  if (old.mtime_ns) {
    Head h(RecordType::kMtime, seq);
    h.U64(static_cast<uint64_t>(*old.mtime_ns));
    SFS_RETURN_IF_ERROR(AppendForLocked(*layer, h.Finish({}), {}).status());
    layer->mtime_ns = old.mtime_ns;
  }
  layer->frozen = layer->full = true;
  Layer* raw = layer.get();
  InsertLayerLocked(std::move(layer));
  CountLocked(*raw);
  return Status::Ok();
}

// --- Changes -----------------------------------------------------------------------------

Staging::Layer* Staging::FindLayerLocked(uint64_t seq) const {
  auto it = layers_.find(seq);
  return it == layers_.end() ? nullptr : it->second;
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
    // unless it was frozen for good.
    if (!last->uploading && !last->full) {
      if (last->frozen) {
        UncountLocked(*last);
        last->frozen = false;
        CountLocked(*last);
      }
      return last;
    }
    base = last->size;
  } else {
    SFS_ASSIGN_OR_RETURN(base, stored_size());
  }
  auto layer = std::make_unique<Layer>();
  layer->seq = next_seq_++;
  layer->ino = ino;
  layer->size = layer->min_size = base;
  Head h(RecordType::kLayer, layer->seq);
  h.U64(ino).U64(base);
  SFS_RETURN_IF_ERROR(AppendForLocked(*layer, h.Finish({}), {}).status());
  // The row after the record: from here on the layer is in the queue, and survives the
  // process (a record without a row is ignored).
  if (Status s = catalog_->AddUpload(layer->seq, ino); !s.ok()) {
    for (uint64_t seg : layer->segments) {
      --segments_.at(seg)->layers;
      ReleaseSegmentLocked(seg);
    }
    return s;
  }
  layer->last_write = Clock::now();
  Layer* raw = layer.get();
  InsertLayerLocked(std::move(layer));
  CountLocked(*raw);
  return raw;
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
  const bool rotated = RotateIfFullLocked();
  SFS_ASSIGN_OR_RETURN(Layer * layer, OpenLayerLocked(ino, stored_size));
  Head h(RecordType::kWrite, layer->seq);
  h.U64(offset).U64(data.size()).U64(static_cast<uint64_t>(now_ns));
  SFS_ASSIGN_OR_RETURN(Spot at, AppendForLocked(*layer, h.Finish(data), data));
  UncountLocked(*layer);
  layer->ApplyWrite(offset, data.size(), now_ns, Spot{at.segment, at.offset + kWriteRecordHead});
  layer->last_write = Clock::now();
  const bool full = options_.freeze_bytes != 0 && layer->written.bytes() > options_.freeze_bytes;
  if (full) {
    layer->frozen = layer->full = true;
    last_freeze_ = layer->last_write;
  }
  CountLocked(*layer);
  return full || rotated ? StagedWrite::kFroze : StagedWrite::kDone;
}

Status Staging::Truncate(Ino ino, const StoredSize& stored_size, uint64_t size, int64_t now_ns) {
  MutexLock lock(&mu_);
  RotateIfFullLocked();
  SFS_ASSIGN_OR_RETURN(Layer * layer, OpenLayerLocked(ino, stored_size));
  Head h(RecordType::kTruncate, layer->seq);
  h.U64(size).U64(static_cast<uint64_t>(now_ns));
  SFS_RETURN_IF_ERROR(AppendForLocked(*layer, h.Finish({}), {}).status());
  UncountLocked(*layer);
  layer->ApplyTruncate(size, now_ns);
  layer->last_write = Clock::now();
  CountLocked(*layer);
  return Status::Ok();
}

Status Staging::SetMtime(Ino ino, const StoredSize& stored_size, int64_t mtime_ns) {
  MutexLock lock(&mu_);
  RotateIfFullLocked();
  SFS_ASSIGN_OR_RETURN(Layer * layer, OpenLayerLocked(ino, stored_size));
  Head h(RecordType::kMtime, layer->seq);
  h.U64(static_cast<uint64_t>(mtime_ns));
  SFS_RETURN_IF_ERROR(AppendForLocked(*layer, h.Finish({}), {}).status());
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
      for (const StagedPiece& w : l.written.Overlap(p.range.offset, p.range.length)) {
        fill_gap(at, w.offset);
        SFS_RETURN_IF_ERROR(PreadAll(segments_.at(w.segment)->fd.get(),
                                     out.subspan(w.offset - offset, w.length), w.segment_offset,
                                     SegmentPath(w.segment)));
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
  FreezeLocked(last, /*full=*/false);
  return last.seq;
}

uint64_t Staging::FreezeAll() {
  MutexLock lock(&mu_);
  const std::vector<Ino> open(open_.begin(), open_.end());
  for (Ino ino : open) FreezeLocked(*files_.at(ino)->layers.back(), /*full=*/false);
  return layers_.empty() ? 0 : layers_.rbegin()->first;
}

void Staging::FreezeIdle(Clock::duration idle) {
  MutexLock lock(&mu_);
  const auto now = Clock::now();
  std::vector<Layer*> idle_layers;
  for (Ino ino : open_) {
    Layer* last = files_.at(ino)->layers.back().get();
    if (now - last->last_write >= idle) idle_layers.push_back(last);
  }
  for (Layer* l : idle_layers) FreezeLocked(*l, /*full=*/false);
}

void Staging::RemoveLayerLocked(uint64_t seq) {
  auto lit = layers_.find(seq);
  if (lit == layers_.end()) return;
  Layer* l = lit->second;
  UncountLocked(*l);
  layers_.erase(lit);
  const std::vector<uint64_t> segments = l->segments;
  auto fit = files_.find(l->ino);
  auto& layers = fit->second->layers;
  layers.erase(std::find_if(layers.begin(), layers.end(),
                            [&](const auto& layer) { return layer.get() == l; }));
  if (layers.empty()) files_.erase(fit);
  for (uint64_t number : segments) {
    --segments_.at(number)->layers;
    ReleaseSegmentLocked(number);
  }
}

Status Staging::Drop(Ino ino) {
  MutexLock lock(&mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return Status::Ok();
  std::vector<uint64_t> gone;
  for (const auto& l : it->second->layers) {
    if (l->uploading) {
      l->dropped = true;  // the uploader's commit skips it; Release removes it
    } else {
      gone.push_back(l->seq);
    }
  }
  Status result;
  for (uint64_t seq : gone) {
    Status s = catalog_->RemoveUpload(seq);
    if (!s.ok() && result.ok()) result = s;
    RemoveLayerLocked(seq);
  }
  return result;
}

std::vector<UploadJob> Staging::Take(uint64_t max_bytes) {
  MutexLock lock(&mu_);
  std::vector<UploadJob> jobs;
  uint64_t total = 0;
  // In seq order; only the oldest layer of a file.
  for (auto& [seq, l] : layers_) {
    if (!l->frozen || l->uploading || l->dropped) continue;
    if (files_.at(l->ino)->layers.front().get() != l) continue;
    const uint64_t bytes = l->written.bytes();
    if (!jobs.empty() && total + bytes > max_bytes) break;
    UncountLocked(*l);
    l->uploading = true;
    CountLocked(*l);
    UploadJob j;
    j.seq = l->seq;
    j.ino = l->ino;
    j.pieces = l->written.pieces();
    j.min_size = l->min_size;
    j.size = l->size;
    j.mtime_ns = l->mtime_ns;
    j.bytes = bytes;
    total += bytes;
    jobs.push_back(std::move(j));
  }
  return jobs;
}

void Staging::Release(const std::vector<UploadJob>& jobs, bool committed) {
  MutexLock lock(&mu_);
  for (const UploadJob& j : jobs) {
    Layer* l = FindLayerLocked(j.seq);
    if (l == nullptr || l->ino != j.ino || !l->uploading) continue;
    if (committed || l->dropped) {
      if (!committed) {
        Status s = catalog_->RemoveUpload(j.seq);
        if (!s.ok()) log::Warn("staging: {}", s.ToString());
      }
      RemoveLayerLocked(j.seq);
    } else {
      UncountLocked(*l);
      l->uploading = false;
      CountLocked(*l);
    }
  }
}

bool Staging::Wanted(const UploadJob& job) const {
  MutexLock lock(&mu_);
  const Layer* l = FindLayerLocked(job.seq);
  return l != nullptr && l->ino == job.ino && !l->dropped;
}

bool Staging::Pending(uint64_t seq) const {
  MutexLock lock(&mu_);
  return !layers_.empty() && layers_.begin()->first <= seq;
}

bool Staging::PendingFor(Ino ino, uint64_t seq) const {
  MutexLock lock(&mu_);
  auto it = files_.find(ino);
  return it != files_.end() && it->second->layers.front()->seq <= seq;
}

StagingStats Staging::Stats() const {
  MutexLock lock(&mu_);
  StagingStats s;
  s.files = files_.size();
  s.layers = layers_.size();
  s.queued = queued_;
  s.uploading = uploading_;
  s.bytes = bytes_;
  s.queued_bytes = queued_bytes_;
  s.segments = segments_.size();
  return s;
}

Status Staging::SyncToDisk() const {
  std::vector<std::pair<uint64_t, UniqueFd>> segments;
  {
    MutexLock lock(&mu_);
    for (const auto& [number, seg] : segments_) {
      if (seg->layers == 0) continue;
      // Duplicates: an fsync can take long, and writes go on; the segment may also be removed
      // meanwhile, which does no harm.
      UniqueFd fd(::fcntl(seg->fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!fd.valid()) {
        return PosixError("duplicate the descriptor of " + SegmentPath(number), errno);
      }
      segments.emplace_back(number, std::move(fd));
    }
  }
  for (const auto& [number, fd] : segments) {
    if (::fsync(fd.get()) != 0) return PosixError("fsync " + SegmentPath(number), errno);
  }
  return SyncDir(dir_);
}

Clock::time_point Staging::last_freeze() const {
  MutexLock lock(&mu_);
  return last_freeze_;
}

}  // namespace shardfs::backend
