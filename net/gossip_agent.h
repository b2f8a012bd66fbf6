// Runs a node's gossip (net/gossip) for real: packets over UDP on the same address and port
// as the node's HTTP service, a tick every tenth of a period, and push-pull over HTTP (this
// node's records POSTed to /v1/members of another, whose view comes back): at start with the
// --join addresses until one answers, then every push_pull_interval with a random member, so
// views that gossip left apart (a partition, a long stop) come together again.
//
// It also serves the node's side of /v1/members (MembershipService).
//
// Thread safety: all methods may be called from any thread.

#ifndef SHARDFS_NET_GOSSIP_AGENT_H_
#define SHARDFS_NET_GOSSIP_AGENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/address.h"
#include "net/gossip.h"
#include "net/node_service.h"

namespace shardfs::net {

struct GossipAgentOptions {
  GossipOptions gossip;
  // Members to join through (HOST:PORT); tried at start, and again whenever this node knows
  // no live member.
  std::vector<std::string> join;
  // How often views are synced with a random member over HTTP.
  std::chrono::milliseconds push_pull_interval{30000};
  // While no join address has answered, it is tried again this often.
  std::chrono::milliseconds join_retry{1000};
  // Deadline of one push-pull request.
  std::chrono::milliseconds http_timeout{5000};
  // The node's capacity and free space, asked every few seconds for its record.
  std::function<std::pair<uint64_t, uint64_t>()> space;
  // TEST ONLY: every gossip packet leaves this much later, as if the node sat behind a slow
  // link (`shardfs node --test-gossip-delay-ms`; docs/development.md): round trips between
  // two such nodes are the sum of their delays, which coordinates must learn. Where tc netem
  // is available, tests/netns_vivaldi_test.sh delays real links instead.
  std::chrono::microseconds test_send_delay{0};
};

class GossipAgent : public MembershipService {
 public:
  // Binds UDP on `bind` (the HTTP service's host and bound port) and starts. `self.address`
  // is what others are told to reach this node at. InvalidArgument for bad options; IOError if
  // the port cannot be bound.
  static Result<std::unique_ptr<GossipAgent>> Start(crypto::SigningKey key, GossipSelf self,
                                                    const HostPort& bind,
                                                    GossipAgentOptions options);
  // Stops (without a leave) if still running.
  ~GossipAgent() override;

  // Announces that this node leaves, keeps answering pings for `linger` (so the news spreads
  // on them too), then stops.
  void Leave(std::chrono::milliseconds linger);
  // Stops the threads; idempotent.
  void Stop();

  std::vector<MemberView> Members() const;
  std::string ViewJson() override;
  Status MergeRecords(ByteSpan records) override;

  class Impl;

 private:
  explicit GossipAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_GOSSIP_AGENT_H_
