#include "net/api/upload.h"

#include "net/api/api_http.h"

namespace shardfs::api {

using backend::Drive;
using backend::FileKind;
using backend::InodeAttr;

Status CheckConditions(const WriteConditions& c, const std::optional<InodeAttr>& current) {
  std::string etag = current ? ETagOf(*current) : "";
  if (!c.if_match.empty() && !ETagListMatches(c.if_match, etag, current.has_value())) {
    return Status::AlreadyExists("If-Match: the file is not the version given");
  }
  if (!c.if_none_match.empty() && ETagListMatches(c.if_none_match, etag, current.has_value())) {
    return Status::AlreadyExists("If-None-Match: the file exists (in that version)");
  }
  return Status::Ok();
}

namespace {

class PutSink : public net::BodySink {
 public:
  PutSink(ApiContext* ctx, PutRequest req, InodeAttr file, PutDone done, PutError error)
      : ctx_(ctx),
        req_(std::move(req)),
        file_(file),
        done_(std::move(done)),
        error_(std::move(error)),
        upload_(ctx->AddUpload(JoinPath(req_.target.rel), req_.length)) {}

  ~PutSink() override {
    ctx_->EndUpload(upload_);
    // Not named: the file goes with its last Release.
    if (!released_) (void)ctx_->drive().Release(file_.ino);
  }

  Status Write(ByteSpan data) override {
    SFS_RETURN_IF_ERROR(ctx_->drive().Write(file_.ino, offset_, data));
    offset_ += data.size();
    ctx_->Progress(upload_, offset_);
    return Status::Ok();
  }

  net::HttpResponse Finish() override {
    Drive& d = ctx_->drive();
    const Located& t = req_.target;
    if (Status s = d.Flush(file_.ino); !s.ok()) return error_(s, 0);
    std::optional<InodeAttr> replaced;
    {
      std::lock_guard<std::mutex> lock(ctx_->names_mu());
      auto now = d.Lookup(t.parent, t.name);
      if (!now.ok() && now.status().code() != Code::kNotFound) return error_(now.status(), 0);
      std::optional<InodeAttr> current;
      if (now.ok()) current = *now;
      if (Status s = CheckConditions(req_.conditions, current); !s.ok()) return error_(s, 412);
      if (current && current->kind != FileKind::kFile) {
        return error_(Status::IsDirectory("'" + JoinPath(t.rel) + "' is not a file"), 0);
      }
      auto named = d.LinkUnlinked(file_.ino, t.parent, t.name, /*replace=*/true);
      if (!named.ok()) return error_(named.status(), 0);
      replaced = current;
    }
    if (req_.mtime_ns) {
      backend::AttrChange change;
      change.mtime_ns = *req_.mtime_ns;
      (void)d.SetAttr(file_.ino, change);
    }
    released_ = true;
    Status released = d.Release(file_.ino);
    ctx_->InvalidateEntry(t.parent, t.name);
    if (replaced) ctx_->InvalidateInode(replaced->ino);
    if (!released.ok()) return error_(released, 0);
    if (req_.durable) {
      Status stored = d.Fsync(file_.ino, ctx_->options().durable_timeout);
      if (!stored.ok()) {
        return error_(
            stored.WithContext("saved, and queued for upload, but not stored on the nodes yet"), 0);
      }
    }
    auto attr = d.GetAttr(file_.ino);
    if (!attr.ok()) return error_(attr.status(), 0);
    return done_(*attr, replaced.has_value());
  }

  net::HttpResponse Fail(const Status& s) override { return error_(s, 0); }

 private:
  ApiContext* ctx_;
  PutRequest req_;
  InodeAttr file_;
  PutDone done_;
  PutError error_;
  uint64_t upload_;
  uint64_t offset_ = 0;
  bool released_ = false;
};

}  // namespace

Result<std::unique_ptr<net::BodySink>> StartPut(ApiContext* ctx, PutRequest req, PutDone done,
                                                PutError error) {
  backend::NewInode how;
  how.mode = req.mode;
  SFS_ASSIGN_OR_RETURN(InodeAttr file, ctx->drive().CreateUnlinked(how));
  return std::unique_ptr<net::BodySink>(
      std::make_unique<PutSink>(ctx, std::move(req), file, std::move(done), std::move(error)));
}

}  // namespace shardfs::api
