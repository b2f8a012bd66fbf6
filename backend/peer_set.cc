#include "backend/peer_set.h"

#include <algorithm>
#include <cmath>

#include "base/splitmix64.h"
#include "base/wall_clock.h"

namespace shardfs::backend {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

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
}

uint64_t PeerSet::changes() const {
  MutexLock lock(&mu_);
  return changes_;
}

bool PeerSet::ShouldAvoid(size_t i) const {
  MutexLock lock(&mu_);
  return ClassOf(health_[i], Clock::now()) != 0;
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

int PeerSet::ClassOf(const PeerHealth& h, Clock::time_point now) const {
  if (h.bad_bytes > 0) return 2;
  if (now < h.retry_after) return 1;
  return 0;
}

std::vector<size_t> PeerSet::PlacementOrder(const std::vector<size_t>& exclude) {
  MutexLock lock(&mu_);
  const auto now = Clock::now();
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
    // The weight: share of the largest free space (a node that never said counts as half
    // full), times a latency factor that halves at 20 ms.
    double free_share = max_free == 0 ? 1.0
                                      : static_cast<double>(h.free.value_or(max_free / 2)) /
                                            static_cast<double>(max_free);
    double weight = std::max(free_share, 0.02) / (1.0 + h.latency_us / 20000.0);
    // A weighted shuffle (Efraimidis and Spirakis): key u^(1/w), larger first.
    double u = (static_cast<double>(SplitMix64Next(&rng_) >> 11) + 1.0) * 0x1.0p-53;
    candidates.push_back({ClassOf(h, now), std::pow(u, 1.0 / weight), i});
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
  std::vector<PeerHealth> health;
  {
    MutexLock lock(&mu_);
    health = health_;
  }
  const auto now = Clock::now();
  std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
    int ca = ClassOf(health[a], now), cb = ClassOf(health[b], now);
    if (ca != cb) return ca < cb;
    return health[a].latency_us < health[b].latency_us;
  });
  return candidates;
}

}  // namespace shardfs::backend
