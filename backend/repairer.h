// Repair: keeps every pack of the drive at k + m healthy shards (DESIGN.md section 7).
//
// A shard is healthy if its node is healthy (PeerSet::Healthy: its reputation is above the
// threshold and the network does not hold it for dead or departed, for longer than
// dead_grace) and the shard did not fail its last audit (the catalog's shard_faults). When a
// pack's healthy shards fall to the repair threshold (k + 1 by default), the repairer fetches
// k healthy shards whole (checked against their ids: no decryption, it never sees plaintext),
// rebuilds the others with the erasure code, checks each rebuilt shard against its id, stores
// it on a healthy node that holds no other shard of the pack, and moves the shards in the
// catalog in one transaction (Catalog::MoveShards; the old copies are queued for deletion).
// The most endangered packs go first. The background thread does this every `interval`,
// within a bandwidth budget; RunPass does it now, unbounded (`shardfs repair --now`).
//
// Thread safety: all methods may be called from any thread.

#ifndef SHARDFS_BACKEND_REPAIRER_H_
#define SHARDFS_BACKEND_REPAIRER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "backend/catalog.h"
#include "backend/peer_set.h"
#include "base/background_thread.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

struct RepairOptions {
  // A pack is repaired when it has at most this many healthy shards; 0: k + 1.
  int threshold = 0;
  // Bytes per second the background repair may fetch and store, on average. 0: no background
  // repair (RunPass still works).
  uint64_t rate = uint64_t{32} << 20;
  // How often the background thread counts the packs.
  std::chrono::milliseconds interval{60000};
  // A node the network declared dead (or departed) counts as unhealthy only after this long:
  // a node that restarts, or a short outage, costs no repair. Failed audits and a low
  // reputation count at once.
  std::chrono::milliseconds dead_grace{10 * 60 * 1000};
};

// How many packs have each number of healthy shards.
struct Durability {
  std::map<int, uint64_t> packs_by_healthy;  // healthy shards -> packs
  uint64_t packs = 0;
  uint64_t full = 0;        // all k + m healthy
  uint64_t degraded = 0;    // fewer than k + m, above the repair threshold
  uint64_t endangered = 0;  // at or below the threshold, still readable (k or more)
  uint64_t lost = 0;        // fewer than k healthy: not readable now
};

struct RepairReport {
  Durability before;
  uint64_t packs_repaired = 0;
  uint64_t shards_rebuilt = 0;
  uint64_t packs_failed = 0;  // could not be repaired now (nodes unreachable, no room)
  uint64_t bytes_fetched = 0;
  uint64_t bytes_stored = 0;
  std::vector<std::string> errors;  // one line per failed pack (at most 100)
  Durability after;
  double seconds = 0;
};

class Repairer {
 public:
  // REQUIRES: `catalog` and `peers` outlive the repairer.
  Repairer(Catalog* catalog, PeerSet* peers, RepairOptions options);
  ~Repairer();
  Repairer(const Repairer&) = delete;
  Repairer& operator=(const Repairer&) = delete;

  void Start();
  void Stop();
  // Has the background thread count the packs now (a node's state changed).
  void Wake();

  // Counts the packs by healthy shards as they are now (a dead node's shards are not healthy,
  // grace or not: the grace only delays their repair). Errors from the catalog.
  Result<Durability> Survey();
  // Repairs every pack at or below the threshold now, most endangered first, with no rate
  // limit; then counts again. With `ignore_grace`, a node the network holds for dead counts
  // as gone however short a time it has been (the user asked for it: `repair --now`). Errors
  // from the catalog; a pack that cannot be repaired is counted and described in the report.
  Result<RepairReport> RunPass(bool ignore_grace = false);
  // What the background repair did since Start (`before` and `after`: its last pass).
  RepairReport Progress() const;
  // The threshold for a pack of k data shards.
  int ThresholdFor(int k) const { return options_.threshold > 0 ? options_.threshold : k + 1; }

 private:
  // Each faulted shard and the node it failed on.
  using FaultIndex = std::map<ShardKey, NodeId>;
  // The healthy shard indices of `p`, given the faults.
  std::vector<int> HealthyShards(const PackRecord& p, const FaultIndex& faults,
                                 std::chrono::milliseconds dead_grace) const;
  // Repairs one pack; adds to `report`. OK, or why it could not.
  Status RepairPack(const PackRecord& p, const std::vector<int>& healthy, RepairReport& report);
  // Survey + the packs to repair, most endangered first.
  Status Scan(Durability* d, std::vector<std::pair<PackRecord, std::vector<int>>>* todo,
              std::chrono::milliseconds dead_grace);
  Result<RepairReport> Pass(bool limited, std::chrono::milliseconds dead_grace);
  void Loop();

  Catalog* const catalog_;
  PeerSet* const peers_;
  const RepairOptions options_;
  mutable Mutex mu_;
  RepairReport progress_ GUARDED_BY(mu_);
  Mutex pass_mu_;  // one pass at a time
  // Last: stopped first.
  BackgroundThread thread_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_REPAIRER_H_
