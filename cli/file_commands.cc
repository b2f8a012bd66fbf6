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

constexpr size_t kReadPiece = 4 << 20;
constexpr size_t kListPage = 1000;

std::string Base(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

struct PutFlags {
  DriveFlags drive;
  std::string local;
  std::string remote;
  bool verbose = false;
};

// Removes the entry `name` in `parent` (a folder only with `recursive`, and its contents
// first). The chunks it used stay on the nodes until gc.
Status Remove(backend::Drive& drive, Ino parent, const std::string& name, bool recursive) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive.Lookup(parent, name));
  if (a.kind == FileKind::kDirectory && !recursive) {
    return Status::IsDirectory("'" + name + "' is a folder (use -r)");
  }
  return drive.RemoveTree(parent, name);
}

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
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(local, ec)) {
      names.push_back(e.path().filename().string());
    }
    if (ec) return PosixError("list " + local, ec.value());
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) SFS_RETURN_IF_ERROR(Put(local + "/" + n, ino, n));
    keep.mode = how.mode;
    attrs_.emplace_back(ino, keep);
    return Status::Ok();
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(local.c_str(), target.data(), target.size());
    if (n < 0) return PosixError("read link " + local, errno);
    target.resize(static_cast<size_t>(n));
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
  if (verbose_) {
    for (const std::string& p : batch_paths_) std::printf("stored %s\n", p.c_str());
    std::fflush(stdout);
  }
  progress_.Add(batch_bytes_, batch_.size());
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

int RunPut(const PutFlags& f) {
  struct stat st {};
  if (::lstat(f.local.c_str(), &st) != 0) return Failure("put", f.local, PosixError("stat", errno));
  auto drive = OpenDrive(f.drive, "shardfs put");
  if (!drive.ok()) return Failure("put", "open drive", drive.status());
  Catalog& cat = (*drive)->catalog();
  // REMOTE may name a folder (LOCAL goes in it under its own name) or the target itself.
  std::string remote = f.remote;
  if (auto at = ResolvePath(cat, remote); at.ok() && at->kind == FileKind::kDirectory) {
    remote = (remote.back() == '/' ? remote : remote + "/") + Base(f.local);
  }
  auto parent = ResolveParent(cat, remote);
  if (!parent.ok()) return Failure("put", remote, parent.status());
  TreePutter putter(**drive, f.verbose);
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

// Writes the drive's file `attr` to `local`: into a temporary file beside it, renamed over it
// when whole, so a failed get leaves the target as it was. Not synced: the caller syncs the
// file system once at the end. `done(bytes, files)` reports progress.
Status GetFile(backend::Drive& drive, const InodeAttr& attr, const std::string& local,
               const std::function<void(uint64_t, uint64_t)>& done) {
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
  Bytes buf(std::min<uint64_t>(kReadPiece, std::max<uint64_t>(attr.size, 1)));
  for (uint64_t off = 0; off < attr.size;) {
    auto n = drive.Read(attr.ino, off, buf);
    if (!n.ok()) return fail(n.status());
    if (*n == 0) return fail(Status::Corruption("file ended early"));
    ByteSpan piece = ByteSpan(buf).first(*n);
    // Zeros are not written: the file keeps them as a hole (it is sized at the end).
    if (std::all_of(piece.begin(), piece.end(), [](uint8_t b) { return b == 0; })) {
      if (::lseek(out.get(), static_cast<off_t>(*n), SEEK_CUR) < 0) {
        return fail(PosixError("seek " + tmp, errno));
      }
    } else if (Status s = WriteAll(out.get(), piece, tmp); !s.ok()) {
      return fail(s);
    }
    off += *n;
    done(*n, 0);
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
  TreeGetter(backend::Drive& drive, Progress* progress) : drive_(drive), progress_(progress) {}

  Status Get(const InodeAttr& attr, const std::string& local) {
    Status walked = Walk(attr, local);
    Status files = Wait();
    SFS_RETURN_IF_ERROR(walked);
    SFS_RETURN_IF_ERROR(files);
    for (auto it = folders_.rbegin(); it != folders_.rend(); ++it) {
      const auto& [path, a] = *it;
      struct timespec times[2] = {NsToTimespec(a.atime_ns), NsToTimespec(a.mtime_ns)};
      if (::chmod(path.c_str(), a.mode & 07777) != 0) return PosixError("chmod " + path, errno);
      if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) {
        return PosixError("set times " + path, errno);
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

  Status Walk(const InodeAttr& attr, const std::string& local) {
    if (attr.kind == FileKind::kFile) return Submit(attr, local);
    if (attr.kind == FileKind::kSymlink) {
      SFS_ASSIGN_OR_RETURN(std::string target, drive_.catalog().ReadLink(attr.ino));
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
    std::string after;
    while (true) {
      SFS_ASSIGN_OR_RETURN(auto page, drive_.catalog().ReadDir(attr.ino, after, kListPage));
      for (const auto& e : page) SFS_RETURN_IF_ERROR(Walk(e.attr, local + "/" + e.name));
      if (page.size() < kListPage) break;
      after = page.back().name;
    }
    return Status::Ok();
  }

  // Queues a file, waiting while twice kThreads are queued; stops at the first error.
  Status Submit(const InodeAttr& attr, const std::string& local) {
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() REQUIRES(mu_) { return pending_ < 2 * kThreads; });
      if (!error_.ok()) return error_;
      ++pending_;
    }
    pool_.Submit([this, attr, local] {
      Status s = GetFile(drive_, attr, local, [this](uint64_t bytes, uint64_t files) {
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

  backend::Drive& drive_;
  std::vector<std::pair<std::string, InodeAttr>> folders_;  // in the order made
  Mutex mu_;
  CondVar cv_;
  Progress* const progress_ GUARDED_BY(mu_);
  int pending_ GUARDED_BY(mu_) = 0;
  Status error_ GUARDED_BY(mu_);
  ThreadPool pool_{kThreads};  // last: its destructor runs before the members above go
};

// Bytes of the files at and below `attr`.
Result<uint64_t> TreeBytes(Catalog& cat, const InodeAttr& attr) {
  if (attr.kind == FileKind::kFile) return attr.size;
  if (attr.kind != FileKind::kDirectory) return uint64_t{0};
  uint64_t total = 0;
  std::string after;
  while (true) {
    SFS_ASSIGN_OR_RETURN(auto page, cat.ReadDir(attr.ino, after, kListPage));
    for (const auto& e : page) {
      SFS_ASSIGN_OR_RETURN(uint64_t b, TreeBytes(cat, e.attr));
      total += b;
    }
    if (page.size() < kListPage) break;
    after = page.back().name;
  }
  return total;
}

int RunGet(const GetFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs get");
  if (!drive.ok()) return Failure("get", "open drive", drive.status());
  auto attr = ResolvePath((*drive)->catalog(), f.remote);
  if (!attr.ok()) return Failure("get", f.remote, attr.status());
  std::string local = f.local;
  struct stat lst {};
  if (::stat(local.c_str(), &lst) == 0 && S_ISDIR(lst.st_mode)) {
    local += "/" + (f.remote == "/" ? std::string("drive") : Base(f.remote));
  }
  // The total for the progress line costs a walk of the catalog: only on a terminal.
  uint64_t total = 0;
  if (::isatty(STDERR_FILENO) == 1) total = TreeBytes((*drive)->catalog(), *attr).value_or(0);
  Progress progress("got", total);
  if (Status s = TreeGetter(**drive, &progress).Get(*attr, local); !s.ok()) {
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
  auto drive = OpenDrive(f.drive, "shardfs ls");
  if (!drive.ok()) return Failure("ls", "open drive", drive.status());
  Catalog& cat = (*drive)->catalog();
  auto at = ResolvePath(cat, f.remote);
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
  std::function<Status(Ino, const std::string&, bool)> list = [&](Ino ino, const std::string& path,
                                                                  bool first) -> Status {
    if (f.recursive) std::printf("%s%s:\n", first ? "" : "\n", path.c_str());
    std::vector<std::pair<std::string, Ino>> folders;
    std::string after;
    while (true) {
      SFS_ASSIGN_OR_RETURN(auto page, cat.ReadDir(ino, after, kListPage));
      for (const auto& e : page) {
        print(e.name, e.attr);
        if (f.recursive && e.attr.kind == FileKind::kDirectory) {
          folders.emplace_back(e.name, e.attr.ino);
        }
      }
      if (page.size() < kListPage) break;
      after = page.back().name;
    }
    for (const auto& [name, sub] : folders) {
      SFS_RETURN_IF_ERROR(list(sub, (path == "/" ? "" : path) + "/" + name, false));
    }
    return Status::Ok();
  };
  std::string path = f.remote.empty() || f.remote[0] != '/' ? "/" + f.remote : f.remote;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (Status s = list(at->ino, path, true); !s.ok()) return Failure("ls", f.remote, s);
  std::fflush(stdout);
  return 0;
}

struct MkdirFlags {
  DriveFlags drive;
  std::string remote;
  bool parents = false;
};

int RunMkdir(const MkdirFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs mkdir");
  if (!drive.ok()) return Failure("mkdir", "open drive", drive.status());
  Catalog& cat = (*drive)->catalog();
  if (!f.parents) {
    auto parent = ResolveParent(cat, f.remote);
    if (!parent.ok()) return Failure("mkdir", f.remote, parent.status());
    auto made = (*drive)->Mkdir(parent->first, parent->second, backend::NewInode{0755, 0, 0});
    if (!made.ok()) return Failure("mkdir", f.remote, made.status());
    return 0;
  }
  // -p: every missing folder on the way; an existing folder is fine.
  if (f.remote.empty() || f.remote.front() != '/') {
    return UsageError("mkdir", "'" + f.remote + "' is not an absolute drive path");
  }
  Ino at = backend::kRootIno;
  for (const std::string& name : PathParts(f.remote)) {
    auto next = cat.Lookup(at, name);
    if (next.ok() && next->kind == FileKind::kDirectory) {
      at = next->ino;
      continue;
    }
    if (next.ok() || next.status().code() != Code::kNotFound) {
      return Failure(
          "mkdir", f.remote,
          next.ok() ? Status::NotDirectory("'" + name + "' is not a folder") : next.status());
    }
    auto made = (*drive)->Mkdir(at, name, backend::NewInode{0755, 0, 0});
    if (!made.ok()) return Failure("mkdir", f.remote, made.status());
    at = made->ino;
  }
  return 0;
}

struct RmFlags {
  DriveFlags drive;
  std::vector<std::string> remotes;
  bool recursive = false;
};

int RunRm(const RmFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs rm");
  if (!drive.ok()) return Failure("rm", "open drive", drive.status());
  Catalog& cat = (*drive)->catalog();
  for (const std::string& remote : f.remotes) {
    auto parent = ResolveParent(cat, remote);
    if (!parent.ok()) return Failure("rm", remote, parent.status());
    if (Status s = Remove(**drive, parent->first, parent->second, f.recursive); !s.ok()) {
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
  auto drive = OpenDrive(f.drive, "shardfs mv");
  if (!drive.ok()) return Failure("mv", "open drive", drive.status());
  Catalog& cat = (*drive)->catalog();
  auto src = ResolveParent(cat, f.from);
  if (!src.ok()) return Failure("mv", f.from, src.status());
  // Into a folder that exists, under the same name; else to the path itself.
  std::string to = f.to;
  if (auto at = ResolvePath(cat, to); at.ok() && at->kind == FileKind::kDirectory) {
    to = (to.back() == '/' ? to : to + "/") + src->second;
  }
  auto dst = ResolveParent(cat, to);
  if (!dst.ok()) return Failure("mv", to, dst.status());
  Status moved = (*drive)->Rename(src->first, src->second, dst->first, dst->second,
                                  backend::RenameMode::kReplace);
  if (!moved.ok()) return Failure("mv", f.from + " -> " + to, moved);
  return 0;
}

struct StatFlags {
  DriveFlags drive;
  std::string remote;
  bool json = false;
};

int RunStat(const StatFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs stat");
  if (!drive.ok()) return Failure("stat", "open drive", drive.status());
  auto a = ResolvePath((*drive)->catalog(), f.remote);
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
  auto drive = OpenDrive(f.drive, "shardfs du");
  if (!drive.ok()) return Failure("du", "open drive", drive.status());
  auto at = ResolvePath((*drive)->catalog(), f.remote);
  if (!at.ok()) return Failure("du", f.remote, at.status());
  auto bytes = TreeBytes((*drive)->catalog(), *at);
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

int RunStatus(const StatusFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs status");
  if (!drive.ok()) return Failure("status", "open drive", drive.status());
  backend::Drive& d = **drive;
  const backend::DriveConfig& c = d.config();
  // Each node asked now; then what this client has seen of it, over its sessions (the
  // catalog's nodes table), and its state in the member list (api::NodesJson).
  std::vector<Result<backend::PeerStatus>> asked;
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    asked.push_back(d.peers().peer(i).GetStatus());
    if (asked.back().ok()) d.peers().ReportFree(i, asked.back()->free);
  }
  const backend::Durability durability = DurabilityOrEmpty(d);
  nlohmann::json nodes = api::NodesJson(d);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& st = asked[i];
    nodes[i]["up"] = st.ok();
    if (st.ok()) {
      nodes[i]["shards"] = st->shards;
      nodes[i]["used"] = st->used;
      nodes[i]["free"] = st->free;
      nodes[i]["version"] = st->version;
    } else {
      nodes[i]["error"] = st.status().ToString();
    }
  }
  if (f.json) {
    auto j = api::UsageJson(d);
    if (!j.ok()) return Failure("status", "catalog", j.status());
    (*j)["drive"] = c.name;
    (*j)["durability"] = api::DurabilityJson(durability);
    (*j)["nodes"] = nodes;
    std::printf("%s\n", j->dump(2).c_str());
    return 0;
  }
  auto totals = d.catalog().GetTotals();
  if (!totals.ok()) return Failure("status", "catalog", totals.status());
  const backend::UploadState up = d.Uploads();
  std::printf("drive %s: RS(%d,%d); %llu files, %llu folders, %s in files\n", c.name.c_str(), c.k,
              c.m, static_cast<unsigned long long>(totals->files),
              static_cast<unsigned long long>(totals->folders),
              FormatByteSize(totals->file_bytes).c_str());
  std::printf(
      "stored: %llu packs, %s before coding, about %s on nodes; %llu chunks, %llu unused (gc)\n",
      static_cast<unsigned long long>(totals->packs), FormatByteSize(totals->pack_bytes).c_str(),
      FormatByteSize(totals->pack_bytes / static_cast<uint64_t>(c.k) *
                     static_cast<uint64_t>(c.k + c.m))
          .c_str(),
      static_cast<unsigned long long>(totals->chunks),
      static_cast<unsigned long long>(totals->unreferenced_chunks));
  if (up.staged.layers == 0) {
    std::printf("pending uploads: none\n");
  } else {
    std::printf("pending uploads: %s in %zu file(s) (shardfs sync stores them)%s%s\n",
                FormatByteSize(up.staged.bytes).c_str(), up.staged.files,
                up.last_error.ok() ? "" : "; last error: ",
                up.last_error.ok() ? "" : up.last_error.ToString().c_str());
  }
  std::printf("nodes:\n");
  for (const auto& n : nodes) {
    if (n["up"].get<bool>()) {
      std::printf("  %-22s %.16s  up    %llu shards, %s used, %s free\n",
                  n["address"].get<std::string>().c_str(), n["id"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(n["shards"].get<uint64_t>()),
                  FormatByteSize(n["used"].get<uint64_t>()).c_str(),
                  FormatByteSize(n["free"].get<uint64_t>()).c_str());
    } else {
      std::printf("  %-22s %.16s  DOWN  %s\n", n["address"].get<std::string>().c_str(),
                  n["id"].get<std::string>().c_str(), n["error"].get<std::string>().c_str());
    }
    const uint64_t bad = n["bad_bytes"].get<uint64_t>();
    const std::string liar =
        bad > 0 ? ", SERVED BAD BYTES " + std::to_string(bad) + " time(s)" : std::string();
    std::printf(
        "  %-22s seen: %llu answers, %llu failures, %.1f ms latency; network: %s; "
        "reputation %.2f%s\n",
        "", static_cast<unsigned long long>(n["successes"].get<uint64_t>()),
        static_cast<unsigned long long>(n["failures"].get<uint64_t>()),
        n["latency_ms"].get<double>(), n["state"].get<std::string>().c_str(),
        n["reputation"].get<double>(), liar.c_str());
  }
  PrintDurabilityLine(durability, c.k, c.m);
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
