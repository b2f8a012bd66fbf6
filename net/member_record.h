// Member records: what a storage node says about itself to the network, signed with its node
// key (docs/protocol.md, "Member records"). Records travel in gossip packets and in
// GET /v1/members; whoever passes one on cannot change it, so no node can forge another's
// address, space or coordinate. A record is ordered by its incarnation: a newer one replaces
// an older one, and a node that restarts or refutes a suspicion signs a higher one.
//
// Thread safety: values and pure functions.

#ifndef SHARDFS_NET_MEMBER_RECORD_H_
#define SHARDFS_NET_MEMBER_RECORD_H_

#include <cstdint>
#include <string>

#include "backend/coordinates.h"
#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/sign.h"

namespace shardfs::net {

inline constexpr uint8_t kMemberRecordVersion = 1;
// The longest address a record carries.
inline constexpr size_t kMaxMemberAddress = 255;

// What a record says of its node. Stored in records: do not renumber.
enum class MemberKind : uint8_t {
  kAlive = 1,  // the node is a member, at this address
  kLeft = 2,   // the node left the network on purpose (until it signs a newer kAlive)
};

struct MemberRecord {
  NodeId id;
  MemberKind kind = MemberKind::kAlive;
  uint64_t incarnation = 0;
  std::string address;  // HOST:PORT of its HTTP service and its gossip (UDP) port
  uint64_t capacity = 0;
  uint64_t free = 0;
  backend::Coordinate coordinate;
  // The signed encoding, as received or made: what is passed on.
  Bytes encoded;
};

// Encodes `fields` (id taken from `key`) and signs it. InvalidArgument for an address that is
// empty, longer than kMaxMemberAddress or not HOST:PORT, or a coordinate that
// backend::ValidateCoordinate rejects.
Result<MemberRecord> SignMemberRecord(const crypto::SigningKey& key, MemberRecord fields);

// Decodes `encoded` and checks its signature against the node id it names. InvalidArgument
// for a malformed record (bad magic, short, trailing bytes, bad address or coordinate, unknown
// kind), NotSupported for a newer version, PermissionDenied for a signature that does not
// verify.
Result<MemberRecord> VerifyMemberRecord(ByteSpan encoded);

// The length of the record at the front of `in` (for records packed one after another), or
// InvalidArgument if `in` does not start with a whole one; NotSupported for a newer version.
// Does not verify it.
Result<size_t> MemberRecordLength(ByteSpan in);

// The node id, incarnation and kind of a record whose framing MemberRecordLength accepted,
// NOT verified: to tell whether a record is news before paying for its signature check.
struct MemberRecordKey {
  NodeId id;
  uint64_t incarnation = 0;
  MemberKind kind = MemberKind::kAlive;
};
MemberRecordKey PeekMemberRecord(ByteSpan framed);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_MEMBER_RECORD_H_
