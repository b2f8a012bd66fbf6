// A drive: the engine's inode API over the catalog, the local staging area, the write
// pipeline, the uploader and the read path (DESIGN.md sections 3 and 4). FUSE, the CLI and
// the companion API are faces on it.
//
// Writes (Write, a truncate through SetAttr) land in the staging area and do not wait for the
// network, as long as the area holds less than its limit of bytes not yet stored
// (DriveOptions::staging_limit); a write that would pass it waits for uploads to make room,
// and fails with NoSpace if they cannot. Flush (on close) freezes what a file got so far, and
// so does a write that takes what a file got past UploaderOptions::freeze_bytes; the uploader
// thread takes frozen layers of many files together, cuts, seals and packs them (small files
// share packs), stores each pack's k + m shards on distinct nodes, and commits all their files
// in one catalog transaction; only then are the layers dropped. Fsync and Sync wait for that.
// StoreFiles is the bulk path of `shardfs put`: whole files from memory (mapped source files),
// packed together and committed in one transaction per batch, with new files named only in
// that transaction, so a crash leaves each file whole or absent.
//
// Read takes each chunk it needs from the chunk cache, or from the data shards holding it
// (range requests, hedged on a pool: ChunkReader), rebuilds a range from any k shards when
// some are missing, slow or wrong, and checks every chunk by opening it: a node that answers
// with wrong bytes is read around and remembered. Sequential reads of a file fetch the next
// chunks into the cache in the background. The nodes' health is loaded from the catalog at
// Open and saved periodically and at close; nodes backed off after failures are probed in the
// background, so they are used again as soon as they answer.
//
// The invariant: the catalog never points at data that is not stored, and nothing a write
// accepted is dropped locally before it is stored (docs/architecture.md, "The drive").
//
// Thread safety: all methods may be called from many threads at once.

#ifndef SHARDFS_BACKEND_DRIVE_H_
#define SHARDFS_BACKEND_DRIVE_H_

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/auditor.h"
#include "backend/catalog.h"
#include "backend/checkpoint.h"
#include "backend/chunk_cache.h"
#include "backend/chunk_codec.h"
#include "backend/chunk_reader.h"
#include "backend/coordinates.h"
#include "backend/drive_config.h"
#include "backend/membership.h"
#include "backend/pack_pipeline.h"
#include "backend/peer.h"
#include "backend/peer_set.h"
#include "backend/repairer.h"
#include "backend/staging.h"
#include "base/thread_annotations.h"
#include "base/thread_pool.h"
#include "crypto/keys.h"

namespace shardfs::backend {

struct UploaderOptions {
  // A file open for writing whose writes stop for this long is frozen and queued, as if closed.
  std::chrono::milliseconds idle_freeze{3000};
  // A file's open layer with more than this many bytes written is frozen by the write that
  // takes it past that, and the uploader woken; the file's next write starts a new layer. So a
  // file kept open while it is written (dd conv=fsync, a download) uploads as it grows, not
  // all after its close. 0: never.
  uint64_t freeze_bytes = uint64_t{64} << 20;
  // Queued layers wait for more to fill a pack until the queue has been quiet this long...
  std::chrono::milliseconds quiet{500};
  // ...or until the pipeline's pack target is queued.
  // Bytes of layers taken into one upload batch (one catalog commit); one larger layer is
  // taken alone.
  uint64_t batch_bytes = uint64_t{64} << 20;
  // After a failed batch the uploader waits this long, doubling up to max_retry_wait.
  std::chrono::milliseconds retry_wait{1000};
  std::chrono::milliseconds max_retry_wait{30000};
};

struct DriveOptions {
  DriveConfig config;
  crypto::MasterKey master;
  // The catalog's database file.
  std::string catalog_path;
  // The local write-back folder (created, mode 0700). Required.
  std::string staging_dir;
  // The most bytes written and not yet stored (StagingStats::bytes: every byte appended,
  // overwrites included) that the write-back folder holds; a Write that would pass it waits
  // for uploads to make room (see Write). It bounds the local disk the area takes (record
  // heads, and what committed layers leave in segments still in use, aside: docs/format.md,
  // "Staging segment"). 0: no limit.
  uint64_t staging_limit = uint64_t{4} << 30;
  // How long a Write waits for room under staging_limit before it fails with NoSpace. It does
  // not wait while the uploader's last batch failed (the nodes cannot be reached).
  std::chrono::milliseconds staging_wait{30000};
  // peers[i] is config.nodes[i]; at least k + m of them.
  std::vector<std::shared_ptr<Peer>> peers;
  // Chunk sizes, pack size, cipher, threads; k, m and `known` are set by the drive.
  WritePipelineOptions pipeline;
  UploaderOptions uploader;
  // fsync catalog commits. Only tests of logic turn it off.
  bool sync = true;
  // Who holds the drive (written into the catalog's lock file).
  std::string holder = "shardfs";
  // When and how the catalog is checkpointed to the nodes (backend/checkpoint.h).
  CheckpointOptions checkpoint;
  // Shard reads: threads and hedging.
  ChunkReaderOptions read;
  // The folder of the cache of decrypted chunks (docs/format.md, "Chunk cache"); empty: no
  // cache and no read-ahead.
  std::string cache_dir;
  // The most bytes the chunk cache keeps on disk, and in memory as well.
  uint64_t cache_bytes = uint64_t{1} << 30;
  uint64_t memory_cache_bytes = uint64_t{32} << 20;
  // A file read sequentially gets up to this many chunks past the read fetched into the
  // cache in the background (at most this many at once, on readahead_threads). 0: none.
  int readahead_chunks = 4;
  int readahead_threads = 2;
  // Of one sequential read of a file, the chunks fetched ahead are written to the disk cache
  // only until the read has gone this far; further on they are kept in the memory tier only.
  // Streaming a large file (a film, an image) then does not push every other file out of the
  // disk cache, nor write a copy of itself to the local disk as it goes. 0: no limit.
  uint64_t stream_cache_bytes = uint64_t{128} << 20;
  // How often the client's view of the nodes (PeerSet) is saved to the catalog when it has
  // changed; it is also saved when the drive closes. 0: only then.
  std::chrono::seconds health_save_interval{60};
  // How often each node backed off after failures (PeerSet::BackedOff) is asked for its
  // status in the background: one that answers is used again at once (and a failed upload is
  // tried again at once), not only when its back-off (up to 30 s) ends. 0: never.
  std::chrono::milliseconds probe_interval{1000};
  // The network's member list (states, signed coordinates); none: the drive knows its nodes
  // only by what it sees of them itself.
  std::shared_ptr<MembershipSource> membership;
  // Audits and repair (docs/network.md).
  AuditorOptions audit;
  RepairOptions repair;
  // Take care of the data in the background while the drive is open: audit at audit.rate,
  // repair at repair.rate, and refresh the member list every membership_interval. A
  // long-running process (a mount) sets it; a command that ends soon does not.
  bool care = false;
  std::chrono::milliseconds membership_interval{10000};
};

// One whole file for StoreFiles.
struct FileSource {
  ByteSpan data;  // its contents
  // If set: the only runs of `data` that are stored, as (offset, length), in order and not
  // overlapping; the rest of the file is holes (a sparse file; no runs: all holes).
  std::optional<std::vector<std::pair<uint64_t, uint64_t>>> runs;
  // An existing file to overwrite, or 0 for a new file `name` in folder `parent`.
  Ino ino = 0;
  Ino parent = 0;
  std::string name;
  NewInode how;                     // a new file's mode and owner
  std::optional<int64_t> mtime_ns;  // now if unset
};

struct UploadState {
  StagingStats staged;
  uint64_t staging_limit = 0;  // DriveOptions::staging_limit (0: none); staged.bytes is within
  Status last_error;           // of the last batch (OK if it went through)
};

// Space on the drive's nodes, in the drive's terms (what files can still take: raw space
// divided by the code's expansion (k + m) / k).
struct DriveSpace {
  uint64_t capacity = 0;
  uint64_t free = 0;
  size_t nodes_up = 0;
};

// What a gc pass did.
struct GcReport {
  size_t packs_dropped = 0;             // packs no file used any more
  uint64_t bytes_dropped = 0;           // their bytes before coding
  size_t checkpoint_packs_dropped = 0;  // packs of checkpoints older than the two kept
  size_t shards_deleted = 0;            // shards the nodes let go of (this pass and earlier ones)
  size_t deletions_pending = 0;         // shards whose node did not answer: the next pass retries
  // Why no checkpoint of the catalog could be stored first, if none could: then nothing new
  // was dropped (only deletions queued earlier were retried).
  Status checkpoint;
};

class Drive {
 public:
  // Opens the catalog (Busy if another process has the drive), the staging area (recovering
  // what a previous process left: its layers are queued), drops files that lost their last
  // name while open, and starts the uploader. The nodes' health saved by earlier sessions is
  // loaded into peers(). InvalidArgument for a bad config, no staging folder, or fewer peers
  // than k + m.
  static Result<std::unique_ptr<Drive>> Open(DriveOptions options);
  // Stops the uploader after the batch it is on, then read-ahead, and saves the nodes'
  // health. What is still staged stays on disk and is uploaded by the next Open (call Sync
  // first to have it stored now).
  ~Drive();

  Catalog& catalog() { return *catalog_; }
  const DriveConfig& config() const { return options_.config; }
  // The drive's nodes and the client's view of them; peers().node(i) is config().nodes[i].
  PeerSet& peers() { return *peers_; }
  // Checkpoints of the catalog: Sync() stores one now (`shardfs sync`); PacksInUse() for gc.
  Checkpointer& checkpointer() { return *checkpointer_; }
  // The chunk cache; null without DriveOptions::cache_dir.
  ChunkCache* cache() { return cache_.get(); }
  // Saves the nodes' health (peers()) to the catalog now; errors as the catalog's.
  Status SaveNodeHealth();
  Auditor& auditor() { return *auditor_; }
  Repairer& repairer() { return *repairer_; }
  // Asks the membership source for the member list now and takes what it says into peers():
  // each node's state and coordinate. Then measures the round trip to each alive node of the
  // drive (`rtt_samples` status requests; the median of the last three samples counts) and
  // moves this client's coordinate by it. Returns the list. Unavailable without a source or
  // an answer.
  Result<std::vector<MemberInfo>> RefreshMembership(int rtt_samples = 1);
  // The catalog's own packs (the newest checkpoint's) are not in the catalog, so the repairer
  // does not see them: if one of them has no more healthy shards than the repair threshold, a
  // new base checkpoint is stored on healthy nodes instead (Checkpointer::Rebase). With
  // `ignore_grace`, as Repairer::RunPass. Returns whether it stored one.
  Result<bool> CareForCheckpoint(bool ignore_grace);

  // The tree: as the Catalog methods of the same names, with staged sizes and mtimes shown.
  Result<InodeAttr> Lookup(Ino parent, std::string_view name);
  Result<InodeAttr> GetAttr(Ino ino);
  Result<std::vector<DirEntry>> ReadDir(Ino dir, std::string_view after, size_t limit);
  Result<InodeAttr> Mkdir(Ino parent, std::string_view name, const NewInode& how);
  Result<InodeAttr> Create(Ino parent, std::string_view name, const NewInode& how);
  // A new empty file with no name, open (Release it when done; it is dropped then unless
  // LinkUnlinked named it): what an upload writes into before it takes its name, so that an
  // upload cut short leaves nothing behind, and a crash nothing but an orphan the next Open
  // drops.
  Result<InodeAttr> CreateUnlinked(const NewInode& how);
  // Names the file of CreateUnlinked (Catalog::LinkUnlinked); a file it replaces is dropped
  // unless open. Returns the file's attributes.
  Result<InodeAttr> LinkUnlinked(Ino ino, Ino parent, std::string_view name, bool replace);
  Result<InodeAttr> Symlink(Ino parent, std::string_view name, std::string_view target);
  Result<std::string> ReadLink(Ino ino);
  Result<InodeAttr> Link(Ino ino, Ino parent, std::string_view name);
  // A file whose last name goes is dropped (with its staged bytes and pending uploads) unless
  // it is open; then on its last Release.
  Status Unlink(Ino parent, std::string_view name);
  Status Rmdir(Ino parent, std::string_view name);
  // Removes entry `name` of folder `parent`: a file or symlink, or a folder with everything
  // below it (depth first, a page of entries at a time). Stops at the first error (what was
  // removed by then stays removed). The chunks it used stay on the nodes until gc.
  Status RemoveTree(Ino parent, std::string_view name);
  Status Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                RenameMode mode);
  // A size change of a file, and an mtime change of a file with staged bytes, go through the
  // staging area (in order with its writes); the rest to the catalog.
  Result<InodeAttr> SetAttr(Ino ino, const AttrChange& change);
  // Extended attributes: as the Catalog methods of the same names (kept in the catalog, so
  // they are checkpointed and restored; effects, limits and Status values there).
  Result<Bytes> GetXattr(Ino ino, std::string_view name);
  Status SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode);
  Result<std::vector<std::string>> ListXattr(Ino ino);
  Status RemoveXattr(Ino ino, std::string_view name);

  // Open files: an open file is kept while it has no name, until its last Release.
  void Open(Ino ino);
  // Flushes and forgets one open; drops the file if it was its last open and it has no name.
  Status Release(Ino ino);

  // Reads file bytes from `offset` into `out`; returns how many (fewer at the end of the
  // file). Holes read as zeros; staged bytes as written. Unavailable if a chunk cannot be
  // read from enough nodes; Corruption if no k shards give a chunk that opens. On an error
  // `out` holds zeros, never unchecked bytes.
  Result<size_t> Read(Ino ino, uint64_t offset, MutableByteSpan out);
  // Writes `data` at `offset` of file `ino` into the staging area. If the bytes staged and not
  // yet stored plus data.size() would pass staging_limit, first freezes every open layer,
  // wakes the uploader, and waits for its uploads to make room, up to staging_wait, holding no
  // lock the uploader needs; NoSpace, saying that the write-back area is full and why, if
  // there is still no room then, at once if the uploader's last batch failed (the nodes are
  // out of reach: the message has its error), and at once for a write larger than the limit.
  // Writers in many threads never take the area past the limit (Staging::Write); a waiting
  // writer is not served before later ones. NotFound, InvalidArgument for a non-file;
  // IOError/NoSpace from the local disk. On any error the write is not accepted and nothing
  // changed.
  Status Write(Ino ino, uint64_t offset, ByteSpan data);
  // Queues what the file got so far for upload (close, flush).
  Status Flush(Ino ino);
  // Flushes and waits until the file's bytes so far are stored and committed, or `timeout`
  // passes: DeadlineExceeded with the uploader's last error (the bytes stay queued).
  Status Fsync(Ino ino, std::chrono::milliseconds timeout);
  // As Fsync, for every file.
  Status Sync(std::chrono::milliseconds timeout);

  // Stores whole files and commits them, many per transaction (see the top of this file).
  // Returns each file's attributes after. Unavailable if some pack could not be stored on
  // k + m distinct nodes: then no file of the batch changed.
  Result<std::vector<InodeAttr>> StoreFiles(std::span<const FileSource> files);
  // StoreFiles of one existing file.
  Result<InodeAttr> WriteWholeFile(Ino ino, ByteSpan data);

  // Garbage collection: forgets the packs no file uses any more (in the catalog first, so
  // dedup never again counts on them) and deletes their shards from the nodes; a node that
  // does not answer keeps its shards queued for the next pass. Packs some file still uses in
  // part stay whole (no repacking yet). First stores a checkpoint of the catalog; if none can
  // be stored, drops nothing new (report.checkpoint says why). Errors from the catalog; node
  // errors only count.
  Result<GcReport> CollectGarbage();

  UploadState Uploads() const;
  // Makes the bytes written and not yet stored durable on the local disk
  // (Staging::SyncToDisk), so they survive a power loss and are uploaded after the next Open:
  // for an unmount whose uploads could not finish, before it tells the user the data is
  // queued on local disk. Uploads() says how much. IOError from the disk.
  Status SyncStaging();
  // Asks every node for its space. Unavailable if none answers.
  Result<DriveSpace> Space() { return SpaceFrom(AskNodes()); }
  // Asks every node for its status now, in the order of peers(); the free space of each that
  // answers is noted for placement.
  std::vector<Result<PeerStatus>> AskNodes();
  // The space for files (the nodes' space divided by the code's expansion) from such answers.
  // Unavailable if none answered.
  Result<DriveSpace> SpaceFrom(const std::vector<Result<PeerStatus>>& answers) const;

 private:
  explicit Drive(DriveOptions options);
  // Packs of a pipeline run being uploaded at once.
  static constexpr int kPacksInFlight = 2;
  // The pipeline's sink: hands the pack to an upload thread (waiting while kPacksInFlight
  // are on their way); the first failure is returned by FinishPackUploads.
  Status StorePack(EncodedPack& pack);
  // Waits for the run's uploads; their first error (then clears it).
  Status FinishPackUploads();
  // Uploads a pack and records it (AddPack).
  Status StoreEncodedPack(const EncodedPack& pack);
  // Forgets the packs no file uses (gc's first step), counting them in *report.
  Status DropDeadPacks(GcReport* report) EXCLUDES(pipeline_mu_, commit_mu_);
  // Reads what the catalog stores of file `ino` (no staged bytes); zeros past its end.
  // Chunks fetched from the peers go to the disk cache too if `on_disk`.
  Status ReadStored(Ino ino, uint64_t offset, MutableByteSpan out, bool on_disk);
  // The plaintext of `chunk`: from the cache (its own buffer), or from the peers (then cached;
  // on disk too if `on_disk`).
  Result<ChunkCache::Plain> FetchChunk(const ChunkRecord& chunk, bool on_disk);
  // False if a read of file `ino` at `offset` goes on a sequential read that has passed
  // stream_cache_bytes: what it fetches is kept in memory only.
  bool CacheOnDisk(Ino ino, uint64_t offset) EXCLUDES(ahead_mu_);
  // The plaintext of `chunk` from the peers, also put into the cache (the same buffer; on its
  // disk too if `on_disk`).
  Result<ChunkCache::Plain> FetchFromPeers(const ChunkRecord& chunk, bool on_disk = true);
  // After a read of [offset, offset + n) of file `ino` (of `size` bytes): if it went on where
  // the last read of the file ended, queues the chunks that follow for read-ahead.
  void ReadAhead(Ino ino, uint64_t offset, uint64_t n, uint64_t size);
  // A read-ahead task: fetches chunk `id` into the cache (its memory tier only if not
  // `on_disk`) unless it is there or the drive stops.
  void ReadAheadChunk(const ChunkId& id, bool on_disk);
  Status LoadNodeHealth();
  // Saves the nodes' health every health_save_interval while it changes, until stopped.
  void HealthSaverLoop();
  // Every probe_interval, probes the backed-off nodes not being probed already (on
  // probe_pool_), until stopped.
  void ProbeLoop();
  // Asks node i for its status; if it answers, it is used again and the uploader is woken.
  void Probe(size_t i);
  // Refreshes the member list every membership_interval until stopped; wakes the repairer
  // when a node's state changes.
  void MembershipLoop();
  // One piece of input for Store: bytes of the file of commits[commit], at file_offset.
  struct Piece {
    size_t commit = 0;
    uint64_t file_offset = 0;
    ByteSpan bytes;
  };
  // Runs the pipeline over the pieces, stores the packs, adds a RangeWrite per piece to its
  // commit, and commits all in one transaction. `still_wanted`, if set, is asked (under
  // commit_mu_) right before the commit whether commit i is to be made at all.
  Result<std::vector<std::optional<InodeAttr>>> Store(
      std::vector<FileCommit> commits, const std::vector<Piece>& pieces,
      const std::function<bool(size_t)>& still_wanted);
  // Staging's question for a file's first layer: its stored size (InvalidArgument unless a file).
  Staging::StoredSize StoredSize(Ino ino);
  // Applies the staged overlay to attributes read from the catalog.
  InodeAttr WithStaged(InodeAttr a) const;
  // Drops file `ino` (no name left) unless it is open.
  Status DropIfUnused(const InodeAttr& a) EXCLUDES(open_mu_);
  Status UploadBatch(std::vector<UploadJob>& jobs);
  void UploadLoop();
  // Has the uploader look at the queue now.
  void WakeUploader() EXCLUDES(up_mu_);
  Status WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // For a Write that found no room: freezes the open layers, hurries the uploader, and waits
  // until a batch ends or a short slice passes. OK to try the write again; NoSpace (why the
  // area is full) once `deadline` has passed or the uploader's last batch failed (then the
  // uploader's next try comes as soon as for a waiting Fsync).
  Status WaitForRoom(std::chrono::steady_clock::time_point deadline) EXCLUDES(up_mu_);

  DriveOptions options_;
  crypto::DriveKeys keys_;
  std::unique_ptr<Catalog> catalog_;
  ChunkSealer sealer_;
  std::unique_ptr<WritePipeline> pipeline_;
  std::unique_ptr<PeerSet> peers_;
  std::unique_ptr<ChunkReader> reader_;
  std::unique_ptr<Staging> staging_;
  std::unique_ptr<ChunkCache> cache_;

  // Read-ahead. Its pool is stopped first when the drive closes.
  Mutex ahead_mu_;
  CondVar ahead_cv_;  // a fetch ahead started or ended
  // A sequential read of a file: where it began, and how far it has got.
  struct Stream {
    uint64_t start = 0;
    uint64_t reached = 0;
  };
  static bool GoesOn(const Stream& st, uint64_t offset);
  // The sequential read of each file recently read.
  std::unordered_map<Ino, Stream> streams_ GUARDED_BY(ahead_mu_);
  // Chunks queued for read-ahead; true once the fetch has started.
  std::unordered_map<ChunkId, bool> ahead_ GUARDED_BY(ahead_mu_);
  // Chunks a read is getting (from the cache or the peers): others wait for it.
  std::unordered_set<ChunkId> fetching_ GUARDED_BY(ahead_mu_);
  // How far from the furthest read of a file a read may start and still count as sequential.
  static constexpr uint64_t kReadAheadSlack = uint64_t{16} << 20;
  bool ahead_stopping_ GUARDED_BY(ahead_mu_) = false;
  std::unique_ptr<ThreadPool> ahead_pool_;

  Mutex health_mu_;  // held while saving the nodes' health
  CondVar health_cv_;
  bool stopping_ GUARDED_BY(health_mu_) = false;
  uint64_t saved_changes_ GUARDED_BY(health_mu_) = 0;  // PeerSet::changes() when last saved
  std::thread health_saver_;
  std::vector<bool> probing_ GUARDED_BY(health_mu_);  // a probe of node i is on its way
  std::unique_ptr<ThreadPool> probe_pool_;
  std::thread prober_;
  std::thread membership_thread_;
  Mutex coord_mu_;
  Vivaldi vivaldi_ GUARDED_BY(coord_mu_);
  RttFilter rtts_ GUARDED_BY(coord_mu_);
  std::unique_ptr<Auditor> auditor_;
  std::unique_ptr<Repairer> repairer_;

  Mutex pipeline_mu_;  // one pipeline run at a time; taken before commit_mu_
  Mutex pack_mu_;      // the run's pack uploads
  CondVar pack_cv_;
  int packs_in_flight_ GUARDED_BY(pack_mu_) = 0;
  Status pack_error_ GUARDED_BY(pack_mu_);
  std::unique_ptr<ThreadPool> upload_pool_;
  Mutex commit_mu_;  // commits of the write path, and drops of staged files
  Mutex open_mu_;
  std::unordered_map<Ino, int> opens_ GUARDED_BY(open_mu_);

  // The uploader.
  mutable Mutex up_mu_;
  CondVar up_cv_;    // wakes the uploader
  CondVar done_cv_;  // a batch ended
  bool stop_ GUARDED_BY(up_mu_) = false;
  bool wake_ GUARDED_BY(up_mu_) = false;       // look at the queue now
  int urgent_ GUARDED_BY(up_mu_) = 0;          // Fsync/Sync callers, and writes, waiting
  bool hurry_ GUARDED_BY(up_mu_) = false;      // a write was refused: retry as soon as for them
  bool node_back_ GUARDED_BY(up_mu_) = false;  // a backed-off node answered: retry now
  uint64_t batches_ GUARDED_BY(up_mu_) = 0;    // batches ended
  Status last_error_ GUARDED_BY(up_mu_);
  std::thread uploader_;
  // Last, so it is destroyed first: closing it may store a checkpoint over catalog_ and peers_.
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_DRIVE_H_
