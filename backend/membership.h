// Where a drive learns the network's members (DESIGN.md section 7): any node's member list,
// each member's fields as it signed them (net/members_json checks the signatures), its state
// as that node sees it. net::HttpMembership asks the drive's nodes over HTTP; tests give a
// fixed list.
//
// Thread safety: implementations are safe to call from many threads at once.

#ifndef SHARDFS_BACKEND_MEMBERSHIP_H_
#define SHARDFS_BACKEND_MEMBERSHIP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backend/coordinates.h"
#include "backend/peer_set.h"
#include "base/ids.h"
#include "base/status.h"

namespace shardfs::backend {

struct MemberInfo {
  NodeId id;
  std::string address;
  NodeLiveness state = NodeLiveness::kUnknown;
  uint64_t capacity = 0;
  uint64_t free = 0;
  Coordinate coordinate;
  // The round trip the answering node measured to it (not this client's).
  std::optional<double> rtt_ms;
  // How long the answering node has held it in `state`.
  double state_seconds = 0;
};

class MembershipSource {
 public:
  virtual ~MembershipSource() = default;
  // The members as one node sees them, and that node's id. Unavailable if no node answered.
  virtual Result<std::vector<MemberInfo>> Members() = 0;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_MEMBERSHIP_H_
