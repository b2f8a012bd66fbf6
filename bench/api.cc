// bench/api: the companion API (REST and WebDAV, over loopback HTTP) against the FUSE mount of
// the same drive, in one run: what a phone or a WebDAV app gets next to what the desktop gets.
//
// One drive as a user meets it (6 `shardfs node` processes on loopback, `shardfs init --k 4
// --m 2`), mounted with `shardfs mount --api 127.0.0.1:0 --http`, so the mount and the API are
// one process over one drive; a device token from `shardfs pair`. Each round, every way takes
// its turn in every phase:
//   - upload of a --big-mib file: `dd bs=1M` into the mount, or one `curl -T` (REST PUT
//     /api/v1/files, WebDAV PUT /dav), then `shardfs sync` (every byte and a checkpoint on the
//     nodes), timed to the sync's end;
//   - cold download of that file: unmount, empty the chunk cache, mount, drop the kernel's
//     caches, then `dd of=/dev/null` from the mount or `curl -o /dev/null`;
//   - upload of --small-files files of --small-kib KiB (100 to a folder): `cp -a` into the
//     mount, or one curl process going through them on one connection (its folders made
//     first: POST /api/v1/folders, MKCOL), then `shardfs sync`;
//   - cold download of that tree: `cp -a` out of the mount, or one curl process.
// Every upload has bytes of its own (the drive would store the same bytes again for nothing),
// and is read back through the mount; every download is compared with its source (untimed).
// Figures are medians of --runs. It prints MB/s, each way's ratio to the mount's, and the targets
// (docs/bench.md). The exit status is 0 either way; 1 if the benchmark itself fails; 77 if it
// cannot run here (not root, no /dev/fuse, no curl). However the run ends (SIGINT and SIGTERM
// too), the mount is undone, every process stopped by pid and the temporary folder removed.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/file.h"
#include "bench/bench_drive.h"
#include "bench/bench_util.h"

namespace shardfs::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

const std::vector<std::string> kWays = {"fuse", "rest", "webdav"};

struct Options {
  std::string shardfs = SHARDFS_BINARY;
  std::string dir;
  std::vector<std::string> only = kWays;
  size_t big_mib = 1024;
  size_t small_files = 1000;
  size_t small_kib = 64;
  int runs = 3;
  int timeout = 600;
  bool keep = false;
  bool json = false;
};

constexpr int kNodes = 6;
constexpr int kDataShards = 4;
constexpr int kParityShards = 2;
// Target (docs/bench.md): REST and WebDAV against the mount, for the big file, at least.
constexpr double kBigVsFuse = 0.8;

CommandOptions Timed(const Options& opt) {
  CommandOptions co;
  co.timeout = opt.timeout;
  return co;
}

double Mb(uint64_t bytes) { return static_cast<double>(bytes) / 1e6; }

// A curl config file of transfers, one after the other on one connection: each a block of
// its own options, separated by `next`.
class CurlConfig {
 public:
  explicit CurlConfig(std::string auth) : auth_(std::move(auth)) {}
  // `method` "" for GET, or PUT with `upload` set; the answer's body to `output`.
  void Add(const std::string& url, const std::string& method, const std::string& upload,
           const std::string& output) {
    if (!text_.empty()) text_ += "next\n";
    text_ += "fail\nsilent\nshow-error\n" + auth_ + "url = \"" + url + "\"\n";
    if (!method.empty()) text_ += "request = \"" + method + "\"\n";
    if (!upload.empty()) text_ += "upload-file = \"" + upload + "\"\n";
    text_ += "output = \"" + output + "\"\ncreate-dirs\n";
  }
  const std::string& text() const { return text_; }

 private:
  const std::string auth_;
  std::string text_;
};

// The drive mounted, with its API on a loopback port, and a device token for it.
class Drive {
 public:
  Drive(const Options& opt, const std::string& root, const std::string& scratch, uint64_t capacity)
      : opt_(opt),
        scratch_(scratch),
        drive_(opt.shardfs, root, scratch, kNodes, kDataShards, kParityShards, capacity,
               opt.timeout, {"--api", "127.0.0.1:0", "--http"}) {}

  void Mount() {
    drive_.Mount();
    // The port was picked at the mount: the server's URL, from status on the drive's socket.
    CommandResult c = RunCommand({"curl", "-sSf", "--unix-socket", drive_.home() + "/run/api.sock",
                                  "http://localhost/api/v1/status"},
                                 scratch_, Timed(opt_));
    json status = json::parse(c.out, nullptr, /*allow_exceptions=*/false);
    url_ = status.is_object() ? status["server"].value("url", "") : "";
    if (url_.empty()) Fail("no server URL in the mount's status: " + c.out);
    if (token_.empty()) Pair();
  }
  void Unmount() { drive_.Unmount(); }

  // Unmounted, the chunk cache emptied, mounted again, the kernel's caches dropped.
  void MakeCold() {
    drive_.Unmount();
    drive_.ClearCache();
    Mount();
    DropCaches();
  }

  // `shardfs sync`: every queued byte and a checkpoint on the nodes (through the mount).
  void Sync() { drive_.Run({"sync"}); }

  std::string Path(const std::string& name) const { return drive_.mountpoint() + "/" + name; }
  std::string Url(const std::string& way, const std::string& name) const {
    return url_ + (way == "rest" ? "/api/v1/files/" : "/dav/") + name;
  }
  std::string FolderUrl(const std::string& way, const std::string& name) const {
    return way == "rest" ? url_ + "/api/v1/folders/" + name : url_ + "/dav/" + name + "/";
  }
  // What curl sends to log in: a bearer token for REST, the token as Basic's password for
  // WebDAV (as WebDAV apps do).
  std::string Auth(const std::string& way) const {
    return way == "rest" ? "header = \"Authorization: Bearer " + token_ + "\"\n"
                         : "user = \"bench:" + token_ + "\"\n";
  }
  long DaemonPeakKiB() const { return drive_.DaemonPeakKiB(); }

 private:
  void Pair() {
    CommandResult code = drive_.Run({"pair", "--name", "bench", "--json"});
    json c = json::parse(code.out, nullptr, /*allow_exceptions=*/false);
    if (!c.is_object() || !c.contains("code")) Fail("shardfs pair --json printed: " + code.out);
    const std::string body = json{{"code", c["code"]}, {"name", "bench"}}.dump();
    CommandResult paired =
        RunCommand({"curl", "-sSf", "-X", "POST", "-H", "Content-Type: application/json",
                    "--data-binary", body, url_ + "/api/v1/pair"},
                   scratch_, Timed(opt_));
    json p = json::parse(paired.out, nullptr, /*allow_exceptions=*/false);
    token_ = p.is_object() ? p.value("token", "") : "";
    if (token_.empty()) Fail("pairing answered: " + paired.out);
  }

  const Options& opt_;
  const std::string scratch_;
  BenchDrive drive_;
  std::string url_;
  std::string token_;
};

struct Figures {
  std::vector<double> up_big, down_big, up_small, down_small;
  std::vector<double> up_big_transfer, up_small_transfer;  // before the sync
};

struct Phase {
  const char* key;
  const char* label;
  bool big;
  std::vector<double> Figures::*secs;
};

int Run(const Options& opt) {
  if (!fs::exists(opt.shardfs)) Fail("no shardfs binary at " + opt.shardfs + " (see --shardfs)");
  const uint64_t big = uint64_t{opt.big_mib} << 20;
  SmallTree tree;
  tree.files = opt.small_files;
  tree.kib = opt.small_kib;

  TempDir tmp(fs::absolute(opt.dir.empty() ? DefaultDir(SHARDFS_BENCH_DIR) : opt.dir).string(),
              "shardfs-bench-api", opt.keep);
  SetLeftoverDir(opt.keep ? "" : tmp.path());
  const std::string root = fs::canonical(tmp.path()).string();
  const std::string fs_type = FsType(root);
  const double expansion = static_cast<double>(kDataShards + kParityShards) / kDataShards;
  const uint64_t stored = static_cast<uint64_t>(opt.runs) * opt.only.size() * (big + tree.bytes()) +
                          (uint64_t{256} << 20);
  {
    // The sources, what the nodes store, the write-back area and chunk cache (two big files),
    // and the downloaded trees.
    const auto need = static_cast<uint64_t>(static_cast<double>(stored) * expansion) + 3 * big +
                      2 * tree.bytes() + (uint64_t{1} << 30);
    struct statvfs sv {};
    if (::statvfs(root.c_str(), &sv) == 0 &&
        static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize < need) {
      Fail(root + " has " +
           Fmt("%.1f", Mb(static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize) / 1e3) +
           " GB free; the run needs about " + Fmt("%.1f", Mb(need) / 1e3) + " GB (see --dir)");
    }
  }
  const std::string scratch = root;
  const std::string src_big = root + "/src-big", src_tree = root + "/src-tree";
  // Every upload has bytes of its own (the drive stores bytes it has once: the same source
  // again would cost no coding and no network); the downloads read the first upload's.
  const auto seed = [&](const std::string& way, int r) {
    return static_cast<uint64_t>(r) * kWays.size() +
           static_cast<uint64_t>(std::find(kWays.begin(), kWays.end(), way) - kWays.begin()) + 1;
  };
  const auto write_tree = [&](uint64_t s) {
    fs::remove_all(src_tree);
    tree.Write(src_tree, s << 32);
  };

  const std::string drive_dir = root + "/drive";
  fs::create_directory(drive_dir);
  Drive drive(opt, drive_dir, scratch,
              static_cast<uint64_t>(static_cast<double>(stored) * expansion));
  drive.Mount();

  if (!opt.json) {
    std::printf("shardfs bench/api: %s; MB = 10^6 B; medians of %d runs\n",
                CommandLine(opt.only).c_str(), opt.runs);
    std::printf("cpu: %s, %u cores; folder %s (%s)\n", CpuModel().c_str(),
                std::thread::hardware_concurrency(), root.c_str(), fs_type.c_str());
    std::printf(
        "shardfs: %s, %d nodes on loopback, RS(%d,%d); the API over plain HTTP on "
        "127.0.0.1, in the mount's process\n",
        opt.shardfs.c_str(), kNodes, kDataShards, kParityShards);
  }
  auto say = [&](const std::string& what) {
    if (!opt.json) std::fprintf(stderr, "  %s\n", what.c_str());
  };
  std::map<std::string, Figures> fig;
  const auto name = [](const char* what, const std::string& way, int r) {
    return std::string(what) + "-" + way + "-" + std::to_string(r);
  };
  // What every way downloads: the first way's upload of the first round.
  const std::string first = opt.only.front();
  const std::string down_dir = root + "/down";

  for (int r = 0; r < opt.runs; ++r) {
    const std::string round = std::to_string(r + 1) + "/" + std::to_string(opt.runs);
    // --- the big file up ---
    for (const auto& way : opt.only) {
      say("upload " + std::to_string(opt.big_mib) + " MiB " + round + ": " + way);
      const std::string to = name("big", way, r);
      WriteRandomFile(src_big, big, seed(way, r));
      DropCaches();
      const auto start = Clock::now();
      if (way == "fuse") {
        RunCommand({"dd", "if=" + src_big, "of=" + drive.Path(to), "bs=1M"}, scratch, Timed(opt));
      } else {
        CurlConfig c(drive.Auth(way));
        c.Add(drive.Url(way, to), "", src_big, "/dev/null");
        WriteText(scratch + "/curl.conf", c.text());
        RunCommand({"curl", "-K", scratch + "/curl.conf"}, scratch, Timed(opt));
      }
      fig[way].up_big_transfer.push_back(SecondsSince(start));
      drive.Sync();
      fig[way].up_big.push_back(SecondsSince(start));
      CompareFiles(src_big, drive.Path(to));  // read back through the mount, untimed
    }
    // --- the big file down, cold ---
    for (const auto& way : opt.only) {
      say("cold download " + std::to_string(opt.big_mib) + " MiB " + round + ": " + way);
      const std::string from = name("big", first, 0);
      drive.MakeCold();
      const auto start = Clock::now();
      if (way == "fuse") {
        RunCommand({"dd", "if=" + drive.Path(from), "of=/dev/null", "bs=1M"}, scratch, Timed(opt));
      } else {
        CurlConfig c(drive.Auth(way));
        c.Add(drive.Url(way, from), "", "", "/dev/null");
        WriteText(scratch + "/curl.conf", c.text());
        RunCommand({"curl", "-K", scratch + "/curl.conf"}, scratch, Timed(opt));
      }
      fig[way].down_big.push_back(SecondsSince(start));
    }
    // --- the small files up ---
    for (const auto& way : opt.only) {
      say("upload " + std::to_string(tree.files) + " x " + std::to_string(tree.kib) + " KiB " +
          round + ": " + way);
      const std::string to = name("small", way, r);
      write_tree(seed(way, r));
      DropCaches();
      const auto start = Clock::now();
      if (way == "fuse") {
        RunCommand({"cp", "-a", src_tree, drive.Path(to)}, scratch, Timed(opt));
      } else {
        CurlConfig c(drive.Auth(way));
        if (way == "webdav") c.Add(drive.FolderUrl(way, to), "MKCOL", "", "/dev/null");
        for (size_t i = 0; i < tree.files; i += tree.per_folder) {
          const std::string folder = to + fs::path(tree.Path("", i)).parent_path().string();
          c.Add(drive.FolderUrl(way, folder) + (way == "rest" ? "?parents=1" : ""),
                way == "rest" ? "POST" : "MKCOL", "", "/dev/null");
          for (size_t f = i; f < std::min(tree.files, i + tree.per_folder); ++f) {
            c.Add(drive.Url(way, to + tree.Path("", f)), "", tree.Path(src_tree, f), "/dev/null");
          }
        }
        WriteText(scratch + "/curl.conf", c.text());
        RunCommand({"curl", "-K", scratch + "/curl.conf"}, scratch, Timed(opt));
      }
      fig[way].up_small_transfer.push_back(SecondsSince(start));
      drive.Sync();
      fig[way].up_small.push_back(SecondsSince(start));
      tree.Compare(src_tree, drive.Path(to));
    }
    // --- the small files down, cold ---
    write_tree(seed(first, 0));
    for (const auto& way : opt.only) {
      say("cold download " + std::to_string(tree.files) + " files " + round + ": " + way);
      const std::string from = name("small", first, 0);
      fs::remove_all(down_dir);
      drive.MakeCold();
      const auto start = Clock::now();
      if (way == "fuse") {
        RunCommand({"cp", "-a", drive.Path(from), down_dir}, scratch, Timed(opt));
      } else {
        CurlConfig c(drive.Auth(way));
        for (size_t f = 0; f < tree.files; ++f) {
          c.Add(drive.Url(way, from + tree.Path("", f)), "", "", tree.Path(down_dir, f));
        }
        WriteText(scratch + "/curl.conf", c.text());
        RunCommand({"curl", "-K", scratch + "/curl.conf"}, scratch, Timed(opt));
      }
      SyncFs(down_dir);
      fig[way].down_small.push_back(SecondsSince(start));
      tree.Compare(src_tree, down_dir);
    }
  }
  // Every way's download of the big file is the first upload, byte for byte (untimed).
  say("comparing");
  WriteRandomFile(src_big, big, seed(first, 0));
  for (const auto& way : opt.only) {
    if (way == "fuse") {
      CompareFiles(src_big, drive.Path(name("big", first, 0)));
      continue;
    }
    const std::string got = root + "/got-big";
    CurlConfig c(drive.Auth(way));
    c.Add(drive.Url(way, name("big", first, 0)), "", "", got);
    WriteText(scratch + "/curl.conf", c.text());
    RunCommand({"curl", "-K", scratch + "/curl.conf"}, scratch, Timed(opt));
    CompareFiles(src_big, got);
    fs::remove(got);
  }
  const long peak_kib = drive.DaemonPeakKiB();
  drive.Unmount();

  // --- figures ---
  const std::vector<Phase> phases = {
      {"upload_big", "upload + sync", true, &Figures::up_big},
      {"download_big", "cold download", true, &Figures::down_big},
      {"upload_small", "upload + sync", false, &Figures::up_small},
      {"download_small", "cold download", false, &Figures::down_small},
  };
  const auto mbps = [&](const std::string& way, const Phase& p) {
    return Mb(p.big ? big : tree.bytes()) / Median(fig.at(way).*p.secs);
  };
  const bool has_fuse = fig.count("fuse") != 0;
  std::vector<Target> targets;
  for (const auto& way : {"rest", "webdav"}) {
    if (!has_fuse || fig.count(way) == 0) continue;
    for (const auto& p : phases) {
      if (!p.big) continue;
      const double v = mbps(way, p) / mbps("fuse", p);
      targets.push_back(
          {std::string(way) + " / fuse, " + std::to_string(opt.big_mib) + " MiB " + p.label,
           Fmt("%.2f", v), ">= " + Fmt("%.1f", kBigVsFuse), v >= kBigVsFuse});
    }
  }

  if (opt.json) {
    json j;
    j["big_mib"] = opt.big_mib;
    j["small_files"] = opt.small_files;
    j["small_kib"] = opt.small_kib;
    j["runs"] = opt.runs;
    j["cpu"] = CpuModel();
    j["filesystem"] = fs_type;
    j["daemon_peak_rss_kib"] = peak_kib;
    for (const auto& [way, f] : fig) {
      for (const auto& p : phases) {
        j["ways"][way]["seconds"][p.key] = f.*p.secs;
        j["ways"][way]["mbps"][p.key] = mbps(way, p);
        if (has_fuse) j["ways"][way]["ratio_to_fuse"][p.key] = mbps(way, p) / mbps("fuse", p);
      }
      j["ways"][way]["seconds"]["upload_big_before_sync"] = f.up_big_transfer;
      j["ways"][way]["seconds"]["upload_small_before_sync"] = f.up_small_transfer;
    }
    j["targets"] = TargetsJson(targets);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("\n%-40s", "MB/s");
  for (const auto& way : opt.only) std::printf(" %10s", way.c_str());
  if (has_fuse) {
    for (const auto& way : opt.only) {
      if (way != "fuse") std::printf(" %14s", (way + "/fuse").c_str());
    }
  }
  for (const auto& p : phases) {
    const std::string label =
        (p.big ? std::to_string(opt.big_mib) + " MiB"
               : std::to_string(tree.files) + " x " + std::to_string(tree.kib) + " KiB") +
        ": " + p.label;
    std::printf("\n%-40s", label.c_str());
    for (const auto& way : opt.only) std::printf(" %10s", Fmt("%.1f", mbps(way, p)).c_str());
    if (has_fuse) {
      for (const auto& way : opt.only) {
        if (way != "fuse") {
          std::printf(" %14s", Fmt("%.2f", mbps(way, p) / mbps("fuse", p)).c_str());
        }
      }
    }
  }
  std::printf("\n%-40s", "  upload before the sync (s), big");
  for (const auto& way : opt.only) {
    std::printf(" %10s", Fmt("%.2f", Median(fig.at(way).up_big_transfer)).c_str());
  }
  std::printf("\n%-40s", "  upload before the sync (s), small");
  for (const auto& way : opt.only) {
    std::printf(" %10s", Fmt("%.2f", Median(fig.at(way).up_small_transfer)).c_str());
  }
  std::printf("\nthe mount daemon's peak RSS (VmHWM), serving all three: %.0f MiB\n",
              static_cast<double>(peak_kib) / 1024.0);
  if (targets.empty()) std::printf("\n(no targets: they need fuse and rest or webdav)\n");
  PrintTargets(targets, "OK",
               "the exit status is 0 either way; targets are judged at full size on an idle "
               "machine");
  return 0;
}

}  // namespace
}  // namespace shardfs::bench

int main(int argc, char** argv) try {
  using shardfs::bench::kWays;
  shardfs::bench::Options opt;
  CLI::App app{
      "Measures the companion API (REST and WebDAV over loopback HTTP) against the FUSE mount "
      "of the same drive, in one run."};
  app.add_option("--shardfs", opt.shardfs, "the shardfs binary to run")->capture_default_str();
  app.add_option("--dir", opt.dir,
                 "folder to make the temporary folder in (default: the build folder, else "
                 "$TMPDIR, else /tmp)");
  app.add_option("--only", opt.only, "ways to measure, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(kWays))
      ->capture_default_str();
  app.add_option("--big-mib", opt.big_mib, "size of the big file, MiB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--small-files", opt.small_files, "how many small files")
      ->check(CLI::Range(1, 99999))
      ->capture_default_str();
  app.add_option("--small-kib", opt.small_kib, "size of each small file, KiB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--runs", opt.runs, "rounds; figures are their medians")
      ->check(CLI::Range(1, 101))
      ->capture_default_str();
  app.add_option("--timeout", opt.timeout, "seconds any one command may take")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_flag("--keep", opt.keep, "keep the temporary folder (for inspection)");
  app.add_flag("--json", opt.json, "print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> only;
  for (const auto& w : kWays) {
    if (std::find(opt.only.begin(), opt.only.end(), w) != opt.only.end()) only.push_back(w);
  }
  opt.only = only;

  std::vector<std::string> missing;
  if (::geteuid() != 0) missing.push_back("it must run as root (mounts, drop_caches)");
  if (::access("/dev/fuse", R_OK | W_OK) != 0) missing.push_back("/dev/fuse is not usable");
  for (const char* tool : {"curl", "dd", "cp"}) {
    if (std::string why = shardfs::bench::MissingTool(tool); !why.empty()) missing.push_back(why);
  }
  if (!missing.empty()) {
    for (const auto& m : missing) std::fprintf(stderr, "SKIP: bench/api: %s\n", m.c_str());
    return 77;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return shardfs::bench::RunWatched("bench/api", [&] { return shardfs::bench::Run(opt); });
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench/api: %s\n", e.what());
  return 1;
}
