// shardfs: the one binary. Subcommands arrive with the issues that build them (node, init,
// put, get, ls, mkdir, sync, restore, mount, umount, nodes, audit, repair, serve, pair,
// devices). Conventions: usage errors exit
// 2, runtime errors exit 1 with a message on stderr, --help and --version exit 0.

#include <cstdio>
#include <functional>

#include <CLI/CLI.hpp>
#include <malloc.h>

#include "base/logging.h"
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

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"shardfs: a decentralized, end-to-end encrypted cloud drive for Linux."};
  app.name("shardfs");
  app.set_version_flag("--version", std::string("shardfs ") + shardfs::kVersion);
  app.require_subcommand(0, 1);
  auto run_init = shardfs::cli::AddInitCommand(app);
  auto run_files = shardfs::cli::AddFileCommands(app);
  auto run_node = shardfs::cli::AddNodeCommand(app);
  auto run_restore = shardfs::cli::AddRestoreCommand(app);
  auto run_sync = shardfs::cli::AddSyncCommand(app);
  auto run_mount = shardfs::cli::AddMountCommands(app);
  auto run_network = shardfs::cli::AddNetworkCommands(app);
  auto run_api = shardfs::cli::AddApiCommands(app);
  auto run_local = shardfs::cli::AddLocalNetworkCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  // Commands print their results on stdout (some as JSON): the engine's log goes to stderr,
  // warnings and errors only. `node` and `mount` set up their own logs.
  (void)shardfs::log::Init(shardfs::log::Options{shardfs::log::Level::kWarn, ""});
  if (app.got_subcommand("init")) return run_init();
  for (auto& [name, run] : run_files) {
    if (app.got_subcommand(name)) return run();
  }
  if (app.got_subcommand("node")) return run_node();
  if (app.got_subcommand("restore")) return run_restore();
  if (app.got_subcommand("sync")) return run_sync();
  if (app.got_subcommand("local-network")) return run_local();
  for (auto& [name, run] : run_mount) {
    if (app.got_subcommand(name)) return run();
  }
  for (auto& [name, run] : run_network) {
    if (app.got_subcommand(name)) return run();
  }
  for (auto& [name, run] : run_api) {
    if (app.got_subcommand(name)) return run();
  }
  std::fputs(app.help().c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Buffers of 8 MiB and more (packs, a file's writes joined for the chunker) are mapped, and
  // go back to the system when freed. Left to malloc's sliding threshold they come from the
  // arena of whichever thread asked, and stay there: a daemon whose threads take turns with
  // them grows by a buffer per thread (the mount daemon's peak RSS over five 1 GiB writes:
  // about 250 MiB, 118 MiB with this). Smaller, hot buffers are pooled where they are used.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardfs: %s\n", e.what());
    return 1;
  }
}
