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
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"

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

double MedianSeconds(int runs, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
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

TempDir::TempDir(const std::string& parent, const std::string& prefix, bool keep) : keep_(keep) {
  std::string tmpl = parent + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    Fail("create a temporary folder in " + parent + ": " + std::strerror(errno));
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!keep_) fs::remove_all(path_, ec);
}

// --- interruption ------------------------------------------------------------------------

namespace {
std::mutex g_leftovers_mu;
std::vector<pid_t> g_pids;  // guarded by g_leftovers_mu
std::string g_temp_dir;     // guarded by g_leftovers_mu
const int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
}  // namespace

void WatchForInterrupt(const std::string& name) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kStopSignals) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, name] {
    int sig = 0;
    sigwait(&set, &sig);
    std::lock_guard<std::mutex> lock(g_leftovers_mu);
    std::fprintf(stderr, "%s: interrupted; stopping %zu process(es) and removing %s\n",
                 name.c_str(), g_pids.size(), g_temp_dir.empty() ? "nothing" : g_temp_dir.c_str());
    for (pid_t p : g_pids) ::kill(p, SIGTERM);
    for (pid_t p : g_pids) {
      for (int i = 0; i < 500 && ::waitpid(p, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (::waitpid(p, nullptr, WNOHANG) == 0) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
    }
    std::error_code ec;
    if (!g_temp_dir.empty()) fs::remove_all(g_temp_dir, ec);
    ::_exit(130);
  }).detach();
}

void SetLeftovers(std::vector<pid_t> pids, const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_leftovers_mu);
  g_pids = std::move(pids);
  g_temp_dir = dir;
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
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
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

}  // namespace shardfs::bench
