#include "backend/chunker.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>

#include "base/splitmix64.h"

namespace shardfs::backend {

namespace {

// A mask of `bits` ones spread evenly over bits 62..15 of the hash. The high bits depend on
// the most input bytes (bit j of the gear hash mixes the last j+1 bytes); bit 63 is left out
// so that checking (h << 1) against (mask << 1) loses nothing, which the two-bytes-per-step
// loop relies on.
uint64_t SpreadMask(int bits) {
  uint64_t mask = 0;
  constexpr int kTop = 62, kSpan = 48;
  for (int j = 0; j < bits; ++j) mask |= uint64_t{1} << (kTop - (j * kSpan) / bits);
  return mask;
}

}  // namespace

Status ChunkerParams::Validate() const {
  if (min_size < 64 || min_size >= avg_size || avg_size >= max_size || max_size > kMaxChunkSize) {
    return Status::InvalidArgument("chunk sizes must satisfy 64 <= min < avg < max <= 64 MiB");
  }
  if (!std::has_single_bit(avg_size)) {
    return Status::InvalidArgument("the average chunk size must be a power of two");
  }
  return Status::Ok();
}

Result<Chunker> Chunker::Create(const ChunkerParams& params) {
  SFS_RETURN_IF_ERROR(params.Validate());
  return Chunker(params);
}

Chunker::Chunker(const ChunkerParams& params) : params_(params) {
  int bits = std::countr_zero(params.avg_size);
  mask_small_ = SpreadMask(bits + 2);
  mask_large_ = SpreadMask(bits - 2);
  uint64_t state = params.seed;
  for (auto& g : gear_) g = SplitMix64Next(&state);
  for (size_t b = 0; b < 256; ++b) gear_shifted_[b] = gear_[b] << 1;
}

size_t Chunker::FindCut(ByteSpan data, bool at_end) const {
  const size_t n = data.size();
  const size_t min = params_.min_size;
  const size_t max = params_.max_size;
  if (n <= min) return at_end ? n : 0;
  const uint8_t* p = data.data();
  uint64_t h = 0;
  size_t i = min;

  // Two bytes per step: with h1 = (h << 1) + gear[a] and h2 = (h1 << 1) + gear[b],
  // (h << 2) + gear_shifted[a] is h1 << 1, and h1 & mask == 0 iff (h1 << 1) & (mask << 1) == 0
  // because masks avoid bit 63. Same cuts as one byte per step, one dependent shift fewer.
  auto scan = [&](size_t limit, uint64_t mask) -> size_t {
    const uint64_t mask_shifted = mask << 1;
    for (; i + 1 < limit; i += 2) {
      h = (h << 2) + gear_shifted_[p[i]];
      if ((h & mask_shifted) == 0) return i + 1;
      h += gear_[p[i + 1]];
      if ((h & mask) == 0) return i + 2;
    }
    if (i < limit) {
      h = (h << 1) + gear_[p[i]];
      ++i;
      if ((h & mask) == 0) return i;
    }
    return 0;
  };

  size_t cut = scan(std::min(n, static_cast<size_t>(params_.avg_size)), mask_small_);
  if (cut != 0) return cut;
  cut = scan(std::min(n, max), mask_large_);
  if (cut != 0) return cut;
  if (n >= max) return max;
  return at_end ? n : 0;
}

ChunkStream::ChunkStream(const Chunker& chunker, ByteSource* source, size_t buffer_size)
    : chunker_(chunker), source_(source) {
  size_t max = chunker.params().max_size;
  buffer_.resize(std::max(buffer_size == 0 ? 4 * max : buffer_size, 2 * max));
}

Status ChunkStream::Fill() {
  // Keep at least max_size bytes ahead of begin_ (or all that remain), so FindCut decides in
  // one pass. Compact only when the tail is short: with a buffer of 4 * max_size, at most one
  // max_size is moved per three consumed.
  if (begin_ > 0 && buffer_.size() - begin_ < chunker_.params().max_size) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  while (!eof_ && end_ - begin_ < chunker_.params().max_size) {
    SFS_ASSIGN_OR_RETURN(size_t n, source_->Read(MutableByteSpan(buffer_).subspan(end_)));
    if (n == 0) eof_ = true;
    end_ += n;
  }
  return Status::Ok();
}

Result<std::optional<ByteSpan>> ChunkStream::Next() {
  if (!error_.ok()) return error_;
  if (end_ - begin_ < chunker_.params().max_size && !eof_) {
    Status s = Fill();
    if (!s.ok()) {
      error_ = s;
      return s;
    }
  }
  if (begin_ == end_) return std::optional<ByteSpan>();
  ByteSpan rest(buffer_.data() + begin_, end_ - begin_);
  size_t len = chunker_.FindCut(rest, eof_);
  // Fill guarantees max_size bytes or the end of input, so FindCut always decides.
  if (len == 0) std::abort();
  begin_ += len;
  offset_ += len;
  return std::optional<ByteSpan>(rest.first(len));
}

}  // namespace shardfs::backend
