#include "backend/drive.h"

#include <gtest/gtest.h>

#include "backend/memory_peer.h"
#include "crypto/sign.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

// A peer that can be switched off, or made to flip a byte of everything it reads: the fault
// injection wrapper (STYLE.md) around an in-memory node.
class FaultyPeer final : public Peer {
 public:
  explicit FaultyPeer(std::shared_ptr<Peer> base) : base_(std::move(base)) {}
  std::atomic<bool> down{false};
  std::atomic<bool> lies{false};

  std::string name() const override { return base_->name(); }
  Status PutShard(const ShardId& id, ByteSpan data, const CancelToken* c) override {
    if (down) return Status::Unavailable(name() + " is down");
    return base_->PutShard(id, data, c);
  }
  Result<Bytes> GetShard(const ShardId& id, const CancelToken* c) override {
    if (down) return Status::Unavailable(name() + " is down");
    return base_->GetShard(id, c);
  }
  Status ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                   const CancelToken* c) override {
    if (down) return Status::Unavailable(name() + " is down");
    SFS_RETURN_IF_ERROR(base_->ReadShard(id, offset, out, c));
    if (lies && !out.empty()) out[out.size() / 2] ^= 0x40;
    return Status::Ok();
  }
  Result<uint64_t> StatShard(const ShardId& id) override { return base_->StatShard(id); }
  Result<ShardProof> ProveShard(const ShardId& id, uint64_t first, uint64_t count) override {
    return base_->ProveShard(id, first, count);
  }
  Status DeleteShard(const ShardId& id) override { return base_->DeleteShard(id); }
  Result<std::optional<Bytes>> GetSlot() override { return base_->GetSlot(); }
  Status PutSlot(ByteSpan record) override { return base_->PutSlot(record); }
  Result<PeerStatus> GetStatus() override { return base_->GetStatus(); }

 private:
  std::shared_ptr<Peer> base_;
};

class DriveTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(6); }

  // A drive over `count` fresh in-memory peers (RS 4+2), with its catalog in its own folder.
  void Build(int count) {
    drive_.reset();
    peers_.clear();
    mem_.clear();
    master_ = crypto::MasterKey::Generate();
    auto owner =
        crypto::SigningKey::FromSeed(crypto::DeriveSubKey(master_, crypto::SubKey::kOwnerSigning));
    DriveOptions o;
    o.config.k = 4;
    o.config.m = 2;
    for (int i = 0; i < count; ++i) {
      auto mem = std::make_shared<MemoryPeer>("node" + std::to_string(i), owner.public_key(),
                                              uint64_t{1} << 30);
      auto faulty = std::make_shared<FaultyPeer>(mem);
      peers_.push_back(faulty);
      mem_.push_back(mem);
      std::array<uint8_t, 32> id{};
      id[0] = static_cast<uint8_t>(i + 1);
      o.config.nodes.push_back(DriveNode{"127.0.0.1:" + std::to_string(7001 + i), NodeId(id)});
      o.peers.push_back(faulty);
    }
    o.master = master_;
    o.catalog_path = dir_.path() + "/catalog-" + std::to_string(count) + ".db";
    o.sync = false;
    o.pipeline.chunker = {16 * 1024, 64 * 1024, 256 * 1024, 0};
    o.pipeline.pack_target_size = 1 << 20;
    o.pipeline.threads = 2;
    ASSERT_OK_AND_ASSIGN(drive_, Drive::Open(std::move(o)));
  }

  Ino NewFile(const std::string& name) {
    auto a = drive_->catalog().CreateFile(kRootIno, name, {});
    EXPECT_OK(a.status());
    return a.ok() ? a->ino : 0;
  }
  Bytes ReadAll(Ino ino, size_t size) {
    Bytes out(size + 10, 0xee);
    auto n = drive_->Read(ino, 0, out);
    EXPECT_OK(n.status());
    out.resize(n.ok() ? *n : 0);
    return out;
  }
  uint64_t ShardsStored() {
    uint64_t total = 0;
    for (auto& m : mem_) total += m->GetStatus().value().shards;
    return total;
  }

  test::TempDir dir_;
  crypto::MasterKey master_;
  std::vector<std::shared_ptr<FaultyPeer>> peers_;
  std::vector<std::shared_ptr<MemoryPeer>> mem_;
  std::unique_ptr<Drive> drive_;
};

TEST_F(DriveTest, FilesOfEverySizeReadBack) {
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{16 * 1024}, size_t{100 * 1024 + 3}, size_t{(3 << 20) + 7}}) {
    Ino f = NewFile("f" + std::to_string(size));
    Bytes data = test::PseudoRandomBytes(size, size + 1);
    ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->WriteWholeFile(f, data));
    EXPECT_EQ(a.size, size);
    EXPECT_EQ(ReadAll(f, size), data) << size;
    if (size > 70000) {
      Bytes part(70000);
      ASSERT_OK_AND_ASSIGN(size_t n, drive_->Read(f, size - 60000, part));
      EXPECT_EQ(n, 60000u);  // short at the end of the file
      EXPECT_EQ(0, std::memcmp(part.data(), data.data() + size - 60000, 60000));
    }
  }
  // Shrinking rewrite.
  Ino f = NewFile("shrinks");
  ASSERT_OK(drive_->WriteWholeFile(f, test::PseudoRandomBytes(500000, 1)).status());
  Bytes small = test::PseudoRandomBytes(1000, 2);
  ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->WriteWholeFile(f, small));
  EXPECT_EQ(a.size, 1000u);
  EXPECT_EQ(ReadAll(f, 1000), small);
}

TEST_F(DriveTest, AnyTwoPeersDownStillReads_ThreeDoNot) {
  Ino f = NewFile("f");
  Bytes data = test::PseudoRandomBytes(2 << 20, 9);
  ASSERT_OK(drive_->WriteWholeFile(f, data).status());
  for (int a = 0; a < 6; ++a) {
    for (int b = a + 1; b < 6; ++b) {
      peers_[a]->down = true;
      peers_[b]->down = true;
      EXPECT_EQ(ReadAll(f, data.size()), data) << a << "," << b;
      peers_[a]->down = false;
      peers_[b]->down = false;
    }
  }
  peers_[0]->down = peers_[2]->down = peers_[4]->down = true;
  Bytes out(data.size());
  auto r = drive_->Read(f, 0, out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(out, Bytes(out.size(), 0));  // no partial, unchecked bytes
}

TEST_F(DriveTest, LyingPeersAreReadAround) {
  Ino f = NewFile("f");
  Bytes data = test::PseudoRandomBytes(1 << 20, 10);
  ASSERT_OK(drive_->WriteWholeFile(f, data).status());
  peers_[1]->lies = true;
  peers_[3]->lies = true;
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

TEST_F(DriveTest, SameBytesAreStoredOnceAndASmallChangeStoresLittle) {
  Bytes data = test::PseudoRandomBytes(3 << 20, 11);
  ASSERT_OK(drive_->WriteWholeFile(NewFile("a"), data).status());
  uint64_t after_first = ShardsStored();
  EXPECT_GT(after_first, 0u);
  ASSERT_OK(drive_->WriteWholeFile(NewFile("b"), data).status());
  EXPECT_EQ(ShardsStored(), after_first);  // nothing new
  Bytes changed = data;
  changed[changed.size() / 2] ^= 1;
  Ino c = NewFile("c");
  ASSERT_OK(drive_->WriteWholeFile(c, changed).status());
  EXPECT_EQ(ShardsStored(), after_first + 6);  // one small pack of the changed chunk(s)
  EXPECT_EQ(ReadAll(c, changed.size()), changed);
}

TEST_F(DriveTest, ARefusingPeerIsReplacedByAnother) {
  Build(7);
  peers_[3]->down = true;
  Ino f = NewFile("f");
  Bytes data = test::PseudoRandomBytes(3 << 20, 13);
  ASSERT_OK(drive_->WriteWholeFile(f, data).status());
  EXPECT_EQ(mem_[3]->GetStatus().value().shards, 0u);
  peers_[3]->down = false;
  // Any two of the peers that hold shards may now fail.
  peers_[0]->down = true;
  peers_[5]->down = true;
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

TEST_F(DriveTest, TooFewPeersFailTheWriteAndLeaveTheFileAsItWas) {
  peers_[2]->down = true;
  Ino f = NewFile("f");
  Bytes data = test::PseudoRandomBytes(200000, 12);
  // Six peers, one down: a pack needs six distinct ones, so the write fails and the file
  // stays as it was.
  auto r = drive_->WriteWholeFile(f, data);
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->catalog().GetAttr(f));
  EXPECT_EQ(a.size, 0u);
  peers_[2]->down = false;
  ASSERT_OK(drive_->WriteWholeFile(f, data).status());
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

}  // namespace
}  // namespace shardfs::backend
