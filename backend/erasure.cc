#include "backend/erasure.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include <isa-l/crc.h>
#include <isa-l/erasure_code.h>

namespace shardfs::backend {

namespace {

// ISA-L takes int lengths; larger column ranges go in pieces.
constexpr size_t kMaxIsalLen = size_t{1} << 30;

// Runs ec_encode_data over [0, len) in pieces ISA-L accepts.
void EncodeLong(size_t len, int k, int rows, uint8_t* tables, const std::vector<const uint8_t*>& in,
                const std::vector<uint8_t*>& out) {
  std::vector<uint8_t*> in_p(in.size()), out_p(out.size());
  for (size_t done = 0; done < len;) {
    size_t n = std::min(len - done, kMaxIsalLen);
    for (size_t i = 0; i < in.size(); ++i) in_p[i] = const_cast<uint8_t*>(in[i] + done);
    for (size_t i = 0; i < out.size(); ++i) out_p[i] = out[i] + done;
    ec_encode_data(static_cast<int>(n), k, rows, tables, in_p.data(), out_p.data());
    done += n;
  }
}

}  // namespace

Result<ErasureCoder> ErasureCoder::Create(int k, int m) {
  if (k < 1 || m < 1 || k + m > 255) {
    return Status::InvalidArgument("erasure code needs 1 <= k, 1 <= m, k + m <= 255 (got k=" +
                                   std::to_string(k) + ", m=" + std::to_string(m) + ")");
  }
  return ErasureCoder(k, m);
}

ErasureCoder::ErasureCoder(int k, int m)
    : k_(k), m_(m), matrix_(static_cast<size_t>(k + m) * k), encode_tables_(size_t{32} * k * m) {
  gf_gen_cauchy1_matrix(matrix_.data(), k + m, k);
  ec_init_tables(k, m, matrix_.data() + static_cast<size_t>(k) * k, encode_tables_.data());
}

Status ErasureCoder::Encode(std::span<const ByteSpan> data,
                            std::span<const MutableByteSpan> parity) const {
  if (data.size() != static_cast<size_t>(k_) || parity.size() != static_cast<size_t>(m_)) {
    return Status::InvalidArgument("Encode needs k data and m parity shards");
  }
  size_t len = data[0].size();
  for (const auto& d : data)
    if (d.size() != len) return Status::InvalidArgument("data shards differ in length");
  for (const auto& p : parity)
    if (p.size() != len) return Status::InvalidArgument("parity shards differ in length");
  if (len == 0) return Status::Ok();
  std::vector<const uint8_t*> in(k_);
  std::vector<uint8_t*> out(m_);
  for (int i = 0; i < k_; ++i) in[i] = data[i].data();
  for (int j = 0; j < m_; ++j) out[j] = parity[j].data();
  EncodeLong(len, k_, m_, const_cast<uint8_t*>(encode_tables_.data()), in, out);
  return Status::Ok();
}

Status ErasureCoder::Reconstruct(std::span<const ShardPiece> present,
                                 std::span<const ShardOutput> wanted) const {
  const int n = k_ + m_;
  if (wanted.empty()) return Status::Ok();
  size_t len = wanted[0].bytes.size();
  std::vector<int> source_of(n, -1);  // shard index -> position in `present`
  int distinct = 0;
  for (size_t p = 0; p < present.size(); ++p) {
    int idx = present[p].index;
    if (idx < 0 || idx >= n) return Status::InvalidArgument("shard index out of range");
    if (present[p].bytes.size() != len) {
      return Status::InvalidArgument("shard pieces differ in length");
    }
    if (source_of[idx] < 0) {
      source_of[idx] = static_cast<int>(p);
      ++distinct;
    }
  }
  std::vector<bool> seen(n, false);
  for (const auto& w : wanted) {
    if (w.index < 0 || w.index >= n) return Status::InvalidArgument("shard index out of range");
    if (seen[w.index]) return Status::InvalidArgument("a shard is wanted twice");
    seen[w.index] = true;
    if (w.bytes.size() != len) return Status::InvalidArgument("shard pieces differ in length");
  }
  if (distinct < k_) {
    return Status::Unavailable("cannot rebuild: " + std::to_string(distinct) + " of " +
                               std::to_string(n) + " shards available, " + std::to_string(k_) +
                               " needed");
  }

  // Decode from the first k present shards in index order (data shards first: where all the
  // data shards are present, the decode matrix is the identity and parity rows are E).
  std::vector<int> chosen;
  for (int i = 0; i < n && static_cast<int>(chosen.size()) < k_; ++i)
    if (source_of[i] >= 0) chosen.push_back(i);

  // Wanted shards that are themselves present are copied; the rest are computed.
  std::vector<const ShardOutput*> compute;
  for (const auto& w : wanted) {
    if (source_of[w.index] >= 0) {
      if (len > 0) std::memmove(w.bytes.data(), present[source_of[w.index]].bytes.data(), len);
    } else {
      compute.push_back(&w);
    }
  }
  if (compute.empty() || len == 0) return Status::Ok();

  // chosen = B * data, where B is the generator rows of the chosen shards; data = B^-1 chosen.
  std::vector<uint8_t> b(static_cast<size_t>(k_) * k_), inv(static_cast<size_t>(k_) * k_);
  for (int r = 0; r < k_; ++r)
    std::memcpy(&b[static_cast<size_t>(r) * k_], &matrix_[static_cast<size_t>(chosen[r]) * k_], k_);
  if (gf_invert_matrix(b.data(), inv.data(), k_) != 0) {
    // Impossible for a Cauchy generator: every k rows are independent.
    return Status::IOError("erasure decode matrix is singular");
  }
  // Row for shard w: (generator row w) * B^-1; for a data shard that is row w of B^-1.
  std::vector<uint8_t> rows(compute.size() * k_, 0);
  for (size_t o = 0; o < compute.size(); ++o) {
    int w = compute[o]->index;
    uint8_t* row = &rows[o * k_];
    if (w < k_) {
      std::memcpy(row, &inv[static_cast<size_t>(w) * k_], k_);
      continue;
    }
    for (int c = 0; c < k_; ++c) {
      uint8_t acc = 0;
      for (int i = 0; i < k_; ++i)
        acc ^=
            gf_mul(matrix_[static_cast<size_t>(w) * k_ + i], inv[static_cast<size_t>(i) * k_ + c]);
      row[c] = acc;
    }
  }
  std::vector<uint8_t> tables(size_t{32} * k_ * compute.size());
  ec_init_tables(k_, static_cast<int>(compute.size()), rows.data(), tables.data());
  std::vector<const uint8_t*> in(k_);
  for (int r = 0; r < k_; ++r) in[r] = present[source_of[chosen[r]]].bytes.data();
  std::vector<uint8_t*> out(compute.size());
  for (size_t o = 0; o < compute.size(); ++o) out[o] = compute[o]->bytes.data();
  EncodeLong(len, k_, static_cast<int>(compute.size()), tables.data(), in, out);
  return Status::Ok();
}

Result<StripeLayout> StripeLayout::ForPack(uint64_t pack_size, int k, int m) {
  if (k < 1 || m < 1 || k + m > 255) return Status::InvalidArgument("bad k or m");
  if (pack_size == 0 || pack_size > kMaxPackSize) {
    return Status::InvalidArgument("pack size out of range: " + std::to_string(pack_size));
  }
  StripeLayout l;
  l.k = k;
  l.m = m;
  l.pack_size = pack_size;
  uint64_t per_shard = (pack_size + k - 1) / k;
  l.shard_size = std::max(kMinShardSize, (per_shard + 63) / 64 * 64);
  return l;
}

Status StripeLayout::Validate() const {
  Result<StripeLayout> expect = ForPack(pack_size, k, m);
  if (!expect.ok() || *expect != *this) return Status::Corruption("inconsistent stripe layout");
  return Status::Ok();
}

Result<std::vector<StripeLayout::Piece>> StripeLayout::Locate(uint64_t offset,
                                                              uint64_t length) const {
  SFS_RETURN_IF_ERROR(Validate());
  if (length == 0 || offset > pack_size || length > pack_size - offset) {
    return Status::OutOfRange("range outside the pack");
  }
  std::vector<Piece> pieces;
  while (length > 0) {
    Piece p;
    p.shard = static_cast<int>(offset / shard_size);
    p.shard_offset = offset % shard_size;
    p.length = std::min(length, shard_size - p.shard_offset);
    pieces.push_back(p);
    offset += p.length;
    length -= p.length;
  }
  return pieces;
}

uint32_t Crc32cExtend(uint32_t crc, ByteSpan data) {
  // ISA-L's CRC neither inverts its start value nor its result; the standard CRC-32C does both.
  uint32_t state = ~crc;
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), INT_MAX);
    state = crc32_iscsi(const_cast<unsigned char*>(data.data()), static_cast<int>(n), state);
    data = data.subspan(n);
  }
  return ~state;
}

}  // namespace shardfs::backend
