#include "net/http_wire.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shardfs::net::wire {

namespace {

namespace http = boost::beast::http;

// The longest answer head taken (status line and headers).
constexpr size_t kMaxHead = 64 * 1024;
// Bytes asked of each recv(2) while the head is read (the body goes straight to its buffer).
constexpr size_t kHeadRead = 16 * 1024;

int Millis(std::chrono::milliseconds t) {
  return static_cast<int>(std::clamp<int64_t>(t.count(), 0, 1 << 30));
}

// Waits until `fd` is ready for `events`, at most `timeout`.
Outcome Await(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, Millis(timeout));
    if (r > 0) return Outcome::kOk;
    if (r == 0) return Outcome::kStalled;
    if (errno != EINTR) return Outcome::kBroken;
  }
}

// One recv(2) of up to out.size() bytes, waiting while none are there. *n: bytes read (0:
// the other end closed).
Outcome Receive(int fd, MutableByteSpan out, std::chrono::milliseconds io_timeout, size_t* n) {
  for (;;) {
    ssize_t r = ::recv(fd, out.data(), out.size(), 0);
    if (r >= 0) {
      *n = static_cast<size_t>(r);
      return Outcome::kOk;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Outcome::kBroken;
    if (Outcome w = Await(fd, POLLIN, io_timeout); w != Outcome::kOk) return w;
  }
}

}  // namespace

Outcome Connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
                const std::function<void(int)>& adopt, int* fd) {
  *fd = -1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
    return Outcome::kRefused;
  }
  Outcome outcome = Outcome::kRefused;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int s = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (s < 0) {
      outcome = Outcome::kBroken;
      continue;
    }
    adopt(s);
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int err = 0;
    if (::connect(s, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        Outcome w = Await(s, POLLOUT, std::max(left, std::chrono::milliseconds(0)));
        socklen_t len = sizeof err;
        if (w == Outcome::kStalled) {
          err = ETIMEDOUT;
        } else if (w != Outcome::kOk || ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
          err = err == 0 ? ECONNABORTED : err;
        }
      }
    }
    if (err == 0) {
      ::freeaddrinfo(found);
      *fd = s;
      return Outcome::kOk;
    }
    ::close(s);
    outcome = err == ETIMEDOUT ? Outcome::kConnectTimeout
              : err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH ? Outcome::kRefused
                                                                                 : Outcome::kBroken;
    if (outcome == Outcome::kConnectTimeout) break;  // the time is up for every address
  }
  ::freeaddrinfo(found);
  return outcome;
}

bool Reusable(int fd) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return true;  // nothing to read: open and quiet
  if (r < 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return false;
  uint8_t byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);  // 0: closed; > 0: unasked bytes
}

Outcome Exchange(int fd, std::string_view request, MutableByteSpan into, uint64_t max_body,
                 std::chrono::milliseconds io_timeout, const std::function<void()>& on_head,
                 const std::function<void()>& on_progress, Answer* answer) {
  *answer = Answer();
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      on_progress();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (Outcome w = Await(fd, POLLOUT, io_timeout); w != Outcome::kOk) return w;
      continue;
    }
    return Outcome::kBroken;
  }

  // The head. Beast takes what it can of it (the start line, then the header fields once they
  // are all there) and says how much it took.
  http::response_parser<http::empty_body> parser;
  parser.eager(false);
  parser.header_limit(kMaxHead);
  std::string head;
  size_t head_size = 0;  // bytes of `head` the parser took
  for (;;) {
    const size_t at = head.size();
    if (at >= kMaxHead) return Outcome::kMalformed;
    head.resize(at + kHeadRead);
    size_t n = 0;
    Outcome r =
        Receive(fd, MutableByteSpan(reinterpret_cast<uint8_t*>(head.data()) + at, kHeadRead),
                io_timeout, &n);
    head.resize(at + n);
    if (r != Outcome::kOk) return r;
    if (n == 0) return Outcome::kBroken;
    on_progress();
    boost::beast::error_code ec;
    head_size +=
        parser.put(boost::asio::buffer(head.data() + head_size, head.size() - head_size), ec);
    if (ec == http::error::need_more) continue;
    if (ec || !parser.is_header_done()) return Outcome::kMalformed;
    break;
  }
  const auto& msg = parser.get();
  answer->status = static_cast<int>(msg.result_int());
  answer->keep_alive = parser.keep_alive();
  if (auto it = msg.find(http::field::content_range); it != msg.end()) {
    answer->content_range = std::string(it->value());
  }
  on_head();
  uint64_t length = 0;
  if (!parser.is_done()) {  // a body follows (not a 204 or 304)
    if (parser.chunked() || !parser.content_length()) return Outcome::kMalformed;
    length = *parser.content_length();
  }
  answer->content_length = length;
  answer->into = !into.empty() && answer->status / 100 == 2;
  MutableByteSpan body;
  if (answer->into) {
    if (length > into.size()) return Outcome::kTooBig;
    body = into.first(length);
  } else {
    if (length > max_body) return Outcome::kTooBig;
    answer->body.resize(length);
    body = answer->body;
  }
  // What came with the head, then the rest straight into place.
  const size_t early = head.size() - head_size;
  uint64_t got = std::min<uint64_t>(early, length);
  if (got > 0) std::memcpy(body.data(), head.data() + head_size, got);
  if (early > length) answer->keep_alive = false;  // more than the answer: not reused
  while (got < length) {
    size_t n = 0;
    Outcome r = Receive(fd, body.subspan(got), io_timeout, &n);
    if (r == Outcome::kOk && n == 0) r = Outcome::kBroken;  // closed before the end
    if (r != Outcome::kOk) {
      if (answer->into) answer->received = got;
      return r;
    }
    got += n;
    on_progress();
  }
  if (answer->into) answer->received = got;
  return Outcome::kOk;
}

}  // namespace shardfs::net::wire
