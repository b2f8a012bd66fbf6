// The companion API (docs/api.md): REST under /api/v1 (listing, stat, download with Range and
// ETag, conflict-safe streamed upload, mkdir, delete, move, the changes feed, status, pairing
// and devices), served by the process that owns the drive. An HttpHandler: requests in,
// responses out, no sockets (the HttpServer instances of `shardfs serve` and `shardfs mount
// --api` carry it: one on TCP, with TLS or on loopback without, one on the drive's unix
// socket).
//
// Every request but the health probe and pairing needs a device's token (Bearer, or the
// password of Basic auth), except on the unix socket, whose folder's permissions admit only
// the drive's owner. A device sees and changes only its scope; a read-only one changes
// nothing.
//
// An upload is written into a file with no name (Drive::CreateUnlinked) and takes its name
// only when its last byte has arrived (Drive::LinkUnlinked), after its If-Match or
// If-None-Match conditions are checked again: an upload cut short changes nothing, and two
// racing uploads never mix.
//
// Thread safety: Begin may be called from many threads at once.

#ifndef SHARDFS_NET_API_API_SERVICE_H_
#define SHARDFS_NET_API_API_SERVICE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backend/drive.h"
#include "base/status.h"
#include "net/api/devices.h"
#include "net/http_types.h"

namespace shardfs::api {

struct ApiOptions {
  // The drive's name, as status shows it.
  std::string drive_name = "default";
  // Where devices reach the API ("https://192.168.1.5:8443"), and the SHA-256 fingerprint of
  // its certificate (empty for plain HTTP): what pairing hands out.
  std::string url;
  std::string fingerprint;
  DeviceOptions devices;
  // The longest a changes request may wait (its "wait" is cut to this).
  std::chrono::seconds max_wait{60};
  // Entries per listing page: by default, and at most.
  size_t default_page = 500;
  size_t max_page = 5000;
  // Journal rows per changes page: by default, and at most.
  size_t default_changes = 1000;
  size_t max_changes = 10000;
  // How long an upload with ?durable=1 waits for its bytes to be stored on the nodes.
  std::chrono::milliseconds durable_timeout{120000};
  // How long the nodes' free space (asked of every node) is reused for uploads and status.
  std::chrono::seconds space_cache{10};
  // Called after the API changed an inode's contents or attributes, and an entry of a folder
  // (a mount drops what the kernel cached of them). Called with no lock held.
  std::function<void(backend::Ino)> invalidate_inode;
  std::function<void(backend::Ino, const std::string&)> invalidate_entry;
  // POST /api/v1/sync: first `before_sync` (a mount hands over the kernel's cached writes),
  // then the queued uploads, waited for up to sync_timeout (a long-running process's
  // --flush-timeout), then a checkpoint unless the request asks for none.
  std::function<void()> before_sync;
  std::chrono::milliseconds sync_timeout{120000};
};

class ApiService : public net::HttpHandler {
 public:
  // REQUIRES: drive outlives the service.
  ApiService(backend::Drive* drive, ApiOptions options);
  // Shutdown.
  ~ApiService() override;
  ApiService(const ApiService&) = delete;
  ApiService& operator=(const ApiService&) = delete;

  net::Dispatch Begin(const net::HttpRequestHead& head) override;
  net::HttpResponse Overloaded() override;

  // Answers every waiting long poll (call before the servers stop).
  void Shutdown();

  // Sets what pairing hands out (ApiOptions::url and fingerprint), once the server knows its
  // port.
  void SetAddress(std::string url, std::string fingerprint);

  DeviceRegistry& devices();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_API_SERVICE_H_
