// Where a drive's files live on this machine (docs/format.md, "Drive home"): with --home DIR,
// all in DIR; otherwise in the XDG folders, one subfolder per drive name.
//
// Thread safety: values; ResolveDriveHome reads the environment.

#ifndef SHARDFS_CLI_DRIVE_HOME_H_
#define SHARDFS_CLI_DRIVE_HOME_H_

#include <string>

#include "base/status.h"

namespace shardfs::cli {

struct DriveHome {
  std::string config_dir;  // the config file and the key file
  std::string data_dir;    // the catalog and the staging area
  std::string cache_dir;   // cached chunks (may be wiped at any time)

  std::string config_file() const { return config_dir + "/config.toml"; }
  std::string key_file() const { return config_dir + "/key"; }
  std::string catalog_file() const { return data_dir + "/catalog.db"; }
  // Bytes written but not yet stored on the network: not in the cache folder, which cleaners
  // may wipe.
  std::string staging_dir() const { return data_dir + "/staging"; }
  // The cache of decrypted chunks (docs/format.md, "Chunk cache").
  std::string chunk_cache_dir() const { return cache_dir + "/chunks"; }
};

// `home` if not empty; else $XDG_CONFIG_HOME (default ~/.config), $XDG_DATA_HOME
// (~/.local/share) and $XDG_CACHE_HOME (~/.cache), each + "/shardfs/" + `drive`.
// InvalidArgument if neither `home` nor $HOME (nor the XDG variables) say where.
Result<DriveHome> ResolveDriveHome(const std::string& home, const std::string& drive);

// Creates the three folders (mode 0700) and their parents as needed.
Status MakeDriveHome(const DriveHome& home);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_DRIVE_HOME_H_
