// The storage nodes a drive uses, and what the client has seen of each: answers and errors,
// latency, free space, and bad bytes. Placement (which nodes get a new pack's shards) and the
// read path (which holders to ask first) both take their order from here, so one place decides
// how the client's view of a node weighs (docs/architecture.md, "Placement").
//
// Thread safety: all methods may be called from many threads at once.

#ifndef SHARDFS_BACKEND_PEER_SET_H_
#define SHARDFS_BACKEND_PEER_SET_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/drive_config.h"
#include "backend/peer.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

// What the client has seen of one node.
struct PeerHealth {
  uint64_t successes = 0;
  uint64_t failures = 0;
  // Failures since the last success: 0 for a node that answers.
  uint32_t consecutive_failures = 0;
  // Reads overtaken by a hedge (ReportOvertaken) since the last success.
  uint32_t consecutive_overtaken = 0;
  // The last failure was a timeout (ReportTimeout); cleared by a success.
  bool timed_out = false;
  // Times the node answered with bytes that were not what it stores (proven with leaf
  // proofs, or by a whole-shard check). A node that lied once is asked last from then on.
  uint32_t bad_bytes = 0;
  // Smoothed latency of successful requests, in microseconds (0: none measured yet).
  double latency_us = 0;
  // Free space the node last reported; nullopt if it never did.
  std::optional<uint64_t> free;
  // When the node last answered a request (wall clock, ns since the Unix epoch; 0: never).
  int64_t last_seen_ns = 0;
  // While the node is backed off (after failures), when it may next be asked (steady clock);
  // earlier asks are allowed only when no other node is left. Cleared by a success.
  std::chrono::steady_clock::time_point retry_after{};
};

struct PeerSetOptions {
  // After this many consecutive failures a node is "backed off": asked last, and for new
  // shards only when no other node is left, until the back-off ends. A timeout backs it off
  // at once (ReportTimeout).
  uint32_t backoff_after = 2;
  // After this many reads in a row overtaken by a hedge (ReportOvertaken), with no answer in
  // between, a node is backed off too. More than backoff_after: a healthy node loses a race
  // now and then, a stopped one loses every one.
  uint32_t overtaken_backoff_after = 4;
  // The first back-off; it doubles with each further failure, up to max_backoff.
  std::chrono::milliseconds backoff{500};
  // The first back-off after a timeout, longer: a node that takes requests and answers none
  // costs each one a whole deadline. It doubles the same way.
  std::chrono::milliseconds timeout_backoff{5000};
  std::chrono::milliseconds max_backoff{30000};
  // Weight of a sample in the smoothed latency.
  double latency_alpha = 0.2;
};

class PeerSet {
 public:
  // REQUIRES: peers.size() == nodes.size(); no peer is null.
  PeerSet(std::vector<DriveNode> nodes, std::vector<std::shared_ptr<Peer>> peers,
          PeerSetOptions options = {});

  size_t size() const { return nodes_.size(); }
  const DriveNode& node(size_t i) const { return nodes_[i]; }
  Peer& peer(size_t i) const { return *peers_[i]; }
  // The index of the node with this id, or nullopt if the drive does not know it.
  std::optional<size_t> IndexOf(const NodeId& id) const;

  // Outcomes of requests, to learn from.
  void ReportSuccess(size_t i, std::chrono::microseconds latency);
  void ReportFailure(size_t i);
  // A request the node let run past a deadline (DeadlineExceeded: it accepted the connection
  // but did not answer, as a stopped or hung node does): a failure that backs the node off at
  // once, not only after backoff_after of them, since every request sent to such a node costs
  // a whole deadline.
  void ReportTimeout(size_t i);
  void ReportBadBytes(size_t i);
  void ReportFree(size_t i, uint64_t free);
  // A request that was cancelled after `elapsed` because another answered first (a hedged
  // read): neither success nor failure, but the node took at least that long, so its latency
  // is raised towards it.
  void ReportCancelled(size_t i, std::chrono::microseconds elapsed);
  // A read that had not answered within the hedge delay and was cancelled once others had
  // answered for it. Its latency is raised as by ReportCancelled, and it is not a failure
  // (the node may be slow, not down); but after overtaken_backoff_after of them in a row the
  // node is backed off, so reads stop waiting a hedge delay for it: a stopped node's reads are
  // all overtaken, and none runs long enough to fail.
  void ReportOvertaken(size_t i, std::chrono::microseconds elapsed);

  PeerHealth health(size_t i) const;
  // Sets what is kept across sessions (counts, bad bytes, latency, free space, last seen) from
  // a saved `health`; back-off state starts afresh.
  void Restore(size_t i, const PeerHealth& saved);
  // A number that grows with every report: health changed since it was last read if it differs.
  uint64_t changes() const;

  // True if reads should go around node i when others can serve: it is backed off after
  // failures, or has returned bad bytes.
  bool ShouldAvoid(size_t i) const;
  // True while node i is backed off after failures (its retry time has not come).
  bool BackedOff(size_t i) const;
  // True while node i is backed off after a timeout: it took a request lately and did not
  // answer it in time, so another would most likely wait out its deadline too. Reads do not
  // ask it at all then, not even when no other node is left (they fail at once instead);
  // once the back-off ends it is asked again.
  bool Unresponsive(size_t i) const;
  // The median smoothed latency of the nodes that have one and never lied (0 if none has):
  // what a request to a good node takes, the base of the read path's hedge delay.
  std::chrono::microseconds TypicalLatency() const;

  // Nodes in the order new shards should go to them, best first: nodes that answer before
  // backed-off ones, honest before ones that returned bad bytes; among the good, a weighted
  // shuffle favouring free space and low latency, so load spreads over all of them.
  // `exclude` are left out. Each call draws its own order.
  std::vector<size_t> PlacementOrder(const std::vector<size_t>& exclude = {});

  // `candidates` (node indices) sorted for reading, best first: answering, honest, low latency.
  std::vector<size_t> ReadOrder(std::vector<size_t> candidates) const;

 private:
  // Lower is better: the class of a node (0 good, 1 backed off, 2 liar).
  int ClassOf(const PeerHealth& h, std::chrono::steady_clock::time_point now) const;
  // Counts a failure of node i; backs it off once it has backoff_after in a row, or at once
  // if `timeout`.
  void Fail(size_t i, bool timeout) EXCLUDES(mu_);
  // Backs h's node off for `first` doubled `doublings` times (capped at max_backoff), unless
  // it already is for longer.
  void BackOff(PeerHealth& h, std::chrono::milliseconds first, uint32_t doublings) const
      REQUIRES(mu_);
  // Moves h.latency_us towards `sample` (an exponential moving average).
  void SmoothLatency(PeerHealth& h, std::chrono::microseconds sample) const REQUIRES(mu_);
  // As SmoothLatency if `elapsed`, a lower bound of the node's latency, is above the estimate;
  // true if it was.
  bool RaiseLatency(PeerHealth& h, std::chrono::microseconds elapsed) const REQUIRES(mu_);

  const std::vector<DriveNode> nodes_;
  const std::vector<std::shared_ptr<Peer>> peers_;
  const PeerSetOptions options_;
  std::unordered_map<NodeId, size_t> index_;
  mutable Mutex mu_;
  std::vector<PeerHealth> health_ GUARDED_BY(mu_);
  uint64_t changes_ GUARDED_BY(mu_) = 0;
  uint64_t rng_ GUARDED_BY(mu_);
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_PEER_SET_H_
