// Fuzz target: what the gossip takes from the network, on bytes from anyone: gossip packets
// (net::Gossip::Receive, on a node that knows one member), member records
// (net::VerifyMemberRecord) and members views (net::DecodeMembersView, what clients and
// push-pull read from GET and POST /v1/members).
//
// Input byte 0 picks what is parsed:
//   0 mod 3: the rest is a gossip packet, from 127.0.0.1:7001. A packet that Receive counts as
//            bad must change nothing and get no answer; none may add more members than it
//            carries records.
//   1 mod 3: the rest is a member record. One that verifies keeps the input as its encoding,
//            has the input's length, and verifies again.
//   2 mod 3: the rest is a members view; every member it keeps has a record that verifies.
// None may crash, hang or read out of bounds, whatever the bytes.
//
// SHARDFS_WRITE_SEEDS=DIR makes the first input also write the seed corpus
// (tests/fuzz/corpus/gossip/) to DIR.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "crypto/secret.h"
#include "crypto/sign.h"
#include "net/gossip.h"
#include "net/members_json.h"

namespace shardfs {
namespace {

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_gossip: invariant broken: %s\n", what);
  std::abort();
}

crypto::SigningKey Key(uint8_t b) {
  return crypto::SigningKey::FromSeed(crypto::SecretKey::FromBytes(Bytes(32, b)).value());
}

using Clock = net::Gossip::Clock;
const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

std::unique_ptr<net::Gossip> Node(uint8_t key, const std::string& address) {
  net::GossipSelf self{address, 1 << 30, 1 << 29};
  return net::Gossip::Create(Key(key), self, net::GossipOptions{}, 10, key, kT0).value();
}

void WriteSeed(const std::string& path, uint8_t selector, ByteSpan body) {
  std::ofstream f(path, std::ios::binary);
  f.put(static_cast<char>(selector));
  f.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  Require(f.good(), "write a seed");
}

void WriteSeeds(const std::string& dir) {
  auto a = Node(0xa1, "127.0.0.1:7000");
  auto b = Node(0xb2, "127.0.0.1:7001");
  auto c = Node(0xc3, "127.0.0.1:7002");
  Require(a->Merge(b->Records().front()->encoded, kT0).ok(), "merge b");
  Require(b->Merge(a->Records().front()->encoded, kT0).ok(), "merge a");
  Require(b->Merge(c->Records().front()->encoded, kT0).ok(), "merge c");
  // A ping from b (carrying c's record), a's ack, and a ping-req after the ping times out.
  auto pings = b->Tick(kT0);
  Require(!pings.empty(), "a ping");
  WriteSeed(dir + "/ping", 0, pings[0].bytes);
  if (pings.size() > 1) WriteSeed(dir + "/gossip", 0, pings[1].bytes);
  auto acks = a->Receive(pings[0].bytes, "127.0.0.1:7001", kT0);
  if (!acks.empty()) WriteSeed(dir + "/ack", 3, acks[0].bytes);
  auto reqs = b->Tick(kT0 + std::chrono::milliseconds(400));
  for (const auto& d : reqs) WriteSeed(dir + "/ping_req", 6, d.bytes);
  WriteSeed(dir + "/record", 1, a->Records().front()->encoded);
  std::string view = net::EncodeMembersView(*b, kT0);
  WriteSeed(dir + "/view", 2, AsBytes(view));
}

void Packet(ByteSpan in) {
  static std::unique_ptr<net::Gossip> node = [] {
    auto n = Node(0xa1, "127.0.0.1:7000");
    Require(n->Merge(Node(0xb2, "127.0.0.1:7001")->Records().front()->encoded, kT0).ok(), "merge");
    return n;
  }();
  uint64_t bad = node->counters().bad_packets;
  size_t members = node->Members().size();
  auto out = node->Receive(in, "127.0.0.1:7001", kT0);
  if (node->counters().bad_packets > bad) {
    Require(out.empty(), "a bad packet gets no answer");
    Require(node->Members().size() == members, "a bad packet adds no member");
  }
  Require(node->Members().size() <= members + in.size() / 100, "members come from records");
}

void Record(ByteSpan in) {
  auto rec = net::VerifyMemberRecord(in);
  if (!rec.ok()) return;
  Require(rec->encoded == Bytes(in.begin(), in.end()), "a record keeps its bytes");
  Require(net::MemberRecordLength(in).value_or(0) == in.size(), "a record has its length");
  Require(net::VerifyMemberRecord(rec->encoded).ok(), "a verified record verifies again");
}

void View(ByteSpan in) {
  auto v =
      net::DecodeMembersView(std::string_view(reinterpret_cast<const char*>(in.data()), in.size()));
  if (!v.ok()) return;
  for (const auto& m : v->members) {
    Require(net::VerifyMemberRecord(m.record.encoded).ok(), "a kept member's record verifies");
  }
}

}  // namespace
}  // namespace shardfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs;
  static const bool seeds_written = [] {
    if (const char* dir = std::getenv("SHARDFS_WRITE_SEEDS")) WriteSeeds(dir);
    return true;
  }();
  (void)seeds_written;
  if (size == 0) return 0;
  ByteSpan in(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      Packet(in);
      break;
    case 1:
      Record(in);
      break;
    default:
      View(in);
      break;
  }
  return 0;
}
