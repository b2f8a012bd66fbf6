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

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "base/status.h"
#include "cli/drive_home.h"

namespace shardfs::cli {

inline std::string MountRecordPath(const DriveHome& h) { return h.data_dir + "/mount.json"; }
inline std::string MountResultPath(const DriveHome& h) { return h.data_dir + "/mount-result.json"; }
inline std::string MountLogPath(const DriveHome& h) { return h.data_dir + "/mount.log"; }
inline std::string SyncResultPath(const DriveHome& h) { return h.data_dir + "/sync-result.json"; }

// Writes `j` to `path` atomically (mode 0600); reads one back (Corruption if not a JSON
// object).
Status WriteJsonFile(const std::string& path, const nlohmann::json& j);
Result<nlohmann::json> ReadJsonFile(const std::string& path);

// True if process `pid` is running.
bool ProcessAlive(pid_t pid);

struct MountRecord {
  pid_t pid = 0;
  std::string mountpoint;
};

// The daemon that has the drive of `home` mounted, if one is running.
std::optional<MountRecord> FindLiveMount(const DriveHome& home);

// What the daemon's sync did.
struct DaemonSync {
  bool ok = false;
  std::string error;           // why not, if not
  uint64_t files = 0;          // files whose queued bytes it stored
  uint64_t bytes = 0;          // and their bytes
  uint64_t head_sequence = 0;  // the checkpoint holding the catalog
};

// Asks the daemon of `mount` to hand over the kernel's cached writes, store every queued
// upload and checkpoint the catalog, and waits up to `timeout` for its answer.
// DeadlineExceeded if none came; Unavailable if the daemon ended meanwhile.
Result<DaemonSync> AskDaemonToSync(const DriveHome& home, const MountRecord& mount,
                                   std::chrono::milliseconds timeout);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_MOUNT_CONTROL_H_
