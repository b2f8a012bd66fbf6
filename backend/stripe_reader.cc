#include "backend/stripe_reader.h"

#include <cstring>

namespace shardfs::backend {

namespace {

// Rebuilds `out` (columns [col, col + out.size()) of data shard `lost`) from the same columns
// of other shards, skipping the ones known to have failed or excluded.
Status RebuildPiece(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                    int lost, uint64_t col, MutableByteSpan out, std::vector<bool>& unusable,
                    ReadStats* stats) {
  const int n = coder.n();
  std::vector<Bytes> bufs;
  std::vector<ShardPiece> present;
  bufs.reserve(coder.k());  // no reallocation: `present` points into these buffers
  for (int i = 0; i < n && static_cast<int>(present.size()) < coder.k(); ++i) {
    if (i == lost || unusable[i]) continue;
    Bytes buf(out.size());
    if (!source.Read(i, col, buf).ok()) {
      unusable[i] = true;
      if (stats) stats->failed_shards.push_back(i);
      continue;
    }
    bufs.push_back(std::move(buf));
    present.push_back({i, bufs.back()});
  }
  if (static_cast<int>(present.size()) < coder.k()) {
    return Status::Unavailable("pack range unreadable: " + std::to_string(present.size()) + " of " +
                               std::to_string(n) + " shards usable, " + std::to_string(layout.k) +
                               " needed");
  }
  ShardOutput target{lost, out};
  return coder.Reconstruct(present, std::span<const ShardOutput>(&target, 1));
}

// Calls f with each subset of {0..n-1} of `size` members, in lexicographic order, until f
// returns false. Returns false if f did.
template <typename F>
bool ForEachSubset(int n, int size, std::vector<int>& cur, int from, F&& f) {
  if (static_cast<int>(cur.size()) == size) return f(cur);
  for (int i = from; i < n; ++i) {
    cur.push_back(i);
    bool go_on = ForEachSubset(n, size, cur, i + 1, f);
    cur.pop_back();
    if (!go_on) return false;
  }
  return true;
}

}  // namespace

Status ReadPackRange(const StripeLayout& layout, const ErasureCoder& coder, ShardSource& source,
                     uint64_t offset, MutableByteSpan out, ReadStats* stats,
                     std::span<const int> exclude) {
  if (coder.k() != layout.k || coder.m() != layout.m) {
    return Status::InvalidArgument("coder does not match the pack's layout");
  }
  SFS_ASSIGN_OR_RETURN(std::vector<StripeLayout::Piece> pieces, layout.Locate(offset, out.size()));
  std::vector<bool> unusable(coder.n(), false);
  for (int i : exclude) {
    if (i < 0 || i >= coder.n()) return Status::InvalidArgument("excluded shard out of range");
    unusable[i] = true;
  }
  if (stats) ++stats->attempts;
  size_t at = 0;
  for (const StripeLayout::Piece& p : pieces) {
    MutableByteSpan dst = out.subspan(at, p.length);
    at += p.length;
    if (stats) ++stats->pieces;
    if (!unusable[p.shard] && source.Read(p.shard, p.shard_offset, dst).ok()) continue;
    if (!unusable[p.shard]) {
      unusable[p.shard] = true;
      if (stats) stats->failed_shards.push_back(p.shard);
    }
    if (stats) ++stats->degraded_pieces;
    SFS_RETURN_IF_ERROR(
        RebuildPiece(layout, coder, source, p.shard, p.shard_offset, dst, unusable, stats));
  }
  return Status::Ok();
}

Status ReadPackRangeVerified(const StripeLayout& layout, const ErasureCoder& coder,
                             ShardSource& source, uint64_t offset, MutableByteSpan out,
                             const std::function<bool(ByteSpan)>& verify, ReadStats* stats) {
  ReadStats local;
  ReadStats* st = stats ? stats : &local;
  SFS_RETURN_IF_ERROR(ReadPackRange(layout, coder, source, offset, out, st));
  if (verify(out)) return Status::Ok();

  // Some shard lied. Read again without each set of suspects, smallest sets first.
  bool found = false;
  int attempts = 1;
  std::vector<int> cur;
  for (int size = 1; size <= coder.m() && !found && attempts < kMaxVerifiedReadAttempts; ++size) {
    ForEachSubset(coder.n(), size, cur, 0, [&](const std::vector<int>& excluded) {
      if (attempts >= kMaxVerifiedReadAttempts) return false;
      ++attempts;
      Status s = ReadPackRange(layout, coder, source, offset, out, st, excluded);
      if (s.ok() && verify(out)) {
        st->bad_shards = excluded;
        found = true;
        return false;
      }
      return true;
    });
  }
  if (found) return Status::Ok();
  std::memset(out.data(), 0, out.size());
  return Status::Corruption("pack range fails its check with every set of up to " +
                            std::to_string(coder.m()) + " shards left out");
}

}  // namespace shardfs::backend
