#include "net/api/scope.h"

namespace shardfs::api {

using backend::FileKind;
using backend::Ino;
using backend::InodeAttr;

namespace {

// Walks `who`'s root and then `rel` but its last name; with `make`, folders of `rel` that are
// missing are made.
Result<Located> Walk(backend::Drive& drive, const Principal& who, const Names& rel,
                     const std::function<void(Ino, const std::string&)>* make) {
  Located out;
  out.rel = rel;
  Names full = who.root;
  full.insert(full.end(), rel.begin(), rel.end());
  if (full.empty()) {
    SFS_ASSIGN_OR_RETURN(InodeAttr root, drive.GetAttr(backend::kRootIno));
    out.attr = root;
    return out;
  }
  Ino dir = backend::kRootIno;
  for (size_t i = 0; i + 1 < full.size(); ++i) {
    auto a = drive.Lookup(dir, full[i]);
    if (!a.ok() && a.status().code() == Code::kNotFound && make != nullptr &&
        i >= who.root.size()) {
      backend::NewInode how;
      how.mode = 0755;
      a = drive.Mkdir(dir, full[i], how);
      if (a.ok()) (*make)(dir, full[i]);
    }
    if (!a.ok()) {
      if (a.status().code() != Code::kNotFound) return a.status();
      Names upto(full.begin() + static_cast<ptrdiff_t>(std::min(i + 1, who.root.size())),
                 full.begin() + static_cast<ptrdiff_t>(i) + 1);
      return Status::NotFound(i < who.root.size() ? "the folder of this device is gone"
                                                  : "no folder '" + JoinPath(upto) + "'");
    }
    // Symlinks are never followed: a path through one leads nowhere.
    if (a->kind != FileKind::kDirectory) {
      return Status::NotDirectory("'" + full[i] + "' is not a folder");
    }
    dir = a->ino;
  }
  out.parent = dir;
  out.name = full.back();
  auto a = drive.Lookup(dir, out.name);
  if (a.ok()) {
    out.attr = *a;
  } else if (a.status().code() != Code::kNotFound) {
    return a.status();
  }
  if (rel.empty() && !out.attr) return Status::NotFound("the folder of this device is gone");
  return out;
}

}  // namespace

Result<Located> Locate(backend::Drive& drive, const Principal& who, const Names& rel) {
  return Walk(drive, who, rel, nullptr);
}

Result<Located> LocateMakingFolders(backend::Drive& drive, const Principal& who, const Names& rel,
                                    const std::function<void(Ino, const std::string&)>& made) {
  return Walk(drive, who, rel, &made);
}

Result<InodeAttr> EnsureFolder(backend::Drive& drive, const Principal& who, const Names& rel,
                               bool make, const std::function<void(Ino, const std::string&)>& made,
                               bool* made_last) {
  if (made_last != nullptr) *made_last = false;
  SFS_ASSIGN_OR_RETURN(Located at,
                       make ? LocateMakingFolders(drive, who, rel, made) : Locate(drive, who, rel));
  if (!at.attr) {
    if (!make) return Status::NotFound("no folder '" + JoinPath(rel) + "'");
    backend::NewInode how;
    how.mode = 0755;
    SFS_ASSIGN_OR_RETURN(InodeAttr dir, drive.Mkdir(at.parent, at.name, how));
    made(at.parent, at.name);
    if (made_last != nullptr) *made_last = true;
    return dir;
  }
  if (at.attr->kind != FileKind::kDirectory) {
    return Status::NotDirectory("'" + JoinPath(rel) + "' is not a folder");
  }
  return *at.attr;
}

}  // namespace shardfs::api
