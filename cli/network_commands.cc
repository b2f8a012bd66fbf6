#include "cli/network_commands.h"

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "backend/coordinates.h"
#include "base/units.h"
#include "cli/drive_open.h"
#include "cli/exit.h"
#include "net/api/drive_status.h"

namespace shardfs::cli {

using nlohmann::json;

void PrintDurabilityLine(const backend::Durability& d, int k, int m) {
  std::printf("durability: %llu packs of RS(%d,%d): %llu with all %d shards healthy",
              static_cast<unsigned long long>(d.packs), k, m,
              static_cast<unsigned long long>(d.full), k + m);
  if (d.degraded > 0) std::printf(", %llu degraded", static_cast<unsigned long long>(d.degraded));
  if (d.endangered > 0) {
    std::printf(", %llu endangered (repair due)", static_cast<unsigned long long>(d.endangered));
  }
  if (d.lost > 0) {
    std::printf(", %llu UNREADABLE (fewer than %d healthy shards)",
                static_cast<unsigned long long>(d.lost), k);
  }
  std::printf("\n");
  if (d.full != d.packs) {
    std::printf("  packs by healthy shards:");
    for (const auto& [healthy, packs] : d.packs_by_healthy) {
      std::printf(" %d: %llu;", healthy, static_cast<unsigned long long>(packs));
    }
    std::printf("\n");
  }
}

namespace {

struct CareFlags {
  DriveFlags drive;
  bool now = false;
  bool json = false;
};

std::string Ms(std::optional<double> ms) {
  if (!ms) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.2f ms" : "%.0f ms", *ms);
  return buf;
}

int RunNodes(const CareFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs nodes");
  if (!drive.ok()) return Failure("nodes", "open the drive", drive.status());
  backend::Drive& d = **drive;
  backend::PeerSet& peers = d.peers();
  // Three round trips to each node: the median of three, the first (a new connection) aside.
  auto members = d.RefreshMembership(3);
  // Every member the network lists, and every node of the drive it does not.
  struct Row {
    NodeId id;
    std::string address;
    std::string state = "unknown";
    std::optional<uint64_t> free;
    std::optional<double> predicted, measured, reputation;
    bool in_drive = false;
  };
  std::map<NodeId, Row> rows;
  auto own = peers.own_coordinate();
  if (members.ok()) {
    for (const auto& m : *members) {
      Row r;
      r.id = m.id;
      r.address = m.address;
      r.state = backend::NodeLivenessName(m.state);
      r.free = m.free;
      if (own) r.predicted = backend::PredictRtt(*own, m.coordinate);
      rows[m.id] = r;
    }
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    Row& r = rows[peers.node(i).id];
    r.id = peers.node(i).id;
    if (r.address.empty()) r.address = peers.node(i).address;
    r.in_drive = true;
    const backend::PeerHealth h = peers.health(i);
    r.measured = h.rtt_ms;
    if (!r.free) r.free = h.free;
    r.reputation = peers.Reputation(i);
  }
  if (f.json) {
    json out = json::array();
    for (const auto& [id, r] : rows) {
      json j = {
          {"id", id.ToHex()}, {"address", r.address}, {"state", r.state}, {"in_drive", r.in_drive}};
      j["free"] = r.free ? json(*r.free) : json(nullptr);
      j["predicted_ms"] = r.predicted ? json(*r.predicted) : json(nullptr);
      j["measured_ms"] = r.measured ? json(*r.measured) : json(nullptr);
      j["reputation"] = r.reputation ? json(*r.reputation) : json(nullptr);
      out.push_back(j);
    }
    json doc = {{"members", out}};
    if (!members.ok()) doc["error"] = members.status().ToString();
    std::printf("%s\n", doc.dump(2).c_str());
    return members.ok() ? 0 : kExitFailure;
  }
  if (!members.ok()) {
    std::printf("(no node answered for the member list: %s)\n", members.status().message().c_str());
  }
  std::printf("%-8s  %-22s  %-7s  %10s  %10s  %10s  %10s  %s\n", "node", "address", "state", "free",
              "predicted", "measured", "reputation", "");
  for (const auto& [id, r] : rows) {
    char rep[16] = "-";
    if (r.reputation) std::snprintf(rep, sizeof rep, "%.2f", *r.reputation);
    std::printf("%-8s  %-22s  %-7s  %10s  %10s  %10s  %10s  %s\n", id.ShortHex().c_str(),
                r.address.c_str(), r.state.c_str(), r.free ? FormatByteSize(*r.free).c_str() : "-",
                Ms(r.predicted).c_str(), Ms(r.measured).c_str(), rep, r.in_drive ? "(drive)" : "");
  }
  return members.ok() ? 0 : kExitFailure;
}

int RunAudit(const CareFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs audit");
  if (!drive.ok()) return Failure("audit", "open the drive", drive.status());
  backend::Drive& d = **drive;
  backend::PeerSet& peers = d.peers();
  (void)d.RefreshMembership();
  std::optional<backend::AuditReport> report;
  if (f.now) {
    auto r = d.auditor().RunPass();
    if (!r.ok()) return Failure("audit", "audit", r.status());
    report = std::move(*r);
  }
  auto faults = d.catalog().ShardFaults();
  if (!faults.ok()) return Failure("audit", "catalog", faults.status());
  if (f.json) {
    json nodes = json::array();
    for (size_t i = 0; i < peers.size(); ++i) {
      const backend::PeerHealth h = peers.health(i);
      json n = {{"id", peers.node(i).id.ToHex()},
                {"address", peers.node(i).address},
                {"reputation", peers.Reputation(i)},
                {"audits_passed", h.audits_passed},
                {"audits_failed", h.audits_failed}};
      if (report) {
        auto it = report->nodes.find(peers.node(i).id);
        backend::AuditReport::PerNode p =
            it == report->nodes.end() ? backend::AuditReport::PerNode{} : it->second;
        n["pass"] = {{"passed", p.passed}, {"failed", p.failed}, {"unreachable", p.unreachable}};
      }
      nodes.push_back(n);
    }
    json bad = json::array();
    for (const auto& fault : *faults) {
      bad.push_back({{"pack", fault.where.key.pack.ToHex()},
                     {"index", fault.where.key.index},
                     {"shard", fault.where.shard.ToHex()},
                     {"node", fault.where.node.ToHex()},
                     {"since_ns", fault.since_ns},
                     {"reason", fault.reason}});
    }
    json j = {{"nodes", nodes}, {"faults", bad}};
    if (report) {
      j["pass"] = {{"audited", report->audited}, {"passed", report->passed},
                   {"failed", report->failed},   {"unreachable", report->unreachable},
                   {"bytes", report->bytes},     {"seconds", report->seconds}};
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    if (report) {
      std::printf(
          "audited %llu shards in %.1f s (%s of leaves): %llu passed, %llu failed, %llu "
          "not reached\n",
          static_cast<unsigned long long>(report->audited), report->seconds,
          FormatByteSize(report->bytes).c_str(), static_cast<unsigned long long>(report->passed),
          static_cast<unsigned long long>(report->failed),
          static_cast<unsigned long long>(report->unreachable));
    } else {
      std::printf(
          "(the audits of the drive's mount go on in the background; --now audits every "
          "shard now)\n");
    }
    std::printf("%-8s  %-22s  %10s  %8s  %8s\n", "node", "address", "reputation", "passed",
                "failed");
    for (size_t i = 0; i < peers.size(); ++i) {
      const backend::PeerHealth h = peers.health(i);
      std::printf("%-8s  %-22s  %10.2f  %8llu  %8llu%s\n", peers.node(i).id.ShortHex().c_str(),
                  peers.node(i).address.c_str(), peers.Reputation(i),
                  static_cast<unsigned long long>(h.audits_passed),
                  static_cast<unsigned long long>(h.audits_failed),
                  peers.Healthy(i) ? "" : "  (gets no new shards; its shards are repaired)");
    }
    if (faults->empty()) {
      std::printf("no shard failed its last audit\n");
    } else {
      std::printf("%zu shard(s) failed their last audit (shardfs repair moves them):\n",
                  faults->size());
      for (size_t n = 0; n < faults->size() && n < 20; ++n) {
        const auto& fault = (*faults)[n];
        std::printf("  shard %s of pack %s on node %s: %s\n", fault.where.shard.ShortHex().c_str(),
                    fault.where.key.pack.ShortHex().c_str(), fault.where.node.ShortHex().c_str(),
                    fault.reason.c_str());
      }
    }
  }
  // A pass that found damage fails, so that a script notices.
  return report && report->failed > 0 ? kExitFailure : 0;
}

int RunRepair(const CareFlags& f) {
  auto drive = OpenDrive(f.drive, "shardfs repair");
  if (!drive.ok()) return Failure("repair", "open the drive", drive.status());
  backend::Drive& d = **drive;
  auto members = d.RefreshMembership();
  const int k = d.config().k, m = d.config().m;
  if (!f.now) {
    auto survey = d.repairer().Survey();
    if (!survey.ok()) return Failure("repair", "count", survey.status());
    if (f.json) {
      std::printf("%s\n", json({{"durability", api::DurabilityJson(*survey)}}).dump(2).c_str());
    } else {
      if (!members.ok()) {
        std::printf("(no member list: %s)\n", members.status().message().c_str());
      }
      PrintDurabilityLine(*survey, k, m);
      if (survey->endangered > 0) std::printf("shardfs repair --now repairs them now\n");
    }
    return survey->lost > 0 ? kExitFailure : 0;
  }
  auto r = d.repairer().RunPass(/*ignore_grace=*/true);
  if (!r.ok()) return Failure("repair", "repair", r.status());
  // The catalog's own checkpoint, which the catalog does not list among its packs.
  auto rebased = d.CareForCheckpoint(/*ignore_grace=*/true);
  if (!rebased.ok()) return Failure("repair", "store a new checkpoint", rebased.status());
  if (f.json) {
    json j = {{"before", api::DurabilityJson(r->before)},
              {"after", api::DurabilityJson(r->after)},
              {"packs_repaired", r->packs_repaired},
              {"shards_rebuilt", r->shards_rebuilt},
              {"packs_failed", r->packs_failed},
              {"bytes_fetched", r->bytes_fetched},
              {"bytes_stored", r->bytes_stored},
              {"seconds", r->seconds},
              {"errors", r->errors}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("repaired %llu pack(s) in %.1f s: %llu shard(s) rebuilt, %s fetched, %s stored\n",
                static_cast<unsigned long long>(r->packs_repaired), r->seconds,
                static_cast<unsigned long long>(r->shards_rebuilt),
                FormatByteSize(r->bytes_fetched).c_str(), FormatByteSize(r->bytes_stored).c_str());
    for (const auto& e : r->errors) std::printf("  not repaired: %s\n", e.c_str());
    if (*rebased) {
      std::printf("the catalog's checkpoint had lost healthy shards: a new one is stored\n");
    }
    PrintDurabilityLine(r->after, k, m);
  }
  return r->packs_failed > 0 || r->after.lost > 0 ? kExitFailure : 0;
}

}  // namespace

backend::Durability DurabilityOrEmpty(backend::Drive& d) {
  (void)d.RefreshMembership();
  return d.repairer().Survey().value_or(backend::Durability{});
}

std::map<std::string, std::function<int()>> AddNetworkCommands(CLI::App& app) {
  std::map<std::string, std::function<int()>> run;
  auto nodes = std::make_shared<CareFlags>();
  CLI::App* n = app.add_subcommand(
      "nodes", "The network's members: state, free space, latency, and this drive's reputation.");
  n->add_flag("--json", nodes->json, "Print them as JSON");
  AddDriveFlags(n, &nodes->drive);
  run["nodes"] = [nodes] { return RunNodes(*nodes); };

  auto audit = std::make_shared<CareFlags>();
  CLI::App* a = app.add_subcommand(
      "audit", "Check that the nodes still hold the drive's shards (a leaf and its proof each).");
  a->add_flag("--now", audit->now, "Audit every shard now (exit 1 if any failed)");
  a->add_flag("--json", audit->json, "Print the result as JSON");
  AddDriveFlags(a, &audit->drive);
  run["audit"] = [audit] { return RunAudit(*audit); };

  auto repair = std::make_shared<CareFlags>();
  CLI::App* r = app.add_subcommand(
      "repair", "Count the packs by healthy shards; with --now, rebuild the missing ones.");
  r->add_flag("--now", repair->now,
              "Repair every endangered pack now, nodes just declared dead included");
  r->add_flag("--json", repair->json, "Print the result as JSON");
  AddDriveFlags(r, &repair->drive);
  run["repair"] = [repair] { return RunRepair(*repair); };
  return run;
}

}  // namespace shardfs::cli
