#include "net/gossip.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tests/gossip_sim.h"
#include "tests/testutil.h"

namespace shardfs::net {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::GossipSim;
using test::GossipSimOptions;

GossipSimOptions Sim(int nodes) {
  GossipSimOptions o;
  o.nodes = nodes;
  o.gossip.period = milliseconds(1000);
  o.gossip.ping_timeout = milliseconds(300);
  return o;
}

// The bounds the protocol gives (docs/network.md, "Detection bounds"): every node probes every
// member within 2n - 3 periods (a shuffled round robin), and a probe takes one period; a
// suspect is dead one suspicion timeout after a node suspects it.
milliseconds SuspectBound(const GossipOptions& o, int n) { return o.period * (2 * n - 2); }

int Alive(GossipSim& sim, int subject) { return sim.CountSeeing(subject, MemberState::kAlive); }

TEST(GossipTest, NodesJoiningThroughOneLearnAllOthers) {
  GossipSimOptions o = Sim(10);
  o.full_membership = false;
  GossipSim sim(o);
  bool all = sim.RunUntil(
      [&] {
        for (int i = 0; i < sim.size(); ++i) {
          if (sim.node(i).Members().size() != 10) return false;
        }
        return true;
      },
      seconds(60));
  ASSERT_TRUE(all);
  for (int i = 0; i < sim.size(); ++i) EXPECT_EQ(Alive(sim, i), 9) << i;
}

TEST(GossipTest, AHealthyNetworkSuspectsNoOne) {
  GossipSim sim(Sim(10));
  sim.Run(seconds(120));
  for (int i = 0; i < sim.size(); ++i) {
    EXPECT_EQ(Alive(sim, i), 9) << i;
    EXPECT_EQ(sim.node(i).counters().suspicions, 0u);
  }
  // One ping and one ack per node per period; besides, only the spreading of the records
  // that nodes sign anew as their coordinates settle.
  uint64_t gossip = 0;
  for (int i = 0; i < sim.size(); ++i) gossip += sim.node(i).counters().gossip_packets;
  double probing = static_cast<double>(sim.PacketsSent() - gossip) / 10 / 120;
  EXPECT_NEAR(probing, 2.0, 0.1);
  EXPECT_LT(static_cast<double>(gossip) / 10 / 120, 1.0);
}

TEST(GossipTest, ACrashedNodeIsSuspectedThenDeclaredDeadWithinTheBounds) {
  const int n = 10;
  GossipSimOptions o = Sim(n);
  GossipSim sim(o);
  sim.Run(seconds(5));
  sim.Crash(3);
  auto t0 = sim.elapsed();
  ASSERT_TRUE(sim.RunUntil(
      [&] {
        return sim.CountSeeing(3, MemberState::kSuspect) + sim.CountSeeing(3, MemberState::kDead) ==
               n - 1;
      },
      SuspectBound(o.gossip, n)));
  auto suspected = sim.elapsed() - t0;
  ASSERT_TRUE(sim.RunUntil(
      [&] { return sim.CountSeeing(3, MemberState::kDead) == n - 1; },
      SuspectBound(o.gossip, n) + sim.node(0).SuspicionTimeout() + o.gossip.period - suspected));
  // Everyone else stayed alive in everyone's view.
  for (int i = 0; i < n; ++i) {
    if (i != 3) {
      EXPECT_EQ(Alive(sim, i), n - 2) << i;
    }
  }
}

TEST(GossipTest, AStoppedNodeRefutesWhenItResumes) {
  const int n = 10;
  GossipSimOptions o = Sim(n);
  GossipSim sim(o);
  sim.Run(seconds(5));
  sim.Stop(4);
  ASSERT_TRUE(
      sim.RunUntil([&] { return sim.CountSeeing(4, MemberState::kDead) == n - 1; }, seconds(60)));
  uint64_t inc_before = sim.node(4).Find(sim.id(4))->incarnation;
  sim.Resume(4);
  ASSERT_TRUE(sim.RunUntil([&] { return Alive(sim, 4) == n - 1; }, seconds(30)));
  EXPECT_GT(sim.node(4).Find(sim.id(4))->incarnation, inc_before);
  EXPECT_GE(sim.node(4).counters().refutations, 1u);
  EXPECT_GE(sim.node(4).counters().stalls, 1u);
  // The resumed node blamed no one for its own standstill.
  EXPECT_EQ(sim.node(4).counters().suspicions, 0u);
  for (int i = 0; i < n; ++i) EXPECT_EQ(Alive(sim, i), n - 1) << i;
}

TEST(GossipTest, AGracefulLeaveIsSeenAsALeaveNotAFailure) {
  const int n = 8;
  GossipSim sim(Sim(n));
  sim.Run(seconds(3));
  sim.Leave(2);
  ASSERT_TRUE(
      sim.RunUntil([&] { return sim.CountSeeing(2, MemberState::kLeft) == n - 1; }, seconds(10)));
  sim.Crash(2);  // the process exits after announcing
  sim.Run(seconds(60));
  EXPECT_EQ(sim.CountSeeing(2, MemberState::kLeft), n - 1);
  for (int i = 0; i < n; ++i) EXPECT_EQ(sim.node(i).counters().suspicions, 0u) << i;
}

TEST(GossipTest, IndirectPingsKeepAMemberAliveAcrossOneCutLink) {
  const int n = 6;
  GossipSim sim(Sim(n));
  sim.Cut(0, 1);
  sim.Run(seconds(60));
  EXPECT_EQ(Alive(sim, 1), n - 1);
  EXPECT_EQ(Alive(sim, 0), n - 1);
  EXPECT_GT(sim.node(0).counters().indirect_probes, 0u);
  EXPECT_EQ(sim.node(0).counters().suspicions, 0u);
}

TEST(GossipTest, FewFalseSuspicionsUnderLossAndNoFalseDeaths) {
  GossipSimOptions o = Sim(20);
  o.loss = 0.05;
  GossipSim sim(o);
  sim.Run(seconds(300));
  for (int i = 0; i < sim.size(); ++i) {
    EXPECT_EQ(sim.CountSeeing(i, MemberState::kDead), 0) << i;
  }
}

TEST(GossipTest, ARestartedNodeWithAHigherIncarnationIsAliveAgain) {
  const int n = 6;
  GossipSim sim(Sim(n));
  sim.Run(seconds(2));
  sim.Crash(5);
  ASSERT_TRUE(
      sim.RunUntil([&] { return sim.CountSeeing(5, MemberState::kDead) == n - 1; }, seconds(60)));
  // The same identity comes back (a restart): a record signed with a newer incarnation, as a
  // join would send it, brings it back for everyone.
  auto key = crypto::SigningKey::Generate();
  MemberRecord fields;
  fields.address = "10.0.0.77:7070";
  ASSERT_OK_AND_ASSIGN(MemberRecord rec, SignMemberRecord(key, fields));
  ASSERT_OK(sim.node(0).Merge(rec.encoded, sim.now()));
  EXPECT_EQ(sim.node(0).Find(rec.id)->state, MemberState::kAlive);
  sim.Run(seconds(20));
  // Node 0 passed the record on; the new member, which never answers (no process), is then
  // suspected and declared dead in its turn.
  EXPECT_TRUE(sim.node(1).Find(rec.id).has_value());
}

// Records and packets from a liar.
TEST(GossipTest, AForgedRecordIsRejected) {
  GossipSim sim(Sim(4));
  sim.Run(seconds(2));
  auto victim = sim.node(1).Records().front();
  // The victim's record with another address and the original signature.
  Bytes forged = victim->encoded;
  ASSERT_GT(forged.size(), 48u);
  forged[47] ^= 0x01;  // first byte of the address
  Status s = sim.node(0).Merge(forged, sim.now());
  EXPECT_FALSE(s.ok());
  // A newer incarnation, signed by another key.
  auto liar = crypto::SigningKey::Generate();
  MemberRecord fields;
  fields.address = "10.6.6.6:7070";
  fields.incarnation = victim->incarnation + 100;
  ASSERT_OK_AND_ASSIGN(MemberRecord own, SignMemberRecord(liar, fields));
  Bytes swapped = own.encoded;
  std::copy(victim->id.span().begin(), victim->id.span().end(), swapped.begin() + 6);
  EXPECT_EQ(sim.node(0).Merge(swapped, sim.now()).code(), Code::kPermissionDenied);
  EXPECT_EQ(sim.node(0).Find(victim->id)->record->address, victim->address);
  EXPECT_EQ(sim.node(0).counters().records_rejected, 2u);
}

TEST(GossipTest, MalformedPacketsChangeNothing) {
  auto key = crypto::SigningKey::Generate();
  GossipSelf self{"127.0.0.1:7000", 100, 50};
  auto t = std::chrono::steady_clock::time_point() + seconds(10);
  ASSERT_OK_AND_ASSIGN(auto g, Gossip::Create(key, self, GossipOptions{}, 1, 7, t));
  // A real ping from another node, then every truncation and a flipped byte at each place.
  auto other_key = crypto::SigningKey::Generate();
  GossipSelf other_self{"127.0.0.1:7001", 100, 50};
  ASSERT_OK_AND_ASSIGN(auto other, Gossip::Create(other_key, other_self, GossipOptions{}, 1, 8, t));
  ASSERT_OK(other->Merge(g->Records().front()->encoded, t));
  // Its first tick probes us (a ping) and spreads the news of us (a gossip packet).
  auto out = other->Tick(t);
  ASSERT_EQ(out.size(), 2u);
  Bytes ping = out[0].bytes;
  for (size_t len = 0; len < ping.size(); ++len) {
    auto r = g->Receive(ByteSpan(ping.data(), len), "127.0.0.1:7001", t);
    EXPECT_TRUE(r.empty()) << len;
  }
  EXPECT_EQ(g->counters().bad_packets, ping.size());
  EXPECT_EQ(g->Members().size(), 1u);
  Bytes longer = ping;
  longer.push_back(0);
  EXPECT_TRUE(g->Receive(longer, "127.0.0.1:7001", t).empty());
  // The whole packet is answered with an ack.
  auto acks = g->Receive(ping, "127.0.0.1:7001", t);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].address, "127.0.0.1:7001");
}

TEST(GossipTest, OptionsAreChecked) {
  GossipOptions o;
  EXPECT_OK(ValidateGossipOptions(o));
  o.ping_timeout = o.period;
  EXPECT_FALSE(ValidateGossipOptions(o).ok());
  o = GossipOptions{};
  o.indirect_fanout = 17;
  EXPECT_FALSE(ValidateGossipOptions(o).ok());
  o = GossipOptions{};
  o.suspicion_mult = 0.5;
  EXPECT_FALSE(ValidateGossipOptions(o).ok());
  o = GossipOptions{};
  o.period = milliseconds(5);
  EXPECT_FALSE(ValidateGossipOptions(o).ok());
  auto t = std::chrono::steady_clock::time_point();
  EXPECT_FALSE(Gossip::Create(crypto::SigningKey::Generate(), GossipSelf{"no port", 1, 1},
                              GossipOptions{}, 1, 1, t)
                   .ok());
}

TEST(GossipTest, CoordinatesPredictTheSimulatedDelays) {
  // Three sites; a node's one-way delay to another: half the distance between the sites plus
  // each node's access delay.
  const int n = 12;
  GossipSimOptions o = Sim(n);
  o.gossip.period = milliseconds(200);
  o.gossip.ping_timeout = milliseconds(150);
  double site_ms[3][3] = {{0.2, 20, 45}, {20, 0.2, 30}, {45, 30, 0.2}};
  auto access = [](int i) { return 0.5 + (i % 4) * 1.5; };
  auto rtt = [&](int a, int b) { return site_ms[a % 3][b % 3] + 2 * (access(a) + access(b)) / 2; };
  o.delay_ms = [&](int a, int b) { return rtt(a, b) / 2; };
  GossipSim sim(o);
  sim.Run(seconds(600));
  int pairs = 0, good = 0;
  for (int a = 0; a < n; ++a) {
    for (int b = a + 1; b < n; ++b) {
      ++pairs;
      double p = backend::PredictRtt(sim.node(a).coordinate(), sim.node(b).coordinate());
      if (std::abs(p - rtt(a, b)) <= 0.25 * rtt(a, b)) ++good;
    }
  }
  EXPECT_GE(good * 10, pairs * 8) << good << " of " << pairs << " within 25%";
}

}  // namespace
}  // namespace shardfs::net
