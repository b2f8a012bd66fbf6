// Devices of the companion API: one-time pairing codes, the long-lived tokens they are
// exchanged for, and what a token may do (docs/api.md, "Devices and tokens").
//
// A pairing code is 8 characters from a 32-letter alphabet (40 bits), valid for a few minutes
// and once; codes live in this process only. Failed pairing attempts are rate-limited for
// the whole server (a sliding minute), so guessing a code takes longer than it lives. A token
// is 32 random bytes ("sfs_" and 64 hex digits); only its SHA-256 is stored (the catalog's
// devices table), so a copy of the catalog gives no token. A revoked token fails at once.
//
// Thread safety: all methods may be called from many threads.

#ifndef SHARDFS_NET_API_DEVICES_H_
#define SHARDFS_NET_API_DEVICES_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/catalog.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "net/api/api_path.h"

namespace shardfs::api {

struct DeviceOptions {
  // How long a pairing code may be used.
  std::chrono::seconds code_ttl{600};
  // Pairing codes waiting at once; a new one past this replaces the oldest.
  size_t max_codes = 16;
  // Failed pairing attempts (a wrong or expired code) allowed per minute, across all clients;
  // past it every attempt is refused (429) until the minute's oldest failure is a minute old.
  int max_failures_per_minute = 10;
  // A device's last use is written to the catalog at most this often.
  std::chrono::seconds touch_interval{60};
};

// What a request may do: who made it, and its scope.
struct Principal {
  uint64_t device_id = 0;  // 0: the owner, on the local socket
  std::string name;
  bool read_only = false;
  Names root;  // the folder it is confined to (empty: the whole drive)
  // May manage devices and sync: the owner, or a device with the whole drive, read-write.
  bool Owner() const { return !read_only && root.empty(); }
};

// A pairing code as the owner gets it.
struct PairCode {
  std::string code;  // "ABCD-EFGH"
  int64_t expires_ns = 0;
  std::string name;
  bool read_only = false;
  std::string root = "/";
};

class DeviceRegistry {
 public:
  // REQUIRES: catalog outlives the registry. `clock`: nanoseconds since the epoch (the real
  // clock if empty).
  DeviceRegistry(backend::Catalog* catalog, DeviceOptions options,
                 std::function<int64_t()> clock = nullptr);

  // A new pairing code for a device to be named `name` (a default if empty), read-only or
  // not, confined to `root`. InvalidArgument for a bad root path.
  Result<PairCode> NewCode(std::string name, bool read_only, const std::string& root);

  // Exchanges `code` (any case, with or without its '-') for a token: the device is recorded
  // with the code's scope and `name` (the code's name if empty), and the code is used up.
  // Returns the device and its token. PermissionDenied for an unknown, used or expired code
  // (counted as a failure); Busy while failures are over the limit; InvalidArgument for a
  // name that is not UTF-8 or longer than 200 bytes.
  Result<std::pair<backend::DeviceRecord, std::string>> Pair(std::string_view code,
                                                             std::string name);

  // The device of `token`. PermissionDenied for an unknown or revoked token.
  Result<Principal> Authenticate(std::string_view token);

  Result<std::vector<backend::DeviceRecord>> List();
  // Revokes device `id` at once. NotFound.
  Result<backend::DeviceRecord> Revoke(uint64_t id);

  // The Principal of a device record (its root split into names).
  static Principal PrincipalOf(const backend::DeviceRecord& d);

 private:
  int64_t Now() const;
  // Forgets failures older than a minute; true if the limit is reached.
  bool OverLimitLocked(int64_t now) REQUIRES(mu_);

  backend::Catalog* catalog_;
  const DeviceOptions options_;
  std::function<int64_t()> clock_;
  Mutex mu_;
  // Pending codes by their canonical form (upper case, no '-').
  std::map<std::string, PairCode> codes_ GUARDED_BY(mu_);
  std::deque<int64_t> failures_ GUARDED_BY(mu_);
  // When each device's last use was last written.
  std::unordered_map<uint64_t, int64_t> touched_ GUARDED_BY(mu_);
};

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_DEVICES_H_
