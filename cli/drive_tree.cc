#include "cli/drive_tree.h"

#include <algorithm>
#include <cerrno>

#include <unistd.h>

#include "cli/api_server.h"
#include "cli/drive_home.h"
#include "net/api/api_path.h"
#include "net/local_client.h"

namespace shardfs::cli {

namespace {

using backend::FileKind;
using backend::Ino;
using backend::InodeAttr;
using nlohmann::json;

constexpr size_t kListPage = 1000;
constexpr size_t kReadPiece = 4 << 20;
// How long a request waits for each piece of an answer.
constexpr auto kPieceTimeout = std::chrono::seconds(120);

// The names of a drive path as the commands take it: absolute, no "..".
Result<api::Names> DriveNames(const std::string& path) {
  SFS_RETURN_IF_ERROR(CheckDrivePath(path));
  return api::SplitPath(path);
}

std::string LastName(const std::string& path) {
  std::vector<std::string> parts = PathParts(path);
  return parts.empty() ? "/" : parts.back();
}

class LocalTree final : public DriveTree {
 public:
  explicit LocalTree(backend::Drive& drive) : drive_(drive) {}

  Result<InodeAttr> Stat(const std::string& path) override {
    return ResolvePath(drive_.catalog(), path);
  }

  Result<TreePage> List(const std::string& /*path*/, const InodeAttr& dir,
                        const std::string& cursor) override {
    TreePage page;
    SFS_ASSIGN_OR_RETURN(page.entries, drive_.catalog().ReadDir(dir.ino, cursor, kListPage));
    if (page.entries.size() == kListPage) page.next = page.entries.back().name;
    return page;
  }

  Result<std::string> ReadLink(const std::string& /*path*/, const InodeAttr& link) override {
    return drive_.catalog().ReadLink(link.ino);
  }

  Status Read(const std::string& /*path*/, const InodeAttr& file,
              const std::function<Status(ByteSpan)>& sink) override {
    Bytes buf(std::min<uint64_t>(kReadPiece, std::max<uint64_t>(file.size, 1)));
    for (uint64_t off = 0; off < file.size;) {
      SFS_ASSIGN_OR_RETURN(size_t n, drive_.Read(file.ino, off, buf));
      if (n == 0) return Status::Corruption("file ended early");
      SFS_RETURN_IF_ERROR(sink(ByteSpan(buf).first(n)));
      off += n;
    }
    return Status::Ok();
  }

  Status Mkdir(const std::string& path, bool parents) override {
    Catalog& cat = drive_.catalog();
    if (!parents) {
      SFS_ASSIGN_OR_RETURN(auto parent, ResolveParent(cat, path));
      return drive_.Mkdir(parent.first, parent.second, backend::NewInode{0755, 0, 0}).status();
    }
    SFS_RETURN_IF_ERROR(CheckDrivePath(path));
    Ino at = backend::kRootIno;
    for (const std::string& name : PathParts(path)) {
      auto next = cat.Lookup(at, name);
      if (next.ok() && next->kind == FileKind::kDirectory) {
        at = next->ino;
        continue;
      }
      if (next.ok()) return Status::NotDirectory("'" + name + "' is not a folder");
      if (next.status().code() != Code::kNotFound) return next.status();
      SFS_ASSIGN_OR_RETURN(InodeAttr made, drive_.Mkdir(at, name, backend::NewInode{0755, 0, 0}));
      at = made.ino;
    }
    return Status::Ok();
  }

  Status Remove(const std::string& path, bool recursive) override {
    SFS_ASSIGN_OR_RETURN(auto parent, ResolveParent(drive_.catalog(), path));
    SFS_ASSIGN_OR_RETURN(InodeAttr a, drive_.Lookup(parent.first, parent.second));
    if (a.kind == FileKind::kDirectory && !recursive) {
      return Status::IsDirectory("'" + parent.second + "' is a folder (use -r)");
    }
    return drive_.RemoveTree(parent.first, parent.second);
  }

  Status Move(const std::string& from, const std::string& to) override {
    SFS_ASSIGN_OR_RETURN(auto src, ResolveParent(drive_.catalog(), from));
    SFS_ASSIGN_OR_RETURN(auto dst, ResolveParent(drive_.catalog(), to));
    return drive_.Rename(src.first, src.second, dst.first, dst.second,
                         backend::RenameMode::kReplace);
  }

 private:
  using Catalog = backend::Catalog;
  backend::Drive& drive_;
};

class DaemonTree final : public DriveTree {
 public:
  explicit DaemonTree(DaemonClient* client) : client_(client) {}

  Result<InodeAttr> Stat(const std::string& path) override {
    SFS_ASSIGN_OR_RETURN(json j, StatJson(path));
    return AttrFromJson(j);
  }

  Result<TreePage> List(const std::string& path, const InodeAttr& /*dir*/,
                        const std::string& cursor) override {
    SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/list", path));
    target += "?limit=" + std::to_string(kListPage);
    if (!cursor.empty()) target += "&cursor=" + api::PercentEncode(cursor);
    SFS_ASSIGN_OR_RETURN(json j, client_->Call("GET", target));
    TreePage page;
    for (const json& e : j.at("entries")) {
      page.entries.push_back(backend::DirEntry{e.at("name").get<std::string>(), AttrFromJson(e)});
    }
    if (j.at("next_cursor").is_string()) page.next = j.at("next_cursor").get<std::string>();
    return page;
  }

  Result<std::string> ReadLink(const std::string& path, const InodeAttr& /*link*/) override {
    SFS_ASSIGN_OR_RETURN(json j, StatJson(path));
    if (!j.contains("target")) return Status::InvalidArgument("'" + path + "' is not a symlink");
    return j.at("target").get<std::string>();
  }

  Status Read(const std::string& path, const InodeAttr& /*file*/,
              const std::function<Status(ByteSpan)>& sink) override {
    SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/files", path));
    return client_->Download(target, sink);
  }

  Status Mkdir(const std::string& path, bool parents) override {
    SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/folders", path));
    return client_->Call("POST", target + (parents ? "?parents=1" : "")).status();
  }

  Status Remove(const std::string& path, bool recursive) override {
    SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/files", path));
    if (!recursive) {
      SFS_ASSIGN_OR_RETURN(InodeAttr a, Stat(path));
      if (a.kind == FileKind::kDirectory) {
        return Status::IsDirectory("'" + LastName(path) + "' is a folder (use -r)");
      }
    }
    return client_->Call("DELETE", target + (recursive ? "?recursive=1" : "")).status();
  }

  Status Move(const std::string& from, const std::string& to) override {
    SFS_RETURN_IF_ERROR(DriveNames(from).status());
    SFS_RETURN_IF_ERROR(DriveNames(to).status());
    return client_
        ->Call("POST", "/api/v1/move", json{{"from", from}, {"to", to}, {"overwrite", true}})
        .status();
  }

 private:
  Result<json> StatJson(const std::string& path) {
    SFS_ASSIGN_OR_RETURN(std::string target, ApiTarget("/api/v1/stat", path));
    return client_->Call("GET", target);
  }

  DaemonClient* const client_;
};

// The API's error answer as a Status: its code name as the code (Unavailable if it names
// none), its message.
Status ErrorOf(const net::LocalReply& r) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  std::string message = j.is_object() ? j.value("message", std::string()) : std::string();
  if (message.empty()) message = "the drive's process answered " + std::to_string(r.status);
  auto code = j.is_object() ? CodeFromName(j.value("code", std::string())) : std::nullopt;
  return Status(code.value_or(Code::kUnavailable), message);
}

Result<json> JsonOf(const net::LocalReply& r) {
  if (r.status < 200 || r.status >= 300) return ErrorOf(r);
  if (r.body.empty()) return json(nullptr);
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption("the drive's process sent no JSON");
  return j;
}

}  // namespace

Status ForEachEntry(DriveTree& tree, const std::string& path, const InodeAttr& dir,
                    const std::function<Status(const backend::DirEntry&)>& fn) {
  std::string cursor;
  do {
    SFS_ASSIGN_OR_RETURN(TreePage page, tree.List(path, dir, cursor));
    for (const auto& e : page.entries) SFS_RETURN_IF_ERROR(fn(e));
    cursor = std::move(page.next);
  } while (!cursor.empty());
  return Status::Ok();
}

std::string ChildPath(const std::string& path, const std::string& name) {
  return (path.empty() || path.back() == '/' ? path : path + "/") + name;
}

std::unique_ptr<DriveTree> NewLocalTree(backend::Drive& drive) {
  return std::make_unique<LocalTree>(drive);
}

std::unique_ptr<DriveTree> NewDaemonTree(DaemonClient* client) {
  return std::make_unique<DaemonTree>(client);
}

Result<std::string> ApiTarget(std::string_view route, const std::string& path) {
  SFS_ASSIGN_OR_RETURN(api::Names names, DriveNames(path));
  std::string encoded = api::EncodePath(names);
  return std::string(route) + (encoded == "/" ? "" : encoded);
}

InodeAttr AttrFromJson(const json& e) {
  InodeAttr a;
  const std::string type = e.value("type", "file");
  a.kind = type == "folder"    ? FileKind::kDirectory
           : type == "symlink" ? FileKind::kSymlink
                               : FileKind::kFile;
  a.ino = e.value("inode", Ino{0});
  a.mode = e.value("mode", 0u);
  a.uid = e.value("uid", 0u);
  a.gid = e.value("gid", 0u);
  a.size = e.value("size", uint64_t{0});
  a.nlink = e.value("links", 1u);
  a.atime_ns = e.value("atime_ns", int64_t{0});
  a.mtime_ns = e.value("mtime_ns", int64_t{0});
  a.ctime_ns = e.value("ctime_ns", int64_t{0});
  return a;
}

Result<json> DaemonClient::Call(const std::string& method, const std::string& target,
                                const json& body, std::chrono::seconds timeout) {
  SFS_ASSIGN_OR_RETURN(
      net::LocalReply r,
      net::LocalRequest(socket_path_, method, target, body.is_null() ? "" : body.dump(),
                        std::chrono::duration_cast<std::chrono::milliseconds>(timeout)));
  return JsonOf(r);
}

Status DaemonClient::Download(const std::string& target,
                              const std::function<Status(ByteSpan)>& sink) {
  SFS_ASSIGN_OR_RETURN(net::LocalReply r,
                       net::LocalDownload(socket_path_, target, sink, kPieceTimeout));
  if (r.status < 200 || r.status >= 300) return ErrorOf(r);
  return Status::Ok();
}

Result<json> DaemonClient::Upload(const std::string& target, int fd, uint64_t size,
                                  const std::vector<std::pair<std::string, std::string>>& headers) {
  SFS_ASSIGN_OR_RETURN(net::LocalReply r,
                       net::LocalUpload(
                           socket_path_, target, headers, size,
                           [fd](uint64_t offset, MutableByteSpan out) -> Result<size_t> {
                             ssize_t n =
                                 ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
                             if (n < 0) return PosixError("read", errno);
                             return static_cast<size_t>(n);
                           },
                           kPieceTimeout));
  return JsonOf(r);
}

Result<OpenedTree> OpenTree(const DriveFlags& flags, const std::string& command) {
  OpenedTree t;
  auto drive = OpenDrive(flags, command);
  if (drive.ok()) {
    t.drive = std::move(*drive);
    t.tree = NewLocalTree(*t.drive);
    return t;
  }
  SFS_ASSIGN_OR_RETURN(t.daemon, DaemonFor(flags, drive.status()));
  t.tree = NewDaemonTree(t.daemon.get());
  return t;
}

Result<std::unique_ptr<DaemonClient>> DaemonFor(const DriveFlags& flags, const Status& opened) {
  if (opened.code() != Code::kBusy) return opened;
  auto home = ResolveDriveHome(flags.home, flags.drive);
  if (!home.ok() || !net::LocalServerRuns(ApiSocketPath(*home))) return opened;
  return std::make_unique<DaemonClient>(ApiSocketPath(*home));
}

}  // namespace shardfs::cli
