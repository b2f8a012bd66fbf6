#include "backend/staging.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "backend/erasure.h"
#include "base/file.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

TEST(PieceMapTest, APiecePutOverOthersShadowsWhatItCovers) {
  PieceMap m;
  m.Put({10, 10, 1, 100});  // [10, 20) at 1:100
  m.Put({30, 10, 1, 200});  // [30, 40) at 1:200
  EXPECT_EQ(m.bytes(), 20u);
  // Over the end of the first and the start of the second: both are cut around it.
  m.Put({15, 20, 2, 0});
  EXPECT_EQ(m.pieces(),
            (std::vector<StagedPiece>{{10, 5, 1, 100}, {15, 20, 2, 0}, {35, 5, 1, 205}}));
  EXPECT_EQ(m.bytes(), 30u);
  // Inside one piece: it is split in two, each keeping where its bytes are.
  m.Put({20, 2, 3, 7});
  EXPECT_EQ(m.pieces(),
            (std::vector<StagedPiece>{
                {10, 5, 1, 100}, {15, 5, 2, 0}, {20, 2, 3, 7}, {22, 13, 2, 7}, {35, 5, 1, 205}}));
  EXPECT_EQ(m.bytes(), 30u);
  // Over several whole pieces.
  m.Put({0, 50, 4, 0});
  EXPECT_EQ(m.pieces(), (std::vector<StagedPiece>{{0, 50, 4, 0}}));
  m.Put({60, 0, 5, 0});  // nothing
  m.Put({60, 10, 5, 0});
  EXPECT_EQ(m.bytes(), 60u);
  EXPECT_EQ(m.Overlap(45, 20), (std::vector<StagedPiece>{{45, 5, 4, 45}, {60, 5, 5, 0}}));
  EXPECT_EQ(m.Overlap(50, 10), std::vector<StagedPiece>{});
  m.CutFrom(65);  // cuts [60, 70) to [60, 65)
  EXPECT_EQ(m.bytes(), 55u);
  m.CutFrom(30);  // drops [60, 65), cuts [0, 50) to [0, 30)
  EXPECT_EQ(m.pieces(), (std::vector<StagedPiece>{{0, 30, 4, 0}}));
  m.CutFrom(0);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.bytes(), 0u);
}

class StagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CatalogOptions o;
    o.path = dir_.path() + "/catalog.db";
    o.sync = false;
    ASSERT_OK_AND_ASSIGN(catalog_, Catalog::Open(o));
  }

  std::string Folder() const { return dir_.path() + "/staging"; }
  std::unique_ptr<Staging> Open(StagingOptions o = {}) {
    auto s = Staging::Open(Folder(), catalog_.get(), o);
    EXPECT_OK(s);
    return s.ok() ? std::move(*s) : nullptr;
  }
  static StagingOptions WithLimit(uint64_t limit) {
    StagingOptions o;
    o.limit = limit;
    return o;
  }
  static StagingOptions WithSegmentBytes(uint64_t bytes) {
    StagingOptions o;
    o.segment_bytes = bytes;
    return o;
  }
  Ino NewFile(const std::string& name) {
    auto a = catalog_->CreateFile(kRootIno, name, {});
    EXPECT_OK(a);
    return a.ok() ? a->ino : 0;
  }
  // Files start empty in the catalog.
  static Staging::StoredSize Empty() {
    return [] { return Result<uint64_t>(uint64_t{0}); };
  }
  // Writes `size` bytes made from `seed` at `offset` into `model` and into the staging area.
  StagedWrite Write(Staging& s, Ino ino, uint64_t offset, size_t size, uint64_t seed, Bytes* model,
                    int64_t time = 1) {
    Bytes data = test::PseudoRandomBytes(size, seed);
    auto w = s.Write(ino, Empty(), offset, data, time);
    EXPECT_OK(w);
    if (!w.ok()) return StagedWrite::kNoRoom;
    if (*w != StagedWrite::kNoRoom) {
      if (model->size() < offset + size) model->resize(offset + size, 0);
      std::memcpy(model->data() + offset, data.data(), size);
    }
    return *w;
  }
  // The file's bytes [0, size) as the layers give them (the catalog holds nothing).
  Bytes Read(Staging& s, Ino ino, size_t size) {
    Bytes out(size, 0xee);
    auto r = s.Read(ino, 0, out, [](uint64_t, MutableByteSpan part) {
      std::memset(part.data(), 0, part.size());
      return Status::Ok();
    });
    EXPECT_OK(r);
    return out;
  }
  // The bytes a piece of an upload job names, read from its segment file.
  Bytes PieceBytes(const Staging& s, const StagedPiece& p) {
    Bytes out(p.length);
    UniqueFd fd(::open(s.SegmentPath(p.segment).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid()) << s.SegmentPath(p.segment);
    if (fd.valid()) {
      EXPECT_EQ(::pread(fd.get(), out.data(), out.size(), static_cast<off_t>(p.segment_offset)),
                static_cast<ssize_t>(out.size()));
    }
    return out;
  }
  // Checks that the jobs' pieces hold what `model` has there.
  void ExpectPiecesHold(const Staging& s, const UploadJob& job, const Bytes& model) {
    uint64_t total = 0;
    for (const StagedPiece& p : job.pieces) {
      ASSERT_LE(p.end(), model.size());
      EXPECT_EQ(PieceBytes(s, p), Bytes(model.begin() + static_cast<ptrdiff_t>(p.offset),
                                        model.begin() + static_cast<ptrdiff_t>(p.end())))
          << p.offset;
      total += p.length;
    }
    EXPECT_EQ(total, job.bytes);
  }
  // As the uploader's commit: the jobs' rows go, then the jobs come back committed.
  void Commit(Staging& s, const std::vector<UploadJob>& jobs) {
    for (const UploadJob& j : jobs) EXPECT_OK(catalog_->RemoveUpload(j.seq));
    s.Release(jobs, /*committed=*/true);
  }
  // The names in a folder (without . and ..), sorted.
  static std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
      }
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  static size_t OpenDescriptors() { return Names("/proc/self/fd").size(); }
  // The staging folder's segment files, by name.
  std::vector<std::string> Segments() const {
    std::vector<std::string> segs;
    for (const std::string& n : Names(Folder())) {
      if (n.starts_with("seg-")) segs.push_back(n);
    }
    return segs;
  }

  test::TempDir dir_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(StagingTest, ALimitCountsEveryByteAppendedUntilItsLayerGoes) {
  auto s = Open(WithLimit(1000));
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Bytes model_f, model_g;
  EXPECT_EQ(Write(*s, f, 0, 600, 1, &model_f), StagedWrite::kDone);
  // Refused whole: nothing of it is written, and a file without layers gets none.
  EXPECT_EQ(Write(*s, g, 0, 401, 2, &model_g), StagedWrite::kNoRoom);
  EXPECT_FALSE(s->Find(g).has_value());
  EXPECT_EQ(catalog_->Uploads().value_or({}).size(), 1u);
  EXPECT_EQ(Write(*s, f, 600, 401, 3, &model_f), StagedWrite::kNoRoom);
  EXPECT_EQ(s->Stats().bytes, 600u);
  EXPECT_EQ(s->Find(f)->size, 600u);
  EXPECT_EQ(Write(*s, g, 0, 400, 4, &model_g), StagedWrite::kDone);  // exactly the limit
  EXPECT_EQ(s->Stats().bytes, 1000u);
  EXPECT_EQ(Write(*s, g, 0, 1, 5, &model_g), StagedWrite::kNoRoom);
  // An extension is a hole, not bytes written; a truncate gives nothing back (the bytes it
  // cuts stay in their segment until the layer goes).
  ASSERT_OK(s->Truncate(f, Empty(), 1 << 20, 2));
  EXPECT_EQ(s->Stats().bytes, 1000u);
  ASSERT_OK(s->Truncate(f, Empty(), 100, 3));
  model_f.resize(100);
  EXPECT_EQ(s->Stats().bytes, 1000u);
  EXPECT_EQ(Write(*s, f, 100, 1, 6, &model_f), StagedWrite::kNoRoom);
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
  ASSERT_OK(s->Drop(f));
  ASSERT_OK(s->Drop(g));
  EXPECT_EQ(s->Stats().bytes, 0u);
  // An overwrite counts whole: it takes disk as any write does.
  model_f.clear();
  EXPECT_EQ(Write(*s, f, 0, 500, 7, &model_f), StagedWrite::kDone);
  EXPECT_EQ(Write(*s, f, 0, 500, 8, &model_f), StagedWrite::kDone);
  EXPECT_EQ(s->Stats().bytes, 1000u);
  EXPECT_EQ(Write(*s, f, 0, 1, 9, &model_f), StagedWrite::kNoRoom);
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
  ASSERT_OK(s->Drop(f));
  // A write larger than the limit never fits.
  EXPECT_EQ(Write(*s, f, 0, 1001, 10, &model_f), StagedWrite::kNoRoom);
  // A commit gives its layer's bytes back.
  EXPECT_EQ(Write(*s, f, 0, 1000, 11, &model_f), StagedWrite::kDone);
  s->Freeze(f);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(s->Stats().bytes, 1000u);  // uploading is not stored yet
  EXPECT_EQ(Write(*s, g, 0, 10, 12, &model_g), StagedWrite::kNoRoom);
  s->Release(jobs, /*committed=*/true);
  EXPECT_EQ(s->Stats().bytes, 0u);
  EXPECT_EQ(Write(*s, g, 0, 10, 12, &model_g), StagedWrite::kDone);
}

TEST_F(StagingTest, WritersInManyThreadsNeverPassTheLimitTogether) {
  constexpr uint64_t kLimit = 64 * 1024;
  constexpr size_t kWrite = 1000;
  auto s = Open(WithLimit(kLimit));
  ASSERT_NE(s, nullptr);
  std::vector<Ino> files;
  for (int i = 0; i < 8; ++i) files.push_back(NewFile("f" + std::to_string(i)));
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> most_seen{0};
  std::vector<std::thread> writers;
  for (size_t t = 0; t < files.size(); ++t) {
    writers.emplace_back([&, t] {
      Bytes data = test::PseudoRandomBytes(kWrite, t);
      for (uint64_t at = 0;; at += kWrite) {
        auto w = s->Write(files[t], Empty(), at, data, 1);
        if (!w.ok() || *w == StagedWrite::kNoRoom) return;
        accepted += kWrite;
        uint64_t now = s->Stats().bytes;
        uint64_t seen = most_seen.load();
        while (now > seen && !most_seen.compare_exchange_weak(seen, now)) {
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(s->Stats().bytes, accepted.load());
  EXPECT_LE(accepted.load(), kLimit);
  EXPECT_GT(accepted.load(), kLimit - kWrite);  // each stopped only when the next did not fit
  EXPECT_LE(most_seen.load(), kLimit);
}

TEST_F(StagingTest, ALayerPastFreezeBytesIsFrozenAndTheNextWriteStartsANewOne) {
  StagingOptions o;
  o.freeze_bytes = 1000;
  auto s = Open(o);
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Bytes model;
  EXPECT_EQ(Write(*s, f, 0, 600, 1, &model), StagedWrite::kDone);
  EXPECT_EQ(Write(*s, f, 200, 600, 2, &model), StagedWrite::kDone);   // 800 bytes written
  EXPECT_EQ(Write(*s, f, 800, 300, 3, &model), StagedWrite::kFroze);  // 1100
  StagingStats st = s->Stats();
  EXPECT_EQ(st.layers, 1u);
  EXPECT_EQ(st.queued, 1u);
  EXPECT_EQ(st.queued_bytes, 1100u);
  const Bytes first_layer = model;
  EXPECT_EQ(Write(*s, f, 500, 100, 4, &model), StagedWrite::kDone);
  st = s->Stats();
  EXPECT_EQ(st.layers, 2u);  // a new layer on top: the full one stays as it was
  EXPECT_EQ(st.queued, 1u);
  EXPECT_EQ(st.bytes, 1600u);  // every byte appended
  // A truncate and writes past a hole land on top; reads see the whole stack.
  ASSERT_OK(s->Truncate(f, Empty(), 700, 5));
  model.resize(700);
  EXPECT_EQ(Write(*s, f, 900, 100, 6, &model), StagedWrite::kDone);
  EXPECT_EQ(s->Find(f)->size, 1000u);
  EXPECT_EQ(Read(*s, f, model.size()), model);
  // The uploader gets the full layer alone (one layer of a file at a time), as it was frozen:
  // each byte from the write that wrote it last.
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].bytes, 1100u);
  EXPECT_EQ(jobs[0].size, 1100u);
  EXPECT_EQ(jobs[0].min_size, 0u);
  ASSERT_EQ(jobs[0].pieces.size(), 3u);
  EXPECT_EQ(jobs[0].pieces[0].offset, 0u);
  EXPECT_EQ(jobs[0].pieces[0].length, 200u);
  EXPECT_EQ(jobs[0].pieces[1].offset, 200u);
  EXPECT_EQ(jobs[0].pieces[1].length, 600u);
  EXPECT_EQ(jobs[0].pieces[2].offset, 800u);
  EXPECT_EQ(jobs[0].pieces[2].length, 300u);
  ExpectPiecesHold(*s, jobs[0], first_layer);
  s->Release(jobs, /*committed=*/false);
  // A layer frozen by a flush takes writes again as long as the uploader has not taken it.
  Ino g = NewFile("g");
  Bytes model_g;
  EXPECT_EQ(Write(*s, g, 0, 100, 7, &model_g), StagedWrite::kDone);
  s->Freeze(g);
  EXPECT_EQ(Write(*s, g, 100, 100, 8, &model_g), StagedWrite::kDone);
  EXPECT_EQ(s->Stats().layers, 3u);
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
}

TEST_F(StagingTest, SyncToDiskKeepsEveryLayerAndTheyReopen) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  ASSERT_OK(s->SyncToDisk());  // nothing staged yet
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Ino h = NewFile("h");
  Bytes model_f, model_g, model_h;
  // f: a frozen layer the uploader holds, and an open one on top; g: one frozen layer with a
  // truncate; h: one open layer.
  Write(*s, f, 0, 5000, 1, &model_f);
  s->Freeze(f);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  Write(*s, f, 4000, 3000, 2, &model_f);
  Write(*s, g, 100, 3000, 3, &model_g);
  ASSERT_OK(s->Truncate(g, Empty(), 2000, 4));
  model_g.resize(2000);
  s->Freeze(g);
  Write(*s, h, 0, 70000, 5, &model_h);
  ASSERT_OK(s->SyncToDisk());
  const StagingStats before = s->Stats();
  EXPECT_EQ(before.layers, 4u);
  s.reset();  // as a process that stops here (the uploader's job never came back)
  s = Open();
  ASSERT_NE(s, nullptr);
  const StagingStats after = s->Stats();
  EXPECT_EQ(after.layers, before.layers);
  EXPECT_EQ(after.queued, after.layers);  // all frozen, for the uploader
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
  EXPECT_EQ(Read(*s, h, model_h.size()), model_h);
  ASSERT_OK(s->SyncToDisk());
}

TEST_F(StagingTest, LayersRebuiltAtOpenCountAgainstTheLimit) {
  auto s = Open(WithLimit(5000));
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Bytes model;
  EXPECT_EQ(Write(*s, f, 0, 3000, 1, &model), StagedWrite::kDone);
  s->Freeze(f);
  EXPECT_EQ(Write(*s, f, 3000, 1000, 2, &model), StagedWrite::kDone);
  s.reset();
  s = Open(WithLimit(5000));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Stats().bytes, 4000u);
  EXPECT_EQ(Write(*s, f, 0, 1001, 3, &model), StagedWrite::kNoRoom);
  EXPECT_EQ(Read(*s, f, model.size()), model);
}

// Destroying a Staging without handing jobs back or syncing is what kill -9 leaves behind.
TEST_F(StagingTest, LayersAreRebuiltAfterAKillWithTheirSizesAndTimes) {
  auto s = Open(WithSegmentBytes(16 * 1024));  // the layers spread over several segments
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Ino h = NewFile("h");
  Bytes model_f, model_g, model_h;
  // f: a layer the uploader holds (so a second one on top), truncated below the first's end.
  Write(*s, f, 0, 20000, 1, &model_f, 100);
  s->Freeze(f);
  std::vector<UploadJob> held = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(held.size(), 1u);
  ASSERT_OK(s->Truncate(f, Empty(), 5000, 200));
  model_f.resize(5000);
  Write(*s, f, 8000, 1000, 2, &model_f, 300);
  // g: overwrites and an mtime set after them.
  Write(*s, g, 0, 9000, 3, &model_g, 400);
  Write(*s, g, 1000, 3000, 4, &model_g, 500);
  ASSERT_OK(s->SetMtime(g, Empty(), 12345));
  // h: extended with a hole past its writes.
  Write(*s, h, 0, 100, 5, &model_h, 600);
  ASSERT_OK(s->Truncate(h, Empty(), 5000, 700));
  model_h.resize(5000);
  const StagingStats before = s->Stats();
  EXPECT_GT(before.segments, 1u);
  s.reset();

  s = Open(WithSegmentBytes(16 * 1024));
  ASSERT_NE(s, nullptr);
  const StagingStats after = s->Stats();
  EXPECT_EQ(after.files, 3u);
  EXPECT_EQ(after.layers, 4u);
  EXPECT_EQ(after.queued, 4u);
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(after.bytes, 20000u + 1000 + 9000 + 3000 + 100);
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
  EXPECT_EQ(Read(*s, h, model_h.size()), model_h);
  EXPECT_EQ(s->Find(f)->size, 9000u);
  EXPECT_EQ(s->Find(f)->mtime_ns, 300);
  EXPECT_EQ(s->Find(g)->mtime_ns, 12345);
  EXPECT_EQ(s->Find(h)->size, 5000u);
  EXPECT_EQ(s->Find(h)->mtime_ns, 700);
  // The uploader gets each file's oldest layer as it was: f's first whole, then its second
  // with the cut it made.
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].ino, f);
  EXPECT_EQ(jobs[0].size, 20000u);
  EXPECT_EQ(jobs[0].bytes, 20000u);
  ExpectPiecesHold(*s, jobs[0], test::PseudoRandomBytes(20000, 1));
  s->Release({jobs[0]}, /*committed=*/true);
  s->Release({jobs[1], jobs[2]}, /*committed=*/false);
  jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 3u);
  const UploadJob& second =
      *std::find_if(jobs.begin(), jobs.end(), [&](const UploadJob& j) { return j.ino == f; });
  EXPECT_EQ(second.min_size, 5000u);
  EXPECT_EQ(second.size, 9000u);
  EXPECT_EQ(second.mtime_ns, 300);
  ExpectPiecesHold(*s, second, model_f);
  // A rebuilt layer takes no more writes: the next write starts a layer on top.
  s->Release(jobs, /*committed=*/false);
  Write(*s, g, 0, 10, 6, &model_g);
  EXPECT_EQ(s->Stats().layers, 4u);
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
}

// The last record cut short, as a crash in its write leaves it: only that record is lost, and
// new records go to a new segment, never after the cut one.
TEST_F(StagingTest, ATornLastRecordLosesOnlyThatRecord) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Bytes model;
  Write(*s, f, 0, 1000, 1, &model, 10);
  Write(*s, f, 1000, 1000, 2, &model, 20);
  const Bytes kept = model;
  Write(*s, f, 500, 1000, 3, &model, 30);  // to be torn
  s.reset();
  ASSERT_EQ(Segments().size(), 1u);
  const std::string seg = Folder() + "/" + Segments()[0];
  struct stat st;
  ASSERT_EQ(::stat(seg.c_str(), &st), 0);
  ASSERT_EQ(::truncate(seg.c_str(), st.st_size - 300), 0);  // within the last write's bytes

  s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Stats().layers, 1u);
  EXPECT_EQ(s->Stats().bytes, 2000u);
  EXPECT_EQ(s->Find(f)->size, 2000u);
  EXPECT_EQ(s->Find(f)->mtime_ns, 20);
  EXPECT_EQ(Read(*s, f, 2000), kept);
  model = kept;
  Write(*s, f, 2000, 100, 4, &model, 40);
  EXPECT_EQ(Segments().size(), 2u);
  s.reset();
  s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Stats().layers, 2u);
  EXPECT_EQ(Read(*s, f, model.size()), model);
}

// A record whose bytes changed (its checksum fails) ends its segment: the records before it
// are kept, those after it in that segment are lost, later segments are read.
TEST_F(StagingTest, ABadRecordEndsItsSegmentAndOnlyThat) {
  auto s = Open(WithSegmentBytes(2500));
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Ino h = NewFile("h");
  Bytes model_f, model_g, model_h;
  Write(*s, f, 0, 1000, 1, &model_f);    // segment 1
  Write(*s, g, 0, 1000, 2, &model_g);    // segment 1: to be damaged
  Write(*s, f, 1000, 500, 3, &model_f);  // segment 1, after it: lost with it
  Write(*s, h, 0, 1000, 4, &model_h);    // segment 2
  ASSERT_EQ(Segments().size(), 2u);
  s.reset();
  const std::string seg = Folder() + "/seg-1";
  UniqueFd fd(::open(seg.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  // Somewhere in g's bytes: segment header, f's layer and write records, g's layer record, g's
  // write record head, then its bytes.
  uint8_t b;
  const off_t in_g = 16 + 29 + 37 + 1000 + 29 + 37 + 500;
  ASSERT_EQ(::pread(fd.get(), &b, 1, in_g), 1);
  b ^= 0xff;
  ASSERT_EQ(::pwrite(fd.get(), &b, 1, in_g), 1);
  fd.Reset();

  s = Open(WithSegmentBytes(2500));
  ASSERT_NE(s, nullptr);
  // g's layer started before the damage but lost its only write; f lost its second.
  EXPECT_EQ(s->Stats().layers, 3u);
  EXPECT_EQ(s->Find(f)->size, 1000u);
  EXPECT_EQ(Read(*s, f, 1000), Bytes(model_f.begin(), model_f.begin() + 1000));
  EXPECT_EQ(s->Find(g)->size, 0u);
  EXPECT_EQ(Read(*s, h, model_h.size()), model_h);
}

TEST_F(StagingTest, ASegmentIsRemovedOnceNoLayerNeedsIt) {
  auto s = Open(WithSegmentBytes(10000));
  ASSERT_NE(s, nullptr);
  std::vector<Ino> files;
  std::vector<Bytes> models(6);
  for (int i = 0; i < 6; ++i) {
    files.push_back(NewFile("f" + std::to_string(i)));
    Write(*s, files[i], 0, 6000, static_cast<uint64_t>(i), &models[i]);
    s->Freeze(files[i]);
  }
  // Each segment closes after the write that passes 10,000 bytes: two files a segment.
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-1", "seg-2", "seg-3"}));
  EXPECT_EQ(s->Stats().segments, 3u);
  // Files 0 and 1 are in segment 1, 2 and 3 in segment 2: committing 0 and dropping 1 frees
  // segment 1; committing 2 alone frees nothing.
  std::vector<UploadJob> jobs = s->Take(1);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].ino, files[0]);
  Commit(*s, jobs);
  EXPECT_EQ(Segments().size(), 3u);
  ASSERT_OK(s->Drop(files[1]));
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-2", "seg-3"}));
  jobs = s->Take(1);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].ino, files[2]);
  Commit(*s, jobs);
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-2", "seg-3"}));
  // A file dropped while the uploader holds its layer: its segment goes when the job comes
  // back.
  jobs = s->Take(1);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].ino, files[3]);
  ASSERT_OK(s->Drop(files[3]));
  EXPECT_FALSE(s->Wanted(jobs[0]));
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-2", "seg-3"}));
  s->Release(jobs, /*committed=*/false);
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-3"}));
  EXPECT_EQ(Read(*s, files[4], 6000), models[4]);
  EXPECT_EQ(Read(*s, files[5], 6000), models[5]);
  // The segment being appended to is emptied, not removed, when its last layer goes.
  jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 2u);
  Commit(*s, jobs);
  EXPECT_EQ(s->Stats().layers, 0u);
  EXPECT_EQ(s->Stats().bytes, 0u);
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-3"}));
  struct stat st;
  ASSERT_EQ(::stat((Folder() + "/seg-3").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 16);
  EXPECT_TRUE(catalog_->Uploads().value_or({{1, 1}}).empty());
  // And after a reopen with nothing staged, no segment is left.
  s.reset();
  s = Open(WithSegmentBytes(10000));
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(Segments().empty());
}

// A layer still open when its segment closes is frozen for good, so it does not keep that
// segment (and every layer committed since) on disk: the next write starts a new layer.
TEST_F(StagingTest, ClosingASegmentFreezesTheLayersInIt) {
  auto s = Open(WithSegmentBytes(4000));
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Bytes model_f, model_g;
  EXPECT_EQ(Write(*s, f, 0, 100, 1, &model_f), StagedWrite::kDone);
  EXPECT_EQ(Write(*s, g, 0, 5000, 2, &model_g), StagedWrite::kDone);  // fills segment 1
  EXPECT_EQ(s->Stats().queued, 0u);
  EXPECT_EQ(Write(*s, f, 100, 100, 3, &model_f), StagedWrite::kFroze);  // segment 2
  const StagingStats st = s->Stats();
  EXPECT_EQ(st.layers, 3u);  // f and g frozen in segment 1, f's new one in segment 2
  EXPECT_EQ(st.queued, 2u);
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 2u);
  Commit(*s, jobs);
  EXPECT_EQ(Segments(), (std::vector<std::string>{"seg-2"}));
  // What is left is f's second layer (its first is the catalog's now, which holds nothing
  // here).
  model_f.resize(100);
  std::fill(model_f.begin(), model_f.end(), 0);
  Bytes top = test::PseudoRandomBytes(100, 3);
  model_f.insert(model_f.end(), top.begin(), top.end());
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
}

TEST_F(StagingTest, OverwritesShadowEarlierBytesInReadsUploadsAndReplay) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  Bytes model;
  Write(*s, f, 0, 10000, 1, &model);
  Write(*s, f, 2000, 1000, 2, &model);
  Write(*s, f, 2500, 4500, 3, &model);
  Write(*s, f, 9000, 2000, 4, &model);
  Write(*s, f, 100, 10, 5, &model);
  EXPECT_EQ(Read(*s, f, model.size()), model);
  EXPECT_EQ(s->Stats().bytes, 10000u + 1000 + 4500 + 2000 + 10);
  s->Freeze(f);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].bytes, 11000u);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const StagedPiece& p : jobs[0].pieces) ranges.emplace_back(p.offset, p.length);
  EXPECT_EQ(ranges, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 100},
                                                                {100, 10},
                                                                {110, 1890},
                                                                {2000, 500},
                                                                {2500, 4500},
                                                                {7000, 2000},
                                                                {9000, 2000}}));
  ExpectPiecesHold(*s, jobs[0], model);
  s.reset();
  s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Read(*s, f, model.size()), model);
  jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  ExpectPiecesHold(*s, jobs[0], model);
}

// Layers over a stored file: each byte from the newest layer that wrote it, a hole where a
// layer cut the file below it, the stored bytes where no layer decides.
TEST_F(StagingTest, ReadsOfOverlappingLayers) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Ino f = NewFile("f");
  const Bytes stored = test::PseudoRandomBytes(4000, 99);
  auto stored_size = [] { return Result<uint64_t>(uint64_t{4000}); };
  auto reader = [&](uint64_t offset, MutableByteSpan out) {
    std::memset(out.data(), 0, out.size());
    if (offset < stored.size()) {
      std::memcpy(out.data(), stored.data() + offset,
                  std::min<uint64_t>(out.size(), stored.size() - offset));
    }
    return Status::Ok();
  };
  Bytes model = stored;
  const Bytes a = test::PseudoRandomBytes(1000, 1);
  ASSERT_OK(s->Write(f, stored_size, 500, a, 1).status());  // layer 1: [500, 1500)
  std::memcpy(model.data() + 500, a.data(), a.size());
  s->Freeze(f);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);  // layer 1 is uploading
  ASSERT_EQ(jobs.size(), 1u);
  // Layer 2: cut at 1000, then bytes at [3000, 3500): [1000, 3000) is a hole now.
  ASSERT_OK(s->Truncate(f, stored_size, 1000, 2));
  const Bytes b = test::PseudoRandomBytes(500, 2);
  ASSERT_OK(s->Write(f, stored_size, 3000, b, 3).status());
  model.resize(3500);
  std::fill(model.begin() + 1000, model.begin() + 3000, 0);
  std::memcpy(model.data() + 3000, b.data(), b.size());
  // Layer 3 (layer 2 uploading as well): a write over both.
  s->Release(jobs, /*committed=*/false);
  s->Freeze(f);
  jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);  // the oldest only
  const Bytes c = test::PseudoRandomBytes(600, 3);
  ASSERT_OK(s->Write(f, stored_size, 1200, c, 4).status());
  std::memcpy(model.data() + 1200, c.data(), c.size());
  EXPECT_EQ(s->Stats().layers, 2u);  // layer 2 was reopened: it had not been taken
  Bytes out(3500, 0xee);
  ASSERT_OK_AND_ASSIGN(bool staged, s->Read(f, 0, out, reader));
  EXPECT_TRUE(staged);
  EXPECT_EQ(out, model);
  // A read of a part only.
  Bytes part(700, 0xee);
  ASSERT_OK(s->Read(f, 900, part, reader).status());
  EXPECT_EQ(part, Bytes(model.begin() + 900, model.begin() + 1600));
}

TEST_F(StagingTest, TenThousandStagedFilesUseAHandfulOfDescriptorsAndFiles) {
  constexpr int kFiles = 10000;
  std::vector<Ino> files;
  for (int i = 0; i < kFiles; ++i) files.push_back(NewFile("f" + std::to_string(i)));
  const size_t before = OpenDescriptors();
  auto s = Open();
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < kFiles; ++i) {
    Bytes data = test::PseudoRandomBytes(100 + static_cast<size_t>(i % 1000), i);
    ASSERT_OK(s->Write(files[i], Empty(), 0, data, 1).status());
    s->Freeze(files[i]);
  }
  EXPECT_EQ(s->Stats().files, static_cast<size_t>(kFiles));
  EXPECT_EQ(s->Stats().queued, static_cast<size_t>(kFiles));
  EXPECT_LE(OpenDescriptors(), before + 2);
  EXPECT_LE(Names(Folder()).size(), 2u);
  s.reset();
  s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Stats().layers, static_cast<size_t>(kFiles));
  EXPECT_LE(OpenDescriptors(), before + 2);
  Bytes model;
  Write(*s, files[1234], 0, 1234, 1234, &model);  // over the rebuilt layer
  EXPECT_EQ(Read(*s, files[1234], 1234), model);
  EXPECT_LE(Names(Folder()).size(), 2u);
}

// An area of the previous format (version 1: a data and a log file per layer, docs/format.md,
// "Staging layer (version 1)"), written here byte by byte as that code wrote it.
class OldStagingArea {
 public:
  explicit OldStagingArea(std::string dir) : dir_(std::move(dir)) { ::mkdir(dir_.c_str(), 0700); }
  void Layer(uint64_t seq, Ino ino, uint64_t base) {
    Bytes log(kMagic, kMagic + 4);
    ByteWriter w(&log);
    w.U32(1);
    w.U64(ino);
    w.U64(base);
    Append(seq, log);
    UniqueFd data(::open(DataPath(seq).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  }
  void Write(uint64_t seq, uint64_t offset, ByteSpan bytes, int64_t time) {
    UniqueFd data(::open(DataPath(seq).c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_EQ(::pwrite(data.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
    Bytes r;
    ByteWriter w(&r);
    w.U8(1);
    w.U64(offset);
    w.U64(bytes.size());
    w.U64(static_cast<uint64_t>(time));
    Append(seq, r);
  }
  void Truncate(uint64_t seq, uint64_t size, int64_t time) {
    Bytes r;
    ByteWriter w(&r);
    w.U8(2);
    w.U64(size);
    w.U64(static_cast<uint64_t>(time));
    Append(seq, r);
    struct stat st;
    if (::stat(DataPath(seq).c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) > size) {
      ASSERT_EQ(::truncate(DataPath(seq).c_str(), static_cast<off_t>(size)), 0);
    }
  }
  void Mtime(uint64_t seq, int64_t time) {
    Bytes r;
    ByteWriter w(&r);
    w.U8(3);
    w.U64(static_cast<uint64_t>(time));
    Append(seq, r);
  }
  // Half a write record, as a crash in its append left it (its bytes are in the data file).
  void TornWrite(uint64_t seq, uint64_t offset, ByteSpan bytes) {
    UniqueFd data(::open(DataPath(seq).c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_EQ(::pwrite(data.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
    Bytes r;
    ByteWriter w(&r);
    w.U8(1);
    w.U64(offset);
    Append(seq, r);
  }
  std::string DataPath(uint64_t seq) const { return dir_ + "/" + std::to_string(seq) + ".data"; }
  std::string LogPath(uint64_t seq) const { return dir_ + "/" + std::to_string(seq) + ".log"; }

 private:
  static constexpr uint8_t kMagic[4] = {'S', 'F', 'S', 'L'};
  void Append(uint64_t seq, ByteSpan record) {
    UniqueFd log(::open(LogPath(seq).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log.valid());
    ASSERT_OK(WriteAll(log.get(), record, LogPath(seq)));
  }
  std::string dir_;
};

TEST_F(StagingTest, AnAreaOfThePreviousFormatIsRecoveredIntoSegments) {
  Ino f = NewFile("f");
  Ino g = NewFile("g");
  Ino h = NewFile("h");
  Bytes model_f, model_g, model_h;
  auto put = [](Bytes* model, uint64_t offset, const Bytes& b) {
    if (model->size() < offset + b.size()) model->resize(offset + b.size(), 0);
    std::memcpy(model->data() + offset, b.data(), b.size());
  };
  OldStagingArea old(Folder());
  // f, two layers: the first over a stored size of 0 with a torn last write; the second
  // truncates below the first's end (its smallest size), then writes past a hole.
  old.Layer(7, f, 0);
  const Bytes f1 = test::PseudoRandomBytes(5000, 1);
  old.Write(7, 0, f1, 100);
  put(&model_f, 0, f1);
  const Bytes f2 = test::PseudoRandomBytes(1000, 2);
  old.Write(7, 3000, f2, 200);  // an overwrite within the layer
  put(&model_f, 3000, f2);
  old.TornWrite(7, 5000, test::PseudoRandomBytes(100, 3));
  old.Layer(9, f, 5000);
  old.Truncate(9, 1000, 300);
  model_f.resize(1000);
  const Bytes f3 = test::PseudoRandomBytes(500, 4);
  old.Write(9, 2000, f3, 400);
  model_f.resize(2000, 0);
  put(&model_f, 2000, f3);
  // g: writes and an mtime; h: committed already (no row): it must go unread.
  old.Layer(8, g, 0);
  const Bytes g1 = test::PseudoRandomBytes(3000, 5);
  old.Write(8, 100, g1, 500);
  put(&model_g, 100, g1);
  old.Truncate(8, 10000, 600);
  model_g.resize(10000, 0);
  old.Mtime(8, 777);
  old.Layer(3, h, 0);
  old.Write(3, 0, test::PseudoRandomBytes(100, 6), 700);
  ASSERT_OK(catalog_->AddUpload(7, f));
  ASSERT_OK(catalog_->AddUpload(8, g));
  ASSERT_OK(catalog_->AddUpload(9, f));

  // The old files, to bring back after they are converted.
  std::vector<std::pair<std::string, Bytes>> old_files;
  for (const std::string& name : Names(Folder())) {
    ASSERT_OK_AND_ASSIGN(Bytes b, ReadFile(Folder() + "/" + name, 1 << 20));
    old_files.emplace_back(name, std::move(b));
  }
  ASSERT_EQ(old_files.size(), 8u);

  // Twice: the second time as if a crash had come after the layers were written into a
  // segment but before their old files went (the old files rule, nothing is doubled).
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    if (round == 1) {
      for (const auto& [name, bytes] : old_files) {
        ASSERT_OK(WriteFileAtomic(Folder() + "/" + name, bytes, 0600));
      }
    }
    auto s = Open();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(Segments().size(), 1u);
    EXPECT_EQ(Names(Folder()), Segments());  // the old files are gone
    const StagingStats st = s->Stats();
    EXPECT_EQ(st.files, 2u);
    EXPECT_EQ(st.layers, 3u);
    EXPECT_EQ(st.queued, 3u);
    EXPECT_EQ(st.bytes, 5000u + 500 + 3000);  // the layers' bytes, written once each
    EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
    EXPECT_EQ(s->Find(f)->size, 2500u);
    EXPECT_EQ(s->Find(f)->mtime_ns, 400);
    EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
    EXPECT_EQ(s->Find(g)->size, 10000u);
    EXPECT_EQ(s->Find(g)->mtime_ns, 777);
    EXPECT_FALSE(s->Find(h).has_value());
    std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].seq, 7u);
    EXPECT_EQ(jobs[0].size, 5000u);
    EXPECT_EQ(jobs[0].min_size, 0u);
    EXPECT_EQ(jobs[0].mtime_ns, 200);
    Bytes first = f1;
    std::memcpy(first.data() + 3000, f2.data(), f2.size());
    ExpectPiecesHold(*s, jobs[0], first);
    EXPECT_EQ(jobs[1].seq, 8u);
    EXPECT_EQ(jobs[1].size, 10000u);
    EXPECT_EQ(jobs[1].min_size, 0u);
    EXPECT_EQ(jobs[1].mtime_ns, 777);
    ExpectPiecesHold(*s, jobs[1], model_g);
    Commit(*s, {jobs[0]});
    jobs = s->Take(uint64_t{1} << 30);
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].seq, 9u);
    EXPECT_EQ(jobs[0].min_size, 1000u);
    EXPECT_EQ(jobs[0].size, 2500u);
    ExpectPiecesHold(*s, jobs[0], model_f);
    if (round == 0) {
      // Not committed after all, so that round 1 finds the same rows.
      ASSERT_OK(catalog_->AddUpload(7, f));
    }
  }
  // And once more from the segment alone.
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Stats().layers, 2u);  // 7 was committed in round 1
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
}

// tests/golden/staging_segment_v2.bin was written by an independent implementation
// (tests/golden/staging_segment_v2.py) from docs/format.md: layer 1 of inode 2 writes
// [0, 100), truncates to 50, writes [200, 220), sets its mtime, and ends in a torn write;
// layer 2 has no row.
TEST_F(StagingTest, GoldenSegmentV2) {
  ASSERT_OK_AND_ASSIGN(
      Bytes golden,
      ReadFile(std::string(SHARDFS_SOURCE_DIR) + "/tests/golden/staging_segment_v2.bin", 1 << 20));
  ::mkdir(Folder().c_str(), 0700);
  ASSERT_OK(WriteFileAtomic(Folder() + "/seg-1", golden, 0600));
  ASSERT_OK(catalog_->AddUpload(1, 2));
  auto s = Open();
  ASSERT_NE(s, nullptr);
  const StagingStats st = s->Stats();
  EXPECT_EQ(st.files, 1u);
  EXPECT_EQ(st.layers, 1u);
  EXPECT_EQ(st.bytes, 120u);
  ASSERT_TRUE(s->Find(2).has_value());
  EXPECT_EQ(s->Find(2)->size, 220u);
  EXPECT_EQ(s->Find(2)->mtime_ns, 4000);
  Bytes model(220, 0);
  for (size_t i = 0; i < 50; ++i) model[i] = static_cast<uint8_t>((i * 7 + 3) % 251);
  for (size_t i = 0; i < 20; ++i) model[200 + i] = static_cast<uint8_t>((i * 5 + 1) % 253);
  EXPECT_EQ(Read(*s, 2, 220), model);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].min_size, 0u);
  EXPECT_EQ(jobs[0].size, 220u);
  EXPECT_EQ(jobs[0].bytes, 70u);
  ExpectPiecesHold(*s, jobs[0], model);
  ASSERT_OK_AND_ASSIGN(Bytes after, ReadFile(Folder() + "/seg-1", 1 << 20));
  EXPECT_EQ(after, golden);  // read, never written
}

TEST_F(StagingTest, ASegmentOfANewerFormatIsRefused) {
  ::mkdir(Folder().c_str(), 0700);
  Bytes header = {'S', 'F', 'S', 'G'};
  ByteWriter w(&header);
  w.U32(3);
  w.U64(1);
  ASSERT_OK(WriteFileAtomic(Folder() + "/seg-1", header, 0600));
  auto s = Staging::Open(Folder(), catalog_.get());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kNotSupported);
}

}  // namespace
}  // namespace shardfs::backend
