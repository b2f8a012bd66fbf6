#include "net/api/download.h"

#include "net/api/api_http.h"

namespace shardfs::api {

namespace {

// Reads a file from the drive, piece by piece, for a response body. The file stays open (and
// so readable if it loses its name meanwhile) until the response is done.
class DriveSource : public net::BodySource {
 public:
  DriveSource(backend::Drive* drive, backend::Ino ino, uint64_t offset, uint64_t length)
      : drive_(drive), ino_(ino), offset_(offset), left_(length) {
    drive_->Open(ino_);
  }
  ~DriveSource() override { (void)drive_->Release(ino_); }
  Result<size_t> Read(MutableByteSpan out) override {
    if (left_ == 0) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), left_));
    SFS_ASSIGN_OR_RETURN(size_t n, drive_->Read(ino_, offset_, out.first(want)));
    if (n == 0) return Status::IOError("the file got shorter while it was sent");
    offset_ += n;
    left_ -= n;
    return n;
  }

 private:
  backend::Drive* drive_;
  backend::Ino ino_;
  uint64_t offset_;
  uint64_t left_;
};

}  // namespace

net::HttpResponse FileResponse(backend::Drive& drive, const backend::InodeAttr& a,
                               const net::HttpRequestHead& head) {
  const std::string etag = ETagOf(a);
  net::HttpResponse r;
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Last-Modified", FormatHttpDate(a.mtime_ns));
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("Cache-Control", "no-cache");
  if (std::string_view inm = head.Header("If-None-Match");
      !inm.empty() && ETagListMatches(inm, etag, true)) {
    r.status = 304;
    return r;
  }
  uint64_t offset = 0, length = a.size;
  std::string_view range = head.Header("Range");
  std::string_view if_range = head.Header("If-Range");
  if (!range.empty() && (if_range.empty() || if_range == etag)) {
    auto parsed = ParseRange(range, a.size);
    if (!parsed.ok()) {
      net::HttpResponse bad = ErrorResponse(parsed.status(), 416);
      bad.headers.emplace_back("Content-Range", "bytes */" + std::to_string(a.size));
      return bad;
    }
    if (*parsed) {
      offset = (*parsed)->offset;
      length = (*parsed)->length;
      r.status = 206;
      r.headers.emplace_back("Content-Range", "bytes " + std::to_string(offset) + "-" +
                                                  std::to_string(offset + length - 1) + "/" +
                                                  std::to_string(a.size));
    }
  }
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  r.head_only = head.method == "HEAD";
  r.stream_length = length;
  if (length > 0) r.stream = std::make_unique<DriveSource>(&drive, a.ino, offset, length);
  return r;
}

}  // namespace shardfs::api
