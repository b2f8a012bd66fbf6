#include "cli/file_commands.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/thread_annotations.h"
#include "base/thread_pool.h"
#include "base/units.h"
#include "base/wall_clock.h"
#include "cli/drive_open.h"
#include "cli/drive_tree.h"
#include "cli/exit.h"
#include "cli/network_commands.h"
#include "cli/progress.h"
#include "crypto/secret.h"
#include "net/api/drive_status.h"

namespace shardfs::cli {

namespace {

using backend::Catalog;
using backend::FileKind;
using backend::Ino;
using backend::InodeAttr;

// How long put waits for the drive's process to store a batch on the nodes (its own wait is
// its --flush-timeout, 600 s by default).
constexpr auto kSyncTimeout = std::chrono::seconds(660);

std::string Base(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// The names in local folder `local`, sorted.
Result<std::vector<std::string>> SortedNames(const std::string& local) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(local, ec)) {
    names.push_back(e.path().filename().string());
  }
  if (ec) return PosixError("list " + local, ec.value());
  std::sort(names.begin(), names.end());
  return names;
}

// The target of local symlink `local`, whose lstat is `st`.
Result<std::string> ReadLocalLink(const std::string& local, const struct stat& st) {
  std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
  ssize_t n = ::readlink(local.c_str(), target.data(), target.size());
  if (n < 0) return PosixError("read link " + local, errno);
  target.resize(static_cast<size_t>(n));
  return target;
}

// A batch of files stored: "stored PATH" for each with --verbose, and the progress line.
void ReportStored(const std::vector<std::string>& paths, uint64_t bytes, bool verbose,
                  Progress& progress) {
  if (verbose) {
    for (const std::string& p : paths) std::printf("stored %s\n", p.c_str());
    std::fflush(stdout);
  }
  progress.Add(bytes, paths.size());
}

struct PutFlags {
  DriveFlags drive;
  std::string local;
  std::string remote;
  bool verbose = false;
};

// Puts local trees into the drive. Regular files are gathered into batches that StoreFiles
// packs together and commits in one transaction each, so small files share packs and a new
// file appears only whole. A file whose size and mtime match the drive's is skipped (as
// rsync's quick check), so an unchanged tree is put again without reading it.
class TreePutter {
 public:
  TreePutter(backend::Drive& drive, bool verbose) : drive_(drive), verbose_(verbose) {}

  // Puts one local tree (a file, a symlink, or a folder and all below it) as entry `name` of
  // folder `parent`, keeping modes and times as cp -a does. Entries of other kinds (devices,
  // sockets, pipes) are skipped with a message and counted.
  Status Put(const std::string& local, Ino parent, const std::string& name);
  // Stores the last batch and sets the folders' times. Must be called once at the end.
  Status Finish();
  int skipped() const { return skipped_; }

 private:
  static constexpr uint64_t kBatchBytes = uint64_t{64} << 20;
  static constexpr size_t kBatchFiles = 4096;

  Status AddFile(const std::string& local, const struct stat& st, Ino parent,
                 const std::string& name, const Result<InodeAttr>& existing);
  Status StoreBatch();

  backend::Drive& drive_;
  const bool verbose_;
  int skipped_ = 0;
  std::vector<std::unique_ptr<MappedFile>> maps_;
  std::vector<backend::FileSource> batch_;
  std::vector<std::string> batch_paths_;
  uint64_t batch_bytes_ = 0;
  // Modes and times of folders (and existing files), set at the end, deepest first, so
  // filling a folder does not change its mtime.
  std::vector<std::pair<Ino, backend::AttrChange>> attrs_;
  Progress progress_{"stored", 0};
};

Status TreePutter::Put(const std::string& local, Ino parent, const std::string& name) {
  struct stat st {};
  if (::lstat(local.c_str(), &st) != 0) return PosixError("stat " + local, errno);
  const backend::NewInode how{static_cast<uint32_t>(st.st_mode & 07777),
                              static_cast<uint32_t>(st.st_uid), static_cast<uint32_t>(st.st_gid)};
  auto existing = drive_.Lookup(parent, name);
  if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
  backend::AttrChange keep;
  keep.atime_ns = TimespecToNs(st.st_atim);
  keep.mtime_ns = TimespecToNs(st.st_mtim);
  if (S_ISDIR(st.st_mode)) {
    if (existing.ok() && existing->kind != FileKind::kDirectory) {
      return Status::NotDirectory(local + ": the drive has a file where this folder goes");
    }
    Ino ino;
    if (existing.ok()) {
      ino = existing->ino;
    } else {
      SFS_ASSIGN_OR_RETURN(InodeAttr made, drive_.Mkdir(parent, name, how));
      ino = made.ino;
    }
    SFS_ASSIGN_OR_RETURN(std::vector<std::string> names, SortedNames(local));
    for (const std::string& n : names) SFS_RETURN_IF_ERROR(Put(local + "/" + n, ino, n));
    keep.mode = how.mode;
    attrs_.emplace_back(ino, keep);
    return Status::Ok();
  }
  if (S_ISLNK(st.st_mode)) {
    SFS_ASSIGN_OR_RETURN(std::string target, ReadLocalLink(local, st));
    if (existing.ok()) {
      if (existing->kind == FileKind::kDirectory) {
        return Status::IsDirectory(local + ": the drive has a folder where this link goes");
      }
      SFS_RETURN_IF_ERROR(drive_.Unlink(parent, name));
    }
    SFS_ASSIGN_OR_RETURN(InodeAttr made, drive_.Symlink(parent, name, target));
    return drive_.SetAttr(made.ino, keep).status();
  }
  if (S_ISREG(st.st_mode)) return AddFile(local, st, parent, name, existing);
  std::fprintf(stderr, "shardfs put: %s: skipped (not a file, folder or link)\n", local.c_str());
  ++skipped_;
  return Status::Ok();
}

Status TreePutter::AddFile(const std::string& local, const struct stat& st, Ino parent,
                           const std::string& name, const Result<InodeAttr>& existing) {
  backend::FileSource f;
  if (existing.ok()) {
    if (existing->kind != FileKind::kFile) {
      return Status::IsDirectory(local + ": the drive has a folder or link where this file goes");
    }
    backend::AttrChange keep;
    keep.mode = static_cast<uint32_t>(st.st_mode & 07777);
    keep.atime_ns = TimespecToNs(st.st_atim);
    if (existing->size == static_cast<uint64_t>(st.st_size) &&
        existing->mtime_ns == TimespecToNs(st.st_mtim)) {
      // The quick check: same size and mtime, so the same contents.
      if (existing->mode != *keep.mode) attrs_.emplace_back(existing->ino, keep);
      return Status::Ok();
    }
    f.ino = existing->ino;
    attrs_.emplace_back(existing->ino, keep);
  } else {
    f.parent = parent;
    f.name = name;
    f.how = backend::NewInode{static_cast<uint32_t>(st.st_mode & 07777),
                              static_cast<uint32_t>(st.st_uid), static_cast<uint32_t>(st.st_gid)};
  }
  SFS_ASSIGN_OR_RETURN(auto map, MappedFile::Open(local));
  f.data = map->bytes();
  // A sparse file's holes stay holes: only its data runs are read and stored.
  if (static_cast<uint64_t>(map->stat().st_blocks) * 512 < f.data.size()) {
    SFS_ASSIGN_OR_RETURN(f.runs, map->DataRuns());
  }
  f.mtime_ns = TimespecToNs(map->stat().st_mtim);
  batch_bytes_ += f.data.size();
  maps_.push_back(std::move(map));
  batch_.push_back(std::move(f));
  batch_paths_.push_back(local);
  if (batch_bytes_ >= kBatchBytes || batch_.size() >= kBatchFiles) return StoreBatch();
  return Status::Ok();
}

Status TreePutter::StoreBatch() {
  if (batch_.empty()) return Status::Ok();
  auto stored = drive_.StoreFiles(batch_);
  if (!stored.ok()) {
    return stored.status().WithContext(batch_.size() == 1 ? batch_paths_[0]
                                                          : std::to_string(batch_.size()) +
                                                                " files from " + batch_paths_[0]);
  }
  ReportStored(batch_paths_, batch_bytes_, verbose_, progress_);
  batch_.clear();
  batch_paths_.clear();
  maps_.clear();
  batch_bytes_ = 0;
  return Status::Ok();
}

Status TreePutter::Finish() {
  SFS_RETURN_IF_ERROR(StoreBatch());
  // Folders were added parent first: set times child first.
  for (auto it = attrs_.rbegin(); it != attrs_.rend(); ++it) {
    SFS_ASSIGN_OR_RETURN(InodeAttr now, drive_.GetAttr(it->first));
    // A folder whose mode and mtime already match is left alone, as a file passing the quick
    // check is (its atime is not copied again): a SetAttr would change its ctime, and an
    // unchanged tree put again would cost a catalog checkpoint for nothing.
    if (now.kind == FileKind::kDirectory && now.mode == it->second.mode &&
        now.mtime_ns == it->second.mtime_ns) {
      continue;
    }
    SFS_RETURN_IF_ERROR(drive_.SetAttr(it->first, it->second).status());
  }
  attrs_.clear();
  return Status::Ok();
}

// Puts local trees into the drive that another process holds, through its API (REST on the
// unix socket), keeping what TreePutter keeps: modes, mtimes (also of folders and links),
// symlinks, and the quick check. Files go into that process's write-back area one PUT each;
// every kBatchBytes or kBatchFiles, and at the end, the process is asked to store them, so
// that, as with TreePutter, what is reported stored is on the nodes; at the end, with a
// checkpoint of the catalog, as a put with the drive to itself ends.
class DaemonPutter {
 public:
  DaemonPutter(DaemonClient& client, DriveTree& tree, bool verbose)
      : client_(client), tree_(tree), verbose_(verbose) {}

  // Puts one local tree as `path` in the drive, where `existing` is what is there now (if
  // anything). Sets `*changed` if it changed anything in the drive.
  Status Put(const std::string& local, const std::string& path,
             const std::optional<InodeAttr>& existing, bool* changed);
  // Syncs the last batch, sets the folders' modes and times, and, if the put `changed` the
  // drive, has the process checkpoint the catalog. Must be called once at the end.
  Status Finish(bool changed);
  int skipped() const { return skipped_; }

 private:
  static constexpr uint64_t kBatchBytes = uint64_t{64} << 20;
  static constexpr size_t kBatchFiles = 4096;

  Status PutFile(const std::string& local, const std::string& path,
                 const std::optional<InodeAttr>& existing, bool* changed);
  // PATCH /api/v1/stat/PATH.
  Status SetAttrs(const std::string& path, const nlohmann::json& attrs);
  Status SyncBatch();

  DaemonClient& client_;
  DriveTree& tree_;
  const bool verbose_;
  int skipped_ = 0;
  std::vector<std::string> batch_paths_;
  uint64_t batch_bytes_ = 0;
  // Folders' modes and times, set at the end, deepest first (filling a folder changes its
  // mtime).
  std::vector<std::pair<std::string, nlohmann::json>> attrs_;
  Progress progress_{"stored", 0};
};

std::string ModeQuery(uint32_t mode) {
  char octal[16];
  std::snprintf(octal, sizeof(octal), "?mode=%o", mode & 07777);
  return octal;
}

Status DaemonPutter::Put(const std::string& local, const std::string& path,
                         const std::optional<InodeAttr>& existing, bool* changed) {
  struct stat st {};
  if (::lstat(local.c_str(), &st) != 0) return PosixError("stat " + local, errno);
  const uint32_t mode = static_cast<uint32_t>(st.st_mode & 07777);
  const nlohmann::json times = {{"mtime_ns", TimespecToNs(st.st_mtim)},
                                {"atime_ns", TimespecToNs(st.st_atim)}};
  if (S_ISDIR(st.st_mode)) {
    if (existing && existing->kind != FileKind::kDirectory) {
      return Status::NotDirectory(local + ": the drive has a file where this folder goes");
    }
    std::map<std::string, InodeAttr> there;
    if (existing) {
      SFS_RETURN_IF_ERROR(ForEachEntry(tree_, path, *existing, [&](const backend::DirEntry& e) {
        there.emplace(e.name, e.attr);
        return Status::Ok();
      }));
    } else {
      SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/folders", path));
      SFS_RETURN_IF_ERROR(client_.Call("POST", target + ModeQuery(mode)).status());
    }
    SFS_ASSIGN_OR_RETURN(std::vector<std::string> names, SortedNames(local));
    bool inside = !existing;
    for (const std::string& n : names) {
      auto it = there.find(n);
      std::optional<InodeAttr> child;
      if (it != there.end()) child = it->second;
      SFS_RETURN_IF_ERROR(Put(local + "/" + n, ChildPath(path, n), child, &inside));
    }
    // As TreePutter: a folder whose contents, mode and mtime are as they were is left alone.
    if (inside || existing->mode != mode || existing->mtime_ns != TimespecToNs(st.st_mtim)) {
      nlohmann::json a = times;
      a["mode"] = mode;
      attrs_.emplace_back(path, std::move(a));
      *changed = true;
    }
    return Status::Ok();
  }
  if (S_ISLNK(st.st_mode)) {
    SFS_ASSIGN_OR_RETURN(std::string target, ReadLocalLink(local, st));
    if (existing) {
      if (existing->kind == FileKind::kDirectory) {
        return Status::IsDirectory(local + ": the drive has a folder where this link goes");
      }
      SFS_RETURN_IF_ERROR(tree_.Remove(path, /*recursive=*/false));
    }
    SFS_ASSIGN_OR_RETURN(std::string link, ApiTarget("/api/v1/links", path));
    SFS_RETURN_IF_ERROR(client_.Call("POST", link, {{"target", target}}).status());
    *changed = true;
    return SetAttrs(path, times);
  }
  if (S_ISREG(st.st_mode)) return PutFile(local, path, existing, changed);
  std::fprintf(stderr, "shardfs put: %s: skipped (not a file, folder or link)\n", local.c_str());
  ++skipped_;
  return Status::Ok();
}

Status DaemonPutter::PutFile(const std::string& local, const std::string& path,
                             const std::optional<InodeAttr>& existing, bool* changed) {
  UniqueFd fd(::open(local.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return PosixError("open " + local, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return PosixError("stat " + local, errno);
  const uint32_t mode = static_cast<uint32_t>(st.st_mode & 07777);
  if (existing) {
    if (existing->kind != FileKind::kFile) {
      return Status::IsDirectory(local + ": the drive has a folder or link where this file goes");
    }
    if (existing->size == static_cast<uint64_t>(st.st_size) &&
        existing->mtime_ns == TimespecToNs(st.st_mtim)) {
      // The quick check: same size and mtime, so the same contents.
      if (existing->mode == mode) return Status::Ok();
      *changed = true;
      return SetAttrs(path, {{"mode", mode}});
    }
  }
  SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/files", path));
  const int64_t mtime = TimespecToNs(st.st_mtim);
  char secs[48];
  std::snprintf(secs, sizeof(secs), "%lld.%09lld", static_cast<long long>(mtime / 1'000'000'000),
                static_cast<long long>(mtime % 1'000'000'000));
  auto put = client_.Upload(target + ModeQuery(mode), fd.get(), static_cast<uint64_t>(st.st_size),
                            {{"X-OC-Mtime", secs}});
  if (!put.ok()) return put.status().WithContext(local);
  *changed = true;
  batch_bytes_ += static_cast<uint64_t>(st.st_size);
  batch_paths_.push_back(local);
  if (batch_bytes_ >= kBatchBytes || batch_paths_.size() >= kBatchFiles) return SyncBatch();
  return Status::Ok();
}

Status DaemonPutter::SetAttrs(const std::string& path, const nlohmann::json& attrs) {
  SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/stat", path));
  return client_.Call("PATCH", target, attrs).status();
}

Status DaemonPutter::SyncBatch() {
  if (batch_paths_.empty()) return Status::Ok();
  auto synced = client_.Call("POST", "/api/v1/sync?checkpoint=0", nullptr, kSyncTimeout);
  if (!synced.ok()) {
    return synced.status().WithContext(
        "the drive's process took " + std::to_string(batch_paths_.size()) +
        " file(s) but could not store them on the nodes; they wait in its queue");
  }
  ReportStored(batch_paths_, batch_bytes_, verbose_, progress_);
  batch_paths_.clear();
  batch_bytes_ = 0;
  return Status::Ok();
}

Status DaemonPutter::Finish(bool changed) {
  SFS_RETURN_IF_ERROR(SyncBatch());
  for (auto it = attrs_.rbegin(); it != attrs_.rend(); ++it) {
    SFS_RETURN_IF_ERROR(SetAttrs(it->first, it->second));
  }
  attrs_.clear();
  if (!changed) return Status::Ok();
  return client_.Call("POST", "/api/v1/sync", nullptr, kSyncTimeout)
      .status()
      .WithContext("the files are stored, but the catalog's checkpoint is not");
}

int RunPut(const PutFlags& f) {
  struct stat st {};
  if (::lstat(f.local.c_str(), &st) != 0) return Failure("put", f.local, PosixError("stat", errno));
  auto opened = OpenTree(f.drive, "shardfs put");
  if (!opened.ok()) return Failure("put", "open drive", opened.status());
  DriveTree& tree = *opened->tree;
  // REMOTE may name a folder (LOCAL goes in it under its own name) or the target itself.
  std::string remote = f.remote;
  auto at = tree.Stat(remote);
  if (at.ok() && at->kind == FileKind::kDirectory) {
    remote = ChildPath(remote, Base(f.local));
    at = tree.Stat(remote);
  }
  if (!opened->drive) {
    if (!at.ok() && at.status().code() != Code::kNotFound)
      return Failure("put", remote, at.status());
    std::optional<InodeAttr> existing;
    if (at.ok()) existing = *at;
    DaemonPutter putter(*opened->daemon, tree, f.verbose);
    bool changed = false;
    Status s = putter.Put(f.local, remote, existing, &changed);
    if (s.ok()) s = putter.Finish(changed);
    if (!s.ok()) return Failure("put", remote, s);
    return putter.skipped() == 0 ? 0 : kExitFailure;
  }
  auto parent = ResolveParent(opened->drive->catalog(), remote);
  if (!parent.ok()) return Failure("put", remote, parent.status());
  TreePutter putter(*opened->drive, f.verbose);
  Status s = putter.Put(f.local, parent->first, parent->second);
  if (s.ok()) s = putter.Finish();
  if (!s.ok()) return Failure("put", remote, s);
  return putter.skipped() == 0 ? 0 : kExitFailure;
}

struct GetFlags {
  DriveFlags drive;
  std::string remote;
  std::string local;
};

// Writes the drive's file at `path` (attributes `attr`) to `local`: into a temporary file
// beside it, renamed over it when whole, so a failed get leaves the target as it was. Not
// synced: the caller syncs the file system once at the end. `done(bytes, files)` reports
// progress.
Status GetFile(DriveTree& tree, const std::string& path, const InodeAttr& attr,
               const std::string& local, const std::function<void(uint64_t, uint64_t)>& done) {
  uint8_t nonce[6];
  crypto::RandomBytes(nonce);
  // Beside the target, under a name of its own (the target's name may be as long as a name
  // can be).
  const std::string parent = std::filesystem::path(local).parent_path().string();
  std::string tmp = (parent.empty() ? "" : parent + "/") + ".shardfs-get-" + HexEncode(nonce);
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return PosixError("create " + tmp, errno);
  auto fail = [&](const Status& s) {
    out.Reset();
    ::unlink(tmp.c_str());
    return s;
  };
  uint64_t got = 0;
  Status read = tree.Read(path, attr, [&](ByteSpan piece) {
    if (piece.size() > attr.size - got) {
      return Status::Unavailable("the file grew while it was read: get it again");
    }
    got += piece.size();
    // Zeros are not written: the file keeps them as a hole (it is sized at the end).
    if (std::all_of(piece.begin(), piece.end(), [](uint8_t b) { return b == 0; })) {
      if (::lseek(out.get(), static_cast<off_t>(piece.size()), SEEK_CUR) < 0) {
        return PosixError("seek " + tmp, errno);
      }
    } else {
      SFS_RETURN_IF_ERROR(WriteAll(out.get(), piece, tmp));
    }
    done(piece.size(), 0);
    return Status::Ok();
  });
  if (!read.ok()) return fail(read);
  if (got != attr.size) {
    return fail(Status::Unavailable("the file changed while it was read: get it again"));
  }
  if (::ftruncate(out.get(), static_cast<off_t>(attr.size)) != 0) {
    return fail(PosixError("size " + tmp, errno));
  }
  struct timespec times[2] = {NsToTimespec(attr.atime_ns), NsToTimespec(attr.mtime_ns)};
  if (::fchmod(out.get(), attr.mode & 07777) != 0) return fail(PosixError("chmod " + tmp, errno));
  if (::futimens(out.get(), times) != 0) return fail(PosixError("set times " + tmp, errno));
  if (out.Close() != 0) return fail(PosixError("close " + tmp, errno));
  if (::rename(tmp.c_str(), local.c_str()) != 0) return fail(PosixError("rename " + local, errno));
  done(0, 1);
  return Status::Ok();
}

// Writes a tree of the drive (a file, a link, or a folder and all below it) to a local path.
// Folders and links are made as the walk meets them; files are fetched kThreads at a time (a
// small file costs a round trip to a node, so one at a time would leave the network idle);
// folders get their modes and times last (filling a folder changes its mtime), deepest first;
// the file system is synced once at the end.
class TreeGetter {
 public:
  TreeGetter(DriveTree& tree, Progress* progress) : tree_(tree), progress_(progress) {}

  Status Get(const std::string& path, const InodeAttr& attr, const std::string& local) {
    Status walked = Walk(path, attr, local);
    Status files = Wait();
    SFS_RETURN_IF_ERROR(walked);
    SFS_RETURN_IF_ERROR(files);
    for (auto it = folders_.rbegin(); it != folders_.rend(); ++it) {
      const auto& [where, a] = *it;
      struct timespec times[2] = {NsToTimespec(a.atime_ns), NsToTimespec(a.mtime_ns)};
      if (::chmod(where.c_str(), a.mode & 07777) != 0) return PosixError("chmod " + where, errno);
      if (::utimensat(AT_FDCWD, where.c_str(), times, 0) != 0) {
        return PosixError("set times " + where, errno);
      }
    }
    // Everything got is on disk before the command says so.
    const std::string parent = std::filesystem::path(local).parent_path().string();
    UniqueFd dir(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid() || ::syncfs(dir.get()) != 0) return PosixError("sync " + local, errno);
    return Status::Ok();
  }

 private:
  static constexpr int kThreads = 8;

  Status Walk(const std::string& path, const InodeAttr& attr, const std::string& local) {
    if (attr.kind == FileKind::kFile) return Submit(path, attr, local);
    if (attr.kind == FileKind::kSymlink) {
      SFS_ASSIGN_OR_RETURN(std::string target, tree_.ReadLink(path, attr));
      ::unlink(local.c_str());  // as cp -a: an existing non-folder entry is replaced
      if (::symlink(target.c_str(), local.c_str()) != 0) {
        return PosixError("create link " + local, errno);
      }
      struct timespec times[2] = {NsToTimespec(attr.atime_ns), NsToTimespec(attr.mtime_ns)};
      if (::utimensat(AT_FDCWD, local.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return PosixError("set times " + local, errno);
      }
      return Status::Ok();
    }
    if (::mkdir(local.c_str(), 0700) != 0 && errno != EEXIST) {
      return PosixError("create folder " + local, errno);
    }
    folders_.emplace_back(local, attr);
    return ForEachEntry(tree_, path, attr, [&](const backend::DirEntry& e) {
      return Walk(ChildPath(path, e.name), e.attr, local + "/" + e.name);
    });
  }

  // Queues a file, waiting while twice kThreads are queued; stops at the first error.
  Status Submit(const std::string& path, const InodeAttr& attr, const std::string& local) {
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() REQUIRES(mu_) { return pending_ < 2 * kThreads; });
      if (!error_.ok()) return error_;
      ++pending_;
    }
    pool_.Submit([this, path, attr, local] {
      Status s = GetFile(tree_, path, attr, local, [this](uint64_t bytes, uint64_t files) {
        MutexLock lock(&mu_);
        progress_->Add(bytes, files);
      });
      MutexLock lock(&mu_);
      if (!s.ok() && error_.ok()) error_ = s.WithContext(local);
      --pending_;
      cv_.NotifyAll();
    });
    return Status::Ok();
  }

  Status Wait() {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_, [this]() REQUIRES(mu_) { return pending_ == 0; });
    return error_;
  }

  DriveTree& tree_;
  std::vector<std::pair<std::string, InodeAttr>> folders_;  // in the order made
  Mutex mu_;
  CondVar cv_;
  Progress* const progress_ GUARDED_BY(mu_);
  int pending_ GUARDED_BY(mu_) = 0;
  Status error_ GUARDED_BY(mu_);
  ThreadPool pool_{kThreads};  // last: its destructor runs before the members above go
};

// Bytes of the files at and below `path` (whose attributes are `attr`).
Result<uint64_t> TreeBytes(DriveTree& tree, const std::string& path, const InodeAttr& attr) {
  if (attr.kind == FileKind::kFile) return attr.size;
  if (attr.kind != FileKind::kDirectory) return uint64_t{0};
  uint64_t total = 0;
  SFS_RETURN_IF_ERROR(ForEachEntry(tree, path, attr, [&](const backend::DirEntry& e) {
    SFS_ASSIGN_OR_RETURN(uint64_t b, TreeBytes(tree, ChildPath(path, e.name), e.attr));
    total += b;
    return Status::Ok();
  }));
  return total;
}

// `path` as the commands print it: absolute, without a trailing '/'.
std::string ShownPath(const std::string& path) {
  std::string p = path.empty() || path[0] != '/' ? "/" + path : path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

int RunGet(const GetFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs get");
  if (!opened.ok()) return Failure("get", "open drive", opened.status());
  DriveTree& tree = *opened->tree;
  auto attr = tree.Stat(f.remote);
  if (!attr.ok()) return Failure("get", f.remote, attr.status());
  std::string local = f.local;
  struct stat lst {};
  if (::stat(local.c_str(), &lst) == 0 && S_ISDIR(lst.st_mode)) {
    local += "/" + (f.remote == "/" ? std::string("drive") : Base(f.remote));
  }
  const std::string path = ShownPath(f.remote);
  // The total for the progress line costs a walk of the catalog: only on a terminal.
  uint64_t total = 0;
  if (::isatty(STDERR_FILENO) == 1) total = TreeBytes(tree, path, *attr).value_or(0);
  Progress progress("got", total);
  if (Status s = TreeGetter(tree, &progress).Get(path, *attr, local); !s.ok()) {
    return Failure("get", f.remote, s);
  }
  return 0;
}

struct LsFlags {
  DriveFlags drive;
  std::string remote = "/";
  bool long_format = false;
  bool recursive = false;
};

std::string ModeString(const InodeAttr& a) {
  std::string s = a.kind == FileKind::kDirectory ? "d" : a.kind == FileKind::kSymlink ? "l" : "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (a.mode & (0400u >> i)) ? rwx[i] : '-';
  return s;
}

int RunLs(const LsFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs ls");
  if (!opened.ok()) return Failure("ls", "open drive", opened.status());
  DriveTree& tree = *opened->tree;
  auto at = tree.Stat(f.remote);
  if (!at.ok()) return Failure("ls", f.remote, at.status());
  auto print = [&](const std::string& name, const InodeAttr& a) {
    if (!f.long_format) {
      std::printf("%s\n", name.c_str());
      return;
    }
    char when[32];
    time_t secs = static_cast<time_t>(a.mtime_ns / 1'000'000'000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    std::printf("%s %3u %12llu %s %s\n", ModeString(a).c_str(), a.nlink,
                static_cast<unsigned long long>(a.size), when, name.c_str());
  };
  if (at->kind != FileKind::kDirectory) {
    print(Base(f.remote), *at);
    return 0;
  }
  // One folder's entries; with -R each folder is headed "PATH:" and its subfolders follow, in
  // name order, each after a blank line (as ls -R).
  std::function<Status(const std::string&, const InodeAttr&, bool)> list =
      [&](const std::string& path, const InodeAttr& dir, bool first) -> Status {
    if (f.recursive) std::printf("%s%s:\n", first ? "" : "\n", path.c_str());
    std::vector<backend::DirEntry> folders;
    SFS_RETURN_IF_ERROR(ForEachEntry(tree, path, dir, [&](const backend::DirEntry& e) {
      print(e.name, e.attr);
      if (f.recursive && e.attr.kind == FileKind::kDirectory) folders.push_back(e);
      return Status::Ok();
    }));
    for (const auto& e : folders) SFS_RETURN_IF_ERROR(list(ChildPath(path, e.name), e.attr, false));
    return Status::Ok();
  };
  if (Status s = list(ShownPath(f.remote), *at, true); !s.ok()) return Failure("ls", f.remote, s);
  std::fflush(stdout);
  return 0;
}

struct MkdirFlags {
  DriveFlags drive;
  std::string remote;
  bool parents = false;
};

int RunMkdir(const MkdirFlags& f) {
  if (f.parents && (f.remote.empty() || f.remote.front() != '/')) {
    return UsageError("mkdir", "'" + f.remote + "' is not an absolute drive path");
  }
  auto opened = OpenTree(f.drive, "shardfs mkdir");
  if (!opened.ok()) return Failure("mkdir", "open drive", opened.status());
  if (Status s = opened->tree->Mkdir(f.remote, f.parents); !s.ok()) {
    return Failure("mkdir", f.remote, s);
  }
  return 0;
}

struct RmFlags {
  DriveFlags drive;
  std::vector<std::string> remotes;
  bool recursive = false;
};

int RunRm(const RmFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs rm");
  if (!opened.ok()) return Failure("rm", "open drive", opened.status());
  for (const std::string& remote : f.remotes) {
    if (Status s = opened->tree->Remove(remote, f.recursive); !s.ok()) {
      return Failure("rm", remote, s);
    }
  }
  return 0;
}

struct MvFlags {
  DriveFlags drive;
  std::string from;
  std::string to;
};

int RunMv(const MvFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs mv");
  if (!opened.ok()) return Failure("mv", "open drive", opened.status());
  DriveTree& tree = *opened->tree;
  if (PathParts(f.from).empty()) {
    return Failure("mv", f.from, Status::InvalidArgument("'/' cannot be moved"));
  }
  // Into a folder that exists, under the same name; else to the path itself.
  std::string to = f.to;
  if (auto at = tree.Stat(to); at.ok() && at->kind == FileKind::kDirectory) {
    to = ChildPath(to, Base(f.from));
  }
  if (Status moved = tree.Move(f.from, to); !moved.ok()) {
    return Failure("mv", f.from + " -> " + to, moved);
  }
  return 0;
}

struct StatFlags {
  DriveFlags drive;
  std::string remote;
  bool json = false;
};

int RunStat(const StatFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs stat");
  if (!opened.ok()) return Failure("stat", "open drive", opened.status());
  auto a = opened->tree->Stat(f.remote);
  if (!a.ok()) return Failure("stat", f.remote, a.status());
  const char* kind = a->kind == FileKind::kDirectory ? "folder"
                     : a->kind == FileKind::kSymlink ? "symlink"
                                                     : "file";
  if (f.json) {
    nlohmann::json j = {
        {"path", f.remote},        {"inode", a->ino},        {"kind", kind},
        {"mode", a->mode},         {"size", a->size},        {"links", a->nlink},
        {"uid", a->uid},           {"gid", a->gid},          {"atime_ns", a->atime_ns},
        {"mtime_ns", a->mtime_ns}, {"ctime_ns", a->ctime_ns}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf(
      "%s: %s, %s, %llu bytes, %u link(s), inode %llu, mtime %lld.%09lld\n", f.remote.c_str(), kind,
      ModeString(*a).c_str(), static_cast<unsigned long long>(a->size), a->nlink,
      static_cast<unsigned long long>(a->ino), static_cast<long long>(a->mtime_ns / 1'000'000'000),
      static_cast<long long>(a->mtime_ns % 1'000'000'000));
  return 0;
}

struct DuFlags {
  DriveFlags drive;
  std::string remote = "/";
};

int RunDu(const DuFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs du");
  if (!opened.ok()) return Failure("du", "open drive", opened.status());
  auto at = opened->tree->Stat(f.remote);
  if (!at.ok()) return Failure("du", f.remote, at.status());
  auto bytes = TreeBytes(*opened->tree, ShownPath(f.remote), *at);
  if (!bytes.ok()) return Failure("du", f.remote, bytes.status());
  std::printf("%llu\t%s\n", static_cast<unsigned long long>(*bytes), f.remote.c_str());
  return 0;
}

struct GcFlags {
  DriveFlags drive;
  bool json = false;
};

int RunGc(const GcFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs gc");
  if (!drive.ok()) return Failure("gc", "open drive", drive.status());
  auto r = (*drive)->CollectGarbage();
  if (!r.ok()) return Failure("gc", "collect", r.status());
  if (!r->checkpoint.ok()) {
    std::fprintf(stderr,
                 "shardfs gc: nothing new dropped: no checkpoint of the catalog could be "
                 "stored first (%s)\n",
                 r->checkpoint.ToString().c_str());
  }
  if (f.json) {
    nlohmann::json j = {{"packs_dropped", r->packs_dropped},
                        {"bytes_dropped", r->bytes_dropped},
                        {"checkpoint_packs_dropped", r->checkpoint_packs_dropped},
                        {"shards_deleted", r->shards_deleted},
                        {"deletions_pending", r->deletions_pending},
                        {"checkpoint_error", r->checkpoint.ok() ? "" : r->checkpoint.ToString()}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "gc: %zu unused pack(s) dropped (%s before coding) and %zu of old catalog "
        "checkpoints; %zu shard(s) deleted from nodes",
        r->packs_dropped, FormatByteSize(r->bytes_dropped).c_str(), r->checkpoint_packs_dropped,
        r->shards_deleted);
    if (r->deletions_pending > 0) {
      std::printf("; %zu wait for nodes that did not answer (the next gc retries)",
                  r->deletions_pending);
    }
    std::printf("\n");
  }
  return r->deletions_pending == 0 && r->checkpoint.ok() ? 0 : kExitFailure;
}

struct StatusFlags {
  DriveFlags drive;
  bool json = false;
};

// `shardfs status --json`: the API's usage object, with the drive's name, its durability
// and its nodes.
Result<nlohmann::json> StatusJson(OpenedTree& opened) {
  if (!opened.drive) {
    // The process that holds the drive asks its nodes now (fresh=1), as a command would.
    SFS_ASSIGN_OR_RETURN(nlohmann::json s, opened.daemon->Call("GET", "/api/v1/status?fresh=1"));
    nlohmann::json j = s.at("usage");
    j["drive"] = s.at("drive");
    j["durability"] = s.at("durability");
    j["nodes"] = s.at("nodes");
    return j;
  }
  backend::Drive& d = *opened.drive;
  // Each node asked now; then what this client has seen of it, over its sessions (the
  // catalog's nodes table), and its state in the member list (api::NodesJson).
  const auto answers = d.AskNodes();
  const backend::Durability durability = DurabilityOrEmpty(d);
  SFS_ASSIGN_OR_RETURN(nlohmann::json j, api::UsageJson(d));
  j["drive"] = d.config().name;
  j["durability"] = api::DurabilityJson(durability);
  j["nodes"] = api::NodesJson(d, &answers);
  return j;
}

int RunStatus(const StatusFlags& f) {
  auto opened = OpenTree(f.drive, "shardfs status");
  if (!opened.ok()) return Failure("status", "open drive", opened.status());
  auto status = StatusJson(*opened);
  if (!status.ok()) return Failure("status", "status", status.status());
  const nlohmann::json& j = *status;
  if (f.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  auto u64 = [](const nlohmann::json& o, const char* key) { return o.value(key, uint64_t{0}); };
  const int k = j.value("k", 0), m = j.value("m", 0);
  std::printf("drive %s: RS(%d,%d); %llu files, %llu folders, %s in files\n",
              j.value("drive", "").c_str(), k, m, static_cast<unsigned long long>(u64(j, "files")),
              static_cast<unsigned long long>(u64(j, "folders")),
              FormatByteSize(u64(j, "file_bytes")).c_str());
  const uint64_t pack_bytes = u64(j, "pack_bytes");
  std::printf(
      "stored: %llu packs, %s before coding, about %s on nodes; %llu chunks, %llu unused (gc)\n",
      static_cast<unsigned long long>(u64(j, "packs")), FormatByteSize(pack_bytes).c_str(),
      FormatByteSize(k > 0 ? pack_bytes / static_cast<uint64_t>(k) * static_cast<uint64_t>(k + m)
                           : 0)
          .c_str(),
      static_cast<unsigned long long>(u64(j, "chunks")),
      static_cast<unsigned long long>(u64(j, "unreferenced_chunks")));
  const nlohmann::json& up = j.at("pending_uploads");
  if (u64(up, "layers") == 0) {
    std::printf("pending uploads: none\n");
  } else {
    const std::string error = up.value("last_error", "");
    std::printf("pending uploads: %s in %llu file(s) (shardfs sync stores them)%s%s\n",
                FormatByteSize(u64(up, "bytes")).c_str(),
                static_cast<unsigned long long>(u64(up, "files")),
                error.empty() ? "" : "; last error: ", error.c_str());
  }
  std::printf("nodes:\n");
  for (const auto& n : j.at("nodes")) {
    if (n.value("up", false)) {
      std::printf("  %-22s %.16s  up    %llu shards, %s used, %s free\n",
                  n["address"].get<std::string>().c_str(), n["id"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(u64(n, "shards")),
                  FormatByteSize(u64(n, "used")).c_str(), FormatByteSize(u64(n, "free")).c_str());
    } else {
      std::printf("  %-22s %.16s  DOWN  %s\n", n["address"].get<std::string>().c_str(),
                  n["id"].get<std::string>().c_str(), n.value("error", "").c_str());
    }
    const uint64_t bad = u64(n, "bad_bytes");
    const std::string liar =
        bad > 0 ? ", SERVED BAD BYTES " + std::to_string(bad) + " time(s)" : std::string();
    std::printf(
        "  %-22s seen: %llu answers, %llu failures, %.1f ms latency; network: %s; "
        "reputation %.2f%s\n",
        "", static_cast<unsigned long long>(u64(n, "successes")),
        static_cast<unsigned long long>(u64(n, "failures")), n.value("latency_ms", 0.0),
        n.value("state", "").c_str(), n.value("reputation", 0.0), liar.c_str());
  }
  if (j.at("durability").is_object()) {
    PrintDurabilityLine(api::DurabilityFromJson(j.at("durability")), k, m);
  } else {
    std::printf("durability: unknown (the catalog could not be read)\n");
  }
  return 0;
}

}  // namespace

std::map<std::string, std::function<int()>> AddFileCommands(CLI::App& app) {
  std::map<std::string, std::function<int()>> run;

  auto put = std::make_shared<PutFlags>();
  CLI::App* p = app.add_subcommand("put", "Store a local file or tree in the drive.");
  p->add_option("local", put->local, "The local file, link or folder (with all below it)")
      ->required();
  p->add_option("remote", put->remote, "Where in the drive: a path, or a folder")->required();
  p->add_flag("-v,--verbose", put->verbose,
              "Print 'stored LOCAL' for each file once it is stored and committed");
  AddDriveFlags(p, &put->drive);
  run["put"] = [put] { return RunPut(*put); };

  auto get = std::make_shared<GetFlags>();
  CLI::App* g = app.add_subcommand("get", "Copy a file or tree of the drive to a local path.");
  g->add_option("remote", get->remote, "The drive's file, link or folder")->required();
  g->add_option("local", get->local, "The local path, or a folder")->required();
  AddDriveFlags(g, &get->drive);
  run["get"] = [get] { return RunGet(*get); };

  auto ls = std::make_shared<LsFlags>();
  CLI::App* l = app.add_subcommand("ls", "List a folder of the drive.");
  l->add_option("remote", ls->remote, "The folder (default /)");
  l->add_flag("-l", ls->long_format, "Mode, links, size, modification time (UTC), name");
  l->add_flag("-R,--recursive", ls->recursive,
              "Every folder below too, each headed by its path (as ls -R)");
  AddDriveFlags(l, &ls->drive);
  run["ls"] = [ls] { return RunLs(*ls); };

  auto mk = std::make_shared<MkdirFlags>();
  CLI::App* m = app.add_subcommand("mkdir", "Create a folder in the drive.");
  m->add_option("remote", mk->remote, "The folder's path")->required();
  m->add_flag("-p,--parents", mk->parents, "Create missing parents; an existing folder is fine");
  AddDriveFlags(m, &mk->drive);
  run["mkdir"] = [mk] { return RunMkdir(*mk); };

  auto rm = std::make_shared<RmFlags>();
  CLI::App* r = app.add_subcommand("rm", "Remove files (and, with -r, folders) from the drive.");
  r->add_option("remote", rm->remotes, "Paths in the drive")->required();
  r->add_flag("-r,--recursive", rm->recursive, "Remove folders and everything in them");
  AddDriveFlags(r, &rm->drive);
  run["rm"] = [rm] { return RunRm(*rm); };

  auto mv = std::make_shared<MvFlags>();
  CLI::App* v = app.add_subcommand("mv", "Move or rename a file or folder in the drive.");
  v->add_option("from", mv->from, "The path to move")->required();
  v->add_option("to", mv->to, "The new path, or a folder to move it into")->required();
  AddDriveFlags(v, &mv->drive);
  run["mv"] = [mv] { return RunMv(*mv); };

  auto st = std::make_shared<StatFlags>();
  CLI::App* t = app.add_subcommand("stat", "Show a file's or folder's attributes.");
  t->add_option("remote", st->remote, "The path in the drive")->required();
  t->add_flag("--json", st->json, "Print them as JSON");
  AddDriveFlags(t, &st->drive);
  run["stat"] = [st] { return RunStat(*st); };

  auto du = std::make_shared<DuFlags>();
  CLI::App* d = app.add_subcommand("du", "Bytes of the files at and below a path.");
  d->add_option("remote", du->remote, "The path in the drive (default /)");
  AddDriveFlags(d, &du->drive);
  run["du"] = [du] { return RunDu(*du); };

  auto gc = std::make_shared<GcFlags>();
  CLI::App* gcc = app.add_subcommand(
      "gc", "Delete from the nodes the packs no file uses any more (exit 1 if a node was down).");
  gcc->add_flag("--json", gc->json, "Print the result as JSON");
  AddDriveFlags(gcc, &gc->drive);
  run["gc"] = [gc] { return RunGc(*gc); };

  auto status = std::make_shared<StatusFlags>();
  CLI::App* u = app.add_subcommand("status", "The drive's usage and its nodes.");
  u->add_flag("--json", status->json, "Print it as JSON");
  AddDriveFlags(u, &status->drive);
  run["status"] = [status] { return RunStatus(*status); };
  return run;
}

}  // namespace shardfs::cli
