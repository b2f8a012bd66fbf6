#include "cli/mount_control.h"

#include <thread>

#include <signal.h>

#include "base/file.h"

namespace shardfs::cli {

namespace {
constexpr size_t kMaxControlFile = 1 << 16;

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Status WriteJsonFile(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  return WriteFileAtomic(path, ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                         0600);
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  SFS_ASSIGN_OR_RETURN(Bytes raw, ReadFile(path, kMaxControlFile));
  auto j = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + " is not a JSON object");
  return j;
}

bool ProcessAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

std::optional<MountRecord> FindLiveMount(const DriveHome& home) {
  auto j = ReadJsonFile(MountRecordPath(home));
  if (!j.ok()) return std::nullopt;
  MountRecord r;
  r.pid = j->value("pid", 0);
  r.mountpoint = j->value("mountpoint", "");
  if (!ProcessAlive(r.pid)) return std::nullopt;
  return r;
}

Result<DaemonSync> AskDaemonToSync(const DriveHome& home, const MountRecord& mount,
                                   std::chrono::milliseconds timeout) {
  // The daemon answers with the time its sync began: an answer counts if that is after this
  // request (a sync already running when the signal came may miss writes made before it).
  const int64_t asked = WallNs();
  if (::kill(mount.pid, SIGUSR2) != 0) {
    return Status::Unavailable("the mount's daemon (pid " + std::to_string(mount.pid) +
                               ") cannot be signalled: " + std::strerror(errno));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto j = ReadJsonFile(SyncResultPath(home));
    if (j.ok() && j->value("pid", 0) == mount.pid && j->value("started_ns", int64_t{0}) >= asked) {
      DaemonSync d;
      d.ok = j->value("ok", false);
      d.error = j->value("error", "");
      d.files = j->value("files", uint64_t{0});
      d.bytes = j->value("bytes", uint64_t{0});
      d.head_sequence = j->value("head_sequence", uint64_t{0});
      return d;
    }
    if (!ProcessAlive(mount.pid)) {
      return Status::Unavailable("the mount's daemon ended before it answered");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::DeadlineExceeded("the mount's daemon did not finish its sync in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace shardfs::cli
