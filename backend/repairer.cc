#include "backend/repairer.h"

#include <algorithm>
#include <unordered_map>

#include "backend/erasure.h"
#include "base/logging.h"
#include "crypto/merkle.h"

namespace shardfs::backend {

namespace {

using Clock = std::chrono::steady_clock;

// Packs read from the catalog at a time.
constexpr size_t kPage = 512;

}  // namespace

Repairer::Repairer(Catalog* catalog, PeerSet* peers, RepairOptions options)
    : catalog_(catalog), peers_(peers), options_(options) {}

Repairer::~Repairer() { Stop(); }

void Repairer::Start() {
  if (options_.rate > 0) thread_.Start([this] { Loop(); });
}

void Repairer::Stop() { thread_.Stop(); }

void Repairer::Wake() { thread_.Wake(); }

std::vector<int> Repairer::HealthyShards(const PackRecord& p, const FaultIndex& faults,
                                         std::chrono::milliseconds dead_grace) const {
  std::vector<int> healthy;
  for (size_t j = 0; j < p.nodes.size(); ++j) {
    auto i = peers_->IndexOf(p.nodes[j]);
    if (!i || !peers_->Healthy(*i, dead_grace)) continue;
    auto f = faults.find(ShardKey{p.id, static_cast<int>(j)});
    if (f == faults.end() || f->second != p.nodes[j]) healthy.push_back(static_cast<int>(j));
  }
  return healthy;
}

Status Repairer::Scan(Durability* d, std::vector<std::pair<PackRecord, std::vector<int>>>* todo,
                      std::chrono::milliseconds dead_grace) {
  FaultIndex faults;
  {
    SFS_ASSIGN_OR_RETURN(std::vector<ShardFault> list, catalog_->ShardFaults());
    for (const ShardFault& f : list) faults.emplace(f.where.key, f.where.node);
  }
  std::optional<PackId> after;
  while (true) {
    SFS_ASSIGN_OR_RETURN(auto page, catalog_->ListPacks(after, kPage));
    if (page.empty()) break;
    after = page.back().id;
    for (PackRecord& p : page) {
      // Counted as things are; repaired only once a dead node's grace is over.
      std::vector<int> healthy = HealthyShards(p, faults, std::chrono::milliseconds(0));
      int h = static_cast<int>(healthy.size());
      ++d->packs;
      ++d->packs_by_healthy[h];
      if (h >= p.k + p.m) {
        ++d->full;
      } else if (h < p.k) {
        ++d->lost;
      } else if (h <= ThresholdFor(p.k)) {
        ++d->endangered;
      } else {
        ++d->degraded;
      }
      if (todo == nullptr || h >= p.k + p.m) continue;
      if (dead_grace.count() > 0) healthy = HealthyShards(p, faults, dead_grace);
      h = static_cast<int>(healthy.size());
      if (h < p.k + p.m && h >= p.k && h <= ThresholdFor(p.k)) {
        todo->emplace_back(std::move(p), std::move(healthy));
      }
    }
  }
  if (todo != nullptr) {
    // Most endangered first: the fewest healthy shards above k.
    std::stable_sort(todo->begin(), todo->end(), [](const auto& a, const auto& b) {
      return a.second.size() - static_cast<size_t>(a.first.k) <
             b.second.size() - static_cast<size_t>(b.first.k);
    });
  }
  return Status::Ok();
}

Result<Durability> Repairer::Survey() {
  Durability d;
  SFS_RETURN_IF_ERROR(Scan(&d, nullptr, options_.dead_grace));
  return d;
}

Status Repairer::RepairPack(const PackRecord& p, const std::vector<int>& healthy,
                            RepairReport& report) {
  SFS_ASSIGN_OR_RETURN(StripeLayout layout, StripeLayout::ForPack(p.size, p.k, p.m));
  SFS_ASSIGN_OR_RETURN(ErasureCoder coder, ErasureCoder::Create(p.k, p.m));
  // Fetch k healthy shards, the fastest first; a holder that fails is skipped (and a shard it
  // lost or damaged is recorded as a fault).
  std::vector<size_t> holders;
  std::unordered_map<size_t, int> shard_of;
  for (int j : healthy) {
    auto i = peers_->IndexOf(p.nodes[static_cast<size_t>(j)]);
    if (!i) continue;
    holders.push_back(*i);
    shard_of[*i] = j;
  }
  holders = peers_->ReadOrder(std::move(holders));
  std::vector<Bytes> fetched;
  std::vector<ShardPiece> present;
  fetched.reserve(static_cast<size_t>(p.k));
  for (size_t i : holders) {
    if (static_cast<int>(fetched.size()) == p.k) break;
    int j = shard_of[i];
    const ShardId& id = p.shards[static_cast<size_t>(j)];
    auto start = Clock::now();
    auto bytes = peers_->peer(i).GetShard(id, nullptr);
    if (!bytes.ok()) {
      Code c = bytes.status().code();
      if (c == Code::kNotFound || c == Code::kCorruption) {
        peers_->ReportAudit(i, false);
        (void)catalog_->RecordShardFault({{p.id, j}, id, p.nodes[static_cast<size_t>(j)]},
                                         "repair: " + bytes.status().message());
      } else {
        peers_->ReportFailure(i);
      }
      continue;
    }
    peers_->ReportSuccess(
        i, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start));
    // Checked here whatever the peer checked: a wrong shard would rebuild wrong ones.
    if (bytes->size() != layout.shard_size || crypto::MerkleRoot(*bytes) != id) {
      peers_->ReportBadBytes(i);
      (void)catalog_->RecordShardFault({{p.id, j}, id, p.nodes[static_cast<size_t>(j)]},
                                       "repair: the node sent other bytes than the shard");
      continue;
    }
    report.bytes_fetched += bytes->size();
    fetched.push_back(std::move(*bytes));
    present.push_back({j, fetched.back()});
  }
  if (static_cast<int>(present.size()) < p.k) {
    return Status::Unavailable("only " + std::to_string(present.size()) + " of the " +
                               std::to_string(p.k) + " shards needed could be fetched");
  }
  std::vector<int> missing;
  for (int j = 0; j < p.k + p.m; ++j) {
    if (std::find(healthy.begin(), healthy.end(), j) == healthy.end()) missing.push_back(j);
  }
  std::vector<Bytes> rebuilt(missing.size(), Bytes(layout.shard_size));
  std::vector<ShardOutput> wanted;
  for (size_t w = 0; w < missing.size(); ++w) wanted.push_back({missing[w], rebuilt[w]});
  SFS_RETURN_IF_ERROR(coder.Reconstruct(present, wanted));
  // Where the new shards go: healthy nodes that hold no healthy shard of the pack.
  std::vector<size_t> exclude;
  for (int j : healthy) {
    if (auto i = peers_->IndexOf(p.nodes[static_cast<size_t>(j)])) exclude.push_back(*i);
  }
  std::vector<size_t> order = peers_->PlacementOrder(exclude);
  std::vector<std::pair<int, NodeId>> moves;
  for (size_t w = 0; w < missing.size(); ++w) {
    int j = missing[w];
    const ShardId& id = p.shards[static_cast<size_t>(j)];
    if (crypto::MerkleRoot(rebuilt[w]) != id) {
      return Status::Corruption("rebuilt shard " + std::to_string(j) + " of pack " + p.id.ToHex() +
                                " does not match its id");
    }
    bool stored = false;
    while (!order.empty() && !stored) {
      size_t i = order.front();
      order.erase(order.begin());
      auto start = Clock::now();
      Status s = peers_->peer(i).PutShard(id, rebuilt[w], nullptr);
      if (!s.ok()) {
        peers_->ReportFailure(i);
        log::Info("repair: storing shard {} on {} failed: {}", id.ShortHex(),
                  peers_->node(i).address, s.ToString());
        continue;
      }
      peers_->ReportSuccess(
          i, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start));
      report.bytes_stored += rebuilt[w].size();
      moves.emplace_back(j, peers_->node(i).id);
      stored = true;
    }
    if (!stored) break;
  }
  // What was stored is recorded even if not every shard found a node: the pack is better off.
  if (!moves.empty()) {
    SFS_RETURN_IF_ERROR(catalog_->MoveShards(p.id, moves));
    report.shards_rebuilt += moves.size();
  }
  if (moves.size() < missing.size()) {
    return Status::NoSpace("no healthy node without a shard of the pack took " +
                           std::to_string(missing.size() - moves.size()) + " of its shards");
  }
  return Status::Ok();
}

Result<RepairReport> Repairer::Pass(bool limited, std::chrono::milliseconds dead_grace) {
  MutexLock pass(&pass_mu_);
  RepairReport report;
  const auto start = Clock::now();
  std::vector<std::pair<PackRecord, std::vector<int>>> todo;
  SFS_RETURN_IF_ERROR(Scan(&report.before, &todo, dead_grace));
  for (const auto& [p, healthy] : todo) {
    if (limited && thread_.stopping()) break;
    uint64_t bytes_before = report.bytes_fetched + report.bytes_stored;
    Status s = RepairPack(p, healthy, report);
    if (s.ok()) {
      ++report.packs_repaired;
      log::Info("repair: pack {} had {} healthy shards of {}; rebuilt the rest", p.id.ShortHex(),
                healthy.size(), p.k + p.m);
    } else {
      ++report.packs_failed;
      std::string line = "pack " + p.id.ShortHex() + ": " + s.ToString();
      log::Warn("repair: {}", line);
      if (report.errors.size() < 100) report.errors.push_back(std::move(line));
    }
    if (limited && options_.rate > 0) {
      // Keep to the budget: wait as long as the bytes moved should have taken.
      uint64_t moved = report.bytes_fetched + report.bytes_stored - bytes_before;
      auto due = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
          static_cast<double>(moved) / static_cast<double>(options_.rate)));
      if (!thread_.Pause(due)) break;
    }
  }
  SFS_RETURN_IF_ERROR(Scan(&report.after, nullptr, dead_grace));
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

Result<RepairReport> Repairer::RunPass(bool ignore_grace) {
  return Pass(false, ignore_grace ? std::chrono::milliseconds(0) : options_.dead_grace);
}

RepairReport Repairer::Progress() const {
  MutexLock lock(&mu_);
  return progress_;
}

void Repairer::Loop() {
  while (true) {
    auto r = Pass(true, options_.dead_grace);
    if (r.ok()) {
      MutexLock lock(&mu_);
      RepairReport total = progress_;
      total.before = r->before;
      total.after = r->after;
      total.packs_repaired += r->packs_repaired;
      total.shards_rebuilt += r->shards_rebuilt;
      total.packs_failed += r->packs_failed;
      total.bytes_fetched += r->bytes_fetched;
      total.bytes_stored += r->bytes_stored;
      total.errors = r->errors;
      progress_ = std::move(total);
    } else {
      log::Warn("repair: {}", r.status().ToString());
    }
    if (!thread_.Pause(options_.interval)) return;
  }
}

}  // namespace shardfs::backend
