#include "net/local_client.h"

#include <algorithm>
#include <memory>

#include <httplib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardfs::net {

namespace {

// The most of an error answer's body a download keeps.
constexpr size_t kMaxErrorBody = 64 * 1024;
// The piece an upload reads and sends at a time.
constexpr size_t kUploadPiece = 1 << 20;

Result<std::unique_ptr<httplib::Client>> Connect(const std::string& socket_path,
                                                 std::chrono::milliseconds timeout) {
  if (!LocalServerRuns(socket_path)) {
    return Status::Unavailable("no shardfs process serves the drive (" + socket_path + ")");
  }
  auto client = std::make_unique<httplib::Client>(socket_path);
  client->set_address_family(AF_UNIX);
  client->set_connection_timeout(std::chrono::seconds(5));
  auto secs =
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
  client->set_read_timeout(secs, 0);
  client->set_write_timeout(secs, 0);
  return client;
}

// The answer, or what went wrong: `failed` (a sink's or reader's error) first.
Result<LocalReply> Reply(const httplib::Result& res, const Status& failed,
                         std::chrono::milliseconds timeout) {
  if (!failed.ok()) return failed;
  if (!res) {
    if (res.error() == httplib::Error::Read) {
      return Status::DeadlineExceeded(
          "no answer from the drive's process within " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s");
    }
    return Status::IOError("the drive's socket: " + httplib::to_string(res.error()));
  }
  LocalReply out;
  out.status = res->status;
  out.body = res->body;
  for (const auto& [k, v] : res->headers) out.headers.emplace_back(k, v);
  return out;
}

}  // namespace

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
  SFS_ASSIGN_OR_RETURN(auto client, Connect(socket_path, timeout));
  httplib::Request req;
  req.method = method;
  req.path = target;
  req.body = body;
  if (!body.empty()) req.set_header("Content-Type", "application/json");
  if (method == "POST" || method == "PUT" || method == "PATCH") {
    req.set_header("Content-Length", std::to_string(body.size()));
  }
  return Reply(client->send(req), Status::Ok(), timeout);
}

Result<LocalReply> LocalDownload(const std::string& socket_path, const std::string& target,
                                 const std::function<Status(ByteSpan)>& sink,
                                 std::chrono::milliseconds timeout) {
  SFS_ASSIGN_OR_RETURN(auto client, Connect(socket_path, timeout));
  int status = 0;
  std::string error_body;
  Status failed;
  httplib::Result res = client->Get(
      target,
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (status < 200 || status >= 300) {
          error_body.append(
              data, std::min(n, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
          return true;
        }
        failed = sink(ByteSpan(reinterpret_cast<const uint8_t*>(data), n));
        return failed.ok();
      });
  SFS_ASSIGN_OR_RETURN(LocalReply out, Reply(res, failed, timeout));
  out.body = std::move(error_body);
  return out;
}

Result<LocalReply> LocalUpload(const std::string& socket_path, const std::string& target,
                               const LocalHeaders& headers, uint64_t size,
                               const std::function<Result<size_t>(uint64_t, MutableByteSpan)>& read,
                               std::chrono::milliseconds timeout) {
  SFS_ASSIGN_OR_RETURN(auto client, Connect(socket_path, timeout));
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  Bytes buf(static_cast<size_t>(std::min<uint64_t>(kUploadPiece, std::max<uint64_t>(size, 1))));
  Status failed;
  httplib::Result res = client->Put(
      target, h, static_cast<size_t>(size),
      [&](size_t offset, size_t length, httplib::DataSink& out) {
        auto n = read(offset, MutableByteSpan(buf).first(std::min(length, buf.size())));
        if (!n.ok() || *n == 0) {
          failed = n.ok() ? Status::IOError("the file ended before its size") : n.status();
          return false;
        }
        return out.write(reinterpret_cast<const char*>(buf.data()), *n);
      },
      "application/octet-stream");
  return Reply(res, failed, timeout);
}

}  // namespace shardfs::net
