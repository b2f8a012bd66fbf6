// bench/engine: the whole engine, as a user meets it: the `shardfs` binary against 6 storage
// nodes on loopback (issue 4).
//
// Starts --nodes `shardfs node` processes on ephemeral loopback ports, their data in a
// temporary folder, makes a drive with RS(4,2) (`shardfs init`), and measures with the real
// binary (the drive's key file not passphrase protected, as by default), each figure the
// median of --runs repetitions (every repetition on new random bytes,
// so nothing dedups against an earlier one):
//   - `shardfs put` and `shardfs get` of one --big-mib file (1 GiB);
//   - `shardfs put` of --small-files files of --small-kib KiB (10,000 of 4 KiB, 100 to a
//     folder), the shard uploads it made (the nodes' shard counts before and after, from their
//     /v1/status: the data packs and the catalog's checkpoint together), a second `put` of
//     the same, unchanged tree, and `shardfs get` of the tree;
//   - in the same run, the limits the big put is judged against: backend::WritePipeline over
//     --pipeline-mib of random data in this process, on the threads the CLI uses, and the raw
//     fsync'd write speed of the disk under the nodes (--disk-mib as 4 MiB files, one thread
//     per node, write + fsync + close), one raw run before every big put.
// Every byte got back is compared with what was put. MB = 10^6 bytes.
//
// Targets (docs/bench.md): big put >= 0.5 of min(write pipeline, raw write / expansion);
// small files in under 3 shard uploads per 1,000 files; the unchanged second put uploads
// nothing and takes under 2 s. A target missed is printed as MISS; the exit status is 0
// either way, and 1 only if the benchmark itself fails (a command failed, bytes differ, a
// deadline passed). However the run ends (even by SIGINT or SIGTERM), every process it
// started is stopped by pid and the temporary folder removed.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend/pack_pipeline.h"
#include "base/splitmix64.h"
#include "bench/bench_util.h"
#include "crypto/aead.h"
#include "crypto/sign.h"
#include "net/http_peer.h"

namespace shardfs::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string shardfs = SHARDFS_BINARY;
  std::string dir;  // parent of the temporary folder
  int nodes = 6;
  int k = 4;
  int m = 2;
  size_t big_mib = 1024;
  size_t small_files = 10000;
  size_t small_kib = 4;
  size_t files_per_folder = 100;
  size_t pipeline_mib = 256;
  size_t disk_mib = 1024;
  int runs = 3;
  int command_timeout = 600;  // seconds any one shardfs command may take
  bool keep = false;
  bool json = false;
};

constexpr double kBigPutTarget = 0.5;        // of min(pipeline, raw write / expansion)
constexpr double kUploadsPer1000Target = 3;  // shard uploads per 1,000 small files, below
constexpr double kUnchangedSecondsTarget = 2;

// --- processes ---------------------------------------------------------------------------

// User + system seconds of a running process (from /proc/PID/stat), 0 if it cannot be read.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// This process's user + system seconds so far.
double SelfCpuSeconds() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return TimevalSeconds(usage.ru_utime) + TimevalSeconds(usage.ru_stime);
}

// Runs `shardfs ARGS...` to its end (bounded by --command-timeout, then SIGKILL and a failure)
// with stdout and stderr in files of `scratch`; fails the run unless it exits with 0.
CommandResult RunShardfs(const Options& opt, const std::string& scratch,
                         const std::vector<std::string>& args) {
  std::vector<std::string> argv = {opt.shardfs};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOptions co;
  co.timeout = opt.command_timeout;
  return RunCommand(argv, scratch, co);
}

// --- the bytes ---------------------------------------------------------------------------

SmallTree Tree(const Options& opt) {
  SmallTree t;
  t.files = opt.small_files;
  t.kib = opt.small_kib;
  t.per_folder = opt.files_per_folder;
  return t;
}

// --- the nodes ---------------------------------------------------------------------------

struct NodeTotals {
  uint64_t shards = 0;
  uint64_t used = 0;
};

NodeTotals SumNodes(const std::vector<std::unique_ptr<net::HttpPeer>>& peers) {
  NodeTotals t;
  for (const auto& p : peers) {
    auto st = p->GetStatus();
    Check(st.status(), "status of node " + p->name());
    t.shards += st->shards;
    t.used += st->used;
  }
  return t;
}

// The drive's data packs, from `shardfs status --json` (the catalog's checkpoints are packs
// the catalog does not list).
uint64_t DrivePacks(const Options& opt, const std::string& scratch,
                    const std::vector<std::string>& drive) {
  std::vector<std::string> args = {"status", "--json"};
  args.insert(args.end(), drive.begin(), drive.end());
  CommandResult c = RunShardfs(opt, scratch, args);
  return nlohmann::json::parse(c.out).at("packs").get<uint64_t>();
}

// --- the report --------------------------------------------------------------------------

int Run(const Options& opt) {
  if (!fs::exists(opt.shardfs)) Fail("no shardfs binary at " + opt.shardfs + " (see --shardfs)");
  const uint64_t big = uint64_t{opt.big_mib} << 20;
  const uint64_t small_bytes = static_cast<uint64_t>(opt.small_files) * (opt.small_kib << 10);
  const double expansion = static_cast<double>(opt.k + opt.m) / opt.k;
  const int cli_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));

  TempDir tmp(opt.dir.empty() ? DefaultDir(SHARDFS_BENCH_DIR) : opt.dir, "shardfs-bench-engine",
              opt.keep);
  SetLeftoverDir(opt.keep ? "" : tmp.path());
  const std::string fs_type = FsType(tmp.path());
  const std::string home = tmp.path() + "/home", src = tmp.path() + "/src",
                    back = tmp.path() + "/back", raw = tmp.path() + "/raw";
  for (const auto& d : {src, back, raw}) fs::create_directory(d);

  // Every node may get all shards of every pack (placement is the drive's) plus headroom.
  const uint64_t stored = static_cast<uint64_t>(
      static_cast<double>(opt.runs * (big + small_bytes) + (uint64_t{256} << 20)) * expansion);
  LocalNodes nodes(opt.shardfs, tmp.path(), opt.nodes, stored);
  auto owner = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  std::vector<std::unique_ptr<net::HttpPeer>> peers;
  for (const auto& n : nodes.processes()) {
    auto p = net::HttpPeer::Connect(n->address(), owner, net::HttpPeerOptions{});
    Check(p.status(), "connect to node " + n->address().ToString());
    peers.push_back(std::move(*p));
  }

  // The key file as `shardfs init` makes it by default: not passphrase protected (with a
  // passphrase every command would start with an Argon2id derivation, about 0.5 s here).
  const std::vector<std::string> drive = {"--home", home};
  auto with_drive = [&](std::vector<std::string> args) {
    args.insert(args.end(), drive.begin(), drive.end());
    return args;
  };
  RunShardfs(opt, tmp.path(),
             with_drive({"init", "--node", nodes.list(), "--k", std::to_string(opt.k), "--m",
                         std::to_string(opt.m), "--json"}));

  if (!opt.json) {
    std::printf(
        "shardfs bench/engine: %d nodes on loopback, RS(%d,%d), median of %d runs, MB = "
        "10^6 B\n",
        opt.nodes, opt.k, opt.m, opt.runs);
    std::printf("cpu: %s, %u cores; folder %s (%s)\n", CpuModel().c_str(),
                std::thread::hardware_concurrency(), tmp.path().c_str(), fs_type.c_str());
    std::printf("binary: %s\n", opt.shardfs.c_str());
    if (fs_type == "tmpfs") std::printf("WARNING: tmpfs has no disk; use --dir\n");
  }

  // --- in-process limits: the write pipeline ---
  Bytes pipeline_input(opt.pipeline_mib << 20);
  FillSplitMix64(pipeline_input, 0x5eed);
  backend::WritePipelineOptions wopts;  // the defaults a drive uses
  wopts.seal.cipher = crypto::PreferredCipher();
  wopts.k = opt.k;
  wopts.m = opt.m;
  const double cpu_before_pipeline = SelfCpuSeconds();
  const double pipeline_mbps =
      static_cast<double>(pipeline_input.size()) / 1e6 /
      TimeWritePipeline(crypto::DriveKeys::Derive(crypto::MasterKey::Generate()), wopts,
                        pipeline_input, cli_threads, opt.runs);
  // TimeWritePipeline runs once more than `runs` (a warm-up).
  const double pipeline_cpu_per_gb =
      (SelfCpuSeconds() - cpu_before_pipeline) /
      (static_cast<double>(opt.runs + 1) * static_cast<double>(pipeline_input.size()) / 1e9);
  pipeline_input = Bytes();

  // A command's fixed cost: open the drive (the key file's KDF, the catalog), close it.
  std::vector<double> t_ls;
  for (int r = 0; r < opt.runs; ++r)
    t_ls.push_back(RunShardfs(opt, tmp.path(), with_drive({"ls", "/"})).seconds);

  // --- one big file; a raw write run before each put ---
  Bytes disk_block(kBlock);
  FillSplitMix64(disk_block, 0xd15c);
  const size_t disk_files = std::max<size_t>(1, (opt.disk_mib << 20) / kBlock);
  std::vector<double> t_raw, t_big_put, t_big_get, put_client_cpu, put_nodes_cpu;
  auto nodes_cpu = [&] {
    double total = 0;
    for (const auto& n : nodes.processes()) total += ProcessCpuSeconds(n->pid());
    return total;
  };
  std::vector<double> big_shards;
  for (int r = 0; r < opt.runs; ++r) {
    t_raw.push_back(TimeRawWrite(raw, disk_block, disk_files, opt.nodes));
    const std::string file = src + "/big-" + std::to_string(r);
    WriteRandomFile(file, big, 1000 + r);
    SyncFs(tmp.path());
    NodeTotals before = SumNodes(peers);
    const double nodes_before = nodes_cpu();
    CommandResult put = RunShardfs(opt, tmp.path(), with_drive({"put", file, "/"}));
    put_nodes_cpu.push_back(nodes_cpu() - nodes_before);
    put_client_cpu.push_back(put.cpu_seconds);
    t_big_put.push_back(put.seconds);
    big_shards.push_back(static_cast<double>(SumNodes(peers).shards - before.shards));
    const std::string got = back + "/big-" + std::to_string(r);
    t_big_get.push_back(
        RunShardfs(opt, tmp.path(), with_drive({"get", "/big-" + std::to_string(r), got})).seconds);
    CompareFiles(file, got);
    fs::remove(file);
    fs::remove(got);
  }

  // --- many small files ---
  std::vector<double> t_small_put, t_again, t_small_get, uploads, data_uploads, again_uploads;
  for (int r = 0; r < opt.runs; ++r) {
    const std::string name = "small-" + std::to_string(r);
    const std::string tree = src + "/" + name;
    Tree(opt).Write(tree, 2000 + r);
    const uint64_t packs_before = DrivePacks(opt, tmp.path(), drive);
    NodeTotals before = SumNodes(peers);
    t_small_put.push_back(RunShardfs(opt, tmp.path(), with_drive({"put", tree, "/"})).seconds);
    NodeTotals after = SumNodes(peers);
    uploads.push_back(static_cast<double>(after.shards - before.shards));
    data_uploads.push_back(static_cast<double>((DrivePacks(opt, tmp.path(), drive) - packs_before) *
                                               static_cast<uint64_t>(opt.k + opt.m)));
    t_again.push_back(RunShardfs(opt, tmp.path(), with_drive({"put", tree, "/"})).seconds);
    again_uploads.push_back(static_cast<double>(SumNodes(peers).shards - after.shards));
    const std::string got = back + "/" + name;
    t_small_get.push_back(
        RunShardfs(opt, tmp.path(), with_drive({"get", "/" + name, got})).seconds);
    Tree(opt).Compare(tree, got);
    fs::remove_all(tree);
    fs::remove_all(got);
  }

  // Nodes stop before the folder goes (TempDir is destroyed last).
  nodes.Stop();

  // --- figures ---
  const double big_mb = static_cast<double>(big) / 1e6;
  const double raw_mb = static_cast<double>(disk_files * kBlock) / 1e6;
  const double raw_mbps = raw_mb / Median(t_raw);
  const double put_mbps = big_mb / Median(t_big_put);
  const double get_mbps = big_mb / Median(t_big_get);
  const double limit_mbps = std::min(pipeline_mbps, raw_mbps / expansion);
  const double put_ratio = put_mbps / limit_mbps;
  // What the big put costs in CPU, and the speed the machine's cores would allow at that cost.
  const double big_gb = static_cast<double>(big) / 1e9;
  const double client_cpu_per_gb = Median(put_client_cpu) / big_gb;
  const double nodes_cpu_per_gb = Median(put_nodes_cpu) / big_gb;
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  const double cpu_limit_mbps = cores * 1000 / (client_cpu_per_gb + nodes_cpu_per_gb);
  const double files = static_cast<double>(opt.small_files);
  const double small_put_fps = files / Median(t_small_put);
  const double small_get_fps = files / Median(t_small_get);
  const double per_1000 = Median(uploads) * 1000 / files;
  const double data_per_1000 = Median(data_uploads) * 1000 / files;
  const double again_secs = Median(t_again);
  const double again_max_uploads = *std::max_element(again_uploads.begin(), again_uploads.end());
  std::vector<Target> targets = {
      {"big put / min(pipeline, raw write / " + Fmt("%.2f", expansion) + ")",
       Fmt("%.2f", put_ratio), ">= " + Fmt("%.2f", kBigPutTarget), put_ratio >= kBigPutTarget},
      {"shard uploads per 1,000 small files", Fmt("%.1f", per_1000),
       "< " + Fmt("%.0f", kUploadsPer1000Target), per_1000 < kUploadsPer1000Target},
      {"unchanged second put: shard uploads (most of any run)", Fmt("%.0f", again_max_uploads), "0",
       again_max_uploads == 0},
      {"unchanged second put: seconds", Fmt("%.2f", again_secs),
       "< " + Fmt("%.0f", kUnchangedSecondsTarget), again_secs < kUnchangedSecondsTarget},
  };

  if (opt.json) {
    nlohmann::json j;
    j["nodes"] = opt.nodes;
    j["k"] = opt.k;
    j["m"] = opt.m;
    j["runs"] = opt.runs;
    j["big_mib"] = opt.big_mib;
    j["small_files"] = opt.small_files;
    j["small_kib"] = opt.small_kib;
    j["cpu"] = CpuModel();
    j["filesystem"] = fs_type;
    j["mbps"] = {{"pipeline", pipeline_mbps},
                 {"raw_write", raw_mbps},
                 {"big_put", put_mbps},
                 {"big_get", get_mbps},
                 {"limit", limit_mbps}};
    j["files_per_second"] = {{"small_put", small_put_fps}, {"small_get", small_get_fps}};
    j["seconds"] = {{"ls", t_ls},
                    {"raw_write", t_raw},
                    {"big_put", t_big_put},
                    {"big_get", t_big_get},
                    {"small_put", t_small_put},
                    {"unchanged_put", t_again},
                    {"small_get", t_small_get}};
    j["shard_uploads"] = {{"big_put", big_shards},
                          {"small_put", uploads},
                          {"small_put_data_packs", data_uploads},
                          {"unchanged_put", again_uploads}};
    j["big_put_ratio"] = put_ratio;
    j["cpu_seconds_per_gb"] = {{"pipeline", pipeline_cpu_per_gb},
                               {"big_put_client", client_cpu_per_gb},
                               {"big_put_nodes", nodes_cpu_per_gb}};
    j["mbps"]["cpu_limit"] = cpu_limit_mbps;
    j["uploads_per_1000_files"] = per_1000;
    j["data_pack_uploads_per_1000_files"] = data_per_1000;
    j["targets"] = TargetsJson(targets);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::printf("\nlimits, measured in this run\n");
  std::printf("  %-52s %8.0f MB/s  (%d threads, %zu MiB)\n", "write pipeline (in process)",
              pipeline_mbps, cli_threads, opt.pipeline_mib);
  std::printf("  %-52s %8.0f MB/s  %s (%zu MiB in 4 MiB files, %d threads)\n",
              "raw write (write, fsync, close)", raw_mbps, Range(t_raw, raw_mb, "%.0f").c_str(),
              opt.disk_mib, opt.nodes);
  std::printf("  %-52s %8.0f MB/s\n", ("raw write / expansion " + Fmt("%.2f", expansion)).c_str(),
              raw_mbps / expansion);
  std::printf("  %-52s %8.2f s\n", "a command's fixed cost (shardfs ls /)", Median(t_ls));
  std::printf("\none %zu MiB file\n", opt.big_mib);
  std::printf("  %-52s %8.0f MB/s  %s, %.0f shards\n", "put", put_mbps,
              Range(t_big_put, big_mb, "%.0f").c_str(), Median(big_shards));
  std::printf("  %-52s %8.0f MB/s  %s\n", "get (compared with the source)", get_mbps,
              Range(t_big_get, big_mb, "%.0f").c_str());
  std::printf("  %-52s %8.2f s  (shardfs %.2f, nodes %.2f; the pipeline alone: %.2f)\n",
              "put's CPU per GB (user + system)", client_cpu_per_gb + nodes_cpu_per_gb,
              client_cpu_per_gb, nodes_cpu_per_gb, pipeline_cpu_per_gb);
  std::printf("  %-52s %8.0f MB/s  (put / this: %.2f)\n",
              ("what " + Fmt("%.0f", cores) + " cores allow at that cost").c_str(), cpu_limit_mbps,
              put_mbps / cpu_limit_mbps);
  std::printf("\n%zu files of %zu KiB, %zu to a folder\n", opt.small_files, opt.small_kib,
              opt.files_per_folder);
  std::printf("  %-52s %8.0f files/s  %s, %.2f s\n", "put", small_put_fps,
              Range(t_small_put, files, "%.0f").c_str(), Median(t_small_put));
  std::printf("  %-52s %8.0f  (%.1f per 1,000 files)\n", "  shard uploads, all", Median(uploads),
              per_1000);
  std::printf("  %-52s %8.0f  (%.1f per 1,000 files; the rest: the catalog's checkpoint)\n",
              "  shard uploads of the drive's data packs", Median(data_uploads), data_per_1000);
  std::printf("  %-52s %8.2f s\n", "put again, unchanged", again_secs);
  std::printf("  %-52s %8.0f files/s  %s, %.2f s\n", "get (compared with the source)",
              small_get_fps, Range(t_small_get, files, "%.0f").c_str(), Median(t_small_get));
  PrintTargets(targets, "PASS",
               "the exit status is 0 either way; targets are judged on the reference machine");
  return 0;
}

}  // namespace
}  // namespace shardfs::bench

int main(int argc, char** argv) try {
  shardfs::bench::Options opt;
  CLI::App app{"Measures shardfs put and get through the shardfs binary against 6 local nodes."};
  app.add_option("--shardfs", opt.shardfs, "the shardfs binary to run")->capture_default_str();
  app.add_option("--dir", opt.dir,
                 "folder to make the temporary folder in (default: the build folder, else "
                 "$TMPDIR, else /tmp)");
  app.add_option("--nodes", opt.nodes, "storage nodes to start")
      ->check(CLI::Range(2, 32))
      ->capture_default_str();
  app.add_option("--k", opt.k, "data shards per pack")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--m", opt.m, "parity shards per pack")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--big-mib", opt.big_mib, "size of the big file, MiB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--small-files", opt.small_files, "how many small files")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--small-kib", opt.small_kib, "size of each small file, KiB")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--pipeline-mib", opt.pipeline_mib, "MiB through the in-process write pipeline")
      ->check(CLI::Range(16, 8192))
      ->capture_default_str();
  app.add_option("--disk-mib", opt.disk_mib, "MiB per raw write run")
      ->check(CLI::Range(4, 65536))
      ->capture_default_str();
  app.add_option("--runs", opt.runs, "repetitions of each figure (the median is printed)")
      ->check(CLI::Range(1, 101))
      ->capture_default_str();
  app.add_option("--command-timeout", opt.command_timeout, "seconds one shardfs command may take")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_flag("--keep", opt.keep, "keep the temporary folder (for inspection)");
  app.add_flag("--json", opt.json, "print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  if (opt.nodes < opt.k + opt.m) {
    std::fprintf(stderr, "bench/engine: --nodes must be at least --k + --m\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return shardfs::bench::RunWatched("bench/engine", [&] { return shardfs::bench::Run(opt); });
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench/engine: %s\n", e.what());
  return 1;
}
