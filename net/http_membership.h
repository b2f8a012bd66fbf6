// The drive's view of the network's members over HTTP: GET /v1/members of one of the drive's
// nodes (the one that answered last, then the others in turn), each member's record checked
// (net/members_json). A backend::MembershipSource.
//
// Thread safety: Members may be called from many threads at once.

#ifndef SHARDFS_NET_HTTP_MEMBERSHIP_H_
#define SHARDFS_NET_HTTP_MEMBERSHIP_H_

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "backend/membership.h"
#include "net/address.h"
#include "net/members_json.h"

namespace shardfs::net {

// GET /v1/members of `node`, or with `records` (member records packed one after another)
// POST them there (push-pull). Unavailable if it does not answer in `timeout` or answers an
// error; InvalidArgument for a body that is not a members view.
Result<RemoteView> FetchMembers(const HostPort& node, std::chrono::milliseconds timeout,
                                const std::optional<std::string>& records = std::nullopt);

// A remote member in the drive's terms.
backend::MemberInfo ToMemberInfo(const RemoteMember& m);

class HttpMembership : public backend::MembershipSource {
 public:
  explicit HttpMembership(std::vector<HostPort> nodes,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));
  // Unavailable (with each node's error) if no node answers.
  Result<std::vector<backend::MemberInfo>> Members() override;

 private:
  const std::vector<HostPort> nodes_;
  const std::chrono::milliseconds timeout_;
  std::atomic<size_t> next_{0};
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_HTTP_MEMBERSHIP_H_
