// A chaos test of bounded duration (issue 6): a drive with RS(4,2) over 8 real `shardfs node`
// processes on loopback, taking care of itself as a mount does (member list, audits, repair).
// While a workload writes new files and reads back acknowledged ones through the engine
// (backend::Drive over net::HttpPeer), a driver kills (SIGKILL) and restarts nodes, stops and
// continues them (SIGSTOP: a node that drops all traffic and answers nothing), and stops them
// gracefully (SIGTERM, a leave) and restarts them, never more than m = 2 at once. Network
// namespaces are not used: process stops stand in for dropped traffic. At the end every node
// comes back, and every file the drive acknowledged reads back byte for byte; no read during
// the chaos returned wrong bytes. The test prints what it did and how many operations it
// checked. SHARDFS_CHAOS_SECONDS sets the chaos's length (default 45).

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backend/drive.h"
#include "crypto/sign.h"
#include "net/http_membership.h"
#include "net/http_peer.h"
#include "tests/node_process.h"
#include "tests/testutil.h"

#ifndef SHARDFS_BINARY
#error "SHARDFS_BINARY must name the shardfs executable (set by tests/CMakeLists.txt)"
#endif

namespace shardfs {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 8;
constexpr int kMaxDisrupted = 2;  // m

class ChaosNodes {
 public:
  explicit ChaosNodes(const std::string& dir) : dir_(dir) {}

  Status StartAll() {
    for (int i = 0; i < kNodes; ++i) {
      SFS_RETURN_IF_ERROR(Start(i, "127.0.0.1:0", i == 0 ? "" : addresses_[0]));
      addresses_.push_back(nodes_[static_cast<size_t>(i)]->address().ToString());
    }
    return Status::Ok();
  }
  // (Re)starts node i on `listen` with its data folder, joining through `join` if not empty.
  Status Start(int i, const std::string& listen, const std::string& join) {
    std::string run = dir_ + "/n" + std::to_string(i);
    std::filesystem::create_directories(run);
    test::NodeProcessOptions o;
    o.binary = SHARDFS_BINARY;
    o.data = run + "/data";
    o.run_dir = run;
    o.listen = listen;
    o.args = {"--capacity",
              "2G",
              "--reserve",
              "0",
              "--scrub-rate",
              "0",
              "--gossip-period",
              "0.3",
              "--gossip-ping-timeout",
              "0.15",
              "--push-pull-interval",
              "3",
              "--leave-linger",
              "0.3"};
    if (!join.empty()) {
      o.args.push_back("--join");
      o.args.push_back(join);
    }
    auto p = std::make_unique<test::NodeProcess>(o);
    SFS_RETURN_IF_ERROR(p->Start());
    if (nodes_.size() <= static_cast<size_t>(i)) nodes_.resize(static_cast<size_t>(i) + 1);
    nodes_[static_cast<size_t>(i)] = std::move(p);
    return Status::Ok();
  }
  // Restarts node i where the drive knows it, joining through the next node.
  Status Restart(int i) { return Start(i, address(i), address((i + 1) % kNodes)); }
  test::NodeProcess& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  const std::string& address(int i) const { return addresses_[static_cast<size_t>(i)]; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<test::NodeProcess>> nodes_;
  std::vector<std::string> addresses_;
};

struct Acked {
  std::string name;
  backend::Ino ino = 0;
  uint64_t seed = 0;
  size_t size = 0;
};

TEST(ChaosTest, EveryAcknowledgedFileSurvivesNodesDyingStoppingAndLeaving) {
  int seconds = 45;
  if (const char* s = std::getenv("SHARDFS_CHAOS_SECONDS")) seconds = std::max(5, std::atoi(s));
  test::TempDir dir;
  ChaosNodes nodes(dir.path());
  ASSERT_OK(nodes.StartAll());

  // The drive, as a mount opens it: care on, a short grace so that repair happens within the
  // test.
  crypto::MasterKey master = crypto::MasterKey::Generate();
  auto owner = std::make_shared<const crypto::SigningKey>(crypto::SigningKey::ForOwner(master));
  backend::DriveOptions o;
  o.config.k = 4;
  o.config.m = 2;
  o.master = master;
  std::vector<net::HostPort> addresses;
  for (int i = 0; i < kNodes; ++i) {
    addresses.push_back(nodes.node(i).address());
    ASSERT_OK_AND_ASSIGN(
        auto peer, net::HttpPeer::Connect(nodes.node(i).address(), owner, net::HttpPeerOptions{}));
    o.config.nodes.push_back({nodes.address(i), peer->node_id()});
    o.peers.push_back(std::move(peer));
  }
  o.catalog_path = dir.path() + "/catalog.db";
  o.staging_dir = dir.path() + "/staging";
  o.membership = std::make_shared<net::HttpMembership>(addresses);
  o.care = true;
  o.membership_interval = 1s;
  o.repair.interval = 2s;
  o.repair.dead_grace = 3s;
  o.audit.rate = 1 << 20;
  o.pipeline.threads = 2;
  o.uploader.quiet = 50ms;
  ASSERT_OK_AND_ASSIGN(auto drive, backend::Drive::Open(o));

  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes_ok{0}, writes_failed{0}, reads_ok{0}, reads_failed{0},
      wrong_bytes{0};

  std::thread workload([&] {
    std::mt19937_64 rng(7);
    for (uint64_t n = 0; !stop; ++n) {
      // A new file (1 KiB to 1.5 MiB), then a read of an acknowledged one.
      Acked a;
      a.name = "f" + std::to_string(n);
      a.seed = n + 1;
      a.size = 1024 + rng() % (1536 * 1024);
      auto made = drive->catalog().CreateFile(backend::kRootIno, a.name, {});
      if (!made.ok()) {
        ++writes_failed;
        continue;
      }
      a.ino = made->ino;
      Bytes data = test::PseudoRandomBytes(a.size, a.seed);
      if (drive->WriteWholeFile(a.ino, data).ok()) {
        ++writes_ok;
        std::lock_guard<std::mutex> lock(mu);
        acked.push_back(a);
      } else {
        ++writes_failed;
      }
      Acked r;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (acked.empty()) continue;
        r = acked[rng() % acked.size()];
      }
      Bytes want = test::PseudoRandomBytes(r.size, r.seed);
      Bytes got(r.size);
      auto read = drive->Read(r.ino, 0, got);
      if (!read.ok()) {
        ++reads_failed;
      } else if (*read != r.size || got != want) {
        ++wrong_bytes;
      } else {
        ++reads_ok;
      }
    }
  });

  // The driver: an action every 1.5 to 3 s; a disrupted node is restored 2 to 6 s later.
  struct Disrupted {
    int node;
    int kind;  // 0 killed, 1 stopped, 2 left
    Clock::time_point until;
  };
  std::vector<Disrupted> disrupted;
  std::vector<std::string> log;
  std::mt19937_64 rng(11);
  int kills = 0, stops = 0, leaves = 0;
  auto restore = [&](const Disrupted& d) {
    if (d.kind == 1) {
      ::kill(nodes.node(d.node).pid(), SIGCONT);
      log.push_back("SIGCONT node " + std::to_string(d.node));
    } else {
      Status s = nodes.Restart(d.node);
      log.push_back("restart node " + std::to_string(d.node) + (s.ok() ? "" : ": " + s.ToString()));
      EXPECT_OK(s);
    }
  };
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    auto now = Clock::now();
    for (auto it = disrupted.begin(); it != disrupted.end();) {
      if (now >= it->until) {
        restore(*it);
        it = disrupted.erase(it);
      } else {
        ++it;
      }
    }
    if (static_cast<int>(disrupted.size()) >= kMaxDisrupted) continue;
    int victim;
    do {
      victim = static_cast<int>(rng() % kNodes);
    } while (std::any_of(disrupted.begin(), disrupted.end(),
                         [&](const Disrupted& d) { return d.node == victim; }));
    int kind = static_cast<int>(rng() % 3);
    test::NodeProcess& p = nodes.node(victim);
    if (kind == 0) {
      (void)p.Stop(SIGKILL, 10s);
      ++kills;
      log.push_back("SIGKILL node " + std::to_string(victim));
    } else if (kind == 1) {
      ::kill(p.pid(), SIGSTOP);
      ++stops;
      log.push_back("SIGSTOP node " + std::to_string(victim));
    } else {
      (void)p.Stop(SIGTERM, 10s);
      ++leaves;
      log.push_back("SIGTERM (leave) node " + std::to_string(victim));
    }
    disrupted.push_back({victim, kind, now + std::chrono::milliseconds(2000 + rng() % 4000)});
  }
  for (const auto& d : disrupted) restore(d);
  disrupted.clear();
  stop = true;
  workload.join();

  // Everything acknowledged reads back, byte for byte.
  ASSERT_OK(drive->Sync(120s));
  uint64_t verified = 0;
  for (const Acked& a : acked) {
    Bytes got(a.size);
    auto read = drive->Read(a.ino, 0, got);
    ASSERT_OK(read.status()) << a.name;
    ASSERT_EQ(*read, a.size) << a.name;
    ASSERT_EQ(got, test::PseudoRandomBytes(a.size, a.seed)) << a.name;
    ++verified;
  }
  auto durability = drive->repairer().Survey();
  ASSERT_OK(durability.status());

  std::printf("chaos for %d s: %d kills, %d stops, %d leaves (at most %d nodes at once)\n", seconds,
              kills, stops, leaves, kMaxDisrupted);
  for (const auto& line : log) std::printf("  %s\n", line.c_str());
  std::printf(
      "workload: %llu files written and acknowledged (%llu writes refused), %llu reads "
      "verified, %llu reads failed cleanly, %llu wrong\n",
      static_cast<unsigned long long>(writes_ok.load()),
      static_cast<unsigned long long>(writes_failed.load()),
      static_cast<unsigned long long>(reads_ok.load()),
      static_cast<unsigned long long>(reads_failed.load()),
      static_cast<unsigned long long>(wrong_bytes.load()));
  std::printf(
      "at the end: %llu acknowledged files verified; %llu packs, %llu full, %llu "
      "endangered, %llu unreadable\n",
      static_cast<unsigned long long>(verified), static_cast<unsigned long long>(durability->packs),
      static_cast<unsigned long long>(durability->full),
      static_cast<unsigned long long>(durability->endangered),
      static_cast<unsigned long long>(durability->lost));
  EXPECT_EQ(wrong_bytes.load(), 0u);
  EXPECT_GT(writes_ok.load(), 0u);
  EXPECT_GT(kills + stops + leaves, 0);
  EXPECT_EQ(durability->lost, 0u);
}

}  // namespace
}  // namespace shardfs
