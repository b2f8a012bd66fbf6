// `shardfs restore`: rebuilds a drive on a machine that never saw it, from its recovery phrase
// and the address of one of its nodes: the newest checkpoint that verifies becomes the catalog
// (backend/checkpoint.h), and the key file and config are written as `shardfs init` writes them.

#ifndef SHARDFS_CLI_RESTORE_COMMAND_H_
#define SHARDFS_CLI_RESTORE_COMMAND_H_

#include <functional>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds the `restore` subcommand to `app`; the returned function runs it (after parsing) and
// returns the process exit code.
std::function<int()> AddRestoreCommand(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_RESTORE_COMMAND_H_
