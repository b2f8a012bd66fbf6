#include "backend/drive.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/memory_peer.h"
#include "base/file.h"
#include "base/splitmix64.h"
#include "crypto/sign.h"
#include "tests/faulty_peer.h"
#include "tests/memory_drive.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

using test::FaultyPeer;

class DriveTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(6); }

  // A drive over `count` fresh in-memory peers (RS 4+2), with its catalog in its own folder;
  // with `cache`, a chunk cache on disk only (so that every hit is a checked file) and
  // read-ahead.
  void Build(int count, bool cache = false) {
    drive_.reset();
    peers_.clear();
    mem_.clear();
    DriveOptions o =
        test::MemoryDriveOptions(dir_.path(), count, uint64_t{1} << 30, &peers_, &mem_);
    master_ = o.master;
    o.catalog_path = dir_.path() + "/catalog-" + std::to_string(count) + ".db";
    o.staging_dir = dir_.path() + "/staging-" + std::to_string(count);
    if (cache) {
      o.cache_dir = dir_.path() + "/cache-" + std::to_string(count) + "/chunks";
      o.memory_cache_bytes = 0;
    }
    options_ = o;
    ASSERT_OK_AND_ASSIGN(drive_, Drive::Open(std::move(o)));
  }
  // Closes the drive and opens it again over the same catalog and peers.
  void Reopen() {
    drive_.reset();
    ASSERT_OK_AND_ASSIGN(drive_, Drive::Open(options_));
  }

  // Opens a second drive with the same catalog, staging and peers (drive_ must be closed).
  Result<std::unique_ptr<Drive>> OpenAgain() { return Drive::Open(options_); }

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
  // A new file `name` holding `size` pseudo-random bytes (from `seed`), also put in *data.
  Ino WriteNew(const std::string& name, size_t size, uint64_t seed, Bytes* data) {
    Ino f = NewFile(name);
    *data = test::PseudoRandomBytes(size, seed);
    EXPECT_OK(drive_->WriteWholeFile(f, *data).status());
    return f;
  }
  // `count` files "f0", "f1" ... of 3,000 random bytes (seeds from `seed` on), and their bytes.
  std::vector<std::pair<Ino, Bytes>> WriteSmallFiles(int count, uint64_t seed) {
    std::vector<std::pair<Ino, Bytes>> files;
    for (int i = 0; i < count; ++i) {
      Bytes data;
      Ino f = WriteNew("f" + std::to_string(i), 3000, seed + static_cast<uint64_t>(i), &data);
      files.emplace_back(f, std::move(data));
    }
    return files;
  }
  // Reopens the drive with a write-back area of `limit` bytes and writes for room `wait`, and
  // fills it: file "f" gets `limit` random bytes (also put in *data), staged, not uploaded.
  Ino FillStagingArea(uint64_t limit, std::chrono::milliseconds wait, Bytes* data) {
    options_.staging_limit = limit;
    options_.staging_wait = wait;
    Reopen();
    Ino f = NewFile("f");
    *data = test::PseudoRandomBytes(limit, 3);
    EXPECT_OK(drive_->Write(f, 0, *data));
    return f;
  }
  // Checks that peer `liar`, and no other, is known to have served bad bytes.
  void ExpectOnlyLiar(size_t liar) {
    for (size_t i = 0; i < peers_.size(); ++i) {
      EXPECT_EQ(drive_->peers().health(i).bad_bytes > 0, i == liar) << i;
    }
  }
  // The index of the peer that holds shard `shard` of the pack of file `ino`'s first chunk.
  size_t PeerOfShard(Ino ino, int shard) {
    auto extents = drive_->catalog().ReadExtents(ino, 0, 1).value();
    auto chunk = drive_->catalog().FindChunk(extents.at(0).chunk).value().value();
    PackRecord pack = drive_->catalog().GetPack(chunk.pack).value();
    return drive_->peers().IndexOf(pack.nodes.at(static_cast<size_t>(shard))).value();
  }
  int PeerReads() {
    int total = 0;
    for (auto& p : peers_) total += p->reads;
    return total;
  }
  uint64_t ShardsStored() {
    uint64_t total = 0;
    for (auto& m : mem_) total += m->GetStatus().value().shards;
    return total;
  }
  // The shards of the catalog's packs: those stored but the kept checkpoints' (right after a
  // gc with every node up, no other checkpoint pack is left).
  uint64_t DataShardsStored() {
    return ShardsStored() - 6 * drive_->checkpointer().PacksInUse().size();
  }

  test::TempDir dir_;
  DriveOptions options_;
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

TEST_F(DriveTest, AnUnlinkedFileTakesItsNameOnlyWhenWritten) {
  Bytes old_data;
  Ino old = WriteNew("photo.jpg", 5000, 1, &old_data);
  ASSERT_OK_AND_ASSIGN(InodeAttr up, drive_->CreateUnlinked(NewInode{0644, 0, 0}));
  Bytes data = test::PseudoRandomBytes(300000, 2);
  ASSERT_OK(drive_->Write(up.ino, 0, ByteSpan(data).subspan(0, 100000)));
  ASSERT_OK(drive_->Write(up.ino, 100000, ByteSpan(data).subspan(100000)));
  // Not in the folder while it is written.
  ASSERT_OK_AND_ASSIGN(auto entries, drive_->ReadDir(kRootIno, "", 100));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(drive_->LinkUnlinked(up.ino, kRootIno, "photo.jpg", false).status().code(),
            Code::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(InodeAttr named,
                       drive_->LinkUnlinked(up.ino, kRootIno, "photo.jpg", /*replace=*/true));
  EXPECT_EQ(named.size, data.size());
  EXPECT_EQ(named.nlink, 1u);
  ASSERT_OK(drive_->Release(up.ino));
  ASSERT_OK_AND_ASSIGN(InodeAttr found, drive_->Lookup(kRootIno, "photo.jpg"));
  EXPECT_EQ(found.ino, up.ino);
  EXPECT_EQ(drive_->GetAttr(old).status().code(), Code::kNotFound);  // the old file dropped
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  Reopen();
  EXPECT_EQ(ReadAll(up.ino, data.size()), data);
  // A second name is refused; a folder is not replaced.
  EXPECT_EQ(drive_->LinkUnlinked(up.ino, kRootIno, "again", false).status().code(),
            Code::kInvalidArgument);
  ASSERT_OK(drive_->Mkdir(kRootIno, "dir", {}).status());
  ASSERT_OK_AND_ASSIGN(InodeAttr other, drive_->CreateUnlinked({}));
  EXPECT_EQ(drive_->LinkUnlinked(other.ino, kRootIno, "dir", true).status().code(),
            Code::kIsDirectory);
  // An upload given up on leaves nothing.
  ASSERT_OK(drive_->Write(other.ino, 0, data));
  ASSERT_OK(drive_->Release(other.ino));
  EXPECT_EQ(drive_->GetAttr(other.ino).status().code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto orphans, drive_->catalog().Orphans());
  EXPECT_TRUE(orphans.empty());
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

// A node whose answers are wrong but say OK (a peer that does not check): the chunk does not
// open, a retry singles out its shard, and leaf proofs confirm that it lied.
TEST_F(DriveTest, ALiarIsIdentifiedByLeafProofsAndReadAround) {
  Bytes data;
  Ino f = WriteNew("f", 1 << 20, 14, &data);
  const size_t liar = PeerOfShard(f, 0);
  peers_[liar]->lies = true;
  EXPECT_EQ(ReadAll(f, data.size()), data);
  ExpectOnlyLiar(liar);
  // Known as a liar, it is read around at once: its data shard is rebuilt from the others.
  const int reads_before = peers_[liar]->reads;
  EXPECT_EQ(ReadAll(f, data.size()), data);
  EXPECT_EQ(peers_[liar]->reads, reads_before);
}

// A node whose answers fail the peer's own proof check (HttpPeer answers Corruption).
TEST_F(DriveTest, ANodeWhoseProofsFailIsALiar) {
  Bytes data;
  Ino f = WriteNew("f", 1 << 20, 15, &data);
  const size_t liar = PeerOfShard(f, 1);
  peers_[liar]->corrupts = true;
  EXPECT_EQ(ReadAll(f, data.size()), data);
  ExpectOnlyLiar(liar);
  EXPECT_EQ(drive_->peers().health(liar).failures, 0u);  // a liar, not a node that is down
}

// A slow data shard is raced by a rebuild from k others after the hedge delay; the read ends
// long before the slow node would answer, and its request is cancelled, not waited out.
TEST_F(DriveTest, ASlowNodeIsHedgedAndItsRequestCancelled) {
  Bytes data;
  Ino f = WriteNew("f", 1 << 20, 16, &data);
  const size_t slow = PeerOfShard(f, 0);
  peers_[slow]->delay_ms = 10000;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadAll(f, data.size()), data);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_GT(peers_[slow]->reads, 0);
  // Every request it was sent ends soon after the read, cancelled.
  for (int i = 0; i < 2000 && peers_[slow]->finished < peers_[slow]->reads; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(peers_[slow]->finished.load(), peers_[slow]->reads.load());
  EXPECT_EQ(peers_[slow]->cancelled.load(), peers_[slow]->reads.load());
  PeerHealth h = drive_->peers().health(slow);
  EXPECT_EQ(h.failures, 0u);        // slow is not down
  EXPECT_GT(h.latency_us, 5000.0);  // raised by the cancelled requests
}

// Two stopped nodes (they accept requests and never answer) holding data shards of many small
// files: every file reads back right, and the reads soon stop waiting a hedge delay for them.
// Their reads are all overtaken by rebuilds, none runs into its deadline, and after four in a
// row the node is backed off and its data shards are rebuilt from the others at once.
TEST_F(DriveTest, TwoStoppedNodesAreReadAroundPromptly) {
  const std::vector<std::pair<Ino, Bytes>> files = WriteSmallFiles(200, 100);
  auto read_all = [&] {
    const auto start = std::chrono::steady_clock::now();
    for (const auto& [f, data] : files) EXPECT_EQ(ReadAll(f, data.size()), data);
    return std::chrono::steady_clock::now() - start;
  };
  const auto all_up = read_all();
  const size_t a = PeerOfShard(files[0].first, 0);
  const size_t b = PeerOfShard(files[0].first, 1);
  const int reads_before = peers_[a]->reads + peers_[b]->reads;
  for (size_t s : {a, b}) {
    peers_[s]->stopped = true;
    peers_[s]->deadline_ms = 30000;
  }
  const auto took = read_all();
  // Waiting a hedge delay (at least 40 ms) for each file whose data shard is on them took
  // 2.6 s here (0.03 s with all nodes up); reading around them takes 0.3 s.
  EXPECT_LT(took, 3 * all_up + std::chrono::milliseconds(1000));
  // Not backed off, they would be asked for every file whose data shard they hold (dozens);
  // backed off after four reads in a row overtaken, a few times each.
  EXPECT_LT(peers_[a]->reads + peers_[b]->reads - reads_before, 20);
}

// Many reads at once around two stopped nodes: reads blocked on them hold pool threads until
// they are cancelled, so the pool grows for the reads that race them (ChunkReaderOptions::
// max_threads); otherwise every read would wait for the stopped nodes' deadline.
TEST_F(DriveTest, ConcurrentReadsAroundStoppedNodesDoNotWaitForThem) {
  const std::vector<std::pair<Ino, Bytes>> files = WriteSmallFiles(160, 300);
  auto read_all = [&] {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> readers;
    for (size_t t = 0; t < 8; ++t) {
      readers.emplace_back([&, t] {
        for (size_t i = t; i < files.size(); i += 8) {
          EXPECT_EQ(ReadAll(files[i].first, files[i].second.size()), files[i].second) << i;
        }
      });
    }
    for (auto& r : readers) r.join();
    return std::chrono::steady_clock::now() - start;
  };
  const auto all_up = read_all();
  for (size_t s : {PeerOfShard(files[0].first, 0), PeerOfShard(files[0].first, 1)}) {
    peers_[s]->stopped = true;
    peers_[s]->deadline_ms = 30000;
  }
  EXPECT_LT(read_all(), 3 * all_up + std::chrono::milliseconds(2000));
}

// Three stopped nodes of six: fewer than k shards can answer. The read fails once the stopped
// nodes' deadline passes, not later, with a message that names them; no bytes come out. While
// they are backed off after that timeout, a read that needs them does not ask them again and
// fails at once.
TEST_F(DriveTest, ThreeStoppedNodesFailTheReadAtTheirDeadlineAndAreNamed) {
  Bytes data;
  Ino f = WriteNew("f", 1 << 20, 19, &data);
  const size_t stopped[] = {PeerOfShard(f, 0), PeerOfShard(f, 2), PeerOfShard(f, 5)};
  for (size_t s : stopped) {
    peers_[s]->stopped = true;
    peers_[s]->deadline_ms = 1000;
  }
  Bytes out(data.size(), 0xee);
  auto start = std::chrono::steady_clock::now();
  auto r = drive_->Read(f, 0, out);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  for (size_t s : stopped) {
    EXPECT_NE(r.status().message().find(peers_[s]->name()), std::string::npos)
        << r.status().ToString();
    EXPECT_TRUE(drive_->peers().Unresponsive(s)) << s;  // timed out: backed off at once
  }
  EXPECT_NE(r.status().message().find("DeadlineExceeded"), std::string::npos);
  EXPECT_EQ(out, Bytes(out.size(), 0));

  const int reads = PeerReads();
  start = std::chrono::steady_clock::now();
  r = drive_->Read(f, 0, out);
  took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_LT(took, std::chrono::milliseconds(500));
  for (size_t s : stopped) {
    EXPECT_NE(r.status().message().find(peers_[s]->name() + ": not asked"), std::string::npos)
        << r.status().ToString();
  }
  EXPECT_EQ(PeerReads() - reads, 3);  // the three nodes that answer
  EXPECT_EQ(out, Bytes(out.size(), 0));

  // The nodes answer again: the drive's probes find them within a few probe intervals (1 s;
  // a probe on its way to a stopped node takes its 1 s deadline), well before their 5 s
  // back-off ends, and reads use them again.
  for (size_t s : stopped) peers_[s]->stopped = false;
  start = std::chrono::steady_clock::now();
  bool back = false;
  while (!back && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    back = drive_->Read(f, 0, out).ok();
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(back);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(3500));
  EXPECT_EQ(out, data);
  for (size_t s : stopped) EXPECT_FALSE(drive_->peers().BackedOff(s)) << s;
  // A new session asks them at once too (the back-off is not kept).
  Reopen();
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

// A shard put to a stopped node goes to a node no shard of the pack went to: when the put
// fails at the peer's deadline (1 s here), or, if that is far off (a large body that stalls
// waits io_timeout, 30 s), once it has run UploadPackOptions::move_after (5 s) and four times
// as long as the others took. The node is backed off at once, so the next pack does not wait
// for it.
TEST_F(DriveTest, AnUploadToAStoppedNodeMovesOnAndTheNextAvoidsIt) {
  for (int deadline_ms : {1000, 60000}) {
    SCOPED_TRACE(deadline_ms);
    Build(7);  // the same catalog each time: the files' names differ
    peers_[3]->stopped = true;
    peers_[3]->deadline_ms = deadline_ms;
    const auto bound = std::chrono::milliseconds(std::min(deadline_ms, 5000) + 3000);
    Bytes data;
    Ino f = 0;
    // Placement draws six of the seven: write until it drew the stopped one.
    for (int i = 0; i < 30 && peers_[3]->puts == 0; ++i) {
      const auto start = std::chrono::steady_clock::now();
      f = WriteNew(std::to_string(deadline_ms) + "f" + std::to_string(i), 300000, 20 + i, &data);
      EXPECT_LT(std::chrono::steady_clock::now() - start, bound);
    }
    ASSERT_GT(peers_[3]->puts, 0);
    EXPECT_EQ(mem_[3]->GetStatus().value().shards, 0u);
    EXPECT_TRUE(drive_->peers().ShouldAvoid(3));
    const int puts = peers_[3]->puts;
    Bytes more;
    const auto start = std::chrono::steady_clock::now();
    Ino g = WriteNew(std::to_string(deadline_ms) + "g", 300000, 99, &more);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
    EXPECT_EQ(peers_[3]->puts, puts);  // six others were there: it was not asked
    EXPECT_EQ(ReadAll(f, data.size()), data);
    EXPECT_EQ(ReadAll(g, more.size()), more);
  }
}

// What the client saw of each node (bad bytes, failures, latency, last answer) is in the
// catalog after the drive closes, and back in the PeerSet when it opens again.
TEST_F(DriveTest, NodeHealthIsKeptAcrossSessions) {
  Bytes data;
  Ino f = WriteNew("f", 1 << 20, 17, &data);
  const size_t liar = PeerOfShard(f, 0);
  const size_t down = PeerOfShard(f, 1);
  peers_[liar]->corrupts = true;
  peers_[down]->down = true;
  EXPECT_EQ(ReadAll(f, data.size()), data);
  std::vector<PeerHealth> before;
  for (size_t i = 0; i < peers_.size(); ++i) before.push_back(drive_->peers().health(i));
  EXPECT_GT(before[down].failures, 0u);
  Reopen();
  ExpectOnlyLiar(liar);
  for (size_t i = 0; i < peers_.size(); ++i) {
    PeerHealth h = drive_->peers().health(i);
    EXPECT_EQ(h.bad_bytes, before[i].bad_bytes) << i;
    EXPECT_EQ(h.failures, before[i].failures) << i;
    EXPECT_EQ(h.successes, before[i].successes) << i;
    EXPECT_NEAR(h.latency_us, before[i].latency_us, 1.0) << i;
    EXPECT_EQ(h.last_seen_ns, before[i].last_seen_ns) << i;
    if (i != down && i != liar) {
      EXPECT_GT(h.last_seen_ns, 0) << i;
    }
  }
  ASSERT_OK_AND_ASSIGN(auto records, drive_->catalog().LoadNodes());
  EXPECT_EQ(records.size(), peers_.size());
}

TEST_F(DriveTest, CachedChunksAreReadWithoutTheNetwork) {
  Build(6, true);
  Bytes data;
  Ino f = WriteNew("f", 1 << 20, 18, &data);
  EXPECT_EQ(ReadAll(f, data.size()), data);
  const int after_first = PeerReads();
  EXPECT_GT(after_first, 0);
  EXPECT_EQ(ReadAll(f, data.size()), data);
  Reopen();  // from the files on disk
  EXPECT_EQ(ReadAll(f, data.size()), data);
  EXPECT_EQ(PeerReads(), after_first);
  EXPECT_GT(drive_->cache()->stats().hits, 0u);
  // Even with every node down.
  for (auto& p : peers_) p->down = true;
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

TEST_F(DriveTest, ConcurrentReadsOfOneChunkFetchItOnce) {
  Build(6, true);
  Bytes data;
  Ino f = WriteNew("f", 200000, 21, &data);  // a few chunks
  // Slow nodes, and no hedging within their delay: reads that overlap in time.
  options_.read.hedge_floor = options_.read.hedge_cap = std::chrono::milliseconds(5000);
  Reopen();
  for (auto& p : peers_) p->delay_ms = 200;
  const int before = PeerReads();
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&, i] {
      Bytes out(50000);
      auto n = drive_->Read(f, static_cast<uint64_t>(i) * 50000, out);
      if (n.ok() && *n == out.size() &&
          std::equal(out.begin(), out.end(), data.begin() + static_cast<long>(i) * 50000)) {
        ++good;
      }
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(good.load(), 4);
  const int one_fetch = PeerReads() - before;
  EXPECT_GT(one_fetch, 0);
  // The four reads (they share chunks at their edges) cost what one read of the whole file
  // costs: no chunk was fetched twice.
  drive_.reset();
  std::filesystem::remove_all(options_.cache_dir);
  Reopen();
  const int again = PeerReads();
  EXPECT_EQ(ReadAll(f, data.size()), data);
  EXPECT_EQ(PeerReads() - again, one_fetch);
}

TEST_F(DriveTest, ADamagedCacheFileIsDroppedAndFetchedAgain) {
  Build(6, true);
  Bytes data;
  Ino f = WriteNew("f", 300000, 19, &data);
  EXPECT_EQ(ReadAll(f, data.size()), data);
  auto extents = drive_->catalog().ReadExtents(f, 0, 1).value();
  const std::string path = drive_->cache()->PathOf(extents.at(0).chunk);
  {
    Bytes file = ReadFile(path, 1 << 20).value();
    file[file.size() - 1] ^= 0x08;
    ASSERT_OK(WriteFileAtomic(path, file, 0600));
  }
  const int reads = PeerReads();
  EXPECT_EQ(ReadAll(f, data.size()), data);
  EXPECT_EQ(drive_->cache()->stats().damaged, 1u);
  EXPECT_GT(PeerReads(), reads);                                // fetched again
  EXPECT_TRUE(drive_->cache()->Contains(extents.at(0).chunk));  // and cached again
}

// A long sequential read writes the chunks of its first stream_cache_bytes to the disk cache;
// those further on are kept in memory only, so a streamed file does not push the rest out.
TEST_F(DriveTest, LongSequentialReadsKeepTheDiskCacheForTheirStart) {
  Build(6, true);
  options_.stream_cache_bytes = 512 * 1024;
  options_.memory_cache_bytes = 8 << 20;
  Reopen();
  Bytes data;
  Ino f = WriteNew("f", 4 << 20, 22, &data);
  Reopen();  // nothing cached
  Bytes got(data.size());
  for (uint64_t at = 0; at < data.size(); at += 128 * 1024) {
    ASSERT_OK_AND_ASSIGN(size_t n,
                         drive_->Read(f, at, MutableByteSpan(got).subspan(at, 128 * 1024)));
    ASSERT_EQ(n, 128u * 1024);
  }
  EXPECT_EQ(got, data);
  // The first 512 KiB, and what was fetched ahead while the read was within it (at most 4
  // chunks of 256 KiB): well under the file's 4 MiB.
  const ChunkCacheStats st = drive_->cache()->stats();
  EXPECT_GT(st.disk_bytes, 0u);
  EXPECT_LT(st.disk_bytes, uint64_t{2} << 20) << st.files << " files";
  // A read elsewhere in the file starts a new stream, whose start goes to disk again.
  drive_.reset();
  options_.memory_cache_bytes = 0;
  Reopen();
  const uint64_t before = drive_->cache()->stats().disk_bytes;
  Bytes tail(64 * 1024);
  ASSERT_OK(drive_->Read(f, data.size() - tail.size(), tail).status());
  EXPECT_TRUE(
      std::equal(tail.begin(), tail.end(), data.end() - static_cast<ptrdiff_t>(tail.size())));
  EXPECT_GT(drive_->cache()->stats().disk_bytes, before);
}

TEST_F(DriveTest, SequentialReadsFetchTheNextChunksAhead) {
  Build(6, true);
  Bytes data;
  Ino f = WriteNew("f", 2 << 20, 20, &data);
  auto extents = drive_->catalog().ReadExtents(f, 0, data.size()).value();
  ASSERT_GT(extents.size(), 8u);
  auto cached = [&](size_t i) { return drive_->cache()->Contains(extents.at(i).chunk); };
  // A read near the end that follows no earlier read is not sequential: nothing more is
  // fetched.
  Bytes part(1000);
  ASSERT_OK(drive_->Read(f, data.size() - 1000, part).status());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const uint64_t files = drive_->cache()->stats().files;
  EXPECT_LE(files, 2u);
  // From the start of the file: the chunks that follow are fetched in the background, four.
  ASSERT_OK(drive_->Read(f, 0, part).status());
  for (int i = 0; i < 5000 && !(cached(1) && cached(2) && cached(3) && cached(4)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (size_t i = 0; i <= 4; ++i) EXPECT_TRUE(cached(i)) << i;
  EXPECT_FALSE(cached(5));
  EXPECT_EQ(drive_->cache()->stats().files, files + 5);
  // Reading on finds them, and fetches further ahead.
  Bytes next(extents.at(4).offset + extents.at(4).size - 1000);
  const int reads = PeerReads();
  ASSERT_OK_AND_ASSIGN(size_t n, drive_->Read(f, 1000, next));
  EXPECT_EQ(n, next.size());
  EXPECT_EQ(0, std::memcmp(next.data(), data.data() + 1000, n));
  for (int i = 0; i < 5000 && !cached(8); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(cached(8));
  EXPECT_GT(PeerReads(), reads);  // by the read-ahead only
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

// A file written in many small writes (two files at once, so their records interleave in the
// staging segment) is cut into chunks as a whole, as `put` cuts it: storing the same bytes
// whole afterwards adds nothing.
TEST_F(DriveTest, AFileWrittenInSmallWritesIsChunkedAsIfWrittenWhole) {
  const Bytes a = test::PseudoRandomBytes(1 << 20, 31);
  const Bytes b = test::PseudoRandomBytes(700000, 32);
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  constexpr size_t kWrite = 4096;
  for (size_t at = 0; at < a.size(); at += kWrite) {
    ASSERT_OK(drive_->Write(f, at, ByteSpan(a).subspan(at, std::min(kWrite, a.size() - at))));
    if (at < b.size()) {
      ASSERT_OK(drive_->Write(g, at, ByteSpan(b).subspan(at, std::min(kWrite, b.size() - at))));
    }
  }
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
  EXPECT_EQ(ReadAll(f, a.size()), a);
  EXPECT_EQ(ReadAll(g, b.size()), b);
  ASSERT_OK_AND_ASSIGN(auto extents, drive_->catalog().ReadExtents(f, 0, a.size()));
  EXPECT_LT(extents.size(), a.size() / kWrite / 4);  // chunks of ~64 KiB, not 4 KiB
  const uint64_t stored = ShardsStored();
  ASSERT_OK(drive_->WriteWholeFile(NewFile("f2"), a).status());
  ASSERT_OK(drive_->WriteWholeFile(NewFile("g2"), b).status());
  EXPECT_EQ(ShardsStored(), stored);  // every chunk was known
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
  const uint64_t before = ShardsStored();
  // Six peers, one down: a pack needs six distinct ones, so the write fails and the file
  // stays as it was.
  auto r = drive_->WriteWholeFile(f, data);
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->catalog().GetAttr(f));
  EXPECT_EQ(a.size, 0u);
  // The shards the other five took are deleted again: nothing is left that nothing names.
  EXPECT_EQ(ShardsStored(), before);
  peers_[2]->down = false;
  ASSERT_OK(drive_->WriteWholeFile(f, data).status());
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

TEST_F(DriveTest, XattrsAreKeptWithTheFileAndGoWithIt) {
  Ino f = NewFile("f");
  drive_->Open(f);
  ASSERT_OK(drive_->Write(f, 0, test::PseudoRandomBytes(1000, 50)));
  ASSERT_OK_AND_ASSIGN(InodeAttr before, drive_->GetAttr(f));
  // The rules are the catalog's (catalog_test.cc); here, that the drive keeps them.
  ASSERT_OK(drive_->SetXattr(f, "user.color", ToBytes("blue"), XattrMode::kCreate));
  ASSERT_OK(drive_->SetXattr(f, "user.size", ToBytes("9"), XattrMode::kAny));
  EXPECT_EQ(drive_->GetXattr(f, "user.color").value_or({}), ToBytes("blue"));
  EXPECT_EQ(drive_->ListXattr(f).value_or({}),
            (std::vector<std::string>{"user.color", "user.size"}));
  ASSERT_OK_AND_ASSIGN(InodeAttr after, drive_->GetAttr(f));
  EXPECT_GT(after.ctime_ns, before.ctime_ns);
  EXPECT_EQ(after.size, 1000u);  // the staged size still shows
  ASSERT_OK(drive_->RemoveXattr(f, "user.size"));
  EXPECT_EQ(drive_->GetXattr(f, "user.size").status().code(), Code::kNoAttribute);
  // The upload of the file's bytes leaves its attributes alone.
  ASSERT_OK(drive_->Fsync(f, std::chrono::seconds(20)));
  EXPECT_EQ(drive_->GetXattr(f, "user.color").value_or({}), ToBytes("blue"));
  // Removed while open: kept until the last release, then gone with the file.
  ASSERT_OK(drive_->Unlink(kRootIno, "f"));
  EXPECT_EQ(drive_->GetXattr(f, "user.color").value_or({}), ToBytes("blue"));
  ASSERT_OK(drive_->Release(f));
  EXPECT_EQ(drive_->GetXattr(f, "user.color").status().code(), Code::kNotFound);
  EXPECT_EQ(drive_->ListXattr(f).status().code(), Code::kNotFound);
}

// A model of a file: what the drive must read back after any mix of writes and truncates.
void ModelWrite(Bytes* model, uint64_t offset, ByteSpan data) {
  if (model->size() < offset + data.size()) model->resize(offset + data.size(), 0);
  std::memcpy(model->data() + offset, data.data(), data.size());
}

TEST_F(DriveTest, StagedWritesReadBackBeforeAndAfterUpload) {
  Ino f = NewFile("f");
  Bytes model;
  Bytes a = test::PseudoRandomBytes(300000, 21);
  ASSERT_OK(drive_->Write(f, 0, a));
  ModelWrite(&model, 0, a);
  Bytes b = test::PseudoRandomBytes(5000, 22);
  ASSERT_OK(drive_->Write(f, 1000000, b));  // past the end: a hole before it
  ModelWrite(&model, 1000000, b);
  EXPECT_EQ(ShardsStored(), 0u);  // nothing went to the network
  ASSERT_OK_AND_ASSIGN(InodeAttr attr, drive_->GetAttr(f));
  EXPECT_EQ(attr.size, model.size());
  EXPECT_EQ(ReadAll(f, model.size()), model);
  ASSERT_OK(drive_->Fsync(f, std::chrono::seconds(20)));
  EXPECT_GT(ShardsStored(), 0u);
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  ASSERT_OK_AND_ASSIGN(attr, drive_->catalog().GetAttr(f));
  EXPECT_EQ(attr.size, model.size());
  EXPECT_EQ(ReadAll(f, model.size()), model);
  // Overwrite in the middle, then truncate and extend: only the new bytes are staged.
  Bytes c = test::PseudoRandomBytes(1000, 23);
  ASSERT_OK(drive_->Write(f, 150000, c));
  ModelWrite(&model, 150000, c);
  backend::AttrChange cut;
  cut.size = 200000;
  ASSERT_OK(drive_->SetAttr(f, cut).status());
  model.resize(200000);
  cut.size = 250000;
  ASSERT_OK(drive_->SetAttr(f, cut).status());
  model.resize(250000, 0);
  EXPECT_EQ(ReadAll(f, model.size()), model);
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
  EXPECT_EQ(ReadAll(f, model.size()), model);
}

TEST_F(DriveTest, RandomWritesTruncatesAndUploadsMatchAModel) {
  // Layers pile up while others upload: the uploader runs between steps at random.
  std::vector<Ino> files = {NewFile("a"), NewFile("b"), NewFile("c")};
  std::vector<Bytes> models(files.size());
  uint64_t rng = 77;
  auto next = [&rng](uint64_t n) { return SplitMix64Next(&rng) % n; };
  for (int step = 0; step < 300; ++step) {
    size_t i = next(files.size());
    switch (next(10)) {
      case 0: {
        backend::AttrChange t;
        t.size = next(400000);
        ASSERT_OK(drive_->SetAttr(files[i], t).status());
        models[i].resize(*t.size, 0);
        break;
      }
      case 1:
        ASSERT_OK(drive_->Flush(files[i]));
        break;
      case 2:
        if (next(4) == 0) {
          ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
        }
        break;
      default: {
        Bytes data = test::PseudoRandomBytes(1 + next(70000), step);
        uint64_t at = next(400000);
        ASSERT_OK(drive_->Write(files[i], at, data));
        ModelWrite(&models[i], at, data);
      }
    }
    if (step % 37 == 0) {
      for (size_t j = 0; j < files.size(); ++j) {
        ASSERT_EQ(ReadAll(files[j], models[j].size()), models[j]) << "step " << step;
      }
    }
  }
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  for (size_t j = 0; j < files.size(); ++j) {
    ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->catalog().GetAttr(files[j]));
    EXPECT_EQ(a.size, models[j].size());
    EXPECT_EQ(ReadAll(files[j], models[j].size()), models[j]);
  }
}

// A file kept open and written on (dd conv=fsync of a big file): each time its open layer
// passes freeze_bytes it is frozen and uploaded while the writes go on, in layers that reads,
// a truncate and an fsync see in the right order.
TEST_F(DriveTest, AFileWrittenPastFreezeBytesUploadsWhileStillOpen) {
  constexpr uint64_t kFreeze = 256 * 1024;
  constexpr size_t kWrite = 64 * 1024;
  options_.uploader.freeze_bytes = kFreeze;
  options_.uploader.idle_freeze = std::chrono::seconds(600);  // only the size freezes
  Reopen();
  Ino f = NewFile("big");
  drive_->Open(f);
  ASSERT_OK_AND_ASSIGN(const uint64_t changes_before, drive_->catalog().LastChange());
  Bytes data = test::PseudoRandomBytes(3 * kFreeze + 10000, 60);
  Bytes model;
  for (size_t at = 0; at < data.size(); at += kWrite) {
    ByteSpan piece = ByteSpan(data).subspan(at, std::min(kWrite, data.size() - at));
    ASSERT_OK(drive_->Write(f, at, piece));
    ModelWrite(&model, at, piece);
    if (at % (3 * kWrite) == 0) {
      ASSERT_EQ(ReadAll(f, model.size()), model) << at;
    }
  }
  // No flush, fsync or idle freeze: the layers that passed kFreeze are committed anyway.
  uint64_t stored = 0;
  for (int i = 0; i < 2000 && stored < 5 * kWrite; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stored = drive_->catalog().GetAttr(f).value().size;
  }
  EXPECT_GE(stored, 5 * kWrite);  // the first layer: five writes, the one that passed kFreeze
  EXPECT_EQ(ReadAll(f, model.size()), model);
  // A truncate into committed bytes, then a write past a hole.
  AttrChange cut;
  cut.size = kFreeze + 1234;
  ASSERT_OK(drive_->SetAttr(f, cut).status());
  model.resize(*cut.size);
  Bytes tail = test::PseudoRandomBytes(kFreeze, 61);
  ModelWrite(&model, model.size() + 5000, tail);
  ASSERT_OK(drive_->Write(f, model.size() - tail.size(), tail));
  EXPECT_EQ(ReadAll(f, model.size()), model);
  ASSERT_OK(drive_->Fsync(f, std::chrono::seconds(30)));
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  EXPECT_EQ(drive_->catalog().GetAttr(f).value().size, model.size());
  EXPECT_EQ(ReadAll(f, model.size()), model);  // from the nodes now
  // One commit per layer, each its own journal row: at least the two full layers and the last.
  ASSERT_OK_AND_ASSIGN(const uint64_t changes_after, drive_->catalog().LastChange());
  EXPECT_GE(changes_after - changes_before, 3u);
  ASSERT_OK(drive_->Release(f));
  Reopen();
  EXPECT_EQ(ReadAll(f, model.size()), model);
}

TEST_F(DriveTest, SmallFilesShareTheirPacks) {
  for (int i = 0; i < 200; ++i) {
    Ino f = NewFile("small" + std::to_string(i));
    ASSERT_OK(drive_->Write(f, 0, test::PseudoRandomBytes(4096, 1000 + i)));
    ASSERT_OK(drive_->Release(f));
  }
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
  // 800 KiB with packs of 1 MiB here: one pack, six shards (a quiet moment may split it).
  EXPECT_LE(ShardsStored(), 12u);
  ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->Lookup(kRootIno, "small7"));
  EXPECT_EQ(ReadAll(a.ino, 4096), test::PseudoRandomBytes(4096, 1007));
}

TEST_F(DriveTest, MtimeSetAfterWritesSurvivesTheUpload) {
  Ino f = NewFile("f");
  ASSERT_OK(drive_->Write(f, 0, test::PseudoRandomBytes(1000, 1)));
  ASSERT_OK(drive_->Flush(f));
  backend::AttrChange t;
  t.mtime_ns = int64_t{1234567890123456789};
  ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->SetAttr(f, t));
  EXPECT_EQ(a.mtime_ns, *t.mtime_ns);
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
  ASSERT_OK_AND_ASSIGN(a, drive_->catalog().GetAttr(f));
  EXPECT_EQ(a.mtime_ns, *t.mtime_ns);
  EXPECT_EQ(a.size, 1000u);
}

TEST_F(DriveTest, UnlinkCancelsPendingUploadsAndOpenFilesLiveOn) {
  Ino f = NewFile("gone");
  peers_[0]->down = true;  // uploads fail for now
  ASSERT_OK(drive_->Write(f, 0, test::PseudoRandomBytes(10000, 2)));
  ASSERT_OK(drive_->Unlink(kRootIno, "gone"));
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  EXPECT_EQ(drive_->catalog().GetAttr(f).status().code(), Code::kNotFound);
  // An open file outlives its name until its last release.
  Ino g = NewFile("open");
  drive_->Open(g);
  Bytes data = test::PseudoRandomBytes(5000, 3);
  ASSERT_OK(drive_->Write(g, 0, data));
  ASSERT_OK(drive_->Unlink(kRootIno, "open"));
  EXPECT_EQ(ReadAll(g, data.size()), data);
  ASSERT_OK(drive_->Release(g));
  EXPECT_EQ(drive_->catalog().GetAttr(g).status().code(), Code::kNotFound);
  peers_[0]->down = false;
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
}

TEST_F(DriveTest, SyncWaitsForNodesAndFailsClearlyWhenTheyStayDown) {
  Ino f = NewFile("f");
  Bytes data = test::PseudoRandomBytes(100000, 4);
  ASSERT_OK(drive_->Write(f, 0, data));
  peers_[1]->down = true;  // six peers, six shards: every pack needs all of them
  Status s = drive_->Sync(std::chrono::milliseconds(1500));
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.ToString();
  EXPECT_EQ(drive_->Uploads().staged.layers, 1u);  // still queued
  EXPECT_EQ(ReadAll(f, data.size()), data);        // and readable
  peers_[1]->down = false;
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
}

TEST_F(DriveTest, AWriteLargerThanTheStagingLimitFailsAtOnce) {
  options_.staging_limit = 100000;
  Reopen();
  Ino f = NewFile("f");
  Status s = drive_->Write(f, 0, test::PseudoRandomBytes(100001, 1));
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  EXPECT_NE(s.message().find("larger than the local write-back area"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  EXPECT_EQ(drive_->GetAttr(f).value().size, 0u);
  EXPECT_EQ(drive_->Uploads().staging_limit, 100000u);
  ASSERT_OK(drive_->Write(f, 0, test::PseudoRandomBytes(100000, 1)));
}

// Writers in several threads, each far more than the limit: each write waits for uploads to
// make room, none fails, and the area never holds more than the limit.
TEST_F(DriveTest, WritesWaitForUploadsToMakeRoom) {
  constexpr uint64_t kLimit = 256 * 1024;
  options_.staging_limit = kLimit;
  options_.staging_wait = std::chrono::seconds(30);
  Reopen();
  std::vector<Ino> files = {NewFile("a"), NewFile("b"), NewFile("c")};
  std::vector<Bytes> data;
  for (size_t i = 0; i < files.size(); ++i) data.push_back(test::PseudoRandomBytes(1 << 20, i));
  std::atomic<bool> writing{true};
  std::atomic<uint64_t> most_staged{0};
  std::thread watcher([&] {
    while (writing) {
      most_staged = std::max(most_staged.load(), drive_->Uploads().staged.bytes);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::thread> writers;
  for (size_t i = 0; i < files.size(); ++i) {
    writers.emplace_back([&, i] {
      for (size_t at = 0; at < data[i].size(); at += 32 * 1024) {
        EXPECT_OK(drive_->Write(files[i], at, ByteSpan(data[i]).subspan(at, 32 * 1024)));
      }
    });
  }
  for (auto& w : writers) w.join();
  writing = false;
  watcher.join();
  EXPECT_LE(most_staged.load(), kLimit);
  EXPECT_GT(ShardsStored(), 0u);  // uploads made the room
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  for (size_t i = 0; i < files.size(); ++i) EXPECT_EQ(ReadAll(files[i], data[i].size()), data[i]);
}

// With a node down every upload fails: a write that does not fit fails at once with NoSpace
// that has the uploads' error, and changes nothing; once the node is back, room comes.
TEST_F(DriveTest, AFullStagingAreaFailsAtOnceWhenUploadsFail) {
  constexpr uint64_t kLimit = 256 * 1024;
  Bytes data;
  const Ino f = FillStagingArea(kLimit, std::chrono::seconds(60), &data);
  peers_[1]->down = true;
  const auto start = std::chrono::steady_clock::now();
  Status s = drive_->Write(f, kLimit, test::PseudoRandomBytes(1000, 4));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  EXPECT_NE(s.message().find("write-back area is full"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("uploads are failing"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("Unavailable: pack"), std::string::npos) << s.ToString();
  // Refused whole: the file is as it was.
  EXPECT_EQ(drive_->GetAttr(f).value().size, kLimit);
  EXPECT_EQ(ReadAll(f, kLimit), data);
  EXPECT_EQ(drive_->Uploads().staged.bytes, kLimit);
  // Later writes fail at once too, without a wait.
  const auto again = std::chrono::steady_clock::now();
  EXPECT_EQ(drive_->Write(f, 0, Bytes(10, 1)).code(), Code::kNoSpace);
  EXPECT_LT(std::chrono::steady_clock::now() - again, std::chrono::seconds(1));
  // What an unmount does when uploads cannot finish: it makes the queued bytes durable on the
  // local disk, and the next Open finds them.
  ASSERT_OK(drive_->SyncStaging());
  Reopen();
  EXPECT_EQ(drive_->Uploads().staged.bytes, kLimit);
  EXPECT_EQ(ReadAll(f, kLimit), data);
  peers_[1]->down = false;
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  Bytes more = test::PseudoRandomBytes(1000, 4);
  ASSERT_OK(drive_->Write(f, kLimit, more));
  data.insert(data.end(), more.begin(), more.end());
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

// Once the nodes are back, a refused write has the uploader try again soon (as for a waiting
// Fsync), not after its back-off, which has grown to seconds by then.
TEST_F(DriveTest, ARefusedWriteHurriesTheUploader) {
  options_.uploader.retry_wait = std::chrono::milliseconds(1000);
  options_.uploader.max_retry_wait = std::chrono::seconds(60);
  Bytes data;
  const Ino f = FillStagingArea(256 * 1024, std::chrono::seconds(60), &data);
  peers_[1]->down = true;
  EXPECT_EQ(drive_->Write(f, 0, Bytes(10, 1)).code(), Code::kNoSpace);
  // Failed tries at about 0, 1 and 3 s: the uploader's own next one would be at about 7 s.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  peers_[1]->down = false;
  const auto start = std::chrono::steady_clock::now();
  Status s;
  while (!(s = drive_->Write(f, 0, Bytes(10, 1))).ok() &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_OK(s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2500));
  std::memset(data.data(), 1, 10);
  EXPECT_EQ(ReadAll(f, data.size()), data);
}

// Uploads that hang (nodes that take a shard and never answer): a write waits staging_wait for
// room, then fails with NoSpace saying so.
TEST_F(DriveTest, AWriteWaitsForRoomAtMostStagingWait) {
  constexpr uint64_t kLimit = 256 * 1024;
  Bytes data;
  const Ino f = FillStagingArea(kLimit, std::chrono::milliseconds(300), &data);
  peers_[2]->deadline_ms = 1500;
  peers_[2]->stopped = true;
  const auto start = std::chrono::steady_clock::now();
  Status s = drive_->Write(f, kLimit, test::PseudoRandomBytes(1000, 6));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  EXPECT_NE(s.message().find("did not make room within 300 ms"), std::string::npos) << s.ToString();
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::milliseconds(1400));
  EXPECT_EQ(drive_->GetAttr(f).value().size, kLimit);
  peers_[2]->stopped = false;
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
}

TEST_F(DriveTest, AKilledProcessLosesNoAcceptedWrite) {
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Bytes a = test::PseudoRandomBytes(200000, 5);
  Bytes b = test::PseudoRandomBytes(3000, 6);
  std::string catalog = dir_.path() + "/catalog-6.db";
  drive_.reset();  // the child process owns the drive now
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // As a process that is killed: writes accepted, no flush, no destructor.
    auto d = OpenAgain();
    if (!d.ok()) ::_exit(2);
    if (!(*d)->Write(f, 0, a).ok() || !(*d)->Write(g, 500, b).ok()) ::_exit(3);
    backend::AttrChange t;
    t.size = 100000;
    if (!(*d)->SetAttr(f, t).ok()) ::_exit(4);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_OK_AND_ASSIGN(drive_, OpenAgain());
  EXPECT_EQ(drive_->Uploads().staged.layers, 2u);
  Bytes want_f(a.begin(), a.begin() + 100000);
  Bytes want_g(500, 0);
  want_g.insert(want_g.end(), b.begin(), b.end());
  EXPECT_EQ(ReadAll(f, want_f.size()), want_f);
  EXPECT_EQ(ReadAll(g, want_g.size()), want_g);
  ASSERT_OK(drive_->Sync(std::chrono::seconds(20)));
  drive_.reset();
  ASSERT_OK_AND_ASSIGN(drive_, OpenAgain());
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  EXPECT_EQ(ReadAll(f, want_f.size()), want_f);
  EXPECT_EQ(ReadAll(g, want_g.size()), want_g);
}

TEST_F(DriveTest, StoreFilesNamesNewFilesOnlyWhenStored) {
  Bytes x = test::PseudoRandomBytes(70000, 8);
  Bytes y = test::PseudoRandomBytes(10, 9);
  std::vector<FileSource> files(2);
  files[0].data = x;
  files[0].parent = kRootIno;
  files[0].name = "x";
  files[0].mtime_ns = 42;
  files[1].data = y;
  files[1].parent = kRootIno;
  files[1].name = "y";
  peers_[4]->down = true;
  EXPECT_EQ(drive_->StoreFiles(files).status().code(), Code::kUnavailable);
  EXPECT_EQ(drive_->Lookup(kRootIno, "x").status().code(), Code::kNotFound);
  peers_[4]->down = false;
  // The failed try left shards on the nodes that took them (gc's to remove).
  const uint64_t before = ShardsStored();
  ASSERT_OK_AND_ASSIGN(auto done, drive_->StoreFiles(files));
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].mtime_ns, 42);
  EXPECT_EQ(ShardsStored() - before, 6u);  // both in one pack
  ASSERT_OK_AND_ASSIGN(InodeAttr a, drive_->Lookup(kRootIno, "y"));
  EXPECT_EQ(ReadAll(a.ino, 10), y);
}

TEST_F(DriveTest, GcDeletesPacksNoFileUsesAndRetriesDownNodes) {
  Ino f = NewFile("f");
  Ino keep = NewFile("keep");
  Bytes kept = test::PseudoRandomBytes(50000, 30);
  ASSERT_OK(drive_->WriteWholeFile(keep, kept).status());
  ASSERT_OK(drive_->WriteWholeFile(f, test::PseudoRandomBytes(300000, 31)).status());
  const uint64_t with_old = ShardsStored();
  Bytes now = test::PseudoRandomBytes(200000, 32);
  ASSERT_OK(drive_->WriteWholeFile(f, now).status());  // the old pack is garbage now
  // gc checkpoints the catalog first; with the catalog checkpointed already, that stores
  // nothing, and a node down only delays its shard's deletion.
  ASSERT_OK(drive_->checkpointer().Sync().status());
  peers_[2]->down = true;
  ASSERT_OK_AND_ASSIGN(GcReport r, drive_->CollectGarbage());
  ASSERT_OK(r.checkpoint);
  EXPECT_EQ(r.packs_dropped, 1u);
  EXPECT_GT(r.bytes_dropped, 300000u);
  EXPECT_EQ(r.shards_deleted, 5u);
  EXPECT_EQ(r.deletions_pending, 1u);
  peers_[2]->down = false;
  ASSERT_OK_AND_ASSIGN(r, drive_->CollectGarbage());
  ASSERT_OK(r.checkpoint);
  EXPECT_EQ(r.packs_dropped, 0u);
  EXPECT_EQ(r.deletions_pending, 0u);
  EXPECT_EQ(DataShardsStored(), with_old);  // one pack gone, one new
  EXPECT_EQ(ReadAll(f, now.size()), now);
  EXPECT_EQ(ReadAll(keep, kept.size()), kept);
  // Removing the files leaves every pack dead.
  ASSERT_OK(drive_->Unlink(kRootIno, "f"));
  ASSERT_OK(drive_->Unlink(kRootIno, "keep"));
  ASSERT_OK_AND_ASSIGN(r, drive_->CollectGarbage());
  EXPECT_EQ(DataShardsStored(), 0u);
  ASSERT_OK_AND_ASSIGN(auto totals, drive_->catalog().GetTotals());
  EXPECT_EQ(totals.packs, 0u);
  EXPECT_EQ(totals.chunks, 0u);
}

// Without a checkpoint of the catalog as it is (here one that needs a pack on all six nodes,
// one of them down), gc drops nothing and says why; once one is stored, it drops.
TEST_F(DriveTest, GcDropsNothingUntilTheCatalogIsCheckpointed) {
  options_.checkpoint.inline_object_max = 0;
  options_.checkpoint.inline_manifest_max = 0;
  Reopen();
  Ino f = NewFile("f");
  ASSERT_OK(drive_->WriteWholeFile(f, test::PseudoRandomBytes(300000, 33)).status());
  ASSERT_OK(drive_->WriteWholeFile(f, test::PseudoRandomBytes(200000, 34)).status());
  peers_[4]->down = true;
  ASSERT_OK_AND_ASSIGN(GcReport r, drive_->CollectGarbage());
  EXPECT_EQ(r.checkpoint.code(), Code::kUnavailable) << r.checkpoint.ToString();
  EXPECT_EQ(r.packs_dropped, 0u);
  EXPECT_EQ(r.shards_deleted, 0u);
  peers_[4]->down = false;
  ASSERT_OK_AND_ASSIGN(r, drive_->CollectGarbage());
  ASSERT_OK(r.checkpoint);
  EXPECT_EQ(r.packs_dropped, 1u);
  EXPECT_EQ(r.shards_deleted, 6u);
}

TEST_F(DriveTest, SparseFilesStoreOnlyTheirDataRuns) {
  // 8 MiB of which two runs hold data; the rest reads as zeros and stores nothing.
  Bytes file(8 << 20, 0);
  Bytes a = test::PseudoRandomBytes(100000, 40);
  Bytes b = test::PseudoRandomBytes(3000, 41);
  std::memcpy(file.data() + 5000, a.data(), a.size());
  std::memcpy(file.data() + file.size() - b.size(), b.data(), b.size());
  std::vector<FileSource> files(2);
  files[0].data = file;
  files[0].runs =
      std::vector<std::pair<uint64_t, uint64_t>>{{4096, 102400}, {file.size() - 4096, 4096}};
  files[0].parent = kRootIno;
  files[0].name = "sparse";
  files[1].data = file;
  files[1].runs = std::vector<std::pair<uint64_t, uint64_t>>{};  // all holes
  files[1].parent = kRootIno;
  files[1].name = "empty-but-big";
  ASSERT_OK_AND_ASSIGN(auto done, drive_->StoreFiles(files));
  EXPECT_EQ(done[0].size, file.size());
  EXPECT_EQ(ReadAll(done[0].ino, file.size()), file);
  EXPECT_EQ(ReadAll(done[1].ino, file.size()), Bytes(file.size(), 0));
  ASSERT_OK_AND_ASSIGN(auto totals, drive_->catalog().GetTotals());
  EXPECT_LT(totals.pack_bytes, 200000u);  // the runs, not the 16 MiB
  files[0].runs = std::vector<std::pair<uint64_t, uint64_t>>{{10, 5}, {0, 1}};
  files[0].name = "bad";
  EXPECT_EQ(drive_->StoreFiles(std::span<const FileSource>(files.data(), 1)).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardfs::backend

namespace shardfs::backend {
namespace {

// A member list the test sets: what gossip would say of each node.
class FixedMembership : public MembershipSource {
 public:
  Result<std::vector<MemberInfo>> Members() override {
    MutexLock lock(&mu_);
    return members_;
  }
  void Set(std::vector<MemberInfo> m) {
    MutexLock lock(&mu_);
    members_ = std::move(m);
  }

 private:
  Mutex mu_;
  std::vector<MemberInfo> members_ GUARDED_BY(mu_);
};

class DriveCareTest : public DriveTest {
 protected:
  void SetUp() override {}
  // A drive on `n` nodes whose member list the test sets; dead nodes count at once.
  void BuildWithMembership(int n) {
    Build(n);
    membership_ = std::make_shared<FixedMembership>();
    options_.membership = membership_;
    options_.repair.dead_grace = std::chrono::milliseconds(0);
    SetStates({});
    Reopen();
  }
  // Every node alive but those in `dead`.
  void SetStates(const std::vector<size_t>& dead) {
    std::vector<MemberInfo> members;
    for (size_t i = 0; i < options_.config.nodes.size(); ++i) {
      MemberInfo m;
      m.id = options_.config.nodes[i].id;
      m.address = options_.config.nodes[i].address;
      bool gone = std::find(dead.begin(), dead.end(), i) != dead.end();
      m.state = gone ? NodeLiveness::kDead : NodeLiveness::kAlive;
      members.push_back(m);
    }
    membership_->Set(members);
  }
  // Files of several packs' worth, with their bytes.
  std::vector<std::pair<Ino, Bytes>> WriteFiles() {
    std::vector<std::pair<Ino, Bytes>> files;
    for (int i = 0; i < 6; ++i) {
      Bytes data;
      Ino f =
          WriteNew("f" + std::to_string(i), 700 * 1024 + static_cast<size_t>(i), 100 + i, &data);
      files.emplace_back(f, std::move(data));
    }
    return files;
  }
  void ExpectAllRead(const std::vector<std::pair<Ino, Bytes>>& files) {
    for (const auto& [f, data] : files) EXPECT_EQ(ReadAll(f, data.size()), data) << f;
  }
  // The drive's packs that have a shard on node i.
  size_t PacksOn(size_t i) {
    size_t n = 0;
    auto packs = drive_->catalog().ListPacks(std::nullopt, 10000).value();
    for (const auto& p : packs) {
      if (std::count(p.nodes.begin(), p.nodes.end(), options_.config.nodes[i].id) > 0) ++n;
    }
    return n;
  }

  std::shared_ptr<FixedMembership> membership_;
};

TEST_F(DriveCareTest, RepairRestoresEveryPackAfterTwoNodesDieAndTwoMoreMayGo) {
  BuildWithMembership(8);
  auto files = WriteFiles();
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  ASSERT_OK_AND_ASSIGN(Durability before, drive_->repairer().Survey());
  ASSERT_GT(before.packs, 1u);
  EXPECT_EQ(before.full, before.packs);

  // Nodes 0 and 1 die for good; the network says so.
  peers_[0]->down = true;
  peers_[1]->down = true;
  SetStates({0, 1});
  ASSERT_OK(drive_->RefreshMembership().status());
  ASSERT_OK_AND_ASSIGN(Durability hurt, drive_->repairer().Survey());
  EXPECT_LT(hurt.full, hurt.packs);
  EXPECT_EQ(hurt.lost, 0u);
  ASSERT_OK_AND_ASSIGN(RepairReport r, drive_->repairer().RunPass());
  EXPECT_EQ(r.packs_failed, 0u) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_GT(r.shards_rebuilt, 0u);
  EXPECT_EQ(r.after.full, r.after.packs);
  EXPECT_EQ(PacksOn(0), 0u);
  EXPECT_EQ(PacksOn(1), 0u);

  // Two more of the original holders go: every file still reads, byte for byte.
  peers_[2]->down = true;
  peers_[3]->down = true;
  ExpectAllRead(files);
}

TEST_F(DriveCareTest, AuditsCatchDamagedShardsAndRepairMovesThem) {
  BuildWithMembership(8);
  auto files = WriteFiles();
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  const size_t bad = 5;
  size_t on_bad = PacksOn(bad);
  ASSERT_GT(on_bad, 0u);
  mem_[bad]->DamageShards();
  ASSERT_OK_AND_ASSIGN(AuditReport a, drive_->auditor().RunPass());
  EXPECT_EQ(a.nodes[options_.config.nodes[bad].id].failed, on_bad);
  EXPECT_EQ(a.failed, on_bad);
  EXPECT_EQ(a.passed + a.failed, a.audited);
  for (const auto& [where, why] : a.failures) EXPECT_EQ(where.node, options_.config.nodes[bad].id);
  EXPECT_LT(drive_->peers().Reputation(bad), 0.5);
  EXPECT_FALSE(drive_->peers().Healthy(bad));
  ASSERT_OK_AND_ASSIGN(auto faults, drive_->catalog().ShardFaults());
  EXPECT_EQ(faults.size(), on_bad);

  ASSERT_OK_AND_ASSIGN(RepairReport r, drive_->repairer().RunPass());
  EXPECT_EQ(r.packs_repaired, on_bad);
  EXPECT_EQ(r.after.full, r.after.packs);
  EXPECT_EQ(PacksOn(bad), 0u);
  ASSERT_OK_AND_ASSIGN(faults, drive_->catalog().ShardFaults());
  EXPECT_TRUE(faults.empty());
  // A second audit finds nothing wrong; the old copies wait for gc's deletion.
  ASSERT_OK_AND_ASSIGN(AuditReport again, drive_->auditor().RunPass());
  EXPECT_EQ(again.failed, 0u);
  EXPECT_EQ(again.passed, again.audited);
  // The damaged node is not read from, and the files read back whole.
  peers_[bad]->down = true;
  ExpectAllRead(files);
}

TEST_F(DriveCareTest, NodesBackFromTheDeadWithinTheGraceCostNoRepair) {
  Build(8);
  membership_ = std::make_shared<FixedMembership>();
  options_.membership = membership_;
  options_.repair.dead_grace = std::chrono::hours(1);
  SetStates({});
  Reopen();
  WriteFiles();
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  SetStates({2});
  ASSERT_OK(drive_->RefreshMembership().status());
  ASSERT_OK_AND_ASSIGN(RepairReport r, drive_->repairer().RunPass());
  EXPECT_EQ(r.shards_rebuilt, 0u);
  // The count tells the truth all the same.
  EXPECT_LT(r.before.full, r.before.packs);
  // But it gets no new shards while the network holds it for dead.
  for (int round = 0; round < 20; ++round) {
    auto order = drive_->peers().PlacementOrder();
    EXPECT_EQ(std::count(order.begin(), order.end(), 2u), 0);
  }
}

TEST_F(DriveCareTest, ReputationAndCoordinatesSurviveAReopen) {
  BuildWithMembership(6);
  drive_->peers().ReportAudit(3, false);
  double rep = drive_->peers().Reputation(3);
  ASSERT_LT(rep, 0.5);
  std::vector<MemberInfo> members = membership_->Members().value();
  for (size_t i = 0; i < members.size(); ++i) {
    members[i].coordinate.vec[0] = static_cast<double>(i);
    drive_->peers().ReportSuccess(i, std::chrono::microseconds(2000 + 1000 * i));
  }
  membership_->Set(members);
  ASSERT_OK(drive_->RefreshMembership().status());
  auto own = drive_->peers().own_coordinate();
  ASSERT_TRUE(own.has_value());
  Reopen();
  EXPECT_NEAR(drive_->peers().Reputation(3), rep, 0.01);
  EXPECT_EQ(drive_->peers().health(3).audits_failed, 1u);
  ASSERT_TRUE(drive_->peers().own_coordinate().has_value());
  EXPECT_EQ(*drive_->peers().own_coordinate(), *own);
}

}  // namespace
}  // namespace shardfs::backend

namespace shardfs::backend {
namespace {

TEST_F(DriveCareTest, ACheckpointOnDeadNodesIsStoredAnew) {
  BuildWithMembership(8);
  WriteFiles();
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  ASSERT_OK(drive_->checkpointer().Sync().status());
  auto packs = drive_->checkpointer().NewestPacks();
  ASSERT_FALSE(packs.empty());
  // Nothing to do while its nodes are healthy.
  ASSERT_OK_AND_ASSIGN(bool rebased, drive_->CareForCheckpoint(true));
  EXPECT_FALSE(rebased);
  // Two nodes of its first pack die.
  std::vector<size_t> dead;
  for (size_t j = 0; j < 2; ++j) dead.push_back(*drive_->peers().IndexOf(packs[0].nodes[j]));
  for (size_t i : dead) peers_[i]->down = true;
  SetStates(dead);
  ASSERT_OK(drive_->RefreshMembership().status());
  ASSERT_OK_AND_ASSIGN(rebased, drive_->CareForCheckpoint(true));
  EXPECT_TRUE(rebased);
  for (const PackRecord& p : drive_->checkpointer().NewestPacks()) {
    for (size_t i : dead) {
      EXPECT_EQ(std::count(p.nodes.begin(), p.nodes.end(), options_.config.nodes[i].id), 0);
    }
  }
  ASSERT_OK_AND_ASSIGN(rebased, drive_->CareForCheckpoint(true));
  EXPECT_FALSE(rebased);
}

}  // namespace
}  // namespace shardfs::backend
