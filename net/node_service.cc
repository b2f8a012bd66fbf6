#include "net/node_service.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "backend/slot.h"
#include "base/logging.h"
#include "base/version.h"
#include "crypto/merkle.h"

namespace shardfs::net {

namespace {

constexpr uint8_t kProofMagic[4] = {'S', 'F', 'P', 'R'};
constexpr uint8_t kProofVersion = 1;
constexpr size_t kProofHeaderSize = 4 + 1 + 3 + 8 + 8 + 8 + 4;
constexpr size_t kMaxSlotBody = backend::kSlotRecordOverhead + backend::kMaxSlotValue;

HttpResponse JsonResponse(unsigned status, const nlohmann::json& j) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  // Messages may quote the request (its path, a header), whose bytes need not be UTF-8: such
  // bytes become U+FFFD. By default dump() throws on them, which would end the node's process.
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body.push_back('\n');
  return r;
}

// The HTTP answer for a store error that has no more specific one. Requests are checked
// before they reach the store, so anything else it returns (an SQLite or disk error) is the
// node's fault: 500.
HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound:
      return ErrorResponse(404, "not_found", s.message());
    case Code::kNoSpace:
      return ErrorResponse(507, "insufficient_storage", s.message());
    case Code::kOutOfRange:
      return ErrorResponse(413, "too_large", s.message());
    case Code::kUnavailable:
    case Code::kBusy:
      return ErrorResponse(503, "overloaded", s.message());
    case Code::kCorruption:
      return ErrorResponse(500, "shard_damaged",
                           "the node's copy of this shard is damaged and has been dropped");
    default:
      log::Warn("request failed: {}", s.ToString());
      return ErrorResponse(500, "internal", s.ToString());
  }
}

// Strict decimal, no sign, no leading '+', fits in uint64.
std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

class ShardSink : public BodySink {
 public:
  explicit ShardSink(std::unique_ptr<backend::ShardWriter> writer) : writer_(std::move(writer)) {}
  Status Write(ByteSpan data) override { return writer_->Append(data); }
  HttpResponse Finish() override {
    auto fresh = writer_->Commit();
    if (!fresh.ok()) return Fail(fresh.status());
    nlohmann::json j = {{"stored", true}, {"new_lease", *fresh}};
    return JsonResponse(*fresh ? 201 : 200, j);
  }
  HttpResponse Fail(const Status& s) override {
    switch (s.code()) {
      case Code::kCorruption:
        return ErrorResponse(400, "shard_mismatch", s.message());
      case Code::kInvalidArgument:
        return ErrorResponse(400, "bad_length", s.message());
      case Code::kOutOfRange:
        return ErrorResponse(400, "bad_length", s.message());
      default:
        return FromStatus(s);
    }
  }

 private:
  std::unique_ptr<backend::ShardWriter> writer_;
};

// POST /v1/members: records packed one after another, merged all or none.
class MembersSink : public BodySink {
 public:
  explicit MembersSink(MembershipService* membership) : membership_(membership) {}
  Status Write(ByteSpan data) override {
    if (body_.size() + data.size() > kMaxMembersBody) {
      return Status::OutOfRange("member records are larger than " +
                                std::to_string(kMaxMembersBody) + " bytes");
    }
    body_.insert(body_.end(), data.begin(), data.end());
    return Status::Ok();
  }
  HttpResponse Finish() override {
    Status s = membership_->MergeRecords(body_);
    if (!s.ok()) return Fail(s);
    HttpResponse r;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = membership_->ViewJson();
    return r;
  }
  HttpResponse Fail(const Status& s) override {
    switch (s.code()) {
      case Code::kPermissionDenied:
        return ErrorResponse(403, "bad_signature", s.message());
      case Code::kOutOfRange:
        return ErrorResponse(413, "too_large", s.message());
      default:
        return ErrorResponse(400, "bad_record", s.message());
    }
  }

 private:
  MembershipService* membership_;
  Bytes body_;
};

class SlotSink : public BodySink {
 public:
  SlotSink(backend::ShardStore* store, crypto::PublicKey owner, ShardId claimed_root)
      : store_(store), owner_(owner), claimed_root_(claimed_root) {}
  Status Write(ByteSpan data) override {
    if (body_.size() + data.size() > kMaxSlotBody) {
      return Status::OutOfRange("slot record is larger than " + std::to_string(kMaxSlotBody));
    }
    body_.insert(body_.end(), data.begin(), data.end());
    return Status::Ok();
  }
  HttpResponse Finish() override {
    if (crypto::MerkleRoot(body_) != claimed_root_) {
      return ErrorResponse(400, "body_mismatch", "the body is not the one the request signed");
    }
    Status s = store_->PutSlot(owner_, body_);
    if (s.ok()) return JsonResponse(200, {{"stored", true}});
    return Fail(s);
  }
  HttpResponse Fail(const Status& s) override {
    switch (s.code()) {
      case Code::kAlreadyExists:
        return ErrorResponse(409, "stale_sequence", s.message());
      case Code::kPermissionDenied:
        return ErrorResponse(400, "bad_slot_signature", s.message());
      case Code::kInvalidArgument:
      case Code::kNotSupported:
        return ErrorResponse(400, "bad_slot_record", s.message());
      default:
        return FromStatus(s);
    }
  }

 private:
  backend::ShardStore* store_;
  crypto::PublicKey owner_;
  ShardId claimed_root_;
  Bytes body_;
};

// Answers a request without reading its body; the connection then cannot carry another
// request, so it is closed after the answer.
Dispatch Answer(const HttpRequestHead& head, HttpResponse r) {
  if (head.has_body()) r.close = true;
  // A response to HEAD has no body, errors included (RFC 9110 9.3.2): on a keep-alive
  // connection the client would read one as the start of its next response.
  if (head.method == "HEAD") r.head_only = true;
  return Dispatch::Respond(std::move(r));
}

// 405 unless `method` is one of `allow` (as the Allow header lists them: "GET, HEAD").
std::optional<HttpResponse> RefuseMethod(std::string_view method, std::string_view allow) {
  for (size_t pos = 0; pos <= allow.size();) {
    size_t comma = std::min(allow.find(", ", pos), allow.size());
    if (allow.substr(pos, comma - pos) == method) return std::nullopt;
    pos = comma + 2;
  }
  HttpResponse r = ErrorResponse(405, "method_not_allowed", "use " + std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

// For requests that take no body: the refusal, if the request has one or signed another.
std::optional<HttpResponse> RefuseBody(const HttpRequestHead& head, const VerifiedRequest& auth) {
  if (head.has_body()) {
    return ErrorResponse(400, "unexpected_body", head.method + " takes no body");
  }
  if (auth.body_root != EmptyBodyRoot()) {
    return ErrorResponse(400, "body_mismatch", "Shardfs-Body must be the root of an empty body");
  }
  return std::nullopt;
}

}  // namespace

HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message) {
  HttpResponse r = JsonResponse(status, {{"code", code}, {"message", message}});
  return r;
}

Result<std::optional<std::pair<uint64_t, uint64_t>>> ParseRange(std::string_view value,
                                                                uint64_t length) {
  using R = std::optional<std::pair<uint64_t, uint64_t>>;
  if (value.empty()) return R();
  auto bad = [&] {
    return Status::InvalidArgument("malformed Range header '" + std::string(value.substr(0, 100)) +
                                   "' (use bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX)");
  };
  constexpr std::string_view kUnit = "bytes=";
  if (value.substr(0, kUnit.size()) != kUnit) return bad();
  std::string_view spec = value.substr(kUnit.size());
  if (spec.find(',') != std::string_view::npos) {
    return Status::InvalidArgument(
        "several ranges in one request are not supported; "
        "make one request per range");
  }
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return bad();
  std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
  auto unsatisfiable = [&] {
    return Status::OutOfRange("range " + std::string(spec) + " is outside the shard of " +
                              std::to_string(length) + " bytes");
  };
  if (first.empty()) {
    auto suffix = ParseDecimal(last);
    if (!suffix) return bad();
    if (*suffix == 0 || length == 0) return unsatisfiable();
    return R({length - std::min(*suffix, length), length});
  }
  auto a = ParseDecimal(first);
  if (!a) return bad();
  uint64_t end = length;
  if (!last.empty()) {
    auto b = ParseDecimal(last);
    if (!b || *b < *a) return bad();
    end = *b >= length ? length : *b + 1;
  }
  if (*a >= length) return unsatisfiable();
  return R({*a, end});
}

Bytes EncodeProofResponse(const backend::ShardProof& p) {
  Bytes out;
  out.reserve(kProofHeaderSize + p.proof.hashes.size() * 32 + p.leaves.size());
  ByteWriter w(&out);
  w.Raw(kProofMagic);
  w.U8(kProofVersion);
  w.Zeros(3);
  w.U64(p.length);
  w.U64(p.proof.first_leaf);
  w.U64(p.proof.leaf_count);
  w.U32(static_cast<uint32_t>(p.proof.hashes.size()));
  for (const auto& h : p.proof.hashes) w.Raw(h);
  w.Raw(p.leaves);
  return out;
}

Result<backend::ShardProof> DecodeProofResponse(ByteSpan body) {
  if (body.size() < kProofHeaderSize || std::memcmp(body.data(), kProofMagic, 4) != 0) {
    return Status::Corruption("not a proof response");
  }
  if (body[4] != kProofVersion) {
    return Status::NotSupported("proof response version " + std::to_string(body[4]));
  }
  if (body[5] != 0 || body[6] != 0 || body[7] != 0) {
    return Status::Corruption("proof response has non-zero reserved bytes");
  }
  backend::ShardProof p;
  p.length = LoadLE64(body.data() + 8);
  p.proof.first_leaf = LoadLE64(body.data() + 16);
  p.proof.leaf_count = LoadLE64(body.data() + 24);
  uint32_t hashes = LoadLE32(body.data() + 32);
  // A proof has at most two hashes per tree level.
  if (hashes > 128 || body.size() - kProofHeaderSize < uint64_t{hashes} * 32) {
    return Status::Corruption("proof response is malformed");
  }
  size_t off = kProofHeaderSize;
  for (uint32_t i = 0; i < hashes; ++i, off += 32) {
    crypto::Digest256 h;
    std::memcpy(h.data(), body.data() + off, 32);
    p.proof.hashes.push_back(h);
  }
  p.leaves.assign(body.begin() + static_cast<ptrdiff_t>(off), body.end());
  return p;
}

NodeService::NodeService(backend::ShardStore* store, NodeId self, NodeServiceOptions options)
    : store_(store),
      self_(self),
      options_(std::move(options)),
      verifier_(self, options_.verifier),
      started_(std::chrono::steady_clock::now()) {}

int64_t NodeService::Now() const {
  return options_.clock ? options_.clock() : static_cast<int64_t>(::time(nullptr));
}

HttpResponse NodeService::Overloaded() {
  HttpResponse r = ErrorResponse(503, "overloaded", "the node has too many open connections");
  r.headers.emplace_back("Retry-After", "1");
  r.close = true;
  return r;
}

HttpResponse NodeService::StatusResponse(const HttpRequestHead& head) {
  backend::ShardStoreStats st = store_->Stats();
  backend::ScrubStats scrub;
  if (options_.scrubber != nullptr) scrub = options_.scrubber->Stats();
  nlohmann::json scrub_json = {{"rate", scrub.rate},
                               {"passes_completed", scrub.passes_completed},
                               {"shards_checked", scrub.shards_checked},
                               {"bytes_checked", scrub.bytes_checked},
                               {"damaged_found", scrub.damaged_found},
                               {"last_pass_seconds", nullptr}};
  if (scrub.last_pass_seconds) scrub_json["last_pass_seconds"] = *scrub.last_pass_seconds;
  auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  HttpResponse r = JsonResponse(200, {{"node_id", self_.ToHex()},
                                      {"version", kVersion},
                                      {"protocol", kProtocolVersion},
                                      {"capacity", st.capacity},
                                      {"used", st.used},
                                      {"free", st.free},
                                      {"shards", st.shards},
                                      {"max_shard_size", store_->options().max_shard_size},
                                      {"uptime_seconds", uptime.count()},
                                      {"scrub", scrub_json}});
  r.head_only = head.method == "HEAD";
  return r;
}

Dispatch NodeService::Members(const HttpRequestHead& head) {
  auto respond = [&](HttpResponse r) { return Answer(head, std::move(r)); };
  MembershipService* membership = membership_.load();
  if (membership == nullptr) {
    return respond(ErrorResponse(404, "no_route", "this node runs no membership"));
  }
  if (auto refusal = RefuseMethod(head.method, "GET, HEAD, POST")) {
    return respond(std::move(*refusal));
  }
  if (head.method != "POST") {
    HttpResponse r;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = membership->ViewJson();
    r.head_only = head.method == "HEAD";
    return respond(std::move(r));
  }
  if (head.chunked || !head.content_length) {
    return respond(ErrorResponse(411, "length_required", "member records need a Content-Length"));
  }
  if (*head.content_length > kMaxMembersBody) {
    return respond(ErrorResponse(
        413, "too_large",
        "member records are at most " + std::to_string(kMaxMembersBody) + " bytes per request"));
  }
  return Dispatch::Stream(std::make_unique<MembersSink>(membership), *head.content_length);
}

Dispatch NodeService::Begin(const HttpRequestHead& head) {
  auto respond = [&](HttpResponse r) { return Answer(head, std::move(r)); };
  const std::string& method = head.method;
  std::string_view target = head.target;
  if (target.empty() || target.front() != '/' || target.size() > 1024) {
    return respond(ErrorResponse(400, "bad_target", "request target must be a path under /v1"));
  }
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  if (path == "/v1/status") {
    if (auto refusal = RefuseMethod(method, "GET, HEAD")) return respond(std::move(*refusal));
    return respond(StatusResponse(head));
  }
  if (path == "/v1/members") return Members(head);

  constexpr std::string_view kShards = "/v1/shards/";
  constexpr std::string_view kSlots = "/v1/slots/";
  enum class Kind { kShard, kProof, kSlot } kind;
  std::string_view name;
  if (path.substr(0, kShards.size()) == kShards) {
    name = path.substr(kShards.size());
    kind = Kind::kShard;
    constexpr std::string_view kProofSuffix = "/proof";
    if (name.size() > kProofSuffix.size() &&
        name.substr(name.size() - kProofSuffix.size()) == kProofSuffix) {
      name.remove_suffix(kProofSuffix.size());
      kind = Kind::kProof;
    }
  } else if (path.substr(0, kSlots.size()) == kSlots) {
    name = path.substr(kSlots.size());
    kind = Kind::kSlot;
  } else {
    return respond(
        ErrorResponse(404, "no_route", "no such endpoint: " + std::string(path.substr(0, 200))));
  }

  const char* allow = kind == Kind::kShard   ? "GET, HEAD, PUT, DELETE"
                      : kind == Kind::kProof ? "GET"
                                             : "GET, PUT";
  if (auto refusal = RefuseMethod(method, allow)) return respond(std::move(*refusal));

  ShardId id;
  crypto::PublicKey owner;
  if (kind == Kind::kSlot) {
    auto o = crypto::PublicKey::FromHex(name);
    if (!o.ok()) return respond(ErrorResponse(400, "bad_owner", "owner must be 64 hex digits"));
    owner = *o;
  } else {
    auto i = ShardId::FromHex(name);
    if (!i.ok()) return respond(ErrorResponse(400, "bad_id", "shard id must be 64 hex digits"));
    id = *i;
  }
  if (kind != Kind::kProof && !query.empty()) {
    return respond(ErrorResponse(400, "bad_query", "this endpoint takes no query"));
  }

  auto auth = verifier_.Verify(
      method, target, [&](std::string_view n) { return head.Header(n); }, Now());
  if (!auth.ok()) {
    if (auth.status().code() == Code::kUnavailable) {
      HttpResponse r = ErrorResponse(503, "overloaded", auth.status().message());
      r.headers.emplace_back("Retry-After", "1");
      return respond(std::move(r));
    }
    HttpResponse r = ErrorResponse(401, "unauthorized", auth.status().message());
    r.headers.emplace_back("WWW-Authenticate", "Shardfs-Signature");
    return respond(std::move(r));
  }
  if (!options_.allowed_owners.empty() && options_.allowed_owners.count(auth->caller) == 0) {
    return respond(ErrorResponse(403, "owner_not_allowed",
                                 "this node serves only the owners its operator allows"));
  }
  switch (kind) {
    case Kind::kShard:
      return Shard(head, id, *auth);
    case Kind::kProof:
      return Proof(head, query, id, *auth);
    case Kind::kSlot:
      return Slot(head, owner, *auth);
  }
  return respond(ErrorResponse(500, "internal", "unreachable"));
}

Dispatch NodeService::Shard(const HttpRequestHead& head, const ShardId& id,
                            const VerifiedRequest& auth) {
  auto respond = [&](HttpResponse r) { return Answer(head, std::move(r)); };
  const std::string& method = head.method;
  if (method == "PUT") {
    if (head.chunked || !head.content_length) {
      return respond(ErrorResponse(411, "length_required", "a shard PUT needs Content-Length"));
    }
    uint64_t length = *head.content_length;
    if (length == 0) return respond(ErrorResponse(400, "bad_length", "a shard cannot be empty"));
    if (length > store_->options().max_shard_size) {
      return respond(ErrorResponse(413, "too_large",
                                   "shard of " + std::to_string(length) +
                                       " bytes is over this node's limit of " +
                                       std::to_string(store_->options().max_shard_size)));
    }
    if (auth.body_root != id) {
      return respond(
          ErrorResponse(400, "body_mismatch", "Shardfs-Body of a shard PUT must be the shard id"));
    }
    auto writer = store_->BeginPut(auth.caller, id, length);
    if (!writer.ok()) return respond(FromStatus(writer.status()));
    return Dispatch::Stream(std::make_unique<ShardSink>(std::move(*writer)), length);
  }
  if (auto refusal = RefuseBody(head, auth)) return respond(std::move(*refusal));
  if (method == "DELETE") {
    Status s = store_->Delete(auth.caller, id);
    if (!s.ok()) return respond(FromStatus(s));
    HttpResponse r;
    r.status = 204;
    return respond(std::move(r));
  }
  // GET or HEAD.
  auto reader = store_->OpenShard(auth.caller, id);
  if (!reader.ok()) return respond(FromStatus(reader.status()));
  uint64_t length = (*reader)->length();
  auto range = ParseRange(head.Header("Range"), length);
  if (!range.ok()) {
    if (range.status().code() == Code::kOutOfRange) {
      HttpResponse r = ErrorResponse(416, "range_not_satisfiable", range.status().message());
      r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(length));
      return respond(std::move(r));
    }
    return respond(ErrorResponse(400, "bad_range", range.status().message()));
  }
  HttpResponse r;
  uint64_t begin = 0, end = length;
  if (*range) {
    std::tie(begin, end) = **range;
    r.status = 206;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(begin) + "-" +
                                                std::to_string(end - 1) + "/" +
                                                std::to_string(length));
  }
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("ETag", "\"" + id.ToHex() + "\"");
  r.head_only = method == "HEAD";
  if (options_.test_flip_served_bytes && !r.head_only && end > begin) {
    std::string body(end - begin, '\0');
    Status s = (*reader)->Read(
        begin, MutableByteSpan(reinterpret_cast<uint8_t*>(body.data()), body.size()));
    if (!s.ok()) return respond(FromStatus(s));
    body[body.size() / 2] ^= 0x01;
    r.body = std::move(body);
    return respond(std::move(r));
  }
  // Sent straight from the file, as stored: checking each leaf here would cost more CPU than
  // sending it, and the client checks every byte anyway (against the id, or with proofs).
  // Damage on the disk is found by the scrubber and by proof requests.
  std::shared_ptr<const backend::ShardReader> file = std::move(*reader);
  r.file = FileRegion{file->fd(), begin, end - begin, file};
  return respond(std::move(r));
}

Dispatch NodeService::Proof(const HttpRequestHead& head, std::string_view query, const ShardId& id,
                            const VerifiedRequest& auth) {
  auto respond = [&](HttpResponse r) { return Answer(head, std::move(r)); };
  if (auto refusal = RefuseBody(head, auth)) return respond(std::move(*refusal));
  std::optional<uint64_t> leaf, first, count;
  auto bad = [&](std::string msg) { return respond(ErrorResponse(400, "bad_query", msg)); };
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return bad("query must be leaf=N or first=N&count=M");
    std::string_view k = pair.substr(0, eq);
    auto v = ParseDecimal(pair.substr(eq + 1));
    if (!v) return bad("query values must be whole numbers");
    std::optional<uint64_t>* slot = k == "leaf"    ? &leaf
                                    : k == "first" ? &first
                                    : k == "count" ? &count
                                                   : nullptr;
    if (slot == nullptr) return bad("unknown query parameter; use leaf=N or first=N&count=M");
    if (slot->has_value()) return bad("query parameter given twice");
    *slot = v;
  }
  if (leaf) {
    if (first || count) return bad("query must be leaf=N or first=N&count=M, not both");
    first = leaf;
    count = 1;
  }
  if (!first || !count) return bad("query must be leaf=N or first=N&count=M");
  if (*count == 0 || *count > kMaxProofLeaves) {
    return bad("count must be 1 to " + std::to_string(kMaxProofLeaves));
  }
  auto reader = store_->OpenShard(auth.caller, id);
  if (!reader.ok()) return respond(FromStatus(reader.status()));
  uint64_t leaves = crypto::MerkleLeafCount((*reader)->length());
  if (*first >= leaves || *count > leaves - *first) {
    return respond(ErrorResponse(416, "range_not_satisfiable",
                                 "the shard has " + std::to_string(leaves) + " leaves"));
  }
  auto proof = (*reader)->Prove(*first, *count);
  if (!proof.ok()) return respond(FromStatus(proof.status()));
  if (options_.test_flip_served_bytes && !proof->leaves.empty()) {
    proof->leaves[proof->leaves.size() / 2] ^= 0x01;
  }
  HttpResponse r;
  r.headers.emplace_back("Content-Type", "application/vnd.shardfs.proof");
  Bytes body = EncodeProofResponse(*proof);
  r.body.assign(body.begin(), body.end());
  return respond(std::move(r));
}

Dispatch NodeService::Slot(const HttpRequestHead& head, const crypto::PublicKey& owner,
                           const VerifiedRequest& auth) {
  auto respond = [&](HttpResponse r) { return Answer(head, std::move(r)); };
  if (owner != auth.caller) {
    return respond(ErrorResponse(403, "not_your_slot", "an owner may use only its own slot"));
  }
  if (head.method == "PUT") {
    if (head.chunked || !head.content_length) {
      return respond(ErrorResponse(411, "length_required", "a slot PUT needs Content-Length"));
    }
    if (*head.content_length > kMaxSlotBody) {
      return respond(ErrorResponse(
          413, "too_large", "a slot record is at most " + std::to_string(kMaxSlotBody) + " bytes"));
    }
    return Dispatch::Stream(std::make_unique<SlotSink>(store_, owner, auth.body_root),
                            *head.content_length);
  }
  if (auto refusal = RefuseBody(head, auth)) return respond(std::move(*refusal));
  auto slot = store_->GetSlot(owner);
  if (!slot.ok()) return respond(FromStatus(slot.status()));
  if (!slot->has_value()) return respond(ErrorResponse(404, "no_slot", "no record stored"));
  HttpResponse r;
  r.headers.emplace_back("Content-Type", "application/vnd.shardfs.slot");
  r.body.assign((*slot)->begin(), (*slot)->end());
  return respond(std::move(r));
}

}  // namespace shardfs::net
