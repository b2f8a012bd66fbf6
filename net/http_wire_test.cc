#include "net/http_wire.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shardfs::net::wire {
namespace {

using std::chrono::milliseconds;

// A server on 127.0.0.1 that takes one connection, reads one request head and answers with
// `pieces`, written one by one with `pause` between them, then closes (unless `hold`, in which
// case it keeps the connection open until the test ends).
class ScriptedServer {
 public:
  ScriptedServer(std::vector<std::string> pieces, milliseconds pause = milliseconds(0),
                 bool hold = false)
      : pieces_(std::move(pieces)), pause_(pause), hold_(hold) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "no listening socket";
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    done_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }
  const std::string& request() const { return request_; }

 private:
  void Serve() {
    int c = ::accept(listener_, nullptr, nullptr);
    if (c < 0) return;
    char buf[4096];
    while (request_.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
    }
    for (const std::string& p : pieces_) {
      if (::send(c, p.data(), p.size(), MSG_NOSIGNAL) < 0) break;
      std::this_thread::sleep_for(pause_);
    }
    for (int i = 0; hold_ && !done_ && i < 500; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    ::close(c);
  }

  std::vector<std::string> pieces_;
  milliseconds pause_;
  bool hold_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::string request_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

struct Result {
  Outcome outcome = Outcome::kBroken;
  Answer answer;
  bool head_seen = false;
};

// Connects to `server` and asks it for a range into a buffer of `room` bytes.
Result Get(const ScriptedServer& server, MutableByteSpan into, milliseconds io_timeout,
           uint64_t max_body = 1024) {
  Result r;
  int fd = -1;
  Outcome c = Connect(
      "127.0.0.1", server.port(), milliseconds(2000), [](int) {}, &fd);
  EXPECT_EQ(c, Outcome::kOk);
  if (c != Outcome::kOk) return r;
  r.outcome = Exchange(
      fd, "GET /x HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n", into, max_body, io_timeout,
      [&] { r.head_seen = true; }, [] {}, &r.answer);
  ::close(fd);
  return r;
}

TEST(HttpWireTest, BodyGoesStraightIntoTheBuffer) {
  // The head split mid-line, part of the body with the head, the rest later.
  ScriptedServer server({"HTTP/1.1 206 Partial Content\r\nContent-Ra",
                         "nge: bytes 0-9/100\r\nContent-Length: 10\r\n\r\n0123", "456789"},
                        milliseconds(20));
  Bytes out(10);
  Result r = Get(server, out, milliseconds(2000));
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_TRUE(r.head_seen);
  EXPECT_EQ(r.answer.status, 206);
  EXPECT_EQ(r.answer.content_range, "bytes 0-9/100");
  EXPECT_TRUE(r.answer.into);
  EXPECT_EQ(r.answer.received, 10u);
  EXPECT_TRUE(r.answer.keep_alive);
  EXPECT_EQ(std::string(out.begin(), out.end()), "0123456789");
  EXPECT_NE(server.request().find("Range: bytes=0-9\r\n"), std::string::npos);
}

TEST(HttpWireTest, ErrorAnswerBodyIsKeptApart) {
  const std::string json = R"({"code":"not_found","message":"no such shard"})";
  ScriptedServer server({"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: " +
                         std::to_string(json.size()) + "\r\n\r\n" + json});
  Bytes out(10, 0xee);
  Result r = Get(server, out, milliseconds(2000));
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.answer.status, 404);
  EXPECT_FALSE(r.answer.into);
  EXPECT_FALSE(r.answer.keep_alive);
  EXPECT_EQ(std::string(r.answer.body.begin(), r.answer.body.end()), json);
  EXPECT_EQ(out, Bytes(10, 0xee));  // untouched
}

TEST(HttpWireTest, BodyLongerThanTheRoomIsTooBig) {
  ScriptedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789A"});
  Bytes out(10);
  EXPECT_EQ(Get(server, out, milliseconds(2000)).outcome, Outcome::kTooBig);
  ScriptedServer errors({"HTTP/1.1 500 Oops\r\nContent-Length: 2000\r\n\r\n"});
  EXPECT_EQ(Get(errors, out, milliseconds(2000), /*max_body=*/1024).outcome, Outcome::kTooBig);
}

TEST(HttpWireTest, MalformedAnswersAreRefused) {
  Bytes out(10);
  {
    ScriptedServer server({"SMTP ready\r\n\r\n"});
    EXPECT_EQ(Get(server, out, milliseconds(2000)).outcome, Outcome::kMalformed);
  }
  {
    ScriptedServer server({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"});
    EXPECT_EQ(Get(server, out, milliseconds(2000)).outcome, Outcome::kMalformed);
  }
  {
    ScriptedServer server({"HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a') + "\r\n\r\n"});
    EXPECT_EQ(Get(server, out, milliseconds(2000)).outcome, Outcome::kMalformed);
  }
}

TEST(HttpWireTest, CutOffBodyIsBroken) {
  ScriptedServer server({"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n01234"});
  Bytes out(10);
  Result r = Get(server, out, milliseconds(2000));
  EXPECT_EQ(r.outcome, Outcome::kBroken);
  EXPECT_EQ(r.answer.received, 5u);
}

TEST(HttpWireTest, SilentServerStalls) {
  ScriptedServer server({"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n01"},
                        milliseconds(0), /*hold=*/true);
  Bytes out(10);
  const auto start = std::chrono::steady_clock::now();
  Result r = Get(server, out, milliseconds(200));
  EXPECT_EQ(r.outcome, Outcome::kStalled);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(190));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
}

TEST(HttpWireTest, ShutDownSocketEndsTheExchange) {
  ScriptedServer server({}, milliseconds(0), /*hold=*/true);
  int fd = -1;
  int adopted = -1;
  ASSERT_EQ(Connect(
                "127.0.0.1", server.port(), milliseconds(2000), [&](int s) { adopted = s; }, &fd),
            Outcome::kOk);
  EXPECT_EQ(adopted, fd);
  std::thread stopper([fd] {
    std::this_thread::sleep_for(milliseconds(100));
    ::shutdown(fd, SHUT_RDWR);
  });
  Answer a;
  Bytes out(10);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Exchange(
                fd, "GET / HTTP/1.1\r\n\r\n", out, 1024, milliseconds(30000), [] {}, [] {}, &a),
            Outcome::kBroken);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  stopper.join();
  ::close(fd);
}

// A connection the server closed is not reused; an open, quiet one is.
TEST(HttpWireTest, ClosedConnectionsAreNotReusable) {
  int fd = -1;
  {
    ScriptedServer server({"HTTP/1.1 206 Partial Content\r\nContent-Length: 2\r\n\r\nab"},
                          milliseconds(0), /*hold=*/true);
    ASSERT_EQ(Connect(
                  "127.0.0.1", server.port(), milliseconds(2000), [](int) {}, &fd),
              Outcome::kOk);
    Answer a;
    Bytes out(2);
    ASSERT_EQ(Exchange(
                  fd, "GET / HTTP/1.1\r\n\r\n", out, 1024, milliseconds(2000), [] {}, [] {}, &a),
              Outcome::kOk);
    EXPECT_TRUE(Reusable(fd));
  }  // the server closes its end
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {
    closed = !Reusable(fd);
    if (!closed) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(closed);
  ::close(fd);
}

TEST(HttpWireTest, RefusedConnection) {
  // A port nothing listens on: take one and close it.
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(s);
  int fd = 0;
  EXPECT_EQ(Connect(
                "127.0.0.1", ntohs(a.sin_port), milliseconds(2000), [](int) {}, &fd),
            Outcome::kRefused);
  EXPECT_EQ(fd, -1);
}

}  // namespace
}  // namespace shardfs::net::wire
