#include "backend/slot.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

TEST(SlotRecordTest, SignAndVerifyRoundTrip) {
  auto key = crypto::SigningKey::Generate();
  Bytes value = ToBytes("head pointer");
  ASSERT_OK_AND_ASSIGN(Bytes rec, SignSlotRecord(key, 42, value));
  EXPECT_EQ(rec.size(), kSlotRecordOverhead + value.size());
  ASSERT_OK_AND_ASSIGN(SlotRecord r, VerifySlotRecord(rec));
  EXPECT_EQ(r.owner, key.public_key());
  EXPECT_EQ(r.sequence, 42u);
  EXPECT_EQ(r.value, value);
}

TEST(SlotRecordTest, EmptyAndLargestValues) {
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes empty, SignSlotRecord(key, 1, {}));
  EXPECT_OK(VerifySlotRecord(empty));
  Bytes big(kMaxSlotValue, 7);
  ASSERT_OK_AND_ASSIGN(Bytes largest, SignSlotRecord(key, 1, big));
  EXPECT_OK(VerifySlotRecord(largest));
  big.push_back(0);
  EXPECT_EQ(SignSlotRecord(key, 1, big).status().code(), Code::kOutOfRange);
}

TEST(SlotRecordTest, EveryFlippedByteIsRejected) {
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes rec, SignSlotRecord(key, 7, ToBytes("v")));
  for (size_t i = 0; i < rec.size(); ++i) {
    Bytes bad = rec;
    bad[i] ^= 0x01;
    EXPECT_FALSE(VerifySlotRecord(bad).ok()) << "byte " << i;
  }
  EXPECT_EQ(VerifySlotRecord(ByteSpan(rec).first(rec.size() - 1)).status().code(),
            Code::kInvalidArgument);
  Bytes longer = rec;
  longer.push_back(0);
  EXPECT_EQ(VerifySlotRecord(longer).status().code(), Code::kInvalidArgument);
  Bytes newer = rec;
  newer[4] = 2;
  EXPECT_EQ(VerifySlotRecord(newer).status().code(), Code::kNotSupported);
  EXPECT_EQ(VerifySlotRecord({}).status().code(), Code::kInvalidArgument);
}

TEST(SlotRecordTest, AnotherKeysSignatureFails) {
  auto a = crypto::SigningKey::Generate();
  auto b = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes rec, SignSlotRecord(a, 3, ToBytes("x")));
  // Put b's key in the owner field: the signature no longer matches.
  std::copy(b.public_key().span().begin(), b.public_key().span().end(), rec.begin() + 5);
  EXPECT_EQ(VerifySlotRecord(rec).status().code(), Code::kPermissionDenied);
}

}  // namespace
}  // namespace shardfs::backend
