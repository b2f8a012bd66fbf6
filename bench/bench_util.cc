#include "bench/bench_util.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "base/splitmix64.h"
#include "base/thread_annotations.h"
#include "tests/node_process.h"

namespace shardfs::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

void Fail(const std::string& what) { throw std::runtime_error(what); }

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double MedianSeconds(int runs, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    fn();
    t.push_back(SecondsSince(start));
  }
  return Median(std::move(t));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string DefaultDir(const std::string& preferred) {
  if (!preferred.empty() && fs::is_directory(preferred)) return preferred;
  const char* t = std::getenv("TMPDIR");
  return t != nullptr && *t != '\0' ? t : "/tmp";
}

std::string FsType(const std::string& path) {
  struct statfs s {};
  if (::statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794c7630:
      return "overlayfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof(hex), "0x%lx", static_cast<unsigned long>(s.f_type));
      return hex;
    }
  }
}

Status ParallelFor(int threads, size_t count, const std::function<Status(int, size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&](int worker) {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= count) return;
      Status s = fn(worker, i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) first = s;
      }
    }
  };
  if (threads <= 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int w = 0; w < threads; ++w) pool.emplace_back(work, w);
    for (auto& t : pool) t.join();
  }
  return first;
}

namespace {

// Every mount point in /proc/self/mountinfo. The kernel escapes space, tab, newline and
// backslash in them in octal, which the benchmarks' folders never hold.
std::vector<std::string> MountPoints() {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT ...
    std::istringstream fields(line);
    std::string id, parent, dev, root, mountpoint;
    if (fields >> id >> parent >> dev >> root >> mountpoint) found.push_back(mountpoint);
  }
  return found;
}

// The mount points below `dir`, deepest first.
std::vector<std::string> MountsBelow(const std::string& dir) {
  std::vector<std::string> found;
  for (auto& m : MountPoints()) {
    if (m.rfind(dir + "/", 0) == 0) found.push_back(std::move(m));
  }
  std::sort(found.rbegin(), found.rend());
  return found;
}

}  // namespace

TempDir::TempDir(const std::string& parent, const std::string& prefix, bool keep) : keep_(keep) {
  std::string tmpl = parent + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    Fail("create a temporary folder in " + parent + ": " + std::strerror(errno));
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (keep_) return;
  // A mount left in the folder by a failed run is detached rather than walked into.
  for (const auto& m : MountsBelow(path_)) ::umount2(m.c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(path_, ec);
}

// --- interruption ------------------------------------------------------------------------

namespace {
Mutex g_leftovers_mu;
std::vector<pid_t> g_pids GUARDED_BY(g_leftovers_mu);
std::vector<std::string> g_mounts GUARDED_BY(g_leftovers_mu);
std::string g_temp_dir GUARDED_BY(g_leftovers_mu);
const int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

template <typename T>
void AddOnce(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}
template <typename T>
void RemoveAll(std::vector<T>& v, const T& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
}

// Waits up to `limit` for `pid` to end (reaping it if it is a child); true if it did.
bool WaitGone(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Alive(pid)) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The interrupt's cleanup. REQUIRES: g_leftovers_mu held (for good: the process ends here).
[[noreturn]] void CleanUpAndExit(const std::string& name) REQUIRES(g_leftovers_mu) {
  std::fprintf(stderr,
               "%s: interrupted; detaching %zu mount(s), stopping %zu process(es) and removing "
               "%s\n",
               name.c_str(), g_mounts.size(), g_pids.size(),
               g_temp_dir.empty() ? "nothing" : g_temp_dir.c_str());
  // Mounts first: a daemon whose mount is gone ends, and removing the folder must not walk
  // into a mount.
  for (const auto& m : g_mounts) ::umount2(m.c_str(), MNT_DETACH);
  for (pid_t p : g_pids) ::kill(p, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (pid_t p : g_pids) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!WaitGone(p, std::max(left, std::chrono::milliseconds(0)))) {
      ::kill(p, SIGKILL);
      // A daemon is not our child: wait until it is gone, so that it writes nothing more into
      // the folder removed next.
      WaitGone(p, std::chrono::seconds(5));
    }
  }
  // A mount made by a command that was starting as the interrupt came is not registered yet:
  // detach whatever is mounted in the folder, and try again while something still writes.
  std::error_code ec;
  for (int attempt = 0; !g_temp_dir.empty() && attempt < 20; ++attempt) {
    for (const auto& m : MountsBelow(g_temp_dir)) ::umount2(m.c_str(), MNT_DETACH);
    if (fs::remove_all(g_temp_dir, ec) != static_cast<std::uintmax_t>(-1)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (ec) {
    std::fprintf(stderr, "%s: could not remove %s: %s\n", name.c_str(), g_temp_dir.c_str(),
                 ec.message().c_str());
  }
  ::_exit(130);
}
}  // namespace

void WatchForInterrupt(const std::string& name) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kStopSignals) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, name] {
    int sig = 0;
    sigwait(&set, &sig);
    // Held until the process ends: the main thread can register nothing more, start no process
    // (Spawn) and not end the process (WaitIfInterrupted) meanwhile.
    g_leftovers_mu.Lock();
    CleanUpAndExit(name);
  }).detach();
}

void WaitIfInterrupted() { MutexLock lock(&g_leftovers_mu); }

int RunWatched(const std::string& name, const std::function<int()>& run) {
  WatchForInterrupt(name);
  try {
    const int status = run();
    WaitIfInterrupted();
    return status;
  } catch (const std::exception& e) {
    WaitIfInterrupted();
    std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
    return 1;
  }
}

void AddLeftoverPid(pid_t pid) {
  MutexLock lock(&g_leftovers_mu);
  if (pid > 0) AddOnce(g_pids, pid);  // never 0 or -1: kill() would reach a group, or all
}

void RemoveLeftoverPid(pid_t pid) {
  MutexLock lock(&g_leftovers_mu);
  RemoveAll(g_pids, pid);
}

void AddLeftoverMount(const std::string& mountpoint) {
  MutexLock lock(&g_leftovers_mu);
  AddOnce(g_mounts, mountpoint);
}

void RemoveLeftoverMount(const std::string& mountpoint) {
  MutexLock lock(&g_leftovers_mu);
  RemoveAll(g_mounts, mountpoint);
}

void SetLeftoverDir(const std::string& dir) {
  MutexLock lock(&g_leftovers_mu);
  g_temp_dir = dir;
}

// --- processes ---------------------------------------------------------------------------

bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
  if (r == 0) return true;                        // a child still running
  if (r == pid) return false;                     // a child, reaped now
  return errno == ECHILD && ::kill(pid, 0) == 0;  // not our child: does it exist?
}

pid_t Spawn(const std::vector<std::string>& argv_s, int out_fd, int err_fd, int death_signal) {
  std::vector<std::string> copy = argv_s;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const pid_t parent = ::getpid();
  // Forked and registered under the lock, so that an interrupt's cleanup knows every child.
  pid_t pid;
  int fork_error = 0;
  {
    MutexLock lock(&g_leftovers_mu);
    pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls until exec (as tests/node_process.cc).
      ::prctl(PR_SET_PDEATHSIG, death_signal);
      if (::getppid() != parent) ::_exit(127);
      if (null.valid()) ::dup2(null.get(), STDIN_FILENO);
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid > 0) {
      AddOnce(g_pids, pid);
    } else {
      fork_error = errno;
    }
  }
  if (pid < 0) Fail(std::string("fork: ") + std::strerror(fork_error));
  return pid;
}

double TimevalSeconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  return line;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& scratch,
                         const CommandOptions& options) {
  const std::string out_path = options.discard_out ? "/dev/null" : scratch + "/cmd.out";
  const std::string err_path = scratch + "/cmd.err";
  UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd err(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.valid() || !err.valid()) Fail("create " + err_path + ": " + std::strerror(errno));
  const auto start = Clock::now();
  const pid_t pid = Spawn(argv, out.get(), err.get(), SIGKILL);
  CommandResult c;
  const auto deadline = start + std::chrono::seconds(options.timeout);
  while (true) {
    struct rusage usage {};
    const pid_t r = ::wait4(pid, &c.status, WNOHANG, &usage);
    if (r == pid) {
      c.cpu_seconds = TimevalSeconds(usage.ru_utime) + TimevalSeconds(usage.ru_stime);
      break;
    }
    if (r < 0 && errno != EINTR) Fail(std::string("waitpid: ") + std::strerror(errno));
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &c.status, 0);
      RemoveLeftoverPid(pid);
      Fail(CommandLine(argv) + ": did not end within " + std::to_string(options.timeout) +
           " s (killed)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  c.seconds = SecondsSince(start);
  RemoveLeftoverPid(pid);
  if (!options.discard_out) c.out = ReadText(out_path);
  c.err = ReadText(err_path);
  if (options.check && (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)) {
    Fail(CommandLine(argv) + ": " + test::DescribeWait(c.status) + "; stderr: " + c.err);
  }
  return c;
}

ChildProcess::~ChildProcess() {
  if (running()) Stop(SIGTERM, std::chrono::seconds(10));
}

void ChildProcess::Start(const std::vector<std::string>& argv, const std::string& log,
                         int death_signal) {
  if (running()) Fail("internal: " + argv[0] + " started twice");
  log_ = log;
  UniqueFd fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd.valid()) Fail("create " + log + ": " + std::strerror(errno));
  pid_ = Spawn(argv, fd.get(), fd.get(), death_signal);
}

bool ChildProcess::Wait(std::chrono::milliseconds limit) {
  if (!running()) return true;
  if (!WaitGone(pid_, limit)) return false;
  RemoveLeftoverPid(pid_);
  pid_ = -1;
  return true;
}

int ChildProcess::Stop(int sig, std::chrono::milliseconds grace) {
  if (!running()) return -1;
  int status = 0;
  ::kill(pid_, sig);
  const auto deadline = Clock::now() + grace;
  pid_t r;
  while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (r == 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  RemoveLeftoverPid(pid_);
  pid_ = -1;
  return status;
}

std::string ChildProcess::LogTail(size_t n) const {
  const std::string all = ReadText(log_);
  return all.size() > n ? all.substr(all.size() - n) : all;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- storage nodes -----------------------------------------------------------------------

LocalNodes::LocalNodes(const std::string& shardfs, const std::string& parent, int count,
                       uint64_t capacity, const std::vector<std::string>& extra, bool join) {
  for (int i = 0; i < count; ++i) {
    const std::string dir = parent + "/node" + std::to_string(i);
    fs::create_directory(dir);
    std::vector<std::string> args = {"--capacity",   std::to_string(capacity),
                                     "--reserve",    "0",
                                     "--scrub-rate", "0",
                                     "--log-level",  "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (join && i > 0) {
      args.push_back("--join");
      args.push_back(nodes_.front()->address().ToString());
    }
    nodes_.push_back(std::make_unique<test::NodeProcess>(
        test::NodeProcessOptions{shardfs, dir + "/data", args, dir,
                                 /*log_to_file=*/true, SIGTERM, std::chrono::seconds(30)}));
    Check(nodes_.back()->Start(), "start node " + std::to_string(i));
    AddLeftoverPid(nodes_.back()->pid());
    list_ += (i == 0 ? "" : ",") + nodes_.back()->address().ToString();
  }
}

void LocalNodes::Stop() {
  for (auto& n : nodes_) {
    RemoveLeftoverPid(n->pid());
    if (n->Alive()) (void)n->Stop(SIGTERM, std::chrono::seconds(30));
  }
}

std::string MissingTool(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path == nullptr ? "/usr/bin:/bin" : path);
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (!d.empty() && ::access((d + "/" + tool).c_str(), X_OK) == 0) return "";
  }
  return tool + " is not in $PATH";
}

void WriteText(const std::string& path, const std::string& text) {
  Check(WriteFileAtomic(path, ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                        0600),
        "write " + path);
}

void DropCaches() {
  UniqueFd fd(::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), "3\n", 2) != 2) {
    Fail(std::string("drop caches (/proc/sys/vm/drop_caches): ") + std::strerror(errno));
  }
}

bool IsMountPoint(const std::string& path) {
  const auto all = MountPoints();
  return std::find(all.begin(), all.end(), path) != all.end();
}

// --- the raw disk write baseline ---------------------------------------------------------

Status RawWrite(const std::string& path, ByteSpan data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return PosixError("create " + path, errno);
  SFS_RETURN_IF_ERROR(WriteAll(fd.get(), data, path));
  if (::fsync(fd.get()) != 0) return PosixError("fsync " + path, errno);
  if (fd.Close() != 0) return PosixError("close " + path, errno);
  return Status::Ok();
}

void SyncFs(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::syncfs(fd.get()) != 0) Fail("syncfs " + dir + ": " + std::strerror(errno));
}

// In a virtual machine that returns free memory to its host (virtio-balloon free page
// reporting, as on the reference machine), memory freed a few seconds earlier is no longer
// backed, and the first write to it pays a fault in the host: a 1-thread raw write into such
// memory measured 260-390 MB/s at 2-3 ns/B of CPU, all of it in the copy into the page cache,
// and 1,300-1,500 MB/s at 0.33 ns/B after this. Touching anonymous memory instead did not
// help. It removes most of the effect, not all of it. The scratch file is not fsync'd and is
// far below the dirty-page thresholds, so nothing of it reaches the disk.
void Prefault(const std::string& dir, uint64_t bytes) {
  static const Bytes zeros(size_t{4} << 20);
  const std::string path = dir + "/prefault";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) Fail("create " + path + ": " + std::strerror(errno));
  for (uint64_t done = 0; done < bytes; done += zeros.size()) {
    Check(WriteAll(fd.get(), zeros, path), "prefault");
  }
  fd.Reset();
  ::unlink(path.c_str());
}

double TimeRawWrite(const std::string& dir, ByteSpan data, size_t count, int threads) {
  SyncFs(dir);
  Prefault(dir, data.size() * count + (uint64_t{64} << 20));
  auto path = [&](size_t i) { return dir + "/raw-" + std::to_string(i); };
  auto start = Clock::now();
  Check(ParallelFor(threads, count, [&](int, size_t i) { return RawWrite(path(i), data); }),
        "raw write");
  double secs = SecondsSince(start);
  for (size_t i = 0; i < count; ++i) ::unlink(path(i).c_str());
  return secs;
}

// --- the write pipeline ------------------------------------------------------------------

double TimeWritePipeline(const crypto::DriveKeys& keys, backend::WritePipelineOptions options,
                         ByteSpan input, int threads, int runs) {
  options.threads = threads;
  auto p = backend::WritePipeline::Create(keys, options,
                                          [](backend::EncodedPack&) { return Status::Ok(); });
  Check(p.status(), "write pipeline");
  return MedianSeconds(runs, [&] { Check((*p)->Run(input, nullptr), "write pipeline run"); });
}

// --- files -------------------------------------------------------------------------------

void FillBlock(MutableByteSpan out, uint64_t seed, uint64_t block) {
  FillSplitMix64(out, SplitMix64Mix(seed) ^ SplitMix64Mix(block + 1));
}

void WriteRandomFile(const std::string& path, uint64_t size, uint64_t seed) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) Fail("create " + path + ": " + std::strerror(errno));
  Bytes buf(std::min<uint64_t>(size, kBlock));
  for (uint64_t off = 0, b = 0; off < size; off += buf.size(), ++b) {
    MutableByteSpan piece = MutableByteSpan(buf).first(std::min<uint64_t>(buf.size(), size - off));
    FillBlock(piece, seed, b);
    Check(WriteAll(fd.get(), piece, path), "write " + path);
  }
  // On the disk before any clock starts: a measured run is not charged for its writeback.
  if (::fsync(fd.get()) != 0) Fail("fsync " + path + ": " + std::strerror(errno));
}

void CompareFiles(const std::string& a, const std::string& b) {
  UniqueFd fa(::open(a.c_str(), O_RDONLY | O_CLOEXEC)), fb(::open(b.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fa.valid() || !fb.valid()) Fail("open " + a + " or " + b + ": " + std::strerror(errno));
  Bytes ba(kBlock), bb(kBlock);
  for (uint64_t off = 0;;) {
    ssize_t na = ::pread(fa.get(), ba.data(), ba.size(), static_cast<off_t>(off));
    ssize_t nb = ::pread(fb.get(), bb.data(), bb.size(), static_cast<off_t>(off));
    if (na < 0 || nb < 0) Fail("read " + a + " or " + b + ": " + std::strerror(errno));
    if (na != nb || std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) {
      Fail(b + " differs from " + a + " near byte " + std::to_string(off));
    }
    if (na == 0) return;
    off += static_cast<uint64_t>(na);
  }
}

std::string SmallTree::Path(const std::string& root, size_t i) const {
  char name[64];
  std::snprintf(name, sizeof(name), "/d%04zu/f%05zu", i / per_folder, i);
  return root + name;
}

void SmallTree::Write(const std::string& root, uint64_t seed) const {
  Bytes buf(kib << 10);
  for (size_t i = 0; i < files; ++i) {
    if (i % per_folder == 0) fs::create_directories(fs::path(Path(root, i)).parent_path());
    const std::string path = Path(root, i);
    FillSplitMix64(buf, SplitMix64Mix(seed) ^ SplitMix64Mix(i + 1));
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) Fail("create " + path + ": " + std::strerror(errno));
    Check(WriteAll(fd.get(), buf, path), "write " + path);
  }
  SyncFs(root);
}

void SmallTree::Compare(const std::string& root, const std::string& copy) const {
  size_t entries = 0;
  for (auto it = fs::recursive_directory_iterator(copy); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_regular_file()) ++entries;
  }
  if (entries != files) {
    Fail(copy + " holds " + std::to_string(entries) + " files, not " + std::to_string(files));
  }
  for (size_t i = 0; i < files; ++i) CompareFiles(Path(root, i), Path(copy, i));
}

// --- the report --------------------------------------------------------------------------

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string Range(const std::vector<double>& secs, double units, const char* f) {
  if (secs.size() < 2) return "";
  auto [lo, hi] = std::minmax_element(secs.begin(), secs.end());
  return "(" + Fmt(f, units / *hi) + "-" + Fmt(f, units / *lo) + ")";
}

void PrintTargets(const std::vector<Target>& targets, const char* met_word,
                  const std::string& note) {
  std::printf("\ntargets\n");
  int met = 0;
  for (const auto& t : targets) {
    std::printf("  %-56s %8s   target %-7s %s\n", t.what.c_str(), t.value.c_str(), t.target.c_str(),
                t.pass ? met_word : "MISS");
    met += t.pass;
  }
  std::printf("\n%d of %zu targets met (%s)\n", met, targets.size(), note.c_str());
}

nlohmann::json TargetsJson(const std::vector<Target>& targets) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& t : targets) {
    j.push_back({{"what", t.what}, {"value", t.value}, {"target", t.target}, {"pass", t.pass}});
  }
  return j;
}

}  // namespace shardfs::bench
