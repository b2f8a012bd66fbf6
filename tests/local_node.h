// A storage node inside the test process, for the net/ tests: a ShardStore in a temporary
// folder, a NodeService over it, and an HttpServer on an ephemeral loopback port; plus a raw
// TCP connection for requests a well-behaved client never sends.
//
// Thread safety: a LocalNode is used by one test thread; the server runs its own threads.

#ifndef SHARDFS_TESTS_LOCAL_NODE_H_
#define SHARDFS_TESTS_LOCAL_NODE_H_

#include <chrono>
#include <memory>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/shardstore.h"
#include "crypto/sign.h"
#include "net/address.h"
#include "net/http_server.h"
#include "net/node_service.h"
#include "tests/testutil.h"

namespace shardfs::test {

class LocalNode {
 public:
  explicit LocalNode(net::HttpServerOptions server_options = {}) {
    backend::ShardStoreOptions so;
    so.dir = dir_.path() + "/node";
    so.capacity = 256 << 20;
    so.reserve = 0;
    so.sync = false;
    store_ = backend::ShardStore::Open(so).value();
    service_ =
        std::make_unique<net::NodeService>(store_.get(), node_id(), net::NodeServiceOptions{});
    server_options.address = "127.0.0.1";
    server_options.port = 0;
    server_ = std::make_unique<net::HttpServer>(server_options, service_.get());
    Status s = server_->Start();
    if (!s.ok()) ADD_FAILURE() << s.ToString();
  }
  ~LocalNode() { server_->Stop(std::chrono::milliseconds(1000)); }
  LocalNode(const LocalNode&) = delete;
  LocalNode& operator=(const LocalNode&) = delete;

  net::HostPort address() const { return net::HostPort{"127.0.0.1", server_->port()}; }
  NodeId node_id() const { return crypto::NodeIdOf(key_.public_key()); }
  net::HttpServer& server() { return *server_; }
  backend::ShardStore& store() { return *store_; }
  // The file that holds shard `id`.
  std::string ShardFile(const ShardId& id) const {
    std::string hex = id.ToHex();
    return dir_.path() + "/node/shards/" + hex.substr(0, 2) + "/" + hex;
  }

 private:
  TempDir dir_;
  crypto::SigningKey key_ = crypto::SigningKey::Generate();
  std::unique_ptr<backend::ShardStore> store_;
  std::unique_ptr<net::NodeService> service_;
  std::unique_ptr<net::HttpServer> server_;
};

// A TCP connection to 127.0.0.1:`port`, or -1. `rcvbuf` > 0 sets SO_RCVBUF first (a small
// one makes a client that stops reading fill up quickly).
inline int Dial(uint16_t port, int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the server closes or `limit` passes; returns what arrived.
inline std::string ReadAll(int fd, std::chrono::milliseconds limit) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(limit.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((limit.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_LOCAL_NODE_H_
