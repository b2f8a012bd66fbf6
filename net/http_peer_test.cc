#include "net/http_peer.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http_server.h"
#include "net/node_service.h"
#include "tests/local_node.h"
#include "tests/peer_conformance.h"

namespace shardfs::net {
namespace {

using test::Dial;
using test::LocalNode;
using test::ReadAll;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A loopback port whose listener takes connections in the kernel and never accepts or reads
// them: a node whose process is stopped (SIGSTOP) looks like this from outside. With a
// backlog of 0 and its queue filled, further connects are not even completed (SYNs dropped),
// as with a host that is gone.
class SilentListener {
 public:
  explicit SilentListener(int backlog = 128) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;  // a body sent to it stalls soon
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(::listen(fd_, backlog), 0);
  }
  ~SilentListener() {
    for (int fd : fillers_) ::close(fd);
    ::close(fd_);
  }
  HostPort address() const { return HostPort{"127.0.0.1", port_}; }

  // Fills the accept queue, then returns true if a further connect stays pending.
  bool FillQueue() {
    for (int i = 0; i < 4; ++i) fillers_.push_back(StartConnect());
    std::this_thread::sleep_for(200ms);
    int probe = StartConnect();
    fillers_.push_back(probe);
    pollfd p{probe, POLLOUT, 0};
    return ::poll(&p, 1, 300) == 0;
  }

 private:
  int StartConnect() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    return fd;
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

// A loopback HTTP server that reads each request's head and lets `answer(n, head, fd)` write
// the answer to the n-th request (0, 1, ...; false: close the connection). One connection at a
// time, which is all these tests need.
class ScriptedServer {
 public:
  using Answer = std::function<bool(int n, const std::string& head, int fd)>;
  explicit ScriptedServer(Answer answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  HostPort address() const { return HostPort{"127.0.0.1", port_}; }
  int requests() const { return requests_; }

 private:
  // Waits up to 50 ms for fd to be readable.
  bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }
  void Loop() {
    while (!stop_) {
      if (!Readable(fd_)) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      bool open = true;
      while (open && !stop_) {
        size_t end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
          std::string head = in.substr(0, end + 4);
          in.erase(0, end + 4);
          open = answer_(requests_++, head, c);
          continue;
        }
        if (!Readable(c)) continue;
        char buf[4096];
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      ::close(c);
    }
  }

  Answer answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

bool SendAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A peer for the node at `address` whose id is given (so Connect sends nothing).
std::unique_ptr<HttpPeer> PeerAt(const HostPort& address, HttpPeerOptions o) {
  std::array<uint8_t, 32> id{};
  id[0] = 7;
  auto key = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  return HttpPeer::Connect(address, key, o, NodeId(id)).value();
}

template <typename F>
std::chrono::milliseconds Timed(F&& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

class HttpPeerUnderTest : public test::PeerUnderTest {
 public:
  HttpPeerUnderTest() : key_(std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate())) {
    peer_ = HttpPeer::Connect(node_.address(), key_, HttpPeerOptions{}).value();
  }
  backend::Peer& peer() override { return *peer_; }
  const crypto::SigningKey& owner() override { return *key_; }

 private:
  LocalNode node_;
  std::shared_ptr<crypto::SigningKey> key_;
  std::unique_ptr<HttpPeer> peer_;
};

using test::PeerConformanceTest;
INSTANTIATE_TEST_SUITE_P(Http, PeerConformanceTest, ::testing::Values([] {
                           return std::unique_ptr<test::PeerUnderTest>(new HttpPeerUnderTest);
                         }),
                         [](const auto&) { return std::string("node"); });

// A range read on a pooled connection the node closed while it sat idle opens a new one at
// once: no failed attempt, no retry pause.
TEST(HttpPeerTest, RangeReadAfterTheNodeClosedAnIdleConnection) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  LocalNode node(o);
  auto key = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  ASSERT_OK_AND_ASSIGN(auto peer, HttpPeer::Connect(node.address(), key, {}));
  Bytes data = test::PseudoRandomBytes(100000, 9);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(peer->PutShard(id, data, nullptr));
  Bytes part(1000);
  ASSERT_OK(peer->ReadShard(id, 500, part, nullptr));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the node closes it
  const auto start = Clock::now();
  ASSERT_OK(peer->ReadShard(id, 2000, part, nullptr));
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(90));  // a retry pauses >= 100 ms
  EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + 2000));
}

TEST(HttpServerTest, SlowHeadersAreCutOff) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  o.idle_timeout = std::chrono::milliseconds(5000);
  LocalNode node(o);
  int fd = Dial(node.address().port);
  ASSERT_GE(fd, 0);
  ASSERT_GT(::send(fd, "GET /v1/sta", 11, MSG_NOSIGNAL), 0);
  auto start = std::chrono::steady_clock::now();
  std::string got = ReadAll(fd, std::chrono::milliseconds(3000));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(got, "");  // closed without an answer
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  ::close(fd);
}

TEST(HttpServerTest, OverTheConnectionCapIs503) {
  HttpServerOptions o;
  o.max_connections = 2;
  LocalNode node(o);
  int a = Dial(node.address().port);
  int b = Dial(node.address().port);
  // Let the server count them before the third arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int c = Dial(node.address().port);
  std::string got = ReadAll(c, std::chrono::milliseconds(2000));
  EXPECT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << got;
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST(HttpServerTest, TruncatedPutLeavesNothing) {
  LocalNode node;
  auto key = crypto::SigningKey::Generate();
  Bytes data = test::PseudoRandomBytes(1 << 20, 1);
  ShardId id = crypto::MerkleRoot(data);
  auto status = [&] {
    return HttpPeer::Connect(node.address(), std::make_shared<crypto::SigningKey>(key), {});
  };
  ASSERT_OK_AND_ASSIGN(auto peer, status());
  std::string target = "/v1/shards/" + id.ToHex();
  std::string req = "PUT " + target +
                    " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(data.size()) +
                    "\r\n";
  for (auto& [k, v] : SignRequest(key, peer->node_id(), "PUT", target, id, ::time(nullptr))) {
    req += k + ": " + v + "\r\n";
  }
  req += "\r\n";
  int fd = Dial(node.address().port);
  ASSERT_GT(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), 0);
  ASSERT_GT(::send(fd, data.data(), data.size() / 2, MSG_NOSIGNAL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::close(fd);
  // The server notices the close and drops the partial shard.
  for (int i = 0; i < 100 && node.server().connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(node.store().Stats().shards, 0u);
  EXPECT_EQ(peer->StatShard(id).status().code(), Code::kNotFound);
  // The node still serves.
  EXPECT_OK(peer->PutShard(id, data, nullptr));
  EXPECT_OK(peer->GetShard(id, nullptr));
}

TEST(HttpServerTest, MalformedRequestsGet400AndTheNodeGoesOn) {
  LocalNode node;
  for (std::string junk :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
        std::string("GET /v1/status HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
        "GET /v1/status HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"}) {
    int fd = Dial(node.address().port);
    ASSERT_GT(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 0);
    std::string got = ReadAll(fd, std::chrono::milliseconds(2000));
    EXPECT_TRUE(got.rfind("HTTP/1.1 4", 0) == 0 || got.rfind("HTTP/1.1 5", 0) == 0)
        << junk.substr(0, 40) << " -> " << got;
    ::close(fd);
  }
  auto key = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  ASSERT_OK_AND_ASSIGN(auto peer, HttpPeer::Connect(node.address(), key, {}));
  EXPECT_OK(peer->GetStatus());
}

// A node sends GET bytes as stored, unchecked; the client checks them: a whole shard against
// its id. A range read is the caller's to check (the chunk's AEAD), and the proof of its
// leaves shows the damage. The node checks the leaves of a proof, so the proof request also
// makes it drop the shard.
TEST(HttpPeerTest, DamagedShardIsCaughtByTheClient) {
  LocalNode node;
  auto key = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  ASSERT_OK_AND_ASSIGN(auto peer, HttpPeer::Connect(node.address(), key, {}));
  Bytes data = test::PseudoRandomBytes(3 * crypto::kMerkleLeafSize + 100, 7);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(peer->PutShard(id, data, nullptr));
  {
    FILE* f = std::fopen(node.ShardFile(id).c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, crypto::kMerkleLeafSize + 5, SEEK_SET);
    std::fputc(data[crypto::kMerkleLeafSize + 5] ^ 0x01, f);
    std::fclose(f);
  }
  EXPECT_EQ(peer->GetShard(id, nullptr).status().code(), Code::kCorruption);
  EXPECT_EQ(node.store().Stats().shards, 1u);  // the node did not look
  Bytes part(1000);
  ASSERT_OK(peer->ReadShard(id, 2 * crypto::kMerkleLeafSize, part, nullptr));
  EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + 2 * crypto::kMerkleLeafSize));
  // The damaged range comes as stored: unchecked.
  ASSERT_OK(peer->ReadShard(id, crypto::kMerkleLeafSize, part, nullptr));
  EXPECT_EQ(part[5], data[crypto::kMerkleLeafSize + 5] ^ 0x01);
  EXPECT_EQ(node.store().Stats().shards, 1u);
  EXPECT_EQ(peer->ProveShard(id, 1, 1).status().code(), Code::kCorruption);
  EXPECT_EQ(peer->GetShard(id, nullptr).status().code(), Code::kNotFound);
  EXPECT_EQ(node.store().Stats().shards, 0u);
}

TEST(HttpPeerTest, UnreachableNodeIsUnavailable) {
  HttpPeerOptions o;
  o.retries = 1;
  o.backoff = std::chrono::milliseconds(1);
  // A port nobody listens on: bind one, note it, close it.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  auto key = std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
  auto peer = HttpPeer::Connect(HostPort{"127.0.0.1", ntohs(a.sin_port)}, key, o);
  EXPECT_EQ(peer.status().code(), Code::kUnavailable);
}

// A stopped node: every kind of request fails with DeadlineExceeded once answer_timeout has
// passed without the head of an answer, and is not tried again (retries are for quick
// failures). Before, each waited io_timeout, three times: a minute and a half by default.
TEST(HttpPeerTest, AStoppedNodeCostsARequestOneAnswerTimeout) {
  SilentListener stopped;
  HttpPeerOptions o;
  o.answer_timeout = 1000ms;  // io_timeout and retries keep their defaults (30 s, 2)
  auto peer = PeerAt(stopped.address(), o);
  const ShardId id = crypto::MerkleRoot(test::PseudoRandomBytes(100, 1));
  std::vector<std::pair<std::string, std::function<Status()>>> calls = {
      {"ReadShard",
       [&] {
         Bytes out(100);
         return peer->ReadShard(id, 0, out, nullptr);
       }},
      {"GetShard", [&] { return peer->GetShard(id, nullptr).status(); }},
      {"StatShard", [&] { return peer->StatShard(id).status(); }},
      {"GetStatus", [&] { return peer->GetStatus().status(); }},
  };
  for (auto& entry : calls) {
    const std::string& what = entry.first;
    const std::function<Status()>& call = entry.second;
    Status s;
    auto took = Timed([&] { s = call(); });
    EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << what << ": " << s.ToString();
    EXPECT_NE(s.message().find("no answer within 1000 ms"), std::string::npos) << s.ToString();
    EXPECT_GE(took, 900ms) << what;
    EXPECT_LT(took, 2500ms) << what;  // one attempt: a retry would take it past 3 s
  }
}

// A PUT to a stopped node: a small body goes out into the node's kernel, and the answer
// deadline runs from there; a large one stalls, and fails after io_timeout without progress.
// Neither is tried again.
TEST(HttpPeerTest, APutToAStoppedNodeFailsAtItsDeadlines) {
  SilentListener stopped;
  HttpPeerOptions o;
  o.answer_timeout = 1000ms;
  o.io_timeout = 1500ms;
  auto peer = PeerAt(stopped.address(), o);
  Bytes small = test::PseudoRandomBytes(4096, 2);
  Status s;
  auto took = Timed([&] { s = peer->PutShard(crypto::MerkleRoot(small), small, nullptr); });
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.ToString();
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2500ms);
  Bytes large = test::PseudoRandomBytes(16 << 20, 3);
  const ShardId id = crypto::MerkleRoot(large);
  took = Timed([&] { s = peer->PutShard(id, large, nullptr); });
  // "made no progress for 1500 ms", unless the kernel's buffers took the whole body.
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.ToString();
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 4000ms);  // a retry would take it past 4.5 s
}

// A read that `peer` keeps waiting, cancelled 300 ms in: Cancel returns at once, and so does
// the read, with Cancelled.
void ExpectACancelEndsARead(HttpPeer& peer, uint64_t seed) {
  const ShardId id = crypto::MerkleRoot(test::PseudoRandomBytes(100, seed));
  CancelToken cancel;
  Status s;
  Clock::time_point ended;
  std::thread reader([&] {
    Bytes out(100);
    s = peer.ReadShard(id, 0, out, &cancel);
    ended = Clock::now();
  });
  std::this_thread::sleep_for(300ms);
  const auto cancelled_at = Clock::now();
  EXPECT_LT(Timed([&] { cancel.Cancel(); }), 250ms);
  reader.join();
  EXPECT_EQ(s.code(), Code::kCancelled) << s.ToString();
  EXPECT_LT(ended - cancelled_at, 1000ms);
}

// Cancelling a request that waits on a stopped node ends it at once, and Cancel itself does
// not wait.
TEST(HttpPeerTest, CancelEndsARequestToAStoppedNodeAtOnce) {
  SilentListener stopped;
  HttpPeerOptions o;
  o.answer_timeout = 30s;
  auto peer = PeerAt(stopped.address(), o);
  ExpectACancelEndsARead(*peer, 4);
}

// While a connect hangs (the node's host drops SYNs), a cancel neither blocks the canceller
// (httplib's stop() would, until the connect timed out) nor leaves the request running; and
// the answer deadline counts the connect in.
TEST(HttpPeerTest, ACancelOrDeadlineDuringAConnectEndsItAtOnce) {
  SilentListener gone(0);
  if (!gone.FillQueue()) GTEST_SKIP() << "connects to a full listen queue complete here";
  HttpPeerOptions o;
  o.connect_timeout = 20s;
  o.answer_timeout = 30s;
  auto peer = PeerAt(gone.address(), o);
  ExpectACancelEndsARead(*peer, 5);

  o.answer_timeout = 500ms;
  auto impatient = PeerAt(gone.address(), o);
  Status s;
  auto took = Timed([&] { s = impatient->GetStatus().status(); });
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.ToString();
  EXPECT_LT(took, 2000ms);
}

// A slow node that answers at once but sends its body slowly (longer in all than
// answer_timeout) still delivers a large shard: only the head has to come within it.
TEST(HttpPeerTest, ASlowNodeStillDeliversALargeShard) {
  const Bytes data = test::PseudoRandomBytes(1 << 20, 6);
  ScriptedServer slow([&](int, const std::string&, int fd) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(data.size()) +
                       "\r\nContent-Type: application/octet-stream\r\n\r\n";
    if (!SendAll(fd, head.data(), head.size())) return false;
    const size_t piece = data.size() / 8;
    for (size_t at = 0; at < data.size(); at += piece) {
      std::this_thread::sleep_for(200ms);
      if (!SendAll(fd, data.data() + at, std::min(piece, data.size() - at))) return false;
    }
    return true;
  });
  HttpPeerOptions o;
  o.answer_timeout = 500ms;
  o.io_timeout = 5s;
  auto peer = PeerAt(slow.address(), o);
  Result<Bytes> got = Status::Unavailable("not run");
  auto took = Timed([&] { got = peer->GetShard(crypto::MerkleRoot(data), nullptr); });
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, data);
  EXPECT_GE(took, 1500ms);  // it was slow
}

// Failures that come quickly (here a connection closed without an answer) are still tried
// again.
TEST(HttpPeerTest, AQuickFailureIsTriedAgain) {
  const Bytes data = test::PseudoRandomBytes(5000, 8);
  ScriptedServer flaky([&](int n, const std::string&, int fd) {
    if (n == 0) return false;  // closed without a word
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(data.size()) + "\r\n\r\n";
    return SendAll(fd, head.data(), head.size()) && SendAll(fd, data.data(), data.size());
  });
  HttpPeerOptions o;
  o.backoff = 10ms;
  auto peer = PeerAt(flaky.address(), o);
  ASSERT_OK_AND_ASSIGN(Bytes got, peer->GetShard(crypto::MerkleRoot(data), nullptr));
  EXPECT_EQ(got, data);
  EXPECT_EQ(flaky.requests(), 2);
}

}  // namespace
}  // namespace shardfs::net
