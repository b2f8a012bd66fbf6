#include "backend/scrubber.h"

#include <algorithm>
#include <vector>

#include "base/logging.h"
#include "base/units.h"

namespace shardfs::backend {

namespace {
using Clock = std::chrono::steady_clock;
// What checking a shard costs besides its bytes (an index lookup, an open, reading its footer
// and leaf hashes), charged against the rate as this many bytes, so that a store of tiny
// shards is not scrubbed at an unbounded number of disk operations per second.
constexpr uint64_t kPerShardCost = 64 * 1024;
}  // namespace

Scrubber::Scrubber(ShardStore* store, ScrubberOptions options)
    : store_(store), options_(std::move(options)) {
  MutexLock lock(&mu_);
  stats_.rate = options_.rate;
}

Scrubber::~Scrubber() { Stop(); }

void Scrubber::Start() {
  MutexLock control(&control_mu_);
  if (started_ || options_.rate == 0) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Scrubber::Stop() {
  MutexLock control(&control_mu_);
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

ScrubStats Scrubber::Stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void Scrubber::Run() {
  log::Info("scrubbing the store at {}/s", FormatByteSize(options_.rate));
  while (true) {
    auto start = Clock::now();
    bool finished = Pass();
    MutexLock lock(&mu_);
    if (stopping_) return;
    if (finished) {
      ++stats_.passes_completed;
      stats_.last_pass_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    }
    // Also after a pass that could not list the store: retry at the next interval.
    cv_.WaitUntil(&mu_, start + options_.min_pass_interval,
                  [this]() REQUIRES(mu_) { return stopping_; });
    if (stopping_) return;
  }
}

bool Scrubber::Pass() {
  std::optional<ShardId> after;
  uint64_t checked = 0, damaged = 0;
  auto pace = [this](uint64_t bytes) { return Pace(bytes); };
  const size_t page_size = std::max<size_t>(options_.page_size, 1);
  while (true) {
    auto page = store_->ListShards(after, page_size);
    if (!page.ok()) {
      log::Warn("scrub: cannot list the stored shards: {}", page.status().ToString());
      return false;
    }
    for (const ShardId& id : *page) {
      after = id;
      Status s = store_->ScrubShard(id, pace);
      if (s.code() == Code::kCancelled) return false;
      if (s.ok() || s.code() == Code::kCorruption) {
        // A damaged shard has been dropped and logged by the store.
        bool bad = !s.ok();
        ++checked;
        damaged += bad ? 1 : 0;
        MutexLock lock(&mu_);
        ++stats_.shards_checked;
        stats_.damaged_found += bad ? 1 : 0;
      } else if (s.code() != Code::kNotFound) {  // NotFound: deleted since it was listed
        log::Warn("scrub: could not check shard {}: {}", id.ToHex(), s.ToString());
      }
      if (!Wait(kPerShardCost)) return false;
    }
    if (page->size() < page_size) break;
  }
  if (checked > 0) {
    log::Info("scrub pass done: {} shard(s) checked, {} damaged", checked, damaged);
  }
  return true;
}

bool Scrubber::Pace(uint64_t bytes) {
  {
    MutexLock lock(&mu_);
    stats_.bytes_checked += bytes;
  }
  return Wait(bytes);
}

bool Scrubber::Wait(uint64_t cost) {
  auto now = Clock::now();
  MutexLock lock(&mu_);
  // The time spent reading counts against nothing, and an idle spell saves no credit: a piece
  // is followed by the whole wait its size costs at the rate, so the average stays below it.
  due_ = std::max(due_, now) +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
             static_cast<double>(cost) / static_cast<double>(options_.rate)));
  cv_.WaitUntil(&mu_, due_, [this]() REQUIRES(mu_) { return stopping_; });
  return !stopping_;
}

}  // namespace shardfs::backend
