#include "backend/peer_set.h"

#include <algorithm>
#include <cmath>

#include "base/splitmix64.h"
#include "base/wall_clock.h"

namespace shardfs::backend {

namespace {
using Clock = std::chrono::steady_clock;

// Decays `sums` to `now_ns` (half every half_life).
ReputationSums Decayed(const ReputationSums& sums, int64_t now_ns, const ReputationOptions& o) {
  ReputationSums out = sums;
  if (sums.at_ns > 0 && now_ns > sums.at_ns && o.half_life.count() > 0) {
    double halves =
        static_cast<double>(now_ns - sums.at_ns) / (static_cast<double>(o.half_life.count()) * 1e9);
    double f = std::exp2(-halves);
    out.good *= f;
    out.bad *= f;
  }
  out.at_ns = std::max(sums.at_ns, now_ns);
  return out;
}

}  // namespace

const char* NodeLivenessName(NodeLiveness l) {
  switch (l) {
    case NodeLiveness::kUnknown:
      return "unknown";
    case NodeLiveness::kAlive:
      return "alive";
    case NodeLiveness::kSuspect:
      return "suspect";
    case NodeLiveness::kDead:
      return "dead";
    case NodeLiveness::kLeft:
      return "left";
  }
  return "unknown";
}

double ReputationScore(const ReputationSums& sums, int64_t now_ns, const ReputationOptions& o) {
  ReputationSums d = Decayed(sums, now_ns, o);
  return (d.good + o.prior) / (d.good + d.bad + o.prior);
}

PeerSet::PeerSet(std::vector<DriveNode> nodes, std::vector<std::shared_ptr<Peer>> peers,
                 PeerSetOptions options)
    : nodes_(std::move(nodes)),
      peers_(std::move(peers)),
      options_(options),
      health_(nodes_.size()),
      rng_(static_cast<uint64_t>(Clock::now().time_since_epoch().count())) {
  for (size_t i = 0; i < nodes_.size(); ++i) index_[nodes_[i].id] = i;
}

std::optional<size_t> PeerSet::IndexOf(const NodeId& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

void PeerSet::ReportSuccess(size_t i, std::chrono::microseconds latency) {
  MutexLock lock(&mu_);
  PeerHealth& h = health_[i];
  ++changes_;
  ++h.successes;
  h.consecutive_failures = 0;
  h.consecutive_overtaken = 0;
  h.timed_out = false;
  h.retry_after = {};
  h.last_seen_ns = WallClockNs();
  SmoothLatency(h, latency);
  Observe(h, true, options_.reputation.transfer_ok);
}

void PeerSet::Observe(PeerHealth& h, bool good, double weight) const {
  h.reputation = Decayed(h.reputation, WallClockNs(), options_.reputation);
  (good ? h.reputation.good : h.reputation.bad) += weight;
}

void PeerSet::ReportAudit(size_t i, bool passed) {
  MutexLock lock(&mu_);
  PeerHealth& h = health_[i];
  ++changes_;
  ++(passed ? h.audits_passed : h.audits_failed);
  Observe(h, passed, passed ? options_.reputation.audit_passed : options_.reputation.audit_failed);
}

void PeerSet::SetMembership(size_t i, NodeLiveness liveness, std::optional<Coordinate> coordinate,
                            std::chrono::milliseconds state_age) {
  MutexLock lock(&mu_);
  PeerHealth& h = health_[i];
  if (h.liveness != liveness) {
    ++changes_;
    h.liveness_since = Clock::now() - state_age;
  }
  h.liveness = liveness;
  if (coordinate && ValidateCoordinate(*coordinate).ok()) h.coordinate = coordinate;
}

void PeerSet::SetRtt(size_t i, double ms) {
  MutexLock lock(&mu_);
  health_[i].rtt_ms = ms;
}

void PeerSet::SetOwnCoordinate(const Coordinate& c) {
  MutexLock lock(&mu_);
  if (ValidateCoordinate(c).ok()) own_coordinate_ = c;
}

std::optional<Coordinate> PeerSet::own_coordinate() const {
  MutexLock lock(&mu_);
  return own_coordinate_;
}

double PeerSet::Reputation(size_t i) const {
  MutexLock lock(&mu_);
  return ReputationScore(health_[i].reputation, WallClockNs(), options_.reputation);
}

bool PeerSet::HealthyLocked(const PeerHealth& h, int64_t now_ns,
                            std::chrono::milliseconds dead_grace) const {
  if ((h.liveness == NodeLiveness::kDead || h.liveness == NodeLiveness::kLeft) &&
      Clock::now() - h.liveness_since >= dead_grace) {
    return false;
  }
  return ReputationScore(h.reputation, now_ns, options_.reputation) >=
         options_.reputation.threshold;
}

bool PeerSet::Healthy(size_t i, std::chrono::milliseconds dead_grace) const {
  MutexLock lock(&mu_);
  return HealthyLocked(health_[i], WallClockNs(), dead_grace);
}

std::optional<double> PeerSet::PredictedRttMs(size_t i) const {
  MutexLock lock(&mu_);
  if (!own_coordinate_ || !health_[i].coordinate) return std::nullopt;
  return PredictRtt(*own_coordinate_, *health_[i].coordinate);
}

double PeerSet::RankLatency(const PeerHealth& h) const {
  if (h.latency_us > 0) return h.latency_us;
  if (own_coordinate_ && h.coordinate) return PredictRtt(*own_coordinate_, *h.coordinate) * 1000;
  return 0;
}

void PeerSet::SmoothLatency(PeerHealth& h, std::chrono::microseconds sample) const {
  const double us = static_cast<double>(sample.count());
  h.latency_us =
      h.latency_us == 0 ? us : h.latency_us + options_.latency_alpha * (us - h.latency_us);
}

bool PeerSet::RaiseLatency(PeerHealth& h, std::chrono::microseconds elapsed) const {
  // A lower bound of the node's latency: it only ever raises the estimate.
  if (static_cast<double>(elapsed.count()) <= h.latency_us) return false;
  SmoothLatency(h, elapsed);
  return true;
}

void PeerSet::BackOff(PeerHealth& h, std::chrono::milliseconds first, uint32_t doublings) const {
  // Doubling back-off: 1x, 2x, 4x ... of `first`, capped.
  auto wait =
      std::min(first * (int64_t{1} << std::min<uint32_t>(doublings, 16)), options_.max_backoff);
  h.retry_after = std::max(h.retry_after, Clock::now() + wait);
}

void PeerSet::ReportCancelled(size_t i, std::chrono::microseconds elapsed) {
  MutexLock lock(&mu_);
  if (RaiseLatency(health_[i], elapsed)) ++changes_;
}

void PeerSet::ReportOvertaken(size_t i, std::chrono::microseconds elapsed) {
  MutexLock lock(&mu_);
  PeerHealth& h = health_[i];
  ++changes_;
  RaiseLatency(h, elapsed);
  ++h.consecutive_overtaken;
  if (h.consecutive_overtaken >= options_.overtaken_backoff_after) {
    BackOff(h, options_.backoff, h.consecutive_overtaken - options_.overtaken_backoff_after);
  }
}

void PeerSet::ReportFailure(size_t i) { Fail(i, false); }

void PeerSet::ReportTimeout(size_t i) { Fail(i, true); }

void PeerSet::Fail(size_t i, bool timeout) {
  MutexLock lock(&mu_);
  PeerHealth& h = health_[i];
  ++changes_;
  ++h.failures;
  ++h.consecutive_failures;
  h.timed_out = timeout;
  Observe(h, false, options_.reputation.transfer_error);
  if (timeout || h.consecutive_failures >= options_.backoff_after) {
    // Each failure in a row past backoff_after doubles the back-off.
    BackOff(h, timeout ? options_.timeout_backoff : options_.backoff,
            h.consecutive_failures > options_.backoff_after
                ? h.consecutive_failures - options_.backoff_after
                : 0);
  }
}

void PeerSet::ReportBadBytes(size_t i) {
  MutexLock lock(&mu_);
  ++changes_;
  ++health_[i].bad_bytes;
  Observe(health_[i], false, options_.reputation.bad_bytes);
}

void PeerSet::ReportFree(size_t i, uint64_t free) {
  MutexLock lock(&mu_);
  ++changes_;
  health_[i].free = free;
}

PeerHealth PeerSet::health(size_t i) const {
  MutexLock lock(&mu_);
  return health_[i];
}

void PeerSet::Restore(size_t i, const PeerHealth& saved) {
  MutexLock lock(&mu_);
  PeerHealth& h = health_[i];
  h.successes = saved.successes;
  h.failures = saved.failures;
  h.bad_bytes = saved.bad_bytes;
  h.latency_us = saved.latency_us;
  h.free = saved.free;
  h.last_seen_ns = saved.last_seen_ns;
  h.reputation = saved.reputation;
  h.audits_passed = saved.audits_passed;
  h.audits_failed = saved.audits_failed;
}

uint64_t PeerSet::changes() const {
  MutexLock lock(&mu_);
  return changes_;
}

bool PeerSet::ShouldAvoid(size_t i) const {
  MutexLock lock(&mu_);
  return ClassOf(health_[i], Clock::now(), WallClockNs()) != 0;
}

bool PeerSet::BackedOff(size_t i) const {
  MutexLock lock(&mu_);
  return Clock::now() < health_[i].retry_after;
}

bool PeerSet::Unresponsive(size_t i) const {
  MutexLock lock(&mu_);
  return health_[i].timed_out && Clock::now() < health_[i].retry_after;
}

std::chrono::microseconds PeerSet::TypicalLatency() const {
  MutexLock lock(&mu_);
  std::vector<double> measured;
  for (const PeerHealth& h : health_) {
    if (h.latency_us > 0 && h.bad_bytes == 0) measured.push_back(h.latency_us);
  }
  if (measured.empty()) return std::chrono::microseconds(0);
  auto mid = measured.begin() + static_cast<ptrdiff_t>(measured.size() / 2);
  std::nth_element(measured.begin(), mid, measured.end());
  return std::chrono::microseconds(static_cast<int64_t>(*mid));
}

int PeerSet::ClassOf(const PeerHealth& h, Clock::time_point now, int64_t now_ns) const {
  if (h.bad_bytes > 0 || h.liveness == NodeLiveness::kDead || h.liveness == NodeLiveness::kLeft ||
      ReputationScore(h.reputation, now_ns, options_.reputation) < options_.reputation.threshold) {
    return 2;
  }
  if (now < h.retry_after || h.liveness == NodeLiveness::kSuspect) return 1;
  return 0;
}

std::vector<size_t> PeerSet::PlacementOrder(const std::vector<size_t>& exclude) {
  MutexLock lock(&mu_);
  const auto now = Clock::now();
  const int64_t now_ns = WallClockNs();
  uint64_t max_free = 0;
  for (const PeerHealth& h : health_) max_free = std::max(max_free, h.free.value_or(0));
  struct Candidate {
    int klass;
    double key;
    size_t index;
  };
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
    const PeerHealth& h = health_[i];
    if (!HealthyLocked(h, now_ns)) continue;
    // The weight: share of the largest free space (a node that never said counts as half
    // full), times a latency factor that halves at 20 ms.
    double free_share = max_free == 0 ? 1.0
                                      : static_cast<double>(h.free.value_or(max_free / 2)) /
                                            static_cast<double>(max_free);
    double weight = std::max(free_share, 0.02) / (1.0 + RankLatency(h) / 20000.0);
    // A weighted shuffle (Efraimidis and Spirakis): key u^(1/w), larger first.
    double u = (static_cast<double>(SplitMix64Next(&rng_) >> 11) + 1.0) * 0x1.0p-53;
    candidates.push_back({ClassOf(h, now, now_ns), std::pow(u, 1.0 / weight), i});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.klass != b.klass ? a.klass < b.klass : a.key > b.key;
  });
  std::vector<size_t> order;
  order.reserve(candidates.size());
  for (const Candidate& c : candidates) order.push_back(c.index);
  return order;
}

std::vector<size_t> PeerSet::ReadOrder(std::vector<size_t> candidates) const {
  struct Rank {
    int klass;
    double latency;
  };
  std::vector<Rank> rank(nodes_.size());
  {
    MutexLock lock(&mu_);
    const auto now = Clock::now();
    const int64_t now_ns = WallClockNs();
    for (size_t i : candidates)
      rank[i] = {ClassOf(health_[i], now, now_ns), RankLatency(health_[i])};
  }
  std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
    if (rank[a].klass != rank[b].klass) return rank[a].klass < rank[b].klass;
    return rank[a].latency < rank[b].latency;
  });
  return candidates;
}

}  // namespace shardfs::backend
