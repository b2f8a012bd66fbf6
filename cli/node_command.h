// `shardfs node`: runs a storage node (docs/node.md has the operator's view).

#ifndef SHARDFS_CLI_NODE_COMMAND_H_
#define SHARDFS_CLI_NODE_COMMAND_H_

#include <functional>

#include <CLI/CLI.hpp>

namespace shardfs::cli {

// Adds the `node` subcommand to `app`; the returned function runs it (after parsing) and
// returns the process exit code.
std::function<int()> AddNodeCommand(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_NODE_COMMAND_H_
