#include "bench/bench_drive.h"

#include <cstdio>
#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/mount.h>

#include "tests/node_process.h"

namespace shardfs::bench {

BenchDrive::BenchDrive(const std::string& shardfs, const std::string& root,
                       const std::string& scratch, int nodes, int k, int m, uint64_t capacity,
                       int timeout, std::vector<std::string> mount_flags)
    : shardfs_(shardfs),
      home_(root + "/home"),
      mountpoint_(root + "/mnt"),
      scratch_(scratch),
      timeout_(timeout),
      mount_flags_(std::move(mount_flags)),
      nodes_(shardfs, root, nodes, capacity) {
  std::filesystem::create_directories(mountpoint_);
  // No passphrase, as `shardfs init` makes the key file by default and bench/engine runs it.
  Run({"init", "--node", nodes_.list(), "--k", std::to_string(k), "--m", std::to_string(m),
       "--json"});
}

BenchDrive::~BenchDrive() {
  if (!mounted_) return;
  try {
    Unmount();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench: %s; detaching the mount\n", e.what());
    ::umount2(mountpoint_.c_str(), MNT_DETACH);
    if (Alive(daemon_)) ::kill(daemon_, SIGKILL);
  }
  RemoveLeftoverMount(mountpoint_);
  RemoveLeftoverPid(daemon_);
}

CommandResult BenchDrive::Run(std::vector<std::string> args) {
  args.insert(args.begin(), shardfs_);
  args.insert(args.end(), {"--home", home_});
  CommandOptions co;
  co.timeout = timeout_;
  return RunCommand(args, scratch_, co);
}

void BenchDrive::Mount() {
  if (mounted_) return;
  mounted_ = true;  // even if the mount fails half way: the destructor then cleans up
  const std::string t = std::to_string(timeout_);
  std::vector<std::string> args = {"mount", mountpoint_,       "--fsync-timeout",
                                   t,       "--flush-timeout", t};
  args.insert(args.end(), mount_flags_.begin(), mount_flags_.end());
  Run(args);
  AddLeftoverMount(mountpoint_);
  const std::string record = ReadText(home_ + "/mount.json");
  auto j = nlohmann::json::parse(record, nullptr, /*allow_exceptions=*/false);
  daemon_ = j.is_object() ? j.value("pid", -1) : -1;
  if (daemon_ <= 0) Fail("no daemon pid in " + home_ + "/mount.json: " + record);
  AddLeftoverPid(daemon_);
}

void BenchDrive::Unmount() {
  if (!mounted_) return;
  CommandResult c = Run({"umount", mountpoint_, "--timeout", std::to_string(timeout_)});
  mounted_ = false;
  RemoveLeftoverMount(mountpoint_);
  RemoveLeftoverPid(daemon_);
  if (c.out.find("every write is stored") == std::string::npos) {
    Fail("shardfs umount did not store every write: " + c.out);
  }
}

void BenchDrive::ClearCache() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(home_ + "/cache", ec)) {
    std::filesystem::remove_all(e.path(), ec);
  }
  if (ec) Fail("empty " + home_ + "/cache: " + ec.message());
}

long BenchDrive::DaemonPeakKiB() const { return test::ProcStatusKiB(daemon_, "VmHWM:"); }

}  // namespace shardfs::bench
