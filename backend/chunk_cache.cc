#include "backend/chunk_cache.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/logging.h"

namespace shardfs::backend {

namespace {

// File layout (docs/format.md, "Chunk cache"): magic, version, 3 zero bytes, le64 plaintext
// size, then the plaintext.
constexpr uint8_t kMagic[4] = {'S', 'F', 'C', 'C'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 16;
constexpr std::string_view kTmpMarker = ".tmp.";

// Temporary names differ between threads and processes.
std::atomic<uint64_t> tmp_counter{0};

}  // namespace

ChunkCache::ChunkCache(ChunkCacheOptions options, const crypto::SecretKey& chunk_id_key)
    : options_(std::move(options)), hasher_(chunk_id_key) {}

Result<std::unique_ptr<ChunkCache>> ChunkCache::Open(ChunkCacheOptions options,
                                                     const crypto::SecretKey& chunk_id_key) {
  if (options.dir.empty()) return Status::InvalidArgument("the chunk cache needs a folder");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return PosixError("create " + options.dir, ec.value());
  if (::chmod(options.dir.c_str(), 0700) != 0) return PosixError("chmod " + options.dir, errno);
  std::unique_ptr<ChunkCache> c(new ChunkCache(std::move(options), chunk_id_key));
  SFS_RETURN_IF_ERROR(c->Scan());
  return c;
}

std::string ChunkCache::PathOf(const ChunkId& id) const {
  std::string hex = id.ToHex();
  return options_.dir + "/" + hex.substr(0, 2) + "/" + hex;
}

Status ChunkCache::Scan() {
  struct Found {
    ChunkId id;
    uint64_t size;
    std::filesystem::file_time_type used;
  };
  std::vector<Found> found;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(options_.dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    // A temporary file is a write that did not finish: never a chunk.
    if (name.find(kTmpMarker) != std::string::npos) {
      std::filesystem::remove(it->path(), ec);
      continue;
    }
    auto id = ChunkId::FromHex(name);
    if (!id.ok() || it->path() != std::filesystem::path(PathOf(*id))) continue;
    found.push_back({*id, it->file_size(ec), it->last_write_time(ec)});
  }
  if (ec) return PosixError("scan " + options_.dir, ec.value());
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.used < b.used; });
  std::vector<std::string> evicted;
  {
    MutexLock lock(&mu_);
    for (const Found& f : found) IndexLocked(f.id, f.size, &evicted);  // oldest first
  }
  for (const std::string& path : evicted) ::unlink(path.c_str());
  return Status::Ok();
}

Result<ChunkCache::Plain> ChunkCache::ReadFile(const ChunkId& id, size_t size) const {
  const std::string path = PathOf(id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return PosixError("open " + path, errno);
  uint8_t header[kHeaderSize];
  auto plain = std::make_shared<Bytes>(size + 1);  // one byte more, to see a longer file
  // The header, then the chunk's bytes straight into their buffer.
  SFS_ASSIGN_OR_RETURN(size_t head, ReadUpTo(fd.get(), MutableByteSpan(header, kHeaderSize), path));
  size_t body = 0;
  if (head == kHeaderSize) {
    SFS_ASSIGN_OR_RETURN(body, ReadUpTo(fd.get(), *plain, path));
  }
  const size_t got = head + body;
  if (got != kHeaderSize + size || std::memcmp(header, kMagic, 4) != 0 || header[4] != kVersion ||
      header[5] != 0 || header[6] != 0 || header[7] != 0 || LoadLE64(header + 8) != size) {
    return Status::Corruption(path + " is not a cached chunk of " + std::to_string(size) +
                              " bytes");
  }
  plain->resize(size);
  if (hasher_.Compute(*plain) != id)
    return Status::Corruption(path + " is not chunk " + id.ToHex());
  // The file's modification time is its last use, for the order of eviction after a restart.
  ::futimens(fd.get(), nullptr);
  return Plain(std::move(plain));
}

Result<ChunkCache::Plain> ChunkCache::Get(const ChunkId& id, size_t size) {
  {
    MutexLock lock(&mu_);
    auto m = memory_.find(id);
    if (m != memory_.end() && m->second.plain->size() == size) {
      memory_lru_.splice(memory_lru_.begin(), memory_lru_, m->second.lru);
      TouchLocked(id);
      ++stats_.hits;
      ++stats_.memory_hits;
      return m->second.plain;
    }
    if (disk_.count(id) == 0) {
      ++stats_.misses;
      return Status::NotFound("chunk " + id.ToHex() + " is not cached");
    }
    TouchLocked(id);
  }
  auto read = ReadFile(id, size);
  MutexLock lock(&mu_);
  if (read.ok()) {
    ++stats_.hits;
    RememberLocked(id, *read);
    return read;
  }
  ++stats_.misses;
  if (read.status().code() != Code::kNotFound) {
    // Damaged (or unreadable): never served, and gone so that the chunk is fetched again.
    log::Warn("chunk cache: dropping {}: {}", PathOf(id), read.status().ToString());
    ++stats_.damaged;
    ::unlink(PathOf(id).c_str());
  }
  DropLocked(id);
  return Status::NotFound("chunk " + id.ToHex() + " is not cached");
}

Status ChunkCache::Put(const ChunkId& id, Plain plain, bool on_disk) {
  if (!on_disk) {
    MutexLock lock(&mu_);
    RememberLocked(id, std::move(plain));
    return Status::Ok();
  }
  const uint64_t size = kHeaderSize + plain->size();
  if (size > options_.disk_bytes) return Status::Ok();
  const std::string path = PathOf(id);
  const std::string folder = path.substr(0, path.rfind('/'));
  if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) {
    return PosixError("mkdir " + folder, errno);
  }
  const std::string tmp = path + std::string(kTmpMarker) + std::to_string(::getpid()) + "." +
                          std::to_string(tmp_counter.fetch_add(1));
  Status s;
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return PosixError("create " + tmp, errno);
    uint8_t header[kHeaderSize] = {};
    std::memcpy(header, kMagic, 4);
    header[4] = kVersion;
    StoreLE64(header + 8, plain->size());
    s = WriteAll(fd.get(), ByteSpan(header, kHeaderSize), tmp);
    if (s.ok()) s = WriteAll(fd.get(), *plain, tmp);
    if (s.ok() && fd.Close() != 0) s = PosixError("close " + tmp, errno);
  }
  // No fsync: a file torn by a crash fails its check on read and is dropped.
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = PosixError("rename " + tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  std::vector<std::string> evicted;
  {
    MutexLock lock(&mu_);
    IndexLocked(id, size, &evicted);
    RememberLocked(id, std::move(plain));
  }
  for (const std::string& p : evicted) ::unlink(p.c_str());
  return Status::Ok();
}

bool ChunkCache::Contains(const ChunkId& id) const {
  MutexLock lock(&mu_);
  return disk_.count(id) != 0 || memory_.count(id) != 0;
}

ChunkCacheStats ChunkCache::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void ChunkCache::TouchLocked(const ChunkId& id) {
  auto it = disk_.find(id);
  if (it != disk_.end()) disk_lru_.splice(disk_lru_.begin(), disk_lru_, it->second.lru);
}

void ChunkCache::IndexLocked(const ChunkId& id, uint64_t size, std::vector<std::string>* evicted) {
  auto it = disk_.find(id);
  if (it != disk_.end()) {
    stats_.disk_bytes -= it->second.size;
    it->second.size = size;
    disk_lru_.splice(disk_lru_.begin(), disk_lru_, it->second.lru);
  } else {
    disk_lru_.push_front(id);
    disk_[id] = DiskEntry{size, disk_lru_.begin()};
    ++stats_.files;
  }
  stats_.disk_bytes += size;
  while (stats_.disk_bytes > options_.disk_bytes && disk_lru_.size() > 1) {
    const ChunkId victim = disk_lru_.back();
    evicted->push_back(PathOf(victim));
    DropLocked(victim);
    ++stats_.evictions;
  }
}

void ChunkCache::DropLocked(const ChunkId& id) {
  auto it = disk_.find(id);
  if (it != disk_.end()) {
    stats_.disk_bytes -= it->second.size;
    --stats_.files;
    disk_lru_.erase(it->second.lru);
    disk_.erase(it);
  }
  auto m = memory_.find(id);
  if (m != memory_.end()) {
    memory_used_ -= m->second.plain->size();
    memory_lru_.erase(m->second.lru);
    memory_.erase(m);
  }
}

void ChunkCache::RememberLocked(const ChunkId& id, Plain plain) {
  if (plain->size() > options_.memory_bytes || memory_.count(id) != 0) return;
  memory_lru_.push_front(id);
  memory_used_ += plain->size();
  memory_[id] = MemoryEntry{std::move(plain), memory_lru_.begin()};
  while (memory_used_ > options_.memory_bytes) {
    auto m = memory_.find(memory_lru_.back());
    memory_used_ -= m->second.plain->size();
    memory_.erase(m);
    memory_lru_.pop_back();
  }
}

}  // namespace shardfs::backend
