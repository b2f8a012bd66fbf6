// bench/fuse: the shardfs mount against the FUSE file systems a user might pick instead, in one
// run on one machine: an rclone crypt mount over a local folder (--vfs-cache-mode writes,
// --vfs-write-back 0s), gocryptfs over a local folder, and the plain disk (a folder).
//
// shardfs runs as a user meets it: 6 `shardfs node` processes on loopback, a drive made with
// `shardfs init --k 4 --m 2`, `shardfs mount` (the daemon) and `shardfs umount`. Every system
// gets a fresh folder under --dir (default: the build folder's disk, not tmpfs), and each
// phase's figure is the median of --runs (--small-runs for the small-file phases), the systems
// taking turns within every round:
//   - durable write: `dd if=SOURCE of=MP/big bs=1M conv=fsync` of --big-mib random bytes (the
//     source read into the page cache first), timed until dd returns; for rclone, until its
//     backend folder holds every encrypted byte (its own stats under-report pending uploads);
//   - cold read: unmount, empty the system's caches (shardfs's chunk cache, rclone's VFS
//     cache), mount, drop the kernel's caches, `dd if=MP/big of=/dev/null bs=1M`; the file is
//     then compared byte for byte with the source;
//   - `cp -a` of --small-files files of --small-kib KiB (100 to a folder) into the mount, until
//     durable: for shardfs `shardfs umount` (it returns once every write is stored on the
//     nodes), for rclone until its backend holds every file, for gocryptfs and the disk a
//     syncfs of the file system holding their bytes; then, mounted again, `rsync -a` of the same
//     tree with nothing changed;
//   - `ls -l` of one folder of --small-files entries, cold (as for the cold read) and warm;
//   - the shardfs daemon's peak RSS (VmHWM) after the big writes.
// It prints every figure, shardfs's ratio to each peer and the targets (docs/bench.md) as OK
// or MISS. The exit status is 0 either way; 1 if the benchmark itself fails (a command failed,
// bytes differ, a wait passed its deadline); 77 if it cannot run here (not root, no
// /dev/fuse, a tool missing). However the run ends (SIGINT and SIGTERM too), every mount is
// undone, every process it started stopped by pid and the temporary folder removed.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "bench/bench_drive.h"
#include "bench/bench_util.h"
#include "tests/node_process.h"

namespace shardfs::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kSystems = {"shardfs", "rclone", "gocryptfs", "disk"};

struct Options {
  std::string shardfs = SHARDFS_BINARY;
  std::string dir;  // parent of the temporary folder
  std::vector<std::string> only = kSystems;
  size_t big_mib = 1024;
  size_t small_files = 10000;
  size_t small_kib = 4;
  int runs = 5;        // durable write, cold read, ls -l
  int small_runs = 3;  // cp -a + sync, rsync -a
  int timeout = 600;   // seconds any one command or wait may take
  bool keep = false;
  bool json = false;
};

// The drive, as bench/engine makes it.
constexpr int kNodes = 6;
constexpr int kDataShards = 4;
constexpr int kParityShards = 2;

// Targets (docs/bench.md): shardfs against the peers measured in the same run.
constexpr double kWriteVsRclone = 2.0;     // durable write speed, at least
constexpr double kWriteVsGocryptfs = 0.6;  // durable write speed, at least
constexpr double kReadVsRclone = 1.0;      // cold read speed, at least
constexpr double kReadVsGocryptfs = 0.6;   // cold read speed, at least
constexpr double kCpVsRclone = 0.5;        // cp -a + sync time, at most
constexpr double kRsyncVsRclone = 1.0;     // unchanged rsync -a time, at most
constexpr double kDaemonRssMiB = 256;      // the daemon's peak RSS during the big writes, below

CommandOptions Timed(const Options& opt) {
  CommandOptions co;
  co.timeout = opt.timeout;
  return co;
}

// Reads `path` to its end, so that it is in the page cache.
void ReadWhole(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) Fail("open " + path + ": " + std::strerror(errno));
  Bytes buf(kBlock);
  ssize_t n;
  while ((n = ::read(fd.get(), buf.data(), buf.size())) > 0) {
  }
  if (n < 0) Fail("read " + path + ": " + std::strerror(errno));
}

// Removes everything in `dir`, leaving the folder.
void EmptyFolder(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
  if (ec) Fail("empty " + dir + ": " + ec.message());
}

void RemoveFile(const std::string& path) {
  std::error_code ec;
  if (!fs::remove(path, ec) && ec) Fail("remove " + path + ": " + ec.message());
}

// --- the file systems --------------------------------------------------------------------

// One file system under test, mounted at mountpoint() (the disk: a folder).
class System {
 public:
  System(std::string name, std::string mountpoint)
      : name_(std::move(name)), mountpoint_(std::move(mountpoint)) {
    fs::create_directories(mountpoint_);
  }
  virtual ~System() = default;
  System(const System&) = delete;
  System& operator=(const System&) = delete;

  const std::string& name() const { return name_; }
  const std::string& mountpoint() const { return mountpoint_; }
  std::string Path(const std::string& name) const { return mountpoint_ + "/" + name; }

  void Mount() {
    if (mounted_) return;
    mounted_ = true;  // even if DoMount fails half way: the destructor then cleans up
    DoMount();
  }
  void Unmount() {
    if (mounted_) DoUnmount();
    mounted_ = false;
  }
  // Unmounted, its own caches emptied, mounted again, the kernel's caches dropped.
  void MakeCold() {
    Unmount();
    ClearCaches();
    Mount();
    DropCaches();
  }

  // Called before a timed write: notes what the durability wait compares with.
  virtual void BeforeWrite() {}
  // After `dd conv=fsync` of `bytes` into the mount returned: waits until the write is as
  // durable as the system makes it, if fsync does not already say so.
  virtual void AfterFsyncedWrite(uint64_t /*bytes*/) {}
  // After `cp -a` of `files` files of `each` bytes into the mount: makes them durable (may
  // leave the system unmounted).
  virtual void SyncTree(size_t files, uint64_t each) = 0;
  // True for a line of cp's stderr that is a known limit of the system rather than a failure.
  virtual bool ToleratedCpError(const std::string& /*line*/) const { return false; }

 protected:
  virtual void DoMount() {}
  virtual void DoUnmount() {}
  virtual void ClearCaches() {}
  bool mounted() const { return mounted_; }

 private:
  const std::string name_;
  const std::string mountpoint_;
  bool mounted_ = false;
};

// A FUSE daemon run in the foreground as our child: mounted once `mountpoint` shows in
// /proc/self/mountinfo; unmounted with fusermount3 -u, after which the daemon gets SIGTERM.
class ForegroundMount {
 public:
  ForegroundMount(std::string mountpoint, std::string log, std::string scratch, int timeout)
      : mountpoint_(std::move(mountpoint)),
        log_(std::move(log)),
        scratch_(std::move(scratch)),
        timeout_(timeout) {}
  ~ForegroundMount() {
    if (!child_.running()) return;
    ::umount2(mountpoint_.c_str(), MNT_DETACH);
    RemoveLeftoverMount(mountpoint_);
  }  // the child is stopped by its own destructor

  void Start(const std::vector<std::string>& argv) {
    child_.Start(argv, log_, SIGTERM);
    AddLeftoverMount(mountpoint_);
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_);
    while (!IsMountPoint(mountpoint_)) {
      if (child_.Wait(std::chrono::milliseconds(0))) {
        Fail(argv[0] + " ended before mounting " + mountpoint_ + ": " + child_.LogTail(2000));
      }
      if (Clock::now() > deadline) Fail(argv[0] + " did not mount " + mountpoint_ + " in time");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void Stop() {
    RunCommand({"fusermount3", "-u", mountpoint_}, scratch_);
    RemoveLeftoverMount(mountpoint_);
    // rclone and gocryptfs end once their mount is gone; SIGTERM if one lingers.
    if (!child_.Wait(std::chrono::seconds(5))) child_.Stop(SIGTERM, std::chrono::seconds(10));
  }

 private:
  const std::string mountpoint_, log_, scratch_;
  const int timeout_;
  ChildProcess child_;
};

class ShardfsSystem : public System {
 public:
  // Starts the nodes (each may be given every shard of the run: `capacity` bytes) and makes the
  // drive in `root`/home.
  ShardfsSystem(const Options& opt, const std::string& root, const std::string& scratch,
                uint64_t capacity)
      : System("shardfs", root + "/mnt"),
        drive_(opt.shardfs, root, scratch, kNodes, kDataShards, kParityShards, capacity,
               opt.timeout) {}

  // The mount daemon's peak RSS so far (VmHWM), KiB; -1 if unknown.
  long DaemonPeakKiB() const { return drive_.DaemonPeakKiB(); }

  // `shardfs umount`: it returns once every write is stored on the nodes.
  void SyncTree(size_t /*files*/, uint64_t /*each*/) override { Unmount(); }

 protected:
  void DoMount() override { drive_.Mount(); }
  void DoUnmount() override { drive_.Unmount(); }
  // The chunk cache: a cold read fetches from the nodes.
  void ClearCaches() override { drive_.ClearCache(); }

 private:
  BenchDrive drive_;  // unmounts in its destructor
};

// rclone crypt's size for `n` bytes: a 32-byte header, and a 16-byte tag for every 64 KiB
// block (rclone's docs/content/crypt.md, "File formats").
uint64_t RcloneCryptSize(uint64_t n) { return 32 + n + 16 * ((n + 65535) / 65536); }

class RcloneSystem : public System {
 public:
  RcloneSystem(const Options& opt, const std::string& root, const std::string& scratch)
      : System("rclone", root + "/mnt"),
        opt_(opt),
        backend_(root + "/backend"),
        cache_(root + "/cache"),
        config_(root + "/rclone.conf"),
        log_(root + "/rclone.log"),
        mount_(mountpoint(), root + "/rclone.out", scratch, opt.timeout),
        scratch_(scratch) {
    fs::create_directory(backend_);
    fs::create_directory(cache_);
    auto obscure = [&](const std::string& secret) {
      std::string out = RunCommand({"rclone", "obscure", secret}, scratch_, Timed(opt_)).out;
      out.erase(out.find_last_not_of("\r\n") + 1);
      return out;
    };
    WriteText(config_, "[secret]\ntype = crypt\nremote = " + backend_ +
                           "\npassword = " + obscure("bench-fuse-password") +
                           "\npassword2 = " + obscure("bench-fuse-salt") + "\n");
  }

  // Notes the backend's entries: what the write adds is new.
  void BeforeWrite() override {
    before_.clear();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(backend_, ec)) before_.insert(e.path().string());
    if (ec) Fail("list " + backend_ + ": " + ec.message());
  }
  void AfterFsyncedWrite(uint64_t bytes) override { WaitForBackend(1, bytes); }
  void SyncTree(size_t files, uint64_t each) override { WaitForBackend(files, each); }
  // rclone mount cannot chmod: cp -a says so for every file.
  bool ToleratedCpError(const std::string& line) const override {
    return line.find("preserving permissions for") != std::string::npos;
  }

 protected:
  void DoMount() override {
    mount_.Start({"rclone", "mount", "secret:", mountpoint(), "--config", config_, "--cache-dir",
                  cache_, "--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--log-file",
                  log_, "--log-level", "NOTICE"});
  }
  void DoUnmount() override { mount_.Stop(); }
  void ClearCaches() override { EmptyFolder(cache_); }

 private:
  // Waits until the entries added to the backend since BeforeWrite hold `files` files of the
  // encrypted size of `each` bytes. rclone's local backend writes a file in place as it uploads
  // it (preallocated with KEEP_SIZE), so a file at its full encrypted size holds every byte;
  // rclone does not fsync it, so these bytes may still be in the page cache.
  void WaitForBackend(size_t files, uint64_t each) {
    const uint64_t want = RcloneCryptSize(each);
    std::set<std::string> done;  // files at their full size: not looked at again
    uint64_t largest = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(opt_.timeout);
    auto consider = [&](const fs::directory_entry& e) {
      std::error_code ec;
      if (!e.is_regular_file(ec) || done.count(e.path().string()) != 0) return;
      const uint64_t size = fs::file_size(e.path(), ec);
      if (ec) return;  // gone meanwhile
      largest = std::max(largest, size);
      if (size == want) done.insert(e.path().string());
      if (size > want) {
        Fail("rclone's backend file " + e.path().string() + " has " + std::to_string(size) +
             " bytes, more than the " + std::to_string(want) +
             " rclone crypt's format gives: a format this benchmark does not know");
      }
    };
    while (true) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(backend_, ec)) {
        if (before_.count(e.path().string()) != 0) continue;
        consider(e);
        if (!e.is_directory(ec)) continue;
        for (auto it = fs::recursive_directory_iterator(e.path(), ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          consider(*it);
        }
      }
      if (done.size() >= files) return;
      if (Clock::now() > deadline) {
        Fail("rclone's backend holds " + std::to_string(done.size()) + " of " +
             std::to_string(files) + " files of " + std::to_string(want) + " bytes after " +
             std::to_string(opt_.timeout) + " s (largest seen " + std::to_string(largest) + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  const Options& opt_;
  const std::string backend_, cache_, config_, log_;
  ForegroundMount mount_;
  const std::string scratch_;
  std::set<std::string> before_;
};

class GocryptfsSystem : public System {
 public:
  GocryptfsSystem(const Options& opt, const std::string& root, const std::string& scratch)
      : System("gocryptfs", root + "/mnt"),
        cipher_(root + "/cipher"),
        passfile_(root + "/passfile"),
        mount_(mountpoint(), root + "/gocryptfs.log", scratch, opt.timeout) {
    fs::create_directory(cipher_);
    WriteText(passfile_, "bench-fuse-password\n");
    RunCommand({"gocryptfs", "-init", "-q", "-passfile", passfile_, cipher_}, scratch, Timed(opt));
  }

  // Its bytes are in files of the cipher folder once cp returns: a syncfs of that file system.
  void SyncTree(size_t /*files*/, uint64_t /*each*/) override { SyncFs(cipher_); }

 protected:
  void DoMount() override {
    mount_.Start({"gocryptfs", "-fg", "-q", "-passfile", passfile_, cipher_, mountpoint()});
  }
  void DoUnmount() override { mount_.Stop(); }

 private:
  const std::string cipher_, passfile_;
  ForegroundMount mount_;
};

class DiskSystem : public System {
 public:
  explicit DiskSystem(const std::string& root) : System("disk", root + "/files") {}
  void SyncTree(size_t /*files*/, uint64_t /*each*/) override { SyncFs(mountpoint()); }
};

// --- the run -----------------------------------------------------------------------------

// What one system measured, seconds per run.
struct Figures {
  std::vector<double> write;    // dd conv=fsync, until durable
  std::vector<double> dd;       // until dd returned (rclone: its upload still running)
  std::vector<double> read;     // cold dd
  std::vector<double> cp;       // cp -a + sync
  std::vector<double> rsync;    // unchanged rsync -a
  std::vector<double> changes;  // lines rsync --itemize-changes printed
  std::vector<double> ls_cold;  // ls -l after MakeCold
  std::vector<double> ls_warm;  // ls -l again
  size_t tolerated_cp_errors = 0;
  long daemon_peak_kib = -1;  // shardfs only
};

// `cp -a FROM TO`; a failure fails the run unless every line of its stderr is one the system
// tolerates (counted in `fig`).
void CopyTree(const Options& opt, const std::string& scratch, System& sys, const std::string& from,
              const std::string& to, Figures& fig) {
  CommandOptions co = Timed(opt);
  co.check = false;
  CommandResult c = RunCommand({"cp", "-a", from, to}, scratch, co);
  if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) return;
  std::istringstream lines(c.err);
  std::string line;
  size_t tolerated = 0;
  while (std::getline(lines, line)) {
    if (!sys.ToleratedCpError(line)) {
      Fail("cp -a " + from + " " + to + ": " + test::DescribeWait(c.status) + "; " + line);
    }
    ++tolerated;
  }
  if (tolerated == 0) Fail("cp -a " + from + " " + to + ": " + test::DescribeWait(c.status));
  fig.tolerated_cp_errors += tolerated;
}

size_t CountLines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

double Mb(uint64_t bytes) { return static_cast<double>(bytes) / 1e6; }

// The bytes the run needs in --dir's file system at most: the sources, and per system the
// big files (two at a time; every run's on shardfs's nodes, times the expansion, its staging
// area and chunk cache; rclone's VFS cache), and the trees.
uint64_t SpaceNeeded(const Options& opt, uint64_t big, uint64_t trees) {
  const double expansion = static_cast<double>(kDataShards + kParityShards) / kDataShards;
  double need = static_cast<double>(big + trees);
  for (const auto& s : opt.only) {
    if (s == "shardfs") {
      need += (opt.runs * static_cast<double>(big) + static_cast<double>(trees)) * expansion +
              2.0 * static_cast<double>(big);
    } else {
      need += 2.0 * static_cast<double>(big) * (s == "rclone" ? 2 : 1) + static_cast<double>(trees);
    }
  }
  return static_cast<uint64_t>(need) + (uint64_t{1} << 30);
}

struct Phase {
  const char* key;    // JSON name
  const char* label;  // text label
  bool speed;         // MB/s of the big file (else seconds)
  std::vector<double> Figures::*secs;
};

int Run(const Options& opt) {
  if (std::find(opt.only.begin(), opt.only.end(), "shardfs") != opt.only.end() &&
      !fs::exists(opt.shardfs)) {
    Fail("no shardfs binary at " + opt.shardfs + " (see --shardfs)");
  }
  const uint64_t big = uint64_t{opt.big_mib} << 20;
  SmallTree tree;
  tree.files = opt.small_files;
  tree.kib = opt.small_kib;
  SmallTree flat = tree;  // one folder of every entry, for ls -l
  flat.per_folder = tree.files;
  const uint64_t each = tree.kib << 10;

  TempDir tmp(fs::absolute(opt.dir.empty() ? DefaultDir(SHARDFS_BENCH_DIR) : opt.dir).string(),
              "shardfs-bench-fuse", opt.keep);
  SetLeftoverDir(opt.keep ? "" : tmp.path());
  // Mount points as /proc/self/mountinfo shows them.
  const std::string root = fs::canonical(tmp.path()).string();
  const std::string fs_type = FsType(root);
  {
    struct statvfs sv {};
    const uint64_t need =
        SpaceNeeded(opt, big, static_cast<uint64_t>(opt.small_runs + 1) * tree.bytes());
    if (::statvfs(root.c_str(), &sv) == 0 &&
        static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize < need) {
      Fail(root + " has " +
           Fmt("%.1f", Mb(static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize) / 1e3) +
           " GB free; the run needs about " + Fmt("%.1f", Mb(need) / 1e3) + " GB (see --dir)");
    }
  }
  const std::string scratch = root;
  const std::string src = root + "/src", src_big = src + "/big", src_tree = src + "/tree",
                    src_flat = src + "/flat";
  fs::create_directory(src);
  WriteRandomFile(src_big, big, 0xb16);
  tree.Write(src_tree, 0x7ee);
  flat.Write(src_flat, 0xf1a7);

  std::vector<std::unique_ptr<System>> systems;
  ShardfsSystem* shardfs = nullptr;
  for (const auto& name : opt.only) {
    const std::string dir = root + "/" + name;
    fs::create_directory(dir);
    if (name == "shardfs") {
      const double expansion = static_cast<double>(kDataShards + kParityShards) / kDataShards;
      const auto capacity = static_cast<uint64_t>(
          static_cast<double>(opt.runs * big + (opt.small_runs + 1) * tree.bytes() +
                              (uint64_t{256} << 20)) *
          expansion);
      auto s = std::make_unique<ShardfsSystem>(opt, dir, scratch, capacity);
      shardfs = s.get();
      systems.push_back(std::move(s));
    } else if (name == "rclone") {
      systems.push_back(std::make_unique<RcloneSystem>(opt, dir, scratch));
    } else if (name == "gocryptfs") {
      systems.push_back(std::make_unique<GocryptfsSystem>(opt, dir, scratch));
    } else {
      systems.push_back(std::make_unique<DiskSystem>(dir));
    }
    systems.back()->Mount();
  }

  if (!opt.json) {
    std::printf("shardfs bench/fuse: %s; MB = 10^6 B; medians of %d runs (%d for cp/rsync)\n",
                CommandLine(opt.only).c_str(), opt.runs, opt.small_runs);
    std::printf("cpu: %s, %u cores; folder %s (%s)\n", CpuModel().c_str(),
                std::thread::hardware_concurrency(), root.c_str(), fs_type.c_str());
    if (shardfs != nullptr) {
      std::printf("shardfs: %s, %d nodes on loopback, RS(%d,%d)\n", opt.shardfs.c_str(), kNodes,
                  kDataShards, kParityShards);
    }
    if (fs_type == "tmpfs") std::printf("WARNING: tmpfs has no disk; use --dir\n");
  }
  std::map<std::string, Figures> fig;
  auto say = [&](const std::string& what) {
    if (!opt.json) std::fprintf(stderr, "  %s\n", what.c_str());
  };

  // --- durable write; the last run's file stays for the cold reads ---
  const auto big_name = [](int r) { return "big-" + std::to_string(r); };
  for (int r = 0; r < opt.runs; ++r) {
    for (auto& sys : systems) {
      say("durable write " + std::to_string(r + 1) + "/" + std::to_string(opt.runs) + ": " +
          sys->name());
      Figures& f = fig[sys->name()];
      ReadWhole(src_big);
      sys->BeforeWrite();
      const auto start = Clock::now();
      RunCommand({"dd", "if=" + src_big, "of=" + sys->Path(big_name(r)), "bs=1M", "conv=fsync"},
                 scratch, Timed(opt));
      f.dd.push_back(SecondsSince(start));
      sys->AfterFsyncedWrite(big);
      f.write.push_back(SecondsSince(start));
      if (sys.get() == shardfs)
        f.daemon_peak_kib = std::max(f.daemon_peak_kib, shardfs->DaemonPeakKiB());
      if (r > 0) RemoveFile(sys->Path(big_name(r - 1)));
    }
  }

  // --- cold read ---
  for (int r = 0; r < opt.runs; ++r) {
    for (auto& sys : systems) {
      say("cold read " + std::to_string(r + 1) + "/" + std::to_string(opt.runs) + ": " +
          sys->name());
      const std::string file = sys->Path(big_name(opt.runs - 1));
      sys->MakeCold();
      fig[sys->name()].read.push_back(
          RunCommand({"dd", "if=" + file, "of=/dev/null", "bs=1M"}, scratch, Timed(opt)).seconds);
      CompareFiles(src_big, file);
    }
  }

  // --- cp -a + sync, then an unchanged rsync -a ---
  const auto tree_name = [](int r) { return "tree-" + std::to_string(r); };
  for (int r = 0; r < opt.small_runs; ++r) {
    for (auto& sys : systems) {
      say("cp -a and rsync -a " + std::to_string(r + 1) + "/" + std::to_string(opt.small_runs) +
          ": " + sys->name());
      Figures& f = fig[sys->name()];
      sys->BeforeWrite();
      const auto start = Clock::now();
      CopyTree(opt, scratch, *sys, src_tree, sys->Path(tree_name(r)), f);
      sys->SyncTree(tree.files, each);
      f.cp.push_back(SecondsSince(start));
      sys->Mount();
      CommandResult c = RunCommand(
          {"rsync", "-a", "--itemize-changes", src_tree + "/", sys->Path(tree_name(r)) + "/"},
          scratch, Timed(opt));
      f.rsync.push_back(c.seconds);
      f.changes.push_back(static_cast<double>(CountLines(c.out)));
    }
  }
  for (auto& sys : systems) tree.Compare(src_tree, sys->Path(tree_name(opt.small_runs - 1)));

  // --- ls -l of one folder ---
  for (auto& sys : systems) {
    say("cp -a of the folder for ls -l: " + sys->name());
    sys->BeforeWrite();
    CopyTree(opt, scratch, *sys, src_flat, sys->Path("flat"), fig[sys->name()]);
    sys->SyncTree(flat.files, each);
    sys->Mount();
  }
  CommandOptions ls_options = Timed(opt);
  ls_options.discard_out = true;
  for (int r = 0; r < opt.runs; ++r) {
    for (auto& sys : systems) {
      say("ls -l " + std::to_string(r + 1) + "/" + std::to_string(opt.runs) + ": " + sys->name());
      Figures& f = fig[sys->name()];
      const std::vector<std::string> ls = {"ls", "-l", sys->Path("flat/d0000")};
      sys->MakeCold();
      f.ls_cold.push_back(RunCommand(ls, scratch, ls_options).seconds);
      f.ls_warm.push_back(RunCommand(ls, scratch, ls_options).seconds);
    }
  }

  // Unmounted (every write stored) and stopped before the folder goes.
  for (auto& sys : systems) sys->Unmount();
  systems.clear();

  // --- figures ---
  const double big_mb = Mb(big);
  const std::vector<Phase> phases = {
      {"durable_write", "durable write (MB/s)", true, &Figures::write},
      {"cold_read", "cold read (MB/s)", true, &Figures::read},
      {"cp_sync", "cp -a + sync (s)", false, &Figures::cp},
      {"rsync_unchanged", "rsync -a, unchanged (s)", false, &Figures::rsync},
      {"ls_cold", "ls -l, cold (s)", false, &Figures::ls_cold},
      {"ls_warm", "ls -l, warm (s)", false, &Figures::ls_warm},
  };
  const auto has = [&](const std::string& s) { return fig.count(s) != 0; };
  // The figure of a phase: MB/s or seconds.
  const auto value = [&](const std::string& s, const Phase& p) {
    const double secs = Median(fig.at(s).*p.secs);
    return p.speed ? big_mb / secs : secs;
  };
  // shardfs against `peer`: a speed ratio (higher is better) or a time ratio (lower is better).
  const auto ratio = [&](const std::string& peer, const Phase& p) {
    return value("shardfs", p) / value(peer, p);
  };

  const double peak_mib =
      has("shardfs") ? static_cast<double>(fig["shardfs"].daemon_peak_kib) / 1024.0 : 0;
  std::vector<Target> targets;
  auto target = [&](const std::string& peer, const Phase& p, double limit, bool at_least) {
    if (!has("shardfs") || !has(peer)) return;
    const double v = ratio(peer, p);
    targets.push_back({std::string(p.label) + ": shardfs / " + peer, Fmt("%.2f", v),
                       (at_least ? ">= " : "<= ") + Fmt("%.1f", limit),
                       at_least ? v >= limit : v <= limit});
  };
  target("rclone", phases[0], kWriteVsRclone, true);
  target("gocryptfs", phases[0], kWriteVsGocryptfs, true);
  target("rclone", phases[1], kReadVsRclone, true);
  target("gocryptfs", phases[1], kReadVsGocryptfs, true);
  target("rclone", phases[2], kCpVsRclone, false);
  target("rclone", phases[3], kRsyncVsRclone, false);
  if (has("shardfs")) {
    targets.push_back({"shardfs daemon peak RSS during the big writes, MiB", Fmt("%.0f", peak_mib),
                       "< " + Fmt("%.0f", kDaemonRssMiB),
                       peak_mib > 0 && peak_mib < kDaemonRssMiB});
  }

  if (opt.json) {
    nlohmann::json j;
    j["big_mib"] = opt.big_mib;
    j["small_files"] = opt.small_files;
    j["small_kib"] = opt.small_kib;
    j["runs"] = opt.runs;
    j["small_runs"] = opt.small_runs;
    j["cpu"] = CpuModel();
    j["filesystem"] = fs_type;
    for (const auto& [name, f] : fig) {
      nlohmann::json& s = j["systems"][name];
      for (const auto& p : phases) {
        s["seconds"][p.key] = f.*p.secs;
        s[p.speed ? "mbps" : "median_seconds"][p.key] = value(name, p);
      }
      s["seconds"]["dd_returned"] = f.dd;
      s["rsync_itemized_changes"] = f.changes;
      s["tolerated_cp_errors"] = f.tolerated_cp_errors;
      if (name == "shardfs") s["daemon_peak_rss_kib"] = f.daemon_peak_kib;
      if (name != "shardfs" && has("shardfs")) {
        for (const auto& p : phases) j["shardfs_ratio"][name][p.key] = ratio(name, p);
      }
    }
    j["targets"] = TargetsJson(targets);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::printf("\n%-34s", "");
  for (const auto& name : opt.only) std::printf(" %12s", name.c_str());
  const auto row = [&](const std::string& label,
                       const std::function<std::string(const Figures&)>& cell) {
    std::printf("\n%-34s", label.c_str());
    for (const auto& name : opt.only) std::printf(" %12s", cell(fig.at(name)).c_str());
  };
  for (const auto& p : phases) {
    std::string label = p.label;
    if (p.speed) label = std::to_string(opt.big_mib) + " MiB " + label;
    if (p.secs == &Figures::cp || p.secs == &Figures::rsync) {
      label = std::to_string(tree.files) + " x " + std::to_string(tree.kib) + " KiB: " + label;
    }
    if (p.secs == &Figures::ls_cold || p.secs == &Figures::ls_warm) {
      label = std::to_string(flat.files) + " entries: " + label;
    }
    row(label, [&](const Figures& f) {
      const double secs = Median(f.*p.secs);
      return p.speed ? Fmt("%.0f", big_mb / secs) : Fmt("%.2f", secs);
    });
    if (p.secs == &Figures::write) {
      row("  seconds", [](const Figures& f) { return Fmt("%.2f", Median(f.write)); });
      row("  dd returned after (s)", [](const Figures& f) { return Fmt("%.2f", Median(f.dd)); });
    }
    if (p.secs == &Figures::rsync) {
      row("  items rsync changed", [](const Figures& f) { return Fmt("%.0f", Median(f.changes)); });
    }
  }
  std::printf("\n");
  for (const auto& name : opt.only) {
    if (fig.at(name).tolerated_cp_errors > 0) {
      std::printf("%s: cp -a could not keep the mode of %zu files (the mount refuses chmod)\n",
                  name.c_str(), fig.at(name).tolerated_cp_errors);
    }
  }
  if (has("shardfs")) {
    std::printf("shardfs mount daemon's peak RSS (VmHWM) after the big writes: %.0f MiB\n",
                peak_mib);
    std::printf("\nshardfs / peer (speed ratio for MB/s, time ratio for seconds)\n%-34s", "");
    for (const auto& name : opt.only) {
      if (name != "shardfs") std::printf(" %12s", name.c_str());
    }
    for (const auto& p : phases) {
      std::printf("\n%-34s", p.label);
      for (const auto& name : opt.only) {
        if (name != "shardfs") std::printf(" %12s", Fmt("%.2f", ratio(name, p)).c_str());
      }
    }
    std::printf("\n");
  }
  if (targets.empty()) std::printf("\n(no targets: each needs shardfs and its peer in the run)\n");
  PrintTargets(targets, "OK",
               "the exit status is 0 either way; targets are judged at full size on an idle "
               "reference machine");
  return 0;
}

}  // namespace
}  // namespace shardfs::bench

int main(int argc, char** argv) try {
  using shardfs::bench::kSystems;
  shardfs::bench::Options opt;
  CLI::App app{
      "Measures the shardfs mount against rclone crypt, gocryptfs and the plain disk in one "
      "run."};
  app.add_option("--shardfs", opt.shardfs, "the shardfs binary to run")->capture_default_str();
  app.add_option("--dir", opt.dir,
                 "folder to make the temporary folder in (default: the build folder, else "
                 "$TMPDIR, else /tmp)");
  app.add_option("--only", opt.only, "file systems to measure, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(kSystems))
      ->capture_default_str();
  app.add_option("--big-mib", opt.big_mib, "size of the big file, MiB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--small-files", opt.small_files, "how many small files (and entries for ls)")
      ->check(CLI::Range(1, 99999))
      ->capture_default_str();
  app.add_option("--small-kib", opt.small_kib, "size of each small file, KiB")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--runs", opt.runs, "repetitions of durable write, cold read and ls -l")
      ->check(CLI::Range(1, 101))
      ->capture_default_str();
  auto* small_runs =
      app.add_option("--small-runs", opt.small_runs,
                     "repetitions of cp -a + sync and rsync (default: 3, at most --runs)")
          ->check(CLI::Range(1, 101));
  app.add_option("--timeout", opt.timeout, "seconds any one command or wait may take")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_flag("--keep", opt.keep, "keep the temporary folder (for inspection)");
  app.add_flag("--json", opt.json, "print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  if (small_runs->count() == 0) opt.small_runs = std::min(opt.small_runs, opt.runs);
  // Each system once, in the order of kSystems.
  std::vector<std::string> only;
  for (const auto& s : kSystems) {
    if (std::find(opt.only.begin(), opt.only.end(), s) != opt.only.end()) only.push_back(s);
  }
  opt.only = only;

  // What a run needs; without it the benchmark is skipped (exit 77, as ctest's SKIP).
  std::vector<std::string> missing;
  if (::geteuid() != 0) missing.push_back("it must run as root (mounts, drop_caches)");
  if (::access("/dev/fuse", R_OK | W_OK) != 0) missing.push_back("/dev/fuse is not usable");
  std::vector<std::string> tools = {"dd", "cp", "rsync", "ls"};
  for (const auto& s : opt.only) {
    if (s == "rclone" || s == "gocryptfs") tools.insert(tools.end(), {s, "fusermount3"});
  }
  for (const auto& t : tools) {
    if (std::string why = shardfs::bench::MissingTool(t); !why.empty()) missing.push_back(why);
  }
  if (!missing.empty()) {
    for (const auto& m : missing) std::fprintf(stderr, "SKIP: bench/fuse: %s\n", m.c_str());
    return 77;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return shardfs::bench::RunWatched("bench/fuse", [&] { return shardfs::bench::Run(opt); });
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench/fuse: %s\n", e.what());
  return 1;
}
