#include "net/member_record.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::net {
namespace {

MemberRecord Fields() {
  MemberRecord f;
  f.incarnation = 1234567;
  f.address = "192.0.2.7:7070";
  f.capacity = uint64_t{500} << 30;
  f.free = uint64_t{123} << 30;
  f.coordinate.vec = {1.5, -2.25, 0, 3};
  f.coordinate.height = 0.75;
  f.coordinate.error = 0.4;
  return f;
}

TEST(MemberRecordTest, SignAndVerifyRoundTrip) {
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(MemberRecord rec, SignMemberRecord(key, Fields()));
  EXPECT_EQ(rec.id, crypto::NodeIdOf(key.public_key()));
  ASSERT_OK_AND_ASSIGN(MemberRecord back, VerifyMemberRecord(rec.encoded));
  EXPECT_EQ(back.id, rec.id);
  EXPECT_EQ(back.kind, MemberKind::kAlive);
  EXPECT_EQ(back.incarnation, 1234567u);
  EXPECT_EQ(back.address, "192.0.2.7:7070");
  EXPECT_EQ(back.capacity, Fields().capacity);
  EXPECT_EQ(back.free, Fields().free);
  EXPECT_EQ(back.coordinate, Fields().coordinate);
  EXPECT_EQ(back.encoded, rec.encoded);
  ASSERT_OK_AND_ASSIGN(size_t len, MemberRecordLength(rec.encoded));
  EXPECT_EQ(len, rec.encoded.size());
  MemberRecordKey k = PeekMemberRecord(rec.encoded);
  EXPECT_EQ(k.id, rec.id);
  EXPECT_EQ(k.incarnation, 1234567u);
  EXPECT_EQ(k.kind, MemberKind::kAlive);
}

TEST(MemberRecordTest, LeftRecordsRoundTrip) {
  auto key = crypto::SigningKey::Generate();
  MemberRecord f = Fields();
  f.kind = MemberKind::kLeft;
  ASSERT_OK_AND_ASSIGN(MemberRecord rec, SignMemberRecord(key, f));
  ASSERT_OK_AND_ASSIGN(MemberRecord back, VerifyMemberRecord(rec.encoded));
  EXPECT_EQ(back.kind, MemberKind::kLeft);
}

TEST(MemberRecordTest, EveryFlippedByteIsRejected) {
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(MemberRecord rec, SignMemberRecord(key, Fields()));
  for (size_t i = 0; i < rec.encoded.size(); ++i) {
    Bytes bad = rec.encoded;
    bad[i] ^= 0x01;
    EXPECT_FALSE(VerifyMemberRecord(bad).ok()) << "byte " << i;
  }
}

TEST(MemberRecordTest, TruncatedAndLongerRecordsAreRejected) {
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(MemberRecord rec, SignMemberRecord(key, Fields()));
  for (size_t len = 0; len < rec.encoded.size(); ++len) {
    EXPECT_FALSE(VerifyMemberRecord(ByteSpan(rec.encoded.data(), len)).ok()) << len;
    EXPECT_FALSE(MemberRecordLength(ByteSpan(rec.encoded.data(), len)).ok()) << len;
  }
  Bytes longer = rec.encoded;
  longer.push_back(0);
  EXPECT_EQ(VerifyMemberRecord(longer).status().code(), Code::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(size_t len, MemberRecordLength(longer));
  EXPECT_EQ(len, rec.encoded.size());
}

TEST(MemberRecordTest, BadFieldsAreNotSigned) {
  auto key = crypto::SigningKey::Generate();
  MemberRecord f = Fields();
  f.address = "";
  EXPECT_EQ(SignMemberRecord(key, f).status().code(), Code::kInvalidArgument);
  f.address = "host-without-port";
  EXPECT_EQ(SignMemberRecord(key, f).status().code(), Code::kInvalidArgument);
  f.address = std::string(251, 'a') + ":7070";  // 256 bytes
  EXPECT_EQ(SignMemberRecord(key, f).status().code(), Code::kInvalidArgument);
  f = Fields();
  f.coordinate.height = -1;
  EXPECT_EQ(SignMemberRecord(key, f).status().code(), Code::kInvalidArgument);
  f = Fields();
  f.kind = static_cast<MemberKind>(9);
  EXPECT_EQ(SignMemberRecord(key, f).status().code(), Code::kInvalidArgument);
}

TEST(MemberRecordTest, NewerVersionsAreNotSupported) {
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(MemberRecord rec, SignMemberRecord(key, Fields()));
  Bytes newer = rec.encoded;
  newer[4] = kMemberRecordVersion + 1;
  EXPECT_EQ(VerifyMemberRecord(newer).status().code(), Code::kNotSupported);
}

}  // namespace
}  // namespace shardfs::net
