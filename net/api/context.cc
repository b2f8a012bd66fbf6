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

template <typename T, typename F>
std::optional<T> ApiContext::Reuse(Cached<T>& c, bool fresh, F compute) {
  std::lock_guard<std::mutex> lock(c.mu);
  auto now = std::chrono::steady_clock::now();
  if (fresh || c.at == std::chrono::steady_clock::time_point{} ||
      now - c.at >= options_.space_cache) {
    c.value = compute();
    c.at = now;
  }
  return c.value;
}

ApiContext::NodeAnswers ApiContext::Answers(bool fresh) {
  return *Reuse(answers_, fresh, [this] { return std::optional<NodeAnswers>(drive_->AskNodes()); });
}

std::optional<backend::DriveSpace> ApiContext::Space() {
  auto space = drive_->SpaceFrom(Answers());
  return space.ok() ? std::optional<backend::DriveSpace>(*space) : std::nullopt;
}

std::optional<backend::Durability> ApiContext::Durability(bool fresh) {
  return Reuse(durability_, fresh, [this] {
    auto survey = drive_->repairer().Survey();
    return survey.ok() ? std::optional<backend::Durability>(*survey) : std::nullopt;
  });
}

std::optional<uint64_t> ApiContext::FreeSpace() {
  auto s = Space();
  return s ? std::optional<uint64_t>(s->free) : std::nullopt;
}

}  // namespace shardfs::api
