#include "backend/pack.h"

#include <cstdlib>

#include <gtest/gtest.h>

#include "base/file.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

using crypto::Cipher;

struct Fixture {
  crypto::SecretKey chunk_key = crypto::SecretKey::Random();
  crypto::SecretKey index_key = crypto::SecretKey::Random();
  crypto::ChunkIdHasher hasher{crypto::SecretKey::Random()};
  PackId id = PackId::FromBytes(test::PseudoRandomBytes(16, 77)).value();
};

// Seals `chunks` into one pack under the fixture's keys and id (Result: a test asserts on it).
Result<Bytes> WritePack(const Fixture& f, const ChunkSealer& sealer,
                        const std::vector<Bytes>& chunks) {
  PackWriter w(sealer, f.index_key, f.id);
  for (const Bytes& c : chunks) SFS_RETURN_IF_ERROR(w.Add(f.hasher.Compute(c), c).status());
  return w.Finish();
}

Bytes Text(size_t n, int salt) {
  std::string s;
  while (s.size() < n) s += "line " + std::to_string(salt) + " " + std::to_string(s.size()) + "\n";
  s.resize(n);
  return ToBytes(s);
}

// The plaintexts of a pack with chunks of several sizes, compressible and not.
std::vector<Bytes> SampleChunks() {
  std::vector<Bytes> c;
  c.push_back(test::PseudoRandomBytes(300000, 1));
  c.push_back(Text(200000, 2));
  c.push_back(Bytes{});
  c.push_back(test::PseudoRandomBytes(1, 3));
  c.push_back(Text(5000, 4));
  return c;
}

Bytes OpenChunk(const ChunkSealer& sealer, ByteSpan pack, Cipher cipher, const PackEntry& e) {
  Bytes out(e.plain_size);
  EXPECT_OK(sealer.Open(cipher, e.id, e.codec, pack.subspan(e.offset, e.sealed_size), out));
  return out;
}

class PackTest : public ::testing::TestWithParam<Cipher> {};

TEST_P(PackTest, WriteThenReadIndexAndEveryChunk) {
  Fixture f;
  ChunkSealer sealer(f.chunk_key, {GetParam(), Compression::kAuto, 1});
  PackWriter w(sealer, f.index_key, f.id);
  std::vector<Bytes> chunks = SampleChunks();
  std::vector<PackEntry> written;
  for (const Bytes& c : chunks) {
    ASSERT_OK_AND_ASSIGN(PackEntry e, w.Add(f.hasher.Compute(c), c));
    written.push_back(e);
  }
  EXPECT_EQ(w.chunk_count(), chunks.size());
  ASSERT_OK_AND_ASSIGN(Bytes pack, w.Finish());
  ASSERT_OK_AND_ASSIGN(PackIndex index, ReadPackIndex(pack, f.id, f.index_key));
  EXPECT_EQ(index.cipher, GetParam());
  EXPECT_EQ(index.entries, written);
  EXPECT_EQ(index.entries[1].codec, ChunkCodec::kZstd);
  EXPECT_EQ(index.entries[0].codec, ChunkCodec::kRaw);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(OpenChunk(sealer, pack, index.cipher, index.entries[i]), chunks[i]) << i;
  }
}

TEST_P(PackTest, EmptyPackIsValid) {
  Fixture f;
  ChunkSealer sealer(f.chunk_key, {GetParam(), Compression::kOff, 1});
  ASSERT_OK_AND_ASSIGN(Bytes pack, WritePack(f, sealer, {}));
  ASSERT_OK_AND_ASSIGN(PackIndex index, ReadPackIndex(pack, f.id, f.index_key));
  EXPECT_TRUE(index.entries.empty());
}

TEST_P(PackTest, WrongIdOrKeyFails) {
  Fixture f;
  ChunkSealer sealer(f.chunk_key, {GetParam(), Compression::kOff, 1});
  ASSERT_OK_AND_ASSIGN(Bytes pack, WritePack(f, sealer, {ToBytes("x")}));
  PackId other = PackId::FromBytes(test::PseudoRandomBytes(16, 78)).value();
  EXPECT_EQ(ReadPackIndex(pack, other, f.index_key).status().code(), Code::kCorruption);
  EXPECT_EQ(ReadPackIndex(pack, f.id, crypto::SecretKey::Random()).status().code(),
            Code::kCorruption);
}

// Any flipped bit is caught: in the trailer or index by their authentication, in a chunk by
// the chunk's.
TEST_P(PackTest, EveryFlippedBitIsCaught) {
  Fixture f;
  ChunkSealer sealer(f.chunk_key, {GetParam(), Compression::kOff, 1});
  ASSERT_OK_AND_ASSIGN(
      Bytes pack,
      WritePack(f, sealer, {test::PseudoRandomBytes(40, 5), test::PseudoRandomBytes(7, 6)}));
  for (size_t bit = 0; bit < pack.size() * 8; ++bit) {
    Bytes bad = pack;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Result<PackIndex> index = ReadPackIndex(bad, f.id, f.index_key);
    if (!index.ok()) continue;
    bool chunk_failed = false;
    for (const PackEntry& e : index->entries) {
      Bytes out(e.plain_size);
      chunk_failed |= !sealer
                           .Open(index->cipher, e.id, e.codec,
                                 ByteSpan(bad).subspan(e.offset, e.sealed_size), out)
                           .ok();
    }
    ASSERT_TRUE(chunk_failed) << "bit " << bit << " went unnoticed";
  }
}

TEST_P(PackTest, EveryTruncationAndExtensionFailsCleanly) {
  Fixture f;
  ChunkSealer sealer(f.chunk_key, {GetParam(), Compression::kOff, 1});
  ASSERT_OK_AND_ASSIGN(Bytes pack, WritePack(f, sealer, {ToBytes("abc")}));
  for (size_t n = 0; n < pack.size(); ++n) {
    Result<PackIndex> r = ReadPackIndex(ByteSpan(pack).first(n), f.id, f.index_key);
    ASSERT_FALSE(r.ok()) << n;
  }
  Bytes padded = pack;
  padded.resize(pack.size() + 64, 0);  // shard padding is not part of the pack
  EXPECT_FALSE(ReadPackIndex(padded, f.id, f.index_key).ok());
}

INSTANTIATE_TEST_SUITE_P(Ciphers, PackTest,
                         ::testing::Values(Cipher::kAes256Gcm, Cipher::kXChaCha20Poly1305),
                         [](const auto& p) {
                           return p.param == Cipher::kAes256Gcm ? "Aes256Gcm" : "XChaCha";
                         });

TEST(PackFormatTest, VersionAndCipherBytes) {
  Fixture f;
  ChunkSealer sealer(f.chunk_key, {Cipher::kAes256Gcm, Compression::kOff, 1});
  ASSERT_OK_AND_ASSIGN(Bytes pack, WritePack(f, sealer, {}));
  EXPECT_EQ(pack.back(), kPackFormatVersion);
  // A v1 pack with a damaged version byte is damage (its trailer authenticates as v1)...
  Bytes damaged = pack;
  damaged.back() = 2;
  EXPECT_EQ(ReadPackIndex(damaged, f.id, f.index_key).status().code(), Code::kCorruption);
  // ...while a pack that does not authenticate as v1 and says 2 is from a newer shardfs.
  Bytes newer = test::PseudoRandomBytes(200, 9);
  newer.back() = 2;
  EXPECT_EQ(ReadPackIndex(newer, f.id, f.index_key).status().code(), Code::kNotSupported);
  Bytes zero = pack;
  zero.back() = 0;
  EXPECT_EQ(ReadPackIndex(zero, f.id, f.index_key).status().code(), Code::kCorruption);
  Bytes bad_cipher = pack;
  bad_cipher[bad_cipher.size() - 2] = 9;
  EXPECT_EQ(ReadPackIndex(bad_cipher, f.id, f.index_key).status().code(), Code::kCorruption);
}

// Index plaintexts that authenticate but lie (which only a bug or a stolen key could make)
// are still refused.
TEST(PackFormatTest, InconsistentIndexEntriesAreRefused) {
  const Cipher c = Cipher::kAes256Gcm;
  const uint32_t overhead = static_cast<uint32_t>(ChunkSealer::Overhead(c));
  auto index_of = [](const std::vector<PackEntry>& entries, uint32_t count_override = UINT32_MAX,
                     uint8_t pad = 0, uint8_t codec_override = 0xff) {
    Bytes out;
    ByteWriter w(&out);
    w.U32(count_override == UINT32_MAX ? static_cast<uint32_t>(entries.size()) : count_override);
    for (const auto& e : entries) {
      w.Raw(e.id.span());
      w.U64(e.offset);
      w.U32(e.sealed_size);
      w.U32(e.plain_size);
      w.U8(codec_override == 0xff ? static_cast<uint8_t>(e.codec) : codec_override);
      w.U8(pad);
      w.Zeros(2);
    }
    return out;
  };
  PackEntry a{ChunkId(), 0, 100 + overhead, 100, ChunkCodec::kRaw};
  PackEntry b{ChunkId(), 100 + overhead, 50 + overhead, 50, ChunkCodec::kRaw};
  const uint64_t end = 150 + 2 * overhead;
  ASSERT_OK(ParsePackIndexEntries(index_of({a, b}), end, c));
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}), end + 1, c).ok());  // gap at the end
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}), end - 1, c).ok());  // past the index
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}, 3), end, c).ok());   // count lies
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}, 1), end, c).ok());
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}, UINT32_MAX - 1), end, c).ok());
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}, UINT32_MAX, 1), end, c).ok());     // padding
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, b}, UINT32_MAX, 0, 7), end, c).ok());  // codec
  PackEntry gap = b;
  gap.offset += 1;
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, gap}), end + 1, c).ok());
  PackEntry overlap = b;
  overlap.offset -= 1;
  EXPECT_FALSE(ParsePackIndexEntries(index_of({a, overlap}), end - 1, c).ok());
  PackEntry size_lie = a;
  size_lie.plain_size = 99;
  EXPECT_FALSE(ParsePackIndexEntries(index_of({size_lie, b}), end, c).ok());
  PackEntry tiny = a;
  tiny.sealed_size = overhead - 1;
  tiny.codec = ChunkCodec::kZstd;
  EXPECT_FALSE(ParsePackIndexEntries(index_of({tiny}), overhead - 1, c).ok());
  PackEntry inflated = a;  // "compressed" yet larger than raw: never written, so refused
  inflated.codec = ChunkCodec::kZstd;
  inflated.sealed_size = 101 + overhead;
  PackEntry b2 = b;
  b2.offset = inflated.sealed_size;
  EXPECT_FALSE(ParsePackIndexEntries(index_of({inflated, b2}), b2.offset + b2.sealed_size, c).ok());
  PackEntry huge = a;
  huge.codec = ChunkCodec::kZstd;
  huge.plain_size = (64u << 20) + 1;
  EXPECT_FALSE(ParsePackIndexEntries(index_of({huge, b}), end, c).ok());
  EXPECT_FALSE(ParsePackIndexEntries(Bytes{1, 2}, 0, c).ok());
}

// Golden files: a pack and key files written by format version 1 (tests/golden/, made once by
// SHARDFS_WRITE_GOLDEN=1; never regenerated). Every later version must keep reading them.
const char* GoldenDir() { return SHARDFS_SOURCE_DIR "/tests/golden"; }

crypto::MasterKey GoldenMaster() {
  Bytes b(32);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(0xa0 + i);
  return crypto::MasterKey{crypto::SecretKey::FromBytes(b).value()};
}

TEST(GoldenTest, PackVersion1StillReads) {
  crypto::DriveKeys keys = crypto::DriveKeys::Derive(GoldenMaster());
  crypto::ChunkIdHasher hasher(keys.chunk_id);
  PackId id = PackId::FromBytes(test::PseudoRandomBytes(16, 2024)).value();
  std::vector<Bytes> chunks = SampleChunks();
  std::string path = std::string(GoldenDir()) + "/pack_v1_aes256gcm.bin";
  if (std::getenv("SHARDFS_WRITE_GOLDEN") != nullptr) {
    ChunkSealer sealer(keys.chunk_encryption, {Cipher::kAes256Gcm, Compression::kAuto, 1});
    PackWriter w(sealer, keys.pack_index, id);
    for (const Bytes& c : chunks) ASSERT_OK(w.Add(hasher.Compute(c), c));
    ASSERT_OK_AND_ASSIGN(Bytes pack, w.Finish());
    ASSERT_OK(WriteFileAtomic(path, pack, 0644));
  }
  ASSERT_OK_AND_ASSIGN(Bytes pack, ReadFile(path, 16 << 20));
  ASSERT_OK_AND_ASSIGN(PackIndex index, ReadPackIndex(pack, id, keys.pack_index));
  ASSERT_EQ(index.entries.size(), chunks.size());
  ChunkSealer sealer(keys.chunk_encryption, {});
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(index.entries[i].id, hasher.Compute(chunks[i]));
    EXPECT_EQ(OpenChunk(sealer, pack, index.cipher, index.entries[i]), chunks[i]);
  }
}

}  // namespace
}  // namespace shardfs::backend
