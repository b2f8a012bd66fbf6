#include "net/api/api_service.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "base/version.h"
#include "base/wall_clock.h"
#include "net/api/api_http.h"
#include "net/api/api_path.h"
#include "net/api/changes.h"
#include "net/api/context.h"
#include "net/api/dashboard.h"
#include "net/api/download.h"
#include "net/api/drive_status.h"
#include "net/api/scope.h"
#include "net/api/tus.h"
#include "net/api/upload.h"
#include "net/api/webdav.h"

namespace shardfs::api {

using backend::Drive;
using backend::FileKind;
using backend::Ino;
using backend::InodeAttr;
using net::Dispatch;
using net::HttpRequestHead;
using net::HttpResponse;
using nlohmann::json;

namespace {

constexpr std::string_view kApi = "/api/v1";
// JSON request bodies (pairing, move, pair codes) are small.
constexpr uint64_t kMaxJsonBody = 64 * 1024;
// The longest wait a sync request may ask for: a week, as `shardfs sync --timeout`.
constexpr uint64_t kMaxSyncTimeoutSeconds = 7 * 86400;
// The largest upload the API takes when the nodes' free space is unknown.
constexpr uint64_t kMaxUploadBytes = uint64_t{1} << 40;

Dispatch Respond(HttpResponse r) { return Dispatch::Respond(std::move(r)); }
Dispatch Fail(const Status& s, unsigned status = 0) { return Respond(ErrorResponse(s, status)); }

Dispatch JsonBody(const HttpRequestHead& head, std::function<HttpResponse(const json&)> handle) {
  return CollectBody(head, kMaxJsonBody, [handle = std::move(handle)](std::string body) {
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return ErrorResponse(Status::InvalidArgument("the body is not a JSON object"));
    }
    try {
      return handle(j);
    } catch (const json::exception& e) {
      return ErrorResponse(Status::InvalidArgument(std::string("bad JSON field: ") + e.what()));
    }
  });
}

}  // namespace

class ApiService::Impl {
 public:
  Impl(Drive* drive, ApiOptions options)
      : drive_(drive),
        options_(std::move(options)),
        ctx_(drive, ContextOptions{options_.space_cache, options_.durable_timeout,
                                   options_.invalidate_inode, options_.invalidate_entry}),
        devices_(&drive->catalog(), options_.devices),
        feed_(&drive->catalog()),
        url_(options_.url),
        fingerprint_(options_.fingerprint),
        tus_(&ctx_, TusOptions{}),
        webdav_(&ctx_, WebDavOptions{}) {}

  Dispatch Begin(const HttpRequestHead& head);
  void Shutdown() { feed_.Shutdown(); }
  DeviceRegistry& devices() { return devices_; }

  void SetAddress(std::string url, std::string fingerprint) {
    std::lock_guard<std::mutex> lock(address_mu_);
    url_ = std::move(url);
    fingerprint_ = std::move(fingerprint);
  }
  std::pair<std::string, std::string> Address() {
    std::lock_guard<std::mutex> lock(address_mu_);
    return {url_, fingerprint_};
  }

 private:
  Result<Located> Locate(const Principal& who, const Names& rel) {
    return api::Locate(*drive_, who, rel);
  }
  void InvalidateEntry(Ino parent, const std::string& name) { ctx_.InvalidateEntry(parent, name); }
  void InvalidateInode(Ino ino) { ctx_.InvalidateInode(ino); }
  Result<Principal> Authenticate(const HttpRequestHead& head);
  Dispatch Pair(const HttpRequestHead& head);
  Dispatch Rest(const HttpRequestHead& head, const Target& target, const Principal& who);
  Dispatch List(const Target& target, const Principal& who, const Names& rel);
  Dispatch Stat(const Principal& who, const Names& rel);
  Dispatch SetAttrs(const HttpRequestHead& head, const Principal& who, const Names& rel);
  Dispatch MakeLink(const HttpRequestHead& head, const Principal& who, const Names& rel);
  Dispatch Download(const HttpRequestHead& head, const Principal& who, const Names& rel);
  Dispatch Upload(const HttpRequestHead& head, const Target& target, const Principal& who,
                  const Names& rel);
  Dispatch Delete(const Target& target, const Principal& who, const Names& rel);
  Dispatch Mkdir(const Target& target, const Principal& who, const Names& rel);
  Dispatch Move(const HttpRequestHead& head, const Principal& who);
  Dispatch Changes(const Target& target, const Principal& who);
  Dispatch Status_(const Target& target, const Principal& who);
  Dispatch Sync(const Target& target, const Principal& who);
  Dispatch NewPairCode(const HttpRequestHead& head, const Principal& who);
  Dispatch Devices(const HttpRequestHead& head, const Principal& who, std::string_view rest);

  Drive* drive_;
  const ApiOptions options_;
  ApiContext ctx_;
  DeviceRegistry devices_;
  ChangeFeed feed_;
  std::mutex address_mu_;
  std::string url_;
  std::string fingerprint_;
  // Last: its unfinished uploads are dropped first.
  TusUploads tus_;
  WebDav webdav_;
};

Result<Principal> ApiService::Impl::Authenticate(const HttpRequestHead& head) {
  if (head.local) {
    Principal owner;
    owner.name = "owner (local socket)";
    return owner;
  }
  std::string token = TokenFromAuthorization(head.Header("Authorization"));
  if (token.empty()) return Status::PermissionDenied("no token: log in or pair this device");
  return devices_.Authenticate(token);
}

Dispatch ApiService::Impl::Begin(const HttpRequestHead& head) {
  auto target = SplitTarget(head.target);
  if (!target.ok()) return Fail(target.status());
  const std::string& path = target->path;
  if (path == std::string(kApi) + "/health") {
    return Respond(JsonResponse(200, {{"ok", true}, {"version", kVersion}}));
  }
  if (path == std::string(kApi) + "/pair") {
    if (head.method != "POST") return Fail(Status::NotSupported("POST to pair"), 405);
    return Pair(head);
  }
  const bool dav = path == "/dav" || path.rfind("/dav/", 0) == 0;
  if (dav && head.method == "OPTIONS") {
    return webdav_.Begin(head, std::string_view(path).substr(4), Principal{});
  }
  const std::string uploads = std::string(kApi) + "/uploads";
  if (head.method == "OPTIONS" && path.rfind(uploads, 0) == 0) {
    return tus_.Begin(head, std::string_view(path).substr(uploads.size()), nullptr);
  }
  if (path.rfind(kApi, 0) == 0 || dav) {
    auto who = Authenticate(head);
    if (!who.ok()) {
      HttpResponse r = ErrorResponse(who.status(), 401);
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"shardfs\"");
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"shardfs\", charset=\"UTF-8\"");
      return Respond(std::move(r));
    }
    if (dav) return webdav_.Begin(head, std::string_view(path).substr(4), *who);
    return Rest(head, *target, *who);
  }
  if (head.method == "GET" || head.method == "HEAD") {
    if (const DashboardAsset* asset = FindDashboardAsset(path)) {
      HttpResponse r;
      r.headers.emplace_back("Content-Type", std::string(asset->content_type) + "; charset=utf-8");
      r.headers.emplace_back("Cache-Control", "no-cache");
      // The page loads nothing but its own files, and is never framed.
      r.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; img-src 'self' blob: data:; "
                             "frame-ancestors 'none'");
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      r.headers.emplace_back("Referrer-Policy", "no-referrer");
      r.body = std::string(asset->data);
      r.head_only = head.method == "HEAD";
      return Respond(std::move(r));
    }
  }
  return Fail(Status::NotFound("no such page"));
}

Dispatch ApiService::Impl::Pair(const HttpRequestHead& head) {
  return JsonBody(head, [this](const json& j) {
    std::string code = j.value("code", "");
    std::string name = j.value("name", "");
    auto paired = devices_.Pair(code, name);
    if (!paired.ok()) {
      return ErrorResponse(paired.status(), paired.status().code() == Code::kBusy ? 429
                                            : paired.status().code() == Code::kPermissionDenied
                                                ? 403
                                                : 0);
    }
    const auto& [device, token] = *paired;
    log::Info("paired device {} ({}{}, root {})", device.id, device.name,
              device.read_only ? ", read-only" : "", device.root);
    return JsonResponse(200, {{"token", token},
                              {"device",
                               {{"id", device.id},
                                {"name", device.name},
                                {"read_only", device.read_only},
                                {"root", device.root}}},
                              {"drive", options_.drive_name}});
  });
}

Dispatch ApiService::Impl::Rest(const HttpRequestHead& head, const Target& target,
                                const Principal& who) {
  std::string_view path = target.path;
  path.remove_prefix(kApi.size());
  auto under = [&](std::string_view prefix, Names* rel) -> std::optional<Status> {
    if (path == prefix) {
      rel->clear();
      return Status::Ok();
    }
    if (path.substr(0, prefix.size() + 1) != std::string(prefix) + "/") return std::nullopt;
    auto names = DecodePath(path.substr(prefix.size()));
    if (!names.ok()) return names.status();
    *rel = std::move(*names);
    return Status::Ok();
  };
  const std::string& m = head.method;
  bool writes = m == "PUT" || m == "POST" || m == "DELETE" || m == "PATCH";
  if (writes && who.read_only) {
    return Fail(Status::PermissionDenied("this device may only read"));
  }
  Names rel;
  if (auto s = under("/list", &rel)) {
    if (!s->ok()) return Fail(*s);
    if (m != "GET") return Fail(Status::NotSupported("GET a listing"), 405);
    return List(target, who, rel);
  }
  if (auto s = under("/stat", &rel)) {
    if (!s->ok()) return Fail(*s);
    if (m == "PATCH") return SetAttrs(head, who, rel);
    if (m != "GET") return Fail(Status::NotSupported("GET or PATCH a stat"), 405);
    return Stat(who, rel);
  }
  if (auto s = under("/links", &rel)) {
    if (!s->ok()) return Fail(*s);
    if (m != "POST") return Fail(Status::NotSupported("POST to make a symlink"), 405);
    return MakeLink(head, who, rel);
  }
  if (auto s = under("/files", &rel)) {
    if (!s->ok()) return Fail(*s);
    if (m == "GET" || m == "HEAD") return Download(head, who, rel);
    if (m == "PUT") return Upload(head, target, who, rel);
    if (m == "DELETE") return Delete(target, who, rel);
    return Fail(Status::NotSupported("GET, HEAD, PUT or DELETE a file"), 405);
  }
  if (auto s = under("/folders", &rel)) {
    if (!s->ok()) return Fail(*s);
    if (m != "POST") return Fail(Status::NotSupported("POST to make a folder"), 405);
    return Mkdir(target, who, rel);
  }
  if (path == "/uploads" || path.rfind("/uploads/", 0) == 0) {
    return tus_.Begin(head, path.substr(std::string_view("/uploads").size()), &who);
  }
  if (path == "/move") {
    if (m != "POST") return Fail(Status::NotSupported("POST a move"), 405);
    return Move(head, who);
  }
  if (path == "/changes") {
    if (m != "GET") return Fail(Status::NotSupported("GET changes"), 405);
    return Changes(target, who);
  }
  if (path == "/status") {
    if (m != "GET") return Fail(Status::NotSupported("GET status"), 405);
    return Status_(target, who);
  }
  if (path == "/whoami") {
    return Respond(JsonResponse(200, {{"device", who.device_id},
                                      {"name", who.name},
                                      {"read_only", who.read_only},
                                      {"root", JoinPath(who.root)},
                                      {"owner", who.Owner()},
                                      {"drive", options_.drive_name}}));
  }
  if (path == "/sync") {
    if (m != "POST") return Fail(Status::NotSupported("POST to sync"), 405);
    return Sync(target, who);
  }
  if (path == "/pair-codes") {
    if (m != "POST") return Fail(Status::NotSupported("POST for a pairing code"), 405);
    return NewPairCode(head, who);
  }
  if (path == "/devices" || path.rfind("/devices/", 0) == 0) {
    return Devices(head, who, path.substr(std::string_view("/devices").size()));
  }
  return Fail(Status::NotFound("no such API route"));
}

Dispatch ApiService::Impl::List(const Target& target, const Principal& who, const Names& rel) {
  auto at = Locate(who, rel);
  if (!at.ok()) return Fail(at.status());
  if (!at->attr) return Fail(Status::NotFound("no '" + JoinPath(rel) + "'"));
  if (at->attr->kind != FileKind::kDirectory) {
    return Fail(Status::NotDirectory("'" + JoinPath(rel) + "' is not a folder"));
  }
  size_t limit = options_.default_page;
  if (auto it = target.query.find("limit"); it != target.query.end()) {
    auto n = ParseDecimal(it->second);
    if (!n || *n == 0) return Fail(Status::InvalidArgument("limit must be a positive number"));
    limit = static_cast<size_t>(std::min<uint64_t>(*n, options_.max_page));
  }
  std::string after;
  if (auto it = target.query.find("cursor"); it != target.query.end()) after = it->second;
  auto entries = drive_->ReadDir(at->attr->ino, after, limit + 1);
  if (!entries.ok()) return Fail(entries.status());
  bool more = entries->size() > limit;
  if (more) entries->resize(limit);
  json list = json::array();
  for (const auto& e : *entries) {
    Names child = rel;
    child.push_back(e.name);
    list.push_back(EntryJson(e.name, JoinPath(child), e.attr));
  }
  json doc = {{"path", JoinPath(rel)}, {"entries", std::move(list)}};
  doc["next_cursor"] = more ? json(entries->back().name) : json(nullptr);
  return Respond(JsonResponse(200, doc));
}

Dispatch ApiService::Impl::Stat(const Principal& who, const Names& rel) {
  auto at = Locate(who, rel);
  if (!at.ok()) return Fail(at.status());
  if (!at->attr) return Fail(Status::NotFound("no '" + JoinPath(rel) + "'"));
  std::string name = rel.empty() ? "" : rel.back();
  json entry = EntryJson(name, JoinPath(rel), *at->attr);
  if (at->attr->kind == FileKind::kSymlink) {
    auto target = drive_->ReadLink(at->attr->ino);
    if (!target.ok()) return Fail(target.status());
    entry["target"] = *target;
  }
  return Respond(JsonResponse(200, entry));
}

Dispatch ApiService::Impl::SetAttrs(const HttpRequestHead& head, const Principal& who,
                                    const Names& rel) {
  return JsonBody(head, [this, who, rel](const json& j) {
    auto at = Locate(who, rel);
    if (!at.ok()) return ErrorResponse(at.status());
    if (!at->attr) return ErrorResponse(Status::NotFound("no '" + JoinPath(rel) + "'"));
    backend::AttrChange change;
    if (j.contains("mode")) {
      const uint32_t mode = j.at("mode").get<uint32_t>();
      if (mode > 07777)
        return ErrorResponse(Status::InvalidArgument("mode is at most 4095 (07777)"));
      change.mode = mode;
    }
    for (const char* key : {"mtime_ns", "atime_ns"}) {
      if (!j.contains(key)) continue;
      const int64_t ns = j.at(key).get<int64_t>();
      if (ns < 0) return ErrorResponse(Status::InvalidArgument(std::string(key) + " is negative"));
      (std::string_view(key) == "mtime_ns" ? change.mtime_ns : change.atime_ns) = ns;
    }
    auto changed = drive_->SetAttr(at->attr->ino, change);
    if (!changed.ok()) return ErrorResponse(changed.status());
    InvalidateInode(changed->ino);
    return JsonResponse(200, EntryJson(rel.empty() ? "" : rel.back(), JoinPath(rel), *changed));
  });
}

Dispatch ApiService::Impl::MakeLink(const HttpRequestHead& head, const Principal& who,
                                    const Names& rel) {
  // A symlink is followed by whatever reads the drive through the mount: only the owner
  // makes them.
  if (!who.Owner()) return Fail(Status::PermissionDenied("only the owner may make symlinks"));
  if (rel.empty()) return Fail(Status::AlreadyExists("the root exists"));
  return JsonBody(head, [this, who, rel](const json& j) {
    const std::string target = j.value("target", "");
    if (target.empty() || target.size() > 4095 || target.find('\0') != std::string::npos) {
      return ErrorResponse(
          Status::InvalidArgument("a symlink needs a \"target\" of 1 to 4095 bytes, no NUL"));
    }
    auto at = Locate(who, rel);
    if (!at.ok())
      return ErrorResponse(at.status(), at.status().code() == Code::kNotFound ? 409 : 0);
    if (at->attr) return ErrorResponse(Status::AlreadyExists("'" + JoinPath(rel) + "' exists"));
    auto made = drive_->Symlink(at->parent, at->name, target);
    if (!made.ok()) return ErrorResponse(made.status());
    InvalidateEntry(at->parent, at->name);
    json entry = EntryJson(at->name, JoinPath(rel), *made);
    entry["target"] = target;
    return JsonResponse(201, entry);
  });
}

Dispatch ApiService::Impl::Download(const HttpRequestHead& head, const Principal& who,
                                    const Names& rel) {
  auto at = Locate(who, rel);
  if (!at.ok()) return Fail(at.status());
  if (!at->attr) return Fail(Status::NotFound("no '" + JoinPath(rel) + "'"));
  if (at->attr->kind != FileKind::kFile) {
    return Fail(Status::IsDirectory("'" + JoinPath(rel) + "' is not a file"));
  }
  return Respond(FileResponse(*drive_, *at->attr, head));
}

Dispatch ApiService::Impl::Upload(const HttpRequestHead& head, const Target& target,
                                  const Principal& who, const Names& rel) {
  if (rel.empty()) return Fail(Status::InvalidArgument("PUT needs a file name"));
  auto at = Locate(who, rel);
  if (!at.ok()) {
    // A missing folder is a conflict with the tree, as in WebDAV.
    if (at.status().code() == Code::kNotFound) return Fail(at.status(), 409);
    return Fail(at.status());
  }
  if (at->attr && at->attr->kind != FileKind::kFile) {
    return Fail(Status::IsDirectory("'" + JoinPath(rel) + "' is not a file"));
  }
  PutRequest put;
  put.conditions = {std::string(head.Header("If-Match")),
                    std::string(head.Header("If-None-Match"))};
  if (Status s = CheckConditions(put.conditions, at->attr); !s.ok()) return Fail(s, 412);
  uint64_t limit = ctx_.FreeSpace().value_or(kMaxUploadBytes);
  if (head.content_length && *head.content_length > limit) {
    return Fail(Status::NoSpace("the upload (" + std::to_string(*head.content_length) +
                                " bytes) is larger than the drive's free space (" +
                                std::to_string(limit) + " bytes)"));
  }
  if (auto it = target.query.find("durable"); it != target.query.end()) {
    put.durable = it->second == "1" || it->second == "true";
  }
  put.mtime_ns = ParseEpochSeconds(head.Header("X-OC-Mtime"));
  if (auto it = target.query.find("mode"); it != target.query.end()) {
    auto mode = ParseMode(it->second);
    if (!mode) return Fail(Status::InvalidArgument("mode must be octal permission bits (644)"));
    put.mode = *mode;
  }
  put.length = head.content_length;
  put.target = std::move(*at);
  auto sink = StartPut(
      &ctx_, std::move(put),
      [name = rel.back(), path = JoinPath(rel)](const InodeAttr& a, bool replaced) {
        HttpResponse r = JsonResponse(replaced ? 200 : 201, EntryJson(name, path, a));
        r.headers.emplace_back("ETag", ETagOf(a));
        return r;
      },
      [](const Status& s, unsigned status) { return ErrorResponse(s, status); });
  if (!sink.ok()) return Fail(sink.status());
  return Dispatch::Stream(std::move(*sink), limit);
}

Dispatch ApiService::Impl::Delete(const Target& target, const Principal& who, const Names& rel) {
  if (rel.empty()) return Fail(Status::PermissionDenied("the root of this device's scope stays"));
  auto at = Locate(who, rel);
  if (!at.ok()) return Fail(at.status());
  if (!at->attr) return Fail(Status::NotFound("no '" + JoinPath(rel) + "'"));
  bool recursive = false;
  if (auto it = target.query.find("recursive"); it != target.query.end()) {
    recursive = it->second == "1" || it->second == "true";
  }
  Status s;
  if (at->attr->kind == FileKind::kDirectory) {
    s = recursive ? drive_->RemoveTree(at->parent, at->name) : drive_->Rmdir(at->parent, at->name);
  } else {
    s = drive_->Unlink(at->parent, at->name);
  }
  if (!s.ok()) return Fail(s);
  InvalidateEntry(at->parent, at->name);
  HttpResponse r;
  r.status = 204;
  return Respond(std::move(r));
}

Dispatch ApiService::Impl::Mkdir(const Target& target, const Principal& who, const Names& rel) {
  if (rel.empty()) return Fail(Status::AlreadyExists("the root exists"));
  bool parents = false;
  if (auto it = target.query.find("parents"); it != target.query.end()) {
    parents = it->second == "1" || it->second == "true";
  }
  backend::NewInode how;
  how.mode = 0755;
  if (auto it = target.query.find("mode"); it != target.query.end()) {
    auto mode = ParseMode(it->second);
    if (!mode) return Fail(Status::InvalidArgument("mode must be octal permission bits (755)"));
    how.mode = *mode;
  }
  auto made_one = [this](Ino parent, const std::string& name) { InvalidateEntry(parent, name); };
  if (parents) {
    bool made = false;
    auto dir = EnsureFolder(*drive_, who, rel, true, made_one, &made);
    if (!dir.ok()) return Fail(dir.status(), dir.status().code() == Code::kNotFound ? 409 : 0);
    if (made && dir->mode != how.mode) {
      backend::AttrChange change;
      change.mode = how.mode;
      dir = drive_->SetAttr(dir->ino, change);
      if (!dir.ok()) return Fail(dir.status());
    }
    return Respond(JsonResponse(made ? 201 : 200, EntryJson(rel.back(), JoinPath(rel), *dir)));
  }
  auto at = Locate(who, rel);
  if (!at.ok()) return Fail(at.status(), at.status().code() == Code::kNotFound ? 409 : 0);
  if (at->attr) {
    if (at->attr->kind != FileKind::kDirectory) {
      return Fail(Status::NotDirectory("'" + JoinPath(rel) + "' is not a folder"));
    }
    return Fail(Status::AlreadyExists("'" + JoinPath(rel) + "' exists"));
  }
  auto made = drive_->Mkdir(at->parent, at->name, how);
  if (!made.ok()) return Fail(made.status());
  made_one(at->parent, at->name);
  return Respond(JsonResponse(201, EntryJson(at->name, JoinPath(rel), *made)));
}

Dispatch ApiService::Impl::Move(const HttpRequestHead& head, const Principal& who) {
  return JsonBody(head, [this, who](const json& j) {
    if (!j.contains("from") || !j.contains("to")) {
      return ErrorResponse(Status::InvalidArgument("a move needs \"from\" and \"to\""));
    }
    auto from_names = SplitPath(j.at("from").get<std::string>());
    auto to_names = SplitPath(j.at("to").get<std::string>());
    if (!from_names.ok()) return ErrorResponse(from_names.status());
    if (!to_names.ok()) return ErrorResponse(to_names.status());
    if (from_names->empty() || to_names->empty()) {
      return ErrorResponse(Status::PermissionDenied("the root of this device's scope stays"));
    }
    bool overwrite = j.value("overwrite", false);
    auto from = Locate(who, *from_names);
    if (!from.ok()) return ErrorResponse(from.status());
    if (!from->attr) return ErrorResponse(Status::NotFound("no '" + JoinPath(*from_names) + "'"));
    auto to = Locate(who, *to_names);
    if (!to.ok()) {
      return ErrorResponse(to.status(), to.status().code() == Code::kNotFound ? 409 : 0);
    }
    if (to->attr && !overwrite) {
      return ErrorResponse(Status::AlreadyExists("'" + JoinPath(*to_names) + "' exists"), 412);
    }
    Status s =
        drive_->Rename(from->parent, from->name, to->parent, to->name,
                       overwrite ? backend::RenameMode::kReplace : backend::RenameMode::kNoReplace);
    if (!s.ok()) return ErrorResponse(s);
    InvalidateEntry(from->parent, from->name);
    InvalidateEntry(to->parent, to->name);
    if (to->attr) InvalidateInode(to->attr->ino);
    auto moved = drive_->Lookup(to->parent, to->name);
    if (!moved.ok()) return ErrorResponse(moved.status());
    return JsonResponse(200, EntryJson(to->name, JoinPath(*to_names), *moved));
  });
}

Dispatch ApiService::Impl::Changes(const Target& target, const Principal& who) {
  std::optional<uint64_t> cursor;
  if (auto it = target.query.find("cursor"); it != target.query.end() && !it->second.empty()) {
    cursor = ParseDecimal(it->second);
    if (!cursor) return Fail(Status::InvalidArgument("a cursor is what an earlier answer gave"));
  }
  size_t limit = options_.default_changes;
  if (auto it = target.query.find("limit"); it != target.query.end()) {
    auto n = ParseDecimal(it->second);
    if (!n || *n == 0) return Fail(Status::InvalidArgument("limit must be a positive number"));
    limit = static_cast<size_t>(std::min<uint64_t>(*n, options_.max_changes));
  }
  std::chrono::milliseconds wait{0};
  if (auto it = target.query.find("wait"); it != target.query.end()) {
    auto n = ParseDecimal(it->second);
    if (!n) return Fail(Status::InvalidArgument("wait is a number of seconds"));
    wait = std::chrono::milliseconds(
        std::min<uint64_t>(*n, static_cast<uint64_t>(options_.max_wait.count())) * 1000);
  }
  if (!cursor || wait.count() == 0) {
    auto page = feed_.Page(who, cursor, limit);
    if (!page.ok()) return Fail(page.status());
    return Respond(JsonResponse(200, *page));
  }
  return Dispatch::Later([this, who, c = *cursor, limit, wait](net::Responder respond) {
    feed_.Wait(who, c, limit, wait, std::move(respond));
  });
}

Dispatch ApiService::Impl::Status_(const Target& target, const Principal& who) {
  // fresh=1: the nodes are asked now (the owner only: a device cannot make every poll cost a
  // request to every node).
  auto fresh_it = target.query.find("fresh");
  const bool fresh = who.Owner() && fresh_it != target.query.end() && fresh_it->second == "1";
  auto usage = UsageJson(*drive_);
  if (!usage.ok()) return Fail(usage.status());
  json doc = {{"drive", options_.drive_name}, {"version", kVersion}};
  doc["device"] = {{"id", who.device_id},
                   {"name", who.name},
                   {"read_only", who.read_only},
                   {"root", JoinPath(who.root)}};
  doc["usage"] = *usage;
  doc["uploads"] = ctx_.UploadsJson();
  auto [url, fingerprint] = Address();
  doc["server"] = {{"url", url}, {"fingerprint", fingerprint}};
  const ApiContext::NodeAnswers answers = ctx_.Answers(fresh);
  auto space = drive_->SpaceFrom(answers);
  doc["space"] = space.ok() ? json{{"capacity", space->capacity},
                                   {"free", space->free},
                                   {"nodes_up", space->nodes_up}}
                            : json(nullptr);
  doc["nodes"] = NodesJson(*drive_, &answers);
  auto durability = ctx_.Durability(fresh);
  doc["durability"] = durability ? DurabilityJson(*durability) : json(nullptr);
  return Respond(JsonResponse(200, doc));
}

Dispatch ApiService::Impl::Sync(const Target& target, const Principal& who) {
  if (!who.Owner()) return Fail(Status::PermissionDenied("only the owner may sync"));
  // checkpoint=0: the queued uploads only (`shardfs put` through this process, batch by batch).
  auto it = target.query.find("checkpoint");
  const bool checkpoint = it == target.query.end() || it->second != "0";
  // timeout=SECONDS: the caller's wait for the nodes (`shardfs sync --timeout`) instead of the
  // process's own.
  std::chrono::milliseconds timeout = options_.sync_timeout;
  if (auto t = target.query.find("timeout"); t != target.query.end()) {
    auto seconds = ParseDecimal(t->second);
    if (!seconds || *seconds == 0 || *seconds > kMaxSyncTimeoutSeconds) {
      return Fail(Status::InvalidArgument("timeout must be 1 to " +
                                          std::to_string(kMaxSyncTimeoutSeconds) + " seconds"));
    }
    timeout = std::chrono::seconds(*seconds);
  }
  log::Info("sync requested{}", checkpoint ? "" : " (uploads only)");
  if (options_.before_sync) options_.before_sync();
  const backend::UploadState before = drive_->Uploads();
  if (Status s = drive_->Sync(timeout); !s.ok()) return Fail(s);
  json answer = {{"ok", true}, {"files", before.staged.files}, {"bytes", before.staged.bytes}};
  answer["head_sequence"] = nullptr;
  if (checkpoint) {
    auto head = drive_->checkpointer().Sync();
    if (!head.ok()) return Fail(head.status());
    answer["head_sequence"] = head->head_sequence;
    log::Info("sync done: checkpoint {}", head->head_sequence);
  }
  return Respond(JsonResponse(200, answer));
}

Dispatch ApiService::Impl::NewPairCode(const HttpRequestHead& head, const Principal& who) {
  if (!who.Owner()) return Fail(Status::PermissionDenied("only the owner may pair devices"));
  return JsonBody(head, [this](const json& j) {
    std::string root = j.value("root", "/");
    bool read_only = j.value("read_only", false);
    auto names = SplitPath(root);
    if (!names.ok()) return ErrorResponse(names.status());
    // The device's folder is made now if missing, so that it has something to see.
    auto dir =
        EnsureFolder(*drive_, Principal{}, *names, !read_only,
                     [this](Ino parent, const std::string& n) { InvalidateEntry(parent, n); });
    if (!dir.ok()) return ErrorResponse(dir.status().WithContext("the device's folder"));
    auto code = devices_.NewCode(j.value("name", ""), read_only, root);
    if (!code.ok()) return ErrorResponse(code.status());
    auto [url, fingerprint] = Address();
    return JsonResponse(201, {{"code", code->code},
                              {"expires", FormatRfc3339(code->expires_ns)},
                              {"name", code->name},
                              {"read_only", code->read_only},
                              {"root", code->root},
                              {"url", url},
                              {"fingerprint", fingerprint}});
  });
}

Dispatch ApiService::Impl::Devices(const HttpRequestHead& head, const Principal& who,
                                   std::string_view rest) {
  if (!who.Owner()) return Fail(Status::PermissionDenied("only the owner may manage devices"));
  if (rest.empty() || rest == "/") {
    if (head.method != "GET") return Fail(Status::NotSupported("GET the devices"), 405);
    auto all = devices_.List();
    if (!all.ok()) return Fail(all.status());
    json list = json::array();
    for (const auto& d : *all) list.push_back(DeviceJson(d));
    return Respond(JsonResponse(200, {{"devices", list}}));
  }
  auto id = ParseDecimal(std::string(rest.substr(1)));
  if (!id) return Fail(Status::NotFound("no such device"));
  if (head.method != "DELETE") return Fail(Status::NotSupported("DELETE to revoke"), 405);
  auto revoked = devices_.Revoke(*id);
  if (!revoked.ok()) return Fail(revoked.status());
  log::Info("revoked device {} ({})", revoked->id, revoked->name);
  return Respond(JsonResponse(200, DeviceJson(*revoked)));
}

ApiService::ApiService(Drive* drive, ApiOptions options)
    : impl_(std::make_unique<Impl>(drive, std::move(options))) {}
ApiService::~ApiService() { impl_->Shutdown(); }
Dispatch ApiService::Begin(const HttpRequestHead& head) { return impl_->Begin(head); }
HttpResponse ApiService::Overloaded() {
  return ErrorResponse(Status::Unavailable("too many connections; try again"), 503);
}
void ApiService::Shutdown() { impl_->Shutdown(); }
void ApiService::SetAddress(std::string url, std::string fingerprint) {
  impl_->SetAddress(std::move(url), std::move(fingerprint));
}
DeviceRegistry& ApiService::devices() { return impl_->devices(); }

}  // namespace shardfs::api
