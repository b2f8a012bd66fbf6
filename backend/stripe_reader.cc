#include "backend/stripe_reader.h"

#include <algorithm>

namespace shardfs::backend {

namespace {

// Rebuilds `out` (columns [col, col + out.size()) of data shard `lost`) from the same columns
// of other shards, skipping the ones known to have failed.
Status RebuildPiece(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                    int lost, uint64_t col, MutableByteSpan out, std::vector<bool>& failed,
                    ReadStats* stats) {
  const int n = coder.n();
  std::vector<Bytes> bufs;
  std::vector<ShardPiece> present;
  bufs.reserve(coder.k());
  for (int i = 0; i < n && static_cast<int>(present.size()) < coder.k(); ++i) {
    if (i == lost || failed[i]) continue;
    Bytes buf(out.size());
    if (!source.Read(i, col, buf).ok()) {
      failed[i] = true;
      if (stats) stats->failed_shards.push_back(i);
      continue;
    }
    bufs.push_back(std::move(buf));
    present.push_back({i, bufs.back()});
  }
  if (static_cast<int>(present.size()) < coder.k()) {
    return Status::Unavailable("pack range unreadable: " + std::to_string(present.size()) + " of " +
                               std::to_string(n) + " shards answered, " + std::to_string(layout.k) +
                               " needed");
  }
  ShardOutput target{lost, out};
  return coder.Reconstruct(present, std::span<const ShardOutput>(&target, 1));
}

}  // namespace

Status ReadPackRange(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                     uint64_t offset, MutableByteSpan out, ReadStats* stats) {
  if (coder.k() != layout.k || coder.m() != layout.m) {
    return Status::InvalidArgument("coder does not match the pack's layout");
  }
  SFS_ASSIGN_OR_RETURN(std::vector<StripeLayout::Piece> pieces, layout.Locate(offset, out.size()));
  std::vector<bool> failed(coder.n(), false);
  size_t at = 0;
  for (const StripeLayout::Piece& p : pieces) {
    MutableByteSpan dst = out.subspan(at, p.length);
    at += p.length;
    if (stats) ++stats->pieces;
    if (!failed[p.shard] && source.Read(p.shard, p.shard_offset, dst).ok()) continue;
    if (!failed[p.shard]) {
      failed[p.shard] = true;
      if (stats) stats->failed_shards.push_back(p.shard);
    }
    if (stats) ++stats->degraded_pieces;
    SFS_RETURN_IF_ERROR(
        RebuildPiece(layout, coder, source, p.shard, p.shard_offset, dst, failed, stats));
  }
  return Status::Ok();
}

}  // namespace shardfs::backend
