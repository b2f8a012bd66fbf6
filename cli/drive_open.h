// Opening an existing drive for a command: its home, config and key, its nodes as peers,
// and the Drive; and turning a drive path ("/photos/2026/a.jpg") into an inode.

#ifndef SHARDFS_CLI_DRIVE_OPEN_H_
#define SHARDFS_CLI_DRIVE_OPEN_H_

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/drive.h"
#include "base/status.h"

namespace shardfs::cli {

// The flags every command on a drive takes.
struct DriveFlags {
  std::string home;
  std::string drive = "default";
  std::string passphrase_file;
};

// Adds --home, --drive and --passphrase-file to `cmd`.
void AddDriveFlags(CLI::App* cmd, DriveFlags* flags);

// Opens the drive: NotFound if there is none in that home; the key file's and config's
// errors; Busy if another process has it. `holder` names this process in the drive's lock.
// The drive learns the network's member list from its nodes (net::HttpMembership); with
// `care` (a long-running process: the mount) it also audits and repairs in the background.
Result<std::unique_ptr<backend::Drive>> OpenDrive(const DriveFlags& flags,
                                                  const std::string& holder, bool care = false);

// The names in a '/'-separated path, without empty parts and ".".
std::vector<std::string> PathParts(const std::string& path);

// OK if `path` is absolute and has no "..": InvalidArgument otherwise.
Status CheckDrivePath(const std::string& path);

// The inode at `path` (absolute, '/'-separated; empty parts and "." are skipped, ".." is
// refused). NotFound, NotDirectory as Lookup says; InvalidArgument for a relative path or "..".
Result<backend::InodeAttr> ResolvePath(backend::Catalog& catalog, const std::string& path);

// Splits an absolute path into its parent's inode and its last name. InvalidArgument for "/".
Result<std::pair<backend::Ino, std::string>> ResolveParent(backend::Catalog& catalog,
                                                           const std::string& path);

// The passphrase on the first line of `path` (shared with init). InvalidArgument if empty.
Result<std::string> ReadPassphraseFile(const std::string& path);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_DRIVE_OPEN_H_
