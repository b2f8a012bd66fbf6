// Resumable uploads with the tus 1.0.0 protocol under /api/v1/uploads (docs/api.md,
// "Resumable uploads"): the core protocol (HEAD for the offset, PATCH to append), and the
// creation, creation-with-upload, termination and expiration extensions.
//
// An upload's bytes go into a file with no name (Drive::CreateUnlinked), as those of a PUT
// do, each piece as it arrives: a PATCH cut short keeps what came, and HEAD says how much.
// When the last byte arrives the file takes its name (its folders are made as needed) in one
// transaction. Unfinished uploads live in this process: one idle past its expiry, or left
// when the process ends, is dropped with its bytes.
//
// Thread safety: all methods may be called from many threads.

#ifndef SHARDFS_NET_API_TUS_H_
#define SHARDFS_NET_API_TUS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backend/drive.h"
#include "net/api/context.h"
#include "net/api/devices.h"
#include "net/api/scope.h"
#include "net/http_types.h"

namespace shardfs::api {

struct TusOptions {
  // An upload with no request for this long is dropped.
  std::chrono::seconds expiry{24 * 3600};
  // Unfinished uploads at once, per device and in all.
  size_t max_per_device = 64;
  size_t max_uploads = 1024;
};

class TusUploads {
 public:
  // REQUIRES: ctx outlives the uploads.
  TusUploads(ApiContext* ctx, TusOptions options, std::function<int64_t()> clock = nullptr);
  // Drops every unfinished upload.
  ~TusUploads();

  // A request under /api/v1/uploads: `rest` is what follows it ("" or "/ID"). OPTIONS needs
  // no principal (`who` may be null); the others do.
  net::Dispatch Begin(const net::HttpRequestHead& head, std::string_view rest,
                      const Principal* who);

  class Upload;
  class PatchSink;

 private:
  int64_t Now() const;
  // Drops the uploads idle past their expiry.
  void Expire();
  net::Dispatch Create(const net::HttpRequestHead& head, const Principal& who);
  net::Dispatch Head(const std::string& id, const Principal& who);
  net::Dispatch Patch(const net::HttpRequestHead& head, const std::string& id,
                      const Principal& who);
  net::Dispatch Terminate(const std::string& id, const Principal& who);
  // The upload `id` if `who` may use it.
  std::shared_ptr<Upload> Find(const std::string& id, const Principal& who);
  // The file takes its name; the upload is forgotten.
  net::HttpResponse Complete(const std::shared_ptr<Upload>& u);
  void Forget(const std::string& id);

  ApiContext* ctx_;
  const TusOptions options_;
  std::function<int64_t()> clock_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Upload>> uploads_;
};

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_TUS_H_
