#include "backend/auditor.h"

#include <atomic>
#include <unordered_map>

#include "backend/erasure.h"
#include "base/logging.h"
#include "base/splitmix64.h"
#include "base/wall_clock.h"
#include "crypto/merkle.h"

namespace shardfs::backend {

namespace {

using Clock = std::chrono::steady_clock;

// Where the background round robin has got to (local_state key; value: pack id and index).
constexpr std::string_view kCursorKey = "audit.cursor";

Bytes EncodeCursor(const ShardKey& k) {
  Bytes b(k.pack.span().begin(), k.pack.span().end());
  ByteWriter w(&b);
  w.U32(static_cast<uint32_t>(k.index));
  return b;
}

std::optional<ShardKey> DecodeCursor(ByteSpan b) {
  if (b.size() != PackId::kSize + 4) return std::nullopt;
  ShardKey k;
  k.pack = PackId::FromBytes(b.first(PackId::kSize)).value();
  k.index = static_cast<int>(LoadLE32(b.data() + PackId::kSize));
  return k;
}

}  // namespace

Auditor::Auditor(Catalog* catalog, PeerSet* peers, AuditorOptions options)
    : catalog_(catalog),
      peers_(peers),
      options_(options),
      rng_(static_cast<uint64_t>(WallClockNs())) {}

Auditor::~Auditor() { Stop(); }

void Auditor::Start() {
  if (options_.rate > 0) thread_.Start([this] { Loop(); });
}

void Auditor::Stop() { thread_.Stop(); }

AuditVerdict Auditor::AuditOne(const ShardLocation& where, uint64_t shard_size, std::string* why,
                               uint64_t* leaf_bytes) {
  std::string reason;
  auto i = peers_->IndexOf(where.node);
  if (!i || shard_size == 0) {
    if (why) *why = "node not in the drive";
    return AuditVerdict::kUnreachable;
  }
  uint64_t leaves = crypto::MerkleLeafCount(shard_size);
  uint64_t leaf;
  {
    MutexLock lock(&mu_);
    leaf = SplitMix64Next(&rng_) % leaves;
  }
  auto proof = peers_->peer(*i).ProveShard(where.shard, leaf, 1);
  AuditVerdict verdict;
  if (proof.ok()) {
    if (leaf_bytes) *leaf_bytes = proof->leaves.size();
    // Checked here whatever the peer did: the audit is the client's own check.
    Status s =
        proof->length != shard_size
            ? Status::Corruption("the node says the shard is " + std::to_string(proof->length) +
                                 " bytes, not " + std::to_string(shard_size))
            : crypto::VerifyMerkleProof(where.shard, proof->length, leaf, proof->leaves,
                                        proof->proof);
    verdict = s.ok() ? AuditVerdict::kPassed : AuditVerdict::kFailed;
    if (!s.ok()) reason = "wrong leaf or proof: " + s.message();
  } else {
    switch (proof.status().code()) {
      case Code::kNotFound:
        verdict = AuditVerdict::kFailed;
        reason = "the node no longer has the shard";
        break;
      case Code::kCorruption:
      case Code::kOutOfRange:
        verdict = AuditVerdict::kFailed;
        reason = "wrong leaf or proof: " + proof.status().message();
        break;
      default:
        verdict = AuditVerdict::kUnreachable;
        reason = proof.status().ToString();
        break;
    }
  }
  if (verdict == AuditVerdict::kPassed) {
    peers_->ReportAudit(*i, true);
    Status s = catalog_->ClearShardFault(where.key, where.node);
    if (!s.ok()) log::Warn("audit: {}", s.ToString());
  } else if (verdict == AuditVerdict::kFailed) {
    peers_->ReportAudit(*i, false);
    log::Warn("audit: shard {} on node {} ({}) failed: {}", where.shard.ShortHex(),
              where.node.ShortHex(), peers_->node(*i).address, reason);
    Status s = catalog_->RecordShardFault(where, reason);
    if (!s.ok()) log::Warn("audit: {}", s.ToString());
  }
  if (why) *why = reason;
  return verdict;
}

void Auditor::Count(AuditReport& r, const ShardLocation& where, AuditVerdict v,
                    const std::string& why, uint64_t bytes) const {
  ++r.audited;
  r.bytes += bytes;
  AuditReport::PerNode& n = r.nodes[where.node];
  switch (v) {
    case AuditVerdict::kPassed:
      ++r.passed;
      ++n.passed;
      break;
    case AuditVerdict::kFailed:
      ++r.failed;
      ++n.failed;
      r.failures.emplace_back(where, why);
      break;
    case AuditVerdict::kUnreachable:
      ++r.unreachable;
      ++n.unreachable;
      break;
  }
}

std::vector<uint64_t> Auditor::ShardSizes(const std::vector<ShardLocation>& page) {
  std::unordered_map<PackId, uint64_t> sizes;
  std::vector<uint64_t> out;
  out.reserve(page.size());
  for (const ShardLocation& l : page) {
    auto it = sizes.find(l.key.pack);
    if (it == sizes.end()) {
      uint64_t size = 0;
      auto p = catalog_->GetPack(l.key.pack);
      if (p.ok()) {
        auto layout = StripeLayout::ForPack(p->size, p->k, p->m);
        if (layout.ok()) size = layout->shard_size;
      }
      it = sizes.emplace(l.key.pack, size).first;
    }
    out.push_back(it->second);
  }
  return out;
}

Result<AuditReport> Auditor::RunPass() {
  AuditReport report;
  const auto start = Clock::now();
  Mutex report_mu;
  std::optional<ShardKey> after;
  while (true) {
    SFS_ASSIGN_OR_RETURN(auto page, catalog_->ListShards(after, options_.page));
    if (page.empty()) break;
    after = page.back().key;
    std::vector<uint64_t> sizes = ShardSizes(page);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t j = next++; j < page.size(); j = next++) {
        std::string why;
        uint64_t bytes = 0;
        AuditVerdict v = AuditOne(page[j], sizes[j], &why, &bytes);
        MutexLock lock(&report_mu);
        Count(report, page[j], v, why, bytes);
      }
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < std::max(1, options_.parallel); ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

AuditReport Auditor::Progress() const {
  MutexLock lock(&mu_);
  return progress_;
}

void Auditor::Loop() {
  std::optional<ShardKey> cursor;
  if (auto saved = catalog_->GetLocalState(kCursorKey); saved.ok() && saved->has_value()) {
    cursor = DecodeCursor(**saved);
  }
  // Each audit costs about a leaf of the budget; the pause after it keeps the average rate.
  const auto per_audit = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
      static_cast<double>(crypto::kMerkleLeafSize) / static_cast<double>(options_.rate)));
  auto save = [&] {
    if (cursor) (void)catalog_->SetLocalState(kCursorKey, EncodeCursor(*cursor));
  };
  while (true) {
    auto page = catalog_->ListShards(cursor, options_.page);
    if (!page.ok()) log::Warn("audit: {}", page.status().ToString());
    if (!page.ok() || page->empty()) {
      if (page.ok() && cursor) {
        cursor.reset();  // a pass is done: start over
        continue;
      }
      if (!thread_.Pause(std::chrono::seconds(10))) return;  // nothing stored yet
      continue;
    }
    std::vector<uint64_t> sizes = ShardSizes(*page);
    for (size_t j = 0; j < page->size(); ++j) {
      std::string why;
      uint64_t bytes = 0;
      AuditVerdict v = AuditOne((*page)[j], sizes[j], &why, &bytes);
      {
        MutexLock lock(&mu_);
        Count(progress_, (*page)[j], v, why, bytes);
        // A long-running process keeps the latest failures only.
        if (progress_.failures.size() > 1000) progress_.failures.erase(progress_.failures.begin());
      }
      cursor = (*page)[j].key;
      if (!thread_.Pause(per_audit)) {
        save();
        return;
      }
    }
    save();
  }
}

}  // namespace shardfs::backend
