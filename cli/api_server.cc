#include "cli/api_server.h"

#include <filesystem>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/logging.h"
#include "net/address.h"
#include "net/tls_cert.h"

namespace shardfs::cli {

namespace {

bool IsLoopback(const std::string& host) {
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

// An address of this machine that other devices can reach: the first IPv4 address of an
// interface that is up and not loopback; else the host name.
std::string ReachableAddress() {
  ifaddrs* list = nullptr;
  std::string found;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
      if ((a->ifa_flags & IFF_UP) == 0 || (a->ifa_flags & IFF_LOOPBACK) != 0) continue;
      char buf[INET_ADDRSTRLEN];
      auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      if (::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) found = buf;
    }
    ::freeifaddrs(list);
  }
  if (!found.empty()) return found;
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  return host;
}

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

}  // namespace

void AddApiHttpFlag(CLI::App* cmd, ApiFlags* flags) {
  cmd->add_flag("--http", flags->http,
                "Serve plain HTTP instead of HTTPS (on a loopback address only)");
}

Result<std::unique_ptr<ApiServers>> ApiServers::Start(backend::Drive* drive, const DriveHome& home,
                                                      const ApiFlags& flags,
                                                      api::ApiOptions options) {
  std::unique_ptr<ApiServers> s(new ApiServers());
  std::optional<net::HostPort> listen;
  if (!flags.listen.empty()) {
    SFS_ASSIGN_OR_RETURN(net::HostPort hp, net::ParseHostPort(flags.listen, true));
    if (hp.host == "localhost") hp.host = "127.0.0.1";
    if (flags.http && !IsLoopback(hp.host)) {
      return Status::InvalidArgument(
          "--http serves plain HTTP, which anyone on the network could read and change: it "
          "is allowed on a loopback address only (127.0.0.1, ::1). Leave out --http to serve "
          "HTTPS on " +
          hp.host);
    }
    listen = hp;
  } else if (flags.http) {
    return Status::InvalidArgument("--http needs an address to listen on");
  }

  // The unix socket, in a folder only the owner may enter.
  const std::string socket_path = ApiSocketPath(home);
  if (socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Status::InvalidArgument("the API socket path " + socket_path +
                                   " is too long for a unix socket (at most 107 bytes); use a "
                                   "shorter --home");
  }
  std::error_code ec;
  std::filesystem::create_directories(RuntimeDir(home), ec);
  if (ec) return PosixError("create " + RuntimeDir(home), ec.value());
  if (::chmod(RuntimeDir(home).c_str(), 0700) != 0) {
    return PosixError("chmod " + RuntimeDir(home), errno);
  }

  std::optional<net::TlsCredentials> tls;
  std::string shown_host;  // the host in the URL devices are given
  if (listen) {
    shown_host = listen->host;
    if (shown_host == "0.0.0.0" || shown_host == "::") shown_host = ReachableAddress();
    if (!flags.http) {
      std::vector<std::string> names = {"localhost", "127.0.0.1", "::1", shown_host};
      if (std::string h = HostName(); !h.empty()) names.push_back(h);
      SFS_ASSIGN_OR_RETURN(tls, net::LoadOrCreateCertificate(home.data_dir, "shardfs " + shown_host,
                                                             names, &s->new_certificate_));
      SFS_ASSIGN_OR_RETURN(s->fingerprint_, net::CertificateFingerprint(tls->cert_pem));
    }
  }
  s->service_ = std::make_unique<api::ApiService>(drive, std::move(options));

  net::HttpServerOptions local;
  local.unix_path = socket_path;
  local.threads = 4;
  local.io_buffer_bytes = 1 << 20;
  s->local_ = std::make_unique<net::HttpServer>(local, s->service_.get());
  SFS_RETURN_IF_ERROR(s->local_->Start().WithContext("the API's unix socket"));
  if (listen) {
    net::HttpServerOptions tcp;
    tcp.address = listen->host;
    tcp.port = listen->port;
    tcp.tls = tls;
    tcp.io_buffer_bytes = 1 << 20;
    s->tcp_ = std::make_unique<net::HttpServer>(tcp, s->service_.get());
    SFS_RETURN_IF_ERROR(s->tcp_->Start().WithContext("the API on " + flags.listen));
    // Known once listening: a port of 0 was picked then.
    s->url_ = (flags.http ? "http://" : "https://") +
              net::HostPort{shown_host, s->tcp_->port()}.ToString();
  }
  s->service_->SetAddress(s->url_, s->fingerprint_);
  return s;
}

ApiServers::~ApiServers() { Stop(); }

void ApiServers::Stop() {
  if (service_) service_->Shutdown();
  if (tcp_) tcp_->Stop(std::chrono::seconds(5));
  if (local_) local_->Stop(std::chrono::seconds(5));
  tcp_.reset();
  local_.reset();
  service_.reset();
}

}  // namespace shardfs::cli
