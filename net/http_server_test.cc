// HttpServer with file-region bodies (sendfile), over loopback against a NodeService: the
// bytes on the wire, keep-alive after such a response, deadlines on a client that stops
// reading, a file cut short behind the store's back, and draining on Stop.

#include "net/http_server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "crypto/merkle.h"
#include "net/auth.h"
#include "net/http_peer.h"
#include "tests/local_node.h"

namespace shardfs::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::Dial;
using test::LocalNode;

struct Reply {
  int status = 0;
  std::string head;
  uint64_t content_length = 0;
  std::string body;
  bool closed = false;  // the connection closed before the whole body arrived
};

// One client connection; every read is bounded by a deadline.
class Client {
 public:
  explicit Client(uint16_t port, int rcvbuf = 0) : fd_(Dial(port, rcvbuf)) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  bool ok() const { return fd_ >= 0; }

  bool Send(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads a response head; nullopt if the connection closed or `limit` passed first.
  std::optional<Reply> ReadHead(Clock::duration limit = 10s) {
    auto deadline = Clock::now() + limit;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return std::nullopt;
    }
    Reply r;
    r.head = buf_.substr(0, end + 4);
    buf_.erase(0, end + 4);
    r.status = std::atoi(r.head.c_str() + 9);
    size_t cl = r.head.find("Content-Length: ");
    if (cl != std::string::npos)
      r.content_length = std::strtoull(r.head.c_str() + cl + 16, nullptr, 10);
    return r;
  }
  // Reads the body of `r` (Content-Length bytes), or what arrives before the connection closes
  // or `limit` passes.
  void ReadBody(Reply* r, Clock::duration limit = 10s) {
    auto deadline = Clock::now() + limit;
    while (buf_.size() < r->content_length) {
      if (!Fill(deadline)) {
        r->closed = true;
        break;
      }
    }
    size_t n = std::min<size_t>(buf_.size(), r->content_length);
    r->body = buf_.substr(0, n);
    buf_.erase(0, n);
  }
  std::optional<Reply> Exchange(const std::string& request, bool head_only = false) {
    if (!Send(request)) return std::nullopt;
    auto r = ReadHead();
    if (r && !head_only) ReadBody(&*r);
    return r;
  }
  // True if the server closes the connection (or resets it) within `limit`, discarding what
  // else it sends.
  bool WaitClosed(Clock::duration limit) {
    auto deadline = Clock::now() + limit;
    while (Fill(deadline)) buf_.clear();
    return closed_;
  }

 private:
  // Reads what is there, waiting up to `deadline`; false on close, error or time out.
  bool Fill(Clock::time_point deadline) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int pr = ::poll(&p, 1, static_cast<int>(left.count()));
      if (pr <= 0) continue;
      char tmp[65536];
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n <= 0) {
        closed_ = true;
        return false;
      }
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_;
  std::string buf_;
  bool closed_ = false;
};

class SendfileTest : public ::testing::Test {
 protected:
  explicit SendfileTest(HttpServerOptions o = {}) : node_(o) {}

  // Stores `data` as a shard of our owner through the HTTP client; returns its id.
  ShardId Store(const Bytes& data) {
    ShardId id = crypto::MerkleRoot(data);
    auto peer = HttpPeer::Connect(node_.address(), key_, {});
    EXPECT_OK(peer);
    if (peer.ok()) {
      EXPECT_OK((*peer)->PutShard(id, data, nullptr));
    }
    return id;
  }
  // A signed GET (or HEAD) of shard `id`, with a Range header if `range` is not empty.
  std::string Get(const ShardId& id, const std::string& range = "",
                  const std::string& method = "GET") {
    std::string target = "/v1/shards/" + id.ToHex();
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] :
         SignRequest(*key_, node_.node_id(), method, target, EmptyBodyRoot(), ::time(nullptr))) {
      r += k + ": " + v + "\r\n";
    }
    if (!range.empty()) r += "Range: " + range + "\r\n";
    return r + "\r\n";
  }
  static std::string Slice(const Bytes& data, uint64_t begin, uint64_t end) {
    return std::string(data.begin() + static_cast<ptrdiff_t>(begin),
                       data.begin() + static_cast<ptrdiff_t>(end));
  }

  LocalNode node_;
  std::shared_ptr<crypto::SigningKey> key_ =
      std::make_shared<crypto::SigningKey>(crypto::SigningKey::Generate());
};

// Whole shards and ranges are exactly the stored bytes, several responses in a row on one
// keep-alive connection, a shard large enough to take many sendfile steps included.
TEST_F(SendfileTest, WholeAndRangeGetsAreTheStoredBytesOnOneConnection) {
  const uint64_t leaf = crypto::kMerkleLeafSize;
  Bytes small = test::PseudoRandomBytes(5 * leaf + 1234, 1);  // a short last leaf
  Bytes big = test::PseudoRandomBytes((9 << 20) + 17, 2);
  ShardId small_id = Store(small), big_id = Store(big);
  Client c(node_.address().port);
  ASSERT_TRUE(c.ok());
  struct Case {
    const ShardId* id;
    const Bytes* data;
    std::string range;
    uint64_t begin, end;
  };
  const uint64_t n = small.size();
  for (const Case& k : {
           Case{&small_id, &small, "", 0, n},
           Case{&small_id, &small, "bytes=0-0", 0, 1},
           Case{&small_id, &small, "bytes=" + std::to_string(n - 1) + "-", n - 1, n},
           Case{&small_id, &small, "bytes=-1234", n - 1234, n},  // the last, partial leaf
           Case{&small_id, &small, "bytes=65535-65536", leaf - 1, leaf + 1},
           Case{&small_id, &small, "bytes=70000-999999", 70000, n},
           Case{&big_id, &big, "", 0, big.size()},
           Case{&big_id, &big, "bytes=3000000-8000000", 3000000, 8000001},
           Case{&small_id, &small, "bytes=12345-12345", 12345, 12346},
       }) {
    auto r = c.Exchange(Get(*k.id, k.range));
    ASSERT_TRUE(r.has_value()) << k.range;
    EXPECT_EQ(r->status, k.range.empty() ? 200 : 206) << k.range;
    EXPECT_EQ(r->content_length, k.end - k.begin) << k.range;
    ASSERT_FALSE(r->closed) << k.range;
    EXPECT_TRUE(r->body == Slice(*k.data, k.begin, k.end)) << k.range;
  }
  // HEAD sends no body, and the connection still carries the next request.
  auto head = c.Exchange(Get(small_id, "", "HEAD"), /*head_only=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->content_length, n);
  auto status = c.Exchange("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->status, 200);
  EXPECT_NE(status->body.find("\"scrub\""), std::string::npos);
}

class SendfileDeadlineTest : public SendfileTest {
 protected:
  static HttpServerOptions Options() {
    HttpServerOptions o;
    o.io_timeout = 500ms;
    return o;
  }
  SendfileDeadlineTest() : SendfileTest(Options()) {}
};

// A client that stops reading mid-body is cut off after io_timeout; others are served
// meanwhile, on the same threads.
TEST_F(SendfileDeadlineTest, ClientThatStopsReadingIsCutOff) {
  Bytes data = test::PseudoRandomBytes(16 << 20, 3);
  ShardId id = Store(data);
  Client stalled(node_.address().port, /*rcvbuf=*/16 * 1024);
  ASSERT_TRUE(stalled.ok());
  ASSERT_TRUE(stalled.Send(Get(id)));
  auto head = stalled.ReadHead();
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  auto peer = HttpPeer::Connect(node_.address(), key_, {});
  ASSERT_OK(peer);
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(Bytes got, (*peer)->GetShard(id, nullptr));
    EXPECT_TRUE(got == data);
  }
  std::this_thread::sleep_for(1500ms);  // three times io_timeout without reading
  stalled.ReadBody(&*head, 5s);
  EXPECT_TRUE(head->closed);
  EXPECT_LT(head->body.size(), data.size());
  EXPECT_TRUE(head->body == Slice(data, 0, head->body.size()));
  ASSERT_OK_AND_ASSIGN(Bytes again, (*peer)->GetShard(id, nullptr));
  EXPECT_TRUE(again == data);
}

// A shard file cut short on the disk after the store opened it: the client gets a short body
// and a closed connection, not a hang and not other bytes.
TEST_F(SendfileDeadlineTest, FileTruncatedBehindTheStoresBackGivesAShortBody) {
  Bytes data = test::PseudoRandomBytes(16 << 20, 4);
  ShardId id = Store(data);
  Client c(node_.address().port, /*rcvbuf=*/16 * 1024);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(Get(id)));
  auto r = c.ReadHead();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->content_length, data.size());
  std::this_thread::sleep_for(100ms);  // the node fills the socket, then waits
  ASSERT_EQ(::truncate(node_.ShardFile(id).c_str(), 8 << 20), 0);
  auto start = Clock::now();
  c.ReadBody(&*r, 10s);
  EXPECT_TRUE(r->closed);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_LE(r->body.size(), uint64_t{8} << 20);
  EXPECT_TRUE(r->body == Slice(data, 0, r->body.size()));
  // The node goes on; the cut file is found damaged at the next open and dropped.
  auto peer = HttpPeer::Connect(node_.address(), key_, {});
  ASSERT_OK(peer);
  EXPECT_EQ((*peer)->GetShard(id, nullptr).status().code(), Code::kCorruption);
  EXPECT_EQ((*peer)->GetShard(id, nullptr).status().code(), Code::kNotFound);
}

// Stop lets a sendfile response in progress finish, then closes the connection.
TEST_F(SendfileTest, StopDrainsAResponseInProgress) {
  Bytes data = test::PseudoRandomBytes(16 << 20, 5);
  ShardId id = Store(data);
  Client c(node_.address().port, /*rcvbuf=*/16 * 1024);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(Get(id)));
  auto r = c.ReadHead();
  ASSERT_TRUE(r.has_value());
  std::this_thread::sleep_for(100ms);
  std::thread stopper([&] { node_.server().Stop(10s); });
  std::this_thread::sleep_for(200ms);  // Stop is waiting for the response now
  c.ReadBody(&*r, 20s);
  stopper.join();
  EXPECT_FALSE(r->closed);
  EXPECT_TRUE(r->body == Slice(data, 0, data.size()));
  EXPECT_TRUE(c.WaitClosed(5s));
  EXPECT_EQ(node_.server().connections(), 0u);
}

}  // namespace
}  // namespace shardfs::net
