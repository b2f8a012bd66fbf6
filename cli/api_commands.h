// `shardfs serve` (the companion API without a mount), `shardfs pair` (a one-time code for a
// phone) and `shardfs devices [revoke ID]` (docs/api.md).

#ifndef SHARDFS_CLI_API_COMMANDS_H_
#define SHARDFS_CLI_API_COMMANDS_H_

#include <functional>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds the subcommands to `app`; each returned function runs one (after parsing) and returns
// the process exit code.
std::map<std::string, std::function<int()>> AddApiCommands(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_API_COMMANDS_H_
