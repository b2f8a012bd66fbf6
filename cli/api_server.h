// The companion API as a long-running process serves it (`shardfs serve`, `shardfs mount
// --api`): always on the drive's unix socket (for the CLI's commands while the process owns
// the drive), and on TCP if asked: HTTPS with a certificate made on first start, or plain
// HTTP on a loopback address only (docs/api.md, "Serving").
//
// Thread safety: Start and Stop from one thread.

#ifndef SHARDFS_CLI_API_SERVER_H_
#define SHARDFS_CLI_API_SERVER_H_

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "backend/drive.h"
#include "base/status.h"
#include "cli/drive_home.h"
#include "net/api/api_service.h"
#include "net/http_server.h"

namespace shardfs::cli {

// The drive's runtime folder (mode 0700) and the API's socket in it.
inline std::string RuntimeDir(const DriveHome& h) { return h.data_dir + "/run"; }
inline std::string ApiSocketPath(const DriveHome& h) { return RuntimeDir(h) + "/api.sock"; }

struct ApiFlags {
  std::string listen;  // HOST:PORT for TCP; empty: the unix socket only
  bool http = false;   // plain HTTP (loopback only) instead of HTTPS
};

// Adds --http to `cmd` (the listen flag is the command's own: --listen or --api).
void AddApiHttpFlag(CLI::App* cmd, ApiFlags* flags);

class ApiServers {
 public:
  // Starts the API for `drive`: on ApiSocketPath(home), and on flags.listen if set.
  // InvalidArgument for a bad address, --http on an address that is not loopback, or a
  // socket path too long for a unix socket; the servers' and the certificate's errors.
  // `options`' url and fingerprint are set here. REQUIRES: drive outlives the servers.
  static Result<std::unique_ptr<ApiServers>> Start(backend::Drive* drive, const DriveHome& home,
                                                   const ApiFlags& flags, api::ApiOptions options);
  // Stop.
  ~ApiServers();

  // Answers the waiting long polls, then stops the servers (requests in progress get a few
  // seconds).
  void Stop();

  // "https://192.168.1.5:8443" ("" without TCP), and the certificate's fingerprint ("" for
  // plain HTTP).
  const std::string& url() const { return url_; }
  const std::string& fingerprint() const { return fingerprint_; }
  // Whether the certificate was made by this start.
  bool new_certificate() const { return new_certificate_; }
  api::ApiService& service() { return *service_; }

 private:
  ApiServers() = default;
  std::unique_ptr<api::ApiService> service_;
  std::unique_ptr<net::HttpServer> local_;
  std::unique_ptr<net::HttpServer> tcp_;
  std::string url_;
  std::string fingerprint_;
  bool new_certificate_ = false;
};

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_API_SERVER_H_
