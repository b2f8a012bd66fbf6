// Fuzz target: the records storage nodes hand to clients, on bytes from a node that may lie:
// slot records (backend::VerifySlotRecord, also what a node checks before storing one) and
// proof responses (net::DecodeProofResponse, then crypto::VerifyMerkleProof as a client does).
//
// Input byte 0 picks what is parsed:
//   even: the rest is a slot record. A record that passes every check but its signature is
//         re-signed with a fixed key over the same sequence and value, which must then verify
//         and give back that sequence and value.
//   odd:  the rest is a proof response. One that decodes must encode back to the same bytes
//         (but for the three reserved bytes after the version, which the decoder skips), and
//         is checked as a proof of a fixed shard: of three leaves if bit 1 of byte 0 is clear,
//         else of one. The seeds are real proofs of their last leaves, so the checks past the
//         root are reached too.
// Neither may crash, hang or read out of bounds, whatever the bytes.
//
// SHARDFS_WRITE_SEEDS=DIR makes the first input also write the seed corpus
// (tests/fuzz/corpus/node_records/) to DIR.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <tuple>

#include "backend/slot.h"
#include "base/splitmix64.h"
#include "crypto/merkle.h"
#include "crypto/sign.h"
#include "net/node_service.h"

namespace shardfs {
namespace {

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_node_records: invariant broken: %s\n", what);
  std::abort();
}

struct Shard {
  Shard(size_t size, uint64_t seed) : bytes(size) {
    FillSplitMix64(bytes, seed);
    root = crypto::MerkleRoot(bytes);
  }
  Bytes bytes;
  ShardId root;
};

struct Fixed {
  const crypto::SigningKey key =
      crypto::SigningKey::FromSeed(crypto::SecretKey::FromBytes(Bytes(32, 0xa1)).value());
  const Shard big{2 * crypto::kMerkleLeafSize + 1000, 2};
  const Shard small{1000, 1};
};

void WriteSeed(const std::string& path, uint8_t selector, ByteSpan body) {
  std::ofstream f(path, std::ios::binary);
  f.put(static_cast<char>(selector));
  f.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  Require(f.good(), "write a seed");
}

void WriteSeeds(const Fixed& fx, const std::string& dir) {
  WriteSeed(dir + "/slot_record", 0,
            backend::SignSlotRecord(fx.key, 7, AsBytes("head pointer")).value());
  WriteSeed(dir + "/slot_record_empty", 0, backend::SignSlotRecord(fx.key, 1, {}).value());
  // Proofs of the last leaf only: a whole leaf would make 64 KiB inputs.
  for (const auto& [name, selector, shard] :
       {std::tuple("proof_of_3_leaves", 1, &fx.big), std::tuple("proof_of_1_leaf", 3, &fx.small)}) {
    uint64_t last = crypto::MerkleLeafCount(shard->bytes.size()) - 1;
    backend::ShardProof p;
    p.length = shard->bytes.size();
    p.proof = crypto::MerkleTree::Build(shard->bytes).Prove(last, 1).value();
    p.leaves.assign(shard->bytes.begin() + static_cast<ptrdiff_t>(last * crypto::kMerkleLeafSize),
                    shard->bytes.end());
    WriteSeed(dir + "/" + name, static_cast<uint8_t>(selector), net::EncodeProofResponse(p));
  }
}

const Fixed& TheFixed() {
  static const Fixed fx;
  static const bool seeds_written = [] {
    if (const char* dir = std::getenv("SHARDFS_WRITE_SEEDS")) WriteSeeds(fx, dir);
    return true;
  }();
  (void)seeds_written;
  return fx;
}

void SlotRecord(const Fixed& fx, ByteSpan in) {
  auto rec = backend::VerifySlotRecord(in);
  if (rec.ok()) {
    Require(rec->value.size() <= backend::kMaxSlotValue &&
                in.size() == backend::kSlotRecordOverhead + rec->value.size(),
            "a verified record has its declared size");
    return;
  }
  if (rec.status().code() != Code::kPermissionDenied) return;
  // Well formed but for the signature: sign the same contents with a key we hold.
  uint64_t sequence = LoadLE64(in.data() + 37);
  ByteSpan value = in.subspan(49, in.size() - backend::kSlotRecordOverhead);
  auto resigned = backend::SignSlotRecord(fx.key, sequence, value);
  Require(resigned.ok(), "a value that passed the checks can be signed");
  auto again = backend::VerifySlotRecord(*resigned);
  Require(again.ok() && again->owner == fx.key.public_key() && again->sequence == sequence &&
              again->value == Bytes(value.begin(), value.end()),
          "a re-signed record verifies with its contents");
}

void ProofResponse(const Shard& shard, ByteSpan in) {
  auto p = net::DecodeProofResponse(in);
  if (!p.ok()) return;
  Bytes again = net::EncodeProofResponse(*p);
  Require(again.size() == in.size() && std::memcmp(again.data(), in.data(), 5) == 0 &&
              std::memcmp(again.data() + 8, in.data() + 8, in.size() - 8) == 0,
          "a decoded proof response encodes back to its bytes");
  Status s =
      crypto::VerifyMerkleProof(shard.root, p->length, p->proof.first_leaf, p->leaves, p->proof);
  if (s.ok()) {
    // Only the real shard's leaves can verify against its id.
    uint64_t at = p->proof.first_leaf * crypto::kMerkleLeafSize;
    Require(p->length == shard.bytes.size() && at + p->leaves.size() <= shard.bytes.size() &&
                (p->leaves.empty() ||
                 std::memcmp(p->leaves.data(), shard.bytes.data() + at, p->leaves.size()) == 0),
            "a verified proof carries the shard's own leaves");
  }
}

}  // namespace
}  // namespace shardfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs;
  if (size == 0) return 0;
  const Fixed& fx = TheFixed();
  ByteSpan in(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    SlotRecord(fx, in);
  } else {
    ProofResponse((data[0] & 2) == 0 ? fx.big : fx.small, in);
  }
  return 0;
}
