#include "backend/pack_pipeline.h"

#include <cstring>
#include <unordered_set>

#include "base/thread_annotations.h"
#include "base/thread_pool.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"

namespace shardfs::backend {

ByteSpan EncodedPack::shard(int i) const {
  if (i < 0 || i >= layout.k + layout.m) std::abort();  // a caller bug, not bad input
  const size_t s = layout.shard_size;
  if (i < layout.k) return ByteSpan(data).subspan(i * s, s);
  return parity[i - layout.k];
}

EncodedPackSource::EncodedPackSource(const EncodedPack& pack, std::span<const int> missing)
    : pack_(pack), missing_(pack.layout.k + pack.layout.m, false) {
  for (int i : missing)
    if (i >= 0 && i < static_cast<int>(missing_.size())) missing_[i] = true;
}

Status EncodedPackSource::Read(int index, uint64_t offset, MutableByteSpan out,
                               const CancelToken* /*cancel*/) {
  if (index < 0 || index >= static_cast<int>(missing_.size()) || missing_[index]) {
    return Status::Unavailable("shard " + std::to_string(index) + " is not at hand");
  }
  ByteSpan s = pack_.shard(index);
  if (offset > s.size() || out.size() > s.size() - offset) {
    return Status::OutOfRange("read past the end of the shard");
  }
  if (!out.empty()) std::memcpy(out.data(), s.data() + offset, out.size());
  return Status::Ok();
}

Status EncodePack(const ErasureCoder& coder, const PackId& id, Bytes pack,
                  std::vector<PackEntry> entries, EncodedPack* out) {
  SFS_ASSIGN_OR_RETURN(StripeLayout layout,
                       StripeLayout::ForPack(pack.size(), coder.k(), coder.m()));
  const size_t s = layout.shard_size;
  out->id = id;
  out->layout = layout;
  out->entries = std::move(entries);
  out->data = std::move(pack);
  // Random padding: zeros would show a node holding the last data shard where the pack ends.
  const size_t pack_size = out->data.size();
  out->data.resize(layout.padded_size());
  crypto::RandomBytes(MutableByteSpan(out->data).subspan(pack_size));
  out->parity.resize(coder.m());
  std::vector<ByteSpan> data(coder.k());
  std::vector<MutableByteSpan> parity(coder.m());
  for (int i = 0; i < coder.k(); ++i) data[i] = ByteSpan(out->data).subspan(i * s, s);
  for (int j = 0; j < coder.m(); ++j) {
    out->parity[j].resize(s);
    parity[j] = out->parity[j];
  }
  SFS_RETURN_IF_ERROR(coder.Encode(data, parity));
  out->shard_ids.resize(coder.n());
  for (int i = 0; i < coder.n(); ++i) out->shard_ids[i] = crypto::MerkleRoot(out->shard(i));
  return Status::Ok();
}

uint64_t WorstCasePackSize(const WritePipelineOptions& o) {
  // A batch closes once its plaintext reaches the target, so it holds less than target + max
  // bytes; every chunk but the input's last is at least min bytes long.
  const uint64_t plain = uint64_t{o.pack_target_size} + o.chunker.max_size;
  const uint64_t chunks = plain / std::max<uint32_t>(o.chunker.min_size, 1) + 1;
  const uint64_t per_chunk = ChunkSealer::Overhead(o.seal.cipher) + kPackIndexEntrySize;
  // The index header and seal, the sealed trailer and the clear tail, generously.
  const uint64_t fixed = 4 + 2 * (crypto::kMaxNonceSize + crypto::kAeadTagSize) + 16 + 2;
  return plain + chunks * per_chunk + fixed;
}

struct WritePipeline::Impl {
  Impl(const crypto::DriveKeys& keys, const WritePipelineOptions& opts, Chunker c, ErasureCoder e,
       PackSink s)
      : options(opts),
        chunker(c),
        coder(std::move(e)),
        hasher(keys.chunk_id),
        sealer(keys.chunk_encryption, opts.seal),
        pack_index_key(keys.pack_index),
        pack_capacity(
            StripeLayout::ForPack(WorstCasePackSize(opts), opts.k, opts.m).value().padded_size()),
        sink(std::move(s)),
        pool(std::max(0, opts.threads - 1)) {}

  // One pack's worth of chunks, cut from the input.
  struct Batch {
    std::vector<ChunkRef> chunks;
  };

  void RunBatch(std::span<const ByteSpan> inputs, Batch* batch) EXCLUDES(mu);
  Status ProcessBatch(std::span<const ByteSpan> inputs, Batch* batch, EncodedPack* encoded);
  std::unique_ptr<EncodedPack> TakeSpare() EXCLUDES(mu);

  const WritePipelineOptions options;
  const Chunker chunker;
  const ErasureCoder coder;
  const crypto::ChunkIdHasher hasher;
  const ChunkSealer sealer;
  const crypto::SecretKey pack_index_key;
  const size_t pack_capacity;
  PackSink sink;

  Mutex mu;
  CondVar done_cv;
  int in_flight GUARDED_BY(mu) = 0;
  Status first_error GUARDED_BY(mu);
  // Encoded packs whose buffers the sink left behind or gave back (Recycle), for the next
  // batches; at most kMaxSpares (a guard: as many packs as are alive at once come back).
  static constexpr size_t kMaxSpares = 8;
  std::vector<std::unique_ptr<EncodedPack>> spares GUARDED_BY(mu);
  Mutex sink_mu;  // one sink call at a time; never held with mu
  // Chunk ids packed by this run so far: a chunk that appears twice is packed once.
  Mutex claim_mu;  // never held with mu or sink_mu
  std::unordered_set<ChunkId> claimed GUARDED_BY(claim_mu);

  // True if the chunk is new to the drive and to this run; it is then this caller's to pack.
  bool Claim(const ChunkId& id) EXCLUDES(claim_mu) {
    if (options.known && options.known(id)) return false;
    MutexLock lock(&claim_mu);
    return claimed.insert(id).second;
  }

  // Declared last: its destructor joins the workers before the members above go away.
  ThreadPool pool;
};

std::unique_ptr<EncodedPack> WritePipeline::Impl::TakeSpare() {
  MutexLock lock(&mu);
  if (spares.empty()) return std::make_unique<EncodedPack>();
  // One with buffers first.
  size_t pick = spares.size() - 1;
  for (size_t i = 0; i < spares.size(); ++i) {
    if (spares[i]->data.capacity() > 0) pick = i;
  }
  std::unique_ptr<EncodedPack> p = std::move(spares[pick]);
  spares.erase(spares.begin() + static_cast<std::ptrdiff_t>(pick));
  return p;
}

void WritePipeline::DropSpares() {
  MutexLock lock(&impl_->mu);
  impl_->spares.clear();
}

void WritePipeline::Recycle(EncodedPack&& pack) {
  MutexLock lock(&impl_->mu);
  auto& spares = impl_->spares;
  if (pack.data.capacity() == 0) return;
  // Replace a spare without buffers, or add one while there are few.
  for (auto& s : spares) {
    if (s->data.capacity() == 0) {
      *s = std::move(pack);
      return;
    }
  }
  if (spares.size() < Impl::kMaxSpares)
    spares.push_back(std::make_unique<EncodedPack>(std::move(pack)));
}

Status WritePipeline::Impl::ProcessBatch(std::span<const ByteSpan> inputs, Batch* batch,
                                         EncodedPack* encoded) {
  PackId id;
  crypto::RandomBytes(MutableByteSpan(id.mutable_data(), PackId::kSize));
  // Recycle the previous pack's buffer, reserved for the largest padded pack a batch can make:
  // no reallocation while it grows, no page faults in steady state.
  Bytes buffer = std::move(encoded->data);
  buffer.reserve(pack_capacity);
  PackWriter writer(sealer, pack_index_key, id, std::move(buffer));
  for (ChunkRef& c : batch->chunks) {
    ByteSpan plain = inputs[c.input].subspan(c.offset, c.size);
    c.id = hasher.Compute(plain);
    c.packed = Claim(c.id);
    if (c.packed) SFS_RETURN_IF_ERROR(writer.Add(c.id, plain).status());
  }
  std::vector<PackEntry> entries = writer.entries();
  if (entries.empty()) return Status::Ok();  // every chunk was stored already
  SFS_ASSIGN_OR_RETURN(Bytes pack, writer.Finish());
  SFS_RETURN_IF_ERROR(EncodePack(coder, id, std::move(pack), std::move(entries), encoded));
  MutexLock lock(&sink_mu);
  return sink(*encoded);
}

void WritePipeline::Impl::RunBatch(std::span<const ByteSpan> inputs, Batch* batch) {
  bool skip;
  {
    MutexLock lock(&mu);
    skip = !first_error.ok();  // the run has failed: do no more work, call the sink no more
  }
  std::unique_ptr<EncodedPack> encoded = TakeSpare();
  Status s = skip ? Status::Ok() : ProcessBatch(inputs, batch, encoded.get());
  MutexLock lock(&mu);
  if (!s.ok() && first_error.ok()) first_error = s;
  // A pack whose buffers the sink took is kept only while there are few spares.
  if (encoded->data.capacity() > 0 || spares.size() < kMaxSpares) {
    spares.push_back(std::move(encoded));
  }
  --in_flight;
  done_cv.NotifyAll();
}

Result<std::unique_ptr<WritePipeline>> WritePipeline::Create(const crypto::DriveKeys& keys,
                                                             const WritePipelineOptions& options,
                                                             PackSink sink) {
  ChunkerParams chunker_params = options.chunker;
  chunker_params.seed = keys.ChunkerSeed();
  SFS_ASSIGN_OR_RETURN(Chunker chunker, Chunker::Create(chunker_params));
  SFS_ASSIGN_OR_RETURN(ErasureCoder coder, ErasureCoder::Create(options.k, options.m));
  if (options.threads < 1 || options.threads > kMaxPipelineThreads) {
    return Status::InvalidArgument("threads must be from 1 to " +
                                   std::to_string(kMaxPipelineThreads));
  }
  if (options.pack_target_size == 0 || options.pack_target_size > kMaxPackSize ||
      WorstCasePackSize(options) > kMaxPackSize) {
    return Status::InvalidArgument("pack target size out of range: with these chunk sizes a " +
                                   std::string("pack could exceed ") +
                                   std::to_string(kMaxPackSize >> 20) + " MiB");
  }
  return std::unique_ptr<WritePipeline>(new WritePipeline(
      std::make_unique<Impl>(keys, options, chunker, std::move(coder), std::move(sink))));
}

WritePipeline::WritePipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WritePipeline::~WritePipeline() = default;

Status WritePipeline::Run(ByteSpan input, std::vector<ChunkRef>* chunks) {
  return RunMany(std::span<const ByteSpan>(&input, 1), chunks);
}

Status WritePipeline::RunMany(std::span<const ByteSpan> inputs, std::vector<ChunkRef>* chunks) {
  Impl& im = *impl_;
  {
    MutexLock lock(&im.mu);
    im.first_error = Status::Ok();
  }
  {
    MutexLock lock(&im.claim_mu);
    im.claimed.clear();
  }
  // Batches live until the run ends; their chunk lists become the result.
  std::vector<std::unique_ptr<Impl::Batch>> batches;
  auto submit = [&](std::unique_ptr<Impl::Batch> b) {
    Impl::Batch* raw = b.get();
    batches.push_back(std::move(b));
    {
      MutexLock lock(&im.mu);
      ++im.in_flight;
    }
    im.pool.Submit([&im, inputs, raw] { im.RunBatch(inputs, raw); });
    // Help only when two batches wait: one stays queued for a worker while this thread works.
    while (im.pool.queued() > 1) im.pool.RunOne();
  };

  auto batch = std::make_unique<Impl::Batch>();
  size_t batch_bytes = 0;
  bool failed = false;
  for (size_t i = 0; i < inputs.size() && !failed; ++i) {
    const ByteSpan input = inputs[i];
    uint64_t offset = 0;
    while (offset < input.size() && !failed) {
      size_t len = im.chunker.FindCut(input.subspan(offset), /*at_end=*/true);
      batch->chunks.push_back(
          ChunkRef{ChunkId(), static_cast<uint32_t>(i), offset, static_cast<uint32_t>(len)});
      batch_bytes += len;
      offset += len;
      if (batch_bytes >= im.options.pack_target_size) {
        submit(std::move(batch));
        batch = std::make_unique<Impl::Batch>();
        batch_bytes = 0;
        MutexLock lock(&im.mu);
        failed = !im.first_error.ok();
      }
    }
  }
  if (!batch->chunks.empty() && !failed) submit(std::move(batch));
  while (im.pool.RunOne()) {
  }
  Status result;
  {
    MutexLock lock(&im.mu);
    im.done_cv.Wait(&im.mu, [&im]() REQUIRES(im.mu) { return im.in_flight == 0; });
    result = im.first_error;
  }
  if (result.ok() && chunks != nullptr) {
    for (const auto& b : batches) chunks->insert(chunks->end(), b->chunks.begin(), b->chunks.end());
  }
  return result;
}

}  // namespace shardfs::backend
