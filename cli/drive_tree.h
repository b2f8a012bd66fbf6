// The drive as the file commands (ls, stat, du, get, mkdir, rm, mv) see it, by path: either
// the drive opened in this process, or the drive that a mount or `shardfs serve` holds,
// reached through the REST API on its unix socket (as the owner). The commands are written
// once, against DriveTree, and work the same whether the drive is mounted or not.
//
// Thread safety: a LocalTree is as thread-safe as its Drive; a DaemonTree may be used from
// many threads (each request has its own connection).

#ifndef SHARDFS_CLI_DRIVE_TREE_H_
#define SHARDFS_CLI_DRIVE_TREE_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/drive.h"
#include "base/bytes.h"
#include "base/status.h"
#include "cli/drive_open.h"

namespace shardfs::cli {

// One page of a folder's entries in name order; `next` is where the next page starts, empty
// after the last.
struct TreePage {
  std::vector<backend::DirEntry> entries;
  std::string next;
};

class DriveTree {
 public:
  virtual ~DriveTree() = default;

  // The entry at `path` (absolute, '/'-separated). InvalidArgument for a relative path or
  // "..", NotFound, NotDirectory.
  virtual Result<backend::InodeAttr> Stat(const std::string& path) = 0;
  // A page of the folder at `path` (whose attributes are `dir`), from `cursor` ("": the
  // first page).
  virtual Result<TreePage> List(const std::string& path, const backend::InodeAttr& dir,
                                const std::string& cursor) = 0;
  // The target of the symlink at `path`.
  virtual Result<std::string> ReadLink(const std::string& path, const backend::InodeAttr& link) = 0;
  // Hands the bytes of the file at `path` to `sink` in order, in pieces of any size.
  virtual Status Read(const std::string& path, const backend::InodeAttr& file,
                      const std::function<Status(ByteSpan)>& sink) = 0;
  // Makes the folder at `path` (mode 0755); with `parents` also the missing folders above
  // it, and an existing folder is fine.
  virtual Status Mkdir(const std::string& path, bool parents) = 0;
  // Removes the file, link or (with `recursive`, and with all in it) folder at `path`.
  virtual Status Remove(const std::string& path, bool recursive) = 0;
  // Moves `from` to `to` as rename(2) does (a file replaces a file, a folder an empty one).
  virtual Status Move(const std::string& from, const std::string& to) = 0;
};

// Calls `fn` for each entry of the folder at `path`, page by page; stops at its first error.
Status ForEachEntry(DriveTree& tree, const std::string& path, const backend::InodeAttr& dir,
                    const std::function<Status(const backend::DirEntry&)>& fn);

// `path` + "/" + `name` ("/" + `name` at the root).
std::string ChildPath(const std::string& path, const std::string& name);

// The drive opened here.
std::unique_ptr<DriveTree> NewLocalTree(backend::Drive& drive);

// Requests to the drive's process on its API socket, as the owner. Errors come back as the
// API sent them: its code name ("NotFound") as the Status's code, and its message.
class DaemonClient {
 public:
  explicit DaemonClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  const std::string& socket_path() const { return socket_path_; }

  // A request with a JSON body (or none) whose answer is JSON (or empty, as 204).
  Result<nlohmann::json> Call(const std::string& method, const std::string& target,
                              const nlohmann::json& body = nullptr,
                              std::chrono::seconds timeout = std::chrono::seconds(120));
  // GET `target`, its body handed to `sink` piece by piece.
  Status Download(const std::string& target, const std::function<Status(ByteSpan)>& sink);
  // PUT the `size` bytes of the open file `fd` (from its start) to `target`; the answer.
  Result<nlohmann::json> Upload(const std::string& target, int fd, uint64_t size,
                                const std::vector<std::pair<std::string, std::string>>& headers);

 private:
  const std::string socket_path_;
};

// The drive of the process that answers on `client`'s socket.
std::unique_ptr<DriveTree> NewDaemonTree(DaemonClient* client);

// The URL path of `path` (a drive path, as for DriveTree) under `route`
// ("/api/v1/stat" + "/a%20b"). InvalidArgument as Stat.
Result<std::string> ApiTarget(std::string_view route, const std::string& path);

// An entry of the API's JSON (docs/api.md) as attributes.
backend::InodeAttr AttrFromJson(const nlohmann::json& entry);

// A drive for a command: opened here if no process holds it; else, if the process that does
// serves the API socket (a mount, `shardfs serve`), through that process. `command` names
// the command in the drive's lock ("shardfs ls").
struct OpenedTree {
  std::unique_ptr<backend::Drive> drive;  // set when opened here
  std::unique_ptr<DaemonClient> daemon;   // set when through the drive's process
  std::unique_ptr<DriveTree> tree;
};
Result<OpenedTree> OpenTree(const DriveFlags& flags, const std::string& command);

// `opened` is why the drive could not be opened here: if Busy, and the process that holds
// the drive serves its API socket, a client of that process; else `opened` itself.
Result<std::unique_ptr<DaemonClient>> DaemonFor(const DriveFlags& flags, const Status& opened);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_DRIVE_TREE_H_
