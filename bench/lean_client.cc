#include "bench/lean_client.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "net/auth.h"

namespace shardfs::bench {

namespace {

// Error bodies and the answer to a PUT are a line of JSON.
constexpr size_t kMaxSmallBody = 64 * 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string ShardTarget(const ShardId& id) { return "/v1/shards/" + id.ToHex(); }

}  // namespace

LeanClient::LeanClient(net::HostPort address, NodeId node_id, const crypto::SigningKey* owner,
                       LeanClientOptions options)
    : address_(std::move(address)),
      name_(address_.ToString()),
      node_id_(node_id),
      owner_(owner),
      options_(options),
      body_(options.read_bytes) {}

Status LeanClient::Ready() {
  if (fd_.valid()) {
    // An idle keep-alive connection has nothing to read: if it is readable, the node closed
    // it (its idle timeout runs out between rounds) or sent bytes no request asked for.
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) != 0) fd_.Reset();
  }
  if (fd_.valid()) return Status::Ok();
  return Connect();
}

Status LeanClient::Connect() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address_.port);
  int rc = ::getaddrinfo(address_.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return Status::Unavailable("resolve " + address_.host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
  Status last = Status::Unavailable("no address for " + name_);
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    // Non-blocking while connecting, so that poll() bounds the connect.
    UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      last = PosixError("socket", errno);
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = PosixError("connect to " + name_, errno);
        continue;
      }
      pollfd p{fd.get(), POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, static_cast<int>(options_.connect_timeout.count()));
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        last = Status::DeadlineExceeded("connect to " + name_ + ": no answer in " +
                                        std::to_string(options_.connect_timeout.count()) + " ms");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (n < 0) err = errno;
      if (n > 0 && ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        last = PosixError("connect to " + name_, err);
        continue;
      }
    }
    const int flags = ::fcntl(fd.get(), F_GETFL);
    const int one = 1;
    const timeval io = ToTimeval(options_.io_timeout);
    // Blocking from now on; SO_RCVTIMEO and SO_SNDTIMEO bound each receive and send. Without
    // TCP_NODELAY, the head of each request waits out Nagle's algorithm against the node's
    // delayed ACK.
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &io, sizeof(io)) != 0 ||
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &io, sizeof(io)) != 0) {
      return PosixError("set up the connection to " + name_, errno);
    }
    fd_ = std::move(fd);
    ++connects_;
    return Status::Ok();
  }
  return last;
}

std::string LeanClient::RequestHead(std::string_view method, const std::string& target,
                                    const ShardId& body_root,
                                    std::optional<uint64_t> body_length) const {
  std::string h;
  h.reserve(1024);
  h.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(name_);
  h.append("\r\n");
  for (const auto& [k, v] : net::SignRequest(*owner_, node_id_, method, target, body_root,
                                             static_cast<int64_t>(::time(nullptr)))) {
    h.append(k).append(": ").append(v).append("\r\n");
  }
  if (body_length) {
    h.append("Content-Type: application/octet-stream\r\nContent-Length: ");
    h.append(std::to_string(*body_length)).append("\r\n");
  }
  h.append("\r\n");
  return h;
}

Status LeanClient::Send(std::string_view head, ByteSpan body, Clock::time_point deadline) {
  iovec iov[2] = {{const_cast<char*>(head.data()), head.size()},
                  {const_cast<uint8_t*>(body.data()), body.size()}};
  iovec* next = iov;
  int left = body.empty() ? 1 : 2;
  while (left > 0) {
    if (Clock::now() > deadline) return Status::DeadlineExceeded("request to " + name_);
    msghdr m{};
    m.msg_iov = next;
    m.msg_iovlen = static_cast<size_t>(left);
    // MSG_NOSIGNAL: a node that closes early is an EPIPE here, not a SIGPIPE that kills us.
    ssize_t n = ::sendmsg(fd_.get(), &m, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Status::DeadlineExceeded("send to " + name_ + ": no progress in " +
                                      std::to_string(options_.io_timeout.count()) + " ms");
    }
    if (n < 0) return PosixError("send to " + name_, errno);
    size_t sent = static_cast<size_t>(n);
    while (left > 0 && sent >= next->iov_len) {
      sent -= next->iov_len;
      ++next;
      --left;
    }
    if (left > 0) {
      next->iov_base = static_cast<char*>(next->iov_base) + sent;
      next->iov_len -= sent;
    }
  }
  return Status::Ok();
}

Result<size_t> LeanClient::Receive(MutableByteSpan out, bool all, Clock::time_point deadline) {
  while (true) {
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("request to " + name_ + ": not answered in " +
                                      std::to_string(options_.request_timeout.count()) + " ms");
    }
    ssize_t n = ::recv(fd_.get(), out.data(), out.size(), all ? MSG_WAITALL : 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return Status::DeadlineExceeded("receive from " + name_ + ": nothing in " +
                                      std::to_string(options_.io_timeout.count()) + " ms");
    }
    return PosixError("receive from " + name_, errno);
  }
}

Result<LeanClient::ResponseHead> LeanClient::ReadHead(Clock::time_point deadline) {
  in_len_ = 0;
  size_t end = std::string_view::npos;
  while (end == std::string_view::npos) {
    if (in_len_ == in_.size()) {
      return Status::Corruption(name_ + " answered a head over " + std::to_string(kMaxHead) +
                                " bytes");
    }
    SFS_ASSIGN_OR_RETURN(size_t n, Receive(MutableByteSpan(in_).subspan(in_len_), false, deadline));
    if (n == 0) {
      return Status::Unavailable(name_ + " closed the connection" +
                                 (in_len_ == 0 ? " without answering" : " in a response head"));
    }
    // The end may straddle the previous receive.
    const size_t from = in_len_ >= 3 ? in_len_ - 3 : 0;
    in_len_ += n;
    std::string_view seen(reinterpret_cast<const char*>(in_.data()), in_len_);
    end = seen.find("\r\n\r\n", from);
  }
  body_begin_ = end + 4;
  std::string_view head(reinterpret_cast<const char*>(in_.data()), end);
  auto bad = [&](std::string_view why) {
    size_t eol = head.find("\r\n");
    return Status::Corruption(name_ + " answered " + std::string(why) + ": \"" +
                              std::string(head.substr(0, std::min<size_t>(eol, 200))) + "\"");
  };

  // "HTTP/1.1 201 Created"
  ResponseHead h;
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return bad("something that is not an HTTP/1.x status line");
  }
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, h.status);
  if (ec != std::errc() || p != line.data() + 12) return bad("a malformed status");
  // HTTP/1.0 closes unless asked otherwise; this client never asks.
  h.close = line[7] != '1';
  bool have_length = false;
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad("a header line without a colon");
    std::string_view name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Content-Length")) {
      uint64_t v = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (e != std::errc() || q != value.data() + value.size() || value.empty() ||
          (have_length && v != h.content_length)) {
        return bad("a bad Content-Length");
      }
      h.content_length = v;
      have_length = true;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      // The node sends every body with Content-Length; this client reads no other framing.
      return bad("with Transfer-Encoding, which this client does not read");
    } else if (EqualsIgnoreCase(name, "Connection") && ContainsIgnoreCase(value, "close")) {
      h.close = true;
    }
  }
  // Every answer of the node to a PUT or GET has a body length (204 only answers DELETE).
  if (!have_length) return bad("without Content-Length");
  return h;
}

Result<std::string> LeanClient::ReadSmallBody(const ResponseHead& h, Clock::time_point deadline) {
  if (h.content_length > kMaxSmallBody) {
    return Status::Corruption(name_ + " answered HTTP " + std::to_string(h.status) + " with " +
                              std::to_string(h.content_length) + " bytes of body");
  }
  std::string body(h.content_length, '\0');
  const size_t kept = in_len_ - body_begin_;
  if (kept > body.size()) {
    return Status::Corruption(name_ + " sent " + std::to_string(kept - body.size()) +
                              " bytes past the end of its response");
  }
  std::memcpy(body.data(), in_.data() + body_begin_, kept);
  in_len_ = body_begin_ = 0;
  MutableByteSpan out(reinterpret_cast<uint8_t*>(body.data()), body.size());
  for (size_t got = kept; got < body.size();) {
    SFS_ASSIGN_OR_RETURN(size_t n, Receive(out.subspan(got), true, deadline));
    if (n == 0) {
      return Status::Unavailable(name_ + " closed the connection after " + std::to_string(got) +
                                 " of " + std::to_string(body.size()) + " body bytes");
    }
    got += n;
  }
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

Status LeanClient::CompareBody(ByteSpan expect, Clock::time_point deadline) {
  auto differ = [&](size_t offset, ByteSpan got) {
    auto at = std::mismatch(got.begin(), got.end(), expect.begin() + offset).first;
    return Status::Corruption(name_ + " returned other bytes than the shard's, from offset " +
                              std::to_string(offset + static_cast<size_t>(at - got.begin())));
  };
  const size_t kept = in_len_ - body_begin_;
  if (kept > expect.size()) {
    return Status::Corruption(name_ + " sent " + std::to_string(kept - expect.size()) +
                              " bytes past the end of its response");
  }
  ByteSpan first = ByteSpan(in_).subspan(body_begin_, kept);
  if (std::memcmp(first.data(), expect.data(), kept) != 0) return differ(0, first);
  in_len_ = body_begin_ = 0;
  for (size_t got = kept; got < expect.size();) {
    // MSG_WAITALL: one wake-up and one system call per read_bytes, not one per segment; the
    // piece is compared while the copy has left it in the cache.
    MutableByteSpan piece =
        MutableByteSpan(body_).first(std::min(body_.size(), expect.size() - got));
    SFS_ASSIGN_OR_RETURN(size_t n, Receive(piece, true, deadline));
    if (n == 0) {
      return Status::Corruption(name_ + " closed the connection after " + std::to_string(got) +
                                " of " + std::to_string(expect.size()) + " body bytes");
    }
    if (std::memcmp(piece.data(), expect.data() + got, n) != 0) return differ(got, piece.first(n));
    got += n;
  }
  return Status::Ok();
}

void LeanClient::Finish(const ResponseHead& h) {
  if (h.close) fd_.Reset();
}

Status LeanClient::Put(const ShardId& id, ByteSpan data) {
  const auto deadline = Clock::now() + options_.request_timeout;
  const std::string target = ShardTarget(id);
  auto exchange = [&]() -> Status {
    SFS_RETURN_IF_ERROR(Ready());
    // For a shard PUT the body root is the shard id itself (net/auth.h).
    SFS_RETURN_IF_ERROR(Send(RequestHead("PUT", target, id, data.size()), data, deadline));
    SFS_ASSIGN_OR_RETURN(ResponseHead h, ReadHead(deadline));
    SFS_ASSIGN_OR_RETURN(std::string body, ReadSmallBody(h, deadline));
    Finish(h);
    if (h.status == 201 || h.status == 200) return Status::Ok();
    return Status::Unavailable(name_ + " answered HTTP " + std::to_string(h.status) + " " +
                               body.substr(0, 500));
  };
  Status s = exchange();
  if (!s.ok()) fd_.Reset();  // whatever is left on it is of no use
  return s.WithContext("lean client: PUT " + target);
}

Status LeanClient::GetAndCompare(const ShardId& id, ByteSpan expect) {
  const auto deadline = Clock::now() + options_.request_timeout;
  const std::string target = ShardTarget(id);
  auto exchange = [&]() -> Status {
    SFS_RETURN_IF_ERROR(Ready());
    SFS_RETURN_IF_ERROR(
        Send(RequestHead("GET", target, net::EmptyBodyRoot(), std::nullopt), {}, deadline));
    SFS_ASSIGN_OR_RETURN(ResponseHead h, ReadHead(deadline));
    if (h.status != 200) {
      SFS_ASSIGN_OR_RETURN(std::string body, ReadSmallBody(h, deadline));
      return Status::Unavailable(name_ + " answered HTTP " + std::to_string(h.status) + " " +
                                 body.substr(0, 500));
    }
    if (h.content_length != expect.size()) {
      return Status::Corruption(name_ + " answered Content-Length " +
                                std::to_string(h.content_length) + ", not the shard's " +
                                std::to_string(expect.size()));
    }
    SFS_RETURN_IF_ERROR(CompareBody(expect, deadline));
    Finish(h);
    return Status::Ok();
  };
  Status s = exchange();
  if (!s.ok()) fd_.Reset();
  return s.WithContext("lean client: GET " + target);
}

}  // namespace shardfs::bench
