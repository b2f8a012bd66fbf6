// Checkpoints of the drive's catalog, and restoring a catalog from them (DESIGN.md section 5;
// docs/format.md, "Checkpoint object", "Checkpoint manifest", "Drive head").
//
// A checkpoint is a base (every row of the drive tables, as a changeset of inserts) and the
// deltas since it (the changesets of the drive tables between two checkpoints). Each is an
// object: bytes that go through the write pipeline (chunked, so a new base dedups against the
// previous one; sealed; packed; Reed-Solomon coded) and UploadPack, like file data, but in
// packs of their own that the catalog does not list. A manifest object names the base (through
// a base index object, so a small change costs a small manifest however big the catalog is)
// and the deltas. The drive's head names the manifest: it is encrypted under a key derived
// from the master key, signed as a slot record with a growing sequence number, and put to the
// slot of every node of the drive; it also holds the drive's config (so a restore that starts
// from one node finds the others) and the previous checkpoint's manifest as a fallback.
//
// The Checkpointer stores a checkpoint at most `max_delay` after a change (a background
// thread), on Sync(), and (optionally) when the drive closes. A delta replaces a base until
// the deltas grow past a fraction of the base or a count; then the next checkpoint is a new
// base. Changes not yet in a stored checkpoint are kept: in memory while the drive is open,
// in the catalog's local state after a clean close; after a crash (or anything else that
// changed the catalog unseen) the next checkpoint is a base.
//
// Thread safety: a Checkpointer's methods may be called from many threads; checkpoints are
// stored one at a time. The free functions are thread-safe.

#ifndef SHARDFS_BACKEND_CHECKPOINT_H_
#define SHARDFS_BACKEND_CHECKPOINT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/catalog.h"
#include "backend/chunk_codec.h"
#include "backend/chunker.h"
#include "backend/drive_config.h"
#include "backend/peer.h"
#include "backend/peer_set.h"
#include "base/bytes.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "crypto/keys.h"
#include "crypto/sign.h"

namespace shardfs::backend {

// Format versions (docs/format.md): do not renumber.
inline constexpr uint8_t kCheckpointManifestVersion = 2;
inline constexpr uint8_t kDriveHeadVersion = 2;
// The largest object a checkpoint stores (SQLite applies changesets of at most 2^31 - 1 bytes).
inline constexpr uint64_t kMaxCheckpointObject = (uint64_t{1} << 31) - 1;

// The largest object carried inline, inside the record that names it (format limit).
inline constexpr size_t kMaxInlineObject = 6144;

// Bytes stored through the pack path: its chunks in order, and the packs that hold them; or,
// for a small object, the bytes themselves.
struct StoredObject {
  uint64_t size = 0;                // the plaintext's bytes: the chunks' sizes add up to it
  std::vector<ChunkRecord> chunks;  // in order; chunk.pack is one of `packs`
  std::vector<PackRecord> packs;
  std::optional<Bytes> bytes;  // an inline object's bytes (size of them; no chunks, no packs)

  friend bool operator==(const StoredObject&, const StoredObject&) = default;
};

Bytes EncodeStoredObject(const StoredObject& object);
// Corruption for a malformed or inconsistent encoding (bad counts, sizes, ciphers, codecs, or
// a chunk in a pack the object does not list).
Result<StoredObject> DecodeStoredObject(ByteSpan encoded);

struct CheckpointDelta {
  uint64_t last_change = 0;  // the journal's last sequence number it reaches
  StoredObject object;       // the changeset

  friend bool operator==(const CheckpointDelta&, const CheckpointDelta&) = default;
};

// What one checkpoint is made of.
struct CheckpointManifest {
  int schema = 0;                       // the catalog schema of the changesets
  uint64_t last_change = 0;             // the journal's last sequence number the checkpoint reaches
  uint64_t base_change = 0;             // ... that the base reaches
  uint64_t base_size = 0;               // the base changeset's bytes
  StoredObject base_index;              // an object holding the base's StoredObject, encoded
  std::vector<CheckpointDelta> deltas;  // in the order they apply

  friend bool operator==(const CheckpointManifest&, const CheckpointManifest&) = default;
};

Bytes EncodeCheckpointManifest(const CheckpointManifest& manifest);
// Corruption for a malformed manifest; NotSupported for a newer version.
Result<CheckpointManifest> DecodeCheckpointManifest(ByteSpan encoded);

// The drive's head: the value of its slot.
struct DriveHead {
  uint64_t sequence = 0;     // the slot record's sequence
  int schema = 0;            // the catalog schema
  uint64_t last_change = 0;  // as the manifest's
  DriveConfig config;
  StoredObject manifest;
  std::optional<StoredObject> previous;  // the manifest before, a fallback

  friend bool operator==(const DriveHead&, const DriveHead&) = default;
};

// The encrypted slot value of `head` (under a key derived from `catalog_key`, the catalog
// encryption sub-key). OutOfRange if it would exceed kMaxSlotValue.
Result<Bytes> EncodeDriveHead(const crypto::SecretKey& catalog_key, crypto::Cipher cipher,
                              const DriveHead& head);
// Decrypts and parses a slot value whose record had `sequence`. Corruption if it does not
// authenticate (another key, another sequence, damage) or is malformed; NotSupported for a
// newer version.
Result<DriveHead> DecodeDriveHead(const crypto::SecretKey& catalog_key, uint64_t sequence,
                                  ByteSpan value);

// The one rule for when a head counts as stored: on a majority of the drive's nodes, so any
// majority a restore reaches holds it (docs/architecture.md, "Checkpoints").
bool HeadStoredEnough(size_t stored, size_t nodes);

struct CheckpointOptions {
  // A committed change is in a stored checkpoint at most this long after (the background
  // thread's deadline). Zero: no background thread; checkpoints only on Sync and close.
  std::chrono::milliseconds max_delay{30000};
  // How often the background thread looks for changes.
  std::chrono::milliseconds poll{1000};
  // After a failed checkpoint the thread waits this long before trying again, doubling with
  // each further failure up to max_delay.
  std::chrono::milliseconds retry{2000};
  // The next checkpoint is a new base when the deltas since the base add up to more than this
  // fraction of the base's bytes ...
  double compact_ratio = 0.5;
  // ... or there would be more than this many.
  int max_deltas = 64;
  // Store a checkpoint at Close if there are changes not in one yet (the CLI, whose processes
  // are short, turns this on). Off: they wait on local disk for the next open.
  bool on_close = false;
  // Chunk sizes of checkpoint objects: smaller than files' so a new base dedups well against
  // the previous one. The seed is ignored (the drive's is used).
  ChunkerParams chunker{16 * 1024, 64 * 1024, 256 * 1024, 0};
  // Objects of at most this many bytes are carried inside the manifest that names them (a
  // base index, a small base or delta) rather than stored in packs ...
  size_t inline_object_max = 4096;
  // ... and a manifest of at most this many bytes inside the head, if the head still fits in a
  // slot. So a checkpoint of a small catalog or change stores no pack but its data's. Both at
  // most kMaxInlineObject; zero stores every object in packs.
  size_t inline_manifest_max = kMaxInlineObject;
  // Pack size of checkpoint objects.
  size_t pack_target_size = 16u << 20;
  // Cipher and compression of checkpoint chunks.
  ChunkSealOptions seal;
  // Microseconds since the epoch, for head sequences; the real clock if empty.
  std::function<uint64_t()> clock_us;
};

// What a stored checkpoint is.
struct CheckpointInfo {
  uint64_t head_sequence = 0;  // 0: none stored yet
  uint64_t last_change = 0;    // the journal's last sequence number it reaches
  bool base = false;           // this checkpoint stored a new base
  uint64_t base_bytes = 0;     // the base changeset's size
  uint64_t delta_bytes = 0;    // the deltas' sizes, added up
  size_t deltas = 0;
  // Plaintext bytes this checkpoint stored (new objects, manifest included; chunks of a base
  // that dedup against the previous base are not counted).
  uint64_t stored_bytes = 0;
  size_t heads_stored = 0;  // nodes that took the head
};

class ObjectWriter;  // checkpoint.cc

class Checkpointer {
 public:
  // Starts checkpointing `catalog` (recording its changes from now) to the nodes of `peers`,
  // with the keys of `master`, under `config` (which goes into every head). Loads the state of
  // earlier checkpoints from the catalog's local state. Errors of the catalog.
  // REQUIRES: catalog and peers outlive the checkpointer; peers.node(i) is config.nodes[i].
  static Result<std::unique_ptr<Checkpointer>> Start(Catalog& catalog, PeerSet& peers,
                                                     const crypto::MasterKey& master,
                                                     DriveConfig config,
                                                     CheckpointOptions options = {});
  // Close(), its error logged.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Stores a checkpoint now, unless the last stored one is current, and returns when its head
  // is on enough nodes (HeadStoredEnough). Unavailable if the objects or the head could not be
  // stored (the changes stay pending and go into the next try); errors of the catalog.
  Result<CheckpointInfo> Sync();

  // Stores a new base checkpoint now (a snapshot of the catalog on the nodes placement picks
  // now), whatever changed: for a checkpoint whose packs lost healthy shards (repair cannot
  // move them: the head names their nodes). Errors as Sync.
  Result<CheckpointInfo> Rebase();
  // The packs of the newest stored checkpoint, with their shards' nodes (none before the
  // first).
  std::vector<PackRecord> NewestPacks();

  // Stops the background thread; with options.on_close, stores a checkpoint if there are
  // changes; keeps the changes not in a stored checkpoint in the catalog's local state for the
  // next Start. Later calls do nothing and return OK.
  Status Close();

  // The last checkpoint stored (head_sequence 0 if none).
  CheckpointInfo last() const;
  // True if changes wait for a checkpoint.
  bool HasPending();

  // Packs that the kept checkpoints (the newest stored one and the one before it, its
  // fallback) use: gc must not delete their shards.
  std::vector<PackId> PacksInUse() const;

  // Hands every pack this checkpointer (or an earlier one on this catalog) stored that no kept
  // checkpoint uses any more (older checkpoints, tries whose head was not stored) to `drop`,
  // which queues its shards for deletion, and forgets those `drop` took. No checkpoint is
  // stored meanwhile. Returns how many were dropped; the first error of `drop` or the catalog.
  Result<size_t> DropUnusedPacks(const std::function<Status(const PackRecord&)>& drop);

 private:
  struct State;
  struct PendingDelta {
    uint64_t last_change = 0;
    Bytes changeset;
  };
  Checkpointer(Catalog& catalog, PeerSet& peers, const crypto::MasterKey& master,
               DriveConfig config, CheckpointOptions options);
  Status Load() REQUIRES(run_mu_);
  Result<CheckpointInfo> SyncLocked(bool only_changes) REQUIRES(run_mu_);
  Status SavePending(bool open) REQUIRES(run_mu_);
  // Stores the pending base or deltas through `writer`, then the head.
  Result<CheckpointInfo> StoreLocked(ObjectWriter& writer) REQUIRES(run_mu_);
  // Adds packs stored for a checkpoint (stored or not) to those kept in the local state.
  Status RememberPacks(std::vector<PackRecord> packs) REQUIRES(run_mu_);
  void Loop();
  uint64_t NowUs() const;

  Catalog& catalog_;
  PeerSet& peers_;
  const crypto::DriveKeys keys_;
  const crypto::SigningKey owner_;
  const DriveConfig config_;
  const CheckpointOptions options_;

  // Held while a checkpoint is taken and stored, and by Close.
  Mutex run_mu_;
  std::unique_ptr<State> state_ GUARDED_BY(run_mu_);  // the last stored checkpoint, or null
  bool need_base_ GUARDED_BY(run_mu_) = false;
  // Set by Rebase: the base shares no chunk with the one before.
  bool fresh_base_ GUARDED_BY(run_mu_) = false;
  std::optional<PendingDelta> pending_base_ GUARDED_BY(run_mu_);
  std::vector<PendingDelta> pending_ GUARDED_BY(run_mu_);
  uint64_t last_tried_sequence_ GUARDED_BY(run_mu_) = 0;
  bool closed_ GUARDED_BY(run_mu_) = false;
  // Every checkpoint pack stored from this catalog and not yet dropped.
  std::vector<PackRecord> stored_packs_ GUARDED_BY(run_mu_);

  // For readers of last() and PacksInUse, and the thread's stop flag.
  mutable Mutex info_mu_;
  CheckpointInfo info_ GUARDED_BY(info_mu_);
  std::vector<PackId> packs_in_use_ GUARDED_BY(info_mu_);
  bool stop_ GUARDED_BY(info_mu_) = false;
  CondVar stop_cv_;
  std::thread thread_;
};

// Restoring a catalog on a machine that never saw the drive.
struct RestoreOptions {
  crypto::MasterKey master;
  // The nodes to read heads from first (their ids may be zero: unknown).
  std::vector<DriveNode> seeds;
  // Reaches a node (a seed, or one a head lists). Errors are skipped over.
  std::function<Result<std::shared_ptr<Peer>>(const DriveNode&)> connect;
  // The catalog to create (it must not exist).
  std::string catalog_path;
  // fsync the catalog's commits. Only tests turn it off.
  bool sync = true;
};

struct RestoreResult {
  DriveConfig config;          // from the head used
  uint64_t head_sequence = 0;  // the head used
  uint64_t last_change = 0;    // the journal's last sequence number restored
  size_t heads_found = 0;      // valid heads read (one per node that had one)
  // Why newer heads or checkpoints were passed over, newest first.
  std::vector<std::string> skipped;
};

// Reads the heads of the seeds and of the nodes their heads list, and rebuilds the catalog at
// options.catalog_path from the newest checkpoint that verifies, falling back to older heads
// and each head's previous checkpoint. The new catalog's local state is set so that later
// checkpoints continue from the one restored. NotFound if no node holds a head that verifies
// under this key (a wrong key finds none); Corruption if heads were found but no checkpoint
// could be read and applied (the message says why for each); AlreadyExists if the catalog
// exists. The caller removes the catalog file on error.
Result<RestoreResult> RestoreCatalog(const RestoreOptions& options);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CHECKPOINT_H_
