#include "backend/sqlite.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

class SqliteTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteDb> Open(const SqliteOptions& options) {
    auto db = SqliteDb::Open(dir_.path() + "/t.db", options);
    EXPECT_OK(db.status());
    EXPECT_OK((*db)->Exec("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)"));
    return std::move(*db);
  }
  static int64_t Synchronous(SqliteDb& db) {
    auto q = db.Prepare("PRAGMA synchronous");
    EXPECT_OK(q.status());
    EXPECT_TRUE(q->Step().value());
    return q->ColumnInt(0);
  }
  test::TempDir dir_;
};

TEST_F(SqliteTest, ReusedStatementsStartFresh) {
  auto db = Open({});
  ASSERT_OK(db->Exec("INSERT INTO t VALUES (1, 'one'), (2, 'two')"));
  const char* sql = "SELECT v FROM t WHERE k = ?";
  {
    ASSERT_OK_AND_ASSIGN(auto q, db->Prepare(sql));
    q.Bind(1, int64_t{1});
    ASSERT_TRUE(q.Step().value());
    EXPECT_EQ(q.ColumnText(0), "one");
    // The same SQL while the first is in use (mid-step): a statement of its own.
    ASSERT_OK_AND_ASSIGN(auto q2, db->Prepare(sql));
    q2.Bind(1, int64_t{2});
    ASSERT_TRUE(q2.Step().value());
    EXPECT_EQ(q2.ColumnText(0), "two");
  }
  // Handed back and reused: reset, its old binding cleared (NULL matches no row).
  ASSERT_OK_AND_ASSIGN(auto again, db->Prepare(sql));
  EXPECT_FALSE(again.Step().value());
  ASSERT_OK_AND_ASSIGN(auto third, db->Prepare(sql));
  third.Bind(1, int64_t{2});
  ASSERT_TRUE(third.Step().value());
  EXPECT_EQ(third.ColumnText(0), "two");
}

TEST_F(SqliteTest, DurableTransactionSyncsThenGoesBackToNormal) {
  SqliteOptions o;
  o.full_sync = false;
  auto db = Open(o);
  EXPECT_EQ(Synchronous(*db), 1);  // NORMAL
  {
    SqliteTransaction txn(db.get(), /*durable=*/true);
    ASSERT_OK(txn.status());
    EXPECT_EQ(Synchronous(*db), 2);  // FULL for this commit
    ASSERT_OK(db->Exec("INSERT INTO t VALUES (3, 'three')"));
    ASSERT_OK(txn.Commit());
  }
  EXPECT_EQ(Synchronous(*db), 1);
  {
    // Rolled back: back to NORMAL as well.
    SqliteTransaction txn(db.get(), /*durable=*/true);
    ASSERT_OK(txn.status());
    ASSERT_OK(db->Exec("INSERT INTO t VALUES (4, 'four')"));
  }
  EXPECT_EQ(Synchronous(*db), 1);
  db.reset();
  db = Open(o);
  ASSERT_OK_AND_ASSIGN(auto q, db->Prepare("SELECT count(*) FROM t"));
  ASSERT_TRUE(q.Step().value());
  EXPECT_EQ(q.ColumnInt(0), 1);
}

}  // namespace
}  // namespace shardfs::backend
