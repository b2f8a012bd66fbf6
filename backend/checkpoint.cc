#include "backend/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "backend/chunk_reader.h"
#include "backend/pack_pipeline.h"
#include "backend/pack_upload.h"
#include "backend/slot.h"
#include "base/logging.h"
#include "crypto/aead.h"
#include "crypto/sign.h"

namespace shardfs::backend {

namespace {

constexpr char kManifestMagic[] = "SFCM";
constexpr char kHeadMagic[] = "SFHD";
constexpr std::string_view kHeadPurpose = "shardfs head v1";
// Local state keys (the catalog's local_state table) and the versions of their values.
constexpr std::string_view kStateKey = "checkpoint.state";
constexpr std::string_view kBaseIndexKey = "checkpoint.base_index";
constexpr std::string_view kPendingKey = "checkpoint.pending";
constexpr std::string_view kPacksKey = "checkpoint.packs";
constexpr uint8_t kLocalStateVersion = 2;

// Stored object forms.
constexpr uint8_t kChunksForm = 0;
constexpr uint8_t kInlineForm = 1;

// Smallest encodings, to bound counts by the bytes left before allocating.
constexpr size_t kChunkEntrySize = 32 + 4 + 8 + 4 + 4 + 1 + 1;
constexpr size_t kMinPackEntrySize = 16 + 1 + 1 + 8;

Status Malformed(std::string_view what) {
  return Status::Corruption(std::string(what) + " is malformed");
}

void PutBlob(ByteWriter& w, ByteSpan b) {
  w.U32(static_cast<uint32_t>(b.size()));
  w.Raw(b);
}

bool GetBlob(ByteReader& r, ByteSpan* out) {
  uint32_t n = 0;
  return r.U32(&n) && r.View(n, out);
}

void PutString16(ByteWriter& w, std::string_view s) {
  w.U16(static_cast<uint16_t>(s.size()));
  w.Raw(AsBytes(s));
}

bool GetString16(ByteReader& r, std::string* out) {
  uint16_t n = 0;
  ByteSpan b;
  if (!r.U16(&n) || !r.View(n, &b)) return false;
  out->assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}

template <typename Id>
bool GetId(ByteReader& r, Id* out) {
  ByteSpan b;
  if (!r.View(Id::kSize, &b)) return false;
  auto id = Id::FromBytes(b);
  if (!id.ok()) return false;
  *out = *id;
  return true;
}

void PutIds(ByteWriter& w, const std::vector<PackId>& ids) {
  w.U32(static_cast<uint32_t>(ids.size()));
  for (const PackId& id : ids) w.Raw(id.span());
}

bool GetIds(ByteReader& r, std::vector<PackId>* out) {
  uint32_t n = 0;
  if (!r.U32(&n) || n > r.remaining() / PackId::kSize) return false;
  out->resize(n);
  for (PackId& id : *out) {
    if (!GetId(r, &id)) return false;
  }
  return true;
}

void PutPack(ByteWriter& w, const PackRecord& p) {
  w.Raw(p.id.span());
  w.U8(static_cast<uint8_t>(p.k));
  w.U8(static_cast<uint8_t>(p.m));
  w.U64(p.size);
  for (size_t i = 0; i < p.shards.size(); ++i) {
    w.Raw(p.shards[i].span());
    w.Raw(p.nodes[i].span());
  }
}

bool GetPack(ByteReader& r, PackRecord* p) {
  uint8_t k = 0, m = 0;
  if (!GetId(r, &p->id) || !r.U8(&k) || !r.U8(&m) || !r.U64(&p->size)) return false;
  if (k < 1 || m < 1 || k + m > 32) return false;
  p->k = k;
  p->m = m;
  p->shards.resize(static_cast<size_t>(k + m));
  p->nodes.resize(static_cast<size_t>(k + m));
  for (int i = 0; i < k + m; ++i) {
    if (!GetId(r, &p->shards[i]) || !GetId(r, &p->nodes[i])) return false;
  }
  return true;
}

// The checkpoint packs stored from a catalog (local state).
Bytes EncodePacks(const std::vector<PackRecord>& packs) {
  Bytes out;
  ByteWriter w(&out);
  w.U8(kLocalStateVersion);
  w.U32(static_cast<uint32_t>(packs.size()));
  for (const PackRecord& p : packs) PutPack(w, p);
  return out;
}

Result<std::vector<PackRecord>> DecodePacks(ByteSpan in) {
  ByteReader r(in);
  uint8_t version = 0;
  uint32_t n = 0;
  if (!r.U8(&version) || version != kLocalStateVersion || !r.U32(&n) ||
      n > r.remaining() / kMinPackEntrySize) {
    return Malformed("the list of checkpoint packs");
  }
  std::vector<PackRecord> out(n);
  for (PackRecord& p : out) {
    if (!GetPack(r, &p)) return Malformed("the list of checkpoint packs");
  }
  if (!r.AtEnd()) return Malformed("the list of checkpoint packs");
  return out;
}

// The packs an object uses, added to *out without repeats.
void AddPacks(const StoredObject& object, std::vector<PackId>* out) {
  for (const PackRecord& p : object.packs) {
    if (std::find(out->begin(), out->end(), p.id) == out->end()) out->push_back(p.id);
  }
}

// The records of the packs an object uses, added to *out without repeats.
void AddPackRecords(const StoredObject& object, std::vector<PackRecord>* out) {
  for (const PackRecord& p : object.packs) {
    bool listed = false;
    for (const PackRecord& q : *out) listed = listed || q.id == p.id;
    if (!listed) out->push_back(p);
  }
}

std::vector<PackId> PacksOf(const StoredObject& object) {
  std::vector<PackId> out;
  AddPacks(object, &out);
  return out;
}

// What the last stored checkpoint is, as this machine keeps it (local state, not a format other
// machines read).
struct LocalState {
  uint64_t head_sequence = 0;
  CheckpointManifest manifest;
  StoredObject manifest_ref;
  std::vector<PackId> base_packs;      // the base's data
  std::vector<PackId> previous_packs;  // the checkpoint before (the fallback)
};

std::vector<PackId> CheckpointPacks(const LocalState& s) {
  std::vector<PackId> out = s.base_packs;
  AddPacks(s.manifest.base_index, &out);
  for (const CheckpointDelta& d : s.manifest.deltas) AddPacks(d.object, &out);
  AddPacks(s.manifest_ref, &out);
  return out;
}

Bytes EncodeLocalState(const LocalState& s) {
  Bytes out;
  ByteWriter w(&out);
  w.U8(kLocalStateVersion);
  w.U64(s.head_sequence);
  PutBlob(w, EncodeCheckpointManifest(s.manifest));
  PutBlob(w, EncodeStoredObject(s.manifest_ref));
  PutIds(w, s.base_packs);
  PutIds(w, s.previous_packs);
  return out;
}

Result<LocalState> DecodeLocalState(ByteSpan in) {
  ByteReader r(in);
  LocalState s;
  uint8_t version = 0;
  ByteSpan manifest, ref;
  if (!r.U8(&version) || version != kLocalStateVersion || !r.U64(&s.head_sequence) ||
      !GetBlob(r, &manifest) || !GetBlob(r, &ref) || !GetIds(r, &s.base_packs) ||
      !GetIds(r, &s.previous_packs) || !r.AtEnd()) {
    return Malformed("the local checkpoint state");
  }
  SFS_ASSIGN_OR_RETURN(s.manifest, DecodeCheckpointManifest(manifest));
  SFS_ASSIGN_OR_RETURN(s.manifest_ref, DecodeStoredObject(ref));
  return s;
}

// Changes not in a stored checkpoint, kept across a clean close. `open` is set while a
// checkpointer runs: found set at start, it means the last one did not close (a crash), and
// changes may be missing from the deltas.
struct LocalPending {
  bool open = false;
  bool need_base = false;
  std::vector<std::pair<uint64_t, Bytes>> deltas;  // last change, changeset
};

Bytes EncodeLocalPending(const LocalPending& p) {
  Bytes out;
  ByteWriter w(&out);
  w.U8(kLocalStateVersion);
  w.U8(p.open ? 1 : 0);
  w.U8(p.need_base ? 1 : 0);
  w.U32(static_cast<uint32_t>(p.deltas.size()));
  for (const auto& [last, changeset] : p.deltas) {
    w.U64(last);
    PutBlob(w, changeset);
  }
  return out;
}

Result<LocalPending> DecodeLocalPending(ByteSpan in) {
  ByteReader r(in);
  LocalPending p;
  uint8_t version = 0, open = 0, need_base = 0;
  uint32_t n = 0;
  if (!r.U8(&version) || version != kLocalStateVersion || !r.U8(&open) || !r.U8(&need_base) ||
      !r.U32(&n) || n > r.remaining() / 12) {
    return Malformed("the local pending changes");
  }
  p.open = open != 0;
  p.need_base = need_base != 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t last = 0;
    ByteSpan b;
    if (!r.U64(&last) || !GetBlob(r, &b)) return Malformed("the local pending changes");
    p.deltas.emplace_back(last, Bytes(b.begin(), b.end()));
  }
  if (!r.AtEnd()) return Malformed("the local pending changes");
  return p;
}

// Reads an object back, every chunk verified by opening it.
Result<Bytes> ReadObject(ChunkReader& reader, const StoredObject& object) {
  if (object.bytes) {
    if (object.bytes->size() != object.size) return Malformed("an inline checkpoint object");
    return *object.bytes;
  }
  if (object.size > kMaxCheckpointObject) return Malformed("a checkpoint object's size");
  std::unordered_map<PackId, const PackRecord*> packs;
  for (const PackRecord& p : object.packs) packs[p.id] = &p;
  Bytes out(object.size);
  uint64_t at = 0;
  for (const ChunkRecord& c : object.chunks) {
    auto it = packs.find(c.pack);
    if (it == packs.end() || c.plain_size > object.size - at) {
      return Malformed("a checkpoint object's chunk list");
    }
    SFS_RETURN_IF_ERROR(
        reader.Read(*it->second, c, MutableByteSpan(out.data() + at, c.plain_size)));
    at += c.plain_size;
  }
  if (at != object.size) return Malformed("a checkpoint object's chunk list");
  return out;
}

crypto::SecretKey HeadKey(const crypto::SecretKey& catalog_key) {
  return crypto::DeriveItemKey(catalog_key, kHeadPurpose, ByteSpan());
}

Bytes HeadAd(uint64_t sequence) {
  Bytes ad(kHeadPurpose.begin(), kHeadPurpose.end());
  ByteWriter w(&ad);
  w.U64(sequence);
  return ad;
}

// A node that could not be reached: every request fails.
class UnreachablePeer final : public Peer {
 public:
  explicit UnreachablePeer(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  Status PutShard(const ShardId&, ByteSpan, const CancelToken*) override { return Down(); }
  Result<Bytes> GetShard(const ShardId&, const CancelToken*) override { return Down(); }
  Status ReadShard(const ShardId&, uint64_t, MutableByteSpan, const CancelToken*) override {
    return Down();
  }
  Result<uint64_t> StatShard(const ShardId&) override { return Down(); }
  Result<ShardProof> ProveShard(const ShardId&, uint64_t, uint64_t) override { return Down(); }
  Status DeleteShard(const ShardId&) override { return Down(); }
  Result<std::optional<Bytes>> GetSlot() override { return Down(); }
  Status PutSlot(ByteSpan) override { return Down(); }
  Result<PeerStatus> GetStatus() override { return Down(); }

 private:
  Status Down() const { return Status::Unavailable(name_ + " could not be reached"); }
  std::string name_;
};

}  // namespace

// Formats. --------------------------------------------------------------------------------

Bytes EncodeStoredObject(const StoredObject& object) {
  Bytes out;
  ByteWriter w(&out);
  if (object.bytes) {
    w.U8(kInlineForm);
    PutBlob(w, *object.bytes);
    return out;
  }
  w.U8(kChunksForm);
  w.U64(object.size);
  w.U32(static_cast<uint32_t>(object.packs.size()));
  for (const PackRecord& p : object.packs) PutPack(w, p);
  w.U32(static_cast<uint32_t>(object.chunks.size()));
  for (const ChunkRecord& c : object.chunks) {
    w.Raw(c.id.span());
    uint32_t pack = 0;
    while (pack < object.packs.size() && object.packs[pack].id != c.pack) ++pack;
    w.U32(pack);
    w.U64(c.pack_offset);
    w.U32(c.sealed_size);
    w.U32(c.plain_size);
    w.U8(c.cipher);
    w.U8(c.codec);
  }
  return out;
}

namespace {

bool ReadStoredObject(ByteReader& r, StoredObject* out) {
  uint8_t form = 0;
  if (!r.U8(&form) || form > kInlineForm) return false;
  if (form == kInlineForm) {
    ByteSpan b;
    if (!GetBlob(r, &b) || b.size() > kMaxInlineObject) return false;
    out->size = b.size();
    out->bytes.emplace(b.begin(), b.end());
    return true;
  }
  uint32_t packs = 0;
  if (!r.U64(&out->size) || out->size > kMaxCheckpointObject || !r.U32(&packs) ||
      packs > r.remaining() / kMinPackEntrySize) {
    return false;
  }
  out->packs.resize(packs);
  for (PackRecord& p : out->packs) {
    if (!GetPack(r, &p)) return false;
  }
  uint32_t chunks = 0;
  if (!r.U32(&chunks) || chunks > r.remaining() / kChunkEntrySize) return false;
  out->chunks.resize(chunks);
  uint64_t total = 0;
  for (ChunkRecord& c : out->chunks) {
    uint32_t pack = 0;
    if (!GetId(r, &c.id) || !r.U32(&pack) || !r.U64(&c.pack_offset) || !r.U32(&c.sealed_size) ||
        !r.U32(&c.plain_size) || !r.U8(&c.cipher) || !r.U8(&c.codec)) {
      return false;
    }
    if (pack >= packs || !crypto::CipherFromByte(c.cipher).ok() ||
        !ChunkCodecFromByte(c.codec).ok() || c.plain_size > kMaxChunkSize) {
      return false;
    }
    c.pack = out->packs[pack].id;
    total += c.plain_size;
  }
  return total == out->size;
}

}  // namespace

Result<StoredObject> DecodeStoredObject(ByteSpan encoded) {
  ByteReader r(encoded);
  StoredObject out;
  if (!ReadStoredObject(r, &out) || !r.AtEnd()) return Malformed("a stored object's record");
  return out;
}

Bytes EncodeCheckpointManifest(const CheckpointManifest& m) {
  Bytes out;
  ByteWriter w(&out);
  w.Raw(AsBytes(std::string_view(kManifestMagic, 4)));
  w.U8(kCheckpointManifestVersion);
  w.U32(static_cast<uint32_t>(m.schema));
  w.U64(m.last_change);
  w.U64(m.base_change);
  w.U64(m.base_size);
  PutBlob(w, EncodeStoredObject(m.base_index));
  w.U32(static_cast<uint32_t>(m.deltas.size()));
  for (const CheckpointDelta& d : m.deltas) {
    w.U64(d.last_change);
    PutBlob(w, EncodeStoredObject(d.object));
  }
  return out;
}

Result<CheckpointManifest> DecodeCheckpointManifest(ByteSpan encoded) {
  ByteReader r(encoded);
  CheckpointManifest m;
  uint8_t magic[4] = {};
  uint8_t version = 0;
  if (!r.Raw(MutableByteSpan(magic, 4)) || std::memcmp(magic, kManifestMagic, 4) != 0 ||
      !r.U8(&version)) {
    return Malformed("a checkpoint manifest");
  }
  if (version != kCheckpointManifestVersion) {
    return Status::NotSupported("checkpoint manifest version " + std::to_string(version));
  }
  uint32_t schema = 0, deltas = 0;
  ByteSpan blob;
  if (!r.U32(&schema) || schema > 1'000'000 || !r.U64(&m.last_change) || !r.U64(&m.base_change) ||
      !r.U64(&m.base_size) || !GetBlob(r, &blob)) {
    return Malformed("a checkpoint manifest");
  }
  m.schema = static_cast<int>(schema);
  {
    ByteReader o(blob);
    if (!ReadStoredObject(o, &m.base_index) || !o.AtEnd())
      return Malformed("a checkpoint manifest");
  }
  if (!r.U32(&deltas) || deltas > r.remaining() / 12) return Malformed("a checkpoint manifest");
  m.deltas.resize(deltas);
  for (CheckpointDelta& d : m.deltas) {
    if (!r.U64(&d.last_change) || !GetBlob(r, &blob)) return Malformed("a checkpoint manifest");
    ByteReader o(blob);
    if (!ReadStoredObject(o, &d.object) || !o.AtEnd()) return Malformed("a checkpoint manifest");
  }
  if (!r.AtEnd()) return Malformed("a checkpoint manifest");
  return m;
}

Result<Bytes> EncodeDriveHead(const crypto::SecretKey& catalog_key, crypto::Cipher cipher,
                              const DriveHead& head) {
  Bytes body;
  ByteWriter b(&body);
  b.U32(static_cast<uint32_t>(head.schema));
  b.U64(head.last_change);
  PutString16(b, head.config.name);
  b.U8(static_cast<uint8_t>(head.config.k));
  b.U8(static_cast<uint8_t>(head.config.m));
  b.U16(static_cast<uint16_t>(head.config.nodes.size()));
  for (const DriveNode& n : head.config.nodes) {
    PutString16(b, n.address);
    b.Raw(n.id.span());
  }
  PutBlob(b, EncodeStoredObject(head.manifest));
  b.U8(head.previous ? 1 : 0);
  if (head.previous) PutBlob(b, EncodeStoredObject(*head.previous));

  Bytes out;
  ByteWriter w(&out);
  w.Raw(AsBytes(std::string_view(kHeadMagic, 4)));
  w.U8(kDriveHeadVersion);
  w.U8(static_cast<uint8_t>(cipher));
  const size_t at = out.size();
  if (at + body.size() + crypto::AeadBoxOverhead(cipher) > kMaxSlotValue) {
    return Status::OutOfRange("the drive head would take " +
                              std::to_string(at + body.size() + crypto::AeadBoxOverhead(cipher)) +
                              " bytes, more than a slot holds");
  }
  out.resize(at + body.size() + crypto::AeadBoxOverhead(cipher));
  SFS_RETURN_IF_ERROR(crypto::AeadSealBox(cipher, HeadKey(catalog_key), HeadAd(head.sequence), body,
                                          MutableByteSpan(out.data() + at, out.size() - at)));
  return out;
}

Result<DriveHead> DecodeDriveHead(const crypto::SecretKey& catalog_key, uint64_t sequence,
                                  ByteSpan value) {
  ByteReader r(value);
  uint8_t magic[4] = {};
  uint8_t version = 0, cipher_byte = 0;
  if (!r.Raw(MutableByteSpan(magic, 4)) || std::memcmp(magic, kHeadMagic, 4) != 0 ||
      !r.U8(&version)) {
    return Malformed("the drive head");
  }
  if (version != kDriveHeadVersion) {
    return Status::NotSupported("drive head version " + std::to_string(version));
  }
  if (!r.U8(&cipher_byte)) return Malformed("the drive head");
  auto cipher = crypto::CipherFromByte(cipher_byte);
  if (!cipher.ok()) return Malformed("the drive head");
  ByteSpan box = value.subspan(r.position());
  if (box.size() < crypto::AeadBoxOverhead(*cipher)) return Malformed("the drive head");
  Bytes body(box.size() - crypto::AeadBoxOverhead(*cipher));
  Status opened = crypto::AeadOpenBox(*cipher, HeadKey(catalog_key), HeadAd(sequence), box, body);
  if (!opened.ok()) {
    return Status::Corruption("the drive head does not verify (another key, or damaged)");
  }
  ByteReader b(body);
  DriveHead head;
  head.sequence = sequence;
  uint32_t schema = 0;
  uint8_t k = 0, m = 0, has_previous = 0;
  uint16_t nodes = 0;
  ByteSpan blob;
  if (!b.U32(&schema) || schema > 1'000'000 || !b.U64(&head.last_change) ||
      !GetString16(b, &head.config.name) || !b.U8(&k) || !b.U8(&m) || !b.U16(&nodes)) {
    return Malformed("the drive head");
  }
  head.schema = static_cast<int>(schema);
  head.config.k = k;
  head.config.m = m;
  for (uint16_t i = 0; i < nodes; ++i) {
    DriveNode n;
    if (!GetString16(b, &n.address) || !GetId(b, &n.id)) return Malformed("the drive head");
    head.config.nodes.push_back(std::move(n));
  }
  if (!GetBlob(b, &blob)) return Malformed("the drive head");
  SFS_ASSIGN_OR_RETURN(head.manifest, DecodeStoredObject(blob));
  if (!b.U8(&has_previous) || has_previous > 1) return Malformed("the drive head");
  if (has_previous == 1) {
    if (!GetBlob(b, &blob)) return Malformed("the drive head");
    SFS_ASSIGN_OR_RETURN(head.previous, DecodeStoredObject(blob));
  }
  if (!b.AtEnd()) return Malformed("the drive head");
  if (Status v = ValidateDriveConfig(head.config); !v.ok()) {
    return Status::Corruption("the drive head's config: " + v.message());
  }
  return head;
}

bool HeadStoredEnough(size_t stored, size_t nodes) { return nodes > 0 && stored * 2 > nodes; }

// Stores objects through a write pipeline of their own and UploadPack, remembering where every
// chunk went, so later objects of the same run (and chunks made known with AddKnown) dedup.
class ObjectWriter {
 public:
  static Result<std::unique_ptr<ObjectWriter>> Create(PeerSet& peers, const crypto::DriveKeys& keys,
                                                      const DriveConfig& config,
                                                      const CheckpointOptions& options) {
    std::unique_ptr<ObjectWriter> w(new ObjectWriter(peers, options.seal.cipher));
    WritePipelineOptions po;
    po.chunker = options.chunker;
    po.seal = options.seal;
    po.k = config.k;
    po.m = config.m;
    po.pack_target_size = options.pack_target_size;
    po.threads = 1;
    ObjectWriter* self = w.get();
    po.known = [self](const ChunkId& id) {
      MutexLock lock(&self->mu_);
      return self->where_.count(id) != 0;
    };
    SFS_ASSIGN_OR_RETURN(w->pipeline_, WritePipeline::Create(keys, po, [self](EncodedPack& pack) {
                           return self->StorePack(pack);
                         }));
    return w;
  }

  // Chunks already stored that objects may use.
  void AddKnown(const StoredObject& object) {
    MutexLock lock(&mu_);
    for (const ChunkRecord& c : object.chunks) {
      for (const PackRecord& p : object.packs) {
        if (p.id == c.pack) where_.emplace(c.id, std::make_pair(c, p));
      }
    }
  }

  // Stores `objects`: those of at most `inline_max` bytes inline, the others through the
  // pipeline, in shared packs.
  Result<std::vector<StoredObject>> StoreMany(std::span<const ByteSpan> objects,
                                              size_t inline_max) {
    std::vector<StoredObject> out(objects.size());
    std::vector<ByteSpan> packed;
    std::vector<size_t> which;  // packed[i] is objects[which[i]]
    for (size_t i = 0; i < objects.size(); ++i) {
      if (objects[i].size() > kMaxCheckpointObject) {
        return Status::OutOfRange("a checkpoint object of " + std::to_string(objects[i].size()) +
                                  " bytes is too large");
      }
      out[i].size = objects[i].size();
      if (objects[i].size() <= inline_max) {
        out[i].bytes.emplace(objects[i].begin(), objects[i].end());
      } else {
        packed.push_back(objects[i]);
        which.push_back(i);
      }
    }
    if (packed.empty()) return out;
    std::vector<ChunkRef> refs;
    SFS_RETURN_IF_ERROR(pipeline_->RunMany(packed, &refs));
    MutexLock lock(&mu_);
    for (const ChunkRef& r : refs) {
      auto it = where_.find(r.id);
      if (it == where_.end() || it->second.first.plain_size != r.size) {
        return Status::IOError("chunk " + r.id.ToHex() + " of a checkpoint was not stored");
      }
      StoredObject& object = out[which[r.input]];
      object.chunks.push_back(it->second.first);
      const PackRecord& pack = it->second.second;
      bool listed = false;
      for (const PackRecord& p : object.packs) listed = listed || p.id == pack.id;
      if (!listed) object.packs.push_back(pack);
    }
    return out;
  }

  Result<StoredObject> Store(ByteSpan data, size_t inline_max) {
    SFS_ASSIGN_OR_RETURN(std::vector<StoredObject> out,
                         StoreMany(std::span<const ByteSpan>(&data, 1), inline_max));
    return std::move(out[0]);
  }

  // The packs stored so far, handed over once.
  std::vector<PackRecord> TakePacks() {
    MutexLock lock(&mu_);
    return std::move(packs_);
  }

  // Plaintext bytes of the chunks this writer packed.
  uint64_t packed_bytes() {
    MutexLock lock(&mu_);
    return packed_bytes_;
  }

 private:
  ObjectWriter(PeerSet& peers, crypto::Cipher cipher) : peers_(peers), cipher_(cipher) {}

  Status StorePack(EncodedPack& pack) {
    SFS_ASSIGN_OR_RETURN(PackRecord record, UploadPack(peers_, pack));
    MutexLock lock(&mu_);
    for (const ChunkRecord& c : ChunkRecordsOf(pack, cipher_)) {
      where_.emplace(c.id, std::make_pair(c, record));
      packed_bytes_ += c.plain_size;
    }
    packs_.push_back(std::move(record));
    return Status::Ok();
  }

  PeerSet& peers_;
  const crypto::Cipher cipher_;
  std::unique_ptr<WritePipeline> pipeline_;
  Mutex mu_;
  std::unordered_map<ChunkId, std::pair<ChunkRecord, PackRecord>> where_ GUARDED_BY(mu_);
  uint64_t packed_bytes_ GUARDED_BY(mu_) = 0;
  std::vector<PackRecord> packs_ GUARDED_BY(mu_);
};

// The checkpointer. ------------------------------------------------------------------------

struct Checkpointer::State : LocalState {};

Checkpointer::Checkpointer(Catalog& catalog, PeerSet& peers, const crypto::MasterKey& master,
                           DriveConfig config, CheckpointOptions options)
    : catalog_(catalog),
      peers_(peers),
      keys_(crypto::DriveKeys::Derive(master)),
      owner_(crypto::SigningKey::ForOwner(master)),
      config_(std::move(config)),
      options_(std::move(options)) {}

Checkpointer::~Checkpointer() {
  Status s = Close();
  if (!s.ok()) log::Warn("checkpoint at close: {}", s.ToString());
}

Result<std::unique_ptr<Checkpointer>> Checkpointer::Start(Catalog& catalog, PeerSet& peers,
                                                          const crypto::MasterKey& master,
                                                          DriveConfig config,
                                                          CheckpointOptions options) {
  SFS_RETURN_IF_ERROR(options.chunker.Validate().WithContext("checkpoint chunker"));
  if (options.inline_object_max > kMaxInlineObject ||
      options.inline_manifest_max > kMaxInlineObject) {
    return Status::InvalidArgument("checkpoint objects inline are at most " +
                                   std::to_string(kMaxInlineObject) + " bytes");
  }
  std::unique_ptr<Checkpointer> c(
      new Checkpointer(catalog, peers, master, std::move(config), std::move(options)));
  {
    MutexLock run(&c->run_mu_);
    SFS_RETURN_IF_ERROR(c->Load());
    SFS_RETURN_IF_ERROR(catalog.StartChangeTracking());
    SFS_RETURN_IF_ERROR(c->SavePending(true));
  }
  if (c->options_.max_delay.count() > 0) c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  return c;
}

Status Checkpointer::Load() {
  SFS_ASSIGN_OR_RETURN(std::optional<Bytes> state, catalog_.GetLocalState(kStateKey));
  if (state) {
    auto decoded = DecodeLocalState(*state);
    if (decoded.ok()) {
      state_ = std::make_unique<State>();
      static_cast<LocalState&>(*state_) = std::move(*decoded);
    } else {
      log::Warn("checkpoint state: {}; the next checkpoint is a new base",
                decoded.status().ToString());
    }
  }
  need_base_ = state_ == nullptr;
  SFS_ASSIGN_OR_RETURN(std::optional<Bytes> packs, catalog_.GetLocalState(kPacksKey));
  if (packs) {
    auto decoded = DecodePacks(*packs);
    if (decoded.ok()) {
      stored_packs_ = std::move(*decoded);
    } else {
      log::Warn("checkpoint packs: {}; gc cannot delete older checkpoints",
                decoded.status().ToString());
    }
  }
  SFS_ASSIGN_OR_RETURN(std::optional<Bytes> pending, catalog_.GetLocalState(kPendingKey));
  if (pending) {
    auto decoded = DecodeLocalPending(*pending);
    if (!decoded.ok() || decoded->open || decoded->need_base) {
      // A checkpointer that did not close: changes it made may be in no delta.
      need_base_ = true;
    } else {
      for (auto& [last, changeset] : decoded->deltas) {
        pending_.push_back(PendingDelta{last, std::move(changeset)});
      }
    }
  }
  if (!need_base_) {
    // Anything that changed the journal unseen also makes the deltas incomplete.
    SFS_ASSIGN_OR_RETURN(uint64_t last, catalog_.LastChange());
    uint64_t expected =
        pending_.empty() ? state_->manifest.last_change : pending_.back().last_change;
    if (last != expected) need_base_ = true;
  }
  if (need_base_) pending_.clear();
  if (state_) {
    MutexLock lock(&info_mu_);
    info_.head_sequence = state_->head_sequence;
    info_.last_change = state_->manifest.last_change;
    info_.base_bytes = state_->manifest.base_size;
    info_.deltas = state_->manifest.deltas.size();
    for (const CheckpointDelta& d : state_->manifest.deltas) info_.delta_bytes += d.object.size;
    packs_in_use_ = CheckpointPacks(*state_);
    for (const PackId& id : state_->previous_packs) {
      if (std::find(packs_in_use_.begin(), packs_in_use_.end(), id) == packs_in_use_.end()) {
        packs_in_use_.push_back(id);
      }
    }
  }
  return Status::Ok();
}

Status Checkpointer::SavePending(bool open) {
  LocalPending p;
  p.open = open;
  p.need_base = need_base_ || pending_base_.has_value();
  if (!p.need_base) {
    for (const PendingDelta& d : pending_) p.deltas.emplace_back(d.last_change, d.changeset);
  }
  return catalog_.SetLocalState(kPendingKey, EncodeLocalPending(p));
}

uint64_t Checkpointer::NowUs() const {
  if (options_.clock_us) return options_.clock_us();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Result<CheckpointInfo> Checkpointer::Sync() {
  MutexLock run(&run_mu_);
  if (closed_) return Status::InvalidArgument("the checkpointer is closed");
  return SyncLocked(false);
}

Result<CheckpointInfo> Checkpointer::Rebase() {
  MutexLock run(&run_mu_);
  if (closed_) return Status::InvalidArgument("the checkpointer is closed");
  need_base_ = true;
  fresh_base_ = true;
  auto r = SyncLocked(false);
  fresh_base_ = false;
  return r;
}

std::vector<PackRecord> Checkpointer::NewestPacks() {
  MutexLock run(&run_mu_);
  if (!state_) return {};
  std::vector<PackId> ids = CheckpointPacks(*state_);
  std::vector<PackRecord> out;
  for (const PackRecord& p : stored_packs_) {
    if (std::find(ids.begin(), ids.end(), p.id) != ids.end()) out.push_back(p);
  }
  return out;
}

bool Checkpointer::HasPending() {
  MutexLock run(&run_mu_);
  return need_base_ || pending_base_.has_value() || !pending_.empty();
}

CheckpointInfo Checkpointer::last() const {
  MutexLock lock(&info_mu_);
  return info_;
}

std::vector<PackId> Checkpointer::PacksInUse() const {
  MutexLock lock(&info_mu_);
  return packs_in_use_;
}

Result<CheckpointInfo> Checkpointer::SyncLocked(bool only_changes) {
  const bool tracked = catalog_.HasTrackedChanges();
  if (!tracked && !pending_base_ && pending_.empty() && (only_changes || !need_base_)) {
    return last();
  }
  // What to store: a base, or the deltas since the last checkpoint.
  if (!pending_base_ && !need_base_ && tracked) {
    SFS_ASSIGN_OR_RETURN(Catalog::TableChanges delta, catalog_.TakeTrackedChanges());
    if (!delta.changeset.empty()) {
      pending_.push_back(PendingDelta{delta.last_change, std::move(delta.changeset)});
    }
  }
  bool base = need_base_ || state_ == nullptr;
  if (!base && !pending_base_) {
    uint64_t delta_bytes = 0;
    size_t deltas = state_->manifest.deltas.size() + pending_.size();
    for (const CheckpointDelta& d : state_->manifest.deltas) delta_bytes += d.object.size;
    for (const PendingDelta& d : pending_) delta_bytes += d.changeset.size();
    base = deltas > static_cast<size_t>(options_.max_deltas) ||
           static_cast<double>(delta_bytes) >
               options_.compact_ratio * static_cast<double>(state_->manifest.base_size);
  }
  if (base && !pending_base_) {
    SFS_ASSIGN_OR_RETURN(Catalog::TableChanges snapshot, catalog_.TakeSnapshot());
    pending_base_ = PendingDelta{snapshot.last_change, std::move(snapshot.changeset)};
    pending_.clear();
    need_base_ = false;
  } else if (pending_base_ && tracked) {
    SFS_ASSIGN_OR_RETURN(Catalog::TableChanges delta, catalog_.TakeTrackedChanges());
    if (!delta.changeset.empty()) {
      pending_.push_back(PendingDelta{delta.last_change, std::move(delta.changeset)});
    }
  }
  if (!pending_base_ && pending_.empty()) return last();  // the changes cancelled out

  SFS_ASSIGN_OR_RETURN(auto writer, ObjectWriter::Create(peers_, keys_, config_, options_));
  auto stored = StoreLocked(*writer);
  // The packs of a try that failed are garbage; remembered, gc finds them.
  Status remembered = RememberPacks(writer->TakePacks());
  if (stored.ok() && !remembered.ok()) return remembered;
  return stored;
}

Result<CheckpointInfo> Checkpointer::StoreLocked(ObjectWriter& writer) {
  // Store the objects: base and deltas (the base deduplicated against the previous base) in
  // shared packs, then the base index, then the manifest; small ones inline.
  CheckpointManifest m;
  std::vector<PackId> base_packs;
  std::optional<StoredObject> base_object;
  std::vector<ByteSpan> objects;
  if (pending_base_) {
    SFS_ASSIGN_OR_RETURN(std::optional<Bytes> old_index, catalog_.GetLocalState(kBaseIndexKey));
    // A rebase stores every chunk anew: the old base's packs are what it replaces.
    if (old_index && !fresh_base_) {
      auto old = DecodeStoredObject(*old_index);
      if (old.ok()) writer.AddKnown(*old);
    }
    objects.push_back(pending_base_->changeset);
  } else {
    m = state_->manifest;
    base_packs = state_->base_packs;
  }
  for (const PendingDelta& d : pending_) objects.push_back(d.changeset);
  SFS_ASSIGN_OR_RETURN(std::vector<StoredObject> objects_stored,
                       writer.StoreMany(objects, options_.inline_object_max));
  size_t at = 0;
  if (pending_base_) {
    base_object = std::move(objects_stored[at++]);
    SFS_ASSIGN_OR_RETURN(
        m.base_index, writer.Store(EncodeStoredObject(*base_object), options_.inline_object_max));
    m.base_change = pending_base_->last_change;
    m.base_size = pending_base_->changeset.size();
    base_packs = PacksOf(*base_object);
  }
  m.schema = Catalog::SchemaVersion();
  for (const PendingDelta& d : pending_) {
    m.deltas.push_back(CheckpointDelta{d.last_change, std::move(objects_stored[at++])});
  }
  m.last_change = m.deltas.empty() ? m.base_change : m.deltas.back().last_change;
  const Bytes manifest = EncodeCheckpointManifest(m);
  SFS_ASSIGN_OR_RETURN(StoredObject manifest_ref,
                       writer.Store(manifest, options_.inline_manifest_max));

  // The head, on every node.
  DriveHead head;
  head.sequence =
      std::max({last_tried_sequence_ + 1, state_ ? state_->head_sequence + 1 : 1, NowUs()});
  last_tried_sequence_ = head.sequence;
  head.schema = m.schema;
  head.last_change = m.last_change;
  head.config = config_;
  head.manifest = manifest_ref;
  if (state_) head.previous = state_->manifest_ref;
  auto value = EncodeDriveHead(keys_.catalog_encryption, options_.seal.cipher, head);
  if (!value.ok() && value.status().code() == Code::kOutOfRange && manifest_ref.bytes) {
    // No room for the manifest in the head: it goes to a pack.
    SFS_ASSIGN_OR_RETURN(manifest_ref, writer.Store(manifest, 0));
    head.manifest = manifest_ref;
    value = EncodeDriveHead(keys_.catalog_encryption, options_.seal.cipher, head);
  }
  if (!value.ok() && value.status().code() == Code::kOutOfRange && head.previous) {
    // No room for the fallback: the head alone still restores the drive.
    head.previous.reset();
    value = EncodeDriveHead(keys_.catalog_encryption, options_.seal.cipher, head);
  }
  if (!value.ok()) return value.status();
  SFS_ASSIGN_OR_RETURN(Bytes record, SignSlotRecord(owner_, head.sequence, *value));
  const size_t n = peers_.size();
  std::vector<Status> put(n);
  {
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      threads.emplace_back([&, i] { put[i] = peers_.peer(i).PutSlot(record); });
    }
    for (auto& t : threads) t.join();
  }
  size_t stored = 0;
  std::string errors;
  for (size_t i = 0; i < n; ++i) {
    if (put[i].ok()) {
      ++stored;
    } else {
      errors += (errors.empty() ? "" : "; ") + peers_.peer(i).name() + ": " + put[i].ToString();
    }
  }
  if (!HeadStoredEnough(stored, n)) {
    return Status::Unavailable("the drive head reached " + std::to_string(stored) + " of " +
                               std::to_string(n) + " nodes, fewer than a majority (" + errors +
                               ")");
  }
  if (stored < n) log::Warn("drive head {} not on every node: {}", head.sequence, errors);

  // Stored: it becomes the checkpoint to build on, and the one before becomes the fallback.
  auto next = std::make_unique<State>();
  next->head_sequence = head.sequence;
  next->manifest = std::move(m);
  next->manifest_ref = std::move(manifest_ref);
  next->base_packs = std::move(base_packs);
  if (state_) next->previous_packs = CheckpointPacks(*state_);
  CheckpointInfo info;
  info.head_sequence = next->head_sequence;
  info.last_change = next->manifest.last_change;
  info.base = pending_base_.has_value();
  info.base_bytes = next->manifest.base_size;
  info.deltas = next->manifest.deltas.size();
  for (const CheckpointDelta& d : next->manifest.deltas) info.delta_bytes += d.object.size;
  info.stored_bytes = writer.packed_bytes();
  info.heads_stored = stored;
  std::vector<PackId> in_use = CheckpointPacks(*next);
  for (const PackId& id : next->previous_packs) {
    if (std::find(in_use.begin(), in_use.end(), id) == in_use.end()) in_use.push_back(id);
  }
  state_ = std::move(next);
  pending_base_.reset();
  pending_.clear();
  {
    MutexLock lock(&info_mu_);
    info_ = info;
    packs_in_use_ = std::move(in_use);
  }
  if (base_object) {
    SFS_RETURN_IF_ERROR(catalog_.SetLocalState(kBaseIndexKey, EncodeStoredObject(*base_object)));
  }
  SFS_RETURN_IF_ERROR(catalog_.SetLocalState(kStateKey, EncodeLocalState(*state_)));
  SFS_RETURN_IF_ERROR(SavePending(!closed_));
  return info;
}

Status Checkpointer::RememberPacks(std::vector<PackRecord> packs) {
  if (packs.empty()) return Status::Ok();
  for (PackRecord& p : packs) stored_packs_.push_back(std::move(p));
  return catalog_.SetLocalState(kPacksKey, EncodePacks(stored_packs_));
}

Result<size_t> Checkpointer::DropUnusedPacks(const std::function<Status(const PackRecord&)>& drop) {
  MutexLock run(&run_mu_);
  const std::vector<PackId> in_use = PacksInUse();
  std::vector<PackRecord> kept;
  size_t dropped = 0;
  Status status;
  for (PackRecord& p : stored_packs_) {
    if (status.ok() && std::find(in_use.begin(), in_use.end(), p.id) == in_use.end()) {
      status = drop(p);
      if (status.ok()) {
        ++dropped;
        continue;
      }
    }
    kept.push_back(std::move(p));
  }
  stored_packs_ = std::move(kept);
  if (dropped > 0) {
    SFS_RETURN_IF_ERROR(catalog_.SetLocalState(kPacksKey, EncodePacks(stored_packs_)));
  }
  if (!status.ok()) return status;
  return dropped;
}

Status Checkpointer::Close() {
  {
    MutexLock lock(&info_mu_);
    stop_ = true;
  }
  stop_cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
  MutexLock run(&run_mu_);
  if (closed_) return Status::Ok();
  Status result;
  if (options_.on_close) {
    auto r = SyncLocked(true);
    if (!r.ok()) result = r.status();
  }
  closed_ = true;
  // What is left waits on local disk for the next Start.
  if (!pending_base_ && !need_base_ && catalog_.HasTrackedChanges()) {
    auto delta = catalog_.TakeTrackedChanges();
    if (!delta.ok()) {
      need_base_ = true;
    } else if (!delta->changeset.empty()) {
      pending_.push_back(PendingDelta{delta->last_change, std::move(delta->changeset)});
    }
  }
  Status saved = SavePending(false);
  return result.ok() ? saved : result;
}

void Checkpointer::Loop() {
  using Clock = std::chrono::steady_clock;
  bool seen = false;  // a change waits; first_seen says since when
  Clock::time_point first_seen{};
  Clock::time_point retry_at{};
  std::chrono::milliseconds backoff = options_.retry;
  while (true) {
    {
      MutexLock lock(&info_mu_);
      stop_cv_.WaitUntil(&info_mu_, Clock::now() + options_.poll,
                         [this]() REQUIRES(info_mu_) { return stop_; });
      if (stop_) return;
    }
    const auto now = Clock::now();
    if (!catalog_.HasTrackedChanges() && !HasPending()) {
      seen = false;
      continue;
    }
    if (!seen) {
      seen = true;
      first_seen = now;
    }
    // A change came at most one poll before it was seen, and the store starts at most one
    // poll after the deadline.
    const auto deadline = first_seen + options_.max_delay - 2 * options_.poll;
    if (now < deadline || now < retry_at) continue;
    auto r = Sync();
    if (r.ok()) {
      seen = false;
      backoff = options_.retry;
    } else {
      log::Warn("checkpoint: {} (next try in {} ms)", r.status().ToString(), backoff.count());
      retry_at = now + backoff;
      backoff = std::min(backoff * 2, options_.max_delay);
    }
  }
}

// Restore. ----------------------------------------------------------------------------------

namespace {

struct Restored {
  CheckpointManifest manifest;
  StoredObject base_object;
};

Result<Restored> LoadCheckpoint(ChunkReader& reader, const StoredObject& manifest_ref,
                                Catalog& catalog) {
  Restored out;
  SFS_ASSIGN_OR_RETURN(Bytes manifest, ReadObject(reader, manifest_ref));
  SFS_ASSIGN_OR_RETURN(out.manifest, DecodeCheckpointManifest(manifest));
  if (out.manifest.schema > Catalog::SchemaVersion()) {
    return Status::NotSupported(
        "the checkpoint has catalog schema " + std::to_string(out.manifest.schema) +
        "; this shardfs knows up to " + std::to_string(Catalog::SchemaVersion()));
  }
  SFS_ASSIGN_OR_RETURN(Bytes index, ReadObject(reader, out.manifest.base_index));
  SFS_ASSIGN_OR_RETURN(out.base_object, DecodeStoredObject(index));
  SFS_ASSIGN_OR_RETURN(Bytes base, ReadObject(reader, out.base_object));
  if (base.size() != out.manifest.base_size) return Malformed("the checkpoint's base");
  std::vector<Bytes> deltas;
  for (const CheckpointDelta& d : out.manifest.deltas) {
    SFS_ASSIGN_OR_RETURN(Bytes delta, ReadObject(reader, d.object));
    deltas.push_back(std::move(delta));
  }
  std::vector<ByteSpan> spans(deltas.begin(), deltas.end());
  SFS_RETURN_IF_ERROR(catalog.RestoreFromCheckpoint(base, spans));
  return out;
}

}  // namespace

Result<RestoreResult> RestoreCatalog(const RestoreOptions& options) {
  if (std::filesystem::exists(options.catalog_path)) {
    return Status::AlreadyExists("catalog " + options.catalog_path + " exists");
  }
  const crypto::DriveKeys keys = crypto::DriveKeys::Derive(options.master);
  const crypto::SigningKey owner = crypto::SigningKey::ForOwner(options.master);
  RestoreResult result;
  std::map<std::string, std::shared_ptr<Peer>> connected;  // by address; null: unreachable
  auto peer_of = [&](const DriveNode& node) -> std::shared_ptr<Peer> {
    auto it = connected.find(node.address);
    if (it != connected.end()) return it->second;
    std::shared_ptr<Peer> peer;
    if (options.connect) {
      auto p = options.connect(node);
      if (p.ok()) {
        peer = *p;
      } else {
        result.skipped.push_back("node " + node.address + ": " + p.status().ToString());
      }
    }
    connected[node.address] = peer;
    return peer;
  };

  // Every head that verifies, from the seeds and the nodes their heads list.
  std::vector<DriveHead> heads;
  std::set<std::string> asked;
  size_t nodes_asked = 0;
  auto read_head = [&](const DriveNode& node) {
    if (!asked.insert(node.address).second) return;
    ++nodes_asked;
    std::shared_ptr<Peer> peer = peer_of(node);
    if (!peer) return;
    auto slot = peer->GetSlot();
    if (!slot.ok()) {
      result.skipped.push_back("head on " + node.address + ": " + slot.status().ToString());
      return;
    }
    if (!slot->has_value()) return;
    auto record = VerifySlotRecord(**slot);
    if (record.ok() && record->owner != owner.public_key()) {
      record = Status::PermissionDenied("signed by another owner");
    }
    if (!record.ok()) {
      result.skipped.push_back("head on " + node.address + ": " + record.status().ToString());
      return;
    }
    auto head = DecodeDriveHead(keys.catalog_encryption, record->sequence, record->value);
    if (!head.ok()) {
      result.skipped.push_back("head " + std::to_string(record->sequence) + " on " + node.address +
                               ": " + head.status().ToString());
      return;
    }
    heads.push_back(std::move(*head));
  };
  for (const DriveNode& seed : options.seeds) read_head(seed);
  for (size_t i = 0; i < heads.size(); ++i) {
    const std::vector<DriveNode> nodes = heads[i].config.nodes;
    for (const DriveNode& n : nodes) read_head(n);
  }
  result.heads_found = heads.size();
  if (heads.empty()) {
    std::string why;
    for (const std::string& s : result.skipped) why += "; " + s;
    return Status::NotFound("no drive head that verifies under this key on the " +
                            std::to_string(nodes_asked) +
                            " node(s) asked (a wrong recovery phrase finds none, and a drive "
                            "that never stored a checkpoint has none)" +
                            why);
  }
  std::stable_sort(heads.begin(), heads.end(),
                   [](const DriveHead& a, const DriveHead& b) { return a.sequence > b.sequence; });

  CatalogOptions co;
  co.path = options.catalog_path;
  co.sync = options.sync;
  co.holder = "shardfs restore";
  SFS_ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, Catalog::Open(co));
  const ChunkSealer sealer(keys.chunk_encryption, ChunkSealOptions{});
  std::vector<Bytes> tried;
  uint64_t last_sequence = 0;
  for (const DriveHead& head : heads) {
    if (head.sequence == last_sequence) continue;  // the same head from another node
    last_sequence = head.sequence;
    std::vector<std::shared_ptr<Peer>> peers;
    for (const DriveNode& n : head.config.nodes) {
      std::shared_ptr<Peer> p = peer_of(n);
      if (!p) p = std::make_shared<UnreachablePeer>(n.address);
      peers.push_back(std::move(p));
    }
    PeerSet peer_set(head.config.nodes, peers);
    ChunkReader reader(peer_set, sealer);
    std::vector<std::pair<const StoredObject*, bool>> candidates = {{&head.manifest, false}};
    if (head.previous) candidates.emplace_back(&*head.previous, true);
    for (const auto& [ref, fallback] : candidates) {
      Bytes key = EncodeStoredObject(*ref);
      if (std::find(tried.begin(), tried.end(), key) != tried.end()) continue;
      tried.push_back(key);
      const std::string name = "checkpoint of head " + std::to_string(head.sequence) +
                               (fallback ? " (its previous one)" : "");
      auto restored = LoadCheckpoint(reader, *ref, *catalog);
      if (!restored.ok()) {
        result.skipped.push_back(name + ": " + restored.status().ToString());
        continue;
      }
      // Later checkpoints of this catalog build on the one restored.
      LocalState state;
      state.head_sequence = head.sequence;
      state.manifest = restored->manifest;
      state.manifest_ref = *ref;
      state.base_packs = PacksOf(restored->base_object);
      SFS_RETURN_IF_ERROR(catalog->SetLocalState(kStateKey, EncodeLocalState(state)));
      SFS_RETURN_IF_ERROR(
          catalog->SetLocalState(kBaseIndexKey, EncodeStoredObject(restored->base_object)));
      SFS_RETURN_IF_ERROR(catalog->SetLocalState(kPendingKey, EncodeLocalPending({})));
      // Its packs become garbage once newer checkpoints replace it.
      std::vector<PackRecord> packs;
      AddPackRecords(*ref, &packs);
      AddPackRecords(restored->manifest.base_index, &packs);
      AddPackRecords(restored->base_object, &packs);
      for (const CheckpointDelta& d : restored->manifest.deltas) AddPackRecords(d.object, &packs);
      SFS_RETURN_IF_ERROR(catalog->SetLocalState(kPacksKey, EncodePacks(packs)));
      result.config = head.config;
      result.head_sequence = head.sequence;
      SFS_ASSIGN_OR_RETURN(result.last_change, catalog->LastChange());
      return result;
    }
  }
  std::string why;
  for (const std::string& s : result.skipped) why += (why.empty() ? "" : "; ") + s;
  return Status::Corruption("found " + std::to_string(heads.size()) +
                            " drive head(s), but no checkpoint could be read and applied: " + why);
}

}  // namespace shardfs::backend
