#include "net/api/devices.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "base/bytes.h"
#include "base/wall_clock.h"
#include "crypto/hash.h"
#include "crypto/secret.h"

namespace shardfs::api {

namespace {
// 32 letters without 0/O and 1/I, which are easy to misread.
constexpr char kCodeAlphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
constexpr size_t kCodeLength = 8;
constexpr std::string_view kTokenPrefix = "sfs_";
constexpr size_t kMaxDeviceName = 200;
constexpr int64_t kMinuteNs = int64_t{60} * 1000 * 1000 * 1000;

// Upper case without '-' and spaces; "" if it holds anything else.
std::string CanonicalCode(std::string_view code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (std::string_view(kCodeAlphabet).find(u) == std::string_view::npos) return "";
    out.push_back(u);
  }
  return out.size() == kCodeLength ? out : "";
}

Status CheckDeviceName(std::string_view name) {
  if (!IsValidUtf8(name) || name.size() > kMaxDeviceName) {
    return Status::InvalidArgument("a device name must be UTF-8 of at most " +
                                   std::to_string(kMaxDeviceName) + " bytes");
  }
  return Status::Ok();
}

Bytes TokenHash(std::string_view token) {
  auto d = crypto::Sha256(AsBytes(token));
  return Bytes(d.begin(), d.end());
}
}  // namespace

DeviceRegistry::DeviceRegistry(backend::Catalog* catalog, DeviceOptions options,
                               std::function<int64_t()> clock)
    : catalog_(catalog), options_(options), clock_(std::move(clock)) {}

int64_t DeviceRegistry::Now() const { return clock_ ? clock_() : WallClockNs(); }

Principal DeviceRegistry::PrincipalOf(const backend::DeviceRecord& d) {
  Principal p;
  p.device_id = d.id;
  p.name = d.name;
  p.read_only = d.read_only;
  auto root = SplitPath(d.root);
  // A root that no longer parses (it did when the device paired) confines to nothing useful
  // rather than to the whole drive.
  p.root = root.ok() ? *root : Names{"\x01invalid root"};
  return p;
}

Result<PairCode> DeviceRegistry::NewCode(std::string name, bool read_only,
                                         const std::string& root) {
  SFS_ASSIGN_OR_RETURN(Names root_names, SplitPath(root));
  SFS_RETURN_IF_ERROR(CheckDeviceName(name));
  std::array<uint8_t, kCodeLength> random;
  crypto::RandomBytes(random);
  std::string canonical;
  for (uint8_t b : random) canonical.push_back(kCodeAlphabet[b % 32]);
  PairCode code;
  code.code = canonical.substr(0, 4) + "-" + canonical.substr(4);
  code.expires_ns =
      Now() + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.code_ttl).count();
  code.name = std::move(name);
  code.read_only = read_only;
  code.root = JoinPath(root_names);
  MutexLock lock(&mu_);
  int64_t now = Now();
  for (auto it = codes_.begin(); it != codes_.end();) {
    it = it->second.expires_ns <= now ? codes_.erase(it) : std::next(it);
  }
  while (codes_.size() >= options_.max_codes) {
    auto oldest = std::min_element(codes_.begin(), codes_.end(), [](const auto& a, const auto& b) {
      return a.second.expires_ns < b.second.expires_ns;
    });
    codes_.erase(oldest);
  }
  codes_[canonical] = code;
  return code;
}

bool DeviceRegistry::OverLimitLocked(int64_t now) {
  while (!failures_.empty() && failures_.front() <= now - kMinuteNs) failures_.pop_front();
  return failures_.size() >= static_cast<size_t>(std::max(1, options_.max_failures_per_minute));
}

Result<std::pair<backend::DeviceRecord, std::string>> DeviceRegistry::Pair(std::string_view code,
                                                                           std::string name) {
  SFS_RETURN_IF_ERROR(CheckDeviceName(name));
  PairCode found;
  {
    MutexLock lock(&mu_);
    int64_t now = Now();
    if (OverLimitLocked(now)) {
      return Status::Busy("too many failed pairing attempts; try again in a minute");
    }
    auto it = codes_.find(CanonicalCode(code));
    if (it == codes_.end() || it->second.expires_ns <= now) {
      if (it != codes_.end()) codes_.erase(it);
      failures_.push_back(now);
      return Status::PermissionDenied("unknown or expired pairing code");
    }
    found = it->second;
    codes_.erase(it);
  }
  std::array<uint8_t, 32> secret;
  crypto::RandomBytes(secret);
  std::string token = std::string(kTokenPrefix) + HexEncode(secret);
  backend::DeviceRecord d;
  d.name = !name.empty() ? std::move(name) : !found.name.empty() ? found.name : "device";
  d.token_hash = TokenHash(token);
  d.read_only = found.read_only;
  d.root = found.root;
  SFS_ASSIGN_OR_RETURN(backend::DeviceRecord added, catalog_->AddDevice(std::move(d)));
  return std::make_pair(std::move(added), std::move(token));
}

Result<Principal> DeviceRegistry::Authenticate(std::string_view token) {
  if (token.substr(0, kTokenPrefix.size()) != kTokenPrefix || token.size() > 200) {
    return Status::PermissionDenied("not a shardfs token");
  }
  SFS_ASSIGN_OR_RETURN(auto found, catalog_->FindDevice(TokenHash(token)));
  if (!found) return Status::PermissionDenied("unknown token");
  if (found->revoked_ns != 0) return Status::PermissionDenied("this device was revoked");
  int64_t now = Now();
  bool touch = false;
  {
    MutexLock lock(&mu_);
    int64_t& last = touched_[found->id];
    auto every = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.touch_interval);
    if (now - last >= every.count()) {
      last = now;
      touch = true;
    }
  }
  // Best effort: a device whose last use cannot be written is still served.
  if (touch) (void)catalog_->TouchDevice(found->id, now);
  return PrincipalOf(*found);
}

Result<std::vector<backend::DeviceRecord>> DeviceRegistry::List() {
  return catalog_->ListDevices();
}

Result<backend::DeviceRecord> DeviceRegistry::Revoke(uint64_t id) {
  return catalog_->RevokeDevice(id);
}

}  // namespace shardfs::api
