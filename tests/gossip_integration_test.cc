// Integration tests of gossip membership with real `shardfs node` processes (SHARDFS_BINARY)
// on loopback: ten nodes join through one; a SIGSTOPped node is suspected and declared dead
// by every other within the bounds its options give, and refutes once SIGCONT comes; a
// SIGTERM is a leave, not a failure; a forged record is refused. Every node is stopped by pid
// (NodeProcess), every wait is bounded.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "backend/coordinates.h"
#include "net/members_json.h"
#include "tests/node_process.h"
#include "tests/testutil.h"

#ifndef SHARDFS_BINARY
#error "SHARDFS_BINARY must name the shardfs executable (set by tests/CMakeLists.txt)"
#endif

namespace shardfs {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using net::MemberState;

constexpr int kNodes = 10;
// The gossip options the nodes run with, and what the bounds are computed from.
constexpr auto kPeriod = 300ms;
constexpr auto kPingTimeout = 150ms;
constexpr double kSuspicionMult = 4;
// What a loaded 2-core machine may add to any bound: scheduling, the polls' own period.
constexpr auto kSlack = 1500ms;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class GossipNetwork {
 public:
  // `extra(i)`: further flags for node i.
  explicit GossipNetwork(int n,
                         const std::function<std::vector<std::string>(int)>& extra = nullptr) {
    for (int i = 0; i < n; ++i) {
      std::string dir = tmp_.path() + "/n" + std::to_string(i);
      std::filesystem::create_directories(dir);
      test::NodeProcessOptions o;
      o.binary = SHARDFS_BINARY;
      o.data = dir + "/data";
      o.run_dir = dir;
      o.args = {"--capacity",
                "1G",
                "--reserve",
                "0",
                "--gossip-period",
                std::to_string(std::chrono::duration<double>(kPeriod).count()),
                "--gossip-ping-timeout",
                std::to_string(std::chrono::duration<double>(kPingTimeout).count()),
                "--gossip-suspicion-mult",
                std::to_string(kSuspicionMult),
                "--push-pull-interval",
                "5",
                "--leave-linger",
                "0.5"};
      if (i > 0) {
        o.args.push_back("--join");
        o.args.push_back(nodes_[0]->address().ToString());
      }
      if (extra) {
        for (auto& a : extra(i)) o.args.push_back(a);
      }
      nodes_.push_back(std::make_unique<test::NodeProcess>(o));
      Status s = nodes_.back()->Start();
      if (!s.ok()) {
        error_ = s.ToString();
        return;
      }
    }
  }

  const std::string& error() const { return error_; }
  test::NodeProcess& node(int i) { return *nodes_[i]; }
  int size() const { return static_cast<int>(nodes_.size()); }

  // Node i's view, or nullopt if it did not answer.
  std::optional<net::RemoteView> View(int i) {
    httplib::Client c(nodes_[i]->address().host, nodes_[i]->address().port);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(1, 0);
    auto res = c.Get("/v1/members");
    if (!res || res->status != 200) return std::nullopt;
    auto v = net::DecodeMembersView(res->body);
    if (!v.ok()) return std::nullopt;
    return *v;
  }

  // The state node `viewer` gives node `subject`, or nullopt if it does not list it.
  std::optional<MemberState> StateIn(const net::RemoteView& view, int subject) {
    for (const auto& m : view.members) {
      if (m.record.address == nodes_[subject]->address().ToString()) return m.state;
    }
    return std::nullopt;
  }

 private:
  test::TempDir tmp_;
  std::vector<std::unique_ptr<test::NodeProcess>> nodes_;
  std::string error_;
};

// Polls every running node's view of `subject` until `done(states)` or `limit`; records when
// each viewer first showed each state.
struct Observation {
  std::map<int, std::map<MemberState, Clock::duration>> first_seen;
  bool done = false;
};

Observation Watch(GossipNetwork& net, int subject, const std::vector<int>& viewers,
                  const std::function<bool(const std::map<int, MemberState>&)>& done,
                  Clock::duration limit) {
  Observation obs;
  auto start = Clock::now();
  while (Clock::now() - start < limit) {
    std::map<int, MemberState> now;
    for (int v : viewers) {
      auto view = net.View(v);
      if (!view) continue;
      auto s = net.StateIn(*view, subject);
      if (!s) continue;
      now[v] = *s;
      obs.first_seen[v].emplace(*s, Clock::now() - start);
    }
    if (done(now)) {
      obs.done = true;
      return obs;
    }
    std::this_thread::sleep_for(50ms);
  }
  return obs;
}

std::vector<int> Others(int n, int except) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) {
    if (i != except) v.push_back(i);
  }
  return v;
}

bool AllIn(const std::map<int, MemberState>& states, size_t count,
           std::initializer_list<MemberState> wanted) {
  if (states.size() != count) return false;
  for (const auto& [v, s] : states) {
    if (std::find(wanted.begin(), wanted.end(), s) == wanted.end()) return false;
  }
  return true;
}

bool Converged(GossipNetwork& net) {
  for (int i = 0; i < net.size(); ++i) {
    auto v = net.View(i);
    if (!v || v->members.size() != static_cast<size_t>(net.size())) return false;
    for (const auto& m : v->members) {
      if (m.state != MemberState::kAlive) return false;
    }
  }
  return true;
}

TEST(GossipIntegrationTest, DetectsAStoppedNodeWithinTheBoundsAndTakesItBack) {
  GossipNetwork net(kNodes);
  ASSERT_EQ(net.error(), "");
  auto join_start = Clock::now();
  ASSERT_TRUE([&] {
    while (Clock::now() - join_start < 30s) {
      if (Converged(net)) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }()) << "the ten nodes did not all see each other alive within 30 s";
  std::printf("joined: all %d nodes see each other alive after %.2f s\n", kNodes,
              Seconds(Clock::now() - join_start));

  // The bounds (docs/network.md, "Detection bounds"): each node probes each member within
  // 2n - 3 periods and a probe lasts one, so every node suspects the stopped one by itself
  // within (2n - 2) periods, gossip or not; then it is dead one suspicion timeout later.
  const auto suspect_bound = kPeriod * (2 * kNodes - 2) + kSlack;
  const auto suspicion_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      kPeriod * kSuspicionMult * std::max(1.0, std::log10(static_cast<double>(kNodes))));
  const auto dead_bound = suspect_bound + suspicion_timeout + kPeriod;
  std::printf("bounds: suspect within %.2f s, dead within %.2f s (suspicion timeout %.2f s)\n",
              Seconds(suspect_bound), Seconds(dead_bound), Seconds(suspicion_timeout));

  const int stopped = 4;
  ASSERT_EQ(::kill(net.node(stopped).pid(), SIGSTOP), 0);
  auto viewers = Others(kNodes, stopped);
  Observation obs = Watch(
      net, stopped, viewers,
      [&](const auto& s) { return AllIn(s, viewers.size(), {MemberState::kDead}); },
      dead_bound + 2s);
  ::kill(net.node(stopped).pid(), SIGCONT);
  ASSERT_TRUE(obs.done) << "not every node declared the stopped node dead";
  int saw_suspect = 0;
  for (int v : viewers) {
    auto& seen = obs.first_seen[v];
    std::optional<Clock::duration> suspected;
    for (MemberState s : {MemberState::kSuspect, MemberState::kDead}) {
      if (seen.count(s) && (!suspected || seen[s] < *suspected)) suspected = seen[s];
    }
    ASSERT_TRUE(suspected.has_value()) << "node " << v;
    ASSERT_TRUE(seen.count(MemberState::kDead)) << "node " << v;
    if (seen.count(MemberState::kSuspect)) ++saw_suspect;
    std::printf("node %d: suspect after %.2f s, dead after %.2f s\n", v, Seconds(*suspected),
                Seconds(seen[MemberState::kDead]));
    EXPECT_LE(*suspected, suspect_bound) << "node " << v;
    EXPECT_LE(seen[MemberState::kDead], dead_bound) << "node " << v;
  }
  // Suspicion comes before death (the polls may miss a short one on some nodes).
  EXPECT_GT(saw_suspect, 0);

  // SIGCONT: it hears it was declared dead, refutes with a higher incarnation, and is alive
  // again everywhere.
  Observation back = Watch(
      net, stopped, viewers,
      [&](const auto& s) { return AllIn(s, viewers.size(), {MemberState::kAlive}); }, 15s);
  EXPECT_TRUE(back.done) << "the resumed node is not alive again everywhere";
  auto self_view = net.View(stopped);
  ASSERT_TRUE(self_view.has_value());
  for (const auto& m : self_view->members) {
    if (m.self) {
      EXPECT_EQ(m.state, MemberState::kAlive);
    }
  }
  // Nothing else was lost on the way.
  for (int i = 0; i < kNodes; ++i) EXPECT_TRUE(net.node(i).Alive()) << i;
}

TEST(GossipIntegrationTest, ASigtermIsALeaveAndAForgedRecordIsRefused) {
  const int n = 8;
  GossipNetwork net(n);
  ASSERT_EQ(net.error(), "");
  auto start = Clock::now();
  while (!Converged(net) && Clock::now() - start < 30s) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(Converged(net));

  // A forged record: node 1's, with another port, under node 1's signature.
  auto view = net.View(0);
  ASSERT_TRUE(view.has_value());
  const net::MemberRecord* victim = nullptr;
  for (const auto& m : view->members) {
    if (m.record.address == net.node(1).address().ToString()) victim = &m.record;
  }
  ASSERT_NE(victim, nullptr);
  Bytes forged = victim->encoded;
  // The address's last digit (the port), before the capacity, free space and coordinate.
  size_t port_digit = 4 + 1 + 1 + 32 + 8 + 1 + victim->address.size() - 1;
  forged[port_digit] = forged[port_digit] == '1' ? '2' : '1';
  // A newer incarnation too, so it would win if it were believed.
  forged[38] ^= 0x80;
  httplib::Client c(net.node(2).address().host, net.node(2).address().port);
  auto res =
      c.Post("/v1/members", std::string(forged.begin(), forged.end()), "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << res->body;
  auto after = net.View(2);
  ASSERT_TRUE(after.has_value());
  for (const auto& m : after->members) {
    if (m.record.id == victim->id) {
      EXPECT_EQ(m.record.address, victim->address);
    }
  }
  // Not a record at all.
  res = c.Post("/v1/members", std::string("garbage"), "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;

  // SIGTERM: a leave, seen as such everywhere and never as a failure.
  const int leaver = n - 1;
  ASSERT_OK(net.node(leaver).Stop(SIGTERM, 10s));
  auto viewers = Others(n, leaver);
  Observation obs = Watch(
      net, leaver, viewers,
      [&](const auto& s) { return AllIn(s, viewers.size(), {MemberState::kLeft}); }, 10s);
  EXPECT_TRUE(obs.done) << "not every node saw the leave";
  // And it stays a leave, not a death, while the others go on probing.
  std::this_thread::sleep_for(kPeriod * 10);
  for (int v : viewers) {
    auto vv = net.View(v);
    ASSERT_TRUE(vv.has_value());
    EXPECT_EQ(net.StateIn(*vv, leaver), MemberState::kLeft) << "node " << v;
    EXPECT_FALSE(obs.first_seen[v].count(MemberState::kSuspect)) << "node " << v;
    EXPECT_FALSE(obs.first_seen[v].count(MemberState::kDead)) << "node " << v;
  }
}

// Each node sends its gossip packets late by its own delay (--test-gossip-delay-ms), so the
// round trip between two is the sum of their delays; after a while each node's coordinate
// predicts the round trips it measures within 25% for most pairs (the criterion the netns test
// applies to real links).
TEST(GossipIntegrationTest, CoordinatesLearnTheDelaysOfRealProcesses) {
  const int n = 8;
  const double delays[] = {2, 4, 8, 16, 3, 6, 12, 5};
  GossipNetwork net(n, [&](int i) {
    return std::vector<std::string>{"--test-gossip-delay-ms", std::to_string(delays[i]),
                                    "--gossip-republish", "1"};
  });
  ASSERT_EQ(net.error(), "");
  auto start = Clock::now();
  while (!Converged(net) && Clock::now() - start < 30s) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(Converged(net));
  // Some 25 s of pings: about 80 samples per node.
  std::this_thread::sleep_for(25s);
  std::vector<backend::Coordinate> own(n);
  std::vector<std::vector<std::optional<double>>> measured(n,
                                                           std::vector<std::optional<double>>(n));
  for (int a = 0; a < n; ++a) {
    auto v = net.View(a);
    ASSERT_TRUE(v.has_value());
    ASSERT_TRUE(v->coordinate.has_value());
    own[a] = *v->coordinate;
    for (const auto& m : v->members) {
      for (int b = 0; b < n; ++b) {
        if (m.record.address != net.node(b).address().ToString()) continue;
        if (!m.self) measured[a][b] = m.rtt_ms;
      }
    }
  }
  int pairs = 0, good = 0;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b || !measured[a][b]) continue;
      ++pairs;
      double predicted = backend::PredictRtt(own[a], own[b]);
      double truth = *measured[a][b];
      bool ok = std::abs(predicted - truth) <= 0.25 * truth;
      good += ok;
      std::printf("%d-%d: measured %.2f ms (delays %.0f + %.0f), predicted %.2f ms%s\n", a, b,
                  truth, delays[a], delays[b], predicted, ok ? "" : "  (off by more than 25%)");
    }
  }
  std::printf("%d of %d pairs predicted within 25%%\n", good, pairs);
  ASSERT_GT(pairs, n * (n - 1) / 2);
  EXPECT_GE(good * 10, pairs * 8);
}

}  // namespace
}  // namespace shardfs
