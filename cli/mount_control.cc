#include "cli/mount_control.h"

#include <cerrno>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include "base/file.h"
#include "base/wall_clock.h"

namespace shardfs::cli {

// The control files' fields, named as in the files; a field missing from a file reads as the
// struct's default.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MountRecord, pid, mountpoint)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MountOutcome, stored, queued_files, queued_bytes,
                                                staging_dir, error)

namespace {

constexpr size_t kMaxControlFile = 1 << 16;

Status WriteJsonFile(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  return WriteFileAtomic(path, ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                         0600);
}

// The JSON object in `path`; nullopt if the file is missing or holds something else.
std::optional<nlohmann::json> ReadJsonFile(const std::string& path) {
  auto raw = ReadFile(path, kMaxControlFile);
  if (!raw.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(raw->begin(), raw->end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// The file at `path` if it was written by the daemon of `pid`.
std::optional<nlohmann::json> ReadDaemonFile(const std::string& path, pid_t pid) {
  auto j = ReadJsonFile(path);
  if (!j || j->value("pid", 0) != pid) return std::nullopt;
  return j;
}

}  // namespace

bool ProcessAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

Status WriteMountRecord(const DriveHome& home, const MountRecord& record) {
  nlohmann::json j = record;
  j["log"] = MountLogPath(home);
  return WriteJsonFile(MountRecordPath(home), j);
}

std::optional<MountRecord> ReadMountRecord(const DriveHome& home) {
  auto j = ReadJsonFile(MountRecordPath(home));
  if (!j) return std::nullopt;
  return j->get<MountRecord>();
}

std::optional<MountRecord> FindLiveMount(const DriveHome& home) {
  auto r = ReadMountRecord(home);
  if (!r || !ProcessAlive(r->pid)) return std::nullopt;
  return r;
}

Status WriteMountOutcome(const DriveHome& home, const MountRecord& mount,
                         const MountOutcome& outcome) {
  nlohmann::json j = outcome;
  j.update(nlohmann::json(mount));  // pid and mountpoint
  return WriteJsonFile(MountResultPath(home), j);
}

std::optional<MountOutcome> ReadMountOutcome(const DriveHome& home, pid_t pid) {
  auto j = ReadDaemonFile(MountResultPath(home), pid);
  if (!j) return std::nullopt;
  return j->get<MountOutcome>();
}

Result<uint64_t> StoreEverything(backend::Drive& drive, std::chrono::milliseconds timeout) {
  SFS_RETURN_IF_ERROR(drive.Sync(timeout));
  SFS_ASSIGN_OR_RETURN(auto info, drive.checkpointer().Sync());
  return info.head_sequence;
}

MountOutcome StoreOrQueue(backend::Drive& drive, std::chrono::milliseconds timeout,
                          const std::string& staging_dir) {
  MountOutcome o;
  o.staging_dir = staging_dir;
  auto stored = StoreEverything(drive, timeout);
  if (stored.ok()) {
    o.stored = true;
    return o;
  }
  const backend::UploadState left = drive.Uploads();
  o.queued_files = left.staged.files;
  o.queued_bytes = left.staged.bytes;
  o.error = stored.status().ToString();
  if (Status d = drive.SyncStaging(); !d.ok()) {
    o.error += "; and making the queue durable on local disk failed: " + d.ToString();
  }
  return o;
}

}  // namespace shardfs::cli
