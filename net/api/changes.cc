#include "net/api/changes.h"

#include "net/api/api_http.h"

namespace shardfs::api {

using nlohmann::json;

namespace {

// The path of `path` relative to `root`, if it lies within it.
std::optional<std::string> Relative(const std::string& path, const Names& root) {
  if (path.empty()) return std::nullopt;
  auto names = SplitPath(path);
  if (!names.ok() || !IsWithin(*names, root)) return std::nullopt;
  return JoinPath(Names(names->begin() + static_cast<ptrdiff_t>(root.size()), names->end()));
}

const char* TypeOf(const backend::Change& c, backend::Catalog& catalog) {
  if (c.op == "mkdir" || c.op == "rmdir") return "folder";
  if (c.op == "symlink") return "symlink";
  auto a = catalog.GetAttr(c.ino);
  return a.ok() ? KindName(a->kind) : "file";
}

}  // namespace

json TranslateChange(const backend::Change& c, const Principal& who, backend::Catalog& catalog) {
  json out = json::array();
  auto entry = [&](const char* op, const std::string& path) {
    json e = {{"seq", c.seq},
              {"op", op},
              {"path", path},
              {"type", TypeOf(c, catalog)},
              {"time", FormatRfc3339(c.time_ns)}};
    return e;
  };
  auto here = Relative(c.path, who.root);
  if (c.op == "rename") {
    auto there = Relative(c.new_path, who.root);
    if (here && there) {
      json e = entry("moved", *there);
      e["from"] = *here;
      out.push_back(e);
    } else if (there) {
      out.push_back(entry("created", *there));
    } else if (here) {
      out.push_back(entry("deleted", *here));
    }
    return out;
  }
  if (c.op == "exchange") {
    auto there = Relative(c.new_path, who.root);
    if (here) out.push_back(entry("modified", *here));
    if (there) out.push_back(entry("modified", *there));
    return out;
  }
  if (!here) return out;
  const char* op = "modified";
  if (c.op == "mkdir" || c.op == "create" || c.op == "symlink" || c.op == "link") {
    op = "created";
  } else if (c.op == "unlink" || c.op == "rmdir") {
    op = "deleted";
  }
  out.push_back(entry(op, *here));
  return out;
}

ChangeFeed::ChangeFeed(backend::Catalog* catalog) : catalog_(catalog) {
  catalog_->SetChangeListener([this](uint64_t seq) {
    // Under the catalog's lock: only note it (Loop reads the rows once they are committed).
    std::lock_guard<std::mutex> lock(mu_);
    signalled_ = seq;
    cv_.notify_all();
  });
  thread_ = std::thread([this] { Loop(); });
}

ChangeFeed::~ChangeFeed() {
  Shutdown();
  catalog_->SetChangeListener(nullptr);
}

Result<json> ChangeFeed::Page(const Principal& who, std::optional<uint64_t> cursor, size_t limit) {
  SFS_ASSIGN_OR_RETURN(uint64_t last, catalog_->LastChange());
  json doc = {{"cursor", std::to_string(last)},
              {"changes", json::array()},
              {"reset", false},
              {"more", false}};
  if (!cursor) return doc;
  SFS_ASSIGN_OR_RETURN(uint64_t first, catalog_->FirstChange());
  if (*cursor > last || *cursor + 1 < first) {
    doc["reset"] = true;
    return doc;
  }
  SFS_ASSIGN_OR_RETURN(auto rows, catalog_->ChangesAfter(*cursor, limit));
  uint64_t next = *cursor;
  for (const auto& row : rows) {
    for (auto& e : TranslateChange(row, who, *catalog_)) doc["changes"].push_back(std::move(e));
    next = row.seq;
  }
  doc["cursor"] = std::to_string(next);
  doc["more"] = rows.size() == limit;
  return doc;
}

net::HttpResponse ChangeFeed::Render(const Result<json>& page) {
  if (!page.ok()) return ErrorResponse(page.status());
  return JsonResponse(200, *page);
}

bool ChangeFeed::Ready(const Result<json>& page, uint64_t* cursor) {
  if (!page.ok() || !(*page)["changes"].empty() || (*page)["reset"].get<bool>() ||
      (*page)["more"].get<bool>()) {
    return true;
  }
  *cursor = std::stoull((*page)["cursor"].get<std::string>());
  return false;
}

void ChangeFeed::Wait(const Principal& who, uint64_t cursor, size_t limit,
                      std::chrono::milliseconds wait, net::Responder respond) {
  auto page = Page(who, cursor, limit);
  if (Ready(page, &cursor) || wait.count() <= 0) return respond(Render(page));
  Waiter w;
  w.who = who;
  w.cursor = cursor;
  w.limit = limit;
  w.deadline = std::chrono::steady_clock::now() + wait;
  w.respond = std::move(respond);
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return w.respond(Render(page));
  // A change journaled since the page was read: look again at once.
  if (signalled_ > w.cursor) recheck_ = true;
  waiters_.push_back(std::move(w));
  cv_.notify_all();
}

void ChangeFeed::Loop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    auto next_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (const auto& w : waiters_) next_deadline = std::min(next_deadline, w.deadline);
    cv_.wait_until(lock, next_deadline, [&] { return stop_ || recheck_ || signalled_ != seen; });
    if (stop_) break;
    bool changed = recheck_ || signalled_ != seen;
    seen = signalled_;
    recheck_ = false;
    auto now = std::chrono::steady_clock::now();
    // Take the waiters to look at, and look at them without the lock (the catalog's own lock
    // comes first when it calls the listener).
    std::list<Waiter> due;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (changed || it->deadline <= now) {
        auto next = std::next(it);
        due.splice(due.end(), waiters_, it);
        it = next;
      } else {
        ++it;
      }
    }
    if (due.empty()) continue;
    lock.unlock();
    std::list<Waiter> keep;
    for (auto& w : due) {
      auto page = Page(w.who, w.cursor, w.limit);
      // Changes it does not see: it waits on from after them (Ready moves its cursor).
      if (Ready(page, &w.cursor) || w.deadline <= now) {
        w.respond(Render(page));
      } else {
        keep.push_back(std::move(w));
      }
    }
    lock.lock();
    waiters_.splice(waiters_.end(), keep);
  }
}

void ChangeFeed::Shutdown() {
  std::list<Waiter> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    left.swap(waiters_);
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.splice(left.end(), waiters_);
  }
  for (auto& w : left) w.respond(Render(Page(w.who, w.cursor, w.limit)));
}

}  // namespace shardfs::api
