#include "backend/checkpoint.h"

#include <gtest/gtest.h>

#include "backend/memory_peer.h"
#include "backend/slot.h"
#include "crypto/sign.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

using test::TempDir;

// A node that hands out a damaged slot record (a malicious or broken node), over a real one.
class SlotLiar final : public Peer {
 public:
  explicit SlotLiar(std::shared_ptr<Peer> base) : base_(std::move(base)) {}
  std::atomic<bool> lies{false};

  std::string name() const override { return base_->name(); }
  Status PutShard(const ShardId& id, ByteSpan data, const CancelToken* c) override {
    return base_->PutShard(id, data, c);
  }
  Result<Bytes> GetShard(const ShardId& id, const CancelToken* c) override {
    return base_->GetShard(id, c);
  }
  Status ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                   const CancelToken* c) override {
    return base_->ReadShard(id, offset, out, c);
  }
  Result<uint64_t> StatShard(const ShardId& id) override { return base_->StatShard(id); }
  Result<ShardProof> ProveShard(const ShardId& id, uint64_t first, uint64_t count) override {
    return base_->ProveShard(id, first, count);
  }
  Status DeleteShard(const ShardId& id) override { return base_->DeleteShard(id); }
  Result<std::optional<Bytes>> GetSlot() override {
    SFS_ASSIGN_OR_RETURN(std::optional<Bytes> slot, base_->GetSlot());
    if (lies && slot && !slot->empty()) (*slot)[slot->size() / 2] ^= 0x10;
    return slot;
  }
  Status PutSlot(ByteSpan record) override { return base_->PutSlot(record); }
  Result<PeerStatus> GetStatus() override { return base_->GetStatus(); }

 private:
  std::shared_ptr<Peer> base_;
};

// Everything a catalog says about its tree, extended attributes, contents, packs and journal,
// as text: two catalogs
// with the same drive tables give the same text.
void Walk(Catalog& c, Ino ino, const std::string& path, std::string* out) {
  auto a = c.GetAttr(ino);
  ASSERT_OK(a);
  *out += path + " ino=" + std::to_string(a->ino) +
          " kind=" + std::to_string(static_cast<int>(a->kind)) +
          " mode=" + std::to_string(a->mode) + " uid=" + std::to_string(a->uid) +
          " gid=" + std::to_string(a->gid) + " size=" + std::to_string(a->size) +
          " nlink=" + std::to_string(a->nlink) + " times=" + std::to_string(a->atime_ns) + "," +
          std::to_string(a->mtime_ns) + "," + std::to_string(a->ctime_ns) + "\n";
  auto xattrs = c.ListXattr(ino);
  ASSERT_OK(xattrs);
  for (const std::string& name : *xattrs) {
    auto value = c.GetXattr(ino, name);
    ASSERT_OK(value);
    *out += "  xattr " + name + "=" + HexEncode(*value) + "\n";
  }
  if (a->kind == FileKind::kSymlink) {
    auto target = c.ReadLink(ino);
    ASSERT_OK(target);
    *out += "  -> " + *target + "\n";
  } else if (a->kind == FileKind::kFile) {
    auto extents = c.ReadExtents(ino, 0, a->size);
    ASSERT_OK(extents);
    for (const Extent& e : *extents) {
      *out += "  extent " + std::to_string(e.offset) + " " + e.chunk.ToHex() + " " +
              std::to_string(e.chunk_offset) + " " + std::to_string(e.size) + "\n";
      auto chunk = c.FindChunk(e.chunk);
      ASSERT_OK(chunk);
      ASSERT_TRUE(chunk->has_value());
      auto pack = c.GetPack((*chunk)->pack);
      ASSERT_OK(pack);
      *out += "  chunk in " + pack->id.ToHex() + " at " + std::to_string((*chunk)->pack_offset) +
              " size " + std::to_string(pack->size) + " shard0 " + pack->shards[0].ToHex() +
              " node0 " + pack->nodes[0].ToHex() + "\n";
    }
  } else {
    std::string after;
    while (true) {
      auto page = c.ReadDir(ino, after, 100);
      ASSERT_OK(page);
      if (page->empty()) break;
      for (const DirEntry& e : *page) Walk(c, e.attr.ino, path + "/" + e.name, out);
      after = page->back().name;
    }
  }
}

std::string Dump(Catalog& c) {
  std::string out;
  Walk(c, kRootIno, "", &out);
  auto last = c.LastChange();
  auto totals = c.GetTotals();
  EXPECT_OK(last);
  EXPECT_OK(totals);
  if (last.ok()) out += "last change " + std::to_string(*last) + "\n";
  if (totals.ok()) {
    out += "totals " + std::to_string(totals->files) + " " + std::to_string(totals->folders) + " " +
           std::to_string(totals->packs) + " " + std::to_string(totals->chunks) + " " +
           std::to_string(totals->unreferenced_chunks) + "\n";
  }
  return out;
}

template <typename Id>
Id RandomId(uint64_t seed) {
  Bytes b = test::PseudoRandomBytes(Id::kSize, seed);
  return Id::FromBytes(b).value();
}

class CheckpointTest : public ::testing::Test {
 protected:
  static constexpr int kNodes = 4;

  void SetUp() override {
    master_ = crypto::MasterKey::Generate();
    auto owner = crypto::SigningKey::ForOwner(master_);
    config_.name = "test";
    config_.k = 2;
    config_.m = 1;
    for (int i = 0; i < kNodes; ++i) {
      auto mem = std::make_shared<MemoryPeer>("node" + std::to_string(i), owner.public_key(),
                                              uint64_t{1} << 30);
      auto liar = std::make_shared<SlotLiar>(mem);
      mem_.push_back(mem);
      liars_.push_back(liar);
      peers_.push_back(liar);
      config_.nodes.push_back(
          DriveNode{"127.0.0.1:" + std::to_string(7001 + i), RandomId<NodeId>(100 + i)});
    }
    peer_set_ = std::make_unique<PeerSet>(config_.nodes, peers_);
    catalog_ = OpenCatalog(dir_.path() + "/catalog.db");
  }

  std::unique_ptr<Catalog> OpenCatalog(const std::string& path) {
    CatalogOptions co;
    co.path = path;
    co.sync = false;
    auto c = Catalog::Open(co);
    EXPECT_OK(c);
    return c.ok() ? std::move(*c) : nullptr;
  }

  CheckpointOptions Options() {
    CheckpointOptions o;
    o.max_delay = std::chrono::milliseconds(0);  // no thread: Sync only
    o.compact_ratio = 1000;                      // these catalogs are tiny: deltas, not bases
    return o;
  }

  // As Options, with every object in packs (none inline), for tests that lose packs.
  CheckpointOptions Packed() {
    CheckpointOptions o = Options();
    o.inline_object_max = 0;
    o.inline_manifest_max = 0;
    return o;
  }

  std::unique_ptr<Checkpointer> StartOn(Catalog& catalog, CheckpointOptions o) {
    auto c = Checkpointer::Start(catalog, *peer_set_, master_, config_, o);
    EXPECT_OK(c);
    return c.ok() ? std::move(*c) : nullptr;
  }

  RestoreOptions Restore(const std::string& path, const crypto::MasterKey& master) {
    RestoreOptions r;
    r.master = master;
    r.seeds = {DriveNode{config_.nodes[0].address, NodeId()}};
    r.connect = [this](const DriveNode& n) -> Result<std::shared_ptr<Peer>> {
      for (size_t i = 0; i < config_.nodes.size(); ++i) {
        if (config_.nodes[i].address == n.address) return peers_[i];
      }
      return Status::Unavailable("no node " + n.address);
    };
    r.catalog_path = path;
    r.sync = false;
    return r;
  }

  // Restores the drive into a new catalog `name` and dumps it ("" after a failure).
  std::string RestoreAndDump(const std::string& name) {
    const std::string path = dir_.path() + "/" + name;
    auto r = RestoreCatalog(Restore(path, master_));
    EXPECT_OK(r);
    if (!r.ok()) return "";
    auto restored = OpenCatalog(path);
    return restored ? Dump(*restored) : "";
  }

  // A file of `size` bytes in one chunk of a pack of its own.
  void AddFile(Catalog& c, Ino parent, const std::string& name, uint64_t size, uint64_t seed) {
    auto f = c.CreateFile(parent, name, NewInode{0640, 1000, 1000});
    ASSERT_OK(f);
    PackRecord pack;
    pack.id = RandomId<PackId>(seed);
    pack.k = 2;
    pack.m = 1;
    pack.size = size + 100;
    for (int i = 0; i < 3; ++i) {
      pack.shards.push_back(RandomId<ShardId>(seed * 10 + static_cast<uint64_t>(i)));
      pack.nodes.push_back(config_.nodes[static_cast<size_t>(i)].id);
    }
    ChunkRecord chunk{
        RandomId<ChunkId>(seed + 1'000'000), pack.id, 0, static_cast<uint32_t>(size + 28),
        static_cast<uint32_t>(size),         1,       0};
    ASSERT_OK(c.AddPack(pack, {chunk}));
    ASSERT_OK(c.WriteExtents(f->ino, 0, size, {Extent{0, chunk.id, 0, size}}));
  }

  // Removes every shard of `object`'s packs from every node.
  void LoseObject(const StoredObject& object) {
    for (const PackRecord& p : object.packs) {
      for (const ShardId& s : p.shards) {
        for (auto& m : mem_) (void)m->DeleteShard(s);
      }
    }
  }

  // The newest head, as a node holds it.
  DriveHead HeadOn(size_t node) {
    auto slot = mem_[node]->GetSlot();
    EXPECT_OK(slot);
    EXPECT_TRUE(slot.ok() && slot->has_value());
    auto record = VerifySlotRecord(**slot);
    EXPECT_OK(record);
    auto head = DecodeDriveHead(crypto::DriveKeys::Derive(master_).catalog_encryption,
                                record->sequence, record->value);
    EXPECT_OK(head);
    return *head;
  }

  TempDir dir_;
  crypto::MasterKey master_;
  DriveConfig config_;
  std::vector<std::shared_ptr<MemoryPeer>> mem_;
  std::vector<std::shared_ptr<SlotLiar>> liars_;
  std::vector<std::shared_ptr<Peer>> peers_;
  std::unique_ptr<PeerSet> peer_set_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CheckpointTest, BaseAndDeltasRestoreTheSameCatalog) {
  auto cp = StartOn(*catalog_, Options());
  ASSERT_NE(cp, nullptr);
  Catalog& c = *catalog_;
  ASSERT_OK_AND_ASSIGN(InodeAttr docs, c.Mkdir(kRootIno, "docs", NewInode{0755, 1000, 1000}));
  AddFile(c, docs.ino, "a.txt", 1000, 1);
  AddFile(c, kRootIno, "b.bin", 123456, 2);
  ASSERT_OK(c.Symlink(docs.ino, "link", "../b.bin").status());
  ASSERT_OK_AND_ASSIGN(InodeAttr a_txt, c.Lookup(docs.ino, "a.txt"));
  ASSERT_OK_AND_ASSIGN(InodeAttr b_bin, c.Lookup(kRootIno, "b.bin"));
  ASSERT_OK(c.SetXattr(a_txt.ino, "user.tag", ToBytes("dropped with the file"), XattrMode::kAny));
  ASSERT_OK(c.SetXattr(b_bin.ino, "user.mime", ToBytes("application/x-test"), XattrMode::kAny));
  ASSERT_OK(c.SetXattr(b_bin.ino, "user.gone", ToBytes("removed in a delta"), XattrMode::kAny));
  ASSERT_OK(c.SetXattr(docs.ino, "security.selinux", Bytes{'c', 't', 'x', 0}, XattrMode::kAny));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo first, cp->Sync());
  EXPECT_TRUE(first.base);
  EXPECT_EQ(first.deltas, 0u);
  EXPECT_EQ(first.heads_stored, static_cast<size_t>(kNodes));

  // Deltas: renames, removals, attributes, new files.
  ASSERT_OK(c.Rename(kRootIno, "b.bin", docs.ino, "b2.bin", RenameMode::kReplace).status());
  AttrChange mode;
  mode.mode = 0600;
  mode.mtime_ns = 1'600'000'000'123'456'789;
  ASSERT_OK(c.SetAttr(docs.ino, mode).status());
  // Attributes set, replaced and removed in a delta.
  ASSERT_OK(c.SetXattr(b_bin.ino, "user.mime", ToBytes("text/plain"), XattrMode::kReplace));
  ASSERT_OK(c.RemoveXattr(b_bin.ino, "user.gone"));
  ASSERT_OK(c.SetXattr(b_bin.ino, "user.empty", {}, XattrMode::kCreate));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo second, cp->Sync());
  EXPECT_FALSE(second.base);
  EXPECT_EQ(second.deltas, 1u);
  EXPECT_GT(second.head_sequence, first.head_sequence);

  ASSERT_OK_AND_ASSIGN(InodeAttr gone, c.Unlink(docs.ino, "a.txt"));
  ASSERT_OK(c.DropOrphan(gone.ino));
  AddFile(c, kRootIno, "c", 77, 3);
  ASSERT_OK_AND_ASSIGN(InodeAttr file_c, c.Lookup(kRootIno, "c"));
  ASSERT_OK(c.Link(file_c.ino, docs.ino, "hard-c").status());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo third, cp->Sync());
  EXPECT_FALSE(third.base);
  EXPECT_EQ(third.deltas, 2u);
  // Nothing changed: nothing stored.
  ASSERT_OK_AND_ASSIGN(CheckpointInfo same, cp->Sync());
  EXPECT_EQ(same.head_sequence, third.head_sequence);

  const std::string path = dir_.path() + "/restored.db";
  ASSERT_OK_AND_ASSIGN(RestoreResult r, RestoreCatalog(Restore(path, master_)));
  EXPECT_EQ(r.head_sequence, third.head_sequence);
  EXPECT_EQ(r.config, config_);
  EXPECT_EQ(r.heads_found, static_cast<size_t>(kNodes));
  auto restored = OpenCatalog(path);
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(Dump(*restored), Dump(c));
  EXPECT_EQ(restored->GetXattr(b_bin.ino, "user.mime").value_or({}), ToBytes("text/plain"));
  EXPECT_EQ(restored->GetXattr(b_bin.ino, "user.gone").status().code(), Code::kNoAttribute);
  EXPECT_EQ(restored->ListXattr(b_bin.ino).value_or({}),
            (std::vector<std::string>{"user.empty", "user.mime"}));
  EXPECT_EQ(restored->GetXattr(a_txt.ino, "user.tag").status().code(), Code::kNotFound);

  // The restored catalog checkpoints on from there: a delta, not a base.
  cp.reset();
  auto cp2 = StartOn(*restored, Options());
  ASSERT_NE(cp2, nullptr);
  ASSERT_OK(restored->Mkdir(kRootIno, "after-restore", NewInode{}).status());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo fourth, cp2->Sync());
  EXPECT_FALSE(fourth.base);
  EXPECT_EQ(fourth.deltas, 3u);
  cp2.reset();
  EXPECT_EQ(RestoreAndDump("restored2.db"), Dump(*restored));
}

TEST_F(CheckpointTest, ASmallChangeToABigCatalogStoresLittle) {
  auto cp = StartOn(*catalog_, Options());
  ASSERT_NE(cp, nullptr);
  ASSERT_OK_AND_ASSIGN(InodeAttr dir, catalog_->Mkdir(kRootIno, "many", NewInode{}));
  for (int i = 0; i < 3000; ++i) {
    AddFile(*catalog_, dir.ino, "file-" + std::to_string(i), 4096 + static_cast<uint64_t>(i),
            10 + static_cast<uint64_t>(i));
  }
  ASSERT_OK_AND_ASSIGN(CheckpointInfo base, cp->Sync());
  EXPECT_TRUE(base.base);
  EXPECT_GT(base.base_bytes, 1'000'000u);

  ASSERT_OK(catalog_->Mkdir(kRootIno, "one more", NewInode{}).status());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo delta, cp->Sync());
  EXPECT_FALSE(delta.base);
  // The delta, the manifest and nothing else: not the catalog again.
  EXPECT_LT(delta.stored_bytes, 4096u);
  EXPECT_LT(delta.delta_bytes, 1024u);

  // A new base of a catalog that changed a little dedups against the old one.
  cp.reset();
  CheckpointOptions compact = Options();
  compact.compact_ratio = 0;
  auto cp2 = StartOn(*catalog_, compact);
  ASSERT_NE(cp2, nullptr);
  ASSERT_OK(catalog_->Mkdir(kRootIno, "and another", NewInode{}).status());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo rebased, cp2->Sync());
  EXPECT_TRUE(rebased.base);
  EXPECT_LT(rebased.stored_bytes, rebased.base_bytes / 2);
  EXPECT_EQ(RestoreAndDump("restored.db"), Dump(*catalog_));
}

TEST_F(CheckpointTest, ABadHeadOrALostCheckpointFallsBackToAnOlderOne) {
  auto cp = StartOn(*catalog_, Packed());
  ASSERT_NE(cp, nullptr);
  AddFile(*catalog_, kRootIno, "old", 10, 1);
  ASSERT_OK(cp->Sync().status());
  const std::string old_dump = Dump(*catalog_);
  AddFile(*catalog_, kRootIno, "new", 20, 2);
  ASSERT_OK(cp->Sync().status());
  const std::string new_dump = Dump(*catalog_);

  // A node that damages its head is passed over: the others have it.
  liars_[1]->lies = true;
  {
    const std::string path = dir_.path() + "/r1.db";
    ASSERT_OK_AND_ASSIGN(RestoreResult r, RestoreCatalog(Restore(path, master_)));
    EXPECT_EQ(r.heads_found, static_cast<size_t>(kNodes - 1));
    EXPECT_FALSE(r.skipped.empty());
    auto restored = OpenCatalog(path);
    EXPECT_EQ(Dump(*restored), new_dump);
  }
  liars_[1]->lies = false;

  // A newer head (validly signed) whose value does not open is skipped for the older one.
  auto owner = crypto::SigningKey::ForOwner(master_);
  const DriveHead good = HeadOn(1);
  ASSERT_OK_AND_ASSIGN(Bytes junk, SignSlotRecord(owner, good.sequence + 5, AsBytes("junk")));
  ASSERT_OK(mem_[1]->PutSlot(junk));
  {
    const std::string path = dir_.path() + "/r2.db";
    ASSERT_OK_AND_ASSIGN(RestoreResult r, RestoreCatalog(Restore(path, master_)));
    EXPECT_EQ(r.head_sequence, good.sequence);
    auto restored = OpenCatalog(path);
    EXPECT_EQ(Dump(*restored), new_dump);
  }

  // The newest checkpoint's manifest lost from every node: its previous one is restored.
  LoseObject(good.manifest);
  {
    const std::string path = dir_.path() + "/r3.db";
    ASSERT_OK_AND_ASSIGN(RestoreResult r, RestoreCatalog(Restore(path, master_)));
    EXPECT_EQ(r.head_sequence, good.sequence);
    auto restored = OpenCatalog(path);
    EXPECT_EQ(Dump(*restored), old_dump);
    bool said = false;
    for (const std::string& s : r.skipped) said = said || s.find("checkpoint of head") == 0;
    EXPECT_TRUE(said);
  }

  // Nothing left to read: a clear error, and no crash.
  ASSERT_TRUE(good.previous.has_value());
  LoseObject(*good.previous);
  auto none = RestoreCatalog(Restore(dir_.path() + "/r4.db", master_));
  EXPECT_EQ(none.status().code(), Code::kCorruption) << none.status().ToString();
}

TEST_F(CheckpointTest, SmallCheckpointsAreInlineUntilTheHeadIsFull) {
  auto cp = StartOn(*catalog_, Options());
  ASSERT_NE(cp, nullptr);
  ASSERT_OK(catalog_->Mkdir(kRootIno, "a", NewInode{}).status());
  ASSERT_OK(cp->Sync().status());
  // A small catalog: base, base index and manifest all in the head; no pack at all.
  EXPECT_TRUE(cp->PacksInUse().empty());
  DriveHead head = HeadOn(0);
  ASSERT_TRUE(head.manifest.bytes.has_value());
  EXPECT_EQ(RestoreAndDump("r1.db"), Dump(*catalog_));

  // Deltas pile up in the manifest until it no longer fits in the head: then it goes to a pack,
  // and the previous (inline) manifest stays the fallback.
  for (int i = 0; i < 60 && head.manifest.bytes; ++i) {
    ASSERT_OK(catalog_->Mkdir(kRootIno, "dir " + std::to_string(i), NewInode{}).status());
    ASSERT_OK(cp->Sync().status());
    head = HeadOn(0);
  }
  ASSERT_FALSE(head.manifest.bytes.has_value());
  EXPECT_FALSE(head.manifest.packs.empty());
  ASSERT_TRUE(head.previous.has_value());
  EXPECT_TRUE(head.previous->bytes.has_value());
  EXPECT_FALSE(cp->PacksInUse().empty());
  EXPECT_EQ(RestoreAndDump("r2.db"), Dump(*catalog_));
}

TEST_F(CheckpointTest, PacksOfOlderCheckpointsAreDroppedAndTheKeptOnesRestore) {
  auto cp = StartOn(*catalog_, Packed());
  ASSERT_NE(cp, nullptr);
  std::vector<std::vector<PackId>> in_use;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(catalog_->Mkdir(kRootIno, "d" + std::to_string(i), NewInode{}).status());
    ASSERT_OK(cp->Sync().status());
    in_use.push_back(cp->PacksInUse());
  }
  // Nothing is garbage while it is in use; the first checkpoints' deltas and manifests are.
  std::vector<PackRecord> dropped;
  ASSERT_OK_AND_ASSIGN(size_t n, cp->DropUnusedPacks([&](const PackRecord& p) {
    dropped.push_back(p);
    return Status::Ok();
  }));
  EXPECT_EQ(n, dropped.size());
  EXPECT_GE(n, 2u);
  for (const PackRecord& p : dropped) {
    EXPECT_EQ(std::find(in_use.back().begin(), in_use.back().end(), p.id), in_use.back().end());
    for (const ShardId& s : p.shards) {
      for (auto& m : mem_) (void)m->DeleteShard(s);
    }
  }
  // What is left restores, and a second pass finds nothing more.
  EXPECT_EQ(RestoreAndDump("r.db"), Dump(*catalog_));
  ASSERT_OK_AND_ASSIGN(size_t again,
                       cp->DropUnusedPacks([](const PackRecord&) { return Status::Ok(); }));
  EXPECT_EQ(again, 0u);

  // A drop that fails keeps the pack for the next pass; the list survives a restart.
  ASSERT_OK(catalog_->Mkdir(kRootIno, "e", NewInode{}).status());
  ASSERT_OK(cp->Sync().status());
  ASSERT_OK(cp->Close());
  cp = StartOn(*catalog_, Packed());
  ASSERT_NE(cp, nullptr);
  auto failed = cp->DropUnusedPacks([](const PackRecord&) { return Status::IOError("disk"); });
  EXPECT_EQ(failed.status().code(), Code::kIOError);
  ASSERT_OK_AND_ASSIGN(size_t later,
                       cp->DropUnusedPacks([](const PackRecord&) { return Status::Ok(); }));
  EXPECT_GE(later, 1u);
}

TEST_F(CheckpointTest, AnotherKeyFindsNoHead) {
  auto cp = StartOn(*catalog_, Options());
  ASSERT_NE(cp, nullptr);
  ASSERT_OK(catalog_->Mkdir(kRootIno, "x", NewInode{}).status());
  ASSERT_OK(cp->Sync().status());
  // MemoryPeer keeps one owner's slot; the head is there, but another key cannot open it.
  auto r = RestoreCatalog(Restore(dir_.path() + "/r.db", crypto::MasterKey::Generate()));
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
  // And a catalog that exists is never overwritten.
  auto again = RestoreCatalog(Restore(dir_.path() + "/catalog.db", master_));
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
}

TEST_F(CheckpointTest, PendingChangesSurviveACleanCloseAndACrashForcesABase) {
  auto cp = StartOn(*catalog_, Packed());
  ASSERT_NE(cp, nullptr);
  ASSERT_OK(catalog_->Mkdir(kRootIno, "a", NewInode{}).status());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo first, cp->Sync());
  EXPECT_TRUE(first.base);
  const std::vector<PackId> first_packs = cp->PacksInUse();
  EXPECT_FALSE(first_packs.empty());

  // A change, then a clean close without a checkpoint: it waits on local disk.
  ASSERT_OK(catalog_->Mkdir(kRootIno, "b", NewInode{}).status());
  ASSERT_OK(cp->Close());
  cp.reset();
  cp = StartOn(*catalog_, Packed());
  ASSERT_NE(cp, nullptr);
  EXPECT_TRUE(cp->HasPending());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo second, cp->Sync());
  EXPECT_FALSE(second.base);
  EXPECT_EQ(second.deltas, 1u);
  // The first checkpoint is the fallback now: its packs stay in use.
  const std::vector<PackId> in_use = cp->PacksInUse();
  for (const PackId& p : first_packs) {
    EXPECT_NE(std::find(in_use.begin(), in_use.end(), p), in_use.end());
  }
  cp.reset();

  // Changes made with no checkpointer watching: the next checkpoint is a base.
  ASSERT_OK(catalog_->Mkdir(kRootIno, "unseen", NewInode{}).status());
  cp = StartOn(*catalog_, Options());
  ASSERT_NE(cp, nullptr);
  ASSERT_OK_AND_ASSIGN(CheckpointInfo third, cp->Sync());
  EXPECT_TRUE(third.base);

  // A checkpointer that never closed (a crash): a base too.
  cp.reset();
  ASSERT_OK(catalog_->SetLocalState("checkpoint.pending", Bytes{1, 1, 0, 0, 0, 0, 0}));
  cp = StartOn(*catalog_, Options());
  ASSERT_NE(cp, nullptr);
  ASSERT_OK_AND_ASSIGN(CheckpointInfo fourth, cp->Sync());
  EXPECT_TRUE(fourth.base);
  EXPECT_EQ(RestoreAndDump("restored.db"), Dump(*catalog_));
}

TEST_F(CheckpointTest, BackgroundThreadCheckpointsWithinTheDelay) {
  CheckpointOptions o = Options();
  o.max_delay = std::chrono::milliseconds(300);
  o.poll = std::chrono::milliseconds(20);
  auto cp = StartOn(*catalog_, o);
  ASSERT_NE(cp, nullptr);
  ASSERT_OK(catalog_->Mkdir(kRootIno, "later", NewInode{}).status());
  ASSERT_OK_AND_ASSIGN(uint64_t change, catalog_->LastChange());
  for (int i = 0; i < 200 && cp->last().last_change < change; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(cp->last().last_change, change);
}

TEST_F(CheckpointTest, OnCloseStoresTheChanges) {
  CheckpointOptions o = Options();
  o.on_close = true;
  auto cp = StartOn(*catalog_, o);
  ASSERT_NE(cp, nullptr);
  ASSERT_OK(catalog_->Mkdir(kRootIno, "closing", NewInode{}).status());
  ASSERT_OK(cp->Close());
  EXPECT_FALSE(cp->HasPending());
  ASSERT_OK_AND_ASSIGN(uint64_t change, catalog_->LastChange());
  EXPECT_EQ(cp->last().last_change, change);
}

// Formats: damage and truncation are errors, never crashes.

TEST(CheckpointFormatTest, StoredObjectRoundTripAndTruncation) {
  StoredObject o;
  PackRecord p;
  p.id = RandomId<PackId>(1);
  p.k = 2;
  p.m = 1;
  p.size = 999;
  for (int i = 0; i < 3; ++i) {
    p.shards.push_back(RandomId<ShardId>(10 + static_cast<uint64_t>(i)));
    p.nodes.push_back(RandomId<NodeId>(20 + static_cast<uint64_t>(i)));
  }
  o.packs.push_back(p);
  o.chunks.push_back(ChunkRecord{RandomId<ChunkId>(5), p.id, 0, 128, 100, 1, 0});
  o.chunks.push_back(ChunkRecord{RandomId<ChunkId>(6), p.id, 128, 60, 50, 2, 1});
  o.size = 150;
  Bytes enc = EncodeStoredObject(o);
  ASSERT_OK_AND_ASSIGN(StoredObject back, DecodeStoredObject(enc));
  EXPECT_EQ(back, o);
  for (size_t n = 0; n < enc.size(); ++n) {
    auto r = DecodeStoredObject(ByteSpan(enc.data(), n));
    EXPECT_EQ(r.status().code(), Code::kCorruption) << "truncated to " << n;
  }
  Bytes wrong_size = enc;
  wrong_size[1] ^= 1;  // the size no longer adds up
  EXPECT_EQ(DecodeStoredObject(wrong_size).status().code(), Code::kCorruption);
  Bytes wrong_form = enc;
  wrong_form[0] = 2;
  EXPECT_EQ(DecodeStoredObject(wrong_form).status().code(), Code::kCorruption);
  Bytes huge_count = enc;
  StoreLE32(huge_count.data() + 9, 0xffffffffu);  // more packs than bytes
  EXPECT_EQ(DecodeStoredObject(huge_count).status().code(), Code::kCorruption);

  CheckpointManifest m;
  m.schema = 1;
  m.last_change = 9;
  m.base_change = 7;
  m.base_size = 150;
  m.base_index = o;
  m.deltas.push_back(CheckpointDelta{9, o});
  Bytes menc = EncodeCheckpointManifest(m);
  ASSERT_OK_AND_ASSIGN(CheckpointManifest mback, DecodeCheckpointManifest(menc));
  EXPECT_EQ(mback, m);
  for (size_t n = 0; n < menc.size(); ++n) {
    EXPECT_FALSE(DecodeCheckpointManifest(ByteSpan(menc.data(), n)).ok()) << n;
  }
  menc[4] = 3;
  EXPECT_EQ(DecodeCheckpointManifest(menc).status().code(), Code::kNotSupported);

  // An inline object: its bytes in the record, at most kMaxInlineObject of them.
  StoredObject small;
  small.size = 3;
  small.bytes = Bytes{1, 2, 3};
  Bytes senc = EncodeStoredObject(small);
  ASSERT_OK_AND_ASSIGN(StoredObject sback, DecodeStoredObject(senc));
  EXPECT_EQ(sback, small);
  for (size_t n = 0; n < senc.size(); ++n) {
    EXPECT_EQ(DecodeStoredObject(ByteSpan(senc.data(), n)).status().code(), Code::kCorruption);
  }
  StoredObject big;
  big.bytes = Bytes(kMaxInlineObject + 1, 7);
  big.size = big.bytes->size();
  EXPECT_EQ(DecodeStoredObject(EncodeStoredObject(big)).status().code(), Code::kCorruption);
}

TEST(CheckpointFormatTest, HeadAuthenticatesItsKeyAndSequence) {
  crypto::SecretKey key = crypto::SecretKey::Random();
  DriveHead h;
  h.sequence = 42;
  h.schema = 1;
  h.last_change = 17;
  h.config.name = "d";
  h.config.k = 2;
  h.config.m = 1;
  for (int i = 0; i < 3; ++i) {
    h.config.nodes.push_back(DriveNode{"10.0.0." + std::to_string(i) + ":7070",
                                       RandomId<NodeId>(static_cast<uint64_t>(i))});
  }
  h.manifest.size = 0;
  h.previous = StoredObject{};
  for (crypto::Cipher cipher : {crypto::Cipher::kAes256Gcm, crypto::Cipher::kXChaCha20Poly1305}) {
    ASSERT_OK_AND_ASSIGN(Bytes value, EncodeDriveHead(key, cipher, h));
    EXPECT_LE(value.size(), kMaxSlotValue);
    ASSERT_OK_AND_ASSIGN(DriveHead back, DecodeDriveHead(key, 42, value));
    EXPECT_EQ(back, h);
    // Another sequence (a record replayed under another number), another key, damage.
    EXPECT_EQ(DecodeDriveHead(key, 43, value).status().code(), Code::kCorruption);
    EXPECT_EQ(DecodeDriveHead(crypto::SecretKey::Random(), 42, value).status().code(),
              Code::kCorruption);
    for (size_t i = 0; i < value.size(); i += 7) {
      Bytes bad = value;
      bad[i] ^= 0x01;
      EXPECT_FALSE(DecodeDriveHead(key, 42, bad).ok()) << "flipped byte " << i;
    }
    for (size_t n = 0; n < value.size(); ++n) {
      EXPECT_FALSE(DecodeDriveHead(key, 42, ByteSpan(value.data(), n)).ok()) << n;
    }
  }
}

TEST(CheckpointFormatTest, MajorityOfNodes) {
  EXPECT_FALSE(HeadStoredEnough(0, 0));
  EXPECT_TRUE(HeadStoredEnough(1, 1));
  EXPECT_FALSE(HeadStoredEnough(1, 2));
  EXPECT_TRUE(HeadStoredEnough(2, 3));
  EXPECT_FALSE(HeadStoredEnough(3, 6));
  EXPECT_TRUE(HeadStoredEnough(4, 6));
}

}  // namespace
}  // namespace shardfs::backend
