#include "net/http_peer.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
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
// its id, a range through the proof of its leaves. The node checks the leaves of a proof, so
// the read of the damaged range also makes it drop the shard.
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
  EXPECT_EQ(peer->ReadShard(id, crypto::kMerkleLeafSize, part, nullptr).code(), Code::kCorruption);
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

}  // namespace
}  // namespace shardfs::net
