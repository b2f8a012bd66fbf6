#include "net/member_record.h"

#include <bit>
#include <cstring>
#include <string_view>

#include "net/address.h"

namespace shardfs::net {

namespace {

constexpr uint8_t kMagic[4] = {'S', 'F', 'M', 'R'};
// Signatures are over a domain string first, so a record's signature is never valid as
// anything else the node key signs.
constexpr std::string_view kDomain = "shardfs member record v1\n";
// magic, version, kind, id, incarnation, address length.
constexpr size_t kHeadBytes = 4 + 1 + 1 + 32 + 8 + 1;
// capacity, free, the coordinate (dims, height, error as IEEE-754 doubles).
constexpr size_t kTailBytes = 8 + 8 + backend::kCoordinateBytes;
constexpr size_t kSignatureBytes = 64;

Bytes SignedMessage(ByteSpan unsigned_part) {
  Bytes msg(kDomain.begin(), kDomain.end());
  msg.insert(msg.end(), unsigned_part.begin(), unsigned_part.end());
  return msg;
}

Status CheckFields(const MemberRecord& r) {
  if (r.address.empty() || r.address.size() > kMaxMemberAddress) {
    return Status::InvalidArgument("member address must be 1 to 255 bytes");
  }
  auto hp = ParseHostPort(r.address);
  if (!hp.ok()) return hp.status().WithContext("member address");
  if (r.kind != MemberKind::kAlive && r.kind != MemberKind::kLeft) {
    return Status::InvalidArgument("unknown member kind " +
                                   std::to_string(static_cast<int>(r.kind)));
  }
  return backend::ValidateCoordinate(r.coordinate).WithContext("member coordinate");
}

}  // namespace

Result<MemberRecord> SignMemberRecord(const crypto::SigningKey& key, MemberRecord fields) {
  fields.id = crypto::NodeIdOf(key.public_key());
  if (Status s = CheckFields(fields); !s.ok()) return s;
  Bytes out;
  out.reserve(kHeadBytes + fields.address.size() + kTailBytes + kSignatureBytes);
  ByteWriter w(&out);
  w.Raw(kMagic);
  w.U8(kMemberRecordVersion);
  w.U8(static_cast<uint8_t>(fields.kind));
  w.Raw(fields.id.span());
  w.U64(fields.incarnation);
  w.U8(static_cast<uint8_t>(fields.address.size()));
  w.Raw(AsBytes(fields.address));
  w.U64(fields.capacity);
  w.U64(fields.free);
  backend::PutCoordinate(w, fields.coordinate);
  w.Raw(key.Sign(SignedMessage(out)));
  fields.encoded = std::move(out);
  return fields;
}

Result<size_t> MemberRecordLength(ByteSpan in) {
  if (in.size() < kHeadBytes) return Status::InvalidArgument("member record too short");
  if (std::memcmp(in.data(), kMagic, 4) != 0) {
    return Status::InvalidArgument("not a member record (bad magic)");
  }
  if (in[4] != kMemberRecordVersion) {
    return Status::NotSupported("member record version " + std::to_string(in[4]) +
                                " is not supported (this build reads version 1)");
  }
  size_t n = kHeadBytes + in[kHeadBytes - 1] + kTailBytes + kSignatureBytes;
  if (in.size() < n) return Status::InvalidArgument("member record cut short");
  return n;
}

MemberRecordKey PeekMemberRecord(ByteSpan framed) {
  MemberRecordKey k;
  k.kind = static_cast<MemberKind>(framed[5]);
  std::memcpy(k.id.mutable_data(), framed.data() + 6, NodeId::kSize);
  k.incarnation = LoadLE64(framed.data() + 6 + NodeId::kSize);
  return k;
}

Result<MemberRecord> VerifyMemberRecord(ByteSpan encoded) {
  auto len = MemberRecordLength(encoded);
  if (!len.ok()) return len.status();
  if (*len != encoded.size()) return Status::InvalidArgument("trailing bytes after member record");
  ByteReader r(encoded);
  MemberRecord rec;
  uint8_t version = 0, kind = 0, addr_len = 0;
  r.Skip(4);
  r.U8(&version);
  r.U8(&kind);
  r.Raw(MutableByteSpan(rec.id.mutable_data(), NodeId::kSize));
  r.U64(&rec.incarnation);
  r.U8(&addr_len);
  ByteSpan addr;
  r.View(addr_len, &addr);
  rec.address.assign(reinterpret_cast<const char*>(addr.data()), addr.size());
  r.U64(&rec.capacity);
  r.U64(&rec.free);
  backend::GetCoordinate(r, &rec.coordinate);
  size_t signed_len = r.position();
  crypto::Signature sig;
  r.Raw(sig);
  if (!r.AtEnd()) return Status::InvalidArgument("malformed member record");
  rec.kind = static_cast<MemberKind>(kind);
  if (Status s = CheckFields(rec); !s.ok()) return s;
  auto key = crypto::PublicKey::FromBytes(rec.id.span()).value();
  if (!crypto::VerifySignature(key, SignedMessage(encoded.first(signed_len)), sig)) {
    return Status::PermissionDenied("member record of node " + rec.id.ShortHex() +
                                    " is not signed by that node");
  }
  rec.encoded.assign(encoded.begin(), encoded.end());
  return rec;
}

}  // namespace shardfs::net
