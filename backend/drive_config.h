// A drive's configuration file (docs/format.md, "Drive config"): its name, its erasure code
// and the storage nodes it starts from. Written by `shardfs init`, read by every command that
// opens the drive.
//
// Thread safety: values and free functions; thread-safe.

#ifndef SHARDFS_BACKEND_DRIVE_CONFIG_H_
#define SHARDFS_BACKEND_DRIVE_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"

namespace shardfs::backend {

inline constexpr int kDriveConfigFormat = 1;

struct DriveNode {
  std::string address;  // HOST:PORT
  NodeId id;            // as the node said at init (its public key)

  friend bool operator==(const DriveNode&, const DriveNode&) = default;
};

struct DriveConfig {
  std::string name = "default";
  int k = 4;  // data shards per pack
  int m = 2;  // parity shards per pack
  std::vector<DriveNode> nodes;

  friend bool operator==(const DriveConfig&, const DriveConfig&) = default;
};

// InvalidArgument, saying what is wrong, unless: the name is 1-64 of [A-Za-z0-9._-] and does
// not start with '.'; 1 <= k, 1 <= m, k + m <= 32; node addresses are non-empty and distinct.
Status ValidateDriveConfig(const DriveConfig& config);

// TOML text of a valid config.
std::string EncodeDriveConfig(const DriveConfig& config);
// Parses and validates. InvalidArgument (with the line, for a TOML syntax error) for a bad
// file; NotSupported for another format version. Unknown keys are errors: a misspelt key is
// not silently ignored.
Result<DriveConfig> ParseDriveConfig(std::string_view text);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_DRIVE_CONFIG_H_
