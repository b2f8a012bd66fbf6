#include "net/members_json.h"

#include <nlohmann/json.hpp>

namespace shardfs::net {

namespace {

using json = nlohmann::json;

json CoordinateJson(const backend::Coordinate& c) {
  return {{"vec", c.vec}, {"height", c.height}, {"error", c.error}};
}

double Seconds(Gossip::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::string EncodeMembersView(const Gossip& gossip, Gossip::Clock::time_point now) {
  const GossipOptions& o = gossip.options();
  const GossipCounters& c = gossip.counters();
  json members = json::array();
  for (const MemberView& m : gossip.Members()) {
    const MemberRecord& r = *m.record;
    members.push_back({{"id", r.id.ToHex()},
                       {"address", r.address},
                       {"state", MemberStateName(m.state)},
                       {"incarnation", m.incarnation},
                       {"capacity", r.capacity},
                       {"free", r.free},
                       {"coordinate", CoordinateJson(r.coordinate)},
                       {"rtt_ms", m.rtt_ms ? json(*m.rtt_ms) : json(nullptr)},
                       {"state_seconds", std::max(0.0, Seconds(now - m.since))},
                       {"self", m.self},
                       {"record", HexEncode(r.encoded)}});
  }
  json j = {{"node", gossip.id().ToHex()},
            {"coordinate", CoordinateJson(gossip.coordinate())},
            {"gossip",
             {{"period_ms", o.period.count()},
              {"ping_timeout_ms", o.ping_timeout.count()},
              {"indirect_fanout", o.indirect_fanout},
              {"suspicion_mult", o.suspicion_mult},
              {"suspicion_timeout_ms", gossip.SuspicionTimeout().count()},
              {"gossip_fanout", o.gossip_fanout},
              {"gossip_interval_ms", o.gossip_interval.count()},
              {"retransmit_mult", o.retransmit_mult},
              {"retransmit_limit", gossip.RetransmitLimit()},
              {"live_members", gossip.LiveCount()},
              {"packets_sent", c.packets_sent},
              {"packets_received", c.packets_received},
              {"bad_packets", c.bad_packets},
              {"misdirected", c.misdirected},
              {"records_rejected", c.records_rejected},
              {"gossip_packets", c.gossip_packets},
              {"probes", c.probes},
              {"indirect_probes", c.indirect_probes},
              {"suspicions", c.suspicions},
              {"deaths", c.deaths},
              {"refutations", c.refutations},
              {"stalls", c.stalls}}},
            {"members", std::move(members)}};
  return j.dump();
}

Result<RemoteView> DecodeMembersView(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("members") || !j["members"].is_array() || !j.contains("node") ||
      !j["node"].is_string()) {
    return Status::InvalidArgument("not a members view (expected JSON with node and members)");
  }
  auto node = NodeId::FromHex(j["node"].get<std::string>());
  if (!node.ok()) return node.status().WithContext("members view: node");
  if (j["members"].size() > 100000) {
    return Status::InvalidArgument("members view lists more than 100,000 members");
  }
  RemoteView view;
  view.node = *node;
  if (j.contains("coordinate") && j["coordinate"].is_object()) {
    const json& c = j["coordinate"];
    if (c.contains("vec") && c["vec"].is_array() &&
        c["vec"].size() == static_cast<size_t>(backend::kCoordinateDims) && c.contains("height") &&
        c["height"].is_number() && c.contains("error") && c["error"].is_number()) {
      backend::Coordinate co;
      bool numbers = true;
      for (int i = 0; i < backend::kCoordinateDims; ++i) {
        numbers = numbers && c["vec"][i].is_number();
        if (numbers) co.vec[i] = c["vec"][i].get<double>();
      }
      co.height = c["height"].get<double>();
      co.error = c["error"].get<double>();
      if (numbers && backend::ValidateCoordinate(co).ok()) view.coordinate = co;
    }
  }
  for (const json& m : j["members"]) {
    if (!m.is_object() || !m.contains("record") || !m["record"].is_string() ||
        !m.contains("state") || !m["state"].is_string() || !m.contains("incarnation") ||
        !m["incarnation"].is_number_unsigned()) {
      ++view.rejected;
      continue;
    }
    auto raw = HexDecode(m["record"].get<std::string>());
    auto state = ParseMemberState(m["state"].get<std::string>());
    if (!raw.ok() || !state) {
      ++view.rejected;
      continue;
    }
    auto rec = VerifyMemberRecord(*raw);
    if (!rec.ok()) {
      ++view.rejected;
      continue;
    }
    RemoteMember rm;
    rm.record = std::move(*rec);
    rm.state = *state;
    rm.incarnation = m["incarnation"].get<uint64_t>();
    if (m.contains("rtt_ms") && m["rtt_ms"].is_number()) rm.rtt_ms = m["rtt_ms"].get<double>();
    if (m.contains("state_seconds") && m["state_seconds"].is_number()) {
      rm.state_seconds = m["state_seconds"].get<double>();
    }
    if (m.contains("self") && m["self"].is_boolean()) rm.self = m["self"].get<bool>();
    view.members.push_back(std::move(rm));
  }
  return view;
}

}  // namespace shardfs::net
