// A simulated network for net::Gossip: many instances in one process, packets delivered by a
// discrete-event loop with per-pair one-way delays, random loss, cut links, crashed and
// stopped nodes. No sockets and no real clock: a run of minutes of protocol time takes
// milliseconds. Used by net/gossip_test.cc and bench/network.
//
// Thread safety: one thread.

#ifndef SHARDFS_TESTS_GOSSIP_SIM_H_
#define SHARDFS_TESTS_GOSSIP_SIM_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/gossip.h"

namespace shardfs::test {

struct GossipSimOptions {
  int nodes = 8;
  net::GossipOptions gossip;
  // One-way delay from node a to node b in ms; default 0.1 ms everywhere.
  std::function<double(int a, int b)> delay_ms;
  // Fraction of packets lost, at random.
  double loss = 0;
  // true: every node starts knowing every other (a network that has converged); false: each
  // joins through node 0 (it merges node 0's record and node 0 merges its).
  bool full_membership = true;
  uint64_t seed = 1;
};

class GossipSim {
 public:
  using Clock = net::Gossip::Clock;

  explicit GossipSim(GossipSimOptions options);

  int size() const { return static_cast<int>(nodes_.size()); }
  net::Gossip& node(int i) { return *nodes_[i].gossip; }
  const NodeId& id(int i) const { return nodes_[i].id; }
  Clock::time_point now() const { return now_; }
  // Protocol time since the start.
  Clock::duration elapsed() const { return now_ - start_; }

  // Runs the network for `d` of protocol time.
  void Run(Clock::duration d);
  // Runs until `done` holds (checked first and after every tick) or `limit` passes; true if
  // it held.
  bool RunUntil(const std::function<bool()>& done, Clock::duration limit);

  // The node's process dies: it neither ticks nor receives, and packets to it are lost.
  void Crash(int i);
  // SIGSTOP: it neither ticks nor receives; packets to it wait in its socket buffer.
  void Stop(int i);
  // SIGCONT: it takes in what waited and ticks again (and finds that it stood still).
  void Resume(int i);
  // The node leaves on purpose (Gossip::Leave); it keeps answering.
  void Leave(int i);
  // Packets between a and b (both ways) are lost.
  void Cut(int a, int b);

  // How many nodes other than `subject` (and not crashed or stopped) see it in `state`.
  int CountSeeing(int subject, net::MemberState state) const;
  // Packets sent by all nodes so far.
  uint64_t PacketsSent() const;

 private:
  struct SimNode {
    NodeId id;
    std::string address;
    std::unique_ptr<net::Gossip> gossip;
    bool crashed = false;
    bool stopped = false;
    std::vector<std::pair<std::string, Bytes>> held;  // (from, packet) while stopped
  };
  struct InFlight {
    Clock::time_point at;
    uint64_t order;  // ties in send order
    int to;
    std::string from;
    Bytes bytes;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  void Send(int from, std::vector<net::Datagram> out);
  void Deliver(int to, const std::string& from, const Bytes& bytes);
  double Uniform();

  GossipSimOptions options_;
  std::vector<SimNode> nodes_;
  std::unordered_map<std::string, int> by_address_;
  std::set<std::pair<int, int>> cut_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue_;
  uint64_t order_ = 0;
  uint64_t rng_;
  Clock::time_point start_;
  Clock::time_point now_;
  Clock::duration tick_;
  Clock::time_point next_tick_;
};

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_GOSSIP_SIM_H_
