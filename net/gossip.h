// Gossip membership and failure detection among storage nodes: SWIM (Das, Gupta and
// Motivala, DSN 2002) with suspicion and incarnation numbers, updates piggybacked on the
// protocol's own packets, and Vivaldi coordinates fitted to the pings' round trips
// (docs/network.md, "Membership").
//
// This is the protocol alone, with no sockets and no clock of its own: packets and the time
// go in, packets to send come out. net/gossip_agent runs it over UDP in a node; the tests and
// bench/network run thousands of them in one process over a simulated network.
//
// Each protocol period a node probes one member, taking them in a shuffled round robin (so
// every member is probed by every node within 2n - 3 periods): a ping, and if no ack comes
// within ping_timeout, ping-req to indirect_fanout others, which ping the member for it and
// forward its ack. No ack by the end of the period: the member is suspected. A suspect not
// refuted within the suspicion timeout is declared dead. A node that hears it is suspected or
// dead refutes by signing its record with a higher incarnation. Suspicions, deaths, records and
// leaves ride on pings and acks (each sent retransmit_limit times, the least sent first), so
// what a node sends per period does not grow with the network.
//
// Records (net/member_record) are signed by the node they describe, and checked before they
// change anything. Suspect and dead notices are not (they are about a node, by another): a
// false one costs the accused a refutation.
//
// Thread safety: none; the caller serialises all calls (GossipAgent holds a mutex).

#ifndef SHARDFS_NET_GOSSIP_H_
#define SHARDFS_NET_GOSSIP_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/coordinates.h"
#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/sign.h"
#include "net/member_record.h"

namespace shardfs::net {

// The gossip packet format's version (docs/protocol.md, "Gossip packets").
inline constexpr uint8_t kGossipVersion = 1;

struct GossipOptions {
  // One protocol period: each node probes one member per period.
  std::chrono::milliseconds period{1000};
  // How long the direct ping waits for its ack before indirect pings are sent; what is left of
  // the period is theirs. REQUIRES: ping_timeout < period.
  std::chrono::milliseconds ping_timeout{300};
  // Members asked to ping a member that did not answer a direct ping.
  int indirect_fanout = 3;
  // A suspect is declared dead after suspicion_mult * max(1, log10(n)) periods (n: members
  // not dead, this node included) unless it refutes.
  double suspicion_mult = 4;
  // While updates are queued, they also go to gossip_fanout random live members every
  // gossip_interval, on packets of their own: news then spreads in a few intervals, well
  // within the suspicion timeout, instead of waiting for pings. A node with nothing to tell
  // sends none. 0: piggybacking only.
  int gossip_fanout = 3;
  std::chrono::milliseconds gossip_interval{200};
  // Each update is sent on retransmit_mult * ceil(log10(n + 1)) packets.
  double retransmit_mult = 4;
  // The largest packet sent (fits an Ethernet frame with IP and UDP headers).
  size_t max_packet_bytes = 1400;
  // The node signs a new record when its free space, capacity or coordinate changed enough
  // (1% of capacity; a tenth of the coordinate's size and at least 1 ms), at most this often.
  // Every new record goes to every member, so this bounds what a node's news costs the
  // network: n / republish records a second in all.
  std::chrono::milliseconds republish{60000};
  // Dead and departed members are reported for this long, then forgotten.
  std::chrono::seconds dead_retention{24 * 3600};
  backend::VivaldiOptions vivaldi;
};

// InvalidArgument, saying which, unless every field is in range (period 10 ms to 1 min,
// 0 < ping_timeout < period, fan-outs 0 to 16, 0 < gossip_interval <= period, multipliers 1 to
// 100, packet 512 to 65000).
Status ValidateGossipOptions(const GossipOptions& options);

// A member's state as one node sees it. Shown in GET /v1/members: do not renumber.
enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };
const char* MemberStateName(MemberState state);
// Parses a name from MemberStateName; nullopt for anything else.
std::optional<MemberState> ParseMemberState(std::string_view name);

// One member as this node sees it.
struct MemberView {
  std::shared_ptr<const MemberRecord> record;  // its newest signed record
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;                     // the incarnation the state is about
  std::chrono::steady_clock::time_point since;  // when this node last changed its state
  std::optional<double> rtt_ms;                 // measured by this node's pings (median)
  bool self = false;
};

// A packet to send: to the node `to`, at `address` (HOST:PORT).
struct Datagram {
  NodeId to;
  std::string address;
  Bytes bytes;
};

// Counts since the start, for tests, bench/network and GET /v1/members.
struct GossipCounters {
  uint64_t packets_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t packets_received = 0;
  uint64_t bad_packets = 0;       // malformed: dropped whole
  uint64_t misdirected = 0;       // pings for another node (one that had our address before)
  uint64_t records_rejected = 0;  // records whose signature or fields were bad
  uint64_t gossip_packets = 0;    // packets sent only to spread updates
  uint64_t probes = 0;
  uint64_t indirect_probes = 0;  // probes that needed ping-req
  uint64_t suspicions = 0;       // members this node suspected on its own
  uint64_t deaths = 0;           // suspects this node declared dead (its timer ran out)
  uint64_t refutations = 0;      // times this node refuted a suspicion or death of itself
  uint64_t stalls = 0;           // times Tick found the process had stood still
};

// What this node says of itself; UpdateSelf changes the numbers.
struct GossipSelf {
  std::string address;  // HOST:PORT that others reach it at
  uint64_t capacity = 0;
  uint64_t free = 0;
};

class Gossip {
 public:
  using Clock = std::chrono::steady_clock;

  // `incarnation`: where this node's incarnations start; it must be above any this node's
  // identity used before (the agent passes the wall clock in ms). `seed` drives the random
  // choices. InvalidArgument (from Create) for bad options or a bad address.
  static Result<std::unique_ptr<Gossip>> Create(crypto::SigningKey key, GossipSelf self,
                                                GossipOptions options, uint64_t incarnation,
                                                uint64_t seed, Clock::time_point now);

  const NodeId& id() const { return self_id_; }
  const GossipOptions& options() const { return options_; }

  // Advances the protocol to `now`: ends probes, sends indirect pings, declares suspects dead,
  // starts the next probe, republishes this node's record. Call it at least every period / 4;
  // a longer gap is taken as a stall of this process (a SIGSTOP, a swapped-out host), after
  // which its probes and suspicion timers start afresh instead of blaming the others for it.
  std::vector<Datagram> Tick(Clock::time_point now);
  // Handles a packet that came from `from` (HOST:PORT, where replies go). Malformed packets
  // and bad records in it are counted and dropped; they change nothing.
  std::vector<Datagram> Receive(ByteSpan packet, const std::string& from, Clock::time_point now);
  // Takes in a signed record from outside the gossip (a join, push-pull, POST /v1/members).
  // OK if it was valid (whether or not it was news); errors of VerifyMemberRecord otherwise.
  Status Merge(ByteSpan record, Clock::time_point now);
  // As Merge, for a record already verified (REQUIRES: made by SignMemberRecord or
  // VerifyMemberRecord): if it is news, it is passed on.
  void MergeRecord(std::shared_ptr<const MemberRecord> record, Clock::time_point now);
  // As MergeRecord, many at once, and not passed on (push-pull: each node syncs its own view;
  // bench/network seeds 10,000 members this way).
  void MergeVerified(std::span<const std::shared_ptr<const MemberRecord>> records,
                     Clock::time_point now);
  // Takes another node's opinion that `id` is suspect or dead at `incarnation` (push-pull):
  // as a suspicion (never straight to dead: this node's own timer decides that).
  void MergeOpinion(const NodeId& id, uint64_t incarnation, Clock::time_point now);
  // New figures for this node's record (signed at the next republish).
  void UpdateSelf(uint64_t capacity, uint64_t free);
  // Signs a "left" record and returns it to every alive member (at most 32, chosen at
  // random); later pings carry it too. After Leave the node answers pings but probes no one.
  std::vector<Datagram> Leave(Clock::time_point now);

  // Every member known, this node included (first), sorted by node id after it.
  std::vector<MemberView> Members() const;
  std::optional<MemberView> Find(const NodeId& id) const;
  // The signed records of every member not forgotten, this node's first (for push-pull).
  std::vector<std::shared_ptr<const MemberRecord>> Records() const;
  const backend::Coordinate& coordinate() const { return vivaldi_.coordinate(); }
  const GossipCounters& counters() const { return counters_; }
  // Members alive or suspect, this node included: the n of the formulas above.
  size_t LiveCount() const { return live_; }
  std::chrono::milliseconds SuspicionTimeout() const;
  size_t RetransmitLimit() const;

 private:
  struct Entry {
    std::shared_ptr<const MemberRecord> record;
    MemberState state = MemberState::kAlive;
    uint64_t incarnation = 0;
    Clock::time_point since;
  };
  struct Probe {
    NodeId target;
    uint64_t seq = 0;
    Clock::time_point start;
    bool indirect_sent = false;
  };
  struct Relay {
    std::string requester;  // address the forwarded ack goes to
    NodeId requester_id;
    uint64_t requester_seq = 0;
    Clock::time_point expires;
  };
  struct Broadcast {
    NodeId about;
    Bytes update;  // one encoded update
    size_t transmits = 0;
  };

  Gossip(crypto::SigningKey key, GossipSelf self, GossipOptions options, uint64_t seed,
         Clock::time_point now);
  // How often dead members past dead_retention are looked for.
  Clock::duration ReapInterval() const;

  MemberView SelfView() const;
  MemberView ViewOf(const Entry& e) const;
  Entry* FindEntry(const NodeId& id);
  const Entry* FindEntry(const NodeId& id) const;
  // True if a record of `kind` and `incarnation` would change what `e` holds.
  static bool IsNews(const Entry& e, MemberKind kind, uint64_t incarnation);
  // Signs this node's record above `incarnation` if an accusation at it is current.
  void Refute(uint64_t incarnation, Clock::time_point now);
  // Applies updates; each returns true if it changed this node's view (then it is passed on).
  bool ApplyRecord(std::shared_ptr<const MemberRecord> rec, Clock::time_point now);
  bool ApplySuspect(const NodeId& id, uint64_t incarnation, Clock::time_point now);
  bool ApplyDead(const NodeId& id, uint64_t incarnation, Clock::time_point now);
  void SetState(Entry& e, MemberState state, uint64_t incarnation, Clock::time_point now);
  // Signs this node's record anew with a higher incarnation (above `at_least`), and queues it.
  void Republish(uint64_t at_least, Clock::time_point now);
  void Queue(const NodeId& about, Bytes update);
  // A packet of `type` with its body, filled up with queued updates (`first`, if not empty,
  // goes before them).
  Datagram Packet(const NodeId& to, const std::string& address, uint8_t type, ByteSpan body,
                  ByteSpan first = {});
  void StartProbe(Clock::time_point now, std::vector<Datagram>& out);
  // Sends queued updates to gossip_fanout random live members.
  void Spread(std::vector<Datagram>& out);
  std::optional<size_t> NextProbeTarget();
  void RebuildProbeOrder();
  uint64_t Random();

  const crypto::SigningKey key_;
  const NodeId self_id_;
  GossipSelf self_;
  const GossipOptions options_;
  uint64_t rng_;
  backend::Vivaldi vivaldi_;
  backend::RttFilter rtts_;
  // This node's record as last signed, and whether it has left.
  std::shared_ptr<const MemberRecord> own_;
  bool left_ = false;
  Clock::time_point last_republish_;
  // The other members, sorted by node id.
  std::vector<Entry> members_;
  size_t live_ = 1;
  // The round robin: indices into members_, shuffled each round.
  std::vector<uint32_t> probe_order_;
  size_t probe_next_ = 0;
  bool probe_order_stale_ = true;
  std::optional<Probe> probe_;
  Clock::time_point next_probe_;
  Clock::time_point next_reap_;
  Clock::time_point next_gossip_;
  std::map<NodeId, Clock::time_point> suspicion_deadlines_;
  std::unordered_map<uint64_t, Relay> relays_;  // by the seq of our ping to the target
  std::vector<Broadcast> broadcasts_;
  Clock::time_point last_tick_;
  GossipCounters counters_;
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_GOSSIP_H_
