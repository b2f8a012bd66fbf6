#include "net/api/drive_status.h"

#include <cstdlib>

namespace shardfs::api {

using nlohmann::json;

json DurabilityJson(const backend::Durability& d) {
  json by = json::object();
  for (const auto& [healthy, packs] : d.packs_by_healthy) by[std::to_string(healthy)] = packs;
  return {{"packs", d.packs},           {"full", d.full}, {"degraded", d.degraded},
          {"endangered", d.endangered}, {"lost", d.lost}, {"packs_by_healthy_shards", by}};
}

backend::Durability DurabilityFromJson(const json& j) {
  backend::Durability d;
  d.packs = j.value("packs", uint64_t{0});
  d.full = j.value("full", uint64_t{0});
  d.degraded = j.value("degraded", uint64_t{0});
  d.endangered = j.value("endangered", uint64_t{0});
  d.lost = j.value("lost", uint64_t{0});
  if (auto by = j.find("packs_by_healthy_shards"); by != j.end() && by->is_object()) {
    for (const auto& [healthy, packs] : by->items()) {
      d.packs_by_healthy[std::atoi(healthy.c_str())] = packs.get<uint64_t>();
    }
  }
  return d;
}

json NodesJson(backend::Drive& drive, const std::vector<Result<backend::PeerStatus>>* answers) {
  backend::PeerSet& peers = drive.peers();
  json out = json::array();
  for (size_t i = 0; i < peers.size(); ++i) {
    const backend::PeerHealth h = peers.health(i);
    json n = {{"address", peers.node(i).address},
              {"id", peers.node(i).id.ToHex()},
              {"state", backend::NodeLivenessName(h.liveness)},
              {"reputation", peers.Reputation(i)},
              {"latency_ms", h.latency_us / 1000.0},
              {"successes", h.successes},
              {"failures", h.failures},
              {"consecutive_failures", h.consecutive_failures},
              {"bad_bytes", h.bad_bytes},
              {"last_seen_ns", h.last_seen_ns}};
    n["free"] = h.free ? json(*h.free) : json(nullptr);
    n["rtt_ms"] = h.rtt_ms ? json(*h.rtt_ms) : json(nullptr);
    if (answers != nullptr && i < answers->size()) {
      const auto& st = (*answers)[i];
      n["up"] = st.ok();
      if (st.ok()) {
        n["shards"] = st->shards;
        n["used"] = st->used;
        n["free"] = st->free;
        n["version"] = st->version;
      } else {
        n["error"] = st.status().ToString();
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

Result<json> UsageJson(backend::Drive& drive) {
  SFS_ASSIGN_OR_RETURN(auto totals, drive.catalog().GetTotals());
  const backend::UploadState up = drive.Uploads();
  const backend::DriveConfig& c = drive.config();
  return json{{"k", c.k},
              {"m", c.m},
              {"files", totals.files},
              {"folders", totals.folders},
              {"file_bytes", totals.file_bytes},
              {"packs", totals.packs},
              {"pack_bytes", totals.pack_bytes},
              {"chunks", totals.chunks},
              {"unreferenced_chunks", totals.unreferenced_chunks},
              {"pending_uploads",
               {{"files", up.staged.files},
                {"layers", up.staged.layers},
                {"bytes", up.staged.bytes},
                {"limit", up.staging_limit},
                {"last_error", up.last_error.ok() ? std::string() : up.last_error.ToString()}}}};
}

}  // namespace shardfs::api
