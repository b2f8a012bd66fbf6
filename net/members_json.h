// The JSON view of a node's membership list, as GET /v1/members (and POST) answer it
// (docs/protocol.md, "Members"), and its parser for clients and for push-pull. Each member
// carries its signed record; the parser verifies every record, so what a client takes from a
// node's view (addresses, space, coordinates) is what each member signed, and only the
// states are the answering node's word.
//
// Thread safety: pure functions.

#ifndef SHARDFS_NET_MEMBERS_JSON_H_
#define SHARDFS_NET_MEMBERS_JSON_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/gossip.h"

namespace shardfs::net {

// The JSON of `gossip`'s view at `now`.
std::string EncodeMembersView(const Gossip& gossip, Gossip::Clock::time_point now);

struct RemoteMember {
  MemberRecord record;  // verified
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;      // the incarnation the state is about
  std::optional<double> rtt_ms;  // as the answering node measured it
  double state_seconds = 0;      // how long it has been in that state, by the answering node
  bool self = false;             // the answering node itself
};

struct RemoteView {
  NodeId node;  // the answering node
  // Its coordinate now (its record holds the one it last signed); nullopt if missing or
  // invalid.
  std::optional<backend::Coordinate> coordinate;
  std::vector<RemoteMember> members;
  size_t rejected = 0;  // members dropped because their record did not verify
};

// Parses a view. InvalidArgument for a body that is not such JSON (or has more than 100,000
// members); members whose record does not verify, or whose fields disagree with it, are
// dropped and counted in `rejected`.
Result<RemoteView> DecodeMembersView(std::string_view body);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_MEMBERS_JSON_H_
