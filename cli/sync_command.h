// `shardfs sync`: stores a checkpoint of the drive's catalog now and returns when its head is
// on enough nodes, so a restore elsewhere sees every change made before.

#ifndef SHARDFS_CLI_SYNC_COMMAND_H_
#define SHARDFS_CLI_SYNC_COMMAND_H_

#include <functional>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds the `sync` subcommand to `app`; the returned function runs it (after parsing) and
// returns the process exit code.
std::function<int()> AddSyncCommand(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_SYNC_COMMAND_H_
