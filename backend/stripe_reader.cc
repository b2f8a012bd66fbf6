#include "backend/stripe_reader.h"

#include <algorithm>
#include <cstring>

#include "base/buffer_pool.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

namespace {

using Clock = std::chrono::steady_clock;

// The reads of one piece's columns: from its data shard, and from other shards when that one
// fails or is slow. Shared with reads running on a pool, which may finish after the piece is
// decided; `keep` holds the source alive for them.
struct PieceRace {
  enum class State { kIdle, kRunning, kOk, kFailed };
  struct Slot {
    State state = State::kIdle;
    BufferPool::Buffer bytes;
  };

  PieceRace(ShardSource* s, std::shared_ptr<ShardSource> k, int n, uint64_t c, size_t l)
      : source(s), keep(std::move(k)), col(c), len(l), slots(static_cast<size_t>(n)) {}

  // Reads shard i's columns into its slot.
  void Run(int i) {
    BufferPool::Buffer buf = BufferPool::Shared().Get(len);
    Status s = cancel.cancelled() ? Status::Cancelled("piece decided")
                                  : source->Read(i, col, buf.span(), &cancel);
    MutexLock lock(&mu);
    Slot& slot = slots[static_cast<size_t>(i)];
    slot.state = s.ok() ? State::kOk : State::kFailed;
    if (s.ok()) slot.bytes = std::move(buf);
    ++events;
    cv.NotifyAll();
  }

  ShardSource* const source;
  const std::shared_ptr<ShardSource> keep;
  const uint64_t col;
  const size_t len;
  CancelToken cancel;
  Mutex mu;
  CondVar cv;
  std::vector<Slot> slots GUARDED_BY(mu);
  uint64_t events GUARDED_BY(mu) = 0;  // reads finished
};

// One read of a pack range: ReadPackRange's work, sequential without a pool, hedged with one.
class RangeRead {
  using Slot = PieceRace::Slot;

 public:
  RangeRead(const StripeLayout& layout, const ErasureCoder& coder, ShardSource* source,
            std::shared_ptr<ShardSource> keep, const HedgeOptions* hedge, ReadStats* stats)
      : layout_(layout),
        coder_(coder),
        source_(source),
        keep_(std::move(keep)),
        hedge_(hedge),
        stats_(stats) {}

  Status Run(uint64_t offset, MutableByteSpan out, std::span<const int> exclude) {
    if (coder_.k() != layout_.k || coder_.m() != layout_.m) {
      return Status::InvalidArgument("coder does not match the pack's layout");
    }
    SFS_ASSIGN_OR_RETURN(std::vector<StripeLayout::Piece> pieces,
                         layout_.Locate(offset, out.size()));
    const int n = coder_.n();
    unusable_.assign(static_cast<size_t>(n), false);
    for (int i : exclude) {
      if (i < 0 || i >= n) return Status::InvalidArgument("excluded shard out of range");
      unusable_[static_cast<size_t>(i)] = true;
    }
    PlanOrder();
    if (stats_) ++stats_->attempts;
    // Every piece's data shard is asked at once; the pieces are then decided in order.
    std::vector<std::shared_ptr<PieceRace>> races;
    std::vector<Clock::time_point> started;
    for (const StripeLayout::Piece& p : pieces) {
      if (stats_) ++stats_->pieces;
      races.push_back(std::make_shared<PieceRace>(source_, keep_, n, p.shard_offset,
                                                  static_cast<size_t>(p.length)));
      started.push_back(Clock::now());
      if (!unusable_[static_cast<size_t>(p.shard)] && !avoided_[static_cast<size_t>(p.shard)]) {
        Launch(races.back(), {p.shard});
      }
    }
    Status s;
    size_t at = 0;
    for (size_t i = 0; i < pieces.size() && s.ok(); ++i) {
      s = Decide(races[i], pieces[i].shard, started[i], out.subspan(at, pieces[i].length));
      at += pieces[i].length;
    }
    for (auto& r : races) r->cancel.Cancel();  // reads still running are not needed
    return s;
  }

 private:
  // candidates_: every shard in the order to ask it, the avoided ones last.
  void PlanOrder() {
    const int n = coder_.n();
    avoided_.assign(static_cast<size_t>(n), false);
    std::vector<bool> listed(static_cast<size_t>(n), false);
    candidates_.clear();
    if (hedge_) {
      for (int i : hedge_->avoid) {
        if (i >= 0 && i < n) avoided_[static_cast<size_t>(i)] = true;
      }
      for (int i : hedge_->order) {
        if (i >= 0 && i < n && !listed[static_cast<size_t>(i)]) {
          listed[static_cast<size_t>(i)] = true;
          candidates_.push_back(i);
        }
      }
    }
    for (int i = 0; i < n; ++i) {
      if (!listed[static_cast<size_t>(i)]) candidates_.push_back(i);
    }
    std::stable_partition(candidates_.begin(), candidates_.end(),
                          [&](int i) { return !avoided_[static_cast<size_t>(i)]; });
  }

  // Marks `shards` running and starts their reads: on the pool, or here, one after another.
  void Launch(const std::shared_ptr<PieceRace>& race, const std::vector<int>& shards) {
    {
      MutexLock lock(&race->mu);
      for (int i : shards) race->slots[static_cast<size_t>(i)].state = PieceRace::State::kRunning;
    }
    for (int i : shards) {
      if (hedge_) {
        hedge_->pool->Submit([race, i] { race->Run(i); });
      } else {
        race->Run(i);
      }
    }
  }

  // Waits for piece `lost`'s columns from its data shard or rebuilt from k others, asking
  // others when the data shard fails, is slow (hedge) or is not to be used, into `dst`.
  Status Decide(const std::shared_ptr<PieceRace>& race, int lost, Clock::time_point started,
                MutableByteSpan dst) {
    using State = PieceRace::State;
    PieceRace& r = *race;
    const int k = coder_.k(), n = coder_.n();
    const auto delay = hedge_ ? hedge_->delay : std::chrono::microseconds(0);
    const Clock::time_point hedge_at = started + delay;
    // Asking other shards: false while the data shard alone is asked.
    bool others = false;
    bool widened = false;
    Clock::time_point widen_at = Clock::time_point::max();
    std::vector<bool> noted(static_cast<size_t>(n), false);
    r.mu.Lock();
    while (true) {
      const Slot& primary = r.slots[static_cast<size_t>(lost)];
      if (primary.state == State::kOk) {
        std::memcpy(dst.data(), primary.bytes.data(), dst.size());
        r.mu.Unlock();
        return Status::Ok();
      }
      int ok = 0, running = 0;
      for (int i = 0; i < n; ++i) {
        const Slot& s = r.slots[static_cast<size_t>(i)];
        if (s.state == State::kFailed && !noted[static_cast<size_t>(i)]) {
          noted[static_cast<size_t>(i)] = true;
          if (!unusable_[static_cast<size_t>(i)]) {
            unusable_[static_cast<size_t>(i)] = true;
            if (stats_) stats_->failed_shards.push_back(i);
          }
        }
        if (i == lost) continue;
        if (s.state == State::kOk) ++ok;
        if (s.state == State::kRunning) ++running;
      }
      if (ok >= k) {
        Status s = Rebuild(r, lost, dst);
        r.mu.Unlock();
        if (stats_) ++stats_->degraded_pieces;
        return s;
      }
      const bool primary_running = primary.state == State::kRunning;
      const auto now = Clock::now();
      if (!others && (!primary_running || now >= hedge_at)) {
        others = true;
        if (primary_running && stats_) ++stats_->hedged_pieces;
        if (hedge_) widen_at = now + delay;
      }
      if (others && now >= widen_at) widened = true;
      std::vector<int> launch;
      if (others) {
        // k answers are needed; after a second delay, everything left is asked.
        const int want = widened ? n : k - ok;
        for (int i : candidates_) {
          if (running + static_cast<int>(launch.size()) >= want) break;
          if (i != lost && !unusable_[static_cast<size_t>(i)] &&
              r.slots[static_cast<size_t>(i)].state == State::kIdle) {
            launch.push_back(i);
          }
        }
        // A data shard that was avoided is still asked when nothing else is left.
        if (launch.empty() && running == 0 && primary.state == State::kIdle &&
            !unusable_[static_cast<size_t>(lost)]) {
          launch.push_back(lost);
        }
      }
      if (!launch.empty()) {
        r.mu.Unlock();
        Launch(race, launch);
        r.mu.Lock();
        continue;
      }
      if (running == 0 && !primary_running) {
        r.mu.Unlock();
        return Status::Unavailable("pack range unreadable: " + std::to_string(ok) + " of " +
                                   std::to_string(n) + " shards usable, " + std::to_string(k) +
                                   " needed");
      }
      const uint64_t seen = r.events;
      auto changed = [&]() REQUIRES(r.mu) { return r.events != seen; };
      const Clock::time_point deadline = !others   ? hedge_at
                                         : widened ? Clock::time_point::max()
                                                   : widen_at;
      if (deadline == Clock::time_point::max()) {
        r.cv.Wait(&r.mu, changed);
      } else {
        r.cv.WaitUntil(&r.mu, deadline, changed);
      }
    }
  }

  Status Rebuild(PieceRace& r, int lost, MutableByteSpan dst) REQUIRES(r.mu) {
    std::vector<ShardPiece> present;
    for (int i = 0; i < coder_.n() && static_cast<int>(present.size()) < coder_.k(); ++i) {
      const Slot& s = r.slots[static_cast<size_t>(i)];
      if (i != lost && s.state == PieceRace::State::kOk) present.push_back({i, s.bytes.span()});
    }
    ShardOutput target{lost, dst};
    return coder_.Reconstruct(present, std::span<const ShardOutput>(&target, 1));
  }

  const StripeLayout& layout_;
  const ErasureCoder& coder_;
  ShardSource* const source_;
  const std::shared_ptr<ShardSource> keep_;
  const HedgeOptions* const hedge_;  // null: sequential
  ReadStats* const stats_;
  std::vector<bool> unusable_;  // failed or excluded, for every piece of this read
  std::vector<bool> avoided_;
  std::vector<int> candidates_;
};

// Calls f with each subset of {0..n-1} of `size` members, in lexicographic order, until f
// returns false. Returns false if f did.
template <typename F>
bool ForEachSubset(int n, int size, std::vector<int>& cur, int from, F&& f) {
  if (static_cast<int>(cur.size()) == size) return f(cur);
  for (int i = from; i < n; ++i) {
    cur.push_back(i);
    bool go_on = ForEachSubset(n, size, cur, i + 1, f);
    cur.pop_back();
    if (!go_on) return false;
  }
  return true;
}

// ReadPackRangeVerified's work; read(exclude, stats) reads the range once.
template <typename Read>
Status VerifiedRead(const ErasureCoder& coder, MutableByteSpan out,
                    const std::function<bool(ByteSpan)>& verify, ReadStats* stats, Read&& read) {
  ReadStats local;
  ReadStats* st = stats ? stats : &local;
  SFS_RETURN_IF_ERROR(read(std::span<const int>(), st));
  if (verify(out)) return Status::Ok();

  // Some shard lied. Read again without each set of suspects, smallest sets first.
  bool found = false;
  int attempts = 1;
  std::vector<int> cur;
  for (int size = 1; size <= coder.m() && !found && attempts < kMaxVerifiedReadAttempts; ++size) {
    ForEachSubset(coder.n(), size, cur, 0, [&](const std::vector<int>& excluded) {
      if (attempts >= kMaxVerifiedReadAttempts) return false;
      ++attempts;
      Status s = read(std::span<const int>(excluded), st);
      if (s.ok() && verify(out)) {
        st->bad_shards = excluded;
        found = true;
        return false;
      }
      return true;
    });
  }
  if (found) return Status::Ok();
  std::memset(out.data(), 0, out.size());
  return Status::Corruption("pack range fails its check with every set of up to " +
                            std::to_string(coder.m()) + " shards left out");
}

}  // namespace

Status ReadPackRange(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                     uint64_t offset, MutableByteSpan out, ReadStats* stats,
                     std::span<const int> exclude) {
  return RangeRead(layout, coder, &source, nullptr, nullptr, stats).Run(offset, out, exclude);
}

Status ReadPackRangeHedged(const StripeLayout& layout, const ErasureCoder& coder,
                           std::shared_ptr<ShardSource> source, uint64_t offset,
                           MutableByteSpan out, ReadStats* stats, std::span<const int> exclude,
                           const HedgeOptions& hedge) {
  if (hedge.pool == nullptr) return Status::InvalidArgument("a hedged read needs a thread pool");
  ShardSource* s = source.get();
  return RangeRead(layout, coder, s, std::move(source), &hedge, stats).Run(offset, out, exclude);
}

Status ReadPackRangeVerified(const StripeLayout& layout, const ErasureCoder& coder,
                             ShardSource& source, uint64_t offset, MutableByteSpan out,
                             const std::function<bool(ByteSpan)>& verify, ReadStats* stats) {
  return VerifiedRead(coder, out, verify, stats, [&](std::span<const int> exclude, ReadStats* st) {
    return ReadPackRange(layout, coder, source, offset, out, st, exclude);
  });
}

Status ReadPackRangeVerifiedHedged(const StripeLayout& layout, const ErasureCoder& coder,
                                   std::shared_ptr<ShardSource> source, uint64_t offset,
                                   MutableByteSpan out, const std::function<bool(ByteSpan)>& verify,
                                   ReadStats* stats, const HedgeOptions& hedge) {
  return VerifiedRead(coder, out, verify, stats, [&](std::span<const int> exclude, ReadStats* st) {
    return ReadPackRangeHedged(layout, coder, source, offset, out, st, exclude, hedge);
  });
}

}  // namespace shardfs::backend
