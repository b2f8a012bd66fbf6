#include "backend/slot.h"

#include <gtest/gtest.h>

#include "base/file.h"
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

namespace shardfs::backend {
namespace {

// tests/golden/slot_v1.bin was written by an independent implementation (Python with the
// cryptography package) from the seed 01 02 .. 20, sequence 7 and value "golden head
// pointer". Nodes keep records like it; this build must keep reading them and (ed25519 being
// deterministic) write the same bytes.
TEST(SlotRecordTest, GoldenV1) {
  ASSERT_OK_AND_ASSIGN(
      Bytes golden, ReadFile(std::string(SHARDFS_SOURCE_DIR) + "/tests/golden/slot_v1.bin", 4096));
  ASSERT_OK_AND_ASSIGN(SlotRecord r, VerifySlotRecord(golden));
  EXPECT_EQ(r.owner.ToHex(), "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664");
  EXPECT_EQ(r.sequence, 7u);
  EXPECT_EQ(r.value, ToBytes("golden head pointer"));
  crypto::SecretKey seed;
  for (size_t i = 0; i < 32; ++i) seed.mutable_data()[i] = static_cast<uint8_t>(i + 1);
  ASSERT_OK_AND_ASSIGN(Bytes again, SignSlotRecord(crypto::SigningKey::FromSeed(seed), 7,
                                                   ToBytes("golden head pointer")));
  EXPECT_EQ(again, golden);
}

}  // namespace
}  // namespace shardfs::backend
