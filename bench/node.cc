// bench/node: a storage node's speed against the disk under it.
//
// Starts one `shardfs node` process on a loopback ephemeral port, with its data folder in a
// temporary folder, and in the same run, on the same file system, measures:
//   - PUT of --shard-mib MiB shards over 1 and --connections connections, and the raw
//     baseline: the same bytes written as files (write, fsync, close per file) on 1 and
//     --connections threads;
//   - GET of the shards over 1 and --connections connections, and the raw baseline: the raw
//     files read back on 1 and --connections threads. Before every read run the files read are
//     evicted from the page cache (they are fsync'd, then posix_fadvise(POSIX_FADV_DONTNEED)),
//     and mincore() checks that nothing of them stayed resident, so both sides read from the
//     disk;
//   - the node's peak resident memory (VmHWM).
// Two clients drive the node (--client lean, peer or both; both by default):
//   - the lean client (bench/lean_client.h), which loads the node as a load generator such as
//     wrk would: one blocking keep-alive connection per thread, a PUT's body sent straight
//     from the bench's memory, a GET's body read --read-kib KiB at a time into a buffer of the
//     thread's and compared with the bytes the bench knows (memcmp: a wrong or short body fails
//     the run), requests signed as HttpPeer signs them. The node shares the machine's cores
//     with its client, so the client must cost little for the figure to be the node's: the
//     targets are judged on these rows (JSON keys "lean_put_N", "lean_get_N");
//   - net::HttpPeer, the client shardfs itself uses: end to end figures, with no targets
//     (keys "put_N", "get_N", as before). On GET it checks each shard's Merkle root and
//     receives through cpp-httplib 4 KiB at a time: about 1.4 ns/B of client CPU in all
//     (docs/bench.md), taken from the node's share of the cores.
// Runs are interleaved (in every write round a raw write run, then a PUT run of each client;
// in every read round a raw read run, then a GET run of each client) so that a noisy moment
// hits a node figure and its baseline alike; every figure is the median of --runs runs after
// one warm-up round; MB = 10^6 bytes. The CPU time per byte of the client (this process) and
// of the node is printed beside, with the load everything else put on the cores meanwhile.
//
// Targets (docs/bench.md), on the lean client's rows: PUT >= 0.6 of raw fsync'd write and
// GET >= 0.6 of raw read, both at --connections connections; node peak RSS under 128 MiB.
// Missing one is reported, not an error: the exit status is 0 unless the benchmark itself
// fails (a request refused, a wrong or short body, a deadline passed). However the run ends
// (even by SIGINT or SIGTERM), the node is stopped and the temporary folder removed.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/file.h"
#include "base/splitmix64.h"
#include "bench/bench_util.h"
#include "bench/lean_client.h"
#include "crypto/merkle.h"
#include "crypto/sign.h"
#include "net/address.h"
#include "net/http_peer.h"
#include "tests/node_process.h"

namespace shardfs::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string shardfs = SHARDFS_BINARY;
  std::string dir;  // parent of the temporary folder; see DefaultDir(SHARDFS_BENCH_DIR)
  size_t total_mib = 512;
  size_t shard_mib = 4;
  int runs = 5;
  int connections = 8;
  int node_threads = 8;
  size_t read_kib = 1024;
  std::string what = "both";    // both, write or read
  std::string client = "both";  // lean, peer or both: which clients drive the node
  bool prefault = true;
  bool trace = false;
  bool keep = false;
  bool json = false;
};

constexpr double kPutTarget = 0.6;
constexpr double kGetTarget = 0.6;
constexpr double kRssTargetMib = 128;

// --- CPU accounting ----------------------------------------------------------------------

struct CpuSample {
  double self = 0;  // this process (the client, or the raw baseline), user + system seconds
  double node = 0;  // the node process, user + system seconds
  double busy = 0;  // all cores, seconds neither idle nor waiting for I/O
};

CpuSample SampleCpu(pid_t node) {
  CpuSample s;
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  s.self = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  {
    std::ifstream f("/proc/" + std::to_string(node) + "/stat");
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t paren = all.rfind(')');
    if (paren != std::string::npos) {
      // After the command name: state is field 3, utime 14, stime 15.
      std::istringstream in(all.substr(paren + 2));
      std::string field;
      uint64_t utime = 0, stime = 0;
      for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
      }
      s.node = static_cast<double>(utime + stime) / tick;
    }
  }
  {
    std::ifstream f("/proc/stat");
    std::string cpu;
    f >> cpu;  // "cpu": the sum over all cores
    // user nice system idle iowait irq softirq steal (guest time is within user)
    uint64_t v[8] = {};
    for (int i = 0; i < 8 && f >> v[i]; ++i) {
    }
    s.busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
  }
  return s;
}

// One measured operation: its timed runs and the CPU it used over them.
struct Phase {
  std::string key;
  std::vector<double> seconds;
  std::vector<double> run_cpu;  // bench + node CPU seconds of each run
  double self_cpu = 0, node_cpu = 0;
  double busy = 0;  // all cores, over the timed runs
  double elapsed = 0;

  double Bytes(uint64_t per_run) const {
    return static_cast<double>(seconds.size()) * static_cast<double>(per_run);
  }
  // Cores kept busy on average by everything else: other processes (a noisy neighbour) and
  // kernel threads (page cache writeback, softirqs not charged to a process).
  double OtherCores() const {
    return elapsed > 0 ? std::max(0.0, busy - self_cpu - node_cpu) / elapsed : 0.0;
  }

  double Median() const {
    std::vector<double> t = seconds;
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

// --- the bytes ---------------------------------------------------------------------------

// count shards of `shard` bytes in one buffer. Each generation stamps every shard's first
// bytes afresh, so every PUT run stores new shards (a repeated PUT of a stored shard skips
// the rename and the index insert) while the bytes stay incompressible.
class Workload {
 public:
  Workload(size_t shard, size_t count) : shard_(shard), count_(count), data_(shard * count) {
    FillSplitMix64(data_, 0x5eed);
    ids_.resize(count);
  }
  size_t count() const { return count_; }
  size_t shard_size() const { return shard_; }
  uint64_t total() const { return data_.size(); }
  ByteSpan shard(size_t i) const { return ByteSpan(data_).subspan(i * shard_, shard_); }
  const std::vector<ShardId>& ids() const { return ids_; }

  void Renew(uint64_t generation) {
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    Check(ParallelFor(threads, count_,
                      [&](int, size_t i) {
                        StoreLE64(data_.data() + i * shard_, generation * count_ + i);
                        ids_[i] = crypto::MerkleRoot(shard(i));
                        return Status::Ok();
                      }),
          "hash shards");
  }

 private:
  size_t shard_, count_;
  Bytes data_;
  std::vector<ShardId> ids_;
};

// --- raw files and the page cache --------------------------------------------------------

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

// fsyncs (a no-op for files already durable; DONTNEED cannot drop dirty pages) and drops
// every file under `dir` from the page cache. Returns the fraction of their pages still
// resident afterwards, by mincore().
double Evict(const std::string& dir) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  uint64_t pages = 0, resident = 0;
  std::vector<unsigned char> vec;
  for (const auto& path : FilesUnder(dir)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) Fail("open " + path + ": " + std::strerror(errno));
    if (::fsync(fd.get()) != 0) Fail("fsync " + path + ": " + std::strerror(errno));
    int err = ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    if (err != 0) Fail("posix_fadvise " + path + ": " + std::strerror(err));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_size == 0) continue;
    size_t len = static_cast<size_t>(st.st_size);
    void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (m == MAP_FAILED) continue;
    vec.resize((len + page - 1) / page);
    if (::mincore(m, len, vec.data()) == 0) {
      pages += vec.size();
      for (unsigned char v : vec) resident += v & 1;
    }
    ::munmap(m, len);
  }
  return pages == 0 ? 0.0 : static_cast<double>(resident) / static_cast<double>(pages);
}

std::string RawPath(const std::string& dir, uint64_t generation, size_t i) {
  return dir + "/" + std::to_string(generation) + "-" + std::to_string(i);
}

Status RawRead(const std::string& path, MutableByteSpan buf, uint64_t expect) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return PosixError("open " + path, errno);
  uint64_t got = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError("read " + path, errno);
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  if (got != expect) return Status::IOError(path + ": read " + std::to_string(got) + " bytes");
  return Status::Ok();
}

// --- output ------------------------------------------------------------------------------

std::string Mbps(const Phase& p, double mb) {
  std::vector<double> t = p.seconds;
  std::sort(t.begin(), t.end());
  char buf[64];
  if (t.size() > 1) {
    std::snprintf(buf, sizeof(buf), "%6.0f (%.0f-%.0f)", mb / p.Median(), mb / t.back(),
                  mb / t.front());
  } else {
    std::snprintf(buf, sizeof(buf), "%6.0f", mb / p.Median());
  }
  return buf;
}

int Run(const Options& opt) {
  const size_t shard = opt.shard_mib << 20;
  const size_t count = std::max<size_t>(1, (opt.total_mib << 20) / shard);
  const int n = opt.connections;
  Workload wl(shard, count);
  const double mb = static_cast<double>(wl.total()) / 1e6;

  if (!fs::exists(opt.shardfs)) Fail("no shardfs binary at " + opt.shardfs + " (see --shardfs)");
  TempDir tmp(opt.dir.empty() ? DefaultDir(SHARDFS_BENCH_DIR) : opt.dir, "shardfs-bench-node",
              opt.keep);
  SetLeftoverDir(opt.keep ? "" : tmp.path());
  const std::string node_dir = tmp.path() + "/node";
  const std::string raw_dir = tmp.path() + "/raw";
  fs::create_directory(raw_dir);
  const std::string fs_type = FsType(tmp.path());
  // The node's log goes to stderr, so that --json output stays clean; it gets SIGTERM if the
  // benchmark dies.
  test::NodeProcess node({opt.shardfs,
                          node_dir,
                          {"--capacity", std::to_string(wl.total() * 4 + (1u << 30)), "--threads",
                           std::to_string(opt.node_threads), "--log-level", "warn"},
                          tmp.path(),
                          /*log_to_file=*/false,
                          SIGTERM,
                          std::chrono::seconds(30)});
  Check(node.Start(), "start shardfs node (" + opt.shardfs + ")");
  const pid_t node_pid = node.pid();
  AddLeftoverPid(node_pid);

  auto owner = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  auto connect = [&](int in_flight) {
    net::HttpPeerOptions po;
    po.max_in_flight = in_flight;
    auto p = net::HttpPeer::Connect(node.address(), owner, po);
    Check(p.status(), "connect to the node");
    return std::move(*p);
  };
  // peer_many also learns the node's id and deletes shards between PUT runs, whichever client
  // is timed.
  std::unique_ptr<net::HttpPeer> peer_one = connect(1), peer_many = connect(n);
  auto peer_for = [&](int c) { return c == 1 ? peer_one.get() : peer_many.get(); };
  const bool use_lean = opt.client != "peer";
  const bool use_peer = opt.client != "lean";
  // One lean client per bench thread: a run on c threads uses the first c.
  std::vector<std::unique_ptr<LeanClient>> lean;
  for (int w = 0; use_lean && w < n; ++w) {
    LeanClientOptions lo;
    lo.read_bytes = opt.read_kib << 10;
    lean.push_back(
        std::make_unique<LeanClient>(node.address(), peer_many->node_id(), owner.get(), lo));
  }

  if (!opt.json) {
    std::printf(
        "shardfs bench/node: %zu shards of %zu MiB (%.0f MB) per run, median of %d runs "
        "after 1 warm-up round, MB = 10^6 B\n",
        count, opt.shard_mib, mb, opt.runs);
    std::printf("cpu: %s, %u cores\n", CpuModel().c_str(), std::thread::hardware_concurrency());
    std::printf("node: %s node (pid %d) on %s, %d server threads\n", opt.shardfs.c_str(),
                static_cast<int>(node_pid), node.address().ToString().c_str(), opt.node_threads);
    std::printf("folder: %s (%s): node data in node/, raw files in raw/\n", tmp.path().c_str(),
                fs_type.c_str());
    if (fs_type == "tmpfs") {
      std::printf("WARNING: tmpfs has no disk: fsync and eviction do nothing; use --dir\n");
    }
    if (use_lean) {
      std::printf(
          "client lean: one blocking keep-alive connection per thread; PUT bodies sent from "
          "memory,\n             GET bodies read %zu KiB at a time and memcmp'd; the target "
          "rows\n",
          opt.read_kib);
    }
    if (use_peer) {
      std::printf(
          "client HttpPeer: net::HttpPeer, end to end (checks Merkle roots, cpp-httplib); no "
          "targets\n");
    }
  }

  // Phases by key ("lean_put_8"; "put_8" is HttpPeer's), printed in the order made here.
  std::map<std::string, Phase> phases;
  std::vector<std::string> order;
  for (const char* kind : {"raw_write", "lean_put", "put", "raw_read", "lean_get", "get"}) {
    for (int c : {1, n}) {
      std::string key = std::string(kind) + "_" + std::to_string(c);
      phases[key].key = key;
      order.push_back(key);
    }
  }
  // Runs fn as one run of phase `key`; `keep` is false in the warm-up round. A write run
  // first makes sure the page cache it will fill is backed (see Prefault).
  auto timed = [&](const std::string& key, bool keep, bool write,
                   const std::function<Status()>& fn) {
    if (write && opt.prefault) Prefault(tmp.path(), wl.total() + (uint64_t{64} << 20));
    CpuSample a = SampleCpu(node_pid);
    auto start = Clock::now();
    Check(fn(), key);
    auto stop = Clock::now();
    double secs = std::chrono::duration<double>(stop - start).count();
    CpuSample b = SampleCpu(node_pid);
    if (opt.trace) {
      // steady_clock is CLOCK_MONOTONIC: matches `perf record -k mono` timestamps.
      auto since_boot = [](Clock::time_point t) {
        return std::chrono::duration<double>(t.time_since_epoch()).count();
      };
      std::fprintf(stderr, "phase %s%s %.6f %.6f\n", key.c_str(), keep ? "" : " (warm-up)",
                   since_boot(start), since_boot(stop));
    }
    if (!keep) return;
    Phase& p = phases.at(key);
    p.seconds.push_back(secs);
    p.run_cpu.push_back(b.self - a.self + b.node - a.node);
    p.self_cpu += b.self - a.self;
    p.node_cpu += b.node - a.node;
    p.busy += b.busy - a.busy;
    p.elapsed += secs;
  };

  const bool time_writes = opt.what != "read";
  const bool time_reads = opt.what != "write";
  uint64_t generation = 0;
  std::optional<uint64_t> raw_set;  // the generation of the raw files on disk
  std::vector<ShardId> stored;      // the shards on the node
  double worst_resident = 0;
  std::vector<Bytes> read_bufs(n, Bytes(opt.read_kib << 10));
  // All write rounds come before all read rounds: evicting page cache for the reads frees
  // memory that the host soon takes back (see Prefault), and a write run after that paid for
  // it at random, up to 4x. Round 0 is the warm-up: connections open, the index and the disk
  // settle.
  for (int round = 0; round <= opt.runs; ++round) {
    // With --what read, only the warm-up round writes; its last sets are read every round.
    if (!time_writes && round > 0) break;
    const bool keep = round > 0;
    for (int c : {1, n}) {
      const std::string suffix = "_" + std::to_string(c);
      // Raw write: new files, after the previous set is gone and the disk has settled.
      if (raw_set) {
        for (size_t i = 0; i < count; ++i) ::unlink(RawPath(raw_dir, *raw_set, i).c_str());
      }
      const uint64_t g = ++generation;
      SyncFs(raw_dir);
      timed("raw_write" + suffix, keep, /*write=*/true, [&] {
        return ParallelFor(
            c, count, [&](int, size_t i) { return RawWrite(RawPath(raw_dir, g, i), wl.shard(i)); });
      });
      raw_set = g;
      // PUT: new shards, after the previous ones are deleted.
      auto put_run = [&](const std::string& kind, const std::function<Status(int, size_t)>& put) {
        Check(ParallelFor(n, stored.size(),
                          [&](int, size_t i) { return peer_many->DeleteShard(stored[i]); }),
              "delete shards");
        wl.Renew(++generation);
        SyncFs(node_dir);
        timed(kind + suffix, keep, /*write=*/true, [&] { return ParallelFor(c, count, put); });
        stored = wl.ids();
      };
      if (use_lean) {
        put_run("lean_put",
                [&](int w, size_t i) { return lean[w]->Put(wl.ids()[i], wl.shard(i)); });
      }
      if (use_peer) {
        net::HttpPeer* peer = peer_for(c);
        put_run("put",
                [&](int, size_t i) { return peer->PutShard(wl.ids()[i], wl.shard(i), nullptr); });
      }
    }
  }
  // The lean GET compares each shard with the workload's bytes, which are those of the shards
  // stored: the last PUT run stored the workload's current generation.
  if (time_reads && stored != wl.ids()) Fail("internal: the stored shards are not the workload's");
  for (int round = 0; round <= opt.runs && time_reads; ++round) {
    const bool keep = round > 0;
    for (int c : {1, n}) {
      const std::string suffix = "_" + std::to_string(c);
      worst_resident = std::max(worst_resident, Evict(raw_dir));
      timed("raw_read" + suffix, keep, /*write=*/false, [&] {
        return ParallelFor(c, count, [&](int w, size_t i) {
          return RawRead(RawPath(raw_dir, *raw_set, i), read_bufs[w], shard);
        });
      });
      auto get_run = [&](const std::string& kind, const std::function<Status(int, size_t)>& get) {
        worst_resident = std::max(worst_resident, Evict(node_dir + "/shards"));
        timed(kind + suffix, keep, /*write=*/false, [&] { return ParallelFor(c, count, get); });
      };
      if (use_lean) {
        get_run("lean_get",
                [&](int w, size_t i) { return lean[w]->GetAndCompare(stored[i], wl.shard(i)); });
      }
      if (use_peer) {
        net::HttpPeer* peer = peer_for(c);
        get_run("get", [&](int, size_t i) -> Status {
          auto got = peer->GetShard(stored[i], nullptr);  // checks the Merkle root
          if (!got.ok()) return got.status();
          if (got->size() != shard) return Status::Corruption("GET returned a short shard");
          return Status::Ok();
        });
      }
    }
  }
  uint64_t lean_connects = 0;
  for (const auto& l : lean) lean_connects += l->connects();
  const long hwm = test::ProcStatusKiB(node_pid, "VmHWM:");
  const uint64_t hwm_kib = hwm < 0 ? 0 : static_cast<uint64_t>(hwm);
  RemoveLeftoverPid(node_pid);
  auto end = node.Stop(SIGTERM, std::chrono::seconds(30));
  const std::string stopped = end.ok() ? test::DescribeWait(*end) : end.status().ToString();

  // --- report ---
  const std::string ns = std::to_string(n);
  auto measured = [&](const std::string& key) { return !phases.at(key).seconds.empty(); };
  auto med = [&](const std::string& key) { return mb / phases.at(key).Median(); };
  // node / raw of the medians, or nullopt when not measured (--what, --client).
  auto ratio_of = [&](const std::string& node_key,
                      const std::string& raw_key) -> std::optional<double> {
    if (!measured(node_key) || !measured(raw_key)) return std::nullopt;
    return med(node_key) / med(raw_key);
  };
  // The target rows: the lean client's.
  const auto put_ratio_1 = ratio_of("lean_put_1", "raw_write_1");
  const auto put_ratio_n = ratio_of("lean_put_" + ns, "raw_write_" + ns);
  const auto get_ratio_1 = ratio_of("lean_get_1", "raw_read_1");
  const auto get_ratio_n = ratio_of("lean_get_" + ns, "raw_read_" + ns);
  // End to end through HttpPeer: no targets.
  const auto peer_put_ratio_1 = ratio_of("put_1", "raw_write_1");
  const auto peer_put_ratio_n = ratio_of("put_" + ns, "raw_write_" + ns);
  const auto peer_get_ratio_1 = ratio_of("get_1", "raw_read_1");
  const auto peer_get_ratio_n = ratio_of("get_" + ns, "raw_read_" + ns);
  const double hwm_mib = static_cast<double>(hwm_kib) / 1024.0;
  const bool put_pass = put_ratio_n && *put_ratio_n >= kPutTarget;
  const bool get_pass = get_ratio_n && *get_ratio_n >= kGetTarget;
  const bool rss_pass = hwm_kib > 0 && hwm_mib < kRssTargetMib;
  const int judged = (put_ratio_n ? 1 : 0) + (get_ratio_n ? 1 : 0) + 1;
  const int passed = put_pass + get_pass + rss_pass;
  // Every raw run of a kind does the same work per byte whatever its thread count, so a run
  // that needed more than kSlowedCpu times the CPU per byte of the leanest raw run of its kind
  // paid for something else: memory the host had taken back (see Prefault) or a preempted
  // lock holder. Its MB/s says little about the disk, and a ratio over a baseline with such
  // runs passes or fails by chance; the median of the other runs is printed beside.
  constexpr double kSlowedCpu = 1.6;
  struct Steady {
    int slowed = 0;                    // runs of the baseline that were slowed
    std::optional<double> mbps;        // median MB/s of the others
    std::optional<double> lean_ratio;  // the lean client's median / that
    std::optional<double> peer_ratio;  // HttpPeer's median / that
  };
  auto steady = [&](const std::string& kind, const std::string& node_kind) {
    Steady out;
    const Phase& one = phases.at(kind + "_1");
    const Phase& many = phases.at(kind + "_" + ns);
    if (many.seconds.empty()) return out;
    double lowest = *std::min_element(many.run_cpu.begin(), many.run_cpu.end());
    for (double c : one.run_cpu) lowest = std::min(lowest, c);
    std::vector<double> kept;
    for (size_t i = 0; i < many.seconds.size(); ++i) {
      if (many.run_cpu[i] > kSlowedCpu * lowest) {
        ++out.slowed;
      } else {
        kept.push_back(many.seconds[i]);
      }
    }
    if (!kept.empty()) {
      std::sort(kept.begin(), kept.end());
      out.mbps = mb / kept[kept.size() / 2];
      const std::string lean_key = "lean_" + node_kind + "_" + ns, peer_key = node_kind + "_" + ns;
      if (measured(lean_key)) out.lean_ratio = med(lean_key) / *out.mbps;
      if (measured(peer_key)) out.peer_ratio = med(peer_key) / *out.mbps;
    }
    return out;
  };
  const Steady write_steady = steady("raw_write", "put");
  const Steady read_steady = steady("raw_read", "get");
  const double cores = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));

  if (opt.json) {
    nlohmann::json j;
    j["shards"] = count;
    j["shard_mib"] = opt.shard_mib;
    j["runs"] = opt.runs;
    j["connections"] = n;
    j["client"] = opt.client;
    j["cpu"] = CpuModel();
    j["cores"] = static_cast<int>(cores);
    j["filesystem"] = fs_type;
    j["page_cache_evicted_before_reads"] = true;
    j["prefault"] = opt.prefault;
    j["resident_after_eviction"] = worst_resident;
    if (use_lean) {
      j["lean_read_kib"] = opt.read_kib;
      j["lean_connects"] = lean_connects;
    }
    for (const auto& key : order) {
      const Phase& p = phases.at(key);
      if (p.seconds.empty()) continue;
      j["mbps"][key] = mb / p.Median();
      j["seconds"][key] = p.seconds;
      j["run_cpu_seconds"][key] = p.run_cpu;
      const double bytes = p.Bytes(wl.total());
      j["cpu_ns_per_byte"][key] = {{"bench", p.self_cpu * 1e9 / bytes},
                                   {"node", p.node_cpu * 1e9 / bytes}};
      j["other_cores_busy"][key] = p.OtherCores();
      const double per_byte = (p.self_cpu + p.node_cpu) * 1e9 / bytes;
      if (per_byte > 0) j["cpu_limit_mbps"][key] = cores * 1e3 / per_byte;
    }
    auto put = [&](const std::string& key, const std::optional<double>& v) {
      if (v) j["ratio"][key] = *v;
    };
    put("lean_put_raw_write_1", put_ratio_1);
    put("lean_put_raw_write_" + ns, put_ratio_n);
    put("lean_get_raw_read_1", get_ratio_1);
    put("lean_get_raw_read_" + ns, get_ratio_n);
    put("put_raw_write_1", peer_put_ratio_1);
    put("put_raw_write_" + ns, peer_put_ratio_n);
    put("get_raw_read_1", peer_get_ratio_1);
    put("get_raw_read_" + ns, peer_get_ratio_n);
    j["node_peak_rss_mib"] = hwm_mib;
    if (put_ratio_n) {
      j["targets"]["lean_put_raw_write_" + ns] = {{"target", kPutTarget}, {"pass", put_pass}};
    }
    if (get_ratio_n) {
      j["targets"]["lean_get_raw_read_" + ns] = {{"target", kGetTarget}, {"pass", get_pass}};
    }
    j["targets"]["node_peak_rss_mib"] = {{"target_below", kRssTargetMib}, {"pass", rss_pass}};
    auto steady_json = [](const Steady& st) {
      nlohmann::json o = {{"slowed_runs", st.slowed}};
      if (st.mbps) o["median_mbps_of_the_others"] = *st.mbps;
      if (st.lean_ratio) o["lean_ratio"] = *st.lean_ratio;
      if (st.peer_ratio) o["ratio"] = *st.peer_ratio;
      return o;
    };
    j["steady_baseline"]["raw_write_" + ns] = steady_json(write_steady);
    j["steady_baseline"]["raw_read_" + ns] = steady_json(read_steady);
    j["node_stop"] = stopped;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  if (time_reads) {
    std::printf(
        "page cache: every read run starts with its files fsync'd and evicted "
        "(posix_fadvise POSIX_FADV_DONTNEED);\n            resident after eviction, "
        "worst case (mincore): %.1f%%\n",
        100 * worst_resident);
  }
  if (time_writes) {
    std::printf("memory: %s\n", opt.prefault
                                    ? "before every write run, a scratch file of its size + 64 MiB "
                                      "is written and deleted unwritten, so that the page cache "
                                      "finds backed memory (see Prefault; --no-prefault to skip)"
                                    : "write runs not prefaulted (--no-prefault)");
  }
  if (use_lean) {
    std::printf("lean client: %llu connections opened in all (%d threads, keep-alive)\n",
                static_cast<unsigned long long>(lean_connects), n);
  }
  std::printf(
      "\nMB/s, median (slowest-fastest run)       1 connection/thread    %d "
      "connections/threads\n",
      n);
  auto row = [&](const char* label, const std::string& kind) {
    const Phase& one = phases.at(kind + "_1");
    const Phase& many = phases.at(kind + "_" + ns);
    if (one.seconds.empty()) return;
    std::printf("  %-38s %-22s %s\n", label, Mbps(one, mb).c_str(), Mbps(many, mb).c_str());
  };
  char raw_w[96], raw_r[96];
  std::snprintf(raw_w, sizeof(raw_w), "raw write (%zu MiB, fsync, close)", opt.shard_mib);
  std::snprintf(raw_r, sizeof(raw_r), "raw read (%zu KiB reads)", opt.read_kib);
  row(raw_w, "raw_write");
  row("PUT (lean client)", "lean_put");
  row(raw_r, "raw_read");
  row("GET (lean client, memcmp)", "lean_get");
  if (use_peer) {
    std::printf("end to end, HttpPeer (client checks Merkle roots); no targets\n");
    row("PUT (HttpPeer::PutShard)", "put");
    row("GET (HttpPeer::GetShard, root checked)", "get");
  }

  std::printf("\nratios (of the medians)\n");
  auto ratio = [&](const char* label, const std::optional<double>& r1,
                   const std::optional<double>& rn, std::optional<double> target, bool pass,
                   bool shaky) {
    if (!r1 || !rn) return;
    if (!target) {
      std::printf("  %-38s %-22.2f %-6.2f end to end, no target\n", label, *r1, *rn);
      return;
    }
    std::printf("  %-38s %-22.2f %-6.2f target >= %.2f at %d: %s%s\n", label, *r1, *rn, *target, n,
                pass ? "PASS" : "FAIL", shaky ? " (baseline slowed, see the note)" : "");
  };
  ratio("PUT (lean) / raw write", put_ratio_1, put_ratio_n, kPutTarget, put_pass,
        write_steady.slowed > 0);
  ratio("GET (lean) / raw read", get_ratio_1, get_ratio_n, kGetTarget, get_pass,
        read_steady.slowed > 0);
  ratio("PUT (HttpPeer) / raw write", peer_put_ratio_1, peer_put_ratio_n, std::nullopt, false,
        false);
  ratio("GET (HttpPeer) / raw read", peer_get_ratio_1, peer_get_ratio_n, std::nullopt, false,
        false);

  std::printf(
      "\nCPU (user + system) per byte moved, ns/B: bench = this process (the client, or\n"
      "the raw baseline), node = the shardfs node; others = cores (of %.0f) kept busy on\n"
      "average by everything else: other processes, writeback and other kernel threads;\n"
      "CPU limit = MB/s if bench and node had all %.0f cores to themselves\n",
      cores, cores);
  std::printf("  %-18s %8s %8s %8s %10s   %s\n", "", "bench", "node", "others", "CPU limit",
              "bench+node by run");
  for (const auto& key : order) {
    const Phase& p = phases.at(key);
    if (p.seconds.empty()) continue;
    const double bytes = p.Bytes(wl.total());
    const double per_byte = (p.self_cpu + p.node_cpu) * 1e9 / bytes;
    // A run far above the others (2 ns/B for a raw write) is one that paid for memory the
    // host had taken back, or for a preempted lock holder: its MB/s says little about the disk.
    auto [lo, hi] = std::minmax_element(p.run_cpu.begin(), p.run_cpu.end());
    // "put_8" and "get_8" are HttpPeer's, as before the lean client came.
    const std::string label =
        key.rfind("put_", 0) == 0 || key.rfind("get_", 0) == 0 ? "peer_" + key : key;
    std::printf(
        "  %-18s %8.2f %8.2f %8.2f %10.0f   %.2f-%.2f\n", label.c_str(), p.self_cpu * 1e9 / bytes,
        p.node_cpu * 1e9 / bytes, p.OtherCores(), per_byte > 0 ? cores * 1e3 / per_byte : 0.0,
        *lo * 1e9 / static_cast<double>(wl.total()), *hi * 1e9 / static_cast<double>(wl.total()));
  }

  for (const auto& [st, kind, what] :
       {std::tuple{write_steady, "raw_write", "PUT"}, std::tuple{read_steady, "raw_read", "GET"}}) {
    if (st.slowed == 0) continue;
    std::printf(
        "note: %d of the %s_%s runs needed more than %.1fx the CPU per byte of the leanest %s\n"
        "      run (column \"bench+node by run\"): memory the host had taken back, or a\n"
        "      preempted lock holder, slowed them, and the ratio over them passes or fails by\n"
        "      chance.",
        st.slowed, kind, ns.c_str(), kSlowedCpu, kind);
    if (st.mbps) {
      std::printf(" The other runs: median %.0f MB/s", *st.mbps);
      if (st.lean_ratio) std::printf("; %s (lean) / that = %.2f", what, *st.lean_ratio);
      if (st.peer_ratio) std::printf("; %s (HttpPeer) / that = %.2f", what, *st.peer_ratio);
      std::printf(".\n");
    } else {
      std::printf(" Rerun.\n");
    }
  }
  std::printf("\nnode peak RSS (VmHWM): %.1f MiB   target < %.0f MiB: %s\n", hwm_mib, kRssTargetMib,
              rss_pass ? "PASS" : "FAIL");
  std::printf("node stopped with SIGTERM: %s\n", stopped.c_str());
  const bool shaky = write_steady.slowed > 0 || read_steady.slowed > 0;
  std::printf(
      "\ntargets: %d of %d met%s%s%s (the exit status is 0 either way; targets are judged on "
      "the reference machine)\n",
      passed, judged, passed == judged ? "" : ", see FAIL above",
      shaky ? "; a baseline was slowed, see the note" : "",
      use_lean ? "" : "; PUT and GET are judged on the lean client only (--client peer)");
  return 0;
}

}  // namespace
}  // namespace shardfs::bench

int main(int argc, char** argv) try {
  shardfs::bench::Options opt;
  CLI::App app{
      "Measures one shardfs node's PUT and GET against raw file writes and reads on the "
      "same disk."};
  app.add_option("--shardfs", opt.shardfs, "the shardfs binary to start")->capture_default_str();
  app.add_option("--dir", opt.dir,
                 "folder to make the temporary folder in (default: the build folder, else "
                 "$TMPDIR, else /tmp); node data and raw files go there");
  app.add_option("--total-mib", opt.total_mib, "MiB written and read per run")
      ->check(CLI::Range(4, 65536))
      ->capture_default_str();
  app.add_option("--shard-mib", opt.shard_mib, "shard size in MiB")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--runs", opt.runs, "timed runs per figure (the median is printed)")
      ->check(CLI::Range(1, 101))
      ->capture_default_str();
  app.add_option("--connections", opt.connections,
                 "connections (and threads) for the parallel runs")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  app.add_option("--node-threads", opt.node_threads, "the node's --threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--read-kib", opt.read_kib,
                 "read size of the raw read baseline and of the lean client's GET bodies, KiB")
      ->check(CLI::Range(4, 65536))
      ->capture_default_str();
  app.add_option("--what", opt.what,
                 "what to time: both, write (raw write and PUT) or read (raw read and GET of "
                 "the warm-up round's data)")
      ->check(CLI::IsMember({"both", "write", "read"}))
      ->capture_default_str();
  app.add_option("--client", opt.client,
                 "which clients drive the node: lean (the target rows: one blocking keep-alive "
                 "connection per thread, GET bodies memcmp'd), peer (net::HttpPeer, end to end, "
                 "Merkle roots checked; no targets) or both")
      ->check(CLI::IsMember({"lean", "peer", "both"}))
      ->capture_default_str();
  app.add_flag("!--no-prefault", opt.prefault,
               "do not write and delete a scratch file of the run's size before each write run");
  app.add_flag("--trace", opt.trace,
               "print each timed run's CLOCK_MONOTONIC start and end to stderr (to cut a "
               "`perf record -k mono` profile by phase)");
  app.add_flag("--keep", opt.keep, "keep the temporary folder (for inspection)");
  app.add_flag("--json", opt.json, "print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return shardfs::bench::RunWatched("bench/node", [&] { return shardfs::bench::Run(opt); });
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench/node: %s\n", e.what());
  return 1;
}
