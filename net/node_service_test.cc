#include "net/node_service.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "backend/slot.h"
#include "crypto/merkle.h"
#include "tests/testutil.h"

namespace shardfs::net {
namespace {

constexpr int64_t kNow = 1'800'000'000;

struct Answer {
  unsigned status = 0;
  std::string body;
  HttpResponse response;
  std::string code() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    return j.is_object() && j.contains("code") ? j["code"].get<std::string>() : "";
  }
  std::string_view Header(std::string_view name) const {
    for (const auto& [k, v] : response.headers) {
      if (k == name) return v;
    }
    return {};
  }
};

class NodeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(NodeServiceOptions options) {
    service_.reset();
    store_.reset();
    backend::ShardStoreOptions so;
    so.dir = dir_.path() + "/node";
    so.capacity = 64 << 20;
    so.reserve = 0;
    so.max_shard_size = 1 << 20;
    so.sync = false;
    ASSERT_OK_AND_ASSIGN(store_, backend::ShardStore::Open(so));
    options.clock = [] { return kNow; };
    service_ = std::make_unique<NodeService>(store_.get(), node_id_, options);
  }

  // Runs a request through the handler as the server would: head, then body, then the
  // response with its streamed body read out.
  Answer Send(const std::string& method, const std::string& target, const Bytes& body = {},
              const crypto::SigningKey* key = nullptr, std::optional<ShardId> body_root = {},
              std::vector<std::pair<std::string, std::string>> extra = {}) {
    HttpRequestHead head;
    head.method = method;
    head.target = target;
    if (!body.empty() || method == "PUT") head.content_length = body.size();
    if (key != nullptr) {
      for (auto& kv : SignRequest(*key, node_id_, method, target,
                                  body_root.value_or(crypto::MerkleRoot(body)), kNow)) {
        head.headers.push_back(kv);
      }
    }
    for (auto& kv : extra) head.headers.push_back(kv);
    Dispatch d = service_->Begin(head);
    Answer a;
    if (d.response) {
      a.response = std::move(*d.response);
    } else {
      EXPECT_TRUE(d.sink);
      EXPECT_LE(body.size(), d.body_limit);
      Status s = d.sink->Write(body);
      a.response = s.ok() ? d.sink->Finish() : d.sink->Fail(s);
    }
    a.status = a.response.status;
    EXPECT_FALSE(a.response.stream);  // the node streams nothing: shards go as file regions
    if (a.response.file && !a.response.head_only) {
      a.body = ReadRegion(*a.response.file);
    } else {
      a.body = a.response.body;
    }
    return a;
  }
  // A file-region body's bytes, as the server would send them.
  static std::string ReadRegion(const FileRegion& f) {
    EXPECT_TRUE(f.owner);
    std::string out(f.length, '\0');
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(f.fd, out.data() + done, out.size() - done, static_cast<off_t>(f.offset + done));
      EXPECT_GT(n, 0) << "the file is shorter than the region";
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    return out;
  }
  std::string ShardPath(const ShardId& id) const {
    std::string hex = id.ToHex();
    return dir_.path() + "/node/shards/" + hex.substr(0, 2) + "/" + hex;
  }
  // XORs the byte at `offset` of shard `id`'s file with 0xff.
  void FlipByte(const ShardId& id, uint64_t offset) {
    FILE* f = std::fopen(ShardPath(id).c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fseek(f, static_cast<long>(offset), SEEK_SET), 0);
    int c = std::fgetc(f);
    ASSERT_EQ(std::fseek(f, static_cast<long>(offset), SEEK_SET), 0);
    std::fputc(c ^ 0xff, f);
    std::fclose(f);
  }
  Answer Put(const Bytes& data, const crypto::SigningKey& key) {
    return Send("PUT", "/v1/shards/" + crypto::MerkleRoot(data).ToHex(), data, &key,
                crypto::MerkleRoot(data));
  }

  test::TempDir dir_;
  crypto::SigningKey node_key_ = crypto::SigningKey::Generate();
  NodeId node_id_ = crypto::NodeIdOf(node_key_.public_key());
  std::unique_ptr<backend::ShardStore> store_;
  std::unique_ptr<NodeService> service_;
  crypto::SigningKey alice_ = crypto::SigningKey::Generate();
  crypto::SigningKey bob_ = crypto::SigningKey::Generate();
};

TEST_F(NodeServiceTest, StatusIsUnsigned) {
  Answer a = Send("GET", "/v1/status");
  ASSERT_EQ(a.status, 200u);
  auto j = nlohmann::json::parse(a.body);
  EXPECT_EQ(j["node_id"], node_id_.ToHex());
  EXPECT_EQ(j["protocol"], 1);
  EXPECT_EQ(j["capacity"], 64 << 20);
  EXPECT_EQ(j["shards"], 0);
  // No scrubber: reported as off.
  EXPECT_EQ(j["scrub"], nlohmann::json::parse(R"({"rate":0,"passes_completed":0,"shards_checked":0,
                                      "bytes_checked":0,"damaged_found":0,
                                      "last_pass_seconds":null})"));
  EXPECT_EQ(Send("POST", "/v1/status").status, 405u);
}

TEST_F(NodeServiceTest, PutGetRangeHeadDelete) {
  Bytes data = test::PseudoRandomBytes(200000, 1);
  std::string target = "/v1/shards/" + crypto::MerkleRoot(data).ToHex();
  EXPECT_EQ(Put(data, alice_).status, 201u);
  EXPECT_EQ(Put(data, alice_).status, 200u);  // a repeat
  EXPECT_EQ(Put(data, bob_).status, 201u);    // another owner's lease

  Answer full = Send("GET", target, {}, &alice_);
  ASSERT_EQ(full.status, 200u);
  EXPECT_EQ(full.body, std::string(data.begin(), data.end()));
  EXPECT_EQ(full.Header("ETag"), "\"" + crypto::MerkleRoot(data).ToHex() + "\"");

  Answer part = Send("GET", target, {}, &alice_, {}, {{"Range", "bytes=65530-131080"}});
  ASSERT_EQ(part.status, 206u);
  EXPECT_EQ(part.body, std::string(data.begin() + 65530, data.begin() + 131081));
  EXPECT_EQ(part.Header("Content-Range"), "bytes 65530-131080/200000");
  Answer tail = Send("GET", target, {}, &alice_, {}, {{"Range", "bytes=-10"}});
  EXPECT_EQ(tail.body, std::string(data.end() - 10, data.end()));
  Answer open = Send("GET", target, {}, &alice_, {}, {{"Range", "bytes=199999-"}});
  EXPECT_EQ(open.body.size(), 1u);
  Answer clamp = Send("GET", target, {}, &alice_, {}, {{"Range", "bytes=199990-999999"}});
  EXPECT_EQ(clamp.body.size(), 10u);

  Answer head = Send("HEAD", target, {}, &alice_);
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.response.content_length(), data.size());
  EXPECT_TRUE(head.body.empty());

  EXPECT_EQ(Send("DELETE", target, {}, &alice_).status, 204u);
  EXPECT_EQ(Send("DELETE", target, {}, &alice_).status, 404u);
  EXPECT_EQ(Send("GET", target, {}, &alice_).status, 404u);
  EXPECT_EQ(Send("GET", target, {}, &bob_).status, 200u);
}

TEST_F(NodeServiceTest, BadRanges) {
  Bytes data = test::PseudoRandomBytes(1000, 2);
  std::string target = "/v1/shards/" + crypto::MerkleRoot(data).ToHex();
  ASSERT_EQ(Put(data, alice_).status, 201u);
  for (const char* r : {"bytes=1000-", "bytes=5000-6000", "bytes=-0"}) {
    Answer a = Send("GET", target, {}, &alice_, {}, {{"Range", r}});
    EXPECT_EQ(a.status, 416u) << r;
    EXPECT_EQ(a.Header("Content-Range"), "bytes */1000") << r;
  }
  for (const char* r : {"bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=a-b", "bytes=", "bytes=-",
                        "bytes=1", "bytes=--1", "bytes=99999999999999999999-"}) {
    Answer a = Send("GET", target, {}, &alice_, {}, {{"Range", r}});
    EXPECT_EQ(a.status, 400u) << r;
    EXPECT_EQ(a.code(), "bad_range") << r;
  }
}

TEST_F(NodeServiceTest, ProofsVerify) {
  Bytes data = test::PseudoRandomBytes(5 * crypto::kMerkleLeafSize + 9, 3);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_EQ(Put(data, alice_).status, 201u);
  Answer a = Send("GET", "/v1/shards/" + id.ToHex() + "/proof?leaf=2", {}, &alice_);
  ASSERT_EQ(a.status, 200u);
  ASSERT_OK_AND_ASSIGN(backend::ShardProof p, DecodeProofResponse(AsBytes(a.body)));
  EXPECT_OK(crypto::VerifyMerkleProof(id, p.length, 2, p.leaves, p.proof));
  Answer run = Send("GET", "/v1/shards/" + id.ToHex() + "/proof?first=3&count=3", {}, &alice_);
  ASSERT_EQ(run.status, 200u);
  ASSERT_OK_AND_ASSIGN(p, DecodeProofResponse(AsBytes(run.body)));
  EXPECT_OK(crypto::VerifyMerkleProof(id, p.length, 3, p.leaves, p.proof));
  EXPECT_EQ(Send("GET", "/v1/shards/" + id.ToHex() + "/proof?leaf=6", {}, &alice_).status, 416u);
  for (const char* q : {"", "?leaf=x", "?leaf=1&leaf=2", "?first=1", "?first=0&count=0",
                        "?first=0&count=257", "?other=1", "?leaf=-1", "?leaf"}) {
    EXPECT_EQ(Send("GET", "/v1/shards/" + id.ToHex() + "/proof" + q, {}, &alice_).status, 400u)
        << q;
  }
  EXPECT_EQ(Send("GET", "/v1/shards/" + id.ToHex() + "/proof?leaf=0", {}, &bob_).status, 404u);
}

TEST_F(NodeServiceTest, BadIdsAndRoutes) {
  std::string too_long(200, 'a');
  for (std::string id : {std::string(""), std::string("../../etc/passwd"), std::string(63, 'a'),
                         std::string(65, 'a'), std::string(64, 'g'), too_long,
                         std::string("%2e%2e%2f") + std::string(55, 'a')}) {
    Answer a = Send("GET", "/v1/shards/" + id, {}, &alice_);
    EXPECT_EQ(a.status, 400u) << id;
    EXPECT_EQ(a.code(), "bad_id") << id;
  }
  EXPECT_EQ(Send("GET", "/v1/nothing").status, 404u);
  EXPECT_EQ(Send("GET", "/").status, 404u);
  EXPECT_EQ(Send("GET", "v1/status").status, 400u);
  EXPECT_EQ(Send("GET", "/" + std::string(5000, 'x')).status, 400u);
  Answer a = Send("POST", "/v1/shards/" + std::string(64, 'a'));
  EXPECT_EQ(a.status, 405u);
  EXPECT_EQ(a.Header("Allow"), "GET, HEAD, PUT, DELETE");
}

// A path or header that is not UTF-8, quoted in an error message, is answered, not thrown on
// (found by tests/fuzz/fuzz_node_request.cc).
TEST_F(NodeServiceTest, ErrorsQuotingBytesThatAreNotUtf8) {
  Answer route = Send("GET", "/v1/s\x86hards/x\xff");
  EXPECT_EQ(route.status, 404u);
  EXPECT_EQ(route.code(), "no_route");
  Bytes data = test::PseudoRandomBytes(1000, 6);
  std::string target = "/v1/shards/" + crypto::MerkleRoot(data).ToHex();
  ASSERT_EQ(Put(data, alice_).status, 201u);
  Answer range = Send("GET", target, {}, &alice_, {}, {{"Range", "bytes=\xc3\x28-"}});
  EXPECT_EQ(range.status, 400u);
  EXPECT_EQ(range.code(), "bad_range");
}

TEST_F(NodeServiceTest, UnsignedAndWronglySignedRequestsAreRefused) {
  Bytes data = test::PseudoRandomBytes(1000, 4);
  std::string target = "/v1/shards/" + crypto::MerkleRoot(data).ToHex();
  Answer unsigned_put = Send("PUT", target, data);
  EXPECT_EQ(unsigned_put.status, 401u);
  EXPECT_TRUE(unsigned_put.response.close);  // the body was not read
  EXPECT_EQ(Send("GET", target).status, 401u);
  EXPECT_EQ(Send("DELETE", target).status, 401u);
  // Signed for another target.
  HttpRequestHead head;
  head.method = "GET";
  head.target = target;
  head.headers = SignRequest(alice_, node_id_, "GET", "/v1/shards/" + std::string(64, 'b'),
                             crypto::MerkleRoot({}), kNow);
  EXPECT_EQ(service_->Begin(head).response->status, 401u);
  // Stale.
  head.headers = SignRequest(alice_, node_id_, "GET", target, crypto::MerkleRoot({}), kNow - 3600);
  EXPECT_EQ(service_->Begin(head).response->status, 401u);
  // Replayed.
  head.headers = SignRequest(alice_, node_id_, "GET", target, crypto::MerkleRoot({}), kNow);
  EXPECT_EQ(service_->Begin(head).response->status, 404u);
  EXPECT_EQ(service_->Begin(head).response->status, 401u);
}

TEST_F(NodeServiceTest, BodyRules) {
  Bytes data = test::PseudoRandomBytes(1000, 5);
  ShardId id = crypto::MerkleRoot(data);
  std::string target = "/v1/shards/" + id.ToHex();
  // The signed body root must be the id.
  Answer a = Send("PUT", target, data, &alice_, crypto::MerkleRoot(ToBytes("x")));
  EXPECT_EQ(a.status, 400u);
  EXPECT_EQ(a.code(), "body_mismatch");
  // A body that is not the id.
  Bytes other = test::PseudoRandomBytes(1000, 6);
  a = Send("PUT", target, other, &alice_, id);
  EXPECT_EQ(a.status, 400u);
  EXPECT_EQ(a.code(), "shard_mismatch");
  // Too large, empty, no length.
  Bytes big(store_->options().max_shard_size + 1);
  a = Send("PUT", "/v1/shards/" + crypto::MerkleRoot(big).ToHex(), big, &alice_);
  EXPECT_EQ(a.status, 413u);
  a = Send("PUT", "/v1/shards/" + crypto::MerkleRoot({}).ToHex(), {}, &alice_);
  EXPECT_EQ(a.status, 400u);
  HttpRequestHead head;
  head.method = "PUT";
  head.target = target;
  head.chunked = true;
  head.headers = SignRequest(alice_, node_id_, "PUT", target, id, kNow);
  EXPECT_EQ(service_->Begin(head).response->status, 411u);
  EXPECT_EQ(store_->Stats().shards, 0u);
}

TEST_F(NodeServiceTest, FullNodeSays507) {
  store_.reset();
  service_.reset();
  backend::ShardStoreOptions so;
  so.dir = dir_.path() + "/small";
  so.capacity = 5000;
  so.reserve = 0;
  so.sync = false;
  ASSERT_OK_AND_ASSIGN(store_, backend::ShardStore::Open(so));
  NodeServiceOptions o;
  o.clock = [] { return kNow; };
  service_ = std::make_unique<NodeService>(store_.get(), node_id_, o);
  Answer a = Put(test::PseudoRandomBytes(6000, 7), alice_);
  EXPECT_EQ(a.status, 507u);
  EXPECT_EQ(a.code(), "insufficient_storage");
}

TEST_F(NodeServiceTest, AllowlistedOwnersOnly) {
  NodeServiceOptions o;
  o.allowed_owners.insert(alice_.public_key());
  Start(o);
  Bytes data = test::PseudoRandomBytes(100, 8);
  EXPECT_EQ(Put(data, alice_).status, 201u);
  Answer a = Put(data, bob_);
  EXPECT_EQ(a.status, 403u);
  EXPECT_EQ(a.code(), "owner_not_allowed");
}

TEST_F(NodeServiceTest, Slots) {
  std::string mine = "/v1/slots/" + alice_.public_key().ToHex();
  EXPECT_EQ(Send("GET", mine, {}, &alice_).status, 404u);
  ASSERT_OK_AND_ASSIGN(Bytes r1, backend::SignSlotRecord(alice_, 1, ToBytes("one")));
  ASSERT_OK_AND_ASSIGN(Bytes r0, backend::SignSlotRecord(alice_, 0, ToBytes("zero")));
  EXPECT_EQ(Send("PUT", mine, r1, &alice_).status, 200u);
  Answer lower = Send("PUT", mine, r0, &alice_);
  EXPECT_EQ(lower.status, 409u);
  EXPECT_EQ(lower.code(), "stale_sequence");
  Bytes forged = r1;
  forged[40] ^= 1;  // the sequence, so the signature fails
  Answer bad = Send("PUT", mine, forged, &alice_);
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.code(), "bad_slot_signature");
  EXPECT_EQ(Send("PUT", mine, ToBytes("junk"), &alice_).code(), "bad_slot_record");
  // The body must be the one signed.
  EXPECT_EQ(Send("PUT", mine, r1, &alice_, crypto::MerkleRoot(r0)).code(), "body_mismatch");
  // Bob can neither read nor write Alice's slot.
  EXPECT_EQ(Send("GET", mine, {}, &bob_).status, 403u);
  EXPECT_EQ(Send("PUT", mine, r1, &bob_).status, 403u);
  Answer got = Send("GET", mine, {}, &alice_);
  ASSERT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, std::string(r1.begin(), r1.end()));
  Bytes huge(backend::kSlotRecordOverhead + backend::kMaxSlotValue + 1);
  EXPECT_EQ(Send("PUT", mine, huge, &alice_).status, 413u);
}

// GET sends a shard as stored, without checking it (the client does); a proof request checks
// the leaves it reads, and finds the damage.
TEST_F(NodeServiceTest, DamagedShardIsSentAsStoredAndDroppedByAProof) {
  Bytes data = test::PseudoRandomBytes(3 * crypto::kMerkleLeafSize, 9);
  ShardId id = crypto::MerkleRoot(data);
  std::string target = "/v1/shards/" + id.ToHex();
  ASSERT_EQ(Put(data, alice_).status, 201u);
  FlipByte(id, 2 * crypto::kMerkleLeafSize + 1);
  Answer get = Send("GET", target, {}, &alice_);
  ASSERT_EQ(get.status, 200u);
  ASSERT_EQ(get.body.size(), data.size());
  EXPECT_NE(get.body, std::string(data.begin(), data.end()));
  EXPECT_EQ(get.body[2 * crypto::kMerkleLeafSize + 1],
            static_cast<char>(data[2 * crypto::kMerkleLeafSize + 1] ^ 0xff));
  EXPECT_EQ(store_->Stats().shards, 1u);  // GET did not look
  // A proof of an intact leaf is still good; one of the damaged leaf drops the shard.
  EXPECT_EQ(Send("GET", target + "/proof?leaf=0", {}, &alice_).status, 200u);
  Answer proof = Send("GET", target + "/proof?leaf=2", {}, &alice_);
  EXPECT_EQ(proof.status, 500u);
  EXPECT_EQ(proof.code(), "shard_damaged");
  EXPECT_EQ(Send("GET", target, {}, &alice_).status, 404u);
  EXPECT_EQ(store_->Stats().shards, 0u);
  EXPECT_EQ(store_->Stats().used, 0u);
}

// A shard damaged on the disk is found by the scrubber, and is gone for every owner after.
TEST_F(NodeServiceTest, ScrubDropsADamagedShardAndStatusReportsIt) {
  Bytes good = test::PseudoRandomBytes(100000, 10);
  Bytes bad = test::PseudoRandomBytes(2 * crypto::kMerkleLeafSize + 7, 11);
  ASSERT_EQ(Put(good, alice_).status, 201u);
  ASSERT_EQ(Put(bad, alice_).status, 201u);
  ASSERT_EQ(Put(bad, bob_).status, 201u);
  FlipByte(crypto::MerkleRoot(bad), bad.size() - 1);  // in the last, partial leaf
  backend::ScrubberOptions so;
  so.rate = uint64_t{1} << 30;
  backend::Scrubber scrubber(store_.get(), so);
  NodeServiceOptions o;
  o.clock = [] { return kNow; };
  o.scrubber = &scrubber;
  service_ = std::make_unique<NodeService>(store_.get(), node_id_, o);
  scrubber.Start();
  for (int i = 0; i < 500 && scrubber.Stats().passes_completed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  scrubber.Stop();
  Answer st = Send("GET", "/v1/status");
  ASSERT_EQ(st.status, 200u);
  auto j = nlohmann::json::parse(st.body)["scrub"];
  EXPECT_EQ(j["rate"], uint64_t{1} << 30);
  EXPECT_EQ(j["passes_completed"], 1);
  EXPECT_EQ(j["shards_checked"], 2);
  EXPECT_EQ(j["damaged_found"], 1);
  EXPECT_EQ(j["bytes_checked"], good.size() + bad.size());
  EXPECT_TRUE(j["last_pass_seconds"].is_number());
  std::string bad_target = "/v1/shards/" + crypto::MerkleRoot(bad).ToHex();
  EXPECT_EQ(Send("GET", bad_target, {}, &alice_).status, 404u);
  EXPECT_EQ(Send("GET", bad_target, {}, &bob_).status, 404u);
  EXPECT_EQ(Send("GET", "/v1/shards/" + crypto::MerkleRoot(good).ToHex(), {}, &alice_).status,
            200u);
  EXPECT_EQ(store_->Stats().shards, 1u);
  EXPECT_EQ(store_->Usage(bob_.public_key()).shards, 0u);
  service_.reset();  // before the scrubber it points to
}

TEST(ParseRangeTest, Forms) {
  using P = std::pair<uint64_t, uint64_t>;
  EXPECT_FALSE(ParseRange("", 10)->has_value());
  EXPECT_EQ(**ParseRange("bytes=0-0", 10), P(0, 1));
  EXPECT_EQ(**ParseRange("bytes=2-", 10), P(2, 10));
  EXPECT_EQ(**ParseRange("bytes=-3", 10), P(7, 10));
  EXPECT_EQ(**ParseRange("bytes=-30", 10), P(0, 10));
  EXPECT_EQ(**ParseRange("bytes=5-18446744073709551615", 10), P(5, 10));
}

TEST(ProofResponseTest, MalformedBodiesAreRefused) {
  backend::ShardProof p;
  p.length = 5;
  p.proof.leaf_count = 1;
  p.leaves = ToBytes("hello");
  Bytes enc = EncodeProofResponse(p);
  ASSERT_OK(DecodeProofResponse(enc));
  for (size_t cut = 0; cut < 36; ++cut) {
    EXPECT_FALSE(DecodeProofResponse(ByteSpan(enc).first(cut)).ok()) << cut;
  }
  Bytes lying = enc;
  lying[32] = 200;  // 200 hashes that are not there
  EXPECT_EQ(DecodeProofResponse(lying).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace shardfs::net
