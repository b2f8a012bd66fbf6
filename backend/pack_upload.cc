#include "backend/pack_upload.h"

#include <chrono>
#include <thread>

#include "base/logging.h"

namespace shardfs::backend {

Result<PackRecord> UploadPack(PeerSet& peers, const EncodedPack& pack, const CancelToken* cancel) {
  const size_t n = pack.shard_ids.size();
  // Each shard takes the next node of one placement order, so no two shards of the pack share
  // a node; a refused shard takes the next node left, while the other shards go on.
  const std::vector<size_t> order = peers.PlacementOrder();
  Mutex mu;
  size_t cursor = 0;
  std::vector<size_t> holder(n);
  std::vector<Status> result(n);
  auto store = [&](size_t i) {
    Status last = Status::Unavailable("no node was left to try");
    for (;;) {
      size_t node;
      {
        MutexLock lock(&mu);
        if (cursor >= order.size()) break;
        node = order[cursor++];
      }
      if (IsCancelled(cancel)) {
        last = Status::Cancelled("upload cancelled");
        break;
      }
      const auto start = std::chrono::steady_clock::now();
      last = peers.peer(node).PutShard(pack.shard_ids[i], pack.shard(static_cast<int>(i)), cancel);
      if (last.ok()) {
        peers.ReportSuccess(node, std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - start));
        holder[i] = node;
        break;
      }
      if (last.code() == Code::kCancelled) break;
      peers.ReportFailure(node);
      log::Warn("shard {} of pack {} not stored on {}: {}", i, pack.id.ToHex(),
                peers.peer(node).name(), last.ToString());
    }
    result[i] = last;
  };
  {
    std::vector<std::thread> uploads;
    uploads.reserve(n);
    for (size_t i = 0; i < n; ++i) uploads.emplace_back(store, i);
    for (auto& t : uploads) t.join();
  }
  // A pack not stored whole is of no use: its shards already stored go again (best effort; a
  // node that does not answer now keeps its shard, unknown to the catalog).
  bool whole = true;
  for (const Status& r : result) whole = whole && r.ok();
  if (!whole) {
    for (size_t i = 0; i < n; ++i) {
      if (!result[i].ok()) continue;
      Status s = peers.peer(holder[i]).DeleteShard(pack.shard_ids[i]);
      if (!s.ok() && s.code() != Code::kNotFound) {
        log::Warn("shard {} of pack {} left on {}: {}", i, pack.id.ToHex(),
                  peers.peer(holder[i]).name(), s.ToString());
      }
    }
  }
  PackRecord record;
  record.id = pack.id;
  record.k = pack.layout.k;
  record.m = pack.layout.m;
  record.size = pack.layout.pack_size;
  record.shards = pack.shard_ids;
  for (size_t i = 0; i < n; ++i) {
    if (!result[i].ok()) {
      if (result[i].code() == Code::kCancelled) return result[i];
      return Status::Unavailable("pack " + pack.id.ToHex() + ": shard " + std::to_string(i) +
                                 " of " + std::to_string(n) +
                                 " could not be stored on a node distinct from the others' "
                                 "(last: " +
                                 result[i].ToString() + ")");
    }
    record.nodes.push_back(peers.node(holder[i]).id);
  }
  return record;
}

std::vector<ChunkRecord> ChunkRecordsOf(const EncodedPack& pack, crypto::Cipher cipher) {
  std::vector<ChunkRecord> chunks;
  chunks.reserve(pack.entries.size());
  for (const PackEntry& e : pack.entries) {
    chunks.push_back(ChunkRecord{e.id, pack.id, e.offset, e.sealed_size, e.plain_size,
                                 static_cast<uint8_t>(cipher), static_cast<uint8_t>(e.codec)});
  }
  return chunks;
}

}  // namespace shardfs::backend
