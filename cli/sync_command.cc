#include "cli/sync_command.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/api_server.h"
#include "cli/drive_home.h"
#include "cli/drive_open.h"
#include "cli/drive_tree.h"
#include "cli/exit.h"
#include "cli/mount_control.h"

namespace shardfs::cli {

namespace {

struct SyncFlags {
  DriveFlags drive;
  bool json = false;
  double timeout_seconds = 600;
};

// The drive is held: if by a process that serves its API (a mount, `shardfs serve`), that
// process syncs it (POST /api/v1/sync on the drive's socket; a mount first takes the kernel's
// cached writes).
int SyncThroughDaemon(const SyncFlags& f, const Status& busy) {
  auto daemon = DaemonFor(f.drive, busy);
  if (!daemon.ok()) return Failure("sync", "open the drive", daemon.status());
  // The daemon waits for the nodes up to --timeout (whole seconds, at least 1), then stores the
  // checkpoint; the answer may take a little longer than that.
  const auto seconds =
      std::clamp<int64_t>(static_cast<int64_t>(std::ceil(f.timeout_seconds)), 1, 7 * 86400);
  auto answer = (*daemon)->Call("POST", "/api/v1/sync?timeout=" + std::to_string(seconds), nullptr,
                                std::chrono::seconds(seconds + 60));
  if (!answer.ok()) return Failure("sync", "sync through the drive's process", answer.status());
  const nlohmann::json& j = *answer;
  auto home = ResolveDriveHome(f.drive.home, f.drive.drive);
  if (!home.ok()) return Failure("sync", "find the drive", home.status());
  const auto mount = FindLiveMount(*home);
  const std::string where = mount ? "the drive mounted at " + mount->mountpoint
                                  : "drive " + f.drive.drive + " (through its process)";
  const uint64_t files = j.value("files", uint64_t{0}), bytes = j.value("bytes", uint64_t{0});
  const uint64_t head = j.value("head_sequence", uint64_t{0});
  if (f.json) {
    nlohmann::json out;
    if (mount) out["mountpoint"] = mount->mountpoint;
    out["head_sequence"] = head;
    out["uploaded_files"] = files;
    out["uploaded_bytes"] = bytes;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf(
      "Synced %s: %s of %llu file(s) that were waiting stored, catalog checkpoint %llu on the "
      "nodes.\n",
      where.c_str(), FormatByteSize(bytes).c_str(), static_cast<unsigned long long>(files),
      static_cast<unsigned long long>(head));
  return 0;
}

int Run(const SyncFlags& f) {
  if (!(f.timeout_seconds > 0 && f.timeout_seconds <= 7 * 86400)) {
    return UsageError("sync", "--timeout must be more than 0 and at most 604800 seconds");
  }
  auto drive = OpenDrive(f.drive, "shardfs sync");
  if (!drive.ok() && drive.status().code() == Code::kBusy)
    return SyncThroughDaemon(f, drive.status());
  if (!drive.ok()) return Failure("sync", "open the drive", drive.status());
  // First the files' bytes, then the catalog that points at them.
  const backend::UploadState pending = (*drive)->Uploads();
  Status uploaded =
      (*drive)->Sync(std::chrono::milliseconds(static_cast<int64_t>(f.timeout_seconds * 1000)));
  if (!uploaded.ok()) return Failure("sync", "upload", uploaded);
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
    j["uploaded_files"] = pending.staged.files;
    j["uploaded_bytes"] = pending.staged.bytes;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  if (pending.staged.layers > 0) {
    std::printf("Stored %s of %zu file(s) that were waiting.\n",
                FormatByteSize(pending.staged.bytes).c_str(), pending.staged.files);
  }
  if (info->heads_stored == 0) {
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
      "sync",
      "Store every pending upload, then checkpoint the catalog to the nodes (restore needs it).");
  AddDriveFlags(cmd, &flags->drive);
  cmd->add_flag("--json", flags->json, "Print the result as JSON");
  cmd->add_option(
      "--timeout", flags->timeout_seconds,
      "Give up (exit 1; the uploads stay queued) after this many seconds (default 600)");
  return [flags] { return Run(*flags); };
}

}  // namespace shardfs::cli
