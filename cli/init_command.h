// `shardfs init`: creates a drive (its key, config and empty catalog) and prints its recovery
// phrase once.

#ifndef SHARDFS_CLI_INIT_COMMAND_H_
#define SHARDFS_CLI_INIT_COMMAND_H_

#include <functional>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds the `init` subcommand to `app`; the returned function runs it (after parsing) and
// returns the process exit code.
std::function<int()> AddInitCommand(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_INIT_COMMAND_H_
