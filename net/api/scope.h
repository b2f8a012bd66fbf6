// Where a request's path leads within a device's scope: the walk from the drive's root
// through the device's root folder to the entry named, never through a symlink
// (docs/api.md, "Devices and tokens").
//
// Thread safety: as the Drive's.

#ifndef SHARDFS_NET_API_SCOPE_H_
#define SHARDFS_NET_API_SCOPE_H_

#include <optional>
#include <string>

#include "backend/drive.h"
#include "base/status.h"
#include "net/api/api_path.h"
#include "net/api/devices.h"

namespace shardfs::api {

struct Located {
  Names rel;                // relative to the scope
  backend::Ino parent = 0;  // its folder (0 for the scope's root itself)
  std::string name;
  std::optional<backend::InodeAttr> attr;  // if it exists
};

// The entry at `rel` in `who`'s scope. Its folders must exist and be folders (NotFound,
// NotDirectory; a symlink is not followed); the entry itself may be missing (attr unset),
// but not the scope's root.
Result<Located> Locate(backend::Drive& drive, const Principal& who, const Names& rel);

// Makes the folders of `rel` (not its last name) that are missing, below `who`'s root (which
// must exist), and returns where `rel` leads then. `made(parent, name)` is called for each
// folder made.
Result<Located> LocateMakingFolders(
    backend::Drive& drive, const Principal& who, const Names& rel,
    const std::function<void(backend::Ino, const std::string&)>& made);

// The folder at `rel` in `who`'s scope. With `make`, it and the folders above it are made
// where missing (`made(parent, name)` for each, and *made_last set if it was), else a missing
// one is NotFound. NotDirectory if a name on the way is not a folder.
Result<backend::InodeAttr> EnsureFolder(
    backend::Drive& drive, const Principal& who, const Names& rel, bool make,
    const std::function<void(backend::Ino, const std::string&)>& made, bool* made_last = nullptr);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_SCOPE_H_
