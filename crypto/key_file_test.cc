#include "crypto/key_file.h"

#include <cstdlib>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/hash.h"
#include "tests/testutil.h"

namespace shardfs::crypto {
namespace {

// The cheapest Argon2id costs a writer accepts, so the tests stay fast.
const PassphraseParams kFast = PassphraseParams::Interactive();

MasterKey CountingKey() {
  Bytes b(32);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(i);
  return MasterKey{SecretKey::FromBytes(b).value()};
}

TEST(KeyFileTest, PlainRoundTrip) {
  MasterKey key = MasterKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes file, EncodeKeyFile(key, std::nullopt));
  ASSERT_OK_AND_ASSIGN(KeyFileInfo info, InspectKeyFile(file));
  EXPECT_EQ(info.version, 1);
  EXPECT_FALSE(info.passphrase_protected);
  ASSERT_OK_AND_ASSIGN(MasterKey back, DecodeKeyFile(file, std::nullopt));
  EXPECT_TRUE(back.key.Equals(key.key));
  // A passphrase given for an unprotected file is ignored.
  ASSERT_OK_AND_ASSIGN(MasterKey back2, DecodeKeyFile(file, "unused"));
  EXPECT_TRUE(back2.key.Equals(key.key));
}

TEST(KeyFileTest, PassphraseRoundTripAndWrongPassphrase) {
  MasterKey key = MasterKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes file, EncodeKeyFile(key, "correct horse", kFast));
  ASSERT_OK_AND_ASSIGN(KeyFileInfo info, InspectKeyFile(file));
  EXPECT_TRUE(info.passphrase_protected);
  // The key does not appear in the file.
  std::string hex = HexEncode(file);
  EXPECT_EQ(hex.find(HexEncode(key.key.span())), std::string::npos);
  ASSERT_OK_AND_ASSIGN(MasterKey back, DecodeKeyFile(file, "correct horse"));
  EXPECT_TRUE(back.key.Equals(key.key));
  EXPECT_EQ(DecodeKeyFile(file, "correct horsf").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(DecodeKeyFile(file, std::nullopt).status().code(), Code::kPermissionDenied);
  EXPECT_EQ(EncodeKeyFile(key, "", kFast).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(EncodeKeyFile(key, "x", PassphraseParams{2, uint64_t{1} << 40}).status().code(),
            Code::kInvalidArgument);
  // Too cheap to write (guessable), though readers accept such files.
  EXPECT_EQ(EncodeKeyFile(key, "x", PassphraseParams{1, 1 << 20}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(EncodeKeyFile(key, "x", PassphraseParams{2, 8 << 20}).status().code(),
            Code::kInvalidArgument);
}

// Every single flipped bit is caught, and reported as damage.
TEST(KeyFileTest, EveryFlippedBitIsRejected) {
  MasterKey key = MasterKey::Generate();
  for (bool wrapped : {false, true}) {
    ASSERT_OK_AND_ASSIGN(
        Bytes file, wrapped ? EncodeKeyFile(key, "pw", kFast) : EncodeKeyFile(key, std::nullopt));
    for (size_t bit = 0; bit < file.size() * 8; ++bit) {
      Bytes bad = file;
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      Result<MasterKey> r = DecodeKeyFile(bad, "pw");
      ASSERT_FALSE(r.ok()) << "bit " << bit;
      EXPECT_EQ(r.status().code(), Code::kCorruption)
          << "bit " << bit << ": " << r.status().ToString();
    }
  }
}

TEST(KeyFileTest, TruncatedOrExtendedFilesAreCorrupt) {
  ASSERT_OK_AND_ASSIGN(Bytes file, EncodeKeyFile(MasterKey::Generate(), "pw", kFast));
  for (size_t n = 0; n < file.size(); ++n) {
    EXPECT_EQ(DecodeKeyFile(ByteSpan(file).first(n), "pw").status().code(), Code::kCorruption) << n;
  }
  Bytes longer = file;
  longer.push_back(0);
  EXPECT_EQ(DecodeKeyFile(longer, "pw").status().code(), Code::kCorruption);
}

TEST(KeyFileTest, NewerVersionIsNotSupported) {
  ASSERT_OK_AND_ASSIGN(Bytes file, EncodeKeyFile(MasterKey::Generate(), std::nullopt));
  file[8] = 2;
  // A v1 file with a flipped version byte is damage...
  EXPECT_EQ(InspectKeyFile(file).status().code(), Code::kCorruption);
  // ...while a file checksummed as version 2 is from a newer shardfs.
  Digest256 sum = Blake2b256(ByteSpan(file).first(file.size() - 32));
  std::copy(sum.begin(), sum.end(), file.end() - 32);
  EXPECT_EQ(InspectKeyFile(file).status().code(), Code::kNotSupported);
}

// The checksum is not a MAC: someone can craft a file that passes it. The cost bounds must
// still hold, or a key file could make shardfs allocate terabytes.
TEST(KeyFileTest, CraftedCostParametersAreRefused) {
  ASSERT_OK_AND_ASSIGN(Bytes file, EncodeKeyFile(MasterKey::Generate(), "pw", kFast));
  StoreLE64(file.data() + 20, uint64_t{1} << 40);  // memlimit
  Digest256 sum = Blake2b256(ByteSpan(file).first(file.size() - 32));
  std::copy(sum.begin(), sum.end(), file.end() - 32);
  EXPECT_EQ(InspectKeyFile(file).status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeKeyFile(file, "pw").status().code(), Code::kCorruption);
  // Refused before any passphrase is asked for.
  EXPECT_EQ(DecodeKeyFile(file, std::nullopt).status().code(), Code::kCorruption);
  StoreLE64(file.data() + 20, uint64_t{1} << 20);
  StoreLE64(file.data() + 12, 0);  // opslimit 0
  sum = Blake2b256(ByteSpan(file).first(file.size() - 32));
  std::copy(sum.begin(), sum.end(), file.end() - 32);
  EXPECT_EQ(InspectKeyFile(file).status().code(), Code::kCorruption);
}

TEST(KeyFileTest, ReportsWhetherTheFileWasProtected) {
  MasterKey key = MasterKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes plain, EncodeKeyFile(key, std::nullopt));
  ASSERT_OK_AND_ASSIGN(Bytes wrapped, EncodeKeyFile(key, "pw", kFast));
  KeyFileInfo info;
  ASSERT_OK(DecodeKeyFile(wrapped, "pw", &info));
  EXPECT_TRUE(info.passphrase_protected);
  // Someone swapped in an unprotected file: it opens, and the caller can tell.
  ASSERT_OK(DecodeKeyFile(plain, "pw", &info));
  EXPECT_FALSE(info.passphrase_protected);
}

TEST(KeyFileTest, SpecialFilesAreRefusedWithoutBlocking) {
  char dir[] = "/tmp/shardfs-keyfile-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string fifo = std::string(dir) + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadKeyFile(fifo, std::nullopt).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadKeyFile(dir, std::nullopt).status().code(), Code::kInvalidArgument);
  ::unlink(fifo.c_str());
  ::rmdir(dir);
}

TEST(KeyFileTest, WriteAndReadFileWithMode0600) {
  char dir[] = "/tmp/shardfs-keyfile-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/drive.key";
  MasterKey key = MasterKey::Generate();
  mode_t old = ::umask(0);  // even with a permissive umask the file is 0600
  Status s = WriteKeyFile(path, key, "pw", kFast);
  ::umask(old);
  ASSERT_OK(s);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK_AND_ASSIGN(MasterKey back, ReadKeyFile(path, "pw"));
  EXPECT_TRUE(back.key.Equals(key.key));
  EXPECT_EQ(ReadKeyFile(path + ".missing", "pw").status().code(), Code::kNotFound);
  // A key file path that names something huge is refused before reading it all.
  EXPECT_EQ(ReadKeyFile("/proc/self/exe", std::nullopt).status().code(), Code::kOutOfRange);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(RecoveryPhraseTest, RoundTripAndShape) {
  for (int i = 0; i < 200; ++i) {
    MasterKey key = MasterKey::Generate();
    std::string phrase = ToRecoveryPhrase(key);
    ASSERT_EQ(phrase.size(), 14u * 4 + 13);
    for (size_t j = 0; j < phrase.size(); ++j) {
      if (j % 5 == 4) {
        ASSERT_EQ(phrase[j], '-');
      } else {
        ASSERT_NE(std::string("0123456789ABCDEFGHJKMNPQRSTVWXYZ").find(phrase[j]),
                  std::string::npos);
      }
    }
    ASSERT_OK_AND_ASSIGN(MasterKey back, FromRecoveryPhrase(phrase));
    ASSERT_TRUE(back.key.Equals(key.key));
  }
}

// The phrase of a known key never changes: people write these down.
TEST(RecoveryPhraseTest, GoldenPhrase) {
  EXPECT_EQ(ToRecoveryPhrase(CountingKey()),
            "2001-081G-8186-0W40-J2GB-1G6G-W3RG-2491-650N-2RBH-G68T-3CE1-T7GZ-AQ9M");
}

TEST(RecoveryPhraseTest, ForgivingInput) {
  MasterKey key = MasterKey::Generate();
  std::string phrase = ToRecoveryPhrase(key);
  std::string relaxed;
  for (char c : phrase) {
    if (c == '-') {
      relaxed += "  ";
      continue;
    }
    char l = static_cast<char>(std::tolower(c));
    relaxed += l == '1' ? 'l' : l == '0' ? 'O' : l;
  }
  ASSERT_OK_AND_ASSIGN(MasterKey back, FromRecoveryPhrase(relaxed + "\n"));
  EXPECT_TRUE(back.key.Equals(key.key));
}

TEST(RecoveryPhraseTest, TyposAreDetected) {
  MasterKey key = CountingKey();
  std::string phrase = ToRecoveryPhrase(key);
  const std::string alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  int tried = 0;
  for (size_t i = 0; i < phrase.size(); ++i) {
    if (phrase[i] == '-') continue;
    for (char c : alphabet) {
      if (c == phrase[i]) continue;
      std::string typo = phrase;
      typo[i] = c;
      Result<MasterKey> r = FromRecoveryPhrase(typo);
      ASSERT_FALSE(r.ok()) << "substitution at " << i << " accepted";
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
      ++tried;
    }
  }
  EXPECT_EQ(tried, 56 * 31);
  // Swapped neighbours.
  for (size_t i = 0; i + 1 < phrase.size(); ++i) {
    if (phrase[i] == '-' || phrase[i + 1] == '-' || phrase[i] == phrase[i + 1]) continue;
    std::string typo = phrase;
    std::swap(typo[i], typo[i + 1]);
    EXPECT_FALSE(FromRecoveryPhrase(typo).ok()) << "swap at " << i << " accepted";
  }
  // A dropped or an extra character, and a character that is never used.
  EXPECT_FALSE(FromRecoveryPhrase(phrase.substr(1)).ok());
  EXPECT_FALSE(FromRecoveryPhrase(phrase + "A").ok());
  std::string with_u = phrase;
  with_u[0] = 'U';
  Result<MasterKey> u = FromRecoveryPhrase(with_u);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("'U'"), std::string::npos);
  Result<MasterKey> utf8 = FromRecoveryPhrase("\xc3\xa9" + phrase.substr(1));
  ASSERT_FALSE(utf8.ok());
  EXPECT_NE(utf8.status().message().find("non-ASCII"), std::string::npos);
  EXPECT_FALSE(FromRecoveryPhrase("").ok());
}

// Key files written by format version 1 (tests/golden/, made once with SHARDFS_WRITE_GOLDEN=1,
// never regenerated): every later version must keep reading them.
TEST(KeyFileGoldenTest, Version1FilesStillRead) {
  const std::string dir = SHARDFS_SOURCE_DIR "/tests/golden";
  MasterKey key = CountingKey();
  // The committed passphrase file was written with Argon2id costs (1 pass, 1 MiB) from before
  // writers had a minimum; readers must keep accepting such files.
  if (std::getenv("SHARDFS_WRITE_GOLDEN") != nullptr) {
    ASSERT_OK(WriteKeyFile(dir + "/key_v1_plain.bin", key, std::nullopt));
    ASSERT_OK(WriteKeyFile(dir + "/key_v1_passphrase.bin", key, "golden passphrase", kFast));
  }
  ASSERT_OK_AND_ASSIGN(MasterKey plain, ReadKeyFile(dir + "/key_v1_plain.bin", std::nullopt));
  EXPECT_TRUE(plain.key.Equals(key.key));
  ASSERT_OK_AND_ASSIGN(MasterKey wrapped,
                       ReadKeyFile(dir + "/key_v1_passphrase.bin", "golden passphrase"));
  EXPECT_TRUE(wrapped.key.Equals(key.key));
  EXPECT_EQ(ReadKeyFile(dir + "/key_v1_passphrase.bin", "wrong").status().code(),
            Code::kPermissionDenied);
}

}  // namespace
}  // namespace shardfs::crypto
