#include "net/http_membership.h"

#include <httplib.h>

namespace shardfs::net {

Result<RemoteView> FetchMembers(const HostPort& node, std::chrono::milliseconds timeout,
                                const std::optional<std::string>& records) {
  httplib::Client client(node.host, node.port);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  client.set_connection_timeout(secs.count(), usecs.count());
  client.set_read_timeout(secs.count(), usecs.count());
  client.set_write_timeout(secs.count(), usecs.count());
  auto res = records ? client.Post("/v1/members", *records, "application/octet-stream")
                     : client.Get("/v1/members");
  if (!res) {
    return Status::Unavailable(node.ToString() + ": " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    return Status::Unavailable(node.ToString() + ": HTTP " + std::to_string(res->status));
  }
  return DecodeMembersView(res->body);
}

backend::MemberInfo ToMemberInfo(const RemoteMember& m) {
  backend::MemberInfo info;
  info.id = m.record.id;
  info.address = m.record.address;
  switch (m.state) {
    case MemberState::kAlive:
      info.state = backend::NodeLiveness::kAlive;
      break;
    case MemberState::kSuspect:
      info.state = backend::NodeLiveness::kSuspect;
      break;
    case MemberState::kDead:
      info.state = backend::NodeLiveness::kDead;
      break;
    case MemberState::kLeft:
      info.state = backend::NodeLiveness::kLeft;
      break;
  }
  info.capacity = m.record.capacity;
  info.free = m.record.free;
  info.coordinate = m.record.coordinate;
  info.rtt_ms = m.rtt_ms;
  info.state_seconds = m.state_seconds;
  return info;
}

HttpMembership::HttpMembership(std::vector<HostPort> nodes, std::chrono::milliseconds timeout)
    : nodes_(std::move(nodes)), timeout_(timeout) {}

Result<std::vector<backend::MemberInfo>> HttpMembership::Members() {
  std::string errors;
  const size_t start = next_.load();
  for (size_t k = 0; k < nodes_.size(); ++k) {
    size_t at = (start + k) % nodes_.size();
    auto view = FetchMembers(nodes_[at], timeout_);
    if (!view.ok()) {
      errors += (errors.empty() ? "" : "; ") + view.status().message();
      continue;
    }
    next_.store(at);
    std::vector<backend::MemberInfo> out;
    for (const RemoteMember& m : view->members) out.push_back(ToMemberInfo(m));
    return out;
  }
  return Status::Unavailable("no node answered for the member list: " + errors);
}

}  // namespace shardfs::net
