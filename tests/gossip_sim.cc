#include "tests/gossip_sim.h"

#include <cstdlib>

#include "base/splitmix64.h"
#include "crypto/secret.h"

namespace shardfs::test {

GossipSim::GossipSim(GossipSimOptions options) : options_(std::move(options)), rng_(options_.seed) {
  start_ = Clock::time_point() + std::chrono::hours(1);
  now_ = start_;
  tick_ = options_.gossip.period / 10;
  next_tick_ = now_;
  std::vector<std::shared_ptr<const net::MemberRecord>> records;
  for (int i = 0; i < options_.nodes; ++i) {
    SimNode n;
    n.address = "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                std::to_string(i % 256) + ":7070";
    net::GossipSelf self{n.address, uint64_t{1} << 40, uint64_t{1} << 39};
    // Keys from the seed, so a run is the same every time.
    Bytes seed_bytes(32);
    FillSplitMix64(seed_bytes, options_.seed * 7919 + static_cast<uint64_t>(i));
    auto key = crypto::SigningKey::FromSeed(crypto::SecretKey::FromBytes(seed_bytes).value());
    auto g = net::Gossip::Create(std::move(key), self, options_.gossip,
                                 /*incarnation=*/1, options_.seed * 1000003 + i, now_);
    if (!g.ok()) std::abort();  // the options are the caller's to get right
    n.gossip = std::move(*g);
    n.id = n.gossip->id();
    records.push_back(n.gossip->Records().front());
    by_address_[n.address] = i;
    nodes_.push_back(std::move(n));
  }
  for (int i = 0; i < size(); ++i) {
    if (options_.full_membership) {
      nodes_[i].gossip->MergeVerified(records, now_);
    } else if (i != 0) {
      nodes_[i].gossip->MergeVerified({&records[0], 1}, now_);
      (void)nodes_[0].gossip->Merge(records[i]->encoded, now_);
    }
  }
}

double GossipSim::Uniform() {
  return static_cast<double>(SplitMix64Next(&rng_) >> 11) / static_cast<double>(1ull << 53);
}

void GossipSim::Send(int from, std::vector<net::Datagram> out) {
  for (auto& d : out) {
    auto it = by_address_.find(d.address);
    if (it == by_address_.end()) continue;
    int to = it->second;
    if (cut_.count({std::min(from, to), std::max(from, to)}) > 0) continue;
    if (options_.loss > 0 && Uniform() < options_.loss) continue;
    double ms = options_.delay_ms ? options_.delay_ms(from, to) : 0.1;
    auto delay =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
    queue_.push(InFlight{now_ + delay, order_++, to, nodes_[from].address, std::move(d.bytes)});
  }
}

void GossipSim::Deliver(int to, const std::string& from, const Bytes& bytes) {
  SimNode& n = nodes_[to];
  if (n.crashed) return;
  if (n.stopped) {
    n.held.emplace_back(from, bytes);
    return;
  }
  Send(to, n.gossip->Receive(bytes, from, now_));
}

void GossipSim::Run(Clock::duration d) {
  RunUntil([] { return false; }, d);
}

bool GossipSim::RunUntil(const std::function<bool()>& done, Clock::duration limit) {
  Clock::time_point end = now_ + limit;
  if (done()) return true;
  while (true) {
    if (next_tick_ > end && (queue_.empty() || queue_.top().at > end)) {
      now_ = end;
      return done();
    }
    if (!queue_.empty() && queue_.top().at <= next_tick_) {
      InFlight p = queue_.top();
      queue_.pop();
      now_ = p.at;
      Deliver(p.to, p.from, p.bytes);
      continue;
    }
    now_ = next_tick_;
    next_tick_ += tick_;
    for (int i = 0; i < size(); ++i) {
      if (nodes_[i].crashed || nodes_[i].stopped) continue;
      Send(i, nodes_[i].gossip->Tick(now_));
    }
    // Checked after each tick (not each packet): a view of thousands of nodes costs as much
    // as a tick.
    if (done()) return true;
  }
}

void GossipSim::Crash(int i) { nodes_[i].crashed = true; }
void GossipSim::Stop(int i) { nodes_[i].stopped = true; }

void GossipSim::Resume(int i) {
  SimNode& n = nodes_[i];
  n.stopped = false;
  // The process sees its timers first (it stood still), then reads its socket.
  Send(i, n.gossip->Tick(now_));
  auto held = std::move(n.held);
  n.held.clear();
  for (auto& [from, bytes] : held) Send(i, n.gossip->Receive(bytes, from, now_));
}

void GossipSim::Leave(int i) { Send(i, nodes_[i].gossip->Leave(now_)); }

void GossipSim::Cut(int a, int b) { cut_.insert({std::min(a, b), std::max(a, b)}); }

int GossipSim::CountSeeing(int subject, net::MemberState state) const {
  int n = 0;
  for (int i = 0; i < size(); ++i) {
    if (i == subject || nodes_[i].crashed || nodes_[i].stopped) continue;
    auto v = nodes_[i].gossip->Find(nodes_[subject].id);
    if (v && v->state == state) ++n;
  }
  return n;
}

uint64_t GossipSim::PacketsSent() const {
  uint64_t n = 0;
  for (const auto& node : nodes_) n += node.gossip->counters().packets_sent;
  return n;
}

}  // namespace shardfs::test
