// What the companion API's faces (REST, tus, WebDAV) share over one drive: the drive, the
// kernel cache a mount keeps of it, the uploads in progress (for status), the nodes' free
// space and the drive's durability (each worked out at most every few seconds, however often
// status is polled), and the lock under which an upload takes its name.
//
// Thread safety: all methods may be called from many threads.

#ifndef SHARDFS_NET_API_CONTEXT_H_
#define SHARDFS_NET_API_CONTEXT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/drive.h"
#include "backend/repairer.h"

namespace shardfs::api {

struct ContextOptions {
  // How long the nodes' free space and the drive's durability are reused.
  std::chrono::seconds space_cache{10};
  // How long an upload asked to be durable waits for the nodes.
  std::chrono::milliseconds durable_timeout{120000};
  // See ApiOptions: a mount's kernel cache.
  std::function<void(backend::Ino)> invalidate_inode;
  std::function<void(backend::Ino, const std::string&)> invalidate_entry;
};

class ApiContext {
 public:
  // REQUIRES: drive outlives the context.
  ApiContext(backend::Drive* drive, ContextOptions options)
      : drive_(drive), options_(std::move(options)) {}

  backend::Drive& drive() { return *drive_; }
  const ContextOptions& options() const { return options_; }

  // The kernel forgets what it cached of an entry (and its folder) or an inode. No lock held.
  void InvalidateEntry(backend::Ino parent, const std::string& name);
  void InvalidateInode(backend::Ino ino);

  // Held from an upload's last check of its conditions until it has its name.
  std::mutex& names_mu() { return names_mu_; }

  // Uploads in progress: one starts (its path, and total if known), gets bytes, ends.
  uint64_t AddUpload(std::string path, std::optional<uint64_t> total);
  void Progress(uint64_t id, uint64_t received);
  void EndUpload(uint64_t id);
  // [{id, path, received, total, started}].
  nlohmann::json UploadsJson();

  // Each node's answer to a status request (Drive::AskNodes), reused for space_cache unless
  // `fresh`.
  using NodeAnswers = std::vector<Result<backend::PeerStatus>>;
  NodeAnswers Answers(bool fresh = false);
  // The nodes' space for files from Answers(), if any node answered.
  std::optional<backend::DriveSpace> Space();
  // Space()->free, or nullopt.
  std::optional<uint64_t> FreeSpace();
  // The packs by healthy shards (Repairer::Survey, which reads every pack's row), if the
  // catalog could be read (reused for space_cache unless `fresh`).
  std::optional<backend::Durability> Durability(bool fresh = false);

 private:
  struct ActiveUpload {
    std::string path;
    uint64_t received = 0;
    std::optional<uint64_t> total;
    int64_t started_ns = 0;
  };
  backend::Drive* drive_;
  const ContextOptions options_;
  std::mutex names_mu_;
  std::mutex uploads_mu_;
  std::map<uint64_t, ActiveUpload> uploads_;
  uint64_t next_upload_ = 0;
  // A value worked out at most every space_cache.
  template <typename T>
  struct Cached {
    std::mutex mu;
    std::optional<T> value;
    std::chrono::steady_clock::time_point at{};
  };
  // c's value, or compute()'s (a std::optional<T>) if it is older than space_cache, or if
  // `fresh`.
  template <typename T, typename F>
  std::optional<T> Reuse(Cached<T>& c, bool fresh, F compute);
  Cached<NodeAnswers> answers_;
  Cached<backend::Durability> durability_;
};

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_CONTEXT_H_
