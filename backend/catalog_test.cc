#include "backend/catalog.h"

#include <cerrno>
#include <set>

#include <gtest/gtest.h>
#include <unistd.h>

#include "backend/sqlite.h"
#include "base/file.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    cat_.reset();
    CatalogOptions o;
    o.path = dir_.path() + "/catalog.db";
    o.sync = false;
    o.clock = [this] { return ++clock_; };
    o.holder = "test";
    ASSERT_OK_AND_ASSIGN(cat_, Catalog::Open(o));
  }

  Ino Dir(Ino parent, const std::string& name) {
    auto a = cat_->Mkdir(parent, name, NewInode{0755, 1000, 1000});
    EXPECT_OK(a.status());
    return a.ok() ? a->ino : 0;
  }
  Ino File(Ino parent, const std::string& name) {
    auto a = cat_->CreateFile(parent, name, NewInode{0644, 1000, 1000});
    EXPECT_OK(a.status());
    return a.ok() ? a->ino : 0;
  }
  std::set<std::string> Names(Ino dir) {
    std::set<std::string> out;
    auto entries = cat_->ReadDir(dir, "", 100000);
    EXPECT_OK(entries.status());
    if (entries.ok()) {
      for (auto& e : *entries) out.insert(e.name);
    }
    return out;
  }
  uint32_t Links(Ino ino) {
    auto a = cat_->GetAttr(ino);
    return a.ok() ? a->nlink : 9999;
  }

  test::TempDir dir_;
  int64_t clock_ = 1'000'000'000;
  std::unique_ptr<Catalog> cat_;
};

TEST_F(CatalogTest, NewCatalogHasAnEmptyRoot) {
  ASSERT_OK_AND_ASSIGN(InodeAttr root, cat_->GetAttr(kRootIno));
  EXPECT_EQ(root.kind, FileKind::kDirectory);
  EXPECT_EQ(root.mode, 0755u);
  EXPECT_EQ(root.nlink, 2u);
  EXPECT_TRUE(Names(kRootIno).empty());
  ASSERT_OK_AND_ASSIGN(uint64_t seq, cat_->LastChange());
  EXPECT_EQ(seq, 0u);
}

TEST_F(CatalogTest, CreateLookupAndSurviveReopen) {
  Ino docs = Dir(kRootIno, "docs");
  Ino f = File(docs, "a b\nc \xc3\xa9.txt");
  ASSERT_OK(cat_->Symlink(docs, "link", "../elsewhere").status());
  Reopen();
  ASSERT_OK_AND_ASSIGN(InodeAttr d, cat_->Lookup(kRootIno, "docs"));
  EXPECT_EQ(d.ino, docs);
  EXPECT_EQ(d.nlink, 2u);
  ASSERT_OK_AND_ASSIGN(InodeAttr fa, cat_->Lookup(docs, "a b\nc \xc3\xa9.txt"));
  EXPECT_EQ(fa.ino, f);
  EXPECT_EQ(fa.kind, FileKind::kFile);
  EXPECT_EQ(fa.mode, 0644u);
  EXPECT_EQ(fa.uid, 1000u);
  EXPECT_EQ(fa.nlink, 1u);
  ASSERT_OK_AND_ASSIGN(InodeAttr la, cat_->Lookup(docs, "link"));
  EXPECT_EQ(la.kind, FileKind::kSymlink);
  EXPECT_EQ(la.size, 12u);
  ASSERT_OK_AND_ASSIGN(std::string target, cat_->ReadLink(la.ino));
  EXPECT_EQ(target, "../elsewhere");
  EXPECT_EQ(cat_->ReadLink(f).status().code(), Code::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(InodeAttr root, cat_->GetAttr(kRootIno));
  EXPECT_EQ(root.nlink, 3u);  // "docs" adds its ".." link
  ASSERT_OK_AND_ASSIGN(uint64_t seq, cat_->LastChange());
  EXPECT_EQ(seq, 3u);
}

TEST_F(CatalogTest, BadNamesAndParentsAreRefused) {
  Ino f = File(kRootIno, "file");
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
                          std::string("nul\0x", 5)}) {
    EXPECT_EQ(cat_->CreateFile(kRootIno, bad, {}).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(cat_->Lookup(kRootIno, bad).status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(cat_->Mkdir(kRootIno, std::string(256, 'x'), {}).status().code(), Code::kNameTooLong);
  EXPECT_OK(cat_->Mkdir(kRootIno, std::string(255, 'x'), {}).status());
  EXPECT_EQ(cat_->CreateFile(kRootIno, "file", {}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(cat_->Mkdir(kRootIno, "file", {}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(cat_->CreateFile(f, "x", {}).status().code(), Code::kNotDirectory);
  EXPECT_EQ(cat_->Lookup(f, "x").status().code(), Code::kNotDirectory);
  EXPECT_EQ(cat_->CreateFile(12345, "x", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(cat_->Lookup(kRootIno, "missing").status().code(), Code::kNotFound);
  EXPECT_EQ(cat_->Symlink(kRootIno, "s", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cat_->Symlink(kRootIno, "s", std::string(4096, 'a')).status().code(),
            Code::kNameTooLong);
}

TEST_F(CatalogTest, ReadDirPagesInNameOrder) {
  Ino d = Dir(kRootIno, "big");
  std::set<std::string> made;
  for (int i = 0; i < 1000; ++i) {
    std::string name = "f" + std::to_string(i * 7919 % 1000);
    File(d, name);
    made.insert(name);
  }
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    ASSERT_OK_AND_ASSIGN(auto entries, cat_->ReadDir(d, after, 64));
    if (entries.empty()) break;
    for (auto& e : entries) {
      EXPECT_EQ(e.attr.kind, FileKind::kFile);
      seen.push_back(e.name);
    }
    after = entries.back().name;
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), made);
}

TEST_F(CatalogTest, UnlinkLeavesAnOrphanUntilDropped) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK(cat_->Link(f, kRootIno, "g").status());
  EXPECT_EQ(Links(f), 2u);
  ASSERT_OK_AND_ASSIGN(InodeAttr after, cat_->Unlink(kRootIno, "f"));
  EXPECT_EQ(after.nlink, 1u);
  EXPECT_EQ(cat_->DropOrphan(f).code(), Code::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(after, cat_->Unlink(kRootIno, "g"));
  EXPECT_EQ(after.nlink, 0u);
  EXPECT_TRUE(Names(kRootIno).empty());
  EXPECT_OK(cat_->GetAttr(f).status());  // still open somewhere, perhaps
  EXPECT_EQ(cat_->Link(f, kRootIno, "back").status().code(), Code::kNotFound);
  ASSERT_OK(cat_->DropOrphan(f));
  EXPECT_EQ(cat_->GetAttr(f).status().code(), Code::kNotFound);
  Ino d = Dir(kRootIno, "d");
  EXPECT_EQ(cat_->Unlink(kRootIno, "d").status().code(), Code::kIsDirectory);
  EXPECT_EQ(cat_->Link(d, kRootIno, "d2").status().code(), Code::kIsDirectory);
}

TEST_F(CatalogTest, RmdirOnlyEmptyDirectories) {
  Ino d = Dir(kRootIno, "d");
  File(d, "f");
  EXPECT_EQ(cat_->Rmdir(kRootIno, "d").code(), Code::kNotEmpty);
  EXPECT_EQ(cat_->Rmdir(d, "f").code(), Code::kNotDirectory);
  ASSERT_OK(cat_->Unlink(d, "f").status());
  EXPECT_EQ(Links(kRootIno), 3u);
  ASSERT_OK(cat_->Rmdir(kRootIno, "d"));
  EXPECT_EQ(Links(kRootIno), 2u);
  EXPECT_EQ(Links(d), 0u);
  EXPECT_EQ(cat_->CreateFile(d, "late", {}).status().code(), Code::kNotFound);
}

TEST_F(CatalogTest, RenameFollowsPosix) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(kRootIno, "b");
  Ino f = File(a, "f");
  Ino g = File(b, "g");
  // Plain move across directories.
  ASSERT_OK(cat_->Rename(a, "f", b, "f2", RenameMode::kReplace).status());
  EXPECT_EQ(Names(a), std::set<std::string>{});
  EXPECT_EQ(Names(b), (std::set<std::string>{"f2", "g"}));
  // Replacing a file returns the replaced inode, now an orphan.
  ASSERT_OK_AND_ASSIGN(auto replaced, cat_->Rename(b, "f2", b, "g", RenameMode::kReplace));
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->ino, g);
  EXPECT_EQ(replaced->nlink, 0u);
  ASSERT_OK_AND_ASSIGN(InodeAttr now_g, cat_->Lookup(b, "g"));
  EXPECT_EQ(now_g.ino, f);
  // Kind mismatches and non-empty targets.
  Ino c = Dir(kRootIno, "c");
  File(c, "inside");
  EXPECT_EQ(cat_->Rename(b, "g", kRootIno, "c", RenameMode::kReplace).status().code(),
            Code::kIsDirectory);
  EXPECT_EQ(cat_->Rename(kRootIno, "a", b, "g", RenameMode::kReplace).status().code(),
            Code::kNotDirectory);
  EXPECT_EQ(cat_->Rename(kRootIno, "a", kRootIno, "c", RenameMode::kReplace).status().code(),
            Code::kNotEmpty);
  // A directory over an empty directory; link counts follow.
  Ino e = Dir(kRootIno, "e");
  EXPECT_EQ(Links(kRootIno), 6u);  // a b c e and 2
  ASSERT_OK_AND_ASSIGN(replaced, cat_->Rename(kRootIno, "a", kRootIno, "e", RenameMode::kReplace));
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->ino, e);
  EXPECT_EQ(Links(kRootIno), 5u);
  // Into its own subtree: refused.
  Ino deep = Dir(c, "deep");
  EXPECT_EQ(cat_->Rename(kRootIno, "c", deep, "c", RenameMode::kReplace).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(cat_->Rename(kRootIno, "c", c, "self", RenameMode::kReplace).status().code(),
            Code::kInvalidArgument);
  // A directory moving between parents moves a ".." link.
  EXPECT_EQ(Links(c), 3u);
  ASSERT_OK(cat_->Rename(c, "deep", b, "deep", RenameMode::kReplace).status());
  EXPECT_EQ(Links(c), 2u);
  EXPECT_EQ(Links(b), 3u);
  EXPECT_EQ(Links(deep), 2u);
  // Renaming onto itself, or onto another link of the same inode, changes nothing.
  ASSERT_OK(cat_->Rename(b, "g", b, "g", RenameMode::kReplace).status());
  ASSERT_OK(cat_->Link(f, b, "g-link").status());
  ASSERT_OK(cat_->Rename(b, "g", b, "g-link", RenameMode::kReplace).status());
  EXPECT_EQ(Names(b), (std::set<std::string>{"deep", "g", "g-link"}));
  EXPECT_EQ(Links(f), 2u);
  EXPECT_EQ(cat_->Rename(b, "missing", b, "x", RenameMode::kReplace).status().code(),
            Code::kNotFound);
}

TEST_F(CatalogTest, RenameNoReplaceAndExchange) {
  Ino a = Dir(kRootIno, "a");
  Ino f = File(kRootIno, "f");
  Ino g = File(a, "g");
  EXPECT_EQ(cat_->Rename(kRootIno, "f", a, "g", RenameMode::kNoReplace).status().code(),
            Code::kAlreadyExists);
  ASSERT_OK(cat_->Rename(kRootIno, "f", a, "h", RenameMode::kNoReplace).status());
  EXPECT_EQ(cat_->Rename(a, "h", kRootIno, "none", RenameMode::kExchange).status().code(),
            Code::kNotFound);
  // Exchange a file with a directory across parents: both stay, swapped, links follow.
  Ino d = Dir(kRootIno, "d");
  EXPECT_EQ(Links(kRootIno), 4u);
  EXPECT_EQ(Links(a), 2u);
  ASSERT_OK(cat_->Rename(a, "h", kRootIno, "d", RenameMode::kExchange).status());
  ASSERT_OK_AND_ASSIGN(InodeAttr at_root, cat_->Lookup(kRootIno, "d"));
  ASSERT_OK_AND_ASSIGN(InodeAttr in_a, cat_->Lookup(a, "h"));
  EXPECT_EQ(at_root.ino, f);
  EXPECT_EQ(in_a.ino, d);
  EXPECT_EQ(Links(kRootIno), 3u);
  EXPECT_EQ(Links(a), 3u);
  EXPECT_EQ(Links(g), 1u);
  // A directory cannot be exchanged with an entry below itself.
  EXPECT_EQ(cat_->Rename(kRootIno, "a", d, "x", RenameMode::kExchange).status().code(),
            Code::kNotFound);
  File(d, "x");
  EXPECT_EQ(cat_->Rename(kRootIno, "a", d, "x", RenameMode::kExchange).status().code(),
            Code::kInvalidArgument);
}

TEST_F(CatalogTest, SetAttrChangesWhatItIsAskedTo) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK_AND_ASSIGN(InodeAttr before, cat_->GetAttr(f));
  AttrChange c;
  c.mode = 0100600;  // the file-type bits are dropped
  c.mtime_ns = 1'234'567'890'123'456'789;
  ASSERT_OK_AND_ASSIGN(InodeAttr a, cat_->SetAttr(f, c));
  EXPECT_EQ(a.mode, 0600u);
  EXPECT_EQ(a.mtime_ns, 1'234'567'890'123'456'789);
  EXPECT_EQ(a.atime_ns, before.atime_ns);
  EXPECT_GT(a.ctime_ns, before.ctime_ns);
  EXPECT_EQ(a.uid, 1000u);
  AttrChange t;
  t.size = uint64_t{5} << 32;  // over 4 GiB
  ASSERT_OK_AND_ASSIGN(a, cat_->SetAttr(f, t));
  EXPECT_EQ(a.size, uint64_t{5} << 32);
  Reopen();
  ASSERT_OK_AND_ASSIGN(InodeAttr again, cat_->GetAttr(f));
  EXPECT_EQ(again.size, uint64_t{5} << 32);
  EXPECT_EQ(again.mode, 0600u);
  EXPECT_EQ(cat_->SetAttr(kRootIno, t).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cat_->SetAttr(999, c).status().code(), Code::kNotFound);
}

TEST_F(CatalogTest, EveryChangeIsJournalled) {
  Ino d = Dir(kRootIno, "d");
  File(d, "f");
  ASSERT_OK(cat_->Rename(d, "f", kRootIno, "f", RenameMode::kReplace).status());
  ASSERT_OK(cat_->Unlink(kRootIno, "f").status());
  ASSERT_OK(cat_->Rmdir(kRootIno, "d"));
  ASSERT_OK_AND_ASSIGN(uint64_t seq, cat_->LastChange());
  EXPECT_EQ(seq, 5u);
  // Refused changes add nothing.
  EXPECT_FALSE(cat_->Rmdir(kRootIno, "d").ok());
  ASSERT_OK_AND_ASSIGN(seq, cat_->LastChange());
  EXPECT_EQ(seq, 5u);
}

// --- Extended attributes -------------------------------------------------------------

TEST_F(CatalogTest, XattrsFollowSetxattrRules) {
  Ino f = File(kRootIno, "f");
  ASSERT_OK_AND_ASSIGN(InodeAttr before, cat_->GetAttr(f));
  ASSERT_OK_AND_ASSIGN(uint64_t seq, cat_->LastChange());
  Bytes binary = {0, 1, 2, 0xff, 0, 'x'};
  ASSERT_OK(cat_->SetXattr(f, "user.b", binary, XattrMode::kAny));
  ASSERT_OK(cat_->SetXattr(f, "user.a", ToBytes("first"), XattrMode::kCreate));
  ASSERT_OK(cat_->SetXattr(f, "user.empty", {}, XattrMode::kAny));
  EXPECT_EQ(cat_->GetXattr(f, "user.b").value_or({}), binary);
  EXPECT_EQ(cat_->GetXattr(f, "user.a").value_or({}), ToBytes("first"));
  ASSERT_OK_AND_ASSIGN(Bytes empty, cat_->GetXattr(f, "user.empty"));
  EXPECT_TRUE(empty.empty());
  ASSERT_OK_AND_ASSIGN(auto names, cat_->ListXattr(f));
  EXPECT_EQ(names, (std::vector<std::string>{"user.a", "user.b", "user.empty"}));
  // Each change sets ctime and is one journal row.
  ASSERT_OK_AND_ASSIGN(InodeAttr after, cat_->GetAttr(f));
  EXPECT_GT(after.ctime_ns, before.ctime_ns);
  EXPECT_EQ(after.mtime_ns, before.mtime_ns);
  EXPECT_EQ(after.size, before.size);
  ASSERT_OK_AND_ASSIGN(uint64_t seq_after, cat_->LastChange());
  EXPECT_EQ(seq_after, seq + 3);

  // XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one; replacing works.
  EXPECT_EQ(cat_->SetXattr(f, "user.a", ToBytes("x"), XattrMode::kCreate).code(),
            Code::kAlreadyExists);
  EXPECT_EQ(cat_->SetXattr(f, "user.c", ToBytes("x"), XattrMode::kReplace).code(),
            Code::kNoAttribute);
  ASSERT_OK(cat_->SetXattr(f, "user.a", ToBytes("second"), XattrMode::kReplace));
  EXPECT_EQ(cat_->GetXattr(f, "user.a").value_or({}), ToBytes("second"));
  ASSERT_OK(cat_->SetXattr(f, "user.a", ToBytes("third"), XattrMode::kAny));
  EXPECT_EQ(cat_->GetXattr(f, "user.a").value_or({}), ToBytes("third"));

  // Missing names and inodes.
  EXPECT_EQ(cat_->GetXattr(f, "user.c").status().code(), Code::kNoAttribute);
  EXPECT_EQ(cat_->GetXattr(f, "user.c").status().ToErrno(), ENODATA);
  EXPECT_EQ(cat_->RemoveXattr(f, "user.c").code(), Code::kNoAttribute);
  EXPECT_EQ(cat_->GetXattr(999, "user.a").status().code(), Code::kNotFound);
  EXPECT_EQ(cat_->SetXattr(999, "user.a", {}, XattrMode::kAny).code(), Code::kNotFound);
  EXPECT_EQ(cat_->ListXattr(999).status().code(), Code::kNotFound);
  EXPECT_EQ(cat_->RemoveXattr(999, "user.a").code(), Code::kNotFound);

  // Linux's limits: names of 1 to 255 bytes, values up to 64 KiB.
  const std::string longest = "user." + std::string(kMaxXattrNameBytes - 5, 'n');
  ASSERT_OK(cat_->SetXattr(f, longest, Bytes(kMaxXattrValueBytes, 7), XattrMode::kAny));
  EXPECT_EQ(cat_->GetXattr(f, longest).value_or({}), Bytes(kMaxXattrValueBytes, 7));
  EXPECT_EQ(cat_->SetXattr(f, longest + "n", {}, XattrMode::kAny).code(), Code::kOutOfRange);
  EXPECT_EQ(cat_->GetXattr(f, longest + "n").status().code(), Code::kOutOfRange);
  EXPECT_EQ(cat_->SetXattr(f, "", {}, XattrMode::kAny).code(), Code::kOutOfRange);
  EXPECT_EQ(cat_->SetXattr(f, std::string("user.\0x", 7), {}, XattrMode::kAny).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      cat_->SetXattr(f, "user.big", Bytes(kMaxXattrValueBytes + 1, 1), XattrMode::kAny).code(),
      Code::kOutOfRange);
  EXPECT_EQ(cat_->GetXattr(f, "user.big").status().code(), Code::kNoAttribute);

  // Refused changes add nothing to the journal.
  ASSERT_OK_AND_ASSIGN(seq, cat_->LastChange());
  EXPECT_EQ(cat_->SetXattr(f, "user.a", {}, XattrMode::kCreate).code(), Code::kAlreadyExists);
  EXPECT_EQ(cat_->RemoveXattr(f, "user.nope").code(), Code::kNoAttribute);
  ASSERT_OK_AND_ASSIGN(seq_after, cat_->LastChange());
  EXPECT_EQ(seq_after, seq);

  // Removal; what is left survives a reopen.
  ASSERT_OK_AND_ASSIGN(InodeAttr before_remove, cat_->GetAttr(f));
  ASSERT_OK(cat_->RemoveXattr(f, "user.b"));
  ASSERT_OK_AND_ASSIGN(InodeAttr after_remove, cat_->GetAttr(f));
  EXPECT_GT(after_remove.ctime_ns, before_remove.ctime_ns);
  EXPECT_EQ(cat_->GetXattr(f, "user.b").status().code(), Code::kNoAttribute);
  Reopen();
  ASSERT_OK_AND_ASSIGN(names, cat_->ListXattr(f));
  EXPECT_EQ(names, (std::vector<std::string>{"user.a", "user.empty", longest}));
  EXPECT_EQ(cat_->GetXattr(f, "user.a").value_or({}), ToBytes("third"));
}

TEST_F(CatalogTest, XattrsOnEveryKindAndTheirNamesFitOneListing) {
  Ino d = Dir(kRootIno, "d");
  ASSERT_OK_AND_ASSIGN(InodeAttr link, cat_->Symlink(kRootIno, "l", "d"));
  ASSERT_OK(cat_->SetXattr(d, "user.dir", ToBytes("1"), XattrMode::kAny));
  ASSERT_OK(cat_->SetXattr(link.ino, "trusted.link", ToBytes("2"), XattrMode::kAny));
  ASSERT_OK(cat_->SetXattr(kRootIno, "security.root", ToBytes("3"), XattrMode::kAny));
  EXPECT_EQ(cat_->GetXattr(link.ino, "trusted.link").value_or({}), ToBytes("2"));
  EXPECT_EQ(cat_->ListXattr(d).value_or({}), std::vector<std::string>{"user.dir"});
  // 256 names of 255 bytes are 65536 bytes with their NULs: listxattr's most. One more name
  // does not fit; a new value for a name that is there does.
  Ino f = File(kRootIno, "many");
  auto name = [](int i) {
    std::string n = "user." + std::to_string(i) + ".";
    return n + std::string(kMaxXattrNameBytes - n.size(), 'x');
  };
  for (int i = 0; i < 256; ++i) ASSERT_OK(cat_->SetXattr(f, name(i), {}, XattrMode::kCreate)) << i;
  EXPECT_EQ(cat_->SetXattr(f, "user.z", {}, XattrMode::kAny).code(), Code::kNoSpace);
  ASSERT_OK(cat_->SetXattr(f, name(3), ToBytes("v"), XattrMode::kReplace));
  ASSERT_OK_AND_ASSIGN(auto names, cat_->ListXattr(f));
  EXPECT_EQ(names.size(), 256u);
  ASSERT_OK(cat_->RemoveXattr(f, name(0)));
  ASSERT_OK(cat_->SetXattr(f, "user.z", {}, XattrMode::kAny));
}

TEST_F(CatalogTest, DroppingAnInodeDropsItsXattrs) {
  Ino f = File(kRootIno, "f");
  Ino kept = File(kRootIno, "kept");
  ASSERT_OK(cat_->SetXattr(f, "user.a", ToBytes("1"), XattrMode::kAny));
  ASSERT_OK(cat_->SetXattr(f, "user.b", ToBytes("2"), XattrMode::kAny));
  ASSERT_OK(cat_->SetXattr(kept, "user.a", ToBytes("3"), XattrMode::kAny));
  ASSERT_OK(cat_->Unlink(kRootIno, "f").status());
  // An orphan (a file open after its last name went) keeps them until it is dropped.
  EXPECT_EQ(cat_->GetXattr(f, "user.b").value_or({}), ToBytes("2"));
  ASSERT_OK(cat_->SetXattr(f, "user.c", ToBytes("4"), XattrMode::kAny));
  ASSERT_OK(cat_->DropOrphan(f));
  EXPECT_EQ(cat_->GetXattr(f, "user.a").status().code(), Code::kNotFound);
  cat_.reset();
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(dir_.path() + "/catalog.db"));
  ASSERT_OK_AND_ASSIGN(auto q, db->Prepare("SELECT ino, name FROM xattrs"));
  ASSERT_OK_AND_ASSIGN(bool row, q.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(static_cast<Ino>(q.ColumnInt(0)), kept);
  ASSERT_OK_AND_ASSIGN(row, q.Step());
  EXPECT_FALSE(row);  // f's rows are gone
}

// tests/golden/catalog_v1.db is a catalog of schema 1, written once by the catalog of 7f73b2c
// (the last build with schema 1; never regenerated): folder "docs" (ino 2) holding
// "report.txt" (ino 3: 1500 bytes, extents of chunks 1 and 2 of pack 1, mode 0600, also
// linked as "/hard"), symlink "/link" (ino 4) to "docs/report.txt", an orphan (ino 5), upload
// row (7, 3), eight journal rows. Every later build opens it, migrates it and reads it all.
TEST_F(CatalogTest, SchemaOneGoldenCatalogOpensAndMigrates) {
  cat_.reset();
  ASSERT_OK_AND_ASSIGN(
      Bytes golden,
      ReadFile(std::string(SHARDFS_SOURCE_DIR) + "/tests/golden/catalog_v1.db", size_t{1} << 20));
  const std::string path = dir_.path() + "/golden.db";
  ASSERT_OK(WriteFileAtomic(path, golden, 0600));
  for (int round = 0; round < 2; ++round) {  // the migration, then a plain open
    CatalogOptions o;
    o.path = path;
    o.sync = false;
    ASSERT_OK_AND_ASSIGN(cat_, Catalog::Open(o));
    ASSERT_OK_AND_ASSIGN(InodeAttr docs, cat_->Lookup(kRootIno, "docs"));
    EXPECT_EQ(docs.ino, 2u);
    EXPECT_EQ(docs.kind, FileKind::kDirectory);
    ASSERT_OK_AND_ASSIGN(InodeAttr report, cat_->Lookup(docs.ino, "report.txt"));
    EXPECT_EQ(report.ino, 3u);
    EXPECT_EQ(report.size, 1500u);
    EXPECT_EQ(report.nlink, 2u);
    EXPECT_EQ(report.mode, 0600u);
    EXPECT_EQ(cat_->Lookup(kRootIno, "hard").value_or(InodeAttr{}).ino, 3u);
    ASSERT_OK_AND_ASSIGN(auto extents, cat_->ReadExtents(3, 0, 1500));
    ASSERT_EQ(extents.size(), 2u);
    EXPECT_EQ(extents[1].offset, 1000u);
    EXPECT_EQ(extents[1].size, 500u);
    ASSERT_OK_AND_ASSIGN(auto chunk, cat_->FindChunk(extents[0].chunk));
    ASSERT_TRUE(chunk.has_value());
    ASSERT_OK_AND_ASSIGN(PackRecord pack, cat_->GetPack(chunk->pack));
    EXPECT_EQ(pack.shards.size(), 6u);
    ASSERT_OK_AND_ASSIGN(InodeAttr link, cat_->Lookup(kRootIno, "link"));
    EXPECT_EQ(cat_->ReadLink(link.ino).value_or(""), "docs/report.txt");
    EXPECT_EQ(cat_->Orphans().value_or({}), std::vector<Ino>{5});
    ASSERT_OK_AND_ASSIGN(auto uploads, cat_->Uploads());
    EXPECT_EQ(uploads, (std::vector<std::pair<uint64_t, Ino>>{{7, 3}}));
    ASSERT_OK_AND_ASSIGN(uint64_t seq, cat_->LastChange());
    EXPECT_EQ(seq, 8u + static_cast<uint64_t>(round));
    // The new table is there, empty at first.
    if (round == 0) {
      ASSERT_OK_AND_ASSIGN(auto none, cat_->ListXattr(3));
      EXPECT_TRUE(none.empty());
      ASSERT_OK(cat_->SetXattr(3, "user.new", ToBytes("v"), XattrMode::kAny));
    }
    EXPECT_EQ(cat_->GetXattr(3, "user.new").value_or({}), ToBytes("v"));
    cat_.reset();
  }
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(path));
  ASSERT_OK_AND_ASSIGN(auto q, db->Prepare("PRAGMA user_version"));
  ASSERT_OK_AND_ASSIGN(bool row, q.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(q.ColumnInt(0), Catalog::SchemaVersion());
  EXPECT_EQ(Catalog::SchemaVersion(), 4);
}

// --- File contents -------------------------------------------------------------------

ChunkId TestChunkId(uint8_t n) {
  std::array<uint8_t, 32> b{};
  b[0] = n;
  return ChunkId(b);
}

class CatalogContentTest : public CatalogTest {
 protected:
  // A pack holding chunks 1..count, each `plain` bytes of plaintext.
  void AddPack(uint8_t first, int count, uint32_t plain) {
    PackRecord p;
    std::array<uint8_t, 16> pid{};
    pid[0] = first;
    p.id = PackId(pid);
    p.k = 4;
    p.m = 2;
    p.size = 0;
    std::vector<ChunkRecord> chunks;
    for (int i = 0; i < count; ++i) {
      ChunkRecord c;
      c.id = TestChunkId(static_cast<uint8_t>(first + i));
      c.pack = p.id;
      c.pack_offset = p.size;
      c.sealed_size = plain + 40;
      c.plain_size = plain;
      c.cipher = 1;
      c.codec = 1;
      p.size += c.sealed_size;
      chunks.push_back(c);
    }
    for (int i = 0; i < 6; ++i) {
      std::array<uint8_t, 32> b{};
      b[0] = static_cast<uint8_t>(i);
      b[1] = first;
      p.shards.push_back(ShardId(b));
      p.nodes.push_back(NodeId(b));
    }
    ASSERT_OK(cat_->AddPack(p, chunks));
  }
  std::vector<Extent> All(Ino f) {
    auto e = cat_->ReadExtents(f, 0, uint64_t{1} << 62);
    EXPECT_OK(e.status());
    return e.ok() ? *e : std::vector<Extent>{};
  }
  size_t Unreferenced() {
    auto u = cat_->UnreferencedChunks(1000);
    EXPECT_OK(u.status());
    return u.ok() ? u->size() : 9999;
  }
};

TEST_F(CatalogContentTest, PacksAndChunksAreRecordedOnce) {
  AddPack(1, 3, 1000);
  ASSERT_OK_AND_ASSIGN(auto c, cat_->FindChunk(TestChunkId(2)));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->pack_offset, 1040u);
  EXPECT_EQ(c->plain_size, 1000u);
  ASSERT_OK_AND_ASSIGN(auto none, cat_->FindChunk(TestChunkId(99)));
  EXPECT_FALSE(none.has_value());
  std::array<uint8_t, 16> pid{};
  pid[0] = 1;
  ASSERT_OK_AND_ASSIGN(PackRecord p, cat_->GetPack(PackId(pid)));
  EXPECT_EQ(p.shards.size(), 6u);
  EXPECT_EQ(p.k, 4);
  EXPECT_EQ(Unreferenced(), 3u);
  PackRecord again = p;
  EXPECT_EQ(cat_->AddPack(again, {}).code(), Code::kAlreadyExists);
  PackRecord bad = p;
  bad.id = PackId();
  bad.nodes.pop_back();
  EXPECT_EQ(cat_->AddPack(bad, {}).code(), Code::kInvalidArgument);
}

TEST_F(CatalogContentTest, ShardsAreListedFaultedAndMoved) {
  AddPack(1, 1, 1000);
  AddPack(2, 1, 1000);
  ASSERT_OK_AND_ASSIGN(auto all, cat_->ListShards(std::nullopt, 100));
  ASSERT_EQ(all.size(), 12u);
  // Pages continue after the key given.
  ASSERT_OK_AND_ASSIGN(auto first, cat_->ListShards(std::nullopt, 5));
  ASSERT_OK_AND_ASSIGN(auto rest, cat_->ListShards(first.back().key, 100));
  EXPECT_EQ(first.size() + rest.size(), 12u);
  EXPECT_EQ(rest.front(), all[5]);
  ASSERT_OK_AND_ASSIGN(auto packs, cat_->ListPacks(std::nullopt, 1));
  ASSERT_EQ(packs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto more, cat_->ListPacks(packs[0].id, 10));
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].shards.size(), 6u);

  // A fault, kept once with its first time; one for a node that no longer holds the shard is
  // not recorded.
  const ShardLocation bad = all[2];
  ASSERT_OK(cat_->RecordShardFault(bad, "audit: lost"));
  ASSERT_OK_AND_ASSIGN(auto faults, cat_->ShardFaults());
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_EQ(faults[0].where, bad);
  EXPECT_EQ(faults[0].reason, "audit: lost");
  int64_t since = faults[0].since_ns;
  ASSERT_OK(cat_->RecordShardFault(bad, "audit: wrong bytes"));
  ASSERT_OK_AND_ASSIGN(faults, cat_->ShardFaults());
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_EQ(faults[0].since_ns, since);
  EXPECT_EQ(faults[0].reason, "audit: wrong bytes");
  ShardLocation elsewhere = all[3];
  elsewhere.node = all[0].node;
  ASSERT_OK(cat_->RecordShardFault(elsewhere, "x"));
  ASSERT_OK_AND_ASSIGN(faults, cat_->ShardFaults());
  EXPECT_EQ(faults.size(), 1u);
  // Clearing needs the node that has the fault.
  ASSERT_OK(cat_->ClearShardFault(bad.key, all[0].node));
  ASSERT_OK_AND_ASSIGN(faults, cat_->ShardFaults());
  EXPECT_EQ(faults.size(), 1u);

  // Repair moves it: the fault goes, the old copy is queued for deletion.
  NodeId fresh = TestChunkId(200).span().empty()
                     ? NodeId()
                     : NodeId::FromBytes(TestChunkId(200).span()).value();
  ASSERT_OK(cat_->MoveShards(bad.key.pack, {{bad.key.index, fresh}}));
  ASSERT_OK_AND_ASSIGN(faults, cat_->ShardFaults());
  EXPECT_TRUE(faults.empty());
  ASSERT_OK_AND_ASSIGN(PackRecord p, cat_->GetPack(bad.key.pack));
  EXPECT_EQ(p.nodes[static_cast<size_t>(bad.key.index)], fresh);
  EXPECT_EQ(p.shards[static_cast<size_t>(bad.key.index)], bad.shard);
  ASSERT_OK_AND_ASSIGN(auto deletions, cat_->PendingDeletions(10));
  ASSERT_EQ(deletions.size(), 1u);
  EXPECT_EQ(deletions[0], std::make_pair(bad.shard, bad.node));
  EXPECT_EQ(cat_->MoveShards(bad.key.pack, {{9, fresh}}).code(), Code::kNotFound);
}

TEST_F(CatalogContentTest, OverwriteInTheMiddleCutsExtentsAndCountsReferences) {
  AddPack(1, 4, 1000);
  Ino f = File(kRootIno, "f");
  // Three whole chunks: [0,1000) [1000,2000) [2000,3000).
  ASSERT_OK(
      cat_->WriteExtents(f, 0, 3000,
                         {Extent{0, TestChunkId(1), 0, 1000}, Extent{1000, TestChunkId(2), 0, 1000},
                          Extent{2000, TestChunkId(3), 0, 1000}})
          .status());
  EXPECT_EQ(Unreferenced(), 1u);  // chunk 4
  // Bytes [500, 1500) become chunk 4, leaving pieces of chunks 1 and 2 around it.
  ASSERT_OK_AND_ASSIGN(InodeAttr a,
                       cat_->WriteExtents(f, 500, 1000, {Extent{500, TestChunkId(4), 0, 1000}}));
  EXPECT_EQ(a.size, 3000u);
  std::vector<Extent> want = {
      Extent{0, TestChunkId(1), 0, 500}, Extent{500, TestChunkId(4), 0, 1000},
      Extent{1500, TestChunkId(2), 500, 500}, Extent{2000, TestChunkId(3), 0, 1000}};
  EXPECT_EQ(All(f), want);
  EXPECT_EQ(Unreferenced(), 0u);
  // A read of a range returns the extents that overlap it, whole.
  ASSERT_OK_AND_ASSIGN(auto some, cat_->ReadExtents(f, 1499, 2));
  EXPECT_EQ(some, (std::vector<Extent>{want[1], want[2]}));
  // Replacing chunk 2's last piece frees chunk 2.
  ASSERT_OK(cat_->WriteExtents(f, 1500, 500, {}).status());  // a hole
  ASSERT_OK_AND_ASSIGN(auto unref, cat_->UnreferencedChunks(10));
  ASSERT_EQ(unref.size(), 1u);
  EXPECT_EQ(unref[0].id, TestChunkId(2));
}

TEST_F(CatalogContentTest, AppendSparseTruncateAndDrop) {
  AddPack(1, 2, 4096);
  Ino f = File(kRootIno, "f");
  // A sparse file over 4 GiB: one chunk at 5 GiB.
  const uint64_t far = uint64_t{5} << 30;
  ASSERT_OK_AND_ASSIGN(InodeAttr a,
                       cat_->WriteExtents(f, far, 4096, {Extent{far, TestChunkId(1), 0, 4096}}));
  EXPECT_EQ(a.size, far + 4096);
  ASSERT_OK_AND_ASSIGN(auto hole, cat_->ReadExtents(f, 0, far));
  EXPECT_TRUE(hole.empty());
  // Append after it.
  ASSERT_OK(cat_->WriteExtents(f, far + 4096, 4096, {Extent{far + 4096, TestChunkId(2), 0, 4096}})
                .status());
  EXPECT_EQ(All(f).size(), 2u);
  // Truncate into the first chunk: the second goes, the first is cut.
  AttrChange t;
  t.size = far + 100;
  ASSERT_OK(cat_->SetAttr(f, t).status());
  EXPECT_EQ(All(f), (std::vector<Extent>{Extent{far, TestChunkId(1), 0, 100}}));
  EXPECT_EQ(Unreferenced(), 1u);
  Reopen();
  EXPECT_EQ(All(f), (std::vector<Extent>{Extent{far, TestChunkId(1), 0, 100}}));
  ASSERT_OK_AND_ASSIGN(Catalog::Totals totals, cat_->GetTotals());
  EXPECT_EQ(totals.files, 1u);
  EXPECT_EQ(totals.folders, 1u);
  EXPECT_EQ(totals.file_bytes, far + 100);
  EXPECT_EQ(totals.packs, 1u);
  EXPECT_EQ(totals.chunks, 2u);
  EXPECT_EQ(totals.unreferenced_chunks, 1u);
  // Unlinked and dropped: nothing refers to the chunks any more.
  ASSERT_OK(cat_->Unlink(kRootIno, "f").status());
  EXPECT_EQ(Unreferenced(), 1u);  // an open orphan still holds its data
  ASSERT_OK(cat_->DropOrphan(f));
  EXPECT_EQ(Unreferenced(), 2u);
}

TEST_F(CatalogContentTest, BadWritesChangeNothing) {
  AddPack(1, 1, 1000);
  Ino f = File(kRootIno, "f");
  Ino d = Dir(kRootIno, "d");
  ASSERT_OK(cat_->WriteExtents(f, 0, 1000, {Extent{0, TestChunkId(1), 0, 1000}}).status());
  ASSERT_OK_AND_ASSIGN(uint64_t seq, cat_->LastChange());
  auto before = All(f);
  // Unknown chunk, past the chunk's end, outside the range, overlapping, on a directory.
  EXPECT_EQ(cat_->WriteExtents(f, 0, 10, {Extent{0, TestChunkId(9), 0, 10}}).status().code(),
            Code::kNotFound);
  EXPECT_EQ(cat_->WriteExtents(f, 0, 10, {Extent{0, TestChunkId(1), 995, 10}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(cat_->WriteExtents(f, 0, 10, {Extent{5, TestChunkId(1), 0, 10}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(cat_->WriteExtents(f, 0, 20,
                               {Extent{0, TestChunkId(1), 0, 10}, Extent{5, TestChunkId(1), 0, 10}})
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(cat_->WriteExtents(d, 0, 10, {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cat_->WriteExtents(f, uint64_t{1} << 63, 10, {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(All(f), before);
  ASSERT_OK_AND_ASSIGN(uint64_t seq_after, cat_->LastChange());
  EXPECT_EQ(seq_after, seq);
  EXPECT_EQ(Unreferenced(), 0u);
}

TEST_F(CatalogTest, OneOwnerAtATimeAndTheRefusalNamesIt) {
  CatalogOptions o;
  o.path = dir_.path() + "/catalog.db";
  o.sync = false;
  o.holder = "second";
  auto second = Catalog::Open(o);
  ASSERT_EQ(second.status().code(), Code::kBusy);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid()) + ": test"),
            std::string::npos)
      << second.status().ToString();
  Ino f = File(kRootIno, "still-mine");
  cat_.reset();
  ASSERT_OK_AND_ASSIGN(auto now_mine, Catalog::Open(o));
  ASSERT_OK_AND_ASSIGN(InodeAttr a, now_mine->Lookup(kRootIno, "still-mine"));
  EXPECT_EQ(a.ino, f);
}

TEST_F(CatalogTest, NewerSchemaOrForeignFileIsRefused) {
  cat_.reset();
  std::string path = dir_.path() + "/catalog.db";
  {
    ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(path));
    ASSERT_OK(db->Exec("PRAGMA user_version=99"));
  }
  CatalogOptions o;
  o.path = path;
  o.sync = false;
  EXPECT_EQ(Catalog::Open(o).status().code(), Code::kNotSupported);
  std::string junk = dir_.path() + "/junk.db";
  ASSERT_OK(WriteFileAtomic(junk, ToBytes(std::string(8192, 'j')), 0600));
  o.path = junk;
  EXPECT_FALSE(Catalog::Open(o).ok());
}

TEST_F(CatalogTest, NodeRecordsAreSavedReplacedAndKept) {
  ASSERT_OK_AND_ASSIGN(auto none, cat_->LoadNodes());
  EXPECT_TRUE(none.empty());
  std::array<uint8_t, 32> raw{};
  raw[0] = 2;
  NodeRecord b{NodeId(raw), "10.0.0.2:7000", 5, 1, 0, 1500, std::nullopt, 0, {}, 0, 0};
  raw[0] = 1;
  NodeRecord a{NodeId(raw), "10.0.0.1:7000",         100, 3, 2, 20000, uint64_t{1} << 40,
               1234567,     {2.5, 10.25, 987654321}, 7,   1};
  ASSERT_OK(cat_->SaveNodes({b, a}));
  Reopen();
  ASSERT_OK_AND_ASSIGN(auto saved, cat_->LoadNodes());
  EXPECT_EQ(saved, (std::vector<NodeRecord>{a, b}));  // in id order; no free space is kept apart
  a.bad_bytes = 3;
  a.free.reset();
  ASSERT_OK(cat_->SaveNodes({a}));
  ASSERT_OK_AND_ASSIGN(saved, cat_->LoadNodes());
  EXPECT_EQ(saved, (std::vector<NodeRecord>{a, b}));
}

TEST_F(CatalogTest, ChangesAfterListsTheJournalInOrder) {
  ASSERT_OK_AND_ASSIGN(uint64_t start, cat_->LastChange());
  Ino d = Dir(kRootIno, "photos");
  Ino f = File(d, "a.jpg");
  ASSERT_OK(cat_->Rename(d, "a.jpg", kRootIno, "b.jpg", RenameMode::kReplace).status());
  ASSERT_OK(cat_->Unlink(kRootIno, "b.jpg").status());
  ASSERT_OK_AND_ASSIGN(auto changes, cat_->ChangesAfter(start, 100));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].op, "mkdir");
  EXPECT_EQ(changes[0].ino, d);
  EXPECT_EQ(changes[0].parent, kRootIno);
  EXPECT_EQ(changes[0].name, "photos");
  EXPECT_EQ(changes[1].op, "create");
  EXPECT_EQ(changes[1].name, "a.jpg");
  EXPECT_EQ(changes[2].op, "rename");
  EXPECT_EQ(changes[2].ino, f);
  EXPECT_EQ(changes[2].new_parent, kRootIno);
  EXPECT_EQ(changes[2].new_name, "b.jpg");
  EXPECT_EQ(changes[3].op, "unlink");
  // Each row has the paths of its time.
  EXPECT_EQ(changes[0].path, "/photos");
  EXPECT_EQ(changes[1].path, "/photos/a.jpg");
  EXPECT_EQ(changes[2].path, "/photos/a.jpg");
  EXPECT_EQ(changes[2].new_path, "/b.jpg");
  EXPECT_EQ(changes[3].path, "/b.jpg");
  ASSERT_OK(cat_->Rename(kRootIno, "photos", kRootIno, "pics", RenameMode::kReplace).status());
  ASSERT_OK_AND_ASSIGN(auto renamed, cat_->ChangesAfter(changes[3].seq, 10));
  ASSERT_EQ(renamed.size(), 1u);
  EXPECT_EQ(renamed[0].path, "/photos");
  EXPECT_EQ(renamed[0].new_path, "/pics");
  for (size_t i = 1; i < changes.size(); ++i) EXPECT_EQ(changes[i].seq, changes[i - 1].seq + 1);
  ASSERT_OK_AND_ASSIGN(auto page, cat_->ChangesAfter(changes[1].seq, 1));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].seq, changes[2].seq);
  ASSERT_OK_AND_ASSIGN(auto none, cat_->ChangesAfter(renamed[0].seq, 10));
  EXPECT_TRUE(none.empty());
}

TEST_F(CatalogTest, JournalIsTrimmedToItsLimit) {
  cat_.reset();
  CatalogOptions o;
  o.path = dir_.path() + "/catalog.db";
  o.sync = false;
  o.journal_keep = 100;
  ASSERT_OK_AND_ASSIGN(cat_, Catalog::Open(o));
  Ino f = File(kRootIno, "f");
  for (int i = 0; i < 1100; ++i) {
    AttrChange change;
    change.mode = 0600u + (i % 2);
    ASSERT_OK(cat_->SetAttr(f, change).status());
  }
  ASSERT_OK_AND_ASSIGN(uint64_t last, cat_->LastChange());
  ASSERT_OK_AND_ASSIGN(uint64_t first, cat_->FirstChange());
  EXPECT_GT(first, 1u);
  EXPECT_GE(last - first + 1, 100u);
  EXPECT_LE(last - first + 1, 100u + 1024u);
  ASSERT_OK_AND_ASSIGN(auto rest, cat_->ChangesAfter(0, 100000));
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().seq, first);
  EXPECT_EQ(rest.back().seq, last);
}

TEST_F(CatalogTest, ChangeListenerHearsEveryChange) {
  std::vector<uint64_t> heard;
  cat_->SetChangeListener([&](uint64_t seq) { heard.push_back(seq); });
  Ino d = Dir(kRootIno, "d");
  ASSERT_OK(cat_->Rmdir(kRootIno, "d"));
  ASSERT_OK_AND_ASSIGN(uint64_t last, cat_->LastChange());
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[1], last);
  EXPECT_NE(d, 0u);
  // A failed change journals nothing.
  EXPECT_FALSE(cat_->Rmdir(kRootIno, "d").ok());
  EXPECT_EQ(heard.size(), 2u);
  cat_->SetChangeListener(nullptr);
  Dir(kRootIno, "e");
  EXPECT_EQ(heard.size(), 2u);
}

TEST_F(CatalogTest, PathOfFollowsNamesToTheRoot) {
  Ino a = Dir(kRootIno, "a");
  Ino b = Dir(a, "b");
  Ino f = File(b, "f.txt");
  ASSERT_OK_AND_ASSIGN(auto path, cat_->PathOf(f));
  EXPECT_EQ(path, "/a/b/f.txt");
  ASSERT_OK_AND_ASSIGN(auto root, cat_->PathOf(kRootIno));
  EXPECT_EQ(root, "/");
  ASSERT_OK(cat_->Unlink(b, "f.txt").status());
  EXPECT_EQ(cat_->PathOf(f).status().code(), Code::kNotFound);
}

TEST_F(CatalogTest, DevicesAreAddedFoundTouchedAndRevoked) {
  DeviceRecord phone;
  phone.name = "phone";
  phone.token_hash = Bytes{1, 2, 3};
  phone.read_only = true;
  phone.root = "/Camera";
  ASSERT_OK_AND_ASSIGN(DeviceRecord added, cat_->AddDevice(phone));
  EXPECT_GT(added.id, 0u);
  EXPECT_GT(added.created_ns, 0);
  ASSERT_OK_AND_ASSIGN(auto found, cat_->FindDevice(Bytes{1, 2, 3}));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, "phone");
  EXPECT_TRUE(found->read_only);
  EXPECT_EQ(found->root, "/Camera");
  EXPECT_EQ(found->last_used_ns, 0);
  ASSERT_OK_AND_ASSIGN(auto missing, cat_->FindDevice(Bytes{9}));
  EXPECT_FALSE(missing.has_value());
  ASSERT_OK(cat_->TouchDevice(added.id, 12345));
  ASSERT_OK_AND_ASSIGN(DeviceRecord revoked, cat_->RevokeDevice(added.id));
  EXPECT_GT(revoked.revoked_ns, 0);
  EXPECT_EQ(cat_->RevokeDevice(999).status().code(), Code::kNotFound);
  EXPECT_FALSE(cat_->AddDevice(DeviceRecord{}).ok());
  Reopen();
  ASSERT_OK_AND_ASSIGN(auto all, cat_->ListDevices());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].last_used_ns, 12345);
  EXPECT_EQ(all[0].revoked_ns, revoked.revoked_ns);
}

}  // namespace
}  // namespace shardfs::backend
