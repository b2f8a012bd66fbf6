#include "backend/pack_upload.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "base/logging.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

namespace {

using Clock = std::chrono::steady_clock;

// One UploadPack: a thread per shard takes nodes from one placement order, so no two shards of
// the pack share a node; the calling thread watches them and moves a straggler.
class PackUpload {
 public:
  PackUpload(PeerSet& peers, const EncodedPack& pack, const CancelToken* cancel,
             const UploadPackOptions& options)
      : peers_(peers),
        pack_(pack),
        cancel_(cancel),
        options_(options),
        order_(peers.PlacementOrder()),
        running_(pack.shard_ids.size()),
        holder_(pack.shard_ids.size()),
        result_(pack.shard_ids.size()) {}

  Result<PackRecord> Run() {
    const size_t n = pack_.shard_ids.size();
    std::vector<std::thread> uploads;
    uploads.reserve(n);
    for (size_t i = 0; i < n; ++i) uploads.emplace_back([this, i] { Store(i); });
    Watch();
    for (auto& t : uploads) t.join();
    std::vector<Status> result;
    std::vector<size_t> holder;
    {
      MutexLock lock(&mu_);
      result = result_;
      holder = holder_;
    }
    // A pack not stored whole is of no use: its shards already stored go again (best effort; a
    // node that does not answer now keeps its shard, unknown to the catalog).
    bool whole = true;
    for (const Status& r : result) whole = whole && r.ok();
    if (!whole) {
      for (size_t i = 0; i < n; ++i) {
        if (!result[i].ok()) continue;
        Status s = peers_.peer(holder[i]).DeleteShard(pack_.shard_ids[i]);
        if (!s.ok() && s.code() != Code::kNotFound) {
          log::Warn("shard {} of pack {} left on {}: {}", i, pack_.id.ToHex(),
                    peers_.peer(holder[i]).name(), s.ToString());
        }
      }
    }
    PackRecord record;
    record.id = pack_.id;
    record.k = pack_.layout.k;
    record.m = pack_.layout.m;
    record.size = pack_.layout.pack_size;
    record.shards = pack_.shard_ids;
    for (size_t i = 0; i < n; ++i) {
      if (!result[i].ok()) {
        if (result[i].code() == Code::kCancelled) return result[i];
        return Status::Unavailable("pack " + pack_.id.ToHex() + ": shard " + std::to_string(i) +
                                   " of " + std::to_string(n) +
                                   " could not be stored on a node distinct from the others' "
                                   "(last: " +
                                   result[i].ToString() + ")");
      }
      record.nodes.push_back(peers_.node(holder[i]).id);
    }
    return record;
  }

 private:
  // The put of one shard now running.
  struct Running {
    CancelToken* token = nullptr;  // null: none running
    size_t node = 0;
    Clock::time_point start;
    bool moved = false;  // cancelled by Watch, to go elsewhere
  };

  // Stores shard i on the next node of the order that takes it.
  void Store(size_t i) {
    Status last = Status::Unavailable("no node was left to try");
    for (;;) {
      CancelToken attempt;
      size_t node;
      Clock::time_point start;
      {
        MutexLock lock(&mu_);
        if (running_[i].moved) --moves_pending_;
        running_[i] = Running{};
        if (IsCancelled(cancel_)) {
          last = Status::Cancelled("upload cancelled");
          break;
        }
        if (cursor_ >= order_.size()) break;
        node = order_[cursor_++];
        start = Clock::now();
        running_[i] = Running{&attempt, node, start, false};
      }
      {
        // The caller's cancel reaches this put through its own token, which Watch may also
        // cancel. Declared after `attempt`, so it ends first.
        std::optional<CancelToken::Registration> link;
        if (cancel_ != nullptr) link.emplace(cancel_->OnCancel([&attempt] { attempt.Cancel(); }));
        last = peers_.peer(node).PutShard(pack_.shard_ids[i], pack_.shard(static_cast<int>(i)),
                                          &attempt);
      }
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      bool moved;
      {
        MutexLock lock(&mu_);
        moved = running_[i].moved;
        running_[i].token = nullptr;  // Watch no longer touches `attempt`
        if (last.ok()) slowest_ = std::max(slowest_, took);
      }
      if (last.ok()) {
        peers_.ReportSuccess(node, took);
        MutexLock lock(&mu_);
        holder_[i] = node;
        break;
      }
      if (moved && !IsCancelled(cancel_)) {
        // It kept the shard far longer than the others took: a stopped node keeps it until
        // the peer's deadlines (up to io_timeout for a body that stalls).
        peers_.ReportTimeout(node);
        log::Warn("shard {} of pack {} moved from {}: not stored after {} ms", i, pack_.id.ToHex(),
                  peers_.peer(node).name(), took.count() / 1000);
        continue;
      }
      if (last.code() == Code::kCancelled) break;
      if (last.code() == Code::kDeadlineExceeded) {
        peers_.ReportTimeout(node);  // stopped or hung: the next packs go elsewhere
      } else {
        peers_.ReportFailure(node);
      }
      log::Warn("shard {} of pack {} not stored on {}: {}", i, pack_.id.ToHex(),
                peers_.peer(node).name(), last.ToString());
    }
    MutexLock lock(&mu_);
    if (running_[i].moved) --moves_pending_;
    running_[i] = Running{};
    result_[i] = last;
    ++done_;
    cv_.NotifyAll();
  }

  // Until every shard's thread is done: moves a shard whose put has run move_after and
  // move_factor times the slowest stored one, while a node is left for it.
  void Watch() {
    const size_t n = pack_.shard_ids.size();
    MutexLock lock(&mu_);
    while (done_ < n) {
      cv_.WaitUntil(&mu_, Clock::now() + std::chrono::milliseconds(100),
                    [&]() REQUIRES(mu_) { return done_ == n; });
      if (slowest_.count() == 0) continue;  // nothing stored yet to compare with
      const auto now = Clock::now();
      const auto limit = std::max<Clock::duration>(
          options_.move_after, std::chrono::duration_cast<Clock::duration>(
                                   slowest_ * static_cast<double>(options_.move_factor)));
      for (Running& r : running_) {
        if (order_.size() - cursor_ <= moves_pending_) break;  // no node left to move to
        if (r.token == nullptr || r.moved || now - r.start < limit) continue;
        r.moved = true;
        ++moves_pending_;
        r.token->Cancel();
      }
    }
  }

  PeerSet& peers_;
  const EncodedPack& pack_;
  const CancelToken* const cancel_;
  const UploadPackOptions options_;
  const std::vector<size_t> order_;
  Mutex mu_;
  CondVar cv_;
  size_t cursor_ GUARDED_BY(mu_) = 0;         // the next node of order_ to use
  size_t moves_pending_ GUARDED_BY(mu_) = 0;  // moved shards that have not taken a node yet
  size_t done_ GUARDED_BY(mu_) = 0;           // shards whose thread ended
  std::chrono::microseconds slowest_ GUARDED_BY(mu_){0};  // the slowest put that stored one
  std::vector<Running> running_ GUARDED_BY(mu_);
  std::vector<size_t> holder_ GUARDED_BY(mu_);
  std::vector<Status> result_ GUARDED_BY(mu_);
};

}  // namespace

Result<PackRecord> UploadPack(PeerSet& peers, const EncodedPack& pack, const CancelToken* cancel,
                              const UploadPackOptions& options) {
  return PackUpload(peers, pack, cancel, options).Run();
}

std::vector<ChunkRecord> ChunkRecordsOf(const EncodedPack& pack, crypto::Cipher cipher) {
  std::vector<ChunkRecord> chunks;
  chunks.reserve(pack.entries.size());
  for (const PackEntry& e : pack.entries) {
    chunks.push_back(ChunkRecord{e.id, pack.id, e.offset, e.sealed_size, e.plain_size,
                                 static_cast<uint8_t>(cipher), static_cast<uint8_t>(e.codec)});
  }
  return chunks;
}

}  // namespace shardfs::backend
