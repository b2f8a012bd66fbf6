#include "backend/peer_set.h"

#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "backend/memory_peer.h"
#include "crypto/sign.h"

namespace shardfs::backend {
namespace {

PeerSet MakeSet(size_t n, PeerSetOptions options = {}) {
  auto owner = crypto::SigningKey::Generate();
  std::vector<DriveNode> nodes;
  std::vector<std::shared_ptr<Peer>> peers;
  for (size_t i = 0; i < n; ++i) {
    std::array<uint8_t, 32> id{};
    id[0] = static_cast<uint8_t>(i + 1);
    nodes.push_back(DriveNode{"node" + std::to_string(i), NodeId(id)});
    peers.push_back(std::make_shared<MemoryPeer>("node" + std::to_string(i), owner.public_key(),
                                                 uint64_t{1} << 20));
  }
  return PeerSet(std::move(nodes), std::move(peers), options);
}

TEST(PeerSetTest, PlacementUsesEveryNodeOnceAndSpreadsTheFirstChoice) {
  PeerSet set = MakeSet(6);
  std::set<size_t> first;
  for (int round = 0; round < 200; ++round) {
    auto order = set.PlacementOrder();
    ASSERT_EQ(order.size(), 6u);
    EXPECT_EQ(std::set<size_t>(order.begin(), order.end()).size(), 6u);
    first.insert(order[0]);
  }
  EXPECT_EQ(first.size(), 6u);  // no node is always first
  auto order = set.PlacementOrder({1, 4});
  EXPECT_EQ(order.size(), 4u);
  for (size_t i : order) EXPECT_TRUE(i != 1 && i != 4);
}

TEST(PeerSetTest, FailingAndLyingNodesGoLast) {
  PeerSetOptions o;
  o.backoff = std::chrono::milliseconds(60000);
  PeerSet set = MakeSet(5, o);
  set.ReportBadBytes(0);
  set.ReportFailure(3);
  // The liar gets no new shards at all (its reputation fell below the threshold).
  EXPECT_FALSE(set.Healthy(0));
  for (int round = 0; round < 50; ++round) {
    auto order = set.PlacementOrder();
    ASSERT_EQ(order.size(), 4u);
    EXPECT_EQ(std::count(order.begin(), order.end(), 0u), 0);
    // One failure is not yet a back-off (backoff_after = 2).
  }
  set.ReportFailure(3);
  EXPECT_EQ(set.health(3).consecutive_failures, 2u);
  for (int round = 0; round < 50; ++round) {
    auto order = set.PlacementOrder();
    EXPECT_EQ(order[3], 3u);
  }
  set.ReportSuccess(3, std::chrono::microseconds(100));
  EXPECT_EQ(set.health(3).consecutive_failures, 0u);
  EXPECT_EQ(set.health(3).failures, 2u);
}

TEST(PeerSetTest, ReputationFallsWithFailedAuditsAndRecoversWithTime) {
  PeerSetOptions o;
  o.reputation.half_life = std::chrono::seconds(1);
  PeerSet set = MakeSet(3, o);
  EXPECT_DOUBLE_EQ(set.Reputation(0), 1.0);
  for (int i = 0; i < 3; ++i) set.ReportAudit(0, true);
  EXPECT_DOUBLE_EQ(set.Reputation(0), 1.0);
  set.ReportAudit(1, false);
  EXPECT_NEAR(set.Reputation(1), 5.0 / 15.0, 0.01);
  EXPECT_FALSE(set.Healthy(1));
  EXPECT_TRUE(set.Healthy(0));
  EXPECT_EQ(set.health(1).audits_failed, 1u);
  for (int round = 0; round < 20; ++round) {
    auto order = set.PlacementOrder();
    EXPECT_EQ(std::count(order.begin(), order.end(), 1u), 0);
  }
  // Reads go to it last.
  EXPECT_EQ(set.ReadOrder({1, 0, 2}).back(), 1u);
  // A failed transfer weighs little: one is not enough to lose a node's trust.
  set.ReportFailure(2);
  EXPECT_TRUE(set.Healthy(2));
  // Decay: after some half-lives the bad weight has faded below the threshold's reach.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_GT(set.Reputation(1), 0.5);
  EXPECT_TRUE(set.Healthy(1));
}

TEST(PeerSetTest, MembershipStatesAndCoordinates) {
  PeerSet set = MakeSet(4);
  set.SetMembership(0, NodeLiveness::kDead, std::nullopt);
  set.SetMembership(1, NodeLiveness::kLeft, std::nullopt);
  set.SetMembership(2, NodeLiveness::kSuspect, std::nullopt);
  EXPECT_FALSE(set.Healthy(0));
  EXPECT_FALSE(set.Healthy(1));
  EXPECT_TRUE(set.Healthy(2));
  for (int round = 0; round < 20; ++round) {
    auto order = set.PlacementOrder();
    EXPECT_EQ(order, (std::vector<size_t>{3, 2}));
  }
  // Without measurements, reads rank by predicted latency.
  PeerSet fresh = MakeSet(3);
  Coordinate me, near, far;
  near.vec = {1, 0, 0, 0};
  far.vec = {30, 0, 0, 0};
  fresh.SetOwnCoordinate(me);
  fresh.SetMembership(0, NodeLiveness::kAlive, far);
  fresh.SetMembership(1, NodeLiveness::kAlive, near);
  EXPECT_FALSE(fresh.PredictedRttMs(2).has_value());
  EXPECT_NEAR(*fresh.PredictedRttMs(1), 1 + me.height + near.height, 1e-9);
  EXPECT_EQ(fresh.ReadOrder({0, 1}), (std::vector<size_t>{1, 0}));
  // A measured latency wins over a prediction.
  fresh.ReportSuccess(0, std::chrono::microseconds(100));
  EXPECT_EQ(fresh.ReadOrder({0, 1}), (std::vector<size_t>{0, 1}));
}

TEST(PeerSetTest, ReadOrderPrefersLowLatency) {
  PeerSet set = MakeSet(4);
  set.ReportSuccess(0, std::chrono::microseconds(9000));
  set.ReportSuccess(1, std::chrono::microseconds(100));
  set.ReportSuccess(2, std::chrono::microseconds(3000));
  set.ReportSuccess(3, std::chrono::microseconds(50));
  set.ReportBadBytes(3);
  EXPECT_EQ(set.ReadOrder({0, 1, 2, 3}), (std::vector<size_t>{1, 2, 0, 3}));
  EXPECT_EQ(set.IndexOf(set.node(2).id), std::optional<size_t>(2));
  EXPECT_EQ(set.IndexOf(NodeId()), std::nullopt);
}

TEST(PeerSetTest, FreeSpaceWeighsPlacement) {
  PeerSet set = MakeSet(2);
  set.ReportFree(0, uint64_t{1} << 40);
  set.ReportFree(1, uint64_t{1} << 30);
  int zero_first = 0;
  for (int round = 0; round < 400; ++round) zero_first += set.PlacementOrder()[0] == 0;
  EXPECT_GT(zero_first, 360);  // weight 1 against 0.02
}

// A timeout (a node that took the request and never answered) backs the node off at the first
// one, for timeout_backoff, and makes it unresponsive meanwhile (reads do not ask it);
// ordinary failures need backoff_after in a row.
TEST(PeerSetTest, ATimeoutBacksANodeOffAtOnce) {
  PeerSetOptions o;
  o.backoff = std::chrono::milliseconds(60000);
  o.timeout_backoff = std::chrono::milliseconds(60000);
  PeerSet set = MakeSet(4, o);
  set.ReportFailure(1);
  EXPECT_FALSE(set.ShouldAvoid(1));
  EXPECT_FALSE(set.Unresponsive(1));
  set.ReportTimeout(2);
  EXPECT_TRUE(set.ShouldAvoid(2));
  EXPECT_TRUE(set.Unresponsive(2));
  EXPECT_EQ(set.health(2).failures, 1u);
  EXPECT_EQ(set.ReadOrder({2, 1, 0}), (std::vector<size_t>{1, 0, 2}));
  for (int round = 0; round < 50; ++round) EXPECT_EQ(set.PlacementOrder().back(), 2u);
  set.ReportSuccess(2, std::chrono::microseconds(100));
  EXPECT_FALSE(set.ShouldAvoid(2));
  EXPECT_FALSE(set.Unresponsive(2));

  // The back-off ends after timeout_backoff.
  o.timeout_backoff = std::chrono::milliseconds(50);
  PeerSet quick = MakeSet(2, o);
  quick.ReportTimeout(0);
  EXPECT_TRUE(quick.ShouldAvoid(0));
  EXPECT_TRUE(quick.Unresponsive(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_FALSE(quick.ShouldAvoid(0));
  EXPECT_FALSE(quick.Unresponsive(0));  // asked again
}

// Reads overtaken by a hedge are not failures (the node may be slow, not down), but
// overtaken_backoff_after of them in a row back the node off: reads stop waiting for it.
TEST(PeerSetTest, OvertakenReadsBackANodeOffWithoutFailures) {
  PeerSetOptions o;
  o.backoff = std::chrono::milliseconds(60000);
  o.overtaken_backoff_after = 3;
  PeerSet set = MakeSet(3, o);
  set.ReportOvertaken(0, std::chrono::microseconds(50000));
  EXPECT_DOUBLE_EQ(set.health(0).latency_us, 50000.0);  // raised, as a lower bound
  set.ReportOvertaken(0, std::chrono::microseconds(50000));
  EXPECT_FALSE(set.ShouldAvoid(0));
  set.ReportSuccess(0, std::chrono::microseconds(1000));  // an answer ends the run
  set.ReportOvertaken(0, std::chrono::microseconds(50000));
  set.ReportOvertaken(0, std::chrono::microseconds(50000));
  EXPECT_FALSE(set.ShouldAvoid(0));
  set.ReportOvertaken(0, std::chrono::microseconds(50000));
  EXPECT_TRUE(set.ShouldAvoid(0));
  EXPECT_EQ(set.health(0).failures, 0u);
  EXPECT_EQ(set.health(0).consecutive_failures, 0u);
  // Cancelled early (others were simply first) is neither.
  set.ReportCancelled(1, std::chrono::microseconds(500));
  set.ReportCancelled(1, std::chrono::microseconds(500));
  EXPECT_FALSE(set.ShouldAvoid(1));
}

}  // namespace
}  // namespace shardfs::backend
