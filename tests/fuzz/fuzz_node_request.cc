// Fuzz target: the storage node's request parsing and routing, on the bytes a client sends.
//
// Input: one mode byte, then the raw bytes of one or a few pipelined HTTP/1.1 requests. They
// are read as the server reads them (net/http_parse: the same Beast parser, head limit and
// error answers; a body is handed to the handler's sink in pieces, within the limit the
// handler sets), each head goes to NodeService::Begin, and every response body that is a
// file region is read out of the file. The service runs over a real ShardStore in a temporary
// folder made once per process, holding two known shards and a slot record of one owner, with a
// fixed clock. After each input the store is put back as it was, so an input's outcome never
// depends on earlier ones.
//
// Mode byte:
//   bits 0-1  0: requests go as sent, so only /v1/status can succeed. Otherwise the harness
//             signs each request for the node (net::SignRequest) after parsing it, replacing
//             any Shardfs-* headers, with Shardfs-Body the Merkle root of the body (1), the
//             shard id in the target (2), or what a client sends (3: the id for a shard PUT,
//             else the body's root), so the handlers behind the signature check are reached.
//   bit 2     sign as a second owner, who holds nothing, instead of the first.
//   bits 3-4  size of the body pieces the parser hands over: the server's, 1, 7 or 4 KiB.
//   bits 5-6  size of the pieces a file-region body is read in.
//
// Besides "no crash, no leak, no undefined behaviour", every response must have a documented
// status; an error must have a JSON body with a "code"; a response given before the body was
// read must close the connection; an unsigned request may succeed only on /v1/status; and
// shard and slot results must agree with what the store holds: a shard GET (whole or a range)
// returns exactly the shard's bytes, as many as the file region says; PUT, DELETE and 404 agree
// with the leases the caller holds; a proof verifies against the shard id; a slot record
// verifies and is the caller's. A broken invariant aborts with a message.
//
// SHARDFS_WRITE_SEEDS=DIR makes the first input also write the seed corpus
// (tests/fuzz/corpus/node_request/) to DIR; the seeds use the fixed keys and shards below.
// SHARDFS_FUZZ_VERBOSE=1 prints each request line and its response's status and code, to
// read what a reproducer does.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "backend/shardstore.h"
#include "backend/slot.h"
#include "base/splitmix64.h"
#include "crypto/merkle.h"
#include "crypto/sign.h"
#include "net/auth.h"
#include "net/http_parse.h"
#include "net/http_server.h"
#include "net/node_service.h"

namespace shardfs {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

constexpr int64_t kNow = 1'800'000'000;
// Requests read from one input (one connection), at most.
constexpr size_t kMaxRequests = 8;
// Sequence of the slot record the owner holds at the start of every input.
constexpr uint64_t kSlotSequence = 1;
const bool kVerbose = std::getenv("SHARDFS_FUZZ_VERBOSE") != nullptr;

void Require(bool ok, std::string_view what, const net::HttpResponse* r = nullptr) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_node_request: invariant broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  if (r != nullptr) {
    std::string body = r->body.substr(0, 400);
    std::fprintf(stderr, "  response %u, body: %s\n", r->status, body.c_str());
  }
  std::abort();
}

crypto::SigningKey KeyFromSeed(uint8_t b) {
  return crypto::SigningKey::FromSeed(crypto::SecretKey::FromBytes(Bytes(32, b)).value());
}

Bytes Content(size_t n, uint64_t seed) {
  Bytes b(n);
  FillSplitMix64(b, seed);
  return b;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view HeaderOf(const net::HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (IEquals(k, name)) return v;
  }
  return {};
}

bool IsDocumentedStatus(unsigned s) {
  static constexpr unsigned kDocumented[] = {200, 201, 204, 206, 400, 401, 403, 404, 405,
                                             409, 411, 413, 416, 431, 500, 503, 505, 507};
  return std::find(std::begin(kDocumented), std::end(kDocumented), s) != std::end(kDocumented);
}

// Shards an owner holds leases on, with their bytes: the model the responses are checked
// against. Keyed by owner hex + id hex.
struct Lease {
  crypto::PublicKey owner;
  ShardId id;
  Bytes content;
};
using Leases = std::map<std::string, Lease>;
std::string LeaseKey(const crypto::PublicKey& owner, const ShardId& id) {
  return owner.ToHex() + id.ToHex();
}

// The node, its store and the fixed keys and shards, made once per process.
class World {
 public:
  World() {
    // A new slot record means a new store (below), and a store makes 256 folders: on tmpfs
    // that is a few ms, on a disk ten times more.
    std::error_code ec;
    std::string tmp = std::getenv("TMPDIR") != nullptr                ? std::getenv("TMPDIR")
                      : std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm"
                                                                      : "/tmp";
    std::string templ = tmp + "/shardfs-fuzz-node-XXXXXX";
    Require(::mkdtemp(templ.data()) != nullptr, "mkdtemp");
    dir_ = templ;
    small_ = Content(1000, 1);
    big_ = Content(2 * crypto::kMerkleLeafSize + 1000, 2);
    for (const Bytes* b : {&small_, &big_}) {
      Lease l{owner_.public_key(), crypto::MerkleRoot(*b), *b};
      initial_.emplace(LeaseKey(l.owner, l.id), l);
    }
    OpenStore();
  }
  ~World() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  backend::ShardStore* store() { return store_.get(); }
  const NodeId& node_id() const { return node_id_; }
  const crypto::SigningKey& owner() const { return owner_; }
  const crypto::SigningKey& other() const { return other_; }
  const Leases& initial() const { return initial_; }
  const Bytes& small() const { return small_; }
  const Bytes& big() const { return big_; }

  // Puts the store back as it was before an input that left `now` (and, if `slot_changed`,
  // a newer slot record: slots only move forward, so the store is made afresh).
  void Restore(const Leases& now, bool slot_changed) {
    if (slot_changed) return OpenStore();
    for (const auto& [key, l] : now) {
      if (initial_.count(key) == 0) {
        Require(store_->Delete(l.owner, l.id).ok(), "delete a lease the model says is held");
      }
    }
    for (const auto& [key, l] : initial_) {
      if (now.count(key) == 0) Put(l);
    }
  }

 private:
  void OpenStore() {
    store_.reset();
    std::error_code ec;
    if (!store_dir_.empty()) std::filesystem::remove_all(store_dir_, ec);
    store_dir_ = dir_ + "/store" + std::to_string(generation_++);
    backend::ShardStoreOptions so;
    so.dir = store_dir_;
    so.capacity = 1 << 20;
    so.reserve = 0;
    so.max_shard_size = 1 << 20;
    so.sync = false;
    auto store = backend::ShardStore::Open(so);
    Require(store.ok(), "open the shard store");
    store_ = std::move(*store);
    for (const auto& [key, l] : initial_) Put(l);
    auto record = backend::SignSlotRecord(owner_, kSlotSequence, AsBytes("head"));
    Require(record.ok() && store_->PutSlot(owner_.public_key(), *record).ok(), "store a slot");
  }

  void Put(const Lease& l) {
    auto w = store_->BeginPut(l.owner, l.id, l.content.size());
    Require(w.ok() && (*w)->Append(l.content).ok() && (*w)->Commit().ok(), "store a shard");
  }

  const crypto::SigningKey owner_ = KeyFromSeed(0xa1);
  const crypto::SigningKey other_ = KeyFromSeed(0xb2);
  const NodeId node_id_ = crypto::NodeIdOf(KeyFromSeed(0xc3).public_key());
  std::string dir_;
  std::string store_dir_;
  int generation_ = 0;
  Bytes small_, big_;
  Leases initial_;
  std::unique_ptr<backend::ShardStore> store_;
};

enum class Route { kOther, kStatus, kShard, kProof, kSlot };

// What the harness knows about one request, for checking its response.
struct Request {
  net::HttpRequestHead head;
  Route route = Route::kOther;
  std::optional<ShardId> id;  // a shard route's id, if it parses
  const crypto::SigningKey* signer = nullptr;
  Bytes body;  // what was fed to the sink
};

// Reads the requests of one input as one connection of the server would.
class Connection {
 public:
  Connection(World* world, uint8_t mode)
      : world_(world),
        mode_(mode),
        leases_(world->initial()),
        service_(world->store(), world->node_id(), Options()) {}

  void Run(ByteSpan in) {
    in_ = in;
    for (size_t n = 0; n < kMaxRequests && pos_ < in_.size(); ++n) {
      if (!Next()) break;
    }
  }

  const Leases& leases() const { return leases_; }
  bool slot_changed() const { return slot_changed_; }

 private:
  static net::NodeServiceOptions Options() {
    net::NodeServiceOptions o;
    o.clock = [] { return kNow; };
    return o;
  }

  size_t BodyPieceSize() const {
    static const size_t kSizes[4] = {net::HttpServerOptions().io_buffer_bytes, 1, 7, 4096};
    return kSizes[(mode_ >> 3) & 3];
  }
  size_t StreamPieceSize() const {
    static const size_t kSizes[4] = {net::HttpServerOptions().io_buffer_bytes, 4096,
                                     crypto::kMerkleLeafSize - 1, crypto::kMerkleLeafSize + 1};
    return kSizes[(mode_ >> 5) & 3];
  }
  ByteSpan Rest() const { return in_.subspan(pos_); }

  // One request; false if the connection ends after it.
  bool Next() {
    net::RequestParser parser;
    net::PrepareRequestParser(parser, net::HttpServerOptions().max_header_bytes);
    parser.eager(false);  // as http::async_read_header
    boost::beast::error_code ec;
    ByteSpan rest = Rest();
    pos_ += parser.put(asio::const_buffer(rest.data(), rest.size()), ec);
    if (ec == http::error::need_more) {
      // The input ends inside the head: the server's next read sees the end of the stream.
      parser.put_eof(ec);
    }
    if (ec) {
      if (auto r = net::HeadReadError(ec)) CheckServerError(*r);
      return false;
    }
    net::ParsedHead parsed = net::ToRequestHead(parser, "fuzz");
    if (parsed.error) {
      CheckServerError(*parsed.error);
      return false;
    }

    Request req;
    req.head = std::move(parsed.head);
    Classify(req);
    if ((mode_ & 3) != 0) Sign(req);

    net::Dispatch d = service_.Begin(req.head);
    Require(d.response.has_value() != (d.sink != nullptr), "Begin gives a response or a sink");
    if (d.response) {
      Require(!req.head.has_body() || d.response->close,
              "a response before the body was read closes the connection", &*d.response);
      Check(req, *d.response);
      return parsed.keep_alive && !d.response->close;
    }

    // The body, as Session::ReadBody/OnBody read it.
    parser.body_limit(d.body_limit);
    parser.eager(true);  // as http::async_read
    Bytes piece(BodyPieceSize());
    while (!parser.is_done()) {
      auto& body = parser.get().body();
      body.data = piece.data();
      body.size = piece.size();
      if (pos_ == in_.size()) {
        parser.put_eof(ec);  // the client closed the connection mid-body
      } else {
        rest = Rest();
        size_t used = parser.put(asio::const_buffer(rest.data(), rest.size()), ec);
        pos_ += used;
        if (ec == http::error::need_buffer) ec = {};
        // A chunk header cut short by the end of the input: the server's next read sees the
        // end of the stream.
        if (ec == http::error::need_more) parser.put_eof(ec);
        Require(used > 0 || ec || parser.is_done(), "the body parser makes progress");
      }
      size_t got = piece.size() - parser.get().body().size;
      if (got > 0) {
        req.body.insert(req.body.end(), piece.begin(), piece.begin() + static_cast<ptrdiff_t>(got));
        Require(req.body.size() <= d.body_limit, "the body stays within the handler's limit");
        Status s = d.sink->Write(ByteSpan(piece).first(got));
        if (!s.ok()) {
          net::HttpResponse r = d.sink->Fail(s);
          Require(r.status >= 400, "a failed body gives an error", &r);
          d.sink.reset();
          Check(req, r);
          return false;
        }
      }
      if (ec) {
        d.sink.reset();  // discards what it received
        if (auto r = net::BodyReadError(ec)) CheckServerError(*r);
        return false;
      }
    }
    net::HttpResponse r = d.sink->Finish();
    d.sink.reset();
    Check(req, r);
    return parsed.keep_alive && !r.close;
  }

  void Classify(Request& req) const {
    std::string_view target = req.head.target;
    std::string_view path = target.substr(0, target.find('?'));
    constexpr std::string_view kShards = "/v1/shards/", kSlots = "/v1/slots/", kProof = "/proof";
    if (path == "/v1/status") {
      req.route = Route::kStatus;
    } else if (path.substr(0, kShards.size()) == kShards) {
      std::string_view name = path.substr(kShards.size());
      req.route = Route::kShard;
      if (name.size() > kProof.size() && name.substr(name.size() - kProof.size()) == kProof) {
        name.remove_suffix(kProof.size());
        req.route = Route::kProof;
      }
      if (auto id = ShardId::FromHex(name); id.ok()) req.id = *id;
    } else if (path.substr(0, kSlots.size()) == kSlots) {
      req.route = Route::kSlot;
    }
  }

  void Sign(Request& req) {
    req.signer = (mode_ & 4) != 0 ? &world_->other() : &world_->owner();
    ByteSpan body;
    if (req.head.content_length && !req.head.chunked) {
      body = Rest().first(std::min<uint64_t>(*req.head.content_length, Rest().size()));
    }
    ShardId root = crypto::MerkleRoot(body);
    bool shard_put = req.route == Route::kShard && req.head.method == "PUT";
    if (req.id && ((mode_ & 3) == 2 || ((mode_ & 3) == 3 && shard_put))) root = *req.id;
    auto& h = req.head.headers;
    h.erase(std::remove_if(h.begin(), h.end(),
                           [](const auto& kv) {
                             for (std::string_view n :
                                  {net::kKeyHeader, net::kTimeHeader, net::kNonceHeader,
                                   net::kBodyHeader, net::kSignatureHeader}) {
                               if (IEquals(kv.first, n)) return true;
                             }
                             return false;
                           }),
            h.end());
    for (auto& kv : net::SignRequest(*req.signer, world_->node_id(), req.head.method,
                                     req.head.target, root, kNow)) {
      h.push_back(std::move(kv));
    }
  }

  // Every error response has a documented status and a JSON body with a "code".
  static void CheckError(const net::HttpResponse& r) {
    Require(!r.stream && !r.file, "an error has no streamed or file body", &r);
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    Require(j.is_object() && j.contains("code") && j["code"].is_string() &&
                !j["code"].get<std::string>().empty(),
            "an error body is JSON with a \"code\"", &r);
  }

  static void CheckServerError(const net::HttpResponse& r) {
    if (kVerbose) std::fprintf(stderr, "server -> %u %s\n", r.status, Code(r).c_str());
    Require(IsDocumentedStatus(r.status) && r.status >= 400, "a server error status", &r);
    Require(r.close, "the server closes the connection after its own error", &r);
    CheckError(r);
  }

  static std::string Code(const net::HttpResponse& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("code") && j["code"].is_string()
               ? j["code"].get<std::string>()
               : std::string();
  }

  // Reads a file-region body out of its file, in pieces (the server sends it with sendfile).
  Bytes Drain(net::HttpResponse& r) {
    const net::FileRegion& f = *r.file;
    Require(f.fd >= 0 && f.owner != nullptr, "a file body has a file and its owner", &r);
    Bytes out, piece(StreamPieceSize());
    while (out.size() < f.length) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), f.length - out.size()));
      ssize_t n = ::pread(f.fd, piece.data(), want, static_cast<off_t>(f.offset + out.size()));
      Require(n > 0, "a stored shard's file holds the region", &r);
      out.insert(out.end(), piece.begin(), piece.begin() + n);
    }
    return out;
  }

  const Lease* Held(const Request& req) const {
    if (req.signer == nullptr || !req.id) return nullptr;
    auto it = leases_.find(LeaseKey(req.signer->public_key(), *req.id));
    return it == leases_.end() ? nullptr : &it->second;
  }

  void Check(const Request& req, net::HttpResponse& r) {
    if (kVerbose) {
      std::fprintf(stderr, "%s %s%s -> %u %s\n", req.head.method.c_str(),
                   req.head.target.substr(0, 120).c_str(), req.signer ? " (signed)" : "", r.status,
                   Code(r).c_str());
    }
    Require(IsDocumentedStatus(r.status), "a documented status", &r);
    if (r.status >= 400) {
      CheckError(r);
      if (r.status == 405) Require(!HeaderOf(r, "Allow").empty(), "405 says what is allowed", &r);
      if (r.status == 401) {
        Require(!HeaderOf(r, "WWW-Authenticate").empty(), "401 says how to sign", &r);
      }
    }
    if (r.status < 300 && req.signer == nullptr) {
      Require(req.route == Route::kStatus, "an unsigned request succeeds only on /v1/status", &r);
    }
    const std::string& method = req.head.method;
    switch (req.route) {
      case Route::kStatus:
        if (r.status == 200) {
          auto j = nlohmann::json::parse(r.body, nullptr, false);
          Require(j.is_object() && j.value("node_id", "") == world_->node_id().ToHex(),
                  "status names the node", &r);
          Require(r.head_only == (method == "HEAD"), "HEAD /v1/status sends no body", &r);
        }
        break;
      case Route::kShard:
        CheckShard(req, r);
        break;
      case Route::kProof:
        CheckProof(req, r);
        break;
      case Route::kSlot:
        CheckSlot(req, r);
        break;
      case Route::kOther:
        break;
    }
  }

  void CheckShard(const Request& req, net::HttpResponse& r) {
    const std::string& method = req.head.method;
    const Lease* held = Held(req);
    if (r.status == 404 && Code(r) == "not_found") {
      Require(held == nullptr, "404 only for a shard the caller holds no lease on", &r);
    }
    if (method == "PUT" && (r.status == 200 || r.status == 201)) {
      Require(req.id && crypto::MerkleRoot(req.body) == *req.id, "a stored shard is its id", &r);
      Require((r.status == 200) == (held != nullptr), "201 for a new lease, 200 for a repeat", &r);
      Lease l{req.signer->public_key(), *req.id, req.body};
      leases_[LeaseKey(l.owner, l.id)] = l;
      return;
    }
    if (method == "DELETE" && r.status == 204) {
      Require(held != nullptr && r.body.empty() && !r.stream && !r.file, "204 for a lease held",
              &r);
      leases_.erase(LeaseKey(held->owner, held->id));
      return;
    }
    if (r.status == 416) {
      Require(held != nullptr, "416 only for a shard the caller holds", &r);
      Require(HeaderOf(r, "Content-Range") == "bytes */" + std::to_string(held->content.size()),
              "416 gives the shard's length", &r);
    }
    if (r.status != 200 && r.status != 206) return;
    Require((method == "GET" || method == "HEAD") && held != nullptr && r.file && !r.stream,
            "a shard is read only by an owner holding it, as a file region", &r);
    Require(HeaderOf(r, "ETag") == "\"" + held->id.ToHex() + "\"", "the ETag is the id", &r);
    uint64_t length = held->content.size(), begin = 0, end = length;
    if (r.status == 206) {
      auto range = ParseContentRange(HeaderOf(r, "Content-Range"));
      Require(range.has_value() && range->second <= length && range->first < range->second &&
                  HeaderOf(r, "Content-Range").ends_with("/" + std::to_string(length)),
              "206 has a Content-Range within the shard", &r);
      std::tie(begin, end) = *range;
    }
    Require(r.file->length == end - begin && r.content_length() == end - begin,
            "the file region is the range", &r);
    Require(r.head_only == (method == "HEAD"), "HEAD sends no body", &r);
    if (r.head_only) return;
    Bytes got = Drain(r);
    Require(got.size() == r.file->length, "a GET body is the region's length", &r);
    Require(
        std::equal(got.begin(), got.end(), held->content.begin() + static_cast<ptrdiff_t>(begin)),
        "a GET returns the shard's bytes", &r);
  }

  // "bytes FIRST-LAST/LENGTH" as [FIRST, LAST + 1).
  static std::optional<std::pair<uint64_t, uint64_t>> ParseContentRange(std::string_view v) {
    constexpr std::string_view kUnit = "bytes ";
    if (!v.starts_with(kUnit)) return std::nullopt;
    v.remove_prefix(kUnit.size());
    uint64_t a = 0, b = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), a);
    if (ec != std::errc() || p == v.data() + v.size() || *p != '-') return std::nullopt;
    auto [q, ec2] = std::from_chars(p + 1, v.data() + v.size(), b);
    if (ec2 != std::errc() || q == v.data() + v.size() || *q != '/' || b == UINT64_MAX) {
      return std::nullopt;
    }
    return std::make_pair(a, b + 1);
  }

  void CheckProof(const Request& req, const net::HttpResponse& r) {
    const Lease* held = Held(req);
    if (r.status == 404 && Code(r) == "not_found") {
      Require(held == nullptr, "404 only for a shard the caller holds no lease on", &r);
    }
    if (r.status == 416) Require(held != nullptr, "416 only for a shard the caller holds", &r);
    if (r.status != 200) return;
    Require(held != nullptr, "a proof only for a shard the caller holds", &r);
    auto p = net::DecodeProofResponse(AsBytes(r.body));
    Require(p.ok(), "a proof response decodes", &r);
    Require(p->length == held->content.size(), "a proof gives the shard's length", &r);
    Require(crypto::VerifyMerkleProof(held->id, p->length, p->proof.first_leaf, p->leaves, p->proof)
                .ok(),
            "a proof verifies against the shard id", &r);
    uint64_t at = p->proof.first_leaf * crypto::kMerkleLeafSize;
    Require(at + p->leaves.size() <= held->content.size() &&
                std::equal(p->leaves.begin(), p->leaves.end(),
                           held->content.begin() + static_cast<ptrdiff_t>(at)),
            "a proof's leaves are the shard's", &r);
  }

  void CheckSlot(const Request& req, const net::HttpResponse& r) {
    if (r.status != 200) return;
    Require(req.signer != nullptr, "a slot is used only signed", &r);
    ByteSpan record = req.head.method == "PUT" ? ByteSpan(req.body) : AsBytes(r.body);
    auto rec = backend::VerifySlotRecord(record);
    Require(rec.ok() && rec->owner == req.signer->public_key(),
            "a stored or returned slot record is the caller's", &r);
    if (req.head.method == "PUT") slot_changed_ = true;
  }

  World* world_;
  const uint8_t mode_;
  Leases leases_;
  bool slot_changed_ = false;
  net::NodeService service_;
  ByteSpan in_;
  size_t pos_ = 0;
};

void WriteSeed(const std::string& dir, const std::string& name, uint8_t mode,
               const std::string& text, ByteSpan body = {}) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.put(static_cast<char>(mode));
  f << text;
  f.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  Require(f.good(), "write a seed");
}

// The seed corpus: real requests a client sends, signed by the harness (mode 3).
void WriteSeeds(const World& w, const std::string& dir) {
  const std::string small = crypto::MerkleRoot(w.small()).ToHex();
  const std::string big = crypto::MerkleRoot(w.big()).ToHex();
  const std::string owner = w.owner().public_key().ToHex();
  const std::string host = "Host: node.example:7070\r\n";
  WriteSeed(dir, "status", 0, "GET /v1/status HTTP/1.1\r\n" + host + "\r\n");
  Bytes shard = Content(600, 3);
  WriteSeed(dir, "put_shard", 3,
            "PUT /v1/shards/" + crypto::MerkleRoot(shard).ToHex() + " HTTP/1.1\r\n" + host +
                "Content-Type: application/octet-stream\r\nContent-Length: 600\r\n\r\n",
            shard);
  WriteSeed(dir, "get_range", 3,
            "GET /v1/shards/" + big + " HTTP/1.1\r\n" + host + "Range: bytes=65000-66000\r\n\r\n");
  WriteSeed(dir, "get_proof", 3,
            "GET /v1/shards/" + big + "/proof?first=1&count=2 HTTP/1.1\r\n" + host + "\r\n");
  Bytes record = backend::SignSlotRecord(w.owner(), kSlotSequence + 1, AsBytes("next")).value();
  WriteSeed(dir, "put_slot", 3,
            "PUT /v1/slots/" + owner + " HTTP/1.1\r\n" + host +
                "Content-Length: " + std::to_string(record.size()) + "\r\n\r\n",
            record);
  std::string pipelined;
  for (const std::string& line :
       {"GET /v1/slots/" + owner, "HEAD /v1/shards/" + small,
        "GET /v1/shards/" + small + "/proof?leaf=0", "DELETE /v1/shards/" + small,
        "GET /v1/shards/" + small + "\r\nRange: bytes=-10",
        std::string("GET /v1/status\r\nConnection: close")}) {
    size_t eol = line.find('\r');
    pipelined += line.substr(0, eol) + " HTTP/1.1\r\n" + host +
                 (eol == std::string::npos ? "" : line.substr(eol + 2) + "\r\n") + "\r\n";
  }
  WriteSeed(dir, "pipelined", 3, pipelined);
  WriteSeed(dir, "put_chunked", 3,
            "PUT /v1/shards/" + small + " HTTP/1.1\r\n" + host +
                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  WriteSeed(dir, "other_owner", 7, "GET /v1/shards/" + big + " HTTP/1.1\r\n" + host + "\r\n");
}

World& TheWorld() {
  static World world;
  static const bool seeds_written = [] {
    if (const char* dir = std::getenv("SHARDFS_WRITE_SEEDS")) WriteSeeds(world, dir);
    return true;
  }();
  (void)seeds_written;
  return world;
}

}  // namespace
}  // namespace shardfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs;
  if (size == 0) return 0;
  World& world = TheWorld();
  Connection c(&world, data[0]);
  c.Run(ByteSpan(data + 1, size - 1));
  world.Restore(c.leases(), c.slot_changed());
  return 0;
}
