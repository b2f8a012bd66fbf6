// The commands that work on a drive's files: put, get, ls, mkdir.

#ifndef SHARDFS_CLI_FILE_COMMANDS_H_
#define SHARDFS_CLI_FILE_COMMANDS_H_

#include <functional>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds the subcommands to `app`; the map gives, for each subcommand's name, the function that
// runs it (after parsing) and returns the exit code.
std::map<std::string, std::function<int()>> AddFileCommands(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_FILE_COMMANDS_H_
