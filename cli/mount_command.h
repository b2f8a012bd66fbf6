// `shardfs mount MOUNTPOINT` and `shardfs umount MOUNTPOINT` (docs/fuse.md).
//
// mount runs as a daemon by default: the command returns once the drive is mounted (or with
// the reason it could not be), and the daemon logs to mount.log in the drive's data folder.
// It writes mount.json there (its pid and mountpoint) while it runs, and mount-result.json
// when it ends: whether every accepted write was stored on the nodes or some wait, queued on
// local disk, for the next start. umount unmounts (the kernel first hands over every cached
// write), waits for the daemon to store or queue everything, and says which; SIGTERM or
// SIGINT to the daemon does the same.

#ifndef SHARDFS_CLI_MOUNT_COMMAND_H_
#define SHARDFS_CLI_MOUNT_COMMAND_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds "mount" and "umount"; returns their runners by name.
std::vector<std::pair<std::string, std::function<int()>>> AddMountCommands(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_MOUNT_COMMAND_H_
