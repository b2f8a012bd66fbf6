// The drive as a directory: a libfuse3 low-level session over backend::Drive (docs/fuse.md).
//
// The adapter keeps only the kernel protocol's state: how many lookups of each inode the
// kernel holds (forget gives them back), open directory handles, and the capabilities
// negotiated at init. Inode numbers are the catalog's own (never reused; the root is 1, as
// FUSE wants), so no translation table is needed. Every callback goes through one dispatch
// function that calls one Drive method, turns a Status into an errno in one place
// (Status::ToErrno), catches everything, and sends exactly one reply after every lock is
// dropped (a reply may drop the kernel's last reference).
//
// Thread safety: Run serves requests on many threads; Unmount and Stats may be called from
// any thread while Run runs.

#ifndef SHARDFS_FUSE_MOUNT_H_
#define SHARDFS_FUSE_MOUNT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/drive.h"
#include "base/status.h"

namespace shardfs::fuse {

struct MountOptions {
  // An existing empty directory (any directory; its contents are hidden while mounted).
  std::string mountpoint;
  // Let users other than the one who mounted see the files (needs user_allow_other in
  // /etc/fuse.conf for a user who is not root). Permissions are checked by the kernel from the
  // files' modes either way (default_permissions).
  bool allow_other = false;
  // The kernel keeps written pages and sends them in big writes (safe: this process is the
  // only writer of the drive while it is mounted).
  bool writeback_cache = true;
  // How long the kernel may trust attributes, names and missing names without asking.
  std::chrono::duration<double> attr_timeout{3600};
  std::chrono::duration<double> entry_timeout{3600};
  std::chrono::duration<double> negative_timeout{3600};
  // How long an fsync waits for the file's bytes and the catalog to be stored on the nodes
  // before it fails with EIO (the bytes stay queued).
  std::chrono::milliseconds fsync_timeout{120000};
  // The most threads serving requests at once.
  int max_threads = 16;
  // The largest write the kernel sends.
  uint32_t max_write = uint32_t{1} << 20;
  // The kernel's read-ahead for the mount, in KiB (set through sysfs after mounting; 0 leaves
  // the kernel's default).
  uint32_t read_ahead_kb = 4096;
  // How long a statfs answer (which asks every node) is reused.
  std::chrono::seconds statfs_cache{10};
};

// What the session did (for logs and tests).
struct MountStats {
  uint64_t requests = 0;      // callbacks served
  uint64_t errors = 0;        // of which answered with an error
  uint64_t inodes_known = 0;  // inodes the kernel holds lookups of
  uint64_t lookups_held = 0;  // lookups it holds in all
};

class Mount {
 public:
  // Mounts `drive` at options.mountpoint (fsname and subtype "shardfs"). InvalidArgument for a
  // mountpoint that is not a directory; IOError if the kernel refuses the mount.
  // REQUIRES: drive outlives the Mount.
  static Result<std::unique_ptr<Mount>> Create(backend::Drive* drive, MountOptions options);
  // Unmounts (lazily, if still mounted) and frees the session.
  ~Mount();

  // Serves requests until the file system is unmounted (by Unmount, umount(8), fusermount3
  // -u). IOError if the session failed.
  Status Run();
  // Asks the kernel to unmount: first a normal unmount, which writes back every dirty page
  // through this session before it ends; Busy if files are open (nothing changes then). With
  // `lazy`, detaches at once instead: the session ends when the last open file is closed.
  Status Unmount(bool lazy);

  // Drops what the kernel cached of inode `ino` (attributes and pages), or of entry `name` in
  // folder `parent` (and the folder's attributes and listing), after another face of the
  // drive (the companion API) changed them; the kernel asks again when next used. An inode
  // or entry the kernel does not know is left alone. REQUIRES: not called from a request of
  // this session (the kernel may wait on it).
  void InvalidateInode(backend::Ino ino);
  void InvalidateEntry(backend::Ino parent, const std::string& name);

  MountStats Stats() const;
  const std::string& mountpoint() const;

  class Impl;

 private:
  explicit Mount(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `path` made absolute, with its folders' symlinks resolved but not its last name (which may
// be a dead mount that cannot be looked at).
std::string MountpointPath(const std::string& path);

// True if the topmost mount at absolute `path` is a shardfs mount.
bool IsShardfsMount(const std::string& path);

// Unmounts absolute `path` (umount2 as root, fusermount3 otherwise). Without `lazy` the kernel
// first writes back what it cached through the session; Busy if files are open in it. With
// `lazy` it is detached at once.
Status UnmountPath(const std::string& path, bool lazy);

// If `path` is a mountpoint of a dead shardfs session (its daemon was killed: "transport
// endpoint is not connected"), detaches it. Returns whether it did. IOError if it could not.
Result<bool> ClearStaleMount(const std::string& path);

}  // namespace shardfs::fuse

#endif  // SHARDFS_FUSE_MOUNT_H_
