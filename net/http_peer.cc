#include "net/http_peer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <random>
#include <thread>

#include <fcntl.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/slot.h"
#include "base/logging.h"
#include "crypto/merkle.h"
#include "net/auth.h"
#include "net/http_wire.h"
#include "net/node_service.h"

namespace shardfs::net {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxJsonBody = 64 * 1024;
constexpr size_t kUploadPiece = 1 << 20;

int64_t UnixNow() { return static_cast<int64_t>(::time(nullptr)); }

std::string ShardTarget(const ShardId& id) { return "/v1/shards/" + id.ToHex(); }

// cpp-httplib 0.11 sends without MSG_NOSIGNAL, so a node that closes the connection while a
// body is still going out (it refused the request on its head: 401, 413, 507) would raise
// SIGPIPE and kill the whole process. SIGPIPE from send() goes to the sending thread, so it is
// blocked in that thread for the length of a request, and one raised meanwhile is consumed;
// the write fails with EPIPE instead, which httplib reports as an error.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    // One pending before us is someone else's: left alone.
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~ScopedSigpipeBlock() {
    if (!blocked_) return;
    sigset_t pending;
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
  bool blocked_ = false;
};

}  // namespace

struct HttpPeer::Call {
  std::string method;
  std::string target;
  ByteSpan body;
  ShardId body_root = EmptyBodyRoot();
  bool sign = true;
  bool idempotent = true;
  const CancelToken* cancel = nullptr;
  uint64_t max_body = kMaxJsonBody;
  // For a GET: the body of a 2xx answer goes straight here (no copy; a longer body is too
  // big), and Reply::received says how much came. Other answers' bodies go to Reply::body.
  MutableByteSpan into;
  std::string range;  // a Range header, if not empty
};

struct HttpPeer::Reply {
  int status = 0;
  Bytes body;
  uint64_t content_length = 0;
  std::string content_range;  // the Content-Range header, if any
  bool into = false;          // the body went to Call::into...
  uint64_t received = 0;      // ...this many bytes of it
};

// One connection of the pool: its client, and our own duplicate of the client's socket. A
// request on it is ended from any thread by shutting that socket down (Shut), which never
// blocks: httplib's stop() waits for a connect in progress (it holds the client's socket mutex
// while connecting) and misses a request that has not taken its socket yet. The duplicate is
// ours, so its number is not reused by another socket while it may still be shut down.
//
// A connection is either httplib's (`client`) or a bare one for range reads (net/http_wire:
// `raw`, its socket `raw_sock` once connected).
struct HttpPeer::Connection {
  ~Connection() {
    client.reset();
    if (raw_sock >= 0) ::close(raw_sock);
    MutexLock lock(&mu);
    if (fd >= 0) ::close(fd);
  }

  // Called with each new socket of the connection, before connecting it.
  void Adopt(int sock) {
    MutexLock lock(&mu);
    if (fd >= 0) ::close(fd);
    fd = ::fcntl(sock, F_DUPFD_CLOEXEC, 0);
    // Shut before it connects: the connect goes through, the request's first write fails.
    if (shut) ::shutdown(sock, SHUT_RDWR);
  }
  // Ends the request on this connection now, and the rest of the attempt's (its socket is shut
  // down as soon as it has one). Quick; may be called from any thread, any number of times.
  void Shut() {
    MutexLock lock(&mu);
    shut = true;
    if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }
  // True if Shut was called: the connection is not reused (so one from the pool never was).
  bool WasShut() {
    MutexLock lock(&mu);
    return shut;
  }

  std::unique_ptr<httplib::Client> client;
  bool raw = false;
  int raw_sock = -1;  // a raw connection's socket, once connected
  Mutex mu;
  int fd GUARDED_BY(mu) = -1;
  bool shut GUARDED_BY(mu) = false;
};

// A request waiting for the head of its answer, on the watchdog's list.
struct HttpPeer::Watch {
  Connection* conn = nullptr;
  Clock::time_point deadline;
  std::atomic<bool> answered{false};  // the head came: the deadline no longer applies
  std::atomic<bool> fired{false};     // the deadline passed first, and the request was ended
};

namespace {

// The one place an HTTP answer that is not a success becomes a Status.
Status ReplyError(const std::string& node, const HttpPeer::Reply& r) {
  std::string code, message;
  auto j = nlohmann::json::parse(r.body.begin(), r.body.end(), nullptr, false);
  if (j.is_object()) {
    if (j.contains("code") && j["code"].is_string()) code = j["code"].get<std::string>();
    if (j.contains("message") && j["message"].is_string())
      message = j["message"].get<std::string>();
  }
  std::string msg = node + ": HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) +
                    (message.empty() ? "" : ": " + message.substr(0, 500));
  switch (r.status) {
    case 400:
      if (code == "shard_mismatch") return Status::Corruption(msg);
      if (code == "bad_slot_signature") return Status::PermissionDenied(msg);
      return Status::InvalidArgument(msg);
    case 401:
    case 403:
      return Status::PermissionDenied(msg);
    case 404:
      return Status::NotFound(msg);
    case 409:
      return Status::AlreadyExists(msg);
    case 411:
    case 413:
    case 416:
      return Status::OutOfRange(msg);
    case 500:
      if (code == "shard_damaged") return Status::Corruption(msg);
      return Status::Unavailable(msg);
    case 507:
      return Status::NoSpace(msg);
    default:
      return Status::Unavailable(msg);
  }
}

}  // namespace

HttpPeer::HttpPeer(HostPort address, std::shared_ptr<const crypto::SigningKey> owner,
                   HttpPeerOptions options)
    : address_(std::move(address)), owner_(std::move(owner)), options_(options) {
  watchdog_ = std::thread([this] { WatchLoop(); });
}

HttpPeer::~HttpPeer() {
  {
    MutexLock lock(&watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.NotifyAll();
  watchdog_.join();
}

void HttpPeer::WatchLoop() {
  MutexLock lock(&watch_mu_);
  while (!watch_stop_) {
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (Watch* w : watched_) {
      if (w->answered || w->fired) continue;
      if (w->deadline <= now) {
        w->fired = true;
        w->conn->Shut();
      } else {
        next = std::min(next, w->deadline);
      }
    }
    // A request that ended leaves its deadline behind: waking up for it once is cheaper than
    // waking the watchdog for every request.
    watch_wake_ = next;
    auto woken = [&]() REQUIRES(watch_mu_) { return watch_stop_ || watch_wake_ < next; };
    if (next == Clock::time_point::max()) {
      watch_cv_.Wait(&watch_mu_, woken);
    } else {
      watch_cv_.WaitUntil(&watch_mu_, next, woken);
    }
  }
}

void HttpPeer::StartWatch(Watch* w) {
  bool wake = false;
  {
    MutexLock lock(&watch_mu_);
    watched_.push_back(w);
    // Deadlines are mostly later than those already watched: the watchdog is woken only when
    // it would otherwise sleep past this one.
    if (w->deadline < watch_wake_) {
      watch_wake_ = w->deadline;
      wake = true;
    }
  }
  if (wake) watch_cv_.NotifyAll();
}

void HttpPeer::EndWatch(Watch* w) {
  MutexLock lock(&watch_mu_);
  watched_.erase(std::find(watched_.begin(), watched_.end(), w));
}

Result<std::unique_ptr<HttpPeer>> HttpPeer::Connect(const HostPort& address,
                                                    std::shared_ptr<const crypto::SigningKey> owner,
                                                    HttpPeerOptions options,
                                                    std::optional<NodeId> node_id) {
  if (options.max_in_flight < 1) return Status::InvalidArgument("max_in_flight must be at least 1");
  std::unique_ptr<HttpPeer> peer(new HttpPeer(address, std::move(owner), options));
  if (node_id) {
    peer->node_id_ = *node_id;
  } else {
    SFS_ASSIGN_OR_RETURN(backend::PeerStatus st, peer->GetStatus());
    peer->node_id_ = st.node_id;
  }
  return peer;
}

std::unique_ptr<HttpPeer::Connection> HttpPeer::Acquire(const CancelToken* cancel, bool raw) {
  // A cancel wakes the wait: a request queued behind requests to a node that stopped
  // answering is not needed any more. Declared before the lock, so it ends after it.
  std::optional<CancelToken::Registration> wake;
  if (cancel != nullptr) {
    wake.emplace(cancel->OnCancel([this] {
      MutexLock lock(&mu_);
      cv_.NotifyAll();
    }));
  }
  {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_, [&]() REQUIRES(mu_) {
      return in_flight_ < options_.max_in_flight || IsCancelled(cancel);
    });
    if (IsCancelled(cancel)) return nullptr;
    ++in_flight_;
    for (size_t i = idle_.size(); i-- > 0;) {
      if (idle_[i]->raw != raw) continue;
      auto c = std::move(idle_[i]);
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
      return c;
    }
  }
  auto conn = std::make_unique<Connection>();
  if (raw) {
    conn->raw = true;  // connected by the first exchange on it
    return conn;
  }
  conn->client = std::make_unique<httplib::Client>(address_.host, address_.port);
  httplib::Client& c = *conn->client;
  auto split = [](std::chrono::milliseconds ms) {
    return std::pair<time_t, time_t>(ms.count() / 1000, (ms.count() % 1000) * 1000);
  };
  auto [cs, cus] = split(options_.connect_timeout);
  auto [is, ius] = split(options_.io_timeout);
  c.set_connection_timeout(cs, cus);
  c.set_read_timeout(is, ius);
  c.set_write_timeout(is, ius);
  c.set_keep_alive(true);
  // Without it each request waits out Nagle's algorithm against the peer's delayed ACK.
  c.set_tcp_nodelay(true);
  c.set_decompress(false);
  Connection* owner = conn.get();  // owns the client, so outlives this callback
  c.set_socket_options([owner](int sock) { owner->Adopt(sock); });
  return conn;
}

void HttpPeer::Release(std::unique_ptr<Connection> conn, bool reusable) {
  MutexLock lock(&mu_);
  --in_flight_;
  if (reusable) {
    // At most max_in_flight kept, of both kinds: the oldest goes first.
    if (static_cast<int>(idle_.size()) >= options_.max_in_flight) idle_.erase(idle_.begin());
    idle_.push_back(std::move(conn));
  }
  // All: a waiter that was cancelled leaves without taking the free place.
  cv_.NotifyAll();
}

Result<HttpPeer::Reply> HttpPeer::Attempt(const Call& call, bool* refused) {
  *refused = false;
  if (IsCancelled(call.cancel)) return Status::Cancelled("request cancelled");
  httplib::Headers headers;
  if (call.sign) {
    for (auto& [k, v] :
         SignRequest(*owner_, node_id_, call.method, call.target, call.body_root, UnixNow())) {
      headers.emplace(k, v);
    }
  }
  if (!call.range.empty()) headers.emplace("Range", call.range);
  Reply reply;
  bool too_big = false;
  Watch watch;
  // When bytes last moved (or the attempt started): a transport error this long after it is
  // one of httplib's io timeouts.
  Clock::time_point progress;
  auto on_response = [&](const httplib::Response& r) {
    watch.answered = true;
    progress = Clock::now();
    reply.status = r.status;
    if (r.has_header("Content-Length")) {
      reply.content_length =
          std::strtoull(r.get_header_value("Content-Length").c_str(), nullptr, 10);
      if (call.method != "HEAD" && reply.content_length > call.max_body) {
        too_big = true;
        return false;
      }
      if (call.method != "HEAD") reply.body.reserve(reply.content_length);
    }
    return true;
  };
  auto on_data = [&](const char* data, size_t n) {
    if (IsCancelled(call.cancel)) return false;
    progress = Clock::now();
    if (reply.body.size() + n > call.max_body) {
      too_big = true;
      return false;
    }
    reply.body.insert(reply.body.end(), reinterpret_cast<const uint8_t*>(data),
                      reinterpret_cast<const uint8_t*>(data) + n);
    return true;
  };
  ScopedSigpipeBlock no_sigpipe;
  const bool raw = !call.into.empty();
  std::unique_ptr<Connection> conn = Acquire(call.cancel, raw);
  if (conn == nullptr) return Status::Cancelled("request cancelled");
  progress = Clock::now();
  // A cancel shuts the socket down, so a request blocked on a node that stopped answering
  // ends now instead of at a deadline.
  std::optional<CancelToken::Registration> stop_on_cancel;
  if (call.cancel != nullptr) {
    Connection* c = conn.get();
    stop_on_cancel.emplace(call.cancel->OnCancel([c] { c->Shut(); }));
  }
  // The head of the answer must come within answer_timeout: of the start for a request without
  // a body, of the body's last byte going out for a PUT (a body being sent is bounded by
  // io_timeout only, so a slow node still takes a large shard).
  watch.conn = conn.get();
  bool watching = false;
  auto watch_from_now = [&] {
    watch.deadline = Clock::now() + options_.answer_timeout;
    StartWatch(&watch);
    watching = true;
  };
  if (call.method != "PUT" || call.body.empty()) watch_from_now();
  // How the exchange ended, for both kinds of connection.
  bool ok = false;
  bool server_closes = false;    // the node said it closes the connection
  bool refused_now = false;      // the connection was refused
  bool connect_timeout = false;  // the connection was not made in time
  std::string failure;           // what went wrong, for the message
  if (raw) {
    wire::Outcome o = wire::Outcome::kOk;
    if (conn->raw_sock >= 0 && !wire::Reusable(conn->raw_sock)) {
      // The node closed it while it sat in the pool: a new connection, not a failed request.
      ::close(conn->raw_sock);
      conn->raw_sock = -1;
    }
    if (conn->raw_sock < 0) {
      Connection* c = conn.get();
      o = wire::Connect(
          address_.host, address_.port, options_.connect_timeout, [c](int sock) { c->Adopt(sock); },
          &conn->raw_sock);
    }
    wire::Answer answer;
    if (o == wire::Outcome::kOk) {
      std::string request =
          call.method + " " + call.target + " HTTP/1.1\r\nHost: " + address_.ToString() + "\r\n";
      for (const auto& [k, v] : headers) request += k + ": " + v + "\r\n";
      request += "\r\n";
      o = wire::Exchange(
          conn->raw_sock, request, call.into, call.max_body, options_.io_timeout,
          [&] { watch.answered = true; }, [&] { progress = Clock::now(); }, &answer);
    }
    ok = o == wire::Outcome::kOk;
    too_big = o == wire::Outcome::kTooBig;
    refused_now = o == wire::Outcome::kRefused;
    connect_timeout = o == wire::Outcome::kConnectTimeout;
    server_closes = !answer.keep_alive;
    failure = o == wire::Outcome::kMalformed ? "the answer is not HTTP/1.1 with a Content-Length"
              : refused_now                  ? "connection refused"
                                             : "connection failed or closed";
    reply.status = answer.status;
    reply.content_length = answer.content_length;
    reply.content_range = std::move(answer.content_range);
    reply.into = answer.into;
    reply.received = answer.received;
    reply.body = std::move(answer.body);
  } else {
    httplib::Client& client = *conn->client;
    httplib::Result res{nullptr, httplib::Error::Unknown};
    if (call.method == "GET") {
      res = client.Get(call.target, headers, on_response, on_data);
    } else if (call.method == "HEAD") {
      res = client.Head(call.target, headers);
      if (res) on_response(*res);
    } else if (call.method == "DELETE") {
      res = client.Delete(call.target, headers);
      if (res) {
        on_response(*res);
        reply.body.assign(res->body.begin(), res->body.end());
      }
    } else {
      ByteSpan body = call.body;
      auto provider = [&](size_t offset, size_t length, httplib::DataSink& sink) {
        if (IsCancelled(call.cancel)) return false;
        progress = Clock::now();
        size_t n = std::min(length, kUploadPiece);
        if (!sink.write(reinterpret_cast<const char*>(body.data() + offset), n)) return false;
        progress = Clock::now();
        if (offset + n == body.size() && !watching) watch_from_now();
        return true;
      };
      res = client.Put(call.target, headers, body.size(), provider, "application/octet-stream");
      if (res) {
        on_response(*res);
        if (res->body.size() <= call.max_body) {
          reply.body.assign(res->body.begin(), res->body.end());
        }
      }
    }
    ok = static_cast<bool>(res);
    server_closes =
        ok && res->has_header("Connection") && res->get_header_value("Connection") == "close";
    refused_now = res.error() == httplib::Error::Connection;
    connect_timeout = res.error() == httplib::Error::ConnectionTimeout;
    failure = httplib::to_string(res.error());
  }
  if (watching) EndWatch(&watch);
  stop_on_cancel.reset();  // before the connection goes back to the pool or away
  const Clock::time_point end = Clock::now();
  // A connection is reused only after a complete exchange that nothing shut down and the
  // server did not close.
  const bool reusable = ok && !too_big && !conn->WasShut() && !server_closes;
  Release(std::move(conn), reusable);
  if (IsCancelled(call.cancel)) return Status::Cancelled("request cancelled");
  if (too_big) {
    const uint64_t room = raw ? call.into.size() : call.max_body;
    return Status::Corruption(name() + ": answer is larger than " + std::to_string(room) +
                              " bytes");
  }
  if (!ok) {
    const std::string what = name() + ": " + call.method;
    auto ms = [](std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; };
    if (watch.fired) {
      return Status::DeadlineExceeded(what + " got no answer within " +
                                      ms(options_.answer_timeout));
    }
    if (connect_timeout) {
      return Status::DeadlineExceeded(what + " could not connect within " +
                                      ms(options_.connect_timeout));
    }
    // A read or write that timed out (in httplib, a failed write inside our body provider is
    // reported as Canceled).
    if (!refused_now && end - progress >= options_.io_timeout) {
      return Status::DeadlineExceeded(what + " made no progress for " + ms(options_.io_timeout));
    }
    *refused = refused_now;
    return Status::Unavailable(what + " failed: " + failure);
  }
  return reply;
}

Result<HttpPeer::Reply> HttpPeer::Run(const Call& call) {
  for (int attempt = 0;; ++attempt) {
    bool refused = false;
    auto r = Attempt(call, &refused);
    // Only failures that came quickly are tried again. A node that refuses connections is
    // down, and one that let a deadline pass (DeadlineExceeded) is stopped or overloaded: the
    // caller reads around it or tries another node now, rather than waiting for retries.
    bool transient = (!r.ok() && r.status().code() == Code::kUnavailable && !refused) ||
                     (r.ok() && r->status == 503);
    if (!transient || !call.idempotent || attempt >= options_.retries) return r;
    // Jitter from a generator seeded once per thread, only when a retry needs it (seeding one
    // per request showed in profiles of every read and write).
    thread_local std::mt19937_64 rng(std::random_device{}());
    auto pause = options_.backoff * (1 << attempt);
    pause += std::chrono::milliseconds(rng() % (pause.count() / 2 + 1));
    log::Debug("{}: retrying {} {} in {} ms", name(), call.method, call.target, pause.count());
    auto until = std::chrono::steady_clock::now() + pause;
    while (std::chrono::steady_clock::now() < until) {
      if (IsCancelled(call.cancel)) return Status::Cancelled("request cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

Status HttpPeer::PutShard(const ShardId& id, ByteSpan data, const CancelToken* cancel) {
  Call c;
  c.method = "PUT";
  c.target = ShardTarget(id);
  c.body = data;
  c.body_root = id;
  c.cancel = cancel;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status == 200 || r.status == 201) return Status::Ok();
  return ReplyError(name(), r);
}

Result<Bytes> HttpPeer::GetShard(const ShardId& id, const CancelToken* cancel) {
  Call c;
  c.method = "GET";
  c.target = ShardTarget(id);
  c.cancel = cancel;
  c.max_body = options_.max_shard_size;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status != 200) return ReplyError(name(), r);
  if (crypto::MerkleRoot(r.body) != id) {
    return Status::Corruption(name() + " returned bytes that are not shard " + id.ToHex());
  }
  return std::move(r.body);
}

Result<backend::ShardProof> HttpPeer::FetchProof(const ShardId& id, uint64_t first_leaf,
                                                 uint64_t count, const CancelToken* cancel) {
  Call c;
  c.method = "GET";
  c.target = ShardTarget(id) + "/proof?first=" + std::to_string(first_leaf) +
             "&count=" + std::to_string(count);
  c.cancel = cancel;
  c.max_body = count * crypto::kMerkleLeafSize + 16 * 1024;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status != 200) return ReplyError(name(), r);
  auto p = DecodeProofResponse(r.body);
  if (!p.ok()) return Status::Corruption(name() + ": " + p.status().message());
  if (p->proof.first_leaf != first_leaf || p->proof.leaf_count != count) {
    return Status::Corruption(name() + " answered a proof for other leaves");
  }
  Status s = crypto::VerifyMerkleProof(id, p->length, first_leaf, p->leaves, p->proof);
  if (!s.ok()) {
    return Status::Corruption(name() + " returned leaves that are not shard " + id.ToHex() +
                              "'s: " + s.message());
  }
  return p;
}

Status HttpPeer::ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                           const CancelToken* cancel) {
  if (IsCancelled(cancel)) return Status::Cancelled("request cancelled");
  if (out.size() > UINT64_MAX - offset) return Status::OutOfRange("range overflows");
  if (out.empty()) {
    SFS_ASSIGN_OR_RETURN(uint64_t length, StatShard(id));
    if (offset > length) return Status::OutOfRange("offset is past the end of the shard");
    return Status::Ok();
  }
  // A plain Range request, sent by the node straight from its file: the bytes are the
  // caller's to check (docs/protocol.md, "What a client must verify").
  Call c;
  c.method = "GET";
  c.target = ShardTarget(id);
  c.range = "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1);
  c.cancel = cancel;
  c.into = out;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status != 206) {
    if (r.status / 100 == 2) {
      return Status::Corruption(name() + " answered a range request with HTTP " +
                                std::to_string(r.status));
    }
    return ReplyError(name(), r);
  }
  // "bytes FIRST-LAST/LENGTH": a range that runs past the shard's end is cut short by the
  // node (RFC 9110), and is outside the shard for the caller.
  const size_t slash = r.content_range.rfind('/');
  if (slash != std::string::npos) {
    const std::string total = r.content_range.substr(slash + 1);
    char* end = nullptr;
    const uint64_t length = std::strtoull(total.c_str(), &end, 10);
    if (!total.empty() && *end == '\0' && offset + out.size() > length) {
      return Status::OutOfRange("range " + std::to_string(offset) + "+" +
                                std::to_string(out.size()) + " is outside shard of " +
                                std::to_string(length) + " bytes");
    }
  }
  const std::string want =
      "bytes " + std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1) + "/";
  if (r.content_range.rfind(want, 0) != 0 || r.received != out.size()) {
    return Status::Corruption(name() + " answered other bytes than asked: Content-Range '" +
                              r.content_range.substr(0, 100) + "', " + std::to_string(r.received) +
                              " of " + std::to_string(out.size()) + " bytes");
  }
  return Status::Ok();
}

Result<uint64_t> HttpPeer::StatShard(const ShardId& id) {
  Call c;
  c.method = "HEAD";
  c.target = ShardTarget(id);
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status != 200) return ReplyError(name(), r);
  return r.content_length;
}

Result<backend::ShardProof> HttpPeer::ProveShard(const ShardId& id, uint64_t first_leaf,
                                                 uint64_t count) {
  if (count == 0 || count > kMaxProofLeaves) {
    return Status::OutOfRange("a proof covers 1 to " + std::to_string(kMaxProofLeaves) + " leaves");
  }
  return FetchProof(id, first_leaf, count, nullptr);
}

Status HttpPeer::DeleteShard(const ShardId& id) {
  Call c;
  c.method = "DELETE";
  c.target = ShardTarget(id);
  c.idempotent = false;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status == 204 || r.status == 200) return Status::Ok();
  return ReplyError(name(), r);
}

Result<std::optional<Bytes>> HttpPeer::GetSlot() {
  Call c;
  c.method = "GET";
  c.target = "/v1/slots/" + owner_->public_key().ToHex();
  c.max_body = backend::kSlotRecordOverhead + backend::kMaxSlotValue;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status == 404) {
    Status s = ReplyError(name(), r);
    if (s.message().find("no_slot") != std::string::npos) return std::optional<Bytes>();
    return s;
  }
  if (r.status != 200) return ReplyError(name(), r);
  auto rec = backend::VerifySlotRecord(r.body);
  if (!rec.ok() || rec->owner != owner_->public_key()) {
    return Status::Corruption(name() + " returned a slot record that is not ours: " +
                              (rec.ok() ? std::string("another owner's") : rec.status().message()));
  }
  return std::optional<Bytes>(std::move(r.body));
}

Status HttpPeer::PutSlot(ByteSpan record) {
  Call c;
  c.method = "PUT";
  c.target = "/v1/slots/" + owner_->public_key().ToHex();
  c.body = record;
  c.body_root = crypto::MerkleRoot(record);
  // A retry after a lost answer would be refused as not newer: the caller decides.
  c.idempotent = false;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status == 200) return Status::Ok();
  return ReplyError(name(), r);
}

Result<backend::PeerStatus> HttpPeer::GetStatus() {
  Call c;
  c.method = "GET";
  c.target = "/v1/status";
  c.sign = false;
  SFS_ASSIGN_OR_RETURN(Reply r, Run(c));
  if (r.status != 200) return ReplyError(name(), r);
  auto j = nlohmann::json::parse(r.body.begin(), r.body.end(), nullptr, false);
  backend::PeerStatus st;
  try {
    auto id = NodeId::FromHex(j.at("node_id").get<std::string>());
    if (!id.ok()) return Status::Corruption(name() + ": status has a bad node id");
    st.node_id = *id;
    st.version = j.at("version").get<std::string>();
    st.capacity = j.at("capacity").get<uint64_t>();
    st.used = j.at("used").get<uint64_t>();
    st.free = j.at("free").get<uint64_t>();
    st.shards = j.at("shards").get<uint64_t>();
    st.uptime_seconds = j.at("uptime_seconds").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(name() + ": malformed status: " + e.what());
  }
  if (!node_id_.IsZero() && st.node_id != node_id_) {
    return Status::Corruption(name() + " now has node id " + st.node_id.ToHex() + ", not " +
                              node_id_.ToHex());
  }
  return st;
}

}  // namespace shardfs::net
