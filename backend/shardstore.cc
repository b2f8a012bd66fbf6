#include "backend/shardstore.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backend/slot.h"
#include "backend/sqlite.h"
#include "base/logging.h"
#include "crypto/secret.h"

namespace shardfs::backend {

namespace {

// Shard file footer (docs/format.md, "Shard file"): magic, version, 3 zero bytes, le64 length.
constexpr uint8_t kFooterMagic[4] = {'S', 'F', 'S', 'H'};
constexpr uint8_t kShardFileVersion = 1;
constexpr size_t kFooterSize = 16;
constexpr size_t kHashSize = 32;
// A scrub reads and checks this much at a time (16 leaves).
constexpr size_t kScrubPieceBytes = 16 * crypto::kMerkleLeafSize;
// Direct I/O wants buffers, offsets and lengths aligned to the device's logical block size;
// 4096 is a multiple of every common one.
constexpr size_t kDirectAlign = 4096;
// Index schema version (meta.schema); bump with a migration, never reuse.
constexpr int64_t kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
  id BLOB PRIMARY KEY,       -- shard id (32 bytes)
  size INTEGER NOT NULL,     -- bytes of the shard file
  created INTEGER NOT NULL   -- unix seconds
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  owner BLOB NOT NULL,       -- owner public key (32 bytes)
  shard BLOB NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY (owner, shard)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_shard ON leases (shard);
CREATE TABLE IF NOT EXISTS slots (
  owner BLOB PRIMARY KEY,
  sequence INTEGER NOT NULL,
  record BLOB NOT NULL
) WITHOUT ROWID;
)sql";

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return PosixError("mkdir " + path, errno);
  return Status::Ok();
}

// Names of the entries of `dir` (not . and ..).
Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return PosixError("open folder " + dir, errno);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

Status PreadAll(int fd, uint64_t offset, MutableByteSpan out, const std::string& what) {
  SFS_ASSIGN_OR_RETURN(size_t n, ReadUpTo(fd, out, what, offset));
  if (n < out.size()) return Status::Corruption(what + " is shorter than its footer says");
  return Status::Ok();
}

}  // namespace

uint64_t ShardStore::FileSize(uint64_t length) {
  return length + kHashSize * crypto::MerkleLeafCount(length) + kFooterSize;
}

// --- ShardWriter ------------------------------------------------------------------------

ShardWriter::ShardWriter(ShardStore* store, OwnerKey owner, ShardId id, uint64_t length,
                         uint64_t reserved, uint64_t quota_reserved, UniqueFd fd,
                         std::string tmp_path)
    : store_(store),
      owner_(owner),
      id_(id),
      length_(length),
      reserved_(reserved),
      quota_reserved_(quota_reserved),
      fd_(std::move(fd)),
      tmp_path_(std::move(tmp_path)) {}

ShardWriter::~ShardWriter() { Abort(); }

void ShardWriter::Abort() {
  if (done_) return;
  done_ = true;
  fd_.Reset();
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  store_->Release(owner_, reserved_, quota_reserved_);
}

Status ShardWriter::Append(ByteSpan data) {
  if (done_) return Status::InvalidArgument("shard writer already finished");
  if (data.size() > length_ - builder_.length()) {
    return Status::OutOfRange("shard body is longer than its declared length " +
                              std::to_string(length_));
  }
  if (fd_.valid()) {
    Status s = WriteAll(fd_.get(), data, tmp_path_);
    if (!s.ok()) return s;
  }
  builder_.Update(data);
  return Status::Ok();
}

Result<bool> ShardWriter::Commit() {
  if (done_) return Status::InvalidArgument("shard writer already finished");
  auto fail = [&](Status s) -> Result<bool> {
    Abort();
    return s;
  };
  if (builder_.length() != length_) {
    return fail(Status::InvalidArgument("shard body ended after " +
                                        std::to_string(builder_.length()) + " of " +
                                        std::to_string(length_) + " bytes"));
  }
  auto tree = builder_.Finish();
  if (!tree.ok()) return fail(tree.status());
  if (tree->root() != id_) {
    return fail(Status::Corruption("shard body's Merkle root is " + tree->root().ToHex() +
                                   ", not the id it was sent as"));
  }
  // Without a file, a copy was stored when the upload began: the bytes were only checked.
  if (fd_.valid()) {
    // Trailer: the leaf hashes, then the footer.
    Bytes trailer;
    trailer.reserve(tree->leaf_count() * kHashSize + kFooterSize);
    for (const auto& h : tree->leaf_hashes()) trailer.insert(trailer.end(), h.begin(), h.end());
    trailer.insert(trailer.end(), kFooterMagic, kFooterMagic + 4);
    trailer.push_back(kShardFileVersion);
    trailer.insert(trailer.end(), 3, 0);
    uint8_t len[8];
    StoreLE64(len, length_);
    trailer.insert(trailer.end(), len, len + 8);
    Status s = WriteAll(fd_.get(), trailer, tmp_path_);
    if (!s.ok()) return fail(s);
    if (store_->options_.sync) {
      if (::fsync(fd_.get()) != 0) return fail(PosixError("fsync " + tmp_path_, errno));
      // A shard is written once and seldom read: its pages, clean now, leave the page cache
      // to the machine's other work (and the memory is reused for the next shard at once).
      (void)::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_DONTNEED);
    }
    if (fd_.Close() != 0) return fail(PosixError("close " + tmp_path_, errno));
  }
  auto fresh = store_->CommitShard(owner_, id_, length_, tmp_path_);
  if (!fresh.ok()) return fail(fresh.status());
  // CommitShard renamed or removed the file; only the reservations remain to release.
  done_ = true;
  store_->Release(owner_, reserved_, quota_reserved_);
  return *fresh;
}

// --- ShardReader ------------------------------------------------------------------------

uint64_t ShardReader::RunBytes(uint64_t first, uint64_t count) const {
  return std::min(length(), (first + count) * crypto::kMerkleLeafSize) -
         first * crypto::kMerkleLeafSize;
}

Status ShardReader::CheckLeaves(uint64_t first, ByteSpan run) const {
  std::vector<crypto::Digest256> hashes;
  hashes.reserve(crypto::MerkleLeafCount(run.size()));
  crypto::MerkleLeafHashes(run, &hashes);
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (hashes[i] != tree_.leaf_hashes()[first + i]) {
      return Status::Corruption("leaf " + std::to_string(first + i) +
                                " does not match its hash on disk");
    }
  }
  return Status::Ok();
}

Status ShardReader::ReadLeaves(uint64_t first, MutableByteSpan out) {
  uint64_t begin = first * crypto::kMerkleLeafSize;
  Status s = PreadAll(fd_.get(), begin, out, "shard");
  if (s.ok()) s = CheckLeaves(first, out);
  if (!s.ok()) {
    s = s.WithContext("shard " + id_.ToHex());
    store_->Quarantine(id_, s);
  }
  return s;
}

Status ShardReader::Read(uint64_t offset, MutableByteSpan out) {
  if (offset > length() || out.size() > length() - offset) {
    return Status::OutOfRange("range " + std::to_string(offset) + "+" + std::to_string(out.size()) +
                              " is outside the shard of " + std::to_string(length()) + " bytes");
  }
  if (out.empty()) return Status::Ok();
  uint64_t first = offset / crypto::kMerkleLeafSize;
  uint64_t last = (offset + out.size() - 1) / crypto::kMerkleLeafSize;
  uint64_t count = last - first + 1;
  if (offset == first * crypto::kMerkleLeafSize && out.size() == RunBytes(first, count)) {
    // Whole leaves (as a streamed GET asks for after its first piece): checked in place.
    return ReadLeaves(first, out);
  }
  scratch_.resize(RunBytes(first, count));
  SFS_RETURN_IF_ERROR(ReadLeaves(first, scratch_));
  std::memcpy(out.data(), scratch_.data() + (offset - first * crypto::kMerkleLeafSize), out.size());
  return Status::Ok();
}

Status ShardReader::Scrub(const ScrubPacer& pace) {
  // Direct I/O, so that the check reads the disk rather than a copy in the page cache, which
  // would hide damage on the disk until the copy is evicted (and a pass does not push the
  // shards clients read out of the cache). A file system that refuses it is read through the
  // cache instead.
  int flags = ::fcntl(fd_.get(), F_GETFL);
  bool direct = flags >= 0 && ::fcntl(fd_.get(), F_SETFL, flags | O_DIRECT) == 0;
  auto buffered = [&] {
    direct = false;
    if (flags >= 0) (void)::fcntl(fd_.get(), F_SETFL, flags & ~O_DIRECT);
  };
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> buf(
      static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, kScrubPieceBytes)));
  if (!buf) return Status::IOError("no memory for a scrub buffer");
  constexpr uint64_t kLeavesPerPiece = kScrubPieceBytes / crypto::kMerkleLeafSize;
  const uint64_t leaves = tree_.leaf_count();
  Status s;
  for (uint64_t first = 0; first < leaves && s.ok(); first += kLeavesPerPiece) {
    uint64_t count = std::min(kLeavesPerPiece, leaves - first);
    size_t want = RunBytes(first, count);
    uint64_t offset = first * crypto::kMerkleLeafSize;
    MutableByteSpan piece(buf.get(), want);
    bool done = false;
    if (direct) {
      // Whole aligned blocks: past the shard's bytes lie its leaf hashes and footer, so the
      // rounded-up read stays within the file of a whole shard.
      size_t aligned = (want + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
      ssize_t n;
      do {
        n = ::pread(fd_.get(), buf.get(), aligned, static_cast<off_t>(offset));
      } while (n < 0 && errno == EINTR);
      if (n >= 0 && static_cast<size_t>(n) >= want) {
        done = true;
      } else if (n < 0 && errno != EINVAL) {
        s = PosixError("read shard", errno);
        done = true;
      } else {
        // EINVAL (an alignment this device does not take) or a short read: read the piece
        // again through the cache, which also tells a truncated file apart.
        buffered();
      }
    }
    if (!done) s = PreadAll(fd_.get(), offset, piece, "shard");
    bool read = s.ok();
    if (s.ok()) s = CheckLeaves(first, piece);
    // A damaged piece is paid for too, but not a failed read, which read nothing.
    bool go_on = !read || !pace || pace(want);
    if (s.ok() && !go_on) return Status::Cancelled("scrub stopped");
  }
  if (direct) buffered();
  if (s.ok()) return s;
  // As ReadLeaves: a shard whose bytes fail their check, or cannot be read, is dropped.
  s = s.WithContext("shard " + id_.ToHex());
  store_->Quarantine(id_, s);
  if (s.code() != Code::kCorruption) s = Status::Corruption(s.ToString());
  return s;
}

Result<ShardProof> ShardReader::Prove(uint64_t first_leaf, uint64_t count) {
  ShardProof p;
  p.length = length();
  SFS_ASSIGN_OR_RETURN(p.proof, tree_.Prove(first_leaf, count));
  p.leaves.resize(RunBytes(first_leaf, count));
  SFS_RETURN_IF_ERROR(ReadLeaves(first_leaf, p.leaves));
  return p;
}

// --- ShardStore -------------------------------------------------------------------------

ShardStore::ShardStore(ShardStoreOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<ShardStore>> ShardStore::Open(const ShardStoreOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("shard store needs a data folder");
  if (options.capacity == 0) return Status::InvalidArgument("shard store capacity must be above 0");
  if (options.max_shard_size == 0 || options.max_shard_size > crypto::kMaxMerkleLength) {
    return Status::InvalidArgument("max shard size must be between 1 byte and 1 TiB");
  }
  std::unique_ptr<ShardStore> store(new ShardStore(options));
  SFS_RETURN_IF_ERROR(store->Init());
  return store;
}

Status ShardStore::Init() {
  const std::string& dir = options_.dir;
  SFS_RETURN_IF_ERROR(MakeDir(dir));
  std::string lock_path = dir + "/lock";
  auto held = LockFile(lock_path, "shardfs node");
  if (!held.ok()) {
    if (held.status().code() != Code::kBusy) return held.status();
    return Status::Busy("data folder " + dir + " is in use by another shardfs node (" +
                        held.status().message() + ")");
  }
  lock_fd_ = std::move(*held);
  SFS_RETURN_IF_ERROR(MakeDir(dir + "/tmp"));
  SFS_RETURN_IF_ERROR(MakeDir(dir + "/shards"));
  for (int i = 0; i < 256; ++i) {
    char name[3];
    std::snprintf(name, sizeof(name), "%02x", i);
    SFS_RETURN_IF_ERROR(MakeDir(dir + "/shards/" + name));
  }
  if (options_.sync) SFS_RETURN_IF_ERROR(SyncDir(dir + "/shards"));

  MutexLock lock(&mu_);
  SqliteOptions db_options;
  db_options.full_sync = options_.sync;
  db_options.exclusive = true;  // the store's lock file already keeps other processes out
  SFS_ASSIGN_OR_RETURN(db_, SqliteDb::Open(dir + "/index.db", db_options));
  SFS_RETURN_IF_ERROR(db_->Exec(kSchema));
  {
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT value FROM meta WHERE key='schema'"));
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row && q.ColumnInt(0) != kSchemaVersion) {
      return Status::NotSupported("node index schema " + std::to_string(q.ColumnInt(0)) +
                                  " is not supported by this build (it reads " +
                                  std::to_string(kSchemaVersion) + ")");
    }
  }
  SFS_RETURN_IF_ERROR(db_->Exec("INSERT OR IGNORE INTO meta VALUES ('schema', " +
                                std::to_string(kSchemaVersion) + ")"));
  return Recover();
}

Status ShardStore::Recover() {
  // Partial shards from an interrupted run.
  SFS_ASSIGN_OR_RETURN(auto tmp_names, ListDir(options_.dir + "/tmp"));
  for (const auto& n : tmp_names) ::unlink((options_.dir + "/tmp/" + n).c_str());
  if (!tmp_names.empty())
    log::Info("removed {} partial shard(s) left by an interrupted run", tmp_names.size());

  bool clean = false;
  {
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT value FROM meta WHERE key='open'"));
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    clean = !row || q.ColumnInt(0) == 0;
  }
  if (!clean) {
    // The last run stopped without closing: reconcile files and rows. Files are made durable
    // before their rows, and rows are deleted before their files, so an orphan file is never
    // acknowledged data, while a row without its file is a shard the disk lost.
    std::unordered_map<ShardId, uint64_t> rows;
    {
      SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id, size FROM shards"));
      while (true) {
        SFS_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        auto id = ShardId::FromBytes(q.ColumnBlob(0));
        if (id.ok()) rows.emplace(*id, static_cast<uint64_t>(q.ColumnInt(1)));
      }
    }
    size_t orphans = 0, lost = 0;
    std::unordered_set<ShardId> seen;
    for (int i = 0; i < 256; ++i) {
      char sub[3];
      std::snprintf(sub, sizeof(sub), "%02x", i);
      std::string folder = options_.dir + "/shards/" + sub;
      SFS_ASSIGN_OR_RETURN(auto names, ListDir(folder));
      for (const auto& n : names) {
        std::string path = folder + "/" + n;
        auto id = (n.size() == 64 && IsHex(n) && n.compare(0, 2, sub) == 0)
                      ? ShardId::FromHex(n)
                      : Result<ShardId>(Status::InvalidArgument("not a shard name"));
        struct stat st {};
        auto it = id.ok() ? rows.find(*id) : rows.end();
        if (it == rows.end() || ::stat(path.c_str(), &st) != 0 ||
            static_cast<uint64_t>(st.st_size) != it->second) {
          ::unlink(path.c_str());
          ++orphans;
          continue;
        }
        seen.insert(*id);
      }
    }
    SqliteTransaction txn(db_.get());
    SFS_RETURN_IF_ERROR(txn.status());
    for (const auto& [id, size] : rows) {
      if (seen.count(id) != 0) continue;
      log::Warn("shard {} is in the index but its file is missing or damaged; dropping it",
                id.ToHex());
      ++lost;
      SFS_RETURN_IF_ERROR(DeleteShardRowsLocked(id));
    }
    SFS_RETURN_IF_ERROR(txn.Commit());
    log::Info(
        "recovered after an unclean stop: {} shard(s) kept, {} stray file(s) removed, {} lost",
        seen.size(), orphans, lost);
  }
  SFS_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO meta VALUES ('open', 1)"));

  // In-memory totals.
  {
    SFS_ASSIGN_OR_RETURN(auto q,
                         db_->Prepare("SELECT count(*), coalesce(sum(size), 0) FROM shards"));
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) {
      shard_count_ = static_cast<uint64_t>(q.ColumnInt(0));
      used_ = static_cast<uint64_t>(q.ColumnInt(1));
    }
  }
  {
    SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT l.owner, count(*), sum(s.size) FROM leases l "
                                              "JOIN shards s ON s.id = l.shard GROUP BY l.owner"));
    while (true) {
      SFS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      auto owner = OwnerKey::FromBytes(q.ColumnBlob(0));
      if (!owner.ok()) continue;
      usage_[*owner] =
          OwnerUsage{static_cast<uint64_t>(q.ColumnInt(2)), static_cast<uint64_t>(q.ColumnInt(1))};
    }
  }
  return Status::Ok();
}

ShardStore::~ShardStore() {
  MutexLock lock(&mu_);
  if (db_) {
    Status s = db_->Exec("INSERT OR REPLACE INTO meta VALUES ('open', 0)");
    if (!s.ok()) log::Warn("could not record a clean shutdown: {}", s.ToString());
  }
}

std::string ShardStore::ShardPath(const ShardId& id) const {
  std::string hex = id.ToHex();
  return options_.dir + "/shards/" + hex.substr(0, 2) + "/" + hex;
}

uint64_t ShardStore::DiskAvailable() const {
  struct statvfs vfs {};
  if (::statvfs(options_.dir.c_str(), &vfs) != 0) return 0;
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

uint64_t ShardStore::FreeLocked() {
  uint64_t by_capacity =
      options_.capacity > used_ + reserved_ ? options_.capacity - used_ - reserved_ : 0;
  uint64_t disk = DiskAvailable();
  // Beyond the reserve, room for what a shard's size does not count: its last file block and
  // the index's growth (a commit appends pages to the WAL). Without it, with --reserve 0, a
  // shard that fits to the byte can pass this check and then fail on the disk.
  constexpr uint64_t kDiskHeadroom = 256 * 1024;
  uint64_t held = options_.reserve + reserved_ + kDiskHeadroom;
  uint64_t by_disk = disk > held ? disk - held : 0;
  return std::min(by_capacity, by_disk);
}

Result<bool> ShardStore::HasRowLocked(const ShardId& id) {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT 1 FROM shards WHERE id=?"));
  return q.Bind(1, id.span()).Step();
}

Result<bool> ShardStore::HasLeaseLocked(const OwnerKey& owner, const ShardId& id) {
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT 1 FROM leases WHERE owner=? AND shard=?"));
  return q.Bind(1, owner.span()).Bind(2, id.span()).Step();
}

Result<std::unique_ptr<ShardWriter>> ShardStore::BeginPut(const OwnerKey& owner, const ShardId& id,
                                                          uint64_t length) {
  if (length == 0) return Status::OutOfRange("a shard cannot be empty");
  if (length > options_.max_shard_size) {
    return Status::OutOfRange("shard of " + std::to_string(length) +
                              " bytes is larger than this node accepts (" +
                              std::to_string(options_.max_shard_size) + ")");
  }
  uint64_t size = FileSize(length);
  uint64_t reserved = 0, quota_reserved = 0;
  bool stored = false;
  {
    MutexLock lock(&mu_);
    if (!db_) return Status::Unavailable("shard store is closed");
    SFS_ASSIGN_OR_RETURN(bool leased, HasLeaseLocked(owner, id));
    SFS_ASSIGN_OR_RETURN(stored, HasRowLocked(id));
    if (!leased && options_.owner_quota != 0) {
      auto used = usage_.find(owner);
      auto pending = quota_reserved_.find(owner);
      uint64_t held = (used == usage_.end() ? 0 : used->second.bytes) +
                      (pending == quota_reserved_.end() ? 0 : pending->second);
      if (held + size > options_.owner_quota) {
        return Status::NoSpace("owner quota exceeded: " + std::to_string(held) + " of " +
                               std::to_string(options_.owner_quota) + " bytes in use");
      }
      quota_reserved = size;
    }
    if (!stored) {
      if (size > FreeLocked()) {
        return Status::NoSpace("node is full: " + std::to_string(FreeLocked()) +
                               " bytes free, shard needs " + std::to_string(size));
      }
      reserved = size;
    }
    reserved_ += reserved;
    if (quota_reserved != 0) quota_reserved_[owner] += quota_reserved;
  }
  // From here on, a failure must give the reservations back.
  if (stored) {
    // The node has these bytes: the body is hashed to prove the sender has them too, and
    // written nowhere.
    return std::unique_ptr<ShardWriter>(
        new ShardWriter(this, owner, id, length, reserved, quota_reserved, UniqueFd(), ""));
  }
  uint8_t nonce[8];
  crypto::RandomBytes(nonce);
  std::string tmp = options_.dir + "/tmp/" + id.ToHex() + "." + HexEncode(nonce);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    Status s = PosixError("create " + tmp, errno);
    Release(owner, reserved, quota_reserved);
    return s;
  }
  // Take the whole file's blocks now: a disk that is fuller than statvfs said fails here, not
  // halfway through the body (file systems without fallocate skip this).
  if (int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
      err != 0 && err != EOPNOTSUPP && err != EINVAL) {
    Status s = PosixError("allocate " + std::to_string(size) + " bytes for " + tmp, err);
    fd.Reset();
    ::unlink(tmp.c_str());
    Release(owner, reserved, quota_reserved);
    return s;
  }
  return std::unique_ptr<ShardWriter>(
      new ShardWriter(this, owner, id, length, reserved, quota_reserved, std::move(fd), tmp));
}

void ShardStore::Release(const OwnerKey& owner, uint64_t reserved, uint64_t quota_reserved) {
  MutexLock lock(&mu_);
  reserved_ -= reserved;
  if (quota_reserved != 0) {
    auto it = quota_reserved_.find(owner);
    it->second -= quota_reserved;
    if (it->second == 0) quota_reserved_.erase(it);
  }
}

Result<bool> ShardStore::CommitShard(const OwnerKey& owner, const ShardId& id, uint64_t length,
                                     const std::string& tmp_path) {
  uint64_t size = FileSize(length);
  MutexLock stripe(&StripeFor(id));
  bool stored = false;
  {
    MutexLock lock(&mu_);
    if (!db_) return Status::Unavailable("shard store is closed");
    SFS_ASSIGN_OR_RETURN(stored, HasRowLocked(id));
  }
  if (stored) {
    // Another owner stored the same bytes: one copy, one more lease.
    if (!tmp_path.empty()) ::unlink(tmp_path.c_str());
  } else if (tmp_path.empty()) {
    // The copy this upload was checked against was deleted meanwhile: the bytes must come
    // again, to be written this time. (503: the client's retry does it.)
    return Status::Unavailable("shard " + id.ToHex() +
                               " was deleted while it was being sent; send it again");
  } else {
    std::string path = ShardPath(id);
    if (::rename(tmp_path.c_str(), path.c_str()) != 0)
      return PosixError("rename to " + path, errno);
    if (options_.sync) {
      Status s = SyncDir(path.substr(0, path.rfind('/')));
      if (!s.ok()) {
        ::unlink(path.c_str());
        return s;
      }
    }
  }
  MutexLock lock(&mu_);
  int64_t now = Now();
  SqliteTransaction txn(db_.get());
  Status s = txn.status();
  bool fresh = false;
  if (s.ok() && !stored) {
    auto q = db_->Prepare("INSERT INTO shards (id, size, created) VALUES (?, ?, ?)");
    s = q.ok() ? q->Bind(1, id.span()).Bind(2, static_cast<int64_t>(size)).Bind(3, now).Run()
               : q.status();
  }
  if (s.ok()) {
    auto q = db_->Prepare("INSERT OR IGNORE INTO leases (owner, shard, created) VALUES (?, ?, ?)");
    s = q.ok() ? q->Bind(1, owner.span()).Bind(2, id.span()).Bind(3, now).Run() : q.status();
    fresh = s.ok() && db_->Changes() == 1;
  }
  if (s.ok()) s = txn.Commit();
  if (!s.ok()) {
    // Not acknowledged: take the file back out unless another lease needs it.
    if (!stored) ::unlink(ShardPath(id).c_str());
    return s;
  }
  if (!stored) {
    used_ += size;
    ++shard_count_;
  }
  if (fresh) {
    OwnerUsage& u = usage_[owner];
    u.bytes += size;
    ++u.shards;
  }
  return fresh;
}

Result<std::unique_ptr<ShardReader>> ShardStore::OpenShard(const OwnerKey& owner,
                                                           const ShardId& id) {
  {
    MutexLock lock(&mu_);
    if (!db_) return Status::Unavailable("shard store is closed");
    SFS_ASSIGN_OR_RETURN(bool leased, HasLeaseLocked(owner, id));
    if (!leased) return Status::NotFound("no such shard");
  }
  return OpenFile(id);
}

Result<std::unique_ptr<ShardReader>> ShardStore::OpenFile(const ShardId& id) {
  std::string path = ShardPath(id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    // A concurrent Delete may have removed it since the lease check.
    if (errno == ENOENT) return Status::NotFound("no such shard");
    return PosixError("open " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return PosixError("stat " + path, errno);
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  Status bad;
  uint8_t footer[kFooterSize];
  if (file_size < kFooterSize + kHashSize) {
    bad = Status::Corruption("shard file " + path + " is too short");
  } else {
    bad = PreadAll(fd.get(), file_size - kFooterSize, footer, path);
  }
  uint64_t length = 0;
  if (bad.ok()) {
    length = LoadLE64(footer + 8);
    if (std::memcmp(footer, kFooterMagic, 4) != 0 || footer[4] != kShardFileVersion ||
        length == 0 || length > crypto::kMaxMerkleLength || FileSize(length) != file_size) {
      bad = Status::Corruption("shard file " + path + " has a damaged footer");
    }
  }
  std::vector<crypto::Digest256> hashes;
  if (bad.ok()) {
    Bytes raw(crypto::MerkleLeafCount(length) * kHashSize);
    bad = PreadAll(fd.get(), length, raw, path);
    for (size_t off = 0; bad.ok() && off < raw.size(); off += kHashSize) {
      crypto::Digest256 h;
      std::memcpy(h.data(), raw.data() + off, kHashSize);
      hashes.push_back(h);
    }
  }
  if (bad.ok()) {
    auto tree = crypto::MerkleTree::FromLeafHashes(length, std::move(hashes));
    if (!tree.ok() || tree->root() != id) {
      bad = Status::Corruption("shard file " + path + " does not match its id");
    } else {
      return std::unique_ptr<ShardReader>(
          new ShardReader(this, id, std::move(fd), std::move(*tree)));
    }
  }
  if (bad.code() == Code::kCorruption) Quarantine(id, bad);
  return bad;
}

Result<std::vector<ShardId>> ShardStore::ListShards(const std::optional<ShardId>& after,
                                                    size_t max) {
  MutexLock lock(&mu_);
  if (!db_) return Status::Unavailable("shard store is closed");
  // The all-zero id sorts first, so "above nothing" is "at or above zero".
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare(after ? "SELECT id FROM shards WHERE id > ? "
                                                    "ORDER BY id LIMIT ?"
                                                  : "SELECT id FROM shards WHERE id >= ? "
                                                    "ORDER BY id LIMIT ?"));
  ShardId from = after.value_or(ShardId());
  q.Bind(1, from.span()).Bind(2, static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)));
  std::vector<ShardId> ids;
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    auto id = ShardId::FromBytes(q.ColumnBlob(0));
    if (id.ok()) ids.push_back(*id);
  }
  return ids;
}

Status ShardStore::ScrubShard(const ShardId& id, const ScrubPacer& pace) {
  {
    MutexLock lock(&mu_);
    if (!db_) return Status::Unavailable("shard store is closed");
    SFS_ASSIGN_OR_RETURN(bool stored, HasRowLocked(id));
    if (!stored) return Status::NotFound("no such shard");
  }
  SFS_ASSIGN_OR_RETURN(auto reader, OpenFile(id));
  return reader->Scrub(pace);
}

void ShardStore::Quarantine(const ShardId& id, const Status& why) {
  log::Error("dropping damaged shard {}: {}", id.ToHex(), why.ToString());
  MutexLock stripe(&StripeFor(id));
  MutexLock lock(&mu_);
  Status s = DropShardLocked(id);
  if (!s.ok()) {
    log::Error("could not drop damaged shard {} from the index: {}", id.ToHex(), s.ToString());
  }
}

Status ShardStore::DeleteShardRowsLocked(const ShardId& id) {
  SFS_ASSIGN_OR_RETURN(auto leases, db_->Prepare("DELETE FROM leases WHERE shard=?"));
  SFS_RETURN_IF_ERROR(leases.Bind(1, id.span()).Run());
  SFS_ASSIGN_OR_RETURN(auto shard, db_->Prepare("DELETE FROM shards WHERE id=?"));
  return shard.Bind(1, id.span()).Run();
}

Status ShardStore::DropShardLocked(const ShardId& id) {
  if (!db_) return Status::Ok();
  SFS_ASSIGN_OR_RETURN(auto size_q, db_->Prepare("SELECT size FROM shards WHERE id=?"));
  SFS_ASSIGN_OR_RETURN(bool row, size_q.Bind(1, id.span()).Step());
  if (!row) return Status::Ok();  // already dropped by another reader
  uint64_t size = static_cast<uint64_t>(size_q.ColumnInt(0));
  std::vector<OwnerKey> owners;
  SFS_ASSIGN_OR_RETURN(auto owners_q, db_->Prepare("SELECT owner FROM leases WHERE shard=?"));
  owners_q.Bind(1, id.span());
  while (true) {
    SFS_ASSIGN_OR_RETURN(bool more, owners_q.Step());
    if (!more) break;
    auto o = OwnerKey::FromBytes(owners_q.ColumnBlob(0));
    if (o.ok()) owners.push_back(*o);
  }
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_RETURN_IF_ERROR(DeleteShardRowsLocked(id));
  SFS_RETURN_IF_ERROR(txn.Commit());
  ::unlink(ShardPath(id).c_str());
  used_ -= size;
  --shard_count_;
  for (const auto& o : owners) UnchargeLocked(o, size);
  return Status::Ok();
}

void ShardStore::UnchargeLocked(const OwnerKey& owner, uint64_t size) {
  auto it = usage_.find(owner);
  if (it == usage_.end()) return;
  it->second.bytes -= size;
  if (--it->second.shards == 0) usage_.erase(it);
}

Status ShardStore::Delete(const OwnerKey& owner, const ShardId& id) {
  MutexLock stripe(&StripeFor(id));
  bool remove_file = false;
  {
    MutexLock lock(&mu_);
    if (!db_) return Status::Unavailable("shard store is closed");
    SqliteTransaction txn(db_.get());
    SFS_RETURN_IF_ERROR(txn.status());
    SFS_ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM leases WHERE owner=? AND shard=?"));
    SFS_RETURN_IF_ERROR(del.Bind(1, owner.span()).Bind(2, id.span()).Run());
    if (db_->Changes() == 0) return Status::NotFound("no such shard");
    SFS_ASSIGN_OR_RETURN(auto left, db_->Prepare("SELECT count(*) FROM leases WHERE shard=?"));
    SFS_ASSIGN_OR_RETURN(bool row, left.Bind(1, id.span()).Step());
    remove_file = row && left.ColumnInt(0) == 0;
    SFS_ASSIGN_OR_RETURN(auto size_q, db_->Prepare("SELECT size FROM shards WHERE id=?"));
    SFS_ASSIGN_OR_RETURN(bool has_size, size_q.Bind(1, id.span()).Step());
    uint64_t size = has_size ? static_cast<uint64_t>(size_q.ColumnInt(0)) : 0;
    if (remove_file) {
      SFS_ASSIGN_OR_RETURN(auto d, db_->Prepare("DELETE FROM shards WHERE id=?"));
      SFS_RETURN_IF_ERROR(d.Bind(1, id.span()).Run());
    }
    SFS_RETURN_IF_ERROR(txn.Commit());
    UnchargeLocked(owner, size);
    if (remove_file) {
      used_ -= size;
      --shard_count_;
    }
  }
  // The row is gone first, so a crash here leaves a stray file that the next start removes.
  if (remove_file) ::unlink(ShardPath(id).c_str());
  return Status::Ok();
}

Result<std::optional<Bytes>> ShardStore::GetSlot(const OwnerKey& owner) {
  MutexLock lock(&mu_);
  if (!db_) return Status::Unavailable("shard store is closed");
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT record FROM slots WHERE owner=?"));
  SFS_ASSIGN_OR_RETURN(bool row, q.Bind(1, owner.span()).Step());
  if (!row) return std::optional<Bytes>();
  return std::optional<Bytes>(q.ColumnBlob(0));
}

Status ShardStore::PutSlot(const OwnerKey& owner, ByteSpan record) {
  SFS_ASSIGN_OR_RETURN(SlotRecord rec, VerifySlotRecord(record));
  if (rec.owner != owner) return Status::PermissionDenied("slot record is signed by another owner");
  if (rec.sequence > static_cast<uint64_t>(INT64_MAX)) {
    return Status::InvalidArgument("slot sequence is above 2^63-1");
  }
  MutexLock lock(&mu_);
  if (!db_) return Status::Unavailable("shard store is closed");
  SqliteTransaction txn(db_.get());
  SFS_RETURN_IF_ERROR(txn.status());
  SFS_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT sequence FROM slots WHERE owner=?"));
  SFS_ASSIGN_OR_RETURN(bool row, q.Bind(1, owner.span()).Step());
  if (row && static_cast<uint64_t>(q.ColumnInt(0)) >= rec.sequence) {
    return Status::AlreadyExists("slot already holds sequence " + std::to_string(q.ColumnInt(0)) +
                                 ", not older than " + std::to_string(rec.sequence));
  }
  SFS_ASSIGN_OR_RETURN(auto w, db_->Prepare("INSERT OR REPLACE INTO slots VALUES (?, ?, ?)"));
  SFS_RETURN_IF_ERROR(
      w.Bind(1, owner.span()).Bind(2, static_cast<int64_t>(rec.sequence)).Bind(3, record).Run());
  return txn.Commit();
}

ShardStoreStats ShardStore::Stats() {
  MutexLock lock(&mu_);
  ShardStoreStats s;
  s.capacity = options_.capacity;
  s.used = used_;
  s.free = FreeLocked();
  s.shards = shard_count_;
  s.owners = usage_.size();
  return s;
}

OwnerUsage ShardStore::Usage(const OwnerKey& owner) {
  MutexLock lock(&mu_);
  auto it = usage_.find(owner);
  return it == usage_.end() ? OwnerUsage{} : it->second;
}

}  // namespace shardfs::backend
