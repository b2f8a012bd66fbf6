#include "cli/sync_command.h"

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/drive_open.h"
#include "cli/exit.h"

namespace shardfs::cli {

namespace {

struct SyncFlags {
  DriveFlags drive;
  bool json = false;
};

int Run(const SyncFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs sync");
  if (!drive.ok()) return Failure("sync", "open the drive", drive.status());
  auto info = (*drive)->checkpointer().Sync();
  if (!info.ok()) return Failure("sync", "checkpoint", info.status());
  const size_t nodes = (*drive)->config().nodes.size();
  if (f.json) {
    nlohmann::json j;
    j["head_sequence"] = info->head_sequence;
    j["last_change"] = info->last_change;
    j["base"] = info->base;
    j["base_bytes"] = info->base_bytes;
    j["deltas"] = info->deltas;
    j["delta_bytes"] = info->delta_bytes;
    j["stored_bytes"] = info->stored_bytes;
    j["heads_stored"] = info->heads_stored;
    j["nodes"] = nodes;
    std::printf("%s\n", j.dump().c_str());
  } else if (info->heads_stored == 0) {
    std::printf("Up to date: checkpoint %llu holds change %llu.\n",
                static_cast<unsigned long long>(info->head_sequence),
                static_cast<unsigned long long>(info->last_change));
  } else {
    std::printf(
        "Checkpoint %llu stored (%s, up to change %llu); its head is on %zu of %zu nodes.\n",
        static_cast<unsigned long long>(info->head_sequence), info->base ? "a new base" : "a delta",
        static_cast<unsigned long long>(info->last_change), info->heads_stored, nodes);
  }
  return 0;
}

}  // namespace

std::function<int()> AddSyncCommand(CLI::App& app) {
  auto flags = std::make_shared<SyncFlags>();
  CLI::App* cmd = app.add_subcommand(
      "sync", "Checkpoint the drive's catalog to its nodes now (restore needs a checkpoint).");
  AddDriveFlags(cmd, &flags->drive);
  cmd->add_flag("--json", flags->json, "Print the result as JSON");
  return [flags] { return Run(*flags); };
}

}  // namespace shardfs::cli
