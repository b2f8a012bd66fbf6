// HttpServer's other ways to serve: TLS with a self-signed certificate (tls_cert), a unix
// socket, and responses a handler gives later (Dispatch::Later).

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/file.h"
#include "net/http_server.h"
#include "net/tls_cert.h"
#include "tests/testutil.h"

namespace shardfs::net {
namespace {

using namespace std::chrono_literals;

// Answers GET /hello with "hello" (and whether it came on the unix socket), GET /file with
// the bytes of a file region, and GET /later after the test lets it.
class TestHandler : public HttpHandler {
 public:
  explicit TestHandler(std::string file_path) : file_path_(std::move(file_path)) {}

  Dispatch Begin(const HttpRequestHead& head) override {
    HttpResponse r;
    if (head.target == "/hello") {
      r.body = head.local ? "hello local" : "hello";
      return Dispatch::Respond(std::move(r));
    }
    if (head.target == "/file") {
      int fd = ::open(file_path_.c_str(), O_RDONLY | O_CLOEXEC);
      auto owner = std::shared_ptr<const void>(nullptr, [fd](const void*) { ::close(fd); });
      struct stat st;
      ::fstat(fd, &st);
      r.file = FileRegion{fd, 0, static_cast<uint64_t>(st.st_size), owner};
      return Dispatch::Respond(std::move(r));
    }
    if (head.target == "/early") {  // refused on its head, the body unread
      r.status = 403;
      return Dispatch::Respond(std::move(r));
    }
    if (head.target == "/later") {
      return Dispatch::Later([this](Responder respond) {
        std::thread([this, respond] {
          while (!release_.load()) std::this_thread::sleep_for(5ms);
          HttpResponse later;
          later.body = "later";
          respond(std::move(later));
          respond(HttpResponse{});  // only the first call counts
        }).detach();
      });
    }
    r.status = 404;
    return Dispatch::Respond(std::move(r));
  }
  HttpResponse Overloaded() override {
    HttpResponse r;
    r.status = 503;
    return r;
  }

  std::atomic<bool> release_{false};

 private:
  std::string file_path_;
};

class HttpServerModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.path() + "/body";
    body_.resize(3 << 20);
    for (size_t i = 0; i < body_.size(); ++i) body_[i] = static_cast<uint8_t>(i * 7 + i / 4096);
    ASSERT_OK(WriteFileAtomic(file_, body_, 0644));
    handler_ = std::make_unique<TestHandler>(file_);
  }

  test::TempDir dir_;
  std::string file_;
  Bytes body_;
  std::unique_ptr<TestHandler> handler_;
};

TEST_F(HttpServerModesTest, ServesTlsWithAGeneratedCertificate) {
  bool created = false;
  ASSERT_OK_AND_ASSIGN(
      TlsCredentials creds,
      LoadOrCreateCertificate(dir_.path(), "test", {"localhost", "127.0.0.1"}, &created));
  EXPECT_TRUE(created);
  struct stat st;
  ASSERT_EQ(::stat((dir_.path() + "/tls-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The second start reads the same credentials.
  ASSERT_OK_AND_ASSIGN(TlsCredentials again,
                       LoadOrCreateCertificate(dir_.path(), "test", {}, &created));
  EXPECT_FALSE(created);
  EXPECT_EQ(again.cert_pem, creds.cert_pem);
  ASSERT_OK_AND_ASSIGN(std::string fp, CertificateFingerprint(creds.cert_pem));
  EXPECT_EQ(fp.size(), 32u * 3 - 1);

  HttpServerOptions o;
  o.tls = creds;
  HttpServer server(o, handler_.get());
  ASSERT_OK(server.Start());
  httplib::SSLClient client("127.0.0.1", server.port());
  client.enable_server_certificate_verification(false);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto res = client.Get("/hello");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->body, "hello");
  // A file body goes through TLS, not sendfile.
  res = client.Get("/file");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->body.size(), body_.size());
  EXPECT_TRUE(std::equal(body_.begin(), body_.end(), res->body.begin(),
                         [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); }));
  // Plain HTTP to a TLS port gets nothing served.
  httplib::Client plain("127.0.0.1", server.port());
  plain.set_read_timeout(5);
  auto bad = plain.Get("/hello");
  EXPECT_TRUE(!bad || bad->status != 200);
  server.Stop(1s);
}

TEST_F(HttpServerModesTest, RefusesAKeyThatDoesNotMatchItsCertificate) {
  ASSERT_OK_AND_ASSIGN(TlsCredentials a, MakeSelfSignedCertificate("a", {}));
  ASSERT_OK_AND_ASSIGN(TlsCredentials b, MakeSelfSignedCertificate("b", {}));
  ASSERT_OK(WriteFileAtomic(dir_.path() + "/tls-cert.pem", AsBytes(a.cert_pem), 0644));
  ASSERT_OK(WriteFileAtomic(dir_.path() + "/tls-key.pem", AsBytes(b.key_pem), 0600));
  bool created = false;
  auto r = LoadOrCreateCertificate(dir_.path(), "a", {}, &created);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(created);
  EXPECT_EQ(CertificateFingerprint("not a certificate").status().code(), Code::kInvalidArgument);
  HttpServerOptions o;
  o.tls = TlsCredentials{a.cert_pem, "garbage"};
  HttpServer server(o, handler_.get());
  EXPECT_EQ(server.Start().code(), Code::kInvalidArgument);
}

TEST_F(HttpServerModesTest, ServesAUnixSocketAndMarksItsRequestsLocal) {
  HttpServerOptions o;
  o.unix_path = dir_.path() + "/api.sock";
  // A socket file left behind is replaced.
  {
    HttpServer first(o, handler_.get());
    ASSERT_OK(first.Start());
  }
  int stale = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", o.unix_path.c_str());
  ASSERT_EQ(::bind(stale, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(stale);
  HttpServer server(o, handler_.get());
  ASSERT_OK(server.Start());
  struct stat st;
  ASSERT_EQ(::stat(o.unix_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  httplib::Client client(o.unix_path);
  client.set_address_family(AF_UNIX);
  client.set_read_timeout(10);
  auto res = client.Get("/hello");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->body, "hello local");
  res = client.Get("/file");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body.size(), body_.size());
  server.Stop(1s);
  EXPECT_NE(::stat(o.unix_path.c_str(), &st), 0);  // removed at Stop

  // Something else at the path is not removed.
  ASSERT_OK(WriteFileAtomic(o.unix_path, AsBytes("x"), 0644));
  HttpServer refused(o, handler_.get());
  EXPECT_EQ(refused.Start().code(), Code::kAlreadyExists);
}

TEST_F(HttpServerModesTest, AnswersLaterWithoutHoldingAThread) {
  HttpServerOptions o;
  o.threads = 1;
  HttpServer server(o, handler_.get());
  ASSERT_OK(server.Start());
  std::string later;
  std::thread waiter([&] {
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(10);
    auto res = c.Get("/later");
    if (res) later = res->body;
  });
  // While the long poll waits, the one server thread serves other requests.
  std::this_thread::sleep_for(100ms);
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(5);
  for (int i = 0; i < 3; ++i) {
    auto res = c.Get("/hello");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "hello");
  }
  EXPECT_TRUE(later.empty());
  handler_->release_ = true;
  waiter.join();
  EXPECT_EQ(later, "later");
  server.Stop(1s);
}

// A request answered on its head leaves its body unread: the connection is closed after the
// answer (the body drained), never read on as if the body were the next request.
TEST_F(HttpServerModesTest, AnAnswerBeforeTheBodyClosesTheConnection) {
  HttpServerOptions o;
  HttpServer server(o, handler_.get());
  ASSERT_OK(server.Start());
  httplib::Client c("127.0.0.1", server.port());
  c.set_keep_alive(true);
  c.set_read_timeout(5);
  for (int i = 0; i < 3; ++i) {
    auto refused = c.Put("/early", std::string(5000, 'x'), "application/octet-stream");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 403);
    EXPECT_EQ(refused->get_header_value("Connection"), "close");
    auto next = c.Get("/hello");
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->body, "hello");
  }
  server.Stop(1s);
}

}  // namespace
}  // namespace shardfs::net
