// `shardfs nodes`, `shardfs audit [--now]` and `shardfs repair [--now]`: the network as the
// drive sees it, and the care of the drive's data on it (docs/network.md).

#ifndef SHARDFS_CLI_NETWORK_COMMANDS_H_
#define SHARDFS_CLI_NETWORK_COMMANDS_H_

#include <functional>
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/drive.h"

namespace shardfs::cli {

// Adds the subcommands to `app`; each returned function runs one (after parsing) and returns
// the process exit code.
std::map<std::string, std::function<int()>> AddNetworkCommands(CLI::App& app);

// For `shardfs status`: the packs by healthy shards after taking in the member list (empty if
// the catalog cannot be read), and the line(s) printed (api::DurabilityJson is the JSON).
backend::Durability DurabilityOrEmpty(backend::Drive& d);
void PrintDurabilityLine(const backend::Durability& d, int k, int m);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_NETWORK_COMMANDS_H_
