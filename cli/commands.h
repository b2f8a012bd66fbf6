// Every subcommand of shardfs, on one CLI::App: for main, and for the build's generators of
// the man page and the bash completion (cli/command_docs.h), which read the same definitions.

#ifndef SHARDFS_CLI_COMMANDS_H_
#define SHARDFS_CLI_COMMANDS_H_

#include <functional>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Sets up `app` as the shardfs command line (name, description, version flag, every
// subcommand) and returns what runs the subcommand the parse chose: its exit code, or -1 when
// the parse chose none.
std::function<int()> AddCommands(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_COMMANDS_H_
