// A storage node's scrubber: a background thread that walks the shard store over and over,
// checking every shard in full (ShardStore::ScrubShard: every leaf against the leaf hashes,
// the leaf hashes against the id) at a bounded rate. A shard found damaged is dropped, as a
// failed read drops it, so damage on the node's disk is found even in shards that nobody
// reads (a node sends GET bytes as stored; see backend/shardstore.h).
//
// Thread safety: all methods may be called from any thread.

#ifndef SHARDFS_BACKEND_SCRUBBER_H_
#define SHARDFS_BACKEND_SCRUBBER_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "backend/shardstore.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

struct ScrubberOptions {
  // The most shard bytes read per second, on average (the operator's --scrub-rate); 0 turns
  // scrubbing off. Each shard also costs 64 KiB of it for its open and index lookup, so that
  // tiny shards do not make for unbounded disk operations per second.
  uint64_t rate = uint64_t{16} << 20;
  // Passes start at most this often: after a pass that took less, the next waits for the
  // rest of the interval, so a small store is not re-read back to back.
  std::chrono::milliseconds min_pass_interval = std::chrono::hours(1);
  // Shard ids fetched from the index at a time.
  size_t page_size = 256;
};

// Progress since the scrubber was made (GET /v1/status, "scrub").
struct ScrubStats {
  uint64_t rate = 0;                        // bytes per second as configured; 0: scrubbing is off
  uint64_t passes_completed = 0;            // passes over the whole store finished
  uint64_t shards_checked = 0;              // shards checked in full, whole or damaged
  uint64_t bytes_checked = 0;               // shard bytes read and checked
  uint64_t damaged_found = 0;               // shards found damaged (and dropped)
  std::optional<double> last_pass_seconds;  // how long the last finished pass took
};

class Scrubber {
 public:
  // REQUIRES: `store` outlives the scrubber.
  Scrubber(ShardStore* store, ScrubberOptions options);
  // Stops the thread if it runs.
  ~Scrubber();
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // Starts the thread, which begins its first pass at once; does nothing if the rate is 0 or
  // the scrubber was started before.
  void Start();
  // Stops the thread and waits for it. Prompt: the thread stops after the piece (1 MiB) it is
  // reading, or at once if it is waiting. The store is left consistent (a shard being checked
  // is neither dropped nor counted). Idempotent.
  void Stop();

  ScrubStats Stats() const;

 private:
  void Run();
  // One pass over the store; false if it was stopped or could not list the store.
  bool Pass();
  // ScrubPacer: counts `bytes` as checked, then Wait(bytes).
  bool Pace(uint64_t bytes);
  // Sleeps until `cost` more bytes fit the rate; false if stopping.
  bool Wait(uint64_t cost);

  ShardStore* const store_;
  const ScrubberOptions options_;
  // Lock order: control_mu_, then mu_. control_mu_ serializes Start and Stop (held while
  // joining, so never taken by the thread); mu_ guards the state the thread shares.
  Mutex control_mu_;
  bool started_ GUARDED_BY(control_mu_) = false;
  std::thread thread_ GUARDED_BY(control_mu_);
  mutable Mutex mu_;
  CondVar cv_;  // signalled when stopping_ is set
  bool stopping_ GUARDED_BY(mu_) = false;
  // When the bytes read so far are paid for at the rate.
  std::chrono::steady_clock::time_point due_ GUARDED_BY(mu_);
  ScrubStats stats_ GUARDED_BY(mu_);
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_SCRUBBER_H_
