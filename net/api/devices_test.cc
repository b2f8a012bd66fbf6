#include "net/api/devices.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::api {
namespace {

class DevicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend::CatalogOptions o;
    o.path = dir_.path() + "/catalog.db";
    o.sync = false;
    ASSERT_OK_AND_ASSIGN(catalog_, backend::Catalog::Open(o));
    DeviceOptions d;
    d.code_ttl = std::chrono::seconds(60);
    d.max_failures_per_minute = 3;
    registry_ = std::make_unique<DeviceRegistry>(catalog_.get(), d, [this] { return now_; });
  }

  test::TempDir dir_;
  std::unique_ptr<backend::Catalog> catalog_;
  std::unique_ptr<DeviceRegistry> registry_;
  int64_t now_ = int64_t{1'000'000'000} * 1'700'000'000;
};

TEST_F(DevicesTest, ACodeIsExchangedOnceForAScopedToken) {
  ASSERT_OK_AND_ASSIGN(PairCode code, registry_->NewCode("phone", true, "/Camera"));
  EXPECT_EQ(code.code.size(), 9u);
  EXPECT_EQ(code.code[4], '-');
  EXPECT_EQ(code.root, "/Camera");
  // Lower case and without the dash is the same code.
  std::string typed = code.code.substr(0, 4) + code.code.substr(5);
  for (char& c : typed) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ASSERT_OK_AND_ASSIGN(auto paired, registry_->Pair(typed, ""));
  const auto& [device, token] = paired;
  EXPECT_EQ(device.name, "phone");
  EXPECT_TRUE(device.read_only);
  EXPECT_EQ(token.rfind("sfs_", 0), 0u);
  EXPECT_EQ(token.size(), 4u + 64u);
  // The token is not stored, only its hash.
  ASSERT_OK_AND_ASSIGN(auto all, catalog_->ListDevices());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].token_hash.size(), 32u);
  ASSERT_OK_AND_ASSIGN(Principal who, registry_->Authenticate(token));
  EXPECT_EQ(who.device_id, device.id);
  EXPECT_TRUE(who.read_only);
  EXPECT_EQ(who.root, (Names{"Camera"}));
  EXPECT_FALSE(who.Owner());
  // Used up.
  EXPECT_EQ(registry_->Pair(code.code, "again").status().code(), Code::kPermissionDenied);
  // Revoked at once.
  ASSERT_OK(registry_->Revoke(device.id).status());
  EXPECT_EQ(registry_->Authenticate(token).status().code(), Code::kPermissionDenied);
  EXPECT_EQ(registry_->Revoke(999).status().code(), Code::kNotFound);
}

TEST_F(DevicesTest, ExpiredCodesAndBadTokensAreRefused) {
  ASSERT_OK_AND_ASSIGN(PairCode code, registry_->NewCode("", false, "/"));
  now_ += int64_t{61} * 1'000'000'000;
  EXPECT_EQ(registry_->Pair(code.code, "").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(registry_->Authenticate("sfs_" + std::string(64, '0')).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(registry_->Authenticate("").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(registry_->Authenticate("nonsense").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(registry_->NewCode("x", false, "/a/../b").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(registry_->NewCode("\xff", false, "/").status().code(), Code::kInvalidArgument);
}

TEST_F(DevicesTest, FailedAttemptsAreRateLimited) {
  ASSERT_OK_AND_ASSIGN(PairCode code, registry_->NewCode("phone", false, "/"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(registry_->Pair("AAAA-AAAA", "").status().code(), Code::kPermissionDenied);
  }
  // Over the limit, even the right code waits.
  EXPECT_EQ(registry_->Pair(code.code, "").status().code(), Code::kBusy);
  now_ += int64_t{61} * 1'000'000'000;
  ASSERT_OK_AND_ASSIGN(PairCode fresh, registry_->NewCode("phone", false, "/"));
  EXPECT_OK(registry_->Pair(fresh.code, "").status());
}

TEST_F(DevicesTest, LastUseIsRecordedAtMostOncePerInterval) {
  ASSERT_OK_AND_ASSIGN(PairCode code, registry_->NewCode("phone", false, "/"));
  ASSERT_OK_AND_ASSIGN(auto paired, registry_->Pair(code.code, ""));
  ASSERT_OK(registry_->Authenticate(paired.second).status());
  ASSERT_OK_AND_ASSIGN(auto all, catalog_->ListDevices());
  EXPECT_EQ(all[0].last_used_ns, now_);
  int64_t first = now_;
  now_ += 1'000'000'000;
  ASSERT_OK(registry_->Authenticate(paired.second).status());
  ASSERT_OK_AND_ASSIGN(all, catalog_->ListDevices());
  EXPECT_EQ(all[0].last_used_ns, first);
}

}  // namespace
}  // namespace shardfs::api
