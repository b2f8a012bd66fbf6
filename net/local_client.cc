#include "net/local_client.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardfs::net {

bool LocalServerRuns(const std::string& socket_path) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) return false;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  addr.sun_family = AF_UNIX;
  socket_path.copy(addr.sun_path, socket_path.size());
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

Result<LocalReply> LocalRequest(const std::string& socket_path, const std::string& method,
                                const std::string& target, const std::string& body,
                                std::chrono::milliseconds timeout) {
  if (!LocalServerRuns(socket_path)) {
    return Status::Unavailable("no shardfs process serves the drive (" + socket_path + ")");
  }
  httplib::Client client(socket_path);
  client.set_address_family(AF_UNIX);
  client.set_connection_timeout(std::chrono::seconds(5));
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  client.set_read_timeout(std::max<int64_t>(1, secs.count()), 0);
  client.set_write_timeout(std::max<int64_t>(1, secs.count()), 0);
  httplib::Request req;
  req.method = method;
  req.path = target;
  req.body = body;
  if (!body.empty()) req.set_header("Content-Type", "application/json");
  if (method == "POST" || method == "PUT") {
    req.set_header("Content-Length", std::to_string(body.size()));
  }
  httplib::Result res = client.send(req);
  if (!res) {
    if (res.error() == httplib::Error::Read) {
      return Status::DeadlineExceeded("no answer from the drive's process within " +
                                      std::to_string(secs.count()) + " s");
    }
    return Status::IOError("the drive's socket: " + httplib::to_string(res.error()));
  }
  LocalReply out;
  out.status = res->status;
  out.body = res->body;
  for (const auto& [k, v] : res->headers) out.headers.emplace_back(k, v);
  return out;
}

}  // namespace shardfs::net
