#include "net/auth.h"

#include <gtest/gtest.h>

#include "crypto/merkle.h"
#include "tests/testutil.h"

namespace shardfs::net {
namespace {

class AuthTest : public ::testing::Test {
 protected:
  crypto::SigningKey node_ = crypto::SigningKey::Generate();
  NodeId node_id_ = crypto::NodeIdOf(node_.public_key());
  crypto::SigningKey owner_ = crypto::SigningKey::Generate();
  ShardId root_ = crypto::MerkleRoot({});
  static constexpr int64_t kNow = 1'800'000'000;

  static std::string Get(const Headers& h, std::string_view name) {
    for (const auto& [k, v] : h) {
      if (k == name) return v;
    }
    return "";
  }
  Result<VerifiedRequest> Check(RequestVerifier& v, const Headers& h, std::string_view method,
                                std::string_view target, int64_t now = kNow) {
    return v.Verify(
        method, target, [&](std::string_view n) { return Get(h, n); }, now);
  }
};

TEST_F(AuthTest, SignedRequestVerifiesOnce) {
  RequestVerifier v(node_id_, {});
  Headers h = SignRequest(owner_, node_id_, "GET", "/v1/shards/ab?x=1", root_, kNow);
  ASSERT_OK_AND_ASSIGN(VerifiedRequest r, Check(v, h, "GET", "/v1/shards/ab?x=1"));
  EXPECT_EQ(r.caller, owner_.public_key());
  EXPECT_EQ(r.body_root, root_);
  auto again = Check(v, h, "GET", "/v1/shards/ab?x=1");
  EXPECT_EQ(again.status().code(), Code::kPermissionDenied);
  EXPECT_NE(again.status().message().find("replayed"), std::string::npos);
}

TEST_F(AuthTest, AnyChangeBreaksTheSignature) {
  RequestVerifier v(node_id_, {});
  Headers h = SignRequest(owner_, node_id_, "PUT", "/v1/shards/ab", root_, kNow);
  EXPECT_EQ(Check(v, h, "DELETE", "/v1/shards/ab").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(Check(v, h, "PUT", "/v1/shards/ac").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(Check(v, h, "PUT", "/v1/shards/ab?q").status().code(), Code::kPermissionDenied);
  RequestVerifier other(crypto::NodeIdOf(crypto::SigningKey::Generate().public_key()), {});
  EXPECT_EQ(Check(other, h, "PUT", "/v1/shards/ab").status().code(), Code::kPermissionDenied);
  for (std::string_view field :
       {kKeyHeader, kTimeHeader, kNonceHeader, kBodyHeader, kSignatureHeader}) {
    Headers bad = h;
    for (auto& [k, val] : bad) {
      if (k == field) val[val.size() - 1] = val.back() == '1' ? '2' : '1';
    }
    EXPECT_EQ(Check(v, bad, "PUT", "/v1/shards/ab").status().code(), Code::kPermissionDenied)
        << field;
    Headers missing;
    for (auto& kv : h) {
      if (kv.first != field) missing.push_back(kv);
    }
    EXPECT_EQ(Check(v, missing, "PUT", "/v1/shards/ab").status().code(), Code::kPermissionDenied)
        << field;
  }
  // The untouched request still verifies.
  EXPECT_OK(Check(v, h, "PUT", "/v1/shards/ab"));
}

TEST_F(AuthTest, TimeWindow) {
  VerifierOptions o;
  o.max_skew_seconds = 60;
  RequestVerifier v(node_id_, o);
  EXPECT_OK(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow - 60), "GET", "/a"));
  EXPECT_OK(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow + 60), "GET", "/a"));
  EXPECT_EQ(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow - 61), "GET", "/a")
                .status()
                .code(),
            Code::kPermissionDenied);
  EXPECT_EQ(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow + 61), "GET", "/a")
                .status()
                .code(),
            Code::kPermissionDenied);
  Headers h = SignRequest(owner_, node_id_, "GET", "/a", root_, kNow);
  for (const char* t : {"-5", "+1800000000", "1.8e9", "", "18000000000000000000", "0x1"}) {
    Headers bad = h;
    for (auto& [k, val] : bad) {
      if (k == kTimeHeader) val = t;
    }
    EXPECT_EQ(Check(v, bad, "GET", "/a").status().code(), Code::kPermissionDenied) << t;
  }
}

TEST_F(AuthTest, ReplayMemoryIsBoundedAndForgetsStaleSignatures) {
  VerifierOptions o;
  o.max_skew_seconds = 10;
  o.replay_capacity = 3;
  RequestVerifier v(node_id_, o);
  for (int i = 0; i < 3; ++i) {
    EXPECT_OK(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow), "GET", "/a"));
  }
  EXPECT_EQ(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow), "GET", "/a")
                .status()
                .code(),
            Code::kUnavailable);
  EXPECT_EQ(v.remembered(), 3u);
  // Eleven seconds later the old ones are stale, so they are forgotten.
  EXPECT_OK(Check(v, SignRequest(owner_, node_id_, "GET", "/a", root_, kNow + 11), "GET", "/a",
                  kNow + 11));
  EXPECT_EQ(v.remembered(), 1u);
}

}  // namespace
}  // namespace shardfs::net
