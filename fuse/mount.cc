#define FUSE_USE_VERSION 312
#include "fuse/mount.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fs.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/logging.h"
#include "base/thread_annotations.h"
#include "base/wall_clock.h"

namespace shardfs::fuse {

using backend::DirEntry;
using backend::FileKind;
using backend::Ino;
using backend::InodeAttr;

namespace {

// Directory entries read from the catalog per page.
constexpr size_t kDirPage = 1024;
// What stat shows as the preferred I/O size: cp and friends size their buffers from it.
constexpr blksize_t kIoBlock = 128 * 1024;

mode_t TypeBits(FileKind kind) {
  switch (kind) {
    case FileKind::kFile:
      return S_IFREG;
    case FileKind::kDirectory:
      return S_IFDIR;
    case FileKind::kSymlink:
      return S_IFLNK;
  }
  return S_IFREG;
}

struct stat ToStat(const InodeAttr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = TypeBits(a.kind) | (a.mode & 07777);
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = kIoBlock;
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_atim = NsToTimespec(a.atime_ns);
  st.st_mtim = NsToTimespec(a.mtime_ns);
  st.st_ctim = NsToTimespec(a.ctime_ns);
  return st;
}

// The path's mount entry in /proc/self/mountinfo: "major:minor" and the file system type, of
// the last (topmost) mount at `path`.
struct MountEntry {
  std::string device;
  std::string fstype;
};

// Mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        if (i + j >= s.size() || s[i + j] < '0' || s[i + j] > '7') {
          octal = false;
          break;
        }
        v = v * 8 + (s[i + j] - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::optional<MountEntry> FindMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::optional<MountEntry> found;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    if (!(fields >> id >> parent >> device >> root >> point)) continue;
    if (UnescapeMountinfo(point) != path) continue;
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string fstype;
    rest >> fstype;
    found = MountEntry{device, fstype};
  }
  return found;
}

}  // namespace

std::string MountpointPath(const std::string& path) {
  std::filesystem::path p = std::filesystem::absolute(path).lexically_normal();
  if (p.has_filename() == false && p.has_parent_path()) p = p.parent_path();
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::canonical(p.parent_path(), ec);
  if (ec || p == p.root_path()) return p.string();
  return (parent / p.filename()).string();
}

bool IsShardfsMount(const std::string& path) {
  auto m = FindMount(path);
  return m && m->fstype == "fuse.shardfs";
}

Status UnmountPath(const std::string& path, bool lazy) {
  if (::geteuid() == 0) {
    if (::umount2(path.c_str(), lazy ? MNT_DETACH : 0) == 0) return Status::Ok();
    if (errno == EBUSY) return Status::Busy(path + " is busy (files are open in it)");
    return PosixError("unmount " + path, errno);
  }
  pid_t pid = ::fork();
  if (pid < 0) return PosixError("fork", errno);
  if (pid == 0) {
    std::vector<const char*> argv = {"fusermount3", "-u", "-q"};
    if (lazy) argv.push_back("-z");
    argv.push_back(path.c_str());
    argv.push_back(nullptr);
    ::execvp("fusermount3", const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return PosixError("wait for fusermount3", errno);
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  return Status::Busy("fusermount3 could not unmount " + path + " (busy, or not mounted)");
}

// An open directory: the entries read so far, in the catalog's order. An offset is an index
// into them (0 and 1 are "." and ".."), so telldir/seekdir work and a listing never repeats
// or skips an entry while the folder changes; rewinding to 0 reads the folder again.
struct DirHandle {
  explicit DirHandle(Ino i) : ino(i) {}
  const Ino ino;
  Mutex mu;
  std::vector<DirEntry> entries GUARDED_BY(mu);
  bool complete GUARDED_BY(mu) = false;
};

// The replies. Each op returns one (in a Result), and Send delivers it.
struct EntryReply {
  fuse_entry_param e{};
};
struct AttrReply {
  struct stat st {};
};
struct BufReply {
  const char* data = nullptr;
  size_t size = 0;
};
struct DirReply {
  std::vector<char> buf;
  std::vector<Ino> counted;  // inodes whose lookup count the entries raised
};
struct WriteReply {
  size_t size = 0;
};
struct OpenReply {
  Ino ino = 0;
  fuse_file_info* fi = nullptr;
  DirHandle* dir = nullptr;  // an opened directory's handle
};
struct CreateReply {
  fuse_entry_param e{};
  fuse_file_info* fi = nullptr;
};
struct ReadlinkReply {
  std::string target;
};
struct StatfsReply {
  struct statvfs st {};
};
struct XattrSizeReply {
  size_t size = 0;
};
struct DataReply {
  std::string data;
};

class Mount::Impl {
 public:
  Impl(backend::Drive* drive, MountOptions options) : drive_(drive), options_(std::move(options)) {}
  ~Impl() {
    if (se_ != nullptr) {
      if (mounted_) fuse_session_unmount(se_);
      fuse_session_destroy(se_);
    }
  }

  static const fuse_lowlevel_ops& Ops();

  // The ops, one Drive method each.
  Result<EntryReply> Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  Result<AttrReply> GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  Result<AttrReply> SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                            fuse_file_info* fi);
  Result<ReadlinkReply> ReadLink(fuse_req_t req, fuse_ino_t ino);
  Result<EntryReply> Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                           dev_t rdev);
  Result<EntryReply> Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  Status Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
  Status Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
  Result<EntryReply> Symlink(fuse_req_t req, const char* target, fuse_ino_t parent,
                             const char* name);
  Status Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                const char* new_name, unsigned int flags);
  Result<EntryReply> Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent,
                          const char* new_name);
  Result<OpenReply> Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  Result<BufReply> Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  Result<WriteReply> Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                           fuse_file_info* fi);
  Status Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  Status Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  Result<OpenReply> OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  Result<DirReply> ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           fuse_file_info* fi);
  Result<DirReply> ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                               fuse_file_info* fi);
  Status ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  Status FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  Result<StatfsReply> StatFs(fuse_req_t req, fuse_ino_t ino);
  Result<CreateReply> Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                             fuse_file_info* fi);
  Status Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                   fuse_file_info* fi);
  Status SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                  int flags);
  // Answers the attribute's size when `size` is 0, else its value (OutOfRange if larger).
  Result<std::variant<XattrSizeReply, DataReply>> GetXattr(fuse_req_t req, fuse_ino_t ino,
                                                           const char* name, size_t size);
  Result<std::variant<XattrSizeReply, DataReply>> ListXattr(fuse_req_t req, fuse_ino_t ino,
                                                            size_t size);
  Status RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name);

  // Forget is the one request without a reply.
  void Forget(Ino ino, uint64_t n) EXCLUDES(lookup_mu_);

  // Sends a reply; undoes what the op counted if the kernel did not take it (an interrupted
  // request).
  void Send(fuse_req_t req, EntryReply& r);
  void Send(fuse_req_t req, AttrReply& r);
  void Send(fuse_req_t req, BufReply& r);
  void Send(fuse_req_t req, DirReply& r);
  void Send(fuse_req_t req, WriteReply& r);
  void Send(fuse_req_t req, OpenReply& r);
  void Send(fuse_req_t req, CreateReply& r);
  void Send(fuse_req_t req, ReadlinkReply& r);
  void Send(fuse_req_t req, StatfsReply& r);
  void Send(fuse_req_t req, XattrSizeReply& r);
  void Send(fuse_req_t req, DataReply& r);
  template <typename... T>
  void Send(fuse_req_t req, std::variant<T...>& r) {
    std::visit([&](auto& one) { Send(req, one); }, r);
  }

  void Init(fuse_conn_info* conn);

  backend::Drive* const drive_;
  const MountOptions options_;
  std::string mountpoint_;  // absolute
  fuse_session* se_ = nullptr;
  bool mounted_ = false;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> errors_{0};
  // The mount's backing device ("major:minor") and whether its read-ahead was raised: on the
  // first request after INIT, whose reply sets the kernel's own value.
  std::string bdi_;
  std::atomic<bool> read_ahead_set_{false};

  // Raises the kernel's read-ahead for the mount (options_.read_ahead_kb): FUSE's default of
  // 128 KiB keeps one small request in flight at a time.
  void SetReadAhead();

  // Lock order: a DirHandle's mu, then lookup_mu_ (a leaf); statfs_mu_ is a leaf.
  mutable Mutex lookup_mu_;
  std::unordered_map<Ino, uint64_t> lookups_ GUARDED_BY(lookup_mu_);

  Mutex statfs_mu_;
  std::optional<StatfsReply> statfs_ GUARDED_BY(statfs_mu_);
  std::chrono::steady_clock::time_point statfs_at_ GUARDED_BY(statfs_mu_);

 private:
  // An entry for `a`, counting one lookup.
  EntryReply Entry(const InodeAttr& a) EXCLUDES(lookup_mu_);
  Result<DirReply> ReadDirCommon(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi,
                                 bool plus);
  double attr_timeout() const { return options_.attr_timeout.count(); }
  // `a` as the kernel sees it: owned by the mounting user if owner_ says so.
  struct stat Stat(const InodeAttr& a) const {
    struct stat st = ToStat(a);
    if (owner_) {
      st.st_uid = owner_->first;
      st.st_gid = owner_->second;
    }
    return st;
  }

  // A drive's stored owners are the ids of whichever machine wrote each file (its root
  // folder's is 0), so a user's own mount shows every file as theirs, as cloud drives' mounts
  // do; the kernel then lets that user read and write by the files' modes. Root's mount, and
  // one shared with other users (allow_other), show the stored owners: a backup of several
  // users' files keeps them, and each user has their own files.
  const std::optional<std::pair<uid_t, gid_t>> owner_ =
      ::geteuid() == 0 || options_.allow_other ? std::nullopt
                                               : std::optional(std::pair(::geteuid(), ::getegid()));
};

namespace {

Mount::Impl* Self(fuse_req_t req) { return static_cast<Mount::Impl*>(fuse_req_userdata(req)); }

// The one dispatch: calls the op, maps its Status to an errno (Status::ToErrno, the one map),
// catches everything, and replies exactly once.
template <auto Op, typename... Args>
void Call(fuse_req_t req, Args... args) {
  Mount::Impl* self = Self(req);
  self->requests_.fetch_add(1, std::memory_order_relaxed);
  if (!self->read_ahead_set_.load(std::memory_order_relaxed) &&
      !self->read_ahead_set_.exchange(true)) {
    self->SetReadAhead();
  }
  Status status;
  try {
    auto r = (self->*Op)(req, args...);
    if constexpr (std::is_same_v<decltype(r), Status>) {
      status = std::move(r);
      if (status.ok()) {
        fuse_reply_err(req, 0);
        return;
      }
    } else {
      if (r.ok()) {
        self->Send(req, *r);
        return;
      }
      status = r.status();
    }
  } catch (const std::exception& e) {
    status = Status::IOError(std::string("internal error: ") + e.what());
  } catch (...) {
    status = Status::IOError("internal error");
  }
  self->errors_.fetch_add(1, std::memory_order_relaxed);
  const int err = status.ToErrno();
  if (err == EIO || err == ENOSPC) {
    log::Warn("fuse: {}", status.ToString());
  } else {
    log::Debug("fuse: {}", status.ToString());
  }
  fuse_reply_err(req, err);
}

void DoInit(void* userdata, fuse_conn_info* conn) {
  static_cast<Mount::Impl*>(userdata)->Init(conn);
}

void DoForget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  Self(req)->Forget(ino, n);
  fuse_reply_none(req);
}

void DoForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Self(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

}  // namespace

const fuse_lowlevel_ops& Mount::Impl::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = DoInit;
    o.lookup = Call<&Impl::Lookup>;
    o.forget = DoForget;
    o.forget_multi = DoForgetMulti;
    o.getattr = Call<&Impl::GetAttr>;
    o.setattr = Call<&Impl::SetAttr>;
    o.readlink = Call<&Impl::ReadLink>;
    o.mknod = Call<&Impl::Mknod>;
    o.mkdir = Call<&Impl::Mkdir>;
    o.unlink = Call<&Impl::Unlink>;
    o.rmdir = Call<&Impl::Rmdir>;
    o.symlink = Call<&Impl::Symlink>;
    o.rename = Call<&Impl::Rename>;
    o.link = Call<&Impl::Link>;
    o.open = Call<&Impl::Open>;
    o.read = Call<&Impl::Read>;
    o.write = Call<&Impl::Write>;
    // No flush: libfuse answers ENOSYS and the kernel stops sending it (one round trip less
    // per close; cp -a of small files makes eleven per file). The kernel still writes the
    // file's cached pages back on close and reports their errors there; release freezes
    // what the file got (Drive::Release).
    o.release = Call<&Impl::Release>;
    o.fsync = Call<&Impl::Fsync>;
    o.opendir = Call<&Impl::OpenDir>;
    o.readdir = Call<&Impl::ReadDir>;
    o.readdirplus = Call<&Impl::ReadDirPlus>;
    o.releasedir = Call<&Impl::ReleaseDir>;
    o.fsyncdir = Call<&Impl::FsyncDir>;
    o.statfs = Call<&Impl::StatFs>;
    o.create = Call<&Impl::Create>;
    o.fallocate = Call<&Impl::Fallocate>;
    o.setxattr = Call<&Impl::SetXattr>;
    o.getxattr = Call<&Impl::GetXattr>;
    o.listxattr = Call<&Impl::ListXattr>;
    o.removexattr = Call<&Impl::RemoveXattr>;
    return o;
  }();
  return ops;
}

void Mount::Impl::Init(fuse_conn_info* conn) {
  if (options_.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  }
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  }
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  conn->want &=
      ~static_cast<unsigned>(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->max_write = options_.max_write;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
  log::Info("fuse: session started at {} (writeback cache {})", mountpoint_,
            (conn->want & FUSE_CAP_WRITEBACK_CACHE) ? "on" : "off");
}

void Mount::Impl::SetReadAhead() {
  if (options_.read_ahead_kb == 0 || bdi_.empty()) return;
  std::ofstream ra("/sys/class/bdi/" + bdi_ + "/read_ahead_kb");
  ra << options_.read_ahead_kb;
  ra.flush();
  if (!ra) log::Info("fuse: could not raise the read-ahead through sysfs (not root?)");
}

EntryReply Mount::Impl::Entry(const InodeAttr& a) {
  EntryReply r;
  r.e.ino = a.ino;
  r.e.generation = 0;  // inode numbers are never reused
  r.e.attr = Stat(a);
  r.e.attr_timeout = attr_timeout();
  r.e.entry_timeout = options_.entry_timeout.count();
  MutexLock lock(&lookup_mu_);
  ++lookups_[a.ino];
  return r;
}

void Mount::Impl::Forget(Ino ino, uint64_t n) {
  MutexLock lock(&lookup_mu_);
  auto it = lookups_.find(ino);
  if (it == lookups_.end()) return;
  if (it->second <= n) {
    lookups_.erase(it);
  } else {
    it->second -= n;
  }
}

void Mount::Impl::Send(fuse_req_t req, EntryReply& r) {
  if (fuse_reply_entry(req, &r.e) != 0 && r.e.ino != 0) Forget(r.e.ino, 1);
}
void Mount::Impl::Send(fuse_req_t req, AttrReply& r) {
  fuse_reply_attr(req, &r.st, attr_timeout());
}
void Mount::Impl::Send(fuse_req_t req, BufReply& r) { fuse_reply_buf(req, r.data, r.size); }
void Mount::Impl::Send(fuse_req_t req, DirReply& r) {
  if (fuse_reply_buf(req, r.buf.data(), r.buf.size()) != 0) {
    for (Ino ino : r.counted) Forget(ino, 1);
  }
}
void Mount::Impl::Send(fuse_req_t req, WriteReply& r) { fuse_reply_write(req, r.size); }
void Mount::Impl::Send(fuse_req_t req, OpenReply& r) {
  if (fuse_reply_open(req, r.fi) == 0) return;
  // The kernel did not get the handle: it will never release it.
  if (r.dir != nullptr) {
    delete r.dir;
  } else {
    (void)drive_->Release(r.ino);
  }
}
void Mount::Impl::Send(fuse_req_t req, CreateReply& r) {
  if (fuse_reply_create(req, &r.e, r.fi) == 0) return;
  Forget(r.e.ino, 1);
  (void)drive_->Release(r.e.ino);
}
void Mount::Impl::Send(fuse_req_t req, ReadlinkReply& r) {
  fuse_reply_readlink(req, r.target.c_str());
}
void Mount::Impl::Send(fuse_req_t req, StatfsReply& r) { fuse_reply_statfs(req, &r.st); }
void Mount::Impl::Send(fuse_req_t req, XattrSizeReply& r) { fuse_reply_xattr(req, r.size); }
void Mount::Impl::Send(fuse_req_t req, DataReply& r) {
  fuse_reply_buf(req, r.data.data(), r.data.size());
}

Result<EntryReply> Mount::Impl::Lookup(fuse_req_t, fuse_ino_t parent, const char* name) {
  auto a = drive_->Lookup(parent, name);
  if (!a.ok() && a.status().code() == Code::kNotFound) {
    // A negative entry: the kernel remembers that the name is free (it forgets it itself when
    // it creates the name through this mount, the only writer).
    EntryReply r;
    r.e.ino = 0;
    r.e.entry_timeout = options_.negative_timeout.count();
    return r;
  }
  if (!a.ok()) return a.status();
  return Entry(*a);
}

Result<AttrReply> Mount::Impl::GetAttr(fuse_req_t, fuse_ino_t ino, fuse_file_info*) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->GetAttr(ino));
  return AttrReply{Stat(a)};
}

Result<AttrReply> Mount::Impl::SetAttr(fuse_req_t, fuse_ino_t ino, struct stat* attr, int to_set,
                                       fuse_file_info*) {
  backend::AttrChange change;
  if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0) return Status::InvalidArgument("negative size");
    change.size = static_cast<uint64_t>(attr->st_size);
  }
  const int64_t now = WallClockNs();
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    change.atime_ns = now;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    change.atime_ns = TimespecToNs(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    change.mtime_ns = now;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    change.mtime_ns = TimespecToNs(attr->st_mtim);
  }
  // FUSE_SET_ATTR_CTIME alone (the kernel's write-back of times) needs nothing: every change
  // sets ctime.
  const bool any =
      change.mode || change.uid || change.gid || change.size || change.atime_ns || change.mtime_ns;
  auto a = any ? drive_->SetAttr(ino, change) : drive_->GetAttr(ino);
  if (!a.ok() && a.status().code() == Code::kNotFound && !change.mode && !change.uid &&
      !change.gid && !change.size) {
    // With the writeback cache the kernel writes back the times of a file it still caches
    // after the file's last name went and it was dropped: there is nothing left to update.
    struct stat st = *attr;
    st.st_ino = ino;
    st.st_nlink = 0;
    st.st_mode = S_IFREG;  // only files have pages and times to write back
    return AttrReply{st};
  }
  if (!a.ok()) return a.status();
  return AttrReply{Stat(*a)};
}

Result<ReadlinkReply> Mount::Impl::ReadLink(fuse_req_t, fuse_ino_t ino) {
  SFS_ASSIGN_OR_RETURN(std::string target, drive_->ReadLink(ino));
  return ReadlinkReply{std::move(target)};
}

namespace {
backend::NewInode NewInodeFor(fuse_req_t req, mode_t mode) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return backend::NewInode{static_cast<uint32_t>(mode & 07777), ctx->uid, ctx->gid};
}
}  // namespace

Result<EntryReply> Mount::Impl::Mknod(fuse_req_t req, fuse_ino_t parent, const char* name,
                                      mode_t mode, dev_t) {
  if (!S_ISREG(mode)) {
    return Status::NotSupported(
        "shardfs stores files, folders and symlinks, not device nodes, "
        "FIFOs or sockets");
  }
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->Create(parent, name, NewInodeFor(req, mode)));
  return Entry(a);
}

Result<EntryReply> Mount::Impl::Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name,
                                      mode_t mode) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->Mkdir(parent, name, NewInodeFor(req, mode)));
  return Entry(a);
}

Status Mount::Impl::Unlink(fuse_req_t, fuse_ino_t parent, const char* name) {
  return drive_->Unlink(parent, name);
}

Status Mount::Impl::Rmdir(fuse_req_t, fuse_ino_t parent, const char* name) {
  return drive_->Rmdir(parent, name);
}

Result<EntryReply> Mount::Impl::Symlink(fuse_req_t req, const char* target, fuse_ino_t parent,
                                        const char* name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->Symlink(parent, name, target));
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (ctx->uid != a.uid || ctx->gid != a.gid) {
    backend::AttrChange owner;
    owner.uid = ctx->uid;
    owner.gid = ctx->gid;
    SFS_ASSIGN_OR_RETURN(a, drive_->SetAttr(a.ino, owner));
  }
  return Entry(a);
}

Status Mount::Impl::Rename(fuse_req_t, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                           const char* new_name, unsigned int flags) {
  backend::RenameMode mode = backend::RenameMode::kReplace;
  if (flags == RENAME_NOREPLACE) {
    mode = backend::RenameMode::kNoReplace;
  } else if (flags == RENAME_EXCHANGE) {
    mode = backend::RenameMode::kExchange;
  } else if (flags != 0) {
    return Status::InvalidArgument(
        "rename flags other than RENAME_NOREPLACE and "
        "RENAME_EXCHANGE (whiteouts) are not supported");
  }
  return drive_->Rename(parent, name, new_parent, new_name, mode);
}

Result<EntryReply> Mount::Impl::Link(fuse_req_t, fuse_ino_t ino, fuse_ino_t new_parent,
                                     const char* new_name) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->Link(ino, new_parent, new_name));
  return Entry(a);
}

Result<OpenReply> Mount::Impl::Open(fuse_req_t, fuse_ino_t ino, fuse_file_info* fi) {
  drive_->Open(ino);
  // This process is the only writer: what the kernel cached of the file is still right.
  fi->keep_cache = 1;
  return OpenReply{ino, fi, nullptr};
}

Result<BufReply> Mount::Impl::Read(fuse_req_t, fuse_ino_t ino, size_t size, off_t off,
                                   fuse_file_info*) {
  if (off < 0) return Status::InvalidArgument("negative offset");
  thread_local std::vector<uint8_t> buf;
  buf.resize(size);
  SFS_ASSIGN_OR_RETURN(
      size_t n, drive_->Read(ino, static_cast<uint64_t>(off), MutableByteSpan(buf.data(), size)));
  return BufReply{reinterpret_cast<const char*>(buf.data()), n};
}

Result<WriteReply> Mount::Impl::Write(fuse_req_t, fuse_ino_t ino, const char* buf, size_t size,
                                      off_t off, fuse_file_info*) {
  if (off < 0) return Status::InvalidArgument("negative offset");
  SFS_RETURN_IF_ERROR(drive_->Write(ino, static_cast<uint64_t>(off),
                                    ByteSpan(reinterpret_cast<const uint8_t*>(buf), size)));
  return WriteReply{size};
}

Status Mount::Impl::Release(fuse_req_t, fuse_ino_t ino, fuse_file_info*) {
  return drive_->Release(ino);
}

Status Mount::Impl::Fsync(fuse_req_t, fuse_ino_t ino, int, fuse_file_info*) {
  // The file's bytes, then the catalog that names them: both on the nodes.
  SFS_RETURN_IF_ERROR(drive_->Fsync(ino, options_.fsync_timeout));
  auto info = drive_->checkpointer().Sync();
  return info.status();
}

Result<OpenReply> Mount::Impl::OpenDir(fuse_req_t, fuse_ino_t ino, fuse_file_info* fi) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->GetAttr(ino));
  if (a.kind != FileKind::kDirectory) return Status::NotDirectory("not a folder");
  auto* handle = new DirHandle(ino);
  fi->fh = reinterpret_cast<uint64_t>(handle);
  return OpenReply{ino, fi, handle};
}

Result<DirReply> Mount::Impl::ReadDirCommon(fuse_req_t req, size_t size, off_t off,
                                            fuse_file_info* fi, bool plus) {
  auto* h = reinterpret_cast<DirHandle*>(fi->fh);
  if (h == nullptr || off < 0) return Status::InvalidArgument("bad directory handle or offset");
  DirReply r;
  r.buf.resize(size);
  size_t pos = 0;
  MutexLock lock(&h->mu);
  if (off == 0) {
    h->entries.clear();
    h->complete = false;
  }
  for (auto index = static_cast<size_t>(off);; ++index) {
    const char* name = nullptr;
    InodeAttr attr;
    if (index < 2) {
      name = index == 0 ? "." : "..";
      attr.ino = h->ino;
      attr.kind = FileKind::kDirectory;
    } else {
      const size_t i = index - 2;
      while (i >= h->entries.size() && !h->complete) {
        const std::string after = h->entries.empty() ? std::string() : h->entries.back().name;
        SFS_ASSIGN_OR_RETURN(auto page, drive_->ReadDir(h->ino, after, kDirPage));
        if (page.size() < kDirPage) h->complete = true;
        for (auto& e : page) h->entries.push_back(std::move(e));
      }
      if (i >= h->entries.size()) break;
      name = h->entries[i].name.c_str();
      attr = h->entries[i].attr;
    }
    const auto next = static_cast<off_t>(index + 1);
    char* at = r.buf.data() + pos;
    const size_t room = size - pos;
    size_t n = 0;
    if (plus) {
      fuse_entry_param e{};
      e.attr = Stat(attr);
      if (index >= 2) {
        e.ino = attr.ino;
        e.attr_timeout = attr_timeout();
        e.entry_timeout = options_.entry_timeout.count();
      }
      n = fuse_add_direntry_plus(req, at, room, name, &e, next);
      if (n > room) break;
      if (index >= 2) {
        // The kernel holds a lookup of each entry it gets with attributes ("." and ".." are
        // not looked up).
        MutexLock l(&lookup_mu_);
        ++lookups_[attr.ino];
        r.counted.push_back(attr.ino);
      }
    } else {
      const struct stat st = Stat(attr);
      n = fuse_add_direntry(req, at, room, name, &st, next);
      if (n > room) break;
    }
    pos += n;
  }
  r.buf.resize(pos);
  return r;
}

Result<DirReply> Mount::Impl::ReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off,
                                      fuse_file_info* fi) {
  return ReadDirCommon(req, size, off, fi, false);
}

Result<DirReply> Mount::Impl::ReadDirPlus(fuse_req_t req, fuse_ino_t, size_t size, off_t off,
                                          fuse_file_info* fi) {
  return ReadDirCommon(req, size, off, fi, true);
}

Status Mount::Impl::ReleaseDir(fuse_req_t, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fi->fh = 0;
  return Status::Ok();
}

Status Mount::Impl::FsyncDir(fuse_req_t, fuse_ino_t, int, fuse_file_info*) {
  // A folder's entries are catalog rows: they are stored once a checkpoint holds them.
  return drive_->checkpointer().Sync().status();
}

Result<StatfsReply> Mount::Impl::StatFs(fuse_req_t, fuse_ino_t) {
  {
    MutexLock lock(&statfs_mu_);
    if (statfs_ && std::chrono::steady_clock::now() - statfs_at_ < options_.statfs_cache) {
      return *statfs_;
    }
  }
  StatfsReply r;
  constexpr uint64_t kBlock = 4096;
  r.st.f_bsize = kBlock;
  r.st.f_frsize = kBlock;
  r.st.f_namemax = backend::kMaxNameBytes;
  auto space = drive_->Space();
  if (space.ok()) {
    r.st.f_blocks = space->capacity / kBlock;
    r.st.f_bfree = space->free / kBlock;
    r.st.f_bavail = space->free / kBlock;
  } else {
    // No node answers: keep the last figures if there are any, else show an empty drive.
    MutexLock lock(&statfs_mu_);
    if (statfs_) return *statfs_;
    return r;
  }
  // Inodes are numbers in the catalog: there is no fixed table to run out of.
  constexpr uint64_t kFreeInodes = uint64_t{1} << 32;
  auto totals = drive_->catalog().GetTotals();
  const uint64_t used = totals.ok() ? totals->files + totals->folders : 0;
  r.st.f_files = used + kFreeInodes;
  r.st.f_ffree = kFreeInodes;
  r.st.f_favail = kFreeInodes;
  MutexLock lock(&statfs_mu_);
  statfs_ = r;
  statfs_at_ = std::chrono::steady_clock::now();
  return r;
}

Result<CreateReply> Mount::Impl::Create(fuse_req_t req, fuse_ino_t parent, const char* name,
                                        mode_t mode, fuse_file_info* fi) {
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->Create(parent, name, NewInodeFor(req, mode)));
  drive_->Open(a.ino);
  fi->keep_cache = 1;
  CreateReply r;
  r.e = Entry(a).e;
  r.fi = fi;
  return r;
}

Status Mount::Impl::Fallocate(fuse_req_t, fuse_ino_t ino, int mode, off_t offset, off_t length,
                              fuse_file_info*) {
  if (offset < 0 || length <= 0) return Status::InvalidArgument("bad fallocate range");
  // Space on the nodes cannot be reserved ahead: allocating is making sure the file is that
  // long (mode 0) or nothing (FALLOC_FL_KEEP_SIZE). Holes and zero ranges are not supported.
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE) {
    return Status::NotSupported("fallocate supports only allocating (mode 0 or KEEP_SIZE)");
  }
  SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_->GetAttr(ino));
  if (a.kind != FileKind::kFile) return Status::InvalidArgument("not a file");
  const auto end = static_cast<uint64_t>(offset) + static_cast<uint64_t>(length);
  if (mode == 0 && end > a.size) {
    backend::AttrChange grow;
    grow.size = end;
    SFS_RETURN_IF_ERROR(drive_->SetAttr(ino, grow).status());
  }
  return Status::Ok();
}

namespace {
// Only the user namespace is kept: security.*, trusted.* and system.* (capabilities, SELinux
// labels, ACLs) mean something to this machine's kernel only, and a drive is read elsewhere.
constexpr std::string_view kUserPrefix = "user.";
bool UserAttribute(std::string_view name) {
  return name.substr(0, kUserPrefix.size()) == kUserPrefix;
}

// A value for a buffer of `size` bytes: its size when `size` is 0 (the caller asks how much
// room to make), else the value, or OutOfRange (ERANGE) if it does not fit.
Result<std::variant<XattrSizeReply, DataReply>> SizedReply(std::string data, size_t size) {
  if (size == 0) return std::variant<XattrSizeReply, DataReply>(XattrSizeReply{data.size()});
  if (data.size() > size) return Status::OutOfRange("the buffer is too small");
  return std::variant<XattrSizeReply, DataReply>(DataReply{std::move(data)});
}
}  // namespace

Status Mount::Impl::SetXattr(fuse_req_t, fuse_ino_t ino, const char* name, const char* value,
                             size_t size, int flags) {
  if (!UserAttribute(name)) {
    return Status::NotSupported(std::string("only user.* attributes are kept, not ") + name);
  }
  backend::XattrMode mode = backend::XattrMode::kAny;
  if (flags == XATTR_CREATE) {
    mode = backend::XattrMode::kCreate;
  } else if (flags == XATTR_REPLACE) {
    mode = backend::XattrMode::kReplace;
  } else if (flags != 0) {
    return Status::InvalidArgument("bad setxattr flags");
  }
  return drive_->SetXattr(ino, name, ByteSpan(reinterpret_cast<const uint8_t*>(value), size), mode);
}

Result<std::variant<XattrSizeReply, DataReply>> Mount::Impl::GetXattr(fuse_req_t, fuse_ino_t ino,
                                                                      const char* name,
                                                                      size_t size) {
  // The kernel asks for security.capability before writes: answered without the catalog.
  if (!UserAttribute(name)) return Status::NoAttribute(std::string("no attribute ") + name);
  SFS_ASSIGN_OR_RETURN(Bytes value, drive_->GetXattr(ino, name));
  return SizedReply(std::string(value.begin(), value.end()), size);
}

Result<std::variant<XattrSizeReply, DataReply>> Mount::Impl::ListXattr(fuse_req_t, fuse_ino_t ino,
                                                                       size_t size) {
  SFS_ASSIGN_OR_RETURN(std::vector<std::string> names, drive_->ListXattr(ino));
  std::string list;
  for (const std::string& n : names) {
    list += n;
    list.push_back('\0');
  }
  return SizedReply(std::move(list), size);
}

Status Mount::Impl::RemoveXattr(fuse_req_t, fuse_ino_t ino, const char* name) {
  if (!UserAttribute(name)) return Status::NoAttribute(std::string("no attribute ") + name);
  return drive_->RemoveXattr(ino, name);
}

Result<std::unique_ptr<Mount>> Mount::Create(backend::Drive* drive, MountOptions options) {
  struct stat st {};
  if (::stat(options.mountpoint.c_str(), &st) != 0) {
    return PosixError("mountpoint " + options.mountpoint, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("mountpoint " + options.mountpoint + " is not a folder");
  }
  auto impl = std::make_unique<Impl>(drive, options);
  impl->mountpoint_ = MountpointPath(options.mountpoint);
  std::string opts = "fsname=shardfs,subtype=shardfs,default_permissions";
  if (options.allow_other) opts += ",allow_other";
  std::vector<std::string> argv_store = {"shardfs", "-o", opts};
  std::vector<char*> argv;
  for (auto& s : argv_store) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  impl->se_ = fuse_session_new(&args, &Impl::Ops(), sizeof(fuse_lowlevel_ops), impl.get());
  fuse_opt_free_args(&args);  // the session keeps copies of what it needs
  if (impl->se_ == nullptr) return Status::InvalidArgument("fuse_session_new refused the options");
  if (fuse_session_mount(impl->se_, impl->mountpoint_.c_str()) != 0) {
    return Status::IOError("the kernel refused to mount " + impl->mountpoint_ +
                           " (see the log; is /dev/fuse there, and the folder not in use?)");
  }
  impl->mounted_ = true;
  if (auto m = FindMount(impl->mountpoint_); m && m->fstype == "fuse.shardfs") {
    impl->bdi_ = m->device;
  }
  return std::unique_ptr<Mount>(new Mount(std::move(impl)));
}

Mount::Mount(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Mount::~Mount() = default;

Status Mount::Run() {
  fuse_loop_config* config = fuse_loop_cfg_create();
  if (config == nullptr) return Status::IOError("fuse_loop_cfg_create failed");
  fuse_loop_cfg_set_max_threads(config, static_cast<unsigned>(impl_->options_.max_threads));
  fuse_loop_cfg_set_idle_threads(config, 4);
  const int rc = fuse_session_loop_mt(impl_->se_, config);
  fuse_loop_cfg_destroy(config);
  // The kernel let go of the mount (or it failed): nothing more to unmount.
  if (rc != 0) {
    return Status::IOError(std::string("fuse session ended with an error: ") + std::strerror(-rc));
  }
  return Status::Ok();
}

Status Mount::Unmount(bool lazy) { return UnmountPath(impl_->mountpoint_, lazy); }

void Mount::InvalidateInode(backend::Ino ino) {
  if (impl_->se_ == nullptr || !impl_->mounted_) return;
  // -ENOENT: the kernel does not hold the inode; nothing to drop.
  (void)fuse_lowlevel_notify_inval_inode(impl_->se_, ino, 0, 0);
}

void Mount::InvalidateEntry(backend::Ino parent, const std::string& name) {
  if (impl_->se_ == nullptr || !impl_->mounted_) return;
  (void)fuse_lowlevel_notify_inval_entry(impl_->se_, parent, name.data(), name.size());
  (void)fuse_lowlevel_notify_inval_inode(impl_->se_, parent, 0, 0);
}

MountStats Mount::Stats() const {
  MountStats s;
  s.requests = impl_->requests_.load();
  s.errors = impl_->errors_.load();
  MutexLock lock(&impl_->lookup_mu_);
  s.inodes_known = impl_->lookups_.size();
  for (const auto& [ino, n] : impl_->lookups_) s.lookups_held += n;
  return s;
}

const std::string& Mount::mountpoint() const { return impl_->mountpoint_; }

Result<bool> ClearStaleMount(const std::string& path) {
  // statfs, not stat: the kernel may answer a stat of a dead mount from attributes it cached
  // (for an hour here), but it sends every statfs to the daemon.
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) == 0 || errno != ENOTCONN) return false;
  const std::string abs = MountpointPath(path);
  auto m = FindMount(abs);
  if (!m || m->fstype != "fuse.shardfs") {
    return Status::IOError(path +
                           ": transport endpoint is not connected, and it is not a "
                           "shardfs mount: unmount it yourself");
  }
  SFS_RETURN_IF_ERROR(UnmountPath(abs, /*lazy=*/true));
  return true;
}

}  // namespace shardfs::fuse
