// bench/pipeline: the data path's speed, stage by stage and whole.
//
// Over N MiB of random data (default 256) it measures, single-threaded, each write stage
// alone (content-defined chunking, chunk ids, sealing, RS encode, shard Merkle ids), the
// limit they imply together (1 / sum of 1/stage speed, every speed in plaintext bytes per
// second), and the whole write pipeline (plaintext to k+m shards with ids) on 1 and 2 threads.
// Then the read side: fetching each chunk's range from shards in memory, RS decode with 2
// shards lost, opening, verifying, and the whole read pipeline healthy and with 2 data shards
// lost. Every figure is the median of --runs runs; MB = 10^6 bytes.
//
// Targets (docs/bench.md): write pipeline >= 0.85 of its stage limit on one thread, 2 threads
// >= 1.7x one, and >= 400 MB/s on one thread on the project's reference machine.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/chunk_codec.h"
#include "backend/chunker.h"
#include "backend/erasure.h"
#include "backend/pack_pipeline.h"
#include "backend/stripe_reader.h"
#include "base/splitmix64.h"
#include "bench/bench_util.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/merkle.h"

namespace shardfs::bench {
namespace {

using backend::ChunkSealer;

struct Options {
  size_t size_mib = 256;
  int runs = 5;
  int threads = 2;
  bool json = false;
};

Bytes RandomInput(size_t n) {
  Bytes out(n);
  FillSplitMix64(out, 0x5eed);
  return out;
}

class Report {
 public:
  explicit Report(bool json) : json_(json) {}
  void Section(const std::string& title) const {
    if (!json_) std::printf("\n%s\n", title.c_str());
  }
  void Figure(const std::string& key, const std::string& label, double mbps,
              const std::string& note = "") {
    out_[key] = mbps;
    if (!json_) std::printf("  %-48s %9.0f MB/s  %s\n", label.c_str(), mbps, note.c_str());
  }
  void Ratio(const std::string& key, const std::string& label, double value, double target,
             const char* unit) {
    out_[key] = value;
    out_[key + "_target"] = target;
    if (!json_) {
      std::printf("  %-48s %9.2f%s      target >= %.2f%s: %s\n", label.c_str(), value, unit, target,
                  unit, value >= target ? "met" : "NOT MET");
    }
  }
  void Value(const std::string& key, const nlohmann::json& v) { out_[key] = v; }
  void Done() {
    if (json_) std::printf("%s\n", out_.dump(2).c_str());
  }

 private:
  bool json_;
  nlohmann::json out_;
};

int Run(const Options& opt) {
  const size_t n = opt.size_mib << 20;
  const double mb = static_cast<double>(n) / 1e6;
  const int runs = opt.runs;
  Bytes input = RandomInput(n);
  crypto::DriveKeys keys = crypto::DriveKeys::Derive(crypto::MasterKey::Generate());
  backend::WritePipelineOptions wopts;  // the defaults a drive uses
  wopts.seal.cipher = crypto::PreferredCipher();
  const int k = wopts.k, m = wopts.m;
  backend::Chunker chunker = backend::Chunker::Create(wopts.chunker).value();
  backend::ErasureCoder coder = backend::ErasureCoder::Create(k, m).value();
  crypto::ChunkIdHasher hasher(keys.chunk_id);

  Report r(opt.json);
  r.Value("size_mib", opt.size_mib);
  r.Value("runs", runs);
  r.Value("cpu", CpuModel());
  if (!opt.json) {
    std::printf("shardfs bench/pipeline: %zu MiB of random data, median of %d runs, MB = 10^6 B\n",
                opt.size_mib, runs);
    std::printf("cpu: %s; chunks %u/%u/%u KiB; RS(%d,%d); packs of %zu MiB\n", CpuModel().c_str(),
                wopts.chunker.min_size >> 10, wopts.chunker.avg_size >> 10,
                wopts.chunker.max_size >> 10, k, m, wopts.pack_target_size >> 20);
  }

  // --- write stages, one thread --------------------------------------------------------
  std::vector<std::pair<size_t, size_t>> chunks;  // offset, length
  auto cut_all = [&] {
    chunks.clear();
    for (size_t off = 0; off < n;) {
      size_t len = chunker.FindCut(ByteSpan(input).subspan(off), true);
      chunks.emplace_back(off, len);
      off += len;
    }
  };
  double t_chunk = MedianSeconds(runs, cut_all);
  std::vector<ChunkId> ids(chunks.size());
  double t_id = MedianSeconds(runs, [&] {
    for (size_t i = 0; i < chunks.size(); ++i)
      ids[i] = hasher.Compute(ByteSpan(input).subspan(chunks[i].first, chunks[i].second));
  });
  double t_blake = MedianSeconds(runs, [&] {
    for (auto [off, len] : chunks)
      (void)crypto::Blake2b256(ByteSpan(input).subspan(off, len), keys.chunk_id.span());
  });
  auto seal_all = [&](const backend::ChunkSealOptions& so) {
    ChunkSealer sealer(keys.chunk_encryption, so);
    Bytes out(ChunkSealer::MaxSealedSize(wopts.chunker.max_size, so.cipher));
    return MedianSeconds(runs, [&] {
      for (size_t i = 0; i < chunks.size(); ++i)
        (void)sealer.Seal(ids[i], ByteSpan(input).subspan(chunks[i].first, chunks[i].second), out);
    });
  };
  double t_seal = seal_all(wopts.seal);
  backend::ChunkSealOptions raw = wopts.seal;
  raw.compression = backend::Compression::kOff;
  double t_seal_raw = seal_all(raw);
  backend::ChunkSealOptions xchacha = raw;
  xchacha.cipher = crypto::Cipher::kXChaCha20Poly1305;
  double t_seal_xchacha = seal_all(xchacha);

  // RS encode and shard ids over pack-sized slices of the input.
  const size_t pack = wopts.pack_target_size;
  const size_t shard = pack / k;
  std::vector<Bytes> parity(m, Bytes(shard));
  auto slices = n / pack;
  auto encode_all = [&] {
    for (size_t s = 0; s < slices; ++s) {
      std::vector<ByteSpan> d(k);
      std::vector<MutableByteSpan> p(parity.begin(), parity.end());
      for (int i = 0; i < k; ++i) d[i] = ByteSpan(input).subspan(s * pack + i * shard, shard);
      (void)coder.Encode(d, p);
    }
  };
  double t_rs = MedianSeconds(runs, encode_all) * static_cast<double>(n) / (slices * pack);
  double t_merkle = MedianSeconds(runs,
                                  [&] {
                                    for (size_t s = 0; s < slices; ++s) {
                                      for (int i = 0; i < k; ++i)
                                        (void)crypto::MerkleRoot(
                                            ByteSpan(input).subspan(s * pack + i * shard, shard));
                                      for (int j = 0; j < m; ++j)
                                        (void)crypto::MerkleRoot(parity[j]);
                                    }
                                  }) *
                    static_cast<double>(n) / (slices * pack);

  const char* cipher_name =
      wopts.seal.cipher == crypto::Cipher::kAes256Gcm ? "AES-256-GCM" : "XChaCha20-Poly1305";
  r.Section("write stages, one thread (MB/s of plaintext)");
  r.Figure("chunking", "content-defined chunking (FastCDC)", mb / t_chunk);
  r.Figure("chunk_ids", "chunk ids (HMAC-SHA-256)", mb / t_id);
  r.Figure("seal", std::string("seal (") + cipher_name + ", compression auto)", mb / t_seal);
  r.Figure("rs_encode", "RS(" + std::to_string(k) + "," + std::to_string(m) + ") encode",
           mb / t_rs);
  r.Figure("shard_ids", "shard ids (SHA-256 Merkle over k+m shards)", mb / t_merkle);
  const double limit_t = t_chunk + t_id + t_seal + t_rs + t_merkle;
  r.Figure("write_stage_limit", "stage limit: 1 / sum(1 / stage)", mb / limit_t);
  r.Section("alternatives, measured for the choice (not in the pipeline)");
  r.Figure("alt_chunk_ids_blake2b", "chunk ids (keyed BLAKE2b, libsodium)", mb / t_blake);
  r.Figure("alt_seal_raw", std::string("seal (") + cipher_name + ", no compression)",
           mb / t_seal_raw);
  r.Figure("alt_seal_xchacha", "seal (XChaCha20-Poly1305, libsodium)", mb / t_seal_xchacha);

  // --- whole write pipeline --------------------------------------------------------------
  double t_w1 = TimeWritePipeline(keys, wopts, input, 1, runs);
  double t_w2 = TimeWritePipeline(keys, wopts, input, opt.threads, runs);
  r.Section("write pipeline: plaintext to k+m shards with ids");
  r.Figure("write_1_thread", "1 thread", mb / t_w1);
  r.Figure("write_n_threads", std::to_string(opt.threads) + " threads", mb / t_w2);
  r.Ratio("write_ratio_to_stage_limit", "1 thread / stage limit", limit_t / t_w1, 0.85, "");
  r.Ratio("write_thread_scaling", std::to_string(opt.threads) + " threads / 1 thread", t_w1 / t_w2,
          0.85 * opt.threads, "x");
  r.Ratio("write_1_thread_mbps_over_400", "1 thread / 400 MB/s", (mb / t_w1) / 400.0, 1.0, "");

  // --- read side -------------------------------------------------------------------------
  // One run, keeping the packs.
  std::vector<backend::EncodedPack> kept;
  {
    backend::WritePipelineOptions o = wopts;
    o.threads = 1;
    auto p = backend::WritePipeline::Create(keys, o, [&](backend::EncodedPack& e) {
      kept.push_back(e);
      return Status::Ok();
    });
    Check(p.status(), "write pipeline");
    Check((*p)->Run(input, nullptr), "write pipeline run");
  }
  struct Loc {
    const backend::EncodedPack* pack;
    size_t pack_index;
    backend::PackEntry entry;
  };
  std::vector<Loc> locs;
  for (size_t i = 0; i < kept.size(); ++i)
    for (const auto& e : kept[i].entries) locs.push_back({&kept[i], i, e});
  ChunkSealer sealer(keys.chunk_encryption, wopts.seal);
  Bytes sealed(ChunkSealer::MaxSealedSize(wopts.chunker.max_size, wopts.seal.cipher));
  Bytes plain(wopts.chunker.max_size);
  auto read_all = [&](const std::vector<int>& lost, bool open, bool verify) {
    std::vector<backend::EncodedPackSource> sources;  // made once, outside the timing
    sources.reserve(kept.size());
    for (const auto& p : kept) sources.emplace_back(p, lost);
    return MedianSeconds(runs, [&] {
      for (const Loc& l : locs) {
        MutableByteSpan s(sealed.data(), l.entry.sealed_size);
        if (!backend::ReadPackRange(l.pack->layout, coder, sources[l.pack_index], l.entry.offset, s,
                                    nullptr)
                 .ok())
          std::abort();
        MutableByteSpan pt(plain.data(), l.entry.plain_size);
        if (open && !sealer.Open(wopts.seal.cipher, l.entry.id, l.entry.codec, s, pt).ok())
          std::abort();
        if (verify && hasher.Compute(pt) != l.entry.id) std::abort();
      }
    });
  };
  double t_fetch = read_all({}, false, false);
  // Sealed chunks and plaintexts in memory, to time open and verify alone.
  std::vector<Bytes> sealed_chunks;
  for (const Loc& l : locs) {
    const Bytes& d = l.pack->data;
    sealed_chunks.emplace_back(d.begin() + l.entry.offset,
                               d.begin() + l.entry.offset + l.entry.sealed_size);
  }
  double t_open = MedianSeconds(runs, [&] {
    for (size_t i = 0; i < locs.size(); ++i)
      (void)sealer.Open(wopts.seal.cipher, locs[i].entry.id, locs[i].entry.codec, sealed_chunks[i],
                        MutableByteSpan(plain.data(), locs[i].entry.plain_size));
  });
  double t_verify = t_id;  // the same HMAC over the same bytes
  // RS decode alone: rebuild data shards 0 and 1 of every pack from shards 2..5.
  double decoded_bytes = 0;
  size_t max_shard = 0;
  for (const auto& p : kept) {
    decoded_bytes += 2.0 * p.layout.shard_size;
    max_shard = std::max<size_t>(max_shard, p.layout.shard_size);
  }
  Bytes rebuilt_a(max_shard), rebuilt_b(max_shard);
  double t_decode = MedianSeconds(runs, [&] {
    for (const auto& p : kept) {
      std::vector<backend::ShardPiece> present;
      for (int i = 2; i < k + m; ++i) present.push_back({i, p.shard(i)});
      backend::ShardOutput outs[2] = {{0, MutableByteSpan(rebuilt_a).first(p.layout.shard_size)},
                                      {1, MutableByteSpan(rebuilt_b).first(p.layout.shard_size)}};
      (void)coder.Reconstruct(present, outs);
    }
  });
  double t_read = read_all({}, true, true);
  double t_read_degraded = read_all({0, 1}, true, true);
  r.Section("read stages, one thread (MB/s of plaintext)");
  r.Figure("range_fetch", "range fetch from data shards (memory)", mb / t_fetch);
  r.Figure("rs_decode_2_lost", "RS decode, 2 data shards lost (per rebuilt B)",
           decoded_bytes / 1e6 / t_decode);
  r.Figure("open", std::string("open (") + cipher_name + ")", mb / t_open);
  r.Figure("verify", "verify (chunk id recomputed)", mb / t_verify);
  const double read_limit_t = t_fetch + t_open + t_verify;
  r.Figure("read_stage_limit", "stage limit (healthy): 1 / sum(1 / stage)", mb / read_limit_t);
  r.Section("read pipeline: shards to verified plaintext, one thread");
  r.Figure(
      "read_healthy", "all shards present", mb / t_read,
      "(" + std::to_string(static_cast<int>(100 * read_limit_t / t_read)) + "% of stage limit)");
  r.Figure(
      "read_degraded", "data shards 0 and 1 lost (half the bytes decoded)", mb / t_read_degraded,
      "(" + std::to_string(static_cast<int>(100 * t_read / t_read_degraded)) + "% of healthy)");
  r.Done();
  return 0;
}

}  // namespace
}  // namespace shardfs::bench

int main(int argc, char** argv) try {
  shardfs::bench::Options opt;
  CLI::App app{"Measures the shardfs data path stage by stage and whole."};
  app.add_option("--size-mib", opt.size_mib, "MiB of random input (at least 32)")
      ->check(CLI::Range(32, 8192));
  app.add_option("--runs", opt.runs, "runs per figure (the median is printed)")
      ->check(CLI::Range(1, 101));
  app.add_option("--threads", opt.threads, "threads for the parallel pipeline run")
      ->check(CLI::Range(2, 64));
  app.add_flag("--json", opt.json, "print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return shardfs::bench::Run(opt);
} catch (const std::exception& e) {
  std::fprintf(stderr, "pipeline: %s\n", e.what());
  return 1;
}
