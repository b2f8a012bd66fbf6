// A drive's state as JSON, for the companion API's GET /api/v1/status and for `shardfs
// status`: usage, uploads waiting, the nodes as this client sees them, and durability
// (docs/api.md, "Status").
//
// Thread safety: as the Drive's.

#ifndef SHARDFS_NET_API_DRIVE_STATUS_H_
#define SHARDFS_NET_API_DRIVE_STATUS_H_

#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/drive.h"
#include "backend/repairer.h"

namespace shardfs::api {

// {"packs", "full", "degraded", "endangered", "lost", "packs_by_healthy_shards": {"6": n}}.
nlohmann::json DurabilityJson(const backend::Durability& d);

// The inverse of DurabilityJson; missing fields are 0.
backend::Durability DurabilityFromJson(const nlohmann::json& j);

// The nodes of the drive as this client sees them: address, id, state in the member list,
// reputation, latency, free space, answers and failures; and with `answers` (Drive::AskNodes,
// in the same order), whether each answered ("up") and its "shards", "used", "free" and
// "version", or the "error".
nlohmann::json NodesJson(backend::Drive& drive,
                         const std::vector<Result<backend::PeerStatus>>* answers = nullptr);

// Usage ("files", "folders", "file_bytes", "packs", "pack_bytes"), uploads waiting
// ("pending_uploads"), and the code ("k", "m"); errors of the catalog.
Result<nlohmann::json> UsageJson(backend::Drive& drive);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_DRIVE_STATUS_H_
