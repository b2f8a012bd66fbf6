// Audits: the client checks that its nodes still hold its shards, whole, without reading
// them back. It asks a node for one random 64 KiB leaf of a shard and its Merkle proof, and
// checks them against the shard id (DESIGN.md section 7): a node cannot answer that without the
// shard's bytes. The only state it needs per shard is the shard id, which the catalog keeps.
//
// A background thread audits the drive's shards in a round robin over the catalog (the cursor
// survives restarts, in local_state), at a bounded rate, so every shard is audited in turn
// and the bandwidth stays within the budget. RunPass audits every shard once, now
// (`shardfs audit --now`). Results go to the node's reputation (PeerSet::ReportAudit) and to
// the catalog's shard_faults: a shard that failed its last audit does not count as healthy
// and the repairer moves it (backend/repairer.h).
//
// Thread safety: all methods may be called from any thread.

#ifndef SHARDFS_BACKEND_AUDITOR_H_
#define SHARDFS_BACKEND_AUDITOR_H_

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

struct AuditorOptions {
  // Bytes per second the background audits may take, on average (a leaf and its proof, some
  // 64 KiB each). 0: no background audits (RunPass still works).
  uint64_t rate = 128 * 1024;
  // Audits run at once by RunPass.
  int parallel = 8;
  // Shard locations read from the catalog at a time.
  size_t page = 256;
};

// The verdict of one audit.
enum class AuditVerdict {
  kPassed,       // the leaf and its proof match the shard id
  kFailed,       // the node lost the shard, or answered with bytes or a proof that do not match
  kUnreachable,  // no verdict: the node did not answer (its liveness is the gossip's business)
};

// What a pass (or the background auditor, so far) found.
struct AuditReport {
  struct PerNode {
    uint64_t passed = 0;
    uint64_t failed = 0;
    uint64_t unreachable = 0;
  };
  uint64_t audited = 0;  // shards asked about
  uint64_t passed = 0;
  uint64_t failed = 0;
  uint64_t unreachable = 0;
  uint64_t bytes = 0;  // leaf bytes received
  std::map<NodeId, PerNode> nodes;
  // The shards that failed, with what was wrong.
  std::vector<std::pair<ShardLocation, std::string>> failures;
  double seconds = 0;
};

class Auditor {
 public:
  // REQUIRES: `catalog` and `peers` outlive the auditor.
  Auditor(Catalog* catalog, PeerSet* peers, AuditorOptions options);
  // Stops the thread if it runs.
  ~Auditor();
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  // Starts the background thread (nothing if rate is 0 or it runs already).
  void Start();
  // Stops it and waits (it finishes the audit it is on). Idempotent.
  void Stop();

  // Audits the shard at `where`: asks its node for a random leaf with its proof and checks
  // them; records the verdict (reputation, fault). `leaf_bytes`, if set, gets the bytes
  // received.
  AuditVerdict AuditOne(const ShardLocation& where, uint64_t shard_size, std::string* why = nullptr,
                        uint64_t* leaf_bytes = nullptr);
  // Audits every shard of the drive once, `parallel` at a time, with no rate limit. Errors
  // from the catalog.
  Result<AuditReport> RunPass();
  // What the background audits found since Start.
  AuditReport Progress() const;

 private:
  void Loop();
  // The shard size of each shard in `page` (from their packs), in order; 0 for a pack that
  // is gone.
  std::vector<uint64_t> ShardSizes(const std::vector<ShardLocation>& page);
  void Count(AuditReport& r, const ShardLocation& where, AuditVerdict v, const std::string& why,
             uint64_t bytes) const;

  Catalog* const catalog_;
  PeerSet* const peers_;
  const AuditorOptions options_;
  mutable Mutex mu_;
  AuditReport progress_ GUARDED_BY(mu_);
  uint64_t rng_ GUARDED_BY(mu_);
  // Last: stopped first.
  BackgroundThread thread_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_AUDITOR_H_
