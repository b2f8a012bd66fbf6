#include "net/api/context.h"

#include "base/wall_clock.h"
#include "net/api/api_http.h"

namespace shardfs::api {

void ApiContext::InvalidateEntry(backend::Ino parent, const std::string& name) {
  if (options_.invalidate_entry && parent != 0) options_.invalidate_entry(parent, name);
}

void ApiContext::InvalidateInode(backend::Ino ino) {
  if (options_.invalidate_inode && ino != 0) options_.invalidate_inode(ino);
}

uint64_t ApiContext::AddUpload(std::string path, std::optional<uint64_t> total) {
  std::lock_guard<std::mutex> lock(uploads_mu_);
  uint64_t id = ++next_upload_;
  uploads_[id] = ActiveUpload{std::move(path), 0, total, WallClockNs()};
  return id;
}

void ApiContext::Progress(uint64_t id, uint64_t received) {
  std::lock_guard<std::mutex> lock(uploads_mu_);
  auto it = uploads_.find(id);
  if (it != uploads_.end()) it->second.received = received;
}

void ApiContext::EndUpload(uint64_t id) {
  std::lock_guard<std::mutex> lock(uploads_mu_);
  uploads_.erase(id);
}

nlohmann::json ApiContext::UploadsJson() {
  nlohmann::json active = nlohmann::json::array();
  std::lock_guard<std::mutex> lock(uploads_mu_);
  for (const auto& [id, u] : uploads_) {
    nlohmann::json a = {{"id", id},
                        {"path", u.path},
                        {"received", u.received},
                        {"started", FormatRfc3339(u.started_ns)}};
    a["total"] = u.total ? nlohmann::json(*u.total) : nlohmann::json(nullptr);
    active.push_back(std::move(a));
  }
  return active;
}

std::optional<backend::DriveSpace> ApiContext::Space() {
  std::lock_guard<std::mutex> lock(space_mu_);
  auto now = std::chrono::steady_clock::now();
  if (space_at_ == std::chrono::steady_clock::time_point{} ||
      now - space_at_ >= options_.space_cache) {
    auto s = drive_->Space();
    space_ = s.ok() ? std::optional<backend::DriveSpace>(*s) : std::nullopt;
    space_at_ = now;
  }
  return space_;
}

std::optional<uint64_t> ApiContext::FreeSpace() {
  auto s = Space();
  return s ? std::optional<uint64_t>(s->free) : std::nullopt;
}

}  // namespace shardfs::api
