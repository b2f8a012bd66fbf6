// Integration tests of the storage node: real `shardfs node` processes (the binary the build
// made, SHARDFS_BINARY) on ephemeral loopback ports, driven through net::HttpPeer for
// well-formed calls and through raw sockets for the requests a well-behaved client never
// sends. Each test starts its own nodes in its own temporary folders and stops every process
// it started, by pid, even when an assertion fails (NodeProcess). Every wait is bounded.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/shardstore.h"
#include "backend/slot.h"
#include "base/splitmix64.h"
#include "crypto/merkle.h"
#include "crypto/sign.h"
#include "net/address.h"
#include "net/auth.h"
#include "net/http_peer.h"
#include "tests/node_process.h"
#include "tests/testutil.h"

#ifndef SHARDFS_BINARY
#error "SHARDFS_BINARY must name the shardfs executable (set by tests/CMakeLists.txt)"
#endif

namespace shardfs {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr const char* kBinary = SHARDFS_BINARY;
// How long a node may take to write its ready file.
constexpr auto kReadyTimeout = 10s;
constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;

int64_t UnixNow() { return static_cast<int64_t>(::time(nullptr)); }

long ToMillis(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<Millis>(d).count());
}

// Polls `done` every `step` until it holds or `limit` passes; returns its last value.
bool WaitUntil(const std::function<bool()>& done, Clock::duration limit, Millis step = 20ms) {
  auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(step);
  }
  return true;
}

// Regular files under `dir`, recursively; none if it does not exist.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) out.push_back(it->path().string());
  }
  return out;
}

// Open file descriptors of process `pid`, or -1 if /proc cannot tell.
int CountFds(pid_t pid) {
  std::error_code ec;
  int n = 0;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
  if (ec) return -1;
  for (; !ec && it != end; it.increment(ec)) ++n;
  return ec ? -1 : n;
}

// The fd count of a node at rest: the same in three samples 30 ms apart (a node that has just
// written its ready file may still hold the folder it fsyncs). At most 2 s; -1 if never.
int BaselineFds(pid_t pid) {
  int last = -2, same = 0;
  for (int i = 0; i < 66; ++i) {
    int n = CountFds(pid);
    same = n == last ? same + 1 : 0;
    last = n;
    if (n >= 0 && same >= 2) return n;
    std::this_thread::sleep_for(30ms);
  }
  return -1;
}

// The flags every node in these tests gets besides --data, --listen and --ready-file.
std::vector<std::string> NodeArgs(const std::string& capacity,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--capacity", capacity, "--reserve", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// One `shardfs node` process of the binary this build made (tests/node_process.h), with its
// ready file and log in a temporary folder of its own; the log is printed when the test
// failed.
class NodeProcess {
 public:
  NodeProcess(std::string data, std::vector<std::string> args)
      : proc_({kBinary, std::move(data), std::move(args), run_.path(), /*log_to_file=*/true,
               SIGKILL, std::chrono::duration_cast<Millis>(kReadyTimeout)}) {}
  ~NodeProcess() {
    if (proc_.pid() > 0) (void)Stop(SIGTERM, 5s);
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "--- node log (last 4000 bytes) ---\n%s--- end of node log ---\n",
                   proc_.LogTail(4000).c_str());
    }
  }
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  ::testing::AssertionResult Start() {
    Status s = proc_.Start();
    if (s.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << s.ToString();
  }
  // The wait status, or nullopt if the node was not running or could not be reaped (a failure).
  std::optional<int> Stop(int sig, Clock::duration grace) {
    auto status = proc_.Stop(sig, grace);
    if (status.ok()) return *status;
    if (status.status().code() != Code::kNotFound) ADD_FAILURE() << status.status().ToString();
    return std::nullopt;
  }
  bool Alive() const { return proc_.Alive(); }
  pid_t pid() const { return proc_.pid(); }
  const net::HostPort& address() const { return proc_.address(); }
  uint16_t port() const { return proc_.port(); }
  const std::string& data() const { return proc_.data(); }

 private:
  test::TempDir run_;  // the ready file and the node's log
  test::NodeProcess proc_;
};

std::shared_ptr<crypto::SigningKey> NewKey() {
  return std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
}

Result<std::unique_ptr<net::HttpPeer>> Connect(const NodeProcess& node,
                                               std::shared_ptr<const crypto::SigningKey> key,
                                               net::HttpPeerOptions options = {}) {
  return net::HttpPeer::Connect(node.address(), std::move(key), options);
}

struct Shard {
  Bytes data;
  ShardId id;
};

Shard MakeShard(size_t size, uint64_t seed) {
  Shard s{test::PseudoRandomBytes(size, seed), {}};
  s.id = crypto::MerkleRoot(s.data);
  return s;
}

std::string ShardTarget(const ShardId& id) { return "/v1/shards/" + id.ToHex(); }
std::string ShardFile(const std::string& data, const ShardId& id) {
  std::string hex = id.ToHex();
  return data + "/shards/" + hex.substr(0, 2) + "/" + hex;
}
bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

const ShardId& EmptyRoot() {
  static const ShardId root = crypto::MerkleRoot({});
  return root;
}

// --- Raw HTTP --------------------------------------------------------------------------------

struct RawReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        return v;
      }
    }
    return "";
  }
  // The "code" of a JSON error body, or "".
  std::string Code() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("code") && j["code"].is_string()) return j["code"];
    return "";
  }
};

std::ostream& operator<<(std::ostream& os, const RawReply& r) {
  return os << "HTTP " << r.status << " " << r.body.substr(0, 300);
}

// A request head: request line, Host, the given headers, Content-Length if given.
std::string Request(std::string_view method, std::string_view target, const net::Headers& headers,
                    std::optional<uint64_t> content_length = std::nullopt) {
  std::string r =
      std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) r += k + ": " + v + "\r\n";
  if (content_length) r += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  r += "\r\n";
  return r;
}

// One TCP connection to a node on loopback, for requests no well-behaved client sends. Every
// read is bounded by a deadline.
class RawConn {
 public:
  explicit RawConn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Close();
  }
  ~RawConn() { Close(); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool ok() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view s) { return Send(AsBytes(s)); }
  bool Send(ByteSpan b) {
    size_t done = 0;
    while (fd_ >= 0 && done < b.size()) {
      ssize_t n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return fd_ >= 0;
  }

  // Reads one response (head and Content-Length body, or the head only for a response to
  // HEAD); nullopt if the connection closed or `limit` passed first.
  std::optional<RawReply> ReadReply(Clock::duration limit = 5s, bool to_head = false) {
    auto deadline = Clock::now() + limit;
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (Fill(deadline) != Got::kData) return std::nullopt;
    }
    RawReply r;
    std::istringstream head(buf_.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return std::nullopt;
    r.status = std::atoi(line.c_str() + 9);
    uint64_t length = 0;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string k = line.substr(0, colon), v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      r.headers.emplace_back(k, v);
    }
    std::string cl = r.Header("Content-Length");
    if (!cl.empty() && !to_head) length = std::strtoull(cl.c_str(), nullptr, 10);
    size_t body_start = head_end + 4;
    while (buf_.size() < body_start + length) {
      if (Fill(deadline) != Got::kData) return std::nullopt;
    }
    r.body = buf_.substr(body_start, length);
    buf_.erase(0, body_start + length);
    return r;
  }

  // Waits until the node closes the connection (a read returns 0, or a reset); false if it is
  // still open after `limit`. Whatever the node sends first is discarded.
  bool WaitClosed(Clock::duration limit) {
    auto deadline = Clock::now() + limit;
    while (true) {
      Got g = Fill(deadline);
      if (g == Got::kClosed) return true;
      if (g == Got::kTimeout) return false;
      buf_.clear();
    }
  }

  // True if the node has not closed the connection nor sent anything (checked at once).
  bool StillOpen() {
    char c;
    ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

 private:
  enum class Got { kData, kClosed, kTimeout };
  Got Fill(Clock::time_point deadline) {
    while (true) {
      if (fd_ < 0) return Got::kClosed;
      auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
      if (left <= 0) return Got::kTimeout;
      pollfd p{fd_, POLLIN, 0};
      int pr = ::poll(&p, 1, static_cast<int>(left));
      if (pr < 0 && errno == EINTR) continue;
      if (pr == 0) return Got::kTimeout;
      char tmp[16384];
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Got::kClosed;
      buf_.append(tmp, static_cast<size_t>(n));
      return Got::kData;
    }
  }

  int fd_ = -1;
  std::string buf_;
};

// Sends `request` (and `body`) on a fresh connection and reads the reply.
std::optional<RawReply> Exchange(uint16_t port, std::string_view request, ByteSpan body = {}) {
  RawConn c(port);
  if (!c.ok() || !c.Send(request) || !c.Send(body)) return std::nullopt;
  return c.ReadReply();
}

// --- 1. Two owners -----------------------------------------------------------------------------

TEST(NodeIntegrationTest, TwoOwnersSeeOnlyTheirOwnShardsAndSlots) {
  test::TempDir dir;
  NodeProcess node(dir.path() + "/data", NodeArgs("64M"));
  ASSERT_TRUE(node.Start());
  auto ka = NewKey(), kb = NewKey();
  ASSERT_OK_AND_ASSIGN(auto a, Connect(node, ka));
  ASSERT_OK_AND_ASSIGN(auto b, Connect(node, kb));
  const NodeId nid = a->node_id();
  EXPECT_EQ(b->node_id(), nid);

  // A's own shard: B can neither read, stat nor delete it.
  Shard mine = MakeShard(3 * crypto::kMerkleLeafSize + 1234, 11);
  ASSERT_OK(a->PutShard(mine.id, mine.data, nullptr));
  ASSERT_OK_AND_ASSIGN(Bytes back, a->GetShard(mine.id, nullptr));
  EXPECT_EQ(back, mine.data);
  EXPECT_EQ(b->GetShard(mine.id, nullptr).status().code(), Code::kNotFound);
  EXPECT_EQ(b->StatShard(mine.id).status().code(), Code::kNotFound);
  EXPECT_EQ(b->DeleteShard(mine.id).code(), Code::kNotFound);
  Bytes piece(100);
  EXPECT_EQ(b->ReadShard(mine.id, 0, piece, nullptr).code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(back, a->GetShard(mine.id, nullptr));  // B's DELETE did nothing
  EXPECT_EQ(back, mine.data);

  // Range reads through the Merkle proofs (HttpPeer) and as plain signed GETs with Range.
  ASSERT_OK(a->ReadShard(mine.id, 70000, piece, nullptr));
  EXPECT_TRUE(std::equal(piece.begin(), piece.end(), mine.data.begin() + 70000));
  const std::string target = ShardTarget(mine.id);
  const uint64_t n = mine.data.size();
  struct RangeCase {
    std::string header;
    uint64_t begin, end;  // expected [begin, end)
  };
  for (const RangeCase& rc :
       {RangeCase{"bytes=100-70099", 100, 70100}, RangeCase{"bytes=65536-", 65536, n},
        RangeCase{"bytes=-10", n - 10, n}, RangeCase{"bytes=0-0", 0, 1},
        RangeCase{"bytes=5-" + std::to_string(n + 100), 5, n}}) {
    net::Headers h = net::SignRequest(*ka, nid, "GET", target, EmptyRoot(), UnixNow());
    h.emplace_back("Range", rc.header);
    auto r = Exchange(node.port(), Request("GET", target, h));
    ASSERT_TRUE(r) << rc.header;
    EXPECT_EQ(r->status, 206) << rc.header << ": " << *r;
    EXPECT_EQ(r->Header("Content-Range"), "bytes " + std::to_string(rc.begin) + "-" +
                                              std::to_string(rc.end - 1) + "/" + std::to_string(n))
        << rc.header;
    EXPECT_EQ(r->body.size(), rc.end - rc.begin) << rc.header;
    EXPECT_TRUE(r->body.size() == rc.end - rc.begin &&
                std::equal(r->body.begin(), r->body.end(),
                           mine.data.begin() + static_cast<ptrdiff_t>(rc.begin),
                           [](char x, uint8_t y) { return static_cast<uint8_t>(x) == y; }))
        << rc.header;
  }
  // B's signed Range GET of A's shard is a 404, not a byte of it.
  {
    net::Headers h = net::SignRequest(*kb, nid, "GET", target, EmptyRoot(), UnixNow());
    h.emplace_back("Range", "bytes=0-99");
    auto r = Exchange(node.port(), Request("GET", target, h));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << *r;
  }

  // A shard both hold: one copy, two leases; it survives A's DELETE.
  Shard both = MakeShard(200 * kKiB, 12);
  ASSERT_OK(a->PutShard(both.id, both.data, nullptr));
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus s1, a->GetStatus());
  ASSERT_OK(b->PutShard(both.id, both.data, nullptr));
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus s2, a->GetStatus());
  EXPECT_EQ(s2.shards, 2u);
  EXPECT_EQ(s2.used, s1.used);  // B's lease took no room
  ASSERT_OK(a->DeleteShard(both.id));
  EXPECT_EQ(a->GetShard(both.id, nullptr).status().code(), Code::kNotFound);
  EXPECT_EQ(a->DeleteShard(both.id).code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(back, b->GetShard(both.id, nullptr));
  EXPECT_EQ(back, both.data);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus s3, a->GetStatus());
  EXPECT_EQ(s3.shards, 2u);
  ASSERT_OK(b->DeleteShard(both.id));
  EXPECT_EQ(b->GetShard(both.id, nullptr).status().code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus s4, a->GetStatus());
  EXPECT_EQ(s4.shards, 1u);
  EXPECT_EQ(s4.used, backend::ShardStore::FileSize(mine.data.size()));
  EXPECT_FALSE(Exists(ShardFile(node.data(), both.id)));
  EXPECT_TRUE(Exists(ShardFile(node.data(), mine.id)));

  // Slots: each owner sees only its own.
  ASSERT_OK_AND_ASSIGN(Bytes rec_a, backend::SignSlotRecord(*ka, 1, ToBytes("a's head")));
  ASSERT_OK(a->PutSlot(rec_a));
  ASSERT_OK_AND_ASSIGN(auto got_b, b->GetSlot());
  EXPECT_FALSE(got_b.has_value());
  ASSERT_OK_AND_ASSIGN(auto got_a, a->GetSlot());
  ASSERT_TRUE(got_a.has_value());
  EXPECT_EQ(*got_a, rec_a);
  const std::string slot_a = "/v1/slots/" + ka->public_key().ToHex();
  {
    auto r = Exchange(
        node.port(),
        Request("GET", slot_a, net::SignRequest(*kb, nid, "GET", slot_a, EmptyRoot(), UnixNow())));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << *r;
    EXPECT_EQ(r->Code(), "not_your_slot");
  }
  {
    // B cannot overwrite A's slot, even with a record A signed.
    ASSERT_OK_AND_ASSIGN(Bytes rec_a2, backend::SignSlotRecord(*ka, 2, ToBytes("forged by b")));
    auto r = Exchange(node.port(), Request("PUT", slot_a,
                                           net::SignRequest(*kb, nid, "PUT", slot_a,
                                                            crypto::MerkleRoot(rec_a2), UnixNow()),
                                           rec_a2.size()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << *r;
    ASSERT_OK_AND_ASSIGN(got_a, a->GetSlot());
    ASSERT_TRUE(got_a.has_value());
    EXPECT_EQ(*got_a, rec_a);
  }
}

// --- 2. Restart --------------------------------------------------------------------------------

TEST(NodeIntegrationTest, RestartKeepsLeasesSlotsAndNodeId) {
  test::TempDir dir;
  NodeProcess node(dir.path() + "/data", NodeArgs("64M"));
  ASSERT_TRUE(node.Start());
  auto ka = NewKey(), kb = NewKey();
  Shard a1 = MakeShard(300 * kKiB, 21), a2 = MakeShard(70 * kKiB, 22),
        both = MakeShard(500 * kKiB + 3, 23), b1 = MakeShard(1000, 24);
  ASSERT_OK_AND_ASSIGN(Bytes rec_a, backend::SignSlotRecord(*ka, 7, ToBytes("a-7")));
  ASSERT_OK_AND_ASSIGN(Bytes rec_b, backend::SignSlotRecord(*kb, 2, ToBytes("b-2")));
  NodeId id_before;
  backend::PeerStatus before;
  {
    ASSERT_OK_AND_ASSIGN(auto a, Connect(node, ka));
    ASSERT_OK_AND_ASSIGN(auto b, Connect(node, kb));
    id_before = a->node_id();
    for (const Shard* s : {&a1, &a2, &both}) ASSERT_OK(a->PutShard(s->id, s->data, nullptr));
    for (const Shard* s : {&both, &b1}) ASSERT_OK(b->PutShard(s->id, s->data, nullptr));
    ASSERT_OK(a->DeleteShard(a2.id));
    ASSERT_OK(a->PutSlot(rec_a));
    ASSERT_OK(b->PutSlot(rec_b));
    ASSERT_OK_AND_ASSIGN(before, a->GetStatus());
    EXPECT_EQ(before.shards, 3u);
  }
  const uint16_t old_port = node.port();
  auto st = node.Stop(SIGTERM, 10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << test::DescribeWait(*st);

  ASSERT_TRUE(node.Start());
  std::printf("restarted: port %u -> %u\n", old_port, node.port());
  ASSERT_OK_AND_ASSIGN(auto a, Connect(node, ka));
  ASSERT_OK_AND_ASSIGN(auto b, Connect(node, kb));
  EXPECT_EQ(a->node_id(), id_before);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus after, a->GetStatus());
  EXPECT_EQ(after.node_id, id_before);
  EXPECT_EQ(after.shards, before.shards);
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.capacity, before.capacity);

  for (const Shard* s : {&a1, &both}) {
    ASSERT_OK_AND_ASSIGN(Bytes got, a->GetShard(s->id, nullptr));
    EXPECT_EQ(got, s->data);
  }
  for (const Shard* s : {&both, &b1}) {
    ASSERT_OK_AND_ASSIGN(Bytes got, b->GetShard(s->id, nullptr));
    EXPECT_EQ(got, s->data);
  }
  EXPECT_EQ(a->GetShard(a2.id, nullptr).status().code(), Code::kNotFound);  // deletion kept
  EXPECT_EQ(a->GetShard(b1.id, nullptr).status().code(), Code::kNotFound);  // leases kept apart
  EXPECT_EQ(b->GetShard(a1.id, nullptr).status().code(), Code::kNotFound);

  ASSERT_OK_AND_ASSIGN(auto slot_a, a->GetSlot());
  ASSERT_TRUE(slot_a.has_value());
  EXPECT_EQ(*slot_a, rec_a);
  ASSERT_OK_AND_ASSIGN(auto slot_b, b->GetSlot());
  ASSERT_TRUE(slot_b.has_value());
  EXPECT_EQ(*slot_b, rec_b);
  // The stored sequence survived too: 7 again is stale, 8 is newer.
  ASSERT_OK_AND_ASSIGN(Bytes rec_a7, backend::SignSlotRecord(*ka, 7, ToBytes("a-7 again")));
  EXPECT_EQ(a->PutSlot(rec_a7).code(), Code::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(Bytes rec_a8, backend::SignSlotRecord(*ka, 8, ToBytes("a-8")));
  EXPECT_OK(a->PutSlot(rec_a8));
  // The lease A dropped before the restart is really gone: B's delete now frees the file.
  ASSERT_OK(a->DeleteShard(both.id));
  ASSERT_OK(b->DeleteShard(both.id));
  EXPECT_FALSE(Exists(ShardFile(node.data(), both.id)));
}

// --- 3. kill -9 during PUTs --------------------------------------------------------------------

TEST(NodeIntegrationTest, KillDuringPutsKeepsEveryAcknowledgedShard) {
  test::TempDir dir;
  const std::string data = dir.path() + "/data";
  NodeProcess node(data, NodeArgs("4G"));
  ASSERT_TRUE(node.Start());
  auto key = NewKey();
  NodeId nid;
  {
    ASSERT_OK_AND_ASSIGN(auto probe, Connect(node, key));
    nid = probe->node_id();
  }

  struct Put {
    uint64_t seed = 0;
    size_t size = 0;
    ShardId id;
    bool acked = false;
  };
  std::mutex mu;
  std::vector<Put> puts;                // guarded by mu
  std::vector<std::string> unexpected;  // guarded by mu
  std::atomic<int> acked{0};
  std::atomic<bool> killed{false};
  constexpr int kClients = 2;
  constexpr int kMaxPutsPerClient = 300;

  auto client = [&](int t) {
    net::HttpPeerOptions o;
    o.retries = 0;
    o.connect_timeout = 1s;
    o.io_timeout = 5s;
    auto peer = net::HttpPeer::Connect(node.address(), key, o, nid);
    if (!peer.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      unexpected.push_back(peer.status().ToString());
      return;
    }
    for (int i = 0; i < kMaxPutsPerClient; ++i) {
      uint64_t seed = 1000 * static_cast<uint64_t>(t + 1) + static_cast<uint64_t>(i);
      size_t size = 256 * kKiB + SplitMix64Mix(seed) % (768 * kKiB + 1);
      Bytes bytes = test::PseudoRandomBytes(size, seed);
      ShardId id = crypto::MerkleRoot(bytes);
      size_t index;
      {
        std::lock_guard<std::mutex> lock(mu);
        index = puts.size();
        puts.push_back(Put{seed, size, id, false});
      }
      Status s = (*peer)->PutShard(id, bytes, nullptr);
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        puts[index].acked = true;
        ++acked;
      } else {
        // Before the kill every PUT must succeed; after it, the first failure ends the stream.
        if (!killed) unexpected.push_back(s.ToString());
        return;
      }
    }
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) clients.emplace_back(client, t);
  // Kill at a moment that varies from run to run, once a fair number are stored.
  const int kill_after = 20 + static_cast<int>(std::random_device{}() % 16);
  bool enough = WaitUntil([&] { return acked.load() >= kill_after; }, 30s, 2ms);
  killed = true;
  auto st = node.Stop(SIGKILL, 5s);
  for (auto& c : clients) c.join();  // each ends at its first failed PUT (reset or refused)
  ASSERT_TRUE(enough) << "only " << acked.load() << " PUTs acknowledged in 30 s";
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL) << test::DescribeWait(*st);
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  size_t partial_before = FilesUnder(data + "/tmp").size();

  ASSERT_TRUE(node.Start());
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
  ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key));
  EXPECT_EQ(peer->node_id(), nid);
  size_t n_acked = 0, n_present = 0, n_unacked = 0;
  uint64_t used = 0;
  for (const Put& p : puts) {
    auto got = peer->GetShard(p.id, nullptr);  // checks the bytes against the id
    if (p.acked) {
      ++n_acked;
      ASSERT_TRUE(got.ok()) << "acknowledged shard " << p.id.ToHex() << ": "
                            << got.status().ToString();
    } else {
      ++n_unacked;
      ASSERT_TRUE(got.ok() || got.status().code() == Code::kNotFound)
          << "unacknowledged shard " << p.id.ToHex() << ": " << got.status().ToString();
    }
    if (got.ok()) {
      EXPECT_EQ(*got, test::PseudoRandomBytes(p.size, p.seed));
      ++n_present;
      used += backend::ShardStore::FileSize(p.size);
    }
  }
  std::printf(
      "killed after %zu acknowledged PUTs, %zu in flight, %zu partial file(s) in tmp/; "
      "%zu shard(s) present after restart\n",
      n_acked, n_unacked, partial_before, n_present);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus status, peer->GetStatus());
  EXPECT_EQ(status.shards, n_present);
  EXPECT_EQ(status.used, used);
  EXPECT_EQ(FilesUnder(data + "/shards").size(), n_present);
  // The recovered node takes new shards.
  Shard fresh = MakeShard(300 * kKiB, 31);
  ASSERT_OK(peer->PutShard(fresh.id, fresh.data, nullptr));
  ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(fresh.id, nullptr));
  EXPECT_EQ(back, fresh.data);
}

// --- 4. Bad input ------------------------------------------------------------------------------

TEST(NodeIntegrationTest, BadInputIsRefusedAndTheNodeGoesOn) {
  test::TempDir dir;
  const std::string data = dir.path() + "/data";
  NodeProcess node(data, NodeArgs("64M", {"--max-shard-size", "1M"}));
  ASSERT_TRUE(node.Start());
  auto key = NewKey(), other = NewKey();
  ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key));
  const NodeId nid = peer->node_id();
  const uint16_t port = node.port();
  Shard s = MakeShard(200000, 41);
  ASSERT_OK(peer->PutShard(s.id, s.data, nullptr));
  const std::string target = ShardTarget(s.id);
  auto sign = [&](std::string_view method, std::string_view t, const ShardId& root,
                  int64_t now = UnixNow()) {
    return net::SignRequest(*key, nid, method, t, root, now);
  };
  auto expect = [&](std::optional<RawReply> r, int status, std::string_view code,
                    const std::string& what) {
    ASSERT_TRUE(r) << what << ": no reply";
    EXPECT_EQ(r->status, status) << what << ": " << *r;
    if (!code.empty()) {
      EXPECT_EQ(r->Code(), code) << what << ": " << *r;
    }
  };

  // Unsigned. A PUT is refused on its head, before the body is read, so only the head goes.
  expect(Exchange(port, Request("GET", target, {})), 401, "unauthorized", "unsigned GET");
  expect(Exchange(port, Request("DELETE", target, {})), 401, "unauthorized", "unsigned DELETE");
  // Responses to HEAD carry no body, errors included: the next response on the same
  // keep-alive connection must start right after the head.
  {
    RawConn c(port);
    ASSERT_TRUE(c.ok());
    ShardId absent = crypto::MerkleRoot(AsBytes("absent"));
    std::string t = ShardTarget(absent);
    ASSERT_TRUE(c.Send(Request("HEAD", target, {})));
    auto r1 = c.ReadReply(5s, /*to_head=*/true);
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->status, 401);
    ASSERT_TRUE(c.Send(Request("HEAD", t, sign("HEAD", t, EmptyRoot()))));
    auto r2 = c.ReadReply(5s, /*to_head=*/true);
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status, 404);
    ASSERT_TRUE(c.Send(Request("HEAD", target, sign("HEAD", target, EmptyRoot()))));
    auto r3 = c.ReadReply(5s, /*to_head=*/true);
    ASSERT_TRUE(r3);
    EXPECT_EQ(r3->status, 200);
    EXPECT_EQ(r3->Header("Content-Length"), std::to_string(s.data.size()));
    ASSERT_TRUE(c.Send(Request("GET", "/v1/status", {})));
    auto r4 = c.ReadReply(5s);
    ASSERT_TRUE(r4) << "no reply after the HEADs";
    EXPECT_EQ(r4->status, 200) << *r4;
    EXPECT_NE(r4->body.find("\"node_id\""), std::string::npos) << *r4;
  }
  expect(Exchange(port, Request("PUT", target, {}, s.data.size())), 401, "unauthorized",
         "unsigned PUT");
  // A signature that does not verify: one hex digit changed.
  {
    net::Headers h = sign("GET", target, EmptyRoot());
    for (auto& [k, v] : h) {
      if (k == net::kSignatureHeader) v[10] = v[10] == '0' ? '1' : '0';
    }
    expect(Exchange(port, Request("GET", target, h)), 401, "unauthorized", "bad signature");
  }
  // Signed by another key than the one in Shardfs-Key.
  {
    net::Headers h = sign("GET", target, EmptyRoot());
    for (auto& [k, v] : h) {
      if (k == net::kKeyHeader) v = other->public_key().ToHex();
    }
    expect(Exchange(port, Request("GET", target, h)), 401, "unauthorized", "wrong key");
  }
  // Signed for another node, another method, another target.
  expect(Exchange(port, Request("GET", target,
                                net::SignRequest(*key, crypto::NodeIdOf(other->public_key()), "GET",
                                                 target, EmptyRoot(), UnixNow()))),
         401, "unauthorized", "signed for another node");
  expect(Exchange(port, Request("DELETE", target, sign("GET", target, EmptyRoot()))), 401,
         "unauthorized", "signed as GET, sent as DELETE");
  expect(Exchange(port,
                  Request("GET", target,
                          sign("GET", ShardTarget(crypto::MerkleRoot(AsBytes("x"))), EmptyRoot()))),
         401, "unauthorized", "signed for another target");
  // Stale and future times.
  expect(Exchange(port, Request("GET", target, sign("GET", target, EmptyRoot(), UnixNow() - 3600))),
         401, "unauthorized", "stale time");
  expect(Exchange(port, Request("GET", target, sign("GET", target, EmptyRoot(), UnixNow() + 3600))),
         401, "unauthorized", "future time");
  // A replay: the exact same signed request twice.
  {
    std::string req = Request("GET", target, sign("GET", target, EmptyRoot()));
    auto first = Exchange(port, req);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200) << *first;
    EXPECT_EQ(first->body.size(), s.data.size());
    expect(Exchange(port, req), 401, "unauthorized", "replayed GET");
    Shard doomed = MakeShard(5000, 42);
    ASSERT_OK(peer->PutShard(doomed.id, doomed.data, nullptr));
    std::string t = ShardTarget(doomed.id);
    std::string del = Request("DELETE", t, sign("DELETE", t, EmptyRoot()));
    expect(Exchange(port, del), 204, "", "DELETE");
    expect(Exchange(port, del), 401, "unauthorized", "replayed DELETE");  // not 404
  }
  // Ids that are not 64 hex digits, signed so that only the id is wrong.
  for (const std::string& name :
       {std::string(), std::string("../etc/passwd"), std::string(63, 'a'), std::string(300, 'a'),
        std::string(64, 'g'), std::string(65, 'a'), s.id.ToHex() + "/", s.id.ToHex() + "/x"}) {
    std::string t = "/v1/shards/" + name;
    auto r = Exchange(port, Request("GET", t, sign("GET", t, EmptyRoot())));
    ASSERT_TRUE(r) << "id '" << name << "': no reply";
    EXPECT_TRUE(r->status == 400 || r->status == 404) << "id '" << name << "': " << *r;
    ASSERT_OK(peer->GetStatus()) << "after id '" << name << "'";
  }
  for (const std::string& t : {std::string("/../../etc/passwd"), std::string("/v1/../etc/passwd"),
                               std::string("/v1/shards"), std::string("/v2/status")}) {
    auto r = Exchange(port, Request("GET", t, {}));
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->status, 404) << t << ": " << *r;
  }
  {
    std::string t = "/v1/slots/not-a-key";
    expect(Exchange(port, Request("GET", t, sign("GET", t, EmptyRoot()))), 400, "bad_owner",
           "bad owner in slot path");
  }
  ASSERT_TRUE(node.Alive());

  // A body whose Merkle root is not the id it is sent as.
  {
    Shard claimed = MakeShard(150000, 43), sent = MakeShard(150000, 44);
    std::string t = ShardTarget(claimed.id);
    expect(
        Exchange(port, Request("PUT", t, sign("PUT", t, claimed.id), sent.data.size()), sent.data),
        400, "shard_mismatch", "body that is not the id");
    EXPECT_EQ(peer->StatShard(claimed.id).status().code(), Code::kNotFound);
    EXPECT_EQ(peer->PutShard(claimed.id, sent.data, nullptr).code(), Code::kCorruption);
    // Shardfs-Body of a PUT must be the id itself.
    expect(Exchange(port, Request("PUT", t, sign("PUT", t, sent.id), sent.data.size())), 400,
           "body_mismatch", "PUT signed for another body");
  }
  // Above --max-shard-size: refused on the head.
  {
    Shard big = MakeShard(kMiB + 1, 45);
    std::string t = ShardTarget(big.id);
    expect(Exchange(port, Request("PUT", t, sign("PUT", t, big.id), big.data.size())), 413,
           "too_large", "shard above --max-shard-size");
    // Through HttpPeer the answer is OutOfRange, and nothing is stored.
    Status put_big = peer->PutShard(big.id, big.data, nullptr);
    EXPECT_EQ(put_big.code(), Code::kOutOfRange) << put_big.ToString();
    EXPECT_EQ(peer->StatShard(big.id).status().code(), Code::kNotFound);
    Shard at_limit = MakeShard(kMiB, 46);
    EXPECT_OK(peer->PutShard(at_limit.id, at_limit.data, nullptr));
  }
  // A body cut short: Content-Length promises more than arrives, then the client goes away.
  {
    Shard cut = MakeShard(768 * kKiB, 47);
    std::string t = ShardTarget(cut.id);
    RawConn c(port);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.Send(Request("PUT", t, sign("PUT", t, cut.id), cut.data.size())));
    ASSERT_TRUE(c.Send(ByteSpan(cut.data).first(200000)));
    EXPECT_TRUE(WaitUntil([&] { return !FilesUnder(data + "/tmp").empty(); }, 3s))
        << "the node never started receiving the body";
    c.Close();
    EXPECT_TRUE(WaitUntil([&] { return FilesUnder(data + "/tmp").empty(); }, 3s))
        << "partial file left in tmp/";
    EXPECT_FALSE(Exists(ShardFile(data, cut.id)));
    EXPECT_EQ(peer->StatShard(cut.id).status().code(), Code::kNotFound);
  }
  // Ranges outside the shard and malformed ones.
  {
    const std::string n = std::to_string(s.data.size());
    for (const std::string& range :
         {n + "-", n + "-" + n, std::to_string(s.data.size() + 10) + "-", std::string("-0")}) {
      net::Headers h = sign("GET", target, EmptyRoot());
      h.emplace_back("Range", "bytes=" + range);
      auto r = Exchange(port, Request("GET", target, h));
      expect(r, 416, "range_not_satisfiable", "Range bytes=" + range);
      if (r) {
        EXPECT_EQ(r->Header("Content-Range"), "bytes */" + n);
      }
    }
    for (const std::string& range :
         {std::string("bytes=abc"), std::string("bytes=5-2"), std::string("items=0-1"),
          std::string("bytes=0-1,5-6"), std::string("bytes="), std::string("bytes=-"),
          std::string("bytes=+1-2"), std::string("bytes=1-2x"),
          std::string("bytes=99999999999999999999999-")}) {
      net::Headers h = sign("GET", target, EmptyRoot());
      h.emplace_back("Range", range);
      expect(Exchange(port, Request("GET", target, h)), 400, "bad_range", "Range " + range);
    }
  }
  // Slots: a bad signature, another owner's record, a lower or equal sequence.
  {
    ASSERT_OK_AND_ASSIGN(Bytes rec5, backend::SignSlotRecord(*key, 5, ToBytes("five")));
    ASSERT_OK(peer->PutSlot(rec5));
    const std::string t = "/v1/slots/" + key->public_key().ToHex();
    auto put_slot = [&](const Bytes& body) {
      return Exchange(
          port, Request("PUT", t, sign("PUT", t, crypto::MerkleRoot(body)), body.size()), body);
    };
    Bytes forged = rec5;
    forged.back() ^= 1;
    expect(put_slot(forged), 400, "bad_slot_signature", "slot with a bad signature");
    ASSERT_OK_AND_ASSIGN(Bytes foreign, backend::SignSlotRecord(*other, 9, ToBytes("other's")));
    expect(put_slot(foreign), 400, "bad_slot_signature", "another owner's slot record");
    expect(put_slot(ToBytes("not a slot record")), 400, "bad_slot_record", "garbage slot");
    ASSERT_OK_AND_ASSIGN(Bytes rec3, backend::SignSlotRecord(*key, 3, ToBytes("three")));
    expect(put_slot(rec3), 409, "stale_sequence", "lower sequence");
    ASSERT_OK_AND_ASSIGN(Bytes rec5b, backend::SignSlotRecord(*key, 5, ToBytes("five again")));
    expect(put_slot(rec5b), 409, "stale_sequence", "equal sequence");
    // The signed body root must be the body's.
    expect(Exchange(port, Request("PUT", t, sign("PUT", t, crypto::MerkleRoot(rec3)), rec5b.size()),
                    rec5b),
           400, "body_mismatch", "slot body that is not the signed one");
    expect(Exchange(port, Request("PUT", t, {}, rec5.size())), 401, "unauthorized",
           "unsigned slot PUT");
    ASSERT_OK_AND_ASSIGN(auto got, peer->GetSlot());
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, rec5);
  }
  // Malformed HTTP.
  for (const std::string& junk :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
        std::string("GET /v1/status HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
        "GET /v1/status HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"}) {
    auto r = Exchange(port, junk);
    ASSERT_TRUE(r) << junk.substr(0, 30);
    EXPECT_TRUE(r->status >= 400 && r->status < 600) << junk.substr(0, 30) << ": " << *r;
  }

  // After all of it, the node still serves, and nothing partial is left.
  ASSERT_TRUE(node.Alive());
  Shard fin = MakeShard(300000, 48);
  ASSERT_OK(peer->PutShard(fin.id, fin.data, nullptr));
  ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(fin.id, nullptr));
  EXPECT_EQ(back, fin.data);
  ASSERT_OK_AND_ASSIGN(back, peer->GetShard(s.id, nullptr));
  EXPECT_EQ(back, s.data);
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus status, peer->GetStatus());
  EXPECT_EQ(status.shards, 3u);  // s, the 1 MiB one, fin
  EXPECT_EQ(FilesUnder(data + "/shards").size(), 3u);
}

// --- 5. Slowloris and the connection cap ------------------------------------------------------

TEST(NodeIntegrationTest, SlowHeadersAreCutOffWhileOthersAreServed) {
  test::TempDir dir;
  NodeProcess node(dir.path() + "/data",
                   NodeArgs("64M", {"--header-timeout", "1", "--max-connections", "64"}));
  ASSERT_TRUE(node.Start());
  const int baseline = BaselineFds(node.pid());
  ASSERT_GT(baseline, 0);
  constexpr int kSlow = 40;
  std::vector<std::unique_ptr<RawConn>> slow;
  const auto t0 = Clock::now();
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<RawConn>(node.port()));
    ASSERT_TRUE(slow.back()->ok());
    ASSERT_TRUE(slow.back()->Send("GET /v1/sta"));  // and nothing more
  }
  EXPECT_TRUE(WaitUntil([&] { return CountFds(node.pid()) >= baseline + kSlow; }, 2s, 5ms))
      << CountFds(node.pid()) << " fds, baseline " << baseline;

  // A well-behaved client is served meanwhile.
  {
    auto key = NewKey();
    ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key));
    Shard s = MakeShard(100 * kKiB, 51);
    ASSERT_OK(peer->PutShard(s.id, s.data, nullptr));
    ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(s.id, nullptr));
    EXPECT_EQ(back, s.data);
    ASSERT_OK_AND_ASSIGN(backend::PeerStatus st, peer->GetStatus());
    EXPECT_EQ(st.shards, 1u);
    const auto served = Clock::now() - t0;
    int open = 0;
    for (auto& c : slow) open += c->StillOpen() ? 1 : 0;
    // The header timeout (1 s) had not passed for any of them yet.
    EXPECT_EQ(open, kSlow) << "served " << ToMillis(served) << " ms after the slow ones began";
  }

  // Then the node cuts every slow one off without an answer.
  for (size_t i = 0; i < slow.size(); ++i) {
    auto left = t0 + 3s - Clock::now();
    EXPECT_TRUE(slow[i]->WaitClosed(std::max<Clock::duration>(left, 0s)))
        << "slow connection " << i << " still open " << ToMillis(Clock::now() - t0) << " ms in";
  }
  std::printf("40 slow connections closed by %ld ms\n", ToMillis(Clock::now() - t0));
  slow.clear();
  int fds = -1;
  EXPECT_TRUE(WaitUntil(
      [&] {
        fds = CountFds(node.pid());
        return fds >= 0 && fds <= baseline + 2;
      },
      3s))
      << fds << " fds, baseline " << baseline;
  ASSERT_TRUE(node.Alive());
}

TEST(NodeIntegrationTest, ConnectionsOverTheCapGet503) {
  test::TempDir dir;
  constexpr int kCap = 64;
  NodeProcess node(dir.path() + "/data",
                   NodeArgs("64M", {"--header-timeout", "1", "--max-connections", "64"}));
  ASSERT_TRUE(node.Start());
  const int baseline = BaselineFds(node.pid());
  ASSERT_GT(baseline, 0);
  // Idle connections (nothing sent yet) are held for the idle timeout, 60 s by default.
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < kCap; ++i) {
    held.push_back(std::make_unique<RawConn>(node.port()));
    ASSERT_TRUE(held.back()->ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return CountFds(node.pid()) >= baseline + kCap; }, 3s, 5ms))
      << CountFds(node.pid()) << " fds, baseline " << baseline;
  for (int i = 0; i < 3; ++i) {
    RawConn extra(node.port());
    ASSERT_TRUE(extra.ok());
    auto r = extra.ReadReply(3s);  // answered without a request
    ASSERT_TRUE(r) << "extra connection " << i << " got no reply";
    EXPECT_EQ(r->status, 503) << *r;
    EXPECT_EQ(r->Code(), "overloaded");
    EXPECT_EQ(r->Header("Retry-After"), "1");
    EXPECT_TRUE(extra.WaitClosed(2s));
  }
  // The held ones are still served.
  ASSERT_TRUE(held[0]->Send(Request("GET", "/v1/status", {})));
  auto r0 = held[0]->ReadReply(3s);
  ASSERT_TRUE(r0);
  EXPECT_EQ(r0->status, 200) << *r0;
  // Once some close, new connections are served again.
  for (int i = kCap - 4; i < kCap; ++i) held[static_cast<size_t>(i)].reset();
  ASSERT_TRUE(WaitUntil([&] { return CountFds(node.pid()) <= baseline + kCap - 4; }, 3s));
  auto r = Exchange(node.port(), Request("GET", "/v1/status", {}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << *r;
  held.clear();
  EXPECT_TRUE(WaitUntil([&] { return CountFds(node.pid()) <= baseline + 1; }, 3s))
      << CountFds(node.pid()) << " fds, baseline " << baseline;
}

// --- 6. Full disk ------------------------------------------------------------------------------

TEST(NodeIntegrationTest, FullCapacityAnswers507) {
  test::TempDir dir;
  const std::string data = dir.path() + "/data";
  NodeProcess node(data, NodeArgs("3M"));
  ASSERT_TRUE(node.Start());
  auto ka = NewKey(), kb = NewKey();
  ASSERT_OK_AND_ASSIGN(auto a, Connect(node, ka));
  ASSERT_OK_AND_ASSIGN(auto b, Connect(node, kb));
  // LargeBodyRefusedOnItsHeadGetsTheNodesAnswer covers refused shards of several MiB.
  constexpr size_t kShard = 64 * kKiB;
  std::vector<Shard> stored;
  std::optional<Shard> refused;
  for (int i = 0; i < 100 && !refused; ++i) {
    Shard s = MakeShard(kShard, 600 + static_cast<uint64_t>(i));
    Status st = a->PutShard(s.id, s.data, nullptr);
    if (st.ok()) {
      stored.push_back(std::move(s));
    } else {
      ASSERT_EQ(st.code(), Code::kNoSpace) << st.ToString();
      refused = std::move(s);
    }
  }
  ASSERT_TRUE(refused) << "100 PUTs of 64 KiB fit in 3 MiB";
  const uint64_t file_size = backend::ShardStore::FileSize(kShard);
  EXPECT_EQ(stored.size(), 3 * kMiB / file_size);
  {
    std::string t = ShardTarget(refused->id);
    auto r = Exchange(
        node.port(),
        Request("PUT", t, net::SignRequest(*ka, a->node_id(), "PUT", t, refused->id, UnixNow()),
                refused->data.size()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 507) << *r;
    EXPECT_EQ(r->Code(), "insufficient_storage");
  }
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus st, a->GetStatus());
  EXPECT_EQ(st.shards, stored.size());
  EXPECT_EQ(st.used, stored.size() * file_size);
  EXPECT_LE(st.used, 3 * kMiB);
  EXPECT_LT(st.free, file_size);
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
  EXPECT_EQ(FilesUnder(data + "/shards").size(), stored.size());
  for (const Shard& s : stored) {
    ASSERT_OK_AND_ASSIGN(Bytes back, a->GetShard(s.id, nullptr));
    EXPECT_EQ(back, s.data);
  }
  // A lease on bytes the node already has takes no room, even when full.
  EXPECT_OK(b->PutShard(stored[1].id, stored[1].data, nullptr));
  EXPECT_EQ(b->PutShard(refused->id, refused->data, nullptr).code(), Code::kNoSpace);
  // A DELETE frees room for one more.
  ASSERT_OK(a->DeleteShard(stored[0].id));
  ASSERT_OK(a->PutShard(refused->id, refused->data, nullptr));
  ASSERT_OK_AND_ASSIGN(Bytes back, a->GetShard(refused->id, nullptr));
  EXPECT_EQ(back, refused->data);
  Shard one_more = MakeShard(kShard, 700);
  EXPECT_EQ(a->PutShard(one_more.id, one_more.data, nullptr).code(), Code::kNoSpace);
  // Deleting a shard another owner still holds frees nothing.
  ASSERT_OK(a->DeleteShard(stored[1].id));
  EXPECT_EQ(a->PutShard(one_more.id, one_more.data, nullptr).code(), Code::kNoSpace);
  ASSERT_OK(b->DeleteShard(stored[1].id));
  EXPECT_OK(a->PutShard(one_more.id, one_more.data, nullptr));
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
}

// A tmpfs mounted for one test, unmounted on destruction even if the test failed (lazily if a
// plain unmount keeps failing).
class TmpfsMount {
 public:
  TmpfsMount(std::string dir, const std::string& size) : dir_(std::move(dir)) {
    std::string options = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (!mounted_) return;
    for (int i = 0; i < 50; ++i) {
      if (::umount2(dir_.c_str(), 0) == 0) return;
      if (errno != EBUSY) break;
      std::this_thread::sleep_for(20ms);
    }
    if (::umount2(dir_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "cannot unmount " << dir_ << ": " << std::strerror(errno);
    }
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

TEST(NodeIntegrationTest, FullDiskAnswers507) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  test::TempDir dir;
  TmpfsMount mount(dir.path(), "8m");
  if (!mount.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << mount.error();
  const std::string data = dir.path() + "/data";
  NodeProcess node(data, NodeArgs("1G"));  // the disk, not the capacity, is the limit
  ASSERT_TRUE(node.Start());
  auto key = NewKey();
  ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key));
  constexpr size_t kShard = 64 * kKiB;  // as in FullCapacityAnswers507
  std::vector<Shard> stored;
  std::optional<Shard> refused;
  for (int i = 0; i < 200 && !refused; ++i) {
    Shard s = MakeShard(kShard, 800 + static_cast<uint64_t>(i));
    Status st = peer->PutShard(s.id, s.data, nullptr);
    if (st.ok()) {
      stored.push_back(std::move(s));
    } else {
      ASSERT_EQ(st.code(), Code::kNoSpace) << "PUT " << i << ": " << st.ToString();
      refused = std::move(s);
    }
  }
  ASSERT_TRUE(refused) << "200 PUTs of 64 KiB fit in an 8 MiB tmpfs";
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(data.c_str(), &vfs), 0);
  std::printf("tmpfs of 8 MiB full after %zu shards of 64 KiB; %llu bytes left\n", stored.size(),
              static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize);
  EXPECT_GE(stored.size(), 80u);
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
  EXPECT_EQ(FilesUnder(data + "/shards").size(), stored.size());
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus st, peer->GetStatus());
  EXPECT_EQ(st.shards, stored.size());
  EXPECT_LT(st.free, backend::ShardStore::FileSize(kShard));
  for (const Shard& s : stored) {
    ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(s.id, nullptr));
    EXPECT_EQ(back, s.data);
  }
  // Room freed is room to use.
  ASSERT_OK(peer->DeleteShard(stored[0].id));
  ASSERT_OK(peer->DeleteShard(stored[1].id));
  ASSERT_OK(peer->PutShard(refused->id, refused->data, nullptr));
  ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(refused->id, nullptr));
  EXPECT_EQ(back, refused->data);
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
  // A clean stop on a full disk still works.
  auto exit = node.Stop(SIGTERM, 10s);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << test::DescribeWait(*exit);
}

// A PUT the node refuses on its head (413, 507, 401) reaches the client as that answer
// whatever the body's size: the node reads and drops the rest of the body before it closes
// (http_server.cc, Session::Linger), so the kernel never resets the connection under a client
// that is still writing (HttpPeer, through cpp-httplib, reads only after writing all of it).
TEST(NodeIntegrationTest, LargeBodyRefusedOnItsHeadGetsTheNodesAnswer) {
  test::TempDir dir;
  NodeProcess node(dir.path() + "/data", NodeArgs("2M", {"--max-shard-size", "4M"}));
  ASSERT_TRUE(node.Start());
  auto key = NewKey();
  net::HttpPeerOptions o;
  o.retries = 0;
  ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key, o));
  for (int i = 0; i < 5; ++i) {
    Shard full = MakeShard(3 * kMiB, 900 + static_cast<uint64_t>(i));  // over --capacity
    EXPECT_EQ(peer->PutShard(full.id, full.data, nullptr).code(), Code::kNoSpace) << i;
    Shard big = MakeShard(4 * kMiB + 1, 950 + static_cast<uint64_t>(i));  // over the limit
    EXPECT_EQ(peer->PutShard(big.id, big.data, nullptr).code(), Code::kOutOfRange) << i;
  }
}

// --- 7. Concurrent clients ---------------------------------------------------------------------

TEST(NodeIntegrationTest, ConcurrentClientsLeaveNoLeaks) {
  test::TempDir dir;
  NodeProcess node(dir.path() + "/data", NodeArgs("8G"));
  ASSERT_TRUE(node.Start());
  const int baseline = BaselineFds(node.pid());
  ASSERT_GT(baseline, 0);
  NodeId nid;
  {
    ASSERT_OK_AND_ASSIGN(auto probe, Connect(node, NewKey()));
    nid = probe->node_id();
  }
  constexpr int kThreads = 32;
  constexpr size_t kOwnMax = 6, kPoolMax = 48;
  const auto kRunFor = 8s;
  // A shard is named by its seed; its size and bytes follow from it.
  auto size_of = [](uint64_t seed) {
    return static_cast<size_t>(64 * kKiB + SplitMix64Mix(seed) % (960 * kKiB + 1));
  };
  auto bytes_of = [&](uint64_t seed) { return test::PseudoRandomBytes(size_of(seed), seed); };

  auto shared_key = NewKey();
  std::mutex pool_mu;
  std::vector<uint64_t> pool;  // the shared owner's shards; guarded by pool_mu
  std::mutex mu;
  std::vector<std::string> errors;  // guarded by mu
  std::atomic<uint64_t> ops{0}, not_found{0}, own_left{0};
  const auto end = Clock::now() + kRunFor;

  auto worker = [&](int t) {
    const bool shared = t < kThreads / 2;
    auto fail = [&](const std::string& what, const Status& s) {
      std::lock_guard<std::mutex> lock(mu);
      errors.push_back("thread " + std::to_string(t) + " " + what + ": " + s.ToString());
    };
    auto peer = net::HttpPeer::Connect(node.address(), shared ? shared_key : NewKey(), {}, nid);
    if (!peer.ok()) return fail("connect", peer.status());
    std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
    std::vector<uint64_t> own;
    uint64_t next = 0;
    // Picks one of this thread's owner's shards; `take` removes it so no other thread deletes
    // it meanwhile.
    auto pick = [&](bool take) -> std::optional<uint64_t> {
      std::unique_lock<std::mutex> lock(pool_mu, std::defer_lock);
      if (shared) lock.lock();
      std::vector<uint64_t>& list = shared ? pool : own;
      if (list.empty()) return std::nullopt;
      size_t i = rng() % list.size();
      uint64_t seed = list[i];
      if (take) {
        list[i] = list.back();
        list.pop_back();
      }
      return seed;
    };
    auto count = [&] {
      std::unique_lock<std::mutex> lock(pool_mu, std::defer_lock);
      if (shared) lock.lock();
      return shared ? pool.size() : own.size();
    };
    // Reads may race with another thread's DELETE of the shared owner's shard: NotFound then.
    auto read_ok = [&](const Status& s) {
      if (shared && s.code() == Code::kNotFound) {
        ++not_found;
        return true;
      }
      return s.ok();
    };
    while (Clock::now() < end) {
      ++ops;
      int op = static_cast<int>(rng() % 10);
      size_t have = count();
      if (have >= (shared ? kPoolMax : kOwnMax) && op < 3) op = 9;
      if (have == 0) op = 0;
      if (op < 3) {  // PUT a new shard
        uint64_t seed = (static_cast<uint64_t>(t + 1) << 32) | ++next;
        Bytes b = bytes_of(seed);
        Status s = (*peer)->PutShard(crypto::MerkleRoot(b), b, nullptr);
        if (!s.ok()) return fail("PUT", s);
        std::unique_lock<std::mutex> lock(pool_mu, std::defer_lock);
        if (shared) lock.lock();
        (shared ? pool : own).push_back(seed);
      } else if (op < 6) {  // GET a whole shard (checked against its id by HttpPeer)
        auto seed = pick(false);
        if (!seed) continue;
        Bytes want = bytes_of(*seed);
        auto got = (*peer)->GetShard(crypto::MerkleRoot(want), nullptr);
        if (!read_ok(got.status())) return fail("GET", got.status());
        if (got.ok() && *got != want) return fail("GET", Status::Corruption("wrong bytes"));
      } else if (op < 9) {  // read a range (checked through a Merkle proof by HttpPeer)
        auto seed = pick(false);
        if (!seed) continue;
        Bytes want = bytes_of(*seed);
        uint64_t offset = rng() % want.size();
        uint64_t len = std::min<uint64_t>(want.size() - offset, 1 + rng() % (200 * kKiB));
        Bytes out(len);
        Status s = (*peer)->ReadShard(crypto::MerkleRoot(want), offset, out, nullptr);
        if (!read_ok(s)) return fail("range read", s);
        if (s.ok() &&
            !std::equal(out.begin(), out.end(), want.begin() + static_cast<ptrdiff_t>(offset))) {
          return fail("range read", Status::Corruption("wrong bytes"));
        }
      } else {  // DELETE one
        auto seed = pick(true);
        if (!seed) continue;
        Status s = (*peer)->DeleteShard(crypto::MerkleRoot(bytes_of(*seed)));
        if (!s.ok()) return fail("DELETE", s);
      }
    }
    own_left += own.size();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();  // each ends by kRunFor, or at its first error
  {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < std::min<size_t>(errors.size(), 5); ++i) ADD_FAILURE() << errors[i];
  }
  EXPECT_GT(ops.load(), static_cast<uint64_t>(kThreads));

  // The shared owner's remaining shards all read back; the counts add up.
  {
    ASSERT_OK_AND_ASSIGN(auto peer, net::HttpPeer::Connect(node.address(), shared_key, {}, nid));
    for (uint64_t seed : pool) {
      Bytes want = bytes_of(seed);
      ASSERT_OK_AND_ASSIGN(Bytes got, peer->GetShard(crypto::MerkleRoot(want), nullptr));
      EXPECT_EQ(got, want);
    }
    ASSERT_OK_AND_ASSIGN(backend::PeerStatus st, peer->GetStatus());
    EXPECT_EQ(st.shards, pool.size() + own_left.load());
  }
  // With every client gone, the node's descriptors and memory are back down.
  int fds = -1;
  EXPECT_TRUE(WaitUntil(
      [&] {
        fds = CountFds(node.pid());
        return fds >= 0 && fds <= baseline + 3;
      },
      5s))
      << fds << " fds, baseline " << baseline;
  long rss = test::ProcStatusKiB(node.pid(), "VmRSS:");
  std::printf(
      "%llu operations by %d clients in %lld s (%llu NotFound races); node fds %d "
      "(baseline %d), VmRSS %ld KiB\n",
      static_cast<unsigned long long>(ops.load()), kThreads,
      static_cast<long long>(kRunFor.count()), static_cast<unsigned long long>(not_found.load()),
      fds, baseline, rss);
  ASSERT_GT(rss, 0);
  EXPECT_LT(rss, 128 * 1024);
  ASSERT_TRUE(node.Alive());
}

// --- 8. Clean shutdown -------------------------------------------------------------------------

TEST(NodeIntegrationTest, SigtermDuringASlowPutExitsCleanly) {
  test::TempDir dir;
  const std::string data = dir.path() + "/data";
  NodeProcess node(data, NodeArgs("64M", {"--drain-timeout", "1"}));
  ASSERT_TRUE(node.Start());
  auto key = NewKey();
  NodeId nid;
  {
    ASSERT_OK_AND_ASSIGN(auto probe, Connect(node, key));
    nid = probe->node_id();
  }
  Shard s = MakeShard(kMiB, 81);
  std::string t = ShardTarget(s.id);
  RawConn c(node.port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(
      Request("PUT", t, net::SignRequest(*key, nid, "PUT", t, s.id, UnixNow()), s.data.size())));
  ASSERT_TRUE(c.Send(ByteSpan(s.data).first(s.data.size() / 2)));
  // The client pauses; the node is mid-body.
  ASSERT_TRUE(WaitUntil([&] { return !FilesUnder(data + "/tmp").empty(); }, 3s));
  std::this_thread::sleep_for(100ms);

  const auto t0 = Clock::now();
  auto st = node.Stop(SIGTERM, 10s);
  const auto took = Clock::now() - t0;
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << test::DescribeWait(*st);
  std::printf("SIGTERM to exit with a PUT in progress: %ld ms (--drain-timeout 1)\n",
              ToMillis(took));
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(c.WaitClosed(2s));  // the unfinished request was cut, not answered
  EXPECT_TRUE(FilesUnder(data + "/tmp").empty());
  EXPECT_TRUE(FilesUnder(data + "/shards").empty());

  // Nothing of it after a restart either, and the node takes the shard whole.
  ASSERT_TRUE(node.Start());
  ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key));
  EXPECT_EQ(peer->StatShard(s.id).status().code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus status, peer->GetStatus());
  EXPECT_EQ(status.shards, 0u);
  EXPECT_EQ(status.used, 0u);
  ASSERT_OK(peer->PutShard(s.id, s.data, nullptr));
  ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(s.id, nullptr));
  EXPECT_EQ(back, s.data);
}

// --- 9. Damage on the node's disk --------------------------------------------------------------

// The "scrub" object of the node's status, or a null JSON value.
nlohmann::json ScrubStatus(uint16_t port) {
  auto r = Exchange(port, Request("GET", "/v1/status", {}));
  if (!r || r->status != 200) return nullptr;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  return j.is_object() && j.contains("scrub") ? j["scrub"] : nlohmann::json();
}

// A node sends GET bytes as stored: a shard damaged on its disk reaches the client, which
// refuses it. The node's scrub finds it (here in the pass that starts with the node) and drops
// it.
TEST(NodeIntegrationTest, DamagedShardIsRefusedByTheClientAndDroppedByTheScrub) {
  test::TempDir dir;
  const std::string data = dir.path() + "/data";
  NodeProcess node(data, NodeArgs("64M"));
  ASSERT_TRUE(node.Start());
  auto key = NewKey();
  Shard good = MakeShard(3 * kMiB + 5, 91), bad = MakeShard(2 * kMiB + 7, 92);
  {
    ASSERT_OK_AND_ASSIGN(auto peer, Connect(node, key));
    ASSERT_OK(peer->PutShard(good.id, good.data, nullptr));
    ASSERT_OK(peer->PutShard(bad.id, bad.data, nullptr));
    std::fstream f(ShardFile(data, bad.id), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kMiB + 3));
    f.put(static_cast<char>(bad.data[kMiB + 3] ^ 0x40));
    f.close();
    EXPECT_EQ(peer->GetShard(bad.id, nullptr).status().code(), Code::kCorruption);
    ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(good.id, nullptr));
    EXPECT_EQ(back, good.data);
    ASSERT_OK_AND_ASSIGN(backend::PeerStatus st, peer->GetStatus());
    EXPECT_EQ(st.shards, 2u);  // GET did not look
  }
  // The first pass ran at the start, over an empty store; the next is an hour away.
  nlohmann::json scrub = ScrubStatus(node.port());
  EXPECT_EQ(scrub["rate"], 16 * kMiB) << scrub;
  EXPECT_EQ(scrub["passes_completed"], 1) << scrub;
  EXPECT_EQ(scrub["shards_checked"], 0) << scrub;

  auto stopped = node.Stop(SIGTERM, 10s);
  ASSERT_TRUE(stopped);
  NodeProcess again(data, NodeArgs("64M", {"--scrub-rate", "64MiB"}));
  ASSERT_TRUE(again.Start());
  ASSERT_TRUE(WaitUntil(
      [&] {
        scrub = ScrubStatus(again.port());
        return scrub.is_object() && scrub["passes_completed"] == 1;
      },
      30s));
  EXPECT_EQ(scrub["rate"], 64 * kMiB) << scrub;
  EXPECT_EQ(scrub["shards_checked"], 2) << scrub;
  EXPECT_EQ(scrub["damaged_found"], 1) << scrub;
  // The damaged shard is read up to the end of the 1 MiB piece with the damage.
  EXPECT_EQ(scrub["bytes_checked"], good.data.size() + 2 * kMiB) << scrub;
  EXPECT_TRUE(scrub["last_pass_seconds"].is_number()) << scrub;
  ASSERT_OK_AND_ASSIGN(auto peer, Connect(again, key));
  EXPECT_EQ(peer->GetShard(bad.id, nullptr).status().code(), Code::kNotFound);
  EXPECT_FALSE(Exists(ShardFile(data, bad.id)));
  ASSERT_OK_AND_ASSIGN(Bytes back, peer->GetShard(good.id, nullptr));
  EXPECT_EQ(back, good.data);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus st, peer->GetStatus());
  EXPECT_EQ(st.shards, 1u);
}

}  // namespace
}  // namespace shardfs
