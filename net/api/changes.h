// The companion API's changes feed (GET /api/v1/changes): the catalog's journal, as a device
// sees it (only paths in its scope, relative to it), after a cursor, with long polls that
// hold no server thread while they wait (docs/api.md, "Changes").
//
// The cursor is the journal's sequence number. Changes made by any face of the drive (FUSE,
// the CLI, REST, WebDAV) are in the journal. A cursor older than the oldest row the journal
// keeps, or newer than its last (a catalog restored elsewhere), gets "reset": the device
// must list again.
//
// Thread safety: all methods may be called from many threads.

#ifndef SHARDFS_NET_API_CHANGES_H_
#define SHARDFS_NET_API_CHANGES_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "backend/catalog.h"
#include "base/status.h"
#include "net/api/devices.h"
#include "net/http_types.h"

namespace shardfs::api {

// One journal row as `who` sees it: zero, one or two feed entries ({"seq", "op":
// created|modified|deleted|moved, "path", "from" (moved), "type", "time"}).
nlohmann::json TranslateChange(const backend::Change& c, const Principal& who,
                               backend::Catalog& catalog);

class ChangeFeed {
 public:
  // Listens to `catalog`'s journal. REQUIRES: catalog outlives the feed.
  explicit ChangeFeed(backend::Catalog* catalog);
  // Shutdown.
  ~ChangeFeed();

  // The changes after `cursor` that `who` sees, up to `limit` journal rows:
  // {"cursor", "changes": [...], "reset", "more"}. Without a cursor: the current cursor and
  // no changes (list, then follow from there).
  Result<nlohmann::json> Page(const Principal& who, std::optional<uint64_t> cursor, size_t limit);

  // As Page, but if it would be empty, waits up to `wait` for a change `who` sees, and answers
  // through `respond` (at once if there is one, or the cursor is reset).
  void Wait(const Principal& who, uint64_t cursor, size_t limit, std::chrono::milliseconds wait,
            net::Responder respond);

  // Answers every waiting poll with what it has, and stops waiting (before the servers stop).
  void Shutdown();

 private:
  struct Waiter {
    Principal who;
    uint64_t cursor = 0;
    size_t limit = 0;
    std::chrono::steady_clock::time_point deadline;
    net::Responder respond;
  };
  void Loop();
  // True if `page` is to be answered now: an error, changes, a reset, or more rows at once.
  // Else *cursor becomes the page's cursor (past rows the device does not see).
  static bool Ready(const Result<nlohmann::json>& page, uint64_t* cursor);
  net::HttpResponse Render(const Result<nlohmann::json>& page);

  backend::Catalog* catalog_;
  std::mutex mu_;  // waiters_, stop_, signalled_; never held while calling the catalog
  std::condition_variable cv_;
  std::list<Waiter> waiters_;
  bool stop_ = false;
  uint64_t signalled_ = 0;  // the last change the journal announced
  bool recheck_ = false;    // a waiter came after a change Loop has seen: look again
  std::thread thread_;
};

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_CHANGES_H_
