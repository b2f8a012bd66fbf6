#include "net/api/tus.h"

#include <array>

#include "base/bytes.h"
#include "base/wall_clock.h"
#include "crypto/secret.h"
#include "net/api/api_http.h"

namespace shardfs::api {

using backend::FileKind;
using backend::Ino;
using net::Dispatch;
using net::HttpRequestHead;
using net::HttpResponse;

namespace {

constexpr std::string_view kVersion = "1.0.0";
constexpr std::string_view kPrefix = "/api/v1/uploads";

HttpResponse Tus(unsigned status) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Tus-Resumable", std::string(kVersion));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse TusError(const Status& s, unsigned status = 0) {
  HttpResponse r = ErrorResponse(s, status);
  r.headers.emplace_back("Tus-Resumable", std::string(kVersion));
  return r;
}

Dispatch Fail(const Status& s, unsigned status = 0) {
  return Dispatch::Respond(TusError(s, status));
}

}  // namespace

class TusUploads::Upload {
 public:
  std::string id;
  Principal who;
  Names rel;
  Ino ino = 0;
  std::optional<uint64_t> length;
  std::string metadata;  // as the client sent it, echoed on HEAD
  std::optional<int64_t> mtime_ns;
  bool overwrite = true;
  uint64_t status_id = 0;

  std::mutex mu;
  uint64_t offset = 0;     // guarded by mu
  bool busy = false;       // a PATCH is writing; guarded by mu
  int64_t touched_ns = 0;  // the last request; guarded by mu
};

// The body of a PATCH (or of a creation with upload): appended at the upload's offset, piece
// by piece; what came stays if the request is cut short.
class TusUploads::PatchSink : public net::BodySink {
 public:
  PatchSink(TusUploads* owner, std::shared_ptr<Upload> u, bool created)
      : owner_(owner), u_(std::move(u)), created_(created) {}
  ~PatchSink() override {
    std::lock_guard<std::mutex> lock(u_->mu);
    u_->busy = false;
    u_->touched_ns = owner_->Now();
  }

  Status Write(ByteSpan data) override {
    uint64_t at;
    {
      std::lock_guard<std::mutex> lock(u_->mu);
      at = u_->offset;
    }
    SFS_RETURN_IF_ERROR(owner_->ctx_->drive().Write(u_->ino, at, data));
    std::lock_guard<std::mutex> lock(u_->mu);
    u_->offset = at + data.size();
    owner_->ctx_->Progress(u_->status_id, u_->offset);
    return Status::Ok();
  }

  HttpResponse Finish() override {
    uint64_t offset;
    bool done;
    {
      std::lock_guard<std::mutex> lock(u_->mu);
      offset = u_->offset;
      done = u_->length && offset == *u_->length;
      u_->busy = false;
    }
    if (done) {
      HttpResponse r = owner_->Complete(u_);
      if (r.status >= 300) return r;
    }
    HttpResponse r = Tus(created_ ? 201 : 204);
    r.headers.emplace_back("Upload-Offset", std::to_string(offset));
    if (created_) r.headers.emplace_back("Location", std::string(kPrefix) + "/" + u_->id);
    return r;
  }

  HttpResponse Fail(const Status& s) override { return TusError(s); }

 private:
  TusUploads* owner_;
  std::shared_ptr<Upload> u_;
  bool created_;
};

TusUploads::TusUploads(ApiContext* ctx, TusOptions options, std::function<int64_t()> clock)
    : ctx_(ctx), options_(options), clock_(std::move(clock)) {}

TusUploads::~TusUploads() {
  std::map<std::string, std::shared_ptr<Upload>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(uploads_);
  }
  for (auto& [id, u] : left) {
    ctx_->EndUpload(u->status_id);
    (void)ctx_->drive().Release(u->ino);
  }
}

int64_t TusUploads::Now() const { return clock_ ? clock_() : WallClockNs(); }

void TusUploads::Forget(const std::string& id) {
  std::shared_ptr<Upload> u;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads_.find(id);
    if (it == uploads_.end()) return;
    u = it->second;
    uploads_.erase(it);
  }
  ctx_->EndUpload(u->status_id);
}

void TusUploads::Expire() {
  const int64_t now = Now();
  const int64_t expiry =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.expiry).count();
  std::vector<std::shared_ptr<Upload>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = uploads_.begin(); it != uploads_.end();) {
      std::lock_guard<std::mutex> ulock(it->second->mu);
      if (!it->second->busy && now - it->second->touched_ns > expiry) {
        gone.push_back(it->second);
        it = uploads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& u : gone) {
    ctx_->EndUpload(u->status_id);
    (void)ctx_->drive().Release(u->ino);
  }
}

std::shared_ptr<TusUploads::Upload> TusUploads::Find(const std::string& id, const Principal& who) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return nullptr;
  // Another device's upload is as good as unknown.
  if (it->second->who.device_id != who.device_id) return nullptr;
  return it->second;
}

Dispatch TusUploads::Begin(const HttpRequestHead& head, std::string_view rest,
                           const Principal* who) {
  if (head.method == "OPTIONS") {
    HttpResponse r = Tus(204);
    r.headers.emplace_back("Tus-Version", std::string(kVersion));
    r.headers.emplace_back("Tus-Extension", "creation,creation-with-upload,termination,expiration");
    if (auto free = ctx_->FreeSpace())
      r.headers.emplace_back("Tus-Max-Size", std::to_string(*free));
    return Dispatch::Respond(std::move(r));
  }
  if (who == nullptr) return Fail(Status::PermissionDenied("no token"), 401);
  if (head.Header("Tus-Resumable") != kVersion) {
    HttpResponse r = TusError(Status::InvalidArgument("this server speaks tus 1.0.0"), 412);
    r.headers.emplace_back("Tus-Version", std::string(kVersion));
    return Dispatch::Respond(std::move(r));
  }
  Expire();
  if (rest.empty() || rest == "/") {
    if (head.method != "POST") return Fail(Status::NotSupported("POST to create an upload"), 405);
    return Create(head, *who);
  }
  std::string id(rest.substr(1));
  if (head.method == "HEAD") return Head(id, *who);
  if (head.method == "PATCH") return Patch(head, id, *who);
  if (head.method == "DELETE") return Terminate(id, *who);
  return Fail(Status::NotSupported("HEAD, PATCH or DELETE an upload"), 405);
}

Dispatch TusUploads::Create(const HttpRequestHead& head, const Principal& who) {
  if (head.Header("Upload-Defer-Length") == "1") {
    return Fail(
        Status::NotSupported("uploads of unknown length are not served; send Upload-Length"), 400);
  }
  auto length = ParseDecimal(head.Header("Upload-Length"));
  if (!length) return Fail(Status::InvalidArgument("Upload-Length is required"));
  // Upload-Metadata: "key base64,key base64".
  auto u = std::make_shared<Upload>();
  u->metadata = std::string(head.Header("Upload-Metadata"));
  std::string path, filename;
  for (std::string_view pair : SplitOn(u->metadata, ',')) {
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.empty()) continue;
    size_t space = pair.find(' ');
    std::string key(pair.substr(0, space));
    std::string value;
    if (space != std::string_view::npos) {
      auto decoded = Base64Decode(pair.substr(space + 1));
      if (!decoded.ok())
        return Fail(Status::InvalidArgument("Upload-Metadata: bad base64 for " + key));
      value = std::move(*decoded);
    }
    if (key == "path") {
      path = value;
    } else if (key == "filename") {
      filename = value;
    } else if (key == "mtime") {
      u->mtime_ns = ParseEpochSeconds(value);
      if (!u->mtime_ns) {
        return Fail(Status::InvalidArgument("Upload-Metadata: mtime is seconds since the epoch"));
      }
    } else if (key == "overwrite") {
      u->overwrite = value != "false" && value != "0";
    }
  }
  if (path.empty()) path = filename;
  if (path.empty()) {
    return Fail(Status::InvalidArgument("Upload-Metadata needs \"path\" (or \"filename\")"));
  }
  auto rel = SplitPath(path);
  if (!rel.ok()) return Fail(rel.status());
  if (rel->empty()) return Fail(Status::InvalidArgument("an upload needs a file name"));
  u->rel = std::move(*rel);
  u->who = who;
  u->length = *length;
  // What can be told now is told now: a name taken by a folder, a file not to be replaced,
  // no room.
  auto at = Locate(ctx_->drive(), who, u->rel);
  if (at.ok() && at->attr) {
    if (at->attr->kind != FileKind::kFile) {
      return Fail(Status::IsDirectory("'" + JoinPath(u->rel) + "' is not a file"));
    }
    if (!u->overwrite) return Fail(Status::AlreadyExists("'" + JoinPath(u->rel) + "' exists"), 412);
  } else if (!at.ok() && at.status().code() != Code::kNotFound) {
    return Fail(at.status());
  }
  if (auto free = ctx_->FreeSpace(); free && *length > *free) {
    return Fail(Status::NoSpace("the upload is larger than the drive's free space (" +
                                std::to_string(*free) + " bytes)"),
                413);
  }
  std::array<uint8_t, 16> random;
  crypto::RandomBytes(random);
  u->id = HexEncode(random);
  u->touched_ns = Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t mine = 0;
    for (const auto& [id, other] : uploads_) mine += other->who.device_id == who.device_id;
    if (uploads_.size() >= options_.max_uploads || mine >= options_.max_per_device) {
      return Fail(Status::Busy("too many unfinished uploads; finish or delete some"), 429);
    }
  }
  backend::NewInode how;
  how.mode = 0644;
  auto file = ctx_->drive().CreateUnlinked(how);
  if (!file.ok()) return Fail(file.status());
  u->ino = file->ino;
  u->status_id = ctx_->AddUpload(JoinPath(u->rel), u->length);
  {
    std::lock_guard<std::mutex> lock(mu_);
    uploads_[u->id] = u;
  }
  const bool with_body = head.has_body();
  if (with_body) {
    if (head.Header("Content-Type") != "application/offset+octet-stream") {
      Forget(u->id);
      (void)ctx_->drive().Release(u->ino);
      return Fail(
          Status::InvalidArgument("a creation with upload is application/offset+octet-stream"),
          415);
    }
    std::lock_guard<std::mutex> lock(u->mu);
    u->busy = true;
    return Dispatch::Stream(std::make_unique<PatchSink>(this, u, /*created=*/true), *length);
  }
  if (*length == 0) {
    HttpResponse done = Complete(u);
    if (done.status >= 300) return Dispatch::Respond(std::move(done));
  }
  HttpResponse r = Tus(201);
  r.headers.emplace_back("Location", std::string(kPrefix) + "/" + u->id);
  r.headers.emplace_back("Upload-Offset", "0");
  r.headers.emplace_back(
      "Upload-Expires",
      FormatHttpDate(
          u->touched_ns +
          std::chrono::duration_cast<std::chrono::nanoseconds>(options_.expiry).count()));
  return Dispatch::Respond(std::move(r));
}

Dispatch TusUploads::Head(const std::string& id, const Principal& who) {
  auto u = Find(id, who);
  if (!u) return Fail(Status::NotFound("no such upload (finished, deleted or expired)"));
  HttpResponse r = Tus(200);
  std::lock_guard<std::mutex> lock(u->mu);
  u->touched_ns = Now();
  r.headers.emplace_back("Upload-Offset", std::to_string(u->offset));
  if (u->length) r.headers.emplace_back("Upload-Length", std::to_string(*u->length));
  if (!u->metadata.empty()) r.headers.emplace_back("Upload-Metadata", u->metadata);
  r.head_only = true;
  return Dispatch::Respond(std::move(r));
}

Dispatch TusUploads::Patch(const HttpRequestHead& head, const std::string& id,
                           const Principal& who) {
  if (head.Header("Content-Type") != "application/offset+octet-stream") {
    return Fail(Status::InvalidArgument("a PATCH is application/offset+octet-stream"), 415);
  }
  auto u = Find(id, who);
  if (!u) return Fail(Status::NotFound("no such upload (finished, deleted or expired)"));
  auto offset = ParseDecimal(head.Header("Upload-Offset"));
  if (!offset) return Fail(Status::InvalidArgument("Upload-Offset is required"));
  uint64_t left;
  {
    std::lock_guard<std::mutex> lock(u->mu);
    u->touched_ns = Now();
    if (u->busy) return Fail(Status::Busy("another PATCH of this upload is in progress"), 409);
    if (*offset != u->offset) {
      HttpResponse r = TusError(
          Status::InvalidArgument("Upload-Offset " + std::to_string(*offset) +
                                  " is not the upload's offset " + std::to_string(u->offset)),
          409);
      r.headers.emplace_back("Upload-Offset", std::to_string(u->offset));
      return Dispatch::Respond(std::move(r));
    }
    left = *u->length - u->offset;
    if (head.content_length && *head.content_length > left) {
      return Fail(Status::InvalidArgument("the body runs past Upload-Length"), 413);
    }
    u->busy = true;
  }
  if (!head.has_body()) {
    // Nothing to append: answers the offset (and names a finished upload whose naming failed
    // before).
    PatchSink sink(this, u, false);
    return Dispatch::Respond(sink.Finish());
  }
  return Dispatch::Stream(std::make_unique<PatchSink>(this, u, false), left);
}

Dispatch TusUploads::Terminate(const std::string& id, const Principal& who) {
  auto u = Find(id, who);
  if (!u) return Fail(Status::NotFound("no such upload"));
  {
    std::lock_guard<std::mutex> lock(u->mu);
    if (u->busy) return Fail(Status::Busy("a PATCH of this upload is in progress"), 409);
  }
  Forget(id);
  (void)ctx_->drive().Release(u->ino);
  return Dispatch::Respond(Tus(204));
}

HttpResponse TusUploads::Complete(const std::shared_ptr<Upload>& u) {
  backend::Drive& d = ctx_->drive();
  if (Status s = d.Flush(u->ino); !s.ok()) return TusError(s);
  auto at = LocateMakingFolders(d, u->who, u->rel, [this](Ino parent, const std::string& name) {
    ctx_->InvalidateEntry(parent, name);
  });
  if (!at.ok()) return TusError(at.status(), at.status().code() == Code::kNotFound ? 409 : 0);
  Ino replaced = 0;
  if (at->attr) {
    if (at->attr->kind != FileKind::kFile) {
      return TusError(Status::IsDirectory("'" + JoinPath(u->rel) + "' is not a file"));
    }
    if (!u->overwrite)
      return TusError(Status::AlreadyExists("'" + JoinPath(u->rel) + "' exists"), 412);
    replaced = at->attr->ino;
  }
  auto named = d.LinkUnlinked(u->ino, at->parent, at->name, u->overwrite);
  if (!named.ok())
    return TusError(named.status(), named.status().code() == Code::kAlreadyExists ? 412 : 0);
  if (u->mtime_ns) {
    backend::AttrChange change;
    change.mtime_ns = *u->mtime_ns;
    (void)d.SetAttr(u->ino, change);
  }
  Forget(u->id);
  Status released = d.Release(u->ino);
  ctx_->InvalidateEntry(at->parent, at->name);
  ctx_->InvalidateInode(replaced);
  if (!released.ok()) return TusError(released);
  return Tus(204);
}

}  // namespace shardfs::api
