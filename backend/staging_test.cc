#include "backend/staging.h"

#include <atomic>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

TEST(RangeSetTest, MergesOverlappingAndTouchingRanges) {
  RangeSet s;
  s.Add(10, 5);  // [10, 15)
  s.Add(20, 5);  // [20, 25)
  s.Add(15, 2);  // touches the first: [10, 17)
  EXPECT_EQ(s.ranges(), (std::vector<ByteRange>{{10, 7}, {20, 5}}));
  s.Add(12, 10);  // bridges both: [10, 25)
  EXPECT_EQ(s.ranges(), (std::vector<ByteRange>{{10, 15}}));
  s.Add(0, 0);  // nothing
  s.Add(30, 1);
  EXPECT_EQ(s.bytes(), 16u);
  EXPECT_EQ(s.Overlap(20, 20), (std::vector<ByteRange>{{20, 5}, {30, 1}}));
  EXPECT_EQ(s.Overlap(25, 5), std::vector<ByteRange>{});
  s.CutFrom(22);
  EXPECT_EQ(s.ranges(), (std::vector<ByteRange>{{10, 12}}));
  EXPECT_EQ(s.bytes(), 12u);
  s.Add(40, 10);
  s.Add(60, 10);
  s.CutFrom(45);  // drops [60, 70), cuts [40, 50) to [40, 45)
  EXPECT_EQ(s.bytes(), 17u);
  s.CutFrom(10);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.bytes(), 0u);
}

class StagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CatalogOptions o;
    o.path = dir_.path() + "/catalog.db";
    o.sync = false;
    ASSERT_OK_AND_ASSIGN(catalog_, Catalog::Open(o));
  }

  std::unique_ptr<Staging> Open(StagingOptions o = {}) {
    auto s = Staging::Open(dir_.path() + "/staging", catalog_.get(), o);
    EXPECT_OK(s);
    return s.ok() ? std::move(*s) : nullptr;
  }
  static StagingOptions WithLimit(uint64_t limit) {
    StagingOptions o;
    o.limit = limit;
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
  StagedWrite Write(Staging& s, Ino ino, uint64_t offset, size_t size, uint64_t seed,
                    Bytes* model) {
    Bytes data = test::PseudoRandomBytes(size, seed);
    auto w = s.Write(ino, Empty(), offset, data, 1);
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

  test::TempDir dir_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(StagingTest, ALimitRefusesWholeWritesAndCountsOnlyBytesWritten) {
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
  // An extension is a hole, not bytes written; a truncate gives back what it cuts.
  ASSERT_OK(s->Truncate(f, Empty(), 1 << 20, 2));
  EXPECT_EQ(s->Stats().bytes, 1000u);
  ASSERT_OK(s->Truncate(f, Empty(), 100, 3));
  model_f.resize(100);
  EXPECT_EQ(s->Stats().bytes, 500u);
  EXPECT_EQ(Write(*s, f, 100, 500, 6, &model_f), StagedWrite::kDone);
  EXPECT_EQ(s->Stats().bytes, 1000u);
  EXPECT_EQ(Read(*s, f, model_f.size()), model_f);
  EXPECT_EQ(Read(*s, g, model_g.size()), model_g);
  // A write larger than the limit never fits.
  ASSERT_OK(s->Drop(f));
  ASSERT_OK(s->Drop(g));
  EXPECT_EQ(s->Stats().bytes, 0u);
  EXPECT_EQ(Write(*s, f, 0, 1001, 7, &model_f), StagedWrite::kNoRoom);
  // A commit gives its layer's bytes back.
  EXPECT_EQ(Write(*s, f, 0, 1000, 8, &model_f), StagedWrite::kDone);
  s->Freeze(f);
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(s->Stats().bytes, 1000u);  // uploading is not stored yet
  EXPECT_EQ(Write(*s, g, 0, 10, 9, &model_g), StagedWrite::kNoRoom);
  s->Release(jobs, /*committed=*/true);
  EXPECT_EQ(s->Stats().bytes, 0u);
  EXPECT_EQ(Write(*s, g, 0, 10, 9, &model_g), StagedWrite::kDone);
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
  EXPECT_EQ(Write(*s, f, 500, 100, 4, &model), StagedWrite::kDone);
  st = s->Stats();
  EXPECT_EQ(st.layers, 2u);  // a new layer on top: the full one stays as it was
  EXPECT_EQ(st.queued, 1u);
  EXPECT_EQ(st.bytes, 1200u);
  // A truncate and writes past a hole land on top; reads see the whole stack.
  ASSERT_OK(s->Truncate(f, Empty(), 700, 5));
  model.resize(700);
  EXPECT_EQ(Write(*s, f, 900, 100, 6, &model), StagedWrite::kDone);
  EXPECT_EQ(s->Find(f)->size, 1000u);
  EXPECT_EQ(Read(*s, f, model.size()), model);
  // The uploader gets the full layer alone (one layer of a file at a time), as it was frozen.
  std::vector<UploadJob> jobs = s->Take(uint64_t{1} << 30);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].bytes, 1100u);
  EXPECT_EQ(jobs[0].size, 1100u);
  EXPECT_EQ(jobs[0].min_size, 0u);
  EXPECT_EQ(jobs[0].ranges, (std::vector<ByteRange>{{0, 1100}}));
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

}  // namespace
}  // namespace shardfs::backend
