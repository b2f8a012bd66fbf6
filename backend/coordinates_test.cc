#include "backend/coordinates.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "base/splitmix64.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

TEST(CoordinatesTest, DistanceIsEuclideanPlusHeights) {
  Coordinate a, b;
  a.vec = {3, 0, 0, 0};
  b.vec = {0, 4, 0, 0};
  a.height = 1;
  b.height = 2;
  EXPECT_DOUBLE_EQ(PredictRtt(a, b), 5 + 1 + 2);
  EXPECT_DOUBLE_EQ(PredictRtt(a, b), PredictRtt(b, a));
  EXPECT_DOUBLE_EQ(PredictRtt(a, a), 2 * a.height);
}

TEST(CoordinatesTest, ValidateRejectsWhatTheNetworkShouldNotSend) {
  EXPECT_OK(ValidateCoordinate(Coordinate{}));
  double bad[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                  2e6, -2e6};
  for (double x : bad) {
    Coordinate c;
    c.vec[2] = x;
    EXPECT_FALSE(ValidateCoordinate(c).ok()) << x;
    Coordinate h;
    h.height = x;
    EXPECT_FALSE(ValidateCoordinate(h).ok()) << x;
    Coordinate e;
    e.error = x;
    EXPECT_FALSE(ValidateCoordinate(e).ok()) << x;
  }
  Coordinate negative_height;
  negative_height.height = -1;
  EXPECT_FALSE(ValidateCoordinate(negative_height).ok());
}

TEST(CoordinatesTest, BadSamplesAreIgnored) {
  Vivaldi v;
  Coordinate before = v.coordinate();
  Coordinate remote;
  EXPECT_FALSE(v.Update(remote, 0));
  EXPECT_FALSE(v.Update(remote, -3));
  EXPECT_FALSE(v.Update(remote, std::numeric_limits<double>::quiet_NaN()));
  remote.height = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(v.Update(remote, 10));
  EXPECT_EQ(v.coordinate(), before);
}

TEST(CoordinatesTest, TwoHostsLearnTheirDistance) {
  Vivaldi a(VivaldiOptions{}, 1), b(VivaldiOptions{}, 2);
  for (int i = 0; i < 200; ++i) {
    Coordinate ca = a.coordinate(), cb = b.coordinate();
    a.Update(cb, 40);
    b.Update(ca, 40);
  }
  EXPECT_NEAR(PredictRtt(a.coordinate(), b.coordinate()), 40, 2);
  EXPECT_LT(a.coordinate().error, 0.2);
}

// Hosts in three sites: within a site 1-2 ms, between sites 20 to 80 ms, and each host with
// its own access delay (what a height models). After gossip-like rounds of random samples,
// most predictions are within 25% of the truth (the integration test's criterion).
TEST(CoordinatesTest, ConvergesOnASyntheticNetwork) {
  constexpr int kHosts = 30;
  struct Host {
    double x, y, access;
  };
  double sites[3][2] = {{0, 0}, {30, 0}, {10, 35}};
  std::vector<Host> hosts;
  uint64_t rng = 99;
  auto uniform = [&] { return static_cast<double>(SplitMix64Next(&rng) >> 11) / (1ull << 53); };
  for (int i = 0; i < kHosts; ++i) {
    const double* s = sites[i % 3];
    hosts.push_back({s[0] + uniform(), s[1] + uniform(), 0.5 + 5 * uniform()});
  }
  auto truth = [&](int i, int j) {
    double dx = hosts[i].x - hosts[j].x, dy = hosts[i].y - hosts[j].y;
    return std::sqrt(dx * dx + dy * dy) + hosts[i].access + hosts[j].access;
  };
  std::vector<Vivaldi> v;
  for (int i = 0; i < kHosts; ++i) v.emplace_back(VivaldiOptions{}, i + 1);
  for (int round = 0; round < 300; ++round) {
    for (int i = 0; i < kHosts; ++i) {
      int j = static_cast<int>(SplitMix64Next(&rng) % kHosts);
      if (j == i) continue;
      // A little measurement noise, as real pings have.
      double rtt = truth(i, j) * (0.95 + 0.1 * uniform());
      v[i].Update(v[j].coordinate(), rtt);
    }
  }
  int pairs = 0, good = 0;
  for (int i = 0; i < kHosts; ++i) {
    for (int j = i + 1; j < kHosts; ++j) {
      ++pairs;
      double p = PredictRtt(v[i].coordinate(), v[j].coordinate());
      if (std::abs(p - truth(i, j)) <= 0.25 * truth(i, j)) ++good;
    }
  }
  EXPECT_GE(good, pairs * 9 / 10) << good << " of " << pairs << " within 25%";
}

TEST(CoordinatesTest, ResetTakesOnlyValidCoordinates) {
  Vivaldi v;
  Coordinate saved;
  saved.vec = {1, 2, 3, 4};
  saved.height = 5;
  saved.error = 0.3;
  v.Reset(saved);
  EXPECT_EQ(v.coordinate(), saved);
  Coordinate bad = saved;
  bad.vec[0] = std::numeric_limits<double>::quiet_NaN();
  v.Reset(bad);
  EXPECT_EQ(v.coordinate(), saved);
}

TEST(RttFilterTest, MedianOfTheLastThree) {
  RttFilter f;
  NodeId a = NodeId::FromHex(std::string(64, 'a')).value();
  NodeId b = NodeId::FromHex(std::string(64, 'b')).value();
  EXPECT_FALSE(f.Median(a).has_value());
  EXPECT_EQ(f.Add(a, 10), 10);
  EXPECT_EQ(f.Add(a, 100), 100);  // of {10, 100}: the upper one
  EXPECT_EQ(f.Add(a, 12), 12);
  EXPECT_EQ(f.Add(a, 11), 12);  // {100, 12, 11}
  EXPECT_EQ(f.Add(a, 13), 12);  // {12, 11, 13}
  EXPECT_FALSE(f.Median(b).has_value());
  f.Forget(a);
  EXPECT_FALSE(f.Median(a).has_value());
}

}  // namespace
}  // namespace shardfs::backend
