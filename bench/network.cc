// bench/network: the living network (issue 6), in two parts.
//
// 1. A simulation of the gossip protocol (net::Gossip, the code the nodes run, over the
//    simulated network of tests/gossip_sim: no sockets, protocol time) for --sizes members
//    (100, 1,000 and 10,000), period 1 s, every member knowing every other at the start:
//    - one member crashes: the periods until 99% of the others know it failed (suspect or
//      dead), and until 99% hold it dead, beside log2(n) and the suspicion timeout;
//    - the packets each member sends per period meanwhile;
//    - with 5% of packets lost and no one failing, over --loss-periods periods: suspicions
//      and deaths declared (both false) per 1,000 member-periods.
// 2. With real processes: --nodes `shardfs node` processes gossiping on loopback, a drive
//    with RS(4,2), --data-mib of random data put into it; one node is killed (SIGKILL) and
//    the time is taken until a node's member list holds it dead, then `shardfs repair --now`
//    to every pack full again, and the data is read back and compared. Printed: detection,
//    repair and total seconds, bytes rebuilt, and repair's throughput beside the put's in
//    the same run.
//
// Exit status 0, or 1 if the benchmark itself fails (a command failed, bytes differ, a
// deadline passed). Every process it started is stopped by pid, its folder removed.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>

#include "bench/bench_util.h"
#include "net/http_membership.h"
#include "tests/gossip_sim.h"

namespace shardfs::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Options {
  std::string shardfs = SHARDFS_BINARY;
  std::string dir;
  std::vector<int> sizes = {100, 1000, 10000};
  int loss_periods = 100;
  bool sim = true;
  bool real = true;
  int nodes = 8;
  size_t data_mib = 1024;
  bool keep = false;
  bool json = false;
};

struct SimFigures {
  int n = 0;
  double periods_to_known = -1;  // 99% suspect or dead
  double periods_to_dead = -1;   // 99% dead
  double suspicion_periods = 0;
  double packets_per_member_period = 0;
  double false_suspicions_per_1000 = 0;
  double false_deaths_per_1000 = 0;
  double seconds = 0;  // wall time of the simulation
};

SimFigures Simulate(int n, int loss_periods) {
  const auto start = Clock::now();
  SimFigures f;
  f.n = n;
  test::GossipSimOptions o;
  o.nodes = n;
  o.gossip.period = std::chrono::milliseconds(1000);
  o.gossip.ping_timeout = std::chrono::milliseconds(300);
  o.seed = static_cast<uint64_t>(n);
  const auto period = o.gossip.period;
  {
    test::GossipSim sim(o);
    sim.Run(period * 3);
    f.suspicion_periods = static_cast<double>(sim.node(1).SuspicionTimeout().count()) /
                          static_cast<double>(period.count());
    const uint64_t packets_before = sim.PacketsSent();
    const auto t0 = sim.elapsed();
    sim.Crash(0);
    const int target = static_cast<int>(std::ceil(0.99 * (n - 1)));
    auto periods = [&] {
      return std::chrono::duration<double>(sim.elapsed() - t0).count() /
             std::chrono::duration<double>(period).count();
    };
    if (sim.RunUntil(
            [&] {
              return sim.CountSeeing(0, net::MemberState::kSuspect) +
                         sim.CountSeeing(0, net::MemberState::kDead) >=
                     target;
            },
            period * 200)) {
      f.periods_to_known = periods();
    }
    if (sim.RunUntil([&] { return sim.CountSeeing(0, net::MemberState::kDead) >= target; },
                     period * 200)) {
      f.periods_to_dead = periods();
    }
    f.packets_per_member_period = static_cast<double>(sim.PacketsSent() - packets_before) /
                                  (n - 1) / std::max(periods(), 1.0);
  }
  {
    o.loss = 0.05;
    o.seed = static_cast<uint64_t>(n) + 1;
    test::GossipSim sim(o);
    sim.Run(period * loss_periods);
    uint64_t suspicions = 0, deaths = 0;
    for (int i = 0; i < n; ++i) {
      suspicions += sim.node(i).counters().suspicions;
      deaths += sim.node(i).counters().deaths;
    }
    const double member_periods = static_cast<double>(n) * loss_periods;
    f.false_suspicions_per_1000 = 1000.0 * static_cast<double>(suspicions) / member_periods;
    f.false_deaths_per_1000 = 1000.0 * static_cast<double>(deaths) / member_periods;
  }
  f.seconds = SecondsSince(start);
  return f;
}

struct RealFigures {
  double put_seconds = 0;
  double detect_seconds = 0;
  double repair_seconds = 0;
  uint64_t shards_rebuilt = 0;
  uint64_t bytes_fetched = 0;
  uint64_t bytes_stored = 0;
  uint64_t packs = 0;
};

CommandResult Shardfs(const Options& opt, const std::string& scratch, std::vector<std::string> args,
                      const std::string& home) {
  std::vector<std::string> argv = {opt.shardfs};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--home");
  argv.push_back(home);
  return RunCommand(argv, scratch);
}

RealFigures RunReal(const Options& opt) {
  RealFigures r;
  TempDir tmp(opt.dir.empty() ? DefaultDir(SHARDFS_BENCH_DIR) : opt.dir, "shardfs-bench-network",
              opt.keep);
  SetLeftoverDir(opt.keep ? "" : tmp.path());
  const uint64_t data = uint64_t{opt.data_mib} << 20;
  const uint64_t capacity = data * 2 + (uint64_t{512} << 20);
  LocalNodes nodes(opt.shardfs, tmp.path(), opt.nodes, capacity,
                   {"--gossip-period", "0.5", "--gossip-ping-timeout", "0.2"}, /*join=*/true);
  // Wait for the network to form.
  const auto& procs = nodes.processes();
  auto alive_seen_by = [&](size_t viewer) {
    auto v = net::FetchMembers(procs[viewer]->address(), std::chrono::milliseconds(2000));
    size_t alive = 0;
    if (v.ok()) {
      for (const auto& m : v->members) alive += m.state == net::MemberState::kAlive;
    }
    return alive;
  };
  const auto form = Clock::now();
  while (alive_seen_by(procs.size() - 1) < procs.size()) {
    if (SecondsSince(form) > 60) Fail("the nodes did not all see each other within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string home = tmp.path() + "/home", file = tmp.path() + "/data",
                    back = tmp.path() + "/back";
  Shardfs(opt, tmp.path(), {"init", "--node", nodes.list(), "--k", "4", "--m", "2", "--json"},
          home);
  WriteRandomFile(file, data, 42);
  r.put_seconds = Shardfs(opt, tmp.path(), {"put", file, "/data"}, home).seconds;
  json before = json::parse(Shardfs(opt, tmp.path(), {"repair", "--json"}, home).out);
  r.packs = before.at("durability").at("packs").get<uint64_t>();

  // Kill one node; time until another's member list holds it dead.
  const size_t victim = 3;
  const std::string victim_address = procs[victim]->address().ToString();
  const auto kill_at = Clock::now();
  RemoveLeftoverPid(procs[victim]->pid());
  (void)procs[victim]->Stop(SIGKILL, std::chrono::seconds(10));
  while (true) {
    auto v = net::FetchMembers(procs[0]->address(), std::chrono::milliseconds(2000));
    bool dead = false;
    if (v.ok()) {
      for (const auto& m : v->members) {
        dead |= m.record.address == victim_address && m.state == net::MemberState::kDead;
      }
    }
    if (dead) break;
    if (SecondsSince(kill_at) > 120) Fail("the killed node was not declared dead in 120 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  r.detect_seconds = SecondsSince(kill_at);
  CommandResult rep = Shardfs(opt, tmp.path(), {"repair", "--now", "--json"}, home);
  json j = json::parse(rep.out);
  if (j.at("after").at("full").get<uint64_t>() != r.packs) {
    Fail("repair left packs not full: " + j.at("after").dump());
  }
  r.repair_seconds = rep.seconds;
  r.shards_rebuilt = j.at("shards_rebuilt").get<uint64_t>();
  r.bytes_fetched = j.at("bytes_fetched").get<uint64_t>();
  r.bytes_stored = j.at("bytes_stored").get<uint64_t>();
  // Every byte still reads back, the rebuilt shards among them.
  Shardfs(opt, tmp.path(), {"get", "/data", back}, home);
  RunCommand({"cmp", file, back}, tmp.path());  // fails the run if they differ
  return r;
}

int Run(const Options& opt) {
  json out;
  if (!opt.json) {
    std::printf("shardfs bench/network; cpu: %s, %u cores\n", CpuModel().c_str(),
                std::thread::hardware_concurrency());
  }
  if (opt.sim) {
    if (!opt.json) {
      std::printf(
          "\n1. gossip simulation (net::Gossip over a simulated network), period 1 s, ping "
          "timeout 0.3 s,\n   a failure detected (99%% of members) and false positives with "
          "5%% loss over %d periods\n\n",
          opt.loss_periods);
      std::printf("%8s %12s %12s %8s %10s %12s %14s %14s %8s\n", "members", "to suspect", "to dead",
                  "log2(n)", "suspicion", "packets per", "false suspect", "false dead", "wall");
      std::printf("%8s %12s %12s %8s %10s %12s %14s %14s %8s\n", "", "(periods)", "(periods)", "",
                  "(periods)", "member-period", "per 1,000 m-p", "per 1,000 m-p", "(s)");
    }
    json sims = json::array();
    for (int n : opt.sizes) {
      SimFigures f = Simulate(n, opt.loss_periods);
      sims.push_back({{"members", n},
                      {"periods_to_suspect", f.periods_to_known},
                      {"periods_to_dead", f.periods_to_dead},
                      {"log2_n", std::log2(n)},
                      {"suspicion_periods", f.suspicion_periods},
                      {"packets_per_member_period", f.packets_per_member_period},
                      {"false_suspicions_per_1000_member_periods", f.false_suspicions_per_1000},
                      {"false_deaths_per_1000_member_periods", f.false_deaths_per_1000},
                      {"wall_seconds", f.seconds}});
      if (!opt.json) {
        std::printf("%8d %12.1f %12.1f %8.1f %10.1f %12.2f %14.3f %14.3f %8.1f\n", n,
                    f.periods_to_known, f.periods_to_dead, std::log2(n), f.suspicion_periods,
                    f.packets_per_member_period, f.false_suspicions_per_1000,
                    f.false_deaths_per_1000, f.seconds);
        std::fflush(stdout);
      }
    }
    out["simulation"] = sims;
  }
  if (opt.real) {
    RealFigures r = RunReal(opt);
    const double mb = 1e6;
    const double data_mb = static_cast<double>(uint64_t{opt.data_mib} << 20) / mb;
    const double put_rate = data_mb * 1.5 / r.put_seconds;  // shard bytes sent per second
    const double repair_rate =
        static_cast<double>(r.bytes_fetched + r.bytes_stored) / mb / r.repair_seconds;
    out["real"] = {{"nodes", opt.nodes},
                   {"data_mib", opt.data_mib},
                   {"packs", r.packs},
                   {"put_seconds", r.put_seconds},
                   {"detect_seconds", r.detect_seconds},
                   {"repair_seconds", r.repair_seconds},
                   {"total_seconds", r.detect_seconds + r.repair_seconds},
                   {"shards_rebuilt", r.shards_rebuilt},
                   {"bytes_fetched", r.bytes_fetched},
                   {"bytes_stored", r.bytes_stored},
                   {"put_shard_mb_per_s", put_rate},
                   {"repair_mb_per_s", repair_rate},
                   {"repair_vs_put", repair_rate / put_rate}};
    if (!opt.json) {
      std::printf(
          "\n2. real processes: %d nodes on loopback (period 0.5 s), RS(4,2), %zu MiB in %llu "
          "packs; one node killed\n\n",
          opt.nodes, opt.data_mib, static_cast<unsigned long long>(r.packs));
      std::printf("  kill -> dead in a member list  %6.2f s\n", r.detect_seconds);
      std::printf(
          "  shardfs repair --now           %6.2f s  (%llu shards rebuilt: %.0f MB "
          "fetched, %.0f MB stored)\n",
          r.repair_seconds, static_cast<unsigned long long>(r.shards_rebuilt),
          static_cast<double>(r.bytes_fetched) / mb, static_cast<double>(r.bytes_stored) / mb);
      std::printf("  kill -> every pack full again  %6.2f s\n",
                  r.detect_seconds + r.repair_seconds);
      std::printf("  repair moved %.0f MB/s of shards; the put sent %.0f MB/s of shards: %.2fx\n",
                  repair_rate, put_rate, repair_rate / put_rate);
    }
  }
  if (opt.json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace
}  // namespace shardfs::bench

int main(int argc, char** argv) {
  shardfs::bench::Options opt;
  CLI::App app{"shardfs bench/network: gossip at scale (simulated) and repair after a kill"};
  app.add_option("--shardfs", opt.shardfs, "The shardfs binary")->capture_default_str();
  app.add_option("--dir", opt.dir, "Parent of the temporary folder");
  app.add_option("--sizes", opt.sizes, "Members simulated, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(2, 20000))
      ->capture_default_str();
  app.add_option("--loss-periods", opt.loss_periods, "Periods of the 5% loss run")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--nodes", opt.nodes, "Node processes (k + m + 1 at least)")
      ->check(CLI::Range(7, 32))
      ->capture_default_str();
  app.add_option("--data-mib", opt.data_mib, "Data put before the kill, MiB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  bool no_sim = false, no_real = false;
  app.add_flag("--no-sim", no_sim, "Skip the simulation");
  app.add_flag("--no-real", no_real, "Skip the run with real processes");
  app.add_flag("--keep", opt.keep, "Keep the temporary folder");
  app.add_flag("--json", opt.json, "Print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  opt.sim = !no_sim;
  opt.real = !no_real;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return shardfs::bench::RunWatched("bench/network", [&] { return shardfs::bench::Run(opt); });
}
