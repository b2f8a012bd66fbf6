#include "net/http_server.h"

#include <cerrno>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/logging.h"
#include "base/version.h"
#include "net/http_parse.h"

namespace shardfs::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

// The three kinds of connection a server serves: TCP, TCP with TLS, and a unix socket.
using TcpStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using LocalStream = beast::basic_stream<local>;

namespace {
// Beast reads into its dynamic buffer in steps bounded by the buffer's free capacity; a
// small buffer means 512-byte reads (MEASURED.md: 332 MB/s instead of 944 MB/s).
constexpr size_t kReadBufferReserve = 64 * 1024;
// What an idle keep-alive connection reads its next request's first bytes into.
constexpr size_t kIdleReadBytes = 1024;
// Draining an unread request body before closing (Session::Linger): at most this long in
// all, and until the client pauses this long.
constexpr auto kLingerTotal = std::chrono::seconds(10);
constexpr auto kLingerIdle = std::chrono::seconds(2);
constexpr size_t kLingerBufferBytes = 16 * 1024;
// The most one sendfile call sends. After each call the session goes back through its strand,
// so that one large response does not keep the other connections on its thread waiting.
constexpr size_t kSendfileStepBytes = 2 * 1024 * 1024;

// A file body read with pread, for a connection that cannot take sendfile (TLS).
class FileRegionSource : public BodySource {
 public:
  explicit FileRegionSource(FileRegion region) : region_(std::move(region)) {}
  Result<size_t> Read(MutableByteSpan out) override {
    uint64_t left = region_.length - done_;
    if (left == 0) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), left));
    ssize_t n = ::pread(region_.fd, out.data(), want, static_cast<off_t>(region_.offset + done_));
    if (n < 0) return PosixError("read response body", errno);
    if (n == 0) return Status::IOError("file shorter than the response declared");
    done_ += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }

 private:
  FileRegion region_;
  uint64_t done_ = 0;
};
}  // namespace

// What the server's list of open connections needs of a session, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Close(bool force) = 0;
};

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, HttpHandler* handler)
      : options_(std::move(options)),
        handler_(handler),
        contexts_(MakeContexts(options_.threads)) {}

  // One io_context per thread (see http_server.h): a connection stays on one thread.
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int threads) {
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (int i = 0; i < std::max(1, threads); ++i) {
      v.push_back(std::make_unique<asio::io_context>(1));
    }
    return v;
  }

  Status Start();
  Status Listen();
  void Stop(std::chrono::milliseconds drain);
  // Accepts the next connection on `acceptor` (on the next context's strand).
  template <class Acceptor>
  void Accept(Acceptor& acceptor);
  // Starts a session for a new connection.
  template <class Socket>
  void StartSession(Socket socket);
  using SessionList = std::list<std::weak_ptr<SessionBase>>;
  // Adds a new session to sessions_; a session takes itself out when it ends.
  void Register(const std::shared_ptr<SessionBase>& s, SessionList::iterator* where);
  void Unregister(SessionList::iterator it);
  // Asks every open session to close (Session::Close).
  void CloseAll(bool force);

  HttpServerOptions options_;
  HttpHandler* handler_;
  // Declared before contexts_: sessions still queued in a context when it is destroyed use
  // them.
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> connections_{0};
  std::mutex sessions_mu_;
  SessionList sessions_;  // guarded by sessions_mu_
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  size_t next_context_ = 0;  // where the next connection goes; used by the accept handler only
  // One of the two listens, by HttpServerOptions::unix_path.
  std::optional<tcp::acceptor> tcp_acceptor_;
  std::optional<local::acceptor> local_acceptor_;
  std::optional<ssl::context> tls_;  // set for TLS
  std::vector<std::thread> threads_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  uint16_t port_ = 0;
  bool started_ = false;
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // sendfile(2) writes to the socket itself: not through TLS.
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  static constexpr bool kLocal = std::is_same_v<Stream, LocalStream>;

  template <class... StreamArgs>
  Session(HttpServer::Impl* server, bool overloaded, StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...),
        send_timer_(stream_.get_executor()),
        server_(server),
        overloaded_(overloaded) {
    if constexpr (kLocal) {
      peer_ = "unix";
    } else {
      beast::error_code ec;
      auto ep = Socket().remote_endpoint(ec);
      if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
  }
  ~Session() override {
    server_->Unregister(registration_);
    server_->connections_.fetch_sub(1);
  }
  HttpServer::Impl::SessionList::iterator* registration() { return &registration_; }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(self->opt().header_timeout);
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            log::Debug("{}: TLS handshake failed: {}", self->peer_, ec.message());
            return self->Shutdown();
          }
          self->Begin();
        });
      } else {
        self->Begin();
      }
    });
  }

  // Called on stop: an idle connection closes now; a busy one finishes its request, then
  // closes (keep-alive is off once the server is stopping). `force` closes a busy one too.
  void Close(bool force) override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this(), force] {
      if (self->idle_ || force) {
        beast::error_code ec;
        self->Socket().shutdown(asio::socket_base::shutdown_both, ec);
        self->Socket().close(ec);
      }
    });
  }

 private:
  const HttpServerOptions& opt() const { return server_->options_; }
  auto& Lowest() { return beast::get_lowest_layer(stream_); }
  auto& Socket() { return beast::get_lowest_layer(stream_).socket(); }

  void Begin() {
    if (overloaded_) {
      keep_alive_ = false;
      linger_ = true;
      Respond(server_->handler_->Overloaded());
    } else {
      WaitForRequest();
    }
  }

  void WaitForRequest() {
    if (server_->stopping_) return Shutdown();
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is already here
    // An idle connection holds no big buffers: memory grows with requests in progress, not
    // with open connections.
    io_ = Bytes();
    buffer_.shrink_to_fit();
    idle_ = true;
    Lowest().expires_after(opt().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kIdleReadBytes),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->idle_ = false;
                              if (ec) return self->Shutdown();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    buffer_.reserve(kReadBufferReserve);
    parser_.emplace();
    PrepareRequestParser(*parser_, opt().max_header_bytes);
    Lowest().expires_after(opt().header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    keep_alive_ = false;
    if (ec) {
      auto r = HeadReadError(ec);
      if (!r) return Shutdown();
      return Respond(std::move(*r));
    }
    ParsedHead parsed = ToRequestHead(*parser_, peer_);
    parsed.head.local = kLocal;
    keep_alive_ = parsed.keep_alive;
    if (parsed.error) return Respond(std::move(*parsed.error));
    dispatch_ = server_->handler_->Begin(parsed.head);
    if (dispatch_.later) return Defer(parsed.head.has_body());
    if (dispatch_.response) {
      // Answered on its head: the body is still coming, unread, so the connection cannot
      // carry another request (its bytes would be read as one); it is drained and closed.
      if (parsed.head.has_body()) {
        linger_ = true;
        keep_alive_ = false;
      }
      return Respond(std::move(*dispatch_.response));
    }
    if (!dispatch_.sink) return Respond(ServerError(500, "internal", "handler gave no response"));
    parser_->body_limit(dispatch_.body_limit);
    // A body of declared length is read straight from the socket into io_ (see ReadRawBody);
    // a chunked one goes through Beast's parser.
    raw_body_left_.reset();
    if (!parsed.head.chunked && parsed.head.content_length) {
      if (*parsed.head.content_length > dispatch_.body_limit) {
        return FailBody(http::error::body_limit);
      }
      raw_body_left_ = *parsed.head.content_length;
    }
    io_.resize(opt().io_buffer_bytes);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      // The client waits for this before it sends the body (curl does, for large bodies).
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      Lowest().expires_after(opt().io_timeout);
      http::async_write(stream_, *cont,
                        [self = this->shared_from_this(), cont](beast::error_code wec, size_t) {
                          if (wec) return self->Shutdown();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  // The handler answers later: it gets a responder, which keeps this session alive until it
  // is called or dropped, and hands the response to the session's strand.
  void Defer(bool has_body) {
    if (has_body) {
      linger_ = true;
      keep_alive_ = false;
    }
    auto start = std::move(dispatch_.later);
    dispatch_ = Dispatch();
    auto called = std::make_shared<std::atomic<bool>>(false);
    start([self = this->shared_from_this(), called](HttpResponse r) {
      if (called->exchange(true)) return;
      auto response = std::make_shared<HttpResponse>(std::move(r));
      asio::post(self->stream_.get_executor(),
                 [self, response] { self->Respond(std::move(*response)); });
    });
  }

  void ReadBody() {
    if (raw_body_left_) return ReadRawBody();
    if (parser_->is_done()) return FinishBody();
    auto& body = parser_->get().body();
    body.data = io_.data();
    body.size = io_.size();
    Lowest().expires_after(opt().io_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  // A body of known length, read without the parser: Beast reads at most 64 KiB per call and
  // copies it once more into the body buffer, while a body is often megabytes. First what
  // arrived with the head (it sits in buffer_), then reads of up to io_buffer_bytes; bytes
  // past the body (a pipelined request) stay in buffer_.
  void ReadRawBody() {
    if (buffer_.size() > 0 && *raw_body_left_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), *raw_body_left_));
      auto data = buffer_.data();
      if (!SinkBody(ByteSpan(static_cast<const uint8_t*>(data.data()), n))) return;
      buffer_.consume(n);
      *raw_body_left_ -= n;
    }
    if (*raw_body_left_ == 0) return FinishBody();
    size_t want = static_cast<size_t>(std::min<uint64_t>(io_.size(), *raw_body_left_));
    Lowest().expires_after(opt().io_timeout);
    stream_.async_read_some(asio::buffer(io_.data(), want),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (n > 0) {
                                if (!self->SinkBody(ByteSpan(self->io_.data(), n))) return;
                                *self->raw_body_left_ -= n;
                              }
                              if (ec) return self->FailBody(ec);
                              self->ReadRawBody();
                            });
  }

  // Passes body bytes to the sink; on its error, sends the sink's answer and returns false.
  bool SinkBody(ByteSpan data) {
    if (!dispatch_.sink) return true;
    Status s = dispatch_.sink->Write(data);
    if (s.ok()) return true;
    HttpResponse r = dispatch_.sink->Fail(s);
    dispatch_.sink.reset();
    keep_alive_ = false;
    linger_ = true;
    Respond(std::move(r));
    return false;
  }

  // The client went away or stalled mid-body, or sent more than it may: drop the sink, which
  // discards what it received.
  void FailBody(beast::error_code ec) {
    dispatch_.sink.reset();
    keep_alive_ = false;
    if (auto r = BodyReadError(ec)) {
      linger_ = true;
      return Respond(std::move(*r));
    }
    log::Debug("{}: request body abandoned: {}", peer_, ec.message());
    Shutdown();
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    size_t got = io_.size() - parser_->get().body().size;
    if (got > 0 && !SinkBody(ByteSpan(io_.data(), got))) return;
    if (ec) return FailBody(ec);
    if (parser_->is_done()) return FinishBody();
    ReadBody();
  }

  void FinishBody() {
    HttpResponse r = dispatch_.sink->Finish();
    dispatch_.sink.reset();
    Respond(std::move(r));
  }

  void Respond(HttpResponse r) {
    response_ = std::move(r);
    if constexpr (kTls) {
      if (response_.file) {  // through TLS: read and written, not sent with sendfile
        uint64_t length = response_.file->length;
        response_.stream = std::make_unique<FileRegionSource>(std::move(*response_.file));
        response_.stream_length = length;
        response_.file.reset();
      }
    }
    if (response_.close || server_->stopping_) keep_alive_ = false;
    res_.emplace();
    res_->version(11);
    res_->result(response_.status);
    res_->set(http::field::server, std::string("shardfs/") + kVersion);
    for (const auto& [k, v] : response_.headers) res_->set(k, v);
    res_->content_length(response_.content_length());
    res_->keep_alive(keep_alive_);
    res_->body().data = nullptr;
    res_->body().size = 0;
    res_->body().more = !response_.head_only && response_.content_length() > 0;
    sent_ = 0;
    if (response_.stream && !response_.head_only) io_.resize(opt().io_buffer_bytes);
    serializer_.emplace(*res_);
    Lowest().expires_after(opt().io_timeout);
    http::async_write_header(stream_, *serializer_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Shutdown();
                               self->WriteBody();
                             });
  }

  void WriteBody() {
    uint64_t total = response_.content_length();
    if (response_.head_only || sent_ == total) return Done();
    if (response_.file) return StartFileBody();
    auto& body = res_->body();
    if (response_.stream) {
      auto n = response_.stream->Read(
          MutableByteSpan(io_.data(), std::min<uint64_t>(io_.size(), total - sent_)));
      if (!n.ok() || *n == 0) {
        // Never send bytes that failed their check: cut the response short instead.
        log::Warn("{}: response aborted: {}", peer_,
                  n.ok() ? std::string("body ended early") : n.status().ToString());
        return Shutdown();
      }
      body.data = io_.data();
      body.size = *n;
    } else {
      body.data = response_.body.data();
      body.size = response_.body.size();
    }
    sent_ += body.size;
    body.more = sent_ < total;
    Lowest().expires_after(opt().io_timeout);
    http::async_write(stream_, *serializer_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec == http::error::need_buffer) ec = {};
                        if (ec) return self->Shutdown();
                        self->WriteBody();
                      });
  }

  // A file body goes from the file to the socket with sendfile(2), in steps, on the socket in
  // non-blocking mode. tcp_stream's deadlines cover only its own operations, so waits for the
  // socket have their own timer: every io_buffer_bytes of the body must be taken by the client
  // within io_timeout, as every piece of a streamed body must.
  void StartFileBody() {
    const FileRegion& f = *response_.file;
    // Starts reading the whole region from the disk now, rather than as sendfile reaches it.
    (void)::posix_fadvise(f.fd, static_cast<off_t>(f.offset), static_cast<off_t>(f.length),
                          POSIX_FADV_WILLNEED);
    beast::error_code ec;
    Socket().native_non_blocking(true, ec);
    if (ec) {
      log::Warn("{}: response aborted: {}", peer_, ec.message());
      return Shutdown();
    }
    send_mark_ = sent_;
    send_deadline_ = std::chrono::steady_clock::now() + opt().io_timeout;
    SendFileStep();
  }

  void SendFileStep() {
    if (!Socket().is_open()) return Shutdown();  // closed by Stop while queued
    const FileRegion& f = *response_.file;
    size_t step = static_cast<size_t>(std::min<uint64_t>(kSendfileStepBytes, f.length - sent_));
    off_t offset = static_cast<off_t>(f.offset + sent_);
    ssize_t n = ::sendfile(Socket().native_handle(), f.fd, &offset, step);
    int err = n < 0 ? errno : 0;
    if (n > 0 || err == EINTR) {
      if (n > 0) sent_ += static_cast<uint64_t>(n);
      if (sent_ == f.length) return Done();
      if (sent_ - send_mark_ >= opt().io_buffer_bytes) {
        send_mark_ = sent_;
        send_deadline_ = std::chrono::steady_clock::now() + opt().io_timeout;
      }
      asio::post(stream_.get_executor(),
                 [self = this->shared_from_this()] { self->SendFileStep(); });
      return;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) return WaitWritable();
    // The client sees a short body and a closed connection, never other framing.
    if (n == 0) {
      log::Warn("{}: response cut off after {} of {} bytes: the file is shorter than declared",
                peer_, sent_, f.length);
    } else if (err == EPIPE || err == ECONNRESET) {
      log::Debug("{}: client went away mid-response", peer_);
    } else {
      log::Warn("{}: response cut off after {} of {} bytes: {}", peer_, sent_, f.length,
                PosixError("sendfile", err).ToString());
    }
    Shutdown();
  }

  void WaitWritable() {
    if (std::chrono::steady_clock::now() >= send_deadline_) return CutOffStalledReader();
    send_waiting_ = true;
    send_timer_.expires_at(send_deadline_);
    send_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      // A cancelled timer, or one that fired as the wait ended, is no reason to cut off.
      if (ec || !self->send_waiting_ || std::chrono::steady_clock::now() < self->send_deadline_)
        return;
      self->CutOffStalledReader();
    });
    Socket().async_wait(asio::socket_base::wait_write,
                        [self = this->shared_from_this()](beast::error_code ec) {
                          self->send_waiting_ = false;
                          self->send_timer_.cancel();
                          if (ec) return self->Shutdown();
                          self->SendFileStep();
                        });
  }

  void CutOffStalledReader() {
    log::Debug("{}: client stopped reading for {} ms; connection closed", peer_,
               opt().io_timeout.count());
    Shutdown();  // also ends a pending wait, with an error
  }

  void Done() {
    response_ = HttpResponse();
    serializer_.reset();
    res_.reset();
    if (!keep_alive_) return linger_ ? Linger() : Shutdown();
    WaitForRequest();
  }

  // Closes a connection whose client may still be sending a body we did not read. Closing at
  // once would make the kernel answer its data with a reset, which can destroy our response
  // before the client reads it (it would see "connection reset", not our 401 or 507). So the
  // sending side is shut first, and what still arrives is read and dropped, within bounds.
  void Linger() {
    linger_ = false;
    beast::error_code ec;
    Socket().shutdown(asio::socket_base::shutdown_send, ec);
    if (ec || server_->stopping_) return Shutdown();
    io_.resize(kLingerBufferBytes);
    linger_until_ = std::chrono::steady_clock::now() + kLingerTotal;
    LingerRead();
  }

  void LingerRead() {
    auto left = linger_until_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero() || server_->stopping_)
      return Shutdown();
    Lowest().expires_after(std::min<std::chrono::steady_clock::duration>(left, kLingerIdle));
    Socket().async_read_some(asio::buffer(io_.data(), io_.size()),
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Shutdown();
                               self->LingerRead();
                             });
  }

  void Shutdown() {
    dispatch_.sink.reset();
    send_timer_.cancel();
    beast::error_code ec;
    Socket().shutdown(asio::socket_base::shutdown_send, ec);
    Socket().close(ec);
  }

  Stream stream_;
  // A file body's deadline while it waits for the socket (StartFileBody).
  asio::steady_timer send_timer_;
  std::chrono::steady_clock::time_point send_deadline_;
  uint64_t send_mark_ = 0;     // sent_ when send_deadline_ was last set
  bool send_waiting_ = false;  // a wait for the socket is pending
  HttpServer::Impl* server_;
  const bool overloaded_;
  std::string peer_;
  beast::flat_buffer buffer_;
  Bytes io_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  // Body bytes still to read when the body is read without the parser (ReadRawBody).
  std::optional<uint64_t> raw_body_left_;
  Dispatch dispatch_;
  HttpResponse response_;
  std::optional<http::response<http::buffer_body>> res_;
  std::optional<http::response_serializer<http::buffer_body>> serializer_;
  uint64_t sent_ = 0;
  bool keep_alive_ = false;
  HttpServer::Impl::SessionList::iterator registration_;  // this session in the server's list
  bool linger_ = false;  // close with Linger(): part of the request body is unread
  std::chrono::steady_clock::time_point linger_until_;
  std::atomic<bool> idle_{false};
};

Status HttpServer::Impl::Listen() {
  beast::error_code ec;
  if (!options_.unix_path.empty()) {
    const std::string& path = options_.unix_path;
    // A socket file left by an earlier process would make bind fail; anything else there is
    // not ours to remove.
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return Status::AlreadyExists(path + " exists and is not a socket");
      }
      ::unlink(path.c_str());
    }
    local_acceptor_.emplace(*contexts_.front());
    local::endpoint ep(path);
    local_acceptor_->open(ep.protocol(), ec);
    if (!ec) local_acceptor_->bind(ep, ec);
    if (!ec) ::chmod(path.c_str(), 0600);
    if (!ec) local_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IOError("listen on " + path + ": " + ec.message());
    return Status::Ok();
  }
  auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return Status::InvalidArgument("'" + options_.address + "' is not an IP address");
  tcp::endpoint ep(address, options_.port);
  std::string where = options_.address + ":" + std::to_string(options_.port);
  tcp_acceptor_.emplace(*contexts_.front());
  tcp_acceptor_->open(ep.protocol(), ec);
  if (ec) return Status::IOError("open socket for " + where + ": " + ec.message());
  tcp_acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  tcp_acceptor_->bind(ep, ec);
  if (ec) return Status::IOError("listen on " + where + ": " + ec.message());
  tcp_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("listen on " + where + ": " + ec.message());
  port_ = tcp_acceptor_->local_endpoint().port();
  return Status::Ok();
}

Status HttpServer::Impl::Start() {
  if (options_.tls) {
    if (!options_.unix_path.empty()) {
      return Status::InvalidArgument("TLS is for TCP listens, not unix sockets");
    }
    tls_.emplace(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
    beast::error_code ec;
    tls_->use_certificate_chain(asio::buffer(options_.tls->cert_pem), ec);
    if (ec) return Status::InvalidArgument("TLS certificate: " + ec.message());
    tls_->use_private_key(asio::buffer(options_.tls->key_pem), ssl::context::pem, ec);
    if (ec) return Status::InvalidArgument("TLS key: " + ec.message());
  }
  SFS_RETURN_IF_ERROR(Listen());
  for (auto& c : contexts_) {
    work_.push_back(asio::make_work_guard(*c));
    // A context opens its epoll and timer descriptors when first used; opening them all now
    // keeps the process's descriptor count flat from here on (tests check it for leaks).
    asio::steady_timer open_reactor(*c);
  }
  if (local_acceptor_) {
    Accept(*local_acceptor_);
  } else {
    Accept(*tcp_acceptor_);
  }
  for (auto& c : contexts_) {
    threads_.emplace_back([ioc = c.get()] {
      // sendfile(2) has no MSG_NOSIGNAL: on a connection the client has closed it raises
      // SIGPIPE, which ends the process unless the signal is ignored. Blocked in the threads
      // that call it, the signal stays pending and sendfile fails with EPIPE instead.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      ioc->run();
    });
  }
  started_ = true;
  return Status::Ok();
}

template <class Acceptor>
void HttpServer::Impl::Accept(Acceptor& acceptor) {
  using Socket = typename Acceptor::protocol_type::socket;
  asio::io_context& home = *contexts_[next_context_++ % contexts_.size()];
  acceptor.async_accept(
      asio::make_strand(home), [this, &acceptor](beast::error_code ec, Socket socket) {
        if (stopping_) return;
        if (ec) {
          // Out of file descriptors or similar: pause briefly rather than spin.
          log::Warn("accept failed: {}", ec.message());
          auto timer = std::make_shared<asio::steady_timer>(acceptor.get_executor(),
                                                            std::chrono::milliseconds(100));
          timer->async_wait([this, timer, &acceptor](beast::error_code) { Accept(acceptor); });
          return;
        }
        StartSession(std::move(socket));
        Accept(acceptor);
      });
}

template <class Socket>
void HttpServer::Impl::StartSession(Socket socket) {
  bool over = connections_.fetch_add(1) >= options_.max_connections;
  if constexpr (std::is_same_v<Socket, local::socket>) {
    auto session = std::make_shared<Session<LocalStream>>(this, over, std::move(socket));
    Register(session, session->registration());
    session->Start();
  } else {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    if (tls_) {
      auto session = std::make_shared<Session<TlsStream>>(this, over, std::move(socket), *tls_);
      Register(session, session->registration());
      session->Start();
    } else {
      auto session = std::make_shared<Session<TcpStream>>(this, over, std::move(socket));
      Register(session, session->registration());
      session->Start();
    }
  }
}

void HttpServer::Impl::Register(const std::shared_ptr<SessionBase>& s,
                                SessionList::iterator* where) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  *where = sessions_.insert(sessions_.end(), s);
}

void HttpServer::Impl::Unregister(SessionList::iterator it) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  sessions_.erase(it);
}

void HttpServer::Impl::CloseAll(bool force) {
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (auto& w : sessions_) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
  }
  // Outside the lock: dropping the last reference runs ~Session, which takes it.
  for (auto& s : open) s->Close(force);
}

void HttpServer::Impl::Stop(std::chrono::milliseconds drain) {
  if (!started_) return;
  started_ = false;
  stopping_ = true;
  asio::post(*contexts_.front(), [this] {
    beast::error_code ec;
    if (tcp_acceptor_) tcp_acceptor_->close(ec);
    if (local_acceptor_) local_acceptor_->close(ec);
  });
  CloseAll(false);
  auto deadline = std::chrono::steady_clock::now() + drain;
  while (connections_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CloseAll(false);  // requests that finished since are idle now
  }
  if (connections_.load() > 0) {
    log::Warn("closing {} connection(s) with requests still in progress", connections_.load());
    CloseAll(true);
  }
  work_.clear();
  auto hard = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (connections_.load() > 0 && std::chrono::steady_clock::now() < hard) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (local_acceptor_) ::unlink(options_.unix_path.c_str());
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() { impl_->Stop(std::chrono::milliseconds(0)); }

Status HttpServer::Start() { return impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port_; }
void HttpServer::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }
size_t HttpServer::connections() const { return impl_->connections_.load(); }

}  // namespace shardfs::net
