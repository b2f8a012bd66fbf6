#include "cli/commands.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/version.h"
#include "cli/api_commands.h"
#include "cli/file_commands.h"
#include "cli/init_command.h"
#include "cli/local_network.h"
#include "cli/mount_command.h"
#include "cli/network_commands.h"
#include "cli/node_command.h"
#include "cli/restore_command.h"
#include "cli/sync_command.h"

namespace shardfs::cli {

std::function<int()> AddCommands(CLI::App& app) {
  app.name("shardfs");
  app.description("shardfs: a decentralized, end-to-end encrypted cloud drive for Linux.");
  app.set_version_flag("--version", std::string("shardfs ") + kVersion);
  app.require_subcommand(0, 1);
  // Each subcommand's name with what runs it, in the order of `shardfs --help`.
  std::vector<std::pair<std::string, std::function<int()>>> runs;
  auto add = [&runs](auto&& more) {
    for (auto& entry : more) runs.emplace_back(entry.first, std::move(entry.second));
  };
  runs.emplace_back("init", AddInitCommand(app));
  add(AddFileCommands(app));
  runs.emplace_back("node", AddNodeCommand(app));
  runs.emplace_back("restore", AddRestoreCommand(app));
  runs.emplace_back("sync", AddSyncCommand(app));
  add(AddMountCommands(app));
  add(AddNetworkCommands(app));
  add(AddApiCommands(app));
  runs.emplace_back("local-network", AddLocalNetworkCommand(app));
  return [&app, runs = std::move(runs)] {
    for (const auto& [name, run] : runs) {
      if (app.got_subcommand(name)) return run();
    }
    return -1;
  };
}

}  // namespace shardfs::cli
