#include "backend/shardstore.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "backend/slot.h"
#include "backend/sqlite.h"
#include "base/file.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

namespace fs = std::filesystem;

class ShardStoreTest : public ::testing::Test {
 protected:
  ShardStoreOptions Options() {
    ShardStoreOptions o;
    o.dir = dir_.path() + "/node";
    o.capacity = uint64_t{64} << 20;
    o.reserve = 0;
    return o;
  }
  void OpenStore(const ShardStoreOptions& o) {
    store_.reset();
    ASSERT_OK_AND_ASSIGN(store_, ShardStore::Open(o));
  }
  void SetUp() override { OpenStore(Options()); }

  // Stores `data` for `owner`; returns the writer's "fresh lease" answer.
  Result<bool> Put(const OwnerKey& owner, const Bytes& data) {
    ShardId id = crypto::MerkleRoot(data);
    SFS_ASSIGN_OR_RETURN(auto w, store_->BeginPut(owner, id, data.size()));
    // In uneven pieces, as a network delivers them.
    for (size_t off = 0; off < data.size(); off += 10007) {
      SFS_RETURN_IF_ERROR(
          w->Append(ByteSpan(data).subspan(off, std::min<size_t>(10007, data.size() - off))));
    }
    return w->Commit();
  }
  Result<Bytes> ReadAll(const OwnerKey& owner, const ShardId& id) {
    SFS_ASSIGN_OR_RETURN(auto r, store_->OpenShard(owner, id));
    Bytes out(r->length());
    SFS_RETURN_IF_ERROR(r->Read(0, out));
    return out;
  }
  size_t FilesUnder(const std::string& sub) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(Options().dir + "/" + sub)) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }
  std::string ShardFile(const ShardId& id) {
    std::string hex = id.ToHex();
    return Options().dir + "/shards/" + hex.substr(0, 2) + "/" + hex;
  }

  test::TempDir dir_;
  std::unique_ptr<ShardStore> store_;
  OwnerKey alice_ = crypto::SigningKey::Generate().public_key();
  OwnerKey bob_ = crypto::SigningKey::Generate().public_key();
};

TEST_F(ShardStoreTest, PutReadRangeAndProve) {
  Bytes data = test::PseudoRandomBytes(5 * crypto::kMerkleLeafSize + 123, 1);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK_AND_ASSIGN(bool fresh, Put(alice_, data));
  EXPECT_TRUE(fresh);
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(alice_, id));
  EXPECT_EQ(back, data);

  ASSERT_OK_AND_ASSIGN(auto r, store_->OpenShard(alice_, id));
  Bytes part(70000);
  ASSERT_OK(r->Read(60000, part));
  EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + 60000));
  Bytes tail(1);
  ASSERT_OK(r->Read(data.size() - 1, tail));
  EXPECT_EQ(tail[0], data.back());
  EXPECT_EQ(r->Read(data.size(), tail).code(), Code::kOutOfRange);
  EXPECT_EQ(r->Read(UINT64_MAX, tail).code(), Code::kOutOfRange);

  ASSERT_OK_AND_ASSIGN(ShardProof p, r->Prove(4, 2));
  EXPECT_EQ(p.length, data.size());
  EXPECT_EQ(p.leaves.size(), crypto::kMerkleLeafSize + 123);
  EXPECT_OK(crypto::VerifyMerkleProof(id, p.length, 4, p.leaves, p.proof));
  EXPECT_EQ(r->Prove(6, 1).status().code(), Code::kOutOfRange);

  ShardStoreStats st = store_->Stats();
  EXPECT_EQ(st.shards, 1u);
  EXPECT_EQ(st.used, ShardStore::FileSize(data.size()));
  EXPECT_EQ(store_->Usage(alice_).shards, 1u);
}

// A stored shard's pages leave the page cache once they are on disk: shards are written once
// and seldom read, and a node should not crowd out its machine's cache.
TEST_F(ShardStoreTest, StoredShardsLeaveThePageCache) {
  struct statfs fs_info {};
  ASSERT_EQ(::statfs(dir_.path().c_str(), &fs_info), 0);
  if (fs_info.f_type == TMPFS_MAGIC) GTEST_SKIP() << "on tmpfs the page cache is the storage";
  Bytes data = test::PseudoRandomBytes(16 * crypto::kMerkleLeafSize, 9);
  const ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data).status());
  UniqueFd fd(::open(ShardFile(id).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, data.size(), PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(map, MAP_FAILED);
  std::vector<unsigned char> resident((data.size() + page - 1) / page);
  ASSERT_EQ(::mincore(map, data.size(), resident.data()), 0);
  ::munmap(map, data.size());
  size_t in_cache = 0;
  for (unsigned char r : resident) in_cache += r & 1;
  EXPECT_EQ(in_cache, 0u) << "of " << resident.size() << " pages";
  // And it still reads back, from disk.
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(alice_, id));
  EXPECT_EQ(back, data);
}

TEST_F(ShardStoreTest, WrongRootShortBodyAndAbortLeaveNothing) {
  Bytes data = test::PseudoRandomBytes(100000, 2);
  ShardId wrong = crypto::MerkleRoot(test::PseudoRandomBytes(100000, 3));
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(alice_, wrong, data.size()));
    ASSERT_OK(w->Append(data));
    EXPECT_EQ(w->Commit().status().code(), Code::kCorruption);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(alice_, crypto::MerkleRoot(data), data.size()));
    ASSERT_OK(w->Append(ByteSpan(data).first(5000)));
    EXPECT_EQ(w->Commit().status().code(), Code::kInvalidArgument);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(alice_, crypto::MerkleRoot(data), data.size()));
    ASSERT_OK(w->Append(ByteSpan(data).first(5000)));
    EXPECT_EQ(FilesUnder("tmp"), 1u);
    // Dropped mid-body, as when a client disconnects.
  }
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(alice_, crypto::MerkleRoot(data), data.size()));
    Bytes longer = data;
    longer.push_back(1);
    EXPECT_EQ(w->Append(longer).code(), Code::kOutOfRange);
  }
  EXPECT_EQ(FilesUnder("tmp"), 0u);
  EXPECT_EQ(FilesUnder("shards"), 0u);
  EXPECT_EQ(store_->Stats().shards, 0u);
  EXPECT_EQ(store_->Stats().free, Options().capacity);
  EXPECT_EQ(store_->OpenShard(alice_, crypto::MerkleRoot(data)).status().code(), Code::kNotFound);
}

TEST_F(ShardStoreTest, SizeLimits) {
  EXPECT_EQ(store_->BeginPut(alice_, ShardId(), 0).status().code(), Code::kOutOfRange);
  EXPECT_EQ(store_->BeginPut(alice_, ShardId(), Options().max_shard_size + 1).status().code(),
            Code::kOutOfRange);
}

TEST_F(ShardStoreTest, SecondOwnerAddsALeaseNotACopy) {
  Bytes data = test::PseudoRandomBytes(200000, 4);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK_AND_ASSIGN(bool a1, Put(alice_, data));
  ASSERT_OK_AND_ASSIGN(bool a2, Put(alice_, data));
  ASSERT_OK_AND_ASSIGN(bool b1, Put(bob_, data));
  EXPECT_TRUE(a1);
  EXPECT_FALSE(a2);  // a repeat
  EXPECT_TRUE(b1);
  EXPECT_EQ(FilesUnder("shards"), 1u);
  EXPECT_EQ(store_->Stats().used, ShardStore::FileSize(data.size()));
  EXPECT_EQ(store_->Usage(alice_).bytes, ShardStore::FileSize(data.size()));
  EXPECT_EQ(store_->Usage(bob_).bytes, ShardStore::FileSize(data.size()));

  ASSERT_OK(store_->Delete(alice_, id));
  EXPECT_EQ(store_->Delete(alice_, id).code(), Code::kNotFound);
  EXPECT_EQ(store_->OpenShard(alice_, id).status().code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(bob_, id));
  EXPECT_EQ(back, data);
  EXPECT_EQ(FilesUnder("shards"), 1u);
  ASSERT_OK(store_->Delete(bob_, id));
  EXPECT_EQ(FilesUnder("shards"), 0u);
  EXPECT_EQ(store_->Stats().used, 0u);
  EXPECT_EQ(store_->Stats().owners, 0u);
}

// A PUT of a shard the node stores is checked, not written: nothing goes to tmp/, and a wrong
// body still earns no lease.
TEST_F(ShardStoreTest, StoredShardIsHashedNotWritten) {
  Bytes data = test::PseudoRandomBytes(300000, 14);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data));
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(bob_, id, data.size()));
    ASSERT_OK(w->Append(ByteSpan(data).first(100000)));
    EXPECT_EQ(FilesUnder("tmp"), 0u);
    Bytes wrong(ByteSpan(data).subspan(100000).begin(), ByteSpan(data).subspan(100000).end());
    wrong.back() ^= 1;
    ASSERT_OK(w->Append(wrong));
    EXPECT_EQ(w->Commit().status().code(), Code::kCorruption);
  }
  EXPECT_EQ(store_->OpenShard(bob_, id).status().code(), Code::kNotFound);
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(bob_, id, data.size()));
    ASSERT_OK(w->Append(data));
    EXPECT_EQ(FilesUnder("tmp"), 0u);
    ASSERT_OK_AND_ASSIGN(bool fresh, w->Commit());
    EXPECT_TRUE(fresh);
  }
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(bob_, id));
  EXPECT_EQ(back, data);
  EXPECT_EQ(FilesUnder("shards"), 1u);
  EXPECT_EQ(store_->Stats().free, Options().capacity - ShardStore::FileSize(data.size()));
}

// The stored copy goes away while a second owner's body is on its way: that PUT must not get a
// lease on nothing; it is refused as Unavailable (503, the client sends it again), and the
// retry stores the bytes.
TEST_F(ShardStoreTest, StoredCopyDeletedMidUploadIsRefusedThenRetried) {
  Bytes data = test::PseudoRandomBytes(150000, 15);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data));
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(bob_, id, data.size()));
    ASSERT_OK(w->Append(data));
    ASSERT_OK(store_->Delete(alice_, id));
    EXPECT_EQ(w->Commit().status().code(), Code::kUnavailable);
  }
  EXPECT_EQ(FilesUnder("shards"), 0u);
  EXPECT_EQ(store_->Stats().shards, 0u);
  EXPECT_EQ(store_->OpenShard(bob_, id).status().code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(bool fresh, Put(bob_, data));
  EXPECT_TRUE(fresh);
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(bob_, id));
  EXPECT_EQ(back, data);
}

TEST_F(ShardStoreTest, OwnersCannotSeeOrDeleteEachOthersShards) {
  Bytes data = test::PseudoRandomBytes(1000, 5);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data));
  EXPECT_EQ(store_->OpenShard(bob_, id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Delete(bob_, id).code(), Code::kNotFound);
  EXPECT_OK(ReadAll(alice_, id));
}

TEST_F(ShardStoreTest, CapacityAndQuotaAreHonoured) {
  ShardStoreOptions o = Options();
  o.capacity = ShardStore::FileSize(300000) + 100;
  o.owner_quota = ShardStore::FileSize(100000);
  OpenStore(o);
  Bytes a = test::PseudoRandomBytes(100000, 6);
  Bytes b = test::PseudoRandomBytes(100000, 7);
  ASSERT_OK(Put(alice_, a));
  EXPECT_EQ(Put(alice_, b).status().code(), Code::kNoSpace);  // quota
  ASSERT_OK(Put(alice_, a));                                  // a repeat costs nothing
  ASSERT_OK(Put(bob_, b));
  Bytes big = test::PseudoRandomBytes(200000, 8);
  auto carol = crypto::SigningKey::Generate().public_key();
  o.owner_quota = 0;
  OpenStore(o);
  EXPECT_EQ(Put(carol, big).status().code(), Code::kNoSpace);  // node full
  // Space held by a refused or unfinished put is given back.
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->BeginPut(carol, crypto::MerkleRoot(big), 1000));
    EXPECT_LT(store_->Stats().free, ShardStore::FileSize(100000));
  }
  EXPECT_EQ(store_->Stats().free, o.capacity - 2 * ShardStore::FileSize(100000));
  EXPECT_EQ(FilesUnder("tmp"), 0u);
}

TEST_F(ShardStoreTest, ConcurrentPutsCannotOvercommit) {
  ShardStoreOptions o = Options();
  o.capacity = 3 * ShardStore::FileSize(50000);
  OpenStore(o);
  std::vector<std::unique_ptr<ShardWriter>> writers;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(
        auto w, store_->BeginPut(
                    alice_, crypto::MerkleRoot(test::PseudoRandomBytes(50000, 100 + i)), 50000));
    writers.push_back(std::move(w));
  }
  EXPECT_EQ(store_->BeginPut(bob_, ShardId(), 50000).status().code(), Code::kNoSpace);
}

TEST_F(ShardStoreTest, DamagedShardIsNeverServedAndIsDropped) {
  Bytes data = test::PseudoRandomBytes(3 * crypto::kMerkleLeafSize, 9);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data));
  {
    std::fstream f(ShardFile(id), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(crypto::kMerkleLeafSize + 5);
    f.put('\x55' ^ static_cast<char>(data[crypto::kMerkleLeafSize + 5]));
  }
  ASSERT_OK_AND_ASSIGN(auto r, store_->OpenShard(alice_, id));
  Bytes first(1000);
  EXPECT_OK(r->Read(0, first));  // leaf 0 is intact
  Bytes second(1000);
  EXPECT_EQ(r->Read(crypto::kMerkleLeafSize, second).code(), Code::kCorruption);
  EXPECT_EQ(store_->OpenShard(alice_, id).status().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(ShardFile(id)));
  EXPECT_EQ(store_->Stats().shards, 0u);
  EXPECT_EQ(store_->Usage(alice_).shards, 0u);
}

TEST_F(ShardStoreTest, DamagedTrailerIsDetectedAtOpen) {
  Bytes data = test::PseudoRandomBytes(100000, 10);
  ShardId id = crypto::MerkleRoot(data);
  for (int which = 0; which < 3; ++which) {
    ASSERT_OK(Put(alice_, data));
    uint64_t size = ShardStore::FileSize(data.size());
    if (which == 2) {
      ASSERT_EQ(::truncate(ShardFile(id).c_str(), static_cast<off_t>(size - 1)), 0);
    } else {
      // 0: a leaf hash; 1: the footer's length.
      uint64_t pos = which == 0 ? data.size() + 3 : size - 2;
      std::fstream f(ShardFile(id), std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(pos));
      char c = static_cast<char>(f.get());
      f.seekp(static_cast<std::streamoff>(pos));
      f.put(static_cast<char>(c ^ 1));
    }
    EXPECT_EQ(store_->OpenShard(alice_, id).status().code(), Code::kCorruption) << which;
    EXPECT_EQ(store_->OpenShard(alice_, id).status().code(), Code::kNotFound) << which;
  }
}

// XORs byte `pos` of `path` with `mask`.
void FlipByte(const std::string& path, uint64_t pos, char mask = 1) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(pos));
  char c = static_cast<char>(f.get());
  f.seekp(static_cast<std::streamoff>(pos));
  f.put(static_cast<char>(c ^ mask));
}

TEST_F(ShardStoreTest, ListShardsWalksTheStoreInPages) {
  std::vector<ShardId> ids;
  for (int i = 0; i < 5; ++i) {
    Bytes data = test::PseudoRandomBytes(1000 + i, 40 + i);
    ASSERT_OK(Put(i % 2 ? alice_ : bob_, data));
    ids.push_back(crypto::MerkleRoot(data));
  }
  std::sort(ids.begin(), ids.end(), [](const ShardId& a, const ShardId& b) {
    return std::lexicographical_compare(a.span().begin(), a.span().end(), b.span().begin(),
                                        b.span().end());
  });
  std::vector<ShardId> walked;
  std::optional<ShardId> after;
  for (int pages = 0; pages < 10; ++pages) {
    ASSERT_OK_AND_ASSIGN(auto page, store_->ListShards(after, 2));
    EXPECT_LE(page.size(), 2u);
    if (page.empty()) break;
    walked.insert(walked.end(), page.begin(), page.end());
    after = page.back();
  }
  EXPECT_EQ(walked, ids);
  ASSERT_OK_AND_ASSIGN(auto none, store_->ListShards(ids.back(), 10));
  EXPECT_TRUE(none.empty());
}

TEST_F(ShardStoreTest, ScrubOfHealthyShardsFindsNothing) {
  // A shard of several 1 MiB scrub pieces with a short last leaf, one of one short leaf, and
  // one of exactly one leaf.
  std::vector<Bytes> shards = {
      test::PseudoRandomBytes(2 * (1 << 20) + 5 * crypto::kMerkleLeafSize + 1234, 20),
      test::PseudoRandomBytes(1, 21), test::PseudoRandomBytes(crypto::kMerkleLeafSize, 22)};
  uint64_t total = 0;
  for (const auto& d : shards) {
    ASSERT_OK(Put(alice_, d));
    total += d.size();
  }
  uint64_t paced = 0;
  size_t calls = 0;
  auto pace = [&](uint64_t bytes) {
    EXPECT_LE(bytes, uint64_t{1} << 20);
    paced += bytes;
    ++calls;
    return true;
  };
  for (const auto& d : shards) EXPECT_OK(store_->ScrubShard(crypto::MerkleRoot(d), pace));
  EXPECT_EQ(paced, total);
  EXPECT_EQ(calls, 3u + 2u);
  EXPECT_EQ(store_->Stats().shards, 3u);
  for (const auto& d : shards) {
    ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(alice_, crypto::MerkleRoot(d)));
    EXPECT_EQ(back, d);
  }
  // A shard the store does not hold; a scrub told to stop drops nothing.
  EXPECT_EQ(store_->ScrubShard(crypto::MerkleRoot(ToBytes("none"))).code(), Code::kNotFound);
  EXPECT_EQ(
      store_->ScrubShard(crypto::MerkleRoot(shards[0]), [](uint64_t) { return false; }).code(),
      Code::kCancelled);
  EXPECT_EQ(store_->Stats().shards, 3u);
}

// One flipped byte anywhere in a shard's bytes or its leaf hashes is found by a scrub, and the
// shard is dropped with every lease, as a failed read drops it.
TEST_F(ShardStoreTest, ScrubFindsAFlippedByteInDataOrLeafHashes) {
  Bytes keep = test::PseudoRandomBytes(200000, 23);
  ASSERT_OK(Put(alice_, keep));
  Bytes data = test::PseudoRandomBytes(3 * (1 << 20) + 77, 24);  // 49 leaves, 4 pieces
  ShardId id = crypto::MerkleRoot(data);
  uint64_t leaf_hashes = data.size();
  struct Case {
    const char* what;
    uint64_t pos;
  };
  for (Case c : {Case{"first byte", 0}, Case{"middle of piece 2", (1 << 20) + 12345},
                 Case{"last byte", data.size() - 1}, Case{"first leaf hash", leaf_hashes},
                 Case{"last leaf hash", leaf_hashes + 48 * 32 + 31}}) {
    ASSERT_OK(Put(alice_, data));
    ASSERT_OK(Put(bob_, data));
    ShardStoreStats before = store_->Stats();
    FlipByte(ShardFile(id), c.pos);
    EXPECT_EQ(store_->ScrubShard(id).code(), Code::kCorruption) << c.what;
    EXPECT_FALSE(fs::exists(ShardFile(id))) << c.what;
    EXPECT_EQ(store_->OpenShard(alice_, id).status().code(), Code::kNotFound) << c.what;
    EXPECT_EQ(store_->OpenShard(bob_, id).status().code(), Code::kNotFound) << c.what;
    EXPECT_EQ(store_->ScrubShard(id).code(), Code::kNotFound) << c.what;
    ShardStoreStats after = store_->Stats();
    EXPECT_EQ(after.shards, before.shards - 1) << c.what;
    EXPECT_EQ(after.used, before.used - ShardStore::FileSize(data.size())) << c.what;
    EXPECT_EQ(store_->Usage(alice_).shards, 1u) << c.what;
    EXPECT_EQ(store_->Usage(bob_).shards, 0u) << c.what;
    ASSERT_OK_AND_ASSIGN(auto ids, store_->ListShards(std::nullopt, 10));
    EXPECT_EQ(ids, std::vector<ShardId>{crypto::MerkleRoot(keep)});
  }
  EXPECT_OK(store_->ScrubShard(crypto::MerkleRoot(keep)));
}

// A file cut short behind the store's back, after it was opened, is damage too.
TEST_F(ShardStoreTest, ScrubOfATruncatedFileDropsIt) {
  Bytes data = test::PseudoRandomBytes(2 * (1 << 20), 25);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data));
  bool cut = false;
  Status s = store_->ScrubShard(id, [&](uint64_t) {
    if (!cut) {
      cut = ::truncate(ShardFile(id).c_str(), 1 << 20) == 0;
      EXPECT_TRUE(cut);
    }
    return true;
  });
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_EQ(store_->OpenShard(alice_, id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Stats().shards, 0u);
}

TEST_F(ShardStoreTest, RestartKeepsShardsLeasesAndSlots) {
  Bytes data = test::PseudoRandomBytes(70000, 11);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(Put(alice_, data));
  ASSERT_OK(Put(bob_, data));
  auto key = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes rec, SignSlotRecord(key, 5, ToBytes("head")));
  ASSERT_OK(store_->PutSlot(key.public_key(), rec));
  OpenStore(Options());
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(bob_, id));
  EXPECT_EQ(back, data);
  EXPECT_EQ(store_->Usage(alice_).shards, 1u);
  EXPECT_EQ(store_->Stats().shards, 1u);
  ASSERT_OK_AND_ASSIGN(auto slot, store_->GetSlot(key.public_key()));
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(*slot, rec);
}

TEST_F(ShardStoreTest, UncleanRestartRemovesStraysAndForgetsLostFiles) {
  Bytes kept = test::PseudoRandomBytes(50000, 12);
  Bytes lost = test::PseudoRandomBytes(50000, 13);
  ASSERT_OK(Put(alice_, kept));
  ASSERT_OK(Put(alice_, lost));
  store_.reset();
  // What a kill -9 can leave: a partial upload, a renamed file whose lease was never
  // committed, and the open flag still set. Plus a file the disk lost.
  Bytes stray = test::PseudoRandomBytes(50000, 14);
  ShardId stray_id = crypto::MerkleRoot(stray);
  ASSERT_TRUE(std::ofstream(Options().dir + "/tmp/partial.abc") << "partial");
  fs::copy_file(ShardFile(crypto::MerkleRoot(kept)), ShardFile(stray_id));
  ASSERT_TRUE(fs::remove(ShardFile(crypto::MerkleRoot(lost))));
  {
    ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(Options().dir + "/index.db"));
    ASSERT_OK(db->Exec("UPDATE meta SET value=1 WHERE key='open'"));
  }
  OpenStore(Options());
  EXPECT_EQ(FilesUnder("tmp"), 0u);
  EXPECT_FALSE(fs::exists(ShardFile(stray_id)));
  EXPECT_EQ(store_->Stats().shards, 1u);
  EXPECT_EQ(store_->Usage(alice_).shards, 1u);
  EXPECT_OK(ReadAll(alice_, crypto::MerkleRoot(kept)));
  EXPECT_EQ(store_->OpenShard(alice_, crypto::MerkleRoot(lost)).status().code(), Code::kNotFound);
}

TEST_F(ShardStoreTest, OneProcessPerDataFolder) {
  EXPECT_EQ(ShardStore::Open(Options()).status().code(), Code::kBusy);
}

TEST_F(ShardStoreTest, BadOptionsAreRefused) {
  ShardStoreOptions o = Options();
  o.capacity = 0;
  EXPECT_EQ(ShardStore::Open(o).status().code(), Code::kInvalidArgument);
  o = Options();
  o.dir = "";
  EXPECT_EQ(ShardStore::Open(o).status().code(), Code::kInvalidArgument);
}

TEST_F(ShardStoreTest, NotADatabaseIsAClearError) {
  store_.reset();
  ASSERT_TRUE(fs::remove(Options().dir + "/index.db"));
  fs::remove(Options().dir + "/index.db-wal");
  fs::remove(Options().dir + "/index.db-shm");
  ASSERT_TRUE(std::ofstream(Options().dir + "/index.db") << std::string(4096, 'x'));
  auto s = ShardStore::Open(Options());
  EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().ToString();
}

TEST_F(ShardStoreTest, SlotsKeepOnlyNewerValidRecords) {
  auto key = crypto::SigningKey::Generate();
  OwnerKey owner = key.public_key();
  ASSERT_OK_AND_ASSIGN(auto none, store_->GetSlot(owner));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(Bytes r5, SignSlotRecord(key, 5, ToBytes("five")));
  ASSERT_OK_AND_ASSIGN(Bytes r4, SignSlotRecord(key, 4, ToBytes("four")));
  ASSERT_OK_AND_ASSIGN(Bytes r6, SignSlotRecord(key, 6, ToBytes("six")));
  ASSERT_OK(store_->PutSlot(owner, r5));
  EXPECT_EQ(store_->PutSlot(owner, r5).code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->PutSlot(owner, r4).code(), Code::kAlreadyExists);
  Bytes forged = r6;
  forged[50] ^= 1;
  EXPECT_EQ(store_->PutSlot(owner, forged).code(), Code::kPermissionDenied);
  EXPECT_EQ(store_->PutSlot(alice_, r6).code(), Code::kPermissionDenied);  // not alice's record
  EXPECT_EQ(store_->PutSlot(owner, ToBytes("junk")).code(), Code::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto got, store_->GetSlot(owner));
  EXPECT_EQ(*got, r5);
  ASSERT_OK(store_->PutSlot(owner, r6));
  ASSERT_OK_AND_ASSIGN(got, store_->GetSlot(owner));
  EXPECT_EQ(*got, r6);
}

TEST_F(ShardStoreTest, ConcurrentPutsAndDeletesOfTheSameShardStayConsistent) {
  Bytes data = test::PseudoRandomBytes(30000, 15);
  ShardId id = crypto::MerkleRoot(data);
  std::vector<OwnerKey> owners;
  for (int i = 0; i < 4; ++i) owners.push_back(crypto::SigningKey::Generate().public_key());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        // A PUT checked against a copy that another owner's delete removes meanwhile is
        // refused as Unavailable; clients send it again (HttpPeer retries a 503), as here.
        Status put;
        for (int attempt = 0; attempt < 100; ++attempt) {
          put = Put(owners[t], data).status();
          if (put.code() != Code::kUnavailable) break;
        }
        EXPECT_OK(put);
        EXPECT_OK(ReadAll(owners[t], id));
        EXPECT_OK(store_->Delete(owners[t], id));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store_->Stats().shards, 0u);
  EXPECT_EQ(store_->Stats().used, 0u);
  EXPECT_EQ(FilesUnder("shards"), 0u);
}

}  // namespace
}  // namespace shardfs::backend

namespace shardfs::backend {
namespace {

// tests/golden/shard_v1.bin is the shard file of the 150000 bytes (7*i+3) mod 251, written by
// an independent implementation (Python hashlib) of docs/format.md "Shard file" and "Shard
// id". Files on nodes' disks must stay readable, and the store must keep writing this layout.
TEST_F(ShardStoreTest, GoldenShardFileV1) {
  Bytes data(150000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 7 + 3) % 251);
  ShardId id = crypto::MerkleRoot(data);
  EXPECT_EQ(id.ToHex(), "7fb200fefdcf255f25233d4c88dc9e1987b109e58bbe0da34c412cbc40eb3fec");
  ASSERT_OK(Put(alice_, data));
  ASSERT_OK_AND_ASSIGN(Bytes written, ReadFile(ShardFile(id), 1 << 20));
  ASSERT_OK_AND_ASSIGN(
      Bytes golden,
      ReadFile(std::string(SHARDFS_SOURCE_DIR) + "/tests/golden/shard_v1.bin", 1 << 20));
  EXPECT_EQ(written, golden);
  // And a golden file in place of the written one reads back as the shard.
  ASSERT_OK(WriteFileAtomic(ShardFile(id), golden, 0600));
  ASSERT_OK_AND_ASSIGN(Bytes back, ReadAll(alice_, id));
  EXPECT_EQ(back, data);
}

}  // namespace
}  // namespace shardfs::backend
