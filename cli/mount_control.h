// The files through which a mount's daemon and the other commands on its drive talk, in the
// drive's data folder (docs/fuse.md, "Files of a mount"): mount.json (the running daemon),
// mount-result.json (how it ended), mount.log. Commands reach a running daemon through the
// companion API's socket (cli/api_server.h): `shardfs sync` on a mounted drive is
// POST /api/v1/sync there.
//
// Thread safety: functions of files; the daemon writes each file atomically.

#ifndef SHARDFS_CLI_MOUNT_CONTROL_H_
#define SHARDFS_CLI_MOUNT_CONTROL_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

#include "backend/drive.h"
#include "base/status.h"
#include "cli/drive_home.h"

namespace shardfs::cli {

inline std::string MountRecordPath(const DriveHome& h) { return h.data_dir + "/mount.json"; }
inline std::string MountResultPath(const DriveHome& h) { return h.data_dir + "/mount-result.json"; }
inline std::string MountLogPath(const DriveHome& h) { return h.data_dir + "/mount.log"; }

// True if process `pid` is running.
bool ProcessAlive(pid_t pid);

// mount.json: the daemon that has the drive mounted.
struct MountRecord {
  pid_t pid = 0;
  std::string mountpoint;
};
Status WriteMountRecord(const DriveHome& home, const MountRecord& record);
// The record, whether or not its daemon still runs (nullopt if there is none).
std::optional<MountRecord> ReadMountRecord(const DriveHome& home);
// The daemon that has the drive of `home` mounted, if one is running.
std::optional<MountRecord> FindLiveMount(const DriveHome& home);

// mount-result.json: what a daemon that ended did with the writes it had accepted.
struct MountOutcome {
  bool stored = false;        // every accepted write and the catalog are on the nodes
  size_t queued_files = 0;    // else: files whose bytes wait on local disk
  uint64_t queued_bytes = 0;  // and their bytes
  std::string staging_dir;    // where they wait
  std::string error;          // why they could not be stored now
};
Status WriteMountOutcome(const DriveHome& home, const MountRecord& mount,
                         const MountOutcome& outcome);
// The outcome the daemon of `pid` wrote (nullopt if none, or another daemon's).
std::optional<MountOutcome> ReadMountOutcome(const DriveHome& home, pid_t pid);

// Stores every queued upload (waiting up to `timeout`), then a checkpoint of the catalog that
// names them; returns the checkpoint's head sequence.
Result<uint64_t> StoreEverything(backend::Drive& drive, std::chrono::milliseconds timeout);

// What a long-running process (a mount, `shardfs serve`) does as it ends: stores everything;
// what cannot be stored now is made durable on local disk (in `staging_dir`), and the outcome
// says which.
MountOutcome StoreOrQueue(backend::Drive& drive, std::chrono::milliseconds timeout,
                          const std::string& staging_dir);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_MOUNT_CONTROL_H_
