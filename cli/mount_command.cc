#include "cli/mount_command.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/logging.h"
#include "base/units.h"
#include "base/wall_clock.h"
#include "cli/api_server.h"
#include "cli/drive_home.h"
#include "cli/drive_open.h"
#include "cli/exit.h"
#include "cli/mount_control.h"
#include "fuse/mount.h"

namespace shardfs::cli {

namespace {

struct MountFlags {
  DriveFlags drive;
  std::string mountpoint;
  bool foreground = false;
  std::vector<std::string> options;
  double fsync_timeout = 120;
  double flush_timeout = 600;
  std::string log_level = "info";
  ApiFlags api;
};

struct UmountFlags {
  std::string home;
  std::string drive;
  std::string mountpoint;
  double timeout = 3600;
};

std::string OutcomeText(const MountOutcome& o, const std::string& mountpoint) {
  if (o.stored) return "Unmounted " + mountpoint + ": every write is stored on the nodes.";
  return "Unmounted " + mountpoint + ": " + std::to_string(o.queued_files) + " file(s) (" +
         FormatByteSize(o.queued_bytes) +
         ") could not be stored now and are queued on local disk in " + o.staging_dir +
         "; they are uploaded at the next mount or `shardfs sync`. Reason: " + o.error;
}

// Has the kernel hand over the writes it cached for the mount (they come in as requests).
void HandOverCachedWrites(const std::string& mountpoint) {
  if (int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
    ::syncfs(fd);
    ::close(fd);
  }
}

Result<fuse::MountOptions> ParseMountOptions(const MountFlags& f) {
  fuse::MountOptions mo;
  mo.mountpoint = f.mountpoint;
  mo.fsync_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.fsync_timeout * 1000));
  for (const std::string& list : f.options) {
    std::istringstream in(list);
    std::string opt;
    while (std::getline(in, opt, ',')) {
      if (opt == "allow_other") {
        mo.allow_other = true;
      } else if (opt == "writeback_cache") {
        mo.writeback_cache = true;
      } else if (opt == "no_writeback_cache") {
        mo.writeback_cache = false;
      } else if (!opt.empty()) {
        return Status::InvalidArgument("unknown mount option '" + opt +
                                       "' (known: allow_other, no_writeback_cache)");
      }
    }
  }
  return mo;
}

// Tells the waiting parent how the start went: "OK" or the error, then closes the pipe.
void Notify(int fd, const std::string& message) {
  if (fd < 0) return;
  (void)WriteAll(fd, ByteSpan(reinterpret_cast<const uint8_t*>(message.data()), message.size()),
                 "notify pipe");
  ::close(fd);
}

// The mount's process: opens the drive, mounts, serves until unmounted, then stores or queues
// everything. `notify_fd` (-1 in the foreground) gets the start's outcome.
int Serve(const MountFlags& f, const DriveHome& home, int notify_fd) {
  const auto fail = [&](std::string_view what, const Status& s) {
    Notify(notify_fd, std::string(what) + ": " + s.ToString());
    return Failure("mount", what, s);
  };
  // Signals are taken by one thread (below), never by the threads serving requests.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto mo = ParseMountOptions(f);
  if (!mo.ok()) return fail("options", mo.status());
  const std::string mountpoint = fuse::MountpointPath(f.mountpoint);
  auto drive = OpenDrive(
      f.drive, "shardfs mount at " + mountpoint + " (pid " + std::to_string(::getpid()) + ")",
      /*care=*/true);
  if (!drive.ok()) return fail("open the drive", drive.status());
  auto mount = fuse::Mount::Create(drive->get(), *mo);
  if (!mount.ok()) return fail("mount", mount.status());
  const MountRecord record{::getpid(), mountpoint};
  if (Status s = WriteMountRecord(home, record); !s.ok()) {
    (void)(*mount)->Unmount(true);
    return fail("write the mount record", s);
  }
  std::remove(MountResultPath(home).c_str());
  fuse::Mount* m = mount->get();
  backend::Drive* d = drive->get();
  const auto flush_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(f.flush_timeout * 1000));

  // The companion API: on the drive's socket always (the CLI's way in while mounted), on TCP
  // with --api. What it changes, the kernel forgets it cached.
  api::ApiOptions ao;
  ao.drive_name = f.drive.drive;
  ao.invalidate_inode = [m](backend::Ino ino) { m->InvalidateInode(ino); };
  ao.invalidate_entry = [m](backend::Ino parent, const std::string& name) {
    m->InvalidateEntry(parent, name);
  };
  ao.before_sync = [m] { HandOverCachedWrites(m->mountpoint()); };
  ao.sync_timeout = flush_timeout;
  auto servers = ApiServers::Start(d, home, f.api, ao);
  if (!servers.ok()) {
    (void)m->Unmount(true);
    std::remove(MountRecordPath(home).c_str());
    return fail("start the API", servers.status());
  }
  log::Info("mounted drive {} at {} (pid {}); API on {}{}", f.drive.drive, mountpoint, ::getpid(),
            ApiSocketPath(home), (*servers)->url().empty() ? "" : " and " + (*servers)->url());
  if (!(*servers)->fingerprint().empty()) {
    log::Info("API certificate SHA-256 fingerprint: {}", (*servers)->fingerprint());
  }
  Notify(notify_fd, "OK\n" + (*servers)->url() + "\n" + (*servers)->fingerprint());
  std::thread signal_thread([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0) {
      if (sig == SIGUSR1) return;  // the session ended
      log::Info("signal {}: flushing and unmounting {}", sig, mountpoint);
      // The kernel hands over the writes it cached, then they are stored or made durable.
      HandOverCachedWrites(mountpoint);
      Status s = m->Unmount(false);
      if (s.code() == Code::kBusy) {
        log::Warn("{}: files are open; storing what was written, then detaching", mountpoint);
        (void)d->Sync(flush_timeout);
        (void)d->SyncStaging();
        s = m->Unmount(true);
      }
      if (!s.ok()) log::Error("unmount {}: {}", mountpoint, s.ToString());
    }
  });
  Status served = m->Run();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  (*servers)->Stop();
  if (!served.ok()) log::Error("{}", served.ToString());
  log::Info("session at {} ended; storing what is queued", mountpoint);
  mount->reset();
  const MountOutcome o = StoreOrQueue(*d, flush_timeout, home.staging_dir());
  const std::string text = OutcomeText(o, mountpoint);
  if (o.stored) {
    log::Info("{}", text);
  } else {
    log::Warn("{}", text);
  }
  drive->reset();
  if (Status s = WriteMountOutcome(home, record, o); !s.ok()) {
    log::Error("write {}: {}", MountResultPath(home), s.ToString());
  }
  std::remove(MountRecordPath(home).c_str());
  if (notify_fd < 0) std::printf("%s\n", text.c_str());
  return 0;
}

int RunMount(const MountFlags& f) {
  if (!(f.fsync_timeout > 0 && f.fsync_timeout <= 86400) ||
      !(f.flush_timeout >= 0 && f.flush_timeout <= 7 * 86400)) {
    return UsageError("mount",
                      "--fsync-timeout must be in (0, 86400] and --flush-timeout in "
                      "[0, 604800] seconds");
  }
  if (auto mo = ParseMountOptions(f); !mo.ok()) return UsageError("mount", mo.status().message());
  if (f.api.http && f.api.listen.empty())
    return UsageError("mount", "--http needs --api HOST:PORT");
  auto level = log::ParseLevel(f.log_level);
  if (!level.ok()) return UsageError("mount", level.status().message());
  auto home = ResolveDriveHome(f.drive.home, f.drive.drive);
  if (!home.ok()) return Failure("mount", "find the drive", home.status());
  auto stale = fuse::ClearStaleMount(f.mountpoint);
  if (!stale.ok()) return Failure("mount", "check the mountpoint", stale.status());
  if (*stale) {
    std::printf("Cleared a dead shardfs mount at %s (its daemon had stopped).\n",
                f.mountpoint.c_str());
  }
  struct stat st {};
  if (::stat(f.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Failure("mount", "check the mountpoint",
                   Status::InvalidArgument(f.mountpoint + " is not an existing folder"));
  }
  if (f.foreground) {
    if (Status s = log::Init(log::Options{*level, ""}); !s.ok()) {
      return Failure("mount", "start logging", s);
    }
    return Serve(f, *home, -1);
  }
  // The daemon is forked before any thread starts; it reports through a pipe once mounted.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Failure("mount", "pipe", PosixError("pipe", errno));
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Failure("mount", "fork", PosixError("fork", errno));
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::setsid();
    const int null = ::open("/dev/null", O_RDWR);
    const int logfd =
        ::open(MountLogPath(*home).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (logfd >= 0) {
      ::dup2(logfd, STDOUT_FILENO);
      ::dup2(logfd, STDERR_FILENO);
    }
    if (Status s = log::Init(log::Options{*level, MountLogPath(*home)}); !s.ok()) {
      Notify(pipe_fds[1], "start logging: " + s.ToString());
      ::_exit(1);
    }
    if (::chdir("/") != 0) {
      // Nothing depends on the working folder; staying elsewhere only keeps it busy.
    }
    const int code = Serve(f, *home, pipe_fds[1]);
    log::Flush();
    ::_exit(code);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    message.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (message.rfind("OK", 0) == 0) {
    std::printf("Mounted drive %s at %s (daemon pid %d; log: %s).\n", f.drive.drive.c_str(),
                fuse::MountpointPath(f.mountpoint).c_str(), pid, MountLogPath(*home).c_str());
    // "OK\nURL\nFINGERPRINT" when the API serves TCP.
    std::istringstream lines(message);
    std::string ok, url, fingerprint;
    std::getline(lines, ok);
    std::getline(lines, url);
    std::getline(lines, fingerprint);
    if (!url.empty()) std::printf("Companion API at %s\n", url.c_str());
    if (!fingerprint.empty()) std::printf("Certificate SHA-256: %s\n", fingerprint.c_str());
    return 0;
  }
  if (message.empty())
    message = "the daemon ended before mounting (see " + MountLogPath(*home) + ")";
  std::fprintf(stderr, "shardfs mount: %s\n", message.c_str());
  return kExitFailure;
}

// The data folders that may hold a daemon's record: --home's, or every drive's under the XDG
// data folder.
std::vector<DriveHome> CandidateHomes(const UmountFlags& f) {
  std::vector<DriveHome> homes;
  if (!f.home.empty() || !f.drive.empty()) {
    auto h = ResolveDriveHome(f.home, f.drive.empty() ? "default" : f.drive);
    if (h.ok()) homes.push_back(*h);
    return homes;
  }
  auto probe = ResolveDriveHome("", "default");
  if (!probe.ok()) return homes;
  const std::filesystem::path root = std::filesystem::path(probe->data_dir).parent_path();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    if (!entry.is_directory(ec)) continue;
    auto h = ResolveDriveHome("", entry.path().filename().string());
    if (h.ok()) homes.push_back(*h);
  }
  return homes;
}

int RunUmount(const UmountFlags& f) {
  if (!(f.timeout > 0 && f.timeout <= 7 * 86400)) {
    return UsageError("umount", "--timeout must be more than 0 and at most 604800 seconds");
  }
  const std::string mountpoint = fuse::MountpointPath(f.mountpoint);
  std::optional<DriveHome> home;
  pid_t pid = 0;
  for (const DriveHome& h : CandidateHomes(f)) {
    auto record = ReadMountRecord(h);
    if (!record || record->mountpoint != mountpoint) continue;
    home = h;
    pid = record->pid;
    break;
  }
  if (!fuse::IsShardfsMount(mountpoint)) {
    return Failure("umount", "find the mount",
                   Status::NotFound(mountpoint + " is not a shardfs mount"));
  }
  if (Status s = fuse::UnmountPath(mountpoint, false); !s.ok()) {
    return Failure("umount", "unmount", s);
  }
  if (!home || !ProcessAlive(pid)) {
    std::printf("Unmounted %s (no running daemon recorded for it: nothing to wait for).\n",
                mountpoint.c_str());
    return 0;
  }
  // The daemon now stores what is queued; wait for it to end and read what it says.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(f.timeout * 1000));
  while (ProcessAlive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr,
                   "shardfs umount: unmounted %s, but its daemon (pid %d) is still storing "
                   "queued writes after --timeout; it goes on in the background (log: %s)\n",
                   mountpoint.c_str(), pid, MountLogPath(*home).c_str());
      return kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::optional<MountOutcome> outcome = ReadMountOutcome(*home, pid);
  if (!outcome) {
    std::fprintf(stderr,
                 "shardfs umount: unmounted %s, but its daemon ended without a report; what "
                 "it had not stored waits on local disk for the next start (log: %s)\n",
                 mountpoint.c_str(), MountLogPath(*home).c_str());
    return kExitFailure;
  }
  std::printf("%s\n", OutcomeText(*outcome, mountpoint).c_str());
  return 0;
}

}  // namespace

std::vector<std::pair<std::string, std::function<int()>>> AddMountCommands(CLI::App& app) {
  std::vector<std::pair<std::string, std::function<int()>>> run;

  auto mount = std::make_shared<MountFlags>();
  CLI::App* m =
      app.add_subcommand("mount", "Mount the drive at a folder (as a daemon unless --foreground).");
  m->add_option("mountpoint", mount->mountpoint, "An existing folder")->required();
  AddDriveFlags(m, &mount->drive);
  m->add_flag("-f,--foreground", mount->foreground,
              "Stay in the foreground and log to stderr (Ctrl-C unmounts)");
  m->add_option("-o", mount->options,
                "Mount options, comma-separated: allow_other, no_writeback_cache");
  m->add_option("--fsync-timeout", mount->fsync_timeout,
                "Seconds an fsync waits for the nodes before it fails with EIO (the data stays "
                "queued)")
      ->capture_default_str();
  m->add_option("--flush-timeout", mount->flush_timeout,
                "Seconds the unmount tries to store what is queued before it leaves the rest "
                "queued on local disk")
      ->capture_default_str();
  m->add_option("--log-level", mount->log_level, "debug, info, warn or error")
      ->capture_default_str();
  m->add_option("--api", mount->api.listen,
                "Also serve the companion API (phones, WebDAV, dashboard) on HOST:PORT, HTTPS");
  AddApiHttpFlag(m, &mount->api);
  run.emplace_back("mount", [mount] { return RunMount(*mount); });

  auto umount = std::make_shared<UmountFlags>();
  CLI::App* u = app.add_subcommand(
      "umount", "Unmount a mounted drive, after every write is stored or queued on local disk.");
  u->add_option("mountpoint", umount->mountpoint, "The folder the drive is mounted at")->required();
  u->add_option("--home", umount->home, "The drive's folder, if it was mounted with --home");
  u->add_option("--drive", umount->drive, "The drive's name (default: any)");
  u->add_option("--timeout", umount->timeout,
                "Seconds to wait for the daemon to store what is queued")
      ->capture_default_str();
  run.emplace_back("umount", [umount] { return RunUmount(*umount); });
  return run;
}

}  // namespace shardfs::cli
