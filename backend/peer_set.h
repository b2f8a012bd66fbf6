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

#include "backend/catalog.h"
#include "backend/coordinates.h"
#include "backend/drive_config.h"
#include "backend/peer.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

// A node's state in the network, as the drive last learnt it from a node's member list
// (backend/membership.h); kUnknown until then.
enum class NodeLiveness { kUnknown, kAlive, kSuspect, kDead, kLeft };
const char* NodeLivenessName(NodeLiveness l);

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
  // Reputation (see PeerSetOptions::reputation): decayed weights of what the node did.
  ReputationSums reputation;
  uint64_t audits_passed = 0;
  uint64_t audits_failed = 0;
  // From the network's member list.
  NodeLiveness liveness = NodeLiveness::kUnknown;
  std::chrono::steady_clock::time_point liveness_since{};  // when `liveness` last changed
  std::optional<Coordinate> coordinate;                    // as the node signed it
  // The round trip this client last measured to it (a status request; median), in ms.
  std::optional<double> rtt_ms;
};

// How a node's reputation is kept (docs/network.md, "Reputation"). Each observation adds its
// weight to the good or the bad sum; both decay by half every half_life; the score is
// (good + prior) / (good + bad + prior), so a node starts at 1 and one failed audit takes it
// to a third. A node whose score is below `threshold` gets no new shards, is read from last,
// and its shards count as endangered (repair moves them).
struct ReputationOptions {
  std::chrono::seconds half_life{24 * 3600};
  double prior = 5;
  double threshold = 0.5;
  double audit_passed = 1;      // good
  double audit_failed = 10;     // bad: a shard it acknowledged is gone or wrong
  double bad_bytes = 10;        // bad: a read answered with bytes it does not store
  double transfer_ok = 0.02;    // good: a request answered
  double transfer_error = 0.1;  // bad: a request failed or timed out
};

// The score of `sums` at `now_ns` under `options` (1 for a node never seen).
double ReputationScore(const ReputationSums& sums, int64_t now_ns,
                       const ReputationOptions& options);

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
  ReputationOptions reputation;
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
  // An audit of a shard on node i passed (the leaf and its proof matched the shard id) or
  // failed (the node lost the shard, or answered with wrong bytes or a wrong proof).
  void ReportAudit(size_t i, bool passed);
  // What the network's member list says of node i: its state, for how long it has been in it
  // (`state_age`), and its signed coordinate.
  void SetMembership(size_t i, NodeLiveness liveness, std::optional<Coordinate> coordinate,
                     std::chrono::milliseconds state_age = {});
  // The round trip this client measured to node i, in ms (PeerHealth::rtt_ms).
  void SetRtt(size_t i, double ms);
  // This client's own coordinate (fitted by the drive against the nodes'), for PredictedRtt.
  void SetOwnCoordinate(const Coordinate& c);
  std::optional<Coordinate> own_coordinate() const;

  // Node i's reputation score now (ReputationScore).
  double Reputation(size_t i) const;
  // True if node i may get new shards and counts as a healthy holder: its reputation is at or
  // above the threshold and the network has not held it for dead or departed for
  // `dead_grace` or longer.
  bool Healthy(size_t i, std::chrono::milliseconds dead_grace = {}) const;
  // The round trip to node i predicted from the coordinates, in ms; nullopt without both.
  std::optional<double> PredictedRttMs(size_t i) const;

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
  // backed-off ones; among the good, a weighted shuffle favouring free space and low latency
  // (measured, or else predicted from coordinates), so load spreads over all of them. Nodes
  // that are not Healthy (low reputation: liars, failed audits; dead or departed) and
  // `exclude` are left out. Each call draws its own order.
  std::vector<size_t> PlacementOrder(const std::vector<size_t>& exclude = {});

  // `candidates` (node indices) sorted for reading, best first: answering, honest, low latency
  // (measured, or else predicted from coordinates).
  std::vector<size_t> ReadOrder(std::vector<size_t> candidates) const;

 private:
  // Lower is better: the class of a node (0 good, 1 backed off or suspect, 2 liar, untrusted,
  // dead or departed).
  int ClassOf(const PeerHealth& h, std::chrono::steady_clock::time_point now, int64_t now_ns) const;
  bool HealthyLocked(const PeerHealth& h, int64_t now_ns,
                     std::chrono::milliseconds dead_grace = {}) const REQUIRES(mu_);
  // The latency to rank node h by, in µs: measured, else predicted, else 0.
  double RankLatency(const PeerHealth& h) const REQUIRES(mu_);
  // Adds an observation of `weight` to h's good or bad sum, decaying both to now first.
  void Observe(PeerHealth& h, bool good, double weight) const REQUIRES(mu_);
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
  std::optional<Coordinate> own_coordinate_ GUARDED_BY(mu_);
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_PEER_SET_H_
