// The files through which a mount's daemon and the other commands on its drive talk, in the
// drive's data folder (docs/fuse.md, "Files of a mount"): mount.json (the running daemon),
// mount-result.json (how it ended), sync-result.json (its last sync on request), mount.log.
// `shardfs sync` on a mounted drive asks the daemon to sync (SIGUSR2) and waits for its
// answer, until the companion API's socket (issue 7) carries such requests.
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
inline std::string SyncResultPath(const DriveHome& h) { return h.data_dir + "/sync-result.json"; }

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

// sync-result.json: what the daemon's sync on request did.
struct DaemonSync {
  bool ok = false;
  std::string error;           // why not, if not
  uint64_t files = 0;          // files whose queued bytes it stored
  uint64_t bytes = 0;          // and their bytes
  uint64_t head_sequence = 0;  // the checkpoint holding the catalog
};
// Written by the daemon of this process; `started_ns`: when the sync began (WallClockNs).
Status WriteDaemonSync(const DriveHome& home, int64_t started_ns, const DaemonSync& sync);

// Asks the daemon of `mount` to hand over the kernel's cached writes, store every queued
// upload and checkpoint the catalog, and waits up to `timeout` for its answer.
// DeadlineExceeded if none came; Unavailable if the daemon ended meanwhile.
Result<DaemonSync> AskDaemonToSync(const DriveHome& home, const MountRecord& mount,
                                   std::chrono::milliseconds timeout);

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
